//! Evaluated values: what opening an environment produces.
//!
//! Every value knows whether it is secret (computed from a secret) and whether it is unknown
//! (not computable in this mode, such as a provider's output during a check). Objects keep
//! their keys sorted, as ESC does. `Debug` never shows a secret's text, and a secret string
//! is zeroed when its value is dropped.

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;

use serde::Serialize;
use zeroize::Zeroize;

use crate::diag::Range;
use crate::number::Number;

/// Where a value was defined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// The environment that defines it.
    pub environment: Arc<str>,
    /// The range of its definition.
    #[serde(flatten)]
    pub range: Range,
}

/// The data of a value.
#[derive(Clone, PartialEq)]
pub enum ValueKind {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as canonical decimal text.
    Number(Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object, keys sorted.
    Object(BTreeMap<String, Value>),
}

/// An evaluated value with its secrecy, knowability and origin.
#[derive(Clone, PartialEq)]
pub struct Value {
    /// The data. Meaningless when `unknown` is set.
    pub kind: ValueKind,
    /// Whether the value is, or was computed from, a secret.
    pub secret: bool,
    /// Whether the value cannot be known in this evaluation mode.
    pub unknown: bool,
    /// Where it was defined, when known.
    pub def: Option<Location>,
    /// Marked by `fn::final`: importers may not override it.
    pub(crate) is_final: bool,
}

impl Drop for Value {
    fn drop(&mut self) {
        if self.secret {
            if let ValueKind::String(s) = &mut self.kind {
                s.zeroize();
            }
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.unknown {
            return f.write_str("[unknown]");
        }
        match &self.kind {
            _ if self.secret
                && !matches!(self.kind, ValueKind::Array(_) | ValueKind::Object(_)) =>
            {
                f.write_str("[secret]")
            }
            ValueKind::Null => f.write_str("null"),
            ValueKind::Bool(b) => write!(f, "{b}"),
            ValueKind::Number(n) => write!(f, "{n}"),
            ValueKind::String(s) => write!(f, "{s:?}"),
            ValueKind::Array(a) => f.debug_list().entries(a).finish(),
            ValueKind::Object(o) => f.debug_map().entries(o).finish(),
        }
    }
}

impl Value {
    /// A plain value with no origin.
    pub fn new(kind: ValueKind) -> Value {
        Value {
            kind,
            secret: false,
            unknown: false,
            def: None,
            is_final: false,
        }
    }

    /// `null`.
    pub fn null() -> Value {
        Value::new(ValueKind::Null)
    }

    /// A string.
    pub fn string(s: impl Into<String>) -> Value {
        Value::new(ValueKind::String(s.into()))
    }

    /// A value that cannot be known in this mode.
    pub fn unknown() -> Value {
        let mut v = Value::null();
        v.unknown = true;
        v
    }

    /// An object.
    pub fn object(map: BTreeMap<String, Value>) -> Value {
        Value::new(ValueKind::Object(map))
    }

    /// Marks the value secret.
    pub fn into_secret(mut self) -> Value {
        self.secret = true;
        self
    }

    /// Marks this value and every value inside it secret.
    pub fn make_secret_deep(&mut self) {
        self.secret = true;
        match &mut self.kind {
            ValueKind::Array(a) => a.iter_mut().for_each(Value::make_secret_deep),
            ValueKind::Object(o) => o.values_mut().for_each(Value::make_secret_deep),
            _ => {}
        }
    }

    /// The object's entries, if this is a known object.
    pub fn as_object(&self) -> Option<&BTreeMap<String, Value>> {
        match &self.kind {
            ValueKind::Object(o) if !self.unknown => Some(o),
            _ => None,
        }
    }

    /// The string, if this is a known string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            ValueKind::String(s) if !self.unknown => Some(s),
            _ => None,
        }
    }

