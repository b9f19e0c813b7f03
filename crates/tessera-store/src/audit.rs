//! The audit log: append-only, hash-chained, listed per organization.
//!
//! Entries are numbered `seq` = 1, 2, 3… across the whole store without gaps. Each entry's
//! `hash` is the lowercase hex SHA-256 of the previous entry's hash (64 zeros before the
//! first), a newline, and the entry's canonical content: the compact JSON array
//! `[seq, timestamp, org, event, actor, token_id, environment, revision, source, outcome,
//! details]` (details as the stored JSON text). The `audit_head` row records the last
//! entry, so a truncated tail is detected as well as an edited or deleted row.
//!
//! Entries never hold secret values: callers put names, revisions and reasons in `details`.

use serde::Serialize;
use sha2::{Digest, Sha256};
use tessera_types::{OrgName, QualifiedEnv};

use crate::db::{args, Batch, Row, Tx, Val};
use crate::writer::Write;
use crate::{now, Store, StoreError, UnixTime};

/// Who acts, and from where: recorded in every audit entry the action writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditContext {
    /// The user login, `token:<id>`, or `system`.
    pub actor: String,
    /// The access token used, if any.
    pub token_id: Option<String>,
    /// The client address, if known.
    pub source: Option<String>,
}

impl AuditContext {
    /// An actor without token or address.
    pub fn new(actor: impl Into<String>) -> Self {
        AuditContext {
            actor: actor.into(),
            token_id: None,
            source: None,
        }
    }

    /// The server itself (bootstrap, migrations, key rotation).
    pub fn system() -> Self {
        AuditContext::new("system")
    }

    /// With the access token that authenticated the actor.
    pub fn with_token(mut self, token_id: impl Into<String>) -> Self {
        self.token_id = Some(token_id.into());
        self
    }

    /// With the client address.
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }
}

/// Whether the recorded action was allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The action happened.
    Allowed,
    /// The action was refused.
    Denied,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
        }
    }
}

/// What happened, to be appended with an [`AuditContext`].
#[derive(Debug, Clone)]
pub struct AuditRecord {
    /// The organization.
    pub org: String,
    /// The event name, e.g. `environment.open`.
    pub event: String,
    /// The environment, `project/env`.
    pub environment: Option<String>,
    /// The revision concerned.
    pub revision: Option<u64>,
    /// Allowed or denied.
    pub outcome: Outcome,
    /// Further facts (never secret values).
    pub details: serde_json::Value,
}

impl AuditRecord {
    /// An allowed event in `org` with empty details.
    pub fn new(org: &OrgName, event: &str) -> Self {
        AuditRecord {
            org: org.to_string(),
            event: event.to_owned(),
            environment: None,
            revision: None,
            outcome: Outcome::Allowed,
            details: serde_json::json!({}),
        }
    }

    /// Concerning environment `env`.
    pub fn env(mut self, env: &QualifiedEnv) -> Self {
        self.environment = Some(env.to_string());
        self
    }

    /// Concerning revision `n`.
    pub fn revision(mut self, n: u64) -> Self {
        self.revision = Some(n);
        self
    }

    /// Marks the action as denied.
    pub fn denied(mut self) -> Self {
        self.outcome = Outcome::Denied;
        self
    }

    /// Sets the details object.
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// One entry of the audit log, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When it was written (unix seconds).
    pub timestamp: UnixTime,
    /// The organization.
    pub org: String,
    /// The event name.
    pub event: String,
    /// Who acted.
    pub actor: String,
    /// The token used.
    pub token_id: Option<String>,
    /// The environment, `project/env`.
    pub environment: Option<String>,
    /// The revision concerned.
    pub revision: Option<u64>,
    /// The client address.
    pub source: Option<String>,
    /// Allowed or denied.
    pub outcome: Outcome,
    /// Further facts.
    pub details: serde_json::Value,
}

/// What the group-commit writer has done (see [`Store::group_commit_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupCommitStats {
    /// Transactions committed.
    pub batches: u64,
    /// Writes (audit entries and open sessions) they held.
    pub writes: u64,
    /// Deferred audit entries (session reads by the opener) lost to a failed commit.
    pub lost: u64,
}

