//! What a token Tessera mints says, and the boundary to the server that signs it.
//!
//! The server owns the signing keys and implements [`IdTokenIssuer`]; this module computes
//! everything else: the audience (`aws:<org>`, `azure:<org>`, `gcp:<org>` or a relying
//! party's own), the subject as Pulumi ESC writes it ([`subject`]), and the full claim set
//! ([`TokenRequest::claims`]), so that trust policies written for ESC work unchanged but for
//! the issuer URL.

use std::time::Duration;

use serde_json::json;
use tessera_lang::{ProviderCall, Value};

/// The longest lifetime of any token Tessera mints; longer requests are shortened.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(2 * 60 * 60);

/// The `subjectAttributes` ESC documents. Any other string-valued `${context}` path is
/// accepted as well, but these are the ones a trust policy can rely on.
pub const SUBJECT_ATTRIBUTES: [&str; 4] = [
    "currentEnvironment.name",
    "rootEnvironment.name",
    "pulumi.user.login",
    "pulumi.organization.login",
];

/// Signs tokens with the server's current key. Implemented by the server (RS256 or ES256,
/// a `kid` header, `iss` = its issuer URL).
pub trait IdTokenIssuer: Send + Sync {
    /// Signs a token for `request`: the claims of [`IdTokenIssuer::claims`], signed. The
    /// error is shown to the user, so it must not contain key material.
    fn issue(&self, request: TokenRequest) -> Result<String, String>;

    /// The claims a token for `request` would carry, unsigned (`debug-oidc-claims`).
    /// Implementations normally return `request.claims(issuer_url, now)`.
    fn claims(&self, request: &TokenRequest) -> serde_json::Value;
}

/// Everything a token says but its issuer, times and signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// `aud`.
    pub audience: String,
    /// `sub`, as computed by [`subject`].
    pub subject: String,
    /// How long the token is valid; capped at [`MAX_TOKEN_LIFETIME`].
    pub lifetime: Duration,
    /// The organization (`org` claim).
    pub organization: String,
    /// The environment declaring the login, `project/env` (`current_env` claim).
    pub current_environment: String,
    /// The environment being opened, `project/env` (`root_env` claim).
    pub root_environment: String,
    /// The acting user's login, when a user (not an organization or team token) opens.
    pub user: Option<String>,
}

impl TokenRequest {
    /// The full claim set for a token issued by `issuer` at `issued_at` (unix seconds):
    /// `iss`, `aud`, `sub`, `iat`, `nbf`, `exp` (at most two hours later), and the claims
    /// naming the organization, the current and root environments and the user.
    pub fn claims(&self, issuer: &str, issued_at: u64) -> serde_json::Value {
        let lifetime = self.lifetime.min(MAX_TOKEN_LIFETIME).as_secs().max(1);
        let mut claims = json!({
            "iss": issuer,
            "aud": self.audience,
            "sub": self.subject,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + lifetime,
            "org": self.organization,
            "current_env": self.current_environment,
            "root_env": self.root_environment,
        });
        if let (Some(user), Some(map)) = (&self.user, claims.as_object_mut()) {
            map.insert("user".into(), json!(user));
        }
        claims
    }

    /// The lifetime in force: the requested one capped at [`MAX_TOKEN_LIFETIME`].
    pub fn effective_lifetime(&self) -> Duration {
        self.lifetime.min(MAX_TOKEN_LIFETIME)
    }
}

/// Who is calling a provider, read from the call: organization and user from `${context}`,
/// the current environment (the one that declares the call) and the root (the one opened).
#[derive(Debug, Clone)]
pub struct CallIdentity {
    /// `context.pulumi.organization.login`.
    pub organization: String,
    /// `context.pulumi.user.login`, if a user is acting.
    pub user: Option<String>,
    /// The environment declaring the call.
    pub current_environment: String,
    /// The environment being opened.
    pub root_environment: String,
    /// The whole `${context}` of the declaring environment, for `subjectAttributes`.
    pub context: Value,
}

impl CallIdentity {
    /// Reads the identity of `call`. Fails when the context does not name the organization
    /// (tokens are always issued on behalf of one).
    pub fn from_call(call: &ProviderCall) -> Result<CallIdentity, SubjectError> {
        let organization = context_string(&call.context, "pulumi.organization.login")
            .ok_or(SubjectError::NoOrganization)?
            .to_owned();
        Ok(CallIdentity {
            organization,
            user: context_string(&call.context, "pulumi.user.login").map(str::to_owned),
            current_environment: call.environment.clone(),
            root_environment: call.root_environment.clone(),
            context: call.context.clone(),
        })
    }

    /// The token request for `audience`, with the subject computed from `attributes`.
    pub fn token_request(
        &self,
        audience: String,
        attributes: Option<&[String]>,
        lifetime: Duration,
    ) -> Result<TokenRequest, SubjectError> {
        Ok(TokenRequest {
            audience,
            subject: subject(
                &self.organization,
                &self.current_environment,
                attributes,
                &self.context,
            )?,
            lifetime,
            organization: self.organization.clone(),
            current_environment: self.current_environment.clone(),
            root_environment: self.root_environment.clone(),
            user: self.user.clone(),
        })
    }
}

