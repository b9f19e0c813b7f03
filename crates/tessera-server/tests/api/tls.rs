//! HTTPS with the operator's certificate: served with rustls when `tls_cert` and `tls_key`
//! are given, plain HTTP refused on that port, and a bad certificate or key named at startup.

use std::path::{Path, PathBuf};

use tessera_server::RawConfig;

use crate::observability::start;

/// A self-signed certificate for 127.0.0.1 and localhost: (certificate PEM, key PEM).
fn self_signed() -> (String, String) {
    let c =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("certificate");
    (c.cert.pem(), c.key_pair.serialize_pem())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_https_with_the_given_certificate_and_refuses_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed();
    let s = start(RawConfig {
        tls_cert: Some(write(dir.path(), "cert.pem", &cert)),
        tls_key: Some(write(dir.path(), "key.pem", &key)),
        ..RawConfig::default()
    })
    .await
    .expect("starts");
    assert!(s.url.starts_with("https://127.0.0.1:"), "{}", s.url);

    let trusting = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).unwrap())
        .build()
        .unwrap();
    let r = trusting
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .expect("https works");
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["status"], "ok");

    // A client that does not trust the certificate refuses the server.
    let (other, _) = self_signed();
    let distrusting = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(other.as_bytes()).unwrap())
        .build()
        .unwrap();
    assert!(distrusting
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .is_err());

    // Plain HTTP to the TLS port gets no answer.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/healthz", s.addr))
        .send()
        .await;
    assert!(
        plain.is_err(),
        "plain http answered: {:?}",
        plain.map(|r| r.status())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_bad_certificate_or_key_is_a_startup_error_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed();
    let (_, other_key) = self_signed();
    let cert_path = write(dir.path(), "cert.pem", &cert);
    let key_path = write(dir.path(), "key.pem", &key);
    let attempt = |cert: Option<PathBuf>, key: Option<PathBuf>| {
        start(RawConfig {
            tls_cert: cert,
            tls_key: key,
            ..RawConfig::default()
        })
    };

    let err = attempt(Some(dir.path().join("missing.pem")), Some(key_path.clone()))
        .await
        .err()
        .expect("refused");
    assert!(
        err.starts_with("tls_cert (from TESSERA_TLS_CERT): cannot read"),
        "{err}"
    );

    let not_pem = write(dir.path(), "not.pem", "hello\n");
    let err = attempt(Some(not_pem.clone()), Some(key_path.clone()))
        .await
        .err()
        .expect("refused");
    assert!(err.starts_with("tls_cert"), "{err}");
    let err = attempt(Some(cert_path.clone()), Some(not_pem))
        .await
        .err()
        .expect("refused");
    assert!(err.starts_with("tls_key"), "{err}");

    // A key that is not the certificate's.
    let wrong = write(dir.path(), "other-key.pem", &other_key);
    let err = attempt(Some(cert_path.clone()), Some(wrong))
        .await
        .err()
        .expect("refused");
    assert!(err.starts_with("tls_key"), "{err}");
    assert!(!err.contains("PRIVATE KEY"), "{err}");

    let err = attempt(Some(cert_path), None).await.err().expect("refused");
    assert!(err.contains("tls_key"), "{err}");
}
