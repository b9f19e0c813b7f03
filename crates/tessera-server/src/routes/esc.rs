//! Handlers of the ESC environment API under `/api/esc/environments`: they parse the request
//! (names become newtypes here) and format the answer; the work is in `service::environments`.

use actix_web::http::header::{self, ContentType};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use tessera_types::{OrgName, QualifiedEnv, Version};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::metrics;
use crate::service::environments::{Checked, Definition, SessionRead};
use crate::service::Service;
use crate::wire;

use super::Endpoint;

type Svc = web::Data<Service>;
type EnvPath = web::Path<(String, String, String)>;

/// The header carrying the revision of a definition, for the CLIs.
const REVISION_HEADER: &str = "Pulumi-ESC-Revision";

/// Every route of the ESC environment API, in matching order: literal segments before
/// parameters that would also match them, and the open cycle's routes first (each route
/// tried before the one that matches costs a regex search, on every request).
pub(crate) const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        method: "POST",
        path: "/api/esc/environments/{org}/{project}/{env}/open",
        summary: "Open: evaluate with secrets and providers into a session (?duration=2h)",
        access: "open",
        handler: |r| r.to(open),
    },
    Endpoint {
        method: "GET",
        path: "/api/esc/environments/{org}/{project}/{env}/open/{id}",
        summary: "Read an open session",
        access: "open",
        handler: |r| r.to(read_session),
    },
    Endpoint {
        method: "GET",
        path: "/api/esc/environments/{org}/{project}/{env}/open//{id}",
        summary: "Read one property of an open session (?property=PATH)",
        access: "open",
        handler: |r| r.to(read_session),
    },
    Endpoint {
        method: "GET",
        path: "/api/esc/environments/{org}",
        summary: "List the environments the caller can read (paginated with continuationToken)",
        access: "read",
        handler: |r| r.to(list),
    },
    Endpoint {
        method: "POST",
        path: "/api/esc/environments/{org}",
        summary: r#"Create an empty environment {"project","name"}"#,
        access: "write",
        handler: |r| r.to(create),
    },
    Endpoint {
        method: "POST",
        path: "/api/esc/environments/{org}/yaml/check",
        summary: "Check a YAML definition without saving it",
        access: "member",
        handler: |r| r.to(check_yaml),
    },
    Endpoint {
        method: "GET",
        path: "/api/esc/environments/{org}/{project}/{env}",
        summary: "Get the definition as YAML (secrets as ciphertext), with ETag",
        access: "read",
        handler: |r| r.to(get),
    },
    Endpoint {
        method: "HEAD",
        path: "/api/esc/environments/{org}/{project}/{env}",
        summary: "The ETag and revision of the definition",
        access: "read",
        handler: |r| r.to(head),
    },
    Endpoint {
        method: "PATCH",
        path: "/api/esc/environments/{org}/{project}/{env}",
        summary: "Update the definition (YAML); If-Match/ETag for optimistic concurrency",
        access: "write",
        handler: |r| r.to(update),
    },
    Endpoint {
        method: "DELETE",
        path: "/api/esc/environments/{org}/{project}/{env}",
        summary: "Delete the environment",
        access: "admin",
        handler: |r| r.to(delete),
    },
    Endpoint {
        method: "POST",
        path: "/api/esc/environments/{org}/{project}/{env}/check",
        summary: "Check the stored definition (or a YAML body) as this environment",
        access: "read",
        handler: |r| r.to(check_env),
    },
    Endpoint {
        method: "GET",
        path: "/api/esc/environments/{org}/{project}/{env}/decrypt",
        summary: "The definition with secrets in plaintext (audited)",
        access: "open",
        handler: |r| r.to(decrypt),
    },
    Endpoint {
        method: "POST",
        path: "/api/esc/environments/{org}/{project}/{env}/clone",
        summary: r#"Clone into a new environment {"project","name",…}"#,
        access: "open + write",
        handler: |r| r.to(clone),
    },
    Endpoint {
        method: "GET",
        path: "/api/esc/environments/{org}/{project}/{env}/versions",
        summary: "Revisions, newest first (?before, ?count)",
        access: "read",
        handler: |r| r.to(revisions),
    },
    Endpoint {
        method: "GET",
        path: "/api/esc/environments/{org}/{project}/{env}/versions/tags",
        summary: "Revision tags, with the implicit latest",
        access: "read",
        handler: |r| r.to(revision_tags),
    },
    Endpoint {
        method: "POST",
        path: "/api/esc/environments/{org}/{project}/{env}/versions/tags",
        summary: r#"Create a revision tag {"name","revision"}"#,
        access: "write",
        handler: |r| r.to(create_revision_tag),
    },
    Endpoint {
        method: "GET",
        path: "/api/esc/environments/{org}/{project}/{env}/versions/tags/{tag}",
        summary: "Get a revision tag",
        access: "read",
        handler: |r| r.to(revision_tag),
    },
    Endpoint {
        method: "PATCH",
        path: "/api/esc/environments/{org}/{project}/{env}/versions/tags/{tag}",
        summary: r#"Move a revision tag {"revision"}"#,
        access: "write",
        handler: |r| r.to(update_revision_tag),
    },
    Endpoint {
        method: "DELETE",
        path: "/api/esc/environments/{org}/{project}/{env}/versions/tags/{tag}",
        summary: "Delete a revision tag",
        access: "write",
        handler: |r| r.to(delete_revision_tag),
    },
    Endpoint {
        method: "POST",
        path: "/api/esc/environments/{org}/{project}/{env}/versions/{version}/retract",
        summary: r#"Retract a revision {"replacement"?,"reason"?}; retracting the latest saves the replacement's definition as a new revision"#,
        access: "write",
        handler: |r| r.to(retract_version),
    },
    Endpoint {
        method: "GET",
        path: "/api/esc/environments/{org}/{project}/{env}/versions/{version}",
        summary: "The definition at a revision number or tag",
        access: "read",
        handler: |r| r.to(get_version),
    },
    Endpoint {
        method: "POST",
        path: "/api/esc/environments/{org}/{project}/{env}/versions/{version}/open",
        summary: "Open the environment at a revision",
        access: "open",
        handler: |r| r.to(open_version),
    },
    Endpoint {
        method: "GET",
        path: "/api/esc/environments/{org}/{project}/{env}/versions/{version}/decrypt",
        summary: "Decrypt the definition at a revision",
        access: "open",
        handler: |r| r.to(decrypt_version),
    },
    Endpoint {
        method: "GET",
        path: "/api/esc/environments/{org}/{project}/{env}/tags",
        summary: "Environment tags (nextToken always present)",
        access: "read",
        handler: |r| r.to(environment_tags),
    },
    Endpoint {
        method: "POST",
        path: "/api/esc/environments/{org}/{project}/{env}/tags",
        summary: r#"Create an environment tag {"name","value"}"#,
        access: "write",
        handler: |r| r.to(create_environment_tag),
    },
    Endpoint {
        method: "GET",
        path: "/api/esc/environments/{org}/{project}/{env}/tags/{tag}",
        summary: "Get an environment tag",
        access: "read",
        handler: |r| r.to(environment_tag),
    },
    Endpoint {
        method: "PATCH",
        path: "/api/esc/environments/{org}/{project}/{env}/tags/{tag}",
        summary: "Update or rename an environment tag",
        access: "write",
        handler: |r| r.to(update_environment_tag),
    },
    Endpoint {
        method: "DELETE",
        path: "/api/esc/environments/{org}/{project}/{env}/tags/{tag}",
        summary: "Delete an environment tag",
        access: "write",
        handler: |r| r.to(delete_environment_tag),
    },
];

