//! Evaluation benchmarks for the language, each measured as parse + check together and as
//! check alone over already parsed environments:
//!
//! - `interpolations_1000`: one environment of 1,000 values whose strings interpolate other
//!   values (each refers to a shared setting and to an earlier value, so chains stay short).
//! - `import_chain_20x100`: 20 environments of 100 values, each importing the one before and
//!   referring to and overriding its values; the last one is evaluated (goal: under 1 ms).
//! - `secrets_100`: 100 `fn::secret` values: plaintext through `check`, and ciphertext
//!   through `open` with a trivial decrypter on a current-thread tokio runtime.
//!
//! Every workload is checked once before measuring, so the figures are never those of an
//! error path.

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tessera_lang::{
    check, open, parse, Decrypter, EvalContext, Evaluation, Limits, Loaded, ProviderCall,
    Providers, Value,
};

/// 1,000 values: 20 shared settings and 980 strings interpolating a setting and value `i/2`.
fn interpolations_1000() -> String {
    let mut doc = String::from("values:\n  cfg:\n");
    for k in 0..20 {
        let _ = writeln!(doc, "    k{k}: setting-{k}");
    }
    let _ = writeln!(doc, "  v0: root");
    for i in 1..980 {
        let _ = writeln!(
            doc,
            "  v{i}: \"svc-{i}.${{cfg.k{}}}.${{v{}}}\"",
            i % 20,
            i / 2
        );
    }
    doc
}

/// Environment `k` of the chain: 100 values, half referring to the previous environment's
/// values (reached through the import) and half overriding a shared object.
fn chain_link(k: usize) -> String {
    let mut doc = String::new();
    if k > 0 {
        let _ = writeln!(doc, "imports:\n  - bench/e{}", k - 1);
    }
    doc.push_str("values:\n");
    for j in 0..50 {
        if k == 0 {
            let _ = writeln!(doc, "  e{k}_{j}: value-{j}");
        } else {
            let _ = writeln!(doc, "  e{k}_{j}: \"${{e{}_{j}}}+{k}\"", k - 1);
        }
    }
    doc.push_str("  shared:\n");
    for j in 0..49 {
        let _ = writeln!(doc, "    s{j}: layer-{k}-{j}");
    }
    let _ = writeln!(doc, "  latest: e{k}");
    doc
}

fn secrets_100(ciphertext: bool) -> String {
    let mut doc = String::from("values:\n");
    for i in 0..100 {
        if ciphertext {
            let _ = writeln!(
                doc,
                "  s{i}: {{fn::secret: {{ciphertext: \"ct-{i}-abcdefghijklmnop\"}}}}"
            );
        } else {
            let _ = writeln!(
                doc,
                "  s{i}: {{fn::secret: \"plaintext-{i}-abcdefghijklmnop\"}}"
            );
        }
    }
    doc.push_str("  environmentVariables:\n");
    for i in 0..10 {
        let _ = writeln!(doc, "    SECRET_{i}: ${{s{i}}}");
    }
    doc
}

fn load(envs: &[(String, String)], limits: &Limits) -> Loaded {
    let mut loaded = Loaded::default();
    for (name, text) in envs {
        loaded.insert(name, Ok(Arc::new(parse(name, text, limits))));
    }
    loaded
}

fn assert_clean(evaluation: &Evaluation, what: &str) {
    let errors: Vec<String> = evaluation
        .diagnostics
        .errors()
        .map(|d| format!("{}: {}", d.path, d.message))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:?}");
    assert!(evaluation.value.is_some(), "{what}: no value");
}

/// Reverses the ciphertext: enough to exercise the decryption path.
struct Reverse;

impl Decrypter for Reverse {
    fn decrypt(
        &self,
        _environment: &str,
        ciphertext: &str,
    ) -> Result<zeroize::Zeroizing<String>, String> {
        Ok(zeroize::Zeroizing::new(ciphertext.chars().rev().collect()))
    }
}

struct NoProviders;

#[async_trait::async_trait]
impl Providers for NoProviders {
    async fn open(&self, call: ProviderCall) -> Result<Value, String> {
        Err(format!("no provider {:?} in benchmarks", call.provider))
    }
}

