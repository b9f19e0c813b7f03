//! In-process caches of what cannot change once written, so the hot paths (open, session
//! read, decrypt) skip database round trips.
//!
//! *Invariant:* nothing cached here can go stale in a way that matters, so no replica needs
//! to be told to invalidate anything:
//! - organization name → id: organizations are never deleted or renamed;
//! - (organization id, data key id) → unwrapped data key: a data key never changes once
//!   created (rotation adds a new id; master-key rotation re-wraps the same key). Key material
//!   is zeroed when evicted, like every [`DataKey`];
//! - organization id → current data key id, for sealing new values, for at most
//!   [`CURRENT_KEY_TTL`]: a value sealed with the previous key after another replica rotated
//!   stays readable (old keys are kept), so staleness only delays the switch.
//!
//! Tokens, permissions and decrypted secrets are never cached (DESIGN invariants 2 and 6).

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use tessera_crypto::DataKey;

/// How long the id of an organization's current data key is trusted.
pub(crate) const CURRENT_KEY_TTL: Duration = Duration::from_secs(5);

pub(crate) struct Caches {
    pub(crate) org_ids: Cache<String, i64>,
    pub(crate) data_keys: Cache<(i64, u32), Arc<DataKey>>,
    pub(crate) current_key: Cache<i64, u32>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches")
            .field("org_ids", &self.org_ids.entry_count())
            .field("data_keys", &self.data_keys.entry_count())
            .finish_non_exhaustive()
    }
}

impl Caches {
    pub(crate) fn new() -> Caches {
        Caches {
            org_ids: Cache::new(10_000),
            data_keys: Cache::new(10_000),
            current_key: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(CURRENT_KEY_TTL)
                .build(),
        }
    }
}