fn org_name(org: &str) -> Result<OrgName, ApiError> {
    Ok(org.parse()?)
}

fn env_name(org: &str, project: &str, env: &str) -> Result<(OrgName, QualifiedEnv), ApiError> {
    Ok((
        org.parse()?,
        QualifiedEnv {
            project: project.parse()?,
            env: env.parse()?,
        },
    ))
}

fn version(text: &str) -> Result<Version, ApiError> {
    Ok(text.parse()?)
}

fn yaml_text(body: &web::Bytes) -> Result<&str, ApiError> {
    std::str::from_utf8(body)
        .map_err(|_| ApiError::BadRequest("the definition must be UTF-8 YAML".into()))
}

fn etag(revision: u64) -> String {
    format!("\"{revision}\"")
}

/// The revision a PATCH was based on, from `If-Match` or (as the esc CLI sends it) `ETag`.
/// A value that names no revision can never match, so it is treated as revision 0.
fn base_revision(req: &HttpRequest) -> Option<u64> {
    let value = req
        .headers()
        .get(header::IF_MATCH)
        .or_else(|| req.headers().get(header::ETAG))?
        .to_str()
        .unwrap_or_default()
        .trim();
    if value == "*" {
        return None;
    }
    let value = value.trim_start_matches("W/").trim_matches('"');
    Some(value.parse().unwrap_or(0))
}

fn yaml_response(def: Definition) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/x-yaml")
        .insert_header((header::ETAG, etag(def.revision)))
        .insert_header((REVISION_HEADER, def.revision.to_string()))
        .body(def.yaml)
}

