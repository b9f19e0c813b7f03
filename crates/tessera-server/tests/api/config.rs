//! The configuration an operator writes: a TOML file, `TESSERA_*` variables over it, flags
//! over both; every refusal names the setting and where its value came from, and
//! `--print-config`'s rendering never shows a secret.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tessera_server::{Config, Flags, LogFormat, MasterKeyOrigin, RawConfig, Source};

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const TOKEN: &str = "tsr_bootstrap_token_do_not_print_0123";

/// Writes `text` as `tessera.toml` in `dir`.
fn write_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("tessera.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Layers `flags` over the variables `vars` (and nothing from the real environment).
fn layered(flags: Flags, vars: &[(&str, &str)]) -> Result<RawConfig, String> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    RawConfig::layered_from(flags, |name| vars.get(name).cloned()).map_err(|e| e.to_string())
}

fn load(flags: Flags, vars: &[(&str, &str)]) -> Result<Config, String> {
    Config::load(layered(flags, vars)?).map_err(|e| e.to_string())
}

fn with_file(path: &Path) -> Flags {
    Flags {
        config: Some(path.to_owned()),
        ..Flags::default()
    }
}

#[test]
fn config_flags_beat_variables_beat_the_file_beat_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = write_file(
        dir.path(),
        &format!(
            "listen = \"127.0.0.1:7001\"\n\
             data_dir = {data:?}\n\
             bootstrap_org = \"from-file\"\n\
             metrics_listen = \"127.0.0.1:7101\"\n\
             log_format = \"json\"\n\
             shutdown_timeout_seconds = 5\n\
             provider_timeout = 7\n\
             gcp_sts_endpoint = \"http://127.0.0.1:7201/\"\n\
             master_key = \"{KEY}\"\n"
        ),
    );

    // The file alone.
    let raw = layered(with_file(&file), &[]).unwrap();
    assert_eq!(raw.sources["listen"], Source::File(file.clone()));
    let c = Config::load(raw).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:7001");
    assert_eq!(c.data_dir, data);
    assert!(
        c.bootstrap.is_none(),
        "no token, no --dev: nothing to bootstrap"
    );
    assert_eq!(c.metrics_listen.unwrap().to_string(), "127.0.0.1:7101");
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.shutdown_timeout, Duration::from_secs(5));
    assert_eq!(c.providers.timeout, Duration::from_secs(7));
    assert_eq!(
        c.providers.gcp_sts_endpoint.as_deref(),
        Some("http://127.0.0.1:7201/")
    );
    assert_eq!(c.master_key_origin, MasterKeyOrigin::Environment);

    // Variables over the file; the file (and TESSERA_CONFIG) still fills the rest.
    let vars = [
        ("TESSERA_CONFIG", file.to_str().unwrap()),
        ("TESSERA_LISTEN", "127.0.0.1:7002"),
        ("TESSERA_BOOTSTRAP_ORG", "from-env"),
        ("TESSERA_BOOTSTRAP_TOKEN", TOKEN),
        ("TESSERA_LOG_FORMAT", "text"),
    ];
    let c = load(Flags::default(), &vars).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:7002");
    assert_eq!(c.bootstrap.as_ref().unwrap().org.as_str(), "from-env");
    assert_eq!(c.log_format, LogFormat::Text);
    assert_eq!(c.shutdown_timeout, Duration::from_secs(5));

    // Flags over both.
    let flags = Flags {
        listen: Some("127.0.0.1:7003".into()),
        data_dir: Some(dir.path().join("flag-data")),
        ..Flags::default()
    };
    let raw = layered(flags, &vars).unwrap();
    assert_eq!(raw.sources["listen"], Source::Flag("--listen".into()));
    assert_eq!(
        raw.sources["bootstrap_org"],
        Source::Env("TESSERA_BOOTSTRAP_ORG".into())
    );
    let described = Config::describe(&raw).unwrap();
    assert!(
        described.contains("listen = \"127.0.0.1:7003\"  # from --listen\n"),
        "{described}"
    );
    assert!(
        described.contains("bootstrap_org = \"from-env\"  # from TESSERA_BOOTSTRAP_ORG\n"),
        "{described}"
    );
    assert!(
        described.contains(&format!(
            "shutdown_timeout_seconds = 5  # from {}\n",
            file.display()
        )),
        "{described}"
    );
    assert!(
        described.contains("oidc_issuer: not set"),
        "unset settings are listed too: {described}"
    );
    let c = Config::load(raw).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:7003");
    assert_eq!(c.data_dir, dir.path().join("flag-data"));

    // Nothing given: the defaults.
    let raw = layered(
        Flags {
            dev: true,
            data_dir: Some(dir.path().join("dev")),
            ..Flags::default()
        },
        &[],
    )
    .unwrap();
    let described = Config::describe(&raw).unwrap();
    assert!(
        described.contains("listen = \"127.0.0.1:8470\"  # default\n"),
        "{described}"
    );
    assert!(
        described.contains("shutdown_timeout_seconds = 30  # default\n"),
        "{described}"
    );
}

