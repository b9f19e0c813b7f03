//! Domain newtypes shared by every Tessera crate.
//!
//! Each type here can only be built by parsing, so a value of the type is valid by
//! construction and raw strings do not travel past the edge where they arrive. The name
//! rules are the ones the official ESC SDKs check (see `shared/CONTRACT.md`, "Names").
#![warn(missing_docs)]

mod names;
mod permission;

pub use names::{EnvName, EnvRef, NameError, OrgName, ProjectName, QualifiedEnv, Version};
pub use permission::{Permission, PermissionError, Scope, ScopeError};
