//! Handlers of the administration API under `/api/orgs/{org}/…` and `/api/user`: they parse
//! the request and format the answer; the work is in `service::admin`.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::Value as Json;
use tessera_store::members::OrgRole;
use tessera_types::{OrgName, Permission, QualifiedEnv, Scope};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::service::admin::{AuditQuery, NewOrgToken, NewRole};
use crate::service::environments::parse_duration;
use crate::service::Service;

use super::Endpoint;

type Svc = web::Data<Service>;
type Res = Result<HttpResponse, ApiError>;

/// Every route of the administration API, in matching order.
pub(crate) const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        method: "GET",
        path: "/api/user",
        summary: "Who the token acts as: login, defaultOrg, organizations",
        access: "any token",
        handler: |r| r.to(user),
    },
    Endpoint {
        method: "POST",
        path: "/api/user/tokens",
        summary: r#"A personal token of the caller {"description","expires"?}"#,
        access: "personal token",
        handler: |r| r.to(create_own_token),
    },
    Endpoint {
        method: "GET",
        path: "/api/orgs/{org}/members",
        summary: "Members",
        access: "admin or team:manage",
        handler: |r| r.to(members),
    },
    Endpoint {
        method: "POST",
        path: "/api/orgs/{org}/members",
        summary: r#"Add a member {"login","role"}"#,
        access: "admin",
        handler: |r| r.to(add_member),
    },
    Endpoint {
        method: "PATCH",
        path: "/api/orgs/{org}/members/{login}",
        summary: r#"Assign a role {"role"?,"roleId"?}"#,
        access: "admin",
        handler: |r| r.to(update_member),
    },
    Endpoint {
        method: "DELETE",
        path: "/api/orgs/{org}/members/{login}",
        summary: "Remove a member (and their personal tokens)",
        access: "admin",
        handler: |r| r.to(remove_member),
    },
    Endpoint {
        method: "POST",
        path: "/api/orgs/{org}/members/{login}/tokens",
        summary: r#"A personal token acting as the member {"name","expires"?}"#,
        access: "admin",
        handler: |r| r.to(member_token),
    },
    Endpoint {
        method: "GET",
        path: "/api/orgs/{org}/teams",
        summary: "Teams",
        access: "member",
        handler: |r| r.to(teams),
    },
    Endpoint {
        method: "POST",
        path: "/api/orgs/{org}/teams",
        summary: r#"Create a team {"name"}"#,
        access: "admin or team:manage",
        handler: |r| r.to(create_team),
    },
    Endpoint {
        method: "GET",
        path: "/api/orgs/{org}/teams/{team}",
        summary: "A team with members, roles and grants",
        access: "member",
        handler: |r| r.to(team),
    },
    Endpoint {
        method: "DELETE",
        path: "/api/orgs/{org}/teams/{team}",
        summary: "Delete a team",
        access: "admin or team:manage",
        handler: |r| r.to(delete_team),
    },
    Endpoint {
        method: "POST",
        path: "/api/orgs/{org}/teams/{team}/members",
        summary: r#"Add a member to a team {"login"}"#,
        access: "admin or team:manage",
        handler: |r| r.to(add_team_member),
    },
    Endpoint {
        method: "DELETE",
        path: "/api/orgs/{org}/teams/{team}/members/{login}",
        summary: "Remove a member from a team",
        access: "admin or team:manage",
        handler: |r| r.to(remove_team_member),
    },
    Endpoint {
        method: "PUT",
        path: "/api/orgs/{org}/teams/{team}/environments/{project}/{env}",
        summary: r#"Grant a team a permission on an environment {"permission","maxOpenDuration"?}"#,
        access: "admin or team:manage",
        handler: |r| r.to(set_team_grant),
    },
    Endpoint {
        method: "PUT",
        path: "/api/orgs/{org}/teams/{team}/roles/{role}",
        summary: "Assign a custom role to a team",
        access: "admin or role:manage",
        handler: |r| r.to(assign_team_role),
    },
    Endpoint {
        method: "DELETE",
        path: "/api/orgs/{org}/teams/{team}/roles/{role}",
        summary: "Unassign a custom role from a team",
        access: "admin or role:manage",
        handler: |r| r.to(unassign_team_role),
    },
    Endpoint {
        method: "POST",
        path: "/api/orgs/{org}/teams/{team}/tokens",
        summary: r#"A token acting with the team grants {"name","expires"?}"#,
        access: "admin or token:create",
        handler: |r| r.to(team_token),
    },
    Endpoint {
        method: "DELETE",
        path: "/api/orgs/{org}/teams/{team}/tokens/{id}",
        summary: "Revoke a team token",
        access: "admin or token:create",
        handler: |r| r.to(revoke_team_token),
    },
    Endpoint {
        method: "GET",
        path: "/api/orgs/{org}/roles/scopes",
        summary: "The scopes catalog",
        access: "member",
        handler: |r| r.to(scopes),
    },
    Endpoint {
        method: "GET",
        path: "/api/orgs/{org}/roles",
        summary: "Custom roles",
        access: "member",
        handler: |r| r.to(roles),
    },
    Endpoint {
        method: "POST",
        path: "/api/orgs/{org}/roles",
        summary: r#"Create a custom role {"name","scopes","permissions"?,"environments"?,"projects"?,"environmentTags"?}"#,
        access: "admin or role:manage",
        handler: |r| r.to(create_role),
    },
    Endpoint {
        method: "GET",
        path: "/api/orgs/{org}/roles/{id}",
        summary: "A custom role",
        access: "member",
        handler: |r| r.to(role),
    },
    Endpoint {
        method: "DELETE",
        path: "/api/orgs/{org}/roles/{id}",
        summary: "Delete a custom role",
        access: "admin or role:manage",
        handler: |r| r.to(delete_role),
    },
    Endpoint {
        method: "GET",
        path: "/api/orgs/{org}/permissions",
        summary: "Permission sets",
        access: "member",
        handler: |r| r.to(permission_sets),
    },
    Endpoint {
        method: "POST",
        path: "/api/orgs/{org}/permissions",
        summary: r#"Create a permission set {"name","scopes"}"#,
        access: "admin or role:manage",
        handler: |r| r.to(create_permission_set),
    },
    Endpoint {
        method: "GET",
        path: "/api/orgs/{org}/tokens",
        summary: "Tokens (never their values)",
        access: "admin or token:create",
        handler: |r| r.to(tokens),
    },
    Endpoint {
        method: "POST",
        path: "/api/orgs/{org}/tokens",
        summary: r#"An organization token {"name","roleId"?|"admin"?,"expires"?}"#,
        access: "admin or token:create (admin tokens: admin)",
        handler: |r| r.to(create_org_token),
    },
    Endpoint {
        method: "DELETE",
        path: "/api/orgs/{org}/tokens/{id}",
        summary: "Revoke a token at once",
        access: "owner, admin or token:create",
        handler: |r| r.to(revoke_token),
    },
    Endpoint {
        method: "GET",
        path: "/api/orgs/{org}/settings",
        summary: "Organization settings",
        access: "member",
        handler: |r| r.to(settings),
    },
    Endpoint {
        method: "PATCH",
        path: "/api/orgs/{org}/settings",
        summary: r#"Update settings {"defaultEnvironmentPermission","maxTokenLifetimeSeconds"?}"#,
        access: "admin",
        handler: |r| r.to(update_settings),
    },
    Endpoint {
        method: "GET",
        path: "/api/orgs/{org}/auditlogs",
        summary: "The audit log (startTime, endTime, event, environment, count, continuationToken, format=json|jsonl|csv)",
        access: "admin or audit_log:read",
        handler: |r| r.to(audit_log),
    },
    Endpoint {
        method: "GET",
        path: "/api/orgs/{org}/environments/{project}/{env}/access",
        summary: "Why a principal has its permission (?principal=login|token:ID)",
        access: "admin",
        handler: |r| r.to(explain_access),
    },
    Endpoint {
        method: "GET",
        path: "/api/orgs/{org}/access-review",
        summary: "Unused tokens, grants and role assignments; first-time opens (?unusedDays=N)",
        access: "admin or audit_log:read",
        handler: |r| r.to(access_review),
    },
    Endpoint {
        method: "GET",
        path: "/api/orgs/{org}/oidc/keys",
        summary: "The organization's OIDC signing keys (public parts): active, retired, published until",
        access: "admin",
        handler: |r| r.to(oidc_keys),
    },
    Endpoint {
        method: "POST",
        path: "/api/orgs/{org}/oidc/keys/rotate",
        summary: "A new OIDC signing key signs from now on; the old one stays in the JWKS until its tokens expire",
        access: "admin",
        handler: |r| r.to(rotate_oidc_key),
    },
];

