//! Secrets never rest in plaintext: after storing known secrets, tokens, a session and a
//! signing key, neither the SQLite database file nor its write-ahead log holds any of them.

mod common;

use common::{alice, env, org};
use tessera_store::access::Principal;
use tessera_store::audit::AuditContext;
use tessera_store::members::OrgRole;
use tessera_store::tokens::{NewToken, TokenOwner};
use tessera_store::{SecretBytes, SecretString};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_files_hold_no_plaintext_secret_or_token() {
    let db = common::sqlite_db();
    let s = db.store().await;
    let (acme, dev) = (org("acme"), env("app/dev"));
    s.create_org(&acme, &AuditContext::system()).await.unwrap();
    s.add_member(&acme, "root", OrgRole::Admin, &alice())
        .await
        .unwrap();
    s.create_environment(&acme, &dev, "", &alice())
        .await
        .unwrap();

    let secrets = [
        "SECRET-db-password-8f3a1c",
        "SECRET-api-key-77e0b2",
        "SECRET-session-value-c41d",
    ];
    let mut yaml = String::from("values:\n  marker: VISIBLE-MARKER\n");
    for (i, secret) in secrets[..2].iter().enumerate() {
        let ct = s
            .encrypt_secret(&acme, &dev, &SecretString::new(*secret))
            .await
            .unwrap();
        yaml.push_str(&format!(
            "  s{i}:\n    fn::secret:\n      ciphertext: {ct}\n"
        ));
    }
    s.save_revision(&acme, &dev, &yaml, Some(1), &alice())
        .await
        .unwrap();

    let tokens = [
        "tsr_TOKEN-personal-0123456789abcdef",
        "tsr_TOKEN-team-fedcba9876543210",
    ];
    s.create_team(&acme, "ops", &alice()).await.unwrap();
    let owners = [
        TokenOwner::User("root".into()),
        TokenOwner::Team("ops".into()),
    ];
    for (value, owner) in tokens.iter().zip(owners) {
        let spec = NewToken {
            name: "t".into(),
            owner,
            expires_at: None,
        };
        s.create_token(&acme, &spec, &SecretString::new(*value), &alice())
            .await
            .unwrap();
        assert!(s
            .authenticate_token(&SecretString::new(*value))
            .await
            .unwrap()
            .is_some());
    }

    let grant = s
        .authorize_open(
            &Principal::Member {
                login: "root".into(),
            },
            &acme,
            std::slice::from_ref(&dev),
            &alice(),
        )
        .await
        .unwrap();
    let session = SecretBytes::new(format!("{{\"v\":\"{}\"}}", secrets[2]).into_bytes());
    s.create_session(&grant, &dev, &session, 600).await.unwrap();
    let private = SecretBytes::new(b"SIGNING-PRIVATE-KEY-5b9e".to_vec());
    s.create_signing_key(
        &acme,
        "k1",
        "ES256",
        &serde_json::json!({}),
        &private,
        &alice(),
    )
    .await
    .unwrap();

    // Read the files while the store is open, before any checkpoint empties the WAL.
    let path = db.dir.path().join("tessera.db");
    let main = std::fs::read(&path).unwrap();
    let wal = std::fs::read(db.dir.path().join("tessera.db-wal")).unwrap_or_default();
    let all = [main, wal].concat();
    assert!(
        contains(&all, b"VISIBLE-MARKER"),
        "the scan must see the stored definitions"
    );
    for needle in secrets
        .iter()
        .map(|s| s.as_bytes())
        .chain(tokens.iter().map(|t| t.as_bytes()))
        .chain([&b"SIGNING-PRIVATE-KEY-5b9e"[..]])
    {
        assert!(
            !contains(&all, needle),
            "{} found in the database files",
            String::from_utf8_lossy(needle)
        );
    }
    // And after the WAL is checkpointed into the main file.
    s.close().await;
    let main = std::fs::read(&path).unwrap();
    assert!(contains(&main, b"VISIBLE-MARKER"));
    for needle in secrets.iter().chain(tokens.iter()) {
        assert!(
            !contains(&main, needle.as_bytes()),
            "{needle} found after checkpoint"
        );
    }
}
