//! The service layer: everything the API does, independent of HTTP.
//!
//! [`Service`] holds the store and the evaluation limits. Its methods are grouped by what they
//! act on: `access` (permission checks and the audit of denials), `environments` (the ESC
//! environment API, including open and decrypt), `definitions` (rewriting secrets in
//! definition text) and `admin` (organization administration).

mod access;
pub(crate) mod admin;
mod definitions;
pub(crate) mod environments;
pub(crate) mod issuers;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use tessera_lang::{Limits, Parsed};
use tessera_providers::Registry;
use tessera_store::environments::RevisionKey;
use tessera_store::Store;

use crate::exchange::keys::IssuerKeys;
use crate::oidc::Issuer;
use crate::ratelimit::TokenRateLimit;
use crate::throttle::AuthFailures;

/// Parsed revisions kept at most (each is a definition's syntax tree, secrets as ciphertext).
const PARSED_REVISIONS: u64 = 4_096;

/// What the handlers call. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Service {
    store: Store,
    limits: Limits,
    /// How long all provider calls of one open may take together.
    open_deadline: Duration,
    /// Failed authentications per source address.
    auth_failures: Arc<AuthFailures>,
    /// The OIDC issuer: signing keys, discovery, JWKS.
    issuer: Arc<Issuer>,
    /// The `fn::open` providers, handed only to evaluations under an Open grant.
    providers: Registry,
    /// The signing keys of the CI issuers organizations trust, for token exchange.
    exchange_keys: Arc<IssuerKeys>,
    /// Development mode: `http://127.0.0.1…` CI issuers may be trusted.
    dev: bool,
    /// Parsed definitions by revision and the name they were parsed under. Revisions are
    /// immutable and a [`RevisionKey`] is never reused, so entries never go stale and no
    /// replica needs telling. They hold ciphertext only, never a decrypted value.
    parsed: Cache<(RevisionKey, String), Arc<Parsed>>,
    /// The per-token request limit, when configured.
    rate_limit: Option<Arc<TokenRateLimit>>,
}

impl Service {
    pub(crate) fn new(store: Store, issuer: Arc<Issuer>, providers: Registry) -> Service {
        Service {
            store,
            limits: Limits::default(),
            open_deadline: Duration::from_secs(30),
            auth_failures: Arc::default(),
            issuer,
            providers,
            exchange_keys: Arc::new(IssuerKeys::new()),
            dev: false,
            parsed: Cache::new(PARSED_REVISIONS),
            rate_limit: None,
        }
    }

    /// In development mode (`--dev`).
    pub(crate) fn dev_mode(mut self, dev: bool) -> Service {
        self.dev = dev;
        self
    }

    /// Limits each token to `per_second` requests per second (`None`: no limit).
    pub(crate) fn with_rate_limit(mut self, per_second: Option<NonZeroU32>) -> Service {
        self.rate_limit = per_second.map(|r| Arc::new(TokenRateLimit::new(r)));
        self
    }

    pub(crate) fn rate_limit(&self) -> Option<&TokenRateLimit> {
        self.rate_limit.as_deref()
    }

    pub(crate) fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn exchange_keys(&self) -> &IssuerKeys {
        &self.exchange_keys
    }

    pub(crate) fn auth_failures(&self) -> &AuthFailures {
        &self.auth_failures
    }
}
