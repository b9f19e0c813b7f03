//! The test harness: a real server on 127.0.0.1, port 0, with a fresh database per test
//! (SQLite in a temporary directory, or a new PostgreSQL database when one answers).

use std::sync::atomic::{AtomicU32, Ordering};

use actix_web::dev::ServerHandle;
use reqwest::header::HeaderMap;
use serde_json::Value as Json;
use tessera_crypto::{MasterKey, SecretString};
use tessera_providers::ProvidersConfig;
use tessera_server::{Config, RawConfig};
use tessera_store::audit::{AuditContext, AuditEntry, AuditFilter};
use tessera_store::members::OrgRole;
use tessera_store::tokens::{generate_token_value, NewToken, TokenOwner};
use tessera_store::Store;
use tessera_types::{OrgName, Permission, QualifiedEnv};

/// The organization every test app bootstraps.
pub const ORG: &str = "acme";
/// The bootstrap admin's token.
pub const ADMIN_TOKEN: &str = "tsr_test_admin_token_0123456789";

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Json {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status, and for errors the contract's JSON shape; returns self.
    #[track_caller]
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        if status >= 400 {
            let ct = self.header("content-type").unwrap_or_default().to_owned();
            assert!(ct.contains("json"), "error content type {ct:?}");
            let j = self.json();
            assert_eq!(j["code"], status, "{j}");
            assert!(j["message"].as_str().is_some_and(|m| !m.is_empty()), "{j}");
        }
        self
    }
}

/// A running server with a fresh database.
pub struct TestApp {
    pub addr: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub data_dir: tempfile::TempDir,
    handle: ServerHandle,
    /// The PostgreSQL database to drop afterwards: (admin URL, name).
    pg: Option<(String, String)>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let h = self.handle.clone();
        // Stop without waiting: the runtime is going away with the test.
        drop(h.stop(false));
        if let Some((admin_url, name)) = self.pg.take() {
            // Dropping needs a runtime of its own: this one may be shutting down.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(pg::drop_database(&admin_url, &name));
                }
            })
            .join();
        }
    }
}

static PG_DB: AtomicU32 = AtomicU32::new(0);

fn master_key_b64() -> SecretString {
    MasterKey::generate().unwrap().to_base64()
}

impl TestApp {
    /// A connection to the app's SQLite database, beside the server (to tamper with it).
    pub async fn sqlite(&self) -> sqlx::SqliteConnection {
        use sqlx::Connection;
        let url = format!(
            "sqlite://{}",
            self.data_dir.path().join("tessera.db").display()
        );
        sqlx::SqliteConnection::connect(&url).await.unwrap()
    }