fn benches(c: &mut Criterion) {
    let limits = Limits::default();
    let ctx = EvalContext::default();

    // (a) one environment, 1,000 interpolating values.
    let envs = vec![("bench/interp".to_owned(), interpolations_1000())];
    let loaded = load(&envs, &limits);
    let evaluation = check(&loaded, "bench/interp", &ctx, &limits);
    assert_clean(&evaluation, "interpolations");
    let v979 = evaluation
        .value
        .as_ref()
        .and_then(|v| v.get("v979"))
        .and_then(Value::as_str);
    assert_eq!(v979, Some("svc-979.setting-19.svc-489.setting-9.svc-244.setting-4.svc-122.setting-2.svc-61.setting-1.svc-30.setting-10.svc-15.setting-15.svc-7.setting-7.svc-3.setting-3.svc-1.setting-1.root"));
    let mut g = c.benchmark_group("interpolations_1000");
    g.bench_function("parse+check", |b| {
        b.iter(|| black_box(check(&load(&envs, &limits), "bench/interp", &ctx, &limits)))
    });
    g.bench_function("check", |b| {
        b.iter(|| black_box(check(&loaded, "bench/interp", &ctx, &limits)))
    });
    g.finish();

    // (b) 20 imports of 100 values each; evaluate the last.
    let envs: Vec<(String, String)> = (0..20)
        .map(|k| (format!("bench/e{k}"), chain_link(k)))
        .collect();
    let loaded = load(&envs, &limits);
    let evaluation = check(&loaded, "bench/e19", &ctx, &limits);
    assert_clean(&evaluation, "import chain");
    let value = evaluation.value.as_ref().expect("checked above");
    assert_eq!(
        value.get("e19_7").and_then(Value::as_str),
        Some("value-7+1+2+3+4+5+6+7+8+9+10+11+12+13+14+15+16+17+18+19")
    );
    assert_eq!(value.get("e0_7").and_then(Value::as_str), Some("value-7"));
    assert_eq!(value.as_object().map(|o| o.len()), Some(20 * 50 + 2));
    let mut g = c.benchmark_group("import_chain_20x100");
    g.bench_function("parse+check", |b| {
        b.iter(|| black_box(check(&load(&envs, &limits), "bench/e19", &ctx, &limits)))
    });
    g.bench_function("check", |b| {
        b.iter(|| black_box(check(&loaded, "bench/e19", &ctx, &limits)))
    });
    g.finish();

    // (c) 100 secrets.
    let plain = vec![("bench/plain".to_owned(), secrets_100(false))];
    let plain_loaded = load(&plain, &limits);
    assert_clean(
        &check(&plain_loaded, "bench/plain", &ctx, &limits),
        "plaintext secrets",
    );
    let cipher = vec![("bench/cipher".to_owned(), secrets_100(true))];
    let cipher_loaded = load(&cipher, &limits);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let deadline = Duration::from_secs(10);
    let open_cipher = |loaded: &Loaded| {
        runtime.block_on(open(
            loaded,
            "bench/cipher",
            &ctx,
            &limits,
            &Reverse,
            &NoProviders,
            deadline,
        ))
    };
    let opened = open_cipher(&cipher_loaded);
    assert_clean(&opened, "ciphertext secrets");
    let s7 = opened.value.as_ref().and_then(|v| v.get("s7"));
    assert!(
        s7.is_some_and(|s| s.secret && s.as_str() == Some("ponmlkjihgfedcba-7-tc")),
        "{s7:?}"
    );
    let mut g = c.benchmark_group("secrets_100");
    g.bench_function("plaintext parse+check", |b| {
        b.iter(|| black_box(check(&load(&plain, &limits), "bench/plain", &ctx, &limits)))
    });
    g.bench_function("plaintext check", |b| {
        b.iter(|| black_box(check(&plain_loaded, "bench/plain", &ctx, &limits)))
    });
    g.bench_function("ciphertext parse+open", |b| {
        b.iter(|| black_box(open_cipher(&load(&cipher, &limits))))
    });
    g.bench_function("ciphertext open", |b| {
        b.iter(|| black_box(open_cipher(&cipher_loaded)))
    });
    g.finish();
}

criterion_group!(eval, benches);
criterion_main!(eval);
