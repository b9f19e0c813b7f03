//! `tessera run ENV -- CMD ARGS…`: run a command with an environment's variables and files,
//! secrets masked in its output.

use std::io::Write as _;
use std::process::{Command, ExitCode, Stdio};

use anyhow::Context as _;
use clap::Args;

use crate::client::{self, Client, EnvRef};
use crate::commands::env::scalars;
use crate::config;
use crate::mask::{secret_strings, Masker};

/// Arguments of `tessera run`.
#[derive(Args)]
pub struct RunArgs {
    /// The environment, optionally `@VERSION`.
    env: String,
    /// Interactive: pass the terminal through and do not mask output.
    #[arg(short, long)]
    interactive: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// Runs the command; its exit status (or 128 + signal) becomes ours.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let session = config::session()?;
    let client = Client::new(&session)?;
    let env = EnvRef::parse(&args.env, session.default_org.as_deref())?;
    let opened = crate::tty::with_spinner(&format!("Opening {}…", env.display_name()), || {
        client.open(&env, None)
    })?;
    let values = client::properties_value(&opened);

    // Files live in a private directory removed when this guard drops: after the child
    // exits, or on an error.
    let dir = tempfile::Builder::new()
        .prefix("tessera-run-")
        .tempdir()
        .context("creating a directory for files")?;
    let mut vars: Vec<(String, String)> = scalars(&values, "environmentVariables")
        .iter()
        .map(|(k, v)| (k.clone(), v.to_interpolated_string(false)))
        .collect();
    for (name, content) in scalars(&values, "files") {
        let path = dir.path().join(&name);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts
            .open(&path)
            .with_context(|| format!("writing the file for {name}"))?;
        f.write_all(content.to_interpolated_string(false).as_bytes())?;
        vars.push((name, path.display().to_string()));
    }

    // The child gets Ctrl-C itself (same process group); we stay to clean up after it.
    let _ = ctrlc::set_handler(|| {});

    let (program, rest) = args.command.split_first().context("no command given")?;
    let mut cmd = Command::new(program);
    cmd.args(rest).envs(vars);
    let status = if args.interactive {
        cmd.status().with_context(|| format!("running {program}"))?
    } else {
        let masker = std::sync::Arc::new(Masker::new(&secret_strings(&values)));
        let mut child = cmd
            .stdin(Stdio::inherit())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {program}"))?;
        let out = child.stdout.take().context("child stdout")?;
        let err = child.stderr.take().context("child stderr")?;
        let m1 = masker.clone();
        let t1 = std::thread::spawn(move || m1.pipe(out, std::io::stdout()));
        let t2 = std::thread::spawn(move || masker.pipe(err, std::io::stderr()));
        let status = child.wait()?;
        let _ = t1.join();
        let _ = t2.join();
        status
    };
    drop(dir);
    Ok(exit_code(status))
}

fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    if let Some(code) = status.code() {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    #[cfg(unix)]
    if let Some(sig) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return ExitCode::from(u8::try_from(128 + sig).unwrap_or(1));
    }
    ExitCode::FAILURE
}
