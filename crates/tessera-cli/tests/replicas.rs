//! Several replicas on one PostgreSQL database behave as one service, and a `pg_dump` of a
//! Tessera database restores into a working server given the same master key.
//!
//! Each test starts real `tessera server` processes on loopback ports on its own database.
//! Without PostgreSQL (or `pg_dump`) the tests say they are skipped, except under
//! `CI=true`, where they fail.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{json, Value};

const TOKEN: &str = "tsr-replica-test-admin-token";
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const OTHER_KEY: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=";
const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A fresh PostgreSQL database, dropped at the end; `None` when PostgreSQL does not answer
/// and this is not CI.
struct Database {
    name: String,
    rt: tokio::runtime::Runtime,
    admin: sqlx::PgPool,
}

impl Database {
    fn create(test: &str) -> Option<Database> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let admin = match rt.block_on(sqlx::PgPool::connect(ADMIN_URL)) {
            Ok(p) => p,
            Err(e) => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "PostgreSQL must answer under CI: {e}"
                );
                eprintln!("SKIPPED {test}: PostgreSQL at {ADMIN_URL} does not answer ({e})");
                return None;
            }
        };
        let db = Database {
            name: format!("tessera_{test}_{}_{}", std::process::id(), nanos()),
            rt,
            admin,
        };
        db.exec(&format!("CREATE DATABASE {}", db.name));
        Some(db)
    }

    fn exec(&self, sql: &str) {
        self.rt
            .block_on(sqlx::query(sql).execute(&self.admin))
            .unwrap();
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = self.rt.block_on(
            sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&self.admin),
        );
    }
}

fn nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// A running `tessera server`, killed when dropped.
struct Replica {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl Replica {
    fn start(db_url: &str, key: &str) -> Replica {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = tempfile::tempdir().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["server", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--database-url", db_url, "--data-dir"])
            .arg(data.path())
            .env("TESSERA_MASTER_KEY", key)
            .env("TESSERA_BOOTSTRAP_TOKEN", TOKEN)
            .env("TESSERA_BOOTSTRAP_ORG", "acme")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while http()
            .get(format!("{url}/healthz"))
            .send()
            .map_or(true, |r| !r.status().is_success())
        {
            assert!(Instant::now() < deadline, "the server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Replica {
            child,
            url,
            _data: data,
        }
    }

    fn call(&self, method: reqwest::Method, path: &str, token: &str) -> RequestBuilder {
        http()
            .request(method, format!("{}{path}", self.url))
            .header("Authorization", format!("token {token}"))
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.call(reqwest::Method::GET, path, TOKEN)
    }

    fn post(&self, path: &str) -> RequestBuilder {
        self.call(reqwest::Method::POST, path, TOKEN)
    }

    fn patch_yaml(&self, path: &str, yaml: &str) {
        let r = self
            .call(reqwest::Method::PATCH, path, TOKEN)
            .header("Content-Type", "application/x-yaml")
            .body(yaml.to_owned())
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "update: {}", r.text().unwrap_or_default());
    }

    /// Opens `project/env` and returns the session id.
    fn open(&self, env: &str) -> String {
        let r = self
            .post(&format!("/api/esc/environments/acme/{env}/open"))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "open: {}", r.text().unwrap_or_default());
        r.json::<Value>().unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Reads a session's values.
    fn session(&self, env: &str, id: &str) -> Value {
        let r = self
            .get(&format!("/api/esc/environments/acme/{env}/open/{id}"))
            .send()
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "session read: {}",
            r.text().unwrap_or_default()
        );
        r.json().unwrap()
    }

