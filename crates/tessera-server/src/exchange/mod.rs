//! Tokenless pipelines: a CI platform's OIDC token exchanged for a short-lived Tessera token
//! (RFC 8693 at `POST /api/oauth/token`), under the policies of the issuers an organization
//! trusts.
//!
//! The order of checks is the security argument:
//! 1. the request is well formed and names an existing organization;
//! 2. the token's `iss` (read unverified) is one of that organization's registered issuers —
//!    otherwise nothing is fetched from anywhere;
//! 3. the signature verifies with the issuer's published key (RS256 or ES256 only; `none`
//!    and HMAC never), and `iss`, `aud` (= the requested audience), `exp`, `nbf`, `iat` hold
//!    within a small leeway;
//! 4. the policies allow exactly the requested team, role or user, and no deny matches;
//! 5. the token is created with a lifetime of at most two hours.
//!
//! Every exchange that names an existing organization is audited (`oidc.token_exchange`),
//! granted or refused, with the issuer, the deciding policy and the claims its rules read —
//! never the presented token.

pub(crate) mod keys;
pub(crate) mod policy;

use std::collections::BTreeMap;
use std::net::IpAddr;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{json, Map, Value as Json};
use tessera_store::audit::{AuditContext, AuditRecord};
use tessera_store::oidc::TrustedIssuer;
use tessera_store::tokens::{generate_token_value, NewToken, TokenOwner};
use tessera_store::StoreError;
use tessera_types::OrgName;

use self::keys::KeyLookup;
use self::policy::{decide, parse_policies, Target, TokenType, Verdict, TOKEN_TYPE_PREFIX};
use crate::service::Service;

/// The only grant type accepted.
pub(crate) const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The only subject token type accepted.
pub(crate) const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
/// Audiences are this prefix followed by the organization name.
pub(crate) const AUDIENCE_PREFIX: &str = "urn:pulumi:org:";
/// The longest (and default) lifetime of an exchanged token.
pub(crate) const MAX_LIFETIME_SECS: i64 = 7200;
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
const LEEWAY_SECS: u64 = 60;
/// The largest subject token accepted.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// A refused exchange: an OAuth error (RFC 6749 §5.2) that is also the API's
/// `{"code","message"}` error.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct Refusal {
    status: StatusCode,
    error: &'static str,
    message: String,
}

impl Refusal {
    fn invalid_request(message: impl Into<String>) -> Refusal {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            message: message.into(),
        }
    }

    fn invalid_target(message: impl Into<String>) -> Refusal {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_target",
            message: message.into(),
        }
    }

    fn unavailable(message: impl Into<String>, status: StatusCode) -> Refusal {
        Refusal {
            status,
            error: "temporarily_unavailable",
            message: message.into(),
        }
    }

    pub(crate) fn too_many_requests() -> Refusal {
        Refusal {
            status: StatusCode::TOO_MANY_REQUESTS,
            error: "slow_down",
            message: "too many refused token exchanges from this address; try again in a minute"
                .into(),
        }
    }
}

impl ResponseError for Refusal {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status)
            .insert_header(("Cache-Control", "no-store"))
            .json(json!({
                "code": self.status.as_u16(),
                "message": self.message,
                "error": self.error,
                "error_description": self.message,
            }))
    }
}

/// The parameters of a token exchange, from a form or a JSON body (values as text).
#[derive(Debug, Default)]
pub(crate) struct ExchangeRequest {
    params: BTreeMap<String, String>,
}

impl ExchangeRequest {
    /// Reads a form (`application/x-www-form-urlencoded`) or JSON body.
    pub(crate) fn parse(content_type: &str, body: &[u8]) -> Result<ExchangeRequest, Refusal> {
        let mut params = BTreeMap::new();
        if content_type.contains("json") {
            let v: Json = serde_json::from_slice(body)
                .map_err(|e| Refusal::invalid_request(format!("invalid JSON body: {e}")))?;
            let Json::Object(map) = v else {
                return Err(Refusal::invalid_request("the JSON body must be an object"));
            };
            for (k, v) in map {
                let text = match v {
                    Json::String(s) => s,
                    Json::Number(n) => n.to_string(),
                    Json::Null => continue,
                    _ => {
                        return Err(Refusal::invalid_request(format!(
                            "parameter {k} must be a string or a number"
                        )))
                    }
                };
                params.insert(k, text);
            }
        } else {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
                .map_err(|e| Refusal::invalid_request(format!("invalid form body: {e}")))?;
            for (k, v) in pairs {
                if params.insert(k.clone(), v).is_some() {
                    return Err(Refusal::invalid_request(format!(
                        "parameter {k} is given twice"
                    )));
                }
            }
        }
        Ok(ExchangeRequest { params })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    fn require(&self, name: &str) -> Result<&str, Refusal> {
        self.get(name)
            .ok_or_else(|| Refusal::invalid_request(format!("parameter {name} is required")))
    }
}

/// What a well-formed request asks for.
struct Asked<'a> {
    org: OrgName,
    audience: &'a str,
    subject_token: &'a str,
    target: Target,
    lifetime: i64,
}