fn checked_response(c: Checked) -> HttpResponse {
    if c.has_errors {
        HttpResponse::BadRequest().json(c.body)
    } else {
        HttpResponse::Ok().json(c.body)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    continuation_token: Option<String>,
}

async fn list(
    s: Svc,
    c: Caller,
    p: web::Path<String>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let org = org_name(&p)?;
    let token = q.continuation_token.as_deref().filter(|t| !t.is_empty());
    Ok(HttpResponse::Ok().json(s.list_environments(&c, &org, token).await?))
}

async fn create(
    s: Svc,
    c: Caller,
    p: web::Path<String>,
    body: web::Json<wire::CreateEnvironment>,
) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p, &body.project, &body.name)?;
    s.create_environment(&c, &org, &env).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn get(s: Svc, c: Caller, p: EnvPath) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p.0, &p.1, &p.2)?;
    Ok(yaml_response(s.definition(&c, &org, &env, None).await?))
}

async fn get_version(
    s: Svc,
    c: Caller,
    p: web::Path<(String, String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p.0, &p.1, &p.2)?;
    let v = version(&p.3)?;
    Ok(yaml_response(s.definition(&c, &org, &env, Some(&v)).await?))
}

/// What `POST …/versions/{version}/retract` takes; the body may be empty.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Retract {
    replacement: Option<u64>,
    reason: Option<String>,
}

async fn retract_version(
    s: Svc,
    c: Caller,
    p: web::Path<(String, String, String, String)>,
    body: Option<web::Json<Retract>>,
) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p.0, &p.1, &p.2)?;
    let v = version(&p.3)?;
    let body = body.map(web::Json::into_inner).unwrap_or_default();
    s.retract(&c, &org, &env, &v, body.replacement, body.reason.as_deref())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn head(s: Svc, c: Caller, p: EnvPath) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p.0, &p.1, &p.2)?;
    let rev = s.latest_revision(&c, &org, &env).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(rev)))
        .insert_header((REVISION_HEADER, rev.to_string()))
        .finish())
}

async fn update(
    s: Svc,
    c: Caller,
    p: EnvPath,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p.0, &p.1, &p.2)?;
    let rev = s
        .update(&c, &org, &env, yaml_text(&body)?, base_revision(&req))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(rev)))
        .insert_header((REVISION_HEADER, rev.to_string()))
        .json(serde_json::json!({})))
}

async fn delete(s: Svc, c: Caller, p: EnvPath) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p.0, &p.1, &p.2)?;
    s.delete(&c, &org, &env).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn check_yaml(
    s: Svc,
    c: Caller,
    p: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let org = org_name(&p)?;
    Ok(checked_response(
        s.check(&c, &org, None, Some(yaml_text(&body)?)).await?,
    ))
}

async fn check_env(
    s: Svc,
    c: Caller,
    p: EnvPath,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p.0, &p.1, &p.2)?;
    let yaml = if body.is_empty() {
        None
    } else {
        Some(yaml_text(&body)?)
    };
    Ok(checked_response(s.check(&c, &org, Some(&env), yaml).await?))
}

async fn decrypt(s: Svc, c: Caller, p: EnvPath) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p.0, &p.1, &p.2)?;
    Ok(yaml_response(s.decrypt(&c, &org, &env, None).await?))
}

async fn decrypt_version(
    s: Svc,
    c: Caller,
    p: web::Path<(String, String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p.0, &p.1, &p.2)?;
    let v = version(&p.3)?;
    Ok(yaml_response(s.decrypt(&c, &org, &env, Some(&v)).await?))
}

#[derive(Deserialize)]
struct OpenQuery {
    duration: Option<String>,
}

async fn open(
    s: Svc,
    c: Caller,
    p: EnvPath,
    q: web::Query<OpenQuery>,
) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p.0, &p.1, &p.2)?;
    let id = metrics::open_outcome(s.open(&c, &org, &env, None, q.duration.as_deref()).await)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "id": id })))
}

async fn open_version(
    s: Svc,
    c: Caller,
    p: web::Path<(String, String, String, String)>,
    q: web::Query<OpenQuery>,
) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p.0, &p.1, &p.2)?;
    let v = version(&p.3)?;
    let id = metrics::open_outcome(
        s.open(&c, &org, &env, Some(&v), q.duration.as_deref())
            .await,
    )?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "id": id })))
}

#[derive(Deserialize)]
struct PropertyQuery {
    property: Option<String>,
}

