//! Effective permissions, and [`OpenGrant`]: the proof that an Open check passed.
//!
//! [`effective_permission`] is a pure function over [`AccessFacts`] (what the store knows
//! about a principal in an organization) and an environment; it returns the level and every
//! rule that grants it. [`Store::authorize_open`] loads the facts, checks Open on every
//! environment asked for, writes one audit entry (allowed, or denied naming the environment
//! that lacks Open) and only then returns an [`OpenGrant`].
//!
//! *Boundary:* `OpenGrant` has private fields and no public constructor; decryption
//! ([`Store::decrypt_secret`]), sessions and signing keys take `&OpenGrant`, so code that
//! skips the check does not compile.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tessera_types::{OrgName, Permission, QualifiedEnv, Scope};

use crate::audit::{AuditContext, AuditRecord};
use crate::db::{args, Conn};
use crate::members::OrgRole;
use crate::orgs::{org_id, parse_permission};
use crate::roles::load_roles;
use crate::teams::{team_grants, team_id};
use crate::tokens::{AccessToken, TokenOwner};
use crate::{Snapshot, Store, StoreError};

/// Who asks for access.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// A member (signed in, or through a personal token).
    Member {
        /// The login.
        login: String,
    },
    /// A team token.
    Team {
        /// The team name.
        team: String,
    },
    /// An organization token.
    Organization {
        /// The token id.
        token_id: String,
        /// The custom role it acts with.
        role_id: Option<String>,
        /// Whether it acts as an admin.
        admin: bool,
    },
}

impl Principal {
    /// The principal a token acts as.
    pub fn from_token(token: &AccessToken) -> Principal {
        match &token.owner {
            TokenOwner::User(login) => Principal::Member {
                login: login.clone(),
            },
            TokenOwner::Team(team) => Principal::Team { team: team.clone() },
            TokenOwner::Organization { role_id, admin } => Principal::Organization {
                token_id: token.id.clone(),
                role_id: role_id.clone(),
                admin: *admin,
            },
        }
    }

    /// A short description for audit entries and grants: `alice`, `team:ops`, `token:<id>`.
    pub fn describe(&self) -> String {
        match self {
            Principal::Member { login } => login.clone(),
            Principal::Team { team } => format!("team:{team}"),
            Principal::Organization { token_id, .. } => format!("token:{token_id}"),
        }
    }
}

/// A custom role as access control sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleFacts {
    /// The role's name.
    pub name: String,
    /// Its effective scopes.
    pub scopes: Vec<Scope>,
    /// The environments it is limited to, if any.
    pub environments: Option<Vec<QualifiedEnv>>,
    /// The environment tag globs it is limited to, if any.
    pub environment_tags: Option<BTreeMap<String, String>>,
    /// The projects whose environments it applies to, if any.
    pub projects: Option<Vec<tessera_types::ProjectName>>,
}

/// Everything that decides a principal's permissions in one organization.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessFacts {
    /// The organization default, when it applies to the principal (members, their
    /// personal tokens, plain organization tokens).
    pub default_permission: Option<Permission>,
    /// Whether the principal is an organization admin.
    pub admin: bool,
    /// Team grants: team name, environment, level.
    pub team_grants: Vec<(String, QualifiedEnv, Permission)>,
    /// Custom roles that apply.
    pub roles: Vec<RoleFacts>,
}

/// The environment whose permission is asked.
#[derive(Debug, Clone, Copy)]
pub struct EnvFacts<'a> {
    /// `project/env`.
    pub name: &'a QualifiedEnv,
    /// Its environment tags.
    pub tags: &'a BTreeMap<String, String>,
}

/// Where a permission comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantSource {
    /// The organization default.
    Default,
    /// A custom role.
    Role,
    /// A team grant.
    Team,
    /// Organization admin.
    Admin,
}

/// One rule that grants a level.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GrantRule {
    /// What kind of rule.
    pub source: GrantSource,
    /// The role or team name (`default`/`admin` for those).
    pub name: String,
    /// The level it grants.
    pub permission: Permission,
}

