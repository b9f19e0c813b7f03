//! Tessera as an OIDC issuer: the signing keys, the discovery document and JWKS, rotation
//! with overlap, and the [`IdTokenIssuer`] the provider registry mints cloud-login tokens with.
//!
//! Design: keys are **per organization** (the store keeps them that way, each private part
//! sealed with its organization's data key), and the JWKS publishes the keys of every
//! organization under the one issuer URL. Trust policies still bind to one organization, since
//! `aud` and `sub` name it. An organization's active key is created when the server starts (for
//! every organization that has none) and otherwise at the first open that calls a provider.
//!
//! *Invariant:* a private key is unsealed only under an Open grant of its organization
//! ([`Issuer::load_signer`] takes `&OpenGrant`, as `Store::signing_key_private` does), and held
//! in memory to sign while the server runs. Each open re-reads which key is active, so a
//! rotation done by another replica takes effect at the next open.
//!
//! *Invariant:* a retired key stays in the JWKS for the longest token lifetime after its
//! retirement (every token it signed has expired by then), then leaves it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value as Json};
use sha2::Digest as _;
use tessera_crypto::SecretBytes;
use tessera_providers::{IdTokenIssuer, TokenRequest};
use tessera_store::access::OpenGrant;
use tessera_store::audit::AuditContext;
use tessera_store::oidc::SigningKey;
use tessera_store::{Store, StoreError};
use tessera_types::OrgName;

use crate::error::ApiError;

/// The one algorithm Tessera signs with: RS256 is what every cloud accepts (Azure AD only
/// takes RSA keys from external issuers).
pub(crate) const ALGORITHM: &str = "RS256";
const RSA_BITS: usize = 2048;

/// The claims Tessera's tokens carry (`claims_supported`).
const CLAIMS: [&str; 10] = [
    "iss",
    "aud",
    "sub",
    "iat",
    "nbf",
    "exp",
    "org",
    "current_env",
    "root_env",
    "user",
];

/// Why a key operation failed. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A key could not be generated or read.
    #[error("signing key: {0}")]
    Key(&'static str),
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> ApiError {
        match e {
            KeyError::Store(e) => e.into(),
            e => ApiError::unexpected(e),
        }
    }
}

/// The key an organization's tokens are signed with, unsealed.
struct Signer {
    kid: String,
    key: EncodingKey,
}

/// What a rotation did.
#[derive(Debug)]
pub(crate) struct Rotation {
    /// The new signing key.
    pub(crate) kid: String,
    /// The keys it replaced, still published until `published_until`.
    pub(crate) retired: Vec<String>,
    /// When the retired keys leave the JWKS (unix seconds).
    pub(crate) published_until: u64,
}

/// The issuer: its URL, the longest token lifetime, and the signers loaded so far.
pub(crate) struct Issuer {
    store: Store,
    url: String,
    token_lifetime: Duration,
    signers: RwLock<HashMap<String, Arc<Signer>>>,
    /// Serializes key creation in this process, so one organization gets one new key.
    creation: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("url", &self.url)
            .field("token_lifetime", &self.token_lifetime)
            .finish_non_exhaustive()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh RSA key: its `kid` (the RFC 7638 thumbprint), public JWK and PKCS#1 DER private
/// part. CPU-bound: run it off the async threads.
fn generate() -> Result<(String, Json, SecretBytes), KeyError> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS)
        .map_err(|_| KeyError::Key("RSA key generation failed"))?;
    let der = private
        .to_pkcs1_der()
        .map_err(|_| KeyError::Key("RSA key encoding failed"))?;
    let n = b64(&private.n().to_bytes_be());
    let e = b64(&private.e().to_bytes_be());
    // RFC 7638: the required members in lexicographic order, no whitespace.
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let kid = b64(&sha2::Sha256::digest(canonical.as_bytes()));
    let jwk = json!({"kty": "RSA", "use": "sig", "alg": ALGORITHM, "kid": kid, "n": n, "e": e});
    Ok((kid, jwk, SecretBytes::new(der.as_bytes().to_vec())))
}

/// The public members of a stored JWK, whatever else it holds.
fn public_jwk(key: &SigningKey) -> Json {
    let mut out = json!({"kid": key.kid, "alg": key.algorithm, "use": "sig"});
    for member in ["kty", "n", "e", "crv", "x", "y"] {
        if let Some(v) = key.public_jwk.get(member) {
            out[member] = v.clone();
        }
    }
    out
}

impl Issuer {
    /// An issuer at `url` (no trailing slash) whose tokens live at most `token_lifetime`.
    pub(crate) fn new(store: Store, url: String, token_lifetime: Duration) -> Issuer {
        Issuer {
            store,
            url,
            token_lifetime: token_lifetime.min(tessera_providers::MAX_TOKEN_LIFETIME),
            signers: RwLock::default(),
            creation: tokio::sync::Mutex::new(()),
        }
    }

    /// The discovery document (`/.well-known/openid-configuration`).
    pub(crate) fn discovery(&self) -> Json {
        json!({
            "issuer": self.url,
            "jwks_uri": format!("{}/.well-known/jwks", self.url),
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "claims_supported": CLAIMS,
        })
    }

