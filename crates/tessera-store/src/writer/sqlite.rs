//! The group-commit writer on a SQLite file: a thread of its own with a connection of its
//! own, through rusqlite.
//!
//! Every statement through sqlx's SQLite driver is a message to the connection's worker
//! thread and a wakeup back (~25 µs, more under load), and a statement text that varies
//! with the batch's size is prepared anew each time. The audit log's commit is on the path
//! of every open, so here one thread owns the transaction from `BEGIN IMMEDIATE` to
//! `COMMIT` and runs three cached prepared statements, one row at a time, without a hop.
//! Everything else, reads and the other writes, stays on the sqlx pool; SQLite's own
//! locking (`BEGIN IMMEDIATE` on both sides, a busy timeout) keeps them in order, so the
//! audit chain stays linear as with the pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use rusqlite::{params, params_from_iter, Connection, OpenFlags, TransactionBehavior};
use tokio::sync::mpsc;

use super::{answer, gather, Appended, Job, Stats, Write, MAX_BATCH, SESSION_COLUMNS};
use crate::audit::{self, Head};
use crate::StoreError;

/// The writer's statements, prepared once per connection (`prepare_cached`).
static INSERT_ENTRY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO audit_log ({}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        audit::COLUMNS
    )
});
static INSERT_SESSION: LazyLock<String> = LazyLock::new(|| {
    format!("INSERT INTO open_sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)")
});

/// Commits between two checkpoints run by the writer itself (see [`LocalWriter::run`]).
const CHECKPOINT_EVERY_COMMITS: u32 = 64;

/// The writer's connection, opened again after a failure left it unusable.
pub(super) struct LocalWriter {
    path: PathBuf,
    conn: Option<Connection>,
    commits: u32,
}

impl LocalWriter {
    /// Opens the writer's connection to the database file at `path` (already created and
    /// migrated by the pool).
    pub(super) fn open(path: &Path) -> Result<LocalWriter, StoreError> {
        let conn = connect(path)?;
        Ok(LocalWriter {
            path: path.to_owned(),
            conn: Some(conn),
            commits: 0,
        })
    }

    /// Takes batches from `rx` until told to stop or every sender is gone; blocks, so it
    /// runs on its own thread.
    pub(super) fn run(mut self, mut rx: mpsc::UnboundedReceiver<Job>, stats: Arc<Stats>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = rx.blocking_recv() {
            let stop = gather(first, &mut rx, &mut batch);
            if !batch.is_empty() {
                let committed = {
                    let writes: Vec<&Write> = batch.iter().map(|p| &p.write).collect();
                    self.commit(&writes)
                };
                answer(&mut batch, committed, &stats);
                self.checkpoint_now_and_then();
            }
            if let Some(ack) = stop {
                drop(self.conn.take());
                let _ = ack.send(());
                return;
            }
        }
    }

    /// Under sustained load the pool's background checkpoint never reaches the WAL's end
    /// (the writer appends while it copies), so the WAL never starts over and grows without
    /// bound (600 MB in 13 s of the open benchmark). Every [`CHECKPOINT_EVERY_COMMITS`]
    /// commits, after the batch was answered, the writer copies what is left itself, with
    /// nothing appended meanwhile; its next transaction then starts the WAL over. Little is
    /// left to copy, since the background checkpoint did most of it. A checkpoint that
    /// cannot run now (another is running) is simply skipped.
    fn checkpoint_now_and_then(&mut self) {
        self.commits += 1;
        if self.commits < CHECKPOINT_EVERY_COMMITS {
            return;
        }
        self.commits = 0;
        if let Some(conn) = &self.conn {
            let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        }
    }

    fn commit(&mut self, writes: &[&Write]) -> Result<Vec<i64>, StoreError> {
        let conn = match &mut self.conn {
            Some(c) => c,
            None => self.conn.insert(connect(&self.path)?),
        };
        let committed = commit(conn, writes);
        if committed.is_err() && !conn.is_autocommit() {
            // The transaction is still open (a failed COMMIT whose rollback failed too):
            // start over on a new connection rather than append inside it.
            if conn.execute_batch("ROLLBACK").is_err() {
                self.conn = None;
            }
        }
        committed
    }
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(failed("opening the audit writer's connection"))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(failed("configuring the audit writer's connection"))?;
    // The same settings as the pool's connections (they are per connection); the WAL
    // journal is a property of the file, set when the pool opened it. Checkpoints are the
    // pool's background task, never inside a commit.
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0;",
    )
    .map_err(failed("configuring the audit writer's connection"))?;
    Ok(conn)
}

fn failed(op: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::WriteFailed(format!("{op}: {e}"))
}

/// One transaction: the chain head, every entry and session of the batch, the new head.
/// Dropping the transaction on an error rolls it back.
fn commit(conn: &mut Connection, writes: &[&Write]) -> Result<Vec<i64>, StoreError> {
    let op = "appending audit entries and sessions";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(failed("beginning a group commit"))?;
    let mut head = tx
        .prepare_cached("SELECT last_seq, last_hash FROM audit_head WHERE id = 1")
        .and_then(|mut read| {
            read.query_row([], |r| {
                Ok(Head {
                    seq: r.get(0)?,
                    hash: r.get(1)?,
                })
            })
        })
        .map_err(failed("reading the audit chain's head"))?;
    let appended = Appended::chain(&mut head, writes);
    if !appended.entries.is_empty() {
        let mut insert = tx.prepare_cached(&INSERT_ENTRY).map_err(failed(op))?;
        for c in &appended.entries {
            insert
                .execute(params_from_iter(c.values()))
                .map_err(failed(op))?;
        }
        tx.prepare_cached("UPDATE audit_head SET last_seq = ?, last_hash = ? WHERE id = 1")
            .and_then(|mut update| update.execute(params![head.seq, head.hash]))
            .map_err(failed(op))?;
    }
    if !appended.sessions.is_empty() {
        let mut insert = tx.prepare_cached(&INSERT_SESSION).map_err(failed(op))?;
        for s in &appended.sessions {
            insert
                .execute(params_from_iter(s.values()))
                .map_err(failed(op))?;
        }
    }
    tx.commit().map_err(failed("committing a group commit"))?;
    Ok(appended.results)
}
