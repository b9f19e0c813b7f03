//! The per-token request rate limit (`TESSERA_RATE_LIMIT_PER_TOKEN`, off by default).
//!
//! A token bucket per access token id: it holds at most one second's worth of requests and
//! refills continuously, so a token may burst up to the limit and then sustain it. A request
//! over the limit gets 429 with `Retry-After`. Buckets live in this process only and are
//! forgotten after a minute without requests: each replica enforces the limit on its own
//! share of the traffic (a brake against a runaway client, not an accounting record).

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::error::ApiError;

/// How long an idle token's bucket is kept.
const IDLE: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Bucket {
    available: f64,
    updated: Instant,
}

/// Request budgets per token id.
pub(crate) struct TokenRateLimit {
    per_second: NonZeroU32,
    buckets: Cache<String, Arc<Mutex<Bucket>>>,
}

impl std::fmt::Debug for TokenRateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRateLimit")
            .field("per_second", &self.per_second)
            .finish_non_exhaustive()
    }
}

impl TokenRateLimit {
    pub(crate) fn new(per_second: NonZeroU32) -> TokenRateLimit {
        TokenRateLimit {
            per_second,
            buckets: Cache::builder()
                .max_capacity(1_000_000)
                .time_to_idle(IDLE)
                .build(),
        }
    }

    /// Takes one request from `token_id`'s budget, or says how long to wait.
    pub(crate) fn check(&self, token_id: &str) -> Result<(), ApiError> {
        self.check_at(token_id, Instant::now())
    }

    fn check_at(&self, token_id: &str, now: Instant) -> Result<(), ApiError> {
        let rate = f64::from(self.per_second.get());
        let bucket = self.buckets.get_with_by_ref(token_id, || {
            Arc::new(Mutex::new(Bucket {
                available: rate,
                updated: now,
            }))
        });
        let mut b = bucket.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
        b.available = (b.available + elapsed * rate).min(rate);
        b.updated = now;
        if b.available >= 1.0 {
            b.available -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - b.available) / rate;
        Err(ApiError::RateLimited {
            limit: self.per_second.get(),
            retry_after: (wait.ceil() as u64).max(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_may_burst_to_the_limit_then_waits_for_refill() {
        let limit = TokenRateLimit::new(NonZeroU32::new(3).unwrap());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limit.check_at("a", t0).is_ok());
        }
        assert!(matches!(
            limit.check_at("a", t0),
            Err(ApiError::RateLimited { retry_after: 1, .. })
        ));
        // Another token has its own budget.
        assert!(limit.check_at("b", t0).is_ok());
        // A third of a second later one request's worth has come back.
        let later = t0 + Duration::from_millis(340);
        assert!(limit.check_at("a", later).is_ok());
        assert!(limit.check_at("a", later).is_err());
    }
}
