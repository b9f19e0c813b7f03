//! `tessera env …`: manage and open environments on a server.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand, ValueEnum};
use tessera_lang::syntax::{self, Entry, Node, NodeKind};
use tessera_lang::{format, Limits, Range, Value, ValueKind};

use crate::client::{self, Client, EnvRef};
use crate::config;

/// Environment commands.
#[derive(Subcommand)]
pub enum EnvCommand {
    /// Create an environment: `tessera env init [ORG/]PROJECT/ENV`.
    Init {
        /// The environment.
        env: String,
        /// A file with the initial definition.
        #[arg(long, short)]
        file: Option<String>,
    },
    /// List environments.
    Ls {
        /// The organization (default: yours).
        #[arg(long)]
        org: Option<String>,
    },
    /// Print an environment's definition (secrets as ciphertext).
    Get {
        /// The environment, optionally `@VERSION`.
        env: String,
    },
    /// Set a value: `tessera env set ENV PATH VALUE [--secret]`.
    Set {
        /// The environment.
        env: String,
        /// Path under `values`, e.g. `db.password` or `hosts[0]`.
        path: String,
        /// The value, read as YAML (`3` is a number, `"3"` a string).
        value: String,
        /// Store the value as a secret.
        #[arg(long)]
        secret: bool,
    },
    /// Delete an environment (asks first on a terminal; `--yes` otherwise).
    Rm {
        /// The environment.
        env: String,
        /// Do not ask.
        #[arg(long, short)]
        yes: bool,
    },
    /// Open an environment and print its values (secrets revealed).
    Open(OpenArgs),
    /// Check a definition without saving it.
    Check {
        /// The environment (its organization is used).
        env: String,
        /// The definition to check (`-` for standard input); default: the saved one.
        #[arg(long, short)]
        file: Option<String>,
    },
    /// Copy an environment: `tessera env clone ORG/PROJ/ENV PROJ/NEW`.
    Clone {
        /// The source.
        from: String,
        /// `PROJECT/NAME` in the same organization.
        to: String,
    },
    /// Show how two versions differ: `tessera env diff ENV@A ENV@B`.
    Diff {
        /// The first version.
        a: String,
        /// The second version (default: the latest of the same environment).
        b: Option<String>,
    },
    /// Edit the definition in $VISUAL or $EDITOR; refused saves reopen with the problems inline.
    Edit {
        /// The environment.
        env: String,
    },
    /// Revisions of an environment.
    #[command(subcommand)]
    Version(VersionCommand),
    /// Environment tags.
    #[command(subcommand)]
    Tag(TagCommand),
}

/// `tessera env version …`.
#[derive(Subcommand)]
pub enum VersionCommand {
    /// List revisions, newest first.
    Ls {
        /// The environment.
        env: String,
    },
    /// Make a revision's definition the latest again: `tessera env version rollback ENV@N`.
    Rollback {
        /// `ENV@REVISION`.
        env: String,
    },
    /// Retract a revision: `tessera env version retract ENV@N [--replace-with M] [--reason R]`.
    /// Retracting the latest makes the replacement (default: the newest earlier one) latest.
    Retract {
        /// `ENV@REVISION`.
        env: String,
        /// The revision whose definition replaces it.
        #[arg(long)]
        replace_with: Option<u64>,
        /// Why, recorded in the audit log.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Point a tag at a revision: `tessera env version tag ENV@TAG REVISION`.
    Tag {
        /// `ENV@TAG`.
        env: String,
        /// The revision number.
        revision: u64,
    },
}

/// `tessera env tag …`.
#[derive(Subcommand)]
pub enum TagCommand {
    /// List tags.
    Ls {
        /// The environment.
        env: String,
    },
    /// Set a tag: `tessera env tag set ENV NAME VALUE`.
    Set {
        /// The environment.
        env: String,
        /// Tag name.
        name: String,
        /// Tag value.
        value: String,
    },
    /// Remove a tag.
    Rm {
        /// The environment.
        env: String,
        /// Tag name.
        name: String,
    },
}

/// Arguments of `tessera env open`.
#[derive(Args)]
pub struct OpenArgs {
    /// The environment, optionally `@VERSION`.
    pub env: String,
    /// Print only this value, e.g. `db.password`.
    pub path: Option<String>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = OpenFormat::Json)]
    pub format: OpenFormat,
    /// How long the open session lasts, e.g. `1h`.
    #[arg(long)]
    pub duration: Option<String>,
    /// Also print `::add-mask::` lines for every secret on stderr (GitHub Actions).
    #[arg(long)]
    pub github_actions: bool,
}

