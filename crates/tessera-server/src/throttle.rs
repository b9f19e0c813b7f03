//! Rate limiting of failed authentications per source address.
//!
//! After [`FAILURES_PER_WINDOW`] failed authentications (a token presented and refused)
//! within a window from one address,
//! further requests from it get 429 until the window ends, so tokens cannot be guessed at
//! speed. The counts live in this process only: they are a brake, not a record, and a
//! restart or another replica starting from zero is acceptable.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed authentications allowed per address and window.
pub(crate) const FAILURES_PER_WINDOW: u32 = 30;
/// The window.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most; beyond it, the stalest windows are forgotten first.
const MAX_TRACKED: usize = 100_000;

/// Failed authentication counts per source address.
#[derive(Debug, Default)]
pub(crate) struct AuthFailures {
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl AuthFailures {
    /// Whether `addr` may try to authenticate now.
    pub(crate) fn allowed(&self, addr: IpAddr) -> bool {
        let Ok(windows) = self.windows.lock() else {
            return true;
        };
        match windows.get(&addr) {
            Some((start, n)) => start.elapsed() >= WINDOW || *n < FAILURES_PER_WINDOW,
            None => true,
        }
    }

    /// Records a failed authentication from `addr`.
    pub(crate) fn failed(&self, addr: IpAddr) {
        let Ok(mut windows) = self.windows.lock() else {
            return;
        };
        if windows.len() >= MAX_TRACKED {
            windows.retain(|_, (start, _)| start.elapsed() < WINDOW);
        }
        let entry = windows.entry(addr).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_stopped_after_too_many_failures() {
        let f = AuthFailures::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..FAILURES_PER_WINDOW {
            assert!(f.allowed(a));
            f.failed(a);
        }
        assert!(!f.allowed(a));
        assert!(f.allowed(b));
    }
}
