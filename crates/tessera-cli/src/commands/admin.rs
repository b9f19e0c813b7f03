//! `tessera admin …`: operator commands that work on the database directly.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use tessera_store::audit::{AuditContext, ChainStatus};
use tessera_store::{Keyring, MasterKey, Store};

/// Where the database is: `--database-url`, or `tessera.db` in `--data-dir`.
#[derive(Args, Clone)]
pub struct DbArgs {
    /// Data directory holding `tessera.db` (the embedded SQLite default).
    #[arg(long, env = "TESSERA_DATA_DIR", default_value = "tessera-data")]
    pub data_dir: PathBuf,
    /// Database URL (`sqlite://…` or `postgres://…`); overrides `--data-dir`.
    #[arg(long, env = "TESSERA_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl DbArgs {
    /// The database URL these options name. A SQLite file must already exist: an operator
    /// command never creates an empty database by mistake.
    fn sqlite_path(&self) -> anyhow::Result<PathBuf> {
        match &self.database_url {
            None => Ok(self.data_dir.join("tessera.db")),
            Some(url) if url.starts_with("sqlite:") => {
                let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
                Ok(PathBuf::from(rest.split('?').next().unwrap_or(rest)))
            }
            Some(_) => bail!(
                "backup and restore of PostgreSQL use its own tools: `pg_dump -Fc DB > FILE` and `pg_restore -d DB FILE` (see deploy/README.md); the master key is needed either way"
            ),
        }
    }

    /// The current master key: `TESSERA_MASTER_KEY`, else `master.key` in the data directory.
    pub fn master_key(&self) -> anyhow::Result<MasterKey> {
        if let Ok(text) = std::env::var("TESSERA_MASTER_KEY") {
            return MasterKey::from_base64(&text)
                .context("TESSERA_MASTER_KEY is not the base64 of 32 bytes");
        }
        let file = self.data_dir.join("master.key");
        MasterKey::from_file(&file).with_context(|| {
            format!(
                "no master key: set TESSERA_MASTER_KEY or put it in {}",
                file.display()
            )
        })
    }

    /// The database URL these options name.
    pub fn url(&self) -> anyhow::Result<String> {
        if let Some(url) = &self.database_url {
            return Ok(url.clone());
        }
        let path = self.data_dir.join("tessera.db");
        if !path.exists() {
            bail!(
                "no database at {}: pass --data-dir or --database-url",
                path.display()
            );
        }
        Ok(format!("sqlite://{}", path.display()))
    }
}

/// Operator commands.
#[derive(Subcommand)]
pub enum AdminCommand {
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Copy the database to FILE while the server runs (SQLite online backup). The backup
    /// holds secrets encrypted: keep the master key to restore it, and store it apart.
    Backup {
        /// The backup file to write (must not exist).
        file: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Explain a principal's permission on an environment: every rule that grants it.
    Explain {
        /// A member login, or `token:ID`.
        principal: String,
        /// The environment: `[ORG/]PROJECT/ENV`.
        env: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Tokens, grants and role assignments unused for N days, and first-time opens.
    AccessReview {
        /// Days without use that count as unused.
        #[arg(long, default_value_t = 90)]
        unused_days: u64,
        /// Tokens older than this many days are listed as long-lived.
        #[arg(long, default_value_t = 90)]
        max_token_age_days: u64,
        /// The organization (default: yours).
        #[arg(long)]
        org: Option<String>,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace the database with a backup. Stop the server first.
    Restore {
        /// The backup file.
        file: PathBuf,
        #[command(flatten)]
        db: DbArgs,
        /// Replace an existing database.
        #[arg(long)]
        force: bool,
    },
}

/// Audit log commands.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's hash chain; exit status 0 when intact.
    Verify(DbArgs),
}

/// Runs an admin command.
pub fn run(cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AdminCommand::Explain {
            principal,
            env,
            json,
        } => return explain(&principal, &env, json),
        AdminCommand::AccessReview {
            unused_days,
            max_token_age_days,
            org,
            json,
        } => return access_review(unused_days, max_token_age_days, org, json),
        _ => {}
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match cmd {
            AdminCommand::Audit(AuditCommand::Verify(db)) => verify(&db).await,
            AdminCommand::Backup { file, db } => backup(&db, &file).await,
            AdminCommand::Restore { file, db, force } => restore(&db, &file, force).await,
            AdminCommand::Explain { .. } | AdminCommand::AccessReview { .. } => {
                unreachable!("handled above")
            }
        }
    })
}

