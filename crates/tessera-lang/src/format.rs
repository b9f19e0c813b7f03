//! Renderings of evaluated values: YAML (for `fn::toYAML` and `--format yaml`), dotenv and
//! shell lines, and reading YAML back (`fn::fromYAML`).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::limits::Limits;
use crate::number::Number;
use crate::syntax::{self, Node, NodeKind};
use crate::value::{go_quote, Value, ValueKind};

/// `s` as a YAML double-quoted scalar. Go's `strconv.Quote` escapes are all YAML escapes,
/// so this is the quoting ESC uses, read back exactly by any YAML parser.
pub fn yaml_quote(s: &str) -> String {
    go_quote(s)
}

/// Block-style YAML with sorted keys and a trailing newline.
pub fn to_yaml(v: &Value, redact: bool) -> String {
    let mut out = String::new();
    emit(&mut out, v, redact, 0, Ctx::Top);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Top,
    MapValue,
    SeqItem,
}

fn scalar_text(v: &Value, redact: bool) -> Option<String> {
    if redact
        && v.secret
        && (v.unknown || !matches!(v.kind, ValueKind::Array(_) | ValueKind::Object(_)))
    {
        return Some("'[secret]'".into());
    }
    if v.unknown {
        return Some("'[unknown]'".into());
    }
    Some(match &v.kind {
        ValueKind::Null => "null".into(),
        ValueKind::Bool(b) => b.to_string(),
        ValueKind::Number(n) => n.to_string(),
        ValueKind::String(s) => yaml_string(s),
        ValueKind::Array(a) if a.is_empty() => "[]".into(),
        ValueKind::Object(o) if o.is_empty() => "{}".into(),
        _ => return None,
    })
}

fn yaml_string(s: &str) -> String {
    // YAML 1.1 readers take these for booleans; yaml.v3 quotes them too.
    const BOOLISH: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
        "OFF",
    ];
    let plain_ok = !s.is_empty()
        && !BOOLISH.contains(&s)
        && !s.starts_with(|c: char| c.is_whitespace() || "-?:,[]{}#&*!|>'\"%@`~".contains(c))
        && !s.ends_with(char::is_whitespace)
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.contains('\n')
        && !s.chars().any(char::is_control)
        && matches!(
            syntax::parse(&Arc::from(""), &format!("k: {s}"), &Limits::default()).0.map(|n| n.kind),
            Some(NodeKind::Map(ref e)) if matches!(&e[0].value.kind, NodeKind::String { value, .. } if value == s)
        );
    if plain_ok {
        s.to_owned()
    } else if !s.contains('\n') && !s.chars().any(char::is_control) {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        go_quote(s)
    }
}

fn emit(out: &mut String, v: &Value, redact: bool, indent: usize, ctx: Ctx) {
    if let Some(text) = scalar_text(v, redact) {
        if ctx == Ctx::MapValue {
            out.push(' ');
        }
        out.push_str(&text);
        out.push('\n');
        return;
    }
    let pad = " ".repeat(indent);
    match &v.kind {
        ValueKind::Array(items) => {
            if ctx == Ctx::MapValue {
                out.push('\n');
            }
            for (i, item) in items.iter().enumerate() {
                if !(ctx == Ctx::SeqItem && i == 0) {
                    out.push_str(&pad);
                }
                out.push_str("- ");
                emit(out, item, redact, indent + 2, Ctx::SeqItem);
            }
        }
        ValueKind::Object(map) => {
            if ctx == Ctx::MapValue {
                out.push('\n');
            }
            for (i, (k, item)) in map.iter().enumerate() {
                if !(ctx == Ctx::SeqItem && i == 0) {
                    out.push_str(&pad);
                }
                out.push_str(&yaml_string(k));
                out.push(':');
                emit(out, item, redact, indent + 4, Ctx::MapValue);
            }
        }
        _ => {}
    }
}

