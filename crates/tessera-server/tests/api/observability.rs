//! What an operator watches: `/metrics` (no token; by route pattern, never raw paths; opens
//! by outcome; provider latency; the database pool; cache hooks), `metrics_listen` moving it
//! to its own listener, and a request id on every response.

use std::net::SocketAddr;

use actix_web::dev::ServerHandle;
use tessera_crypto::{MasterKey, SecretString};
use tessera_providers::ProvidersConfig;
use tessera_server::{Config, RawConfig};

use crate::helpers::{TestApp, ADMIN_TOKEN, ORG};

/// A server started from `raw` (completed with a fresh data directory, a master key and the
/// bootstrap admin), for tests that need what [`TestApp`] does not expose.
pub struct Started {
    pub url: String,
    pub addr: SocketAddr,
    pub metrics: Option<SocketAddr>,
    handle: ServerHandle,
    _dir: tempfile::TempDir,
}

impl Drop for Started {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

pub async fn start(raw: RawConfig) -> Result<Started, String> {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::load(RawConfig {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.path().to_owned()),
        master_key: Some(MasterKey::generate().unwrap().to_base64()),
        bootstrap_org: Some(ORG.into()),
        bootstrap_token: Some(SecretString::new(ADMIN_TOKEN)),
        providers: Some(ProvidersConfig::default()),
        ..raw
    })
    .map_err(|e| e.to_string())?;
    let server = tessera_server::build(config)
        .await
        .map_err(|e| e.to_string())?;
    let started = Started {
        url: server.url(),
        addr: server.local_addr(),
        metrics: server.metrics_addr(),
        handle: server.handle(),
        _dir: dir,
    };
    tokio::spawn(server.run());
    Ok(started)
}

/// The value of the sample of `metric` whose labels include every one of `labels`.
fn sample(text: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn scrape(app: &TestApp) -> String {
    let r = app
        .send(app.request(reqwest::Method::GET, "/metrics", None))
        .await
        .expect(200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{:?}",
        r.headers
    );
    r.text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_pattern_and_opens_by_outcome() {
    let app = TestApp::spawn().await;
    let env = "payments/prod-secret-name";
    app.create_env(
        env,
        "values:\n  rp:\n    fn::open::oidc:\n      audience: https://rp.example\n",
    )
    .await;
    let open = |name: &str| format!("/api/esc/environments/{ORG}/{name}/open");
    app.post(&open(env), ADMIN_TOKEN).await.expect(200);
    app.post(&open("payments/missing"), ADMIN_TOKEN)
        .await
        .expect(404);
    let reader = app.token_for("read", &[env]).await;
    app.post(&open(env), &reader).await.expect(403);
    app.send(app.request(reqwest::Method::GET, "/no/such/route", None))
        .await
        .expect(404);

    let text = scrape(&app).await;
    let route = r#"route="/api/esc/environments/{org}/{project}/{env}/open""#;
    for (status, at_least) in [("200", 1.0), ("404", 1.0), ("403", 1.0)] {
        let n = sample(
            &text,
            "tessera_http_requests_total",
            &[route, r#"method="POST""#, &format!("status=\"{status}\"")],
        );
        assert!(n.is_some_and(|n| n >= at_least), "{status}: {n:?}\n{text}");
    }
    assert!(
        sample(
            &text,
            "tessera_http_request_duration_seconds_bucket",
            &[route, r#"status="200""#, r#"le="+Inf""#]
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "tessera_http_requests_total",
            &[r#"route="unmatched""#, r#"status="404""#]
        )
        .is_some(),
        "{text}"
    );
    for outcome in ["opened", "not_found", "denied"] {
        assert!(
            sample(
                &text,
                "tessera_opens_total",
                &[&format!("outcome=\"{outcome}\"")]
            )
            .is_some_and(|n| n >= 1.0),
            "{outcome}\n{text}"
        );
    }
    assert!(
        sample(
            &text,
            "tessera_provider_call_duration_seconds_count",
            &[r#"provider="oidc""#, r#"outcome="ok""#]
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    let max = sample(&text, "tessera_db_pool_max_connections", &[]);
    assert!(max.is_some_and(|m| m >= 1.0), "{text}");
    assert!(
        sample(&text, "tessera_db_pool_connections", &[]).is_some_and(|n| n <= max.unwrap()),
        "{text}"
    );
    assert!(
        sample(&text, "tessera_db_pool_idle_connections", &[]).is_some(),
        "{text}"
    );
    // Patterns only: no environment name, path or token reaches a label.
    for leak in ["prod-secret-name", "/no/such/route", ADMIN_TOKEN, &reader] {
        assert!(!text.contains(leak), "{leak} in metrics");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_cache_hooks_report_hits_and_misses_by_cache() {
    let app = TestApp::spawn().await;
    tessera_server::metrics::cache_hit("observability-test");
    tessera_server::metrics::cache_hit("observability-test");
    tessera_server::metrics::cache_miss("observability-test");
    let text = scrape(&app).await;
    let cache = r#"cache="observability-test""#;
    assert_eq!(
        sample(&text, "tessera_cache_hits_total", &[cache]),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, "tessera_cache_misses_total", &[cache]),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_listen_moves_metrics_off_the_main_listener() {
    let s = start(RawConfig {
        metrics_listen: Some("127.0.0.1:0".into()),
        ..RawConfig::default()
    })
    .await
    .expect("starts");
    let metrics = s.metrics.expect("a metrics listener");
    assert_ne!(metrics, s.addr);
    let client = reqwest::Client::new();
    let main = client
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(main.status(), 404);
    assert_eq!(
        client
            .get(format!("{}/healthz", s.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = client
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("tessera_http_requests_total"), "{text}");
    // The metrics listener serves nothing else.
    let api = client
        .get(format!("http://{metrics}/api/esc/environments/{ORG}"))
        .header("Authorization", format!("token {ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let id_of = |r: &crate::helpers::Resp| r.header("x-request-id").unwrap_or_default().to_owned();
    let generated = |id: &str| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());

    let a = app
        .send(app.request(reqwest::Method::GET, "/healthz", None))
        .await
        .expect(200);
    let b = app
        .send(app.request(reqwest::Method::GET, "/healthz", None))
        .await
        .expect(200);
    assert!(generated(&id_of(&a)) && generated(&id_of(&b)), "{a:?}");
    assert_ne!(id_of(&a), id_of(&b));

    // A sane incoming id is kept, on errors too; anything else is replaced.
    let r = app
        .send(
            app.request(
                reqwest::Method::GET,
                &format!("/api/esc/environments/{ORG}"),
                Some("not-a-token"),
            )
            .header("X-Request-Id", "deploy-42.step:7"),
        )
        .await
        .expect(401);
    assert_eq!(id_of(&r), "deploy-42.step:7");
    let r = app
        .send(
            app.request(reqwest::Method::GET, "/healthz", None)
                .header("X-Request-Id", "token tsr_looks_like_a_secret"),
        )
        .await
        .expect(200);
    assert!(generated(&id_of(&r)), "{:?}", id_of(&r));
}
