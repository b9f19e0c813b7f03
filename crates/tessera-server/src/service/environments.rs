//! The ESC environment API: listing, definitions, check, update, open sessions, decrypt,
//! clone, revisions and tags.
//!
//! Reads of definitions and `check` evaluate with [`tessera_lang::check`], which has no
//! decrypter and no providers. `open`, `decrypt` and `clone` first load the whole import
//! closure, then ask the store's Open check for a grant over all of it, and only then build
//! the capability-holding decrypter and providers (see [`crate::open`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value as Json};
use tessera_crypto::SecretBytes;
use tessera_lang::Providers;
use tessera_lang::{EvalContext, Loaded, Parsed};
use tessera_store::access::{
    effective_permission, AccessFacts, EnvFacts, GrantSource, OpenGrant, OpenPurpose, PendingOpen,
};
use tessera_store::access::{AuthorizeError, EffectivePermission};
use tessera_store::{Snapshot, StoreError};
use tessera_types::{OrgName, Permission, QualifiedEnv, Version};

use super::Service;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::open::{
    calls_providers, qualified, GrantedDecrypter, GrantedProviders, NoProviders, UpstreamFailure,
};
use crate::wire::{self, Secrets};

/// The default lifetime of an open session, as ESC's.
const DEFAULT_OPEN_SECONDS: i64 = 2 * 3600;
/// The longest open session anyone may ask for.
const MAX_OPEN_SECONDS: i64 = 7 * 24 * 3600;
/// Environments per page of the list.
const LIST_PAGE: usize = 500;

/// A stored definition and the revision it is.
#[derive(Debug)]
pub(crate) struct Definition {
    /// The YAML, secrets as ciphertext (or plaintext for `decrypt`).
    pub(crate) yaml: String,
    /// Its revision number.
    pub(crate) revision: u64,
}

/// The result of a check: the ESC `CheckEnvironment` body and whether it has errors.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) body: Json,
    pub(crate) has_errors: bool,
}

/// Parses a Go-style duration (`2h`, `1h30m`, `90s`, `1.5h`) into whole seconds.
pub(crate) fn parse_duration(text: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::BadRequest(format!(
            "invalid duration {text:?}: use a number and unit, e.g. 30m, 2h or 1h30m"
        ))
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..n_end].parse().map_err(|_| bad())?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return Err(bad()),
        };
        rest = &rest[u_end..];
        total += n * unit;
    }
    if !(1.0..=MAX_OPEN_SECONDS as f64).contains(&total.ceil()) {
        return Err(ApiError::BadRequest(format!(
            "invalid duration {text:?}: an open session lasts from 1 second to {} hours",
            MAX_OPEN_SECONDS / 3600
        )));
    }
    Ok(total.ceil() as i64)
}

/// One step of a property path such as `a.b[0]["c.d"]`.
enum Step {
    Key(String),
    Index(usize),
}

fn parse_property_path(path: &str) -> Result<Vec<Step>, ApiError> {
    let bad = || ApiError::BadRequest(format!("invalid property path {path:?}"));
    let chars: Vec<char> = path.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' if !steps.is_empty() => i += 1,
            '[' => {
                if chars.get(i + 1) == Some(&'"') {
                    let mut key = String::new();
                    let mut j = i + 2;
                    loop {
                        match chars.get(j) {
                            Some('\\') => {
                                key.push(*chars.get(j + 1).ok_or_else(bad)?);
                                j += 2;
                            }
                            Some('"') => break,
                            Some(c) => {
                                key.push(*c);
                                j += 1;
                            }
                            None => return Err(bad()),
                        }
                    }
                    if chars.get(j + 1) != Some(&']') {
                        return Err(bad());
                    }
                    steps.push(Step::Key(key));
                    i = j + 2;
                } else {
                    let end = chars[i..].iter().position(|c| *c == ']').ok_or_else(bad)? + i;
                    let n: String = chars[i + 1..end].iter().collect();
                    steps.push(Step::Index(n.parse().map_err(|_| bad())?));
                    i = end + 1;
                }
            }
            _ => {
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                if start == i {
                    return Err(bad());
                }
                steps.push(Step::Key(chars[start..i].iter().collect()));
            }
        }
    }
    if steps.is_empty() {
        return Err(bad());
    }
    Ok(steps)
}

