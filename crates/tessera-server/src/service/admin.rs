//! Organization administration: members, teams and their grants, roles and permission sets,
//! tokens, settings, the audit log, access explanations and access reviews.
//!
//! Each operation states the scope that allows it besides organization admin (`None`: admins
//! only); the store writes the audit entry of every change, and denials are audited here.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Value as Json};
use tessera_store::access::{effective_permission, EnvFacts, Principal};
use tessera_store::audit::{AuditFilter, Outcome};
use tessera_store::members::OrgRole;
use tessera_store::orgs::OrgSettings;
use tessera_store::roles::RoleSpec;
use tessera_store::tokens::{generate_token_value, AccessToken, NewToken, TokenOwner};
use tessera_store::UnixTime;
use tessera_types::{OrgName, Permission, QualifiedEnv, Scope};

use super::Service;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::wire;

fn now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `expires` as the API takes it: unix seconds, absent or 0 for never.
fn expiry(expires: Option<i64>) -> Option<UnixTime> {
    expires.filter(|e| *e != 0)
}

fn token_json(t: &AccessToken) -> Json {
    let owner = match &t.owner {
        TokenOwner::User(login) => json!({ "user": login }),
        TokenOwner::Team(team) => json!({ "team": team }),
        TokenOwner::Organization { role_id, admin } => json!({ "roleId": role_id, "admin": admin }),
    };
    json!({
        "id": t.id,
        "name": t.name,
        "kind": t.owner.kind(),
        "owner": owner,
        "created": wire::timestamp(t.created_at),
        "expires": t.expires_at.unwrap_or(0),
        "lastUsed": t.last_used_at.map(wire::timestamp),
        "revoked": t.revoked_at.is_some(),
    })
}

fn role_json(r: &tessera_store::roles::Role) -> Json {
    json!({
        "id": r.id,
        "name": r.spec.name,
        "scopes": r.spec.scopes,
        "permissions": r.spec.permission_sets,
        "effectiveScopes": r.effective_scopes,
        "environments": r.spec.environments,
        "environmentTags": r.spec.environment_tags,
        "projects": r.spec.projects,
        "created": wire::timestamp(r.created_at),
    })
}

/// What `POST roles` takes.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NewRole {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) scopes: Vec<Scope>,
    pub(crate) environments: Option<Vec<QualifiedEnv>>,
    pub(crate) environment_tags: Option<BTreeMap<String, String>>,
    pub(crate) projects: Option<Vec<tessera_types::ProjectName>>,
    #[serde(default)]
    pub(crate) permissions: Vec<String>,
}

/// What `POST tokens` takes.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NewOrgToken {
    pub(crate) name: String,
    pub(crate) role_id: Option<String>,
    #[serde(default)]
    pub(crate) admin: bool,
    pub(crate) expires: Option<i64>,
}

/// Audit log filters of `GET auditlogs`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuditQuery {
    pub(crate) start_time: Option<i64>,
    pub(crate) end_time: Option<i64>,
    pub(crate) event: Option<String>,
    pub(crate) environment: Option<String>,
    pub(crate) continuation_token: Option<String>,
    pub(crate) count: Option<u32>,
}

impl Service {
    async fn issue_token(
        &self,
        caller: &Caller,
        org: &OrgName,
        name: &str,
        owner: TokenOwner,
        expires: Option<i64>,
    ) -> Result<Json, ApiError> {
        if name.trim().is_empty() || name.len() > 200 {
            return Err(ApiError::BadRequest(
                "a token needs a name of 1 to 200 characters".into(),
            ));
        }
        let value = generate_token_value()?;
        let spec = NewToken {
            name: name.to_owned(),
            owner,
            expires_at: expiry(expires),
        };
        let t = self
            .store
            .create_token(org, &spec, &value, &caller.audit)
            .await?;
        Ok(
            json!({ "id": t.id, "tokenValue": value.expose(), "name": t.name, "expires": t.expires_at.unwrap_or(0) }),
        )
    }

    /// `GET /api/user`.
    pub(crate) fn user(&self, caller: &Caller) -> Json {
        let org = caller.org().as_str();
        let login = caller
            .login()
            .map(str::to_owned)
            .unwrap_or_else(|| caller.principal.describe());
        json!({
            "login": login,
            "name": login,
            "githubLogin": login,
            "defaultOrg": org,
            "organizations": [{ "githubLogin": org, "name": org }],
            "tokenKind": caller.token.owner.kind(),
            "tokenId": caller.token.id,
        })
    }

