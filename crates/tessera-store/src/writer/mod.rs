//! Group commit: audit entries (and the open sessions that go with opens) written by one
//! task, many per transaction.
//!
//! Every open, session read and decrypt appends an audit entry that must be durable before
//! the caller is answered (fail closed); the one exception is a session read by the
//! principal whose audited open made the session ([`GroupWriter::write_deferred`]). One transaction per entry costs one fsync per
//! request and serializes every request on the audit chain lock. Instead, callers hand their
//! write to [`GroupWriter`] and wait; a single task takes everything queued, appends it in
//! order inside one write transaction, commits once, and only then answers every waiter.
//! While one batch commits, the next one gathers, so under load N concurrent opens cost far
//! fewer than N commits, and alone a request waits for nothing but its own commit.
//!
//! *Invariant (fail closed):* a waiter is answered `Ok` only after the commit that contains
//! its write returned; if anything in a batch fails, the transaction is rolled back and
//! every waiter of that batch gets the error. *Invariant (chain):* the task is the only
//! appender besides other write transactions, and it appends under the same write lock
//! ([`crate::db::Pool::begin_write`]), so the hash chain stays linear.

mod sqlite;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::audit::{self, AuditContext, AuditRecord};
use crate::db::{Batch, Pool, Val};
use crate::StoreError;

/// The most writes one transaction takes; more wait for the next batch.
const MAX_BATCH: usize = 512;

/// A row of `open_sessions`, already sealed.
#[derive(Debug)]
pub(crate) struct SessionRow {
    pub(crate) id: String,
    pub(crate) org_id: i64,
    pub(crate) env_id: i64,
    pub(crate) principal: String,
    pub(crate) sealed: Vec<u8>,
    pub(crate) created_at: i64,
    pub(crate) expires_at: i64,
}

impl SessionRow {
    /// The row's values, in the order of [`SESSION_COLUMNS`].
    fn values(&self) -> [Val<'_>; 7] {
        [
            Val::from(&self.id),
            Val::from(self.org_id),
            Val::from(self.env_id),
            Val::from(&self.principal),
            Val::from(&self.sealed),
            Val::from(self.created_at),
            Val::from(self.expires_at),
        ]
    }
}

/// The columns of `open_sessions` a [`SessionRow`] fills.
const SESSION_COLUMNS: &str = "id, org_id, env_id, principal, sealed, created_at, expires_at";

/// One write a caller waits for.
#[derive(Debug)]
pub(crate) enum Write {
    /// An audit entry; answered with its `seq`.
    Audit(AuditContext, AuditRecord),
    /// An open session; answered with 0.
    Session(SessionRow),
    /// An open's audit entry and the session it created, together; answered with the
    /// entry's `seq`.
    Open(AuditContext, AuditRecord, SessionRow),
}

/// What a committed write answers: its `seq` (0 for a session) and the write itself.
type Done = Result<(i64, Write), StoreError>;

/// What the writer's queue carries.
// `Stop` is sent once per store; boxing every write instead would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Job {
    Write(Pending),
    /// Commit what is queued, close, and acknowledge ([`GroupWriter::close`]).
    Stop(oneshot::Sender<()>),
}

struct Pending {
    write: Write,
    /// `None` for a write nobody waits for ([`GroupWriter::write_deferred`]).
    done: Option<oneshot::Sender<Done>>,
}

/// The handle callers use; the task behind it owns the batching.
#[derive(Debug)]
pub(crate) struct GroupWriter {
    queue: mpsc::UnboundedSender<Job>,
    stats: Arc<Stats>,
}

/// Counters of what the writer did (for metrics and tests).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) batches: AtomicU64,
    pub(crate) writes: AtomicU64,
    /// Deferred writes whose batch failed.
    pub(crate) lost: AtomicU64,
}

impl GroupWriter {
    /// Starts the writer: on a SQLite file, a thread with its own connection to `file`
    /// (see [`sqlite`]); otherwise a task on the current tokio runtime, committing through
    /// `pool`.
    pub(crate) fn start(pool: Pool, file: Option<&Path>) -> Result<GroupWriter, StoreError> {
        let (queue, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Stats::default());
        spawn(pool, file, rx, stats.clone())?;
        Ok(GroupWriter { queue, stats })
    }

    /// Queues `write` and waits until the batch holding it is committed (or failed).
    pub(crate) async fn write(&self, write: Write) -> Result<i64, StoreError> {
        self.submit(write).await.map(|(seq, _)| seq)
    }

    /// Queues a write holding a session and waits for its commit; hands the row back.
    pub(crate) async fn write_session(&self, write: Write) -> Result<SessionRow, StoreError> {
        match self.submit(write).await? {
            (_, Write::Session(row) | Write::Open(_, _, row)) => Ok(row),
            (_, Write::Audit(..)) => Err(StoreError::WriteFailed(
                "the writer answered a session with an audit entry".into(),
            )),
        }
    }

