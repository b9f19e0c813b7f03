//! Server configuration: loaded raw from flags and environment variables, then validated once.
//!
//! [`RawConfig`] holds what the operator gave, as given; [`Config::load`] turns it into the
//! validated form the rest of the server uses (or says what is wrong and how to fix it).

use std::net::{SocketAddr, ToSocketAddrs};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tessera_crypto::{MasterKey, SecretString};
use tessera_providers::ProvidersConfig;
use tessera_types::OrgName;

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";
/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "tessera-data";
/// The file in the data directory that holds a generated (or operator-provided) master key.
pub const MASTER_KEY_FILE: &str = "master.key";

/// Configuration as the operator gave it (flags, falling back to `TESSERA_*` variables).
#[derive(Debug, Default, Clone)]
pub struct RawConfig {
    /// `--listen` / `TESSERA_LISTEN`.
    pub listen: Option<String>,
    /// `--data-dir` / `TESSERA_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--database-url` / `TESSERA_DATABASE_URL`.
    pub database_url: Option<String>,
    /// `TESSERA_MASTER_KEY`: base64 of 32 bytes.
    pub master_key: Option<SecretString>,
    /// `TESSERA_BOOTSTRAP_ORG`.
    pub bootstrap_org: Option<String>,
    /// `TESSERA_BOOTSTRAP_TOKEN`.
    pub bootstrap_token: Option<SecretString>,
    /// `TESSERA_OIDC_ISSUER`: the public issuer URL of the tokens Tessera mints.
    pub oidc_issuer: Option<String>,
    /// Where the providers send their requests; `None` reads the `TESSERA_AWS_*`,
    /// `TESSERA_AZURE_*`, `TESSERA_GCP_*` and `TESSERA_PROVIDER_TIMEOUT` variables.
    pub providers: Option<ProvidersConfig>,
    /// `TESSERA_RATE_LIMIT_PER_TOKEN`: requests per second allowed to one token (unset: no
    /// limit).
    pub rate_limit_per_token: Option<String>,
    /// `--dev`.
    pub dev: bool,
}

impl RawConfig {
    /// Reads the `TESSERA_*` variables (empty values count as unset).
    pub fn from_env() -> RawConfig {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        RawConfig {
            listen: var("TESSERA_LISTEN"),
            data_dir: var("TESSERA_DATA_DIR").map(PathBuf::from),
            database_url: var("TESSERA_DATABASE_URL"),
            master_key: var("TESSERA_MASTER_KEY").map(SecretString::new),
            bootstrap_org: var("TESSERA_BOOTSTRAP_ORG"),
            bootstrap_token: var("TESSERA_BOOTSTRAP_TOKEN").map(SecretString::new),
            oidc_issuer: var("TESSERA_OIDC_ISSUER"),
            providers: None,
            rate_limit_per_token: var("TESSERA_RATE_LIMIT_PER_TOKEN"),
            dev: false,
        }
    }
}

/// Where the master key came from (for the startup message; never the key itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MasterKeyOrigin {
    /// `TESSERA_MASTER_KEY`.
    Environment,
    /// `DATA_DIR/master.key`, already there.
    KeyFile,
    /// Generated into `DATA_DIR/master.key` because of `--dev`.
    GeneratedForDev,
}

/// What to create on an empty database.
#[derive(Debug)]
pub struct Bootstrap {
    /// The organization (`TESSERA_BOOTSTRAP_ORG`, default `default`).
    pub org: OrgName,
    /// The admin's token; `None` with `--dev` means: generate one and print it once.
    pub token: Option<SecretString>,
}

/// Validated configuration.
#[derive(Debug)]
pub struct Config {
    /// The address to bind (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The data directory (created if missing).
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// The master key.
    pub master_key: MasterKey,
    /// Where it came from.
    pub master_key_origin: MasterKeyOrigin,
    /// What to create on an empty database, if anything.
    pub bootstrap: Option<Bootstrap>,
    /// The OIDC issuer URL without a trailing slash; `None`: `http://ADDR/oidc` with ADDR the
    /// bound listen address.
    pub oidc_issuer: Option<String>,
    /// The longest lifetime of a token Tessera mints (at most two hours, the default). A
    /// retired signing key stays published this long after its retirement.
    pub oidc_token_lifetime: Duration,
    /// Provider endpoints and timeout, validated when the server is built.
    pub providers: ProvidersConfig,
    /// Requests per second one token may make on this replica; `None`: unlimited (the default).
    pub rate_limit_per_token: Option<NonZeroU32>,
    /// Development mode.
    pub dev: bool,
}