fn org(text: &str) -> Result<OrgName, ApiError> {
    Ok(text.parse()?)
}

fn ok(body: Json) -> Res {
    Ok(HttpResponse::Ok().json(body))
}

fn no_content() -> Res {
    Ok(HttpResponse::NoContent().finish())
}

fn org_role(text: &str) -> Result<OrgRole, ApiError> {
    match text {
        "member" => Ok(OrgRole::Member),
        "admin" => Ok(OrgRole::Admin),
        _ => Err(ApiError::BadRequest(format!(
            "invalid role {text:?}: expected member or admin"
        ))),
    }
}

async fn user(s: Svc, c: Caller) -> Res {
    ok(s.user(&c))
}

#[derive(Deserialize)]
struct NewOwnToken {
    description: String,
    expires: Option<i64>,
}

async fn create_own_token(s: Svc, c: Caller, b: web::Json<NewOwnToken>) -> Res {
    ok(s.create_own_token(&c, &b.description, b.expires).await?)
}

async fn members(s: Svc, c: Caller, p: web::Path<String>) -> Res {
    ok(s.members(&c, &org(&p)?).await?)
}

#[derive(Deserialize)]
struct NewMember {
    login: String,
    #[serde(default = "member_role")]
    role: String,
}

fn member_role() -> String {
    "member".into()
}