/// A principal's permission on one environment, with every rule that grants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectivePermission {
    /// The highest level granted.
    pub permission: Permission,
    /// Every rule granting more than `none`.
    pub grants: Vec<GrantRule>,
}

/// Whole-value glob match with `*` (any run) and `?` (one character).
pub fn glob_match(pattern: &str, value: &str) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    let (mut pi, mut vi, mut star, mut mark) = (0, 0, None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn role_applies(role: &RoleFacts, env: &EnvFacts<'_>) -> bool {
    if role.environments.is_none() && role.environment_tags.is_none() && role.projects.is_none() {
        return true;
    }
    if role
        .projects
        .as_ref()
        .is_some_and(|p| p.contains(&env.name.project))
    {
        return true;
    }
    let listed = role
        .environments
        .as_ref()
        .is_some_and(|l| l.contains(env.name));
    let tagged = role.environment_tags.as_ref().is_some_and(|globs| {
        !globs.is_empty()
            && globs
                .iter()
                .all(|(tag, glob)| env.tags.get(tag).is_some_and(|v| glob_match(glob, v)))
    });
    listed || tagged
}

/// The permission the facts give on `env`.
pub fn effective_permission(facts: &AccessFacts, env: &EnvFacts<'_>) -> EffectivePermission {
    let mut grants = Vec::new();
    if facts.admin {
        grants.push(GrantRule {
            source: GrantSource::Admin,
            name: "admin".into(),
            permission: Permission::Admin,
        });
    }
    if let Some(p) = facts.default_permission.filter(|p| *p > Permission::None) {
        grants.push(GrantRule {
            source: GrantSource::Default,
            name: "default".into(),
            permission: p,
        });
    }
    for (team, e, p) in &facts.team_grants {
        if e == env.name && *p > Permission::None {
            grants.push(GrantRule {
                source: GrantSource::Team,
                name: team.clone(),
                permission: *p,
            });
        }
    }
    for role in &facts.roles {
        let level = role
            .scopes
            .iter()
            .filter_map(|s| s.implied_permission())
            .max();
        if let Some(p) = level.filter(|_| role_applies(role, env)) {
            grants.push(GrantRule {
                source: GrantSource::Role,
                name: role.name.clone(),
                permission: p,
            });
        }
    }
    let permission = grants
        .iter()
        .map(|g| g.permission)
        .max()
        .unwrap_or(Permission::None);
    EffectivePermission { permission, grants }
}

/// Proof that an Open check passed for a principal, an organization and a set of
/// environments. Only [`Store::authorize_open`] makes one.
#[derive(Debug)]
pub struct OpenGrant {
    principal: String,
    org: OrgName,
    envs: BTreeSet<QualifiedEnv>,
    /// When the check was decided: what the grant's holder looks up next sees the same state.
    pub(crate) at: Snapshot,
}

impl OpenGrant {
    /// Who was granted.
    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// The organization.
    pub fn org(&self) -> &OrgName {
        &self.org
    }

    /// The environments covered.
    pub fn environments(&self) -> impl Iterator<Item = &QualifiedEnv> {
        self.envs.iter()
    }

    /// Whether the grant covers `org`/`env`.
    pub fn covers(&self, org: &OrgName, env: &QualifiedEnv) -> bool {
        &self.org == org && self.envs.contains(env)
    }
}

/// What an Open check is for; it names the audit entry the check writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenPurpose {
    /// Evaluating an environment with its secrets and providers (`environment.open`).
    Open,
    /// Returning a definition with its secrets in plaintext (`environment.decrypt`).
    Decrypt,
    /// Reading an open session's values (`environment.session.read`).
    ReadSession,
    /// Copying an environment, re-encrypting its secrets for the copy (`environment.clone`).
    Clone,
}

