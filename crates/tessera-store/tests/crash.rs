//! Crash safety: a writer killed with SIGKILL mid-stream loses no acknowledged revision or
//! audit entry, on SQLite and PostgreSQL.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{env, org, TestDb};
use tessera_store::audit::{AuditFilter, ChainStatus};
use tessera_types::Version;

both_backends!(acknowledged_writes_survive_sigkill);

async fn acknowledged_writes_survive_sigkill(db: TestDb) {
    let url = db.url.clone();
    let key = db.master_key_b64.clone();
    // The child runs on a blocking thread: reading its stdout blocks.
    let acked: Vec<u64> = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tessera-store-writer"))
            .args([&url, "100000"])
            .env("TESSERA_MASTER_KEY", key)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the writer");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut acked = Vec::new();
        for line in lines.by_ref() {
            acked.push(line.unwrap().parse::<u64>().unwrap());
            if acked.len() == 40 {
                child.kill().unwrap(); // SIGKILL
                break;
            }
        }
        // Numbers printed before the kill landed were acknowledged too.
        for line in lines.map_while(Result::ok) {
            if let Ok(n) = line.parse() {
                acked.push(n);
            }
        }
        child.wait().unwrap();
        acked
    })
    .await
    .unwrap();
    assert!(acked.len() >= 40);

    let s = db.store().await;
    let (o, e) = (org("crash"), env("app/stream"));
    let latest = s.environment(&o, &e).await.unwrap().latest_revision;
    assert!(
        latest >= *acked.last().unwrap(),
        "latest {latest} is behind an acknowledged revision"
    );
    for &n in &acked {
        let r = s
            .revision(&o, &e, Some(&Version::Revision(n)))
            .await
            .unwrap();
        assert_eq!(r.yaml, format!("values:\n  i: {}\n", n - 2));
    }
    let mut audited = Vec::new();
    let mut filter = AuditFilter {
        event: Some("environment.update".into()),
        limit: Some(1000),
        ..Default::default()
    };
    loop {
        let page = s.list_audit(&o, &filter).await.unwrap();
        audited.extend(page.entries.iter().filter_map(|e| e.revision));
        match page.continuation {
            Some(c) => filter.continuation = Some(c),
            None => break,
        }
    }
    for n in &acked {
        assert!(
            audited.contains(n),
            "revision {n} was acknowledged but has no audit entry"
        );
    }
    assert!(matches!(
        s.verify_audit_chain().await.unwrap(),
        ChainStatus::Intact { .. }
    ));
}
