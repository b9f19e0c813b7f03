//! The evaluation capabilities that reveal: a [`Decrypter`] and [`Providers`] that can only be
//! built from an [`OpenGrant`].
//!
//! *Boundary:* both types borrow the grant, so they cannot outlive it and cannot exist without
//! one; the grant itself is minted only by the store's Open check (see the crate docs).
//! Decryption is asynchronous in the store and synchronous in the evaluator, so
//! [`GrantedDecrypter::prepare`] decrypts every ciphertext of the loaded environments up front,
//! each through `Store::decrypt_secret(&grant, …)`, and the evaluator reads the results.
//! Likewise [`GrantedProviders::prepare`] unseals the organization's OIDC signing key under the
//! grant (when a provider is called at all) before handing calls to the provider registry.

use std::collections::HashMap;
use std::sync::Mutex;

use tessera_lang::{Decrypter, Loaded, ProviderCall, Providers, Source, Value};
use tessera_providers::{ProviderError, Registry};
use tessera_store::access::OpenGrant;
use tessera_store::{Store, StoreError};
use tessera_types::{EnvRef, QualifiedEnv};
use zeroize::Zeroizing;

use crate::error::ApiError;
use crate::oidc::{Issuer, KeyError};

/// The environment a language-level name (`project/env`, maybe `@version`) refers to.
pub(crate) fn qualified(name: &str) -> Option<QualifiedEnv> {
    name.parse::<EnvRef>().ok().map(|r| r.env)
}

/// Every ciphertext in `names`' definitions, with the environment it belongs to.
pub(crate) fn ciphertexts(loaded: &Loaded, names: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in names {
        let Ok(parsed) = loaded.load(name) else {
            continue;
        };
        let Some(decl) = &parsed.decl else { continue };
        for expr in &decl.exprs {
            if let tessera_lang::ast::ExprKind::Secret(tessera_lang::ast::SecretArg::Ciphertext(
                c,
            )) = &expr.kind
            {
                out.push((name.clone(), c.clone()));
            }
        }
    }
    out
}

type Decrypted = Result<Zeroizing<String>, String>;

/// Decrypts `fn::secret` ciphertexts for one evaluation, under an Open grant.
pub(crate) struct GrantedDecrypter<'g> {
    _grant: &'g OpenGrant,
    plaintexts: HashMap<(String, String), Decrypted>,
}

impl<'g> GrantedDecrypter<'g> {
    /// Decrypts every ciphertext of the environments `loaded` found. A ciphertext that does
    /// not open (damaged, or copied from another environment) becomes a diagnostic where it
    /// is used; a database failure fails the whole open.
    pub(crate) async fn prepare(
        store: &Store,
        grant: &'g OpenGrant,
        loaded: &Loaded,
    ) -> Result<GrantedDecrypter<'g>, ApiError> {
        let names: Vec<String> = loaded.found().map(str::to_owned).collect();
        let mut plaintexts = HashMap::new();
        for (name, ciphertext) in ciphertexts(loaded, &names) {
            if plaintexts.contains_key(&(name.clone(), ciphertext.clone())) {
                continue;
            }
            let result = match qualified(&name) {
                None => Err(format!("invalid environment name {name:?}")),
                Some(env) => {
                    match store
                        .decrypt_secret(grant, grant.org(), &env, &ciphertext)
                        .await
                    {
                        Ok(plain) => Ok(Zeroizing::new(plain.expose().to_owned())),
                        Err(StoreError::Crypto { .. }) => Err(
                            "the ciphertext cannot be decrypted here: it is damaged or belongs to another environment"
                                .to_owned(),
                        ),
                        Err(e @ StoreError::NotGranted { .. }) => Err(e.to_string()),
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            plaintexts.insert((name, ciphertext), result);
        }
        Ok(GrantedDecrypter {
            _grant: grant,
            plaintexts,
        })
    }
}

impl Decrypter for GrantedDecrypter<'_> {
    fn decrypt(&self, environment: &str, ciphertext: &str) -> Result<Zeroizing<String>, String> {
        self.plaintexts
            .get(&(environment.to_owned(), ciphertext.to_owned()))
            .cloned()
            .unwrap_or_else(|| Err("the secret was not prepared for decryption".to_owned()))
    }
}

/// How the remote side of a failed provider call failed, for the open's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum UpstreamFailure {
    /// The cloud refused, could not be reached, or no token could be minted: 502.
    Refused,
    /// No answer in time: 504.
    Timeout,
}