impl OpenPurpose {
    /// The audit event name.
    pub fn event(self) -> &'static str {
        match self {
            OpenPurpose::Open => "environment.open",
            OpenPurpose::Decrypt => "environment.decrypt",
            OpenPurpose::ReadSession => "environment.session.read",
            OpenPurpose::Clone => "environment.clone",
        }
    }
}

/// Why [`Store::authorize_open`] refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizeError {
    /// The principal lacks Open on an environment (the denial was audited).
    #[error("{principal} may not open {org}/{env}: permission is {permission}, open is required")]
    Denied {
        /// Who asked.
        principal: String,
        /// The organization.
        org: String,
        /// The first environment lacking Open.
        env: String,
        /// The principal's permission there (`none` also when it does not exist), so the
        /// API can answer 404 rather than 403 when the environment is not visible.
        permission: Permission,
    },
    /// The store failed (including writing the audit entry): nothing was granted.
    #[error(transparent)]
    Store(#[from] StoreError),
}

async fn facts<C: Conn>(
    c: &mut C,
    principal: &Principal,
    org: &OrgName,
) -> Result<AccessFacts, StoreError> {
    let oid = org_id(c, org).await?;
    let row = c
        .fetch_optional(
            "SELECT default_permission FROM orgs WHERE id = $1",
            args![oid],
            "reading settings",
        )
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("organization {org}")))?;
    let default = parse_permission(&row.text(0)?)?;
    let mut facts = AccessFacts::default();
    let mut role_ids = Vec::new();
    let mut teams = Vec::new();
    match principal {
        Principal::Member { login } => {
            let Some(m) = c
                .fetch_optional(
                    "SELECT m.role, m.role_id, u.id FROM members m JOIN users u ON u.id = m.user_id \
                     WHERE m.org_id = $1 AND u.login = $2",
                    args![oid, login.as_str()],
                    "reading a member",
                )
                .await?
            else {
                return Ok(facts); // not a member: nothing
            };
            facts.default_permission = Some(default);
            facts.admin = OrgRole::parse(&m.text(0)?)? == OrgRole::Admin;
            role_ids.extend(m.opt_text(1)?);
            for t in c
                .fetch_all(
                    "SELECT t.id, t.name FROM teams t JOIN team_members tm ON tm.team_id = t.id \
                     WHERE t.org_id = $1 AND tm.user_id = $2",
                    args![oid, m.i64(2)?],
                    "listing a member's teams",
                )
                .await?
            {
                teams.push((t.i64(0)?, t.text(1)?));
            }
        }
        Principal::Team { team } => teams.push((team_id(c, oid, org, team).await?, team.clone())),
        Principal::Organization { role_id, admin, .. } => {
            facts.admin = *admin;
            match role_id {
                Some(r) => role_ids.push(r.clone()),
                None if !admin => facts.default_permission = Some(default),
                None => {}
            }
        }
    }
    for (tid, name) in &teams {
        for g in team_grants(c, *tid).await? {
            facts.team_grants.push((name.clone(), g.env, g.permission));
        }
        for r in c
            .fetch_all(
                "SELECT role_id FROM team_roles WHERE team_id = $1",
                args![*tid],
                "listing team roles",
            )
            .await?
        {
            role_ids.push(r.text(0)?);
        }
    }
    for role in load_roles(c, oid, &role_ids).await? {
        facts.roles.push(RoleFacts {
            name: role.spec.name,
            scopes: role.effective_scopes,
            environments: role.spec.environments,
            environment_tags: role.spec.environment_tags,
            projects: role.spec.projects,
        });
    }
    Ok(facts)
}

impl Store {
    /// The facts that decide `principal`'s permissions in `org`.
    pub async fn access_facts(
        &self,
        principal: &Principal,
        org: &OrgName,
    ) -> Result<AccessFacts, StoreError> {
        let mut c = &self.pool;
        facts(&mut c, principal, org).await
    }

