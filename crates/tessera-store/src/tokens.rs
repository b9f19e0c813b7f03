//! Access tokens: personal (acting as a member), team (acting with a team's grants) and
//! organization (acting with a role, as an admin, or as a plain member).
//!
//! The store receives the token value, keeps only its SHA-256 hash, and looks tokens up by
//! that hash; the value itself is never written anywhere.

use sha2::{Digest, Sha256};
use tessera_crypto::SecretString;
use tessera_types::OrgName;

use crate::audit::{self, AuditContext, AuditRecord};
use crate::db::{args, is_unique_violation, Row};
use crate::members::member_user_id;
use crate::orgs::org_id;
use crate::teams::team_id;
use crate::{new_id, now, Snapshot, Store, StoreError, UnixTime};

/// Whom a token acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOwner {
    /// A personal token of a member.
    User(String),
    /// A team token: only the team's grants and roles apply.
    Team(String),
    /// An organization token: with a custom role, as an admin, or (neither) as a plain member.
    Organization {
        /// The custom role it acts with.
        role_id: Option<String>,
        /// Whether it acts as an organization admin.
        admin: bool,
    },
}

impl TokenOwner {
    /// `personal`, `team` or `organization`.
    pub fn kind(&self) -> &'static str {
        match self {
            TokenOwner::User(_) => "personal",
            TokenOwner::Team(_) => "team",
            TokenOwner::Organization { .. } => "organization",
        }
    }
}

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// Its name or description.
    pub name: String,
    /// Whom it acts as.
    pub owner: TokenOwner,
    /// When it expires (unix seconds); `None` for never.
    pub expires_at: Option<UnixTime>,
}

/// A stored token (never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// Its id.
    pub id: String,
    /// The organization it belongs to.
    pub org: OrgName,
    /// Its name.
    pub name: String,
    /// Whom it acts as.
    pub owner: TokenOwner,
    /// When it was created.
    pub created_at: UnixTime,
    /// When it expires.
    pub expires_at: Option<UnixTime>,
    /// When it was revoked.
    pub revoked_at: Option<UnixTime>,
    /// When it last authenticated a request (updated at most once a minute).
    pub last_used_at: Option<UnixTime>,
}

/// A fresh random token value: `tsr_` followed by 40 hex digits (160 bits).
pub fn generate_token_value() -> Result<SecretString, StoreError> {
    let bytes = tessera_crypto::random_bytes(20).map_err(|source| StoreError::Crypto {
        context: "generating a token".into(),
        source,
    })?;
    Ok(SecretString::new(format!("tsr_{}", hex::encode(bytes))))
}

/// The lowercase hex SHA-256 of a token value: what the database keeps.
pub fn token_hash(value: &SecretString) -> String {
    hex::encode(Sha256::digest(value.expose().as_bytes()))
}

const COLUMNS: &str = "t.id, o.name, t.name, t.kind, u.login, tm.name, t.role_id, t.admin, \
     t.created_at, t.expires_at, t.revoked_at, t.last_used_at";
const FROM: &str = "access_tokens t JOIN orgs o ON o.id = t.org_id \
     LEFT JOIN users u ON u.id = t.user_id LEFT JOIN teams tm ON tm.id = t.team_id";

fn decode(r: &Row) -> Result<AccessToken, StoreError> {
    let org = r.text(1)?;
    let owner = match r.text(3)?.as_str() {
        "personal" => TokenOwner::User(
            r.opt_text(4)?
                .ok_or_else(|| StoreError::Corrupt("personal token without user".into()))?,
        ),
        "team" => TokenOwner::Team(
            r.opt_text(5)?
                .ok_or_else(|| StoreError::Corrupt("team token without team".into()))?,
        ),
        "organization" => TokenOwner::Organization {
            role_id: r.opt_text(6)?,
            admin: r.flag(7)?,
        },
        k => return Err(StoreError::Corrupt(format!("token kind {k:?}"))),
    };
    Ok(AccessToken {
        id: r.text(0)?,
        org: org
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("organization name {org:?}")))?,
        name: r.text(2)?,
        owner,
        created_at: r.i64(8)?,
        expires_at: r.opt_i64(9)?,
        revoked_at: r.opt_i64(10)?,
        last_used_at: r.opt_i64(11)?,
    })
}

