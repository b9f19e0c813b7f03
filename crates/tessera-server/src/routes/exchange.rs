//! Handlers of tokenless pipelines: the trusted CI issuers of an organization, and the
//! RFC 8693 token exchange (the one `/api` route that takes no token). The work is in
//! `service::issuers` and `exchange`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use tessera_types::OrgName;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::exchange::{ExchangeRequest, Refusal};
use crate::service::issuers::{IssuerUpdate, NewIssuer};
use crate::service::Service;

use super::Endpoint;

type Svc = web::Data<Service>;
type Res = Result<HttpResponse, ApiError>;

/// The access string of the route that needs no token (the OpenAPI document omits security).
pub(crate) const NO_TOKEN: &str = "no token: a CI platform's OIDC token in the body";

/// The token exchange and trusted-issuer routes, in matching order.
pub(crate) const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        method: "POST",
        path: "/api/oauth/token",
        summary: "Exchange a CI platform's OIDC token for a short-lived Tessera token (RFC 8693; form or JSON body)",
        access: NO_TOKEN,
        handler: |r| r.to(token),
    },
    Endpoint {
        method: "GET",
        path: "/api/orgs/{org}/oidc/issuers",
        summary: "The CI issuers the organization trusts",
        access: "admin",
        handler: |r| r.to(list),
    },
    Endpoint {
        method: "POST",
        path: "/api/orgs/{org}/oidc/issuers",
        summary: r#"Trust a CI issuer {"name","url","policies":[{"decision","tokenType","teamName"?,"roleId"?,"userLogin"?,"rules"}]}"#,
        access: "admin",
        handler: |r| r.to(create),
    },
    Endpoint {
        method: "GET",
        path: "/api/orgs/{org}/oidc/issuers/{id}",
        summary: "One trusted issuer",
        access: "admin",
        handler: |r| r.to(read),
    },
    Endpoint {
        method: "PATCH",
        path: "/api/orgs/{org}/oidc/issuers/{id}",
        summary: r#"Replace a trusted issuer's policies {"policies"}"#,
        access: "admin",
        handler: |r| r.to(update),
    },
    Endpoint {
        method: "DELETE",
        path: "/api/orgs/{org}/oidc/issuers/{id}",
        summary: "Stop trusting an issuer",
        access: "admin",
        handler: |r| r.to(delete),
    },
];

fn org(text: &str) -> Result<OrgName, ApiError> {
    Ok(text.parse()?)
}

async fn token(s: Svc, req: HttpRequest, body: web::Bytes) -> Result<HttpResponse, Refusal> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let request = ExchangeRequest::parse(content_type, &body)?;
    let answer = s
        .exchange_token(&request, req.peer_addr().map(|a| a.ip()))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(answer))
}

async fn list(s: Svc, c: Caller, p: web::Path<String>) -> Res {
    Ok(HttpResponse::Ok().json(s.issuers(&c, &org(&p)?).await?))
}

async fn create(s: Svc, c: Caller, p: web::Path<String>, b: web::Json<NewIssuer>) -> Res {
    Ok(HttpResponse::Ok().json(s.create_issuer(&c, &org(&p)?, b.into_inner()).await?))
}

async fn read(s: Svc, c: Caller, p: web::Path<(String, String)>) -> Res {
    Ok(HttpResponse::Ok().json(s.issuer_by_id(&c, &org(&p.0)?, &p.1).await?))
}

async fn update(
    s: Svc,
    c: Caller,
    p: web::Path<(String, String)>,
    b: web::Json<IssuerUpdate>,
) -> Res {
    Ok(HttpResponse::Ok().json(
        s.update_issuer(&c, &org(&p.0)?, &p.1, b.into_inner())
            .await?,
    ))
}

async fn delete(s: Svc, c: Caller, p: web::Path<(String, String)>) -> Res {
    s.delete_issuer(&c, &org(&p.0)?, &p.1).await?;
    Ok(HttpResponse::NoContent().finish())
}
