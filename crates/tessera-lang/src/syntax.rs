//! The syntax layer: YAML text to a tree of nodes that know where they came from.
//!
//! Scalars are resolved by the YAML 1.2 core schema (`yes` stays a string). Aliases are
//! refused, as ESC refuses them, so no document can expand into more than it is. Size and
//! nesting are bounded before anything is built.

use std::sync::Arc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::diag::{Diagnostic, Diagnostics, Pos, Range, Severity};
use crate::limits::Limits;
use crate::number::Number;

/// A parsed YAML node with its source range.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What the node holds.
    pub kind: NodeKind,
    /// Where it is in the document.
    pub range: Range,
}

/// The shapes a YAML node can take.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// `null`, `~` or nothing.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer or float.
    Number(Number),
    /// A string; `quoted` is false only for plain scalars.
    String {
        /// The text.
        value: String,
        /// Whether it was written quoted or as a block scalar.
        quoted: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order; duplicates are kept for the caller to judge.
    Map(Vec<Entry>),
}

/// One `key: value` pair of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key text.
    pub key: String,
    /// Where the key is.
    pub key_range: Range,
    /// The value.
    pub value: Node,
}

/// Maps saphyr's character indices to byte offsets.
struct Positions<'a> {
    src: &'a str,
    ascii: bool,
    char_bytes: Vec<u32>,
}

impl<'a> Positions<'a> {
    fn new(src: &'a str) -> Self {
        let ascii = src.is_ascii();
        let char_bytes = if ascii {
            Vec::new()
        } else {
            let mut v: Vec<u32> = src.char_indices().map(|(b, _)| b as u32).collect();
            v.push(src.len() as u32);
            v
        };
        Positions {
            src,
            ascii,
            char_bytes,
        }
    }

    fn pos(&self, m: &saphyr_parser::Marker) -> Pos {
        let byte = if self.ascii {
            m.index().min(self.src.len()) as u32
        } else {
            self.char_bytes
                .get(m.index())
                .copied()
                .unwrap_or(self.src.len() as u32)
        };
        Pos {
            line: m.line() as u32,
            column: m.col() as u32 + 1,
            byte,
        }
    }

    fn range(&self, s: &Span) -> Range {
        Range {
            begin: self.pos(&s.start),
            end: self.pos(&s.end),
        }
    }
}

enum Frame {
    Seq {
        items: Vec<Node>,
        begin: Pos,
    },
    Map {
        entries: Vec<Entry>,
        begin: Pos,
        key: Option<(String, Range)>,
    },
}

