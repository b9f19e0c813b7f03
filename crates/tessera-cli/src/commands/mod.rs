//! One module per command.

pub mod admin;
pub mod eval;