/// What reading an open session answers.
pub(crate) enum SessionRead {
    /// The whole session: the JSON body stored when it was opened.
    Whole(SecretBytes),
    /// One property's value.
    Property(Json),
}

/// How an open's audit entry gets written (see `PendingOpen`).
enum OpenAudit {
    /// Already committed, before any provider call.
    Written(OpenGrant),
    /// To be committed with the session.
    WithSession(Box<PendingOpen>),
}

impl OpenAudit {
    fn grant(&self) -> &OpenGrant {
        match self {
            OpenAudit::Written(grant) => grant,
            OpenAudit::WithSession(pending) => pending.grant(),
        }
    }
}

fn not_found(org: &OrgName, env: &QualifiedEnv) -> ApiError {
    ApiError::NotFound(format!("environment {org}/{env} not found"))
}

/// The session lifetime: `asked`, capped by `maxOpenDuration` when Open comes only from
/// team grants that set one (the most generous of those caps applies).
async fn session_ttl(
    service: &Service,
    org: &OrgName,
    env: &QualifiedEnv,
    eff: &EffectivePermission,
    asked: i64,
) -> Result<i64, ApiError> {
    let openers: Vec<_> = eff
        .grants
        .iter()
        .filter(|g| g.permission >= Permission::Open)
        .collect();
    if openers.is_empty() || openers.iter().any(|g| g.source != GrantSource::Team) {
        return Ok(asked);
    }
    let mut cap: Option<i64> = Some(0);
    for g in openers {
        let grants = service.store.list_team_grants(org, &g.name).await?;
        let max = grants
            .iter()
            .find(|t| &t.env == env)
            .and_then(|t| t.max_open_duration_seconds);
        cap = match (cap, max) {
            (Some(c), Some(m)) => Some(c.max(m)),
            _ => None,
        };
    }
    Ok(match cap {
        Some(c) if c > 0 => asked.min(c),
        _ => asked,
    })
}

impl Service {
    fn eval_context(&self, caller: &Caller, org: &OrgName) -> EvalContext {
        let mut ctx = EvalContext::default();
        // Both keys are valid dotted keys, so `set` cannot fail here.
        let _ = ctx.set("pulumi.organization.login", org.as_str());
        if let Some(login) = caller.login() {
            let _ = ctx.set("pulumi.user.login", login);
        }
        ctx
    }

    /// Loads `root` (whose text is `root_text` when given, else the stored `version`) and
    /// everything it imports that the caller can read, as of `at`; the others are reported
    /// by the evaluator as not found.
    async fn load(
        &self,
        at: Snapshot,
        org: &OrgName,
        facts: &AccessFacts,
        root: &str,
        root_text: Option<&str>,
        version: Option<&Version>,
    ) -> Loaded {
        let fetch = |name: String| async move {
            if name == root {
                if let Some(text) = root_text {
                    return Ok(Arc::new(Parsed::new(&name, text, &self.limits)));
                }
            }
            let missing = || format!("environment {name:?} not found");
            let Ok(r) = name.parse::<tessera_types::EnvRef>() else {
                return Err(missing());
            };
            let version = if name == root {
                version.cloned()
            } else {
                r.version.clone()
            };
            let unreadable = |e: StoreError| {
                tracing::error!(error = %e, "reading an environment for evaluation");
                format!("environment {name:?} could not be read")
            };
            // One query finds the environment, its tags (for the permission) and its head.
            let handle = match self.store.environment_handle_at(at, org, &r.env).await {
                Ok(h) => h,
                Err(StoreError::NotFound(_)) => return Err(missing()),
                Err(e) => return Err(unreadable(e)),
            };
            let tags = &handle.environment.tags;
            let permission = effective_permission(facts, &EnvFacts { name: &r.env, tags });
            if permission.permission < Permission::Read {
                return Err(missing());
            }
            let key = match self
                .store
                .resolve_version_in(&handle, version.as_ref())
                .await
            {
                Ok(k) => k,
                Err(StoreError::NotFound(what)) => return Err(format!("{what} not found")),
                Err(e) => return Err(unreadable(e)),
            };
            // Revisions are immutable: a parse under this name is valid forever.
            let cache_key = (key, name.clone());
            if let Some(parsed) = self.parsed.get(&cache_key) {
                return Ok(parsed);
            }
            match self.store.revision_at(key).await {
                Ok(rev) => {
                    let parsed = Arc::new(Parsed::new(&name, &rev.yaml, &self.limits));
                    self.parsed.insert(cache_key, parsed.clone());
                    Ok(parsed)
                }
                Err(StoreError::NotFound(what)) => Err(format!("{what} not found")),
                Err(e) => Err(unreadable(e)),
            }
        };
        tessera_lang::load_closure_parsed(root, &self.limits, fetch).await
    }

