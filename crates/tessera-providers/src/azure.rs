//! `azure-login`: a Tessera token sent to Azure AD as a client assertion (workload identity
//! federation), or a client secret, exchanged for an access token.
//!
//! The exchange is done by hand with reqwest rather than through `azure_identity`: that crate
//! takes its authority host from its own options and environment and cannot be pointed at an
//! arbitrary authority per registry (which `TESSERA_AZURE_AUTHORITY_HOST` and the tests need),
//! and the exchange itself is one form POST (RFC 7523 client assertion).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use tessera_lang::{ProviderCall, Value};

use crate::error::{scrub, ProviderError};
use crate::inputs::Inputs;
use crate::issuer::audience;
use crate::registry::{secret, Shared};

/// The token is handed out too (`oidc.token`, for tools that do the exchange themselves), so
/// it lives as long as a typical Azure access token.
const TOKEN_LIFETIME: Duration = Duration::from_secs(60 * 60);
const SCOPE: &str = "https://management.azure.com/.default";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: Option<String>,
    error_description: Option<String>,
}

/// `fn::open::azure-login`.
pub(crate) async fn login(shared: &Shared, call: &ProviderCall) -> Result<Value, ProviderError> {
    let inputs = Inputs::root("azure-login", &call.inputs)?;
    let client_id = inputs.string("clientId")?;
    let tenant_id = inputs.string("tenantId")?;
    if !tenant_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(inputs.invalid("tenantId", "must be a tenant ID or domain name"));
    }
    let subscription_id = inputs.opt_string("subscriptionId")?;
    // ESC writes `oidc: true`; an object (`oidc: {subjectAttributes: …}`) is accepted too.
    let (oidc, nested) = match inputs.opt_object("oidc") {
        Ok(Some(o)) => (true, Some(o)),
        Ok(None) => (false, None),
        Err(_) => (inputs.opt_bool("oidc")?.unwrap_or(false), None),
    };
    let client_secret = inputs.opt_string("clientSecret")?;

    let url = format!(
        "{}/{tenant_id}/oauth2/v2.0/token",
        shared.endpoints.azure_authority_host
    );
    let mut out = BTreeMap::new();
    let (form, sent_secret, what) = if oidc {
        let attributes = match nested {
            Some(n) => n.subject_attributes()?,
            None => inputs.subject_attributes()?,
        };
        let (_, token) = shared.mint(
            "azure-login",
            call,
            |org| audience("azure", org),
            attributes.as_deref(),
            TOKEN_LIFETIME,
        )?;
        out.insert(
            "oidc".into(),
            Value::object(BTreeMap::from([(
                "token".to_owned(),
                secret(token.as_str()),
            )])),
        );
        let form = vec![
            ("client_id", client_id.to_owned()),
            ("client_assertion", token.clone()),
            ("client_assertion_type", ASSERTION_TYPE.to_owned()),
            ("grant_type", "client_credentials".to_owned()),
            ("scope", SCOPE.to_owned()),
        ];
        (form, token, "the client assertion")
    } else if let Some(client_secret) = client_secret {
        out.insert("clientSecret".into(), secret(client_secret));
        let form = vec![
            ("client_id", client_id.to_owned()),
            ("client_secret", client_secret.to_owned()),
            ("grant_type", "client_credentials".to_owned()),
            ("scope", SCOPE.to_owned()),
        ];
        (form, client_secret.to_owned(), "the client secret")
    } else {
        return Err(inputs.invalid("oidc", "must be true, or clientSecret given"));
    };

    let unreachable = |e: reqwest::Error| {
        ProviderError::Unreachable(scrub(
            &format!("could not reach Azure AD at {url}: {}", e.without_url()),
            &[&sent_secret],
        ))
    };
    let response = shared
        .http
        .post(&url)
        .form(&form)
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    let body = response.bytes().await.map_err(unreachable)?;
    if !status.is_success() {
        let (code, description) = match serde_json::from_slice::<ErrorResponse>(&body) {
            Ok(e) => (
                e.error.unwrap_or_else(|| status.to_string()),
                e.error_description.unwrap_or_default(),
            ),
            Err(_) => (
                status.to_string(),
                String::from_utf8_lossy(&body).into_owned(),
            ),
        };
        return Err(ProviderError::Refused(scrub(
            &format!(
                "Azure AD refused {what} for client {client_id} in tenant {tenant_id}: {code}: {description}"
            ),
            &[&sent_secret],
        )));
    }
    let token: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
        ProviderError::Unreachable(format!(
            "Azure AD answered {url} with something that is not a token response"
        ))
    })?;
    out.insert("accessToken".into(), secret(token.access_token));
    out.insert("clientId".into(), Value::string(client_id));
    out.insert("tenantId".into(), Value::string(tenant_id));
    if let Some(s) = subscription_id {
        out.insert("subscriptionId".into(), Value::string(s));
    }
    Ok(Value::object(out))
}
