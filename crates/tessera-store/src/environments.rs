//! Environments, their immutable revisions, and revision tags.
//!
//! An environment is created with revision 1. Each save adds the next revision in one
//! transaction with its audit entry; revisions are never rewritten (retracting sets a flag).
//! A save names the revision it was based on: if another save got there first, it fails
//! with [`StoreError::Conflict`], so exactly one save wins per base revision. The `latest`
//! tag is implicit (the newest revision); other tags are stored and movable.
//!
//! Definitions arrive with every secret already sealed (see [`Store::encrypt_secret`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use tessera_types::{OrgName, QualifiedEnv, Version};

use crate::audit::{self, AuditContext, AuditRecord};
use crate::db::{args, is_unique_violation, Conn, Row};
use crate::orgs::org_id;
use crate::{now, Snapshot, Store, StoreError, UnixTime};

/// An environment's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// The organization.
    pub org: OrgName,
    /// `project/env`.
    pub name: QualifiedEnv,
    /// Environment tags (`team: payments`), distinct from revision tags.
    pub tags: BTreeMap<String, String>,
    /// Whether deleting is refused.
    pub deletion_protected: bool,
    /// The newest revision number.
    pub latest_revision: u64,
    /// When it was created.
    pub created_at: UnixTime,
    /// When it last changed.
    pub modified_at: UnixTime,
}

/// One revision of a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// Its number, from 1.
    pub number: u64,
    /// The definition, with secrets as ciphertext.
    pub yaml: String,
    /// Who saved it.
    pub author: String,
    /// When.
    pub created_at: UnixTime,
    /// Whether it was retracted.
    pub retracted: bool,
}

/// A revision without its text, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionSummary {
    /// Its number.
    pub number: u64,
    /// Who saved it.
    pub author: String,
    /// When.
    pub created_at: UnixTime,
    /// Whether it was retracted.
    pub retracted: bool,
    /// Revision tags pointing at it (`latest` included for the newest).
    pub tags: Vec<String>,
}

/// A named pointer to a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionTag {
    /// The tag name.
    pub name: String,
    /// The revision it points at.
    pub revision: u64,
    /// Who set it last.
    pub editor: String,
    /// When it was created.
    pub created_at: UnixTime,
    /// When it last moved.
    pub modified_at: UnixTime,
}

/// An environment found by name, with the identity its revisions are stored under.
///
/// Environment ids are never reused (a deleted and re-created environment gets a new one),
/// and revisions are immutable, so a [`RevisionKey`] names the same text forever: callers
/// may cache what they derive from a revision's text under it without invalidation.
#[derive(Debug, Clone)]
pub struct EnvHandle {
    /// The environment's metadata.
    pub environment: Environment,
    id: i64,
}

/// The identity of one revision's immutable content (see [`EnvHandle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RevisionKey {
    env_id: i64,
    number: u64,
}

impl RevisionKey {
    /// The revision number.
    pub fn number(&self) -> u64 {
        self.number
    }
}

/// The ids of an environment and its organization, and its newest revision.
pub(crate) struct EnvKey {
    pub(crate) org_id: i64,
    pub(crate) env_id: i64,
    pub(crate) head: u64,
}

pub(crate) async fn env_key<C: Conn>(
    c: &mut C,
    org: &OrgName,
    env: &QualifiedEnv,
) -> Result<EnvKey, StoreError> {
    let row = c
        .fetch_optional(
            "SELECT o.id, e.id, e.head_revision FROM environments e JOIN orgs o ON o.id = e.org_id \
             WHERE o.name = $1 AND e.project = $2 AND e.name = $3",
            args![org.as_str(), env.project.as_str(), env.env.as_str()],
            "looking up an environment",
        )
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("environment {org}/{env}")))?;
    Ok(EnvKey {
        org_id: row.i64(0)?,
        env_id: row.i64(1)?,
        head: row.i64(2)? as u64,
    })
}

