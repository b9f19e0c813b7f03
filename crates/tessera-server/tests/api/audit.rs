//! The audit trail of opens, decrypts and denials, and secrets at rest.

use tessera_store::audit::Outcome;

use crate::helpers::{break_audit_log, mend_audit_log, TestApp, ADMIN_TOKEN, ORG};

fn env_path(name: &str) -> String {
    format!("/api/esc/environments/{ORG}/{name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_decrypts_and_denials_are_audited_with_actor_token_and_source() {
    let app = TestApp::spawn().await;
    app.create_env("app/dev", "values:\n  s:\n    fn::secret: audited-secret\n")
        .await;
    app.post(&format!("{}/open", env_path("app/dev")), ADMIN_TOKEN)
        .await
        .expect(200);
    app.get(&format!("{}/decrypt", env_path("app/dev")), ADMIN_TOKEN)
        .await
        .expect(200);
    let reader = app.token_for("read", &["app/dev"]).await;
    app.post(&format!("{}/open", env_path("app/dev")), &reader)
        .await
        .expect(403);
    app.get(&format!("{}/decrypt", env_path("app/dev")), &reader)
        .await
        .expect(403);

    let audit = app.audit().await;
    let find = |event: &str, outcome: Outcome| {
        audit
            .iter()
            .find(|e| e.event == event && e.outcome == outcome)
            .unwrap_or_else(|| panic!("no {event} {outcome:?} in {audit:#?}"))
    };
    let open = find("environment.open", Outcome::Allowed);
    assert_eq!(open.actor, "admin");
    assert!(open.token_id.is_some());
    assert_eq!(open.source.as_deref(), Some("127.0.0.1"));
    assert_eq!(open.environment.as_deref(), Some("app/dev"));
    find("environment.decrypt", Outcome::Allowed);
    let denied = find("environment.open", Outcome::Denied);
    assert!(denied.actor.starts_with("read-"));
    find("environment.decrypt", Outcome::Denied);
    find("environment.update", Outcome::Allowed);
    for e in &audit {
        let text = serde_json::to_string(&e.details).unwrap();
        assert!(!text.contains("audited-secret"), "{text}");
    }
    assert!(matches!(
        app.store.verify_audit_chain().await.unwrap(),
        tessera_store::audit::ChainStatus::Intact { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_plaintext_secret_or_token_in_the_database_files() {
    let app = TestApp::spawn().await;
    let secret = "plaintext-at-rest-9f8e7d";
    app.create_env(
        "app/dev",
        &format!(
            "values:\n  s:\n    fn::secret: {secret}\n  t:\n    - fn::secret: \"{secret}-2\"\n"
        ),
    )
    .await;
    let id = app.open_session("app/dev", ADMIN_TOKEN).await;
    let r = app
        .get(&format!("{}/open/{id}", env_path("app/dev")), ADMIN_TOKEN)
        .await
        .expect(200);
    assert!(r.text.contains(secret));
    let member = app.member_token("frank").await;
    let mut files = 0;
    for entry in std::fs::read_dir(app.data_dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        files += 1;
        for needle in [secret, super::helpers::ADMIN_TOKEN, member.as_str()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle:?} found in {}",
                path.display()
            );
        }
    }
    assert!(files >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_audit_log_cannot_be_written_nothing_is_done() {
    let app = TestApp::spawn().await;
    app.create_env(
        "app/dev",
        "values:\n  s:\n    fn::secret: not-without-audit\n",
    )
    .await;
    let mut c = app.sqlite().await;
    break_audit_log(&mut c).await;
    let p = env_path("app/dev");
    let r = app
        .post(&format!("{p}/open"), ADMIN_TOKEN)
        .await
        .expect(503);
    assert!(!r.text.contains("not-without-audit"));
    app.get(&format!("{p}/decrypt"), ADMIN_TOKEN)
        .await
        .expect(503);
    app.patch_yaml(&p, ADMIN_TOKEN, "values:\n  a: 2\n")
        .await
        .expect(503);
    let reader = {
        // Denials need their audit entry too.
        mend_audit_log(&mut c).await;
        let t = app.token_for("read", &["app/dev"]).await;
        break_audit_log(&mut c).await;
        t
    };
    app.post(&format!("{p}/open"), &reader).await.expect(503);
    mend_audit_log(&mut c).await;
    let r = app
        .get(&format!("{p}/versions"), ADMIN_TOKEN)
        .await
        .expect(200);
    assert_eq!(
        r.json().as_array().unwrap().len(),
        2,
        "the update was not saved"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_share_audit_commits_and_fail_together() {
    let app = TestApp::spawn().await;
    app.create_env("app/dev", "values:\n  s:\n    fn::secret: batched-secret\n")
        .await;
    let p = env_path("app/dev");
    let mut c = app.sqlite().await;
    let open_path = format!("{p}/open");
    let concurrent_opens = |n: usize| {
        let opens = (0..n).map(|_| app.post(&open_path, ADMIN_TOKEN));
        futures::future::join_all(opens)
    };

    // While the audit log cannot be written, no concurrent open succeeds or leaves a session.
    break_audit_log(&mut c).await;
    let sessions_before = open_sessions(&mut c).await;
    for r in concurrent_opens(16).await {
        let r = r.expect(503);
        assert!(!r.text.contains("batched-secret"));
    }
    assert_eq!(open_sessions(&mut c).await, sessions_before);
    mend_audit_log(&mut c).await;

    // Concurrent opens all succeed, each audited, in fewer commits than opens.
    let stats_before = app.store.group_commit_stats();
    let n = 32;
    let mut ids = Vec::new();
    for r in concurrent_opens(n).await {
        ids.push(r.expect(200).json()["id"].as_str().unwrap().to_owned());
    }
    let stats = app.store.group_commit_stats();
    let (batches, writes) = (
        stats.batches - stats_before.batches,
        stats.writes - stats_before.writes,
    );
    // Each open (no provider here) writes its audit entry and its session as one write.
    assert_eq!(writes, n as u64);
    assert!(batches < writes, "{writes} writes took {batches} commits");
    assert_eq!(
        open_sessions(&mut c).await,
        sessions_before + n as i64,
        "every session is in the database, not only in the server's cache"
    );
    for id in &ids {
        let s = app
            .get(&format!("{p}/open/{id}"), ADMIN_TOKEN)
            .await
            .expect(200);
        assert_eq!(s.json()["properties"]["s"]["value"], "batched-secret");
    }
    let opens = app
        .audit()
        .await
        .into_iter()
        .filter(|e| e.event == "environment.open" && e.outcome == Outcome::Allowed)
        .count();
    assert!(opens >= n, "{opens} open entries for {n} opens");
    assert!(matches!(
        app.store.verify_audit_chain().await.unwrap(),
        tessera_store::audit::ChainStatus::Intact { .. }
    ));
}

async fn open_sessions(c: &mut sqlx::SqliteConnection) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM open_sessions")
        .fetch_one(c)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_read_by_its_opener_is_covered_by_the_open_anyone_elses_waits_for_its_entry() {
    let app = TestApp::spawn().await;
    app.create_env("app/dev", "values:\n  s:\n    fn::secret: read-twice\n")
        .await;
    let p = env_path("app/dev");
    let opener = app.token_for("open", &["app/dev"]).await;
    let other = app.token_for("open", &["app/dev"]).await;
    let id = app.open_session("app/dev", &opener).await;
    let session = format!("{p}/open/{id}");

    // In normal operation both reads are in the log, with their reader.
    app.get(&session, &opener).await.expect(200);
    app.get(&session, &other).await.expect(200);
    let reads: Vec<String> = app
        .audit()
        .await
        .into_iter()
        .filter(|e| e.event == "environment.session.read" && e.outcome == Outcome::Allowed)
        .map(|e| e.actor)
        .collect();
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert!(reads.iter().all(|a| a.starts_with("open-")), "{reads:?}");
    assert_ne!(reads[0], reads[1]);

    // With the audit log down: the opener still reads what its audited open disclosed to
    // it, and the lost entry is counted; a different principal learns nothing.
    let mut c = app.sqlite().await;
    break_audit_log(&mut c).await;
    let lost_before = app.store.group_commit_stats().lost;
    let r = app.get(&session, &opener).await.expect(200);
    assert!(r.text.contains("read-twice"));
    let r = app.get(&session, &other).await.expect(503);
    assert!(!r.text.contains("read-twice"), "{}", r.text);
    // The opener's entry went into a batch that failed before (or with) the other's.
    assert_eq!(app.store.group_commit_stats().lost, lost_before + 1);
    mend_audit_log(&mut c).await;
}