    /// [`Store::access_facts`] at `at`, from the cache when read at the same snapshot.
    pub async fn access_facts_at(
        &self,
        at: Snapshot,
        principal: &Principal,
        org: &OrgName,
    ) -> Result<Arc<AccessFacts>, StoreError> {
        self.caches
            .facts
            .get_or_load((org.clone(), principal.clone()), at, || async {
                self.access_facts(principal, org).await.map(Arc::new)
            })
            .await
    }

    /// `principal`'s permission on `env`, with the rules granting it (`none` when the
    /// environment does not exist).
    pub async fn effective_permission(
        &self,
        principal: &Principal,
        org: &OrgName,
        env: &QualifiedEnv,
    ) -> Result<EffectivePermission, StoreError> {
        let at = self.snapshot().await?;
        self.effective_permission_at(at, principal, org, env).await
    }

    /// [`Store::effective_permission`] at `at`, from the caches when read at it.
    pub async fn effective_permission_at(
        &self,
        at: Snapshot,
        principal: &Principal,
        org: &OrgName,
        env: &QualifiedEnv,
    ) -> Result<EffectivePermission, StoreError> {
        let facts = self.access_facts_at(at, principal, org).await?;
        Ok(match self.environment_handle_at(at, org, env).await {
            Ok(h) => effective_permission(
                &facts,
                &EnvFacts {
                    name: env,
                    tags: &h.environment.tags,
                },
            ),
            Err(StoreError::NotFound(_)) => EffectivePermission {
                permission: Permission::None,
                grants: vec![],
            },
            Err(e) => return Err(e),
        })
    }

    /// Checks that `principal` has Open on every environment of `envs` (the one opened and
    /// all it imports), writes the audit entry `environment.open` (allowed, or denied naming
    /// the first environment lacking Open), and returns the grant only if allowed.
    pub async fn authorize_open(
        &self,
        principal: &Principal,
        org: &OrgName,
        envs: &[QualifiedEnv],
        ctx: &AuditContext,
    ) -> Result<OpenGrant, AuthorizeError> {
        self.authorize_open_for(principal, org, envs, OpenPurpose::Open, ctx)
            .await
    }

    /// [`Store::authorize_open`] for another act that needs Open; the audit entry is named
    /// after `purpose` (see [`OpenPurpose::event`]).
    pub async fn authorize_open_for(
        &self,
        principal: &Principal,
        org: &OrgName,
        envs: &[QualifiedEnv],
        purpose: OpenPurpose,
        ctx: &AuditContext,
    ) -> Result<OpenGrant, AuthorizeError> {
        let at = self.snapshot().await?;
        self.authorize_open_at(at, principal, org, envs, purpose, ctx)
            .await
    }

    /// [`Store::authorize_open_for`] at `at`: the facts and environments are those of that
    /// snapshot (cached when read at it), and the grant carries it.
    pub async fn authorize_open_at(
        &self,
        at: Snapshot,
        principal: &Principal,
        org: &OrgName,
        envs: &[QualifiedEnv],
        purpose: OpenPurpose,
        ctx: &AuditContext,
    ) -> Result<OpenGrant, AuthorizeError> {
        let (grant, record) = self
            .check_open_at(at, principal, org, envs, purpose, ctx)
            .await?;
        self.record_audit(ctx, &record).await?;
        Ok(grant)
    }

    /// The Open check of an open whose result becomes a session, at `at`: as
    /// [`Store::authorize_open_at`] (a denial is audited at once), but the allowed entry is
    /// kept in the [`PendingOpen`], to be committed with the session.
    pub async fn authorize_session_open_at(
        &self,
        at: Snapshot,
        principal: &Principal,
        org: &OrgName,
        envs: &[QualifiedEnv],
        ctx: &AuditContext,
    ) -> Result<PendingOpen, AuthorizeError> {
        let (grant, record) = self
            .check_open_at(at, principal, org, envs, OpenPurpose::Open, ctx)
            .await?;
        Ok(PendingOpen {
            grant,
            ctx: ctx.clone(),
            record,
        })
    }

