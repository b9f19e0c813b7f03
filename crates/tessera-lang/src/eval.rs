//! Evaluation: one engine, two entry points.
//!
//! [`check`] evaluates without decrypting or calling providers (their results stand in as
//! unknown values), for GET, `check` and editors. [`open`] decrypts secrets and calls
//! providers through the traits the caller passes; the crate itself does no I/O.
//!
//! Each environment in an evaluation is evaluated once, in its own context, and imports merge
//! underneath the importer's own values. Expressions are evaluated lazily with a state per
//! expression, so references can reach into object literals without evaluating siblings and
//! reference cycles are reported instead of looping. Provider calls are gathered in rounds:
//! a round evaluates everything it can, then every call whose inputs are known runs
//! concurrently, and the next round uses their results.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;

use crate::ast::{Access, Accessor, Decl, ExprId, ExprKind, Reach, SecretArg};
use crate::diag::{nearest, Diagnostic, Diagnostics, Range, Severity};
use crate::layers::Stack;
use crate::limits::Limits;
use crate::value::{Location, Value, ValueKind};

/// A parsed environment and the diagnostics found while parsing it.
#[derive(Debug)]
pub struct Parsed {
    /// The declaration; absent when the YAML could not be read.
    pub decl: Option<Arc<Decl>>,
    /// Parse diagnostics.
    pub diagnostics: Diagnostics,
}

impl Parsed {
    /// Parses `src` as the environment `name`.
    pub fn new(name: &str, src: &str, limits: &Limits) -> Parsed {
        let (decl, diagnostics) = crate::ast::parse(name, src, limits);
        Parsed { decl, diagnostics }
    }
}

/// Where evaluation finds environments by name. Implementations do their I/O beforehand
/// (see [`crate::load::Loaded`]) or read local files.
pub trait Source {
    /// The parsed environment, or a message saying why it cannot be had (shown to the user
    /// at the import that names it).
    fn load(&self, name: &str) -> Result<Arc<Parsed>, String>;
}

/// Decrypts `fn::secret: {ciphertext: …}` values. Only code holding the Open capability can
/// build one in the server.
pub trait Decrypter: Send + Sync {
    /// Decrypts `ciphertext` stored in `environment`.
    fn decrypt(
        &self,
        environment: &str,
        ciphertext: &str,
    ) -> Result<zeroize::Zeroizing<String>, String>;
}

/// A call to an `fn::open` provider.
#[derive(Debug, Clone)]
pub struct ProviderCall {
    /// The provider's name, e.g. `aws-login`.
    pub provider: String,
    /// Its inputs, fully known, secrets included.
    pub inputs: Value,
    /// The environment that declares the call (`context.currentEnvironment.name`).
    pub environment: String,
    /// The environment being opened (`context.rootEnvironment.name`).
    pub root_environment: String,
    /// The whole `context` object of the declaring environment.
    pub context: Value,
}

/// Runs `fn::open` providers.
#[async_trait::async_trait]
pub trait Providers: Send + Sync {
    /// Calls the provider; an `Err` is shown to the user as a diagnostic at the call.
    async fn open(&self, call: ProviderCall) -> Result<Value, String>;
}

/// What the evaluation knows of its caller: `${context.…}`.
#[derive(Debug, Clone, Default)]
pub struct EvalContext {
    /// Caller-supplied values, e.g. `pulumi.user.login`. `rootEnvironment` and
    /// `currentEnvironment` are always set by the evaluator.
    pub values: BTreeMap<String, Value>,
}

impl EvalContext {
    /// Sets a dotted key such as `pulumi.user.login` to a string.
    pub fn set(&mut self, dotted: &str, value: &str) -> Result<(), String> {
        let keys: Vec<&str> = dotted.split('.').collect();
        if keys.iter().any(|k| k.is_empty()) {
            return Err(format!("invalid context key {dotted:?}"));
        }
        if matches!(keys[0], "rootEnvironment" | "currentEnvironment") {
            return Err(format!("forbidden context key: {:?}", keys[0]));
        }
        let mut map = &mut self.values;
        for k in &keys[..keys.len() - 1] {
            let entry = map
                .entry((*k).to_owned())
                .or_insert_with(|| Value::object(BTreeMap::new()));
            if entry.as_object().is_none() {
                *entry = Value::object(BTreeMap::new());
            }
            let ValueKind::Object(m) = &mut entry.kind else {
                unreachable!()
            };
            map = m;
        }
        map.insert(keys[keys.len() - 1].to_owned(), Value::string(value));
        Ok(())
    }
}

/// The result of an evaluation.
#[derive(Debug)]
pub struct Evaluation {
    /// The environment's values; absent when the root environment could not be read.
    pub value: Option<Value>,
    /// Every diagnostic, from every environment involved.
    pub diagnostics: Diagnostics,
    /// Every environment the evaluation loaded, the root first.
    pub environments: Vec<String>,
}