fn tag_name(tag: &str) -> Result<&str, StoreError> {
    match tag.parse::<Version>() {
        Ok(Version::Tag(_)) if tag != "latest" => Ok(tag),
        Ok(Version::Tag(_)) => Err(StoreError::Invalid(
            "the latest tag is implicit: it always names the newest revision".into(),
        )),
        _ => Err(StoreError::Invalid(format!(
            "invalid tag name {tag:?}: use letters, digits, '-', '_' or '.', not only digits"
        ))),
    }
}

const ENV_COLUMNS: &str =
    "e.project, e.name, e.tags, e.deletion_protected, e.head_revision, e.created_at, e.modified_at";

fn decode_env(org: &OrgName, r: &Row) -> Result<Environment, StoreError> {
    let (project, name) = (r.text(0)?, r.text(1)?);
    let qualified = format!("{project}/{name}");
    Ok(Environment {
        org: org.clone(),
        name: qualified
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("environment name {qualified:?}")))?,
        tags: serde_json::from_str(&r.text(2)?).map_err(|e| {
            StoreError::Corrupt(format!("environment tags of {org}/{qualified}: {e}"))
        })?,
        deletion_protected: r.flag(3)?,
        latest_revision: r.i64(4)? as u64,
        created_at: r.i64(5)?,
        modified_at: r.i64(6)?,
    })
}