/// Why the configuration is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `--listen` does not name a socket address.
    #[error("invalid listen address {0:?}: expected HOST:PORT, e.g. 127.0.0.1:8470")]
    Listen(String),
    /// The database URL is neither SQLite nor PostgreSQL.
    #[error("invalid database URL: expected sqlite://PATH or postgres://USER@HOST/DB")]
    DatabaseUrl,
    /// No master key and no `--dev`.
    #[error(
        "no master key: set TESSERA_MASTER_KEY to the base64 of 32 random bytes \
         (for example `export TESSERA_MASTER_KEY=$(openssl rand -base64 32)`), \
         or write that text to {path}, or start with --dev to generate one there"
    )]
    NoMasterKey {
        /// Where a key file would be read.
        path: String,
    },
    /// The master key does not parse.
    #[error("invalid master key from {origin}: {source}")]
    MasterKey {
        /// `TESSERA_MASTER_KEY` or the key file path.
        origin: String,
        /// Why.
        source: tessera_crypto::CryptoError,
    },
    /// `TESSERA_BOOTSTRAP_ORG` is not a valid organization name.
    #[error("invalid TESSERA_BOOTSTRAP_ORG: {0}")]
    BootstrapOrg(tessera_types::NameError),
    /// The bootstrap token cannot be sent in an `Authorization` header.
    #[error("TESSERA_BOOTSTRAP_TOKEN must be non-empty, without spaces or control characters")]
    BootstrapToken,
    /// `TESSERA_OIDC_ISSUER` is not a usable issuer URL.
    #[error("invalid TESSERA_OIDC_ISSUER {0:?}: expected an absolute http(s) URL without query or fragment, e.g. https://tessera.example.com/oidc")]
    OidcIssuer(String),
    /// `TESSERA_RATE_LIMIT_PER_TOKEN` is not a positive whole number.
    #[error("invalid TESSERA_RATE_LIMIT_PER_TOKEN {0:?}: expected requests per second per token, a whole number from 1 (unset for no limit)")]
    RateLimit(String),
    /// A provider variable is invalid (the message names it).
    #[error(transparent)]
    Providers(#[from] tessera_providers::ConfigError),
    /// The data directory or key file cannot be written.
    #[error("cannot prepare {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

impl Config {
    /// Validates `raw`. With `--dev` and no master key, generates one into
    /// `DATA_DIR/master.key` (readable by the owner only).
    pub fn load(raw: RawConfig) -> Result<Config, ConfigError> {
        let listen_text = raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_text
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| ConfigError::Listen(listen_text.clone()))?;
        let data_dir = raw
            .data_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = match raw.database_url {
            Some(url) => url,
            None => format!("sqlite://{}", data_dir.join("tessera.db").display()),
        };
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::DatabaseUrl);
        }
        let key_path = data_dir.join(MASTER_KEY_FILE);
        let (master_key, master_key_origin) = match raw.master_key {
            Some(text) => (
                MasterKey::from_base64(text.expose()).map_err(|source| ConfigError::MasterKey {
                    origin: "TESSERA_MASTER_KEY".into(),
                    source,
                })?,
                MasterKeyOrigin::Environment,
            ),
            None if key_path.exists() => (
                MasterKey::from_file(&key_path).map_err(|source| ConfigError::MasterKey {
                    origin: key_path.display().to_string(),
                    source,
                })?,
                MasterKeyOrigin::KeyFile,
            ),
            None if raw.dev => (
                generate_key_file(&data_dir, &key_path)?,
                MasterKeyOrigin::GeneratedForDev,
            ),
            None => {
                return Err(ConfigError::NoMasterKey {
                    path: key_path.display().to_string(),
                })
            }
        };
        let org: OrgName = raw
            .bootstrap_org
            .as_deref()
            .unwrap_or("default")
            .parse()
            .map_err(ConfigError::BootstrapOrg)?;
        // The contract makes the admin's token exactly this value, so any value that can
        // travel in a header is accepted; a short one only earns a warning.
        if let Some(t) = &raw.bootstrap_token {
            if t.is_empty()
                || t.expose()
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(ConfigError::BootstrapToken);
            }
            if t.len() < 16 {
                tracing::warn!("TESSERA_BOOTSTRAP_TOKEN is shorter than 16 characters: use a long random token outside tests");
            }
        }
        let bootstrap = match raw.bootstrap_token {
            Some(token) => Some(Bootstrap {
                org,
                token: Some(token),
            }),
            None if raw.dev => Some(Bootstrap { org, token: None }),
            None => None,
        };
        let oidc_issuer = raw.oidc_issuer.as_deref().map(issuer_url).transpose()?;
        let providers = match raw.providers {
            Some(p) => p,
            None => ProvidersConfig::from_env()?,
        };
        let rate_limit_per_token = raw
            .rate_limit_per_token
            .map(|t| {
                t.trim()
                    .parse::<NonZeroU32>()
                    .map_err(|_| ConfigError::RateLimit(t.clone()))
            })
            .transpose()?;
        Ok(Config {
            listen,
            data_dir,
            database_url,
            master_key,
            master_key_origin,
            bootstrap,
            oidc_issuer,
            oidc_token_lifetime: tessera_providers::MAX_TOKEN_LIFETIME,
            providers,
            rate_limit_per_token,
            dev: raw.dev,
        })
    }
}

