//! `tessera login --oidc-token` end to end, as a CI job uses it: a fake CI issuer on loopback
//! (discovery and JWKS served from a plain socket, an RSA key made here) signs the job's
//! token; a real `tessera server --dev` trusts that issuer for team `ci`; the real `tessera`
//! binary exchanges the token and runs a command under an environment, secrets masked.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value as Json};

const ADMIN: &str = "test-admin-token-0123456789";

struct Server {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_dev_server() -> Server {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "server",
            "--dev",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data.path())
        .env("TESSERA_BOOTSTRAP_TOKEN", ADMIN)
        .env("TESSERA_BOOTSTRAP_ORG", "acme")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tessera server");
    let server = Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _data: data,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server did not start on {}", server.url);
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Serves the issuer's discovery document and JWKS on a loopback socket; returns its URL.
fn start_issuer(key: &rsa::RsaPrivateKey) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/jwks")}).to_string();
    let jwks = json!({"keys": [{
        "kty": "RSA", "alg": "RS256", "use": "sig", "kid": "ci-1",
        "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be()),
    }]})
    .to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            // Drain the headers.
            let mut h = String::new();
            while reader.read_line(&mut h).is_ok_and(|n| n > 2) {
                h.clear();
            }
            let body = if line.contains("/.well-known/openid-configuration") {
                &discovery
            } else {
                &jwks
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

fn api(server: &Server, method: &str, path: &str, body: Json) {
    let http = reqwest::blocking::Client::new();
    let r = http
        .request(method.parse().unwrap(), format!("{}{path}", server.url))
        .header("Authorization", format!("token {ADMIN}"))
        .json(&body)
        .send()
        .unwrap();
    assert!(
        r.status().is_success(),
        "{method} {path}: {}",
        r.text().unwrap_or_default()
    );
}

fn tessera(config: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .env("TESSERA_CONFIG_DIR", config)
        .env_remove("TESSERA_URL")
        .env_remove("TESSERA_TOKEN")
        .env_remove("PULUMI_BACKEND_URL")
        .env_remove("PULUMI_ACCESS_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_ci_job_logs_in_with_its_oidc_token_and_runs_under_an_environment() {
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let issuer = start_issuer(&key);
    let server = start_dev_server();

    // The admin's one-time setup: the issuer, the team and its grant, the environment.
    api(
        &server,
        "POST",
        "/api/orgs/acme/oidc/issuers",
        json!({
            "name": "ci", "url": issuer,
            "policies": [{"decision": "allow", "tokenType": "team", "teamName": "ci",
                          "rules": {"repository": "acme/app", "ref": "refs/heads/main"}}],
        }),
    );
    api(
        &server,
        "POST",
        "/api/orgs/acme/teams",
        json!({"name": "ci"}),
    );
    api(
        &server,
        "POST",
        "/api/esc/environments/acme",
        json!({"project": "app", "name": "prod"}),
    );
    let http = reqwest::blocking::Client::new();
    let r = http
        .patch(format!("{}/api/esc/environments/acme/app/prod", server.url))
        .header("Authorization", format!("token {ADMIN}"))
        .header("Content-Type", "application/x-yaml")
        .body("values:\n  environmentVariables:\n    DEPLOY_KEY:\n      fn::secret: s3cr3t-deploy-key\n")
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap_or_default());
    api(
        &server,
        "PUT",
        "/api/orgs/acme/teams/ci/environments/app/prod",
        json!({"permission": "open"}),
    );

    // The job's token, as the platform would mint it.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let sign = |claims: Json| {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("ci-1".into());
        let der = key.to_pkcs1_der().unwrap();
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_der(der.as_bytes())).unwrap()
    };
    let claims = json!({
        "iss": issuer, "aud": "urn:pulumi:org:acme", "sub": "repo:acme/app:ref:refs/heads/main",
        "repository": "acme/app", "ref": "refs/heads/main", "iat": now, "exp": now + 300,
    });
    let job = tempfile::tempdir().unwrap();
    let token_file = job.path().join("oidc-token");
    std::fs::write(&token_file, sign(claims.clone())).unwrap();
    let config = job.path().join("tessera");

    // A branch the policy does not allow: refused, nothing stored.
    let mut feature = claims.clone();
    feature["ref"] = json!("refs/heads/feature");
    let bad_file = job.path().join("bad-token");
    std::fs::write(&bad_file, sign(feature)).unwrap();
    let out = tessera(
        &config,
        &[
            "login",
            &server.url,
            "--oidc-token",
            &format!("@{}", bad_file.display()),
            "--org",
            "acme",
            "--team",
            "ci",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no policy"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!config.join("credentials.json").exists());

    let out = tessera(
        &config,
        &[
            "login",
            &server.url,
            "--oidc-token",
            &format!("@{}", token_file.display()),
            "--org",
            "acme",
            "--team",
            "ci",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("expires in"), "{stderr}");
    let stored = std::fs::read_to_string(config.join("credentials.json")).unwrap();
    assert!(
        !stored.contains("eyJ"),
        "the OIDC token itself is not stored"
    );

    // The exchanged token opens the environment; the secret is masked in the output.
    let out = tessera(
        &config,
        &[
            "run",
            "acme/app/prod",
            "--",
            "sh",
            "-c",
            "echo key=$DEPLOY_KEY",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "key=[secret]");
    // …and nothing else: the team has no write permission.
    let out = tessera(&config, &["env", "set", "acme/app/prod", "x", "1"]);
    assert!(!out.status.success());
}
