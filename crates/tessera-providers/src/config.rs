//! Where the providers send their requests, and how long a call may take.
//!
//! Every endpoint is a base URL without a trailing slash (one is trimmed if given); the
//! provider appends its usual path: AWS `/`, Azure `/{tenant}/oauth2/v2.0/token`, Google STS
//! `/v1/token`, IAM Credentials `/v1/projects/-/serviceAccounts/{sa}:generateAccessToken`,
//! Google OAuth 2.0 `/token`.
//! `None` means the public endpoint.

use std::time::Duration;

/// The per-call timeout when none is configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) const DEFAULT_AZURE_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
pub(crate) const DEFAULT_GCP_STS_ENDPOINT: &str = "https://sts.googleapis.com";
pub(crate) const DEFAULT_GCP_IAMCREDENTIALS_ENDPOINT: &str =
    "https://iamcredentials.googleapis.com";
pub(crate) const DEFAULT_GCP_OAUTH2_ENDPOINT: &str = "https://oauth2.googleapis.com";

/// Provider configuration as given (raw); [`crate::Registry::new`] validates it once.
#[derive(Debug, Clone)]
pub struct ProvidersConfig {
    /// AWS STS (`TESSERA_AWS_STS_ENDPOINT`); default: the SDK's endpoint for `us-east-1`.
    pub aws_sts_endpoint: Option<String>,
    /// AWS Secrets Manager (`TESSERA_AWS_SECRETSMANAGER_ENDPOINT`); default: the region's.
    pub aws_secretsmanager_endpoint: Option<String>,
    /// AWS Systems Manager Parameter Store (`TESSERA_AWS_SSM_ENDPOINT`); default: the region's.
    pub aws_ssm_endpoint: Option<String>,
    /// Azure AD authority host (`TESSERA_AZURE_AUTHORITY_HOST`); default
    /// `https://login.microsoftonline.com`.
    pub azure_authority_host: Option<String>,
    /// Google STS (`TESSERA_GCP_STS_ENDPOINT`); default `https://sts.googleapis.com`.
    pub gcp_sts_endpoint: Option<String>,
    /// Google IAM Credentials (`TESSERA_GCP_IAMCREDENTIALS_ENDPOINT`); default
    /// `https://iamcredentials.googleapis.com`.
    pub gcp_iamcredentials_endpoint: Option<String>,
    /// Google's OAuth 2.0 token endpoint, where service-account keys are exchanged for access
    /// tokens (`TESSERA_GCP_OAUTH2_ENDPOINT`); default `https://oauth2.googleapis.com`.
    pub gcp_oauth2_endpoint: Option<String>,
    /// The longest one provider call may take, all its requests included.
    pub timeout: Duration,
}

impl Default for ProvidersConfig {
    fn default() -> Self {
        ProvidersConfig {
            aws_sts_endpoint: None,
            aws_secretsmanager_endpoint: None,
            aws_ssm_endpoint: None,
            azure_authority_host: None,
            gcp_sts_endpoint: None,
            gcp_iamcredentials_endpoint: None,
            gcp_oauth2_endpoint: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl ProvidersConfig {
    /// Reads the endpoint variables of the contract (`TESSERA_AWS_STS_ENDPOINT`,
    /// `TESSERA_AZURE_AUTHORITY_HOST`, `TESSERA_GCP_STS_ENDPOINT`,
    /// `TESSERA_GCP_IAMCREDENTIALS_ENDPOINT`) and Tessera's own
    /// (`TESSERA_AWS_SECRETSMANAGER_ENDPOINT`, `TESSERA_AWS_SSM_ENDPOINT`,
    /// `TESSERA_GCP_OAUTH2_ENDPOINT`, `TESSERA_PROVIDER_TIMEOUT` in seconds). Empty variables count as unset.
    pub fn from_env() -> Result<ProvidersConfig, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// As [`ProvidersConfig::from_env`], reading variables through `lookup`.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<ProvidersConfig, ConfigError> {
        let var = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let timeout = match var("TESSERA_PROVIDER_TIMEOUT") {
            None => DEFAULT_TIMEOUT,
            Some(t) => t
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|s| *s > 0)
                .map(Duration::from_secs)
                .ok_or_else(|| ConfigError::Timeout(t.clone()))?,
        };
        Ok(ProvidersConfig {
            aws_sts_endpoint: var("TESSERA_AWS_STS_ENDPOINT"),
            aws_secretsmanager_endpoint: var("TESSERA_AWS_SECRETSMANAGER_ENDPOINT"),
            aws_ssm_endpoint: var("TESSERA_AWS_SSM_ENDPOINT"),
            azure_authority_host: var("TESSERA_AZURE_AUTHORITY_HOST"),
            gcp_sts_endpoint: var("TESSERA_GCP_STS_ENDPOINT"),
            gcp_iamcredentials_endpoint: var("TESSERA_GCP_IAMCREDENTIALS_ENDPOINT"),
            gcp_oauth2_endpoint: var("TESSERA_GCP_OAUTH2_ENDPOINT"),
            timeout,
        })
    }
}

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An endpoint is not an absolute `http` or `https` URL.
    #[error("{name} must be an absolute http(s) URL without query or fragment, not {value:?}")]
    Endpoint {
        /// The setting, e.g. `TESSERA_AWS_STS_ENDPOINT`.
        name: &'static str,
        /// The value given.
        value: String,
    },
    /// The timeout is not a positive whole number of seconds.
    #[error("TESSERA_PROVIDER_TIMEOUT must be a positive whole number of seconds, not {0:?}")]
    Timeout(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
}

/// The configuration validated: every endpoint a base URL without a trailing slash.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    pub(crate) aws_sts: Option<String>,
    pub(crate) aws_secretsmanager: Option<String>,
    pub(crate) aws_ssm: Option<String>,
    pub(crate) azure_authority_host: String,
    pub(crate) gcp_sts: String,
    pub(crate) gcp_iamcredentials: String,
    pub(crate) gcp_oauth2: String,
}

