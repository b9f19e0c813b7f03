//! A thin client of Tessera's REST API (the ESC API plus Tessera's own routes).

use std::time::Duration;

use anyhow::Context as _;
use reqwest::blocking::{Client as Http, RequestBuilder, Response};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value as Json;

use crate::config::Session;

/// An environment named on the command line: `[org/]project/env[@version]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvRef {
    /// Organization.
    pub org: String,
    /// Project.
    pub project: String,
    /// Environment name.
    pub env: String,
    /// A revision number or tag, if given.
    pub version: Option<String>,
}

impl EnvRef {
    /// Parses `org/project/env[@version]`, or `project/env[@version]` in `default_org`.
    pub fn parse(text: &str, default_org: Option<&str>) -> anyhow::Result<EnvRef> {
        let (name, version) = match text.split_once('@') {
            Some((n, v)) if !v.is_empty() => (n, Some(v.to_owned())),
            Some(_) => anyhow::bail!("invalid environment {text:?}: nothing after '@'"),
            None => (text, None),
        };
        let parts: Vec<&str> = name.split('/').collect();
        let (org, project, env) = match parts.as_slice() {
            [o, p, e] => ((*o).to_owned(), *p, *e),
            [p, e] => {
                let org = default_org.with_context(|| {
                    format!("{text:?} names no organization and no default is known: use ORG/PROJECT/ENV")
                })?;
                (org.to_owned(), *p, *e)
            }
            _ => {
                anyhow::bail!("invalid environment {text:?}: expected [ORG/]PROJECT/ENV[@VERSION]")
            }
        };
        let project: tessera_types::ProjectName = project.parse()?;
        let env: tessera_types::EnvName = env.parse()?;
        let org: tessera_types::OrgName = org.parse()?;
        Ok(EnvRef {
            org: org.to_string(),
            project: project.to_string(),
            env: env.to_string(),
            version,
        })
    }

    fn path(&self) -> String {
        format!(
            "/api/esc/environments/{}/{}/{}",
            self.org, self.project, self.env
        )
    }

    /// `org/project/env`.
    pub fn display_name(&self) -> String {
        format!("{}/{}/{}", self.org, self.project, self.env)
    }
}

/// A failed API call, as the server described it.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The server's message.
    pub message: String,
    /// Diagnostics, for refused definitions.
    pub diagnostics: Vec<Json>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            StatusCode::UNAUTHORIZED => write!(
                f,
                "the server refused the token ({}): run `tessera login URL --token TOKEN`",
                self.message
            ),
            _ => write!(f, "{} ({})", self.message, self.status.as_u16()),
        }
    }
}

impl std::error::Error for ApiError {}

/// Who the token acts as.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// The login.
    pub login: String,
    /// The default organization.
    #[serde(default, alias = "defaultOrganization")]
    pub default_org: Option<String>,
}

/// The RFC 8693 grant type of a token exchange.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The subject token type of a CI platform's OIDC token.
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

/// A token issued by the token exchange.
#[derive(Debug, Deserialize)]
pub struct IssuedToken {
    /// The Tessera token.
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: u64,
}

/// `POST /api/oauth/token` (no token: the OIDC token in the form is the credential).
pub fn exchange_token(url: &str, params: &[(&str, String)]) -> anyhow::Result<IssuedToken> {
    let http = Http::builder()
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("tessera-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")?;
    let base = url.trim_end_matches('/');
    let resp = http
        .post(format!("{base}/api/oauth/token"))
        .form(params)
        .send()
        .with_context(|| format!("cannot reach the server at {base}"))?;
    let status = resp.status();
    let body: Json = resp.json().unwrap_or(Json::Null);
    if !status.is_success() {
        let message = body
            .get("message")
            .and_then(Json::as_str)
            .unwrap_or(status.canonical_reason().unwrap_or("error"))
            .to_owned();
        anyhow::bail!(
            "the server refused the exchange: {message} ({})",
            status.as_u16()
        );
    }
    serde_json::from_value(body).context("the server's answer to the exchange is not a token")
}

