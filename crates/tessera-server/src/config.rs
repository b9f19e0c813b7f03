//! Server configuration: every setting from flags, `TESSERA_*` variables, a TOML file and
//! defaults, in that order of precedence, validated once.
//!
//! [`RawConfig`] holds what the operator gave, as given, and where each value came from
//! ([`Source`]); [`RawConfig::layered`] builds it from the command line's [`Flags`], the
//! environment and the configuration file (`--config FILE` or `TESSERA_CONFIG`).
//! [`Config::load`] turns it into the validated form the rest of the server uses, or says
//! which setting is wrong, where its value came from and how to fix it. [`Config::describe`]
//! renders the effective configuration for `tessera server --print-config`.
//!
//! Every setting has one name: its key in the file, and, upper-cased behind `TESSERA_`, its
//! variable (`listen` ↔ `TESSERA_LISTEN`). *Invariant:* the master key and the bootstrap token
//! never appear in an error message or in the described configuration.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tessera_crypto::{MasterKey, SecretString};
use tessera_providers::ProvidersConfig;
use tessera_types::OrgName;

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";
/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "tessera-data";
/// The file in the data directory that holds a generated (or operator-provided) master key.
pub const MASTER_KEY_FILE: &str = "master.key";
/// How long a stopping server waits for requests in flight, when not configured.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// What `print-config` shows instead of a secret.
const REDACTED: &str = "[redacted]";

/// Every setting's key, in the order `--print-config` lists them. The variable is
/// `TESSERA_` followed by the key upper-cased.
const KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "master_key",
    "master_key_file",
    "bootstrap_org",
    "bootstrap_token",
    "oidc_issuer",
    "dev",
    "metrics_listen",
    "log_format",
    "tls_cert",
    "tls_key",
    "shutdown_timeout_seconds",
    "rate_limit_per_token",
    "aws_sts_endpoint",
    "aws_secretsmanager_endpoint",
    "aws_ssm_endpoint",
    "azure_authority_host",
    "gcp_sts_endpoint",
    "gcp_iamcredentials_endpoint",
    "gcp_oauth2_endpoint",
    "provider_timeout",
];

/// The variable of the setting `key`: `listen` → `TESSERA_LISTEN`.
pub fn variable(key: &str) -> String {
    format!("TESSERA_{}", key.to_ascii_uppercase())
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// Not given: the built-in default.
    Default,
    /// The configuration file at this path.
    File(PathBuf),
    /// This environment variable.
    Env(String),
    /// This command-line flag.
    Flag(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::File(path) => write!(f, "from {}", path.display()),
            Source::Env(name) | Source::Flag(name) => write!(f, "from {name}"),
        }
    }
}