fn validate(req: &ExchangeRequest) -> Result<Asked<'_>, Refusal> {
    let grant = req.require("grant_type")?;
    if grant != GRANT_TYPE {
        return Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            error: "unsupported_grant_type",
            message: format!("grant_type must be {GRANT_TYPE}"),
        });
    }
    if req.require("subject_token_type")? != ID_TOKEN_TYPE {
        return Err(Refusal::invalid_request(format!(
            "subject_token_type must be {ID_TOKEN_TYPE}"
        )));
    }
    let subject_token = req.require("subject_token")?;
    if subject_token.len() > MAX_TOKEN_LEN {
        return Err(Refusal::invalid_request("subject_token is too long"));
    }
    let audience = req.require("audience")?;
    let org: OrgName = audience
        .strip_prefix(AUDIENCE_PREFIX)
        .and_then(|o| o.parse().ok())
        .ok_or_else(|| {
            Refusal::invalid_target(format!("audience must be {AUDIENCE_PREFIX}<organization>"))
        })?;
    let kind = match req
        .require("requested_token_type")?
        .strip_prefix(TOKEN_TYPE_PREFIX)
    {
        Some("team") => TokenType::Team,
        Some("organization") => TokenType::Organization,
        Some("personal") => TokenType::Personal,
        _ => {
            return Err(Refusal::invalid_request(format!(
                "requested_token_type must be {TOKEN_TYPE_PREFIX}team, …:organization or …:personal"
            )))
        }
    };
    let target =
        Target::parse(kind, req.get("scope").unwrap_or("")).map_err(Refusal::invalid_request)?;
    let lifetime = match req.get("expiration") {
        None => MAX_LIFETIME_SECS,
        Some(text) => {
            let secs: i64 = text.trim().parse().map_err(|_| {
                Refusal::invalid_request("expiration must be a whole number of seconds")
            })?;
            if secs <= 0 {
                return Err(Refusal::invalid_request("expiration must be positive"));
            }
            secs.min(MAX_LIFETIME_SECS)
        }
    };
    Ok(Asked {
        org,
        audience,
        subject_token,
        target,
        lifetime,
    })
}

/// The unverified `iss` of a JWT, to find the registration (and so the keys) to verify with.
fn unverified_issuer(token: &str) -> Result<String, Refusal> {
    let bad = || Refusal::invalid_request("subject_token is not a signed JWT");
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad())?;
    let claims: Json = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    claims
        .get("iss")
        .and_then(Json::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Refusal::invalid_request("subject_token has no iss claim"))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Why a presented token does not verify (said to the caller and audited).
fn verify_error(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "the subject token has expired".into(),
        K::ImmatureSignature => "the subject token is not valid yet (nbf)".into(),
        K::InvalidAudience => "the subject token's aud is not the requested audience".into(),
        K::InvalidIssuer => "the subject token's iss does not match".into(),
        K::InvalidSignature => "the subject token's signature does not verify".into(),
        K::MissingRequiredClaim(c) => format!("the subject token has no {c} claim"),
        K::InvalidAlgorithm => "the subject token's algorithm does not match its key".into(),
        _ => format!("the subject token does not verify: {e}"),
    }
}

impl Service {
    /// `POST /api/oauth/token`.
    pub(crate) async fn exchange_token(
        &self,
        req: &ExchangeRequest,
        source: Option<IpAddr>,
    ) -> Result<Json, Refusal> {
        if source.is_some_and(|ip| !self.auth_failures().allowed(ip)) {
            return Err(Refusal::too_many_requests());
        }
        let result = self.exchange_inner(req, source).await;
        if result.is_err() {
            if let Some(ip) = source {
                self.auth_failures().failed(ip);
            }
        }
        result
    }

