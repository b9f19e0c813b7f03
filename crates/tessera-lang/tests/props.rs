//! Property tests of the language through its public API: generated environments are written
//! as YAML text, evaluated with `check`, and compared with a reference computed here.
//!
//! - Imports merge like a reference merge (objects recursively, anything else, null
//!   included, replaces); an empty environment is an identity on either side; merging is
//!   associative across chains of imports; an importer's own values lie on top.
//! - `fn::fromJSON` undoes `fn::toJSON`, whose text is JSON meaning the same value.
//! - `fn::split` undoes `fn::join` when no element contains the delimiter; both agree with
//!   the reference `join`/`split` of strings.
//! - `fn::fromBase64` undoes `fn::toBase64` (standard alphabet, padded) for any string.

use std::sync::Arc;

use base64::Engine as _;
use proptest::prelude::*;
use serde_json::{Map, Value as Json};
use tessera_lang::{check, parse, EvalContext, Limits, Loaded};

// ---- evaluating generated environments ----------------------------------------------------

/// Evaluates `root` among `envs` (name, YAML) and returns its values as JSON; any error
/// diagnostic fails the test case.
fn eval(envs: &[(&str, String)], root: &str) -> Result<Json, TestCaseError> {
    let limits = Limits::default();
    let mut loaded = Loaded::default();
    for (name, text) in envs {
        loaded.insert(name, Ok(Arc::new(parse(name, text, &limits))));
    }
    let evaluation = check(&loaded, root, &EvalContext::default(), &limits);
    let errors: Vec<String> = evaluation
        .diagnostics
        .errors()
        .map(|d| format!("{}: {}", d.path, d.message))
        .collect();
    prop_assert!(
        errors.is_empty(),
        "errors {errors:?} evaluating {root} in {envs:#?}"
    );
    match evaluation.value {
        Some(v) => {
            prop_assert!(!v.contains_unknowns(), "unknowns in {root}: {v:?}");
            Ok(v.to_serde_json(false))
        }
        None => Err(TestCaseError::fail(format!("no value for {root}"))),
    }
}

fn env_with_values(values: &Json) -> String {
    format!("values: {}\n", yaml(values))
}

fn env_with_imports(imports: &[&str], values: Option<&Json>) -> String {
    let mut out = String::from("imports:\n");
    for i in imports {
        out.push_str(&format!("  - {}\n", quote(i)));
    }
    if let Some(v) = values {
        out.push_str(&format!("values: {}\n", yaml(v)));
    }
    out
}

fn values_of(result: &Json, key: &str) -> Json {
    result.get(key).cloned().unwrap_or(Json::Null)
}

// ---- YAML text for generated values --------------------------------------------------------

/// A value as YAML flow text (JSON-like, which YAML reads as flow syntax).
fn yaml(v: &Json) -> String {
    match v {
        Json::Null => "null".to_owned(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => quote(s),
        Json::Array(items) => format!(
            "[{}]",
            items.iter().map(yaml).collect::<Vec<_>>().join(", ")
        ),
        Json::Object(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", quote(k), yaml(v)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
    }
}

/// A YAML double-quoted scalar that reads back as exactly `s`, with `$` doubled so the
/// language reads it as a literal (`$$` is its escape for `$`). Everything YAML does not
/// allow raw, or might fold, is written as an escape.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '$' => out.push_str("$$"),
            c if (c as u32) < 0x20
                || ('\u{7f}'..='\u{9f}').contains(&c)
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
                ) =>
            {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What importing `top` over `base` must give: objects merge key by key, recursively;
/// anything else (null included) replaces.
fn merge(base: &Json, top: &Json) -> Json {
    match (base, top) {
        (Json::Object(b), Json::Object(t)) => {
            let mut out = b.clone();
            for (k, tv) in t {
                let merged = match b.get(k) {
                    Some(bv) => merge(bv, tv),
                    None => tv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Json::Object(out)
        }
        (_, t) => t.clone(),
    }
}

// ---- strategies ----------------------------------------------------------------------------

fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9 ${}\\[\\]:,.#&*!|>'\"\\\\-]{0,12}",
        2 => any::<String>(),
        1 => Just(String::new()),
    ]
}

fn leaf(strings: BoxedStrategy<String>) -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::from),
        (-1000i32..1000).prop_map(|i| Json::from(f64::from(i) + 0.5)),
        strings.prop_map(Json::String),
    ]
}

