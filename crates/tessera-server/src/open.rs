//! The evaluation capabilities that reveal: a [`Decrypter`] and [`Providers`] that can only be
//! built from an [`OpenGrant`].
//!
//! *Boundary:* both types borrow the grant, so they cannot outlive it and cannot exist without
//! one; the grant itself is minted only by the store's Open check (see the crate docs).
//! Decryption is asynchronous in the store and synchronous in the evaluator, so
//! [`GrantedDecrypter::prepare`] decrypts every ciphertext of the loaded environments up front,
//! each through `Store::decrypt_secret(&grant, …)`, and the evaluator reads the results.

use std::collections::HashMap;

use tessera_lang::{Decrypter, Loaded, ProviderCall, Providers, Source, Value};
use tessera_store::access::OpenGrant;
use tessera_store::{Store, StoreError};
use tessera_types::{EnvRef, QualifiedEnv};
use zeroize::Zeroizing;

use crate::error::ApiError;

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

/// Runs `fn::open` providers under an Open grant. No provider is available yet: every call
/// is answered with an error that becomes a diagnostic at the call.
pub(crate) struct GrantedProviders<'g> {
    _grant: &'g OpenGrant,
}

impl<'g> GrantedProviders<'g> {
    /// Providers for one evaluation under `grant`.
    pub(crate) fn new(grant: &'g OpenGrant) -> GrantedProviders<'g> {
        GrantedProviders { _grant: grant }
    }
}

#[async_trait::async_trait]
impl Providers for GrantedProviders<'_> {
    async fn open(&self, call: ProviderCall) -> Result<Value, String> {
        Err(format!("provider {:?} is not available", call.provider))
    }
}
