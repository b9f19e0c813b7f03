//! The one error type of provider calls, and the scrubbing of remote error text.

use std::time::Duration;

/// Why a provider call failed. `Display` is the diagnostic shown to the user: it never
/// contains a token or a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// No provider has this name.
    #[error("unknown provider {0:?}")]
    UnknownProvider(String),
    /// The inputs are missing something or have the wrong shape.
    #[error("{provider}: {message}")]
    InvalidInput {
        /// The provider, e.g. `aws-login`.
        provider: &'static str,
        /// What is wrong, naming the input.
        message: String,
    },
    /// The call needs something the evaluation context does not have (e.g. the organization).
    #[error("{provider}: {message}")]
    Context {
        /// The provider.
        provider: &'static str,
        /// What is missing.
        message: String,
    },
    /// Tessera's OIDC issuer could not mint a token.
    #[error("{provider}: could not mint an OIDC token: {message}")]
    Issuer {
        /// The provider.
        provider: &'static str,
        /// The issuer's reason.
        message: String,
    },
    /// The remote service answered and refused, e.g. "AWS refused AssumeRoleWithWebIdentity
    /// for role arn:…: AccessDenied: …".
    #[error("{0}")]
    Refused(String),
    /// The remote service could not be reached or answered nonsense.
    #[error("{0}")]
    Unreachable(String),
    /// The call took longer than the configured per-call timeout.
    #[error("{provider}: no answer within {}s", .after.as_secs_f64())]
    Timeout {
        /// The provider.
        provider: &'static str,
        /// The timeout.
        after: Duration,
    },
}

/// The longest remote error text quoted in a diagnostic.
const MAX_QUOTED: usize = 400;

/// Remote error text made safe to quote: every occurrence of `secrets` replaced, control
/// characters flattened, and the whole cut to a readable length.
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for s in secrets.iter().filter(|s| s.len() >= 8) {
        out = out.replace(s, "[redacted]");
    }
    let mut flat: String = out
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    flat = flat.trim().to_owned();
    if flat.chars().count() > MAX_QUOTED {
        flat = flat.chars().take(MAX_QUOTED).collect::<String>() + "…";
    }
    flat
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_secrets_and_cuts() {
        let s = scrub("bad token eyJhbGciOi.x.y\nhere", &["eyJhbGciOi.x.y"]);
        assert_eq!(s, "bad token [redacted] here");
        let long = "x".repeat(1000);
        assert!(scrub(&long, &[]).chars().count() <= MAX_QUOTED + 1);
    }
}
