//! Open sessions: the evaluated result of an open, sealed with the organization's data key
//! and bound to the environment and the session id, readable until it expires.
//!
//! Creating a session is part of an open: either the open's check already wrote its audit
//! entry ([`Store::create_session`]), or the entry is committed with the session
//! ([`Store::create_session_recorded`]). A session has no audit entry of its own.
//!
//! Reading a session is audited (`environment.session.read`). The open that made the
//! session recorded, durably and before anything left the server, that its values were
//! disclosed to its principal; so when that same principal reads them, the read's entry
//! joins the next group commit without the answer waiting for it. Anyone else's read is a
//! new disclosure: its entry is committed before the values are returned.

use tessera_crypto::{Aad, SecretBytes};
use tessera_types::{OrgName, QualifiedEnv};

use std::sync::Arc;

use crate::access::{OpenGrant, PendingOpen, PendingRead};
use crate::cache::SealedSession;
use crate::db::args;
use crate::environments::EnvKey;
use crate::writer::{SessionRow, Write};
use crate::{new_id, now, Store, StoreError, UnixTime};

/// A session id: the time it was made, in milliseconds (12 hex digits), then 128 random
/// bits. Ids made one after the other sort one after the other, so a batch of new
/// sessions lands on the last pages of `open_sessions`' id index instead of one random
/// page each (with random ids a group commit wrote a WAL page per session); the random
/// part keeps them unguessable.
fn new_session_id() -> Result<String, StoreError> {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    Ok(format!("{millis:012x}{}", new_id()?))
}

/// An open session's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSession {
    /// Its id.
    pub id: String,
    /// The organization.
    pub org: OrgName,
    /// The environment opened.
    pub env: QualifiedEnv,
    /// Who opened it.
    pub principal: String,
    /// When.
    pub created_at: UnixTime,
    /// When it stops being readable.
    pub expires_at: UnixTime,
}

fn aad(org: &OrgName, env: &QualifiedEnv, id: &str) -> Aad {
    Aad::purpose(org.as_str(), &format!("open-session:{env}:{id}"))
}

impl Store {
    /// Stores the evaluated result of opening `env`, sealed, for `ttl_seconds`.
    pub async fn create_session(
        &self,
        grant: &OpenGrant,
        env: &QualifiedEnv,
        result: &SecretBytes,
        ttl_seconds: i64,
    ) -> Result<OpenSession, StoreError> {
        let row = self.seal_session(grant, env, result, ttl_seconds).await?;
        // Through the group-commit writer: concurrent opens share one commit.
        let row = self.writer.write_session(Write::Session(row)).await?;
        Ok(self.keep_session(row, grant.org(), env))
    }

    /// [`Store::create_session`] for a [`PendingOpen`]: the open's audit entry and the
    /// session are committed in one transaction, or neither is.
    pub async fn create_session_recorded(
        &self,
        pending: PendingOpen,
        env: &QualifiedEnv,
        result: &SecretBytes,
        ttl_seconds: i64,
    ) -> Result<OpenSession, StoreError> {
        let row = self
            .seal_session(&pending.grant, env, result, ttl_seconds)
            .await?;
        let write = Write::Open(pending.ctx, pending.record, row);
        let row = self.writer.write_session(write).await?;
        Ok(self.keep_session(row, pending.grant.org(), env))
    }

    async fn seal_session(
        &self,
        grant: &OpenGrant,
        env: &QualifiedEnv,
        result: &SecretBytes,
        ttl_seconds: i64,
    ) -> Result<SessionRow, StoreError> {
        let org = grant.org();
        if !grant.covers(org, env) {
            return Err(StoreError::NotGranted {
                org: org.to_string(),
                env: env.to_string(),
            });
        }
        if ttl_seconds <= 0 {
            return Err(StoreError::Invalid(
                "a session lifetime must be positive".into(),
            ));
        }
        let key = self.session_env_key(grant, env).await?;
        let id = new_session_id()?;
        let sealed = self
            .seal_cached(key.org_id, org, result.expose(), &aad(org, env, &id))
            .await?;
        let t = now();
        Ok(SessionRow {
            id,
            org_id: key.org_id,
            env_id: key.env_id,
            principal: grant.principal().to_owned(),
            sealed,
            created_at: t,
            expires_at: t.saturating_add(ttl_seconds),
        })
    }

