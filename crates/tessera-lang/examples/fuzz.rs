//! A mutation fuzzer for the language that runs on a stable toolchain (cargo-fuzz needs
//! nightly).
//!
//! Seeds are every `*.yaml` under `crates/tessera-lang/testdata` and `examples/`, plus a few
//! built in. Each round mutates one input (byte flips, ESC/YAML tokens, deletions, splices,
//! deep nesting, long reference chains), then parses it and evaluates it with `check` (and
//! every fourth input with `open`, through a toy decrypter and provider) while imports
//! resolve to the seeds. A panic is a crash; an input taking over a second is a hang. Both
//! are saved to the crash directory.
//!
//! A supervisor process runs the fuzzing in a worker child process, so that an abort (stack
//! overflow) or an input stuck for ten seconds is recorded and fuzzing resumes.
//!
//! ```text
//! cargo run -p tessera-lang --example fuzz -- --seconds 600 --crashes /tmp/fuzz-crashes
//! ```

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tessera_lang::{
    check, format, open, parse, Decrypter, EvalContext, Limits, Parsed, ProviderCall, Providers,
    Source, Value,
};

/// Inputs slower than this are reported as hangs.
const HANG: Duration = Duration::from_secs(1);
/// A worker stuck on one input this long is killed from inside and the input saved.
const STUCK: Duration = Duration::from_secs(10);
/// Largest input the mutator produces.
const MAX_INPUT: usize = 64 * 1024;
/// Most inputs kept in the in-memory corpus.
const MAX_CORPUS: usize = 4096;

const BUILTIN_SEEDS: &[(&str, &str)] = &[
    ("a", "values:\n  x: 1\n  obj: {k: v, n: [1, 2, 3]}\n  s: \"${x} and ${obj.k}\"\n"),
    (
        "b",
        "imports:\n  - a\nvalues:\n  y: ${x}\n  obj:\n    k: override\n  secret: {fn::secret: hunter2}\n  env:\n    fn::toJSON: ${obj}\n",
    ),
    (
        "c",
        "imports:\n  - a\n  - b: {merge: false}\nvalues:\n  z: ${imports.b.y}\n  joined: {fn::join: [\",\", [\"p\", \"q\"]]}\n  parts: {fn::split: [\",\", \"a,b,c\"]}\n  b64: {fn::toBase64: hello}\n  back: {fn::fromBase64: ${b64}}\n  j: {fn::fromJSON: '{\"a\": [1, 2.5, null]}'}\n  y: {fn::toYAML: {a: [1, 2]}}\n  fy: {fn::fromYAML: \"a: 1\\nb: [x]\\n\"}\n  str: {fn::toString: [1, {a: b}]}\n  cat: {fn::concat: [[1], [2, 3]]}\n",
    ),
    (
        "proj/env",
        "description: provider and secrets\nvalues:\n  creds:\n    fn::open::aws-login:\n      oidc:\n        roleArn: arn:aws:iam::123:role/x\n        sessionName: ${context.rootEnvironment.name}\n  key: {fn::secret: {ciphertext: ZXhhbXBsZQ==}}\n  final: {fn::final: frozen}\n  checked:\n    fn::validate:\n      schema: {type: string}\n      value: ${key}\n  rot:\n    fn::rotate::aws-iam:\n      inputs: {user: u}\n      state: {current: k1}\n  environmentVariables:\n    AWS_KEY: ${creds.accessKeyId}\n  files:\n    KEY: ${key}\n  pulumiConfig:\n    aws:region: us-west-2\n",
    ),
    (
        "anchors",
        "values:\n  base: &b {x: 1, y: [a, b]}\n  copy: *b\n  cyc: ${cyc2}\n  cyc2: ${cyc}\n  esc: $${not.a.ref}\n  q: ${base[\"x\"]}\n  idx: ${base.y[1]}\n  bad: ${base.y[9]}\n",
    ),
];