/// Keys that are not builtin calls (`fn::…` in any case) and hold no `$` (keys are never
/// interpolated, and ESC rejects `${…}` in them); `keys` decides how often keys collide.
fn key(keys: BoxedStrategy<String>) -> impl Strategy<Value = String> {
    keys.prop_filter("builtin-like key", |k| {
        !k.to_ascii_lowercase().starts_with("fn::") && !k.contains('$')
    })
}

fn value(
    keys: BoxedStrategy<String>,
    strings: BoxedStrategy<String>,
) -> impl Strategy<Value = Json> {
    leaf(strings).prop_recursive(4, 32, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Json::Array),
            prop::collection::btree_map(key(keys.clone()), inner, 0..5)
                .prop_map(|m| Json::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Objects over a small key space, so that layers overlap often and at several depths.
fn layer() -> impl Strategy<Value = Json> {
    let keys = "[a-d]{1,2}".boxed();
    let strings = any_string().boxed();
    prop::collection::btree_map(key(keys.clone()), value(keys, strings), 0..6)
        .prop_map(|m| Json::Object(m.into_iter().collect()))
}

/// Any value, with keys drawn from all of Unicode.
fn any_value() -> impl Strategy<Value = Json> {
    value(any_string().boxed(), any_string().boxed())
}

// ---- properties ----------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn importing_a_then_b_merges_b_over_a(a in layer(), b in layer()) {
        let envs = [
            ("p/a", env_with_values(&a)),
            ("p/b", env_with_values(&b)),
            ("p/root", env_with_imports(&["p/a", "p/b"], None)),
            ("p/root-empty-values", env_with_imports(&["p/a", "p/b"], Some(&Json::Object(Map::new())))),
        ];
        let expected = merge(&a, &b);
        prop_assert_eq!(&eval(&envs, "p/root")?, &expected);
        prop_assert_eq!(&eval(&envs, "p/root-empty-values")?, &expected);
    }

    #[test]
    fn own_values_lie_on_top_of_imports(a in layer(), own in layer()) {
        let envs = [
            ("p/a", env_with_values(&a)),
            ("p/root", env_with_imports(&["p/a"], Some(&own))),
        ];
        prop_assert_eq!(eval(&envs, "p/root")?, merge(&a, &own));
    }

    #[test]
    fn an_empty_environment_is_an_identity(a in layer()) {
        let empty = Json::Object(Map::new());
        let envs = [
            ("p/a", env_with_values(&a)),
            ("p/empty", env_with_values(&empty)),
            ("p/no-values", "imports: []\n".to_owned()),
            ("p/left", env_with_imports(&["p/empty", "p/a"], None)),
            ("p/right", env_with_imports(&["p/a", "p/empty"], None)),
            ("p/left-none", env_with_imports(&["p/no-values", "p/a"], None)),
            ("p/right-none", env_with_imports(&["p/a", "p/no-values"], None)),
            ("p/only", env_with_imports(&["p/a"], None)),
        ];
        for root in ["p/left", "p/right", "p/left-none", "p/right-none", "p/only"] {
            prop_assert_eq!(&eval(&envs, root)?, &a, "{}", root);
        }
    }

    #[test]
    fn merging_is_associative_across_import_chains(a in layer(), b in layer(), c in layer()) {
        let envs = [
            ("p/a", env_with_values(&a)),
            ("p/b", env_with_values(&b)),
            ("p/c", env_with_values(&c)),
            ("p/ab", env_with_imports(&["p/a", "p/b"], None)),
            ("p/bc", env_with_imports(&["p/b", "p/c"], None)),
            ("p/ab-c", env_with_imports(&["p/ab", "p/c"], None)),
            ("p/a-bc", env_with_imports(&["p/a", "p/bc"], None)),
            ("p/a-b-c", env_with_imports(&["p/a", "p/b", "p/c"], None)),
            ("p/ab-own-c", env_with_imports(&["p/ab"], Some(&c))),
        ];
        let expected = merge(&merge(&a, &b), &c);
        for root in ["p/ab-c", "p/a-bc", "p/a-b-c", "p/ab-own-c"] {
            prop_assert_eq!(&eval(&envs, root)?, &expected, "{}", root);
        }
    }

    #[test]
    fn from_json_undoes_to_json(x in any_value()) {
        let doc = format!(
            "values:\n  text: {{\"fn::toJSON\": {x}}}\n  back: {{\"fn::fromJSON\": \"${{text}}\"}}\n  direct: {{\"fn::fromJSON\": {{\"fn::toJSON\": {x}}}}}\n",
            x = yaml(&x)
        );
        let result = eval(&[("p/json", doc)], "p/json")?;
        prop_assert_eq!(&values_of(&result, "back"), &x);
        prop_assert_eq!(&values_of(&result, "direct"), &x);
        let text = values_of(&result, "text");
        let text = text.as_str().ok_or_else(|| TestCaseError::fail("toJSON gave no string"))?;
        let decoded: Json = serde_json::from_str(text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        prop_assert_eq!(decoded, x);
    }

    #[test]
    fn split_undoes_join(
        xs in prop::collection::vec("[a-z0-9 ${}:,.é\u{1F600}]{0,6}", 1..8),
        d in "[|#/]{1,3}",
    ) {
        let list = Json::Array(xs.iter().cloned().map(Json::String).collect());
        let doc = format!(
            "values:\n  joined: {{\"fn::join\": [{d}, {list}]}}\n  parts: {{\"fn::split\": [{d}, \"${{joined}}\"]}}\n",
            d = quote(&d),
            list = yaml(&list)
        );
        let result = eval(&[("p/join", doc)], "p/join")?;
        prop_assert_eq!(values_of(&result, "joined"), Json::String(xs.join(&d)));
        prop_assert_eq!(values_of(&result, "parts"), list);
    }

    #[test]
    fn join_and_split_agree_with_the_reference(
        xs in prop::collection::vec(any_string(), 0..6),
        d in any_string().prop_filter("non-empty delimiter", |d| !d.is_empty()),
        s in any_string(),
    ) {
        let list = Json::Array(xs.iter().cloned().map(Json::String).collect());
        let doc = format!(
            "values:\n  joined: {{\"fn::join\": [{d}, {list}]}}\n  parts: {{\"fn::split\": [{d}, {s}]}}\n",
            d = quote(&d),
            list = yaml(&list),
            s = quote(&s)
        );
        let result = eval(&[("p/join", doc)], "p/join")?;
        prop_assert_eq!(values_of(&result, "joined"), Json::String(xs.join(&d)));
        let expected: Vec<Json> = s.split(d.as_str()).map(|p| Json::String(p.to_owned())).collect();
        prop_assert_eq!(values_of(&result, "parts"), Json::Array(expected));
    }

    #[test]
    fn from_base64_undoes_to_base64(s in any_string()) {
        let doc = format!(
            "values:\n  encoded: {{\"fn::toBase64\": {s}}}\n  decoded: {{\"fn::fromBase64\": \"${{encoded}}\"}}\n",
            s = quote(&s)
        );
        let result = eval(&[("p/b64", doc)], "p/b64")?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&s);
        prop_assert_eq!(values_of(&result, "encoded"), Json::String(encoded));
        prop_assert_eq!(values_of(&result, "decoded"), Json::String(s));
    }
}