/// Filters for [`Store::list_audit`]. Pages run newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only entries at or after this time.
    pub since: Option<UnixTime>,
    /// Only entries before this time.
    pub until: Option<UnixTime>,
    /// Only this event name.
    pub event: Option<String>,
    /// Only entries about this environment.
    pub environment: Option<QualifiedEnv>,
    /// Page size (default 100, at most 1000).
    pub limit: Option<u32>,
    /// The `continuation` of the previous page.
    pub continuation: Option<String>,
}

/// One page of audit entries.
#[derive(Debug, Clone)]
pub struct AuditPage {
    /// The entries, newest first.
    pub entries: Vec<AuditEntry>,
    /// Present when more entries match: pass it back in [`AuditFilter::continuation`].
    pub continuation: Option<String>,
}

/// The result of [`Store::verify_audit_chain`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainStatus {
    /// Every entry links to the previous one.
    Intact {
        /// How many entries were checked.
        entries: u64,
    },
    /// The first broken entry.
    Broken {
        /// The `seq` of the first entry that does not verify.
        entry: i64,
        /// Why.
        reason: ChainBreak,
    },
}

/// How the chain is broken at an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainBreak {
    /// The entry's content or hash was edited.
    Altered,
    /// The entry is missing (deleted); the next stored entry follows the gap.
    Deleted,
    /// Entries after this one were removed from the end of the log.
    Truncated,
}

impl std::fmt::Display for ChainStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainStatus::Intact { entries } => write!(f, "audit log intact ({entries} entries)"),
            ChainStatus::Broken {
                entry,
                reason: ChainBreak::Altered,
            } => {
                write!(
                    f,
                    "audit log broken at entry {entry}: the entry was altered"
                )
            }
            ChainStatus::Broken {
                entry,
                reason: ChainBreak::Deleted,
            } => {
                write!(
                    f,
                    "audit log broken at entry {entry}: the entry was deleted"
                )
            }
            ChainStatus::Broken {
                entry,
                reason: ChainBreak::Truncated,
            } => {
                write!(
                    f,
                    "audit log broken at entry {entry}: it and any later entries were deleted"
                )
            }
        }
    }
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
pub(crate) const COLUMNS: &str =
    "seq, ts, org, event, actor, token_id, environment, revision, source, outcome, details, hash";

fn chain_hash(prev: &str, e: &AuditEntry, details_text: &str) -> String {
    let content = serde_json::json!([
        e.seq,
        e.timestamp,
        e.org,
        e.event,
        e.actor,
        e.token_id,
        e.environment,
        e.revision,
        e.source,
        e.outcome.as_str(),
        details_text
    ]);
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(content.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// Decodes a row selected with [`COLUMNS`]; returns the entry, its details text and its hash.
fn decode(r: &Row) -> Result<(AuditEntry, String, String), StoreError> {
    let details_text = r.text(10)?;
    let outcome = match r.text(9)?.as_str() {
        "allowed" => Outcome::Allowed,
        "denied" => Outcome::Denied,
        other => return Err(StoreError::Corrupt(format!("audit outcome {other:?}"))),
    };
    let entry = AuditEntry {
        seq: r.i64(0)?,
        timestamp: r.i64(1)?,
        org: r.text(2)?,
        event: r.text(3)?,
        actor: r.text(4)?,
        token_id: r.opt_text(5)?,
        environment: r.opt_text(6)?,
        revision: r.opt_i64(7)?.map(|n| n as u64),
        source: r.opt_text(8)?,
        outcome,
        details: serde_json::from_str(&details_text).unwrap_or(serde_json::Value::Null),
    };
    Ok((entry, details_text, r.text(11)?))
}

/// The last entry of the chain: its `seq` and hash.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) seq: i64,
    pub(crate) hash: String,
}

impl Head {
    /// From a row of `SELECT last_seq, last_hash FROM audit_head`.
    pub(crate) fn decode(row: &Row) -> Result<Head, StoreError> {
        Ok(Head {
            seq: row.i64(0)?,
            hash: row.text(1)?,
        })
    }
}

/// Reads the chain head inside `tx`, which must hold the write lock.
pub(crate) async fn read_head(tx: &mut Tx) -> Result<Head, StoreError> {
    let head = tx
        .fetch_one(
            "SELECT last_seq, last_hash FROM audit_head WHERE id = 1",
            args![],
            "reading the audit chain head",
        )
        .await?;
    Head::decode(&head)
}

/// Records `head` as the chain's last entry inside `tx`.
pub(crate) async fn write_head(tx: &mut Tx, head: &Head) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE audit_head SET last_seq = $1, last_hash = $2 WHERE id = 1",
        args![head.seq, &head.hash],
        "advancing the audit chain head",
    )
    .await?;
    Ok(())
}

