//! The abstract syntax of an environment: imports, and value expressions in an arena.
//!
//! Parsing turns YAML nodes into expressions (literals, interpolations, references and
//! builtin calls) and reports every structural mistake as a diagnostic. Expressions live in
//! an arena indexed by [`ExprId`] so evaluation can keep per-expression state cheaply.

use std::collections::HashSet;
use std::sync::Arc;

use crate::diag::{nearest, Diagnostic, Diagnostics, Pos, Range, Severity};
use crate::limits::Limits;
use crate::number::Number;
use crate::syntax::{self, Entry, Node, NodeKind};

/// Index of an expression in its declaration's arena.
pub type ExprId = usize;

/// A parsed environment.
#[derive(Debug)]
pub struct Decl {
    /// The environment's name, such as `project/env`.
    pub name: Arc<str>,
    /// The optional `description`.
    pub description: Option<String>,
    /// Explicit imports, in order.
    pub imports: Vec<Import>,
    /// The root `values` object, if any.
    pub values: Option<ExprId>,
    /// Every expression.
    pub exprs: Vec<Expr>,
    /// Environments named by `${environments.project.env…}` references, in first-use order.
    pub implicit_imports: Vec<String>,
    /// For each object literal, its properties' positions sorted by key: the order they are
    /// evaluated in, and a binary search for references.
    pub(crate) sorted: Vec<Option<Box<[usize]>>>,
    /// How each expression is reached from `values`.
    pub(crate) reach: Vec<Reach>,
}

/// How an expression is reached from `values`: only those reached through object literals
/// alone lie over what the imports hold at the same keys.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reach {
    Not,
    Root,
    /// Property `.1` of the object literal `.0`.
    Property(ExprId, usize),
}

/// One entry of `imports`.
#[derive(Debug, Clone)]
pub struct Import {
    /// The imported environment's name.
    pub name: String,
    /// Whether its values merge into this environment's (`merge: false` turns that off).
    pub merge: bool,
    /// Where the entry is.
    pub range: Range,
}

/// An expression with where it is and its document path.
#[derive(Debug)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it is.
    pub range: Range,
    /// Its path in the document, such as `values.db["fn::secret"]`.
    pub path: String,
}

/// Expression forms.
#[derive(Debug)]
pub enum ExprKind {
    /// `null`.
    Null,
    /// A boolean literal.
    Bool(bool),
    /// A number literal.
    Number(Number),
    /// A string literal (after `$${` unescaping).
    String(String),
    /// A string with `${…}` parts.
    Interpolate(Vec<Part>),
    /// A whole-value reference, `"${a.b}"`.
    Symbol(Access),
    /// An array literal.
    Array(Vec<ExprId>),
    /// An object literal: keys in document order, duplicates removed.
    Object(Vec<Property>),
    /// `fn::secret`.
    Secret(SecretArg),
    /// `fn::toJSON`.
    ToJson(ExprId),
    /// `fn::fromJSON`.
    FromJson(ExprId),
    /// `fn::toYAML`.
    ToYaml(ExprId),
    /// `fn::fromYAML`.
    FromYaml(ExprId),
    /// `fn::toBase64`.
    ToBase64(ExprId),
    /// `fn::fromBase64`.
    FromBase64(ExprId),
    /// `fn::toString`.
    ToString(ExprId),
    /// `fn::join: [delimiter, values]`.
    Join(ExprId, ExprId),
    /// `fn::split: [delimiter, string]`.
    Split(ExprId, ExprId),
    /// `fn::concat: [arrays…]`.
    Concat(ExprId),
    /// `fn::final`.
    Final(ExprId),
    /// `fn::validate: {schema, value}`.
    Validate {
        /// The JSON Schema.
        schema: ExprId,
        /// The value checked and passed through.
        value: ExprId,
    },
    /// `fn::open::<provider>` or `fn::open: {provider, inputs}`.
    Open {
        /// The provider's name.
        provider: String,
        /// Its inputs.
        inputs: ExprId,
    },
    /// `fn::rotate::<rotator>` or `fn::rotate: {provider, inputs, state}`.
    Rotate {
        /// The rotator's name.
        rotator: String,
        /// Its inputs.
        inputs: ExprId,
        /// Its state, if any.
        state: Option<ExprId>,
    },
}