const TOKENS: &[&str] = &[
    "${",
    "}",
    "${a}",
    "${x}",
    "${obj.k}",
    "${a.b[0]}",
    "${obj[\"k\"]}",
    "${imports.a.x}",
    "${imports[\"a\"]}",
    "${environments.app.base.x}",
    "${environments.proj.env.key}",
    "${context.rootEnvironment.name}",
    "${context.currentEnvironment}",
    "$${",
    "$$",
    "fn::",
    "FN::join",
    "fn::secret: ",
    "fn::secret",
    "{fn::secret: s}",
    "{ciphertext: ",
    "fn::join: ",
    "{fn::join: [\",\", [a, b]]}",
    "fn::split: ",
    "{fn::split: [\"\", abc]}",
    "fn::toJSON: ",
    "fn::fromJSON: ",
    "{fn::fromJSON: '[1,{\"a\":null}]'}",
    "fn::toYAML: ",
    "fn::fromYAML: ",
    "fn::toBase64: ",
    "fn::fromBase64: ",
    "{fn::fromBase64: '!!'}",
    "fn::toString: ",
    "fn::concat: ",
    "fn::final: ",
    "fn::validate: ",
    "{fn::validate: {schema: {type: number}, value: x}}",
    "fn::open: ",
    "fn::open::aws-login: ",
    "{fn::open: {provider: p, inputs: {a: 1}}}",
    "fn::rotate: ",
    "fn::rotate::r: ",
    "provider: ",
    "inputs: ",
    "state: ",
    "merge: false",
    "imports:\n  - a\n",
    "imports: [a, b, c, proj/env]\n",
    "values:\n",
    "environmentVariables: ",
    "files: ",
    "pulumiConfig: ",
    "description: ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "<<: *a",
    ": ",
    ":",
    "- ",
    "\n",
    "\n  ",
    "\n    - ",
    "\t",
    "'",
    "\"",
    "\\",
    "\\u00",
    "#",
    "---\n",
    "...\n",
    "!!str ",
    "!!binary ",
    "!custom ",
    "? ",
    "|\n  ",
    ">-\n  ",
    "~",
    "null",
    "true",
    "1e309",
    "-0",
    "0x1F",
    "0o17",
    ".inf",
    ".nan",
    "9223372036854775808",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "1.7976931348623157e308",
    "5e-324",
    "\u{feff}",
    "\u{1F600}",
    "\u{2028}",
    "\r\n",
    "\r",
    "\0",
];

fn main() -> ExitCode {
    let opts = match Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(message) => {
            eprintln!("fuzz: {message}\nusage: fuzz [--seconds N] [--crashes DIR] [--seed N] [--stack-mib N] [--max-chain N]");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&opts.crashes) {
        eprintln!("fuzz: cannot create {}: {e}", opts.crashes.display());
        return ExitCode::from(2);
    }
    if opts.worker {
        let stack = opts.stack_mib << 20;
        let worker = std::thread::Builder::new()
            .stack_size(stack)
            .spawn(move || work(&opts));
        match worker.map(|h| h.join()) {
            Ok(Ok(())) => ExitCode::SUCCESS,
            _ => ExitCode::FAILURE,
        }
    } else {
        supervise(&opts)
    }
}

#[derive(Clone)]
struct Options {
    seconds: u64,
    crashes: PathBuf,
    seed: u64,
    stack_mib: usize,
    max_chain: usize,
    worker: bool,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut o = Options {
            seconds: 60,
            crashes: PathBuf::from("fuzz-crashes"),
            seed: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64),
            stack_mib: 2,
            // Evaluation recursion follows reference chains; longer chains than this overflow
            // a 2 MiB stack (a known bug) and would drown everything else.
            max_chain: 64,
            worker: false,
        };
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--seconds" => {
                    o.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?
                }
                "--crashes" => o.crashes = PathBuf::from(value()?),
                "--seed" => o.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
                "--stack-mib" => {
                    o.stack_mib = value()?.parse().map_err(|e| format!("--stack-mib: {e}"))?
                }
                "--max-chain" => {
                    o.max_chain = value()?.parse().map_err(|e| format!("--max-chain: {e}"))?
                }
                "--worker" => o.worker = true,
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(o)
    }
}