async fn add_member(s: Svc, c: Caller, p: web::Path<String>, b: web::Json<NewMember>) -> Res {
    ok(s.add_member(&c, &org(&p)?, &b.login, org_role(&b.role)?)
        .await?)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MemberUpdate {
    role: Option<String>,
    /// Absent: unchanged; `null` or `""`: removed; a string: assigned.
    #[serde(default)]
    role_id: Option<Json>,
}

async fn update_member(
    s: Svc,
    c: Caller,
    p: web::Path<(String, String)>,
    b: web::Json<MemberUpdate>,
) -> Res {
    let role = b.role.as_deref().map(org_role).transpose()?;
    let role_id = match &b.role_id {
        None => None,
        Some(Json::Null) => Some(None),
        Some(Json::String(r)) if r.is_empty() => Some(None),
        Some(Json::String(r)) => Some(Some(r.as_str())),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "roleId must be a string or null".into(),
            ))
        }
    };
    ok(s.update_member(&c, &org(&p.0)?, &p.1, role, role_id)
        .await?)
}

async fn remove_member(s: Svc, c: Caller, p: web::Path<(String, String)>) -> Res {
    s.remove_member(&c, &org(&p.0)?, &p.1).await?;
    no_content()
}

#[derive(Deserialize)]
struct NewNamedToken {
    name: String,
    expires: Option<i64>,
}

async fn member_token(
    s: Svc,
    c: Caller,
    p: web::Path<(String, String)>,
    b: web::Json<NewNamedToken>,
) -> Res {
    ok(
        s.create_member_token(&c, &org(&p.0)?, &p.1, &b.name, b.expires)
            .await?,
    )
}

async fn teams(s: Svc, c: Caller, p: web::Path<String>) -> Res {
    ok(s.teams(&c, &org(&p)?).await?)
}

async fn team(s: Svc, c: Caller, p: web::Path<(String, String)>) -> Res {
    ok(s.team(&c, &org(&p.0)?, &p.1).await?)
}

#[derive(Deserialize)]
struct NewTeam {
    name: String,
}

async fn create_team(s: Svc, c: Caller, p: web::Path<String>, b: web::Json<NewTeam>) -> Res {
    ok(s.create_team(&c, &org(&p)?, &b.name).await?)
}

async fn delete_team(s: Svc, c: Caller, p: web::Path<(String, String)>) -> Res {
    s.delete_team(&c, &org(&p.0)?, &p.1).await?;
    no_content()
}

#[derive(Deserialize)]
struct TeamMember {
    login: String,
}

