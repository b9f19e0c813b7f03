//! Prometheus metrics: the names, the functions the rest of the server records through, and
//! the `/metrics` rendering.
//!
//! Recording goes through the `metrics` facade into one process-wide Prometheus recorder,
//! installed by the first [`install`]; code anywhere (a cache in the store included) can
//! record with the facade's macros under the names below, or through [`cache_hit`] and
//! [`cache_miss`]. *Boundary:* labels are bounded sets — route *patterns*
//! (`/api/esc/environments/{org}/{project}/{env}`), never raw paths, so neither names nor
//! tokens reach a label.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `tessera_http_requests_total` | counter | `method`, `route`, `status` |
//! | `tessera_http_request_duration_seconds` | histogram | `method`, `route`, `status` |
//! | `tessera_http_requests_in_flight` | gauge | |
//! | `tessera_opens_total` | counter | `outcome` |
//! | `tessera_provider_call_duration_seconds` | histogram | `provider`, `outcome` |
//! | `tessera_cache_hits_total`, `tessera_cache_misses_total` | counter | `cache` |
//! | `tessera_db_pool_connections`, `tessera_db_pool_idle_connections`, `tessera_db_pool_max_connections` | gauge | |
//! | `tessera_audit_commits_total`, `tessera_audit_writes_total` | counter | |
//! | `tessera_build_info` | gauge (1) | `version` |

use std::sync::OnceLock;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::error::ApiError;
use crate::service::Service;

/// Requests served, by method, route pattern and status.
pub const HTTP_REQUESTS: &str = "tessera_http_requests_total";
/// Request latency in seconds, by method, route pattern and status.
pub const HTTP_REQUEST_DURATION: &str = "tessera_http_request_duration_seconds";
/// Requests being served now.
pub const HTTP_IN_FLIGHT: &str = "tessera_http_requests_in_flight";
/// Environment opens, by outcome (see [`open_outcome`]).
pub const OPENS: &str = "tessera_opens_total";
/// Provider call latency in seconds, by provider and outcome (`ok`, `error`, `timeout`).
pub const PROVIDER_CALL_DURATION: &str = "tessera_provider_call_duration_seconds";
/// Cache lookups answered from the cache, by cache name.
pub const CACHE_HITS: &str = "tessera_cache_hits_total";
/// Cache lookups that had to go to the source, by cache name.
pub const CACHE_MISSES: &str = "tessera_cache_misses_total";
/// Open connections in the database pool (busy and idle).
pub const DB_POOL_CONNECTIONS: &str = "tessera_db_pool_connections";
/// Idle connections in the database pool.
pub const DB_POOL_IDLE: &str = "tessera_db_pool_idle_connections";
/// The most connections the pool opens.
pub const DB_POOL_MAX: &str = "tessera_db_pool_max_connections";
/// Group commits of the audit writer.
pub const AUDIT_COMMITS: &str = "tessera_audit_commits_total";
/// Writes those group commits held.
pub const AUDIT_WRITES: &str = "tessera_audit_writes_total";
/// Deferred audit entries (session reads by the opener) lost to a failed group commit.
pub const AUDIT_DEFERRED_LOST: &str = "tessera_audit_deferred_lost_total";

