//! The `tessera` binary: client commands, the server, and offline evaluation.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tessera: environments, secrets and configuration, compatible with Pulumi ESC.
#[derive(Parser)]
#[command(name = "tessera", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate an environment from local files, without a server.
    Eval(commands::eval::EvalArgs),
    /// Operator commands on the database: audit verification.
    #[command(subcommand)]
    Admin(commands::admin::AdminCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Eval(args) => commands::eval::run(args),
        Command::Admin(cmd) => commands::admin::run(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