    /// `POST /api/user/tokens`: a personal token of the caller.
    pub(crate) async fn create_own_token(
        &self,
        caller: &Caller,
        description: &str,
        expires: Option<i64>,
    ) -> Result<Json, ApiError> {
        let login = caller.login().ok_or_else(|| {
            ApiError::BadRequest("only a personal token can create personal tokens".into())
        })?;
        let org = caller.org().clone();
        self.issue_token(
            caller,
            &org,
            description,
            TokenOwner::User(login.to_owned()),
            expires,
        )
        .await
    }

    /// `GET members`.
    pub(crate) async fn members(&self, caller: &Caller, org: &OrgName) -> Result<Json, ApiError> {
        self.require_scope(caller, org, Some(Scope::TeamManage), "member.list")
            .await?;
        let members = self.store.list_members(org).await?;
        Ok(json!({ "members": members.iter().map(|m| json!({
            "login": m.login, "role": m.role.as_str(), "roleId": m.role_id,
            "created": wire::timestamp(m.created_at),
        })).collect::<Vec<_>>() }))
    }

    /// `POST members`.
    pub(crate) async fn add_member(
        &self,
        caller: &Caller,
        org: &OrgName,
        login: &str,
        role: OrgRole,
    ) -> Result<Json, ApiError> {
        self.require_scope(caller, org, None, "member.add").await?;
        let m = self
            .store
            .add_member(org, login, role, &caller.audit)
            .await?;
        Ok(json!({ "login": m.login, "role": m.role.as_str(), "roleId": m.role_id }))
    }

    /// `PATCH members/{login}`: organization role and/or custom role (`Some(None)` removes it).
    pub(crate) async fn update_member(
        &self,
        caller: &Caller,
        org: &OrgName,
        login: &str,
        role: Option<OrgRole>,
        role_id: Option<Option<&str>>,
    ) -> Result<Json, ApiError> {
        self.require_scope(caller, org, None, "member.update")
            .await?;
        let m = self
            .store
            .update_member(org, login, role, role_id, &caller.audit)
            .await?;
        Ok(json!({ "login": m.login, "role": m.role.as_str(), "roleId": m.role_id }))
    }

    /// `DELETE members/{login}`.
    pub(crate) async fn remove_member(
        &self,
        caller: &Caller,
        org: &OrgName,
        login: &str,
    ) -> Result<(), ApiError> {
        self.require_scope(caller, org, None, "member.remove")
            .await?;
        Ok(self.store.remove_member(org, login, &caller.audit).await?)
    }

    /// `POST members/{login}/tokens`: a personal token acting as that member (admins only).
    pub(crate) async fn create_member_token(
        &self,
        caller: &Caller,
        org: &OrgName,
        login: &str,
        name: &str,
        expires: Option<i64>,
    ) -> Result<Json, ApiError> {
        self.require_scope(caller, org, None, "token.create")
            .await?;
        self.issue_token(
            caller,
            org,
            name,
            TokenOwner::User(login.to_owned()),
            expires,
        )
        .await
    }

    /// `GET teams`.
    pub(crate) async fn teams(&self, caller: &Caller, org: &OrgName) -> Result<Json, ApiError> {
        self.facts(caller, org).await?;
        Ok(json!({ "teams": self.store.list_teams(org).await? }))
    }

    /// `GET teams/{team}`.
    pub(crate) async fn team(
        &self,
        caller: &Caller,
        org: &OrgName,
        team: &str,
    ) -> Result<Json, ApiError> {
        self.facts(caller, org).await?;
        let t = self.store.team(org, team).await?;
        let grants = self.store.list_team_grants(org, team).await?;
        Ok(json!({
            "name": t.name, "members": t.members, "roleIds": t.role_ids,
            "environments": grants.iter().map(|g| json!({
                "environment": g.env, "permission": g.permission,
                "maxOpenDuration": g.max_open_duration_seconds,
            })).collect::<Vec<_>>(),
        }))
    }

