//! Authentication: the [`Caller`] extractor, the only way a handler learns who is asking.
//!
//! Every `/api/…` request carries `Authorization: token <TOKEN>`. Each request first reads
//! the store's change counter ([`Snapshot`]); the token is then looked up by its hash at that
//! snapshot (from the cache only if nothing changed since it was read), and expiry is judged
//! against the clock, so revocation and expiry take effect on the next request on every
//! replica. Unknown, malformed, expired and revoked tokens are all 401
//! with the same message, so a caller learns nothing about which it was.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use tessera_crypto::SecretString;
use tessera_store::access::Principal;
use tessera_store::audit::AuditContext;
use tessera_store::tokens::AccessToken;
use tessera_store::Snapshot;
use tessera_types::OrgName;

use crate::error::ApiError;
use crate::service::Service;

/// An authenticated caller: the token, whom it acts as, and the audit context of the request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token that authenticated the request (never its value).
    pub token: AccessToken,
    /// Whom the token acts as.
    pub principal: Principal,
    /// Actor, token id and source address, for audit entries.
    pub audit: AuditContext,
    /// The store's state this request sees: every lookup of the request is made at it.
    pub at: Snapshot,
}

impl Caller {
    /// The organization the token belongs to.
    pub fn org(&self) -> &OrgName {
        &self.token.org
    }

    /// `Ok` when the token belongs to `org`; otherwise the organization is not visible (404).
    pub fn check_org(&self, org: &OrgName) -> Result<(), ApiError> {
        if self.token.org == *org {
            Ok(())
        } else {
            Err(ApiError::NotFound(format!("organization {org} not found")))
        }
    }

    /// The member login the token acts as, if it is a personal token.
    pub fn login(&self) -> Option<&str> {
        match &self.principal {
            Principal::Member { login } => Some(login),
            _ => None,
        }
    }
}

const UNAUTHORIZED: &str = "a valid access token is required: send Authorization: token <TOKEN> \
     (the token may be unknown, expired or revoked)";

/// The token value of an `Authorization: token <T>` (or `Bearer <T>`) header.
fn token_value(req: &HttpRequest) -> Result<SecretString, ApiError> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized(UNAUTHORIZED.into()))?;
    let text = header
        .to_str()
        .map_err(|_| ApiError::Unauthorized(UNAUTHORIZED.into()))?;
    let (scheme, value) = text
        .trim()
        .split_once(' ')
        .ok_or_else(|| ApiError::Unauthorized(UNAUTHORIZED.into()))?;
    let value = value.trim();
    let scheme_ok = scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer");
    if !scheme_ok || value.is_empty() || value.len() > 512 {
        return Err(ApiError::Unauthorized(UNAUTHORIZED.into()));
    }
    Ok(SecretString::new(value))
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let value = token_value(req);
        let presented = req.headers().contains_key(header::AUTHORIZATION);
        let service = req.app_data::<web::Data<Service>>().cloned();
        let ip = req.peer_addr().map(|a| a.ip());
        let source = ip.map(|a| a.to_string());
        Box::pin(async move {
            let service = service.ok_or_else(|| {
                ApiError::unexpected(std::io::Error::other("the service is not configured"))
            })?;
            let failures = service.auth_failures();
            if ip.is_some_and(|ip| !failures.allowed(ip)) {
                return Err(ApiError::TooManyRequests);
            }
            let fail = |e: ApiError| {
                if let Some(ip) = ip {
                    failures.failed(ip);
                }
                e
            };
            // A request without credentials is not a guess; only presented tokens count.
            let value = match value {
                Ok(v) => v,
                Err(e) if presented => return Err(fail(e)),
                Err(e) => return Err(e),
            };
            let at = service.store().snapshot().await?;
            let token = service
                .store()
                .authenticate_token_at(at, &value)
                .await?
                .ok_or_else(|| fail(ApiError::Unauthorized(UNAUTHORIZED.into())))?;
            if let Some(limit) = service.rate_limit() {
                limit.check(&token.id)?;
            }
            let principal = Principal::from_token(&token);
            let mut audit = AuditContext::new(principal.describe()).with_token(token.id.clone());
            if let Some(source) = source {
                audit = audit.with_source(source);
            }
            Ok(Caller {
                token,
                principal,
                audit,
                at,
            })
        })
    }
}
