//! A thin layer that runs one SQL text on either backend.
//!
//! Both SQLite and PostgreSQL accept `$1`-style placeholders through sqlx, so repositories
//! write each statement once; where the dialects differ the migrations differ, not the
//! queries. Values are bound through [`Val`], whose variants carry their SQL type even when
//! null (PostgreSQL needs it).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{PgPool, Postgres, Row as _, Sqlite, SqlitePool, Transaction};

use crate::StoreError;

/// A bound parameter.
#[derive(Debug, Clone)]
pub(crate) enum Val<'a> {
    I(Option<i64>),
    T(Option<&'a str>),
    B(Option<&'a [u8]>),
}

impl From<i64> for Val<'_> {
    fn from(v: i64) -> Self {
        Val::I(Some(v))
    }
}
impl From<Option<i64>> for Val<'_> {
    fn from(v: Option<i64>) -> Self {
        Val::I(v)
    }
}
impl<'a> From<&'a str> for Val<'a> {
    fn from(v: &'a str) -> Self {
        Val::T(Some(v))
    }
}
impl<'a> From<&'a String> for Val<'a> {
    fn from(v: &'a String) -> Self {
        Val::T(Some(v.as_str()))
    }
}
impl<'a> From<Option<&'a str>> for Val<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Val::T(v)
    }
}
impl<'a> From<&'a [u8]> for Val<'a> {
    fn from(v: &'a [u8]) -> Self {
        Val::B(Some(v))
    }
}
impl<'a> From<&'a Vec<u8>> for Val<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Val::B(Some(v.as_slice()))
    }
}
impl From<bool> for Val<'_> {
    fn from(v: bool) -> Self {
        Val::I(Some(v as i64))
    }
}

/// The same values bound through rusqlite (the SQLite group-commit writer).
impl rusqlite::ToSql for Val<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Val::I(v) => v.to_sql(),
            Val::T(v) => v.to_sql(),
            Val::B(v) => v.to_sql(),
        }
    }
}

/// Builds a parameter list: `args![a, b, c]`.
macro_rules! args {
    ($($v:expr),* $(,)?) => { &[$($crate::db::Val::from($v)),*][..] };
}
pub(crate) use args;

fn sqlite_query<'q>(
    sql: &'q str,
    args: &'q [Val<'q>],
) -> sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>> {
    let mut q = sqlx::query(sql);
    for a in args {
        q = match a {
            Val::I(v) => q.bind(*v),
            Val::T(v) => q.bind(*v),
            Val::B(v) => q.bind(*v),
        };
    }
    q
}

fn pg_query<'q>(
    sql: &'q str,
    args: &'q [Val<'q>],
) -> sqlx::query::Query<'q, Postgres, PgArguments> {
    let mut q = sqlx::query(sql);
    for a in args {
        q = match a {
            Val::I(v) => q.bind(*v),
            Val::T(v) => q.bind(*v),
            Val::B(v) => q.bind(*v),
        };
    }
    q
}

/// A result row from either backend.
pub(crate) enum Row {
    S(SqliteRow),
    P(PgRow),
}

fn decode_err(col: usize, e: sqlx::Error) -> StoreError {
    StoreError::Corrupt(format!("column {col}: {e}"))
}

impl Row {
    pub(crate) fn i64(&self, i: usize) -> Result<i64, StoreError> {
        match self {
            Row::S(r) => r.try_get::<i64, _>(i),
            Row::P(r) => r.try_get::<i64, _>(i),
        }
        .map_err(|e| decode_err(i, e))
    }
    pub(crate) fn opt_i64(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self {
            Row::S(r) => r.try_get::<Option<i64>, _>(i),
            Row::P(r) => r.try_get::<Option<i64>, _>(i),
        }
        .map_err(|e| decode_err(i, e))
    }
    pub(crate) fn text(&self, i: usize) -> Result<String, StoreError> {
        match self {
            Row::S(r) => r.try_get::<String, _>(i),
            Row::P(r) => r.try_get::<String, _>(i),
        }
        .map_err(|e| decode_err(i, e))
    }
    pub(crate) fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self {
            Row::S(r) => r.try_get::<Option<String>, _>(i),
            Row::P(r) => r.try_get::<Option<String>, _>(i),
        }
        .map_err(|e| decode_err(i, e))
    }
    pub(crate) fn bytes(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        match self {
            Row::S(r) => r.try_get::<Vec<u8>, _>(i),
            Row::P(r) => r.try_get::<Vec<u8>, _>(i),
        }
        .map_err(|e| decode_err(i, e))
    }
    pub(crate) fn flag(&self, i: usize) -> Result<bool, StoreError> {
        Ok(self.i64(i)? != 0)
    }
}

