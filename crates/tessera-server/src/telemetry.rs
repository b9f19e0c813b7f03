//! Logs and request ids: the log subscriber (JSON or text, on stderr), and the middleware that
//! gives every request an id, a span carrying it, one log line and its metrics.
//!
//! *Boundary:* the request line logged is the route *pattern* and method, never the raw path
//! or query, and no header but `X-Request-Id` is read, so neither tokens nor secrets reach a
//! log line from here.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

use crate::config::LogFormat;
use crate::metrics;

/// The header that carries a request's id, both ways.
pub(crate) const REQUEST_ID: &str = "x-request-id";

/// Installs the log subscriber: `format` lines on stderr, filtered by `RUST_LOG` (default
/// `info`). JSON lines carry the event's fields at the top level and the request's span
/// (`request_id`, `method`, `route`) under `span`. Calling it twice is harmless.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Installs the human-readable log subscriber (see [`init_logging`]).
pub fn init_tracing() {
    init_logging(LogFormat::Text);
}

/// An incoming request id is kept when it is 1 to 128 characters of letters, digits and
/// `-_.:`; anything else (which could forge log lines or carry a secret) is replaced.
fn sane(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A new request id: 16 random bytes in hex.
fn generate() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        // Ids need to be unique, not secret: fall back to the clock.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = nanos.to_be_bytes();
    }
    hex::encode(bytes)
}

/// Probes and scrapes are logged at debug level only, so they do not drown the log.
fn quiet(route: &str) -> bool {
    matches!(route, "/healthz" | "/readyz" | "/metrics")
}

/// The request middleware: id, span, log line, metrics (count, latency, in flight).
pub(crate) async fn observe<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane(v))
        .map_or_else(generate, str::to_owned);
    let method = req.method().as_str().to_owned();
    // The route is known once the router has matched; asking before would match the path
    // against every pattern a second time.
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        route = tracing::field::Empty
    );
    let started = Instant::now();
    let in_flight = metrics::InFlight::start();
    let result = next.call(req).instrument(span.clone()).await;
    drop(in_flight);
    let elapsed = started.elapsed();
    let (status, route) = match &result {
        Ok(res) => (res.status(), res.request().match_pattern()),
        Err(e) => (e.as_response_error().status_code(), None),
    };
    let route = route.unwrap_or_else(|| "unmatched".to_owned());
    span.record("route", route.as_str());
    metrics::request(&method, &route, status.as_u16(), elapsed);
    span.in_scope(|| {
        let ms = elapsed.as_secs_f64() * 1000.0;
        let status = status.as_u16();
        if status >= 500 {
            tracing::warn!(status, latency_ms = ms, "request failed");
        } else if quiet(&route) {
            tracing::debug!(status, latency_ms = ms, "request served");
        } else {
            tracing::info!(status, latency_ms = ms, "request served");
        }
    });
    let mut res = result?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID), value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ids_are_kept() {
        assert!(sane("3f2c-abc_1.2:x"));
        for bad in ["", "a b", "a\nb", "token abc", &"x".repeat(129), "é"] {
            assert!(!sane(bad), "{bad:?}");
        }
        let a = generate();
        assert_eq!(a.len(), 32);
        assert!(sane(&a));
        assert_ne!(a, generate());
    }
}
