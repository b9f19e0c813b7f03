//! Open mode: ciphertext is decrypted through the caller's `Decrypter`, providers are called
//! through the caller's `Providers` (independent calls concurrently, dependent ones in
//! order), and failures come back as diagnostics at the call, never as a crash.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tessera_lang::{
    check, open, Decrypter, EvalContext, Limits, Loaded, ProviderCall, Providers, Value, ValueKind,
};
use zeroize::Zeroizing;

fn loaded(envs: &[(&str, &str)]) -> Loaded {
    let mut l = Loaded::default();
    for (name, src) in envs {
        l.insert(
            name,
            Ok(Arc::new(tessera_lang::parse(name, src, &Limits::default()))),
        );
    }
    l
}

/// "Decrypts" `enc:<env>:<plaintext>`, refusing ciphertext made for another environment.
struct FakeDecrypter;

impl Decrypter for FakeDecrypter {
    fn decrypt(&self, environment: &str, ciphertext: &str) -> Result<Zeroizing<String>, String> {
        let rest = ciphertext.strip_prefix("enc:").ok_or("not a ciphertext")?;
        let (env, plain) = rest.split_once(':').ok_or("malformed")?;
        if env != environment {
            return Err(format!(
                "ciphertext belongs to another environment than {environment}"
            ));
        }
        Ok(Zeroizing::new(plain.to_owned()))
    }
}

/// Echoes its inputs back as `{echo: inputs, env, root}`; `fail` fails; `rendezvous` waits
/// until two calls are in flight at once, so it can only finish when calls run concurrently.
struct FakeProviders {
    calls: AtomicUsize,
    barrier: tokio::sync::Barrier,
}

impl FakeProviders {
    fn new() -> Self {
        FakeProviders {
            calls: AtomicUsize::new(0),
            barrier: tokio::sync::Barrier::new(2),
        }
    }
}

#[async_trait::async_trait]
impl Providers for FakeProviders {
    async fn open(&self, call: ProviderCall) -> Result<Value, String> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match call.provider.as_str() {
            "fail" => Err("STS refused AssumeRoleWithWebIdentity: AccessDenied".into()),
            "hang" => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                unreachable!()
            }
            "rendezvous" => {
                self.barrier.wait().await;
                Ok(Value::string("met"))
            }
            _ => {
                let mut out = std::collections::BTreeMap::new();
                out.insert("echo".to_owned(), call.inputs.clone());
                out.insert("env".to_owned(), Value::string(call.environment));
                out.insert("root".to_owned(), Value::string(call.root_environment));
                out.insert("token".to_owned(), Value::string("tok").into_secret());
                Ok(Value::object(out))
            }
        }
    }
}

async fn open_env(l: &Loaded, root: &str, p: &FakeProviders) -> tessera_lang::Evaluation {
    open(
        l,
        root,
        &EvalContext::default(),
        &Limits::default(),
        &FakeDecrypter,
        p,
        Duration::from_secs(5),
    )
    .await
}

#[tokio::test]
async fn ciphertext_is_decrypted_only_in_open() {
    let l = loaded(&[(
        "app/dev",
        "values:\n  pw:\n    fn::secret:\n      ciphertext: enc:app/dev:hunter2\n  url: db://u:${pw}@h\n",
    )]);
    let checked = check(&l, "app/dev", &EvalContext::default(), &Limits::default());
    let v = checked.value.unwrap();
    assert!(v.get("pw").unwrap().unknown && v.get("pw").unwrap().secret);

    let opened = open_env(&l, "app/dev", &FakeProviders::new()).await;
    assert!(!opened.has_errors(), "{:?}", opened.diagnostics);
    let v = opened.value.unwrap();
    assert_eq!(v.get("url").unwrap().as_str(), Some("db://u:hunter2@h"));
    assert!(v.get("url").unwrap().secret);
    assert_eq!(v.to_json_pretty(true).matches("[secret]").count(), 2);
}

#[tokio::test]
async fn ciphertext_moved_to_another_environment_fails_cleanly() {
    let l = loaded(&[(
        "app/prod",
        "values:\n  pw:\n    fn::secret:\n      ciphertext: enc:app/dev:hunter2\n",
    )]);
    let opened = open_env(&l, "app/prod", &FakeProviders::new()).await;
    let d = opened.diagnostics.errors().next().expect("an error");
    assert!(
        d.message
            .starts_with("decrypting: ciphertext belongs to another environment"),
        "{}",
        d.message
    );
    assert_eq!((d.range.begin.line, &*d.environment), (3, "app/prod"));
}