#[test]
fn config_file_with_an_unknown_key_is_refused_naming_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "listen = \"127.0.0.1:1\"\nlisten_adress = \"x\"\n",
    );
    let err = layered(with_file(&file), &[]).unwrap_err();
    assert!(err.contains("listen_adress"), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("line 2"), "{err}");

    let missing = dir.path().join("nowhere.toml");
    let err = layered(with_file(&missing), &[]).unwrap_err();
    assert!(err.contains(&missing.display().to_string()), "{err}");

    // A value of the wrong type: the key is named, the line is not quoted.
    let file = write_file(dir.path(), "shutdown_timeout_seconds = \"soon\"\n");
    let err = layered(with_file(&file), &[]).unwrap_err();
    assert!(err.contains("shutdown_timeout_seconds"), "{err}");
}

#[test]
fn config_bad_values_name_the_setting_and_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let key = ("TESSERA_MASTER_KEY", KEY);
    let err = load(Flags::default(), &[key, ("TESSERA_LISTEN", "nowhere")]).unwrap_err();
    assert!(
        err.starts_with("listen (from TESSERA_LISTEN): invalid address \"nowhere\""),
        "{err}"
    );
    let err = load(
        Flags {
            listen: Some("still-nowhere".into()),
            ..Flags::default()
        },
        &[key],
    )
    .unwrap_err();
    assert!(err.starts_with("listen (from --listen)"), "{err}");

    let file = write_file(
        dir.path(),
        "metrics_listen = \"127.0.0.1\"\naws_sts_endpoint = \"ftp://sts\"\n",
    );
    let err = load(with_file(&file), &[key]).unwrap_err();
    assert!(
        err.starts_with(&format!("metrics_listen (from {})", file.display())),
        "{err}"
    );
    let file = write_file(dir.path(), "aws_sts_endpoint = \"ftp://sts\"\n");
    let err = load(with_file(&file), &[key]).unwrap_err();
    assert!(
        err.starts_with(&format!("aws_sts_endpoint (from {})", file.display())),
        "{err}"
    );

    for (var, value, setting) in [
        ("TESSERA_DEV", "maybe", "dev"),
        (
            "TESSERA_SHUTDOWN_TIMEOUT_SECONDS",
            "soon",
            "shutdown_timeout_seconds",
        ),
        ("TESSERA_PROVIDER_TIMEOUT", "0", "provider_timeout"),
        ("TESSERA_LOG_FORMAT", "xml", "log_format"),
        ("TESSERA_DATABASE_URL", "mysql://u:pw@h/db", "database_url"),
        ("TESSERA_BOOTSTRAP_ORG", "-bad-", "bootstrap_org"),
        ("TESSERA_OIDC_ISSUER", "issuer.example", "oidc_issuer"),
        ("TESSERA_TLS_CERT", "/nonexistent/cert.pem", "tls_cert"),
    ] {
        let err = load(Flags::default(), &[key, (var, value)]).unwrap_err();
        assert!(
            err.starts_with(&format!("{setting} (from {var}): ")),
            "{var}={value}: {err}"
        );
    }
    // The database URL may carry a password: it is not quoted.
    let err = load(
        Flags::default(),
        &[key, ("TESSERA_DATABASE_URL", "mysql://u:hunter2@h/db")],
    )
    .unwrap_err();
    assert!(!err.contains("hunter2"), "{err}");

    // A certificate file that cannot be read: named, at startup, before anything binds.
    let err = load(
        Flags::default(),
        &[
            key,
            ("TESSERA_TLS_CERT", "/nonexistent/cert.pem"),
            ("TESSERA_TLS_KEY", "/nonexistent/key.pem"),
        ],
    )
    .unwrap_err();
    assert!(
        err.starts_with("tls_cert (from TESSERA_TLS_CERT): cannot read /nonexistent/cert.pem"),
        "{err}"
    );
}