/// A property of an object literal.
#[derive(Debug)]
pub struct Property {
    /// The key.
    pub key: String,
    /// Where the key is.
    pub key_range: Range,
    /// The value.
    pub value: ExprId,
}

/// The argument of `fn::secret`.
#[derive(Debug)]
pub enum SecretArg {
    /// A plaintext string literal.
    Plaintext(String),
    /// `{ciphertext: …}` as stored.
    Ciphertext(String),
    /// Anything else (already reported).
    Invalid,
}

/// A piece of an interpolated string: literal text, then an optional reference.
#[derive(Debug)]
pub struct Part {
    /// Literal text before the reference.
    pub text: String,
    /// The reference, if any.
    pub access: Option<Access>,
}

/// A property path such as `a.b[0]["c.d"]`.
#[derive(Debug, Clone)]
pub struct Access {
    /// The accessors, first one a key.
    pub accessors: Vec<Accessor>,
    /// Where the whole `${…}` is.
    pub range: Range,
}

/// One step of a property path.
#[derive(Debug, Clone)]
pub enum Accessor {
    /// `.name` or `["name"]`.
    Key(String, Range),
    /// `[n]`.
    Index(i64, Range),
}

impl Accessor {
    /// Where this accessor is.
    pub fn range(&self) -> Range {
        match self {
            Accessor::Key(_, r) | Accessor::Index(_, r) => *r,
        }
    }
}

/// Builtin function names, for recognition and suggestions.
pub const BUILTINS: &[&str] = &[
    "fn::concat",
    "fn::final",
    "fn::fromBase64",
    "fn::fromJSON",
    "fn::fromYAML",
    "fn::join",
    "fn::open",
    "fn::rotate",
    "fn::secret",
    "fn::split",
    "fn::toBase64",
    "fn::toJSON",
    "fn::toString",
    "fn::toYAML",
    "fn::validate",
];

/// Keys that may not appear at the top of `values`.
pub const RESERVED_KEYS: &[&str] = &["imports", "context", "environments"];

/// Appends a key to a document path as ESC does: `.key` for identifiers, `["key"]` otherwise.
pub fn join_key(path: &str, key: &str) -> String {
    let ident = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ident {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    } else {
        format!("{path}[{}]", crate::value::go_quote(key))
    }
}

struct Parser<'a> {
    name: Arc<str>,
    src: &'a str,
    exprs: Vec<Expr>,
    diags: Diagnostics,
    implicit: Vec<String>,
    seen_implicit: HashSet<String>,
}

/// Parses an environment document. The declaration is absent only when the YAML itself
/// could not be read.
pub fn parse(name: &str, src: &str, limits: &Limits) -> (Option<Arc<Decl>>, Diagnostics) {
    let name: Arc<str> = Arc::from(name);
    let (root, mut diags) = syntax::parse(&name, src, limits);
    let Some(root) = root else {
        return (None, diags);
    };
    let mut p = Parser {
        name: name.clone(),
        src,
        exprs: Vec::new(),
        diags: Diagnostics::new(),
        implicit: Vec::new(),
        seen_implicit: HashSet::new(),
    };
    let decl = p.environment(&root);
    diags.extend(p.diags);
    let total = decl.imports.len() + decl.implicit_imports.len();
    if total > limits.max_imports {
        diags.push(Diagnostic {
            severity: Severity::Error,
            message: format!(
                "environment imports {total} environments, more than the limit of {}",
                limits.max_imports
            ),
            environment: name,
            range: decl
                .imports
                .get(limits.max_imports)
                .map_or(root.range, |i| i.range),
            path: "imports".into(),
        });
    }
    (Some(Arc::new(decl)), diags)
}

