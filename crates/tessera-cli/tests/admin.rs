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