#[test]
fn config_master_key_file_is_read_and_excludes_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let data = dir.path().join("data");
    let vars = [
        ("TESSERA_MASTER_KEY_FILE", key_file.to_str().unwrap()),
        ("TESSERA_DATA_DIR", data.to_str().unwrap()),
    ];
    let c = load(Flags::default(), &vars).unwrap();
    assert_eq!(c.master_key_origin, MasterKeyOrigin::ConfiguredFile);

    let file = write_file(dir.path(), &format!("master_key = \"{KEY}\"\n"));
    let err = load(with_file(&file), &vars).unwrap_err();
    assert!(err.contains("master_key"), "{err}");
    assert!(err.contains("TESSERA_MASTER_KEY_FILE"), "{err}");
    assert!(!err.contains(KEY), "{err}");

    std::fs::write(&key_file, "not a key\n").unwrap();
    let err = load(Flags::default(), &vars).unwrap_err();
    assert!(
        err.starts_with("master_key_file (from TESSERA_MASTER_KEY_FILE)"),
        "{err}"
    );
}

#[test]
fn config_print_never_shows_the_master_key_token_or_database_password() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        &format!(
            "master_key = \"{KEY}\"\n\
             database_url = \"postgres://tessera:db-password-123@127.0.0.1:5432/tessera\"\n"
        ),
    );
    let raw = layered(with_file(&file), &[("TESSERA_BOOTSTRAP_TOKEN", TOKEN)]).unwrap();
    let described = Config::describe(&raw).unwrap();
    for secret in [KEY, TOKEN, "db-password-123"] {
        assert!(!described.contains(secret), "{secret} shown: {described}");
    }
    assert!(
        described.contains(&format!(
            "master_key = \"[redacted]\"  # from {}\n",
            file.display()
        )),
        "{described}"
    );
    assert!(
        described.contains("bootstrap_token = \"[redacted]\"  # from TESSERA_BOOTSTRAP_TOKEN\n"),
        "{described}"
    );
    assert!(
        described.contains("postgres://tessera:[redacted]@127.0.0.1:5432/tessera"),
        "{described}"
    );
    // Debug output of the raw and validated configuration redacts too.
    let debug = format!("{raw:?} {:?}", Config::load(raw.clone()).unwrap());
    assert!(!debug.contains(KEY) && !debug.contains(TOKEN), "{debug}");

    // A malformed secret is refused without being quoted, from the file or a variable.
    let file = write_file(dir.path(), "bootstrap_token = 12345678987654321\n");
    let err = layered(with_file(&file), &[]).unwrap_err();
    assert!(!err.contains("12345678987654321"), "{err}");
    assert!(err.contains("bootstrap_token"), "{err}");
    let err = load(
        Flags::default(),
        &[("TESSERA_MASTER_KEY", "c2VjcmV0LWJ1dC10b28tc2hvcnQ=")],
    )
    .unwrap_err();
    assert!(
        err.starts_with("master_key (from TESSERA_MASTER_KEY)"),
        "{err}"
    );
    assert!(!err.contains("c2VjcmV0LWJ1dC10b28tc2hvcnQ="), "{err}");
}
