//! Runs one benchmark workload (see `benches/eval.rs`) a fixed number of times, for tools
//! that count instructions or sample, where criterion's adaptive loop gets in the way:
//!
//! ```text
//! cargo build --release -p tessera-lang --example profile
//! valgrind --tool=callgrind target/release/examples/profile chain 11
//! ```
//!
//! Usage: `profile interpolations|chain[:LINKS]|secrets [ITERATIONS] [--parse]` (the chain
//! has 20 links unless given, the last one evaluated). Without `--parse`
//! the environments are parsed once, outside the loop; with it, each iteration parses too.
//! Instructions per iteration: (count at N+10 iterations − count at N) / 10.

#[path = "../benches/workloads/mod.rs"]
mod workloads;

use std::hint::black_box;

use tessera_lang::{check, EvalContext, Limits};
use workloads::{chain_link, interpolations_1000, load, secrets_100};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let workload = args.first().map(String::as_str).unwrap_or("chain");
    let iterations: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(1);
    let parse_each_time = args.iter().any(|a| a == "--parse");
    let (workload, links) = match workload.split_once(':') {
        Some((w, n)) => (w, n.parse().unwrap_or(20)),
        None => (workload, 20),
    };
    let last = format!("bench/e{}", links.max(1) - 1);
    let (envs, root): (Vec<(String, String)>, &str) = match workload {
        "interpolations" => (
            vec![("bench/interp".to_owned(), interpolations_1000())],
            "bench/interp",
        ),
        "chain" => (
            (0..links.max(1))
                .map(|k| (format!("bench/e{k}"), chain_link(k)))
                .collect(),
            &last,
        ),
        "secrets" => (
            vec![("bench/plain".to_owned(), secrets_100(false))],
            "bench/plain",
        ),
        other => {
            eprintln!("unknown workload {other:?}: interpolations, chain or secrets");
            std::process::exit(2);
        }
    };
    let limits = Limits::default();
    let ctx = EvalContext::default();
    let loaded = load(&envs, &limits);
    for _ in 0..iterations {
        let evaluation = if parse_each_time {
            check(&load(&envs, &limits), root, &ctx, &limits)
        } else {
            check(&loaded, root, &ctx, &limits)
        };
        assert!(!evaluation.has_errors(), "{:?}", evaluation.diagnostics);
        black_box(evaluation);
    }
}
