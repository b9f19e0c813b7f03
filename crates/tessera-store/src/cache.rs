//! In-process caches, so the hot paths (authentication, the Open check, open, session read)
//! skip database round trips.
//!
//! Two kinds of entries:
//!
//! *What cannot change once written* needs no invalidation, on any replica:
//! - organization name → id: organizations are never deleted or renamed;
//! - (organization id, data key id) → unwrapped data key: a data key never changes once
//!   created (rotation adds a new id; master-key rotation re-wraps the same key). Key material
//!   is zeroed when evicted, like every [`DataKey`];
//! - organization id → current data key id, for sealing new values, for at most
//!   [`CURRENT_KEY_TTL`]: a value sealed with the previous key after another replica rotated
//!   stays readable (old keys are kept), so staleness only delays the switch;
//! - open session id → the session *sealed* (never its plaintext), until it expires: a
//!   session never changes, and reading it still needs a current Open check.
//!
//! *What changes* (token records by hash, access facts, environment lookups) is tagged with
//! the [`Snapshot`] it was read at and served only to a lookup at that same snapshot.
//! *Invariant (revocation is immediate):* every change to tokens, members, teams, grants,
//! roles, settings or environments commits through `Pool::begin_write`, which advances the
//! change counter; each request reads the counter once ([`crate::Store::snapshot`]: from
//! the process on SQLite, whose database one server owns, from `audit_head` on PostgreSQL),
//! so the first request after a change, on any replica, misses every entry read before it.
//! An entry read at an older snapshot is never served, whatever it holds.
//!
//! Token values and plaintext secrets are never cached (DESIGN invariant 2); tokens are
//! keyed by their SHA-256 hash, as the database keeps them.

use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use tessera_crypto::DataKey;
use tessera_types::{OrgName, QualifiedEnv};

use crate::access::{AccessFacts, Principal};
use crate::environments::EnvHandle;
use crate::tokens::AccessToken;
use crate::UnixTime;

/// A point in the store's history of changes, read once per request with
/// [`crate::Store::snapshot`]. Lookups made at a snapshot may be answered by cache entries
/// read at the same snapshot, and by nothing older.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot(pub(crate) i64);

/// How many entries each cache of changing things keeps.
const ENTRIES: u64 = 100_000;
/// How many bytes of sealed sessions are kept in memory.
const SESSION_BYTES: u64 = 64 << 20;

/// A cache of things that change, each entry tagged with the snapshot it was read at.
pub(crate) struct Current<K, V>(Cache<K, (Snapshot, V)>);

impl<K, V> Current<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn new() -> Self {
        Current(Cache::new(ENTRIES))
    }

    /// The value read at `at`, if any.
    pub(crate) fn get(&self, key: &K, at: Snapshot) -> Option<V> {
        self.0
            .get(key)
            .and_then(|(read_at, value)| (read_at == at).then_some(value))
    }

    pub(crate) fn insert(&self, key: K, at: Snapshot, value: V) {
        self.0.insert(key, (at, value));
    }

    /// The value read at `at`: from the cache, or else from `load`, and then kept.
    pub(crate) async fn get_or_load<E, F>(
        &self,
        key: K,
        at: Snapshot,
        load: impl FnOnce() -> F,
    ) -> Result<V, E>
    where
        F: std::future::Future<Output = Result<V, E>>,
    {
        if let Some(value) = self.get(&key, at) {
            return Ok(value);
        }
        let value = load().await?;
        self.insert(key, at, value.clone());
        Ok(value)
    }

    fn len(&self) -> u64 {
        self.0.entry_count()
    }
}

/// An open session as stored: sealed, with what a read checks before opening it.
#[derive(Debug)]
pub(crate) struct SealedSession {
    pub(crate) env_id: i64,
    pub(crate) principal: String,
    pub(crate) sealed: Vec<u8>,
    pub(crate) created_at: UnixTime,
    pub(crate) expires_at: UnixTime,
}

/// How long the id of an organization's current data key is trusted.
pub(crate) const CURRENT_KEY_TTL: Duration = Duration::from_secs(5);

pub(crate) struct Caches {
    pub(crate) org_ids: Cache<String, i64>,
    pub(crate) data_keys: Cache<(i64, u32), Arc<DataKey>>,
    pub(crate) current_key: Cache<i64, u32>,
    pub(crate) sessions: Cache<String, Arc<SealedSession>>,
    /// Token records by the hex SHA-256 of their value.
    pub(crate) tokens: Current<String, AccessToken>,
    pub(crate) facts: Current<(OrgName, Principal), Arc<AccessFacts>>,
    pub(crate) environments: Current<(OrgName, QualifiedEnv), Arc<EnvHandle>>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches")
            .field("org_ids", &self.org_ids.entry_count())
            .field("data_keys", &self.data_keys.entry_count())
            .field("sessions", &self.sessions.entry_count())
            .field("tokens", &self.tokens.len())
            .field("facts", &self.facts.len())
            .field("environments", &self.environments.len())
            .finish_non_exhaustive()
    }
}

/// Sessions leave the cache when they expire.
struct UntilExpiry;

impl moka::Expiry<String, Arc<SealedSession>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _: &String,
        session: &Arc<SealedSession>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        let left = session.expires_at.saturating_sub(crate::now()).max(0);
        Some(Duration::from_secs(left as u64))
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
            sessions: Cache::builder()
                .max_capacity(SESSION_BYTES)
                .expire_after(UntilExpiry)
                .weigher(|id: &String, s: &Arc<SealedSession>| {
                    u32::try_from(id.len() + s.sealed.len() + s.principal.len()).unwrap_or(u32::MAX)
                })
                .build(),
            tokens: Current::new(),
            facts: Current::new(),
            environments: Current::new(),
        }
    }
}
