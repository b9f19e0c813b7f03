//! `gcp-login`, in the three ways a Google Cloud login can be given:
//!
//! - `oidc` (workload identity federation): a Tessera token is exchanged at Google STS for a
//!   federated token, which then impersonates the service account through IAM Credentials'
//!   `generateAccessToken`.
//! - `accessToken` (ESC's static login): a token the user already has, returned as is or,
//!   with `serviceAccount`, used to impersonate that service account.
//! - `serviceAccountKey` (Tessera's addition): a service-account key file (JSON, kept as a
//!   secret) signs an RFC 7523 JWT-bearer assertion that Google's OAuth 2.0 token endpoint
//!   exchanges for an access token. The assertion is signed here with `jsonwebtoken` rather
//!   than through `gcp_auth`, which posts to the key file's own `token_uri` (so the
//!   configured `TESSERA_GCP_OAUTH2_ENDPOINT` could not be honoured), uses its own HTTP
//!   client (outside the per-call deadline) and caches tokens in process memory (credentials
//!   must live only in the open session).
//!
//! The key, the assertion and every token are secrets: they appear in no message or log, and
//! remote error text is scrubbed of them before it is quoted.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_lang::{ProviderCall, Value, ValueKind};
use zeroize::Zeroize;

use crate::error::{scrub, ProviderError};
use crate::inputs::Inputs;
use crate::issuer::audience;
use crate::registry::{secret, Shared};

const EXCHANGE_TOKEN_LIFETIME: Duration = Duration::from_secs(10 * 60);
const DEFAULT_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);
const MAX_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
/// RFC 7523's grant type: a signed JWT as the authorization grant.
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google accepts assertions valid for at most an hour.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(60 * 60);