impl Store {
    /// Stores a token whose value is `value` (only its hash is kept). The expiry must be in
    /// the future and within the organization's `maxTokenLifetimeSeconds`, if set.
    pub async fn create_token(
        &self,
        org: &OrgName,
        spec: &NewToken,
        value: &SecretString,
        ctx: &AuditContext,
    ) -> Result<AccessToken, StoreError> {
        let t = now();
        if spec.expires_at.is_some_and(|e| e <= t) {
            return Err(StoreError::Invalid(
                "the token expiry is in the past".into(),
            ));
        }
        // Generated tokens are long and random; only an operator's bootstrap token is chosen
        // by hand, and the contract takes it exactly as given.
        if value.is_empty() {
            return Err(StoreError::Invalid(
                "a token value must not be empty".into(),
            ));
        }
        let mut tx = self.pool.begin_write().await?;
        let oid = org_id(&mut tx, org).await?;
        let max = tx
            .fetch_one(
                "SELECT max_token_lifetime_seconds FROM orgs WHERE id = $1",
                args![oid],
                "reading settings",
            )
            .await?
            .opt_i64(0)?;
        if let Some(max) = max {
            match spec.expires_at {
                Some(e) if e - t <= max => {}
                _ => {
                    return Err(StoreError::Invalid(format!(
                        "organization {org} allows tokens to live at most {max} seconds: give an earlier expiry"
                    )))
                }
            }
        }
        let (user_id, team_id_, role_id, admin) = match &spec.owner {
            TokenOwner::User(login) => (
                Some(member_user_id(&mut tx, oid, org, login).await?),
                None,
                None,
                false,
            ),
            TokenOwner::Team(team) => (
                None,
                Some(team_id(&mut tx, oid, org, team).await?),
                None,
                false,
            ),
            TokenOwner::Organization { role_id, admin } => {
                if let Some(r) = role_id {
                    crate::roles::role_row_id(&mut tx, oid, org, r).await?;
                }
                (None, None, role_id.clone(), *admin)
            }
        };
        let id = new_id()?;
        tx.execute(
            "INSERT INTO access_tokens (id, org_id, kind, name, user_id, team_id, role_id, admin, token_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            args![
                &id,
                oid,
                spec.owner.kind(),
                spec.name.as_str(),
                user_id,
                team_id_,
                role_id.as_deref(),
                admin,
                &token_hash(value),
                t,
                spec.expires_at
            ],
            "creating a token",
        )
        .await
        .map_err(|e| if is_unique_violation(&e) { StoreError::AlreadyExists("a token with this value".into()) } else { e })?;
        let rec = AuditRecord::new(org, "token.create").details(serde_json::json!({
            "id": id, "kind": spec.owner.kind(), "name": spec.name, "expires": spec.expires_at,
        }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await?;
        Ok(AccessToken {
            id,
            org: org.clone(),
            name: spec.name.clone(),
            owner: spec.owner.clone(),
            created_at: t,
            expires_at: spec.expires_at,
            revoked_at: None,
            last_used_at: None,
        })
    }

    /// The live token with this value: `None` when unknown, revoked or expired. Records
    /// the use (at most once a minute per token; this bookkeeping is not audited).
    pub async fn authenticate_token(
        &self,
        value: &SecretString,
    ) -> Result<Option<AccessToken>, StoreError> {
        let at = self.snapshot().await?;
        self.authenticate_token_at(at, value).await
    }

    /// [`Store::authenticate_token`] at `at`: the record may come from the cache (see
    /// `cache`), but expiry is judged against the clock on every call.
    pub async fn authenticate_token_at(
        &self,
        at: Snapshot,
        value: &SecretString,
    ) -> Result<Option<AccessToken>, StoreError> {
        let t = now();
        let hash = token_hash(value);
        let cached = self.caches.tokens.get(&hash, at);
        let mut token = match cached {
            Some(token) => token,
            None => {
                let row = self
                    .pool
                    .fetch_optional(
                        &format!("SELECT {COLUMNS} FROM {FROM} WHERE t.token_hash = $1"),
                        args![&hash],
                        "looking up a token",
                    )
                    .await?;
                let Some(row) = row else { return Ok(None) };
                let token = decode(&row)?;
                self.caches.tokens.insert(hash.clone(), at, token.clone());
                token
            }
        };
        if token.revoked_at.is_some() || token.expires_at.is_some_and(|e| e <= t) {
            return Ok(None);
        }
        if token.last_used_at.is_none_or(|u| t - u >= 60) {
            // Bookkeeping, not a change anyone's access depends on: no change counter.
            self.pool
                .execute(
                    "UPDATE access_tokens SET last_used_at = $1 WHERE id = $2",
                    args![t, token.id.as_str()],
                    "recording token use",
                )
                .await?;
            token.last_used_at = Some(t);
            self.caches.tokens.insert(hash, at, token.clone());
        }
        Ok(Some(token))
    }

    /// A token by id, revoked or not.
    pub async fn token(&self, org: &OrgName, id: &str) -> Result<AccessToken, StoreError> {
        let row = self
            .pool
            .fetch_optional(
                &format!("SELECT {COLUMNS} FROM {FROM} WHERE o.name = $1 AND t.id = $2"),
                args![org.as_str(), id],
                "reading a token",
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("token {id:?} of organization {org}")))?;
        decode(&row)
    }

    /// Every token of an organization, newest first.
    pub async fn list_tokens(&self, org: &OrgName) -> Result<Vec<AccessToken>, StoreError> {
        self.pool
            .fetch_all(
                &format!("SELECT {COLUMNS} FROM {FROM} WHERE o.name = $1 ORDER BY t.created_at DESC, t.id"),
                args![org.as_str()],
                "listing tokens",
            )
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    /// Revokes a token at once; it stops authenticating on the next request.
    pub async fn revoke_token(
        &self,
        org: &OrgName,
        id: &str,
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_write().await?;
        let oid = org_id(&mut tx, org).await?;
        let n = tx
            .execute(
                "UPDATE access_tokens SET revoked_at = $1 WHERE org_id = $2 AND id = $3 AND revoked_at IS NULL",
                args![now(), oid, id],
                "revoking a token",
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "live token {id:?} of organization {org}"
            )));
        }
        let rec = AuditRecord::new(org, "token.revoke").details(serde_json::json!({ "id": id }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await
    }
}