/// Totals a worker prints as its last line: `stats <execs> <crashes> <hangs> <corpus>`.
#[derive(Default, Debug, Clone, Copy)]
struct Stats {
    execs: u64,
    crashes: u64,
    hangs: u64,
    corpus: u64,
}

// ---- supervisor ---------------------------------------------------------------------------

fn supervise(opts: &Options) -> ExitCode {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(opts.seconds);
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("fuzz: cannot find own executable: {e}");
            return ExitCode::from(2);
        }
    };
    let mut total = Stats::default();
    let mut aborts = 0u64;
    let mut seed = opts.seed;
    println!(
        "fuzz: seed {seed}, {} s, crashes in {}",
        opts.seconds,
        opts.crashes.display()
    );
    while Instant::now() < deadline {
        let remaining = deadline.saturating_duration_since(Instant::now()).as_secs();
        if remaining == 0 {
            break;
        }
        let child = Command::new(&exe)
            .args([
                "--worker",
                "--seconds",
                &remaining.to_string(),
                "--seed",
                &seed.to_string(),
            ])
            .args([
                "--stack-mib",
                &opts.stack_mib.to_string(),
                "--max-chain",
                &opts.max_chain.to_string(),
            ])
            .arg("--crashes")
            .arg(&opts.crashes)
            .stdout(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                eprintln!("fuzz: cannot start worker: {e}");
                return ExitCode::from(2);
            }
        };
        let mut last = None;
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(s) = parse_stats(&line) {
                    last = Some(s);
                } else {
                    println!("{line}");
                }
            }
        }
        let status = child.wait();
        if let Some(s) = last {
            total.execs += s.execs;
            total.crashes += s.crashes;
            total.hangs += s.hangs;
            total.corpus = total.corpus.max(s.corpus);
        }
        let clean = matches!(&status, Ok(s) if s.success());
        if !clean {
            // The worker died on an input: an abort (stack overflow) or the stuck-input exit.
            let current = opts.crashes.join(".current.yaml");
            let stuck = matches!(&status, Ok(s) if s.code() == Some(3));
            let kind = if stuck { "stuck" } else { "abort" };
            if let Ok(input) = std::fs::read(&current) {
                let path = save(&opts.crashes, kind, &input);
                println!(
                    "fuzz: worker {kind} ({status:?}); input saved to {}",
                    path.display()
                );
            }
            if stuck {
                total.hangs += 1;
            } else {
                aborts += 1;
            }
        }
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "fuzz: ran {secs:.0} s: {} executions ({:.0}/s), {} crashes, {} aborts, {} hangs, corpus {}",
        total.execs,
        total.execs as f64 / secs,
        total.crashes,
        aborts,
        total.hangs,
        total.corpus
    );
    if total.crashes + aborts + total.hangs > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn parse_stats(line: &str) -> Option<Stats> {
    let mut it = line
        .strip_prefix("stats ")?
        .split(' ')
        .map(str::parse::<u64>);
    Some(Stats {
        execs: it.next()?.ok()?,
        crashes: it.next()?.ok()?,
        hangs: it.next()?.ok()?,
        corpus: it.next()?.ok()?,
    })
}