/// Latency buckets, in seconds: from a cached token check to a slow cloud login.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls return the same handle). If
/// another recorder was installed first, ours still renders, but records nothing.
pub(crate) fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .expect("the bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed: /metrics stays empty");
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        HTTP_REQUESTS,
        "Requests served, by method, route pattern and status."
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        Unit::Seconds,
        "Request latency, by method, route pattern and status."
    );
    describe_gauge!(HTTP_IN_FLIGHT, "Requests being served now.");
    describe_counter!(OPENS, "Environment opens, by outcome.");
    describe_histogram!(
        PROVIDER_CALL_DURATION,
        Unit::Seconds,
        "fn::open provider call latency, by provider and outcome."
    );
    describe_counter!(CACHE_HITS, "Cache lookups answered from the cache.");
    describe_counter!(CACHE_MISSES, "Cache lookups that went to the source.");
    describe_gauge!(DB_POOL_CONNECTIONS, "Open database connections.");
    describe_gauge!(DB_POOL_IDLE, "Idle database connections.");
    describe_gauge!(DB_POOL_MAX, "The most database connections the pool opens.");
    describe_counter!(
        AUDIT_COMMITS,
        "Group commits of audit entries and open sessions (one transaction each)."
    );
    describe_counter!(
        AUDIT_WRITES,
        "Audit entries and open sessions written by group commits."
    );
    describe_counter!(
        AUDIT_DEFERRED_LOST,
        "Audit entries of session reads by the opener that a failed group commit lost."
    );
    describe_gauge!("tessera_build_info", "1, labelled with the version.");
    metrics::gauge!("tessera_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// Counts a lookup in the cache `cache` that was answered from it.
pub fn cache_hit(cache: &'static str) {
    metrics::counter!(CACHE_HITS, "cache" => cache).increment(1);
}

/// Counts a lookup in the cache `cache` that had to go to the source.
pub fn cache_miss(cache: &'static str) {
    metrics::counter!(CACHE_MISSES, "cache" => cache).increment(1);
}

/// Records one served request. `route` is the matched pattern, or `unmatched`.
pub(crate) fn request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let labels = [
        ("method", method.to_owned()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_REQUEST_DURATION, &labels).record(elapsed.as_secs_f64());
}

/// Tracks one request in flight until dropped.
pub(crate) struct InFlight(());

impl InFlight {
    pub(crate) fn start() -> InFlight {
        metrics::gauge!(HTTP_IN_FLIGHT).increment(1.0);
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!(HTTP_IN_FLIGHT).decrement(1.0);
    }
}

/// Counts an open by how it ended, and hands the result back:
/// `opened`, `denied` (403), `not_found` (404), `invalid` (400: the environment has errors
/// or the request is malformed), `upstream_failed` (502/504: a provider's cloud refused or
/// did not answer), `error` (anything else).
pub(crate) fn open_outcome<T>(result: Result<T, ApiError>) -> Result<T, ApiError> {
    let outcome = match &result {
        Ok(_) => "opened",
        Err(e) => match actix_web::ResponseError::status_code(e).as_u16() {
            403 => "denied",
            404 => "not_found",
            400 => "invalid",
            502 | 504 => "upstream_failed",
            _ => "error",
        },
    };
    metrics::counter!(OPENS, "outcome" => outcome).increment(1);
    result
}

/// Records one provider call's latency. `outcome` is `ok`, `error` or `timeout`.
pub(crate) fn provider_call(provider: &str, outcome: &'static str, elapsed: Duration) {
    // Provider names come from the evaluated document: only known ones become labels.
    let provider = match provider {
        "aws-login"
        | "azure-login"
        | "gcp-login"
        | "oidc"
        | "debug-oidc-claims"
        | "aws-secrets"
        | "aws-parameter-store" => provider.to_owned(),
        _ => "other".to_owned(),
    };
    metrics::histogram!(PROVIDER_CALL_DURATION, "provider" => provider, "outcome" => outcome)
        .record(elapsed.as_secs_f64());
}

/// Runs the recorder's upkeep (draining histograms into their buckets) every few seconds,
/// so memory stays bounded between scrapes.
pub(crate) async fn upkeep(handle: PrometheusHandle) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

/// `GET /metrics`: the Prometheus text format. No token: nothing here names a tenant.
pub(crate) async fn render(
    s: web::Data<Service>,
    handle: web::Data<PrometheusHandle>,
) -> HttpResponse {
    let pool = s.store().pool_stats();
    metrics::gauge!(DB_POOL_CONNECTIONS).set(f64::from(pool.size));
    metrics::gauge!(DB_POOL_IDLE).set(pool.idle as f64);
    metrics::gauge!(DB_POOL_MAX).set(f64::from(pool.max));
    let commits = s.store().group_commit_stats();
    metrics::counter!(AUDIT_COMMITS).absolute(commits.batches);
    metrics::counter!(AUDIT_WRITES).absolute(commits.writes);
    metrics::counter!(AUDIT_DEFERRED_LOST).absolute(commits.lost);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render())
}