    /// Queues `write` for the next batch without waiting for its commit: for an entry whose
    /// action was already recorded durably by an earlier entry (see
    /// [`crate::Store::read_session_recorded`]). Fails only when the writer has stopped; a
    /// failed commit of the batch is logged.
    pub(crate) fn write_deferred(&self, write: Write) -> Result<(), StoreError> {
        self.queue
            .send(Job::Write(Pending { write, done: None }))
            .map_err(|_| stopped())
    }

    async fn submit(&self, write: Write) -> Done {
        let (done, answer) = oneshot::channel();
        self.queue
            .send(Job::Write(Pending {
                write,
                done: Some(done),
            }))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Commits what is queued and stops; on SQLite, closes the writer's connection, so that
    /// closing the pool afterwards checkpoints the WAL. Later writes fail.
    pub(crate) async fn close(&self) {
        let (ack, closed) = oneshot::channel();
        if self.queue.send(Job::Stop(ack)).is_ok() {
            let _ = closed.await;
        }
    }

    pub(crate) fn stats(&self) -> &Stats {
        &self.stats
    }
}

fn stopped() -> StoreError {
    StoreError::WriteFailed("the audit writer has stopped".into())
}

fn spawn(
    pool: Pool,
    file: Option<&Path>,
    rx: mpsc::UnboundedReceiver<Job>,
    stats: Arc<Stats>,
) -> Result<(), StoreError> {
    match file {
        Some(path) => {
            let writer = sqlite::LocalWriter::open(path)?;
            std::thread::Builder::new()
                .name("audit-writer".into())
                .spawn(move || writer.run(rx, stats))
                .map_err(|e| StoreError::WriteFailed(format!("starting the audit writer: {e}")))?;
        }
        None => {
            tokio::spawn(run(pool, rx, stats));
        }
    }
    Ok(())
}

async fn run(pool: Pool, mut rx: mpsc::UnboundedReceiver<Job>, stats: Arc<Stats>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        let stop = gather(first, &mut rx, &mut batch);
        if !batch.is_empty() {
            let committed = {
                let writes: Vec<&Write> = batch.iter().map(|p| &p.write).collect();
                commit_in_tx(&pool, &writes).await
            };
            answer(&mut batch, committed, &stats);
        }
        if let Some(ack) = stop {
            let _ = ack.send(());
            return;
        }
    }
}

/// Fills `batch` with `first` and whatever else is queued, up to [`MAX_BATCH`] writes;
/// returns the acknowledgement of a stop met on the way (nothing after it is taken).
fn gather(
    first: Job,
    rx: &mut mpsc::UnboundedReceiver<Job>,
    batch: &mut Vec<Pending>,
) -> Option<oneshot::Sender<()>> {
    let mut next = Some(first);
    while let Some(job) = next {
        match job {
            Job::Write(p) => batch.push(p),
            Job::Stop(ack) => return Some(ack),
        }
        next = if batch.len() < MAX_BATCH {
            rx.try_recv().ok()
        } else {
            None
        };
    }
    None
}

/// Answers every write of a batch: `Ok` only when `committed` is (fail closed).
fn answer(batch: &mut Vec<Pending>, committed: Result<Vec<i64>, StoreError>, stats: &Stats) {
    match committed {
        Ok(results) => {
            stats.batches.fetch_add(1, Ordering::Relaxed);
            stats
                .writes
                .fetch_add(results.len() as u64, Ordering::Relaxed);
            for (p, seq) in batch.drain(..).zip(results) {
                if let Some(done) = p.done {
                    let _ = done.send(Ok((seq, p.write)));
                }
            }
        }
        Err(e) => {
            // Audit records and their errors hold no values: safe to log.
            let message = e.to_string();
            let deferred = batch.iter().filter(|p| p.done.is_none()).count();
            if deferred > 0 {
                stats.lost.fetch_add(deferred as u64, Ordering::Relaxed);
                tracing::error!(error = %message, entries = deferred, "deferred audit entries were not written");
            }
            for p in batch.drain(..) {
                if let Some(done) = p.done {
                    let _ = done.send(Err(StoreError::WriteFailed(message.clone())));
                }
            }
        }
    }
}

/// Writes the whole batch in one transaction through the pool (PostgreSQL, in-memory
/// SQLite), many rows per statement; either all of it is committed or none. Returns each
/// write's `seq` (0 for sessions), in order.
async fn commit_in_tx(pool: &Pool, writes: &[&Write]) -> Result<Vec<i64>, StoreError> {
    let mut tx = pool.begin_append().await?;
    let mut head = audit::read_head(&mut tx).await?;
    let appended = Appended::chain(&mut head, writes);
    let mut batch = Batch::for_tx(&tx);
    appended.push_to(&mut batch, &head);
    batch
        .run(&mut tx, "appending audit entries and sessions")
        .await?;
    tx.commit().await?;
    Ok(appended.results)
}