    /// The JWKS: every active key, and every retired key whose tokens may still be valid.
    pub(crate) async fn jwks(&self) -> Result<Json, StoreError> {
        let lifetime = self.token_lifetime.as_secs();
        let t = now();
        let keys: Vec<Json> = self
            .store
            .list_signing_keys(true)
            .await?
            .iter()
            .filter(|k| {
                k.retired_at
                    .is_none_or(|r| t <= u64::try_from(r).unwrap_or(0).saturating_add(lifetime))
            })
            .map(public_jwk)
            .collect();
        Ok(json!({ "keys": keys }))
    }

    /// The active keys of `org` that this server can sign with, newest first.
    async fn active(&self, org: &OrgName) -> Result<Vec<SigningKey>, StoreError> {
        Ok(self
            .store
            .list_signing_keys(false)
            .await?
            .into_iter()
            .filter(|k| &k.org == org && k.algorithm == ALGORITHM)
            .collect())
    }

    async fn create(&self, org: &OrgName, ctx: &AuditContext) -> Result<String, KeyError> {
        let (kid, jwk, private) = tokio::task::spawn_blocking(generate)
            .await
            .map_err(|_| KeyError::Key("the key generation task failed"))??;
        self.store
            .create_signing_key(org, &kid, ALGORITHM, &jwk, &private, ctx)
            .await?;
        tracing::info!(org = %org, kid = %kid, "created an OIDC signing key");
        Ok(kid)
    }

    /// The `kid` of `org`'s active key, created if there is none.
    async fn ensure_active(&self, org: &OrgName) -> Result<String, KeyError> {
        if let Some(k) = self.active(org).await?.into_iter().next() {
            return Ok(k.kid);
        }
        let _one = self.creation.lock().await;
        if let Some(k) = self.active(org).await?.into_iter().next() {
            return Ok(k.kid);
        }
        self.create(org, &AuditContext::system()).await
    }

    /// Gives every organization without an active key one (at startup).
    pub(crate) async fn ensure_every_org(&self) -> Result<(), KeyError> {
        for org in self.store.list_orgs().await? {
            self.ensure_active(&org.name).await?;
        }
        Ok(())
    }

    /// Unseals the grant's organization's active key (creating one if needed) so tokens can
    /// be signed for it; a no-op when that key is already loaded.
    pub(crate) async fn load_signer(&self, grant: &OpenGrant) -> Result<(), KeyError> {
        let org = grant.org();
        let kid = self.ensure_active(org).await?;
        let loaded = self
            .signers
            .read()
            .ok()
            .and_then(|m| m.get(org.as_str()).map(|s| s.kid == kid))
            .unwrap_or(false);
        if loaded {
            return Ok(());
        }
        let private = self.store.signing_key_private(grant, &kid).await?;
        let key = EncodingKey::from_rsa_der(private.expose());
        if let Ok(mut m) = self.signers.write() {
            m.insert(org.as_str().to_owned(), Arc::new(Signer { kid, key }));
        }
        Ok(())
    }

    /// A new key becomes `org`'s signer; the previous ones are retired and stay published
    /// until every token they signed has expired. Audited with `ctx`.
    pub(crate) async fn rotate(
        &self,
        org: &OrgName,
        ctx: &AuditContext,
    ) -> Result<Rotation, KeyError> {
        let _one = self.creation.lock().await;
        let previous = self.active(org).await?;
        let kid = self.create(org, ctx).await?;
        let mut retired = Vec::new();
        for key in previous {
            match self.store.retire_signing_key(org, &key.kid, ctx).await {
                Ok(()) | Err(StoreError::NotFound(_)) => retired.push(key.kid),
                Err(e) => return Err(e.into()),
            }
        }
        tracing::info!(org = %org, kid = %kid, retired = ?retired, "rotated the OIDC signing key");
        Ok(Rotation {
            kid,
            retired,
            published_until: now() + self.token_lifetime.as_secs(),
        })
    }

    /// The keys of `org`, public parts, newest first, with their state.
    pub(crate) async fn keys(&self, org: &OrgName) -> Result<Json, StoreError> {
        let lifetime = self.token_lifetime.as_secs();
        let keys: Vec<Json> = self
            .store
            .list_signing_keys(true)
            .await?
            .iter()
            .filter(|k| &k.org == org)
            .map(|k| {
                let published_until = k
                    .retired_at
                    .map(|r| u64::try_from(r).unwrap_or(0).saturating_add(lifetime));
                json!({
                    "kid": k.kid,
                    "algorithm": k.algorithm,
                    "created": k.created_at,
                    "retired": k.retired_at,
                    "publishedUntil": published_until,
                    "published": published_until.is_none_or(|u| now() <= u),
                })
            })
            .collect();
        Ok(json!({ "keys": keys }))
    }

    fn capped(&self, request: &TokenRequest) -> TokenRequest {
        let mut request = request.clone();
        request.lifetime = request.lifetime.min(self.token_lifetime);
        request
    }
}

impl IdTokenIssuer for Issuer {
    fn issue(&self, request: TokenRequest) -> Result<String, String> {
        let signer = self
            .signers
            .read()
            .ok()
            .and_then(|m| m.get(&request.organization).cloned())
            .ok_or_else(|| {
                format!(
                    "no signing key is loaded for organization {:?}",
                    request.organization
                )
            })?;
        let claims = self.claims(&request);
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(signer.kid.clone());
        // The library's error could describe the key; say only that signing failed.
        jsonwebtoken::encode(&header, &claims, &signer.key)
            .map_err(|_| "signing the token failed".to_owned())
    }

    fn claims(&self, request: &TokenRequest) -> Json {
        self.capped(request).claims(&self.url, now())
    }
}