impl Evaluation {
    /// Whether the evaluation failed.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.has_errors()
    }

    fn section(&self, key: &str) -> BTreeMap<String, Value> {
        let Some(obj) = self
            .value
            .as_ref()
            .and_then(|v| v.get(key))
            .and_then(Value::as_object)
        else {
            return BTreeMap::new();
        };
        obj.iter()
            .filter(|(_, v)| {
                v.unknown || !matches!(v.kind, ValueKind::Array(_) | ValueKind::Object(_))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// `values.environmentVariables`: the scalar entries, for `run` and dotenv output.
    pub fn environment_variables(&self) -> BTreeMap<String, Value> {
        self.section("environmentVariables")
    }

    /// `values.files`: the scalar entries; each becomes a file whose path is the variable.
    pub fn files(&self) -> BTreeMap<String, Value> {
        self.section("files")
    }

    /// `values.pulumiConfig`: configuration for a Pulumi stack, any shape.
    pub fn pulumi_config(&self) -> BTreeMap<String, Value> {
        self.value
            .as_ref()
            .and_then(|v| v.get("pulumiConfig"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }
}

/// Evaluates without decrypting secrets or calling providers.
pub fn check(source: &dyn Source, root: &str, ctx: &EvalContext, limits: &Limits) -> Evaluation {
    let results = HashMap::new();
    let mut ev = Evaluator::new(source, root, ctx, limits, Mode::Check, &results);
    ev.run()
}

/// Evaluates with decryption and provider calls. Independent provider calls run
/// concurrently; all of them together must finish within `deadline`.
pub async fn open(
    source: &dyn Source,
    root: &str,
    ctx: &EvalContext,
    limits: &Limits,
    decrypter: &dyn Decrypter,
    providers: &dyn Providers,
    deadline: Duration,
) -> Evaluation {
    const MAX_ROUNDS: usize = 16;
    let started = tokio::time::Instant::now();
    let mut results: HashMap<CallKey, Result<Value, String>> = HashMap::new();
    for _ in 0..MAX_ROUNDS {
        let (evaluation, pending) = {
            let mut ev = Evaluator::new(source, root, ctx, limits, Mode::Open(decrypter), &results);
            let evaluation = ev.run();
            (evaluation, std::mem::take(&mut ev.pending))
        };
        if pending.is_empty() {
            return evaluation;
        }
        let remaining = deadline.saturating_sub(started.elapsed());
        let calls = pending.into_iter().map(|(key, call)| async move {
            let provider = call.provider.clone();
            let r = match tokio::time::timeout(remaining, providers.open(call)).await {
                Ok(r) => r,
                Err(_) => Err(format!(
                    "provider {provider:?} did not answer within {} seconds",
                    deadline.as_secs()
                )),
            };
            (key, r)
        });
        for (key, r) in futures::future::join_all(calls).await {
            results.insert(key, r);
        }
    }
    let mut ev = Evaluator::new(source, root, ctx, limits, Mode::Open(decrypter), &results);
    let mut evaluation = ev.run();
    if !ev.pending.is_empty() {
        evaluation.diagnostics.push(Diagnostic {
            severity: Severity::Error,
            message: format!(
                "provider calls depend on each other more than {MAX_ROUNDS} levels deep"
            ),
            environment: Arc::from(root),
            range: Range::default(),
            path: String::new(),
        });
    }
    evaluation
}

type CallKey = (String, ExprId);

#[derive(Clone, Copy)]
enum Mode<'a> {
    Check,
    Open(&'a dyn Decrypter),
}

#[derive(Clone)]
enum State {
    Unevaluated,
    Evaluating,
    /// The value and its weight, charged to the budget each time it is copied.
    Done(Value, u64),
}

struct Frame {
    name: Arc<str>,
    decl: Arc<Decl>,
    /// The layers of this environment's `merge: true` imports, which its values lie on.
    base: Stack,
    /// Every import by name, `merge: false` ones included, for `${imports.…}`.
    imports: BTreeMap<String, Exported>,
    states: Vec<State>,
    context: Value,
}

/// An evaluated environment as its importers see it: the layers an importer merges, in order,
/// which are each merged import's layers followed by this environment's own values. An
/// importer folds exactly the stack of layers ESC would (merging is not associative: a scalar
/// in the middle of an import chain must still hide what lies below it). The merged value is
/// built only for the opened environment and for references that name a whole import.
type Exported = Arc<Stack>;

enum EnvResult {
    Done(Option<Exported>),
    Missing(String),
    Cycle,
}

struct Evaluator<'a> {
    source: &'a dyn Source,
    root: String,
    ctx: &'a EvalContext,
    limits: &'a Limits,
    mode: Mode<'a>,
    results: &'a HashMap<CallKey, Result<Value, String>>,
    pending: Vec<(CallKey, ProviderCall)>,
    diags: Diagnostics,
    frames: Vec<Frame>,
    done: HashMap<String, Option<Exported>>,
    order: Vec<String>,
    steps: u64,
    exhausted: bool,
    depth: usize,
}

/// Where a reference is written, for diagnostics about what it reaches.
#[derive(Clone, Copy)]
struct Site<'s> {
    range: Range,
    path: &'s str,
}

impl<'a> Evaluator<'a> {
    fn new(
        source: &'a dyn Source,
        root: &str,
        ctx: &'a EvalContext,
        limits: &'a Limits,
        mode: Mode<'a>,
        results: &'a HashMap<CallKey, Result<Value, String>>,
    ) -> Self {
        Evaluator {
            source,
            root: root.to_owned(),
            ctx,
            limits,
            mode,
            results,
            pending: Vec::new(),
            diags: Diagnostics::new(),
            frames: Vec::new(),
            done: HashMap::new(),
            order: Vec::new(),
            steps: 0,
            exhausted: false,
            depth: 0,
        }
    }

    fn run(&mut self) -> Evaluation {
        let root = self.root.clone();
        let value = match self.env(&root) {
            EnvResult::Done(v) => v.map(|e| {
                // Dropping every other handle lets the layers that only the root's stack
                // holds, its own values first, move into the result.
                self.done.clear();
                let finals = e.holds_finals();
                let v =
                    Arc::try_unwrap(e).map_or_else(|e| Value::clone(e.value()), Stack::into_value);
                if finals {
                    strip_final(v)
                } else {
                    v
                }
            }),
            EnvResult::Missing(message) => {
                self.diags.push(Diagnostic {
                    severity: Severity::Error,
                    message,
                    environment: Arc::from(root.as_str()),
                    range: Range::default(),
                    path: String::new(),
                });
                None
            }
            EnvResult::Cycle => None,
        };
        let mut diagnostics = std::mem::take(&mut self.diags);
        diagnostics.sort();
        Evaluation {
            value,
            diagnostics,
            environments: std::mem::take(&mut self.order),
        }
    }

    fn diag(&mut self, severity: Severity, f: usize, range: Range, path: &str, message: String) {
        let environment = self.frames[f].name.clone();
        self.diags.push(Diagnostic {
            severity,
            message,
            environment,
            range,
            path: path.to_owned(),
        });
    }

    fn error(&mut self, f: usize, site: Site<'_>, message: String) {
        self.diag(Severity::Error, f, site.range, site.path, message);
    }

    /// Charges evaluation work; false once the budget is spent.
    fn charge(&mut self, f: usize, site: Site<'_>, units: u64) -> bool {
        self.steps = self.steps.saturating_add(units);
        if self.steps > self.limits.max_steps {
            if !self.exhausted {
                self.exhausted = true;
                let message = format!(
                    "evaluation exceeded the limit of {} steps",
                    self.limits.max_steps
                );
                self.error(f, site, message);
            }
            return false;
        }
        true
    }

    // ---- environments -------------------------------------------------------------------

    fn env(&mut self, name: &str) -> EnvResult {
        if let Some(v) = self.done.get(name) {
            return EnvResult::Done(v.clone());
        }
        if self.frames.iter().any(|f| &*f.name == name) {
            return EnvResult::Cycle;
        }
        if self.order.len() >= self.limits.max_environments {
            return EnvResult::Missing(format!(
                "evaluation loads more than the limit of {} environments",
                self.limits.max_environments
            ));
        }
        let parsed = match self.source.load(name) {
            Ok(p) => p,
            Err(message) => return EnvResult::Missing(message),
        };
        self.order.push(name.to_owned());
        self.diags.extend(parsed.diagnostics.clone());
        let Some(decl) = parsed.decl.clone() else {
            self.done.insert(name.to_owned(), None);
            return EnvResult::Done(None);
        };
        let name: Arc<str> = decl.name.clone();
        let mut context = BTreeMap::new();
        for (k, v) in &self.ctx.values {
            context.insert(k.clone(), v.clone());
        }
        let named =
            |n: &str| Value::object(BTreeMap::from([("name".to_owned(), Value::string(n))]));
        context.insert("rootEnvironment".into(), named(&self.root));
        context.insert("currentEnvironment".into(), named(&name));
        self.frames.push(Frame {
            name: name.clone(),
            decl: decl.clone(),
            base: Stack::default(),
            imports: BTreeMap::new(),
            states: vec![State::Unevaluated; decl.exprs.len()],
            context: Value::object(context),
        });
        let f = self.frames.len() - 1;

        for import in &decl.imports {
            let site = Site {
                range: import.range,
                path: "imports",
            };
            match self.env(&import.name) {
                EnvResult::Done(Some(exported)) => {
                    if import.merge {
                        self.frames[f].base.import(&exported);
                    }
                    self.frames[f].imports.insert(import.name.clone(), exported);
                }
                EnvResult::Done(None) => {}
                EnvResult::Missing(message) => self.error(f, site, message),
                EnvResult::Cycle => {
                    self.error(f, site, format!("cyclic import of {}", import.name))
                }
            }
        }

        // The root object holds this environment's own keys only: what it inherits stays in
        // the layers below, read through them, and is copied only when the whole value is.
        let own = decl.values.map(|root| self.node(f, root, None));
        let frame = self.frames.pop().expect("pushed above");
        let exported: Exported = Arc::new(frame.base.with_own(own));
        self.done.insert(name.to_string(), Some(exported.clone()));
        EnvResult::Done(Some(exported))
    }

    /// What this environment's imports hold at the key path of expression `id`, followed by
    /// `then` if given; `None` when the expression is not reached through object literals
    /// from `values`, or the imports hold nothing there.
    fn base_at(&self, f: usize, id: ExprId, then: Option<&str>) -> Option<Cow<'_, Value>> {
        let frame = &self.frames[f];
        match frame.decl.reach[id] {
            Reach::Not => None,
            Reach::Root => match then {
                Some(k) => frame.base.get(k),
                None => Some(Cow::Borrowed(frame.base.value())),
            },
            Reach::Property(object, i) => {
                let ExprKind::Object(props) = &frame.decl.exprs[object].kind else {
                    return None;
                };
                let here = self.base_at(f, object, Some(&props[i].key))?;
                match then {
                    None => Some(here),
                    Some(k) => match here {
                        Cow::Borrowed(v) => v.get(k).map(Cow::Borrowed),
                        Cow::Owned(v) => v.get(k).cloned().map(Cow::Owned),
                    },
                }
            }
        }
    }

    // ---- expressions --------------------------------------------------------------------

    /// Evaluates an expression once; `from` is the reference that asked for it, if any.
    /// Reference chains recurse, so the stack grows on demand and the depth is bounded.
    fn node(&mut self, f: usize, id: ExprId, from: Option<Site<'_>>) -> Value {
        self.visit(f, id, from, true)
    }

    /// [`Evaluator::node`], returning a copy of the value only if `copy` (else it stays in
    /// the expression's state, for [`Evaluator::take`]); the work is charged either way.
    fn visit(&mut self, f: usize, id: ExprId, from: Option<Site<'_>>, copy: bool) -> Value {
        if self.depth >= self.limits.max_reference_depth {
            if !self.exhausted {
                self.exhausted = true;
                let e = &self.frames[f].decl.exprs[id];
                let (range, path) = (e.range, e.path.clone());
                let message = format!(
                    "references nest deeper than the limit of {}",
                    self.limits.max_reference_depth
                );
                self.error(f, Site { range, path: &path }, message);
            }
            return Value::unknown();
        }
        self.depth += 1;
        let v = stacker::maybe_grow(128 * 1024, 4 * 1024 * 1024, || {
            self.node_inner(f, id, from, copy)
        });
        self.depth -= 1;
        v
    }

    /// The value left in an expression's state by [`Evaluator::visit`] without a copy; the
    /// state keeps none, so this is for values nothing will ask for again.
    fn take(&mut self, f: usize, id: ExprId) -> Value {
        match &mut self.frames[f].states[id] {
            State::Done(v, _) => std::mem::replace(v, Value::unknown()),
            _ => Value::unknown(),
        }
    }

    fn node_inner(&mut self, f: usize, id: ExprId, from: Option<Site<'_>>, copy: bool) -> Value {
        match &self.frames[f].states[id] {
            State::Done(_, w) => {
                let w = *w;
                let decl = self.frames[f].decl.clone();
                let expr = &decl.exprs[id];
                let site = Site {
                    range: expr.range,
                    path: &expr.path,
                };
                if !self.charge(f, site, w) || !copy {
                    return Value::unknown();
                }
                return match &self.frames[f].states[id] {
                    State::Done(v, _) => v.clone(),
                    _ => Value::unknown(),
                };
            }
            State::Evaluating => {
                let path = self.frames[f].decl.exprs[id].path.clone();
                let shown = path.strip_prefix("values.").unwrap_or(&path).to_owned();
                if let Some(site) = from {
                    self.error(f, site, format!("cyclic reference to {shown}"));
                }
                return Value::unknown();
            }
            State::Unevaluated => {}
        }
        if self.exhausted {
            return Value::unknown();
        }
        self.frames[f].states[id] = State::Evaluating;
        let decl = self.frames[f].decl.clone();
        let expr = &decl.exprs[id];
        let site = Site {
            range: expr.range,
            path: &expr.path,
        };
        let mut v = self.eval_kind(f, id, &expr.kind, site);
        if v.def.is_none() {
            v.def = Some(Location {
                environment: self.frames[f].name.clone(),
                range: expr.range,
            });
        }
        // The root's inherited keys stay in the layers below it (see `env`). What lies under
        // a value matters only if it is final or both are objects.
        let base = if Some(id) == decl.values
            || (v.as_object().is_none() && !self.frames[f].base.holds_finals())
        {
            None
        } else {
            self.base_at(f, id, None)
        };
        if let Some(base) = base {
            if base.is_final {
                let base = base.into_owned();
                self.diag(
                    Severity::Warning,
                    f,
                    expr.range,
                    &expr.path,
                    "cannot override final value".to_owned(),
                );
                v = base;
            } else if let (Some(b), ValueKind::Object(own)) = (base.as_object(), &mut v.kind) {
                if !v.unknown {
                    // Both are sorted: one walk finds the keys only the base holds.
                    let mut own_keys = own.keys().peekable();
                    let missing: Vec<(String, Value)> = b
                        .iter()
                        .filter(|&(k, _)| {
                            while own_keys.next_if(|&o| o < k).is_some() {}
                            own_keys.peek() != Some(&k)
                        })
                        .map(|(k, bv)| (k.clone(), bv.clone()))
                        .collect();
                    own.extend(missing);
                }
            }
        }
        if Some(id) == decl.values {
            // Only `env` asks for the root, once: keep no copy of the environment's values.
            self.frames[f].states[id] = State::Done(Value::unknown(), 0);
            return v;
        }
        let w = v.weight();
        // The cached copy costs as much as the value: charge it.
        let site = Site {
            range: expr.range,
            path: &expr.path,
        };
        if !self.charge(f, site, w) {
            self.frames[f].states[id] = State::Done(Value::unknown(), 0);
            return Value::unknown();
        }
        if !copy {
            self.frames[f].states[id] = State::Done(v, w);
            return Value::unknown();
        }
        self.frames[f].states[id] = State::Done(v.clone(), w);
        v
    }

    fn eval_kind(&mut self, f: usize, id: ExprId, kind: &ExprKind, site: Site<'_>) -> Value {
        if !self.charge(f, site, 1) {
            return Value::unknown();
        }
        match kind {
            ExprKind::Null => Value::null(),
            ExprKind::Bool(b) => Value::new(ValueKind::Bool(*b)),
            ExprKind::Number(n) => Value::new(ValueKind::Number(n.clone())),
            ExprKind::String(s) => Value::string(s.clone()),
            ExprKind::Symbol(access) => self.access(f, access, site).without_final(),
            ExprKind::Interpolate(parts) => {
                let text: usize = parts.iter().map(|p| p.text.len()).sum();
                let mut out = String::with_capacity(text + 32 * parts.len());
                let (mut secret, mut unknown) = (false, false);
                for part in parts {
                    out.push_str(&part.text);
                    if let Some(access) = &part.access {
                        let (s, u) = self.interpolate(f, access, site, &mut out);
                        secret |= s;
                        unknown |= u;
                    }
                }
                if !self.charge(f, site, out.len() as u64 / 16) {
                    return Value::unknown();
                }
                let mut v = if unknown {
                    Value::unknown()
                } else {
                    Value::string(out)
                };
                v.secret = secret;
                v
            }
            ExprKind::Array(items) => {
                let items = items.iter().map(|&i| self.node(f, i, None)).collect();
                Value::new(ValueKind::Array(items))
            }
            ExprKind::Object(props) => {
                let decl = self.frames[f].decl.clone();
                let order = decl.sorted[id].as_deref().unwrap_or_default();
                // Sorted already, so the map is built in one pass rather than searched per key.
                let entries: Vec<(String, Value)> = if Some(id) == decl.values {
                    // Nothing in this environment is evaluated after its root: the root's
                    // properties are evaluated first (references among them read their
                    // states), then moved out of their states rather than copied.
                    for &i in order.iter() {
                        self.visit(f, props[i].value, None, false);
                    }
                    order
                        .iter()
                        .map(|&i| (props[i].key.clone(), self.take(f, props[i].value)))
                        .collect()
                } else {
                    order
                        .iter()
                        .map(|&i| (props[i].key.clone(), self.node(f, props[i].value, None)))
                        .collect()
                };
                Value::object(entries.into_iter().collect())
            }
            ExprKind::Secret(arg) => self.secret(f, arg, site),
            ExprKind::ToJson(a) => {
                let v = self.node(f, *a, None);
                derived(&v, || Ok(Value::string(v.to_json_compact())))
                    .unwrap_or_else(|e| self.fail(f, site, e))
            }
            ExprKind::FromJson(a) => {
                let v = self.node(f, *a, None);
                let r = self.string_arg(f, *a, &v).and_then(|s| {
                    crate::json::parse(s).map_err(|e| format!("decoding JSON string: {e}"))
                });
                self.finish_decoded(f, site, &v, r)
            }
            ExprKind::ToYaml(a) => {
                let v = self.node(f, *a, None);
                derived(&v, || Ok(Value::string(crate::format::to_yaml(&v, false))))
                    .unwrap_or_else(|e| self.fail(f, site, e))
            }
            ExprKind::FromYaml(a) => {
                let v = self.node(f, *a, None);
                let limits = self.limits.clone();
                let r = self
                    .string_arg(f, *a, &v)
                    .and_then(|s| crate::format::from_yaml(s, &limits));
                self.finish_decoded(f, site, &v, r)
            }
            ExprKind::ToBase64(a) => {
                let v = self.node(f, *a, None);
                let r = self
                    .string_arg(f, *a, &v)
                    .map(|s| Value::string(base64::engine::general_purpose::STANDARD.encode(s)));
                self.finish_decoded(f, site, &v, r)
            }
            ExprKind::FromBase64(a) => {
                let v = self.node(f, *a, None);
                let r = self.string_arg(f, *a, &v).and_then(|s| {
                    base64::engine::general_purpose::STANDARD
                        .decode(s)
                        .map(|bytes| Value::string(String::from_utf8_lossy(&bytes).into_owned()))
                        .map_err(|e| format!("decoding base64 string: {}", go_base64_error(&e)))
                });
                self.finish_decoded(f, site, &v, r)
            }
            ExprKind::ToString(a) => {
                let v = self.node(f, *a, None);
                derived(&v, || Ok(Value::string(v.to_interpolated_string(false))))
                    .unwrap_or_else(|e| self.fail(f, site, e))
            }
            ExprKind::Join(d, vals) => {
                let dv = self.node(f, *d, None);
                let vv = self.node(f, *vals, None);
                let Ok(delim) = self.string_arg(f, *d, &dv) else {
                    return Value::unknown();
                };
                let delim = delim.to_owned();
                let Some(items) = self.array_arg(f, *vals, &vv) else {
                    return Value::unknown();
                };
                let mut strs = Vec::new();
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    match &item.kind {
                        _ if item.unknown => {}
                        ValueKind::String(s) => strs.push(s.clone()),
                        _ => {
                            let at = self.element_site(f, *vals, i);
                            self.diag(
                                Severity::Error,
                                f,
                                at.0,
                                &at.1,
                                format!("expected string, got {}", item.type_name()),
                            );
                            ok = false;
                        }
                    }
                }
                if !ok {
                    return Value::unknown();
                }
                let mut both = vec![dv.clone()];
                both.extend(items.iter().cloned());
                let all = Value::new(ValueKind::Array(both));
                derived(&all, || Ok(Value::string(strs.join(&delim))))
                    .unwrap_or_else(|e| self.fail(f, site, e))
            }
            ExprKind::Split(d, s) => {
                let dv = self.node(f, *d, None);
                let sv = self.node(f, *s, None);
                let (Ok(delim), Ok(text)) =
                    (self.string_arg(f, *d, &dv), self.string_arg(f, *s, &sv))
                else {
                    return Value::unknown();
                };
                if dv.unknown || sv.unknown {
                    return Value::unknown();
                }
                let secret = dv.secret || sv.secret;
                let parts: Vec<String> = if delim.is_empty() {
                    text.chars().map(String::from).collect()
                } else {
                    text.split(delim).map(str::to_owned).collect()
                };
                let items = parts
                    .into_iter()
                    .map(|p| {
                        let mut v = Value::string(p);
                        v.secret = secret;
                        v
                    })
                    .collect();
                Value::new(ValueKind::Array(items))
            }
            ExprKind::Concat(a) => {
                let v = self.node(f, *a, None);
                let Some(arrays) = self.array_arg(f, *a, &v) else {
                    return Value::unknown();
                };
                let mut out = Vec::new();
                let mut unknown = false;
                for (i, arr) in arrays.iter().enumerate() {
                    match &arr.kind {
                        _ if arr.unknown => unknown = true,
                        ValueKind::Array(items) => out.extend(items.iter().map(|v| {
                            let mut v = v.clone();
                            v.secret |= arr.secret;
                            v
                        })),
                        _ => {
                            let at = self.element_site(f, *a, i);
                            self.diag(
                                Severity::Error,
                                f,
                                at.0,
                                &at.1,
                                format!("expected array, got {}", arr.type_name()),
                            );
                            unknown = true;
                        }
                    }
                }
                if unknown {
                    return Value::unknown();
                }
                Value::new(ValueKind::Array(out))
            }
            ExprKind::Final(a) => {
                let mut v = self.node(f, *a, None);
                v.is_final = true;
                v
            }
            ExprKind::Validate { schema, value } => {
                let sv = self.node(f, *schema, None);
                let vv = self.node(f, *value, None);
                if !sv.contains_unknowns() && !vv.contains_unknowns() {
                    for message in crate::schema::validate(&sv, &vv) {
                        let at = self.expr_site(f, *value);
                        self.diag(Severity::Error, f, at.0, &at.1, message);
                    }
                }
                vv
            }
            ExprKind::Open { provider, inputs } => {
                let inputs = self.node(f, *inputs, None);
                let Mode::Open(_) = self.mode else {
                    return Value::unknown();
                };
                if inputs.contains_unknowns() {
                    return Value::unknown();
                }
                let key = (self.frames[f].name.to_string(), id);
                match self.results.get(&key) {
                    Some(Ok(v)) => v.clone(),
                    Some(Err(message)) => {
                        let message = message.clone();
                        self.fail(f, site, message)
                    }
                    None => {
                        let call = ProviderCall {
                            provider: provider.clone(),
                            inputs,
                            environment: self.frames[f].name.to_string(),
                            root_environment: self.root.clone(),
                            context: self.frames[f].context.clone(),
                        };
                        self.pending.push((key, call));
                        Value::unknown()
                    }
                }
            }
            ExprKind::Rotate { inputs, state, .. } => {
                let _ = self.node(f, *inputs, None);
                match state {
                    Some(s) => self.node(f, *s, None),
                    None => Value::unknown(),
                }
            }
        }
    }

    fn fail(&mut self, f: usize, site: Site<'_>, message: String) -> Value {
        self.error(f, site, message);
        Value::unknown()
    }

    fn finish_decoded(
        &mut self,
        f: usize,
        site: Site<'_>,
        input: &Value,
        r: Result<Value, String>,
    ) -> Value {
        if input.unknown {
            let mut u = Value::unknown();
            u.secret = input.secret;
            return u;
        }
        match r {
            Ok(mut v) => {
                if input.contains_secrets() {
                    v.make_secret_deep();
                }
                v
            }
            Err(e) if e.is_empty() => Value::unknown(),
            Err(e) => self.fail(f, site, e),
        }
    }

    fn expr_site(&self, f: usize, id: ExprId) -> (Range, String) {
        let e = &self.frames[f].decl.exprs[id];
        (e.range, e.path.clone())
    }

    /// The site of element `i` of an argument that is an array literal, else of the argument.
    fn element_site(&self, f: usize, id: ExprId, i: usize) -> (Range, String) {
        match &self.frames[f].decl.exprs[id].kind {
            ExprKind::Array(items) if i < items.len() => self.expr_site(f, items[i]),
            _ => self.expr_site(f, id),
        }
    }

    /// The argument as a string; an `Err("")` means it was unknown or already reported.
    fn string_arg<'v>(&mut self, f: usize, id: ExprId, v: &'v Value) -> Result<&'v str, String> {
        if v.unknown {
            return Err(String::new());
        }
        match &v.kind {
            ValueKind::String(s) => Ok(s),
            _ => {
                let (range, path) = self.expr_site(f, id);
                self.diag(
                    Severity::Error,
                    f,
                    range,
                    &path,
                    format!("expected string, got {}", v.type_name()),
                );
                Err(String::new())
            }
        }
    }

    fn array_arg<'v>(&mut self, f: usize, id: ExprId, v: &'v Value) -> Option<&'v [Value]> {
        if v.unknown {
            return None;
        }
        match &v.kind {
            ValueKind::Array(items) => Some(items),
            _ => {
                let (range, path) = self.expr_site(f, id);
                self.diag(
                    Severity::Error,
                    f,
                    range,
                    &path,
                    format!("expected array, got {}", v.type_name()),
                );
                None
            }
        }
    }

    fn secret(&mut self, f: usize, arg: &SecretArg, site: Site<'_>) -> Value {
        match arg {
            SecretArg::Plaintext(s) => Value::string(s.clone()).into_secret(),
            SecretArg::Invalid => Value::unknown().into_secret(),
            SecretArg::Ciphertext(c) => match self.mode {
                Mode::Check => Value::unknown().into_secret(),
                Mode::Open(decrypter) => {
                    let env = self.frames[f].name.clone();
                    match decrypter.decrypt(&env, c) {
                        Ok(plain) => Value::string(plain.as_str()).into_secret(),
                        Err(e) => {
                            self.error(f, site, format!("decrypting: {e}"));
                            Value::unknown().into_secret()
                        }
                    }
                }
            },
        }
    }

    // ---- references ---------------------------------------------------------------------

    fn access(&mut self, f: usize, access: &Access, site: Site<'_>) -> Value {
        let accs = &access.accessors;
        let Some(Accessor::Key(root, root_range)) = accs.first() else {
            return Value::unknown();
        };
        let at = |r: Range| Site {
            range: r,
            path: site.path,
        };
        match root.as_str() {
            "context" => {
                let r = follow(&self.frames[f].context, &accs[1..]);
                self.walked(f, site, r)
            }
            "imports" => match accs.get(1) {
                None => {
                    let all = self.frames[f]
                        .imports
                        .iter()
                        .map(|(k, v)| (k.clone(), strip_final(Value::clone(v.value()))));
                    Value::object(all.collect())
                }
                Some(Accessor::Key(k, r)) => {
                    let found = self.frames[f]
                        .imports
                        .get(k)
                        .map(|v| follow_stack(v, &accs[2..]));
                    match found {
                        Some(r) => strip_final(self.walked(f, site, r)),
                        None => {
                            let keys: Vec<String> =
                                self.frames[f].imports.keys().cloned().collect();
                            let hint = nearest(k, keys.iter().map(String::as_str))
                                .map(|n| format!("; did you mean {n:?}?"))
                                .unwrap_or_default();
                            self.fail(f, at(*r), format!("unknown property {k:?}{hint}"))
                        }
                    }
                }
                Some(Accessor::Index(_, r)) => self.fail(
                    f,
                    at(*r),
                    "cannot access an object property using an integer index".into(),
                ),
            },
            "environments" => {
                let (Some(Accessor::Key(p, _)), Some(Accessor::Key(e, r))) =
                    (accs.get(1), accs.get(2))
                else {
                    return Value::unknown();
                };
                let name = format!("{p}/{e}");
                match self.env(&name) {
                    EnvResult::Done(Some(e)) => {
                        let r = follow_stack(&e, &accs[3..]);
                        strip_final(self.walked(f, site, r))
                    }
                    EnvResult::Done(None) => Value::unknown(),
                    EnvResult::Missing(message) => self.fail(f, at(*r), message),
                    EnvResult::Cycle => self.fail(f, at(*r), format!("cyclic import of {name}")),
                }
            }
            _ => match self.frames[f].decl.values {
                Some(root_id) => self.node_access(f, root_id, accs, 0, site),
                None => {
                    let _ = root_range;
                    let r = follow_stack(&self.frames[f].base, accs);
                    self.walked(f, site, r)
                }
            },
        }
    }

    /// The position of property `key` in object literal `id` (the first, if repeated).
    fn own_property(&self, f: usize, id: ExprId, key: &str) -> Option<usize> {
        let frame = &self.frames[f];
        let ExprKind::Object(props) = &frame.decl.exprs[id].kind else {
            return None;
        };
        let order = frame.decl.sorted[id].as_ref()?;
        let at = order.partition_point(|&p| props[p].key.as_str() < key);
        order.get(at).filter(|&&p| props[p].key == key).copied()
    }

    /// Appends the text of a reference inside an interpolated string to `out` and returns
    /// whether its value is secret and unknown. A reference to a key this environment only
    /// inherits reads the value where it lies instead of copying it; anything else, or one
    /// that does not resolve, goes through [`Evaluator::access`] (and its diagnostics).
    fn interpolate(
        &mut self,
        f: usize,
        access: &Access,
        site: Site<'_>,
        out: &mut String,
    ) -> (bool, bool) {
        let accs = &access.accessors;
        let root = self.frames[f].decl.values;
        if let (Some(Accessor::Key(k, _)), Some(root)) = (accs.first(), root) {
            if !matches!(k.as_str(), "context" | "imports" | "environments") {
                let v = match self.own_property(f, root, k) {
                    // What `node_access` does from the root, without searching again.
                    Some(p) => {
                        let decl = self.frames[f].decl.clone();
                        let ExprKind::Object(props) = &decl.exprs[root].kind else {
                            unreachable!("own_property found a property")
                        };
                        self.node_access(f, props[p].value, accs, 1, site)
                    }
                    None => {
                        let inherited = self.base_at(f, root, Some(k));
                        if let Some(v) = inherited
                            .as_deref()
                            .and_then(|b| follow_known(b, &accs[1..]))
                        {
                            let flags = (v.contains_secrets(), v.contains_unknowns());
                            v.push_interpolated(out);
                            return flags;
                        }
                        self.access(f, access, site)
                    }
                };
                let flags = (v.contains_secrets(), v.contains_unknowns());
                v.push_interpolated(out);
                return flags;
            }
        }
        let v = self.access(f, access, site);
        let flags = (v.contains_secrets(), v.contains_unknowns());
        v.push_interpolated(out);
        flags
    }

    /// Follows accessors through expressions as far as they are literals, evaluating only
    /// what the path reaches.
    fn node_access(
        &mut self,
        f: usize,
        id: ExprId,
        accs: &[Accessor],
        i: usize,
        site: Site<'_>,
    ) -> Value {
        if i == accs.len() {
            return self.node(
                f,
                id,
                Some(Site {
                    range: accs.last().map_or(site.range, Accessor::range),
                    path: site.path,
                }),
            );
        }
        let decl = self.frames[f].decl.clone();
        match (&decl.exprs[id].kind, &accs[i]) {
            (ExprKind::Object(props), Accessor::Key(k, r)) => {
                if let Some(p) = self.own_property(f, id, k) {
                    return self.node_access(f, props[p].value, accs, i + 1, site);
                }
                let found = self
                    .base_at(f, id, Some(k))
                    .map(|bv| follow(&bv, &accs[i + 1..]));
                if let Some(r) = found {
                    return self.walked(f, site, r);
                }
                let mut keys: Vec<String> = props.iter().map(|p| p.key.clone()).collect();
                if let Some(b) = self.base_at(f, id, None) {
                    keys.extend(b.as_object().into_iter().flat_map(|o| o.keys().cloned()));
                }
                let hint = nearest(k, keys.iter().map(String::as_str))
                    .map(|n| format!("; did you mean {n:?}?"))
                    .unwrap_or_default();
                self.fail(
                    f,
                    Site {
                        range: *r,
                        path: site.path,
                    },
                    format!("unknown property {k:?}{hint}"),
                )
            }
            (ExprKind::Array(items), Accessor::Index(n, r)) => {
                if *n < 0 {
                    return self.fail(
                        f,
                        Site {
                            range: *r,
                            path: site.path,
                        },
                        "array indices must not be negative".into(),
                    );
                }
                match items.get(*n as usize) {
                    Some(&item) => self.node_access(f, item, accs, i + 1, site),
                    None => self.fail(
                        f,
                        Site {
                            range: *r,
                            path: site.path,
                        },
                        format!(
                            "array index {n} out-of-bounds for array of length {}",
                            items.len()
                        ),
                    ),
                }
            }
            _ => {
                let v = self.node(
                    f,
                    id,
                    Some(Site {
                        range: accs[i].range(),
                        path: site.path,
                    }),
                );
                let r = follow(&v, &accs[i..]);
                self.walked(f, site, r)
            }
        }
    }

    /// Reports a failed [`follow`], or passes its value on.
    fn walked(&mut self, f: usize, site: Site<'_>, r: Result<Value, (Range, String)>) -> Value {
        match r {
            Ok(v) => v,
            Err((range, message)) => self.fail(
                f,
                Site {
                    range,
                    path: site.path,
                },
                message,
            ),
        }
    }
}

