//! Users and their membership of organizations, with an organization role
//! (`member` or `admin`) and optionally a custom role.

use tessera_types::OrgName;

use crate::audit::{self, AuditContext, AuditRecord};
use crate::db::{args, is_unique_violation, Conn, Row, Tx};
use crate::orgs::org_id;
use crate::{now, Store, StoreError, UnixTime};

/// A member's organization role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrgRole {
    /// A plain member: the organization default and their grants apply.
    Member,
    /// An administrator: admin on every environment.
    Admin,
}

impl OrgRole {
    /// `member` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            OrgRole::Member => "member",
            OrgRole::Admin => "admin",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<OrgRole, StoreError> {
        match s {
            "member" => Ok(OrgRole::Member),
            "admin" => Ok(OrgRole::Admin),
            _ => Err(StoreError::Corrupt(format!("organization role {s:?}"))),
        }
    }
}

/// A user's membership of an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The user's login.
    pub login: String,
    /// Member or admin.
    pub role: OrgRole,
    /// A custom role assigned to the member, if any.
    pub role_id: Option<String>,
    /// When the user joined.
    pub created_at: UnixTime,
}

pub(crate) fn check_login(login: &str) -> Result<(), StoreError> {
    let ok = (1..=100).contains(&login.len())
        && login
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@+".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "invalid login {login:?}: use 1 to 100 letters, digits, '-', '_', '.', '@' or '+'"
        )))
    }
}

fn decode(r: &Row) -> Result<Member, StoreError> {
    Ok(Member {
        login: r.text(0)?,
        role: OrgRole::parse(&r.text(1)?)?,
        role_id: r.opt_text(2)?,
        created_at: r.i64(3)?,
    })
}

const COLUMNS: &str = "u.login, m.role, m.role_id, m.created_at";

/// The user id of a member of the organization, or `NotFound`.
pub(crate) async fn member_user_id<C: Conn>(
    c: &mut C,
    org_id: i64,
    org: &OrgName,
    login: &str,
) -> Result<i64, StoreError> {
    c.fetch_optional(
        "SELECT u.id FROM users u JOIN members m ON m.user_id = u.id WHERE m.org_id = $1 AND u.login = $2",
        args![org_id, login],
        "looking up a member",
    )
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("member {login:?} of organization {org}")))?
    .i64(0)
}

async fn upsert_user(tx: &mut Tx, login: &str) -> Result<i64, StoreError> {
    if let Some(r) = tx
        .fetch_optional(
            "SELECT id FROM users WHERE login = $1",
            args![login],
            "looking up a user",
        )
        .await?
    {
        return r.i64(0);
    }
    tx.fetch_one(
        "INSERT INTO users (login, created_at) VALUES ($1, $2) RETURNING id",
        args![login, now()],
        "creating a user",
    )
    .await?
    .i64(0)
}

impl Store {
    /// Adds a user (created on first use) to an organization.
    pub async fn add_member(
        &self,
        org: &OrgName,
        login: &str,
        role: OrgRole,
        ctx: &AuditContext,
    ) -> Result<Member, StoreError> {
        check_login(login)?;
        let mut tx = self.pool.begin_write().await?;
        let oid = org_id(&mut tx, org).await?;
        let uid = upsert_user(&mut tx, login).await?;
        let t = now();
        tx.execute(
            "INSERT INTO members (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
            args![oid, uid, role.as_str(), t],
            "adding a member",
        )
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AlreadyExists(format!("member {login:?} of organization {org}"))
            } else {
                e
            }
        })?;
        let rec = AuditRecord::new(org, "member.add")
            .details(serde_json::json!({ "login": login, "role": role.as_str() }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await?;
        Ok(Member {
            login: login.to_owned(),
            role,
            role_id: None,
            created_at: t,
        })
    }

    /// A member, or `NotFound`.
    pub async fn member(&self, org: &OrgName, login: &str) -> Result<Member, StoreError> {
        let row = self
            .pool
            .fetch_optional(
                &format!(
                    "SELECT {COLUMNS} FROM members m JOIN users u ON u.id = m.user_id \
                     JOIN orgs o ON o.id = m.org_id WHERE o.name = $1 AND u.login = $2"
                ),
                args![org.as_str(), login],
                "reading a member",
            )
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!("member {login:?} of organization {org}"))
            })?;
        decode(&row)
    }

    /// Every member of an organization, by login.
    pub async fn list_members(&self, org: &OrgName) -> Result<Vec<Member>, StoreError> {
        let mut c = &self.pool;
        let oid = org_id(&mut c, org).await?;
        self.pool
            .fetch_all(
                &format!("SELECT {COLUMNS} FROM members m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 ORDER BY u.login"),
                args![oid],
                "listing members",
            )
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    /// Changes a member's organization role and/or custom role (`Some(None)` removes it).
    pub async fn update_member(
        &self,
        org: &OrgName,
        login: &str,
        role: Option<OrgRole>,
        role_id: Option<Option<&str>>,
        ctx: &AuditContext,
    ) -> Result<Member, StoreError> {
        let mut tx = self.pool.begin_write().await?;
        let oid = org_id(&mut tx, org).await?;
        let uid = member_user_id(&mut tx, oid, org, login).await?;
        if let Some(r) = role {
            tx.execute(
                "UPDATE members SET role = $1 WHERE org_id = $2 AND user_id = $3",
                args![r.as_str(), oid, uid],
                "updating a member's role",
            )
            .await?;
        }
        if let Some(rid) = role_id {
            if let Some(id) = rid {
                crate::roles::role_row_id(&mut tx, oid, org, id).await?;
            }
            tx.execute(
                "UPDATE members SET role_id = $1 WHERE org_id = $2 AND user_id = $3",
                args![rid, oid, uid],
                "assigning a member's custom role",
            )
            .await?;
        }
        let rec = AuditRecord::new(org, "member.update").details(serde_json::json!({
            "login": login, "role": role.map(|r| r.as_str()), "roleId": role_id,
        }));
        audit::append(&mut tx, ctx, &rec).await?;
        let row = tx
            .fetch_one(
                &format!("SELECT {COLUMNS} FROM members m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 AND m.user_id = $2"),
                args![oid, uid],
                "reading a member",
            )
            .await?;
        let member = decode(&row)?;
        tx.commit().await?;
        Ok(member)
    }

    /// Removes a member from the organization, with their team memberships and personal tokens.
    pub async fn remove_member(
        &self,
        org: &OrgName,
        login: &str,
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_write().await?;
        let oid = org_id(&mut tx, org).await?;
        let uid = member_user_id(&mut tx, oid, org, login).await?;
        tx.execute(
            "DELETE FROM team_members WHERE user_id = $1 AND team_id IN (SELECT id FROM teams WHERE org_id = $2)",
            args![uid, oid],
            "removing team memberships",
        )
        .await?;
        tx.execute(
            "DELETE FROM access_tokens WHERE org_id = $1 AND user_id = $2",
            args![oid, uid],
            "removing personal tokens",
        )
        .await?;
        tx.execute(
            "DELETE FROM members WHERE org_id = $1 AND user_id = $2",
            args![oid, uid],
            "removing a member",
        )
        .await?;
        let rec =
            AuditRecord::new(org, "member.remove").details(serde_json::json!({ "login": login }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await
    }
}
