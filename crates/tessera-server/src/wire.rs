//! Wire types: the JSON shapes of the REST API, as the official ESC SDKs read them.
//!
//! Internal types (evaluated values, diagnostics, store records) are converted here and are
//! never sent as they are. Values are `{value, secret?, unknown?, trace}` at every level of
//! nesting, with `trace` always present and any `range` complete.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value as Json};
use tessera_lang::{Location, Value, ValueKind};

/// A position, as ESC sends it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
    /// Byte offset, from 0.
    pub byte: u32,
}

/// A range in an environment's document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Range {
    /// The environment, `project/env`.
    pub environment: String,
    /// Where it begins.
    pub begin: Pos,
    /// Where it ends.
    pub end: Pos,
}

fn pos(p: tessera_lang::Pos) -> Pos {
    Pos {
        line: p.line,
        column: p.column,
        byte: p.byte,
    }
}

impl Range {
    fn from_parts(environment: &str, range: &tessera_lang::Range) -> Range {
        Range {
            environment: environment.to_owned(),
            begin: pos(range.begin),
            end: pos(range.end),
        }
    }
}

impl From<&Location> for Range {
    fn from(l: &Location) -> Range {
        Range::from_parts(&l.environment, &l.range)
    }
}

/// One problem in an environment document, as ESC reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where.
    pub range: Range,
    /// What is wrong.
    pub summary: String,
    /// The document path, e.g. `values.db.password`.
    pub path: String,
    /// `error` or `warning` (a Tessera addition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
}

impl From<&tessera_lang::Diagnostic> for Diagnostic {
    fn from(d: &tessera_lang::Diagnostic) -> Diagnostic {
        Diagnostic {
            range: Range::from_parts(&d.environment, &d.range),
            summary: d.message.clone(),
            path: d.path.clone(),
            severity: Some(d.severity.to_string()),
        }
    }
}

/// Converts diagnostics to their wire form.
pub fn diagnostics(ds: &tessera_lang::Diagnostics) -> Vec<Diagnostic> {
    ds.iter().map(Diagnostic::from).collect()
}

/// Whether secrets are shown (an open session) or replaced by `[secret]` (a check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// Plaintext: only for results produced under an Open grant.
    Reveal,
    /// `"[secret]"` in place of every secret scalar.
    Redact,
}

/// An evaluated value in ESC's shape: `{value, secret?, unknown?, trace}`, recursively.
pub fn esc_value(v: &Value, secrets: Secrets) -> Json {
    let mut out = Map::new();
    let inner = if v.unknown {
        Json::Null
    } else {
        match &v.kind {
            ValueKind::Array(items) => {
                Json::Array(items.iter().map(|i| esc_value(i, secrets)).collect())
            }
            ValueKind::Object(map) => Json::Object(
                map.iter()
                    .map(|(k, i)| (k.clone(), esc_value(i, secrets)))
                    .collect(),
            ),
            _ if v.secret && secrets == Secrets::Redact => Json::String("[secret]".into()),
            _ => v.to_serde_json(false),
        }
    };
    out.insert("value".into(), inner);
    if v.secret {
        out.insert("secret".into(), Json::Bool(true));
    }
    if v.unknown {
        out.insert("unknown".into(), Json::Bool(true));
    }
    let trace = match &v.def {
        Some(loc) => json!({ "def": Range::from(loc) }),
        None => json!({}),
    };
    out.insert("trace".into(), trace);
    Json::Object(out)
}

/// The `properties` of an evaluated environment: its top-level values in ESC's shape.
pub fn properties(v: Option<&Value>, secrets: Secrets) -> Map<String, Json> {
    match v.and_then(Value::as_object) {
        Some(map) => map
            .iter()
            .map(|(k, i)| (k.clone(), esc_value(i, secrets)))
            .collect(),
        None => Map::new(),
    }
}

/// `POST /api/esc/environments/{org}` body.
#[derive(Debug, Deserialize)]
pub struct CreateEnvironment {
    /// The project.
    pub project: String,
    /// The environment name.
    pub name: String,
}

/// `POST …/clone` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloneEnvironment {
    /// The destination project.
    pub project: String,
    /// The destination name.
    pub name: String,
    /// Copy team grants.
    #[serde(default)]
    pub preserve_access: bool,
    /// Copy environment tags.
    #[serde(default)]
    pub preserve_environment_tags: bool,
    /// Copy every revision (Tessera copies the latest definition only).
    #[serde(default)]
    pub preserve_history: bool,
    /// Copy revision tags (Tessera: not copied).
    #[serde(default)]
    pub preserve_revision_tags: bool,
}

/// `POST …/versions/tags` body.
#[derive(Debug, Deserialize)]
pub struct CreateRevisionTag {
    /// The tag.
    pub name: String,
    /// The revision it names.
    pub revision: u64,
}

/// `PATCH …/versions/tags/{tag}` body.
#[derive(Debug, Deserialize)]
pub struct UpdateRevisionTag {
    /// The revision it names now.
    pub revision: u64,
}

/// `POST …/tags` body.
#[derive(Debug, Deserialize)]
pub struct CreateEnvironmentTag {
    /// The tag name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// The current value in an environment tag update.
#[derive(Debug, Deserialize)]
pub struct CurrentTag {
    /// The value the caller saw.
    pub value: String,
}

/// The new name and value in an environment tag update.
#[derive(Debug, Deserialize)]
pub struct NewTag {
    /// The name (may differ: a rename).
    pub name: String,
    /// The value.
    pub value: String,
}

/// `PATCH …/tags/{tag}` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateEnvironmentTag {
    /// What the caller saw.
    pub current_tag: CurrentTag,
    /// What it becomes.
    pub new_tag: NewTag,
}

/// RFC 3339 UTC text of a unix time, as ESC's `created`/`modified` fields.
pub fn timestamp(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(timestamp(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn values_nest_with_traces_and_redact_secrets() {
        let mut obj = std::collections::BTreeMap::new();
        obj.insert("a".to_owned(), Value::string("x").into_secret());
        obj.insert("b".to_owned(), Value::unknown());
        let v = Value::object(obj);
        let j = esc_value(&v, Secrets::Redact);
        assert_eq!(
            j,
            json!({"value": {
                "a": {"value": "[secret]", "secret": true, "trace": {}},
                "b": {"value": null, "unknown": true, "trace": {}},
            }, "trace": {}})
        );
        let j = esc_value(&v, Secrets::Reveal);
        assert_eq!(j["value"]["a"]["value"], "x");
    }
}