    /// `POST teams`.
    pub(crate) async fn create_team(
        &self,
        caller: &Caller,
        org: &OrgName,
        name: &str,
    ) -> Result<Json, ApiError> {
        self.require_scope(caller, org, Some(Scope::TeamManage), "team.create")
            .await?;
        let t = self.store.create_team(org, name, &caller.audit).await?;
        Ok(json!({ "name": t.name, "members": t.members }))
    }

    /// `DELETE teams/{team}`.
    pub(crate) async fn delete_team(
        &self,
        caller: &Caller,
        org: &OrgName,
        name: &str,
    ) -> Result<(), ApiError> {
        self.require_scope(caller, org, Some(Scope::TeamManage), "team.delete")
            .await?;
        Ok(self.store.delete_team(org, name, &caller.audit).await?)
    }

    /// `POST teams/{team}/members` and `DELETE teams/{team}/members/{login}`.
    pub(crate) async fn set_team_member(
        &self,
        caller: &Caller,
        org: &OrgName,
        team: &str,
        login: &str,
        member: bool,
    ) -> Result<(), ApiError> {
        self.require_scope(caller, org, Some(Scope::TeamManage), "team.member.update")
            .await?;
        if member {
            self.store
                .add_team_member(org, team, login, &caller.audit)
                .await?;
        } else {
            self.store
                .remove_team_member(org, team, login, &caller.audit)
                .await?;
        }
        Ok(())
    }

    /// `PUT teams/{team}/environments/{project}/{env}`.
    pub(crate) async fn set_team_grant(
        &self,
        caller: &Caller,
        org: &OrgName,
        team: &str,
        env: &QualifiedEnv,
        permission: Permission,
        max_open_seconds: Option<i64>,
    ) -> Result<Json, ApiError> {
        self.require_scope(
            caller,
            org,
            Some(Scope::TeamManage),
            "team.environment.grant",
        )
        .await?;
        self.store
            .set_team_grant(org, team, env, permission, max_open_seconds, &caller.audit)
            .await?;
        Ok(
            json!({ "team": team, "environment": env, "permission": permission, "maxOpenDuration": max_open_seconds }),
        )
    }

    /// `PUT`/`DELETE teams/{team}/roles/{roleId}`.
    pub(crate) async fn set_team_role(
        &self,
        caller: &Caller,
        org: &OrgName,
        team: &str,
        role_id: &str,
        assigned: bool,
    ) -> Result<(), ApiError> {
        self.require_scope(caller, org, Some(Scope::RoleManage), "team.role.update")
            .await?;
        Ok(self
            .store
            .set_team_role(org, team, role_id, assigned, &caller.audit)
            .await?)
    }

    /// `POST teams/{team}/tokens`.
    pub(crate) async fn create_team_token(
        &self,
        caller: &Caller,
        org: &OrgName,
        team: &str,
        name: &str,
        expires: Option<i64>,
    ) -> Result<Json, ApiError> {
        self.require_scope(caller, org, Some(Scope::TokenCreate), "token.create")
            .await?;
        self.issue_token(
            caller,
            org,
            name,
            TokenOwner::Team(team.to_owned()),
            expires,
        )
        .await
    }

    /// `GET roles/scopes`.
    pub(crate) async fn scopes(&self, caller: &Caller, org: &OrgName) -> Result<Json, ApiError> {
        self.facts(caller, org).await?;
        Ok(json!({ "scopes": Scope::ALL.iter().map(|s| json!({
            "name": s.as_str(), "description": s.description(),
        })).collect::<Vec<_>>() }))
    }

    /// `GET roles`.
    pub(crate) async fn roles(&self, caller: &Caller, org: &OrgName) -> Result<Json, ApiError> {
        self.facts(caller, org).await?;
        let roles = self.store.list_roles(org).await?;
        Ok(json!({ "roles": roles.iter().map(role_json).collect::<Vec<_>>() }))
    }

    /// `GET roles/{id}`.
    pub(crate) async fn role(
        &self,
        caller: &Caller,
        org: &OrgName,
        id: &str,
    ) -> Result<Json, ApiError> {
        self.facts(caller, org).await?;
        Ok(role_json(&self.store.role(org, id).await?))
    }