/// Parses one YAML document. Returns the root node (absent only when the YAML itself is
/// broken) and every diagnostic found.
pub fn parse(environment: &Arc<str>, src: &str, limits: &Limits) -> (Option<Node>, Diagnostics) {
    let mut diags = Diagnostics::new();
    let error = |diags: &mut Diagnostics, range: Range, message: String| {
        diags.push(Diagnostic {
            severity: Severity::Error,
            message,
            environment: environment.clone(),
            range,
            path: String::new(),
        })
    };
    if src.len() > limits.max_document_bytes {
        error(
            &mut diags,
            Range::at(Pos {
                line: 1,
                column: 1,
                byte: 0,
            }),
            format!(
                "document is {} bytes, more than the limit of {} bytes",
                src.len(),
                limits.max_document_bytes
            ),
        );
        return (None, diags);
    }
    let positions = Positions::new(src);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Node> = None;
    let mut documents = 0usize;
    let mut broken = false;

    for item in Parser::new_from_str(src) {
        let (event, span) = match item {
            Ok(ev) => ev,
            Err(e) => {
                let m = e.marker();
                error(
                    &mut diags,
                    Range::at(positions.pos(m)),
                    yaml_message(e.info()),
                );
                return (None, diags);
            }
        };
        let range = positions.range(&span);
        let node = match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing | Event::DocumentEnd => continue,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    error(
                        &mut diags,
                        range,
                        "Documents must only contain a single value".to_owned(),
                    );
                    broken = true;
                    break;
                }
                continue;
            }
            Event::Alias(_) => {
                error(
                    &mut diags,
                    range,
                    "alias nodes are not supported".to_owned(),
                );
                broken = true;
                Node {
                    kind: NodeKind::Null,
                    range,
                }
            }
            Event::Scalar(value, style, _anchor, tag) => {
                let tag = tag.map(|t| format!("{}{}", t.handle, t.suffix));
                match resolve_scalar(&value, style, tag.as_deref()) {
                    Ok(kind) => Node { kind, range },
                    Err(message) => {
                        error(&mut diags, range, message);
                        Node {
                            kind: NodeKind::String {
                                value: value.into_owned(),
                                quoted: true,
                            },
                            range,
                        }
                    }
                }
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if stack.len() >= limits.max_depth {
                    error(
                        &mut diags,
                        range,
                        format!(
                            "document nests deeper than the limit of {} levels",
                            limits.max_depth
                        ),
                    );
                    return (None, diags);
                }
                stack.push(match event {
                    Event::SequenceStart(..) => Frame::Seq {
                        items: Vec::new(),
                        begin: range.begin,
                    },
                    _ => Frame::Map {
                        entries: Vec::new(),
                        begin: range.begin,
                        key: None,
                    },
                });
                continue;
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq { items, begin }) => {
                    let end = items
                        .last()
                        .map_or(range.end, |n| n.range.end.max(range.begin));
                    Node {
                        kind: NodeKind::Seq(items),
                        range: Range {
                            begin,
                            end: end.max(begin),
                        },
                    }
                }
                _ => continue,
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map { entries, begin, .. }) => {
                    let end = entries
                        .last()
                        .map_or(range.end, |e| e.value.range.end.max(range.begin));
                    Node {
                        kind: NodeKind::Map(entries),
                        range: Range {
                            begin,
                            end: end.max(begin),
                        },
                    }
                }
                _ => continue,
            },
        };
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                Some((k, key_range)) => entries.push(Entry {
                    key: k,
                    key_range,
                    value: node,
                }),
                None => match key_text(&node) {
                    Ok(k) => *key = Some((k, node.range)),
                    Err(message) => {
                        error(&mut diags, node.range, message);
                        *key = Some((String::new(), node.range));
                    }
                },
            },
        }
    }
    if broken {
        return (None, diags);
    }
    let root = root.unwrap_or(Node {
        kind: NodeKind::Null,
        range: Range::at(Pos {
            line: 1,
            column: 1,
            byte: 0,
        }),
    });
    (Some(root), diags)
}

fn yaml_message(info: &str) -> String {
    format!("invalid YAML: {info}")
}

fn key_text(node: &Node) -> Result<String, String> {
    match &node.kind {
        NodeKind::String { value, .. } => Ok(value.clone()),
        _ => Err("mapping keys must be strings".to_owned()),
    }
}

