//! `tessera admin …`: operator commands that work on the database directly.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use tessera_store::audit::ChainStatus;
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
}

/// Audit log commands.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's hash chain; exit status 0 when intact.
    Verify(DbArgs),
}

/// Runs an admin command.
pub fn run(cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match cmd {
            AdminCommand::Audit(AuditCommand::Verify(db)) => verify(&db).await,
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
