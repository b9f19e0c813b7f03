//! Per-organization data keys, secret encryption, and key rotation.
//!
//! Each organization has data keys numbered from 1; the highest seals new values, older
//! ones stay to open what they sealed. Data keys are stored wrapped by the master key
//! (`org_data_keys.master_key_id` says which). Secrets are sealed with associated data
//! naming the organization and the environment (`tessera_crypto::Aad::environment`);
//! sessions and signing keys with the organization and a purpose.

use std::sync::{Arc, RwLock};

use tessera_crypto::{Aad, DataKey, Keyring, MasterKey, MasterKeyId, SecretString, WrappedKey};
use tessera_types::{OrgName, QualifiedEnv};

use crate::access::OpenGrant;
use crate::audit::{self, AuditContext, AuditRecord};
use crate::db::{args, Conn, Tx};
use crate::orgs::org_id;
use crate::{now, Store, StoreError};

fn crypto(context: String) -> impl FnOnce(tessera_crypto::CryptoError) -> StoreError {
    move |source| StoreError::Crypto { context, source }
}

fn keyring_poisoned() -> StoreError {
    StoreError::Corrupt("the keyring lock was poisoned by a panic".into())
}

pub(crate) async fn create_data_key(
    tx: &mut Tx,
    keyring: &RwLock<Keyring>,
    org_id: i64,
    org: &OrgName,
    key_id: u32,
) -> Result<(), StoreError> {
    let ctx = || format!("creating data key {key_id} of organization {org}");
    let dk = DataKey::generate(key_id).map_err(crypto(ctx()))?;
    let wrapped = {
        let ring = keyring.read().map_err(|_| keyring_poisoned())?;
        ring.current()
            .wrap(org.as_str(), &dk)
            .map_err(crypto(ctx()))?
    };
    tx.execute(
        "INSERT INTO org_data_keys (org_id, key_id, master_key_id, wrapped, created_at) VALUES ($1, $2, $3, $4, $5)",
        args![org_id, key_id as i64, wrapped.master_key_id.as_str(), &wrapped.bytes, now()],
        "storing a data key",
    )
    .await?;
    Ok(())
}

/// Loads data key `key_id` (or the newest when `None`) of an organization, unwrapped.
pub(crate) async fn data_key<C: Conn>(
    c: &mut C,
    keyring: &RwLock<Keyring>,
    org_id: i64,
    org: &OrgName,
    key_id: Option<u32>,
) -> Result<DataKey, StoreError> {
    let row = match key_id {
        Some(k) => {
            c.fetch_optional(
                "SELECT key_id, master_key_id, wrapped FROM org_data_keys WHERE org_id = $1 AND key_id = $2",
                args![org_id, k as i64],
                "reading a data key",
            )
            .await?
        }
        None => {
            c.fetch_optional(
                "SELECT key_id, master_key_id, wrapped FROM org_data_keys WHERE org_id = $1 ORDER BY key_id DESC LIMIT 1",
                args![org_id],
                "reading the current data key",
            )
            .await?
        }
    };
    let row = row.ok_or_else(|| StoreError::Crypto {
        context: format!("organization {org}"),
        source: tessera_crypto::CryptoError::UnknownDataKey {
            org: org.to_string(),
            key_id: key_id.unwrap_or(0),
        },
    })?;
    let id = u32::try_from(row.i64(0)?).map_err(|_| StoreError::Corrupt("data key id".into()))?;
    let wrapped = WrappedKey {
        master_key_id: MasterKeyId::from_recorded(&row.text(1)?),
        bytes: row.bytes(2)?,
    };
    let ring = keyring.read().map_err(|_| keyring_poisoned())?;
    ring.unwrap(org.as_str(), id, &wrapped)
        .map_err(crypto(format!(
            "loading data key {id} of organization {org}"
        )))
}

/// Seals `plaintext` with the organization's current data key.
pub(crate) async fn seal<C: Conn>(
    c: &mut C,
    keyring: &RwLock<Keyring>,
    org_id: i64,
    org: &OrgName,
    plaintext: &[u8],
    aad: &Aad,
) -> Result<Vec<u8>, StoreError> {
    let dk = data_key(c, keyring, org_id, org, None).await?;
    tessera_crypto::seal(&dk, plaintext, aad)
        .map_err(crypto(format!("sealing for {}", aad.description())))
}