/// Follows accessors into an environment's layers, merging only the top-level key they name;
/// the whole value is built only when they name no key, or fail (to name the nearest key).
fn follow_stack(stack: &Stack, accs: &[Accessor]) -> Result<Value, (Range, String)> {
    if let Some(Accessor::Key(k, _)) = accs.first() {
        if let Some(v) = stack.get(k) {
            return follow(&v, &accs[1..]);
        }
    }
    follow(stack.value(), accs)
}

/// What [`follow`] reaches when it reaches a value without error and without passing
/// through an unknown one; borrowed, not copied.
fn follow_known<'v>(mut v: &'v Value, accs: &[Accessor]) -> Option<&'v Value> {
    for acc in accs {
        if v.unknown {
            return None;
        }
        v = match (&v.kind, acc) {
            (ValueKind::Object(o), Accessor::Key(k, _)) => o.get(k)?,
            (ValueKind::Array(a), Accessor::Index(n, _)) => a.get(usize::try_from(*n).ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

/// Follows accessors through an evaluated value, copying only what they reach.
fn follow(mut v: &Value, accs: &[Accessor]) -> Result<Value, (Range, String)> {
    for acc in accs {
        if v.unknown {
            return Ok(Value::unknown());
        }
        let at = acc.range();
        v = match (&v.kind, acc) {
            (ValueKind::Object(o), Accessor::Key(k, _)) => match o.get(k) {
                Some(x) => x,
                None => {
                    let hint = nearest(k, o.keys().map(String::as_str))
                        .map(|n| format!("; did you mean {n:?}?"))
                        .unwrap_or_default();
                    return Err((at, format!("unknown property {k:?}{hint}")));
                }
            },
            (ValueKind::Object(_), Accessor::Index(..)) => {
                return Err((
                    at,
                    "cannot access an object property using an integer index".into(),
                ))
            }
            (ValueKind::Array(a), Accessor::Index(n, _)) => {
                if *n < 0 {
                    return Err((at, "array indices must not be negative".into()));
                }
                match a.get(*n as usize) {
                    Some(x) => x,
                    None => {
                        return Err((
                            at,
                            format!(
                                "array index {n} out-of-bounds for array of length {}",
                                a.len()
                            ),
                        ))
                    }
                }
            }
            (ValueKind::Array(_), Accessor::Key(..)) => {
                return Err((
                    at,
                    "cannot access an array element using a property name".into(),
                ))
            }
            _ => return Err((at, "receiver must be an array or an object".into())),
        };
    }
    Ok(v.clone())
}

/// A value computed from `input`: unknown if anything in it is unknown, secret if anything
/// in it is secret.
fn derived(
    input: &Value,
    compute: impl FnOnce() -> Result<Value, String>,
) -> Result<Value, String> {
    let secret = input.contains_secrets();
    if input.contains_unknowns() {
        let mut u = Value::unknown();
        u.secret = secret;
        return Ok(u);
    }
    let mut v = compute()?;
    v.secret = secret;
    Ok(v)
}

/// Lays `top` over `base`: objects merge key by key; anything else (null included) replaces.
/// A final value in `base` is kept.
pub(crate) fn merge(base: Value, top: Value) -> Value {
    if base.is_final {
        return base;
    }
    match (base, top) {
        (mut b, t) if b.as_object().is_some() && t.as_object().is_some() => {
            let ValueKind::Object(bm) = &mut b.kind else {
                unreachable!()
            };
            let mut bm = std::mem::take(bm);
            let mut t = t;
            let ValueKind::Object(tm) = &mut t.kind else {
                unreachable!()
            };
            for (k, tv) in std::mem::take(tm) {
                let merged = match bm.remove(&k) {
                    Some(bv) => merge(bv, tv),
                    None => tv,
                };
                bm.insert(k, merged);
            }
            t.kind = ValueKind::Object(bm);
            t
        }
        (_, t) => t,
    }
}

fn strip_final(mut v: Value) -> Value {
    v.is_final = false;
    match &mut v.kind {
        ValueKind::Array(a) => {
            for x in a.iter_mut() {
                *x = strip_final(std::mem::replace(x, Value::null()));
            }
        }
        ValueKind::Object(o) => {
            for x in o.values_mut() {
                *x = strip_final(std::mem::replace(x, Value::null()));
            }
        }
        _ => {}
    }
    v
}

fn go_base64_error(e: &base64::DecodeError) -> String {
    match e {
        base64::DecodeError::InvalidByte(i, _) | base64::DecodeError::InvalidLastSymbol(i, _) => {
            format!("illegal base64 data at input byte {i}")
        }
        base64::DecodeError::InvalidLength(n) => format!("illegal base64 data at input byte {n}"),
        base64::DecodeError::InvalidPadding => "illegal base64 data at input byte 0".to_owned(),
    }
}