#[derive(Deserialize)]
struct StsResponse {
    access_token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateAccessTokenResponse {
    access_token: String,
    expire_time: String,
}

#[derive(Deserialize)]
struct OAuthTokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The fields of a service-account key file that the login needs. The private key is wiped
/// from memory when the key is dropped; there is deliberately no `Debug`.
#[derive(Deserialize)]
struct ServiceAccountKey {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
}

impl Drop for ServiceAccountKey {
    fn drop(&mut self) {
        self.private_key.zeroize();
    }
}

/// The claims of the JWT-bearer assertion, as Google documents them for service accounts.
#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

/// `fn::open::gcp-login`.
pub(crate) async fn login(shared: &Shared, call: &ProviderCall) -> Result<Value, ProviderError> {
    let inputs = Inputs::root("gcp-login", &call.inputs)?;
    let project = inputs.string("project")?;
    if !id_ok(project) {
        return Err(inputs.invalid("project", "contains characters an ID cannot have"));
    }
    let given: Vec<&str> = ["oidc", "accessToken", "serviceAccountKey"]
        .into_iter()
        .filter(|k| {
            call.inputs
                .get(k)
                .is_some_and(|v| !matches!(v.kind, ValueKind::Null))
        })
        .collect();
    match given.as_slice() {
        ["oidc"] => login_oidc(shared, call, inputs, project).await,
        ["accessToken"] => login_access_token(shared, inputs, project).await,
        ["serviceAccountKey"] => login_service_account_key(shared, inputs, project).await,
        [] => Err(inputs.invalid("oidc", "or accessToken or serviceAccountKey is required")),
        several => Err(inputs.invalid(
            several[1],
            &format!(
                "cannot be given together with {}: choose one way to log in",
                several[0]
            ),
        )),
    }
}

fn id_ok(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

/// `tokenLifetime` of an impersonated token: Google allows 1 s to 12 h.
fn lifetime(inputs: &Inputs<'_>, fallback: Option<&Inputs<'_>>) -> Result<Duration, ProviderError> {
    let lifetime = match inputs.opt_duration("tokenLifetime")? {
        Some(l) => Some(l),
        None => match fallback {
            Some(f) => f.opt_duration("tokenLifetime")?,
            None => None,
        },
    }
    .unwrap_or(DEFAULT_ACCESS_TOKEN_LIFETIME);
    if lifetime.as_secs() == 0 || lifetime > MAX_ACCESS_TOKEN_LIFETIME {
        return Err(inputs.invalid("tokenLifetime", "must be between 1s and 12h"));
    }
    Ok(lifetime)
}

fn outputs(project: &str, access_token: String, token_type: &str, expiry: Option<String>) -> Value {
    let mut out = BTreeMap::new();
    out.insert("accessToken".into(), secret(access_token));
    out.insert("tokenType".into(), Value::string(token_type));
    if let Some(expiry) = expiry {
        out.insert("expiry".into(), Value::string(expiry));
    }
    out.insert("project".into(), Value::string(project));
    Value::object(out)
}

async fn login_oidc(
    shared: &Shared,
    call: &ProviderCall,
    inputs: Inputs<'_>,
    project: &str,
) -> Result<Value, ProviderError> {
    let Some(oidc) = inputs.opt_object("oidc")? else {
        return Err(inputs.invalid("oidc", "is required"));
    };
    let pool = oidc.string("workloadPoolId")?;
    let provider = oidc.string("providerId")?;
    let service_account = oidc.string("serviceAccount")?;
    for (key, value) in [
        ("workloadPoolId", pool),
        ("providerId", provider),
        ("serviceAccount", service_account),
    ] {
        if !id_ok(value) {
            return Err(oidc.invalid(key, "contains characters an ID cannot have"));
        }
    }
    let lifetime = lifetime(&oidc, Some(&inputs))?;
    let region = oidc.opt_string("region")?.unwrap_or("global");
    if !id_ok(region) {
        return Err(oidc.invalid("region", "contains characters a region cannot have"));
    }
    let attributes = oidc.subject_attributes()?;
    let (_, token) = shared.mint(
        "gcp-login",
        call,
        |org| audience("gcp", org),
        attributes.as_deref(),
        EXCHANGE_TOKEN_LIFETIME,
    )?;

    // 1. Google STS: our token for a federated access token.
    let provider_name = format!(
        "//iam.googleapis.com/projects/{project}/locations/{region}/workloadIdentityPools/{pool}/providers/{provider}"
    );
    let sts_url = format!("{}/v1/token", shared.endpoints.gcp_sts);
    let form = [
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("audience", provider_name.as_str()),
        ("scope", CLOUD_PLATFORM),
        (
            "requested_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        ),
        ("subject_token", token.as_str()),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt"),
    ];
    let response = shared.http.post(&sts_url).form(&form).send().await;
    let body = read(response, "Google STS", &sts_url, &[&token]).await;
    let federated: StsResponse = match body {
        Ok(b) => parse(&b, "Google STS")?,
        Err(Failure::Status(code, message)) => {
            return Err(ProviderError::Refused(scrub(
                &format!(
                    "Google STS refused the token exchange for workload identity provider {provider_name}: {code}: {message}"
                ),
                &[&token],
            )))
        }
        Err(Failure::Transport(e)) => return Err(e),
    };

    // 2. IAM Credentials: the federated token impersonates the service account.
    let generated = impersonate(
        shared,
        &federated.access_token,
        service_account,
        lifetime,
        &[token.as_str()],
    )
    .await?;
    Ok(outputs(
        project,
        generated.access_token,
        "Bearer",
        Some(generated.expire_time),
    ))
}

/// ESC's static login: `accessToken: {accessToken, serviceAccount?, tokenLifetime?}`.
async fn login_access_token(
    shared: &Shared,
    inputs: Inputs<'_>,
    project: &str,
) -> Result<Value, ProviderError> {
    let Some(fixed) = inputs.opt_object("accessToken")? else {
        return Err(inputs.invalid("accessToken", "is required"));
    };
    let token = fixed.string("accessToken")?;
    let Some(service_account) = fixed.opt_string("serviceAccount")? else {
        if fixed.opt_duration("tokenLifetime")?.is_some() {
            return Err(fixed.invalid(
                "tokenLifetime",
                "applies only when impersonating a serviceAccount",
            ));
        }
        return Ok(outputs(project, token.to_owned(), "Bearer", None));
    };
    if !id_ok(service_account) {
        return Err(fixed.invalid("serviceAccount", "contains characters an ID cannot have"));
    }
    let lifetime = lifetime(&fixed, None)?;
    let generated = impersonate(shared, token, service_account, lifetime, &[]).await?;
    Ok(outputs(
        project,
        generated.access_token,
        "Bearer",
        Some(generated.expire_time),
    ))
}

/// Tessera's addition: `serviceAccountKey`, the key file's JSON (a secret string) or its
/// fields (an object whose private key is secret).
async fn login_service_account_key(
    shared: &Shared,
    inputs: Inputs<'_>,
    project: &str,
) -> Result<Value, ProviderError> {
    let key = service_account_key(&inputs)?;
    let token_url = format!("{}/token", shared.endpoints.gcp_oauth2);
    let now = unix_now();
    let claims = AssertionClaims {
        iss: &key.client_email,
        scope: CLOUD_PLATFORM,
        aud: &token_url,
        iat: now,
        exp: now + ASSERTION_LIFETIME.as_secs(),
    };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = key.private_key_id.clone();
    let signing_key = EncodingKey::from_rsa_pem(key.private_key.as_bytes()).map_err(|_| {
        inputs.invalid(
            "serviceAccountKey",
            "private_key is not an RSA private key in PEM form",
        )
    })?;
    let assertion = jsonwebtoken::encode(&header, &claims, &signing_key).map_err(|_| {
        inputs.invalid(
            "serviceAccountKey",
            "private_key cannot sign (is it an RSA key?)",
        )
    })?;
    let form = [
        ("grant_type", JWT_BEARER),
        ("assertion", assertion.as_str()),
    ];
    let response = shared.http.post(&token_url).form(&form).send().await;
    let secrets = [assertion.as_str(), key.private_key.as_str()];
    let granted: OAuthTokenResponse =
        match read(response, "Google OAuth", &token_url, &secrets).await {
            Ok(b) => parse(&b, "Google OAuth")?,
            Err(Failure::Status(code, message)) => {
                return Err(ProviderError::Refused(scrub(
                    &format!(
                        "Google OAuth refused the key of service account {}: {code}: {message}",
                        key.client_email
                    ),
                    &secrets,
                )))
            }
            Err(Failure::Transport(e)) => return Err(e),
        };
    let expiry = granted
        .expires_in
        .map(|s| rfc3339(unix_now().saturating_add(s)));
    let token_type = granted.token_type.as_deref().unwrap_or("Bearer");
    Ok(outputs(project, granted.access_token, token_type, expiry))
}

/// Reads the key input, refusing a private key that is not marked secret (it would be
/// stored and shown in plaintext).
fn service_account_key(inputs: &Inputs<'_>) -> Result<ServiceAccountKey, ProviderError> {
    const NAME: &str = "serviceAccountKey";
    let invalid = |what: &str| inputs.invalid(NAME, what);
    let value = inputs
        .value()
        .get(NAME)
        .ok_or_else(|| invalid("is required"))?;
    let key: ServiceAccountKey = match &value.kind {
        ValueKind::String(text) => {
            if !value.secret {
                return Err(invalid(
                    "must be a secret (fn::secret): it holds a private key",
                ));
            }
            serde_json::from_str(text).map_err(|_| {
                invalid(
                    "must be a service-account key file (JSON with client_email and private_key)",
                )
            })?
        }
        ValueKind::Object(fields) => {
            let private_key_secret =
                value.secret || fields.get("private_key").is_some_and(|v| v.secret);
            if !private_key_secret {
                return Err(invalid(
                    "private_key must be a secret (fn::secret): it is a private key",
                ));
            }
            let field = |k: &str| fields.get(k).and_then(Value::as_str).map(str::to_owned);
            ServiceAccountKey {
                kind: field("type"),
                client_email: field("client_email").ok_or_else(|| invalid("needs client_email"))?,
                private_key: field("private_key").ok_or_else(|| invalid("needs private_key"))?,
                private_key_id: field("private_key_id"),
            }
        }
        _ => {
            return Err(invalid(&format!(
                "must be a service-account key file (a secret string or an object), not {}",
                value.type_name()
            )))
        }
    };
    if key.kind.as_deref().is_some_and(|k| k != "service_account") {
        return Err(invalid(
            "is not a service-account key (its type is not service_account)",
        ));
    }
    if key.client_email.is_empty() || !id_ok(&key.client_email) {
        return Err(invalid("client_email is not a service account's email"));
    }
    Ok(key)
}

/// IAM Credentials' `generateAccessToken`: `bearer` impersonates `service_account`.
async fn impersonate(
    shared: &Shared,
    bearer: &str,
    service_account: &str,
    lifetime: Duration,
    also_secret: &[&str],
) -> Result<GenerateAccessTokenResponse, ProviderError> {
    let iam_url = format!(
        "{}/v1/projects/-/serviceAccounts/{service_account}:generateAccessToken",
        shared.endpoints.gcp_iamcredentials
    );
    let response = shared
        .http
        .post(&iam_url)
        .bearer_auth(bearer)
        .json(&json!({
            "scope": [CLOUD_PLATFORM],
            "lifetime": format!("{}s", lifetime.as_secs()),
        }))
        .send()
        .await;
    let mut secrets = vec![bearer];
    secrets.extend_from_slice(also_secret);
    match read(response, "Google IAM Credentials", &iam_url, &secrets).await {
        Ok(b) => parse(&b, "Google IAM Credentials"),
        Err(Failure::Status(code, message)) => Err(ProviderError::Refused(scrub(
            &format!(
                "Google IAM Credentials refused generateAccessToken for service account {service_account}: {code}: {message}"
            ),
            &secrets,
        ))),
        Err(Failure::Transport(e)) => Err(e),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (the form Google's `expireTime` has).
fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

enum Failure {
    /// The service answered with an error: its code and message.
    Status(String, String),
    Transport(ProviderError),
}

/// The body of a successful response, or the service's error (both OAuth's
/// `{error, error_description}` and Google's `{error: {status, message}}` shapes).
async fn read(
    response: Result<reqwest::Response, reqwest::Error>,
    service: &str,
    url: &str,
    secrets: &[&str],
) -> Result<Vec<u8>, Failure> {
    let unreachable = |e: reqwest::Error| {
        Failure::Transport(ProviderError::Unreachable(scrub(
            &format!("could not reach {service} at {url}: {}", e.without_url()),
            secrets,
        )))
    };
    let response = response.map_err(unreachable)?;
    let status = response.status();
    let body = response.bytes().await.map_err(unreachable)?;
    if status.is_success() {
        return Ok(body.to_vec());
    }
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let (code, message) = match &parsed["error"] {
        serde_json::Value::String(code) => (
            code.clone(),
            text(&parsed["error_description"]).unwrap_or_default(),
        ),
        serde_json::Value::Object(e) => (
            e.get("status")
                .and_then(text)
                .unwrap_or_else(|| status.to_string()),
            e.get("message").and_then(text).unwrap_or_default(),
        ),
        _ => (
            status.to_string(),
            String::from_utf8_lossy(&body).into_owned(),
        ),
    };
    Err(Failure::Status(code, scrub(&message, secrets)))
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], service: &str) -> Result<T, ProviderError> {
    serde_json::from_slice(body).map_err(|_| {
        ProviderError::Unreachable(format!(
            "{service} answered with something that is not the expected JSON"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_893_456_000), "2030-01-01T00:00:00Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }
}