impl Endpoints {
    pub(crate) fn parse(config: &ProvidersConfig) -> Result<Endpoints, ConfigError> {
        let base =
            |name: &'static str, value: &Option<String>| -> Result<Option<String>, ConfigError> {
                value.as_deref().map(|v| base_url(name, v)).transpose()
            };
        Ok(Endpoints {
            aws_sts: base("TESSERA_AWS_STS_ENDPOINT", &config.aws_sts_endpoint)?,
            aws_secretsmanager: base(
                "TESSERA_AWS_SECRETSMANAGER_ENDPOINT",
                &config.aws_secretsmanager_endpoint,
            )?,
            aws_ssm: base("TESSERA_AWS_SSM_ENDPOINT", &config.aws_ssm_endpoint)?,
            azure_authority_host: base(
                "TESSERA_AZURE_AUTHORITY_HOST",
                &config.azure_authority_host,
            )?
            .unwrap_or_else(|| DEFAULT_AZURE_AUTHORITY_HOST.to_owned()),
            gcp_sts: base("TESSERA_GCP_STS_ENDPOINT", &config.gcp_sts_endpoint)?
                .unwrap_or_else(|| DEFAULT_GCP_STS_ENDPOINT.to_owned()),
            gcp_iamcredentials: base(
                "TESSERA_GCP_IAMCREDENTIALS_ENDPOINT",
                &config.gcp_iamcredentials_endpoint,
            )?
            .unwrap_or_else(|| DEFAULT_GCP_IAMCREDENTIALS_ENDPOINT.to_owned()),
            gcp_oauth2: base("TESSERA_GCP_OAUTH2_ENDPOINT", &config.gcp_oauth2_endpoint)?
                .unwrap_or_else(|| DEFAULT_GCP_OAUTH2_ENDPOINT.to_owned()),
        })
    }
}

fn base_url(name: &'static str, value: &str) -> Result<String, ConfigError> {
    let invalid = || ConfigError::Endpoint {
        name,
        value: value.to_owned(),
    };
    let trimmed = value.trim().trim_end_matches('/');
    let url = reqwest::Url::parse(trimmed).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(invalid());
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_default_and_trim() {
        let cfg = ProvidersConfig::from_lookup(|k| match k {
            "TESSERA_GCP_STS_ENDPOINT" => Some("http://127.0.0.1:9000/".into()),
            "TESSERA_GCP_OAUTH2_ENDPOINT" => Some("http://127.0.0.1:9001".into()),
            "TESSERA_PROVIDER_TIMEOUT" => Some("5".into()),
            _ => None,
        })
        .expect("valid");
        assert_eq!(cfg.timeout, Duration::from_secs(5));
        let e = Endpoints::parse(&cfg).expect("valid");
        assert_eq!(e.gcp_sts, "http://127.0.0.1:9000");
        assert_eq!(e.azure_authority_host, DEFAULT_AZURE_AUTHORITY_HOST);
        assert_eq!(e.aws_sts, None);
        assert_eq!(e.gcp_oauth2, "http://127.0.0.1:9001");
        let defaults = Endpoints::parse(&ProvidersConfig::default()).expect("valid");
        assert_eq!(defaults.gcp_oauth2, DEFAULT_GCP_OAUTH2_ENDPOINT);
    }

    #[test]
    fn bad_endpoints_are_refused() {
        for bad in ["ftp://x", "not a url", "http://h/?q=1"] {
            let cfg = ProvidersConfig {
                azure_authority_host: Some(bad.into()),
                ..ProvidersConfig::default()
            };
            assert!(Endpoints::parse(&cfg).is_err(), "{bad}");
        }
        assert!(ProvidersConfig::from_lookup(
            |k| (k == "TESSERA_PROVIDER_TIMEOUT").then(|| "0".into())
        )
        .is_err());
    }
}
