//! OIDC: the signing keys Tessera mints cloud-login tokens with (private part sealed with
//! the organization's data key), and the CI issuers an organization trusts, with their
//! policies kept as JSON for the server to interpret.

use tessera_crypto::{Aad, SecretBytes};
use tessera_types::OrgName;

use crate::access::OpenGrant;
use crate::audit::{self, AuditContext, AuditRecord};
use crate::db::{args, is_unique_violation, Row};
use crate::orgs::org_id;
use crate::{keys, new_id, now, Store, StoreError, UnixTime};

/// A signing key's public part.
#[derive(Debug, Clone, PartialEq)]
pub struct SigningKey {
    /// The `kid` header value.
    pub kid: String,
    /// The organization whose tokens it signs.
    pub org: OrgName,
    /// `RS256` or `ES256`.
    pub algorithm: String,
    /// The public key as a JWK.
    pub public_jwk: serde_json::Value,
    /// When it was created.
    pub created_at: UnixTime,
    /// When it stopped signing (it stays published for verification until removed).
    pub retired_at: Option<UnixTime>,
}

/// An OIDC issuer an organization trusts for token exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustedIssuer {
    /// Its id.
    pub id: String,
    /// The organization.
    pub org: OrgName,
    /// Its name.
    pub name: String,
    /// The issuer URL (`iss`).
    pub url: String,
    /// The policies, as given.
    pub policies: serde_json::Value,
    /// When it was created.
    pub created_at: UnixTime,
    /// When it last changed.
    pub modified_at: UnixTime,
}

fn signing_aad(org: &OrgName, kid: &str) -> Aad {
    Aad::purpose(org.as_str(), &format!("oidc-signing-key:{kid}"))
}

fn parse_org(s: String) -> Result<OrgName, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("organization name {s:?}")))
}

