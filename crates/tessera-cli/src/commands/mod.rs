//! One module per command.

pub mod admin;
pub mod edit;
pub mod env;
pub mod eval;
pub mod login;
pub mod pulumi;
pub mod run;
pub mod server;
