//! Wire types: the JSON shapes of the REST API, as the official ESC SDKs read them.
//!
//! Internal types (evaluated values, diagnostics, store records) are converted here and are
//! never sent as they are. Values are `{value, secret?, unknown?, trace}` at every level of
//! nesting, with `trace` always present and any `range` complete.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value as Json};
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
    // Serializing into a JSON tree cannot fail: every map key is a string.
    serde_json::to_value(EscValue(v, secrets)).unwrap_or(Json::Null)
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

/// An open's result, `{"properties": …}`, serialized straight from the evaluated value
/// (no intermediate JSON tree: this is the open path's output).
pub struct OpenedProperties<'a>(pub Option<&'a Value>);

impl Serialize for OpenedProperties<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut body = s.serialize_map(Some(1))?;
        body.serialize_entry("properties", &Properties(self.0, Secrets::Reveal))?;
        body.end()
    }
}

struct Properties<'a>(Option<&'a Value>, Secrets);

impl Serialize for Properties<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Some(map) = self.0.and_then(Value::as_object) else {
            return s.serialize_map(Some(0))?.end();
        };
        let mut out = s.serialize_map(Some(map.len()))?;
        for (k, v) in map {
            out.serialize_entry(k, &EscValue(v, self.1))?;
        }
        out.end()
    }
}

/// `{value, secret?, unknown?, trace}`.
struct EscValue<'a>(&'a Value, Secrets);

impl Serialize for EscValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let EscValue(v, secrets) = *self;
        let mut out = s.serialize_map(None)?;
        out.serialize_entry("value", &Inner(v, secrets))?;
        if v.secret {
            out.serialize_entry("secret", &true)?;
        }
        if v.unknown {
            out.serialize_entry("unknown", &true)?;
        }
        out.serialize_entry("trace", &Trace(v.def.as_ref()))?;
        out.end()
    }
}

/// What `value` holds: `null` when unknown, nested values in ESC's shape, scalars as
/// JSON (`"[secret]"` when redacted).
struct Inner<'a>(&'a Value, Secrets);

impl Serialize for Inner<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Inner(v, secrets) = *self;
        if v.unknown {
            return s.serialize_none();
        }
        match &v.kind {
            ValueKind::Array(items) => {
                let mut out = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    out.serialize_element(&EscValue(i, secrets))?;
                }
                out.end()
            }
            ValueKind::Object(map) => {
                let mut out = s.serialize_map(Some(map.len()))?;
                for (k, i) in map {
                    out.serialize_entry(k, &EscValue(i, secrets))?;
                }
                out.end()
            }
            _ if v.secret && secrets == Secrets::Redact => s.serialize_str("[secret]"),
            ValueKind::Null => s.serialize_none(),
            ValueKind::Bool(b) => s.serialize_bool(*b),
            ValueKind::Number(n) => match n.to_json() {
                Some(j) => j.serialize(s),
                None => s.serialize_str(n.as_str()),
            },
            ValueKind::String(text) => s.serialize_str(text),
        }
    }
}

/// `{"def": range}`, or `{}` when the origin is not known.
struct Trace<'a>(Option<&'a Location>);

impl Serialize for Trace<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_map(Some(usize::from(self.0.is_some())))?;
        if let Some(loc) = self.0 {
            out.serialize_entry("def", &RangeRef(&loc.environment, &loc.range))?;
        }
        out.end()
    }
}

/// [`Range`] without copying the environment's name.
struct RangeRef<'a>(&'a str, &'a tessera_lang::Range);

impl Serialize for RangeRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_map(Some(3))?;
        out.serialize_entry("environment", self.0)?;
        out.serialize_entry("begin", &pos(self.1.begin))?;
        out.serialize_entry("end", &pos(self.1.end))?;
        out.end()
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
    use serde_json::json;
    use tessera_lang::Number;

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

    #[test]
    fn an_open_result_holds_every_kind_of_value_with_its_origin() {
        let at = |line| tessera_lang::Pos {
            line,
            column: 3,
            byte: 10 * line,
        };
        let mut port = Value::new(ValueKind::Number(Number::from_i64(5432)));
        port.def = Some(Location {
            environment: "app/dev".into(),
            range: tessera_lang::Range {
                begin: at(2),
                end: at(3),
            },
        });
        let mut obj = std::collections::BTreeMap::new();
        obj.insert("port".to_owned(), port);
        obj.insert(
            "list".to_owned(),
            Value::new(ValueKind::Array(vec![
                Value::new(ValueKind::Bool(true)),
                Value::new(ValueKind::Null),
                Value::string("pw").into_secret(),
            ])),
        );
        obj.insert("later".to_owned(), Value::unknown());
        obj.insert(
            "ratio".to_owned(),
            Value::new(ValueKind::Number(Number::from_f64(0.5))),
        );
        let v = Value::object(obj);
        let bytes = serde_json::to_vec(&OpenedProperties(Some(&v))).unwrap();
        let j: Json = serde_json::from_slice(&bytes).unwrap();
        let range = json!({
            "environment": "app/dev",
            "begin": {"line": 2, "column": 3, "byte": 20},
            "end": {"line": 3, "column": 3, "byte": 30},
        });
        assert_eq!(
            j,
            json!({"properties": {
                "later": {"value": null, "unknown": true, "trace": {}},
                "list": {"value": [
                    {"value": true, "trace": {}},
                    {"value": null, "trace": {}},
                    {"value": "pw", "secret": true, "trace": {}},
                ], "trace": {}},
                "port": {"value": 5432, "trace": {"def": range}},
                "ratio": {"value": 0.5, "trace": {}},
            }})
        );
        // The same shape as a check's properties, secrets aside.
        assert_eq!(
            j["properties"],
            Json::Object(properties(Some(&v), Secrets::Reveal))
        );
        let empty = serde_json::to_vec(&OpenedProperties(None)).unwrap();
        assert_eq!(empty, br#"{"properties":{}}"#);
    }
}