async fn add_team_member(
    s: Svc,
    c: Caller,
    p: web::Path<(String, String)>,
    b: web::Json<TeamMember>,
) -> Res {
    s.set_team_member(&c, &org(&p.0)?, &p.1, &b.login, true)
        .await?;
    no_content()
}

async fn remove_team_member(s: Svc, c: Caller, p: web::Path<(String, String, String)>) -> Res {
    s.set_team_member(&c, &org(&p.0)?, &p.1, &p.2, false)
        .await?;
    no_content()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TeamGrant {
    permission: Permission,
    /// Seconds, or a duration such as `2h`.
    max_open_duration: Option<Json>,
}

async fn set_team_grant(
    s: Svc,
    c: Caller,
    p: web::Path<(String, String, String, String)>,
    b: web::Json<TeamGrant>,
) -> Res {
    let env = QualifiedEnv {
        project: p.2.parse()?,
        env: p.3.parse()?,
    };
    let max = match &b.max_open_duration {
        None | Some(Json::Null) => None,
        Some(Json::Number(n)) => Some(n.as_i64().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::BadRequest("maxOpenDuration must be a positive number of seconds".into())
        })?),
        Some(Json::String(d)) => Some(parse_duration(d)?),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "maxOpenDuration must be seconds or a duration such as 2h".into(),
            ))
        }
    };
    ok(
        s.set_team_grant(&c, &org(&p.0)?, &p.1, &env, b.permission, max)
            .await?,
    )
}

async fn assign_team_role(s: Svc, c: Caller, p: web::Path<(String, String, String)>) -> Res {
    s.set_team_role(&c, &org(&p.0)?, &p.1, &p.2, true).await?;
    no_content()
}

async fn unassign_team_role(s: Svc, c: Caller, p: web::Path<(String, String, String)>) -> Res {
    s.set_team_role(&c, &org(&p.0)?, &p.1, &p.2, false).await?;
    no_content()
}

async fn team_token(
    s: Svc,
    c: Caller,
    p: web::Path<(String, String)>,
    b: web::Json<NewNamedToken>,
) -> Res {
    ok(
        s.create_team_token(&c, &org(&p.0)?, &p.1, &b.name, b.expires)
            .await?,
    )
}

async fn revoke_team_token(s: Svc, c: Caller, p: web::Path<(String, String, String)>) -> Res {
    s.revoke_token(&c, &org(&p.0)?, &p.2, Some(&p.1)).await?;
    no_content()
}

async fn scopes(s: Svc, c: Caller, p: web::Path<String>) -> Res {
    ok(s.scopes(&c, &org(&p)?).await?)
}

async fn roles(s: Svc, c: Caller, p: web::Path<String>) -> Res {
    ok(s.roles(&c, &org(&p)?).await?)
}

async fn role(s: Svc, c: Caller, p: web::Path<(String, String)>) -> Res {
    ok(s.role(&c, &org(&p.0)?, &p.1).await?)
}

async fn create_role(s: Svc, c: Caller, p: web::Path<String>, b: web::Json<NewRole>) -> Res {
    ok(s.create_role(&c, &org(&p)?, b.into_inner()).await?)
}

async fn delete_role(s: Svc, c: Caller, p: web::Path<(String, String)>) -> Res {
    s.delete_role(&c, &org(&p.0)?, &p.1).await?;
    no_content()
}

async fn permission_sets(s: Svc, c: Caller, p: web::Path<String>) -> Res {
    ok(s.permission_sets(&c, &org(&p)?).await?)
}

#[derive(Deserialize)]
struct NewPermissionSet {
    name: String,
    scopes: Vec<Scope>,
}

async fn create_permission_set(
    s: Svc,
    c: Caller,
    p: web::Path<String>,
    b: web::Json<NewPermissionSet>,
) -> Res {
    ok(s.create_permission_set(&c, &org(&p)?, &b.name, &b.scopes)
        .await?)
}

async fn tokens(s: Svc, c: Caller, p: web::Path<String>) -> Res {
    ok(s.tokens(&c, &org(&p)?).await?)
}

async fn create_org_token(
    s: Svc,
    c: Caller,
    p: web::Path<String>,
    b: web::Json<NewOrgToken>,
) -> Res {
    ok(s.create_org_token(&c, &org(&p)?, b.into_inner()).await?)
}

