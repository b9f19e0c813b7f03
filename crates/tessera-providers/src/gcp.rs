//! `gcp-login`: workload identity federation. A Tessera token is exchanged at Google STS for
//! a federated token, which then impersonates the service account through IAM Credentials'
//! `generateAccessToken`.
//!
//! Static service-account keys (ESC's other mode, via `gcp_auth`) are not implemented yet:
//! inputs without `oidc` get a clear error saying so.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use tessera_lang::{ProviderCall, Value};

use crate::error::{scrub, ProviderError};
use crate::inputs::Inputs;
use crate::issuer::audience;
use crate::registry::{secret, Shared};

const EXCHANGE_TOKEN_LIFETIME: Duration = Duration::from_secs(10 * 60);
const DEFAULT_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);
const MAX_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

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

/// `fn::open::gcp-login`.
pub(crate) async fn login(shared: &Shared, call: &ProviderCall) -> Result<Value, ProviderError> {
    let inputs = Inputs::root("gcp-login", &call.inputs)?;
    let project = inputs.string("project")?;
    let Some(oidc) = inputs.opt_object("oidc")? else {
        return Err(inputs.invalid(
            "oidc",
            "is required (static service-account keys are not supported yet)",
        ));
    };
    let pool = oidc.string("workloadPoolId")?;
    let provider = oidc.string("providerId")?;
    let service_account = oidc.string("serviceAccount")?;
    let id_ok = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
    };
    for (key, value) in [
        ("project", project),
        ("workloadPoolId", pool),
        ("providerId", provider),
        ("serviceAccount", service_account),
    ] {
        if !id_ok(value) {
            return Err(oidc.invalid(key, "contains characters an ID cannot have"));
        }
    }
    let lifetime = match oidc.opt_duration("tokenLifetime")? {
        Some(l) => Some(l),
        None => inputs.opt_duration("tokenLifetime")?,
    }
    .unwrap_or(DEFAULT_ACCESS_TOKEN_LIFETIME);
    if lifetime.as_secs() == 0 || lifetime > MAX_ACCESS_TOKEN_LIFETIME {
        return Err(oidc.invalid("tokenLifetime", "must be between 1s and 12h"));
    }
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
    let iam_url = format!(
        "{}/v1/projects/-/serviceAccounts/{service_account}:generateAccessToken",
        shared.endpoints.gcp_iamcredentials
    );
    let response = shared
        .http
        .post(&iam_url)
        .bearer_auth(&federated.access_token)
        .json(&json!({
            "scope": [CLOUD_PLATFORM],
            "lifetime": format!("{}s", lifetime.as_secs()),
        }))
        .send()
        .await;
    let secrets = [token.as_str(), federated.access_token.as_str()];
    let generated: GenerateAccessTokenResponse = match read(response, "Google IAM Credentials", &iam_url, &secrets).await {
        Ok(b) => parse(&b, "Google IAM Credentials")?,
        Err(Failure::Status(code, message)) => {
            return Err(ProviderError::Refused(scrub(
                &format!(
                    "Google IAM Credentials refused generateAccessToken for service account {service_account}: {code}: {message}"
                ),
                &secrets,
            )))
        }
        Err(Failure::Transport(e)) => return Err(e),
    };

    let mut out = BTreeMap::new();
    out.insert("accessToken".into(), secret(generated.access_token));
    out.insert("tokenType".into(), Value::string("Bearer"));
    out.insert("expiry".into(), Value::string(generated.expire_time));
    out.insert("project".into(), Value::string(project));
    Ok(Value::object(out))
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
