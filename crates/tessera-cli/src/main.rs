//! The `tessera` binary: client commands, the server, and offline evaluation.

mod client;
mod commands;
mod config;
mod mask;
mod tty;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The server allocates and frees many small buffers on several threads at once; glibc's
/// allocator took ~13% of an open cycle's CPU (docs/benchmarks.md), mimalloc much less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Log in to a server with an access token.
    Login(commands::login::LoginArgs),
    /// Forget the current login.
    Logout,
    /// Show who the current token acts as.
    Whoami,
    /// Manage and open environments.
    #[command(subcommand)]
    Env(commands::env::EnvCommand),
    /// Run a command with an environment's variables and files, secrets masked.
    Run(commands::run::RunArgs),
    /// Run the Tessera server.
    Server(commands::server::ServerArgs),
    /// Pulumi integration: stack configuration from environments.
    #[command(subcommand)]
    Pulumi(commands::pulumi::PulumiCommand),
    /// Print a shell completion script: `tessera completion bash|zsh|fish`.
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Operator commands on the database: audit verification.
    #[command(subcommand)]
    Admin(commands::admin::AdminCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Eval(args) => commands::eval::run(args),
        Command::Admin(cmd) => commands::admin::run(cmd),
        Command::Server(args) => commands::server::run(args),
        Command::Login(args) => commands::login::login(args).map(|()| ExitCode::SUCCESS),
        Command::Logout => commands::login::logout().map(|()| ExitCode::SUCCESS),
        Command::Whoami => commands::login::whoami().map(|()| ExitCode::SUCCESS),
        Command::Env(cmd) => commands::env::run(cmd).map(|()| ExitCode::SUCCESS),
        Command::Run(args) => commands::run::run(args),
        Command::Pulumi(cmd) => commands::pulumi::run(cmd).map(|()| ExitCode::SUCCESS),
        Command::Completion { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "tessera",
                &mut script,
            );
            match std::io::Write::write_all(&mut std::io::stdout(), &script) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
                Err(e) => Err(e.into()),
            }
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}: {e:#}", tty::error_label());
            ExitCode::FAILURE
        }
    }
}