/// The quoting the properties rely on: every string the generators make reads back as itself.
#[test]
fn quoted_strings_read_back_verbatim() {
    let tricky = [
        "",
        "$",
        "${a}",
        "$${a}",
        "a: b",
        "#x",
        "\"'\\",
        "\n\r\t\0",
        "\u{85}\u{2028}\u{feff}",
        "~",
        "null",
    ];
    for s in tricky {
        let doc = format!("values:\n  s: {}\n", quote(s));
        let result = eval(&[("p/q", doc)], "p/q").unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert_eq!(values_of(&result, "s"), Json::String(s.to_owned()), "{s:?}");
    }
}

/// The smallest case of the associativity law, kept as a fixed example: an imported
/// environment brings its layers, so `b`'s scalar hides `a`'s object before `c`'s object
/// lands on top (ESC merges an import's base chain under the importer's, `eval/value.go`).
#[test]
fn an_import_brings_its_layers_not_just_its_merged_value() {
    let envs = [
        ("p/a", "values: {d: {x: 1}}\n".to_owned()),
        ("p/b", "values: {d: 5}\n".to_owned()),
        ("p/c", "values: {d: {y: 2}}\n".to_owned()),
        ("p/bc", "imports: [p/b, p/c]\n".to_owned()),
        ("p/a-bc", "imports: [p/a, p/bc]\n".to_owned()),
        ("p/a-b-c", "imports: [p/a, p/b, p/c]\n".to_owned()),
    ];
    let expected = serde_json::json!({"d": {"y": 2}});
    for root in ["p/a-b-c", "p/a-bc"] {
        let result = eval(&envs, root).unwrap_or_else(|e| panic!("{root}: {e}"));
        assert_eq!(result, expected, "{root}");
    }
}