/// Opens a value sealed by [`seal`], with whichever data key sealed it.
pub(crate) async fn open<C: Conn>(
    c: &mut C,
    keyring: &RwLock<Keyring>,
    org_id: i64,
    org: &OrgName,
    sealed: &[u8],
    aad: &Aad,
) -> Result<tessera_crypto::SecretBytes, StoreError> {
    let key_id = tessera_crypto::sealed_key_id(sealed)
        .map_err(crypto(format!("decrypting for {}", aad.description())))?;
    let dk = data_key(c, keyring, org_id, org, Some(key_id)).await?;
    tessera_crypto::open(&dk, sealed, aad)
        .map_err(crypto(format!("decrypting for {}", aad.description())))
}

/// What [`Store::rotate_master_key`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterKeyRotation {
    /// The id of the master key that now wraps every data key.
    pub master_key_id: String,
    /// How many data keys were re-wrapped.
    pub rewrapped: u64,
}

impl Store {
    /// The organization's id, from the cache when known (organizations are never renamed
    /// or deleted).
    pub(crate) async fn cached_org_id(&self, org: &OrgName) -> Result<i64, StoreError> {
        if let Some(id) = self.caches.org_ids.get(org.as_str()) {
            return Ok(id);
        }
        let mut c = &self.pool;
        let id = org_id(&mut c, org).await?;
        self.caches.org_ids.insert(org.as_str().to_owned(), id);
        Ok(id)
    }

    /// Data key `key_id` of an organization (its current one when `None`), unwrapped, from
    /// the cache when known (see `cache` for why this cannot go stale).
    async fn cached_data_key(
        &self,
        org_id: i64,
        org: &OrgName,
        key_id: Option<u32>,
    ) -> Result<Arc<DataKey>, StoreError> {
        let key_id = key_id.or_else(|| self.caches.current_key.get(&org_id));
        if let Some(k) = key_id {
            if let Some(dk) = self.caches.data_keys.get(&(org_id, k)) {
                return Ok(dk);
            }
        }
        let mut c = &self.pool;
        let dk = Arc::new(data_key(&mut c, &self.keyring, org_id, org, key_id).await?);
        if key_id.is_none() {
            self.caches.current_key.insert(org_id, dk.id());
        }
        self.caches.data_keys.insert((org_id, dk.id()), dk.clone());
        Ok(dk)
    }

    /// [`seal`] with the cached current data key.
    pub(crate) async fn seal_cached(
        &self,
        org_id: i64,
        org: &OrgName,
        plaintext: &[u8],
        aad: &Aad,
    ) -> Result<Vec<u8>, StoreError> {
        let dk = self.cached_data_key(org_id, org, None).await?;
        tessera_crypto::seal(&dk, plaintext, aad)
            .map_err(crypto(format!("sealing for {}", aad.description())))
    }

    /// [`open`] with the cached data key that sealed the value.
    pub(crate) async fn open_cached(
        &self,
        org_id: i64,
        org: &OrgName,
        sealed: &[u8],
        aad: &Aad,
    ) -> Result<tessera_crypto::SecretBytes, StoreError> {
        let key_id = tessera_crypto::sealed_key_id(sealed)
            .map_err(crypto(format!("decrypting for {}", aad.description())))?;
        let dk = self.cached_data_key(org_id, org, Some(key_id)).await?;
        tessera_crypto::open(&dk, sealed, aad)
            .map_err(crypto(format!("decrypting for {}", aad.description())))
    }

    /// Seals a secret of environment `env` for storage in its definition and returns the
    /// text that goes in `fn::secret: {ciphertext: …}`. Needs no grant: sealing reveals nothing.
    pub async fn encrypt_secret(
        &self,
        org: &OrgName,
        env: &QualifiedEnv,
        plaintext: &SecretString,
    ) -> Result<String, StoreError> {
        let id = self.cached_org_id(org).await?;
        let aad = Aad::environment(org.as_str(), &env.to_string());
        let sealed = self
            .seal_cached(id, org, plaintext.expose().as_bytes(), &aad)
            .await?;
        Ok(tessera_crypto::to_text(&sealed))
    }

    /// Decrypts a secret of environment `env`. The `grant` must cover `org`/`env`; a
    /// ciphertext that belongs to another environment or organization fails cleanly.
    pub async fn decrypt_secret(
        &self,
        grant: &OpenGrant,
        org: &OrgName,
        env: &QualifiedEnv,
        ciphertext: &str,
    ) -> Result<SecretString, StoreError> {
        if !grant.covers(org, env) {
            return Err(StoreError::NotGranted {
                org: org.to_string(),
                env: env.to_string(),
            });
        }
        let context = || format!("decrypting a secret of {org}/{env}");
        let sealed = tessera_crypto::from_text(ciphertext).map_err(crypto(context()))?;
        let id = self.cached_org_id(org).await?;
        let aad = Aad::environment(org.as_str(), &env.to_string());
        let plain = self.open_cached(id, org, &sealed, &aad).await?;
        plain.into_secret_string().map_err(crypto(context()))
    }

