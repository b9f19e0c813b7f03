//! Everything Tessera keeps, on SQLite (the embedded default) or PostgreSQL, through sqlx.
//!
//! [`Store::connect`] opens either backend from a URL, runs the migrations of that backend
//! (`migrations/sqlite`, `migrations/postgres`: versioned, applied at start-up, upgrading an
//! existing database in place) and holds the master [`Keyring`]. One [`Store`] serves both
//! backends: each statement is written once (see `db`), and the same test suite runs on both.
//!
//! Repositories are groups of `Store` methods, one module per thing kept:
//! [`orgs`] (organizations and their settings), [`members`] (users and roles in an
//! organization), [`teams`] (teams, membership, environment grants), [`roles`] (custom roles
//! and permission sets), [`tokens`] (access tokens, stored as SHA-256 hashes only),
//! [`environments`] (environments, immutable revisions, revision tags), [`sessions`] (open
//! sessions, the evaluated result sealed), [`oidc`] (signing keys, trusted issuers),
//! [`keys`] (per-organization data keys, secret encryption, key rotation), [`audit`] (the
//! hash-chained, append-only audit log) and [`access`] (effective permissions and the
//! [`access::OpenGrant`] capability that every decryption takes).
//!
//! Invariants enforced here:
//! - *Every write is audited in its own transaction.* Each mutating method takes an
//!   [`audit::AuditContext`] and appends its audit entry in the transaction that changes the
//!   data; reads that need auditing (opens, decrypts) append before returning. If the append
//!   fails, the call fails.
//! - *Writes are serialized.* A write transaction starts by taking the audit chain lock
//!   (SQLite `BEGIN IMMEDIATE`, a PostgreSQL row lock on `audit_head`), which keeps the hash
//!   chain linear and makes the revision conflict check exact.
//! - *Revisions are immutable*: no method updates a revision's text; retracting only sets a flag.
//! - *No plaintext secret or token rests in the database*: definitions arrive with secrets
//!   already sealed ([`Store::encrypt_secret`]), tokens are stored as hashes, sessions and
//!   signing keys are sealed with the organization's data key.
//! - *Decryption needs an [`access::OpenGrant`]*, which only [`Store::authorize_open`] mints.
//! - *Caches hold only what cannot change or is harmless when briefly stale* (see `cache`):
//!   organization ids, unwrapped data keys by id. Never tokens, permissions or plaintext.
#![warn(missing_docs)]

pub mod access;
pub mod audit;
mod cache;
mod db;
pub mod environments;
pub mod keys;
pub mod members;
mod migrate;
pub mod oidc;
pub mod orgs;
pub mod roles;
pub mod sessions;
pub mod teams;
pub mod tokens;
mod writer;

use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
pub use tessera_crypto::{Keyring, MasterKey, SecretBytes, SecretString};
pub use tessera_types::{OrgName, Permission, QualifiedEnv};

use crate::db::Pool;