impl Store {
    /// Creates an environment whose revision 1 is `yaml` (often empty).
    pub async fn create_environment(
        &self,
        org: &OrgName,
        env: &QualifiedEnv,
        yaml: &str,
        ctx: &AuditContext,
    ) -> Result<Environment, StoreError> {
        let mut tx = self.pool.begin_write().await?;
        let oid = org_id(&mut tx, org).await?;
        let t = now();
        let row = tx
            .fetch_one(
                "INSERT INTO environments (org_id, project, name, tags, deletion_protected, head_revision, created_at, modified_at) \
                 VALUES ($1, $2, $3, '{}', 0, 1, $4, $4) RETURNING id",
                args![oid, env.project.as_str(), env.env.as_str(), t],
                "creating an environment",
            )
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::AlreadyExists(format!("environment {org}/{env}"))
                } else {
                    e
                }
            })?;
        let env_id = row.i64(0)?;
        tx.execute(
            "INSERT INTO revisions (env_id, number, yaml, author, created_at, retracted) VALUES ($1, 1, $2, $3, $4, 0)",
            args![env_id, yaml, &ctx.actor, t],
            "saving revision 1",
        )
        .await?;
        audit::append(
            &mut tx,
            ctx,
            &AuditRecord::new(org, "environment.create")
                .env(env)
                .revision(1),
        )
        .await?;
        tx.commit().await?;
        Ok(Environment {
            org: org.clone(),
            name: env.clone(),
            tags: BTreeMap::new(),
            deletion_protected: false,
            latest_revision: 1,
            created_at: t,
            modified_at: t,
        })
    }

    /// An environment's metadata, or `NotFound`.
    pub async fn environment(
        &self,
        org: &OrgName,
        env: &QualifiedEnv,
    ) -> Result<Environment, StoreError> {
        Ok(self.environment_handle(org, env).await?.environment)
    }

    /// An environment's metadata and identity in one query, or `NotFound`.
    pub async fn environment_handle(
        &self,
        org: &OrgName,
        env: &QualifiedEnv,
    ) -> Result<EnvHandle, StoreError> {
        let row = self
            .pool
            .fetch_optional(
                &format!(
                    "SELECT {ENV_COLUMNS}, e.id FROM environments e JOIN orgs o ON o.id = e.org_id \
                     WHERE o.name = $1 AND e.project = $2 AND e.name = $3"
                ),
                args![org.as_str(), env.project.as_str(), env.env.as_str()],
                "reading an environment",
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("environment {org}/{env}")))?;
        Ok(EnvHandle {
            environment: decode_env(org, &row)?,
            id: row.i64(7)?,
        })
    }

    /// [`Store::environment_handle`] at `at`, from the cache when read at the same snapshot.
    pub async fn environment_handle_at(
        &self,
        at: Snapshot,
        org: &OrgName,
        env: &QualifiedEnv,
    ) -> Result<Arc<EnvHandle>, StoreError> {
        self.caches
            .environments
            .get_or_load((org.clone(), env.clone()), at, || async {
                self.environment_handle(org, env).await.map(Arc::new)
            })
            .await
    }

    /// The ids of the environment a handle names and of its organization.
    pub(crate) async fn env_key_of(&self, handle: &EnvHandle) -> Result<EnvKey, StoreError> {
        Ok(EnvKey {
            org_id: self.cached_org_id(&handle.environment.org).await?,
            env_id: handle.id,
            head: handle.environment.latest_revision,
        })
    }

    /// The revision `version` names (`None`: the newest) in an environment found by
    /// [`Store::environment_handle`]; a query only for tags other than `latest`.
    pub async fn resolve_version_in(
        &self,
        handle: &EnvHandle,
        version: Option<&Version>,
    ) -> Result<RevisionKey, StoreError> {
        let (org, env) = (&handle.environment.org, &handle.environment.name);
        let head = handle.environment.latest_revision;
        let number = self
            .revision_number(handle.id, head, org, env, version)
            .await?;
        Ok(RevisionKey {
            env_id: handle.id,
            number,
        })
    }

    /// The revision a [`RevisionKey`] names.
    pub async fn revision_at(&self, key: RevisionKey) -> Result<Revision, StoreError> {
        let row = self
            .pool
            .fetch_optional(
                "SELECT number, yaml, author, created_at, retracted FROM revisions \
                 WHERE env_id = $1 AND number = $2",
                args![key.env_id, key.number as i64],
                "reading a revision",
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("revision {}", key.number)))?;
        Ok(Revision {
            number: row.i64(0)? as u64,
            yaml: row.text(1)?,
            author: row.text(2)?,
            created_at: row.i64(3)?,
            retracted: row.flag(4)?,
        })
    }

    /// Every environment of an organization, by project and name.
    pub async fn list_environments(&self, org: &OrgName) -> Result<Vec<Environment>, StoreError> {
        let mut c = &self.pool;
        let oid = org_id(&mut c, org).await?;
        self.pool
            .fetch_all(
                &format!("SELECT {ENV_COLUMNS} FROM environments e WHERE e.org_id = $1 ORDER BY e.project, e.name"),
                args![oid],
                "listing environments",
            )
            .await?
            .iter()
            .map(|r| decode_env(org, r))
            .collect()
    }

    /// Deletes an environment with its revisions, tags, grants and sessions, unless
    /// deletion protection is on. The audit log keeps its entries.
    pub async fn delete_environment(
        &self,
        org: &OrgName,
        env: &QualifiedEnv,
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_write().await?;
        let key = env_key(&mut tx, org, env).await?;
        let row = tx
            .fetch_one(
                "SELECT deletion_protected FROM environments WHERE id = $1",
                args![key.env_id],
                "reading an environment",
            )
            .await?;
        if row.flag(0)? {
            return Err(StoreError::DeletionProtected {
                org: org.to_string(),
                env: env.to_string(),
            });
        }
        // Tags reference revisions; remove them first so the cascade order does not matter.
        tx.execute(
            "DELETE FROM revision_tags WHERE env_id = $1",
            args![key.env_id],
            "deleting revision tags",
        )
        .await?;
        tx.execute(
            "DELETE FROM environments WHERE id = $1",
            args![key.env_id],
            "deleting an environment",
        )
        .await?;
        audit::append(
            &mut tx,
            ctx,
            &AuditRecord::new(org, "environment.delete").env(env),
        )
        .await?;
        tx.commit().await
    }

    /// Turns deletion protection on or off.
    pub async fn set_deletion_protection(
        &self,
        org: &OrgName,
        env: &QualifiedEnv,
        protected: bool,
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_write().await?;
        let key = env_key(&mut tx, org, env).await?;
        tx.execute(
            "UPDATE environments SET deletion_protected = $1, modified_at = $2 WHERE id = $3",
            args![protected, now(), key.env_id],
            "updating deletion protection",
        )
        .await?;
        let rec = AuditRecord::new(org, "environment.settings.update")
            .env(env)
            .details(serde_json::json!({ "deletionProtected": protected }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await
    }

    /// Sets (`Some`) or removes (`None`) one environment tag; returns the tags after.
    pub async fn set_environment_tag(
        &self,
        org: &OrgName,
        env: &QualifiedEnv,
        name: &str,
        value: Option<&str>,
        ctx: &AuditContext,
    ) -> Result<BTreeMap<String, String>, StoreError> {
        if name.is_empty() || name.len() > 256 {
            return Err(StoreError::Invalid(
                "environment tag names are 1 to 256 characters".into(),
            ));
        }
        let mut tx = self.pool.begin_write().await?;
        let key = env_key(&mut tx, org, env).await?;
        let row = tx
            .fetch_one(
                "SELECT tags FROM environments WHERE id = $1",
                args![key.env_id],
                "reading environment tags",
            )
            .await?;
        let mut tags: BTreeMap<String, String> = serde_json::from_str(&row.text(0)?)
            .map_err(|e| StoreError::Corrupt(format!("environment tags of {org}/{env}: {e}")))?;
        let event = match value {
            Some(v) => {
                tags.insert(name.to_owned(), v.to_owned());
                "environment.tag.set"
            }
            None => {
                if tags.remove(name).is_none() {
                    return Err(StoreError::NotFound(format!(
                        "tag {name:?} of environment {org}/{env}"
                    )));
                }
                "environment.tag.delete"
            }
        };
        let text = serde_json::to_string(&tags).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        tx.execute(
            "UPDATE environments SET tags = $1, modified_at = $2 WHERE id = $3",
            args![&text, now(), key.env_id],
            "updating environment tags",
        )
        .await?;
        let rec = AuditRecord::new(org, event)
            .env(env)
            .details(serde_json::json!({ "tag": name }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await?;
        Ok(tags)
    }

    /// Saves a new revision and returns its number.
    ///
    /// With `base = Some(n)` (the revision the caller edited) the save fails with
    /// [`StoreError::Conflict`] if the newest revision is no longer `n`; with `None` the
    /// last writer wins.
    pub async fn save_revision(
        &self,
        org: &OrgName,
        env: &QualifiedEnv,
        yaml: &str,
        base: Option<u64>,
        ctx: &AuditContext,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin_write().await?;
        let key = env_key(&mut tx, org, env).await?;
        let conflict = |current| StoreError::Conflict {
            org: org.to_string(),
            env: env.to_string(),
            base: base.unwrap_or(0),
            current,
        };
        if base.is_some_and(|b| b != key.head) {
            return Err(conflict(key.head));
        }
        let next = key.head + 1;
        let t = now();
        // The conditional update is the guard even without the write lock.
        let n = tx
            .execute(
                "UPDATE environments SET head_revision = $1, modified_at = $2 WHERE id = $3 AND head_revision = $4",
                args![next as i64, t, key.env_id, key.head as i64],
                "advancing the environment's revision",
            )
            .await?;
        if n != 1 {
            return Err(conflict(key.head));
        }
        tx.execute(
            "INSERT INTO revisions (env_id, number, yaml, author, created_at, retracted) VALUES ($1, $2, $3, $4, $5, 0)",
            args![key.env_id, next as i64, yaml, &ctx.actor, t],
            "saving a revision",
        )
        .await?;
        let mut rec = AuditRecord::new(org, "environment.update")
            .env(env)
            .revision(next);
        if let Some(b) = base {
            rec = rec.details(serde_json::json!({ "baseRevision": b }));
        }
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await?;
        Ok(next)
    }

    /// Resolves a version (`None` or `latest`: the newest) to a revision number.
    pub async fn resolve_version(
        &self,
        org: &OrgName,
        env: &QualifiedEnv,
        version: Option<&Version>,
    ) -> Result<u64, StoreError> {
        let mut c = &self.pool;
        let key = env_key(&mut c, org, env).await?;
        self.revision_number(key.env_id, key.head, org, env, version)
            .await
    }

    /// The revision number `version` names in the environment `env_id` (`org`/`env`), whose
    /// newest revision is `head`; a query only for tags other than `latest`.
    async fn revision_number(
        &self,
        env_id: i64,
        head: u64,
        org: &OrgName,
        env: &QualifiedEnv,
        version: Option<&Version>,
    ) -> Result<u64, StoreError> {
        match version {
            None => Ok(head),
            Some(Version::Tag(t)) if t == "latest" => Ok(head),
            Some(Version::Revision(n)) if *n >= 1 && *n <= head => Ok(*n),
            Some(Version::Revision(n)) => Err(StoreError::NotFound(format!(
                "revision {n} of environment {org}/{env}"
            ))),
            Some(Version::Tag(t)) => {
                let row = self
                    .pool
                    .fetch_optional(
                        "SELECT revision FROM revision_tags WHERE env_id = $1 AND name = $2",
                        args![env_id, t.as_str()],
                        "resolving a revision tag",
                    )
                    .await?
                    .ok_or_else(|| {
                        StoreError::NotFound(format!("tag {t:?} of environment {org}/{env}"))
                    })?;
                Ok(row.i64(0)? as u64)
            }
        }
    }

    /// A revision's definition, by number or tag (`None`: the newest).
    pub async fn revision(
        &self,
        org: &OrgName,
        env: &QualifiedEnv,
        version: Option<&Version>,
    ) -> Result<Revision, StoreError> {
        let number = self.resolve_version(org, env, version).await?;
        let row = self
            .pool
            .fetch_optional(
                "SELECT r.number, r.yaml, r.author, r.created_at, r.retracted FROM revisions r \
                 JOIN environments e ON e.id = r.env_id JOIN orgs o ON o.id = e.org_id \
                 WHERE o.name = $1 AND e.project = $2 AND e.name = $3 AND r.number = $4",
                args![
                    org.as_str(),
                    env.project.as_str(),
                    env.env.as_str(),
                    number as i64
                ],
                "reading a revision",
            )
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!("revision {number} of environment {org}/{env}"))
            })?;
        Ok(Revision {
            number: row.i64(0)? as u64,
            yaml: row.text(1)?,
            author: row.text(2)?,
            created_at: row.i64(3)?,
            retracted: row.flag(4)?,
        })
    }

    /// Revisions newest first, starting below `before` (`None`: from the newest), at most `limit`.
    pub async fn list_revisions(
        &self,
        org: &OrgName,
        env: &QualifiedEnv,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<RevisionSummary>, StoreError> {
        let mut c = &self.pool;
        let key = env_key(&mut c, org, env).await?;
        let rows = self
            .pool
            .fetch_all(
                "SELECT number, author, created_at, retracted FROM revisions WHERE env_id = $1 AND number < $2 \
                 ORDER BY number DESC LIMIT $3",
                args![key.env_id, before.map(|b| b as i64).unwrap_or(i64::MAX), limit.clamp(1, 1000) as i64],
                "listing revisions",
            )
            .await?;
        let tags = self.list_revision_tags(org, env).await?;
        rows.iter()
            .map(|r| {
                let number = r.i64(0)? as u64;
                let mut names: Vec<String> = tags
                    .iter()
                    .filter(|t| t.revision == number)
                    .map(|t| t.name.clone())
                    .collect();
                if number == key.head {
                    names.insert(0, "latest".to_owned());
                }
                Ok(RevisionSummary {
                    number,
                    author: r.text(1)?,
                    created_at: r.i64(2)?,
                    retracted: r.flag(3)?,
                    tags: names,
                })
            })
            .collect()
    }

    /// Marks a revision retracted. Its text stays as it was.
    pub async fn retract_revision(
        &self,
        org: &OrgName,
        env: &QualifiedEnv,
        number: u64,
        reason: Option<&str>,
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_write().await?;
        let key = env_key(&mut tx, org, env).await?;
        let n = tx
            .execute(
                "UPDATE revisions SET retracted = 1 WHERE env_id = $1 AND number = $2",
                args![key.env_id, number as i64],
                "retracting a revision",
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "revision {number} of environment {org}/{env}"
            )));
        }
        let rec = AuditRecord::new(org, "environment.revision.retract")
            .env(env)
            .revision(number)
            .details(serde_json::json!({ "reason": reason }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await
    }

    /// Creates or moves a revision tag.
    pub async fn tag_revision(
        &self,
        org: &OrgName,
        env: &QualifiedEnv,
        tag: &str,
        revision: u64,
        ctx: &AuditContext,
    ) -> Result<RevisionTag, StoreError> {
        let tag = tag_name(tag)?;
        let mut tx = self.pool.begin_write().await?;
        let key = env_key(&mut tx, org, env).await?;
        if revision == 0 || revision > key.head {
            return Err(StoreError::NotFound(format!(
                "revision {revision} of environment {org}/{env}"
            )));
        }
        let t = now();
        let row = tx
            .fetch_one(
                "INSERT INTO revision_tags (env_id, name, revision, editor, created_at, modified_at) \
                 VALUES ($1, $2, $3, $4, $5, $5) \
                 ON CONFLICT (env_id, name) DO UPDATE SET revision = $3, editor = $4, modified_at = $5 \
                 RETURNING created_at",
                args![key.env_id, tag, revision as i64, &ctx.actor, t],
                "setting a revision tag",
            )
            .await?;
        let rec = AuditRecord::new(org, "environment.revision_tag.set")
            .env(env)
            .revision(revision)
            .details(serde_json::json!({ "tag": tag }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await?;
        Ok(RevisionTag {
            name: tag.to_owned(),
            revision,
            editor: ctx.actor.clone(),
            created_at: row.i64(0)?,
            modified_at: t,
        })
    }

    /// Removes a revision tag.
    pub async fn delete_revision_tag(
        &self,
        org: &OrgName,
        env: &QualifiedEnv,
        tag: &str,
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        let tag = tag_name(tag)?;
        let mut tx = self.pool.begin_write().await?;
        let key = env_key(&mut tx, org, env).await?;
        let n = tx
            .execute(
                "DELETE FROM revision_tags WHERE env_id = $1 AND name = $2",
                args![key.env_id, tag],
                "deleting a revision tag",
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "tag {tag:?} of environment {org}/{env}"
            )));
        }
        let rec = AuditRecord::new(org, "environment.revision_tag.delete")
            .env(env)
            .details(serde_json::json!({ "tag": tag }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await
    }

    /// The stored revision tags, by name (the implicit `latest` is not listed).
    pub async fn list_revision_tags(
        &self,
        org: &OrgName,
        env: &QualifiedEnv,
    ) -> Result<Vec<RevisionTag>, StoreError> {
        let mut c = &self.pool;
        let key = env_key(&mut c, org, env).await?;
        self.pool
            .fetch_all(
                "SELECT name, revision, editor, created_at, modified_at FROM revision_tags WHERE env_id = $1 ORDER BY name",
                args![key.env_id],
                "listing revision tags",
            )
            .await?
            .iter()
            .map(|r| {
                Ok(RevisionTag {
                    name: r.text(0)?,
                    revision: r.i64(1)? as u64,
                    editor: r.text(2)?,
                    created_at: r.i64(3)?,
                    modified_at: r.i64(4)?,
                })
            })
            .collect()
    }
}
