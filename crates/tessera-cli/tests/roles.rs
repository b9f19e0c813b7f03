//! Built-in roles through the real server: a member given `opener@<org>` can open an
//! environment but not change it, and the role list names every built-in role.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

#[test]
fn builtin_roles_can_be_assigned_by_their_predictable_ids() {
    let data = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "server",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data.path())
        .env(
            "TESSERA_MASTER_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )
        .env("TESSERA_BOOTSTRAP_TOKEN", "roles-admin-token")
        .env("TESSERA_BOOTSTRAP_ORG", "acme")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let base = format!("http://127.0.0.1:{port}/api");
    let c = reqwest::blocking::Client::new();
    let admin = "token roles-admin-token";
    let send = |rb: reqwest::blocking::RequestBuilder, auth: &str| {
        rb.header("Authorization", auth).send().unwrap()
    };

    let roles: serde_json::Value = send(c.get(format!("{base}/orgs/acme/roles")), admin)
        .json()
        .unwrap();
    let text = roles.to_string();
    for name in [
        "Environment Read",
        "Environment Open",
        "Environment Write",
        "Environment Admin",
    ] {
        assert!(text.contains(name), "{name} missing from {text}");
    }

    assert!(send(
        c.post(format!("{base}/esc/environments/acme"))
            .json(&json!({"project": "app", "name": "dev"})),
        admin
    )
    .status()
    .is_success());
    let r = send(
        c.patch(format!("{base}/esc/environments/acme/app/dev"))
            .header("Content-Type", "application/x-yaml")
            .body("values:\n  pw:\n    fn::secret: s3cret\n"),
        admin,
    );
    assert!(r.status().is_success());
    assert!(send(
        c.post(format!("{base}/orgs/acme/members"))
            .json(&json!({"login": "olga", "role": "member"})),
        admin
    )
    .status()
    .is_success());
    let tok: serde_json::Value = send(
        c.post(format!("{base}/orgs/acme/members/olga/tokens"))
            .json(&json!({"name": "t"})),
        admin,
    )
    .json()
    .unwrap();
    let olga = format!("token {}", tok["tokenValue"].as_str().unwrap());

    assert_eq!(
        send(
            c.post(format!("{base}/esc/environments/acme/app/dev/open")),
            &olga
        )
        .status()
        .as_u16(),
        404,
        "no access before the role"
    );
    let r = send(
        c.patch(format!("{base}/orgs/acme/members/olga"))
            .json(&json!({"roleId": "opener@acme"})),
        admin,
    );
    assert!(r.status().is_success(), "{}", r.text().unwrap());
    assert_eq!(
        send(
            c.post(format!("{base}/esc/environments/acme/app/dev/open")),
            &olga
        )
        .status()
        .as_u16(),
        200
    );
    let r = send(
        c.patch(format!("{base}/esc/environments/acme/app/dev"))
            .header("Content-Type", "application/x-yaml")
            .body("values:\n  x: 1\n"),
        &olga,
    );
    assert_eq!(r.status().as_u16(), 403, "Environment Open does not write");

    let _ = server.kill();
    let _ = server.wait();
}