/// An issuer URL: absolute http(s), a host, no query, fragment or whitespace; a trailing
/// slash is dropped (the issuer must match `iss` exactly).
fn issuer_url(text: &str) -> Result<String, ConfigError> {
    let url = text.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host = rest.and_then(|r| r.split('/').next()).unwrap_or_default();
    if host.is_empty() || url.contains(['?', '#']) || url.chars().any(char::is_whitespace) {
        return Err(ConfigError::OidcIssuer(text.to_owned()));
    }
    Ok(url.to_owned())
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ConfigError + '_ {
    move |source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn generate_key_file(dir: &Path, path: &Path) -> Result<MasterKey, ConfigError> {
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let key = MasterKey::generate().map_err(|source| ConfigError::MasterKey {
        origin: "the generator".into(),
        source,
    })?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_error(path))?;
    use std::io::Write;
    file.write_all(key.to_base64().expose().as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(io_error(path))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_dev_and_key_the_server_refuses_and_says_how() {
        let dir = tempfile::tempdir().unwrap();
        let err = Config::load(RawConfig {
            data_dir: Some(dir.path().to_owned()),
            ..RawConfig::default()
        })
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("TESSERA_MASTER_KEY"), "{msg}");
        assert!(msg.contains("--dev"), "{msg}");
    }

    #[test]
    fn dev_generates_a_key_file_once_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let raw = RawConfig {
            data_dir: Some(dir.path().join("d")),
            dev: true,
            ..RawConfig::default()
        };
        let first = Config::load(raw.clone()).unwrap();
        assert_eq!(first.master_key_origin, MasterKeyOrigin::GeneratedForDev);
        assert!(first.bootstrap.as_ref().unwrap().token.is_none());
        assert_eq!(first.listen.to_string(), DEFAULT_LISTEN);
        assert!(first.database_url.ends_with("tessera.db"));
        let second = Config::load(raw).unwrap();
        assert_eq!(second.master_key_origin, MasterKeyOrigin::KeyFile);
        assert_eq!(first.master_key.id(), second.master_key.id());
    }

    #[test]
    fn bad_values_are_named() {
        let bad = |raw: RawConfig| Config::load(raw).unwrap_err().to_string();
        let key = Some(SecretString::new(
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ));
        assert!(bad(RawConfig {
            listen: Some("nowhere".into()),
            master_key: key.clone(),
            ..RawConfig::default()
        })
        .contains("listen"));
        assert!(bad(RawConfig {
            master_key: Some(SecretString::new("short")),
            ..RawConfig::default()
        })
        .contains("TESSERA_MASTER_KEY"));
        assert!(bad(RawConfig {
            database_url: Some("mysql://x".into()),
            master_key: key.clone(),
            ..RawConfig::default()
        })
        .contains("database URL"));
        assert!(bad(RawConfig {
            rate_limit_per_token: Some("0".into()),
            master_key: key.clone(),
            ..RawConfig::default()
        })
        .contains("TESSERA_RATE_LIMIT_PER_TOKEN"));
        assert!(bad(RawConfig {
            bootstrap_org: Some("-x".into()),
            master_key: key,
            ..RawConfig::default()
        })
        .contains("TESSERA_BOOTSTRAP_ORG"));
    }

    #[test]
    fn the_oidc_issuer_is_an_absolute_url_without_trailing_slash() {
        assert_eq!(
            issuer_url("https://t.example/oidc/").unwrap(),
            "https://t.example/oidc"
        );
        for bad in [
            "t.example/oidc",
            "https:///oidc",
            "https://t/x?y",
            "ftp://t",
        ] {
            assert!(issuer_url(bad).is_err(), "{bad}");
        }
    }
}
