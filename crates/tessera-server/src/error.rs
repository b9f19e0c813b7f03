//! [`ApiError`], the one error type of the API, and the rewriting of actix's own rejections.
//!
//! Error policy: every error response is JSON `{"code": <status>, "message": "…"}` (plus
//! `diagnostics` for environment documents that do not evaluate, and for opens whose
//! providers' remote services refused (502) or did not answer (504)). Messages name what was
//! wrong and never contain a secret or a token. Infrastructure failures are logged with their
//! cause and answered with a generic message: 503 when the database (and so the audit log)
//! cannot be written — the action was not done — and 500 for anything else unexpected.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use tessera_store::access::AuthorizeError;
use tessera_store::StoreError;

use crate::wire;

/// Everything a request can fail with, mapped to an HTTP status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 400: the request is malformed or names something invalid.
    #[error("{0}")]
    BadRequest(String),
    /// 400: an environment document has errors; nothing was saved or opened.
    #[error("{message}")]
    Diagnostics {
        /// A one-line summary.
        message: String,
        /// Every diagnostic, ESC-shaped.
        diagnostics: Vec<wire::Diagnostic>,
    },
    /// 401: no valid access token.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the caller may see the thing but lacks the permission.
    #[error("{0}")]
    Forbidden(String),
    /// 404: it does not exist, or the caller may not see it.
    #[error("{0}")]
    NotFound(String),
    /// 409: a conflicting state (concurrent update, already exists).
    #[error("{0}")]
    Conflict(String),
    /// 413: the request body is over the limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 429: too many failed authentications from this address.
    #[error("too many failed authentications from this address; try again in a minute")]
    TooManyRequests,
    /// 429: this token made more requests than `TESSERA_RATE_LIMIT_PER_TOKEN` allows; sent
    /// with `Retry-After`.
    #[error("too many requests with this token: at most {limit} per second; retry after {retry_after} s")]
    RateLimited {
        /// The configured requests per second.
        limit: u32,
        /// Whole seconds until a request will be accepted again.
        retry_after: u64,
    },
    /// 502: a provider's remote service refused or could not be reached during an open.
    #[error("{message}")]
    BadGateway {
        /// A one-line summary naming the provider's failure.
        message: String,
        /// Every diagnostic of the evaluation.
        diagnostics: Vec<wire::Diagnostic>,
    },
    /// 504: a provider's remote service did not answer in time during an open.
    #[error("{message}")]
    GatewayTimeout {
        /// A one-line summary.
        message: String,
        /// Every diagnostic of the evaluation.
        diagnostics: Vec<wire::Diagnostic>,
    },
    /// 503: the database or the audit log cannot be written; the action was not done.
    #[error("the service cannot record this action right now; nothing was done, try again later")]
    Unavailable(#[source] StoreError),
    /// 500: a failure the client cannot fix. Logged; the client sees a generic message.
    #[error("an unexpected error occurred; it has been logged")]
    Unexpected(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// An unexpected failure.
    pub fn unexpected(e: impl std::error::Error + Send + Sync + 'static) -> ApiError {
        ApiError::Unexpected(Box::new(e))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            StoreError::AlreadyExists(what) => ApiError::Conflict(format!("{what} already exists")),
            e @ (StoreError::Conflict { .. } | StoreError::DeletionProtected { .. }) => {
                ApiError::Conflict(e.to_string())
            }
            StoreError::Invalid(msg) => ApiError::BadRequest(msg),
            e @ StoreError::NotGranted { .. } => ApiError::Forbidden(e.to_string()),
            e @ (StoreError::Database { .. }
            | StoreError::Connect { .. }
            | StoreError::WriteFailed(_)) => ApiError::Unavailable(e),
            e => ApiError::unexpected(e),
        }
    }
}

impl From<AuthorizeError> for ApiError {
    fn from(e: AuthorizeError) -> ApiError {
        match e {
            AuthorizeError::Denied { org, env, .. } => {
                ApiError::Forbidden(format!("open permission is required on {org}/{env}"))
            }
            AuthorizeError::Store(e) => e.into(),
            e => ApiError::unexpected(e),
        }
    }
}

impl From<tessera_types::NameError> for ApiError {
    fn from(e: tessera_types::NameError) -> ApiError {
        ApiError::BadRequest(e.to_string())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::Diagnostics { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests | ApiError::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            ApiError::GatewayTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            ApiError::Unavailable(e) => {
                tracing::error!(error = %e, "refusing a request: the database cannot be written")
            }
            ApiError::Unexpected(e) => tracing::error!(error = %e, "unexpected error"),
            _ => {}
        }
        let mut body = serde_json::json!({
            "code": status.as_u16(),
            "message": self.to_string(),
        });
        if let ApiError::Diagnostics { diagnostics, .. }
        | ApiError::BadGateway { diagnostics, .. }
        | ApiError::GatewayTimeout { diagnostics, .. } = self
        {
            body["diagnostics"] = serde_json::to_value(diagnostics).unwrap_or_default();
        }
        let mut response = HttpResponse::build(status);
        if let ApiError::RateLimited { retry_after, .. } = self {
            response.insert_header((
                actix_web::http::header::RETRY_AFTER,
                retry_after.to_string(),
            ));
        }
        response.json(body)
    }
}

/// The JSON error handler of `web::JsonConfig`: bad JSON is 400, an oversized body 413.
pub(crate) fn json_error(
    err: actix_web::error::JsonPayloadError,
    _: &HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    match err {
        J::Overflow { .. } | J::OverflowKnownLength { .. } => {
            ApiError::PayloadTooLarge(format!("the request body is too large: {err}")).into()
        }
        J::ContentType => ApiError::BadRequest(
            "the request body must be JSON (Content-Type: application/json)".into(),
        )
        .into(),
        other => ApiError::BadRequest(format!("invalid JSON body: {other}")).into(),
    }
}

/// The error handler of `web::QueryConfig`.
pub(crate) fn query_error(
    err: actix_web::error::QueryPayloadError,
    _: &HttpRequest,
) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid query string: {err}")).into()
}

/// The error handler of `web::PathConfig`.
pub(crate) fn path_error(err: actix_web::error::PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("invalid path: {err}")).into()
}

/// The fallback for unknown routes.
pub(crate) async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no such route: {} {}",
        req.method(),
        req.path()
    )))
}

/// Rewrites any error response that is not already JSON (actix's 404, 405, 413 and other
/// rejections) into the contract's `{"code","message"}` shape.
pub(crate) fn rewrite_as_json<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let message = match res.response().error() {
        Some(e) => e.to_string(),
        None => match status {
            StatusCode::METHOD_NOT_ALLOWED => format!(
                "method {} is not allowed on {}",
                res.request().method(),
                res.request().path()
            ),
            StatusCode::NOT_FOUND => format!("no such route: {}", res.request().path()),
            s => s.canonical_reason().unwrap_or("error").to_owned(),
        },
    };
    let body = serde_json::json!({ "code": status.as_u16(), "message": message }).to_string();
    let (req, res) = res.into_parts();
    let mut res = res.set_body(BoxBody::new(body));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res.headers_mut().remove(header::CONTENT_LENGTH);
    let res: ServiceResponse<EitherBody<B, BoxBody>> =
        ServiceResponse::new(req, res).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}
