//! Open sessions: the evaluated result of an open, sealed with the organization's data key
//! and bound to the environment and the session id, readable until it expires.
//!
//! Creating a session is part of an open that [`Store::authorize_open`] already audited, so
//! it writes no audit entry of its own.

use tessera_crypto::{Aad, SecretBytes};
use tessera_types::{OrgName, QualifiedEnv};

use crate::access::OpenGrant;
use crate::db::args;
use crate::environments::env_key;
use crate::writer::{SessionRow, Write};
use crate::{new_id, now, Store, StoreError, UnixTime};

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
        let mut c = &self.pool;
        let key = env_key(&mut c, org, env).await?;
        let id = new_id()?;
        let sealed = self
            .seal_cached(key.org_id, org, result.expose(), &aad(org, env, &id))
            .await?;
        let t = now();
        let expires_at = t.saturating_add(ttl_seconds);
        // Through the group-commit writer: concurrent opens share one commit.
        self.writer
            .write(Write::Session(SessionRow {
                id: id.clone(),
                org_id: key.org_id,
                env_id: key.env_id,
                principal: grant.principal().to_owned(),
                sealed,
                created_at: t,
                expires_at,
            }))
            .await?;
        Ok(OpenSession {
            id,
            org: org.clone(),
            env: env.clone(),
            principal: grant.principal().to_owned(),
            created_at: t,
            expires_at,
        })
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
        let mut c = &self.pool;
        let key = env_key(&mut c, org, env).await?;
        let not_found =
            || StoreError::NotFound(format!("open session {id:?} of environment {org}/{env}"));
        let row = self
            .pool
            .fetch_optional(
                "SELECT principal, sealed, created_at, expires_at FROM open_sessions \
                 WHERE id = $1 AND env_id = $2 AND expires_at > $3",
                args![id, key.env_id, now()],
                "reading an open session",
            )
            .await?
            .ok_or_else(not_found)?;
        let plain = self
            .open_cached(key.org_id, org, &row.bytes(1)?, &aad(org, env, id))
            .await?;
        let session = OpenSession {
            id: id.to_owned(),
            org: org.clone(),
            env: env.clone(),
            principal: row.text(0)?,
            created_at: row.i64(2)?,
            expires_at: row.i64(3)?,
        };
        Ok((session, plain))
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