    /// `POST roles`.
    pub(crate) async fn create_role(
        &self,
        caller: &Caller,
        org: &OrgName,
        new: NewRole,
    ) -> Result<Json, ApiError> {
        self.require_scope(caller, org, Some(Scope::RoleManage), "role.create")
            .await?;
        let spec = RoleSpec {
            name: new.name,
            scopes: new.scopes,
            environments: new.environments,
            environment_tags: new.environment_tags,
            projects: new.projects,
            permission_sets: new.permissions,
        };
        let role = self.store.create_role(org, &spec, &caller.audit).await?;
        Ok(role_json(&role))
    }

    /// `DELETE roles/{id}`.
    pub(crate) async fn delete_role(
        &self,
        caller: &Caller,
        org: &OrgName,
        id: &str,
    ) -> Result<(), ApiError> {
        self.require_scope(caller, org, Some(Scope::RoleManage), "role.delete")
            .await?;
        Ok(self.store.delete_role(org, id, &caller.audit).await?)
    }

    /// `GET permissions`.
    pub(crate) async fn permission_sets(
        &self,
        caller: &Caller,
        org: &OrgName,
    ) -> Result<Json, ApiError> {
        self.facts(caller, org).await?;
        let sets = self.store.list_permission_sets(org).await?;
        Ok(json!({ "permissions": sets.iter().map(|s| json!({
            "id": s.id, "name": s.name, "scopes": s.scopes, "created": wire::timestamp(s.created_at),
        })).collect::<Vec<_>>() }))
    }

    /// `POST permissions`.
    pub(crate) async fn create_permission_set(
        &self,
        caller: &Caller,
        org: &OrgName,
        name: &str,
        scopes: &[Scope],
    ) -> Result<Json, ApiError> {
        self.require_scope(
            caller,
            org,
            Some(Scope::RoleManage),
            "permission_set.create",
        )
        .await?;
        let s = self
            .store
            .create_permission_set(org, name, scopes, &caller.audit)
            .await?;
        Ok(json!({ "id": s.id, "name": s.name, "scopes": s.scopes }))
    }

    /// `POST tokens`: an organization token with a role, as an admin, or as a plain member.
    /// Admin tokens can only be made by admins.
    pub(crate) async fn create_org_token(
        &self,
        caller: &Caller,
        org: &OrgName,
        new: NewOrgToken,
    ) -> Result<Json, ApiError> {
        let scope = if new.admin {
            None
        } else {
            Some(Scope::TokenCreate)
        };
        self.require_scope(caller, org, scope, "token.create")
            .await?;
        if new.admin && new.role_id.is_some() {
            return Err(ApiError::BadRequest(
                "give either roleId or admin, not both".into(),
            ));
        }
        let owner = TokenOwner::Organization {
            role_id: new.role_id,
            admin: new.admin,
        };
        self.issue_token(caller, org, &new.name, owner, new.expires)
            .await
    }

    /// `GET tokens`: every token (never a value).
    pub(crate) async fn tokens(&self, caller: &Caller, org: &OrgName) -> Result<Json, ApiError> {
        self.require_scope(caller, org, Some(Scope::TokenCreate), "token.list")
            .await?;
        let tokens = self.store.list_tokens(org).await?;
        Ok(json!({ "tokens": tokens.iter().map(token_json).collect::<Vec<_>>() }))
    }

    /// `DELETE tokens/{id}` (and `teams/{team}/tokens/{id}`): revokes at once. Anyone may
    /// revoke their own personal tokens; others need admin or `token:create`.
    pub(crate) async fn revoke_token(
        &self,
        caller: &Caller,
        org: &OrgName,
        id: &str,
        team: Option<&str>,
    ) -> Result<(), ApiError> {
        caller.check_org(org)?;
        let token = self.store.token(org, id).await?;
        let own =
            matches!((&token.owner, caller.login()), (TokenOwner::User(u), Some(l)) if u == l);
        if !own {
            self.require_scope(caller, org, Some(Scope::TokenCreate), "token.revoke")
                .await?;
        }
        if let Some(team) = team {
            if token.owner != TokenOwner::Team(team.to_owned()) {
                return Err(ApiError::NotFound(format!(
                    "token {id:?} of team {team:?} not found"
                )));
            }
        }
        Ok(self.store.revoke_token(org, id, &caller.audit).await?)
    }

