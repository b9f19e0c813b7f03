//! `tessera eval`: evaluate environments from local files, as the server would (check mode:
//! no provider is called and stored ciphertext is not decrypted).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use tessera_lang::{format, EvalContext, Limits, Parsed, Severity, Source, Value};

/// Arguments of `tessera eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// Directory holding the environment files (`NAME.yaml`, `project/env.yaml`).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// The environment to evaluate: `NAME` or `project/env`.
    name: String,
    /// Print secret values instead of `[secret]`.
    #[arg(long)]
    show_secrets: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Json)]
    format: OutputFormat,
    /// Execution context for `${context.…}`, e.g. `pulumi.user.login=alice`. Repeatable.
    #[arg(long = "context", value_name = "KEY=VALUE")]
    context: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputFormat {
    Json,
    Yaml,
    Dotenv,
    Shell,
    String,
}

/// Reads environments from `DIR/NAME.yaml`, parsing each once.
struct FileSource {
    dir: PathBuf,
    limits: Limits,
    cache: RefCell<HashMap<String, Result<Arc<Parsed>, String>>>,
}

impl FileSource {
    fn path(&self, name: &str) -> PathBuf {
        let file = self.dir.join(format!("{name}.yaml"));
        if self.dir == Path::new(".") {
            PathBuf::from(format!("{name}.yaml"))
        } else {
            file
        }
    }
}

impl Source for FileSource {
    fn load(&self, name: &str) -> Result<Arc<Parsed>, String> {
        if let Some(r) = self.cache.borrow().get(name) {
            return r.clone();
        }
        let valid = !name.is_empty()
            && name.split('/').count() <= 2
            && name
                .split('/')
                .all(|p| !p.is_empty() && p != "." && p != "..")
            && !name.contains('\\');
        let r = if !valid {
            Err(format!("invalid environment name {name:?}"))
        } else {
            let path = self.path(name);
            match std::fs::read(&path) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(src) => Ok(Arc::new(tessera_lang::parse(name, &src, &self.limits))),
                    Err(_) => Err(format!("environment {name:?} is not valid UTF-8")),
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Err(format!("environment {name:?} not found"))
                }
                Err(e) => Err(format!("reading environment {name:?}: {e}")),
            }
        };
        self.cache.borrow_mut().insert(name.to_owned(), r.clone());
        r
    }
}

/// Runs `tessera eval`; exit status 1 when any error diagnostic is found.
pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let mut ctx = EvalContext::default();
    for kv in &args.context {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--context {kv:?}: expected KEY=VALUE"))?;
        ctx.set(k, v)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("--context {kv:?}"))?;
    }
    let source = FileSource {
        dir: args.dir.clone(),
        limits: Limits::default(),
        cache: RefCell::default(),
    };
    let evaluation = tessera_lang::check(&source, &args.name, &ctx, &Limits::default());

    let mut stderr = std::io::stderr().lock();
    for d in evaluation.diagnostics.iter() {
        let file = source.path(&d.environment);
        let (line, col) = (d.range.begin.line.max(1), d.range.begin.column.max(1));
        writeln!(
            stderr,
            "{}:{line}:{col}: {}: {}",
            file.display(),
            d.severity,
            d.message
        )?;
    }
    if evaluation.has_errors() {
        return Ok(ExitCode::FAILURE);
    }
    let Some(value) = &evaluation.value else {
        return Ok(ExitCode::FAILURE);
    };
    debug_assert!(evaluation
        .diagnostics
        .iter()
        .all(|d| d.severity == Severity::Warning));
    let redact = !args.show_secrets;
    let out = match args.format {
        OutputFormat::Json => value.to_json_pretty(redact),
        OutputFormat::Yaml => format::to_yaml(value, redact),
        OutputFormat::Dotenv => format::dotenv(&evaluation.environment_variables(), redact),
        OutputFormat::Shell => format::shell(&evaluation.environment_variables(), redact),
        OutputFormat::String => with_newline(value.to_interpolated_string(redact)),
    };
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn with_newline(mut s: String) -> String {
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

#[allow(dead_code)]
fn _assert_value_is_send(v: Value) -> impl Send {
    v
}
