//! Where the CLI keeps its login: one credentials file in the user's config directory,
//! readable by the user only. `TESSERA_URL`/`TESSERA_TOKEN` (and Pulumi's
//! `PULUMI_BACKEND_URL`/`PULUMI_ACCESS_TOKEN`) override it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};

/// The stored logins, by server URL.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Credentials {
    /// The server used when none is named.
    pub current: Option<String>,
    /// One account per server.
    #[serde(default)]
    pub accounts: BTreeMap<String, Account>,
}

/// A login on one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    /// The access token.
    pub token: String,
    /// Who the token acts as.
    pub login: Option<String>,
    /// The organization used for `project/env` references.
    pub default_org: Option<String>,
}

fn dir() -> anyhow::Result<PathBuf> {
    if let Some(d) = std::env::var_os("TESSERA_CONFIG_DIR") {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(d).join("tessera"));
    }
    match std::env::var_os("HOME") {
        Some(h) => Ok(PathBuf::from(h).join(".config").join("tessera")),
        None => bail!("cannot find a config directory: set TESSERA_CONFIG_DIR or HOME"),
    }
}

impl Credentials {
    /// The credentials file's path.
    pub fn path() -> anyhow::Result<PathBuf> {
        Ok(dir()?.join("credentials.json"))
    }

    /// Reads the stored logins (none yet is not an error).
    pub fn load() -> anyhow::Result<Credentials> {
        let path = Self::path()?;
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Credentials::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes the logins, readable by the user only (mode 0600).
    pub fn save(&self) -> anyhow::Result<()> {
        let path = Self::path()?;
        let parent = path.parent().context("credentials path has no parent")?;
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        let tmp = path.with_extension("tmp");
        {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts
                .open(&tmp)
                .with_context(|| format!("writing {}", tmp.display()))?;
            f.write_all(&serde_json::to_vec_pretty(self)?)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

/// The server, token and default organization a command uses.
#[derive(Debug, Clone)]
pub struct Session {
    /// Server base URL, without a trailing slash.
    pub url: String,
    /// Access token.
    pub token: String,
    /// Organization for `project/env` references, if known.
    pub default_org: Option<String>,
}

fn env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

/// The session from the environment and the stored login.
pub fn session() -> anyhow::Result<Session> {
    let creds = Credentials::load()?;
    let url = env(&["TESSERA_URL", "PULUMI_BACKEND_URL"]).or_else(|| creds.current.clone());
    let Some(url) = url.map(|u| u.trim_end_matches('/').to_owned()) else {
        bail!("not logged in: run `tessera login URL --token TOKEN` (or set TESSERA_URL and TESSERA_TOKEN)");
    };
    let account = creds.accounts.get(&url);
    let token =
        env(&["TESSERA_TOKEN", "PULUMI_ACCESS_TOKEN"]).or_else(|| account.map(|a| a.token.clone()));
    let Some(token) = token else {
        bail!("not logged in to {url}: run `tessera login {url} --token TOKEN`");
    };
    let default_org = env(&["TESSERA_ORG"]).or_else(|| account.and_then(|a| a.default_org.clone()));
    Ok(Session {
        url,
        token,
        default_org,
    })
}