/// Formats of `tessera env open`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OpenFormat {
    /// Indented JSON.
    Json,
    /// YAML.
    Yaml,
    /// `KEY="value"` lines of `environmentVariables`.
    Dotenv,
    /// `export KEY='value'` lines of `environmentVariables`, safe to `source`.
    Shell,
    /// The value as a string.
    String,
    /// Values with their secrecy and origin, as the API returns them.
    Detailed,
}

/// Runs an env command.
pub fn run(cmd: EnvCommand) -> anyhow::Result<()> {
    let session = config::session()?;
    let client = Client::new(&session)?;
    let org = session.default_org.clone();
    let parse = |s: &str| EnvRef::parse(s, org.as_deref());
    match cmd {
        EnvCommand::Init { env, file } => {
            let env = parse(&env)?;
            client.create(&env)?;
            if let Some(file) = file {
                client.update(&env, &read_input(&file)?, None)?;
            }
            eprintln!("Environment {} created.", env.display_name());
        }
        EnvCommand::Ls { org: o } => {
            let org = o.or(org).context("which organization? pass --org ORG")?;
            for (project, name) in client.list(&org)? {
                println!("{org}/{project}/{name}");
            }
        }
        EnvCommand::Get { env } => {
            let (yaml, _) = client.definition(&parse(&env)?)?;
            print!("{yaml}");
        }
        EnvCommand::Set {
            env,
            path,
            value,
            secret,
        } => {
            let env = parse(&env)?;
            let (yaml, etag) = client.definition(&env)?;
            let updated = set_value(&yaml, &path, &value, secret)?;
            client.update(&env, &updated, etag.as_deref())?;
        }
        EnvCommand::Rm { env, yes } => {
            let env = parse(&env)?;
            if !yes {
                if !std::io::stdin().is_terminal() {
                    bail!(
                        "refusing to delete {} without --yes when not on a terminal",
                        env.display_name()
                    );
                }
                eprint!(
                    "Delete {}? This cannot be undone. Type the environment name to confirm: ",
                    env.display_name()
                );
                std::io::stderr().flush()?;
                let mut answer = String::new();
                std::io::stdin().read_line(&mut answer)?;
                if answer.trim() != env.env && answer.trim() != env.display_name() {
                    bail!("not confirmed; nothing deleted");
                }
            }
            client.delete(&env)?;
            eprintln!("Environment {} deleted.", env.display_name());
        }
        EnvCommand::Open(args) => open(&client, &parse(&args.env)?, &args)?,
        EnvCommand::Check { env, file } => {
            let env = parse(&env)?;
            let yaml = match file {
                Some(f) => read_input(&f)?,
                None => client.definition(&env)?.0,
            };
            let diags = client.check(&env.org, &yaml)?;
            for d in &diags {
                eprintln!("{}", describe_diagnostic(d));
            }
            if !diags.is_empty() {
                bail!("{} problem(s) found", diags.len());
            }
            eprintln!("No problems found.");
        }
        EnvCommand::Clone { from, to } => {
            let from = parse(&from)?;
            let (project, name) = to
                .split_once('/')
                .context("the clone's name must be PROJECT/NAME")?;
            client.clone_env(&from, project, name)?;
            eprintln!(
                "Environment {} cloned to {}/{project}/{name}.",
                from.display_name(),
                from.org
            );
        }
        EnvCommand::Version(VersionCommand::Ls { env }) => {
            for v in client.versions(&parse(&env)?)? {
                let n = v.get("number").and_then(|x| x.as_u64()).unwrap_or_default();
                let when = v
                    .get("created")
                    .and_then(|x| x.as_str())
                    .unwrap_or_default();
                let who = v
                    .get("creatorLogin")
                    .and_then(|x| x.as_str())
                    .unwrap_or_default();
                let tags: Vec<&str> = v
                    .get("tags")
                    .and_then(|t| t.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str())
                    .collect();
                println!("{n}\t{when}\t{who}\t{}", tags.join(","));
            }
        }
        EnvCommand::Version(VersionCommand::Rollback { env }) => {
            let env = parse(&env)?;
            let version = env.version.clone().context("name the revision as ENV@N")?;
            let (yaml, _) = client.definition(&env)?;
            let latest = EnvRef {
                version: None,
                ..env
            };
            client.update(&latest, &yaml, None)?;
            eprintln!(
                "Environment {} rolled back to revision {version}.",
                latest.display_name()
            );
        }
        EnvCommand::Version(VersionCommand::Retract {
            env,
            replace_with,
            reason,
        }) => {
            let env = parse(&env)?;
            let version = env.version.clone().context("name the revision as ENV@N")?;
            let latest = EnvRef {
                version: None,
                ..env
            };
            client.retract(&latest, &version, replace_with, reason.as_deref())?;
            eprintln!("Revision {version} of {} retracted.", latest.display_name());
        }
        EnvCommand::Diff { a, b } => {
            let a = parse(&a)?;
            let b = match b {
                Some(b) => parse(&b)?,
                None => EnvRef {
                    version: None,
                    ..a.clone()
                },
            };
            let (left, _) = client.definition(&a)?;
            let (right, _) = client.definition(&b)?;
            let diff = similar::TextDiff::from_lines(&left, &right);
            let label = |e: &EnvRef| {
                format!(
                    "{}@{}",
                    e.display_name(),
                    e.version.as_deref().unwrap_or("latest")
                )
            };
            print!("{}", diff.unified_diff().header(&label(&a), &label(&b)));
        }
        EnvCommand::Edit { env } => crate::commands::edit::edit(&client, &parse(&env)?)?,
        EnvCommand::Version(VersionCommand::Tag { env, revision }) => {
            let env = parse(&env)?;
            let tag = env.version.clone().context("name the tag as ENV@TAG")?;
            client.tag_revision(
                &EnvRef {
                    version: None,
                    ..env
                },
                &tag,
                revision,
            )?;
        }
        EnvCommand::Tag(TagCommand::Ls { env }) => {
            for (name, value) in client.env_tags(&parse(&env)?)? {
                println!("{name}: {value}");
            }
        }
        EnvCommand::Tag(TagCommand::Set { env, name, value }) => {
            client.set_env_tag(&parse(&env)?, &name, &value)?
        }
        EnvCommand::Tag(TagCommand::Rm { env, name }) => {
            client.remove_env_tag(&parse(&env)?, &name)?
        }
    }
    Ok(())
}

