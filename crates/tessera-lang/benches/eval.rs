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

mod workloads;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tessera_lang::{
    check, open, Decrypter, EvalContext, Evaluation, Limits, Loaded, ProviderCall, Providers, Value,
};
use workloads::{chain_link, interpolations_1000, load, secrets_100};

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
