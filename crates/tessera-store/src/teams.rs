//! Teams, their members, their environment grants and their custom roles.

use tessera_types::{OrgName, Permission, QualifiedEnv};

use crate::audit::{self, AuditContext, AuditRecord};
use crate::db::{args, is_unique_violation, Conn};
use crate::environments::env_key;
use crate::members::member_user_id;
use crate::orgs::{org_id, parse_permission};
use crate::{now, Store, StoreError, UnixTime};

/// A team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    /// Its name.
    pub name: String,
    /// Member logins, sorted.
    pub members: Vec<String>,
    /// Custom role ids assigned to the team.
    pub role_ids: Vec<String>,
    /// When it was created.
    pub created_at: UnixTime,
}

/// A team's permission on one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamGrant {
    /// The environment.
    pub env: QualifiedEnv,
    /// The level granted.
    pub permission: Permission,
    /// The longest open session the team may ask for, in seconds.
    pub max_open_duration_seconds: Option<i64>,
}

fn check_team_name(name: &str) -> Result<(), StoreError> {
    let ok = (1..=100).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "invalid team name {name:?}: use 1 to 100 letters, digits, '-', '_' or '.'"
        )))
    }
}

pub(crate) async fn team_id<C: Conn>(
    c: &mut C,
    org_id: i64,
    org: &OrgName,
    team: &str,
) -> Result<i64, StoreError> {
    c.fetch_optional(
        "SELECT id FROM teams WHERE org_id = $1 AND name = $2",
        args![org_id, team],
        "looking up a team",
    )
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("team {team:?} of organization {org}")))?
    .i64(0)
}

pub(crate) async fn team_grants<C: Conn>(
    c: &mut C,
    team_id: i64,
) -> Result<Vec<TeamGrant>, StoreError> {
    c.fetch_all(
        "SELECT e.project, e.name, g.permission, g.max_open_duration_seconds FROM team_env_grants g \
         JOIN environments e ON e.id = g.env_id WHERE g.team_id = $1 ORDER BY e.project, e.name",
        args![team_id],
        "listing team grants",
    )
    .await?
    .iter()
    .map(|r| {
        let name = format!("{}/{}", r.text(0)?, r.text(1)?);
        Ok(TeamGrant {
            env: name.parse().map_err(|_| StoreError::Corrupt(format!("environment name {name:?}")))?,
            permission: parse_permission(&r.text(2)?)?,
            max_open_duration_seconds: r.opt_i64(3)?,
        })
    })
    .collect()
}