fn read_input(file: &str) -> anyhow::Result<String> {
    if file == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        Ok(s)
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {file}"))
    }
}

/// One line per diagnostic: `ENV:LINE:COL: SUMMARY`.
pub fn describe_diagnostic(d: &serde_json::Value) -> String {
    let summary = d
        .get("summary")
        .or_else(|| d.get("message"))
        .and_then(|s| s.as_str())
        .unwrap_or("error");
    let range = d.get("range");
    let env = range
        .and_then(|r| r.get("environment"))
        .and_then(|e| e.as_str())
        .unwrap_or("");
    let pos = range.and_then(|r| r.get("begin"));
    let line = pos
        .and_then(|p| p.get("line"))
        .and_then(|l| l.as_u64())
        .unwrap_or(0);
    let col = pos
        .and_then(|p| p.get("column"))
        .and_then(|c| c.as_u64())
        .unwrap_or(0);
    format!("{env}:{line}:{col}: {summary}")
}

/// Opens an environment and prints it in the requested format.
pub fn open(client: &Client, env: &EnvRef, args: &OpenArgs) -> anyhow::Result<()> {
    let properties =
        crate::tty::with_spinner(&format!("Opening {}…", env.display_name()), || {
            client.open(env, args.duration.as_deref())
        })?;
    let values = client::properties_value(&properties);
    if args.github_actions {
        let mut stderr = std::io::stderr().lock();
        for s in crate::mask::secret_strings(&values) {
            for line in s.lines().filter(|l| !l.is_empty()) {
                writeln!(stderr, "::add-mask::{line}")?;
            }
        }
    }
    let value = match &args.path {
        Some(path) => {
            if matches!(args.format, OpenFormat::Dotenv | OpenFormat::Shell) {
                bail!("--format dotenv and shell print environmentVariables and take no PATH");
            }
            lookup(&values, path)?
        }
        None => values.clone(),
    };
    let out = match args.format {
        OpenFormat::Json => value.to_json_pretty(false),
        OpenFormat::Yaml => format::to_yaml(&value, false),
        OpenFormat::String => {
            let mut s = value.to_interpolated_string(false);
            s.push('\n');
            s
        }
        OpenFormat::Dotenv => format::dotenv(&scalars(&values, "environmentVariables"), false),
        OpenFormat::Shell => format::shell(&scalars(&values, "environmentVariables"), false),
        OpenFormat::Detailed => serde_json::to_string_pretty(&properties)? + "\n",
    };
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}