    /// Starts a new data key for the organization: new values are sealed with it, older
    /// keys stay to open older values. Returns the new key id.
    pub async fn rotate_data_key(
        &self,
        org: &OrgName,
        ctx: &AuditContext,
    ) -> Result<u32, StoreError> {
        let mut tx = self.pool.begin_write().await?;
        let id = org_id(&mut tx, org).await?;
        let row = tx
            .fetch_one(
                "SELECT COALESCE(MAX(key_id), 0) FROM org_data_keys WHERE org_id = $1",
                args![id],
                "reading data key ids",
            )
            .await?;
        let next = u32::try_from(row.i64(0)? + 1)
            .map_err(|_| StoreError::Corrupt("data key id".into()))?;
        create_data_key(&mut tx, &self.keyring, id, org, next).await?;
        let rec = AuditRecord::new(org, "organization.data_key.rotate")
            .details(serde_json::json!({ "dataKeyId": next }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await?;
        self.caches.current_key.invalidate(&id);
        Ok(next)
    }

    /// Makes `new` the master key and re-wraps every data key under it, without downtime:
    /// the previous key stays accepted while data keys are re-wrapped (one transaction per
    /// organization), so reads keep working throughout. Other replicas must be given the
    /// new key (with the old one as previous) before this runs.
    pub async fn rotate_master_key(
        &self,
        new: MasterKey,
        ctx: &AuditContext,
    ) -> Result<MasterKeyRotation, StoreError> {
        let new_id = new.id().as_str().to_owned();
        {
            let mut ring = self.keyring.write().map_err(|_| keyring_poisoned())?;
            ring.rotate(new);
        }
        let orgs = self
            .pool
            .fetch_all(
                "SELECT id, name FROM orgs ORDER BY id",
                args![],
                "listing organizations",
            )
            .await?;
        let mut rewrapped = 0u64;
        for o in orgs {
            let (oid, name) = (o.i64(0)?, o.text(1)?);
            let org: OrgName = name
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("organization name {name:?}")))?;
            let mut tx = self.pool.begin_write().await?;
            let rows = tx
                .fetch_all(
                    "SELECT key_id FROM org_data_keys WHERE org_id = $1 AND master_key_id <> $2",
                    args![oid, new_id.as_str()],
                    "listing data keys to re-wrap",
                )
                .await?;
            if rows.is_empty() {
                continue;
            }
            for r in &rows {
                let kid = u32::try_from(r.i64(0)?)
                    .map_err(|_| StoreError::Corrupt("data key id".into()))?;
                let dk = data_key(&mut tx, &self.keyring, oid, &org, Some(kid)).await?;
                let wrapped = {
                    let ring = self.keyring.read().map_err(|_| keyring_poisoned())?;
                    ring.current()
                        .wrap(org.as_str(), &dk)
                        .map_err(crypto(format!(
                            "re-wrapping data key {kid} of organization {org}"
                        )))?
                };
                tx.execute(
                    "UPDATE org_data_keys SET master_key_id = $1, wrapped = $2 WHERE org_id = $3 AND key_id = $4",
                    args![wrapped.master_key_id.as_str(), &wrapped.bytes, oid, kid as i64],
                    "re-wrapping a data key",
                )
                .await?;
            }
            rewrapped += rows.len() as u64;
            let rec = AuditRecord::new(&org, "organization.master_key.rotate")
                .details(serde_json::json!({ "masterKeyId": new_id, "dataKeys": rows.len() }));
            audit::append(&mut tx, ctx, &rec).await?;
            tx.commit().await?;
        }
        Ok(MasterKeyRotation {
            master_key_id: new_id,
            rewrapped,
        })
    }

    /// The master key ids that still wrap at least one data key: once only the current id
    /// remains, the previous master key may be retired.
    pub async fn master_key_ids_in_use(&self) -> Result<Vec<String>, StoreError> {
        self.pool
            .fetch_all(
                "SELECT DISTINCT master_key_id FROM org_data_keys ORDER BY master_key_id",
                args![],
                "listing master key ids",
            )
            .await?
            .iter()
            .map(|r| r.text(0))
            .collect()
    }
}
