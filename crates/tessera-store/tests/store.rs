//! Repository behaviour, on SQLite and PostgreSQL alike.

mod common;

use std::collections::BTreeMap;

use common::{alice, env, org, TestDb};
use tessera_store::access::{AuthorizeError, Principal};
use tessera_store::audit::{
    AuditContext, AuditFilter, AuditRecord, ChainBreak, ChainStatus, Outcome,
};
use tessera_store::members::OrgRole;
use tessera_store::orgs::OrgSettings;
use tessera_store::roles::RoleSpec;
use tessera_store::tokens::{generate_token_value, NewToken, TokenOwner};
use tessera_store::{Keyring, MasterKey, Permission, SecretBytes, SecretString, Store, StoreError};
use tessera_types::{Scope, Version};

both_backends!(
    organizations_and_settings,
    members_teams_and_grants,
    roles_and_permission_sets,
    tokens_are_found_by_value_and_stop_when_revoked_or_expired,
    environments_revisions_and_tags,
    concurrent_saves_on_one_base_have_exactly_one_winner,
    audit_chain_verifies_and_lists_with_filters,
    audit_chain_names_an_edited_entry,
    audit_chain_names_a_deleted_entry,
    ciphertext_is_bound_to_its_environment_and_organization,
    master_key_rotation_keeps_old_revisions_readable,
    data_key_rotation_keeps_old_revisions_readable,
    authorize_open_grants_only_with_open_everywhere,
    sessions_are_sealed_and_expire,
    oidc_keys_and_issuers,
    migrations_rerun_on_an_existing_database,
    concurrent_audit_entries_share_commits_and_keep_the_chain,
    group_commits_and_other_writes_interleave_in_one_chain,
    the_chain_verifies_while_entries_are_appended,
    cached_lookups_see_every_change_at_the_next_snapshot,
);

async fn setup(db: &TestDb) -> Store {
    let s = db.store().await;
    s.create_org(&org("acme"), &AuditContext::system())
        .await
        .unwrap();
    s
}