    fn jwks_kids(&self) -> Vec<String> {
        let jwks: Value = http()
            .get(format!("{}/oidc/.well-known/jwks", self.url))
            .send()
            .unwrap()
            .json()
            .unwrap();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn value<'a>(session: &'a Value, key: &str) -> &'a Value {
    &session["properties"][key]["value"]
}

fn create_env(r: &Replica, project: &str, name: &str) {
    let c = r
        .post("/api/esc/environments/acme")
        .json(&json!({"project": project, "name": name}))
        .send()
        .unwrap();
    assert!(c.status().is_success(), "create: {}", c.status());
}

fn verify_audit(db_url: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["admin", "audit", "verify", "--database-url", db_url])
        .env("TESSERA_MASTER_KEY", KEY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "audit chain: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn two_replicas_on_one_postgres_database_behave_as_one_service() {
    let Some(db) = Database::create("replicas") else {
        return;
    };
    let a = Replica::start(&db.url(), KEY);
    let b = Replica::start(&db.url(), KEY);
    let env_path = "/api/esc/environments/acme/app/dev";
    create_env(&a, "app", "dev");
    a.patch_yaml(
        env_path,
        "values:\n  greeting: hello\n  password:\n    fn::secret: s3cret-one\n",
    );

    // A session opened on A is read on B, secret and all.
    let id = a.open("app/dev");
    let s = b.session("app/dev", &id);
    assert_eq!(value(&s, "greeting"), "hello");
    assert_eq!(value(&s, "password"), "s3cret-one");

    // A token revoked on A is refused by B on the very next request.
    let t: Value = a
        .post("/api/orgs/acme/tokens")
        .json(&json!({"name": "ci", "admin": true}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let (tid, tvalue) = (t["id"].as_str().unwrap(), t["tokenValue"].as_str().unwrap());
    let list = |r: &Replica| {
        r.call(reqwest::Method::GET, "/api/esc/environments/acme", tvalue)
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(list(&b), 200, "the new token works on B");
    let revoke = a
        .call(
            reqwest::Method::DELETE,
            &format!("/api/orgs/acme/tokens/{tid}"),
            TOKEN,
        )
        .send()
        .unwrap();
    assert!(revoke.status().is_success(), "revoke: {}", revoke.status());
    assert_eq!(list(&b), 401, "B refuses the revoked token at once");
    assert_eq!(list(&a), 401);

    // An environment updated on B and opened on A shows the new value (A had opened and
    // parsed the previous revision: its caches must not serve it).
    b.patch_yaml(
        env_path,
        "values:\n  greeting: bonjour\n  password:\n    fn::secret: s3cret-two\n",
    );
    let s = a.session("app/dev", &a.open("app/dev"));
    assert_eq!(value(&s, "greeting"), "bonjour");
    assert_eq!(value(&s, "password"), "s3cret-two");

    // A signing-key rotation on A is published in B's JWKS.
    let before = b.jwks_kids();
    let rotated: Value = a
        .post("/api/orgs/acme/oidc/keys/rotate")
        .send()
        .unwrap()
        .json()
        .unwrap();
    let kid = rotated["kid"].as_str().expect("rotation names the new key");
    assert!(!before.iter().any(|k| k == kid));
    assert!(
        b.jwks_kids().iter().any(|k| k == kid),
        "B publishes the key rotated on A"
    );

    // Both replicas audit into one hash chain, concurrently, and it stays intact.
    std::thread::scope(|s| {
        for r in [&a, &b, &a, &b] {
            s.spawn(move || {
                for _ in 0..10 {
                    let id = r.open("app/dev");
                    r.session("app/dev", &id);
                }
            });
        }
    });
    drop((a, b));
    verify_audit(&db.url());
}

#[test]
fn a_pg_dump_restores_into_a_working_server_with_the_same_master_key() {
    let have_pg_dump = Command::new("pg_dump").arg("--version").output().is_ok();
    if !have_pg_dump {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "pg_dump is required under CI"
        );
        eprintln!("SKIPPED the PostgreSQL backup round trip: pg_dump is not installed");
        return;
    }
    let Some(source) = Database::create("backup_src") else {
        return;
    };
    {
        let server = Replica::start(&source.url(), KEY);
        create_env(&server, "app", "prod");
        server.patch_yaml(
            "/api/esc/environments/acme/app/prod",
            "values:\n  region: eu-west-1\n  dbPassword:\n    fn::secret: restored-secret\n",
        );
        let s = server.session("app/prod", &server.open("app/prod"));
        assert_eq!(value(&s, "dbPassword"), "restored-secret");
    }

    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("tessera.dump");
    run(Command::new("pg_dump")
        .args(["--format=custom", "--no-owner", "--dbname"])
        .arg(source.url())
        .arg("--file")
        .arg(&dump));
    let Some(restored) = Database::create("backup_dst") else {
        return;
    };
    run(Command::new("pg_restore")
        .args(["--no-owner", "--exit-on-error", "--dbname"])
        .arg(restored.url())
        .arg(&dump));
    drop(source); // the original is gone: only the dump remains

    // The same master key opens everything: secrets, the audit chain, tokens.
    verify_audit(&restored.url());
    {
        let server = Replica::start(&restored.url(), KEY);
        let s = server.session("app/prod", &server.open("app/prod"));
        assert_eq!(value(&s, "region"), "eu-west-1");
        assert_eq!(value(&s, "dbPassword"), "restored-secret");
    }
    // Another master key cannot: the dump alone reveals no secret.
    let server = Replica::start(&restored.url(), OTHER_KEY);
    let r = server
        .post("/api/esc/environments/acme/app/prod/open")
        .send()
        .unwrap();
    let status = r.status();
    let body = r.text().unwrap();
    assert!(
        !status.is_success(),
        "opened without the master key: {body}"
    );
    assert!(!body.contains("restored-secret"));
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
