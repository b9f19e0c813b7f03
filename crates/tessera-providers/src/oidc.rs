//! `oidc`: a Tessera token for any relying party that names its audience, and
//! `debug-oidc-claims`, the same token's claims unsigned (ESC's preview).

use std::collections::BTreeMap;
use std::time::Duration;

use tessera_lang::{ProviderCall, Value};

use crate::error::ProviderError;
use crate::inputs::Inputs;
use crate::issuer::{TokenRequest, MAX_TOKEN_LIFETIME};
use crate::registry::{secret, Shared};

const DEFAULT_LIFETIME: Duration = Duration::from_secs(60 * 60);

fn request(
    shared: &Shared,
    call: &ProviderCall,
    provider: &'static str,
) -> Result<TokenRequest, ProviderError> {
    let inputs = Inputs::root(provider, &call.inputs)?;
    let aud = inputs.string("audience")?.to_owned();
    let lifetime = inputs.opt_duration("duration")?.unwrap_or(DEFAULT_LIFETIME);
    if lifetime.as_secs() == 0 || lifetime > MAX_TOKEN_LIFETIME {
        return Err(inputs.invalid("duration", "must be between 1s and 2h"));
    }
    let attributes = inputs.subject_attributes()?;
    shared.token_request(
        inputs.provider(),
        call,
        |_| aud,
        attributes.as_deref(),
        lifetime,
    )
}

/// `fn::open::oidc`: `{audience, subjectAttributes?, duration?}` → `{token}`.
pub(crate) fn token(shared: &Shared, call: &ProviderCall) -> Result<Value, ProviderError> {
    let request = request(shared, call, "oidc")?;
    let token = shared
        .issuer
        .issue(request)
        .map_err(|message| ProviderError::Issuer {
            provider: "oidc",
            message,
        })?;
    Ok(Value::object(BTreeMap::from([(
        "token".to_owned(),
        secret(token),
    )])))
}

/// `fn::open::debug-oidc-claims`: the claims `oidc` would sign, as plain values. Nothing is
/// signed and nothing is secret.
pub(crate) fn debug_claims(shared: &Shared, call: &ProviderCall) -> Result<Value, ProviderError> {
    let request = request(shared, call, "debug-oidc-claims")?;
    Ok(Value::from_serde_json(&shared.issuer.claims(&request)))
}