async fn organizations_and_settings(db: TestDb) {
    let s = setup(&db).await;
    let acme = org("acme");
    assert!(matches!(
        s.create_org(&acme, &alice()).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let o = s.org(&acme).await.unwrap();
    assert_eq!(
        o.settings.default_permission,
        Permission::None,
        "the default starts at none"
    );
    assert_eq!(o.settings.max_token_lifetime_seconds, None);
    let new = OrgSettings {
        default_permission: Permission::Read,
        max_token_lifetime_seconds: Some(3600),
    };
    s.update_org_settings(&acme, &new, &alice()).await.unwrap();
    assert_eq!(s.org(&acme).await.unwrap().settings, new);
    let admin = OrgSettings {
        default_permission: Permission::Admin,
        max_token_lifetime_seconds: None,
    };
    assert!(matches!(
        s.update_org_settings(&acme, &admin, &alice()).await,
        Err(StoreError::Invalid(_))
    ));
    let err = s.org(&org("nope")).await.unwrap_err();
    assert_eq!(err.to_string(), "organization nope not found");
    assert!(!s.is_empty().await.unwrap());
    assert_eq!(s.list_orgs().await.unwrap().len(), 1);
}

async fn members_teams_and_grants(db: TestDb) {
    let s = setup(&db).await;
    let acme = org("acme");
    s.add_member(&acme, "bob", OrgRole::Member, &alice())
        .await
        .unwrap();
    s.add_member(&acme, "carol", OrgRole::Admin, &alice())
        .await
        .unwrap();
    assert!(matches!(
        s.add_member(&acme, "bob", OrgRole::Member, &alice()).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        s.add_member(&acme, "bad login", OrgRole::Member, &alice())
            .await,
        Err(StoreError::Invalid(_))
    ));
    let m = s
        .update_member(&acme, "bob", Some(OrgRole::Admin), None, &alice())
        .await
        .unwrap();
    assert_eq!(m.role, OrgRole::Admin);
    assert_eq!(
        s.list_members(&acme)
            .await
            .unwrap()
            .iter()
            .map(|m| m.login.as_str())
            .collect::<Vec<_>>(),
        ["bob", "carol"]
    );

    s.create_environment(&acme, &env("app/prod"), "", &alice())
        .await
        .unwrap();
    s.create_team(&acme, "ops", &alice()).await.unwrap();
    assert!(matches!(
        s.create_team(&acme, "ops", &alice()).await,
        Err(StoreError::AlreadyExists(_))
    ));
    s.add_team_member(&acme, "ops", "bob", &alice())
        .await
        .unwrap();
    assert!(matches!(
        s.add_team_member(&acme, "ops", "zed", &alice()).await,
        Err(StoreError::NotFound(_))
    ));
    s.set_team_grant(
        &acme,
        "ops",
        &env("app/prod"),
        Permission::Open,
        Some(900),
        &alice(),
    )
    .await
    .unwrap();
    s.set_team_grant(
        &acme,
        "ops",
        &env("app/prod"),
        Permission::Write,
        Some(600),
        &alice(),
    )
    .await
    .unwrap();
    let grants = s.list_team_grants(&acme, "ops").await.unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(
        (grants[0].permission, grants[0].max_open_duration_seconds),
        (Permission::Write, Some(600))
    );
    assert_eq!(s.team(&acme, "ops").await.unwrap().members, ["bob"]);
    s.set_team_grant(
        &acme,
        "ops",
        &env("app/prod"),
        Permission::None,
        None,
        &alice(),
    )
    .await
    .unwrap();
    assert!(s.list_team_grants(&acme, "ops").await.unwrap().is_empty());
    s.remove_team_member(&acme, "ops", "bob", &alice())
        .await
        .unwrap();
    s.remove_member(&acme, "bob", &alice()).await.unwrap();
    assert!(matches!(
        s.member(&acme, "bob").await,
        Err(StoreError::NotFound(_))
    ));
    s.delete_team(&acme, "ops", &alice()).await.unwrap();
    assert!(s.list_teams(&acme).await.unwrap().is_empty());
}

async fn roles_and_permission_sets(db: TestDb) {
    let s = setup(&db).await;
    let acme = org("acme");
    let set = s
        .create_permission_set(&acme, "auditors", &[Scope::AuditLogRead], &alice())
        .await
        .unwrap();
    let spec = RoleSpec {
        name: "dev-openers".into(),
        scopes: vec![Scope::EnvironmentOpen],
        environments: Some(vec![env("app/dev")]),
        environment_tags: Some(BTreeMap::from([("stage".into(), "dev-*".into())])),
        projects: Some(vec!["shared".parse().unwrap()]),
        permission_sets: vec![set.id.clone()],
    };
    let role = s.create_role(&acme, &spec, &alice()).await.unwrap();
    assert_eq!(role.spec, spec);
    assert_eq!(
        role.effective_scopes,
        vec![Scope::EnvironmentOpen, Scope::AuditLogRead]
    );
    assert_eq!(s.role(&acme, &role.id).await.unwrap(), role);
    // Every organization has the built-in roles, with predictable ids.
    let opener = s.role(&acme, "opener@acme").await.unwrap();
    assert_eq!(opener.spec.name, "Environment Open");
    assert_eq!(
        opener.effective_scopes,
        vec![Scope::EnvironmentRead, Scope::EnvironmentOpen]
    );
    let names: Vec<String> = s
        .list_roles(&acme)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.spec.name)
        .collect();
    for builtin in [
        "Environment Read",
        "Environment Open",
        "Environment Write",
        "Environment Admin",
    ] {
        assert!(names.iter().any(|n| n == builtin), "{builtin} in {names:?}");
    }
    assert!(matches!(
        s.create_role(&acme, &spec, &alice()).await,
        Err(StoreError::AlreadyExists(_))
    ));
    let bad = RoleSpec {
        name: "x".into(),
        permission_sets: vec!["missing".into()],
        ..RoleSpec::default()
    };
    assert!(matches!(
        s.create_role(&acme, &bad, &alice()).await,
        Err(StoreError::NotFound(_))
    ));
    s.add_member(&acme, "bob", OrgRole::Member, &alice())
        .await
        .unwrap();
    let m = s
        .update_member(&acme, "bob", None, Some(Some(&role.id)), &alice())
        .await
        .unwrap();
    assert_eq!(m.role_id.as_deref(), Some(role.id.as_str()));
    s.delete_role(&acme, &role.id, &alice()).await.unwrap();
    assert_eq!(
        s.member(&acme, "bob").await.unwrap().role_id,
        None,
        "members lose a deleted role"
    );
    assert_eq!(s.list_permission_sets(&acme).await.unwrap().len(), 1);
}

/// A personal token of bob's (a member already): its spec, value and record.
async fn bob_token(
    s: &Store,
    o: &tessera_store::OrgName,
) -> (NewToken, SecretString, tessera_store::tokens::AccessToken) {
    let value = generate_token_value().unwrap();
    let spec = NewToken {
        name: "laptop".into(),
        owner: TokenOwner::User("bob".into()),
        expires_at: None,
    };
    let token = s.create_token(o, &spec, &value, &alice()).await.unwrap();
    (spec, value, token)
}

async fn tokens_are_found_by_value_and_stop_when_revoked_or_expired(db: TestDb) {
    let s = setup(&db).await;
    let acme = org("acme");
    s.add_member(&acme, "bob", OrgRole::Member, &alice())
        .await
        .unwrap();
    let (spec, value, t) = bob_token(&s, &acme).await;
    let found = s
        .authenticate_token(&value)
        .await
        .unwrap()
        .expect("token found");
    assert_eq!(found.id, t.id);
    assert_eq!(found.owner, TokenOwner::User("bob".into()));
    assert!(
        s.token(&acme, &t.id).await.unwrap().last_used_at.is_some(),
        "use is recorded"
    );
    assert!(s
        .authenticate_token(&SecretString::new("tsr_not-a-real-token-value"))
        .await
        .unwrap()
        .is_none());
    s.revoke_token(&acme, &t.id, &alice()).await.unwrap();
    assert!(
        s.authenticate_token(&value).await.unwrap().is_none(),
        "revocation is immediate"
    );
    assert!(matches!(
        s.revoke_token(&acme, &t.id, &alice()).await,
        Err(StoreError::NotFound(_))
    ));

    let past = NewToken {
        expires_at: Some(1),
        ..spec.clone()
    };
    assert!(matches!(
        s.create_token(&acme, &past, &generate_token_value().unwrap(), &alice())
            .await,
        Err(StoreError::Invalid(_))
    ));
    s.update_org_settings(
        &acme,
        &OrgSettings {
            default_permission: Permission::None,
            max_token_lifetime_seconds: Some(60),
        },
        &alice(),
    )
    .await
    .unwrap();
    let forever = s
        .create_token(&acme, &spec, &generate_token_value().unwrap(), &alice())
        .await
        .unwrap_err();
    assert!(
        forever.to_string().contains("at most 60 seconds"),
        "{forever}"
    );
    s.create_team(&acme, "ci", &alice()).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let team = NewToken {
        name: "ci".into(),
        owner: TokenOwner::Team("ci".into()),
        expires_at: Some(now + 30),
    };
    let tv = generate_token_value().unwrap();
    s.create_token(&acme, &team, &tv, &alice()).await.unwrap();
    assert_eq!(
        s.authenticate_token(&tv).await.unwrap().unwrap().owner,
        TokenOwner::Team("ci".into())
    );
    let listed = s.list_tokens(&acme).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(!format!("{listed:?}").contains(value.expose()));
}

async fn environments_revisions_and_tags(db: TestDb) {
    let s = setup(&db).await;
    let (acme, dev) = (org("acme"), env("app/dev"));
    let e = s
        .create_environment(&acme, &dev, "values: {}\n", &alice())
        .await
        .unwrap();
    assert_eq!(e.latest_revision, 1);
    assert!(matches!(
        s.create_environment(&acme, &dev, "", &alice()).await,
        Err(StoreError::AlreadyExists(_))
    ));
    assert_eq!(
        s.save_revision(&acme, &dev, "values: {a: 1}\n", Some(1), &alice())
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.save_revision(&acme, &dev, "values: {a: 2}\n", None, &alice())
            .await
            .unwrap(),
        3
    );
    let r2 = s
        .revision(&acme, &dev, Some(&Version::Revision(2)))
        .await
        .unwrap();
    assert_eq!(
        (r2.yaml.as_str(), r2.author.as_str()),
        ("values: {a: 1}\n", "alice")
    );
    assert_eq!(s.revision(&acme, &dev, None).await.unwrap().number, 3);
    assert_eq!(
        s.revision(&acme, &dev, Some(&Version::Tag("latest".into())))
            .await
            .unwrap()
            .number,
        3
    );
    assert!(matches!(
        s.revision(&acme, &dev, Some(&Version::Revision(9))).await,
        Err(StoreError::NotFound(_))
    ));

    s.tag_revision(&acme, &dev, "stable", 2, &alice())
        .await
        .unwrap();
    assert_eq!(
        s.revision(&acme, &dev, Some(&Version::Tag("stable".into())))
            .await
            .unwrap()
            .yaml,
        "values: {a: 1}\n"
    );
    s.tag_revision(&acme, &dev, "stable", 3, &alice())
        .await
        .unwrap();
    assert_eq!(
        s.resolve_version(&acme, &dev, Some(&Version::Tag("stable".into())))
            .await
            .unwrap(),
        3,
        "tags move"
    );
    assert!(matches!(
        s.tag_revision(&acme, &dev, "latest", 1, &alice()).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.tag_revision(&acme, &dev, "x", 7, &alice()).await,
        Err(StoreError::NotFound(_))
    ));
    let revs = s.list_revisions(&acme, &dev, None, 10).await.unwrap();
    assert_eq!(revs.iter().map(|r| r.number).collect::<Vec<_>>(), [3, 2, 1]);
    assert_eq!(revs[0].tags, ["latest", "stable"]);
    assert_eq!(
        s.list_revisions(&acme, &dev, Some(3), 1).await.unwrap()[0].number,
        2
    );

    // Retracting flags a revision; its text never changes.
    s.retract_revision(&acme, &dev, 2, Some("leaked"), &alice())
        .await
        .unwrap();
    let again = s
        .revision(&acme, &dev, Some(&Version::Revision(2)))
        .await
        .unwrap();
    assert!(again.retracted);
    assert_eq!(again.yaml, r2.yaml);
    s.delete_revision_tag(&acme, &dev, "stable", &alice())
        .await
        .unwrap();
    assert!(s.list_revision_tags(&acme, &dev).await.unwrap().is_empty());

    let tags = s
        .set_environment_tag(&acme, &dev, "team", Some("payments"), &alice())
        .await
        .unwrap();
    assert_eq!(tags.get("team").map(String::as_str), Some("payments"));
    assert_eq!(s.environment(&acme, &dev).await.unwrap().tags, tags);
    s.set_deletion_protection(&acme, &dev, true, &alice())
        .await
        .unwrap();
    assert!(matches!(
        s.delete_environment(&acme, &dev, &alice()).await,
        Err(StoreError::DeletionProtected { .. })
    ));
    s.set_deletion_protection(&acme, &dev, false, &alice())
        .await
        .unwrap();
    s.delete_environment(&acme, &dev, &alice()).await.unwrap();
    assert!(matches!(
        s.environment(&acme, &dev).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(s.list_environments(&acme).await.unwrap().is_empty());
}

async fn concurrent_saves_on_one_base_have_exactly_one_winner(db: TestDb) {
    let s = setup(&db).await;
    let (acme, dev) = (org("acme"), env("app/dev"));
    s.create_environment(&acme, &dev, "", &alice())
        .await
        .unwrap();
    for round in 1..=3u64 {
        let mut tasks = Vec::new();
        for i in 0..6 {
            let (s, acme, dev) = (s.clone(), acme.clone(), dev.clone());
            tasks.push(tokio::spawn(async move {
                let yaml = format!("values: {{round: {round}, writer: {i}}}\n");
                (
                    yaml.clone(),
                    s.save_revision(&acme, &dev, &yaml, Some(round), &alice())
                        .await,
                )
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                (yaml, Ok(n)) => winners.push((yaml, n)),
                (_, Err(StoreError::Conflict { base, current, .. })) => {
                    assert_eq!(base, round);
                    assert!(current > round);
                }
                (_, Err(e)) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one save wins per base revision");
        let (yaml, n) = &winners[0];
        assert_eq!(*n, round + 1);
        assert_eq!(
            &s.revision(&acme, &dev, None).await.unwrap().yaml,
            yaml,
            "the winner's text is kept"
        );
    }
    // Without a base revision, every save lands.
    let mut tasks = Vec::new();
    for i in 0..4 {
        let (s, acme, dev) = (s.clone(), acme.clone(), dev.clone());
        tasks.push(tokio::spawn(async move {
            s.save_revision(&acme, &dev, &format!("x: {i}\n"), None, &alice())
                .await
        }));
    }
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.unwrap().unwrap());
    }
    numbers.sort();
    assert_eq!(numbers, [5, 6, 7, 8]);
    assert_eq!(
        s.verify_audit_chain().await.unwrap(),
        ChainStatus::Intact { entries: 9 }
    );
}

async fn audit_chain_verifies_and_lists_with_filters(db: TestDb) {
    let s = setup(&db).await;
    let (acme, dev) = (org("acme"), env("app/dev"));
    s.create_environment(&acme, &dev, "", &alice())
        .await
        .unwrap();
    s.create_environment(&acme, &env("app/prod"), "", &alice())
        .await
        .unwrap();
    for i in 0..5 {
        s.save_revision(&acme, &dev, &format!("v: {i}\n"), None, &alice())
            .await
            .unwrap();
    }
    let rec = AuditRecord::new(&acme, "environment.open")
        .env(&dev)
        .denied();
    s.record_audit(&alice(), &rec).await.unwrap();
    assert_eq!(
        s.verify_audit_chain().await.unwrap(),
        ChainStatus::Intact { entries: 9 }
    );

    let all = s.list_audit(&acme, &AuditFilter::default()).await.unwrap();
    assert_eq!(all.entries.len(), 9);
    assert!(all.continuation.is_none());
    let newest = &all.entries[0];
    assert_eq!(
        (newest.event.as_str(), newest.outcome),
        ("environment.open", Outcome::Denied)
    );
    assert_eq!(newest.actor, "alice");
    assert_eq!(newest.token_id.as_deref(), Some("tok-1"));
    assert_eq!(newest.source.as_deref(), Some("127.0.0.1"));
    let update = all
        .entries
        .iter()
        .find(|e| e.event == "environment.update")
        .unwrap();
    assert_eq!(update.environment.as_deref(), Some("app/dev"));
    assert_eq!(update.revision, Some(6), "entries carry their revision");

    let filter = AuditFilter {
        event: Some("environment.update".into()),
        limit: Some(2),
        ..Default::default()
    };
    let p1 = s.list_audit(&acme, &filter).await.unwrap();
    assert_eq!(
        p1.entries
            .iter()
            .map(|e| e.revision.unwrap())
            .collect::<Vec<_>>(),
        [6, 5]
    );
    let p2 = s
        .list_audit(
            &acme,
            &AuditFilter {
                continuation: p1.continuation.clone(),
                ..filter.clone()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        p2.entries
            .iter()
            .map(|e| e.revision.unwrap())
            .collect::<Vec<_>>(),
        [4, 3]
    );
    let by_env = AuditFilter {
        environment: Some(env("app/prod")),
        ..Default::default()
    };
    assert_eq!(s.list_audit(&acme, &by_env).await.unwrap().entries.len(), 1);
    let future = AuditFilter {
        since: Some(i64::MAX - 1),
        ..Default::default()
    };
    assert!(s
        .list_audit(&acme, &future)
        .await
        .unwrap()
        .entries
        .is_empty());
    assert!(s
        .list_audit(&org("other"), &AuditFilter::default())
        .await
        .unwrap()
        .entries
        .is_empty());
}

async fn audit_chain_names_an_edited_entry(db: TestDb) {
    let s = setup(&db).await;
    let (acme, dev) = (org("acme"), env("app/dev"));
    s.create_environment(&acme, &dev, "", &alice())
        .await
        .unwrap();
    for i in 0..4 {
        s.save_revision(&acme, &dev, &format!("v: {i}\n"), None, &alice())
            .await
            .unwrap();
    }
    assert_eq!(
        s.verify_audit_chain().await.unwrap(),
        ChainStatus::Intact { entries: 6 }
    );
    assert_eq!(
        db.exec_raw("UPDATE audit_log SET actor = 'mallory' WHERE seq = 4")
            .await,
        1
    );
    let status = s.verify_audit_chain().await.unwrap();
    assert_eq!(
        status,
        ChainStatus::Broken {
            entry: 4,
            reason: ChainBreak::Altered
        }
    );
    assert_eq!(
        status.to_string(),
        "audit log broken at entry 4: the entry was altered"
    );
}

async fn audit_chain_names_a_deleted_entry(db: TestDb) {
    let s = setup(&db).await;
    let (acme, dev) = (org("acme"), env("app/dev"));
    s.create_environment(&acme, &dev, "", &alice())
        .await
        .unwrap();
    for i in 0..4 {
        s.save_revision(&acme, &dev, &format!("v: {i}\n"), None, &alice())
            .await
            .unwrap();
    }
    db.exec_raw("DELETE FROM audit_log WHERE seq = 6").await;
    assert_eq!(
        s.verify_audit_chain().await.unwrap(),
        ChainStatus::Broken {
            entry: 6,
            reason: ChainBreak::Truncated
        }
    );
    db.exec_raw("DELETE FROM audit_log WHERE seq = 3").await;
    assert_eq!(
        s.verify_audit_chain().await.unwrap(),
        ChainStatus::Broken {
            entry: 3,
            reason: ChainBreak::Deleted
        }
    );
}

async fn admin_grant(s: &Store, o: &str, envs: &[&str]) -> tessera_store::access::OpenGrant {
    let o = org(o);
    if s.member(&o, "root").await.is_err() {
        s.add_member(&o, "root", OrgRole::Admin, &alice())
            .await
            .unwrap();
    }
    let envs: Vec<_> = envs.iter().map(|e| env(e)).collect();
    s.authorize_open(
        &Principal::Member {
            login: "root".into(),
        },
        &o,
        &envs,
        &alice(),
    )
    .await
    .unwrap()
}

async fn ciphertext_is_bound_to_its_environment_and_organization(db: TestDb) {
    let s = setup(&db).await;
    let (acme, other) = (org("acme"), org("other"));
    s.create_org(&other, &alice()).await.unwrap();
    for (o, e) in [(&acme, "app/dev"), (&acme, "app/prod"), (&other, "app/dev")] {
        s.create_environment(o, &env(e), "", &alice())
            .await
            .unwrap();
    }
    let ct = s
        .encrypt_secret(&acme, &env("app/dev"), &SecretString::new("pa55word"))
        .await
        .unwrap();
    let g = admin_grant(&s, "acme", &["app/dev", "app/prod"]).await;
    assert_eq!(
        s.decrypt_secret(&g, &acme, &env("app/dev"), &ct)
            .await
            .unwrap()
            .expose(),
        "pa55word"
    );
    let moved = s
        .decrypt_secret(&g, &acme, &env("app/prod"), &ct)
        .await
        .unwrap_err();
    let msg = moved.to_string();
    assert!(
        msg.contains("does not belong to") && msg.contains("app/prod"),
        "{msg}"
    );
    assert!(!msg.contains("pa55word"));
    let g2 = admin_grant(&s, "other", &["app/dev"]).await;
    let err = s
        .decrypt_secret(&g2, &other, &env("app/dev"), &ct)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Crypto { .. }), "{err}");
    // The grant must cover the environment asked for.
    assert!(matches!(
        s.decrypt_secret(&g2, &acme, &env("app/dev"), &ct).await,
        Err(StoreError::NotGranted { .. })
    ));
    assert!(s
        .decrypt_secret(&g, &acme, &env("app/dev"), "garbage!")
        .await
        .is_err());
}

async fn master_key_rotation_keeps_old_revisions_readable(db: TestDb) {
    let s = setup(&db).await;
    let (acme, dev) = (org("acme"), env("app/dev"));
    s.create_environment(&acme, &dev, "", &alice())
        .await
        .unwrap();
    let ct_old = s
        .encrypt_secret(&acme, &dev, &SecretString::new("before"))
        .await
        .unwrap();
    s.save_revision(
        &acme,
        &dev,
        &format!("values:\n  a:\n    fn::secret:\n      ciphertext: {ct_old}\n"),
        None,
        &alice(),
    )
    .await
    .unwrap();
    let new = MasterKey::generate().unwrap();
    let new_b64 = new.to_base64().expose().to_owned();
    let report = s
        .rotate_master_key(new, &AuditContext::system())
        .await
        .unwrap();
    assert_eq!(report.rewrapped, 1);
    assert_eq!(
        s.master_key_ids_in_use().await.unwrap(),
        vec![report.master_key_id.clone()]
    );
    let g = admin_grant(&s, "acme", &["app/dev"]).await;
    assert_eq!(
        s.decrypt_secret(&g, &acme, &dev, &ct_old)
            .await
            .unwrap()
            .expose(),
        "before"
    );

    // A restart with only the new key reads old and new secrets; the old key alone cannot.
    let ct_new = s
        .encrypt_secret(&acme, &dev, &SecretString::new("after"))
        .await
        .unwrap();
    s.close().await;
    let only_new = Store::connect(
        &db.url,
        Keyring::new(MasterKey::from_base64(&new_b64).unwrap()),
    )
    .await
    .unwrap();
    let g = admin_grant(&only_new, "acme", &["app/dev"]).await;
    assert_eq!(
        only_new
            .decrypt_secret(&g, &acme, &dev, &ct_old)
            .await
            .unwrap()
            .expose(),
        "before"
    );
    assert_eq!(
        only_new
            .decrypt_secret(&g, &acme, &dev, &ct_new)
            .await
            .unwrap()
            .expose(),
        "after"
    );
    only_new.close().await;
    let only_old = db.store().await;
    let g = admin_grant(&only_old, "acme", &["app/dev"]).await;
    let err = only_old
        .decrypt_secret(&g, &acme, &dev, &ct_old)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not configured"), "{err}");
    // create org, create env, save, rotate, add root, three opens
    assert_eq!(
        only_old.verify_audit_chain().await.unwrap(),
        ChainStatus::Intact { entries: 8 }
    );
}

async fn data_key_rotation_keeps_old_revisions_readable(db: TestDb) {
    let s = setup(&db).await;
    let (acme, dev) = (org("acme"), env("app/dev"));
    s.create_environment(&acme, &dev, "", &alice())
        .await
        .unwrap();
    let ct1 = s
        .encrypt_secret(&acme, &dev, &SecretString::new("one"))
        .await
        .unwrap();
    assert_eq!(s.rotate_data_key(&acme, &alice()).await.unwrap(), 2);
    let ct2 = s
        .encrypt_secret(&acme, &dev, &SecretString::new("two"))
        .await
        .unwrap();
    let key_id =
        |ct: &str| tessera_crypto::sealed_key_id(&tessera_crypto::from_text(ct).unwrap()).unwrap();
    assert_eq!(
        (key_id(&ct1), key_id(&ct2)),
        (1, 2),
        "new writes use the new data key"
    );
    let g = admin_grant(&s, "acme", &["app/dev"]).await;
    assert_eq!(
        s.decrypt_secret(&g, &acme, &dev, &ct1)
            .await
            .unwrap()
            .expose(),
        "one"
    );
    assert_eq!(
        s.decrypt_secret(&g, &acme, &dev, &ct2)
            .await
            .unwrap()
            .expose(),
        "two"
    );
}

async fn authorize_open_grants_only_with_open_everywhere(db: TestDb) {
    let s = setup(&db).await;
    let acme = org("acme");
    for e in ["app/dev", "app/prod", "shared/base"] {
        s.create_environment(&acme, &env(e), "", &alice())
            .await
            .unwrap();
    }
    s.add_member(&acme, "bob", OrgRole::Member, &alice())
        .await
        .unwrap();
    let bob = Principal::Member {
        login: "bob".into(),
    };
    let denied = s
        .authorize_open(&bob, &acme, &[env("app/dev")], &alice())
        .await
        .unwrap_err();
    assert!(matches!(
        denied,
        AuthorizeError::Denied {
            permission: Permission::None,
            ..
        }
    ));

    s.create_team(&acme, "devs", &alice()).await.unwrap();
    s.add_team_member(&acme, "devs", "bob", &alice())
        .await
        .unwrap();
    s.set_team_grant(
        &acme,
        "devs",
        &env("app/dev"),
        Permission::Open,
        None,
        &alice(),
    )
    .await
    .unwrap();
    s.update_org_settings(
        &acme,
        &OrgSettings {
            default_permission: Permission::Read,
            max_token_lifetime_seconds: None,
        },
        &alice(),
    )
    .await
    .unwrap();
    // Opening app/dev, which imports shared/base: bob can read shared/base but not open it.
    let err = s
        .authorize_open(&bob, &acme, &[env("app/dev"), env("shared/base")], &alice())
        .await
        .unwrap_err();
    match err {
        AuthorizeError::Denied {
            env, permission, ..
        } => {
            assert_eq!(
                (env.as_str(), permission),
                ("shared/base", Permission::Read)
            );
        }
        other => panic!("{other}"),
    }
    let grant = s
        .authorize_open(&bob, &acme, &[env("app/dev")], &alice())
        .await
        .unwrap();
    assert!(grant.covers(&acme, &env("app/dev")));
    assert!(!grant.covers(&acme, &env("app/prod")));
    let p = s
        .effective_permission(&bob, &acme, &env("app/dev"))
        .await
        .unwrap();
    assert_eq!(p.permission, Permission::Open);
    assert_eq!(p.grants.len(), 2, "default and team");

    // A team token has only the team's grants, not the organization default.
    let team = Principal::Team {
        team: "devs".into(),
    };
    assert_eq!(
        s.effective_permission(&team, &acme, &env("app/prod"))
            .await
            .unwrap()
            .permission,
        Permission::None
    );
    assert!(s
        .authorize_open(&team, &acme, &[env("app/dev")], &alice())
        .await
        .is_ok());
    // An organization token with a role limited by environment tags.
    s.set_environment_tag(&acme, &env("app/prod"), "stage", Some("prod-eu"), &alice())
        .await
        .unwrap();
    let spec = RoleSpec {
        name: "prod-openers".into(),
        scopes: vec![Scope::EnvironmentOpen],
        environment_tags: Some(BTreeMap::from([("stage".into(), "prod-*".into())])),
        ..RoleSpec::default()
    };
    let role = s.create_role(&acme, &spec, &alice()).await.unwrap();
    let tok = Principal::Organization {
        token_id: "t1".into(),
        role_id: Some(role.id),
        admin: false,
    };
    assert!(s
        .authorize_open(&tok, &acme, &[env("app/prod")], &alice())
        .await
        .is_ok());
    assert!(
        s.authorize_open(&tok, &acme, &[env("app/dev")], &alice())
            .await
            .is_err(),
        "no default for role tokens"
    );
    // Missing environments are denied with `none`.
    let err = s
        .authorize_open(&bob, &acme, &[env("app/missing")], &alice())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AuthorizeError::Denied {
            permission: Permission::None,
            ..
        }
    ));

    // Every decision was audited, denials naming the environment lacking Open.
    let opens = s
        .list_audit(
            &acme,
            &AuditFilter {
                event: Some("environment.open".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .entries;
    assert_eq!(opens.len(), 7);
    assert_eq!(
        opens
            .iter()
            .filter(|e| e.outcome == Outcome::Denied)
            .count(),
        4
    );
    let import_denial = opens
        .iter()
        .find(|e| e.details["lacksOpen"] == "shared/base")
        .unwrap();
    assert_eq!(import_denial.environment.as_deref(), Some("app/dev"));
}

async fn sessions_are_sealed_and_expire(db: TestDb) {
    let s = setup(&db).await;
    let (acme, dev) = (org("acme"), env("app/dev"));
    s.create_environment(&acme, &dev, "", &alice())
        .await
        .unwrap();
    s.create_environment(&acme, &env("app/prod"), "", &alice())
        .await
        .unwrap();
    let g = admin_grant(&s, "acme", &["app/dev"]).await;
    let result = SecretBytes::new(br#"{"password":"hunter2"}"#.to_vec());
    let long = s.create_session(&g, &dev, &result, 3600).await.unwrap();
    let short = s.create_session(&g, &dev, &result, 1).await.unwrap();
    let (meta, plain) = s.read_session(&g, &dev, &long.id).await.unwrap();
    assert_eq!(plain.expose(), result.expose());
    assert_eq!(meta.principal, "root");
    assert!(matches!(
        s.create_session(&g, &env("app/prod"), &result, 60).await,
        Err(StoreError::NotGranted { .. })
    ));
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert!(
        matches!(
            s.read_session(&g, &dev, &short.id).await,
            Err(StoreError::NotFound(_))
        ),
        "expired sessions are gone"
    );
    assert_eq!(s.delete_expired_sessions().await.unwrap(), 1);
    assert!(s.read_session(&g, &dev, &long.id).await.is_ok());
}

async fn oidc_keys_and_issuers(db: TestDb) {
    let s = setup(&db).await;
    let acme = org("acme");
    s.create_environment(&acme, &env("app/dev"), "", &alice())
        .await
        .unwrap();
    let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "BB"});
    let private = SecretBytes::new(b"PRIVATE-KEY-DER".to_vec());
    s.create_signing_key(&acme, "k1", "ES256", &jwk, &private, &alice())
        .await
        .unwrap();
    let keys = s.list_signing_keys(false).await.unwrap();
    assert_eq!((keys.len(), keys[0].public_jwk.clone()), (1, jwk));
    let g = admin_grant(&s, "acme", &["app/dev"]).await;
    assert_eq!(
        s.signing_key_private(&g, "k1").await.unwrap().expose(),
        b"PRIVATE-KEY-DER"
    );
    s.retire_signing_key(&acme, "k1", &alice()).await.unwrap();
    assert!(s.list_signing_keys(false).await.unwrap().is_empty());
    assert_eq!(s.list_signing_keys(true).await.unwrap().len(), 1);

    let policies = serde_json::json!([{"decision": "allow", "tokenType": "team", "teamName": "ci", "rules": {"sub": "repo:acme/*"}}]);
    let i = s
        .create_issuer(
            &acme,
            "github",
            "https://token.actions.githubusercontent.com",
            &policies,
            &alice(),
        )
        .await
        .unwrap();
    assert!(matches!(
        s.create_issuer(&acme, "github", "https://x", &policies, &alice())
            .await,
        Err(StoreError::AlreadyExists(_))
    ));
    let found = s
        .issuers_by_url(&acme, "https://token.actions.githubusercontent.com")
        .await
        .unwrap();
    assert_eq!(found, vec![i.clone()]);
    s.update_issuer_policies(&acme, &i.id, &serde_json::json!([]), &alice())
        .await
        .unwrap();
    assert_eq!(
        s.list_issuers(&acme).await.unwrap()[0].policies,
        serde_json::json!([])
    );
    s.delete_issuer(&acme, &i.id, &alice()).await.unwrap();
    assert!(s.list_issuers(&acme).await.unwrap().is_empty());
}

async fn migrations_rerun_on_an_existing_database(db: TestDb) {
    let s = setup(&db).await;
    s.create_environment(&org("acme"), &env("app/dev"), "a: 1\n", &alice())
        .await
        .unwrap();
    s.close().await;
    for _ in 0..2 {
        let again = db.store().await;
        assert_eq!(
            again
                .revision(&org("acme"), &env("app/dev"), None)
                .await
                .unwrap()
                .yaml,
            "a: 1\n"
        );
        again.close().await;
    }
    // PostgreSQL has one more: the change counter, which SQLite keeps in the server.
    let migrations = if db.is_sqlite() { 3 } else { 4 };
    assert_eq!(
        db.exec_raw("UPDATE _sqlx_migrations SET description = description")
            .await,
        migrations,
        "each migration applied once"
    );
}

#[tokio::test]
async fn audit_write_failure_fails_the_action() {
    let db = common::sqlite_db();
    let s = setup(&db).await;
    s.create_environment(&org("acme"), &env("app/dev"), "", &alice())
        .await
        .unwrap();
    // Make appends impossible: the save must fail and leave no revision behind.
    db.exec_raw("CREATE TRIGGER no_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit disk full'); END").await;
    let err = s
        .save_revision(&org("acme"), &env("app/dev"), "x: 1\n", Some(1), &alice())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("audit"), "{err}");
    assert_eq!(
        s.environment(&org("acme"), &env("app/dev"))
            .await
            .unwrap()
            .latest_revision,
        1
    );
    s.add_member(&org("acme"), "root", OrgRole::Admin, &alice())
        .await
        .unwrap_err();
    let open = s
        .authorize_open(
            &Principal::Member {
                login: "root".into(),
            },
            &org("acme"),
            &[env("app/dev")],
            &alice(),
        )
        .await;
    assert!(
        matches!(open, Err(AuthorizeError::Store(_))),
        "no grant without its audit entry"
    );
}

async fn concurrent_audit_entries_share_commits_and_keep_the_chain(db: TestDb) {
    let s = setup(&db).await;
    let before = s.group_commit_stats();
    let n = 200;
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let ctx = AuditContext::new(format!("user{i}"));
                let rec = AuditRecord::new(&org("acme"), "environment.open");
                s.record_audit(&ctx, &rec).await
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().expect("every entry is committed"));
    }
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), n, "every entry has its own place in the chain");
    let after = s.group_commit_stats();
    let (batches, writes) = (after.batches - before.batches, after.writes - before.writes);
    assert_eq!(writes, n as u64);
    assert!(
        batches * 4 <= writes,
        "{n} concurrent entries took {batches} commits"
    );
    match s.verify_audit_chain().await.unwrap() {
        ChainStatus::Intact { entries } => assert!(entries >= n as u64),
        broken => panic!("{broken}"),
    }
    let page = s
        .list_audit(
            &org("acme"),
            &AuditFilter {
                limit: Some(1000),
                ..AuditFilter::default()
            },
        )
        .await
        .unwrap();
    for i in 0..n {
        let actor = format!("user{i}");
        assert!(
            page.entries.iter().any(|e| e.actor == actor),
            "{actor} missing"
        );
    }
}