    /// A server on SQLite.
    pub async fn spawn() -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        Self::spawn_with(dir, None).await
    }

    /// A server on a new PostgreSQL database, when PostgreSQL answers at 127.0.0.1:5432.
    /// Without one: `None` (and a SKIPPED line), except under `CI=true`, where it fails.
    pub async fn spawn_postgres() -> Option<TestApp> {
        let admin_url = std::env::var("TESSERA_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        use pg::connect_and_create;
        let name = format!(
            "tessera_server_{}_{}",
            std::process::id(),
            PG_DB.fetch_add(1, Ordering::SeqCst)
        );
        match connect_and_create(&admin_url, &name).await {
            Ok(url) => {
                let dir = tempfile::tempdir().unwrap();
                let mut app = Self::spawn_with(dir, Some(url)).await;
                app.pg = Some((admin_url, name));
                Some(app)
            }
            Err(e) => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("PostgreSQL is required under CI=true: {e}");
                }
                eprintln!("SKIPPED: PostgreSQL does not answer at {admin_url}: {e}");
                None
            }
        }
    }

    /// A server on SQLite whose configuration `configure` adjusts first (provider endpoints,
    /// token lifetime): tests run in parallel in one process, so nothing goes through
    /// environment variables.
    pub async fn spawn_configured(configure: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        Self::spawn_full(dir, None, configure).await
    }

    async fn spawn_with(dir: tempfile::TempDir, database_url: Option<String>) -> TestApp {
        Self::spawn_full(dir, database_url, |_| {}).await
    }

    async fn spawn_full(
        dir: tempfile::TempDir,
        database_url: Option<String>,
        configure: impl FnOnce(&mut Config),
    ) -> TestApp {
        let mut config = Config::load(RawConfig {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(dir.path().to_owned()),
            database_url,
            master_key: Some(master_key_b64()),
            bootstrap_org: Some(ORG.into()),
            bootstrap_token: Some(SecretString::new(ADMIN_TOKEN)),
            oidc_issuer: None,
            providers: Some(ProvidersConfig::default()),
            rate_limit_per_token: None,
            dev: false,
            ..RawConfig::default()
        })
        .expect("config");
        configure(&mut config);
        let server = tessera_server::build(config).await.expect("server starts");
        let addr = format!("http://{}", server.local_addr());
        let store = server.store().clone();
        let handle = server.handle();
        tokio::spawn(server.run());
        TestApp {
            addr,
            client: reqwest::Client::new(),
            store,
            data_dir: dir,
            handle,
            pg: None,
        }
    }

    pub fn org(&self) -> OrgName {
        ORG.parse().unwrap()
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Resp {
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        Resp {
            status,
            headers,
            text,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.addr, path)
    }

    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut r = self.client.request(method, self.url(path));
        if let Some(t) = token {
            r = r.header("Authorization", format!("token {t}"));
        }
        r
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.send(self.request(reqwest::Method::GET, path, Some(token)))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.send(self.request(reqwest::Method::DELETE, path, Some(token)))
            .await
    }

    pub async fn post_json(&self, path: &str, token: &str, body: Json) -> Resp {
        self.send(
            self.request(reqwest::Method::POST, path, Some(token))
                .json(&body),
        )
        .await
    }

    pub async fn patch_json(&self, path: &str, token: &str, body: Json) -> Resp {
        self.send(
            self.request(reqwest::Method::PATCH, path, Some(token))
                .json(&body),
        )
        .await
    }

    pub async fn put_json(&self, path: &str, token: &str, body: Json) -> Resp {
        self.send(
            self.request(reqwest::Method::PUT, path, Some(token))
                .json(&body),
        )
        .await
    }

    pub async fn post(&self, path: &str, token: &str) -> Resp {
        self.send(self.request(reqwest::Method::POST, path, Some(token)))
            .await
    }

    pub async fn post_yaml(&self, path: &str, token: &str, yaml: &str) -> Resp {
        self.send(
            self.request(reqwest::Method::POST, path, Some(token))
                .header("Content-Type", "application/x-yaml")
                .body(yaml.to_owned()),
        )
        .await
    }

    pub async fn patch_yaml(&self, path: &str, token: &str, yaml: &str) -> Resp {
        self.send(
            self.request(reqwest::Method::PATCH, path, Some(token))
                .header("Content-Type", "application/x-yaml")
                .body(yaml.to_owned()),
        )
        .await
    }

    /// Creates `project/env` with `yaml` as the admin.
    pub async fn create_env(&self, name: &str, yaml: &str) {
        let (project, env) = name.split_once('/').unwrap();
        self.post_json(
            &format!("/api/esc/environments/{ORG}"),
            ADMIN_TOKEN,
            serde_json::json!({ "project": project, "name": env }),
        )
        .await
        .expect(204);
        if !yaml.is_empty() {
            self.patch_yaml(
                &format!("/api/esc/environments/{ORG}/{name}"),
                ADMIN_TOKEN,
                yaml,
            )
            .await
            .expect(200);
        }
    }

    /// Opens `env` (`project/name`) as `token`, expecting 200; the session's id.
    pub async fn open_session(&self, env: &str, token: &str) -> String {
        let r = self
            .post(&format!("/api/esc/environments/{ORG}/{env}/open"), token)
            .await
            .expect(200);
        r.json()["id"].as_str().expect("a session id").to_owned()
    }

    /// A member `login` with a personal token (straight through the store).
    pub async fn member_token(&self, login: &str) -> String {
        let ctx = AuditContext::system();
        let org = self.org();
        if self.store.member(&org, login).await.is_err() {
            self.store
                .add_member(&org, login, OrgRole::Member, &ctx)
                .await
                .unwrap();
        }
        self.token(TokenOwner::User(login.into()), None).await
    }

    /// A token of `owner`, expiring at `expires_at` if given.
    pub async fn token(&self, owner: TokenOwner, expires_at: Option<i64>) -> String {
        let value = generate_token_value().unwrap();
        let spec = NewToken {
            name: "test".into(),
            owner,
            expires_at,
        };
        self.store
            .create_token(&self.org(), &spec, &value, &AuditContext::system())
            .await
            .unwrap();
        value.expose().to_owned()
    }

    /// A member whose only access is `level` on each of `envs`, through a team of their own.
    pub async fn token_for(&self, level: &str, envs: &[&str]) -> String {
        let login = format!("{level}-{}", PG_DB.fetch_add(1, Ordering::SeqCst));
        let token = self.member_token(&login).await;
        let ctx = AuditContext::system();
        let org = self.org();
        let team = format!("team-{login}");
        self.store.create_team(&org, &team, &ctx).await.unwrap();
        self.store
            .add_team_member(&org, &team, &login, &ctx)
            .await
            .unwrap();
        let p: Permission = level.parse().unwrap();
        for env in envs {
            let env: QualifiedEnv = env.parse().unwrap();
            self.store
                .set_team_grant(&org, &team, &env, p, None, &ctx)
                .await
                .unwrap();
        }
        token
    }

    /// Audit entries of the organization, newest first.
    pub async fn audit(&self) -> Vec<AuditEntry> {
        self.store
            .list_audit(
                &self.org(),
                &AuditFilter {
                    limit: Some(1000),
                    ..AuditFilter::default()
                },
            )
            .await
            .unwrap()
            .entries
    }
}

/// Creating a PostgreSQL database for one test.
mod pg {
    use sqlx::Connection;

    pub async fn connect_and_create(admin_url: &str, name: &str) -> Result<String, String> {
        let base = admin_url
            .rsplit_once('/')
            .map(|(b, _)| b.to_owned())
            .ok_or("bad URL")?;
        let mut c = sqlx::PgConnection::connect(admin_url)
            .await
            .map_err(|e| e.to_string())?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
            .map_err(|e| e.to_string())?;
        Ok(format!("{base}/{name}"))
    }

    pub async fn drop_database(admin_url: &str, name: &str) {
        if let Ok(mut c) = sqlx::PgConnection::connect(admin_url).await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut c)
                .await;
        }
    }
}

/// Makes every audit insert fail, as a full disk would, until [`mend_audit_log`].
pub async fn break_audit_log(c: &mut sqlx::SqliteConnection) {
    sqlx::query("CREATE TRIGGER audit_down BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit down'); END")
        .execute(c)
        .await
        .unwrap();
}

/// Undoes [`break_audit_log`].
pub async fn mend_audit_log(c: &mut sqlx::SqliteConnection) {
    sqlx::query("DROP TRIGGER audit_down")
        .execute(c)
        .await
        .unwrap();
}
