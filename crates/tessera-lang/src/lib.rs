//! The Tessera environment language: Pulumi ESC's language, parsed with source positions and
//! evaluated without I/O.
//!
//! The pipeline is `syntax` (YAML with positions) → `ast` (expressions and builtins) →
//! `eval` (imports, references, secrets, providers) → `value` (results with secrecy).
//! [`check`] never decrypts or calls providers; [`open`] does, through the [`Decrypter`] and
//! [`Providers`] the caller passes. Mistakes in an environment are [`Diagnostic`]s, all of
//! them, each with environment, position and path.
#![warn(missing_docs)]

pub mod ast;
pub mod diag;
mod eval;
pub mod format;
mod json;
mod layers;
mod limits;
mod load;
mod number;
mod schema;
mod secrets;
pub mod syntax;
mod value;

pub use diag::{Diagnostic, Diagnostics, Pos, Range, Severity};
pub use eval::{
    check, open, Decrypter, EvalContext, Evaluation, Parsed, ProviderCall, Providers, Source,
};
pub use limits::Limits;
pub use load::{load_closure, load_closure_parsed, Loaded};
pub use number::Number;
pub use secrets::encrypt_secrets;
pub use value::{Location, Value, ValueKind};

/// Parses one environment document.
pub fn parse(name: &str, src: &str, limits: &Limits) -> Parsed {
    Parsed::new(name, src, limits)
}