/// The group-commit writer (on SQLite, a connection of its own) and the changes that append
/// their entry in their own transaction, all at once: every entry lands once, in one chain.
async fn group_commits_and_other_writes_interleave_in_one_chain(db: TestDb) {
    let s = setup(&db).await;
    let ChainStatus::Intact { entries: before } = s.verify_audit_chain().await.unwrap() else {
        panic!("chain broken before the test");
    };
    let (entries, members) = (60, 30);
    let mut tasks = Vec::new();
    for i in 0..entries {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let ctx = AuditContext::new(format!("reader{i}"));
            let rec = AuditRecord::new(&org("acme"), "environment.session.read");
            s.record_audit(&ctx, &rec).await.map(|_| ())
        }));
    }
    for i in 0..members {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.add_member(&org("acme"), &format!("m{i}"), OrgRole::Member, &alice())
                .await
                .map(|_| ())
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("every write commits");
    }
    match s.verify_audit_chain().await.unwrap() {
        ChainStatus::Intact { entries: now } => {
            assert_eq!(now, before + entries + members, "one entry per write")
        }
        broken => panic!("{broken}"),
    }
}

/// `tessera admin audit verify` runs against a live server: entries committed while it
/// reads must not make an intact chain look truncated.
async fn the_chain_verifies_while_entries_are_appended(db: TestDb) {
    let s = setup(&db).await;
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for i in 0..300 {
                let ctx = AuditContext::new(format!("w{i}"));
                let rec = AuditRecord::new(&org("acme"), "environment.open");
                s.record_audit(&ctx, &rec).await.unwrap();
            }
        })
    };
    let mut checks = 0;
    while !writer.is_finished() {
        match s.verify_audit_chain().await.unwrap() {
            ChainStatus::Intact { .. } => checks += 1,
            broken => panic!("after {checks} checks: {broken}"),
        }
    }
    writer.await.unwrap();
    assert!(checks > 0);
}

