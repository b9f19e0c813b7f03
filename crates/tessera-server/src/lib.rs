//! The Tessera server: the Pulumi ESC compatible REST API, access control where Open is the
//! sensitive permission, open sessions and the audit trail, on actix-web.
//!
//! Startup happens in one place: [`RawConfig`] (flags over `TESSERA_*` variables over the
//! TOML configuration file, as given, with each value's [`Source`]) is validated once into a
//! [`Config`], [`build`] connects the store, bootstraps an empty database and binds the
//! listeners, and [`Server::run`] serves until stopped ([`Server::run_until_signal`]: also
//! until SIGTERM/SIGINT, finishing requests in flight).
//!
//! Operations: `telemetry` installs the log subscriber (JSON or text) and the request
//! middleware (request ids, one log line per request, request metrics); [`metrics`] holds the
//! Prometheus metric names, the recording functions and `/metrics`; `tls` builds the rustls
//! configuration from `tls_cert`/`tls_key`.
//!
//! Layers, outside in:
//! - `routes` — actix handlers. They only parse requests (names become `tessera_types`
//!   newtypes at this edge) and format responses (`wire`); they hold no logic. Each API
//!   module lists its routes in one `ENDPOINTS` table (method, path, access, handler) that both
//!   registers them and generates the OpenAPI document served at `/api/openapi.json`.
//! - `auth` — the [`Caller`] extractor: one token lookup per request, no cache, so a revoked
//!   or expired token fails on the very next request, on every replica; `throttle` answers
//!   429 to an address after too many refused tokens; `ratelimit` answers 429 to a token
//!   over `TESSERA_RATE_LIMIT_PER_TOKEN` (off by default).
//! - `service` — the work: permission checks, evaluation, sessions, administration.
//! - `open` — the capability-holding [`tessera_lang::Decrypter`] and
//!   [`tessera_lang::Providers`] implementations (the latter delegating to the
//!   `tessera_providers::Registry` built once at startup).
//! - `oidc` — Tessera as an OIDC issuer: signing keys, discovery, JWKS, rotation with overlap,
//!   and the `tessera_providers::IdTokenIssuer` the registry mints tokens with.
//! - `error` — [`ApiError`], the one error type, and the JSON rewriting of actix's own
//!   rejections, so every error a client sees is `{"code","message"}`.
//!
//! # Where the Open invariant is enforced
//! *Invariant:* no plaintext secret leaves the store and no provider is called unless an Open
//! check passed for the caller, the environment, and every environment it imports.
//! - The proof is [`tessera_store::access::OpenGrant`]. It has no public constructor; only
//!   the store's Open checks mint it (`Store::authorize_open_at` and its wrappers, and
//!   `Store::authorize_session_open_at`), after checking Open on every environment named.
//!   They write the audit entry first, except for an open's session: there the entry waits
//!   in a `PendingOpen` and is committed with the session (or alone if the open fails), and
//!   nothing derived from the grant leaves before that commit (a failed audit write means
//!   no answer but 503).
//! - Everything that reveals takes the grant: `Store::decrypt_secret`, `Store::create_session`,
//!   `Store::read_session`. In this crate, `open::GrantedDecrypter` and
//!   `open::GrantedProviders` can only be built from a `&OpenGrant`; `service::environments`
//!   asks for the grant in exactly four places: `open` (over the whole import closure loaded
//!   by `tessera_lang::load_closure`, then evaluates with those two; an open that calls a
//!   provider commits its audit entry before building `GrantedProviders`, one that calls
//!   none evaluates with `open::NoProviders`, which refuses every call), `read_session`,
//!   `decrypt` and `clone` (which reveal through `Service::reveal_secrets(&grant, …)`,
//!   itself calling `Store::decrypt_secret`). Each kind of use writes its own audit event
//!   (`environment.open`, `environment.session.read`, `environment.decrypt`,
//!   `environment.clone`), allowed or denied. A session read by the principal that opened
//!   the session does not wait for its entry's commit: the open's committed entry already
//!   records the disclosure (`Store::read_session_recorded`).
//! - `GET` of a definition and `check` go through `tessera_lang::check`, which has no
//!   decrypter and no providers: secrets stay ciphertext and provider outputs stay unknown.
#![warn(missing_docs)]

mod auth;
mod config;
mod error;
mod exchange;
pub mod metrics;
mod oidc;
mod open;
mod ratelimit;
mod routes;
mod service;
mod startup;
mod telemetry;
mod throttle;
mod tls;
pub mod wire;

pub use auth::Caller;

/// File names in the data directory.
pub mod config_files {
    pub use crate::config::MASTER_KEY_FILE;
}
pub use config::{
    variable, Bootstrap, Config, ConfigError, Flags, LogFormat, MasterKeyOrigin, RawConfig, Source,
    Tls,
};
pub use error::ApiError;
pub use startup::{block_on, build, Server, StartupError};
pub use telemetry::{init_logging, init_tracing};