    /// `GET /api/esc/environments/{org}`: the environments the caller can read.
    pub(crate) async fn list_environments(
        &self,
        caller: &Caller,
        org: &OrgName,
        continuation: Option<&str>,
    ) -> Result<Json, ApiError> {
        let facts = self.facts(caller, org).await?;
        let mut all = self.store.list_environments(org).await?;
        // Byte order of (project, name), whatever the database's collation: the
        // continuation token is the last (project, name) of the previous page.
        all.sort_by(|a, b| {
            (a.name.project.as_str(), a.name.env.as_str())
                .cmp(&(b.name.project.as_str(), b.name.env.as_str()))
        });
        let after = continuation.map(|c| c.split_once('/').unwrap_or((c, "")));
        let mut page = Vec::new();
        let mut next = String::new();
        for e in all {
            let key = (e.name.project.as_str(), e.name.env.as_str());
            if after.is_some_and(|a| key <= a) {
                continue;
            }
            let p = tessera_store::access::effective_permission(
                &facts,
                &tessera_store::access::EnvFacts {
                    name: &e.name,
                    tags: &e.tags,
                },
            );
            if p.permission < Permission::Read {
                continue;
            }
            if page.len() == LIST_PAGE {
                if let Some(Json::Object(last)) = page.last() {
                    next = format!(
                        "{}/{}",
                        last["project"].as_str().unwrap_or_default(),
                        last["name"].as_str().unwrap_or_default()
                    );
                }
                break;
            }
            page.push(json!({
                "organization": org.as_str(),
                "project": e.name.project.as_str(),
                "name": e.name.env.as_str(),
                "created": wire::timestamp(e.created_at),
                "modified": wire::timestamp(e.modified_at),
                "tags": e.tags,
            }));
        }
        Ok(json!({ "environments": page, "nextToken": next }))
    }

    /// `POST /api/esc/environments/{org}`: a new, empty environment.
    pub(crate) async fn create_environment(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: &QualifiedEnv,
    ) -> Result<(), ApiError> {
        self.require_create(caller, org, env).await?;
        self.store
            .create_environment(org, env, "", &caller.audit)
            .await?;
        Ok(())
    }

    /// A definition as stored (secrets as ciphertext).
    pub(crate) async fn definition(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: &QualifiedEnv,
        version: Option<&Version>,
    ) -> Result<Definition, ApiError> {
        self.require(caller, org, env, Permission::Read, "environment.read")
            .await?;
        let rev = self.store.revision(org, env, version).await?;
        Ok(Definition {
            yaml: rev.yaml,
            revision: rev.number,
        })
    }

    /// The newest revision number (for `HEAD` and ETags).
    pub(crate) async fn latest_revision(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: &QualifiedEnv,
    ) -> Result<u64, ApiError> {
        self.require(caller, org, env, Permission::Read, "environment.read")
            .await?;
        Ok(self.store.environment(org, env).await?.latest_revision)
    }

    /// `PATCH`: checks the new definition (nothing is saved if it has errors), seals its
    /// plaintext secrets, and saves it as the next revision. With `base`, a definition that
    /// moved on since is a conflict.
    pub(crate) async fn update(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: &QualifiedEnv,
        yaml: &str,
        base: Option<u64>,
    ) -> Result<u64, ApiError> {
        self.require(caller, org, env, Permission::Write, "environment.update")
            .await?;
        let checked = self.evaluate_check(caller, org, Some(env), yaml).await?;
        if checked.has_errors {
            let diagnostics =
                serde_json::from_value(checked.body["diagnostics"].clone()).unwrap_or_default();
            return Err(ApiError::Diagnostics {
                message: "the environment definition has errors; nothing was saved".into(),
                diagnostics,
            });
        }
        let sealed = self.seal_secrets(org, env, yaml).await?;
        Ok(self
            .store
            .save_revision(org, env, &sealed, base, &caller.audit)
            .await?)
    }

    /// `DELETE`: needs admin on the environment.
    pub(crate) async fn delete(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: &QualifiedEnv,
    ) -> Result<(), ApiError> {
        self.require(caller, org, env, Permission::Admin, "environment.delete")
            .await?;
        self.store
            .delete_environment(org, env, &caller.audit)
            .await?;
        Ok(())
    }