async fn revoke_token(s: Svc, c: Caller, p: web::Path<(String, String)>) -> Res {
    s.revoke_token(&c, &org(&p.0)?, &p.1, None).await?;
    no_content()
}

async fn settings(s: Svc, c: Caller, p: web::Path<String>) -> Res {
    ok(s.settings(&c, &org(&p)?).await?)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SettingsUpdate {
    default_environment_permission: Option<Permission>,
    /// Absent: unchanged; `null` or 0: no limit.
    #[serde(default)]
    max_token_lifetime_seconds: Option<Json>,
}

async fn update_settings(
    s: Svc,
    c: Caller,
    p: web::Path<String>,
    b: web::Json<SettingsUpdate>,
) -> Res {
    let max = match &b.max_token_lifetime_seconds {
        None => None,
        Some(Json::Null) => Some(None),
        Some(Json::Number(n)) if n.as_i64() == Some(0) => Some(None),
        Some(Json::Number(n)) => Some(Some(n.as_i64().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::BadRequest("maxTokenLifetimeSeconds must be a positive integer".into())
        })?)),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "maxTokenLifetimeSeconds must be a number".into(),
            ))
        }
    };
    ok(
        s.update_settings(&c, &org(&p)?, b.default_environment_permission, max)
            .await?,
    )
}

#[derive(Deserialize)]
struct ExportFormat {
    format: Option<String>,
}

/// One CSV field, quoted when it needs to be.
fn csv_field(v: &Json) -> String {
    let text = match v {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// `GET auditlogs`: JSON (default), or an export as JSON lines (`format=jsonl`) or CSV
/// (`format=csv`) of the same page.
async fn audit_log(
    s: Svc,
    c: Caller,
    p: web::Path<String>,
    q: web::Query<AuditQuery>,
    f: web::Query<ExportFormat>,
) -> Res {
    let format = f.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "jsonl" | "csv") {
        return Err(ApiError::BadRequest(format!(
            "invalid format {format:?}: expected json, jsonl or csv"
        )));
    }
    let body = s.audit_log(&c, &org(&p)?, q.into_inner()).await?;
    let events = body["auditLogEvents"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    match format {
        "jsonl" => {
            let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
            Ok(HttpResponse::Ok()
                .content_type("application/x-ndjson")
                .body(lines))
        }
        "csv" => {
            const COLUMNS: [&str; 10] = [
                "seq",
                "time",
                "event",
                "actor",
                "tokenId",
                "environment",
                "revision",
                "sourceIp",
                "outcome",
                "details",
            ];
            let mut out = COLUMNS.join(",");
            out.push('\n');
            for e in &events {
                let row: Vec<String> = COLUMNS.iter().map(|k| csv_field(&e[*k])).collect();
                out.push_str(&row.join(","));
                out.push('\n');
            }
            Ok(HttpResponse::Ok().content_type("text/csv").body(out))
        }
        _ => ok(body),
    }
}

#[derive(Deserialize)]
struct AccessQuery {
    principal: String,
}

async fn explain_access(
    s: Svc,
    c: Caller,
    p: web::Path<(String, String, String)>,
    q: web::Query<AccessQuery>,
) -> Res {
    let env = QualifiedEnv {
        project: p.1.parse()?,
        env: p.2.parse()?,
    };
    ok(s.explain_access(&c, &org(&p.0)?, &env, &q.principal)
        .await?)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewQuery {
    #[serde(default)]
    unused_days: i64,
    /// Tokens older than this many days are listed as long-lived.
    #[serde(default = "default_max_token_age_days")]
    max_token_age_days: i64,
}

fn default_max_token_age_days() -> i64 {
    90
}

async fn access_review(s: Svc, c: Caller, p: web::Path<String>, q: web::Query<ReviewQuery>) -> Res {
    ok(
        s.access_review(&c, &org(&p)?, q.unused_days, q.max_token_age_days)
            .await?,
    )
}

async fn oidc_keys(s: Svc, c: Caller, p: web::Path<String>) -> Res {
    ok(s.oidc_keys(&c, &org(&p)?).await?)
}

async fn rotate_oidc_key(s: Svc, c: Caller, p: web::Path<String>) -> Res {
    ok(s.rotate_oidc_key(&c, &org(&p)?).await?)
}
