//! Test harness: every test body runs against SQLite (a fresh file) and PostgreSQL (a fresh
//! database on `127.0.0.1:5432`, or `TESSERA_TEST_PG_URL`). Without PostgreSQL the
//! PostgreSQL half prints that it is skipped, except under `CI=true`, where it fails.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;

use sqlx::Connection;
use tessera_store::audit::AuditContext;
use tessera_store::{Keyring, MasterKey, OrgName, QualifiedEnv, Store};

pub fn admin_pg_url() -> String {
    std::env::var("TESSERA_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh database and the master key its data keys are wrapped with.
#[derive(Clone)]
pub struct TestDb {
    pub url: String,
    pub master_key_b64: String,
    pub dir: Arc<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    pub fn keyring(&self) -> Keyring {
        Keyring::new(MasterKey::from_base64(&self.master_key_b64).unwrap())
    }

    pub async fn store(&self) -> Store {
        Store::connect(&self.url, self.keyring())
            .await
            .expect("connect")
    }

    pub fn is_sqlite(&self) -> bool {
        self.url.starts_with("sqlite:")
    }

    /// Runs raw SQL outside the store (to tamper with rows).
    pub async fn exec_raw(&self, sql: &str) -> u64 {
        if self.is_sqlite() {
            let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            sqlx::query(sql)
                .execute(&mut c)
                .await
                .unwrap()
                .rows_affected()
        } else {
            let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::query(sql)
                .execute(&mut c)
                .await
                .unwrap()
                .rows_affected()
        }
    }

    async fn cleanup(&self) {
        if let Some(name) = &self.pg_name {
            if let Ok(mut c) = sqlx::PgConnection::connect(&admin_pg_url()).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut c)
                    .await;
            }
        }
    }
}

fn master_key() -> String {
    MasterKey::generate()
        .unwrap()
        .to_base64()
        .expose()
        .to_owned()
}

pub fn sqlite_db() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tessera.db").display());
    TestDb {
        url,
        master_key_b64: master_key(),
        dir: Arc::new(dir),
        pg_name: None,
    }
}

/// A fresh PostgreSQL database, or `None` (skipped) when PostgreSQL does not answer.
pub async fn pg_db(test: &str) -> Option<TestDb> {
    let admin = admin_pg_url();
    let mut c = match sqlx::PgConnection::connect(&admin).await {
        Ok(c) => c,
        Err(e) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("PostgreSQL at {admin} does not answer and CI=true: {e}");
            }
            eprintln!("SKIPPED {test} on PostgreSQL: {admin} does not answer ({e})");
            return None;
        }
    };
    let name = format!(
        "tessera_test_{}",
        hex::encode(tessera_crypto::random_bytes(8).unwrap())
    );
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap();
    Some(TestDb {
        url: format!("{base}/{name}"),
        master_key_b64: master_key(),
        dir: Arc::new(tempfile::tempdir().unwrap()),
        pg_name: Some(name),
    })
}

pub async fn run_sqlite<F, Fut>(f: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    f(sqlite_db()).await
}

pub async fn run_pg<F, Fut>(test: &str, f: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(db) = pg_db(test).await {
        f(db.clone()).await;
        db.cleanup().await;
    }
}

/// `both_backends!(a, b)` makes `a::sqlite`, `a::postgres`, … from `async fn a(db: TestDb)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::common::run_sqlite(super::$name).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::common::run_pg(stringify!($name), super::$name).await
            }
        }
    )*};
}

pub fn org(s: &str) -> OrgName {
    s.parse().unwrap()
}

pub fn env(s: &str) -> QualifiedEnv {
    s.parse().unwrap()
}

pub fn alice() -> AuditContext {
    AuditContext::new("alice")
        .with_token("tok-1")
        .with_source("127.0.0.1")
}