    /// Evaluates `yaml` as `env` (or as an anonymous document) without decrypting or calling
    /// providers; imports the caller cannot read are reported as not found.
    async fn evaluate_check(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: Option<&QualifiedEnv>,
        yaml: &str,
    ) -> Result<Checked, ApiError> {
        let facts = self.facts(caller, org).await?;
        let root = env.map_or_else(|| "<yaml>".to_owned(), |e| e.to_string());
        let loaded = self
            .load(caller.at, org, &facts, &root, Some(yaml), None)
            .await;
        let ctx = self.eval_context(caller, org);
        let eval = tessera_lang::check(&loaded, &root, &ctx, &self.limits);
        let has_errors = eval.has_errors();
        let mut body = Map::new();
        body.insert(
            "properties".into(),
            Json::Object(wire::properties(eval.value.as_ref(), Secrets::Redact)),
        );
        if !eval.diagnostics.is_empty() {
            body.insert(
                "diagnostics".into(),
                serde_json::to_value(wire::diagnostics(&eval.diagnostics)).unwrap_or_default(),
            );
        }
        if has_errors {
            body.insert("code".into(), json!(400));
            body.insert(
                "message".into(),
                json!("the environment definition has errors"),
            );
        }
        Ok(Checked {
            body: Json::Object(body),
            has_errors,
        })
    }

    /// `POST {org}/yaml/check` and `POST {org}/{project}/{env}/check`.
    pub(crate) async fn check(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: Option<&QualifiedEnv>,
        yaml: Option<&str>,
    ) -> Result<Checked, ApiError> {
        match (env, yaml) {
            (Some(env), None) => {
                let def = self.definition(caller, org, env, None).await?;
                self.evaluate_check(caller, org, Some(env), &def.yaml).await
            }
            (Some(env), Some(yaml)) => {
                self.require(caller, org, env, Permission::Read, "environment.read")
                    .await?;
                self.evaluate_check(caller, org, Some(env), yaml).await
            }
            (None, yaml) => {
                self.evaluate_check(caller, org, None, yaml.unwrap_or_default())
                    .await
            }
        }
    }

    /// Maps a refused Open check: the root not visible at all is 404, anything else 403
    /// naming the environment that lacks Open.
    fn open_refused(e: AuthorizeError, org: &OrgName, root: &QualifiedEnv) -> ApiError {
        match e {
            AuthorizeError::Denied {
                env, permission, ..
            } if env == root.to_string() && permission == Permission::None => not_found(org, root),
            e => e.into(),
        }
    }

    /// `GET …/decrypt`: the definition with plaintext secrets. Needs Open.
    pub(crate) async fn decrypt(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: &QualifiedEnv,
        version: Option<&Version>,
    ) -> Result<Definition, ApiError> {
        caller.check_org(org)?;
        let grant = self
            .store
            .authorize_open_at(
                caller.at,
                &caller.principal,
                org,
                std::slice::from_ref(env),
                OpenPurpose::Decrypt,
                &caller.audit,
            )
            .await
            .map_err(|e| Self::open_refused(e, org, env))?;
        let rev = self.store.revision(org, env, version).await?;
        let yaml = self.reveal_secrets(&grant, env, &rev.yaml).await?;
        Ok(Definition {
            yaml,
            revision: rev.number,
        })
    }