/// A batch's writes chained after the head: audit entries, sessions, and each write's
/// answer.
struct Appended<'w> {
    results: Vec<i64>,
    entries: Vec<audit::Chained>,
    sessions: Vec<&'w SessionRow>,
}

impl<'w> Appended<'w> {
    fn chain(head: &mut audit::Head, writes: &[&'w Write]) -> Appended<'w> {
        let mut appended = Appended {
            results: Vec::with_capacity(writes.len()),
            entries: Vec::new(),
            sessions: Vec::new(),
        };
        for w in writes {
            match w {
                Write::Audit(ctx, rec) => {
                    let chained = audit::chain(head, ctx, rec);
                    appended.results.push(chained.seq());
                    appended.entries.push(chained);
                }
                Write::Session(s) => {
                    appended.results.push(0);
                    appended.sessions.push(s);
                }
                Write::Open(ctx, rec, s) => {
                    let chained = audit::chain(head, ctx, rec);
                    appended.results.push(chained.seq());
                    appended.entries.push(chained);
                    appended.sessions.push(s);
                }
            }
        }
        appended
    }

    /// The inserts, many rows per statement, and the head's update when it moved.
    fn push_to<'a>(&'a self, batch: &mut Batch<'a>, head: &'a audit::Head) {
        audit::push_inserts(batch, &self.entries);
        batch.push_inserts(
            &format!("open_sessions ({SESSION_COLUMNS})"),
            self.sessions.iter().map(|s| s.values()),
        );
        if !self.entries.is_empty() {
            audit::push_write_head(batch, head);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditFilter, ChainStatus};
    use crate::db::args;
    use crate::{Keyring, MasterKey, OrgName, Store};

    async fn store(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let key = MasterKey::generate().unwrap();
        let s = Store::connect(&url, Keyring::new(key)).await.unwrap();
        let acme: OrgName = "acme".parse().unwrap();
        s.create_org(&acme, &AuditContext::system()).await.unwrap();
        s
    }

    fn entry(actor: &str) -> Write {
        let acme: OrgName = "acme".parse().unwrap();
        Write::Audit(
            AuditContext::new(actor),
            AuditRecord::new(&acme, "environment.open"),
        )
    }

    /// Queues `writes` before the writer task starts, so they form one batch.
    async fn one_batch(s: &Store, writes: Vec<Write>) -> Vec<Result<i64, StoreError>> {
        let (queue, rx) = mpsc::unbounded_channel();
        let mut answers = Vec::new();
        for write in writes {
            let (done, answer) = oneshot::channel();
            queue
                .send(Job::Write(Pending {
                    write,
                    done: Some(done),
                }))
                .unwrap();
            answers.push(answer);
        }
        drop(queue);
        spawn(s.pool.clone(), s.sqlite_file.as_deref(), rx, Arc::default()).unwrap();
        let mut out = Vec::new();
        for a in answers {
            out.push(a.await.unwrap().map(|(seq, _)| seq));
        }
        out
    }

    #[tokio::test]
    async fn a_failed_commit_fails_every_write_of_its_batch_and_keeps_none() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir).await;
        let before = s.verify_audit_chain().await.unwrap();
        s.pool
            .execute(
                "CREATE TRIGGER refuse_mallory BEFORE INSERT ON audit_log WHEN NEW.actor = 'mallory' \
                 BEGIN SELECT RAISE(ABORT, 'audit disk full'); END",
                args![],
                "test",
            )
            .await
            .unwrap();
        let results = one_batch(&s, vec![entry("alice"), entry("mallory"), entry("bob")]).await;
        assert_eq!(results.len(), 3);
        for r in &results {
            let e = r.as_ref().expect_err("no write of a failed batch succeeds");
            assert!(e.to_string().contains("audit disk full"), "{e}");
        }
        // Nothing of the batch was kept, and the chain is as it was.
        assert_eq!(s.verify_audit_chain().await.unwrap(), before);
        let acme: OrgName = "acme".parse().unwrap();
        let listed = s.list_audit(&acme, &AuditFilter::default()).await.unwrap();
        assert!(listed
            .entries
            .iter()
            .all(|e| e.actor != "alice" && e.actor != "bob"));

        // The next batch, without the poisoned entry, commits.
        let results = one_batch(&s, vec![entry("alice"), entry("bob")]).await;
        assert!(results.iter().all(|r| r.is_ok()));
        let ChainStatus::Intact { entries } = s.verify_audit_chain().await.unwrap() else {
            panic!("chain broken");
        };
        let ChainStatus::Intact { entries: was } = before else {
            panic!("chain broken");
        };
        assert_eq!(entries, was + 2);
    }
}