/// Saves an input under a name derived from its content; returns the path.
fn save(dir: &Path, kind: &str, input: &[u8]) -> PathBuf {
    let path = dir.join(format!("{kind}-{:016x}.yaml", fnv(input)));
    if let Err(e) = std::fs::write(&path, input) {
        eprintln!("fuzz: cannot save {}: {e}", path.display());
    }
    path
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

// ---- worker -------------------------------------------------------------------------------

fn work(opts: &Options) {
    let limits = Limits::default();
    let seeds = load_seeds();
    let mut envs: HashMap<String, Arc<Parsed>> = HashMap::new();
    for (name, text) in &seeds {
        envs.insert(name.clone(), Arc::new(parse(name, text, &limits)));
    }
    let mut corpus: Vec<Vec<u8>> = seeds.iter().map(|(_, t)| t.clone().into_bytes()).collect();
    let mut signatures: HashSet<u64> = HashSet::new();

    let panic_message: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    {
        let slot = panic_message.clone();
        panic::set_hook(Box::new(move |info| {
            let location = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let payload = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if let Ok(mut s) = slot.lock() {
                *s = Some(format!("{payload}{location}"));
            }
        }));
    }

    // The watchdog ends the worker when one input runs far too long; the supervisor saves it.
    let epoch = Instant::now();
    let exec_started = Arc::new(AtomicU64::new(u64::MAX));
    {
        let started = exec_started.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(200));
            let s = started.load(Ordering::Relaxed);
            if s != u64::MAX && epoch.elapsed().as_millis() as u64 > s + STUCK.as_millis() as u64 {
                println!("fuzz: input stuck for {} s", STUCK.as_secs());
                std::process::exit(3);
            }
        });
    }

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fuzz: cannot start a runtime: {e}");
            return;
        }
    };

    let mut rng = Rng(opts.seed | 1);
    let deadline = Instant::now() + Duration::from_secs(opts.seconds);
    let current = opts.crashes.join(".current.yaml");
    let mut stats = Stats::default();
    let mut last_report = Instant::now();
    while Instant::now() < deadline {
        let input = mutate(&mut rng, &corpus, opts.max_chain);
        let text = String::from_utf8_lossy(&input).into_owned();
        let _ = std::fs::write(&current, &input);
        let with_open = rng.below(4) == 0;
        exec_started.store(epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        let t = Instant::now();
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            run_one(&text, &envs, &limits, with_open.then_some(&runtime))
        }));
        let elapsed = t.elapsed();
        exec_started.store(u64::MAX, Ordering::Relaxed);
        stats.execs += 1;
        match outcome {
            Err(_) => {
                stats.crashes += 1;
                let message = panic_message
                    .lock()
                    .ok()
                    .and_then(|mut s| s.take())
                    .unwrap_or_default();
                let path = save(&opts.crashes, "crash", &input);
                println!("fuzz: CRASH {message}; input saved to {}", path.display());
            }
            Ok(signature) => {
                if elapsed > HANG {
                    stats.hangs += 1;
                    let path = save(&opts.crashes, "hang", &input);
                    println!(
                        "fuzz: HANG {:.2} s; input saved to {}",
                        elapsed.as_secs_f64(),
                        path.display()
                    );
                } else if signatures.insert(signature) && corpus.len() < MAX_CORPUS {
                    // No coverage feedback on stable: keep inputs whose diagnostics are new.
                    corpus.push(input);
                }
            }
        }
        if last_report.elapsed() > Duration::from_secs(60) {
            last_report = Instant::now();
            println!(
                "fuzz: {} execs, {} crashes, {} hangs, corpus {}",
                stats.execs,
                stats.crashes,
                stats.hangs,
                corpus.len()
            );
        }
    }
    let _ = std::fs::remove_file(&current);
    stats.corpus = corpus.len() as u64;
    println!(
        "stats {} {} {} {}",
        stats.execs, stats.crashes, stats.hangs, stats.corpus
    );
}