async fn verify(db: &DbArgs) -> anyhow::Result<ExitCode> {
    // Verifying the chain reads hashes only; no data key is unwrapped, so any key will do.
    let keyring = Keyring::new(MasterKey::generate().context("generating a throwaway key")?);
    let store = Store::connect(&db.url()?, keyring)
        .await
        .context("opening the database")?;
    match store
        .verify_audit_chain()
        .await
        .context("reading the audit log")?
    {
        status @ ChainStatus::Intact { .. } => {
            println!("{status}");
            Ok(ExitCode::SUCCESS)
        }
        status => {
            eprintln!("{status}");
            Ok(ExitCode::from(2))
        }
    }
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

async fn backup(db: &DbArgs, file: &Path) -> anyhow::Result<ExitCode> {
    let source = db.sqlite_path()?;
    if !source.exists() {
        bail!("no database at {}", source.display());
    }
    if file.exists() {
        bail!("{} exists already: choose a new file", file.display());
    }
    let pool = sqlx::SqlitePool::connect(&sqlite_url(&source))
        .await
        .context("opening the database")?;
    // VACUUM INTO writes a consistent copy while other connections keep working.
    sqlx::query("VACUUM INTO $1")
        .bind(file.display().to_string())
        .execute(&pool)
        .await
        .with_context(|| format!("writing the backup to {}", file.display()))?;
    pool.close().await;
    eprintln!(
        "backup written to {} (secrets stay encrypted: keep the master key to restore it)",
        file.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn restore(db: &DbArgs, file: &Path, force: bool) -> anyhow::Result<ExitCode> {
    let target = db.sqlite_path()?;
    if target.exists() && !force {
        bail!(
            "a database exists at {}: stop the server, then pass --force to replace it",
            target.display()
        );
    }
    let pool = sqlx::SqlitePool::connect(&format!("{}?mode=ro", sqlite_url(file)))
        .await
        .with_context(|| format!("opening the backup {}", file.display()))?;
    let check: (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .context("checking the backup")?;
    if check.0 != "ok" {
        bail!("the backup {} is damaged: {}", file.display(), check.0);
    }
    let staged = target.with_extension("db.restoring");
    let _ = std::fs::remove_file(&staged);
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir)?;
    }
    sqlx::query("VACUUM INTO $1")
        .bind(staged.display().to_string())
        .execute(&pool)
        .await
        .context("copying the backup")?;
    pool.close().await;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", target.display()));
    }
    std::fs::rename(&staged, &target).with_context(|| format!("replacing {}", target.display()))?;
    eprintln!("restored {} from {}", target.display(), file.display());
    Ok(ExitCode::SUCCESS)
}

/// `tessera server rotate-master-key`: re-wraps every data key under the key in `new_key_file`.
/// The old key is needed to unwrap them; data is not re-encrypted. Afterwards, start the
/// servers with the new key.
pub fn rotate_master_key(db: &DbArgs, new_key_file: &Path) -> anyhow::Result<ExitCode> {
    let current = db.master_key()?;
    let new = MasterKey::from_file(new_key_file)
        .with_context(|| format!("reading the new key from {}", new_key_file.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let keyring = Keyring::new(current);
        let store = Store::connect(&db.url()?, keyring)
            .await
            .context("opening the database")?;
        let done = store
            .rotate_master_key(new, &AuditContext::system())
            .await
            .context("rotating the master key")?;
        eprintln!(
            "re-wrapped {} data keys under master key {}; restart the servers with the new key",
            done.rewrapped, done.master_key_id
        );
        Ok(ExitCode::SUCCESS)
    })
}

fn explain(principal: &str, env: &str, json: bool) -> anyhow::Result<ExitCode> {
    let session = crate::config::session()?;
    let client = crate::client::Client::new(&session)?;
    let env = crate::client::EnvRef::parse(env, session.default_org.as_deref())?;
    let path = format!(
        "/api/orgs/{}/environments/{}/{}/access",
        env.org, env.project, env.env
    );
    let body = client.get_json(&path, &[("principal", principal.to_owned())])?;
    if json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    let permission = body
        .get("permission")
        .and_then(|p| p.as_str())
        .unwrap_or("none");
    println!("{principal} has {permission} on {}", env.display_name());
    for g in body
        .get("grants")
        .and_then(|g| g.as_array())
        .into_iter()
        .flatten()
    {
        let f = |k: &str| g.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
        println!("  {:<8} {:<8} {}", f("permission"), f("source"), f("name"));
    }
    Ok(ExitCode::SUCCESS)
}

fn access_review(
    unused_days: u64,
    max_token_age_days: u64,
    org: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let session = crate::config::session()?;
    let client = crate::client::Client::new(&session)?;
    let org = org
        .or(session.default_org.clone())
        .context("which organization? pass --org ORG")?;
    let body = client.get_json(
        &format!("/api/orgs/{org}/access-review"),
        &[
            ("unusedDays", unused_days.to_string()),
            ("maxTokenAgeDays", max_token_age_days.to_string()),
        ],
    )?;
    if json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    let sections = [
        ("unusedTokens", "Tokens unused"),
        ("unusedGrants", "Team grants unused"),
        ("unusedRoleAssignments", "Role assignments unused"),
        ("firstTimeOpens", "First-time opens"),
        ("longLivedTokens", "Tokens older than the maximum age"),
    ];
    for (key, title) in sections {
        let items = body
            .get(key)
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default();
        println!("{title} ({}):", items.len());
        for item in items {
            let line = match item.as_object() {
                Some(o) => o
                    .iter()
                    .map(|(k, v)| {
                        format!(
                            "{k}={}",
                            v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                None => item.to_string(),
            };
            println!("  {line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