#[tokio::test]
async fn provider_outputs_feed_later_values_and_calls() {
    let l = loaded(&[(
        "app/dev",
        r#"values:
  login:
    fn::open::echo:
      role: deployer
  second:
    fn::open::echo:
      previous: ${login.echo.role}
  env: ${login.env}
  token: ${login.token}
"#,
    )]);
    let p = FakeProviders::new();
    let ev = open_env(&l, "app/dev", &p).await;
    assert!(!ev.has_errors(), "{:?}", ev.diagnostics);
    let v = ev.value.unwrap();
    assert_eq!(v.get("env").unwrap().as_str(), Some("app/dev"));
    assert_eq!(
        v.get("second")
            .unwrap()
            .get("echo")
            .unwrap()
            .get("previous")
            .unwrap()
            .as_str(),
        Some("deployer")
    );
    assert!(v.get("token").unwrap().secret);
    assert_eq!(
        p.calls.load(Ordering::SeqCst),
        2,
        "each provider is called once"
    );
}

#[tokio::test]
async fn independent_provider_calls_run_concurrently() {
    // Each `rendezvous` call waits for the other: run one after the other, they would time out.
    let l = loaded(&[(
        "e",
        "values:\n  a:\n    fn::open::rendezvous: {}\n  b:\n    fn::open::rendezvous: {}\n",
    )]);
    let ev = open_env(&l, "e", &FakeProviders::new()).await;
    assert!(!ev.has_errors(), "{:?}", ev.diagnostics);
    assert_eq!(ev.value.unwrap().get("b").unwrap().as_str(), Some("met"));
}

#[tokio::test]
async fn provider_failures_and_timeouts_are_diagnostics() {
    let l = loaded(&[(
        "e",
        "values:\n  a:\n    fn::open::fail: {}\n  b:\n    fn::open::hang: {}\n",
    )]);
    let ev = open(
        &l,
        "e",
        &EvalContext::default(),
        &Limits::default(),
        &FakeDecrypter,
        &FakeProviders::new(),
        Duration::from_millis(200),
    )
    .await;
    let messages: Vec<&str> = ev
        .diagnostics
        .errors()
        .map(|d| d.message.as_str())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("AccessDenied")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("did not answer")),
        "{messages:?}"
    );
}

#[tokio::test]
async fn imported_logins_see_their_own_environment_as_current() {
    let l = loaded(&[
        ("app/dev", "imports:\n  - aws/creds\nvalues:\n  x: 1\n"),
        ("aws/creds", "values:\n  login:\n    fn::open::echo: {}\n"),
    ]);
    let ev = open_env(&l, "app/dev", &FakeProviders::new()).await;
    let v = ev.value.unwrap();
    assert_eq!(
        v.get("login").unwrap().get("env").unwrap().as_str(),
        Some("aws/creds")
    );
    assert_eq!(
        v.get("login").unwrap().get("root").unwrap().as_str(),
        Some("app/dev")
    );
}

#[tokio::test]
async fn check_never_calls_providers() {
    let l = loaded(&[("e", "values:\n  a:\n    fn::open::echo: {}\n")]);
    let p = FakeProviders::new();
    let ev = check(&l, "e", &EvalContext::default(), &Limits::default());
    assert!(ev.value.unwrap().get("a").unwrap().unknown);
    assert_eq!(p.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn load_closure_finds_explicit_and_implicit_imports() {
    let sources = std::collections::HashMap::from([
        (
            "app/dev",
            "imports: [app/base]\nvalues:\n  x: ${environments.shared.db.host}\n",
        ),
        ("app/base", "values:\n  y: 1\n"),
        ("shared/db", "values:\n  host: h\n"),
    ]);
    let l = tessera_lang::load_closure("app/dev", &Limits::default(), |name| {
        let r = sources
            .get(name.as_str())
            .map(|s| s.to_string())
            .ok_or_else(|| format!("environment {name:?} not found"));
        async move { r }
    })
    .await;
    assert_eq!(l.names(), ["app/dev", "app/base", "shared/db"]);
    let ev = check(&l, "app/dev", &EvalContext::default(), &Limits::default());
    let v = ev.value.unwrap();
    assert!(matches!(v.get("x").unwrap().kind, ValueKind::String(ref s) if s == "h"));
}
