//! Golden tests: one directory per behaviour under `testdata/`, each holding environment
//! files (the root is `env.yaml`), an optional `context.json` (`{"pulumi.user.login": …}`),
//! and the expected `diagnostics.txt`, `redacted.json` and `revealed.json` (the last two only
//! when evaluation succeeds). Run with `TESSERA_ACCEPT=1` to re-accept output after a
//! deliberate change, then review the diff.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tessera_lang::{check, EvalContext, Limits, Parsed, Source};

struct DirSource(PathBuf);

impl Source for DirSource {
    fn load(&self, name: &str) -> Result<Arc<Parsed>, String> {
        let path = self.0.join(format!("{name}.yaml"));
        match std::fs::read_to_string(&path) {
            Ok(src) => Ok(Arc::new(tessera_lang::parse(
                name,
                &src,
                &Limits::default(),
            ))),
            Err(_) => Err(format!("environment {name:?} not found")),
        }
    }
}

/// What `tessera eval` prints for a case: (diagnostics, redacted JSON, revealed JSON).
pub fn render(dir: &Path) -> (String, Option<String>, Option<String>) {
    let mut ctx = EvalContext::default();
    if let Ok(text) = std::fs::read_to_string(dir.join("context.json")) {
        let map: BTreeMap<String, String> = serde_json::from_str(&text).expect("context.json");
        for (k, v) in map {
            ctx.set(&k, &v).expect("context key");
        }
    }
    let ev = check(&DirSource(dir.to_owned()), "env", &ctx, &Limits::default());
    let diags: String = ev
        .diagnostics
        .iter()
        .map(|d| {
            format!(
                "{}.yaml:{}:{}: {}: {}\n",
                d.environment,
                d.range.begin.line.max(1),
                d.range.begin.column.max(1),
                d.severity,
                d.message
            )
        })
        .collect();
    if ev.has_errors() {
        return (diags, None, None);
    }
    let value = ev.value.expect("a value when there are no errors");
    (
        diags,
        Some(value.to_json_pretty(true)),
        Some(value.to_json_pretty(false)),
    )
}

fn compare(path: &Path, actual: Option<&str>, accept: bool, failures: &mut Vec<String>) {
    let expected = std::fs::read_to_string(path).ok();
    if expected.as_deref() == actual {
        return;
    }
    if accept {
        match actual {
            Some(text) => std::fs::write(path, text).expect("write expected file"),
            None => {
                let _ = std::fs::remove_file(path);
            }
        }
        return;
    }
    failures.push(format!(
        "{}:\n--- expected\n{}\n--- actual\n{}",
        path.display(),
        expected.as_deref().unwrap_or("<absent>"),
        actual.unwrap_or("<absent>")
    ));
}

#[test]
fn golden() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let accept = std::env::var_os("TESSERA_ACCEPT").is_some();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("testdata directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("env.yaml").exists())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 30,
        "expected at least 30 golden cases, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let (diags, redacted, revealed) = render(case);
        compare(
            &case.join("diagnostics.txt"),
            Some(&diags),
            accept,
            &mut failures,
        );
        compare(
            &case.join("redacted.json"),
            redacted.as_deref(),
            accept,
            &mut failures,
        );
        compare(
            &case.join("revealed.json"),
            revealed.as_deref(),
            accept,
            &mut failures,
        );
    }
    assert!(
        failures.is_empty(),
        "{} golden mismatches:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
