//! The signing keys of trusted CI issuers: found through the issuer's discovery document (whose
//! `issuer` must equal the registered URL) and its `jwks_uri`, cached per issuer, and re-fetched once
//! when a token names a key the cache lacks — at most once per [`REFETCH_INTERVAL`] per issuer,
//! so forged `kid`s cannot turn Tessera into a request amplifier.
//!
//! Only issuers already registered reach this module: the caller looks the token's `iss` up
//! among an organization's trusted issuers first.
//!
//! Discovery is read by hand rather than with `openidconnect`'s provider metadata: that type
//! requires `authorization_endpoint`, which GitHub Actions' discovery document does not have
//! (a token issuer has no authorization endpoint), so the crate cannot discover GitHub.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey};
use moka::future::Cache;

/// How long a fetched key set is used before it is fetched again.
const KEY_SET_TTL: Duration = Duration::from_secs(3600);
/// The shortest time between two re-fetches caused by unknown `kid`s, per issuer.
pub(crate) const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// The largest discovery or JWKS document read.
const MAX_DOCUMENT: usize = 1 << 20;
/// How long a discovery or JWKS request may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the keys of an issuer are not available.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeysError {
    #[error("cannot discover the issuer's keys at {url}: {reason}")]
    Discovery { url: String, reason: String },
}

/// The part of a discovery document used here.
#[derive(serde::Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// A JWKS document, its keys read one by one.
#[derive(serde::Deserialize)]
struct RawKeySet {
    keys: Vec<serde_json::Value>,
}

/// One issuer's verification keys, as last fetched.
struct KeySet {
    keys: Vec<(Option<String>, Jwk)>,
}

/// The key sets of the issuers in use, and when each was last re-fetched for an unknown `kid`.
pub(crate) struct IssuerKeys {
    http: reqwest::Client,
    sets: Cache<String, Arc<KeySet>>,
    last_refetch: Mutex<std::collections::HashMap<String, Instant>>,
}

/// A key that can verify a token with `alg`, and whether it was found.
pub(crate) enum KeyLookup {
    Found(DecodingKey),
    /// No key with that `kid` (after any allowed re-fetch).
    Unknown,
    /// The key named exists but is not for this algorithm.
    WrongAlgorithm,
}

impl IssuerKeys {
    pub(crate) fn new() -> IssuerKeys {
        // No redirects: a discovery document must be served at the issuer's own address.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .build()
            .unwrap_or_default();
        IssuerKeys {
            http,
            sets: Cache::builder()
                .max_capacity(1000)
                .time_to_live(KEY_SET_TTL)
                .build(),
            last_refetch: Mutex::default(),
        }
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| error_chain(&e))?;
        if !resp.status().is_success() {
            return Err(format!("GET {url} answered {}", resp.status()));
        }
        let bytes = resp.bytes().await.map_err(|e| error_chain(&e))?;
        if bytes.len() > MAX_DOCUMENT {
            return Err(format!(
                "GET {url}: the document is over {MAX_DOCUMENT} bytes"
            ));
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("GET {url}: {e}"))
    }

    async fn fetch(&self, url: &str) -> Result<Arc<KeySet>, KeysError> {
        let err = |reason: String| KeysError::Discovery {
            url: url.to_owned(),
            reason,
        };
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            url.trim_end_matches('/')
        );
        let doc: Discovery = self.get_json(&discovery_url).await.map_err(err)?;
        if doc.issuer != url {
            return Err(err(format!(
                "the discovery document names issuer {:?}, not the registered {url:?}",
                doc.issuer
            )));
        }
        // The keys must come over the same kind of channel as the discovery document.
        let same_scheme =
            doc.jwks_uri.split_once("://").map(|(s, _)| s) == url.split_once("://").map(|(s, _)| s);
        if !same_scheme {
            return Err(err(format!(
                "jwks_uri {:?} does not use the issuer's scheme",
                doc.jwks_uri
            )));
        }
        let set: RawKeySet = self.get_json(&doc.jwks_uri).await.map_err(err)?;
        // Only asymmetric keys: a symmetric (`oct`) key in a published set could never be
        // secret. Keys of kinds jsonwebtoken cannot read are skipped, not fatal.
        let keys: Vec<(Option<String>, Jwk)> = set
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
            .filter(|k| {
                matches!(
                    k.algorithm,
                    AlgorithmParameters::RSA(_) | AlgorithmParameters::EllipticCurve(_)
                )
            })
            .map(|k| (k.common.key_id.clone(), k))
            .collect();
        tracing::info!(
            issuer = url,
            keys = keys.len(),
            "fetched a trusted issuer's keys"
        );
        Ok(Arc::new(KeySet { keys }))
    }

    async fn current(&self, url: &str) -> Result<Arc<KeySet>, KeysError> {
        self.sets
            .try_get_with(url.to_owned(), self.fetch(url))
            .await
            .map_err(|e| KeysError::Discovery {
                url: url.to_owned(),
                reason: match e.as_ref() {
                    KeysError::Discovery { reason, .. } => reason.clone(),
                },
            })
    }

    /// Whether an unknown `kid` may cause a re-fetch of `url`'s keys now (and records it).
    fn may_refetch(&self, url: &str) -> bool {
        let mut last = self.last_refetch.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match last.get(url) {
            Some(t) if now.duration_since(*t) < REFETCH_INTERVAL => false,
            _ => {
                last.insert(url.to_owned(), now);
                true
            }
        }
    }

    /// The key of `url` named `kid` (or, without a `kid`, its only key of the right kind)
    /// for verifying an `alg` signature.
    pub(crate) async fn key(
        &self,
        url: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<KeyLookup, KeysError> {
        let set = self.current(url).await?;
        if let Some(found) = pick(&set, kid, alg) {
            return Ok(found);
        }
        if !self.may_refetch(url) {
            return Ok(KeyLookup::Unknown);
        }
        // The issuer may have rotated: the fresh set replaces the cached one.
        let fresh = self.fetch(url).await?;
        self.sets.insert(url.to_owned(), fresh.clone()).await;
        Ok(pick(&fresh, kid, alg).unwrap_or(KeyLookup::Unknown))
    }
}

/// The key for `kid` and `alg` in `set`, or `None` when no key has that `kid`.
fn pick(set: &KeySet, kid: Option<&str>, alg: Algorithm) -> Option<KeyLookup> {
    let candidates: Vec<&Jwk> = match kid {
        Some(kid) => set
            .keys
            .iter()
            .filter(|(k, _)| k.as_deref() == Some(kid))
            .map(|(_, j)| j)
            .collect(),
        None => set
            .keys
            .iter()
            .map(|(_, j)| j)
            .filter(|j| fits(j, alg))
            .collect(),
    };
    match candidates.as_slice() {
        [] => None,
        [one] if fits(one, alg) => Some(
            DecodingKey::from_jwk(one)
                .map(KeyLookup::Found)
                .unwrap_or(KeyLookup::WrongAlgorithm),
        ),
        [_] => Some(KeyLookup::WrongAlgorithm),
        // Several keys under one kid (or none named and several fit): ambiguous, refuse.
        _ => Some(KeyLookup::WrongAlgorithm),
    }
}

/// Whether `jwk` is a key for `alg`: RSA for RS256, P-256 for ES256, and its own `alg`, if
/// it declares one, the same.
fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    let kind_ok = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256) => true,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
            ec.curve == EllipticCurve::P256
        }
        _ => false,
    };
    let declared_ok = jwk
        .common
        .key_algorithm
        .is_none_or(|a| format!("{a:?}") == format!("{alg:?}"));
    kind_ok && declared_ok
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