impl Parser<'_> {
    fn diag(&mut self, severity: Severity, range: Range, path: &str, message: String) {
        self.diags.push(Diagnostic {
            severity,
            message,
            environment: self.name.clone(),
            range,
            path: path.to_owned(),
        });
    }

    fn error(&mut self, range: Range, path: &str, message: impl Into<String>) {
        self.diag(Severity::Error, range, path, message.into());
    }

    fn warn(&mut self, range: Range, path: &str, message: impl Into<String>) {
        self.diag(Severity::Warning, range, path, message.into());
    }

    fn push(&mut self, kind: ExprKind, range: Range, path: &str) -> ExprId {
        self.exprs.push(Expr {
            kind,
            range,
            path: path.to_owned(),
        });
        self.exprs.len() - 1
    }

    fn environment(&mut self, root: &Node) -> Decl {
        let mut decl = Decl {
            name: self.name.clone(),
            description: None,
            imports: Vec::new(),
            values: None,
            exprs: Vec::new(),
            implicit_imports: Vec::new(),
            sorted: Vec::new(),
            reach: Vec::new(),
        };
        let entries = match &root.kind {
            NodeKind::Map(entries) => entries.as_slice(),
            NodeKind::Null => &[],
            _ => {
                self.error(root.range, "", "environment must be an object");
                &[]
            }
        };
        let mut seen: Vec<&'static str> = Vec::new();
        for Entry {
            key,
            key_range,
            value,
        } in entries
        {
            let field = ["imports", "values", "description"]
                .into_iter()
                .find(|f| f.eq_ignore_ascii_case(key));
            let Some(field) = field else {
                let hint = nearest(key, ["imports", "values", "description"])
                    .map(|n| format!("; did you mean {n:?}?"))
                    .unwrap_or_default();
                self.warn(
                    *key_range,
                    key,
                    format!("unknown top-level key {key:?}{hint}"),
                );
                continue;
            };
            if seen.contains(&field) {
                self.warn(
                    *key_range,
                    field,
                    format!("duplicate top-level key {key:?}: the last one is used"),
                );
            }
            seen.push(field);
            match field {
                "imports" => decl.imports = self.imports(value),
                "description" => match &value.kind {
                    NodeKind::String { value: s, .. } => decl.description = Some(s.clone()),
                    NodeKind::Null => decl.description = None,
                    _ => self.error(value.range, "description", "description must be a string"),
                },
                _ => decl.values = self.values(value),
            }
        }
        decl.exprs = std::mem::take(&mut self.exprs);
        decl.sorted = decl
            .exprs
            .iter()
            .map(|e| match &e.kind {
                ExprKind::Object(props) => {
                    let mut order: Vec<usize> = (0..props.len()).collect();
                    order.sort_by(|&a, &b| props[a].key.cmp(&props[b].key));
                    Some(order.into())
                }
                _ => None,
            })
            .collect();
        decl.reach = vec![Reach::Not; decl.exprs.len()];
        if let Some(root) = decl.values {
            decl.reach[root] = Reach::Root;
            fill_reach(&decl.exprs, root, &mut decl.reach);
        }
        decl.implicit_imports = std::mem::take(&mut self.implicit);
        decl
    }

    fn imports(&mut self, node: &Node) -> Vec<Import> {
        let NodeKind::Seq(items) = &node.kind else {
            self.error(node.range, "imports", "imports must be a list");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("imports[{i}]");
            match &item.kind {
                NodeKind::String { value, .. } => out.push(Import {
                    name: value.clone(),
                    merge: true,
                    range: item.range,
                }),
                NodeKind::Map(entries) if entries.len() == 1 => {
                    let e = &entries[0];
                    let mut merge = true;
                    match &e.value.kind {
                        NodeKind::Null => {}
                        NodeKind::Map(meta) => {
                            for m in meta {
                                if m.key == "merge" {
                                    match m.value.kind {
                                        NodeKind::Bool(b) => merge = b,
                                        _ => self.error(
                                            m.value.range,
                                            &path,
                                            "merge must be a boolean value",
                                        ),
                                    }
                                } else {
                                    let hint = nearest(&m.key, ["merge"])
                                        .map(|n| format!("; did you mean {n:?}?"))
                                        .unwrap_or_default();
                                    self.warn(
                                        m.key_range,
                                        &path,
                                        format!("unknown import option {:?}{hint}", m.key),
                                    );
                                }
                            }
                        }
                        _ => self.error(e.value.range, &path, "import must be an object"),
                    }
                    out.push(Import {
                        name: e.key.clone(),
                        merge,
                        range: e.key_range,
                    });
                }
                NodeKind::Map(_) => self.error(item.range, &path, "import must have a single key"),
                _ => self.error(item.range, &path, "import must be a string or an object"),
            }
        }
        out
    }

    fn values(&mut self, node: &Node) -> Option<ExprId> {
        let NodeKind::Map(entries) = &node.kind else {
            self.error(node.range, "values", "values must be an object");
            return None;
        };
        let mut props = Vec::new();
        let mut seen = HashSet::new();
        for e in entries {
            let path = join_key("values", &e.key);
            if RESERVED_KEYS.contains(&e.key.as_str()) {
                self.error(e.key_range, &path, format!("{:?} is a reserved key", e.key));
                continue;
            }
            if e.key.starts_with("fn::") {
                self.error(
                    e.key_range,
                    &path,
                    format!(
                        "builtin function call {:?} not allowed at the top level",
                        e.key
                    ),
                );
                continue;
            }
            if !seen.insert(e.key.clone()) {
                self.error(e.key_range, &path, format!("duplicate key {:?}", e.key));
                continue;
            }
            if matches!(
                e.key.as_str(),
                "environmentVariables" | "files" | "pulumiConfig"
            ) && !matches!(e.value.kind, NodeKind::Map(_) | NodeKind::String { .. })
            {
                self.error(e.value.range, &path, format!("{} must be an object", e.key));
            }
            let value = self.expr(&e.value, &path);
            props.push(Property {
                key: e.key.clone(),
                key_range: e.key_range,
                value,
            });
        }
        Some(self.push(ExprKind::Object(props), node.range, "values"))
    }

    fn expr(&mut self, node: &Node, path: &str) -> ExprId {
        let kind = match &node.kind {
            NodeKind::Null => ExprKind::Null,
            NodeKind::Bool(b) => ExprKind::Bool(*b),
            NodeKind::Number(n) => ExprKind::Number(n.clone()),
            NodeKind::String { value, quoted } => self.string(node, value, *quoted, path),
            NodeKind::Seq(items) => {
                let ids = items
                    .iter()
                    .enumerate()
                    .map(|(i, n)| self.expr(n, &format!("{path}[{i}]")))
                    .collect();
                ExprKind::Array(ids)
            }
            NodeKind::Map(entries) => return self.object(node, entries, path),
        };
        self.push(kind, node.range, path)
    }

    fn object(&mut self, node: &Node, entries: &[Entry], path: &str) -> ExprId {
        let fn_keys: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.key.to_ascii_lowercase().starts_with("fn::"))
            .collect();
        if entries.len() == 1 && fn_keys.len() == 1 {
            if let Some(id) = self.builtin(node, &entries[0], path) {
                return id;
            }
        } else {
            for e in &fn_keys {
                self.error(
                    e.key_range,
                    &join_key(path, &e.key),
                    format!("illegal call to builtin function: {:?} must be the only key within its containing object", e.key),
                );
            }
        }
        let mut props = Vec::new();
        let mut seen = HashSet::new();
        for e in entries {
            let p = join_key(path, &e.key);
            if !seen.insert(e.key.clone()) {
                self.error(e.key_range, &p, format!("duplicate key {:?}", e.key));
                continue;
            }
            let value = self.expr(&e.value, &p);
            props.push(Property {
                key: e.key.clone(),
                key_range: e.key_range,
                value,
            });
        }
        self.push(ExprKind::Object(props), node.range, path)
    }

    /// Recognises a builtin call; `None` means "treat as a plain object" (already reported).
    fn builtin(&mut self, node: &Node, e: &Entry, path: &str) -> Option<ExprId> {
        let name = e.key.as_str();
        let p = join_key(path, name);
        let arg = &e.value;
        let kind = if let Some(provider) = name.strip_prefix("fn::open::") {
            if matches!(arg.kind, NodeKind::Null) {
                self.error(arg.range, &p, "missing provider inputs");
            }
            ExprKind::Open {
                provider: provider.to_owned(),
                inputs: self.expr(arg, &p),
            }
        } else if let Some(rotator) = name.strip_prefix("fn::rotate::") {
            let (inputs, state) = self.rotate_args(arg, &p, false)?;
            ExprKind::Rotate {
                rotator: rotator.to_owned(),
                inputs,
                state,
            }
        } else {
            match name {
                "fn::secret" => ExprKind::Secret(self.secret_arg(arg, &p)),
                "fn::toJSON" => ExprKind::ToJson(self.expr(arg, &p)),
                "fn::fromJSON" => ExprKind::FromJson(self.expr(arg, &p)),
                "fn::toYAML" => ExprKind::ToYaml(self.expr(arg, &p)),
                "fn::fromYAML" => ExprKind::FromYaml(self.expr(arg, &p)),
                "fn::toBase64" => ExprKind::ToBase64(self.expr(arg, &p)),
                "fn::fromBase64" => ExprKind::FromBase64(self.expr(arg, &p)),
                "fn::toString" => ExprKind::ToString(self.expr(arg, &p)),
                "fn::final" => ExprKind::Final(self.expr(arg, &p)),
                "fn::join" | "fn::split" => {
                    let NodeKind::Seq(items) = &arg.kind else {
                        self.error(
                            arg.range,
                            &p,
                            format!("the argument to {name} must be a two-valued list"),
                        );
                        return None;
                    };
                    if items.len() != 2 {
                        self.error(
                            arg.range,
                            &p,
                            format!("the argument to {name} must be a two-valued list"),
                        );
                        return None;
                    }
                    let a = self.expr(&items[0], &format!("{p}[0]"));
                    let b = self.expr(&items[1], &format!("{p}[1]"));
                    if name == "fn::join" {
                        ExprKind::Join(a, b)
                    } else {
                        ExprKind::Split(a, b)
                    }
                }
                "fn::concat" => {
                    if !matches!(arg.kind, NodeKind::Seq(_) | NodeKind::String { .. }) {
                        self.error(
                            arg.range,
                            &p,
                            "the argument to fn::concat must be an array of arrays",
                        );
                        return None;
                    }
                    ExprKind::Concat(self.expr(arg, &p))
                }
                "fn::validate" => {
                    let NodeKind::Map(entries) = &arg.kind else {
                        self.error(arg.range, &p, "the argument to fn::validate must be an object containing 'schema' and 'value'");
                        return None;
                    };
                    let schema = self.field(entries, "schema", &p, arg.range, &["schema", "value"]);
                    let value = self.field(entries, "value", &p, arg.range, &["schema", "value"]);
                    ExprKind::Validate {
                        schema: schema?,
                        value: value?,
                    }
                }
                "fn::open" => {
                    let NodeKind::Map(entries) = &arg.kind else {
                        self.error(arg.range, &p, "the argument to fn::open must be an object containing 'provider' and 'inputs'");
                        return None;
                    };
                    let provider =
                        self.provider_name(entries, &p, arg.range, &["provider", "inputs"])?;
                    let inputs =
                        self.field(entries, "inputs", &p, arg.range, &["provider", "inputs"])?;
                    ExprKind::Open { provider, inputs }
                }
                "fn::rotate" => {
                    let NodeKind::Map(entries) = &arg.kind else {
                        self.error(arg.range, &p, "the argument to fn::rotate must be an object containing 'provider', 'inputs' and 'state'");
                        return None;
                    };
                    let rotator = self.provider_name(
                        entries,
                        &p,
                        arg.range,
                        &["provider", "inputs", "state"],
                    )?;
                    let (inputs, state) = self.rotate_args(arg, &p, true)?;
                    ExprKind::Rotate {
                        rotator,
                        inputs,
                        state,
                    }
                }
                _ => {
                    let hint = nearest(name, BUILTINS.iter().copied())
                        .map(|n| format!("; did you mean {n:?}?"))
                        .unwrap_or_default();
                    self.error(
                        e.key_range,
                        &p,
                        format!(
                            "unknown builtin function {name:?}: 'fn::' is a reserved prefix{hint}"
                        ),
                    );
                    return None;
                }
            }
        };
        Some(self.push(kind, node.range, &p))
    }

    fn field(
        &mut self,
        entries: &[Entry],
        key: &str,
        path: &str,
        range: Range,
        known: &[&str],
    ) -> Option<ExprId> {
        for e in entries {
            if !known.contains(&e.key.as_str()) && e.key == key {
                continue;
            }
        }
        self.warn_unknown_fields(entries, path, known);
        match entries.iter().find(|e| e.key == key) {
            Some(e) => Some(self.expr(&e.value, &join_key(path, key))),
            None => {
                let message = match key {
                    "inputs" => "missing provider inputs ('inputs')".to_owned(),
                    _ => format!("missing required property '{key}'"),
                };
                self.error(range, path, message);
                None
            }
        }
    }

    fn warn_unknown_fields(&mut self, entries: &[Entry], path: &str, known: &[&str]) {
        for e in entries {
            if !known.contains(&e.key.as_str()) {
                let hint = nearest(&e.key, known.iter().copied())
                    .map(|n| format!("; did you mean {n:?}?"))
                    .unwrap_or_default();
                self.warn(
                    e.key_range,
                    &join_key(path, &e.key),
                    format!("unknown key {:?}{hint}", e.key),
                );
            }
        }
    }

    fn provider_name(
        &mut self,
        entries: &[Entry],
        path: &str,
        range: Range,
        known: &[&str],
    ) -> Option<String> {
        match entries.iter().find(|e| e.key == "provider") {
            None => {
                self.error(range, path, "missing provider name ('provider')");
                None
            }
            Some(Entry {
                value:
                    Node {
                        kind: NodeKind::String { value, .. },
                        ..
                    },
                ..
            }) if !value.contains("${") => Some(value.clone()),
            Some(e) => {
                let _ = known;
                self.error(
                    e.value.range,
                    &join_key(path, "provider"),
                    "provider name must be a string literal",
                );
                None
            }
        }
    }

    fn rotate_args(
        &mut self,
        arg: &Node,
        path: &str,
        long: bool,
    ) -> Option<(ExprId, Option<ExprId>)> {
        let known: &[&str] = if long {
            &["provider", "inputs", "state"]
        } else {
            &["inputs", "state"]
        };
        let NodeKind::Map(entries) = &arg.kind else {
            self.error(
                arg.range,
                path,
                "the argument to fn::rotate must be an object containing 'inputs' and 'state'",
            );
            return None;
        };
        let inputs = self.field(entries, "inputs", path, arg.range, known)?;
        let state = match entries.iter().find(|e| e.key == "state") {
            None => None,
            Some(e) if matches!(e.value.kind, NodeKind::Null) => None,
            Some(e) if matches!(e.value.kind, NodeKind::Map(_)) => {
                Some(self.expr(&e.value, &join_key(path, "state")))
            }
            Some(e) => {
                self.error(
                    e.value.range,
                    &join_key(path, "state"),
                    "rotation state must be an object literal",
                );
                return None;
            }
        };
        Some((inputs, state))
    }

    fn secret_arg(&mut self, arg: &Node, path: &str) -> SecretArg {
        match &arg.kind {
            NodeKind::String { value, .. } if !value.contains("${") => {
                SecretArg::Plaintext(value.replace("$${", "${"))
            }
            NodeKind::Map(entries) if entries.len() == 1 && entries[0].key == "ciphertext" => {
                match &entries[0].value.kind {
                    NodeKind::String { value, .. } => SecretArg::Ciphertext(value.clone()),
                    _ => {
                        self.error(entries[0].value.range, path, "ciphertext must be a string");
                        SecretArg::Invalid
                    }
                }
            }
            _ => {
                self.error(arg.range, path, "secret values must be string literals");
                SecretArg::Invalid
            }
        }
    }

    /// Classifies a string: literal, whole-value reference, or interpolation.
    fn string(&mut self, node: &Node, value: &str, quoted: bool, path: &str) -> ExprKind {
        if !value.contains('$') {
            return ExprKind::String(value.to_owned());
        }
        let offsets = self.char_columns(node, value, quoted);
        let parts = self.interpolation(node, value, offsets.as_deref(), path);
        match parts.as_slice() {
            [] => ExprKind::String(String::new()),
            [Part { text, access: None }] => ExprKind::String(text.clone()),
            [Part {
                text,
                access: Some(_),
            }] if text.is_empty() => {
                let Some(Part {
                    access: Some(a), ..
                }) = parts.into_iter().next()
                else {
                    unreachable!()
                };
                ExprKind::Symbol(a)
            }
            _ => ExprKind::Interpolate(parts),
        }
    }

    /// For single-line scalars written without escapes, the source position of each char.
    fn char_columns(&self, node: &Node, value: &str, quoted: bool) -> Option<Vec<Pos>> {
        let r = node.range;
        if r.begin.line != r.end.line {
            return None;
        }
        let text = self.src.get(r.begin.byte as usize..r.end.byte as usize)?;
        let inner = if quoted {
            text.get(1..text.len().checked_sub(1)?)?
        } else {
            text.trim_end()
        };
        if inner != value {
            return None;
        }
        let start = r.begin.byte as usize + usize::from(quoted);
        let col0 = r.begin.column + u32::from(quoted);
        let mut out = Vec::with_capacity(value.len() + 1);
        let mut col = col0;
        for (b, _) in value.char_indices() {
            out.push(Pos {
                line: r.begin.line,
                column: col,
                byte: (start + b) as u32,
            });
            col += 1;
        }
        out.push(Pos {
            line: r.begin.line,
            column: col,
            byte: (start + value.len()) as u32,
        });
        Some(out)
    }

    fn interpolation(
        &mut self,
        node: &Node,
        s: &str,
        cols: Option<&[Pos]>,
        path: &str,
    ) -> Vec<Part> {
        let chars: Vec<char> = s.chars().collect();
        let pos = |i: usize| {
            cols.and_then(|c| c.get(i).copied())
                .unwrap_or(node.range.begin)
        };
        let range = |a: usize, b: usize| match cols {
            Some(_) => Range {
                begin: pos(a),
                end: pos(b),
            },
            None => node.range,
        };
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '$' && chars.get(i + 1) == Some(&'$') {
                text.push('$');
                i += 2;
                continue;
            }
            if chars[i] == '$' && chars.get(i + 1) == Some(&'{') {
                let start = i;
                i += 2;
                let mut accessors = Vec::new();
                let mut closed = false;
                let mut failed = false;
                while i < chars.len() {
                    let c = chars[i];
                    if c == '}' {
                        closed = true;
                        i += 1;
                        break;
                    }
                    if c.is_whitespace() {
                        break;
                    }
                    if c == '[' {
                        let open = i;
                        i += 1;
                        if chars.get(i) == Some(&'"') {
                            i += 1;
                            let mut key = String::new();
                            let mut ok = false;
                            while i < chars.len() {
                                match chars[i] {
                                    '\\' if chars.get(i + 1) == Some(&'"') => {
                                        key.push('"');
                                        i += 2;
                                    }
                                    '"' => {
                                        ok = true;
                                        i += 1;
                                        break;
                                    }
                                    ch => {
                                        key.push(ch);
                                        i += 1;
                                    }
                                }
                            }
                            if !ok {
                                self.error(
                                    range(open, i),
                                    path,
                                    "key subscript is missing closing quote '\"'",
                                );
                                failed = true;
                                break;
                            }
                            if key.is_empty() {
                                self.error(range(open, i), path, "key subscript must not be empty");
                                failed = true;
                            }
                            if chars.get(i) != Some(&']') {
                                self.error(
                                    range(open, i),
                                    path,
                                    "subscript is missing closing bracket ']'",
                                );
                                failed = true;
                                break;
                            }
                            i += 1;
                            accessors.push(Accessor::Key(key, range(open + 2, i - 2)));
                        } else {
                            let s0 = i;
                            while i < chars.len()
                                && !matches!(chars[i], ']' | '.' | '[' | '}')
                                && !chars[i].is_whitespace()
                            {
                                i += 1;
                            }
                            let digits: String = chars[s0..i].iter().collect();
                            if chars.get(i) != Some(&']') {
                                self.error(
                                    range(open, i),
                                    path,
                                    "subscript is missing closing bracket ']'",
                                );
                                failed = true;
                                break;
                            }
                            i += 1;
                            match digits.parse::<i64>() {
                                Ok(n) if accessors.is_empty() => {
                                    let _ = n;
                                    self.error(range(open, i), path, "the first accessor must be a property name or key subscript, not a numeric subscript");
                                    failed = true;
                                }
                                Ok(n) => accessors.push(Accessor::Index(n, range(s0, i - 1))),
                                Err(_) => {
                                    self.error(
                                        range(open, i),
                                        path,
                                        "numeric subscript must be a positive base-10 integer",
                                    );
                                    failed = true;
                                }
                            }
                        }
                        continue;
                    }
                    if c == '.' {
                        if accessors.is_empty() {
                            self.error(range(i, i + 1), path, "property name must not be empty");
                            failed = true;
                        }
                        i += 1;
                    } else if !accessors.is_empty() {
                        // A name directly after a subscript, such as `a[0]b`.
                        self.error(
                            range(i, i + 1),
                            path,
                            "missing closing brace '}' in interpolation",
                        );
                        failed = true;
                        break;
                    }
                    let s0 = i;
                    while i < chars.len()
                        && !matches!(chars[i], '.' | '[' | '}')
                        && !chars[i].is_whitespace()
                    {
                        i += 1;
                    }
                    let name: String = chars[s0..i].iter().collect();
                    if name.is_empty() {
                        self.error(
                            range(s0, (s0 + 1).min(chars.len())),
                            path,
                            "property name must not be empty",
                        );
                        failed = true;
                        continue;
                    }
                    accessors.push(Accessor::Key(name, range(s0, i)));
                }
                if !closed && !failed {
                    self.error(
                        range(start, chars.len()),
                        path,
                        "missing closing brace '}' in interpolation",
                    );
                    failed = true;
                }
                if closed && accessors.is_empty() && !failed {
                    self.error(
                        range(start, i),
                        path,
                        "Property access expressions cannot be empty",
                    );
                    failed = true;
                }
                if failed {
                    // Skip to the end of this reference so the rest of the string still parses.
                    while i < chars.len() && chars[i - 1] != '}' {
                        i += 1;
                    }
                    parts.push(Part {
                        text: std::mem::take(&mut text),
                        access: Some(Access {
                            accessors: Vec::new(),
                            range: range(start, i),
                        }),
                    });
                    continue;
                }
                self.note_implicit_import(&accessors);
                parts.push(Part {
                    text: std::mem::take(&mut text),
                    access: Some(Access {
                        accessors,
                        range: range(start, i),
                    }),
                });
                continue;
            }
            text.push(chars[i]);
            i += 1;
        }
        if !text.is_empty() || parts.is_empty() {
            parts.push(Part { text, access: None });
        }
        parts
    }

    fn note_implicit_import(&mut self, accessors: &[Accessor]) {
        if let [Accessor::Key(root, _), Accessor::Key(project, _), Accessor::Key(env, _), ..] =
            accessors
        {
            if root == "environments" {
                let name = format!("{project}/{env}");
                if self.seen_implicit.insert(name.clone()) {
                    self.implicit.push(name);
                }
            }
        }
    }
}

fn fill_reach(exprs: &[Expr], id: ExprId, out: &mut [Reach]) {
    if let ExprKind::Object(props) = &exprs[id].kind {
        for (i, p) in props.iter().enumerate() {
            out[p.value] = Reach::Property(id, i);
            fill_reach(exprs, p.value, out);
        }
    }
}

impl Decl {
    /// Every environment this one imports, explicitly or through `${environments.…}`, in order.
    pub fn dependencies(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        self.imports
            .iter()
            .map(|i| i.name.clone())
            .chain(self.implicit_imports.iter().cloned())
            .filter(|n| seen.insert(n.clone()))
            .collect()
    }
}