    /// Looks up a property of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object().and_then(|o| o.get(key))
    }

    /// Whether this value or anything inside it is secret.
    pub fn contains_secrets(&self) -> bool {
        self.secret
            || match &self.kind {
                ValueKind::Array(a) => a.iter().any(Value::contains_secrets),
                ValueKind::Object(o) => o.values().any(Value::contains_secrets),
                _ => false,
            }
    }

    /// Whether this value or anything inside it is unknown.
    pub fn contains_unknowns(&self) -> bool {
        self.unknown
            || match &self.kind {
                ValueKind::Array(a) => a.iter().any(Value::contains_unknowns),
                ValueKind::Object(o) => o.values().any(Value::contains_unknowns),
                _ => false,
            }
    }

    /// Whether this value or anything inside it is marked final.
    pub(crate) fn contains_finals(&self) -> bool {
        self.is_final
            || match &self.kind {
                ValueKind::Array(a) => a.iter().any(Value::contains_finals),
                ValueKind::Object(o) => o.values().any(Value::contains_finals),
                _ => false,
            }
    }

    /// The type name used in diagnostics: `string`, `number`, `boolean`, `array`, `object`, `null`.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            ValueKind::Null => "null",
            ValueKind::Bool(_) => "boolean",
            ValueKind::Number(_) => "number",
            ValueKind::String(_) => "string",
            ValueKind::Array(_) => "array",
            ValueKind::Object(_) => "object",
        }
    }

    /// A rough count of the work this value stands for, for evaluation limits.
    pub(crate) fn weight(&self) -> u64 {
        1 + match &self.kind {
            ValueKind::String(s) => s.len() as u64 / 16,
            ValueKind::Array(a) => a.iter().map(Value::weight).sum(),
            ValueKind::Object(o) => o
                .iter()
                .map(|(k, v)| k.len() as u64 / 16 + v.weight())
                .sum(),
            _ => 0,
        }
    }

    /// A copy without origin marks, for use as a plain datum.
    pub(crate) fn without_final(mut self) -> Value {
        self.is_final = false;
        self
    }

    /// Renders the value as ESC renders it inside an interpolated string: null as empty,
    /// arrays as `"a","b"`, objects as `"k"="v"` sorted by key. With `redact`, secrets show
    /// as `[secret]`; unknowns always show as `[unknown]`.
    pub fn to_interpolated_string(&self, redact: bool) -> String {
        if redact && self.secret {
            return "[secret]".to_owned();
        }
        if self.unknown {
            return "[unknown]".to_owned();
        }
        match &self.kind {
            ValueKind::Null => String::new(),
            ValueKind::Bool(b) => b.to_string(),
            ValueKind::Number(n) => n.to_string(),
            ValueKind::String(s) => s.clone(),
            ValueKind::Array(a) => a
                .iter()
                .map(|v| go_quote(&v.to_interpolated_string(redact)))
                .collect::<Vec<_>>()
                .join(","),
            ValueKind::Object(o) => o
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        go_quote(k),
                        go_quote(&v.to_interpolated_string(redact))
                    )
                })
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    /// Appends [`Value::to_interpolated_string`] (unredacted) to `out`, without an
    /// intermediate string for the common case of a string.
    pub(crate) fn push_interpolated(&self, out: &mut String) {
        match &self.kind {
            ValueKind::String(s) if !self.unknown => out.push_str(s),
            _ => out.push_str(&self.to_interpolated_string(false)),
        }
    }

    /// Compact JSON with sorted keys (`fn::toJSON`): secrets revealed, unknowns as `"[unknown]"`.
    pub fn to_json_compact(&self) -> String {
        let mut out = String::new();
        write_json(&mut out, self, Redaction::Reveal, None, 0);
        out
    }

    /// Indented JSON (two spaces, sorted keys, trailing newline), as `esc env open` prints it.
    /// With `redact`, secrets print as `"[secret]"`.
    pub fn to_json_pretty(&self, redact: bool) -> String {
        let mut out = String::new();
        let r = if redact {
            Redaction::Redact
        } else {
            Redaction::Reveal
        };
        write_json(&mut out, self, r, Some("  "), 0);
        out.push('\n');
        out
    }

    /// The value as plain JSON data, secrets revealed or redacted.
    pub fn to_serde_json(&self, redact: bool) -> serde_json::Value {
        use serde_json::Value as J;
        if redact
            && self.secret
            && (self.unknown || !matches!(self.kind, ValueKind::Array(_) | ValueKind::Object(_)))
        {
            return J::String("[secret]".into());
        }
        if self.unknown {
            return J::String("[unknown]".into());
        }
        match &self.kind {
            ValueKind::Null => J::Null,
            ValueKind::Bool(b) => J::Bool(*b),
            ValueKind::Number(n) => n
                .to_json()
                .map_or_else(|| J::String(n.to_string()), J::Number),
            ValueKind::String(s) => J::String(s.clone()),
            ValueKind::Array(a) => J::Array(a.iter().map(|v| v.to_serde_json(redact)).collect()),
            ValueKind::Object(o) => J::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), v.to_serde_json(redact)))
                    .collect(),
            ),
        }
    }

    /// Converts plain JSON data into a value (no secrets, no origin).
    pub fn from_serde_json(j: &serde_json::Value) -> Value {
        use serde_json::Value as J;
        Value::new(match j {
            J::Null => ValueKind::Null,
            J::Bool(b) => ValueKind::Bool(*b),
            J::Number(n) => ValueKind::Number(if let Some(i) = n.as_i64() {
                Number::from_i64(i)
            } else if let Some(u) = n.as_u64() {
                Number::from_u64(u)
            } else {
                Number::from_f64(n.as_f64().unwrap_or(0.0))
            }),
            J::String(s) => ValueKind::String(s.clone()),
            J::Array(a) => ValueKind::Array(a.iter().map(Value::from_serde_json).collect()),
            J::Object(o) => ValueKind::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_serde_json(v)))
                    .collect(),
            ),
        })
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Redaction {
    Reveal,
    Redact,
}