/// Parses and evaluates one input as `fuzz/root`; returns a signature of what it produced.
fn run_one(
    text: &str,
    envs: &HashMap<String, Arc<Parsed>>,
    limits: &Limits,
    runtime: Option<&tokio::runtime::Runtime>,
) -> u64 {
    let root = "fuzz/root";
    let source = Overlay {
        envs,
        root,
        parsed: Arc::new(parse(root, text, limits)),
    };
    let mut ctx = EvalContext::default();
    let _ = ctx.set("pulumi.user.login", "fuzzer");
    let evaluation = match runtime {
        None => check(&source, root, &ctx, limits),
        Some(rt) => rt.block_on(open(
            &source,
            root,
            &ctx,
            limits,
            &ToyDecrypter,
            &EchoProvider,
            Duration::from_secs(1),
        )),
    };
    if let Some(v) = &evaluation.value {
        // Every rendering must cope with whatever evaluation produced.
        let _ = v.to_json_pretty(true);
        let _ = v.to_json_pretty(false);
        let yaml = format::to_yaml(v, false);
        let _ = format::from_yaml(&yaml, limits);
        let _ = format::dotenv(&evaluation.environment_variables(), true);
        let _ = format::shell(&evaluation.environment_variables(), false);
        let _ = evaluation.files();
        let _ = evaluation.pulumi_config();
        let _ = v.to_serde_json(true);
    }
    let mut shapes: Vec<String> = evaluation
        .diagnostics
        .iter()
        .map(|d| {
            d.message
                .chars()
                .filter(|c| c.is_ascii_lowercase())
                .take(40)
                .collect()
        })
        .collect();
    shapes.sort();
    shapes.dedup();
    fnv(shapes.join("|").as_bytes())
}

/// The seeds plus the input under evaluation.
struct Overlay<'a> {
    envs: &'a HashMap<String, Arc<Parsed>>,
    root: &'a str,
    parsed: Arc<Parsed>,
}

impl Source for Overlay<'_> {
    fn load(&self, name: &str) -> Result<Arc<Parsed>, String> {
        if name == self.root {
            return Ok(self.parsed.clone());
        }
        self.envs
            .get(name)
            .cloned()
            .ok_or_else(|| format!("environment {name:?} not found"))
    }
}

struct ToyDecrypter;

impl Decrypter for ToyDecrypter {
    fn decrypt(
        &self,
        _environment: &str,
        ciphertext: &str,
    ) -> Result<zeroize::Zeroizing<String>, String> {
        if ciphertext.starts_with('!') {
            return Err("bad ciphertext".to_owned());
        }
        Ok(zeroize::Zeroizing::new(ciphertext.chars().rev().collect()))
    }
}

struct EchoProvider;

#[async_trait::async_trait]
impl Providers for EchoProvider {
    async fn open(&self, call: ProviderCall) -> Result<Value, String> {
        if call.provider == "fail" {
            return Err("provider failed".to_owned());
        }
        let mut out = std::collections::BTreeMap::new();
        out.insert("inputs".to_owned(), call.inputs);
        out.insert("provider".to_owned(), Value::string(call.provider));
        Ok(Value::object(out).into_secret())
    }
}

/// Seeds by environment name: files under `testdata/` and `examples/` by their path relative
/// to those roots (`app/base`) and, when free, by their stem (`base`); then the built-ins.
fn load_seeds() -> Vec<(String, String)> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let roots = [
        manifest.join("testdata"),
        manifest.join("../../examples/environments"),
        manifest.join("../../examples"),
    ];
    let mut seeds: Vec<(String, String)> = Vec::new();
    let mut names = HashSet::new();
    for root in &roots {
        let mut files = Vec::new();
        collect_yaml(root, &mut files);
        files.sort();
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let rel = file.strip_prefix(root).unwrap_or(&file).with_extension("");
            let rel = rel.to_string_lossy().replace('\\', "/");
            let stem = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            for name in [rel, stem] {
                if names.insert(name.clone()) {
                    seeds.push((name, text.clone()));
                }
            }
        }
    }
    let from_files = seeds.len();
    for (name, text) in BUILTIN_SEEDS {
        if names.insert((*name).to_owned()) {
            seeds.push(((*name).to_owned(), (*text).to_owned()));
        }
    }
    println!("fuzz: {} seed names ({from_files} from files)", seeds.len());
    seeds
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_yaml(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

// ---- mutation -----------------------------------------------------------------------------

/// xorshift64*: small, fast, reproducible from `--seed`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>], max_chain: usize) -> Vec<u8> {
    let mut data = rng.pick(corpus).clone();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        mutate_once(rng, corpus, &mut data, max_chain);
    }
    data.truncate(MAX_INPUT);
    data
}

