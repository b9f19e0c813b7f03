//! Custom roles (scopes, optionally limited to environments or environment tags) and
//! reusable permission sets.

use std::collections::BTreeMap;

use tessera_types::{OrgName, ProjectName, QualifiedEnv, Scope};

use crate::audit::{self, AuditContext, AuditRecord};
use crate::db::{args, is_unique_violation, Conn, Row};
use crate::orgs::org_id;
use crate::{new_id, now, Store, StoreError, UnixTime};

/// What a new custom role is made of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleSpec {
    /// Its name, unique in the organization.
    pub name: String,
    /// Scopes granted directly.
    pub scopes: Vec<Scope>,
    /// If set, the role applies only to these environments (or those matching `environment_tags`).
    pub environments: Option<Vec<QualifiedEnv>>,
    /// If set, the role applies to environments whose tags match every `tag: glob`.
    pub environment_tags: Option<BTreeMap<String, String>>,
    /// If set, the role applies to every environment of these projects, present and future.
    pub projects: Option<Vec<ProjectName>>,
    /// Permission sets whose scopes the role also grants.
    pub permission_sets: Vec<String>,
}

/// A custom role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// Its id.
    pub id: String,
    /// What it was created with.
    pub spec: RoleSpec,
    /// Its own scopes plus those of its permission sets, sorted, without duplicates.
    pub effective_scopes: Vec<Scope>,
    /// When it was created.
    pub created_at: UnixTime,
}

/// The built-in roles every organization has, as `(label, name, scopes)`. Their ids are
/// `<label>@<organization>` (e.g. `opener@acme`), so they can be assigned without a lookup.
pub const BUILTIN_ROLES: [(&str, &str, &[Scope]); 4] = [
    ("reader", "Environment Read", &[Scope::EnvironmentRead]),
    (
        "opener",
        "Environment Open",
        &[Scope::EnvironmentRead, Scope::EnvironmentOpen],
    ),
    (
        "editor",
        "Environment Write",
        &[
            Scope::EnvironmentRead,
            Scope::EnvironmentOpen,
            Scope::EnvironmentWrite,
            Scope::EnvironmentTag,
        ],
    ),
    (
        "admin",
        "Environment Admin",
        &[
            Scope::EnvironmentRead,
            Scope::EnvironmentOpen,
            Scope::EnvironmentWrite,
            Scope::EnvironmentTag,
            Scope::EnvironmentRotate,
            Scope::EnvironmentDelete,
        ],
    ),
];

/// Creates the built-in roles of a new organization, in its creating transaction.
pub(crate) async fn seed_builtin_roles(
    tx: &mut crate::db::Tx,
    org_id: i64,
    org: &OrgName,
    at: UnixTime,
) -> Result<(), StoreError> {
    for (label, name, scopes) in BUILTIN_ROLES {
        let scopes: Vec<Scope> = scopes.to_vec();
        tx.execute(
            "INSERT INTO roles (id, org_id, name, scopes, environments, environment_tags, permission_set_ids, created_at) \
             VALUES ($1, $2, $3, $4, NULL, NULL, '[]', $5)",
            args![&format!("{label}@{org}"), org_id, name, &to_json(&scopes)?, at],
            "creating the built-in roles",
        )
        .await?;
    }
    Ok(())
}

/// A named, reusable list of scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionSet {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<Scope>,
    /// When it was created.
    pub created_at: UnixTime,
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn check_name(name: &str, what: &str) -> Result<(), StoreError> {
    if (1..=100).contains(&name.chars().count()) && !name.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "a {what} name is 1 to 100 printable characters"
        )))
    }
}

pub(crate) async fn role_row_id<C: Conn>(
    c: &mut C,
    org_id: i64,
    org: &OrgName,
    id: &str,
) -> Result<(), StoreError> {
    c.fetch_optional(
        "SELECT id FROM roles WHERE org_id = $1 AND id = $2",
        args![org_id, id],
        "looking up a role",
    )
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("role {id:?} of organization {org}")))?;
    Ok(())
}

const ROLE_COLUMNS: &str =
    "id, name, scopes, environments, environment_tags, permission_set_ids, created_at, projects";

fn decode_role(r: &Row) -> Result<(String, RoleSpec, UnixTime), StoreError> {
    Ok((
        r.text(0)?,
        RoleSpec {
            name: r.text(1)?,
            scopes: from_json(&r.text(2)?, "role scopes")?,
            environments: r
                .opt_text(3)?
                .map(|s| from_json(&s, "role environments"))
                .transpose()?,
            environment_tags: r
                .opt_text(4)?
                .map(|s| from_json(&s, "role environment tags"))
                .transpose()?,
            permission_sets: from_json(&r.text(5)?, "role permission sets")?,
            projects: r
                .opt_text(7)?
                .map(|s| from_json(&s, "role projects"))
                .transpose()?,
        },
        r.i64(6)?,
    ))
}

/// Loads roles of an organization by id, resolving their permission sets.
pub(crate) async fn load_roles<C: Conn>(
    c: &mut C,
    org_id: i64,
    ids: &[String],
) -> Result<Vec<Role>, StoreError> {
    let mut out = Vec::new();
    for id in ids {
        let Some(r) = c
            .fetch_optional(
                &format!("SELECT {ROLE_COLUMNS} FROM roles WHERE org_id = $1 AND id = $2"),
                args![org_id, id.as_str()],
                "reading a role",
            )
            .await?
        else {
            continue;
        };
        let (id, spec, created_at) = decode_role(&r)?;
        let mut scopes = spec.scopes.clone();
        for set in &spec.permission_sets {
            if let Some(row) = c
                .fetch_optional(
                    "SELECT scopes FROM permission_sets WHERE org_id = $1 AND id = $2",
                    args![org_id, set.as_str()],
                    "reading a permission set",
                )
                .await?
            {
                scopes.extend(from_json::<Vec<Scope>>(
                    &row.text(0)?,
                    "permission set scopes",
                )?);
            }
        }
        scopes.sort();
        scopes.dedup();
        out.push(Role {
            id,
            spec,
            effective_scopes: scopes,
            created_at,
        });
    }
    Ok(out)
}