    /// The Open check of a session read, at `at`: as [`Store::authorize_open_at`] (a denial
    /// is audited at once), but the allowed entry is kept in the [`PendingRead`], for
    /// [`Store::read_session_recorded`] to record.
    pub async fn authorize_session_read_at(
        &self,
        at: Snapshot,
        principal: &Principal,
        org: &OrgName,
        env: &QualifiedEnv,
        ctx: &AuditContext,
    ) -> Result<PendingRead, AuthorizeError> {
        let (grant, record) = self
            .check_open_at(
                at,
                principal,
                org,
                std::slice::from_ref(env),
                OpenPurpose::ReadSession,
                ctx,
            )
            .await?;
        Ok(PendingRead {
            grant,
            ctx: ctx.clone(),
            record,
        })
    }

    /// Commits a pending open's audit entry by itself and hands its grant over: before a
    /// provider call, or when the open failed.
    pub async fn record_open(&self, pending: PendingOpen) -> Result<OpenGrant, StoreError> {
        self.record_audit(&pending.ctx, &pending.record).await?;
        Ok(pending.grant)
    }

    /// Decides Open on every environment of `envs`; a denial is audited here, an allowed
    /// check's entry is returned for the caller to commit.
    async fn check_open_at(
        &self,
        at: Snapshot,
        principal: &Principal,
        org: &OrgName,
        envs: &[QualifiedEnv],
        purpose: OpenPurpose,
        ctx: &AuditContext,
    ) -> Result<(OpenGrant, AuditRecord), AuthorizeError> {
        let facts = self.access_facts_at(at, principal, org).await?;
        let Some(root) = envs.first() else {
            return Err(StoreError::Invalid("no environment to open".into()).into());
        };
        let names: Vec<String> = envs.iter().map(|e| e.to_string()).collect();
        for env in envs {
            let permission = match self.environment_handle_at(at, org, env).await {
                Ok(h) => {
                    effective_permission(
                        &facts,
                        &EnvFacts {
                            name: env,
                            tags: &h.environment.tags,
                        },
                    )
                    .permission
                }
                Err(StoreError::NotFound(_)) => Permission::None,
                Err(e) => return Err(e.into()),
            };
            if permission < Permission::Open {
                let rec = AuditRecord::new(org, purpose.event()).env(root).denied().details(serde_json::json!({
                    "environments": names, "lacksOpen": env.to_string(), "permission": permission.as_str(),
                }));
                self.record_audit(ctx, &rec).await?;
                return Err(AuthorizeError::Denied {
                    principal: principal.describe(),
                    org: org.to_string(),
                    env: env.to_string(),
                    permission,
                });
            }
        }
        let record = AuditRecord::new(org, purpose.event())
            .env(root)
            .details(serde_json::json!({ "environments": names }));
        let grant = OpenGrant {
            principal: principal.describe(),
            org: org.clone(),
            envs: envs.iter().cloned().collect(),
            at,
        };
        Ok((grant, record))
    }
}

/// An Open check that passed for an open whose result becomes a session, its audit entry
/// not yet written. [`Store::create_session_recorded`] commits the entry and the session in
/// one transaction (one group commit instead of two); [`Store::record_open`] commits the
/// entry alone, when the open fails or before a provider is called.
///
/// *Invariant (fail closed):* the grant may decrypt, but nothing obtained with it leaves
/// the server until one of those two has returned `Ok`; provider calls, which act outside
/// the server, need the entry committed first (`tessera-server`'s `open` takes the second
/// path for any environment that calls a provider).
#[derive(Debug)]
#[must_use = "an open's audit entry is only written when the pending open is recorded"]
pub struct PendingOpen {
    pub(crate) grant: OpenGrant,
    pub(crate) ctx: AuditContext,
    pub(crate) record: AuditRecord,
}

impl PendingOpen {
    /// The grant, for decrypting the open's secrets.
    pub fn grant(&self) -> &OpenGrant {
        &self.grant
    }
}