async fn read_session(
    s: Svc,
    c: Caller,
    p: web::Path<(String, String, String, String)>,
    q: web::Query<PropertyQuery>,
) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p.0, &p.1, &p.2)?;
    let property = q.property.as_deref().filter(|p| !p.is_empty());
    Ok(
        match s.read_session(&c, &org, &env, &p.3, property).await? {
            SessionRead::Whole(body) => HttpResponse::Ok()
                .content_type(ContentType::json())
                .body(body.expose().to_vec()),
            SessionRead::Property(value) => HttpResponse::Ok().json(value),
        },
    )
}

async fn clone(
    s: Svc,
    c: Caller,
    p: EnvPath,
    body: web::Json<wire::CloneEnvironment>,
) -> Result<HttpResponse, ApiError> {
    let (org, src) = env_name(&p.0, &p.1, &p.2)?;
    let (_, dest) = env_name(&p.0, &body.project, &body.name)?;
    s.clone_environment(&c, &org, &src, &dest, &body).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
struct RevisionsQuery {
    before: Option<u64>,
    count: Option<u32>,
}

async fn revisions(
    s: Svc,
    c: Caller,
    p: EnvPath,
    q: web::Query<RevisionsQuery>,
) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p.0, &p.1, &p.2)?;
    Ok(HttpResponse::Ok().json(s.revisions(&c, &org, &env, q.before, q.count).await?))
}

#[derive(Deserialize)]
struct TagsQuery {
    after: Option<String>,
    count: Option<usize>,
}

async fn revision_tags(
    s: Svc,
    c: Caller,
    p: EnvPath,
    q: web::Query<TagsQuery>,
) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p.0, &p.1, &p.2)?;
    let after = q.after.as_deref().filter(|a| !a.is_empty());
    Ok(HttpResponse::Ok().json(s.revision_tags(&c, &org, &env, after, q.count).await?))
}

async fn revision_tag(
    s: Svc,
    c: Caller,
    p: web::Path<(String, String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p.0, &p.1, &p.2)?;
    Ok(HttpResponse::Ok().json(s.revision_tag(&c, &org, &env, &p.3).await?))
}

async fn create_revision_tag(
    s: Svc,
    c: Caller,
    p: EnvPath,
    body: web::Json<wire::CreateRevisionTag>,
) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p.0, &p.1, &p.2)?;
    s.set_revision_tag(&c, &org, &env, &body.name, body.revision, false)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn update_revision_tag(
    s: Svc,
    c: Caller,
    p: web::Path<(String, String, String, String)>,
    body: web::Json<wire::UpdateRevisionTag>,
) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p.0, &p.1, &p.2)?;
    s.set_revision_tag(&c, &org, &env, &p.3, body.revision, true)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn delete_revision_tag(
    s: Svc,
    c: Caller,
    p: web::Path<(String, String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p.0, &p.1, &p.2)?;
    s.delete_revision_tag(&c, &org, &env, &p.3).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn environment_tags(
    s: Svc,
    c: Caller,
    p: EnvPath,
    q: web::Query<TagsQuery>,
) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p.0, &p.1, &p.2)?;
    let after = q.after.as_deref().filter(|a| !a.is_empty());
    Ok(HttpResponse::Ok().json(s.environment_tags(&c, &org, &env, after, q.count).await?))
}

async fn environment_tag(
    s: Svc,
    c: Caller,
    p: web::Path<(String, String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p.0, &p.1, &p.2)?;
    Ok(HttpResponse::Ok().json(s.environment_tag(&c, &org, &env, &p.3).await?))
}

async fn create_environment_tag(
    s: Svc,
    c: Caller,
    p: EnvPath,
    body: web::Json<wire::CreateEnvironmentTag>,
) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p.0, &p.1, &p.2)?;
    let tag = s
        .set_environment_tag(&c, &org, &env, &body.name, &body.value, None)
        .await?;
    Ok(HttpResponse::Ok().json(tag))
}

async fn update_environment_tag(
    s: Svc,
    c: Caller,
    p: web::Path<(String, String, String, String)>,
    body: web::Json<wire::UpdateEnvironmentTag>,
) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p.0, &p.1, &p.2)?;
    let from = (p.3.as_str(), body.current_tag.value.as_str());
    let tag = s
        .set_environment_tag(
            &c,
            &org,
            &env,
            &body.new_tag.name,
            &body.new_tag.value,
            Some(from),
        )
        .await?;
    Ok(HttpResponse::Ok().json(tag))
}

async fn delete_environment_tag(
    s: Svc,
    c: Caller,
    p: web::Path<(String, String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, env) = env_name(&p.0, &p.1, &p.2)?;
    s.delete_environment_tag(&c, &org, &env, &p.3).await?;
    Ok(HttpResponse::NoContent().finish())
}