    /// Keeps a committed session in the cache (sealed, as stored) and describes it.
    fn keep_session(&self, row: SessionRow, org: &OrgName, env: &QualifiedEnv) -> OpenSession {
        let session = OpenSession {
            id: row.id.clone(),
            org: org.clone(),
            env: env.clone(),
            principal: row.principal.clone(),
            created_at: row.created_at,
            expires_at: row.expires_at,
        };
        self.caches.sessions.insert(
            row.id,
            Arc::new(SealedSession {
                env_id: row.env_id,
                principal: row.principal,
                sealed: row.sealed,
                created_at: row.created_at,
                expires_at: row.expires_at,
            }),
        );
        session
    }

    /// Reads a live session of `env`; an expired or unknown one is `NotFound`.
    pub async fn read_session(
        &self,
        grant: &OpenGrant,
        env: &QualifiedEnv,
        id: &str,
    ) -> Result<(OpenSession, SecretBytes), StoreError> {
        let org = grant.org();
        if !grant.covers(org, env) {
            return Err(StoreError::NotGranted {
                org: org.to_string(),
                env: env.to_string(),
            });
        }
        let key = self.session_env_key(grant, env).await?;
        let not_found =
            || StoreError::NotFound(format!("open session {id:?} of environment {org}/{env}"));
        let t = now();
        let stored = match self.caches.sessions.get(id) {
            Some(s) => s,
            // Opened on another replica, or evicted.
            None => {
                let row = self
                    .pool
                    .fetch_optional(
                        "SELECT principal, sealed, created_at, expires_at FROM open_sessions \
                         WHERE id = $1 AND env_id = $2 AND expires_at > $3",
                        args![id, key.env_id, t],
                        "reading an open session",
                    )
                    .await?
                    .ok_or_else(not_found)?;
                Arc::new(SealedSession {
                    env_id: key.env_id,
                    principal: row.text(0)?,
                    sealed: row.bytes(1)?,
                    created_at: row.i64(2)?,
                    expires_at: row.i64(3)?,
                })
            }
        };
        // The id alone proves nothing: the session must belong to this environment (its
        // current incarnation) and still be live.
        if stored.env_id != key.env_id || stored.expires_at <= t {
            return Err(not_found());
        }
        let plain = self
            .open_cached(key.org_id, org, &stored.sealed, &aad(org, env, id))
            .await?;
        let session = OpenSession {
            id: id.to_owned(),
            org: org.clone(),
            env: env.clone(),
            principal: stored.principal.clone(),
            created_at: stored.created_at,
            expires_at: stored.expires_at,
        };
        Ok((session, plain))
    }

    /// Reads a live session of `env` after a [`Store::authorize_session_read_at`] check and
    /// records the read (see the module doc for when the answer waits for that).
    pub async fn read_session_recorded(
        &self,
        pending: PendingRead,
        env: &QualifiedEnv,
        id: &str,
    ) -> Result<(OpenSession, SecretBytes), StoreError> {
        let PendingRead { grant, ctx, record } = pending;
        let read = self.read_session(&grant, env, id).await;
        let write = Write::Audit(ctx, record);
        match read {
            Ok((session, plain)) if session.principal == grant.principal() => {
                self.writer.write_deferred(write)?;
                Ok((session, plain))
            }
            Ok(read) => {
                self.writer.write(write).await?;
                Ok(read)
            }
            // Nothing was disclosed; the attempt is still recorded.
            Err(e) => {
                self.writer.write(write).await?;
                Err(e)
            }
        }
    }

    /// The environment a session of `env` belongs to, as of the grant's snapshot.
    async fn session_env_key(
        &self,
        grant: &OpenGrant,
        env: &QualifiedEnv,
    ) -> Result<EnvKey, StoreError> {
        let handle = self
            .environment_handle_at(grant.at, grant.org(), env)
            .await?;
        self.env_key_of(&handle).await
    }

    /// Deletes expired sessions; returns how many.
    pub async fn delete_expired_sessions(&self) -> Result<u64, StoreError> {
        self.pool
            .execute(
                "DELETE FROM open_sessions WHERE expires_at <= $1",
                args![now()],
                "deleting expired sessions",
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_sort_by_creation_and_stay_unguessable() {
        let first = new_session_id().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let (second, third) = (new_session_id().unwrap(), new_session_id().unwrap());
        assert!(first < second, "{first} then {second}");
        assert_ne!(second, third);
        for id in [&first, &second, &third] {
            assert_eq!(id.len(), 12 + 32, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        }
    }
}
