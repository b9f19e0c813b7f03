//! Tessera's `fn::open` providers: cloud logins through Tessera's OIDC issuer
//! (`aws-login`, `azure-login`, `gcp-login`), tokens for any relying party (`oidc`, and the
//! unsigned preview `debug-oidc-claims`), and the AWS secret stores (`aws-secrets`,
//! `aws-parameter-store`).
//!
//! The entry point is [`Registry`], which implements [`tessera_lang::Providers`]: the
//! evaluator hands it a [`tessera_lang::ProviderCall`] and it dispatches by provider name.
//! Tokens are minted by an [`IdTokenIssuer`] the server supplies (it owns the signing keys);
//! this crate decides *what* a token says ([`TokenRequest`], [`subject`]) and exchanges it
//! with the cloud.
//!
//! Error policy: every failure is a [`ProviderError`] whose text is shown to the user as a
//! diagnostic at the call site. Messages name the provider, the remote service and what it
//! said, and never contain a token, a key or a secret input: remote error text is scrubbed
//! of the token we sent before it is quoted, and no credential is ever logged.
#![warn(missing_docs)]

mod aws;
mod azure;
mod config;
mod error;
mod gcp;
mod inputs;
mod issuer;
mod oidc;
mod registry;

pub use config::{ConfigError, ProvidersConfig, DEFAULT_TIMEOUT};
pub use error::ProviderError;
pub use inputs::parse_go_duration;
pub use issuer::{
    audience, subject, CallIdentity, IdTokenIssuer, SubjectError, TokenRequest, MAX_TOKEN_LIFETIME,
    SUBJECT_ATTRIBUTES,
};
pub use registry::{Registry, PROVIDERS};
