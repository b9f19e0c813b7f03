//! Permission checks for everything except Open (which the store's `authorize_open_for`
//! decides, minting the grant), and the audit entries of denied attempts.
//!
//! A caller without any permission on an environment is told it does not exist (404); a
//! caller who can see it but lacks the level asked for gets 403. Every denial is audited; if
//! that audit entry cannot be written the answer is 503.

use std::collections::BTreeMap;
use std::sync::Arc;

use tessera_store::access::{effective_permission, AccessFacts, EffectivePermission, EnvFacts};
use tessera_store::audit::AuditRecord;
use tessera_types::{OrgName, Permission, QualifiedEnv, Scope};

use super::Service;
use crate::auth::Caller;
use crate::error::ApiError;

impl Service {
    /// Writes the audit entry of a denied attempt; the error to answer with is `answer`,
    /// unless the entry cannot be written.
    pub(crate) async fn denied(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: Option<&QualifiedEnv>,
        event: &str,
        details: serde_json::Value,
        answer: ApiError,
    ) -> ApiError {
        let mut rec = AuditRecord::new(org, event).denied().details(details);
        if let Some(env) = env {
            rec = rec.env(env);
        }
        match self.store.record_audit(&caller.audit, &rec).await {
            Ok(_) => answer,
            Err(e) => ApiError::Unavailable(e),
        }
    }

    /// The caller's permission on `env`, which must be at least `need`; `event` names the
    /// attempted action in the audit entry of a denial.
    pub(crate) async fn require(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: &QualifiedEnv,
        need: Permission,
        event: &str,
    ) -> Result<EffectivePermission, ApiError> {
        caller.check_org(org)?;
        let eff = self
            .store
            .effective_permission_at(caller.at, &caller.principal, org, env)
            .await?;
        if eff.permission >= need {
            return Ok(eff);
        }
        let answer = if eff.permission == Permission::None {
            ApiError::NotFound(format!("environment {org}/{env} not found"))
        } else {
            ApiError::Forbidden(format!(
                "{need} permission is required on {org}/{env}; you have {}",
                eff.permission
            ))
        };
        let details = serde_json::json!({
            "required": need.as_str(), "permission": eff.permission.as_str(),
        });
        Err(self
            .denied(caller, org, Some(env), event, details, answer)
            .await)
    }

    /// The facts deciding the caller's permissions in `org`.
    pub(crate) async fn facts(
        &self,
        caller: &Caller,
        org: &OrgName,
    ) -> Result<Arc<AccessFacts>, ApiError> {
        caller.check_org(org)?;
        Ok(self
            .store
            .access_facts_at(caller.at, &caller.principal, org)
            .await?)
    }

    /// Whether the caller may create `env` (write permission as if it existed, untagged).
    pub(crate) async fn require_create(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: &QualifiedEnv,
    ) -> Result<(), ApiError> {
        let facts = self.facts(caller, org).await?;
        let tags = BTreeMap::new();
        let p = effective_permission(
            &facts,
            &EnvFacts {
                name: env,
                tags: &tags,
            },
        )
        .permission;
        if p >= Permission::Write {
            return Ok(());
        }
        let answer = ApiError::Forbidden(format!(
            "write permission is required to create {org}/{env}"
        ));
        let details = serde_json::json!({ "required": "write", "permission": p.as_str() });
        Err(self
            .denied(
                caller,
                org,
                Some(env),
                "environment.create",
                details,
                answer,
            )
            .await)
    }

    /// Organization administration: admins, or callers whose roles carry `scope`.
    pub(crate) async fn require_scope(
        &self,
        caller: &Caller,
        org: &OrgName,
        scope: Option<Scope>,
        event: &str,
    ) -> Result<Arc<AccessFacts>, ApiError> {
        let facts = self.facts(caller, org).await?;
        let allowed =
            facts.admin || scope.is_some_and(|s| facts.roles.iter().any(|r| r.scopes.contains(&s)));
        if allowed {
            return Ok(facts);
        }
        let needed = match scope {
            Some(s) => format!("organization admin or the {s} scope"),
            None => "organization admin".to_owned(),
        };
        let answer = ApiError::Forbidden(format!("{needed} is required"));
        let details =
            serde_json::json!({ "required": scope.map(|s| s.as_str()).unwrap_or("admin") });
        Err(self.denied(caller, org, None, event, details, answer).await)
    }
}
