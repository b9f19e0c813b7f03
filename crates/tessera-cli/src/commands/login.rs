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
    /// A CI platform's OIDC token, or @FILE holding it: exchanged at the server for a
    /// short-lived token (at most two hours) under the organization's trusted-issuer policies.
    #[arg(long, value_name = "TOKEN|@FILE", requires = "org")]
    oidc_token: Option<String>,
    /// The organization to exchange the OIDC token with.
    #[arg(long, requires = "oidc_token")]
    org: Option<String>,
    /// Ask for a team token acting with this team's grants.
    #[arg(long, requires = "oidc_token", conflicts_with_all = ["role", "user"])]
    team: Option<String>,
    /// Ask for an organization token acting with this role (its id).
    #[arg(long, requires = "oidc_token", conflicts_with = "user")]
    role: Option<String>,
    /// Ask for a personal token acting as this member.
    #[arg(long, requires = "oidc_token")]
    user: Option<String>,
    /// The lifetime to ask for, in seconds (the server caps it at two hours).
    #[arg(long, value_name = "SECONDS", requires = "oidc_token")]
    expiration: Option<u64>,
}

/// What to ask the token exchange for: `requested_token_type` suffix and `scope`.
fn requested(args: &LoginArgs) -> (&'static str, String) {
    match (&args.team, &args.role, &args.user) {
        (Some(t), _, _) => ("team", format!("team:{t}")),
        (_, Some(r), _) => ("organization", format!("role:{r}")),
        (_, _, Some(u)) => ("personal", format!("user:{u}")),
        _ => ("organization", String::new()),
    }
}

/// The OIDC token given inline or, as `@FILE`, in a file.
fn read_oidc_token(arg: &str) -> anyhow::Result<String> {
    let text = match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the OIDC token from {path}"))?,
        None => arg.to_owned(),
    };
    let text = text.trim().to_owned();
    if text.is_empty() {
        anyhow::bail!("the OIDC token is empty");
    }
    Ok(text)
}

/// Checks the token with the server, then stores it as the current login.
pub fn login(args: LoginArgs) -> anyhow::Result<()> {
    let mut creds = Credentials::load()?;
    let url = args
        .url
        .clone()
        .or_else(|| std::env::var("TESSERA_URL").ok())
        .or_else(|| creds.current.clone())
        .context("which server? run `tessera login URL --token TOKEN`")?;
    let url = url.trim_end_matches('/').to_owned();
    let mut expires_in = None;
    let token = match &args.oidc_token {
        Some(oidc) => {
            let subject = read_oidc_token(oidc)?;
            let org = args.org.clone().unwrap_or_default();
            let (kind, scope) = requested(&args);
            let mut params = vec![
                ("grant_type", crate::client::TOKEN_EXCHANGE_GRANT.to_owned()),
                ("subject_token", subject),
                (
                    "subject_token_type",
                    crate::client::ID_TOKEN_TYPE.to_owned(),
                ),
                ("audience", format!("urn:pulumi:org:{org}")),
                (
                    "requested_token_type",
                    format!("urn:pulumi:token-type:access_token:{kind}"),
                ),
                ("scope", scope),
            ];
            if let Some(e) = args.expiration {
                params.push(("expiration", e.to_string()));
            }
            let issued = crate::client::exchange_token(&url, &params)
                .with_context(|| format!("exchanging the OIDC token at {url}"))?;
            expires_in = Some(issued.expires_in);
            issued.access_token
        }
        None => args
            .token
            .context("no token: pass --token TOKEN (or set TESSERA_TOKEN), or --oidc-token")?,
    };
    let user = Client::with(&url, &token)?
        .user()
        .with_context(|| format!("logging in to {url}"))?;
    creds.accounts.insert(
        url.clone(),
        Account {
            token,
            login: Some(user.login.clone()),
            default_org: user.default_org.clone().or(args.org.clone()),
        },
    );
    creds.current = Some(url.clone());
    creds.save()?;
    match user.default_org.or(args.org) {
        Some(org) => eprintln!("Logged in to {url} as {} (organization {org})", user.login),
        None => eprintln!("Logged in to {url} as {}", user.login),
    }
    if let Some(secs) = expires_in {
        eprintln!(
            "The token expires in {} minutes; nothing long-lived was stored.",
            secs / 60
        );
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