/// Why a store operation failed. Messages name the organization and environment concerned
/// and never contain a secret or a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database URL is neither `sqlite://…` nor `postgres://…`, or does not parse.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The database could not be reached or opened.
    #[error("cannot connect to the {backend} database: {source}")]
    Connect {
        /// `SQLite` or `PostgreSQL`.
        backend: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// Applying the migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A statement failed.
    #[error("database error while {op}: {source}")]
    Database {
        /// What the store was doing.
        op: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A thing with that name already exists.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// Another save won: the caller edited `base` but the environment is now at `current`.
    #[error("environment {org}/{env} was updated concurrently: the update is based on revision {base} but the latest revision is {current}")]
    Conflict {
        /// The organization.
        org: String,
        /// The environment, `project/env`.
        env: String,
        /// The revision the caller edited.
        base: u64,
        /// The latest revision now.
        current: u64,
    },
    /// The environment has deletion protection on.
    #[error("environment {org}/{env} has deletion protection enabled")]
    DeletionProtected {
        /// The organization.
        org: String,
        /// The environment, `project/env`.
        env: String,
    },
    /// A request the store refuses, e.g. moving the implicit `latest` tag.
    #[error("{0}")]
    Invalid(String),
    /// Encryption or decryption failed.
    #[error("{context}: {source}")]
    Crypto {
        /// What was being sealed or opened, and where.
        context: String,
        /// The cause.
        source: tessera_crypto::CryptoError,
    },
    /// The decryption was asked for an environment the [`access::OpenGrant`] does not cover.
    #[error("not authorized to open {org}/{env}: the open grant does not cover it")]
    NotGranted {
        /// The organization.
        org: String,
        /// The environment.
        env: String,
    },
    /// A group-committed write (an audit entry, an open session) was not committed: the
    /// batch it was in failed, or the writer stopped. Nothing of the batch was kept.
    #[error("the audit log could not be written: {0}")]
    WriteFailed(String),
    /// Data in the database does not have the shape this build expects.
    #[error("unexpected data in the database: {0}")]
    Corrupt(String),
}

/// Unix time in seconds, as every time column holds.
pub type UnixTime = i64;

pub(crate) fn now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A random identifier: 16 random bytes in hex.
pub(crate) fn new_id() -> Result<String, StoreError> {
    tessera_crypto::random_bytes(16)
        .map(hex::encode)
        .map_err(|source| StoreError::Crypto {
            context: "generating an identifier".into(),
            source,
        })
}

/// Which database a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// SQLite, embedded.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A snapshot of the connection pool, from [`Store::pool_stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections, busy or idle.
    pub size: u32,
    /// Idle connections.
    pub idle: usize,
    /// The most connections the pool opens.
    pub max: u32,
}

/// The handle to everything Tessera keeps. Cheap to clone; clones share the pool and keyring.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    pub(crate) keyring: Arc<RwLock<Keyring>>,
    pub(crate) writer: Arc<writer::GroupWriter>,
    pub(crate) caches: Arc<cache::Caches>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the database at `url` and applies pending migrations.
    ///
    /// - `sqlite://PATH` (or `sqlite:PATH`): the file is created if missing, in WAL mode with
    ///   foreign keys on, `synchronous=FULL` and a 10 s busy timeout.
    /// - `postgres://…` or `postgresql://…`.
    ///
    /// `keyring` holds the master key that wraps the organizations' data keys (and during a
    /// rotation, the previous one).
    pub async fn connect(url: &str, keyring: Keyring) -> Result<Store, StoreError> {
        let pool = if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::InvalidUrl(e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(opts)
                .await
                .map_err(|source| StoreError::Connect {
                    backend: "SQLite",
                    source,
                })?;
            Pool::S(pool)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts)
                .await
                .map_err(|source| StoreError::Connect {
                    backend: "PostgreSQL",
                    source,
                })?;
            Pool::P(pool)
        } else {
            return Err(StoreError::InvalidUrl(
                "expected sqlite://PATH or postgres://…".to_owned(),
            ));
        };
        migrate::run(&pool).await?;
        Ok(Store {
            writer: Arc::new(writer::GroupWriter::start(pool.clone())),
            pool,
            keyring: Arc::new(RwLock::new(keyring)),
            caches: Arc::new(cache::Caches::new()),
        })
    }

    /// The backend this store runs on.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::S(_) => Backend::Sqlite,
            Pool::P(_) => Backend::Postgres,
        }
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.pool
            .fetch_optional("SELECT 1", db::args![], "pinging the database")
            .await
            .map(|_| ())
    }

    /// Closes the pool, waiting for connections to return.
    pub async fn close(&self) {
        self.pool.close().await
    }

    /// The connection pool's size now, its idle connections and its maximum (for metrics).
    pub fn pool_stats(&self) -> PoolStats {
        match &self.pool {
            Pool::S(p) => PoolStats {
                size: p.size(),
                idle: p.num_idle(),
                max: p.options().get_max_connections(),
            },
            Pool::P(p) => PoolStats {
                size: p.size(),
                idle: p.num_idle(),
                max: p.options().get_max_connections(),
            },
        }
    }

    /// Whether the database holds no organization yet (for bootstrap).
    pub async fn is_empty(&self) -> Result<bool, StoreError> {
        let row = self
            .pool
            .fetch_optional(
                "SELECT COUNT(*) FROM orgs",
                db::args![],
                "counting organizations",
            )
            .await?;
        Ok(match row {
            Some(r) => r.i64(0)? == 0,
            None => true,
        })
    }
}