/// The settings the command line gives (highest precedence). Everything else comes from
/// the environment, the file or the defaults.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    /// `--config FILE` (else `TESSERA_CONFIG`).
    pub config: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--database-url`.
    pub database_url: Option<String>,
    /// `--dev` (absent means: not given, so the variable or the file decides).
    pub dev: bool,
}

/// Configuration as the operator gave it, before validation.
///
/// Built by [`RawConfig::layered`] (flags, variables, file) or by hand (tests, embedding);
/// a value set by hand without a recorded [`Source`] is reported as coming from its variable.
#[derive(Debug, Default, Clone)]
pub struct RawConfig {
    /// `listen`: the address to bind.
    pub listen: Option<String>,
    /// `data_dir`.
    pub data_dir: Option<PathBuf>,
    /// `database_url`.
    pub database_url: Option<String>,
    /// `master_key`: base64 of 32 bytes.
    pub master_key: Option<SecretString>,
    /// `master_key_file`: a file holding the base64 of 32 bytes.
    pub master_key_file: Option<PathBuf>,
    /// `bootstrap_org`.
    pub bootstrap_org: Option<String>,
    /// `bootstrap_token`.
    pub bootstrap_token: Option<SecretString>,
    /// `oidc_issuer`: the public issuer URL of the tokens Tessera mints.
    pub oidc_issuer: Option<String>,
    /// Where the providers send their requests; `None` reads the `TESSERA_AWS_*`,
    /// `TESSERA_AZURE_*`, `TESSERA_GCP_*` and `TESSERA_PROVIDER_TIMEOUT` variables.
    pub providers: Option<ProvidersConfig>,
    /// `rate_limit_per_token`: requests per second allowed to one token (unset: no limit).
    pub rate_limit_per_token: Option<String>,
    /// `dev`: development mode.
    pub dev: bool,
    /// `metrics_listen`: serve `/metrics` there only, instead of on the main listener.
    pub metrics_listen: Option<String>,
    /// `log_format`: `json` or `text`.
    pub log_format: Option<String>,
    /// `tls_cert`: PEM certificate chain; with `tls_key`, the server speaks HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// `tls_key`: PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// `shutdown_timeout_seconds`: how long a stopping server finishes requests in flight.
    pub shutdown_timeout_seconds: Option<u64>,
    /// Where each given value came from, by key.
    pub sources: BTreeMap<&'static str, Source>,
}

impl RawConfig {
    /// Reads the `TESSERA_*` variables only (empty values count as unset).
    pub fn from_env() -> Result<RawConfig, ConfigError> {
        RawConfig::layered(Flags::default())
    }

    /// Flags over `TESSERA_*` variables over the configuration file (`flags.config`, else
    /// `TESSERA_CONFIG`) over defaults.
    pub fn layered(flags: Flags) -> Result<RawConfig, ConfigError> {
        RawConfig::layered_from(flags, |name| std::env::var(name).ok())
    }

    /// As [`RawConfig::layered`], reading variables through `env`.
    pub fn layered_from(
        flags: Flags,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<RawConfig, ConfigError> {
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        let file_path = flags
            .config
            .clone()
            .or_else(|| env("TESSERA_CONFIG").map(PathBuf::from));
        let file = match &file_path {
            Some(path) => FileConfig::read(path)?,
            None => FileConfig::default(),
        };
        let mut l = Layers {
            env: &env,
            file_path,
            sources: BTreeMap::new(),
        };
        let path = |s: String| PathBuf::from(s);
        let listen = l.pick("listen", flags.listen, file.listen);
        let data_dir = l
            .pick(
                "data_dir",
                flags.data_dir.map(|p| p.display().to_string()),
                file.data_dir,
            )
            .map(path);
        let database_url = l.pick("database_url", flags.database_url, file.database_url);
        let master_key = l
            .pick("master_key", None, file.master_key.map(|k| k.0))
            .map(SecretString::new);
        let master_key_file = l
            .pick("master_key_file", None, file.master_key_file)
            .map(path);
        let bootstrap_org = l.pick("bootstrap_org", None, file.bootstrap_org);
        let bootstrap_token = l
            .pick("bootstrap_token", None, file.bootstrap_token.map(|k| k.0))
            .map(SecretString::new);
        let oidc_issuer = l.pick("oidc_issuer", None, file.oidc_issuer);
        let dev = l.boolean("dev", flags.dev, file.dev)?;
        let metrics_listen = l.pick("metrics_listen", None, file.metrics_listen);
        let log_format = l.pick("log_format", None, file.log_format);
        let tls_cert = l.pick("tls_cert", None, file.tls_cert).map(path);
        let tls_key = l.pick("tls_key", None, file.tls_key).map(path);
        let shutdown_timeout_seconds =
            l.number("shutdown_timeout_seconds", file.shutdown_timeout_seconds)?;
        let rate_limit_per_token = l.pick(
            "rate_limit_per_token",
            None,
            file.rate_limit_per_token.map(|n| n.to_string()),
        );
        let providers = ProvidersConfig {
            aws_sts_endpoint: l.pick("aws_sts_endpoint", None, file.aws_sts_endpoint),
            aws_secretsmanager_endpoint: l.pick(
                "aws_secretsmanager_endpoint",
                None,
                file.aws_secretsmanager_endpoint,
            ),
            aws_ssm_endpoint: l.pick("aws_ssm_endpoint", None, file.aws_ssm_endpoint),
            azure_authority_host: l.pick("azure_authority_host", None, file.azure_authority_host),
            gcp_sts_endpoint: l.pick("gcp_sts_endpoint", None, file.gcp_sts_endpoint),
            gcp_iamcredentials_endpoint: l.pick(
                "gcp_iamcredentials_endpoint",
                None,
                file.gcp_iamcredentials_endpoint,
            ),
            gcp_oauth2_endpoint: l.pick("gcp_oauth2_endpoint", None, file.gcp_oauth2_endpoint),
            timeout: match l.number("provider_timeout", file.provider_timeout)? {
                None => tessera_providers::DEFAULT_TIMEOUT,
                Some(0) => {
                    return Err(l.invalid(
                        "provider_timeout",
                        "must be a positive whole number of seconds, not 0".into(),
                    ))
                }
                Some(s) => Duration::from_secs(s),
            },
        };
        Ok(RawConfig {
            listen,
            data_dir,
            database_url,
            master_key,
            master_key_file,
            bootstrap_org,
            bootstrap_token,
            oidc_issuer,
            providers: Some(providers),
            dev,
            metrics_listen,
            log_format,
            tls_cert,
            tls_key,
            shutdown_timeout_seconds,
            rate_limit_per_token,
            sources: l.sources,
        })
    }

    /// Where the value of `key` came from: as recorded, else its variable when `given`,
    /// else the default.
    fn source(&self, key: &'static str, given: bool) -> Source {
        match self.sources.get(key) {
            Some(s) => s.clone(),
            None if given => Source::Env(variable(key)),
            None => Source::Default,
        }
    }

    /// An error about the setting `key`, which was given.
    fn invalid(&self, key: &'static str, reason: String) -> ConfigError {
        ConfigError::Invalid {
            setting: key,
            origin: self.source(key, true),
            reason,
        }
    }
}

/// The layering of one [`RawConfig::layered_from`] call.
struct Layers<'a, E: Fn(&str) -> Option<String>> {
    env: &'a E,
    file_path: Option<PathBuf>,
    sources: BTreeMap<&'static str, Source>,
}

impl<E: Fn(&str) -> Option<String>> Layers<'_, E> {
    /// The flag's value, else the variable's, else the file's; records where it came from.
    fn pick(
        &mut self,
        key: &'static str,
        flag: Option<String>,
        file: Option<String>,
    ) -> Option<String> {
        let var = variable(key);
        let (value, source) = if let Some(v) = flag {
            (v, Source::Flag(format!("--{}", key.replace('_', "-"))))
        } else if let Some(v) = (self.env)(&var) {
            (v, Source::Env(var))
        } else if let (Some(v), Some(path)) = (file, &self.file_path) {
            (v, Source::File(path.clone()))
        } else {
            return None;
        };
        self.sources.insert(key, source);
        Some(value)
    }

    fn invalid(&self, key: &'static str, reason: String) -> ConfigError {
        ConfigError::Invalid {
            setting: key,
            origin: self
                .sources
                .get(key)
                .cloned()
                .unwrap_or_else(|| Source::Env(variable(key))),
            reason,
        }
    }

    fn boolean(
        &mut self,
        key: &'static str,
        flag: bool,
        file: Option<bool>,
    ) -> Result<bool, ConfigError> {
        let text = self.pick(
            key,
            flag.then(|| "true".into()),
            file.map(|b| b.to_string()),
        );
        match text.as_deref().map(str::trim) {
            None => Ok(false),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(other) => Err(self.invalid(key, format!("expected true or false, not {other:?}"))),
        }
    }

    fn number(&mut self, key: &'static str, file: Option<u64>) -> Result<Option<u64>, ConfigError> {
        let text = self.pick(key, None, file.map(|n| n.to_string()));
        text.map(|t| {
            t.trim().parse::<u64>().map_err(|_| {
                self.invalid(
                    key,
                    format!("expected a whole number of seconds, not {t:?}"),
                )
            })
        })
        .transpose()
    }
}

/// The configuration file: every key optional, unknown keys refused.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<String>,
    database_url: Option<String>,
    master_key: Option<FileSecret>,
    master_key_file: Option<String>,
    bootstrap_org: Option<String>,
    bootstrap_token: Option<FileSecret>,
    oidc_issuer: Option<String>,
    dev: Option<bool>,
    metrics_listen: Option<String>,
    log_format: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    shutdown_timeout_seconds: Option<u64>,
    rate_limit_per_token: Option<u64>,
    aws_sts_endpoint: Option<String>,
    aws_secretsmanager_endpoint: Option<String>,
    aws_ssm_endpoint: Option<String>,
    azure_authority_host: Option<String>,
    gcp_sts_endpoint: Option<String>,
    gcp_iamcredentials_endpoint: Option<String>,
    gcp_oauth2_endpoint: Option<String>,
    provider_timeout: Option<u64>,
}

impl FileConfig {
    fn read(path: &Path) -> Result<FileConfig, ConfigError> {
        let file_error = |message: String| ConfigError::File {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        // The parser's own rendering quotes the offending line, which may hold a secret:
        // only its message and position are shown.
        toml::from_str(&text).map_err(|e| {
            let message = e.message().trim_end();
            let at = e.span().map(|span| {
                let start = span.start.min(text.len());
                let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
                let line = text[..start].matches('\n').count() + 1;
                let column = text[line_start..start].chars().count() + 1;
                // Name the setting whose value is refused (a known key left of `=` on that
                // line; anything else could be a stray secret), unless the message does.
                let key = text[line_start..]
                    .split(['=', '\n'])
                    .next()
                    .map(str::trim)
                    .filter(|k| KEYS.contains(k) && !message.contains(&format!("`{k}`")))
                    .map(|k| format!("{k}: "))
                    .unwrap_or_default();
                format!("line {line}, column {column}: {key}")
            });
            file_error(format!("{}{message}", at.unwrap_or_default()))
        })
    }
}

/// A secret in the file: a string, and an error that never quotes a value of another type.
struct FileSecret(String);

impl<'de> Deserialize<'de> for FileSecret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = FileSecret;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<FileSecret, E> {
                Ok(FileSecret(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<FileSecret, E> {
                Ok(FileSecret(v))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<FileSecret, E> {
                Err(E::custom("expected a string"))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<FileSecret, E> {
                Err(E::custom("expected a string"))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<FileSecret, E> {
                Err(E::custom("expected a string"))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<FileSecret, E> {
                Err(E::custom("expected a string"))
            }
        }
        d.deserialize_string(V)
    }
}

/// Where the master key came from (for the startup message; never the key itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MasterKeyOrigin {
    /// The `master_key` setting (`TESSERA_MASTER_KEY` or the configuration file).
    Environment,
    /// `DATA_DIR/master.key`, already there.
    KeyFile,
    /// The file named by the `master_key_file` setting.
    ConfiguredFile,
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

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// One JSON object per line (the default when stderr is not a terminal).
    Json,
    /// Human-readable lines (the default on a terminal).
    Text,
}

impl LogFormat {
    /// `text` when stderr is a terminal, else `json`.
    pub fn detect() -> LogFormat {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            LogFormat::Text
        } else {
            LogFormat::Json
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            LogFormat::Json => "json",
            LogFormat::Text => "text",
        }
    }
}

/// The certificate and key to serve HTTPS with, checked to load.
#[derive(Clone)]
pub struct Tls {
    /// The PEM certificate chain (`tls_cert`).
    pub cert: PathBuf,
    /// The PEM private key (`tls_key`).
    pub key: PathBuf,
    pub(crate) server: std::sync::Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
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
    /// Where `/metrics` is served instead of the main listener; `None`: on the main one.
    pub metrics_listen: Option<SocketAddr>,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// HTTPS on the main listener (and the metrics one), when configured.
    pub tls: Option<Tls>,
    /// How long a stopping server waits for requests in flight.
    pub shutdown_timeout: Duration,
}

/// Why the configuration is refused. Every message names the setting and where its value
/// came from; none quotes a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file cannot be read, is not TOML, or holds an unknown key or a
    /// value of the wrong type.
    #[error("configuration file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What is wrong, with line and column when known.
        message: String,
    },
    /// A setting's value cannot be used.
    #[error("{setting} ({origin}): {reason}")]
    Invalid {
        /// The setting's key, e.g. `listen`.
        setting: &'static str,
        /// Where the value came from.
        origin: Source,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// No master key and no `--dev`.
    #[error(
        "no master key: set TESSERA_MASTER_KEY to the base64 of 32 random bytes \
         (for example `export TESSERA_MASTER_KEY=$(openssl rand -base64 32)`), \
         or set master_key_file (TESSERA_MASTER_KEY_FILE) to a file holding that text, \
         or write it to {path}, or start with --dev to generate one there"
    )]
    NoMasterKey {
        /// Where a key file would be read.
        path: String,
    },
    /// The data directory or key file cannot be written.
    #[error("cannot prepare {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Whether [`Config::validate`] may write a generated development key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyWrites {
    Allowed,
    Forbidden,
}

impl Config {
    /// Validates `raw`. With `--dev` and no master key, generates one into
    /// `DATA_DIR/master.key` (readable by the owner only).
    pub fn load(raw: RawConfig) -> Result<Config, ConfigError> {
        Config::validate(&raw, KeyWrites::Allowed)
    }

    /// Validates `raw` without writing anything and renders the effective configuration as
    /// TOML, each value followed by where it came from; secrets are shown as `"[redacted]"`
    /// and a database password as `[redacted]`.
    pub fn describe(raw: &RawConfig) -> Result<String, ConfigError> {
        let config = Config::validate(raw, KeyWrites::Forbidden)?;
        Ok(render(raw, &config))
    }

    fn validate(raw: &RawConfig, writes: KeyWrites) -> Result<Config, ConfigError> {
        let listen = match socket_addr(raw, "listen", raw.listen.as_deref())? {
            Some(addr) => addr,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|e: std::net::AddrParseError| raw.invalid("listen", e.to_string()))?,
        };
        let metrics_listen = socket_addr(raw, "metrics_listen", raw.metrics_listen.as_deref())?;
        let data_dir = raw
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = match &raw.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", data_dir.join("tessera.db").display()),
        };
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            // The URL may hold a password: it is not quoted.
            return Err(raw.invalid(
                "database_url",
                "invalid database URL: expected sqlite://PATH or postgres://USER@HOST/DB".into(),
            ));
        }
        let (master_key, master_key_origin) = master_key(raw, &data_dir, writes)?;
        let org: OrgName = raw
            .bootstrap_org
            .as_deref()
            .unwrap_or("default")
            .parse()
            .map_err(|e: tessera_types::NameError| raw.invalid("bootstrap_org", e.to_string()))?;
        // The contract makes the admin's token exactly this value, so any value that can
        // travel in a header is accepted (a short one earns a warning at startup).
        if let Some(t) = &raw.bootstrap_token {
            if t.is_empty()
                || t.expose()
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(raw.invalid(
                    "bootstrap_token",
                    "must be non-empty, without spaces or control characters".into(),
                ));
            }
        }
        let bootstrap = match &raw.bootstrap_token {
            Some(token) => Some(Bootstrap {
                org,
                token: Some(token.clone()),
            }),
            None if raw.dev => Some(Bootstrap { org, token: None }),
            None => None,
        };
        let oidc_issuer = raw
            .oidc_issuer
            .as_deref()
            .map(|text| {
                issuer_url(text).ok_or_else(|| {
                    raw.invalid(
                        "oidc_issuer",
                        format!("invalid URL {text:?}: expected an absolute http(s) URL without query or fragment, e.g. https://tessera.example.com/oidc"),
                    )
                })
            })
            .transpose()?;
        let providers = match &raw.providers {
            Some(p) => p.clone(),
            None => ProvidersConfig::from_env().map_err(|e| ConfigError::Invalid {
                setting: "providers",
                origin: Source::Env("TESSERA_*".into()),
                reason: e.to_string(),
            })?,
        };
        for (key, value) in [
            ("aws_sts_endpoint", &providers.aws_sts_endpoint),
            (
                "aws_secretsmanager_endpoint",
                &providers.aws_secretsmanager_endpoint,
            ),
            ("aws_ssm_endpoint", &providers.aws_ssm_endpoint),
            ("azure_authority_host", &providers.azure_authority_host),
            ("gcp_sts_endpoint", &providers.gcp_sts_endpoint),
            (
                "gcp_iamcredentials_endpoint",
                &providers.gcp_iamcredentials_endpoint,
            ),
            ("gcp_oauth2_endpoint", &providers.gcp_oauth2_endpoint),
        ] {
            if let Some(v) = value {
                if issuer_url(v).is_none() {
                    return Err(raw.invalid(
                        key,
                        format!("invalid URL {v:?}: expected an absolute http(s) base URL without query or fragment"),
                    ));
                }
            }
        }
        let log_format = match raw.log_format.as_deref().map(str::trim) {
            None => LogFormat::detect(),
            Some("json") => LogFormat::Json,
            Some("text") => LogFormat::Text,
            Some(other) => {
                return Err(raw.invalid(
                    "log_format",
                    format!("expected json or text, not {other:?}"),
                ))
            }
        };
        let tls = match (&raw.tls_cert, &raw.tls_key) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(raw.invalid(
                    "tls_cert",
                    "is set without tls_key: give both to serve HTTPS".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(raw.invalid(
                    "tls_key",
                    "is set without tls_cert: give both to serve HTTPS".into(),
                ))
            }
            (Some(cert), Some(key)) => Some(Tls {
                cert: cert.clone(),
                key: key.clone(),
                server: crate::tls::server_config(cert, key)
                    .map_err(|e| raw.invalid(e.setting, e.reason))?,
            }),
        };
        let shutdown_timeout = raw
            .shutdown_timeout_seconds
            .map_or(DEFAULT_SHUTDOWN_TIMEOUT, Duration::from_secs);
        let rate_limit_per_token = match raw.rate_limit_per_token.as_deref().map(str::trim) {
            None => None,
            Some(t) => Some(t.parse::<NonZeroU32>().map_err(|_| {
                raw.invalid(
                    "rate_limit_per_token",
                    format!(
                        "expected requests per second per token, a whole number from 1, not {t:?}"
                    ),
                )
            })?),
        };
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
            metrics_listen,
            log_format,
            tls,
            shutdown_timeout,
        })
    }
}

/// Parses a `HOST:PORT` setting, resolving a host name.
fn socket_addr(
    raw: &RawConfig,
    key: &'static str,
    text: Option<&str>,
) -> Result<Option<SocketAddr>, ConfigError> {
    let Some(text) = text else { return Ok(None) };
    text.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .map(Some)
        .ok_or_else(|| {
            raw.invalid(
                key,
                format!("invalid address {text:?}: expected HOST:PORT, e.g. 127.0.0.1:8470"),
            )
        })
}

/// The master key from `master_key`, `master_key_file`, `DATA_DIR/master.key`, or (with
/// `--dev`) a new one, in that order; `master_key` and `master_key_file` exclude each other.
fn master_key(
    raw: &RawConfig,
    data_dir: &Path,
    writes: KeyWrites,
) -> Result<(MasterKey, MasterKeyOrigin), ConfigError> {
    let key_path = data_dir.join(MASTER_KEY_FILE);
    match (&raw.master_key, &raw.master_key_file) {
        (Some(_), Some(_)) => Err(raw.invalid(
            "master_key",
            format!(
                "cannot be set together with master_key_file ({}): give one",
                raw.source("master_key_file", true)
            ),
        )),
        (Some(text), None) => Ok((
            MasterKey::from_base64(text.expose())
                .map_err(|e| raw.invalid("master_key", format!("invalid master key: {e}")))?,
            MasterKeyOrigin::Environment,
        )),
        (None, Some(path)) => Ok((
            MasterKey::from_file(path)
                .map_err(|e| raw.invalid("master_key_file", format!("invalid master key: {e}")))?,
            MasterKeyOrigin::ConfiguredFile,
        )),
        (None, None) if key_path.exists() => Ok((
            MasterKey::from_file(&key_path).map_err(|e| ConfigError::Invalid {
                setting: "master_key_file",
                origin: Source::Default,
                reason: format!("invalid master key: {e}"),
            })?,
            MasterKeyOrigin::KeyFile,
        )),
        (None, None) if raw.dev => {
            let key = match writes {
                KeyWrites::Allowed => generate_key_file(data_dir, &key_path)?,
                KeyWrites::Forbidden => {
                    MasterKey::generate().map_err(|e| ConfigError::Invalid {
                        setting: "master_key",
                        origin: Source::Default,
                        reason: format!("cannot generate a development key: {e}"),
                    })?
                }
            };
            Ok((key, MasterKeyOrigin::GeneratedForDev))
        }
        (None, None) => Err(ConfigError::NoMasterKey {
            path: key_path.display().to_string(),
        }),
    }
}

/// An issuer or endpoint URL: absolute http(s), a host, no query, fragment or whitespace; a
/// trailing slash is dropped (the issuer must match `iss` exactly).
fn issuer_url(text: &str) -> Option<String> {
    let url = text.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host = rest.and_then(|r| r.split('/').next()).unwrap_or_default();
    if host.is_empty() || url.contains(['?', '#']) || url.chars().any(char::is_whitespace) {
        return None;
    }
    Some(url.to_owned())
}

/// `postgres://user:password@host/db` → `postgres://user:[redacted]@host/db`.
fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:{REDACTED}@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// The `--print-config` rendering of a validated configuration.
fn render(raw: &RawConfig, config: &Config) -> String {
    let s = |text: &str| toml::Value::String(text.to_owned()).to_string();
    let path = |p: &Path| s(&p.display().to_string());
    let opt_path = |p: &Option<PathBuf>| p.as_deref().map(path);
    let opt = |t: &Option<String>| t.as_deref().map(s);
    let p = &config.providers;
    let mut values: BTreeMap<&str, (Option<String>, &str)> = BTreeMap::new();
    let mut put = |key: &'static str, value: Option<String>, unset: &'static str| {
        values.insert(key, (value, unset));
    };
    put("listen", Some(s(&config.listen.to_string())), "");
    put("data_dir", Some(path(&config.data_dir)), "");
    put(
        "database_url",
        Some(s(&redact_url_password(&config.database_url))),
        "",
    );
    put(
        "master_key",
        raw.master_key.as_ref().map(|_| s(REDACTED)),
        match config.master_key_origin {
            MasterKeyOrigin::KeyFile => "not set: read from data_dir/master.key",
            MasterKeyOrigin::GeneratedForDev => {
                "not set: --dev generates one into data_dir/master.key at start"
            }
            _ => "not set",
        },
    );
    put("master_key_file", opt_path(&raw.master_key_file), "not set");
    put(
        "bootstrap_org",
        Some(s(raw.bootstrap_org.as_deref().unwrap_or("default"))),
        "",
    );
    put(
        "bootstrap_token",
        raw.bootstrap_token.as_ref().map(|_| s(REDACTED)),
        if config.dev {
            "not set: --dev generates one on an empty database and prints it once"
        } else {
            "not set: nothing is created on an empty database"
        },
    );
    put(
        "oidc_issuer",
        opt(&config.oidc_issuer),
        "not set: http://LISTEN/oidc",
    );
    put("dev", Some(config.dev.to_string()), "");
    put(
        "metrics_listen",
        config.metrics_listen.map(|a| s(&a.to_string())),
        "not set: /metrics is served on the main listener",
    );
    put("log_format", Some(s(config.log_format.as_str())), "");
    put(
        "tls_cert",
        config.tls.as_ref().map(|t| path(&t.cert)),
        "not set: plain HTTP",
    );
    put(
        "tls_key",
        config.tls.as_ref().map(|t| path(&t.key)),
        "not set: plain HTTP",
    );
    put(
        "shutdown_timeout_seconds",
        Some(config.shutdown_timeout.as_secs().to_string()),
        "",
    );
    put(
        "rate_limit_per_token",
        config.rate_limit_per_token.map(|n| n.to_string()),
        "not set: no per-token limit",
    );
    put(
        "aws_sts_endpoint",
        opt(&p.aws_sts_endpoint),
        "not set: the public endpoint",
    );
    put(
        "aws_secretsmanager_endpoint",
        opt(&p.aws_secretsmanager_endpoint),
        "not set: the public endpoint",
    );
    put(
        "aws_ssm_endpoint",
        opt(&p.aws_ssm_endpoint),
        "not set: the public endpoint",
    );
    put(
        "azure_authority_host",
        opt(&p.azure_authority_host),
        "not set: the public endpoint",
    );
    put(
        "gcp_sts_endpoint",
        opt(&p.gcp_sts_endpoint),
        "not set: the public endpoint",
    );
    put(
        "gcp_iamcredentials_endpoint",
        opt(&p.gcp_iamcredentials_endpoint),
        "not set: the public endpoint",
    );
    put(
        "gcp_oauth2_endpoint",
        opt(&p.gcp_oauth2_endpoint),
        "not set: the public endpoint",
    );
    put(
        "provider_timeout",
        Some(p.timeout.as_secs().to_string()),
        "",
    );
    let mut out = String::from(
        "# The effective configuration of `tessera server`; after each value, where it came from.\n",
    );
    for key in KEYS {
        let Some((value, unset)) = values.get(key) else {
            continue;
        };
        match value {
            Some(v) => {
                let source = raw.sources.get(key).cloned().unwrap_or(Source::Default);
                let note = match (key, &source) {
                    (&"log_format", Source::Default) => {
                        "default (text on a terminal, json otherwise)".to_owned()
                    }
                    (&"database_url", Source::Default) => "default (in data_dir)".to_owned(),
                    _ => source.to_string(),
                };
                out.push_str(&format!("{key} = {v}  # {note}\n"));
            }
            None => out.push_str(&format!("# {key}: {unset}\n")),
        }
    }
    out
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ConfigError + '_ {
    move |source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn generate_key_file(dir: &Path, path: &Path) -> Result<MasterKey, ConfigError> {
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let key = MasterKey::generate().map_err(|e| ConfigError::Invalid {
        setting: "master_key",
        origin: Source::Default,
        reason: format!("cannot generate a development key: {e}"),
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
        let described = Config::describe(&raw).unwrap();
        assert!(
            !dir.path().join("d").exists(),
            "describing writes nothing: {described}"
        );
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
        .contains("rate_limit_per_token"));
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
            assert!(issuer_url(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(
            redact_url_password("postgres://u:p%40ss@db:5432/t?sslmode=require"),
            "postgres://u:[redacted]@db:5432/t?sslmode=require"
        );
        assert_eq!(
            redact_url_password("postgres://u@db/t"),
            "postgres://u@db/t"
        );
        assert_eq!(
            redact_url_password("sqlite://x/tessera.db"),
            "sqlite://x/tessera.db"
        );
    }
}