    async fn exchange_inner(
        &self,
        req: &ExchangeRequest,
        source: Option<IpAddr>,
    ) -> Result<Json, Refusal> {
        let asked = validate(req)?;
        let org = asked.org.clone();
        // Read once: it settles that the organization exists and caps the lifetime below.
        let max_lifetime = match self.store().org(&org).await {
            Ok(o) => o.settings.max_token_lifetime_seconds,
            Err(StoreError::NotFound(_)) => {
                return Err(Refusal::invalid_target(format!(
                    "organization {org} does not exist"
                )))
            }
            Err(e) => return Err(store_unavailable(e)),
        };
        let mut audit = Audited {
            service: self,
            org: &org,
            ctx: AuditContext::new("oidc:unverified"),
            details: json!({
                "requestedTokenType": asked.target.token_type().as_str(),
                "scope": req.get("scope").unwrap_or(""),
            }),
        };
        if let Some(ip) = source {
            audit.ctx = audit.ctx.with_source(ip.to_string());
        }
        let iss = match unverified_issuer(asked.subject_token) {
            Ok(iss) => iss,
            Err(r) => return Err(audit.refuse(r, json!({})).await),
        };
        audit.details["issuerUrl"] = json!(iss);
        let registrations = match self.store().issuers_by_url(&org, &iss).await {
            Ok(r) => r,
            Err(e) => return Err(store_unavailable(e)),
        };
        if registrations.is_empty() {
            let r = Refusal::invalid_request(format!(
                "issuer {iss} is not trusted by organization {org}"
            ));
            return Err(audit.refuse(r, json!({})).await);
        }
        let claims = match self
            .verify_subject(asked.subject_token, &iss, asked.audience)
            .await
        {
            Ok(c) => c,
            Err(r) => return Err(audit.refuse(r, json!({})).await),
        };
        let sub = claims
            .get("sub")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_owned();
        audit.ctx.actor = format!("oidc:{sub}");
        audit.details["sub"] = json!(sub);

        let (issuer, verdict) = judge(&registrations, &claims, &asked.target);
        audit.details["issuer"] = json!({ "id": issuer.id, "name": issuer.name });
        let (index, grant, decisive) = match verdict {
            Verdict::Allowed {
                index,
                grant,
                claims,
            } => (index, grant, claims),
            Verdict::DeniedByPolicy { index, claims } => {
                let r = Refusal::invalid_request(format!(
                    "policy {index} of issuer {} denies this token",
                    issuer.name
                ));
                let facts = json!({ "policy": index, "decision": "deny", "claims": claims });
                return Err(audit.refuse(r, facts).await);
            }
            Verdict::NoMatch => {
                let r = Refusal::invalid_request(format!(
                    "no policy of the issuers registered for {iss} allows a {} token for scope {:?}",
                    asked.target.token_type().as_str(),
                    req.get("scope").unwrap_or("")
                ));
                return Err(audit.refuse(r, json!({})).await);
            }
        };

        let lifetime = max_lifetime
            .map_or(asked.lifetime, |m| asked.lifetime.min(m))
            .max(1);
        let owner = match &grant {
            Target::Team(t) => TokenOwner::Team(t.clone()),
            Target::User(u) => TokenOwner::User(u.clone()),
            Target::Organization { role_id, admin } => TokenOwner::Organization {
                role_id: role_id.clone(),
                admin: *admin,
            },
        };
        let value = generate_token_value().map_err(store_unavailable)?;
        let name: String = format!("oidc:{}:{sub}", issuer.name)
            .chars()
            .take(200)
            .collect();
        let spec = NewToken {
            name,
            owner,
            expires_at: Some(now() + lifetime),
        };
        let token = match self
            .store()
            .create_token(&org, &spec, &value, &audit.ctx)
            .await
        {
            Ok(t) => t,
            Err(StoreError::NotFound(what)) | Err(StoreError::Invalid(what)) => {
                let r = Refusal::invalid_request(format!(
                    "policy {index} of issuer {} grants a token that cannot be issued: {what}",
                    issuer.name
                ));
                return Err(audit.refuse(r, json!({ "policy": index })).await);
            }
            Err(e) => return Err(store_unavailable(e)),
        };
        audit.details["policy"] = json!(index);
        audit.details["decision"] = json!("allow");
        audit.details["claims"] = Json::Object(decisive);
        audit.details["tokenId"] = json!(token.id);
        audit.details["expiresIn"] = json!(lifetime);
        audit.allowed().await?;
        Ok(json!({
            "access_token": value.expose(),
            "issued_token_type": grant.token_type().urn(),
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": req.get("scope").unwrap_or(""),
        }))
    }