impl Store {
    /// Creates an empty team.
    pub async fn create_team(
        &self,
        org: &OrgName,
        name: &str,
        ctx: &AuditContext,
    ) -> Result<Team, StoreError> {
        check_team_name(name)?;
        let mut tx = self.pool.begin_write().await?;
        let oid = org_id(&mut tx, org).await?;
        let t = now();
        tx.execute(
            "INSERT INTO teams (org_id, name, created_at) VALUES ($1, $2, $3)",
            args![oid, name, t],
            "creating a team",
        )
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AlreadyExists(format!("team {name:?} of organization {org}"))
            } else {
                e
            }
        })?;
        let rec = AuditRecord::new(org, "team.create").details(serde_json::json!({ "team": name }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await?;
        Ok(Team {
            name: name.to_owned(),
            members: vec![],
            role_ids: vec![],
            created_at: t,
        })
    }

    /// A team with its members and roles, or `NotFound`.
    pub async fn team(&self, org: &OrgName, name: &str) -> Result<Team, StoreError> {
        let mut c = &self.pool;
        let oid = org_id(&mut c, org).await?;
        let row = self
            .pool
            .fetch_optional(
                "SELECT id, created_at FROM teams WHERE org_id = $1 AND name = $2",
                args![oid, name],
                "reading a team",
            )
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("team {name:?} of organization {org}")))?;
        let tid = row.i64(0)?;
        let members = self
            .pool
            .fetch_all(
                "SELECT u.login FROM team_members tm JOIN users u ON u.id = tm.user_id WHERE tm.team_id = $1 ORDER BY u.login",
                args![tid],
                "listing team members",
            )
            .await?
            .iter()
            .map(|r| r.text(0))
            .collect::<Result<_, _>>()?;
        let role_ids = self
            .pool
            .fetch_all(
                "SELECT role_id FROM team_roles WHERE team_id = $1 ORDER BY role_id",
                args![tid],
                "listing team roles",
            )
            .await?
            .iter()
            .map(|r| r.text(0))
            .collect::<Result<_, _>>()?;
        Ok(Team {
            name: name.to_owned(),
            members,
            role_ids,
            created_at: row.i64(1)?,
        })
    }

    /// Every team name of an organization.
    pub async fn list_teams(&self, org: &OrgName) -> Result<Vec<String>, StoreError> {
        let mut c = &self.pool;
        let oid = org_id(&mut c, org).await?;
        self.pool
            .fetch_all(
                "SELECT name FROM teams WHERE org_id = $1 ORDER BY name",
                args![oid],
                "listing teams",
            )
            .await?
            .iter()
            .map(|r| r.text(0))
            .collect()
    }

    /// Deletes a team with its grants, roles and tokens.
    pub async fn delete_team(
        &self,
        org: &OrgName,
        name: &str,
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_write().await?;
        let oid = org_id(&mut tx, org).await?;
        let tid = team_id(&mut tx, oid, org, name).await?;
        tx.execute(
            "DELETE FROM teams WHERE id = $1",
            args![tid],
            "deleting a team",
        )
        .await?;
        let rec = AuditRecord::new(org, "team.delete").details(serde_json::json!({ "team": name }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await
    }

    /// Adds a member of the organization to a team (idempotent).
    pub async fn add_team_member(
        &self,
        org: &OrgName,
        team: &str,
        login: &str,
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_write().await?;
        let oid = org_id(&mut tx, org).await?;
        let tid = team_id(&mut tx, oid, org, team).await?;
        let uid = member_user_id(&mut tx, oid, org, login).await?;
        tx.execute(
            "INSERT INTO team_members (team_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            args![tid, uid],
            "adding a team member",
        )
        .await?;
        let rec = AuditRecord::new(org, "team.member.add")
            .details(serde_json::json!({ "team": team, "login": login }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await
    }

    /// Removes a user from a team.
    pub async fn remove_team_member(
        &self,
        org: &OrgName,
        team: &str,
        login: &str,
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_write().await?;
        let oid = org_id(&mut tx, org).await?;
        let tid = team_id(&mut tx, oid, org, team).await?;
        let uid = member_user_id(&mut tx, oid, org, login).await?;
        let n = tx
            .execute(
                "DELETE FROM team_members WHERE team_id = $1 AND user_id = $2",
                args![tid, uid],
                "removing a team member",
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "member {login:?} of team {team:?} in organization {org}"
            )));
        }
        let rec = AuditRecord::new(org, "team.member.remove")
            .details(serde_json::json!({ "team": team, "login": login }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await
    }

    /// Sets a team's permission on an environment; `Permission::None` removes the grant.
    pub async fn set_team_grant(
        &self,
        org: &OrgName,
        team: &str,
        env: &QualifiedEnv,
        permission: Permission,
        max_open_duration_seconds: Option<i64>,
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        if max_open_duration_seconds.is_some_and(|s| s <= 0) {
            return Err(StoreError::Invalid(
                "maxOpenDuration must be positive".into(),
            ));
        }
        let mut tx = self.pool.begin_write().await?;
        let key = env_key(&mut tx, org, env).await?;
        let tid = team_id(&mut tx, key.org_id, org, team).await?;
        if permission == Permission::None {
            tx.execute(
                "DELETE FROM team_env_grants WHERE team_id = $1 AND env_id = $2",
                args![tid, key.env_id],
                "removing a team grant",
            )
            .await?;
        } else {
            tx.execute(
                "INSERT INTO team_env_grants (team_id, env_id, permission, max_open_duration_seconds) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (team_id, env_id) DO UPDATE SET permission = $3, max_open_duration_seconds = $4",
                args![tid, key.env_id, permission.as_str(), max_open_duration_seconds],
                "setting a team grant",
            )
            .await?;
        }
        let rec = AuditRecord::new(org, "team.environment.grant").env(env).details(serde_json::json!({
            "team": team, "permission": permission.as_str(), "maxOpenDuration": max_open_duration_seconds,
        }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await
    }

    /// A team's environment grants.
    pub async fn list_team_grants(
        &self,
        org: &OrgName,
        team: &str,
    ) -> Result<Vec<TeamGrant>, StoreError> {
        let mut c = &self.pool;
        let oid = org_id(&mut c, org).await?;
        let tid = team_id(&mut c, oid, org, team).await?;
        team_grants(&mut c, tid).await
    }

    /// Assigns (`true`) or unassigns a custom role to a team.
    pub async fn set_team_role(
        &self,
        org: &OrgName,
        team: &str,
        role_id: &str,
        assigned: bool,
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_write().await?;
        let oid = org_id(&mut tx, org).await?;
        let tid = team_id(&mut tx, oid, org, team).await?;
        crate::roles::role_row_id(&mut tx, oid, org, role_id).await?;
        let (sql, event) = if assigned {
            (
                "INSERT INTO team_roles (team_id, role_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                "team.role.assign",
            )
        } else {
            (
                "DELETE FROM team_roles WHERE team_id = $1 AND role_id = $2",
                "team.role.unassign",
            )
        };
        tx.execute(sql, args![tid, role_id], "assigning a team role")
            .await?;
        let rec = AuditRecord::new(org, event)
            .details(serde_json::json!({ "team": team, "roleId": role_id }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await
    }
}