fn mutate_once(rng: &mut Rng, corpus: &[Vec<u8>], data: &mut Vec<u8>, max_chain: usize) {
    let len = data.len();
    match rng.below(12) {
        0 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            data[i] = *rng.pick(b"${}[]:,-&*!|>'\"\\#\n \t0{}$");
        }
        2 | 3 => {
            let i = rng.below(len + 1);
            let token = rng.pick(TOKENS).as_bytes();
            data.splice(i..i, token.iter().copied());
        }
        4 => {
            // At a line start, so the token lands in a structural position.
            let starts: Vec<usize> = std::iter::once(0)
                .chain(
                    data.iter()
                        .enumerate()
                        .filter(|(_, b)| **b == b'\n')
                        .map(|(i, _)| i + 1),
                )
                .collect();
            let i = *rng.pick(&starts);
            let indent = b"    ".get(..rng.below(5)).unwrap_or_default().to_vec();
            let token = rng.pick(TOKENS).as_bytes();
            data.splice(i..i, indent.into_iter().chain(token.iter().copied()));
        }
        5 if len > 0 => {
            let a = rng.below(len);
            let b = (a + 1 + rng.below(16)).min(len);
            data.drain(a..b);
        }
        6 if len > 0 => {
            let a = rng.below(len);
            let b = (a + 1 + rng.below(64)).min(len);
            let chunk = data[a..b].to_vec();
            let i = rng.below(len + 1);
            data.splice(i..i, chunk);
        }
        7 => {
            // Splice: this input's head, another's tail.
            let other = rng.pick(corpus);
            let cut = rng.below(data.len() + 1);
            let from = rng.below(other.len() + 1);
            data.truncate(cut);
            data.extend_from_slice(&other[from..]);
        }
        8 => {
            let max = if rng.below(4) == 0 { 300 } else { 70 };
            let depth = 1 + rng.below(max);
            let i = rng.below(len + 1);
            let (open, close): (&[u8], &[u8]) = *rng.pick(&[
                (b"[".as_slice(), b"]".as_slice()),
                (b"{a: ", b"}"),
                (b"{fn::toJSON: ", b"}"),
                (b"{fn::secret: ", b"}"),
                (b"[{fn::concat: [", b"]}]"),
            ]);
            let mut nested = open.repeat(depth);
            nested.extend_from_slice(b"x");
            nested.extend_from_slice(&close.repeat(depth));
            data.splice(i..i, nested);
        }
        9 => {
            // Block-style nesting under `values`.
            let depth = 1 + rng.below(100);
            let mut text = String::from("\nvalues:\n");
            for d in 0..depth {
                text.push_str(&"  ".repeat(d + 1));
                text.push_str(if rng.below(3) == 0 { "- k:\n" } else { "k:\n" });
            }
            text.push_str(&"  ".repeat(depth + 1));
            text.push_str("v\n");
            data.extend_from_slice(text.as_bytes());
        }
        10 => {
            // A long reference chain: deep recursion in evaluation, not in the YAML.
            let n = 1 + rng.below(max_chain);
            let mut text = String::from("values:\n");
            for i in 0..n {
                text.push_str(&format!("  r{i}: \"${{r{}}}-{i}\"\n", i + 1));
            }
            text.push_str(&format!(
                "  r{n}: {}\n",
                if rng.below(2) == 0 { "end" } else { "${r0}" }
            ));
            *data = text.into_bytes();
        }
        _ => {
            let i = rng.below(len + 1);
            let n = rng
                .pick(&[
                    "0",
                    "-1",
                    "1.5",
                    "1e3",
                    "18446744073709551616",
                    "NaN",
                    "0.1e-400",
                ])
                .as_bytes();
            data.splice(i..i, n.iter().copied());
        }
    }
}