/// Resolves a scalar by the YAML 1.2 core schema as yaml.v3 applies it, honouring `!!` tags.
fn resolve_scalar(value: &str, style: ScalarStyle, tag: Option<&str>) -> Result<NodeKind, String> {
    let quoted = style != ScalarStyle::Plain;
    let string = || NodeKind::String {
        value: value.to_owned(),
        quoted,
    };
    let number = |v: &str| parse_int(v).or_else(|| parse_float(v).map(Number::from_f64));
    match tag {
        Some("tag:yaml.org,2002:str") | Some("!!str") => {
            return Ok(NodeKind::String {
                value: value.to_owned(),
                quoted: true,
            })
        }
        Some("tag:yaml.org,2002:int") | Some("!!int") => {
            return parse_int(value)
                .map(NodeKind::Number)
                .ok_or_else(|| format!("cannot decode {value:?} as an integer"))
        }
        Some("tag:yaml.org,2002:float") | Some("!!float") => {
            return number(value)
                .map(NodeKind::Number)
                .ok_or_else(|| format!("cannot decode {value:?} as a float"))
        }
        Some("tag:yaml.org,2002:bool") | Some("!!bool") => {
            return parse_bool(value)
                .map(NodeKind::Bool)
                .ok_or_else(|| format!("cannot decode {value:?} as a boolean"))
        }
        Some("tag:yaml.org,2002:null") | Some("!!null") => return Ok(NodeKind::Null),
        _ => {}
    }
    if quoted {
        return Ok(string());
    }
    if matches!(value, "" | "~" | "null" | "Null" | "NULL") {
        return Ok(NodeKind::Null);
    }
    if let Some(b) = parse_bool(value) {
        return Ok(NodeKind::Bool(b));
    }
    Ok(number(value).map_or_else(string, NodeKind::Number))
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` then `ParseUint`, after removing underscores.
fn parse_int(s: &str) -> Option<Number> {
    let s = s.replace('_', "");
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, &s[..]),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(h) = lower.strip_prefix("0x") {
        (16, h)
    } else if let Some(o) = lower.strip_prefix("0o") {
        (8, o)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, &lower[..])
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(body, radix).ok()?;
    if neg {
        let v = if magnitude == 1u64 << 63 {
            i64::MIN
        } else {
            -(i64::try_from(magnitude).ok()?)
        };
        Some(Number::from_i64(v))
    } else {
        Some(Number::from_u64(magnitude))
    }
}

fn parse_float(s: &str) -> Option<f64> {
    let s = &s.replace('_', "");
    match s.as_str() {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    // [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let f = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = i - f;
    }
    if int_digits == 0 && frac_digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let e = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == e {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    s.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(src: &str) -> Node {
        let (node, diags) = parse(&Arc::from("test"), src, &Limits::default());
        assert!(diags.is_empty(), "{diags:?}");
        node.unwrap()
    }

    fn scalar(src: &str) -> NodeKind {
        match parse_ok(&format!("k: {src}")).kind {
            NodeKind::Map(mut e) => e.remove(0).value.kind,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn core_schema_scalars() {
        assert_eq!(
            scalar("yes"),
            NodeKind::String {
                value: "yes".into(),
                quoted: false
            }
        );
        assert_eq!(
            scalar("on"),
            NodeKind::String {
                value: "on".into(),
                quoted: false
            }
        );
        assert_eq!(scalar("True"), NodeKind::Bool(true));
        assert_eq!(scalar("~"), NodeKind::Null);
        assert_eq!(scalar("0x1F"), NodeKind::Number(Number::from_i64(31)));
        assert_eq!(scalar("0o17"), NodeKind::Number(Number::from_i64(15)));
        assert_eq!(scalar("-12"), NodeKind::Number(Number::from_i64(-12)));
        assert_eq!(scalar("2.50"), NodeKind::Number(Number::from_f64(2.5)));
        assert_eq!(scalar("1e3"), NodeKind::Number(Number::from_f64(1000.0)));
        assert_eq!(
            scalar("'12'"),
            NodeKind::String {
                value: "12".into(),
                quoted: true
            }
        );
        assert_eq!(
            scalar("!!str 12"),
            NodeKind::String {
                value: "12".into(),
                quoted: true
            }
        );
        assert_eq!(scalar("0777"), NodeKind::Number(Number::from_i64(511)));
        assert_eq!(scalar("1_000"), NodeKind::Number(Number::from_i64(1000)));
        assert_eq!(scalar("1.0"), NodeKind::Number(Number::from_f64(1.0)));
        assert_eq!(
            scalar("1.2.3"),
            NodeKind::String {
                value: "1.2.3".into(),
                quoted: false
            }
        );
    }

    #[test]
    fn positions_are_one_based_with_byte_offsets() {
        let node = parse_ok("a: 1\nbé: x\nc: y\n");
        let NodeKind::Map(entries) = node.kind else {
            panic!()
        };
        assert_eq!(
            entries[2].key_range.begin,
            Pos {
                line: 3,
                column: 1,
                byte: 12
            }
        );
        assert_eq!(
            entries[1].value.range.begin,
            Pos {
                line: 2,
                column: 5,
                byte: 10
            }
        );
    }

    #[test]
    fn aliases_are_refused() {
        let (_, diags) = parse(&Arc::from("t"), "a: &x 1\nb: *x\n", &Limits::default());
        assert!(diags.has_errors());
        assert_eq!(diags.iter().next().unwrap().range.begin.line, 2);
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "[".repeat(100) + &"]".repeat(100);
        let (node, diags) = parse(&Arc::from("t"), &deep, &Limits::default());
        assert!(node.is_none());
        assert!(diags
            .iter()
            .next()
            .unwrap()
            .message
            .contains("nests deeper"));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let (node, diags) = parse(&Arc::from("t"), "a: [1, 2\nb: 3\n", &Limits::default());
        assert!(node.is_none());
        assert!(diags.has_errors());
    }

    #[test]
    fn numeric_keys_must_be_quoted() {
        let (_, diags) = parse(&Arc::from("t"), "1: a\n'2': b\n", &Limits::default());
        assert_eq!(diags.len(), 1);
    }
}
