//! Operating the real `tessera server`: `--print-config`, configuration errors, JSON logs with
//! request ids, and a graceful stop on SIGTERM that finishes the request in flight, refuses
//! new connections and exits 0.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const TOKEN: &str = "tsr_ops_test_token_0123456789abcdef";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `tessera server ARGS` with a clean `TESSERA_*` environment plus `vars`.
fn server_cmd(args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tessera"));
    c.arg("server").args(args).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("TESSERA_") {
            c.env_remove(k);
        }
    }
    c.envs(vars.iter().copied());
    c
}

/// Kills the server if a test fails before it stopped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn wait_until_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_file(dir: &Path, text: &str) -> String {
    let path = dir.join("tessera.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn print_config_shows_sources_redacts_secrets_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = write_file(
        dir.path(),
        &format!(
            "data_dir = {:?}\nlog_format = \"json\"\nlisten = \"127.0.0.1:1\"\n",
            data
        ),
    );
    let out = server_cmd(
        &[
            "--config",
            &file,
            "--listen",
            "127.0.0.1:9",
            "--print-config",
        ],
        &[
            ("TESSERA_MASTER_KEY", KEY),
            ("TESSERA_BOOTSTRAP_TOKEN", TOKEN),
            ("TESSERA_SHUTDOWN_TIMEOUT_SECONDS", "12"),
        ],
    )
    .output()
    .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for line in [
        "listen = \"127.0.0.1:9\"  # from --listen".to_owned(),
        format!("log_format = \"json\"  # from {file}"),
        "master_key = \"[redacted]\"  # from TESSERA_MASTER_KEY".to_owned(),
        "bootstrap_token = \"[redacted]\"  # from TESSERA_BOOTSTRAP_TOKEN".to_owned(),
        "shutdown_timeout_seconds = 12  # from TESSERA_SHUTDOWN_TIMEOUT_SECONDS".to_owned(),
        "bootstrap_org = \"default\"  # default".to_owned(),
    ] {
        assert!(stdout.contains(&format!("{line}\n")), "{line}\n{stdout}");
    }
    for secret in [KEY, TOKEN] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
    assert!(!data.exists(), "--print-config creates nothing");

    // Invalid: exit non-zero, the setting named on stderr, nothing on stdout.
    let out = server_cmd(
        &["--config", &file, "--print-config"],
        &[
            ("TESSERA_MASTER_KEY", KEY),
            ("TESSERA_METRICS_LISTEN", "nowhere"),
        ],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("metrics_listen (from TESSERA_METRICS_LISTEN): invalid address"),
        "{stderr}"
    );
}

#[test]
fn configuration_errors_stop_the_server_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "listen = \"127.0.0.1:0\"\nmaster_kye = \"x\"\n");
    let out = server_cmd(&["--config", &file], &[("TESSERA_MASTER_KEY", KEY)])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("master_kye") && stderr.contains(&file),
        "{stderr}"
    );

    // TESSERA_CONFIG names the file too.
    let out = server_cmd(
        &[],
        &[("TESSERA_MASTER_KEY", KEY), ("TESSERA_CONFIG", &file)],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("master_kye"));

    // Without a master key: the contract's message, saying how to give one.
    let out = server_cmd(&["--data-dir"], &[])
        .arg(dir.path().join("empty"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("TESSERA_MASTER_KEY") && stderr.contains("--dev"),
        "{stderr}"
    );
}

/// Sends `request` over a new connection and reads the whole answer.
fn http(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn sigterm_finishes_the_request_in_flight_refuses_new_ones_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let child = server_cmd(
        &["--listen", &listen, "--data-dir"],
        &[
            ("TESSERA_MASTER_KEY", KEY),
            ("TESSERA_BOOTSTRAP_TOKEN", TOKEN),
            ("TESSERA_BOOTSTRAP_ORG", "acme"),
            ("TESSERA_LOG_FORMAT", "json"),
            ("TESSERA_SHUTDOWN_TIMEOUT_SECONDS", "20"),
        ],
    )
    .arg(dir.path())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut server = Running(child);
    wait_until_listening(port);

    let auth = format!("Authorization: token {TOKEN}\r\n");
    let create = r#"{"project":"ops","name":"slow"}"#;
    let created = http(
        port,
        &format!(
            "POST /api/esc/environments/acme HTTP/1.1\r\nHost: x\r\n{auth}\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{create}",
            create.len()
        ),
    );
    assert!(created.starts_with("HTTP/1.1 204"), "{created}");

    // A request whose body is still arriving when the signal comes.
    let body = "values:\n  greeting: hello from a slow upload\n";
    let (first, rest) = body.split_at(10);
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        slow,
        "PATCH /api/esc/environments/acme/ops/slow HTTP/1.1\r\nHost: x\r\n{auth}\
         X-Request-Id: ops-slow-upload\r\nContent-Type: application/x-yaml\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{first}",
        body.len()
    )
    .unwrap();
    slow.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let pid = server.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());

    // Stopping: no new connection is accepted, but the process waits for the upload.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        server.0.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );

    slow.write_all(rest.as_bytes()).unwrap();
    let mut answer = String::new();
    slow.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("x-request-id: ops-slow-upload"),
        "{answer}"
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");

    // The log: one JSON object per line; the upload's line carries its request id, route
    // pattern and status; no token anywhere.
    let mut log = String::new();
    server
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(!log.contains(TOKEN), "{log}");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let served = lines
        .iter()
        .find(|l| l["span"]["request_id"] == "ops-slow-upload" && l["status"] == 200)
        .unwrap_or_else(|| panic!("no line for the upload:\n{log}"));
    assert_eq!(
        served["span"]["route"],
        "/api/esc/environments/{org}/{project}/{env}"
    );
    assert_eq!(served["span"]["method"], "PATCH");
    assert!(served["latency_ms"].as_f64().is_some(), "{served}");
    assert!(
        lines.iter().any(|l| l["fields"]["message"]
            .as_str()
            .or(l["message"].as_str())
            .is_some_and(|m| m.starts_with("stopping"))),
        "{log}"
    );

    // The update the server finished is there after a restart.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let child = server_cmd(
        &["--listen", &listen, "--data-dir"],
        &[("TESSERA_MASTER_KEY", KEY)],
    )
    .arg(dir.path())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let _server = Running(child);
    wait_until_listening(port);
    let yaml = http(
        port,
        &format!(
            "GET /api/esc/environments/acme/ops/slow HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
        ),
    );
    assert!(yaml.contains("hello from a slow upload"), "{yaml}");
}
