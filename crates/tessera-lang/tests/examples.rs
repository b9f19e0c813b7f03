//! Every `examples/**/*.yaml` against the JSON Schema in `schemas/environment.schema.json`:
//! each is valid under the schema (read through the language's own YAML reader), evaluates
//! with `check` without error diagnostics (examples import each other by their path under
//! `examples/environments`, e.g. `app/base`; the context holds a user and organization as
//! the server's does), and points editors at the schema from its first line. Documents with
//! wrongly shaped builtin arguments or imports fail the schema.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;
use tessera_lang::{check, format, parse, EvalContext, Limits, Loaded};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn validator() -> jsonschema::Validator {
    let path = repo_root().join("schemas/environment.schema.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: Json =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    jsonschema::draft7::meta::validate(&schema)
        .unwrap_or_else(|e| panic!("not a draft-07 schema: {e}"));
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("schema does not compile: {e}"))
}

/// Every example as (name, path, text), the name being its path under
/// `examples/environments` (or else under `examples`) without `.yaml`.
fn examples() -> Vec<(String, PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }
    let root = repo_root().join("examples");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    let envs = root.join("environments");
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let rel = path
                .strip_prefix(&envs)
                .or_else(|_| path.strip_prefix(&root))
                .unwrap_or(&path);
            let rel = rel.with_extension("");
            (rel.to_string_lossy().replace('\\', "/"), path, text)
        })
        .collect()
}

/// Schema errors for a YAML document, read as the language reads YAML.
fn schema_errors(validator: &jsonschema::Validator, yaml: &str) -> Vec<String> {
    let value = format::from_yaml(yaml, &Limits::default())
        .unwrap_or_else(|e| panic!("unreadable YAML: {e}\n{yaml}"));
    let instance = value.to_serde_json(false);
    validator
        .iter_errors(&instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn there_are_examples_of_each_kind() {
    let examples = examples();
    let names: Vec<&str> = examples.iter().map(|(n, _, _)| n.as_str()).collect();
    for expected in ["app/base", "app/dev"] {
        assert!(
            names.contains(&expected),
            "missing example {expected}: {names:?}"
        );
    }
    let all: String = examples.iter().map(|(_, _, t)| t.as_str()).collect();
    for feature in [
        "fn::open::aws-login",
        "environmentVariables:",
        "files:",
        "pulumiConfig:",
        "${environments.",
    ] {
        assert!(all.contains(feature), "no example uses {feature}");
    }
}

#[test]
fn examples_name_the_schema_on_their_first_line() {
    for (_, path, text) in examples() {
        let first = text.lines().next().unwrap_or_default();
        let target = first
            .strip_prefix("# yaml-language-server: $schema=")
            .unwrap_or_else(|| panic!("{}: first line is {first:?}", path.display()));
        let schema = path.parent().expect("file has a directory").join(target);
        assert!(
            schema.is_file(),
            "{}: $schema points at {}",
            path.display(),
            schema.display()
        );
    }
}

#[test]
fn examples_are_valid_under_the_schema() {
    let validator = validator();
    for (name, _, text) in examples() {
        let errors = schema_errors(&validator, &text);
        assert!(errors.is_empty(), "{name}: {errors:#?}");
    }
}

#[test]
fn examples_evaluate_without_errors() {
    let limits = Limits::default();
    let examples = examples();
    let mut loaded = Loaded::default();
    for (name, _, text) in &examples {
        loaded.insert(name, Ok(Arc::new(parse(name, text, &limits))));
    }
    // What the server knows of the caller when it opens an environment.
    let mut ctx = EvalContext::default();
    ctx.set("pulumi.user.login", "example-user")
        .expect("valid context key");
    ctx.set("pulumi.organization.login", "example-org")
        .expect("valid context key");
    for (name, _, _) in &examples {
        let evaluation = check(&loaded, name, &ctx, &limits);
        let errors: Vec<String> = evaluation
            .diagnostics
            .errors()
            .map(|d| format!("{}: {}: {}", d.environment, d.path, d.message))
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}");
        assert!(evaluation.value.is_some(), "{name}: no value");
    }
}

#[test]
fn wrongly_shaped_documents_fail_the_schema() {
    let validator = validator();
    let invalid = [
        (
            "join takes a two-valued list",
            "values:\n  x:\n    fn::join: 5\n",
        ),
        (
            "join with three items",
            "values:\n  x: {fn::join: [',', [a], b]}\n",
        ),
        ("imports must be a list", "imports: 3\n"),
        (
            "an import with two keys",
            "imports:\n  - {a/b: {merge: false}, c/d: {}}\n",
        ),
        (
            "merge must be a boolean",
            "imports:\n  - a/b: {merge: 'no'}\n",
        ),
        ("values must be an object", "values: [1, 2]\n"),
        (
            "a builtin at the top of values",
            "values:\n  fn::secret: x\n",
        ),
        (
            "a builtin beside other keys",
            "values:\n  x: {fn::toJSON: 1, y: 2}\n",
        ),
        ("an unknown builtin", "values:\n  x: {fn::frobnicate: 1}\n"),
        (
            "a secret that is not a string",
            "values:\n  x: {fn::secret: 5}\n",
        ),
        (
            "ciphertext beside other keys",
            "values:\n  x: {fn::secret: {ciphertext: abc, extra: 1}}\n",
        ),
        (
            "split needs a string",
            "values:\n  x: {fn::split: [',', [a, b]]}\n",
        ),
        (
            "open needs a provider",
            "values:\n  x: {fn::open: {inputs: {}}}\n",
        ),
        (
            "short open needs inputs",
            "values:\n  x: {fn::open::aws-login: null}\n",
        ),
        (
            "validate needs a value",
            "values:\n  x: {fn::validate: {schema: {}}}\n",
        ),
        (
            "rotate needs inputs",
            "values:\n  x: {fn::rotate::aws-iam: {state: {}}}\n",
        ),
        (
            "environment variables are scalars",
            "values:\n  environmentVariables:\n    A: [1, 2]\n",
        ),
        ("files is an object", "values:\n  files: some-file\n"),
        ("description is a string", "description: [a]\n"),
    ];
    for (why, doc) in invalid {
        assert!(
            !schema_errors(&validator, doc).is_empty(),
            "accepted ({why}):\n{doc}"
        );
    }
    let valid = [
        "",
        "imports: []\nvalues: {}\n",
        "values:\n  x: {fn::join: [',', '${list}']}\n  list: [a]\n",
        "values:\n  x: {fn::secret: {ciphertext: abc}}\n",
        "values:\n  x: {fn::rotate: {provider: p, inputs: {a: 1}, state: null}}\n",
        "values:\n  x: {fn::open: {provider: p, inputs: {a: 1}}}\n",
        "values:\n  anything: [1, {nested: [true, null, 2.5]}, {fn::toBase64: x}]\n",
        "unknownTopLevelKey: ignored, as ESC does\n",
    ];
    for doc in valid {
        let errors = schema_errors(&validator, doc);
        assert!(errors.is_empty(), "rejected:\n{doc}\n{errors:#?}");
    }
}
