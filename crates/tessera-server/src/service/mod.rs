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

use std::sync::Arc;
use std::time::Duration;

use tessera_lang::Limits;
use tessera_providers::Registry;
use tessera_store::Store;

use crate::exchange::keys::IssuerKeys;
use crate::oidc::Issuer;
use crate::throttle::AuthFailures;

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
        }
    }

    /// In development mode (`--dev`).
    pub(crate) fn dev_mode(mut self, dev: bool) -> Service {
        self.dev = dev;
        self
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
