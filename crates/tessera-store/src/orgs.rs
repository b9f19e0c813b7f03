//! Organizations and their settings.

use tessera_types::{OrgName, Permission};

use crate::audit::{self, AuditContext, AuditRecord};
use crate::db::{args, is_unique_violation, Conn, Row};
use crate::{keys, now, Store, StoreError, UnixTime};

/// An organization's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgSettings {
    /// The permission every member has on every environment; starts at `none`.
    pub default_permission: Permission,
    /// The longest lifetime a new token may ask for; `None` means no limit.
    pub max_token_lifetime_seconds: Option<i64>,
}

impl Default for OrgSettings {
    fn default() -> Self {
        OrgSettings {
            default_permission: Permission::None,
            max_token_lifetime_seconds: None,
        }
    }
}

/// An organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    /// Its name.
    pub name: OrgName,
    /// Its settings.
    pub settings: OrgSettings,
    /// When it was created.
    pub created_at: UnixTime,
}

pub(crate) fn parse_permission(s: &str) -> Result<Permission, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("permission {s:?}")))
}

fn decode(r: &Row) -> Result<Org, StoreError> {
    let name = r.text(0)?;
    Ok(Org {
        name: name
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("organization name {name:?}")))?,
        settings: OrgSettings {
            default_permission: parse_permission(&r.text(1)?)?,
            max_token_lifetime_seconds: r.opt_i64(2)?,
        },
        created_at: r.i64(3)?,
    })
}

/// The row id of an organization, or `NotFound`.
pub(crate) async fn org_id<C: Conn>(c: &mut C, org: &OrgName) -> Result<i64, StoreError> {
    c.fetch_optional(
        "SELECT id FROM orgs WHERE name = $1",
        args![org.as_str()],
        "looking up an organization",
    )
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("organization {org}")))?
    .i64(0)
}

impl Store {
    /// Creates an organization with default settings and its first data key.
    pub async fn create_org(&self, org: &OrgName, ctx: &AuditContext) -> Result<Org, StoreError> {
        let mut tx = self.pool.begin_write().await?;
        let t = now();
        let row = tx
            .fetch_one(
                "INSERT INTO orgs (name, default_permission, created_at) VALUES ($1, 'none', $2) RETURNING id",
                args![org.as_str(), t],
                "creating an organization",
            )
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::AlreadyExists(format!("organization {org}"))
                } else {
                    e
                }
            })?;
        let id = row.i64(0)?;
        keys::create_data_key(&mut tx, &self.keyring, id, org, 1).await?;
        crate::roles::seed_builtin_roles(&mut tx, id, org, t).await?;
        audit::append(&mut tx, ctx, &AuditRecord::new(org, "organization.create")).await?;
        tx.commit().await?;
        Ok(Org {
            name: org.clone(),
            settings: OrgSettings::default(),
            created_at: t,
        })
    }

    /// An organization, or `NotFound`.
    pub async fn org(&self, org: &OrgName) -> Result<Org, StoreError> {
        let row = self
            .pool
            .fetch_optional(
                "SELECT name, default_permission, max_token_lifetime_seconds, created_at FROM orgs WHERE name = $1",
                args![org.as_str()],
                "reading an organization",
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("organization {org}")))?;
        decode(&row)
    }

    /// Every organization, by name.
    pub async fn list_orgs(&self) -> Result<Vec<Org>, StoreError> {
        self.pool
            .fetch_all(
                "SELECT name, default_permission, max_token_lifetime_seconds, created_at FROM orgs ORDER BY name",
                args![],
                "listing organizations",
            )
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    /// Replaces an organization's settings. The default permission may not be `admin`.
    pub async fn update_org_settings(
        &self,
        org: &OrgName,
        settings: &OrgSettings,
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        if settings.default_permission == Permission::Admin {
            return Err(StoreError::Invalid(
                "the default environment permission may be none, read, open or write".into(),
            ));
        }
        if settings.max_token_lifetime_seconds.is_some_and(|s| s <= 0) {
            return Err(StoreError::Invalid(
                "maxTokenLifetimeSeconds must be positive".into(),
            ));
        }
        let mut tx = self.pool.begin_write().await?;
        let n = tx
            .execute(
                "UPDATE orgs SET default_permission = $1, max_token_lifetime_seconds = $2 WHERE name = $3",
                args![
                    settings.default_permission.as_str(),
                    settings.max_token_lifetime_seconds,
                    org.as_str()
                ],
                "updating organization settings",
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("organization {org}")));
        }
        let rec =
            AuditRecord::new(org, "organization.settings.update").details(serde_json::json!({
                "defaultEnvironmentPermission": settings.default_permission.as_str(),
                "maxTokenLifetimeSeconds": settings.max_token_lifetime_seconds,
            }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await
    }
}