/// The scalar entries of a section such as `environmentVariables`.
pub fn scalars(values: &Value, section: &str) -> std::collections::BTreeMap<String, Value> {
    values
        .get(section)
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter(|(_, v)| !matches!(v.kind, ValueKind::Array(_) | ValueKind::Object(_)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// A step of a CLI property path.
enum Step {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> anyhow::Result<Vec<Step>> {
    let mut steps = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("[\"") {
            let end = r
                .find("\"]")
                .with_context(|| format!("invalid path {path:?}: missing '\"]'"))?;
            steps.push(Step::Key(r[..end].to_owned()));
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r
                .find(']')
                .with_context(|| format!("invalid path {path:?}: missing ']'"))?;
            steps.push(Step::Index(
                r[..end]
                    .parse()
                    .with_context(|| format!("invalid index in path {path:?}"))?,
            ));
            rest = &r[end + 1..];
        } else {
            let r = rest.strip_prefix('.').unwrap_or(rest);
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                bail!("invalid path {path:?}: empty property name");
            }
            steps.push(Step::Key(r[..end].to_owned()));
            rest = &r[end..];
        }
    }
    if steps.is_empty() {
        bail!("empty path");
    }
    Ok(steps)
}

fn lookup(values: &Value, path: &str) -> anyhow::Result<Value> {
    let mut v = values;
    for step in parse_path(path)? {
        v = match (&v.kind, &step) {
            (ValueKind::Object(o), Step::Key(k)) => o
                .get(k)
                .with_context(|| format!("{path}: no property {k:?}"))?,
            (ValueKind::Array(a), Step::Index(i)) => a
                .get(*i)
                .with_context(|| format!("{path}: no element {i}"))?,
            _ => bail!("{path}: cannot go into a {}", v.type_name()),
        };
    }
    Ok(v.clone())
}

fn node(kind: NodeKind) -> Node {
    Node {
        kind,
        range: Range::default(),
    }
}

/// Sets `values.PATH` in a definition to `value` (read as a YAML scalar or flow value).
pub fn set_value(yaml: &str, path: &str, value: &str, secret: bool) -> anyhow::Result<String> {
    let limits = Limits::default();
    let name: Arc<str> = Arc::from("definition");
    let (root, diags) = syntax::parse(&name, yaml, &limits);
    let mut root = root.with_context(|| {
        format!(
            "the current definition does not parse: {:?}",
            diags.iter().next().map(|d| &d.message)
        )
    })?;
    let new = if secret {
        node(NodeKind::Map(vec![Entry {
            key: "fn::secret".into(),
            key_range: Range::default(),
            value: node(NodeKind::String {
                value: value.to_owned(),
                quoted: true,
            }),
        }]))
    } else {
        let (parsed, d) = syntax::parse(&name, value, &limits);
        match parsed {
            Some(n) if !d.has_errors() => n,
            _ => node(NodeKind::String {
                value: value.to_owned(),
                quoted: true,
            }),
        }
    };
    if matches!(root.kind, NodeKind::Null) {
        root.kind = NodeKind::Map(Vec::new());
    }
    let mut steps = vec![Step::Key("values".into())];
    steps.extend(parse_path(path)?);
    let mut cur = &mut root;
    for (i, step) in steps.iter().enumerate() {
        let last = i == steps.len() - 1;
        if matches!(cur.kind, NodeKind::Null) && matches!(step, Step::Key(_)) {
            cur.kind = NodeKind::Map(Vec::new());
        }
        cur = match (&mut cur.kind, step) {
            (NodeKind::Map(entries), Step::Key(k)) => {
                let pos = match entries.iter().position(|e| &e.key == k) {
                    Some(p) => p,
                    None => {
                        entries.push(Entry {
                            key: k.clone(),
                            key_range: Range::default(),
                            value: node(NodeKind::Null),
                        });
                        entries.len() - 1
                    }
                };
                &mut entries[pos].value
            }
            (NodeKind::Seq(items), Step::Index(idx)) => {
                if *idx > items.len() {
                    bail!(
                        "{path}: index {idx} is past the end of a list of {}",
                        items.len()
                    );
                }
                if *idx == items.len() {
                    items.push(node(NodeKind::Null));
                }
                &mut items[*idx]
            }
            _ => bail!("{path}: cannot set a property inside a value that is not an object"),
        };
        if last {
            *cur = new;
            break;
        }
    }
    Ok(format::node_to_yaml(&root))
}

#[cfg(test)]
mod tests {
    use super::set_value;

    #[test]
    fn set_keeps_order_and_types() {
        let out = set_value(
            "imports: [base]\nvalues:\n  b: 1\n  a: {x: 'yes'}\n",
            "a.z",
            "3",
            false,
        )
        .unwrap();
        assert_eq!(
            out,
            "imports:\n  - base\nvalues:\n  b: 1\n  a:\n    x: 'yes'\n    z: 3\n"
        );
        let out = set_value("", "db.password", "s3cr3t", true).unwrap();
        assert_eq!(
            out,
            "values:\n  db:\n    password:\n      fn::secret: s3cr3t\n"
        );
        let out = set_value("values:\n  l: [a]\n", "l[1]", "\"2\"", false).unwrap();
        assert_eq!(out, "values:\n  l:\n    - a\n    - '2'\n");
    }
}