/// Runs `fn::open` providers under an Open grant, through the server's [`Registry`], and
/// remembers how remote calls failed so the open can answer 502 or 504 rather than 400.
pub(crate) struct GrantedProviders<'g> {
    _grant: &'g OpenGrant,
    registry: Registry,
    failures: Mutex<Vec<UpstreamFailure>>,
}

/// Records a timeout if a call is dropped before it finished (the evaluator's deadline).
struct Pending<'a> {
    failures: &'a Mutex<Vec<UpstreamFailure>>,
    finished: bool,
    provider: String,
    started: std::time::Instant,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.finished {
            record(self.failures, UpstreamFailure::Timeout);
            crate::metrics::provider_call(&self.provider, "timeout", self.started.elapsed());
        }
    }
}

fn record(failures: &Mutex<Vec<UpstreamFailure>>, failure: UpstreamFailure) {
    if let Ok(mut f) = failures.lock() {
        f.push(failure);
    }
}

/// Whether any environment of `loaded` calls a provider.
pub(crate) fn calls_providers(loaded: &Loaded) -> bool {
    loaded.found().any(|name| {
        loaded.load(name).ok().is_some_and(|parsed| {
            parsed.decl.as_ref().is_some_and(|decl| {
                decl.exprs
                    .iter()
                    .any(|e| matches!(e.kind, tessera_lang::ast::ExprKind::Open { .. }))
            })
        })
    })
}

/// The providers of an open that calls none (see `calls_providers`): any call is refused, so
/// no provider runs before the open's audit entry is committed.
pub(crate) struct NoProviders;

#[async_trait::async_trait]
impl Providers for NoProviders {
    async fn open(&self, call: ProviderCall) -> Result<Value, String> {
        Err(format!(
            "provider {:?} cannot be called in this open",
            call.provider
        ))
    }
}

impl<'g> GrantedProviders<'g> {
    /// Providers for one evaluation under `grant`. When `loaded` calls a provider, the
    /// organization's signing key is unsealed first (under the same grant), so tokens can be
    /// minted during the evaluation. A key that cannot be had leaves the calls that need a
    /// token failing with a diagnostic; a database failure fails the open.
    pub(crate) async fn prepare(
        grant: &'g OpenGrant,
        registry: &Registry,
        issuer: &Issuer,
        loaded: &Loaded,
    ) -> Result<GrantedProviders<'g>, ApiError> {
        if calls_providers(loaded) {
            match issuer.load_signer(grant).await {
                Ok(()) => {}
                Err(KeyError::Store(
                    e @ (StoreError::Database { .. } | StoreError::Connect { .. }),
                )) => return Err(e.into()),
                Err(e) => tracing::error!(error = %e, "loading the OIDC signing key"),
            }
        }
        Ok(GrantedProviders {
            _grant: grant,
            registry: registry.clone(),
            failures: Mutex::default(),
        })
    }

    /// The worst remote failure seen, if any: a timeout before a refusal.
    pub(crate) fn upstream_failure(&self) -> Option<UpstreamFailure> {
        self.failures
            .lock()
            .ok()
            .and_then(|f| f.iter().copied().max())
    }
}

#[async_trait::async_trait]
impl Providers for GrantedProviders<'_> {
    async fn open(&self, call: ProviderCall) -> Result<Value, String> {
        let mut pending = Pending {
            failures: &self.failures,
            finished: false,
            provider: call.provider.clone(),
            started: std::time::Instant::now(),
        };
        let result = self.registry.call(call).await;
        pending.finished = true;
        crate::metrics::provider_call(
            &pending.provider,
            match &result {
                Ok(_) => "ok",
                Err(ProviderError::Timeout { .. }) => "timeout",
                Err(_) => "error",
            },
            pending.started.elapsed(),
        );
        result.map_err(|e| {
            let failure = match &e {
                ProviderError::Timeout { .. } => Some(UpstreamFailure::Timeout),
                ProviderError::Refused(_)
                | ProviderError::Unreachable(_)
                | ProviderError::Issuer { .. } => Some(UpstreamFailure::Refused),
                _ => None,
            };
            if let Some(f) = failure {
                record(&self.failures, f);
            }
            e.to_string()
        })
    }
}