/// An Open check that passed for reading an open session, its audit entry not yet
/// written: [`Store::read_session_recorded`] reads the session and records the entry, durably
/// before the values are returned unless the open that made the session already disclosed
/// them to the same principal.
#[derive(Debug)]
#[must_use = "a session read's audit entry is only written when the read is recorded"]
pub struct PendingRead {
    pub(crate) grant: OpenGrant,
    pub(crate) ctx: AuditContext,
    pub(crate) record: AuditRecord,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(s: &str) -> QualifiedEnv {
        s.parse().unwrap()
    }

    #[test]
    fn globs_match_whole_values() {
        assert!(glob_match("prod-*", "prod-eu"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("prod", "production"));
        assert!(!glob_match("*-eu", "prod-us"));
    }

    #[test]
    fn levels_combine_from_every_source() {
        let e = env("app/dev");
        let tags = BTreeMap::from([("stage".to_owned(), "dev-1".to_owned())]);
        let f = EnvFacts {
            name: &e,
            tags: &tags,
        };
        let none = AccessFacts::default();
        assert_eq!(effective_permission(&none, &f).permission, Permission::None);

        let facts = AccessFacts {
            default_permission: Some(Permission::Read),
            admin: false,
            team_grants: vec![("ops".into(), env("app/prod"), Permission::Admin)],
            roles: vec![RoleFacts {
                name: "dev-openers".into(),
                scopes: vec![Scope::EnvironmentRead, Scope::EnvironmentOpen],
                environments: None,
                environment_tags: Some(BTreeMap::from([("stage".into(), "dev-*".into())])),
                projects: None,
            }],
        };
        let p = effective_permission(&facts, &f);
        assert_eq!(p.permission, Permission::Open);
        assert_eq!(p.grants.len(), 2);
        let other = BTreeMap::new();
        let p = effective_permission(
            &facts,
            &EnvFacts {
                name: &env("app/prod"),
                tags: &other,
            },
        );
        assert_eq!(p.permission, Permission::Admin);
        assert_eq!(
            p.grants
                .iter()
                .find(|g| g.source == GrantSource::Team)
                .unwrap()
                .name,
            "ops"
        );
        let admin = AccessFacts {
            admin: true,
            ..AccessFacts::default()
        };
        assert_eq!(
            effective_permission(&admin, &f).permission,
            Permission::Admin
        );
    }

    #[test]
    fn roles_limited_to_environments_apply_only_there() {
        let role = RoleFacts {
            name: "r".into(),
            scopes: vec![Scope::EnvironmentWrite],
            environments: Some(vec![env("app/dev")]),
            environment_tags: None,
            projects: None,
        };
        let facts = AccessFacts {
            roles: vec![role],
            ..AccessFacts::default()
        };
        let tags = BTreeMap::new();
        let on = |n: &str| {
            effective_permission(
                &facts,
                &EnvFacts {
                    name: &env(n),
                    tags: &tags,
                },
            )
            .permission
        };
        assert_eq!(on("app/dev"), Permission::Write);
        assert_eq!(on("app/prod"), Permission::None);
    }

    #[test]
    fn roles_limited_to_projects_cover_every_environment_of_them() {
        let role = RoleFacts {
            name: "r".into(),
            scopes: vec![Scope::EnvironmentOpen],
            environments: None,
            environment_tags: None,
            projects: Some(vec!["payments".parse().unwrap()]),
        };
        let facts = AccessFacts {
            roles: vec![role],
            ..AccessFacts::default()
        };
        let tags = BTreeMap::new();
        let on = |n: &str| {
            effective_permission(
                &facts,
                &EnvFacts {
                    name: &env(n),
                    tags: &tags,
                },
            )
            .permission
        };
        assert_eq!(on("payments/dev"), Permission::Open);
        assert_eq!(on("payments/a-new-one"), Permission::Open);
        assert_eq!(on("billing/dev"), Permission::None);
    }
}
