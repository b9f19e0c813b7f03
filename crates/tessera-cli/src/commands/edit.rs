//! `tessera env edit`: the definition in the user's editor. A refused save reopens the
//! editor on the user's text with the problems inserted as comments, so nothing typed is lost.

use std::process::Command;

use anyhow::{bail, Context as _};

use crate::client::{ApiError, Client, EnvRef};
use crate::commands::env::describe_diagnostic;

const MARK: &str = "# tessera: ";

/// Edits until the server accepts the definition or the user leaves it unchanged.
pub fn edit(client: &Client, env: &EnvRef) -> anyhow::Result<()> {
    let editor = std::env::var("VISUAL")
        .ok()
        .filter(|e| !e.is_empty())
        .or_else(|| std::env::var("EDITOR").ok().filter(|e| !e.is_empty()))
        .context("set $VISUAL or $EDITOR to the editor to use")?;
    let (original, etag) = client.definition(env)?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(format!("{}-{}.yaml", env.project, env.env));
    let mut text = original.clone();
    loop {
        std::fs::write(&path, &text)?;
        let mut parts = editor.split_whitespace();
        let program = parts.next().context("$EDITOR is empty")?;
        let status = Command::new(program)
            .args(parts)
            .arg(&path)
            .status()
            .with_context(|| format!("running {editor}"))?;
        if !status.success() {
            bail!(
                "{editor} exited with {status}; nothing saved (your text is in {})",
                path.display()
            );
        }
        let edited: String = std::fs::read_to_string(&path)?
            .lines()
            .filter(|l| !l.starts_with(MARK))
            .map(|l| format!("{l}\n"))
            .collect();
        if edited == original {
            eprintln!("No changes.");
            return Ok(());
        }
        match client.update(env, &edited, etag.as_deref()) {
            Ok(()) => {
                eprintln!("Environment {} updated.", env.display_name());
                return Ok(());
            }
            Err(e) => {
                match e.downcast::<ApiError>() {
                    Ok(api) if !api.diagnostics.is_empty() => {
                        let notes: String = api
                            .diagnostics
                            .iter()
                            .map(|d| format!("{MARK}{}\n", describe_diagnostic(d)))
                            .collect();
                        eprintln!("The definition was refused; reopening it with the problems as comments.");
                        text = format!("{notes}{edited}");
                    }
                    Ok(api) => {
                        let keep = std::env::temp_dir().join(path.file_name().unwrap_or_default());
                        std::fs::write(&keep, &edited)?;
                        bail!("{api}; your text is saved in {}", keep.display());
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
}
