//! `tessera pulumi config`: supply a Pulumi stack's configuration from the environments its
//! stack file lists (`environment:`), as ESC does for `Pulumi.<stack>.yaml`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::Subcommand;
use tessera_lang::syntax::{self, NodeKind};
use tessera_lang::{Limits, Value, ValueKind};

use crate::client::{self, Client, EnvRef};
use crate::config;

/// Pulumi integration.
#[derive(Subcommand)]
pub enum PulumiCommand {
    /// Apply `pulumiConfig` of the stack's environments to the stack.
    Config {
        /// The stack file (default: the only `Pulumi.*.yaml` here other than `Pulumi.yaml`).
        #[arg(long)]
        stack_file: Option<PathBuf>,
        /// Print the configuration instead of setting it.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: print JSON (`{"key": {"value", "secret"}}`) instead of YAML.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a pulumi command.
pub fn run(cmd: PulumiCommand) -> anyhow::Result<()> {
    let PulumiCommand::Config {
        stack_file,
        dry_run,
        json,
    } = cmd;
    let stack_file = match stack_file {
        Some(f) => f,
        None => find_stack_file()?,
    };
    let stack = stack_file
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("Pulumi.")?.strip_suffix(".yaml"))
        .context("the stack file must be named Pulumi.<stack>.yaml")?
        .to_owned();
    let text = std::fs::read_to_string(&stack_file)
        .with_context(|| format!("reading {}", stack_file.display()))?;
    let envs = environments(&text)
        .with_context(|| format!("reading the environment list of {}", stack_file.display()))?;
    if envs.is_empty() {
        bail!(
            "{} lists no environments under `environment:`",
            stack_file.display()
        );
    }

    let session = config::session()?;
    let client = Client::new(&session)?;
    let mut merged: BTreeMap<String, Value> = BTreeMap::new();
    for name in &envs {
        let env = EnvRef::parse(name, session.default_org.as_deref())?;
        let values = client::properties_value(&client.open(&env, None)?);
        if let Some(cfg) = values.get("pulumiConfig").and_then(Value::as_object) {
            for (k, v) in cfg {
                merged.insert(k.clone(), v.clone());
            }
        }
    }
    let mut settings = Vec::new();
    for (k, v) in &merged {
        flatten(k, v, false, &mut settings);
    }

    let pulumi_available = Command::new("pulumi")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if dry_run || !pulumi_available {
        if !dry_run {
            eprintln!("`pulumi` is not on PATH: printing the configuration instead.");
        }
        let out = if json {
            to_json(&merged)
        } else {
            to_yaml(&settings)
        };
        print!("{out}");
        return Ok(());
    }
    for (path, value, secret) in &settings {
        let mut cmd = Command::new("pulumi");
        cmd.args(["config", "set", "--path", path, "--stack", &stack]);
        if *secret {
            cmd.arg("--secret");
        }
        // The value goes on stdin, never on a command line other users can read.
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .context("running pulumi config set")?;
        child
            .stdin
            .take()
            .context("pulumi stdin")?
            .write_all(value.as_bytes())?;
        let status = child.wait()?;
        if !status.success() {
            bail!("`pulumi config set --path {path}` failed ({status})");
        }
        eprintln!("set {path}{}", if *secret { " (secret)" } else { "" });
    }
    Ok(())
}

fn find_stack_file() -> anyhow::Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(".")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with("Pulumi.") && n.ends_with(".yaml") && n != "Pulumi.yaml"
        })
        .collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!("no Pulumi.<stack>.yaml here: pass --stack-file"),
        _ => bail!("several stack files here: pass --stack-file"),
    }
}

/// The names under the stack file's `environment:` (a list, or `{imports: [...]}`).
fn environments(text: &str) -> anyhow::Result<Vec<String>> {
    let (root, diags) = syntax::parse(&Arc::from("stack"), text, &Limits::default());
    let root = root.with_context(|| {
        diags
            .iter()
            .next()
            .map(|d| d.message.clone())
            .unwrap_or_default()
    })?;
    let NodeKind::Map(entries) = root.kind else {
        return Ok(Vec::new());
    };
    let Some(env) = entries.into_iter().find(|e| e.key == "environment") else {
        return Ok(Vec::new());
    };
    let list = match env.value.kind {
        NodeKind::Seq(items) => items,
        NodeKind::Map(m) => match m
            .into_iter()
            .find(|e| e.key == "imports")
            .map(|e| e.value.kind)
        {
            Some(NodeKind::Seq(items)) => items,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    Ok(list
        .into_iter()
        .filter_map(|n| match n.kind {
            NodeKind::String { value, .. } => Some(value),
            _ => None,
        })
        .collect())
}

/// `(path, value, secret)` for every leaf; nested objects and arrays become `--path` paths.
fn flatten(path: &str, v: &Value, secret: bool, out: &mut Vec<(String, String, bool)>) {
    let secret = secret || v.secret;
    match &v.kind {
        ValueKind::Object(o) if !o.is_empty() => o
            .iter()
            .for_each(|(k, x)| flatten(&format!("{path}.{k}"), x, secret, out)),
        ValueKind::Array(a) if !a.is_empty() => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| flatten(&format!("{path}[{i}]"), x, secret, out)),
        _ => out.push((path.to_owned(), v.to_interpolated_string(false), secret)),
    }
}

fn to_yaml(settings: &[(String, String, bool)]) -> String {
    let mut out = String::from("config:\n");
    for (path, value, secret) in settings {
        let v = if *secret {
            "'[secret]'".to_owned()
        } else {
            serde_json::to_string(value).unwrap_or_default()
        };
        out.push_str(&format!(
            "  {}: {v}\n",
            serde_json::to_string(path).unwrap_or_default()
        ));
    }
    out
}

fn to_json(merged: &BTreeMap<String, Value>) -> String {
    let map: serde_json::Map<String, serde_json::Value> = merged
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                serde_json::json!({"value": v.to_serde_json(true), "secret": v.contains_secrets()}),
            )
        })
        .collect();
    serde_json::to_string_pretty(&map).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_environment_lists() {
        assert_eq!(
            environments("environment:\n  - app/dev\n  - acme/app/base\n").unwrap(),
            ["app/dev", "acme/app/base"]
        );
        assert_eq!(
            environments("environment:\n  imports: [a/b]\n").unwrap(),
            ["a/b"]
        );
        assert!(environments("config: {}\n").unwrap().is_empty());
    }
}