/// Writes a syntax tree back as block YAML, keys in document order (for editing a
/// definition: comments are not kept).
pub fn node_to_yaml(node: &Node) -> String {
    let mut out = String::new();
    emit_node(&mut out, node, 0, Ctx::Top);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn emit_node(out: &mut String, node: &Node, indent: usize, ctx: Ctx) {
    let scalar = match &node.kind {
        NodeKind::Null => Some("null".to_owned()),
        NodeKind::Bool(b) => Some(b.to_string()),
        NodeKind::Number(n) => Some(n.to_string()),
        NodeKind::String { value, .. } => Some(yaml_string(value)),
        NodeKind::Seq(items) if items.is_empty() => Some("[]".to_owned()),
        NodeKind::Map(entries) if entries.is_empty() => Some("{}".to_owned()),
        _ => None,
    };
    if let Some(text) = scalar {
        if ctx == Ctx::MapValue {
            out.push(' ');
        }
        out.push_str(&text);
        out.push('\n');
        return;
    }
    let pad = " ".repeat(indent);
    match &node.kind {
        NodeKind::Seq(items) => {
            if ctx == Ctx::MapValue {
                out.push('\n');
            }
            for (i, item) in items.iter().enumerate() {
                if !(ctx == Ctx::SeqItem && i == 0) {
                    out.push_str(&pad);
                }
                out.push_str("- ");
                emit_node(out, item, indent + 2, Ctx::SeqItem);
            }
        }
        NodeKind::Map(entries) => {
            if ctx == Ctx::MapValue {
                out.push('\n');
            }
            for (i, e) in entries.iter().enumerate() {
                if !(ctx == Ctx::SeqItem && i == 0) {
                    out.push_str(&pad);
                }
                out.push_str(&yaml_string(&e.key));
                out.push(':');
                emit_node(out, &e.value, indent + 2, Ctx::MapValue);
            }
        }
        _ => {}
    }
}

/// Reads a YAML document as plain data (no interpolation, no builtins).
pub fn from_yaml(s: &str, limits: &Limits) -> Result<Value, String> {
    let (node, diags) = syntax::parse(&Arc::from("fn::fromYAML"), s, limits);
    if let Some(d) = diags.errors().next() {
        return Err(format!("decoding YAML string: {}", d.message));
    }
    Ok(node.map_or_else(Value::null, |n| node_value(&n)))
}

fn node_value(n: &Node) -> Value {
    Value::new(match &n.kind {
        NodeKind::Null => ValueKind::Null,
        NodeKind::Bool(b) => ValueKind::Bool(*b),
        NodeKind::Number(num) => ValueKind::Number(match num.as_i64() {
            Some(i) => Number::from_i64(i),
            None => num
                .as_f64()
                .map_or_else(|| num.clone(), Number::from_f64_fixed),
        }),
        NodeKind::String { value, .. } => ValueKind::String(value.clone()),
        NodeKind::Seq(items) => ValueKind::Array(items.iter().map(node_value).collect()),
        NodeKind::Map(entries) => ValueKind::Object(
            entries
                .iter()
                .map(|e| (e.key.clone(), node_value(&e.value)))
                .collect::<BTreeMap<_, _>>(),
        ),
    })
}

/// `KEY="value"` lines, values quoted as Go's `strconv.Quote` does (ESC's dotenv).
pub fn dotenv(vars: &BTreeMap<String, Value>, redact: bool) -> String {
    vars.iter()
        .map(|(k, v)| format!("{k}={}\n", go_quote(&v.to_interpolated_string(redact))))
        .collect()
}

/// `export KEY='value'` lines that are safe to `source`: single-quoted, nothing expands.
pub fn shell(vars: &BTreeMap<String, Value>, redact: bool) -> String {
    vars.iter()
        .map(|(k, v)| {
            format!(
                "export {k}='{}'\n",
                v.to_interpolated_string(redact).replace('\'', r"'\''")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_round_trips_through_the_parser() {
        let v = from_yaml(
            "b: [1, x, {c: 'yes'}]\na: \"multi\\nline\"\nd: {}\n",
            &Limits::default(),
        )
        .unwrap();
        let text = to_yaml(&v, false);
        let back = from_yaml(&text, &Limits::default()).unwrap();
        assert_eq!(back.to_json_compact(), v.to_json_compact(), "{text}");
    }

    #[test]
    fn yaml_quote_reads_back_exactly() {
        for s in ["a\"b\\c\nd\u{1}\u{7f}", "plain", "", "ünï ${x} #c"] {
            let v = from_yaml(&format!("k: {}", yaml_quote(s)), &Limits::default()).unwrap();
            assert_eq!(v.get("k").and_then(Value::as_str), Some(s));
        }
    }

    #[test]
    fn shell_output_cannot_expand() {
        let vars = BTreeMap::from([("A".to_owned(), Value::string("$(rm -rf /) 'q' `x`"))]);
        assert_eq!(
            shell(&vars, false),
            "export A='$(rm -rf /) '\\''q'\\'' `x`'\n"
        );
    }
}
