//! `tessera login`, `logout`, `whoami`.

use anyhow::Context as _;
use clap::Args;

use crate::client::Client;
use crate::config::{self, Account, Credentials};

/// Arguments of `tessera login`.
#[derive(Args)]
pub struct LoginArgs {
    /// The server, e.g. `http://127.0.0.1:8470`. Defaults to the current one.
    url: Option<String>,
    /// The access token (or set TESSERA_TOKEN).
    #[arg(long, env = "TESSERA_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// Checks the token with the server, then stores it as the current login.
pub fn login(args: LoginArgs) -> anyhow::Result<()> {
    let mut creds = Credentials::load()?;
    let url = args
        .url
        .or_else(|| std::env::var("TESSERA_URL").ok())
        .or_else(|| creds.current.clone())
        .context("which server? run `tessera login URL --token TOKEN`")?;
    let url = url.trim_end_matches('/').to_owned();
    let token = args
        .token
        .context("no token: pass --token TOKEN (or set TESSERA_TOKEN)")?;
    let user = Client::with(&url, &token)?
        .user()
        .with_context(|| format!("logging in to {url}"))?;
    creds.accounts.insert(
        url.clone(),
        Account {
            token,
            login: Some(user.login.clone()),
            default_org: user.default_org.clone(),
        },
    );
    creds.current = Some(url.clone());
    creds.save()?;
    match user.default_org {
        Some(org) => eprintln!("Logged in to {url} as {} (organization {org})", user.login),
        None => eprintln!("Logged in to {url} as {}", user.login),
    }
    Ok(())
}

/// Forgets the current login.
pub fn logout() -> anyhow::Result<()> {
    let mut creds = Credentials::load()?;
    if let Some(url) = creds.current.take() {
        creds.accounts.remove(&url);
        creds.save()?;
        eprintln!("Logged out of {url}");
    } else {
        eprintln!("Not logged in");
    }
    Ok(())
}

/// Prints who the token acts as.
pub fn whoami() -> anyhow::Result<()> {
    let session = config::session()?;
    let user = Client::new(&session)?.user()?;
    println!("User: {}", user.login);
    if let Some(org) = user.default_org.or(session.default_org) {
        println!("Organization: {org}");
    }
    println!("Backend: {}", session.url);
    Ok(())
}