    /// `GET settings`.
    pub(crate) async fn settings(&self, caller: &Caller, org: &OrgName) -> Result<Json, ApiError> {
        self.facts(caller, org).await?;
        let o = self.store.org(org).await?;
        Ok(json!({
            "defaultEnvironmentPermission": o.settings.default_permission,
            "maxTokenLifetimeSeconds": o.settings.max_token_lifetime_seconds,
        }))
    }

    /// `PATCH settings`; fields not given keep their value.
    pub(crate) async fn update_settings(
        &self,
        caller: &Caller,
        org: &OrgName,
        default_permission: Option<Permission>,
        max_token_lifetime: Option<Option<i64>>,
    ) -> Result<Json, ApiError> {
        self.require_scope(caller, org, None, "organization.settings.update")
            .await?;
        let current = self.store.org(org).await?.settings;
        let settings = OrgSettings {
            default_permission: default_permission.unwrap_or(current.default_permission),
            max_token_lifetime_seconds: max_token_lifetime
                .unwrap_or(current.max_token_lifetime_seconds),
        };
        self.store
            .update_org_settings(org, &settings, &caller.audit)
            .await?;
        self.settings(caller, org).await
    }

    /// `GET auditlogs`: newest first, filtered and paginated.
    pub(crate) async fn audit_log(
        &self,
        caller: &Caller,
        org: &OrgName,
        q: AuditQuery,
    ) -> Result<Json, ApiError> {
        self.require_scope(caller, org, Some(Scope::AuditLogRead), "audit_log.read")
            .await?;
        let environment = q
            .environment
            .as_deref()
            .map(str::parse::<QualifiedEnv>)
            .transpose()?;
        let filter = AuditFilter {
            since: q.start_time,
            until: q.end_time,
            event: q.event,
            environment,
            limit: q.count,
            continuation: q.continuation_token.filter(|c| !c.is_empty()),
        };
        let page = self.store.list_audit(org, &filter).await?;
        let events: Vec<Json> = page
            .entries
            .iter()
            .map(|e| {
                json!({
                    "seq": e.seq,
                    "timestamp": e.timestamp,
                    "time": wire::timestamp(e.timestamp),
                    "event": e.event,
                    "actor": e.actor,
                    "tokenId": e.token_id,
                    "environment": e.environment,
                    "revision": e.revision,
                    "sourceIp": e.source,
                    "outcome": e.outcome,
                    "details": e.details,
                })
            })
            .collect();
        let mut body = json!({ "auditLogEvents": events });
        if let Some(c) = page.continuation {
            body["continuationToken"] = json!(c);
        }
        Ok(body)
    }

    /// `GET environments/{project}/{env}/access?principal=<login>|token:<id>`.
    pub(crate) async fn explain_access(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: &QualifiedEnv,
        principal: &str,
    ) -> Result<Json, ApiError> {
        self.require_scope(caller, org, None, "access.explain")
            .await?;
        let p = match principal.strip_prefix("token:") {
            Some(id) => Principal::from_token(&self.store.token(org, id).await?),
            None => Principal::Member {
                login: principal.to_owned(),
            },
        };
        let e = self.store.environment(org, env).await?;
        let facts = self.store.access_facts(&p, org).await?;
        let eff = effective_permission(
            &facts,
            &EnvFacts {
                name: env,
                tags: &e.tags,
            },
        );
        Ok(json!({
            "principal": p.describe(),
            "environment": env,
            "permission": eff.permission,
            "grants": eff.grants,
        }))
    }