fn json(s: &str, what: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn decode_key(r: &Row) -> Result<SigningKey, StoreError> {
    Ok(SigningKey {
        kid: r.text(0)?,
        org: parse_org(r.text(1)?)?,
        algorithm: r.text(2)?,
        public_jwk: json(&r.text(3)?, "signing key JWK")?,
        created_at: r.i64(4)?,
        retired_at: r.opt_i64(5)?,
    })
}

fn decode_issuer(r: &Row) -> Result<TrustedIssuer, StoreError> {
    Ok(TrustedIssuer {
        id: r.text(0)?,
        org: parse_org(r.text(1)?)?,
        name: r.text(2)?,
        url: r.text(3)?,
        policies: json(&r.text(4)?, "issuer policies")?,
        created_at: r.i64(5)?,
        modified_at: r.i64(6)?,
    })
}

const KEY_COLUMNS: &str = "k.kid, o.name, k.algorithm, k.public_jwk, k.created_at, k.retired_at";
const ISSUER_COLUMNS: &str = "i.id, o.name, i.name, i.url, i.policies, i.created_at, i.modified_at";

impl Store {
    /// Stores a signing key; the private part (e.g. PKCS#8 DER) is sealed.
    pub async fn create_signing_key(
        &self,
        org: &OrgName,
        kid: &str,
        algorithm: &str,
        public_jwk: &serde_json::Value,
        private_key: &SecretBytes,
        ctx: &AuditContext,
    ) -> Result<SigningKey, StoreError> {
        let mut tx = self.pool.begin_write().await?;
        let oid = org_id(&mut tx, org).await?;
        let sealed = keys::seal(
            &mut tx,
            &self.keyring,
            oid,
            org,
            private_key.expose(),
            &signing_aad(org, kid),
        )
        .await?;
        let t = now();
        tx.execute(
            "INSERT INTO oidc_signing_keys (kid, org_id, algorithm, public_jwk, private_sealed, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            args![kid, oid, algorithm, &public_jwk.to_string(), &sealed, t],
            "storing a signing key",
        )
        .await
        .map_err(|e| if is_unique_violation(&e) { StoreError::AlreadyExists(format!("signing key {kid:?}")) } else { e })?;
        let rec = AuditRecord::new(org, "oidc.signing_key.create")
            .details(serde_json::json!({ "kid": kid, "algorithm": algorithm }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await?;
        Ok(SigningKey {
            kid: kid.to_owned(),
            org: org.clone(),
            algorithm: algorithm.to_owned(),
            public_jwk: public_jwk.clone(),
            created_at: t,
            retired_at: None,
        })
    }

    /// Signing keys of every organization (for the JWKS document), newest first.
    pub async fn list_signing_keys(
        &self,
        include_retired: bool,
    ) -> Result<Vec<SigningKey>, StoreError> {
        self.pool
            .fetch_all(
                &format!(
                    "SELECT {KEY_COLUMNS} FROM oidc_signing_keys k JOIN orgs o ON o.id = k.org_id \
                     WHERE $1 = 1 OR k.retired_at IS NULL ORDER BY k.created_at DESC, k.kid"
                ),
                args![include_retired],
                "listing signing keys",
            )
            .await?
            .iter()
            .map(decode_key)
            .collect()
    }

    /// The private part of a signing key of the grant's organization, to sign a token
    /// during an open.
    pub async fn signing_key_private(
        &self,
        grant: &OpenGrant,
        kid: &str,
    ) -> Result<SecretBytes, StoreError> {
        let org = grant.org();
        let mut c = &self.pool;
        let oid = org_id(&mut c, org).await?;
        let row = self
            .pool
            .fetch_optional(
                "SELECT private_sealed FROM oidc_signing_keys WHERE org_id = $1 AND kid = $2",
                args![oid, kid],
                "reading a signing key",
            )
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!("signing key {kid:?} of organization {org}"))
            })?;
        keys::open(
            &mut c,
            &self.keyring,
            oid,
            org,
            &row.bytes(0)?,
            &signing_aad(org, kid),
        )
        .await
    }

    /// Stops a signing key from signing.
    pub async fn retire_signing_key(
        &self,
        org: &OrgName,
        kid: &str,
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_write().await?;
        let oid = org_id(&mut tx, org).await?;
        let n = tx
            .execute(
                "UPDATE oidc_signing_keys SET retired_at = $1 WHERE org_id = $2 AND kid = $3 AND retired_at IS NULL",
                args![now(), oid, kid],
                "retiring a signing key",
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "active signing key {kid:?} of organization {org}"
            )));
        }
        let rec = AuditRecord::new(org, "oidc.signing_key.retire")
            .details(serde_json::json!({ "kid": kid }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await
    }

    /// Trusts an issuer.
    pub async fn create_issuer(
        &self,
        org: &OrgName,
        name: &str,
        url: &str,
        policies: &serde_json::Value,
        ctx: &AuditContext,
    ) -> Result<TrustedIssuer, StoreError> {
        let mut tx = self.pool.begin_write().await?;
        let oid = org_id(&mut tx, org).await?;
        let id = new_id()?;
        let t = now();
        tx.execute(
            "INSERT INTO oidc_issuers (id, org_id, name, url, policies, created_at, modified_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
            args![&id, oid, name, url, &policies.to_string(), t],
            "creating an issuer",
        )
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AlreadyExists(format!("issuer {name:?} of organization {org}"))
            } else {
                e
            }
        })?;
        let rec = AuditRecord::new(org, "oidc.issuer.create")
            .details(serde_json::json!({ "id": id, "name": name, "url": url }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await?;
        Ok(TrustedIssuer {
            id,
            org: org.clone(),
            name: name.to_owned(),
            url: url.to_owned(),
            policies: policies.clone(),
            created_at: t,
            modified_at: t,
        })
    }

    /// Replaces an issuer's policies.
    pub async fn update_issuer_policies(
        &self,
        org: &OrgName,
        id: &str,
        policies: &serde_json::Value,
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_write().await?;
        let oid = org_id(&mut tx, org).await?;
        let n = tx
            .execute(
                "UPDATE oidc_issuers SET policies = $1, modified_at = $2 WHERE org_id = $3 AND id = $4",
                args![&policies.to_string(), now(), oid, id],
                "updating an issuer",
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "issuer {id:?} of organization {org}"
            )));
        }
        let rec =
            AuditRecord::new(org, "oidc.issuer.update").details(serde_json::json!({ "id": id }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await
    }

    /// Stops trusting an issuer.
    pub async fn delete_issuer(
        &self,
        org: &OrgName,
        id: &str,
        ctx: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_write().await?;
        let oid = org_id(&mut tx, org).await?;
        let n = tx
            .execute(
                "DELETE FROM oidc_issuers WHERE org_id = $1 AND id = $2",
                args![oid, id],
                "deleting an issuer",
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "issuer {id:?} of organization {org}"
            )));
        }
        let rec =
            AuditRecord::new(org, "oidc.issuer.delete").details(serde_json::json!({ "id": id }));
        audit::append(&mut tx, ctx, &rec).await?;
        tx.commit().await
    }

    /// The issuers an organization trusts.
    pub async fn list_issuers(&self, org: &OrgName) -> Result<Vec<TrustedIssuer>, StoreError> {
        self.pool
            .fetch_all(
                &format!("SELECT {ISSUER_COLUMNS} FROM oidc_issuers i JOIN orgs o ON o.id = i.org_id WHERE o.name = $1 ORDER BY i.name"),
                args![org.as_str()],
                "listing issuers",
            )
            .await?
            .iter()
            .map(decode_issuer)
            .collect()
    }

    /// The registrations of an issuer URL in an organization (token exchange looks the
    /// presented token's `iss` up here, so an unregistered issuer is never contacted).
    pub async fn issuers_by_url(
        &self,
        org: &OrgName,
        url: &str,
    ) -> Result<Vec<TrustedIssuer>, StoreError> {
        self.pool
            .fetch_all(
                &format!("SELECT {ISSUER_COLUMNS} FROM oidc_issuers i JOIN orgs o ON o.id = i.org_id WHERE o.name = $1 AND i.url = $2 ORDER BY i.name"),
                args![org.as_str(), url],
                "looking up issuers",
            )
            .await?
            .iter()
            .map(decode_issuer)
            .collect()
    }
}
