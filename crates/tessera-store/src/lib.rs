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
//! - *Caches never serve what a change has made stale* (see `cache`): what cannot change
//!   (organization ids, unwrapped data keys, sealed sessions) is kept as is; tokens, access
//!   facts and environment lookups are tagged with the change counter's value and served only
//!   at that value ([`Snapshot`]). Never token values or plaintext.
//! - *One server per SQLite database* ([`Store::lock_for_server`]), since its change counter
//!   lives in that server's memory; replicas share PostgreSQL.
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

pub use crate::cache::Snapshot;
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
    /// The SQLite database is held by another server process.
    #[error("{0}")]
    Locked(String),
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

/// How often the SQLite WAL is copied back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Copies the SQLite WAL back into the database every [`CHECKPOINT_EVERY`], without
/// blocking writers (`PASSIVE`), until the pool is closed. Committed data is durable in the
/// WAL either way; a checkpoint that fails is retried at the next tick.
async fn checkpoints(pool: sqlx::SqlitePool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        let _ = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await;
    }
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

/// Holds a SQLite database for one server process (see [`Store::lock_for_server`]); the
/// lock is released when dropped or when the process ends.
#[derive(Debug)]
pub struct ServerLock {
    _file: std::fs::File,
}

/// The handle to everything Tessera keeps. Cheap to clone; clones share the pool and keyring.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    pub(crate) keyring: Arc<RwLock<Keyring>>,
    pub(crate) writer: Arc<writer::GroupWriter>,
    pub(crate) caches: Arc<cache::Caches>,
    /// The database file, on SQLite.
    pub(crate) sqlite_file: Option<std::path::PathBuf>,
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
        let mut sqlite_file = None;
        let pool = if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::InvalidUrl(e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                // Checkpoints run in the background (`checkpoints`), not inside whichever
                // commit crosses the WAL's threshold: that commit is a whole group commit.
                .pragma("wal_autocheckpoint", "0");
            if !url.contains(":memory:") && !url.contains("mode=memory") {
                sqlite_file = Some(opts.get_filename().to_path_buf());
            }
            // A local file does not drop connections: no ping before each acquire (a round
            // trip to the connection's worker thread on every query and every commit).
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .test_before_acquire(false)
                .connect_with(opts)
                .await
                .map_err(|source| StoreError::Connect {
                    backend: "SQLite",
                    source,
                })?;
            Pool::S(pool, db::LocalChanges::default())
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
        if let Pool::S(p, _) = &pool {
            tokio::spawn(checkpoints(p.clone()));
        }
        let writer = writer::GroupWriter::start(pool.clone(), sqlite_file.as_deref())?;
        Ok(Store {
            writer: Arc::new(writer),
            pool,
            keyring: Arc::new(RwLock::new(keyring)),
            caches: Arc::new(cache::Caches::new()),
            sqlite_file,
        })
    }

    /// The change counter now: lookups made with it (the `…_at` methods) see every change
    /// committed before this call, on any replica. Read it once per request.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        self.pool.changes().await.map(Snapshot)
    }

    /// Claims a SQLite database for this process, for as long as the returned lock lives:
    /// a second server on the same file is refused, since each server trusts its caches
    /// as long as it has not changed anything itself. Several servers share PostgreSQL
    /// instead. `None` on PostgreSQL and for in-memory databases.
    pub fn lock_for_server(&self) -> Result<Option<ServerLock>, StoreError> {
        let Some(path) = &self.sqlite_file else {
            return Ok(None);
        };
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".server-lock");
        let lock_path = std::path::PathBuf::from(lock_path);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::Locked(format!("cannot open {}: {e}", lock_path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(ServerLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked(format!(
                "another Tessera server is using the SQLite database {}; \
                 run one server per SQLite file, or several replicas on PostgreSQL",
                path.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Locked(format!(
                "cannot lock {}: {e}",
                lock_path.display()
            ))),
        }
    }

    /// The backend this store runs on.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::S(..) => Backend::Sqlite,
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

    /// Stops the audit writer after what is queued, then closes the pool, waiting for
    /// connections to return.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await
    }

    /// The connection pool's size now, its idle connections and its maximum (for metrics).
    pub fn pool_stats(&self) -> PoolStats {
        match &self.pool {
            Pool::S(p, _) => PoolStats {
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