impl Store {
    /// Creates a permission set.
    pub async fn create_permission_set(
        &self,
        org: &OrgName,
        name: &str,
        scopes: &[Scope],
        ctx: &AuditContext,
    ) -> Result<PermissionSet, StoreError> {
        check_name(name, "permission set")?;
        let mut tx = self.pool.begin_write().await?;
        let oid = org_id(&mut tx, org).await?;
        let id = new_id()?;
        let t = now();
        tx.execute(
            "INSERT INTO permission_sets (id, org_id, name, scopes, created_at) VALUES ($1, $2, $3, $4, $5)",
            args![&id, oid, name, &to_json(&scopes)?, t],
            "creating a permission set",
        )
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AlreadyExists(format!("permission set {name:?} of organization {org}"))
            } else {
                e
            }
        })?;
        let rec = AuditRecord::new(org, "permission_set.create")
            .details(serde_json::json!({ "id": id, "name": name }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await?;
        Ok(PermissionSet {
            id,
            name: name.to_owned(),
            scopes: scopes.to_vec(),
            created_at: t,
        })
    }

    /// Every permission set of an organization.
    pub async fn list_permission_sets(
        &self,
        org: &OrgName,
    ) -> Result<Vec<PermissionSet>, StoreError> {
        let mut c = &self.pool;
        let oid = org_id(&mut c, org).await?;
        self.pool
            .fetch_all(
                "SELECT id, name, scopes, created_at FROM permission_sets WHERE org_id = $1 ORDER BY name",
                args![oid],
                "listing permission sets",
            )
            .await?
            .iter()
            .map(|r| {
                Ok(PermissionSet {
                    id: r.text(0)?,
                    name: r.text(1)?,
                    scopes: from_json(&r.text(2)?, "permission set scopes")?,
                    created_at: r.i64(3)?,
                })
            })
            .collect()
    }

    /// Creates a custom role. Its permission sets must exist in the organization.
    pub async fn create_role(
        &self,
        org: &OrgName,
        spec: &RoleSpec,
        ctx: &AuditContext,
    ) -> Result<Role, StoreError> {
        check_name(&spec.name, "role")?;
        let mut tx = self.pool.begin_write().await?;
        let oid = org_id(&mut tx, org).await?;
        for set in &spec.permission_sets {
            tx.fetch_optional(
                "SELECT id FROM permission_sets WHERE org_id = $1 AND id = $2",
                args![oid, set.as_str()],
                "looking up a permission set",
            )
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!("permission set {set:?} of organization {org}"))
            })?;
        }
        let id = new_id()?;
        let envs = spec.environments.as_ref().map(to_json).transpose()?;
        let tags = spec.environment_tags.as_ref().map(to_json).transpose()?;
        let projects = spec.projects.as_ref().map(to_json).transpose()?;
        tx.execute(
            "INSERT INTO roles (id, org_id, name, scopes, environments, environment_tags, permission_set_ids, created_at, projects) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            args![
                &id,
                oid,
                spec.name.as_str(),
                &to_json(&spec.scopes)?,
                envs.as_deref(),
                tags.as_deref(),
                &to_json(&spec.permission_sets)?,
                now(),
                projects.as_deref()
            ],
            "creating a role",
        )
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AlreadyExists(format!("role {:?} of organization {org}", spec.name))
            } else {
                e
            }
        })?;
        let rec = AuditRecord::new(org, "role.create")
            .details(serde_json::json!({ "id": id, "name": spec.name }));
        audit::append(&mut tx, ctx, &rec).await?;
        let role = load_roles(&mut tx, oid, std::slice::from_ref(&id))
            .await?
            .pop()
            .ok_or_else(|| StoreError::Corrupt("a role just created is missing".into()))?;
        tx.commit().await?;
        Ok(role)
    }

    /// A role, or `NotFound`.
    pub async fn role(&self, org: &OrgName, id: &str) -> Result<Role, StoreError> {
        let mut c = &self.pool;
        let oid = org_id(&mut c, org).await?;
        load_roles(&mut c, oid, &[id.to_owned()])
            .await?
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("role {id:?} of organization {org}")))
    }

    /// Every role of an organization, by name.
    pub async fn list_roles(&self, org: &OrgName) -> Result<Vec<Role>, StoreError> {
        let mut c = &self.pool;
        let oid = org_id(&mut c, org).await?;
        let ids = self
            .pool
            .fetch_all(
                "SELECT id FROM roles WHERE org_id = $1 ORDER BY name",
                args![oid],
                "listing roles",
            )
            .await?
            .iter()
            .map(|r| r.text(0))
            .collect::<Result<Vec<_>, _>>()?;
        load_roles(&mut c, oid, &ids).await
    }

    /// Deletes a role; members lose it, team assignments and tokens acting with it go.
    pub async fn delete_role(
        &self,
        org: &OrgName,
        id: &str,
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_write().await?;
        let oid = org_id(&mut tx, org).await?;
        role_row_id(&mut tx, oid, org, id).await?;
        tx.execute(
            "DELETE FROM roles WHERE org_id = $1 AND id = $2",
            args![oid, id],
            "deleting a role",
        )
        .await?;
        let rec = AuditRecord::new(org, "role.delete").details(serde_json::json!({ "id": id }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await
    }
}
