//! The CI issuers an organization trusts for token exchange (admins only): register, list,
//! read, change policies, remove. The policies are checked here, at registration, so the
//! exchange only ever reads valid ones.

use serde_json::{json, Value as Json};
use tessera_store::oidc::TrustedIssuer;
use tessera_types::OrgName;

use super::Service;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::exchange::policy::parse_policies;
use crate::wire;

/// What `POST oidc/issuers` takes.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewIssuer {
    pub(crate) name: String,
    pub(crate) url: String,
    #[serde(default = "empty_list")]
    pub(crate) policies: Json,
}

/// What `PATCH oidc/issuers/{id}` takes.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssuerUpdate {
    pub(crate) policies: Json,
}

fn empty_list() -> Json {
    json!([])
}

fn issuer_json(i: &TrustedIssuer) -> Json {
    json!({
        "id": i.id,
        "name": i.name,
        "url": i.url,
        "issuer": i.url,
        "policies": i.policies,
        "created": wire::timestamp(i.created_at),
        "modified": wire::timestamp(i.modified_at),
    })
}

/// Checks an issuer URL: `https://HOST[/PATH]` without query or fragment; with `--dev`, also
/// `http://` on a loopback host (for a CI issuer running beside the server in tests).
pub(crate) fn check_issuer_url(url: &str, dev: bool) -> Result<(), ApiError> {
    let bad = |why: &str| ApiError::BadRequest(format!("invalid issuer url {url:?}: {why}"));
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if parsed.query().is_some() || parsed.fragment().is_some() || !parsed.username().is_empty() {
        return Err(bad("no query, fragment or credentials allowed"));
    }
    let loopback = matches!(
        parsed.host_str(),
        Some("127.0.0.1") | Some("localhost") | Some("[::1]")
    );
    match parsed.scheme() {
        "https" if parsed.host_str().is_some() => Ok(()),
        "http" if dev && loopback => Ok(()),
        "http" if loopback => Err(bad("http://127.0.0.1 issuers are accepted only with --dev")),
        _ => Err(bad("an issuer must be an https:// URL")),
    }
}

fn check_policies(policies: &Json) -> Result<(), ApiError> {
    parse_policies(policies)
        .map(|_| ())
        .map_err(|e| ApiError::BadRequest(format!("invalid policies: {e}")))
}

impl Service {
    /// `GET oidc/issuers`.
    pub(crate) async fn issuers(&self, caller: &Caller, org: &OrgName) -> Result<Json, ApiError> {
        self.require_scope(caller, org, None, "oidc.issuer.list")
            .await?;
        let list = self.store.list_issuers(org).await?;
        Ok(json!({ "oidcIssuers": list.iter().map(issuer_json).collect::<Vec<_>>() }))
    }

    /// `GET oidc/issuers/{id}`.
    pub(crate) async fn issuer_by_id(
        &self,
        caller: &Caller,
        org: &OrgName,
        id: &str,
    ) -> Result<Json, ApiError> {
        self.require_scope(caller, org, None, "oidc.issuer.read")
            .await?;
        self.find_issuer(org, id).await
    }

    async fn find_issuer(&self, org: &OrgName, id: &str) -> Result<Json, ApiError> {
        self.store
            .list_issuers(org)
            .await?
            .iter()
            .find(|i| i.id == id)
            .map(issuer_json)
            .ok_or_else(|| ApiError::NotFound(format!("issuer {id} not found")))
    }

    /// `POST oidc/issuers`.
    pub(crate) async fn create_issuer(
        &self,
        caller: &Caller,
        org: &OrgName,
        new: NewIssuer,
    ) -> Result<Json, ApiError> {
        self.require_scope(caller, org, None, "oidc.issuer.create")
            .await?;
        let name = new.name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(ApiError::BadRequest(
                "an issuer needs a name of 1 to 100 characters".into(),
            ));
        }
        check_issuer_url(&new.url, self.dev)?;
        check_policies(&new.policies)?;
        let i = self
            .store
            .create_issuer(org, name, &new.url, &new.policies, &caller.audit)
            .await?;
        Ok(issuer_json(&i))
    }

    /// `PATCH oidc/issuers/{id}`: replaces the policies.
    pub(crate) async fn update_issuer(
        &self,
        caller: &Caller,
        org: &OrgName,
        id: &str,
        update: IssuerUpdate,
    ) -> Result<Json, ApiError> {
        self.require_scope(caller, org, None, "oidc.issuer.update")
            .await?;
        check_policies(&update.policies)?;
        self.store
            .update_issuer_policies(org, id, &update.policies, &caller.audit)
            .await?;
        self.find_issuer(org, id).await
    }

    /// `DELETE oidc/issuers/{id}`.
    pub(crate) async fn delete_issuer(
        &self,
        caller: &Caller,
        org: &OrgName,
        id: &str,
    ) -> Result<(), ApiError> {
        self.require_scope(caller, org, None, "oidc.issuer.delete")
            .await?;
        Ok(self.store.delete_issuer(org, id, &caller.audit).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::check_issuer_url;

    #[test]
    fn issuers_are_https_or_loopback_in_dev() {
        assert!(check_issuer_url("https://token.actions.githubusercontent.com", false).is_ok());
        assert!(check_issuer_url("https://gitlab.example.com", false).is_ok());
        assert!(check_issuer_url("http://127.0.0.1:9999", false).is_err());
        assert!(check_issuer_url("http://127.0.0.1:9999", true).is_ok());
        assert!(check_issuer_url("http://ci.example.com", true).is_err());
        assert!(check_issuer_url("https://x.example.com/?a=b", false).is_err());
        assert!(check_issuer_url("ftp://x.example.com", false).is_err());
        assert!(check_issuer_url("not a url", false).is_err());
    }
}