/// An HTTP client bound to a server and token.
pub struct Client {
    base: String,
    token: String,
    http: Http,
}

impl Client {
    /// A client for the session's server.
    pub fn new(session: &Session) -> anyhow::Result<Client> {
        Self::with(&session.url, &session.token)
    }

    /// A client for `url` with `token`.
    pub fn with(url: &str, token: &str) -> anyhow::Result<Client> {
        let http = Http::builder()
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("tessera-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?;
        Ok(Client {
            base: url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http,
        })
    }

    fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("Authorization", format!("token {}", self.token))
    }

    fn send(&self, rb: RequestBuilder) -> anyhow::Result<Response> {
        let resp = rb
            .send()
            .with_context(|| format!("cannot reach the server at {}", self.base))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body: Json = resp.json().unwrap_or(Json::Null);
        let message = body
            .get("message")
            .and_then(Json::as_str)
            .unwrap_or(status.canonical_reason().unwrap_or("error"))
            .to_owned();
        let diagnostics = body
            .get("diagnostics")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        Err(ApiError {
            status,
            message,
            diagnostics,
        }
        .into())
    }

    fn json(&self, rb: RequestBuilder) -> anyhow::Result<Json> {
        self.send(rb)?
            .json()
            .context("the server's answer is not JSON")
    }