/// An entry chained after a head, ready to insert.
pub(crate) struct Chained {
    pub(crate) entry: AuditEntry,
    pub(crate) details_text: String,
    pub(crate) hash: String,
}

impl Chained {
    pub(crate) fn seq(&self) -> i64 {
        self.entry.seq
    }

    /// The row's values, in the order of [`COLUMNS`].
    pub(crate) fn values(&self) -> [Val<'_>; 12] {
        let e = &self.entry;
        [
            Val::from(e.seq),
            Val::from(e.timestamp),
            Val::from(&e.org),
            Val::from(&e.event),
            Val::from(&e.actor),
            Val::from(e.token_id.as_deref()),
            Val::from(e.environment.as_deref()),
            Val::from(e.revision.map(|n| n as i64)),
            Val::from(e.source.as_deref()),
            Val::from(e.outcome.as_str()),
            Val::from(&self.details_text),
            Val::from(&self.hash),
        ]
    }
}

/// The entry that follows `head`; advances `head` in memory. The caller inserts it
/// ([`push_inserts`]) and writes the head back ([`push_write_head`]) before committing.
pub(crate) fn chain(head: &mut Head, ctx: &AuditContext, rec: &AuditRecord) -> Chained {
    let details_text = rec.details.to_string();
    let entry = AuditEntry {
        seq: head.seq + 1,
        timestamp: now(),
        org: rec.org.clone(),
        event: rec.event.clone(),
        actor: ctx.actor.clone(),
        token_id: ctx.token_id.clone(),
        environment: rec.environment.clone(),
        revision: rec.revision,
        source: ctx.source.clone(),
        outcome: rec.outcome,
        details: rec.details.clone(),
    };
    let hash = chain_hash(&head.hash, &entry, &details_text);
    *head = Head {
        seq: entry.seq,
        hash: hash.clone(),
    };
    Chained {
        entry,
        details_text,
        hash,
    }
}

/// Adds the inserts of chained entries to `batch`, many rows per statement.
pub(crate) fn push_inserts<'a>(batch: &mut Batch<'a>, rows: &'a [Chained]) {
    batch.push_inserts(
        &format!("audit_log ({COLUMNS})"),
        rows.iter().map(Chained::values),
    );
}

/// Adds the update recording `head` as the chain's last entry to `batch`.
pub(crate) fn push_write_head<'a>(batch: &mut Batch<'a>, head: &'a Head) {
    let sql = format!(
        "UPDATE audit_head SET last_seq = {}, last_hash = {} WHERE id = 1",
        batch.param(),
        batch.param()
    );
    batch.push(sql, vec![Val::from(head.seq), Val::from(&head.hash)]);
}

/// Inserts the entry that follows `head` and advances `head` in memory; the caller writes
/// the head back ([`write_head`]) before committing.
pub(crate) async fn insert_after(
    tx: &mut Tx,
    head: &mut Head,
    ctx: &AuditContext,
    rec: &AuditRecord,
) -> Result<i64, StoreError> {
    let chained = chain(head, ctx, rec);
    let mut batch = Batch::for_tx(tx);
    push_inserts(&mut batch, std::slice::from_ref(&chained));
    batch.run(tx, "appending to the audit log").await?;
    Ok(chained.seq())
}

/// Appends an entry inside `tx`, which must hold the write lock ([`crate::db::Pool::begin_write`]).
pub(crate) async fn append(
    tx: &mut Tx,
    ctx: &AuditContext,
    rec: &AuditRecord,
) -> Result<i64, StoreError> {
    let mut head = read_head(tx).await?;
    let seq = insert_after(tx, &mut head, ctx, rec).await?;
    write_head(tx, &head).await?;
    Ok(seq)
}

impl Store {
    /// Appends one audit entry in its own transaction and returns its `seq`. For actions
    /// that change nothing in the store (reads, opens, decrypts): call it before returning
    /// the result, and fail the action if it fails.
    ///
    /// Entries from concurrent callers are committed together (see `writer`): the call
    /// returns once the transaction holding this entry is committed, and fails if it failed.
    pub async fn record_audit(
        &self,
        ctx: &AuditContext,
        rec: &AuditRecord,
    ) -> Result<i64, StoreError> {
        self.writer
            .write(Write::Audit(ctx.clone(), rec.clone()))
            .await
    }

