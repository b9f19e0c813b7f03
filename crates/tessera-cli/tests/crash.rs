//! Crash safety of the real server: SIGKILL it during a stream of writes, restart it on the
//! same database, and check that every acknowledged revision and its audit entry survived
//! and that the audit chain is intact. On SQLite, and on PostgreSQL when it answers
//! (required under `CI=true`).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "tsr-crash-test-admin-token";
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn start(data: &std::path::Path, db_url: Option<&str>) -> (Child, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args([
        "server",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
    ])
    .arg(data)
    .env("TESSERA_MASTER_KEY", KEY)
    .env("TESSERA_BOOTSTRAP_TOKEN", TOKEN)
    .env("TESSERA_BOOTSTRAP_ORG", "acme")
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    if let Some(url) = db_url {
        cmd.args(["--database-url", url]);
    }
    let child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, format!("http://127.0.0.1:{port}"))
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn crash_and_recover(db_url: Option<&str>) {
    let data = tempfile::tempdir().unwrap();
    let (mut server, url) = start(data.path(), db_url);
    let c = http();
    let auth = format!("token {TOKEN}");
    let env = format!("{url}/api/esc/environments/acme/app/crash");
    let r = c
        .post(format!("{url}/api/esc/environments/acme"))
        .header("Authorization", &auth)
        .json(&serde_json::json!({"project": "app", "name": "crash"}))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "create: {}", r.status());

    // A writer thread saves revisions as fast as it can, recording each acknowledged one;
    // the main thread kills the server mid-stream.
    let writer = {
        let (c, env, auth) = (c.clone(), env.clone(), auth.clone());
        std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            for i in 0..100_000 {
                let body =
                    format!("values:\n  counter: {i}\n  secret:\n    fn::secret: value-{i}\n");
                match c
                    .patch(&env)
                    .header("Authorization", &auth)
                    .header("Content-Type", "application/x-yaml")
                    .body(body)
                    .send()
                {
                    Ok(r) if r.status().is_success() => acknowledged.push(i),
                    _ => break,
                }
            }
            acknowledged
        })
    };
    std::thread::sleep(Duration::from_millis(1500));
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    let acknowledged = writer.join().unwrap();
    assert!(
        acknowledged.len() >= 5,
        "only {} writes before the kill",
        acknowledged.len()
    );

    let (mut server, url) = start(data.path(), db_url);
    let env = format!("{url}/api/esc/environments/acme/app/crash");
    let versions: serde_json::Value = c
        .get(format!("{env}/versions?count=500"))
        .header("Authorization", &auth)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let newest = versions
        .as_array()
        .and_then(|v| v.first())
        .and_then(|v| v["number"].as_u64())
        .unwrap();
    // Revision 1 is the creation; write i became revision i + 2.
    let last_ack = *acknowledged.last().unwrap() as u64;
    assert!(
        newest >= last_ack + 2,
        "revision {} acknowledged, newest after restart {newest}",
        last_ack + 2
    );
    for &i in acknowledged.iter().rev().take(20) {
        let yaml = c
            .get(format!("{env}/versions/{}", i + 2))
            .header("Authorization", &auth)
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(
            yaml.contains(&format!("counter: {i}")),
            "revision {} lost: {yaml}",
            i + 2
        );
        assert!(
            !yaml.contains(&format!("value-{i}")),
            "secret stored in plaintext"
        );
    }
    let audit: serde_json::Value = c
        .get(format!(
            "{url}/api/orgs/acme/auditlogs?event=environment.update&count=100000"
        ))
        .header("Authorization", &auth)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let events = audit["auditLogEvents"].as_array().map_or(0, Vec::len);
    assert!(
        events >= acknowledged.len().min(100),
        "{events} update audit entries for {} acknowledged writes",
        acknowledged.len()
    );
    server.kill().unwrap();
    server.wait().unwrap();

    let mut verify = Command::new(env!("CARGO_BIN_EXE_tessera"));
    verify
        .args(["admin", "audit", "verify", "--data-dir"])
        .arg(data.path());
    if let Some(url) = db_url {
        verify.args(["--database-url", url]);
    }
    let out = verify.output().unwrap();
    assert!(
        out.status.success(),
        "audit chain after the crash: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sqlite_survives_sigkill() {
    crash_and_recover(None);
}

#[test]
fn postgres_survives_sigkill() {
    let admin = "postgres://postgres@127.0.0.1:5432/test";
    let name = format!("tessera_crash_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = match rt.block_on(sqlx::PgPool::connect(admin)) {
        Ok(p) => p,
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "PostgreSQL must answer under CI: {e}"
            );
            eprintln!("SKIPPED postgres_survives_sigkill: PostgreSQL does not answer ({e})");
            return;
        }
    };
    rt.block_on(sqlx::query(&format!("CREATE DATABASE {name}")).execute(&pool))
        .unwrap();
    crash_and_recover(Some(&format!("postgres://postgres@127.0.0.1:5432/{name}")));
    let _ = rt.block_on(sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(&pool));
}