    /// `GET` of any API path, as JSON.
    pub fn get_json(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Json> {
        self.json(self.req(Method::GET, path).query(query))
    }

    /// `GET /api/user`.
    pub fn user(&self) -> anyhow::Result<User> {
        let resp = self.send(self.req(Method::GET, "/api/user"))?;
        resp.json()
            .context("the server's answer to /api/user is not as expected")
    }

    /// Every environment of `org` the token may see: `(project, name)`.
    pub fn list(&self, org: &str) -> anyhow::Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let mut rb = self.req(Method::GET, &format!("/api/esc/environments/{org}"));
            if !token.is_empty() {
                rb = rb.query(&[("continuationToken", &token)]);
            }
            let page = self.json(rb)?;
            for e in page
                .get("environments")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
            {
                let field = |k: &str| {
                    e.get(k)
                        .and_then(Json::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                out.push((field("project"), field("name")));
            }
            match page.get("nextToken").and_then(Json::as_str) {
                Some(t) if !t.is_empty() && t != token => token = t.to_owned(),
                _ => return Ok(out),
            }
        }
    }

    /// Creates an environment.
    pub fn create(&self, env: &EnvRef) -> anyhow::Result<()> {
        let body = serde_json::json!({"project": env.project, "name": env.env});
        self.send(
            self.req(Method::POST, &format!("/api/esc/environments/{}", env.org))
                .json(&body),
        )?;
        Ok(())
    }

    /// The definition (secrets as ciphertext) and its ETag.
    pub fn definition(&self, env: &EnvRef) -> anyhow::Result<(String, Option<String>)> {
        let path = match &env.version {
            Some(v) => format!("{}/versions/{v}", env.path()),
            None => env.path(),
        };
        let resp = self.send(
            self.req(Method::GET, &path)
                .header("Accept", "application/x-yaml"),
        )?;
        let etag = resp
            .headers()
            .get("ETag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok((resp.text()?, etag))
    }

    /// Saves a definition; with `etag`, refused if the environment moved on.
    pub fn update(&self, env: &EnvRef, yaml: &str, etag: Option<&str>) -> anyhow::Result<()> {
        let mut rb = self
            .req(Method::PATCH, &env.path())
            .header("Content-Type", "application/x-yaml")
            .body(yaml.to_owned());
        if let Some(tag) = etag {
            rb = rb.header("If-Match", tag);
        }
        self.send(rb)?;
        Ok(())
    }

    /// Deletes an environment.
    pub fn delete(&self, env: &EnvRef) -> anyhow::Result<()> {
        self.send(self.req(Method::DELETE, &env.path()))?;
        Ok(())
    }

    /// Checks a definition without saving it; returns its diagnostics.
    pub fn check(&self, org: &str, yaml: &str) -> anyhow::Result<Vec<Json>> {
        let rb = self
            .req(
                Method::POST,
                &format!("/api/esc/environments/{org}/yaml/check"),
            )
            .header("Content-Type", "application/x-yaml")
            .body(yaml.to_owned());
        match self.json(rb) {
            Ok(body) => Ok(body
                .get("diagnostics")
                .and_then(Json::as_array)
                .cloned()
                .unwrap_or_default()),
            Err(e) => match e.downcast::<ApiError>() {
                Ok(api) if !api.diagnostics.is_empty() => Ok(api.diagnostics),
                Ok(api) => Err(api.into()),
                Err(e) => Err(e),
            },
        }
    }

    /// Opens an environment and reads the session: the `properties` object of values.
    pub fn open(&self, env: &EnvRef, duration: Option<&str>) -> anyhow::Result<Json> {
        let path = match &env.version {
            Some(v) => format!("{}/versions/{v}/open", env.path()),
            None => format!("{}/open", env.path()),
        };
        let mut rb = self.req(Method::POST, &path);
        if let Some(d) = duration {
            rb = rb.query(&[("duration", d)]);
        }
        let opened = self.json(rb)?;
        let id = opened
            .get("id")
            .and_then(Json::as_str)
            .context("the server did not return a session id")?;
        let session = self.json(self.req(Method::GET, &format!("{}/open/{id}", env.path())))?;
        Ok(session
            .get("properties")
            .cloned()
            .unwrap_or_else(|| Json::Object(Default::default())))
    }

    /// Revisions, newest first: the raw JSON objects.
    pub fn versions(&self, env: &EnvRef) -> anyhow::Result<Vec<Json>> {
        let body = self.json(self.req(Method::GET, &format!("{}/versions", env.path())))?;
        Ok(body.as_array().cloned().unwrap_or_default())
    }

    /// Retracts a revision; retracting the latest makes the replacement's definition latest.
    pub fn retract(
        &self,
        env: &EnvRef,
        revision: &str,
        replacement: Option<u64>,
        reason: Option<&str>,
    ) -> anyhow::Result<()> {
        let body = serde_json::json!({"replacement": replacement, "reason": reason});
        self.send(
            self.req(
                Method::POST,
                &format!("{}/versions/{revision}/retract", env.path()),
            )
            .json(&body),
        )?;
        Ok(())
    }

    /// Points a revision tag at a revision.
    pub fn tag_revision(&self, env: &EnvRef, tag: &str, revision: u64) -> anyhow::Result<()> {
        let tags = format!("{}/versions/tags", env.path());
        let body = serde_json::json!({"name": tag, "revision": revision});
        match self.send(self.req(Method::POST, &tags).json(&body)) {
            Ok(_) => Ok(()),
            Err(e)
                if e.downcast_ref::<ApiError>()
                    .is_some_and(|a| a.status == StatusCode::CONFLICT) =>
            {
                self.send(
                    self.req(Method::PATCH, &format!("{tags}/{tag}"))
                        .json(&serde_json::json!({"revision": revision})),
                )?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Environment tags: name → value.
    pub fn env_tags(&self, env: &EnvRef) -> anyhow::Result<Vec<(String, String)>> {
        let body = self.json(self.req(Method::GET, &format!("{}/tags", env.path())))?;
        let tags = body.get("tags").cloned().unwrap_or(Json::Null);
        let mut out = Vec::new();
        match tags {
            Json::Object(map) => {
                for (k, v) in map {
                    let value = v
                        .get("value")
                        .and_then(Json::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    out.push((k, value));
                }
            }
            Json::Array(items) => {
                for v in items {
                    let f = |k: &str| {
                        v.get(k)
                            .and_then(Json::as_str)
                            .unwrap_or_default()
                            .to_owned()
                    };
                    out.push((f("name"), f("value")));
                }
            }
            _ => {}
        }
        out.sort();
        Ok(out)
    }

    /// Sets an environment tag, creating or updating it.
    pub fn set_env_tag(&self, env: &EnvRef, name: &str, value: &str) -> anyhow::Result<()> {
        let tags = format!("{}/tags", env.path());
        let body = serde_json::json!({"name": name, "value": value});
        match self.send(self.req(Method::POST, &tags).json(&body)) {
            Ok(_) => Ok(()),
            Err(e)
                if e.downcast_ref::<ApiError>()
                    .is_some_and(|a| a.status == StatusCode::CONFLICT) =>
            {
                let body = serde_json::json!({"currentTag": {"value": null}, "newTag": {"name": name, "value": value}});
                self.send(
                    self.req(Method::PATCH, &format!("{tags}/{name}"))
                        .json(&body),
                )?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Removes an environment tag.
    pub fn remove_env_tag(&self, env: &EnvRef, name: &str) -> anyhow::Result<()> {
        self.send(self.req(Method::DELETE, &format!("{}/tags/{name}", env.path())))?;
        Ok(())
    }

    /// Clones an environment into `project/name` of the same organization.
    pub fn clone_env(&self, from: &EnvRef, project: &str, name: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({"project": project, "name": name, "preserveHistory": false, "preserveEnvTags": true, "preserveRevTags": false, "preserveAccess": false});
        self.send(
            self.req(Method::POST, &format!("{}/clone", from.path()))
                .json(&body),
        )?;
        Ok(())
    }
}

/// Turns the API's `{value, secret, unknown, trace}` tree into a language value.
pub fn value_from_api(v: &Json) -> tessera_lang::Value {
    use tessera_lang::{Value, ValueKind};
    let secret = v.get("secret").and_then(Json::as_bool).unwrap_or(false);
    let unknown = v.get("unknown").and_then(Json::as_bool).unwrap_or(false);
    let inner = v.get("value").unwrap_or(&Json::Null);
    let mut out = match inner {
        Json::Array(items) => {
            Value::new(ValueKind::Array(items.iter().map(value_from_api).collect()))
        }
        Json::Object(map) => Value::object(
            map.iter()
                .map(|(k, x)| (k.clone(), value_from_api(x)))
                .collect(),
        ),
        scalar => Value::from_serde_json(scalar),
    };
    out.secret = secret;
    out.unknown = unknown;
    out
}

/// The values object of an open session's `properties`.
pub fn properties_value(properties: &Json) -> tessera_lang::Value {
    match properties {
        Json::Object(map) => tessera_lang::Value::object(
            map.iter()
                .map(|(k, x)| (k.clone(), value_from_api(x)))
                .collect(),
        ),
        _ => tessera_lang::Value::object(Default::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_refs() {
        let r = EnvRef::parse("acme/app/dev@3", None).unwrap();
        assert_eq!(
            (
                r.org.as_str(),
                r.project.as_str(),
                r.env.as_str(),
                r.version.as_deref()
            ),
            ("acme", "app", "dev", Some("3"))
        );
        let r = EnvRef::parse("app/dev", Some("acme")).unwrap();
        assert_eq!(r.display_name(), "acme/app/dev");
        assert!(EnvRef::parse("app/dev", None)
            .unwrap_err()
            .to_string()
            .contains("no organization"));
        assert!(EnvRef::parse("dev", Some("acme")).is_err());
        assert!(EnvRef::parse("acme/app/dev@", None).is_err());
    }

    #[test]
    fn api_values_keep_secrecy() {
        let j: Json = serde_json::from_str(r#"{"a":{"value":{"b":{"value":"x","secret":true,"trace":{}}},"trace":{}},"n":{"value":2,"trace":{}}}"#).unwrap();
        let v = properties_value(&j);
        assert!(v.get("a").unwrap().get("b").unwrap().secret);
        assert_eq!(v.to_json_compact(), r#"{"a":{"b":"x"},"n":2}"#);
    }
}