// ---- layers with `fn::final` through import topologies -------------------------------------

/// A generated value whose parts may be marked `fn::final`.
#[derive(Clone, Debug)]
enum Tree {
    Leaf(Json),
    Object(std::collections::BTreeMap<String, Tree>),
    Final(Box<Tree>),
}

impl Tree {
    fn yaml(&self) -> String {
        match self {
            Tree::Leaf(j) => yaml(j),
            Tree::Object(m) => {
                let entries: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{}: {}", quote(k), v.yaml()))
                    .collect();
                format!("{{{}}}", entries.join(", "))
            }
            Tree::Final(t) => format!("{{\"fn::final\": {}}}", t.yaml()),
        }
    }

    /// The value with its final marks dropped, as evaluation outputs it.
    fn json(&self) -> Json {
        match self {
            Tree::Leaf(j) => j.clone(),
            Tree::Object(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), v.json())).collect()),
            Tree::Final(t) => t.json(),
        }
    }
}

/// The reference merge with final values: a final value in `base` stays; objects merge key
/// by key and keep `top`'s mark; anything else replaces.
fn merge_final(base: &Tree, top: &Tree) -> Tree {
    if let Tree::Final(_) = base {
        return base.clone();
    }
    let (top_inner, top_final) = match top {
        Tree::Final(t) => (&**t, true),
        t => (t, false),
    };
    match (base, top_inner) {
        (Tree::Object(b), Tree::Object(t)) => {
            let mut out = b.clone();
            for (k, tv) in t {
                let merged = match b.get(k) {
                    Some(bv) => merge_final(bv, tv),
                    None => tv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            let merged = Tree::Object(out);
            if top_final {
                Tree::Final(Box::new(merged))
            } else {
                merged
            }
        }
        _ => top.clone(),
    }
}

fn fold_final(layers: &[&Tree]) -> Tree {
    layers
        .iter()
        .fold(Tree::Object(Default::default()), |acc, l| {
            merge_final(&acc, l)
        })
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        (0i64..100).prop_map(Json::from),
        "[a-z]{0,4}".prop_map(Json::String),
    ]
    .prop_map(Tree::Leaf);
    // Final marks on scalars only: an object wrapped in `fn::final` merges with what lies
    // under it one level deep only (as a reference to an object does), which the reference
    // merge here does not model.
    prop_oneof![
        4 => leaf.clone(),
        1 => leaf.prop_map(|t| Tree::Final(Box::new(t))),
    ]
    .prop_recursive(3, 24, 4, |inner| {
        prop::collection::btree_map("[a-c]", inner, 0..4).prop_map(Tree::Object)
    })
}

/// The `values` of one environment: an object over a small key space, so that layers overlap.
fn final_layer() -> impl Strategy<Value = Tree> {
    prop::collection::btree_map("[a-c]", tree(), 0..4).prop_map(Tree::Object)
}

/// An environment with imports and values, plus a whole-value reference to every top-level
/// key of `expected` (`probe_<key>: ${key}`), which must read the merged value there.
fn env_with_probes(imports: &[&str], own: &Tree, expected: &Tree) -> (String, Json) {
    let Tree::Object(own_entries) = own else {
        unreachable!("layers are objects")
    };
    let Tree::Object(expected_entries) = expected else {
        unreachable!("folds of objects are objects")
    };
    let mut entries: Vec<String> = own_entries
        .iter()
        .map(|(k, v)| format!("{}: {}", quote(k), v.yaml()))
        .collect();
    let mut result = match expected.json() {
        Json::Object(m) => m,
        _ => unreachable!(),
    };
    for (k, v) in expected_entries {
        entries.push(format!("\"probe_{k}\": \"${{{k}}}\""));
        result.insert(format!("probe_{k}"), v.json());
    }
    let mut text = String::new();
    if !imports.is_empty() {
        text.push_str("imports:\n");
        for i in imports {
            text.push_str(&format!("  - {}\n", quote(i)));
        }
    }
    text.push_str(&format!("values: {{{}}}\n", entries.join(", ")));
    (text, Json::Object(result))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Chains, several imports, imports of several imports and diamonds all fold the stack of
    /// layers ESC folds, final values included; references read that same merged value.
    #[test]
    fn import_topologies_fold_their_layers(
        a in final_layer(), b in final_layer(), c in final_layer(), own in final_layer(),
    ) {
        let values = |t: &Tree| format!("values: {}\n", t.yaml());
        let mut envs = vec![
            ("p/a", values(&a)),
            ("p/b", values(&b)),
            ("p/c", values(&c)),
            ("p/ab", format!("imports: [p/a]\n{}", values(&b))),
            ("p/abc-chain", format!("imports: [p/ab]\n{}", values(&c))),
            ("p/bc", "imports: [p/b, p/c]\n".to_owned()),
            ("p/left", format!("imports: [p/a]\n{}", values(&b))),
            ("p/right", format!("imports: [p/a]\n{}", values(&c))),
        ];
        let cases: Vec<(&str, Vec<&str>, Vec<&Tree>)> = vec![
            ("p/root-chain", vec!["p/abc-chain"], vec![&a, &b, &c, &own]),
            ("p/root-flat", vec!["p/a", "p/b", "p/c"], vec![&a, &b, &c, &own]),
            ("p/root-nested", vec!["p/a", "p/bc"], vec![&a, &b, &c, &own]),
            ("p/root-chain-then", vec!["p/ab", "p/c"], vec![&a, &b, &c, &own]),
            ("p/root-diamond", vec!["p/left", "p/right"], vec![&a, &b, &a, &c, &own]),
        ];
        let mut expected = Vec::new();
        for (name, imports, layers) in &cases {
            let all = fold_final(layers);
            let (text, result) = env_with_probes(imports, &own, &all);
            envs.push((name, text));
            expected.push((*name, result));
        }
        for (name, result) in expected {
            prop_assert_eq!(&eval(&envs, name)?, &result, "{}", name);
        }
    }
}
