//! `tessera server`: runs the Tessera server (see `tessera_server` for everything it does).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use tessera_server::{Config, Flags, MasterKeyOrigin, RawConfig};

/// `tessera server [--config FILE] [--listen ADDR] [--data-dir DIR] [--database-url URL] [--dev]
/// [--print-config]`.
///
/// Every setting can be given in a TOML file (`--config` or `TESSERA_CONFIG`) and as a
/// `TESSERA_*` variable; flags win over variables, variables over the file, the file over the
/// defaults (see docs/configuration.md). The master key and the bootstrap token are never
/// flags, so they do not show up in process listings.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServerArgs {
    /// Operator commands on the server's keys.
    #[command(subcommand)]
    pub command: Option<ServerCommand>,
    /// TOML configuration file [env: TESSERA_CONFIG].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [env: TESSERA_LISTEN] [default: 127.0.0.1:8470].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Directory for the SQLite database and a generated master key [env: TESSERA_DATA_DIR]
    /// [default: tessera-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://… [env: TESSERA_DATABASE_URL]
    /// [default: sqlite://DIR/tessera.db].
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Development mode: generate a master key and an admin token when none is given
    /// [env: TESSERA_DEV].
    #[arg(long)]
    pub dev: bool,
    /// Print the effective configuration (secrets redacted, each value's source) and exit
    /// without starting; exits non-zero if the configuration is invalid.
    #[arg(long)]
    pub print_config: bool,
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

/// Starts the server and serves until SIGTERM or SIGINT (or runs an operator subcommand).
pub fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    if let Some(ServerCommand::RotateMasterKey { db, new_key_file }) = &args.command {
        return super::admin::rotate_master_key(db, new_key_file);
    }
    let raw = RawConfig::layered(Flags {
        config: args.config,
        listen: args.listen,
        data_dir: args.data_dir,
        database_url: args.database_url,
        dev: args.dev,
    })?;
    if args.print_config {
        print!("{}", Config::describe(&raw)?);
        return Ok(ExitCode::SUCCESS);
    }
    let config = Config::load(raw)?;
    tessera_server::init_logging(config.log_format);
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
        eprintln!("tessera: listening on {}", server.url());
        if let Some(addr) = server.metrics_addr() {
            eprintln!("tessera: metrics on http://{addr}/metrics");
        }
        server.run_until_signal().await.context("serving")?;
        Ok(ExitCode::SUCCESS)
    })
}