    /// Verifies the subject token's signature and registered claims with the issuer's keys.
    async fn verify_subject(
        &self,
        token: &str,
        iss: &str,
        audience: &str,
    ) -> Result<Map<String, Json>, Refusal> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            Refusal::invalid_request(
                "the subject token's header is not acceptable: only RS256 and ES256 signatures are",
            )
        })?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(Refusal::invalid_request(format!(
                "the subject token is signed with {:?}: only RS256 and ES256 are accepted",
                header.alg
            )));
        }
        let key = match self
            .exchange_keys()
            .key(iss, header.kid.as_deref(), header.alg)
            .await
        {
            Ok(KeyLookup::Found(k)) => k,
            Ok(KeyLookup::Unknown) => {
                return Err(Refusal::invalid_request(format!(
                    "the issuer publishes no key {:?}",
                    header.kid.unwrap_or_default()
                )))
            }
            Ok(KeyLookup::WrongAlgorithm) => {
                return Err(Refusal::invalid_request(
                    "the subject token's algorithm does not match the issuer's key",
                ))
            }
            Err(e) => {
                tracing::warn!(error = %e, "a trusted issuer's keys are unavailable");
                return Err(Refusal::unavailable(e.to_string(), StatusCode::BAD_GATEWAY));
            }
        };
        let mut v = Validation::new(header.alg);
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        v.set_audience(&[audience]);
        v.set_issuer(&[iss]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Map<String, Json>>(token, &key, &v)
            .map_err(|e| Refusal::invalid_request(verify_error(&e)))?;
        let claims = data.claims;
        if let Some(iat) = claims.get("iat") {
            let iat = iat.as_i64().ok_or_else(|| {
                Refusal::invalid_request("the subject token's iat is not a number")
            })?;
            if iat > now() + LEEWAY_SECS as i64 {
                return Err(Refusal::invalid_request(
                    "the subject token was issued in the future (iat)",
                ));
            }
        }
        Ok(claims)
    }
}

/// The verdict over every registration of the issuer URL: a deny anywhere wins, then the
/// first allow; the registration named is the one that decided (or the first).
fn judge<'a>(
    registrations: &'a [TrustedIssuer],
    claims: &Map<String, Json>,
    target: &Target,
) -> (&'a TrustedIssuer, Verdict) {
    let mut allowed = None;
    for reg in registrations {
        // Policies were validated at registration; a stored set that no longer parses
        // allows nothing.
        let policies = parse_policies(&reg.policies).unwrap_or_default();
        match decide(&policies, claims, target) {
            v @ Verdict::DeniedByPolicy { .. } => return (reg, v),
            v @ Verdict::Allowed { .. } if allowed.is_none() => allowed = Some((reg, v)),
            _ => {}
        }
    }
    allowed.unwrap_or((&registrations[0], Verdict::NoMatch))
}

fn store_unavailable(e: StoreError) -> Refusal {
    tracing::error!(error = %e, "token exchange: the store cannot be used");
    Refusal::unavailable(
        "the service cannot record this exchange right now; try again later",
        StatusCode::SERVICE_UNAVAILABLE,
    )
}

/// The audit entry of one exchange, built up as the checks pass.
struct Audited<'a> {
    service: &'a Service,
    org: &'a OrgName,
    ctx: AuditContext,
    details: Json,
}

impl Audited<'_> {
    /// Records the refusal (with `facts`) and returns it; if the entry cannot be written the
    /// answer is 503 (fail closed).
    async fn refuse(mut self, refusal: Refusal, facts: Json) -> Refusal {
        self.details["reason"] = json!(refusal.message);
        if let Json::Object(f) = facts {
            for (k, v) in f {
                self.details[k] = v;
            }
        }
        let rec = AuditRecord::new(self.org, "oidc.token_exchange")
            .denied()
            .details(self.details);
        match self.service.store().record_audit(&self.ctx, &rec).await {
            Ok(_) => refusal,
            Err(e) => store_unavailable(e),
        }
    }

    async fn allowed(self) -> Result<(), Refusal> {
        let rec = AuditRecord::new(self.org, "oidc.token_exchange").details(self.details);
        self.service
            .store()
            .record_audit(&self.ctx, &rec)
            .await
            .map(|_| ())
            .map_err(store_unavailable)
    }
}