/// A connection pool on either backend.
///
/// A SQLite database belongs to one server process (see `Store::lock_for_server`), so its
/// change counter lives in that process: [`LocalChanges`]. PostgreSQL, shared by replicas,
/// keeps it in the database (`audit_head.changes`).
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    S(SqlitePool, LocalChanges),
    P(PgPool),
}

/// The change counter of a SQLite store: advanced after every committed change.
#[derive(Clone, Debug, Default)]
pub(crate) struct LocalChanges(Arc<AtomicI64>);

impl LocalChanges {
    pub(crate) fn current(&self) -> i64 {
        self.0.load(Ordering::Acquire)
    }

    fn advance(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// An open transaction on either backend. A SQLite change transaction carries the counter
/// it advances once committed.
pub(crate) enum Tx {
    S(Transaction<'static, Sqlite>, Option<LocalChanges>),
    P(Transaction<'static, Postgres>),
}

fn db(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Database { op, source }
}

impl Pool {
    /// Begins a change: a write transaction holding the store-wide write lock (on SQLite
    /// `BEGIN IMMEDIATE`, on PostgreSQL a row lock on the audit chain head) that advances the
    /// change counter when it commits. Every write appends to the audit chain, so writes are
    /// serialized anyway; taking the lock first avoids lock upgrades (SQLite `SQLITE_BUSY`)
    /// and deadlocks (PostgreSQL).
    ///
    /// *Invariant:* every statement that changes what a token, a permission or an
    /// environment lookup answers runs in a transaction begun here, so a cache entry tagged
    /// with the counter's value is current exactly while the counter has not moved.
    pub(crate) async fn begin_write(&self) -> Result<Tx, StoreError> {
        self.begin(true).await
    }

    /// Begins a write transaction that only appends (audit entries, open sessions): the
    /// same lock, but the change counter stays where it is, so appends invalidate nothing.
    pub(crate) async fn begin_append(&self) -> Result<Tx, StoreError> {
        self.begin(false).await
    }

    /// Begins a read-only transaction whose reads all see one snapshot, whatever commits
    /// meanwhile (SQLite: a deferred transaction, whose first read fixes the snapshot;
    /// PostgreSQL: repeatable read).
    pub(crate) async fn begin_snapshot(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Pool::S(p, _) => Tx::S(
                p.begin_with("BEGIN DEFERRED")
                    .await
                    .map_err(db("beginning a read transaction"))?,
                None,
            ),
            Pool::P(p) => Tx::P(
                p.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await
                    .map_err(db("beginning a read transaction"))?,
            ),
        })
    }

    async fn begin(&self, change: bool) -> Result<Tx, StoreError> {
        let mut tx = match self {
            Pool::S(p, changes) => Tx::S(
                p.begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(db("beginning a transaction"))?,
                change.then(|| changes.clone()),
            ),
            Pool::P(p) => Tx::P(p.begin().await.map_err(db("beginning a transaction"))?),
        };
        if let Tx::P(_) = tx {
            // The counter's update takes the same row lock a plain `FOR UPDATE` would.
            let lock = if change {
                "UPDATE audit_head SET changes = changes + 1 WHERE id = 1"
            } else {
                "SELECT 1 FROM audit_head WHERE id = 1 FOR UPDATE"
            };
            tx.execute(lock, args![], "locking the audit chain").await?;
        }
        Ok(tx)
    }

    /// The change counter's value now (see [`Pool::begin_write`]).
    pub(crate) async fn changes(&self) -> Result<i64, StoreError> {
        match self {
            Pool::S(_, changes) => Ok(changes.current()),
            Pool::P(p) => sqlx::query_scalar("SELECT changes FROM audit_head WHERE id = 1")
                .fetch_one(p)
                .await
                .map_err(db("reading the change counter")),
        }
    }

    pub(crate) async fn execute(
        &self,
        sql: &str,
        args: &[Val<'_>],
        op: &'static str,
    ) -> Result<u64, StoreError> {
        match self {
            Pool::S(p, _) => sqlite_query(sql, args)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
            Pool::P(p) => pg_query(sql, args)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
        }
        .map_err(db(op))
    }

    pub(crate) async fn fetch_all(
        &self,
        sql: &str,
        args: &[Val<'_>],
        op: &'static str,
    ) -> Result<Vec<Row>, StoreError> {
        match self {
            Pool::S(p, _) => sqlite_query(sql, args)
                .fetch_all(p)
                .await
                .map(|v| v.into_iter().map(Row::S).collect()),
            Pool::P(p) => pg_query(sql, args)
                .fetch_all(p)
                .await
                .map(|v| v.into_iter().map(Row::P).collect()),
        }
        .map_err(db(op))
    }

    pub(crate) async fn fetch_optional(
        &self,
        sql: &str,
        args: &[Val<'_>],
        op: &'static str,
    ) -> Result<Option<Row>, StoreError> {
        match self {
            Pool::S(p, _) => sqlite_query(sql, args)
                .fetch_optional(p)
                .await
                .map(|v| v.map(Row::S)),
            Pool::P(p) => pg_query(sql, args)
                .fetch_optional(p)
                .await
                .map(|v| v.map(Row::P)),
        }
        .map_err(db(op))
    }

    pub(crate) async fn close(&self) {
        match self {
            Pool::S(p, _) => p.close().await,
            Pool::P(p) => p.close().await,
        }
    }
}

impl Tx {
    pub(crate) async fn execute(
        &mut self,
        sql: &str,
        args: &[Val<'_>],
        op: &'static str,
    ) -> Result<u64, StoreError> {
        match self {
            Tx::S(t, _) => sqlite_query(sql, args)
                .execute(&mut **t)
                .await
                .map(|r| r.rows_affected()),
            Tx::P(t) => pg_query(sql, args)
                .execute(&mut **t)
                .await
                .map(|r| r.rows_affected()),
        }
        .map_err(db(op))
    }

    pub(crate) async fn fetch_all(
        &mut self,
        sql: &str,
        args: &[Val<'_>],
        op: &'static str,
    ) -> Result<Vec<Row>, StoreError> {
        match self {
            Tx::S(t, _) => sqlite_query(sql, args)
                .fetch_all(&mut **t)
                .await
                .map(|v| v.into_iter().map(Row::S).collect()),
            Tx::P(t) => pg_query(sql, args)
                .fetch_all(&mut **t)
                .await
                .map(|v| v.into_iter().map(Row::P).collect()),
        }
        .map_err(db(op))
    }

    pub(crate) async fn fetch_optional(
        &mut self,
        sql: &str,
        args: &[Val<'_>],
        op: &'static str,
    ) -> Result<Option<Row>, StoreError> {
        match self {
            Tx::S(t, _) => sqlite_query(sql, args)
                .fetch_optional(&mut **t)
                .await
                .map(|v| v.map(Row::S)),
            Tx::P(t) => pg_query(sql, args)
                .fetch_optional(&mut **t)
                .await
                .map(|v| v.map(Row::P)),
        }
        .map_err(db(op))
    }

    pub(crate) async fn fetch_one(
        &mut self,
        sql: &str,
        args: &[Val<'_>],
        op: &'static str,
    ) -> Result<Row, StoreError> {
        self.fetch_optional(sql, args, op)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("no row while {op}")))
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::S(t, changes) => {
                let committed = t.commit().await;
                // Even a failed commit may have reached the disk: advancing is always safe.
                if let Some(changes) = changes {
                    changes.advance();
                }
                committed.map_err(db("committing"))
            }
            Tx::P(t) => t.commit().await.map_err(db("committing")),
        }
    }
}

/// Rows per multi-row `INSERT` of a [`Batch`]: at a dozen parameters a row, far below both
/// backends' limits.
pub(crate) const ROWS_PER_INSERT: usize = 256;

/// Statements run in order inside one transaction. On SQLite they go to the connection's
/// worker thread as one multi-statement text, in one round trip; PostgreSQL's protocol
/// takes one statement at a time.
///
/// Builders take each statement's placeholders from [`Batch::param`] and
/// [`Batch::params`], in the order of its arguments, then [`Batch::push`] it. SQLite gets
/// anonymous `?`s, bound in order: with `$N` it looks every name up among the names parsed
/// so far, quadratic in a batch's hundreds of parameters (it was 6% of a loaded server's
/// CPU). PostgreSQL gets `$N`, numbered within the statement.
pub(crate) struct Batch<'a> {
    joined: bool,
    statements: Vec<(String, Vec<Val<'a>>)>,
    bound: usize,
    /// Placeholders handed out for the statement being built.
    pending: usize,
}

impl<'a> Batch<'a> {
    /// An empty batch for `tx`'s backend.
    pub(crate) fn for_tx(tx: &Tx) -> Batch<'a> {
        Batch {
            joined: matches!(tx, Tx::S(..)),
            statements: Vec::new(),
            bound: 0,
            pending: 0,
        }
    }

    /// The placeholder of the statement's next argument.
    pub(crate) fn param(&mut self) -> String {
        self.pending += 1;
        if self.joined {
            "?".to_owned()
        } else {
            format!("${}", self.pending)
        }
    }

    /// `(p, …)`: the placeholders of the statement's next `count` arguments.
    pub(crate) fn params(&mut self, count: usize) -> String {
        let list: Vec<String> = (0..count).map(|_| self.param()).collect();
        format!("({})", list.join(", "))
    }

    /// Adds `INSERT INTO {into} VALUES …` statements for `rows`, [`ROWS_PER_INSERT`] rows
    /// each; `into` is the table and its column list, `(…)`, in the rows' order.
    pub(crate) fn push_inserts<const N: usize>(
        &mut self,
        into: &str,
        rows: impl IntoIterator<Item = [Val<'a>; N]>,
    ) {
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let mut sql = format!("INSERT INTO {into} VALUES ");
            let mut args = Vec::new();
            for (i, row) in rows.by_ref().take(ROWS_PER_INSERT).enumerate() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&self.params(N));
                args.extend(row);
            }
            self.push(sql, args);
        }
    }

    /// Adds a statement whose placeholders came from this batch, one per argument.
    pub(crate) fn push(&mut self, sql: String, args: Vec<Val<'a>>) {
        debug_assert_eq!(self.pending, args.len(), "one placeholder per argument");
        self.pending = 0;
        self.bound += args.len();
        self.statements.push((sql, args));
    }

    /// One text and its arguments, for a joined batch.
    fn into_text(self) -> (String, Vec<Val<'a>>) {
        let mut sql = String::new();
        let mut args = Vec::with_capacity(self.bound);
        for (text, a) in self.statements {
            sql.push_str(&text);
            sql.push_str(";\n");
            args.extend(a);
        }
        (sql, args)
    }

    /// Runs every statement in `tx`.
    pub(crate) async fn run(self, tx: &mut Tx, op: &'static str) -> Result<(), StoreError> {
        if self.statements.is_empty() {
            return Ok(());
        }
        if self.joined {
            let (sql, args) = self.into_text();
            tx.execute(&sql, &args, op).await?;
        } else {
            for (sql, args) in &self.statements {
                tx.execute(sql, args, op).await?;
            }
        }
        Ok(())
    }
}

/// Whether an error is a unique-constraint violation (a duplicate name).
pub(crate) fn is_unique_violation(e: &StoreError) -> bool {
    match e {
        StoreError::Database {
            source: sqlx::Error::Database(d),
            ..
        } => d.kind() == sqlx::error::ErrorKind::UniqueViolation,
        _ => false,
    }
}

/// Statements that run the same on a pool (autocommit) or inside a transaction, so a
/// lookup helper serves both reads and writes.
pub(crate) trait Conn: Send {
    fn fetch_optional(
        &mut self,
        sql: &str,
        args: &[Val<'_>],
        op: &'static str,
    ) -> impl std::future::Future<Output = Result<Option<Row>, StoreError>> + Send;
    fn fetch_all(
        &mut self,
        sql: &str,
        args: &[Val<'_>],
        op: &'static str,
    ) -> impl std::future::Future<Output = Result<Vec<Row>, StoreError>> + Send;
}

impl Conn for &Pool {
    async fn fetch_optional(
        &mut self,
        sql: &str,
        args: &[Val<'_>],
        op: &'static str,
    ) -> Result<Option<Row>, StoreError> {
        Pool::fetch_optional(self, sql, args, op).await
    }
    async fn fetch_all(
        &mut self,
        sql: &str,
        args: &[Val<'_>],
        op: &'static str,
    ) -> Result<Vec<Row>, StoreError> {
        Pool::fetch_all(self, sql, args, op).await
    }
}

impl Conn for Tx {
    async fn fetch_optional(
        &mut self,
        sql: &str,
        args: &[Val<'_>],
        op: &'static str,
    ) -> Result<Option<Row>, StoreError> {
        Tx::fetch_optional(self, sql, args, op).await
    }
    async fn fetch_all(
        &mut self,
        sql: &str,
        args: &[Val<'_>],
        op: &'static str,
    ) -> Result<Vec<Row>, StoreError> {
        Tx::fetch_all(self, sql, args, op).await
    }
}
