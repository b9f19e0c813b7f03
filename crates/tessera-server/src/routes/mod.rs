//! HTTP routes: one module per API surface, plus the health probes and the app assembly.

mod admin;
mod esc;
mod exchange;

use actix_web::http::Method;
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App, HttpResponse, Route};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{json, Map, Value as Json};

use crate::error;
use crate::service::Service;

/// The request body limit: larger bodies get 413.
pub(crate) const BODY_LIMIT: usize = 1 << 20;

/// Registers every route, the extractor configuration, the JSON error rewriting and the
/// request middleware (ids, logs, metrics); `/metrics` too when `metrics` is given.
pub(crate) fn app(
    service: web::Data<Service>,
    metrics: Option<web::Data<PrometheusHandle>>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<
            actix_web::body::EitherBody<actix_web::body::BoxBody>,
        >,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(service)
        .app_data(web::PayloadConfig::new(BODY_LIMIT))
        .app_data(
            web::JsonConfig::default()
                .limit(BODY_LIMIT)
                .error_handler(error::json_error),
        )
        .app_data(web::QueryConfig::default().error_handler(error::query_error))
        .app_data(web::PathConfig::default().error_handler(error::path_error))
        .wrap(ErrorHandlers::new().default_handler(error::rewrite_as_json))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/api/openapi.json", web::get().to(openapi))
        .route(
            "/oidc/.well-known/openid-configuration",
            web::get().to(oidc_discovery),
        )
        .route("/oidc/.well-known/jwks", web::get().to(oidc_jwks))
        .configure(|cfg| register(cfg, esc::ENDPOINTS))
        .configure(|cfg| register(cfg, admin::ENDPOINTS))
        .configure(|cfg| register(cfg, exchange::ENDPOINTS))
        .configure(|cfg| {
            if let Some(handle) = metrics {
                cfg.app_data(handle)
                    .route("/metrics", web::get().to(crate::metrics::render));
            }
        })
        .default_service(web::to(error::not_found))
        .wrap(from_fn(crate::telemetry::observe))
}

/// One route of the API: what registers it and what the OpenAPI document says of it, in one
/// place, so the document cannot miss a route.
pub(crate) struct Endpoint {
    /// The HTTP method.
    pub(crate) method: &'static str,
    /// The path template, `{name}` for parameters.
    pub(crate) path: &'static str,
    /// What it does.
    pub(crate) summary: &'static str,
    /// Who may call it: an environment permission level or organization scopes.
    pub(crate) access: &'static str,
    /// Attaches the handler to a route already guarded by the method.
    pub(crate) handler: fn(Route) -> Route,
}

/// Registers `endpoints` as resources, one per path, in the order the paths first appear
/// (which is the matching order).
fn register(cfg: &mut web::ServiceConfig, endpoints: &'static [Endpoint]) {
    let mut paths: Vec<&'static str> = Vec::new();
    for e in endpoints {
        if !paths.contains(&e.path) {
            paths.push(e.path);
        }
    }
    for path in paths {
        let mut resource = web::resource(path);
        for e in endpoints.iter().filter(|e| e.path == path) {
            let method = Method::from_bytes(e.method.as_bytes()).unwrap_or(Method::GET);
            resource = resource.route((e.handler)(web::route().method(method)));
        }
        cfg.service(resource);
    }
}

/// The OpenAPI 3 document of every route, generated from the endpoint tables.
pub(crate) fn openapi_document() -> Json {
    let mut paths = Map::new();
    let all = [
        ("ESC environments", esc::ENDPOINTS),
        ("Administration", admin::ENDPOINTS),
        ("Tokenless pipelines", exchange::ENDPOINTS),
    ];
    for (tag, endpoints) in all {
        for e in endpoints {
            let params: Vec<Json> = e
                .path
                .split('/')
                .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
                .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
                .collect();
            let op = json!({
                "tags": [tag],
                "summary": e.summary,
                "x-tessera-access": e.access,
                "parameters": params,
                "security": if e.access == exchange::NO_TOKEN { json!([]) } else { json!([{"token": []}]) },
                "responses": {
                    "2XX": {"description": "success"},
                    "default": {
                        "description": "an error",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                },
            });
            let entry = paths.entry(e.path.to_owned()).or_insert_with(|| json!({}));
            entry[e.method.to_ascii_lowercase()] = op;
        }
    }
    for (path, summary) in [
        ("/healthz", "200 once the server accepts requests"),
        ("/readyz", "200 while the database answers"),
        (
            "/metrics",
            "Prometheus metrics (no token needed; absent here when metrics_listen is set)",
        ),
        (
            "/oidc/.well-known/openid-configuration",
            "The OIDC discovery document of Tessera's token issuer (no token needed)",
        ),
        (
            "/oidc/.well-known/jwks",
            "The issuer's public signing keys, retired ones until their tokens expire",
        ),
    ] {
        paths.insert(
            path.into(),
            json!({"get": {"summary": summary, "responses": {"200": {"description": "ok"}}}}),
        );
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Tessera",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Environments, secrets and configuration; the Pulumi ESC REST API plus administration.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "Authorization", "description": "token <TOKEN>"}},
            "schemas": {"Error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
            }},
        },
    })
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(openapi_document())
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(s: web::Data<Service>) -> HttpResponse {
    match s.store().ping().await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            HttpResponse::ServiceUnavailable()
                .json(serde_json::json!({ "code": 503, "message": "the database does not answer" }))
        }
    }
}

async fn oidc_discovery(s: web::Data<Service>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(s.issuer().discovery())
}

async fn oidc_jwks(s: web::Data<Service>) -> Result<HttpResponse, error::ApiError> {
    // Short caching: relying parties re-fetch on an unknown `kid` anyway, and a retired key
    // must disappear soon after its last token expired.
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=60"))
        .json(s.issuer().jwks().await?))
}
