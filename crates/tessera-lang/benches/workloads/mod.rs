//! The benchmark workloads, shared by `benches/eval.rs` and `examples/profile.rs`.

#![allow(dead_code)] // each user takes what it needs

use std::fmt::Write as _;
use std::sync::Arc;

use tessera_lang::{parse, Limits, Loaded};

/// 1,000 values: 20 shared settings and 980 strings interpolating a setting and value `i/2`.
pub fn interpolations_1000() -> String {
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
pub fn chain_link(k: usize) -> String {
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

pub fn secrets_100(ciphertext: bool) -> String {
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

pub fn load(envs: &[(String, String)], limits: &Limits) -> Loaded {
    let mut loaded = Loaded::default();
    for (name, text) in envs {
        loaded.insert(name, Ok(Arc::new(parse(name, text, limits))));
    }
    loaded
}