    /// `GET access-review?unusedDays=N&maxTokenAgeDays=M`.
    pub(crate) async fn access_review(
        &self,
        caller: &Caller,
        org: &OrgName,
        unused_days: i64,
        max_token_age_days: i64,
    ) -> Result<Json, ApiError> {
        self.require_scope(caller, org, Some(Scope::AuditLogRead), "access.review")
            .await?;
        if unused_days < 0 {
            return Err(ApiError::BadRequest("unusedDays must be 0 or more".into()));
        }
        if max_token_age_days < 0 {
            return Err(ApiError::BadRequest(
                "maxTokenAgeDays must be 0 or more".into(),
            ));
        }
        let t = now();
        let since = t.saturating_sub(unused_days.saturating_mul(86_400));
        let tokens = self.store.list_tokens(org).await?;
        let live: Vec<_> = tokens
            .iter()
            .filter(|k| k.revoked_at.is_none() && k.expires_at.is_none_or(|e| e > t))
            .collect();
        let unused_tokens: Vec<Json> = live
            .iter()
            .filter(|k| k.last_used_at.is_none_or(|u| u < since))
            .map(|k| token_json(k))
            .collect();
        // Tokens still valid past the maximum age: candidates for rotation.
        let born_before = t.saturating_sub(max_token_age_days.saturating_mul(86_400));
        let long_lived_tokens: Vec<Json> = live
            .iter()
            .filter(|k| k.created_at <= born_before)
            .map(|k| token_json(k))
            .collect();

        // The audit log, oldest first: who used which environment, and when.
        let mut entries = Vec::new();
        let mut filter = AuditFilter {
            limit: Some(1000),
            ..AuditFilter::default()
        };
        for _ in 0..100 {
            let page = self.store.list_audit(org, &filter).await?;
            entries.extend(page.entries);
            match page.continuation {
                Some(c) => filter.continuation = Some(c),
                None => break,
            }
        }
        entries.reverse();
        let uses: Vec<_> = entries
            .iter()
            .filter(|e| e.outcome == Outcome::Allowed && e.event.starts_with("environment."))
            .collect();
        let used_recently = |actor: &str, env: Option<&str>| {
            uses.iter().any(|e| {
                e.timestamp >= since
                    && e.actor == actor
                    && env.is_none_or(|v| e.environment.as_deref() == Some(v))
            })
        };
        let mut unused_grants = Vec::new();
        for team in self.store.list_teams(org).await? {
            let members = self.store.team(org, &team).await?.members;
            for g in self.store.list_team_grants(org, &team).await? {
                let env = g.env.to_string();
                let used = used_recently(&format!("team:{team}"), Some(&env))
                    || members.iter().any(|m| used_recently(m, Some(&env)));
                if !used {
                    unused_grants.push(
                        json!({ "team": team, "environment": env, "permission": g.permission }),
                    );
                }
            }
        }
        let unused_role_assignments: Vec<Json> = self
            .store
            .list_members(org)
            .await?
            .iter()
            .filter(|m| m.role_id.is_some() && !used_recently(&m.login, None))
            .map(|m| json!({ "login": m.login, "roleId": m.role_id }))
            .collect();
        let mut seen: HashSet<(String, String)> = HashSet::new();
        let mut first_opens: Vec<Json> = Vec::new();
        for e in entries
            .iter()
            .filter(|e| e.event == "environment.open" && e.outcome == Outcome::Allowed)
        {
            let Some(env) = &e.environment else { continue };
            if seen.insert((e.actor.clone(), env.clone()))
                && (unused_days == 0 || e.timestamp >= since)
            {
                first_opens.push(json!({
                    "principal": e.actor, "environment": env, "timestamp": e.timestamp,
                }));
            }
        }
        first_opens.reverse();
        Ok(json!({
            "unusedTokens": unused_tokens,
            "unusedGrants": unused_grants,
            "unusedRoleAssignments": unused_role_assignments,
            "firstTimeOpens": first_opens,
            "longLivedTokens": long_lived_tokens,
            "maxTokenAgeDays": max_token_age_days,
        }))
    }

    /// `GET oidc/keys`: the organization's signing keys, public parts (admins only).
    pub(crate) async fn oidc_keys(&self, caller: &Caller, org: &OrgName) -> Result<Json, ApiError> {
        self.require_scope(caller, org, None, "oidc.signing_key.list")
            .await?;
        Ok(self.issuer.keys(org).await?)
    }

    /// `POST oidc/keys/rotate`: a new signing key; the old ones retire with overlap (admins
    /// only; the store audits the creation and each retirement).
    pub(crate) async fn rotate_oidc_key(
        &self,
        caller: &Caller,
        org: &OrgName,
    ) -> Result<Json, ApiError> {
        self.require_scope(caller, org, None, "oidc.signing_key.rotate")
            .await?;
        let r = self.issuer.rotate(org, &caller.audit).await?;
        Ok(json!({
            "kid": r.kid,
            "retired": r.retired,
            "retiredPublishedUntil": r.published_until,
        }))
    }
}
