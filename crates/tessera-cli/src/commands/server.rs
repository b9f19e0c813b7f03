//! `tessera server`: runs the Tessera server (see `tessera_server` for everything it does).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use tessera_server::{Config, MasterKeyOrigin, RawConfig};

/// `tessera server [--listen ADDR] [--data-dir DIR] [--database-url URL] [--dev]`.
///
/// The master key and bootstrap settings come from `TESSERA_MASTER_KEY`,
/// `TESSERA_BOOTSTRAP_ORG` and `TESSERA_BOOTSTRAP_TOKEN` only, never from flags, so they do
/// not show up in process listings.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServerArgs {
    /// Operator commands on the server's keys.
    #[command(subcommand)]
    pub command: Option<ServerCommand>,
    /// Address to listen on [default: 127.0.0.1:8470].
    #[arg(long, env = "TESSERA_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Directory for the SQLite database and a generated master key [default: tessera-data].
    #[arg(long, env = "TESSERA_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://… [default: sqlite://DIR/tessera.db].
    #[arg(long, env = "TESSERA_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Development mode: generate a master key and an admin token when none is given.
    #[arg(long)]
    pub dev: bool,
}

/// `tessera server …` operator subcommands.
#[derive(Subcommand)]
pub enum ServerCommand {
    /// Re-wrap every data key under a new master key (no data is re-encrypted).
    RotateMasterKey {
        /// Where the database is.
        #[command(flatten)]
        db: super::admin::DbArgs,
        /// File holding the new master key (base64 of 32 bytes).
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
    },
}

/// Starts the server and serves until interrupted (or runs an operator subcommand).
pub fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    if let Some(ServerCommand::RotateMasterKey { db, new_key_file }) = &args.command {
        return super::admin::rotate_master_key(db, new_key_file);
    }
    tessera_server::init_tracing();
    let env = RawConfig::from_env();
    let raw = RawConfig {
        listen: args.listen,
        data_dir: args.data_dir,
        database_url: args.database_url,
        dev: args.dev,
        ..env
    };
    let config = Config::load(raw)?;
    if config.master_key_origin == MasterKeyOrigin::GeneratedForDev {
        eprintln!(
            "tessera: generated a development master key in {}",
            config
                .data_dir
                .join(tessera_server::config_files::MASTER_KEY_FILE)
                .display()
        );
    }
    tessera_server::block_on(async move {
        let mut server = tessera_server::build(config)
            .await
            .context("starting the server")?;
        if let Some(token) = server.take_generated_token() {
            eprintln!(
                "tessera: bootstrap admin token (shown once): {}",
                token.expose()
            );
        }
        eprintln!("tessera: listening on http://{}", server.local_addr());
        server.run().await.context("serving")?;
        Ok(ExitCode::SUCCESS)
    })
}