/// Lookups at a snapshot may come from caches; a change made anywhere (on PostgreSQL,
/// through another store on the same database: another replica) moves the snapshot, and
/// lookups at the new one see it. Audit entries and sessions move nothing.
async fn cached_lookups_see_every_change_at_the_next_snapshot(db: TestDb) {
    let s = setup(&db).await;
    let replica = if db.is_sqlite() {
        s.clone() // one server per SQLite database
    } else {
        db.store().await
    };
    let acme = org("acme");
    let dev = env("app/dev");
    s.create_environment(&acme, &dev, "", &alice())
        .await
        .unwrap();
    s.add_member(&acme, "bob", OrgRole::Member, &alice())
        .await
        .unwrap();
    s.create_team(&acme, "devs", &alice()).await.unwrap();
    s.add_team_member(&acme, "devs", "bob", &alice())
        .await
        .unwrap();
    let (_, value, token) = bob_token(&s, &acme).await;
    let bob = Principal::Member {
        login: "bob".into(),
    };

    let grant = admin_grant(&s, "acme", &["app/dev"]).await;
    let before = s.snapshot().await.unwrap();
    assert!(s
        .authenticate_token_at(before, &value)
        .await
        .unwrap()
        .is_some());
    let facts = s.access_facts_at(before, &bob, &acme).await.unwrap();
    assert!(facts.team_grants.is_empty());
    let handle = s.environment_handle_at(before, &acme, &dev).await.unwrap();
    assert!(handle.environment.tags.is_empty());

    // Appends change nothing anyone's access depends on.
    s.record_audit(&alice(), &AuditRecord::new(&acme, "environment.open"))
        .await
        .unwrap();
    s.create_session(&grant, &dev, &SecretBytes::new(b"{}".to_vec()), 60)
        .await
        .unwrap();
    assert_eq!(s.snapshot().await.unwrap(), before);

    // Changes, made through the other replica.
    replica
        .set_team_grant(&acme, "devs", &dev, Permission::Open, None, &alice())
        .await
        .unwrap();
    replica
        .set_environment_tag(&acme, &dev, "stage", Some("dev"), &alice())
        .await
        .unwrap();
    replica
        .revoke_token(&acme, &token.id, &alice())
        .await
        .unwrap();

    let after = s.snapshot().await.unwrap();
    assert_ne!(after, before, "every change moves the snapshot");
    assert!(
        s.authenticate_token_at(after, &value)
            .await
            .unwrap()
            .is_none(),
        "a revoked token is refused at the next snapshot"
    );
    let facts = s.access_facts_at(after, &bob, &acme).await.unwrap();
    assert_eq!(
        facts.team_grants,
        vec![("devs".to_owned(), dev.clone(), Permission::Open)]
    );
    let handle = s.environment_handle_at(after, &acme, &dev).await.unwrap();
    assert_eq!(
        handle.environment.tags.get("stage").map(String::as_str),
        Some("dev")
    );
    let granted = s
        .authorize_open(&bob, &acme, std::slice::from_ref(&dev), &alice())
        .await;
    assert!(granted.is_ok(), "the new grant applies at once");

    // Taking the grant away is seen just as fast.
    replica
        .set_team_grant(&acme, "devs", &dev, Permission::None, None, &alice())
        .await
        .unwrap();
    let refused = s
        .authorize_open(&bob, &acme, std::slice::from_ref(&dev), &alice())
        .await;
    assert!(matches!(refused, Err(AuthorizeError::Denied { .. })));
}

/// A SQLite database serves one server: a second claim is refused until the first ends.
#[tokio::test]
async fn a_sqlite_database_is_claimed_by_one_server() {
    let db = common::sqlite_db();
    let s = db.store().await;
    let first = s.lock_for_server().unwrap();
    assert!(first.is_some());
    let second = db.store().await;
    let err = second.lock_for_server().unwrap_err();
    assert!(
        err.to_string()
            .contains("another Tessera server is using the SQLite database"),
        "{err}"
    );
    drop(first);
    assert!(second.lock_for_server().unwrap().is_some());
}