    /// `POST …/open`: evaluates with secrets and providers and seals the result into a
    /// session; returns its id.
    pub(crate) async fn open(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: &QualifiedEnv,
        version: Option<&Version>,
        duration: Option<&str>,
    ) -> Result<String, ApiError> {
        let asked = duration.map_or(Ok(DEFAULT_OPEN_SECONDS), parse_duration)?;
        let facts = self.facts(caller, org).await?;
        let root = env.to_string();
        // Imports the caller cannot see at all are left out (the evaluator reports them as
        // not found); everything found must pass the Open check.
        let loaded = self
            .load(caller.at, org, &facts, &root, None, version)
            .await;
        let mut names: Vec<QualifiedEnv> = vec![env.clone()];
        for n in loaded.found() {
            if let Some(q) = qualified(n) {
                if !names.contains(&q) {
                    names.push(q);
                }
            }
        }
        let pending = self
            .store
            .authorize_session_open_at(caller.at, &caller.principal, org, &names, &caller.audit)
            .await
            .map_err(|e| Self::open_refused(e, org, env))?;
        // A provider call acts outside the server, so its audit entry is committed first;
        // otherwise the entry is committed with the session, in one transaction, and
        // nothing leaves the server before that.
        let audit = if calls_providers(&loaded) {
            OpenAudit::Written(self.store.record_open(pending).await?)
        } else {
            OpenAudit::WithSession(Box::new(pending))
        };
        let evaluated = async {
            let grant = audit.grant();
            if !loaded.found().any(|n| n == root) {
                // Open was granted on the root, so it exists: the version asked for does not.
                let _ = self.store.revision(org, env, version).await?;
            }
            let decrypter = GrantedDecrypter::prepare(&self.store, grant, &loaded).await?;
            let providers = match &audit {
                OpenAudit::Written(grant) => Some(
                    GrantedProviders::prepare(grant, &self.providers, &self.issuer, &loaded)
                        .await?,
                ),
                OpenAudit::WithSession(_) => None,
            };
            let ctx = self.eval_context(caller, org);
            let eval = tessera_lang::open(
                &loaded,
                &root,
                &ctx,
                &self.limits,
                &decrypter,
                providers
                    .as_ref()
                    .map_or(&NoProviders as &dyn Providers, |p| p),
                self.open_deadline,
            )
            .await;
            if eval.has_errors() {
                // A cloud that refused or did not answer is not the caller's mistake:
                // 502/504, with the provider's diagnostic (which never quotes a token).
                let diagnostics = wire::diagnostics(&eval.diagnostics);
                let first = eval
                    .diagnostics
                    .iter()
                    .find(|d| d.severity == tessera_lang::Severity::Error)
                    .map(|d| d.message.clone())
                    .unwrap_or_default();
                let upstream = providers.as_ref().and_then(|p| p.upstream_failure());
                return Err(match upstream {
                    Some(UpstreamFailure::Timeout) => ApiError::GatewayTimeout {
                        message: format!("{org}/{env} cannot be opened: {first}"),
                        diagnostics,
                    },
                    Some(UpstreamFailure::Refused) => ApiError::BadGateway {
                        message: format!("{org}/{env} cannot be opened: {first}"),
                        diagnostics,
                    },
                    None => ApiError::Diagnostics {
                        message: format!("{org}/{env} cannot be opened: it has errors"),
                        diagnostics,
                    },
                });
            }
            let bytes = SecretBytes::new(
                serde_json::to_vec(&wire::OpenedProperties(eval.value.as_ref()))
                    .map_err(ApiError::unexpected)?,
            );
            // The facts loaded for this request decide the session cap; reloading them
            // would cost a round of queries for nothing (Open was decided by the grant).
            let handle = self
                .store
                .environment_handle_at(caller.at, org, env)
                .await?;
            let eff = effective_permission(
                &facts,
                &EnvFacts {
                    name: env,
                    tags: &handle.environment.tags,
                },
            );
            let ttl = session_ttl(self, org, env, &eff, asked).await?;
            Ok((bytes, ttl))
        }
        .await;
        let session = match (evaluated, audit) {
            (Ok((bytes, ttl)), OpenAudit::Written(grant)) => {
                self.store.create_session(&grant, env, &bytes, ttl).await?
            }
            (Ok((bytes, ttl)), OpenAudit::WithSession(pending)) => {
                self.store
                    .create_session_recorded(*pending, env, &bytes, ttl)
                    .await?
            }
            (Err(e), OpenAudit::WithSession(pending)) => {
                // The open was allowed and failed: its entry is still written.
                self.store.record_open(*pending).await?;
                return Err(e);
            }
            (Err(e), OpenAudit::Written(_)) => return Err(e),
        };
        Ok(session.id)
    }