/// Why a subject cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubjectError {
    /// The context does not name the organization.
    #[error("the organization is unknown: context pulumi.organization.login is not set")]
    NoOrganization,
    /// A `subjectAttributes` entry names nothing in the context.
    #[error("subjectAttributes: {0:?} is not set in this context (ESC's attributes are currentEnvironment.name, rootEnvironment.name, pulumi.user.login and pulumi.organization.login)")]
    UnknownAttribute(String),
    /// An attribute's value contains `:`, which would make the subject ambiguous.
    #[error("subjectAttributes: the value of {0:?} contains ':', which a subject cannot carry unambiguously")]
    AmbiguousValue(String),
}

/// The audience of a cloud login token: `<cloud>:<org>` (`aws:acme`, `azure:acme`, `gcp:acme`).
pub fn audience(cloud: &str, organization: &str) -> String {
    format!("{cloud}:{organization}")
}

/// ESC's `sub` for a token minted by a login declared in `current_environment`
/// (`project/env`).
///
/// - Without `attributes`: `pulumi:environments:org:<org>:env:<project>/<env>`.
/// - With them: `pulumi:environments:pulumi.organization.login:<org>` followed by
///   `:<attribute>:<value>` for each attribute in order, each value read from `context`
///   (`currentEnvironment.name` is the declaring environment, `rootEnvironment.name` the one
///   opened, `pulumi.user.login` the acting user).
pub fn subject(
    organization: &str,
    current_environment: &str,
    attributes: Option<&[String]>,
    context: &Value,
) -> Result<String, SubjectError> {
    let Some(attributes) = attributes else {
        return Ok(format!(
            "pulumi:environments:org:{organization}:env:{current_environment}"
        ));
    };
    let mut sub = format!("pulumi:environments:pulumi.organization.login:{organization}");
    for attribute in attributes {
        let value = context_string(context, attribute)
            .ok_or_else(|| SubjectError::UnknownAttribute(attribute.clone()))?;
        if value.contains(':') {
            return Err(SubjectError::AmbiguousValue(attribute.clone()));
        }
        sub.push(':');
        sub.push_str(attribute);
        sub.push(':');
        sub.push_str(value);
    }
    Ok(sub)
}

/// A string at a dotted path of the context, e.g. `pulumi.user.login`.
fn context_string<'v>(context: &'v Value, dotted: &str) -> Option<&'v str> {
    if dotted.is_empty() {
        return None;
    }
    dotted
        .split('.')
        .try_fold(context, |v, key| v.get(key))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn obj(pairs: Vec<(&str, Value)>) -> Value {
        Value::object(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    fn context() -> Value {
        let named = |n: &str| obj(vec![("name", Value::string(n))]);
        obj(vec![
            ("currentEnvironment", named("team/aws")),
            ("rootEnvironment", named("app/dev")),
            (
                "pulumi",
                obj(vec![
                    ("user", obj(vec![("login", Value::string("alice"))])),
                    ("organization", obj(vec![("login", Value::string("acme"))])),
                ]),
            ),
        ])
    }

    #[test]
    fn default_subject_names_the_declaring_environment() {
        assert_eq!(
            subject("acme", "team/aws", None, &context()).as_deref(),
            Ok("pulumi:environments:org:acme:env:team/aws")
        );
    }

    #[test]
    fn subject_attributes_append_in_order() {
        let attrs = vec![
            "currentEnvironment.name".to_owned(),
            "pulumi.user.login".to_owned(),
            "rootEnvironment.name".to_owned(),
        ];
        assert_eq!(
            subject("acme", "team/aws", Some(&attrs), &context()).as_deref(),
            Ok("pulumi:environments:pulumi.organization.login:acme:currentEnvironment.name:team/aws:pulumi.user.login:alice:rootEnvironment.name:app/dev")
        );
        assert_eq!(
            subject("acme", "team/aws", Some(&[]), &context()).as_deref(),
            Ok("pulumi:environments:pulumi.organization.login:acme")
        );
    }

    #[test]
    fn unknown_attribute_is_an_error() {
        let attrs = vec!["pulumi.user.email".to_owned()];
        assert_eq!(
            subject("acme", "team/aws", Some(&attrs), &context()),
            Err(SubjectError::UnknownAttribute("pulumi.user.email".into()))
        );
    }

    #[test]
    fn claims_cap_the_lifetime_and_name_the_environments() {
        let req = TokenRequest {
            audience: audience("aws", "acme"),
            subject: "s".into(),
            lifetime: Duration::from_secs(10 * 3600),
            organization: "acme".into(),
            current_environment: "team/aws".into(),
            root_environment: "app/dev".into(),
            user: Some("alice".into()),
        };
        let c = req.claims("https://tessera.example/oidc", 1000);
        assert_eq!(c["exp"], json!(1000 + 7200));
        assert_eq!(c["aud"], json!("aws:acme"));
        assert_eq!(c["current_env"], json!("team/aws"));
        assert_eq!(c["root_env"], json!("app/dev"));
        assert_eq!(c["user"], json!("alice"));
    }
}
