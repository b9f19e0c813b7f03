//! `tessera admin audit verify` on a real database: intact, then with an edited entry,
//! which it must name.

use std::process::Command;

use tessera_store::audit::AuditContext;
use tessera_store::{Keyring, MasterKey, Store};

#[tokio::test]
async fn audit_verify_detects_an_edited_entry() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tessera.db").display());
    let store = Store::connect(&url, Keyring::new(MasterKey::generate().unwrap()))
        .await
        .unwrap();
    for org in ["acme", "globex", "initech"] {
        store
            .create_org(&org.parse().unwrap(), &AuditContext::new("admin"))
            .await
            .unwrap();
    }
    store.close().await;

    let verify = || {
        Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["admin", "audit", "verify", "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let out = verify();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact"));

    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let out = verify();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("broken at entry 2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn audit_verify_refuses_a_missing_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["admin", "audit", "verify", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database at"));
    assert!(
        !dir.path().join("tessera.db").exists(),
        "verify must not create a database"
    );
}

#[tokio::test]
async fn backup_and_restore_round_trip() {
    let live = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", live.path().join("tessera.db").display());
    let key = MasterKey::generate().unwrap();
    let key_text = key.to_base64().expose().to_owned();
    let store = Store::connect(&url, Keyring::new(key)).await.unwrap();
    store
        .create_org(&"acme".parse().unwrap(), &AuditContext::new("admin"))
        .await
        .unwrap();
    let env: tessera_store::QualifiedEnv = "app/dev".parse().unwrap();
    let ciphertext = store
        .encrypt_secret(
            &"acme".parse().unwrap(),
            &env,
            &tessera_store::SecretString::new("s3cr3t-value".to_owned()),
        )
        .await
        .unwrap();
    store.close().await;

    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("backup.db");
    let tessera = |args: &[&str], dir: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(args)
            .arg("--data-dir")
            .arg(dir)
            .output()
            .unwrap()
    };
    let out = tessera(&["admin", "backup", file.to_str().unwrap()], live.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&file).unwrap();
    assert!(
        !bytes.windows(12).any(|w| w == b"s3cr3t-value"),
        "the backup holds no plaintext"
    );

    let out = tessera(&["admin", "backup", file.to_str().unwrap()], live.path());
    assert!(
        !out.status.success(),
        "an existing backup file is never overwritten"
    );

    let restored = tempfile::tempdir().unwrap();
    let out = tessera(
        &["admin", "restore", file.to_str().unwrap()],
        restored.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tessera(
        &["admin", "restore", file.to_str().unwrap()],
        restored.path(),
    );
    assert!(
        !out.status.success(),
        "restoring over a database needs --force"
    );

    let out = tessera(&["admin", "audit", "verify"], restored.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = format!("sqlite://{}", restored.path().join("tessera.db").display());
    let store = Store::connect(
        &url,
        Keyring::new(MasterKey::from_base64(&key_text).unwrap()),
    )
    .await
    .unwrap();
    let again = store
        .encrypt_secret(
            &"acme".parse().unwrap(),
            &env,
            &tessera_store::SecretString::new("other".to_owned()),
        )
        .await
        .unwrap();
    assert_ne!(again, ciphertext);
    assert!(
        !store.is_empty().await.unwrap(),
        "the restored database holds the organization"
    );
}