    /// `GET …/open/{id}` (whole environment) or with `property` (one value). Needs Open on
    /// the environment, checked again on every read.
    pub(crate) async fn read_session(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: &QualifiedEnv,
        id: &str,
        property: Option<&str>,
    ) -> Result<SessionRead, ApiError> {
        caller.check_org(org)?;
        let steps = property.map(parse_property_path).transpose()?;
        let pending = self
            .store
            .authorize_session_read_at(caller.at, &caller.principal, org, env, &caller.audit)
            .await
            .map_err(|e| Self::open_refused(e, org, env))?;
        let (_, bytes) = self.store.read_session_recorded(pending, env, id).await?;
        let Some(steps) = steps else {
            // Stored as the JSON body the open produced: handed back as it is.
            return Ok(SessionRead::Whole(bytes));
        };
        let body: Json = serde_json::from_slice(bytes.expose()).map_err(ApiError::unexpected)?;
        let missing = || {
            ApiError::NotFound(format!(
                "property {:?} not found in {org}/{env}",
                property.unwrap_or_default()
            ))
        };
        let mut current: Option<&Json> = None;
        for step in &steps {
            let container = match current {
                None => &body["properties"],
                Some(v) => &v["value"],
            };
            current = match step {
                Step::Key(k) => container.as_object().and_then(|m| m.get(k)),
                Step::Index(i) => container.as_array().and_then(|a| a.get(*i)),
            };
            if current.is_none() {
                return Err(missing());
            }
        }
        current
            .cloned()
            .map(SessionRead::Property)
            .ok_or_else(missing)
    }