fn write_json(out: &mut String, v: &Value, r: Redaction, indent: Option<&str>, depth: usize) {
    if r == Redaction::Redact
        && v.secret
        && (v.unknown || !matches!(v.kind, ValueKind::Array(_) | ValueKind::Object(_)))
    {
        write_json_string(out, "[secret]");
        return;
    }
    if v.unknown {
        write_json_string(out, "[unknown]");
        return;
    }
    let newline = |out: &mut String, depth: usize| {
        if let Some(ind) = indent {
            out.push('\n');
            for _ in 0..depth {
                out.push_str(ind);
            }
        }
    };
    match &v.kind {
        ValueKind::Null => out.push_str("null"),
        ValueKind::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        ValueKind::Number(n) if n.is_json() => out.push_str(n.as_str()),
        ValueKind::Number(n) => write_json_string(out, n.as_str()),
        ValueKind::String(s) => write_json_string(out, s),
        ValueKind::Array(a) if a.is_empty() => out.push_str("[]"),
        ValueKind::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_json(out, e, r, indent, depth + 1);
            }
            newline(out, depth);
            out.push(']');
        }
        ValueKind::Object(o) if o.is_empty() => out.push_str("{}"),
        ValueKind::Object(o) => {
            out.push('{');
            for (i, (k, e)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_json_string(out, k);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write_json(out, e, r, indent, depth + 1);
            }
            newline(out, depth);
            out.push('}');
        }
    }
}

/// Writes a JSON string the way Go's `encoding/json` does, HTML-sensitive characters escaped.
pub fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::object(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn interpolated_strings_follow_esc() {
        let arr = Value::new(ValueKind::Array(vec![
            Value::string("a"),
            Value::string("b"),
        ]));
        assert_eq!(arr.to_interpolated_string(false), r#""a","b""#);
        let o = obj(&[
            ("b", Value::new(ValueKind::Number(Number::from_i64(2)))),
            ("a", Value::string("x")),
        ]);
        assert_eq!(o.to_interpolated_string(false), r#""a"="x","b"="2""#);
        assert_eq!(Value::null().to_interpolated_string(false), "");
    }

    #[test]
    fn json_escapes_like_go_and_redacts() {
        let o = obj(&[
            ("k", Value::string("<a&b>").into_secret()),
            ("n", Value::null()),
        ]);
        assert_eq!(
            o.to_json_compact(),
            r#"{"k":"\u003ca\u0026b\u003e","n":null}"#
        );
        assert_eq!(
            o.to_json_pretty(true),
            "{\n  \"k\": \"[secret]\",\n  \"n\": null\n}\n"
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let v = obj(&[("password", Value::string("hunter2").into_secret())]);
        assert!(!format!("{v:?}").contains("hunter2"));
    }
}