    /// How many group-commit transactions have been committed, and how many writes they
    /// held, since this store was connected.
    pub fn group_commit_stats(&self) -> GroupCommitStats {
        let s = self.writer.stats();
        GroupCommitStats {
            batches: s.batches.load(std::sync::atomic::Ordering::Relaxed),
            writes: s.writes.load(std::sync::atomic::Ordering::Relaxed),
            lost: s.lost.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// One page of an organization's audit entries, newest first.
    pub async fn list_audit(
        &self,
        org: &OrgName,
        filter: &AuditFilter,
    ) -> Result<AuditPage, StoreError> {
        let limit = filter.limit.unwrap_or(100).clamp(1, 1000) as i64;
        let before = match &filter.continuation {
            Some(c) => c
                .parse::<i64>()
                .map_err(|_| StoreError::Invalid(format!("invalid continuation token {c:?}")))?,
            None => i64::MAX,
        };
        let env = filter.environment.as_ref().map(|e| e.to_string());
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_log WHERE org = $1 AND seq < $2 \
             AND ($3 IS NULL OR ts >= $3) AND ($4 IS NULL OR ts < $4) \
             AND ($5 IS NULL OR event = $5) AND ($6 IS NULL OR environment = $6) \
             ORDER BY seq DESC LIMIT $7"
        );
        let rows = self
            .pool
            .fetch_all(
                &sql,
                args![
                    org.as_str(),
                    before,
                    filter.since,
                    filter.until,
                    filter.event.as_deref(),
                    env.as_deref(),
                    limit + 1
                ],
                "listing the audit log",
            )
            .await?;
        let mut entries = rows
            .iter()
            .map(|r| decode(r).map(|(e, _, _)| e))
            .collect::<Result<Vec<_>, _>>()?;
        let continuation = if entries.len() as i64 > limit {
            entries.truncate(limit as usize);
            entries.last().map(|e| e.seq.to_string())
        } else {
            None
        };
        Ok(AuditPage {
            entries,
            continuation,
        })
    }

    /// Checks the whole hash chain and returns the first broken entry, if any.
    pub async fn verify_audit_chain(&self) -> Result<ChainStatus, StoreError> {
        // One snapshot for the log and its head: entries appended while the check runs
        // (the server keeps writing) must not look like a truncated chain.
        let mut tx = self.pool.begin_snapshot().await?;
        let mut prev_hash = GENESIS.to_owned();
        let mut expected_seq = 1i64;
        loop {
            let rows = tx
                .fetch_all(
                    &format!(
                        "SELECT {COLUMNS} FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT 1000"
                    ),
                    args![expected_seq],
                    "reading the audit log",
                )
                .await?;
            if rows.is_empty() {
                break;
            }
            for r in &rows {
                let (entry, details_text, hash) = decode(r)?;
                if entry.seq != expected_seq {
                    return Ok(ChainStatus::Broken {
                        entry: expected_seq,
                        reason: ChainBreak::Deleted,
                    });
                }
                if chain_hash(&prev_hash, &entry, &details_text) != hash {
                    return Ok(ChainStatus::Broken {
                        entry: entry.seq,
                        reason: ChainBreak::Altered,
                    });
                }
                prev_hash = hash;
                expected_seq += 1;
            }
        }
        let head = tx
            .fetch_optional(
                "SELECT last_seq, last_hash FROM audit_head WHERE id = 1",
                args![],
                "reading the audit chain head",
            )
            .await?
            .ok_or_else(|| StoreError::Corrupt("the audit chain head is missing".into()))?;
        let (last_seq, last_hash) = (head.i64(0)?, head.text(1)?);
        let checked = expected_seq - 1;
        if last_seq > checked {
            return Ok(ChainStatus::Broken {
                entry: checked + 1,
                reason: if checked == 0 {
                    ChainBreak::Deleted
                } else {
                    ChainBreak::Truncated
                },
            });
        }
        if last_seq != checked || last_hash != prev_hash {
            return Ok(ChainStatus::Broken {
                entry: checked,
                reason: ChainBreak::Altered,
            });
        }
        Ok(ChainStatus::Intact {
            entries: checked as u64,
        })
    }
}