    /// `POST …/clone`: a new environment with the source's latest definition, its secrets
    /// re-sealed for the copy (ciphertext is bound to its environment). Needs Open on the
    /// source and write permission to create the copy.
    pub(crate) async fn clone_environment(
        &self,
        caller: &Caller,
        org: &OrgName,
        src: &QualifiedEnv,
        dest: &QualifiedEnv,
        spec: &wire::CloneEnvironment,
    ) -> Result<(), ApiError> {
        self.require_create(caller, org, dest).await?;
        let grant = self
            .store
            .authorize_open_at(
                caller.at,
                &caller.principal,
                org,
                std::slice::from_ref(src),
                OpenPurpose::Clone,
                &caller.audit,
            )
            .await
            .map_err(|e| Self::open_refused(e, org, src))?;
        let source = self.store.environment(org, src).await?;
        let rev = self.store.revision(org, src, None).await?;
        let plain = zeroize::Zeroizing::new(self.reveal_secrets(&grant, src, &rev.yaml).await?);
        let sealed = self.seal_secrets(org, dest, &plain).await?;
        drop(plain);
        self.store
            .create_environment(org, dest, &sealed, &caller.audit)
            .await?;
        if spec.preserve_environment_tags {
            for (k, v) in &source.tags {
                self.store
                    .set_environment_tag(org, dest, k, Some(v), &caller.audit)
                    .await?;
            }
        }
        if spec.preserve_access {
            for team in self.store.list_teams(org).await? {
                for g in self.store.list_team_grants(org, &team).await? {
                    if &g.env == src {
                        self.store
                            .set_team_grant(
                                org,
                                &team,
                                dest,
                                g.permission,
                                g.max_open_duration_seconds,
                                &caller.audit,
                            )
                            .await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// `GET …/versions`: revisions newest first.
    pub(crate) async fn revisions(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: &QualifiedEnv,
        before: Option<u64>,
        count: Option<u32>,
    ) -> Result<Json, ApiError> {
        self.require(caller, org, env, Permission::Read, "environment.read")
            .await?;
        let revs = self
            .store
            .list_revisions(org, env, before, count.unwrap_or(100))
            .await?;
        Ok(Json::Array(
            revs.into_iter()
                .map(|r| {
                    json!({
                        "number": r.number,
                        "created": wire::timestamp(r.created_at),
                        "creatorLogin": r.author,
                        "creatorName": r.author,
                        "tags": r.tags,
                        "retracted": r.retracted,
                    })
                })
                .collect(),
        ))
    }

    async fn revision_tag_list(
        &self,
        org: &OrgName,
        env: &QualifiedEnv,
    ) -> Result<Vec<Json>, ApiError> {
        let e = self.store.environment(org, env).await?;
        let mut tags: Vec<Json> = self
            .store
            .list_revision_tags(org, env)
            .await?
            .into_iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "revision": t.revision,
                    "created": wire::timestamp(t.created_at),
                    "modified": wire::timestamp(t.modified_at),
                    "editorLogin": t.editor,
                    "editorName": t.editor,
                })
            })
            .collect();
        tags.push(json!({
            "name": "latest",
            "revision": e.latest_revision,
            "created": wire::timestamp(e.created_at),
            "modified": wire::timestamp(e.modified_at),
            "editorLogin": "",
            "editorName": "",
        }));
        tags.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        Ok(tags)
    }

    /// `GET …/versions/tags`: revision tags by name, the implicit `latest` included.
    pub(crate) async fn revision_tags(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: &QualifiedEnv,
        after: Option<&str>,
        count: Option<usize>,
    ) -> Result<Json, ApiError> {
        self.require(caller, org, env, Permission::Read, "environment.read")
            .await?;
        let tags: Vec<Json> = self
            .revision_tag_list(org, env)
            .await?
            .into_iter()
            .filter(|t| after.is_none_or(|a| t["name"].as_str().is_some_and(|n| n > a)))
            .take(count.unwrap_or(usize::MAX))
            .collect();
        Ok(json!({ "tags": tags, "nextToken": "" }))
    }

    /// `GET …/versions/tags/{tag}`.
    pub(crate) async fn revision_tag(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: &QualifiedEnv,
        tag: &str,
    ) -> Result<Json, ApiError> {
        self.require(caller, org, env, Permission::Read, "environment.read")
            .await?;
        self.revision_tag_list(org, env)
            .await?
            .into_iter()
            .find(|t| t["name"] == tag)
            .ok_or_else(|| ApiError::NotFound(format!("tag {tag:?} of {org}/{env} not found")))
    }

    /// `POST`/`PATCH …/versions/tags[/{tag}]`: create or move a revision tag.
    /// Retracts a revision. When it is the latest, the replacement's definition (by default
    /// the newest revision before it that is not retracted) becomes a new latest revision,
    /// so opening never uses retracted content; older revisions stay readable, marked.
    pub(crate) async fn retract(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: &QualifiedEnv,
        version: &Version,
        replacement: Option<u64>,
        reason: Option<&str>,
    ) -> Result<(), ApiError> {
        self.require(
            caller,
            org,
            env,
            Permission::Write,
            "environment.revision.retract",
        )
        .await?;
        let number = self.store.resolve_version(org, env, Some(version)).await?;
        let latest = self.store.resolve_version(org, env, None).await?;
        if number == 1 && latest == 1 {
            return Err(ApiError::BadRequest(
                "the only revision cannot be retracted: nothing could replace it".into(),
            ));
        }
        let replacement = match replacement {
            Some(r) if r == number => {
                return Err(ApiError::BadRequest(
                    "a revision cannot replace itself".into(),
                ))
            }
            Some(r) => Some(
                self.store
                    .revision(org, env, Some(&Version::Revision(r)))
                    .await?,
            ),
            None if number == latest => {
                let mut found = None;
                for n in (1..number).rev() {
                    let r = self
                        .store
                        .revision(org, env, Some(&Version::Revision(n)))
                        .await?;
                    if !r.retracted {
                        found = Some(r);
                        break;
                    }
                }
                Some(found.ok_or_else(|| {
                    ApiError::BadRequest("no earlier revision that is not retracted".into())
                })?)
            }
            None => None,
        };
        self.store
            .retract_revision(org, env, number, reason, &caller.audit)
            .await?;
        if number == latest {
            if let Some(r) = replacement {
                self.store
                    .save_revision(org, env, &r.yaml, Some(latest), &caller.audit)
                    .await?;
            }
        }
        Ok(())
    }

    pub(crate) async fn set_revision_tag(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: &QualifiedEnv,
        tag: &str,
        revision: u64,
        must_exist: bool,
    ) -> Result<(), ApiError> {
        self.require(
            caller,
            org,
            env,
            Permission::Write,
            "environment.revision_tag.set",
        )
        .await?;
        let exists = self
            .store
            .list_revision_tags(org, env)
            .await?
            .iter()
            .any(|t| t.name == tag);
        if must_exist && !exists && tag != "latest" {
            return Err(ApiError::NotFound(format!(
                "tag {tag:?} of {org}/{env} not found"
            )));
        }
        if !must_exist && exists {
            return Err(ApiError::Conflict(format!(
                "tag {tag:?} of {org}/{env} already exists"
            )));
        }
        self.store
            .tag_revision(org, env, tag, revision, &caller.audit)
            .await?;
        Ok(())
    }

    /// `DELETE …/versions/tags/{tag}`.
    pub(crate) async fn delete_revision_tag(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: &QualifiedEnv,
        tag: &str,
    ) -> Result<(), ApiError> {
        self.require(
            caller,
            org,
            env,
            Permission::Write,
            "environment.revision_tag.delete",
        )
        .await?;
        self.store
            .delete_revision_tag(org, env, tag, &caller.audit)
            .await?;
        Ok(())
    }

    fn env_tag_json(e: &tessera_store::environments::Environment, name: &str, value: &str) -> Json {
        json!({
            "name": name,
            "value": value,
            "created": wire::timestamp(e.created_at),
            "modified": wire::timestamp(e.modified_at),
            "editorLogin": "",
            "editorName": "",
        })
    }

    /// `GET …/tags`: environment tags; `nextToken` is always present.
    pub(crate) async fn environment_tags(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: &QualifiedEnv,
        after: Option<&str>,
        count: Option<usize>,
    ) -> Result<Json, ApiError> {
        self.require(caller, org, env, Permission::Read, "environment.read")
            .await?;
        let e = self.store.environment(org, env).await?;
        let tags: BTreeMap<&String, Json> = e
            .tags
            .iter()
            .filter(|(k, _)| after.is_none_or(|a| k.as_str() > a))
            .take(count.unwrap_or(usize::MAX))
            .map(|(k, v)| (k, Self::env_tag_json(&e, k, v)))
            .collect();
        Ok(json!({ "tags": tags, "nextToken": "" }))
    }

    /// `GET …/tags/{tag}`.
    pub(crate) async fn environment_tag(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: &QualifiedEnv,
        name: &str,
    ) -> Result<Json, ApiError> {
        self.require(caller, org, env, Permission::Read, "environment.read")
            .await?;
        let e = self.store.environment(org, env).await?;
        let value = e
            .tags
            .get(name)
            .ok_or_else(|| ApiError::NotFound(format!("tag {name:?} of {org}/{env} not found")))?;
        Ok(Self::env_tag_json(&e, name, value))
    }

    /// `POST …/tags` and `PATCH …/tags/{tag}`: sets a tag (renaming `rename_from` if given,
    /// whose value must still be `expected`).
    pub(crate) async fn set_environment_tag(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: &QualifiedEnv,
        name: &str,
        value: &str,
        rename_from: Option<(&str, &str)>,
    ) -> Result<Json, ApiError> {
        self.require(caller, org, env, Permission::Write, "environment.tag.set")
            .await?;
        let e = self.store.environment(org, env).await?;
        match rename_from {
            Some((old, expected)) => {
                let current = e.tags.get(old).ok_or_else(|| {
                    ApiError::NotFound(format!("tag {old:?} of {org}/{env} not found"))
                })?;
                if current != expected {
                    return Err(ApiError::Conflict(format!(
                        "tag {old:?} of {org}/{env} changed since it was read"
                    )));
                }
                if old != name {
                    self.store
                        .set_environment_tag(org, env, old, None, &caller.audit)
                        .await?;
                }
            }
            None if e.tags.contains_key(name) => {
                return Err(ApiError::Conflict(format!(
                    "tag {name:?} of {org}/{env} already exists"
                )))
            }
            None => {}
        }
        self.store
            .set_environment_tag(org, env, name, Some(value), &caller.audit)
            .await?;
        let e = self.store.environment(org, env).await?;
        Ok(Self::env_tag_json(&e, name, value))
    }

    /// `DELETE …/tags/{tag}`.
    pub(crate) async fn delete_environment_tag(
        &self,
        caller: &Caller,
        org: &OrgName,
        env: &QualifiedEnv,
        name: &str,
    ) -> Result<(), ApiError> {
        self.require(
            caller,
            org,
            env,
            Permission::Write,
            "environment.tag.delete",
        )
        .await?;
        self.store
            .set_environment_tag(org, env, name, None, &caller.audit)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("2h").unwrap(), 7200);
        assert_eq!(parse_duration("1h30m").unwrap(), 5400);
        assert_eq!(parse_duration("90s").unwrap(), 90);
        assert_eq!(parse_duration("1.5h").unwrap(), 5400);
        for bad in ["", "h", "2", "2d", "-1h", "0s", "10000h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn property_paths_parse() {
        let steps = parse_property_path("a.b[0][\"c.d\"]").unwrap();
        assert_eq!(steps.len(), 4);
        assert!(matches!(&steps[3], Step::Key(k) if k == "c.d"));
        assert!(matches!(&steps[2], Step::Index(0)));
        for bad in ["", "[x]", "a[\"b", ".a"] {
            assert!(parse_property_path(bad).is_err(), "{bad}");
        }
    }
}
