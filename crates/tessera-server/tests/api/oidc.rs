//! Tessera as an OIDC issuer: discovery and JWKS, cloud logins against `moto_server` and a
//! fake Azure AD that verifies tokens as the real one does (discovery → JWKS → signature,
//! `iss`, `aud`, `sub`, `exp`, `iat`), the Read-only caller causing no outbound request,
//! refusals and timeouts as 502/504 diagnostics, and signing-key rotation with overlap.

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{web, App, HttpResponse, HttpServer};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value as Json};
use tessera_crypto::{MasterKey, SecretString};
use tessera_providers::ProvidersConfig;
use tessera_server::{Config, RawConfig};

use crate::helpers::{break_audit_log, mend_audit_log, TestApp, ADMIN_TOKEN, ORG};

const ROLE: &str = "arn:aws:iam::123456789012:role/deploy";
const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
const TENANT: &str = "contoso-tenant";

fn env_path(name: &str) -> String {
    format!("/api/esc/environments/{ORG}/{name}")
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn issuer(app: &TestApp) -> String {
    format!("{}/oidc", app.addr)
}

/// What a relying party does with a token from an issuer it trusts: discovery, JWKS, the
/// `kid`'s key, RS256 signature, `iss`, `aud`, `exp`, `iat`. Returns the claims.
async fn verify(token: &str, issuer: &str, audience: &str) -> Result<Json, String> {
    let http = reqwest::Client::new();
    let get = |url: String| {
        let http = http.clone();
        async move {
            http.get(&url)
                .send()
                .await
                .map_err(|e| format!("fetching {url}: {e}"))?
                .json::<Json>()
                .await
                .map_err(|e| format!("reading {url}: {e}"))
        }
    };
    let discovery = get(format!("{issuer}/.well-known/openid-configuration")).await?;
    if discovery["issuer"] != json!(issuer) {
        return Err("discovery names another issuer".into());
    }
    let jwks_uri = discovery["jwks_uri"].as_str().ok_or("no jwks_uri")?;
    let jwks = get(jwks_uri.to_owned()).await?;
    let header = jsonwebtoken::decode_header(token).map_err(|e| format!("header: {e}"))?;
    if header.alg != Algorithm::RS256 {
        return Err("unexpected algorithm".into());
    }
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == json!(kid)))
        .ok_or("unknown kid")?;
    let key = DecodingKey::from_rsa_components(
        jwk["n"].as_str().ok_or("no n")?,
        jwk["e"].as_str().ok_or("no e")?,
    )
    .map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation.leeway = 0;
    let claims = jsonwebtoken::decode::<Json>(token, &key, &validation)
        .map_err(|e| format!("invalid token: {e}"))?
        .claims;
    let iat = claims["iat"].as_u64().ok_or("no iat")?;
    let exp = claims["exp"].as_u64().ok_or("no exp")?;
    if iat > now() + 60 {
        return Err("iat in the future".into());
    }
    if exp <= iat || exp - iat > 7200 {
        return Err("lifetime over 2h".into());
    }
    Ok(claims)
}

/// Starts `app` on a loopback port and returns its base URL.
pub(crate) fn serve<F>(app: F) -> String
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = HttpServer::new(move || App::new().configure(app.clone()))
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}")
}

/// Azure AD's token endpoint with one app registration whose federated credentials trust
/// `issuer` (set once the server is up) with the subjects in `subjects`.
struct AzureAd {
    url: String,
    issuer: Arc<Mutex<String>>,
    subjects: Arc<Mutex<Vec<String>>>,
    /// Every request it received.
    requests: Arc<AtomicUsize>,
    /// The claims of the assertions it accepted.
    accepted: Arc<Mutex<Vec<Json>>>,
}

fn azure_ad() -> AzureAd {
    let issuer = Arc::new(Mutex::new(String::new()));
    let subjects = Arc::new(Mutex::new(Vec::new()));
    let requests = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let state = (
        issuer.clone(),
        subjects.clone(),
        requests.clone(),
        accepted.clone(),
    );
    let url = serve(move |cfg: &mut web::ServiceConfig| {
        let state = state.clone();
        cfg.route(
            "/{tenant}/oauth2/v2.0/token",
            web::post().to(
                move |path: web::Path<String>, form: web::Form<HashMap<String, String>>| {
                    let (issuer, subjects, requests, accepted) = state.clone();
                    async move {
                        requests.fetch_add(1, Ordering::SeqCst);
                        let refuse = |code: &str, description: String| {
                            HttpResponse::BadRequest()
                                .json(json!({"error": code, "error_description": description}))
                        };
                        if path.into_inner() != TENANT
                            || form.get("client_id").map(String::as_str) != Some(CLIENT)
                            || form.get("client_assertion_type").map(String::as_str)
                                != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
                        {
                            return refuse("invalid_request", "AADSTS900144: bad request".into());
                        }
                        let assertion = form.get("client_assertion").cloned().unwrap_or_default();
                        let iss = issuer.lock().expect("lock").clone();
                        let claims = match verify(&assertion, &iss, &format!("azure:{ORG}")).await {
                            Ok(c) => c,
                            Err(why) => {
                                return refuse(
                                    "invalid_client",
                                    format!("AADSTS70021: {why}. Assertion: {assertion}"),
                                )
                            }
                        };
                        let sub = claims["sub"].as_str().unwrap_or_default().to_owned();
                        if !subjects.lock().expect("lock").contains(&sub) {
                            return refuse(
                                "invalid_client",
                                format!("AADSTS70021: No matching federated identity record for subject {sub}. Assertion: {assertion}"),
                            );
                        }
                        accepted.lock().expect("lock").push(claims);
                        HttpResponse::Ok().json(json!({
                            "token_type": "Bearer", "expires_in": 3599, "access_token": "azure-access-token",
                        }))
                    }
                },
            ),
        );
    });
    AzureAd {
        url,
        issuer,
        subjects,
        requests,
        accepted,
    }
}

/// An app whose Azure authority is `ad`, and `ad` trusting that app's issuer.
/// A server whose `app/dev` logs in to the fake Azure AD, which trusts `app/dev`'s subject.
async fn azure_dev() -> (AzureAd, TestApp) {
    let ad = azure_ad();
    let app = app_with_azure(&ad).await;
    ad.subjects
        .lock()
        .expect("lock")
        .push(format!("pulumi:environments:org:{ORG}:env:app/dev"));
    app.create_env("app/dev", &azure_login("")).await;
    (ad, app)
}

async fn app_with_azure(ad: &AzureAd) -> TestApp {
    let url = ad.url.clone();
    let app = TestApp::spawn_configured(|c| {
        c.providers = ProvidersConfig {
            azure_authority_host: Some(url),
            ..ProvidersConfig::default()
        };
    })
    .await;
    *ad.issuer.lock().expect("lock") = issuer(&app);
    app
}

/// Opens `name` as `token`, expecting `status`; on 200, returns the session's properties.
async fn open(app: &TestApp, name: &str, token: &str, status: u16) -> crate::helpers::Resp {
    let r = app
        .post(&format!("{}/open", env_path(name)), token)
        .await
        .expect(status);
    if status != 200 {
        return r;
    }
    let id = r.json()["id"].as_str().expect("id").to_owned();
    app.get(&format!("{}/open/{id}", env_path(name)), token)
        .await
        .expect(200)
}

/// The value and secrecy at `path` of session properties.
fn at(props: &Json, path: &[&str]) -> (String, bool) {
    let mut cur = props;
    for (i, p) in path.iter().enumerate() {
        cur = if i == 0 { &cur[p] } else { &cur["value"][p] };
    }
    (
        cur["value"].as_str().unwrap_or_default().to_owned(),
        cur["secret"] == json!(true),
    )
}

fn azure_login(extra: &str) -> String {
    format!(
        "values:\n  azure:\n    fn::open::azure-login:\n      clientId: {CLIENT}\n      tenantId: {TENANT}\n      subscriptionId: sub-1\n      oidc: true\n{extra}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_jwks_need_no_token_and_publish_public_members_only() {
    let app = TestApp::spawn().await;
    let r = app
        .send(app.request(
            reqwest::Method::GET,
            "/oidc/.well-known/openid-configuration",
            None,
        ))
        .await
        .expect(200);
    let d = r.json();
    let iss = issuer(&app);
    assert_eq!(d["issuer"], json!(iss));
    assert_eq!(d["jwks_uri"], json!(format!("{iss}/.well-known/jwks")));
    assert_eq!(d["id_token_signing_alg_values_supported"], json!(["RS256"]));
    assert_eq!(d["response_types_supported"], json!(["id_token"]));
    assert_eq!(d["subject_types_supported"], json!(["public"]));
    for claim in [
        "iss",
        "aud",
        "sub",
        "iat",
        "exp",
        "org",
        "current_env",
        "root_env",
    ] {
        assert!(
            d["claims_supported"]
                .as_array()
                .is_some_and(|c| c.contains(&json!(claim))),
            "{claim}: {d}"
        );
    }
    let r = app
        .send(app.request(reqwest::Method::GET, "/oidc/.well-known/jwks", None))
        .await
        .expect(200);
    let keys = r.json()["keys"].as_array().cloned().expect("keys");
    // The key generated at first start for the bootstrap organization.
    assert_eq!(keys.len(), 1, "{}", r.text);
    let k = &keys[0];
    assert_eq!(k["alg"], "RS256");
    assert_eq!(k["use"], "sig");
    assert_eq!(k["kty"], "RSA");
    assert!(k["kid"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(k["n"].is_string() && k["e"].is_string());
    let mut members: Vec<&str> = k
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    members.sort_unstable();
    assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);

    // TESSERA_OIDC_ISSUER (a public URL in front of the server) is what discovery names.
    let public = TestApp::spawn_configured(|c| {
        c.oidc_issuer = Some("https://tessera.example.com/oidc".into());
    })
    .await;
    let d = public
        .send(public.request(
            reqwest::Method::GET,
            "/oidc/.well-known/openid-configuration",
            None,
        ))
        .await
        .expect(200)
        .json();
    assert_eq!(d["issuer"], "https://tessera.example.com/oidc");
    assert_eq!(
        d["jwks_uri"],
        "https://tessera.example.com/oidc/.well-known/jwks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_verifies_the_assertion_with_the_default_subject_and_with_subject_attributes_through_an_import(
) {
    let ad = azure_ad();
    let app = app_with_azure(&ad).await;
    let default_sub = format!("pulumi:environments:org:{ORG}:env:team/azure");
    let attrs_sub = format!(
        "pulumi:environments:pulumi.organization.login:{ORG}:currentEnvironment.name:team/azure-attrs:rootEnvironment.name:app/dev:pulumi.user.login:admin"
    );
    ad.subjects
        .lock()
        .expect("lock")
        .extend([default_sub.clone(), attrs_sub.clone()]);

    app.create_env("team/azure", &azure_login("")).await;
    let props = open(&app, "team/azure", ADMIN_TOKEN, 200).await.json()["properties"].clone();
    assert_eq!(
        at(&props, &["azure", "accessToken"]),
        ("azure-access-token".into(), true)
    );
    let (token, secret) = at(&props, &["azure", "oidc", "token"]);
    assert!(secret);
    let claims = verify(&token, &issuer(&app), &format!("azure:{ORG}"))
        .await
        .expect("the handed-out token verifies");
    assert_eq!(claims["sub"], json!(default_sub));

    app.create_env(
        "team/azure-attrs",
        &azure_login(
            "      subjectAttributes:\n        - currentEnvironment.name\n        - rootEnvironment.name\n        - pulumi.user.login\n",
        ),
    )
    .await;
    app.create_env(
        "app/dev",
        "imports:\n  - team/azure-attrs\nvalues:\n  token: ${azure.accessToken}\n",
    )
    .await;
    let props = open(&app, "app/dev", ADMIN_TOKEN, 200).await.json()["properties"].clone();
    assert_eq!(at(&props, &["token"]), ("azure-access-token".into(), true));

    let accepted = ad.accepted.lock().expect("lock").clone();
    assert_eq!(accepted.len(), 2, "{accepted:?}");
    assert_eq!(accepted[0]["sub"], json!(default_sub));
    assert_eq!(accepted[1]["sub"], json!(attrs_sub));
    for c in &accepted {
        assert_eq!(c["iss"], json!(issuer(&app)));
        assert_eq!(c["aud"], json!(format!("azure:{ORG}")));
        assert_eq!(c["org"], json!(ORG));
        assert_eq!(c["user"], json!("admin"));
        let (iat, exp) = (c["iat"].as_u64().unwrap(), c["exp"].as_u64().unwrap());
        assert!(exp > iat && exp - iat <= 7200, "{c}");
    }
    assert_eq!(accepted[1]["current_env"], json!("team/azure-attrs"));
    assert_eq!(accepted[1]["root_env"], json!("app/dev"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_caller_causes_no_outbound_request() {
    let (ad, app) = azure_dev().await;
    let reader = app.token_for("read", &["app/dev"]).await;

    open(&app, "app/dev", &reader, 403).await;
    app.get(&env_path("app/dev"), &reader).await.expect(200);
    app.post_yaml(
        &format!("/api/esc/environments/{ORG}/yaml/check"),
        &reader,
        &azure_login(""),
    )
    .await;
    assert_eq!(ad.requests.load(Ordering::SeqCst), 0);

    // The fake is reachable: an Open caller does cause exactly one request.
    open(&app, "app/dev", ADMIN_TOKEN, 200).await;
    assert_eq!(ad.requests.load(Ordering::SeqCst), 1);
}

/// A provider acts outside the server, so the open's audit entry is committed before any
/// call: with the audit log unwritable, opening is 503 and the cloud hears nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_provider_is_called_before_the_open_is_audited() {
    let (ad, app) = azure_dev().await;
    let mut c = app.sqlite().await;
    break_audit_log(&mut c).await;
    open(&app, "app/dev", ADMIN_TOKEN, 503).await;
    assert_eq!(ad.requests.load(Ordering::SeqCst), 0);
    mend_audit_log(&mut c).await;
    open(&app, "app/dev", ADMIN_TOKEN, 200).await;
    assert_eq!(ad.requests.load(Ordering::SeqCst), 1);
}

/// An AWS STS that refuses, quoting the token back (as a careless service might).
fn refusing_sts() -> (String, Arc<AtomicUsize>) {
    let requests = Arc::new(AtomicUsize::new(0));
    let seen = requests.clone();
    let url = serve(move |cfg: &mut web::ServiceConfig| {
        let seen = seen.clone();
        cfg.route(
            "/",
            web::post().to(move |form: web::Form<HashMap<String, String>>| {
                let seen = seen.clone();
                async move {
                    seen.fetch_add(1, Ordering::SeqCst);
                    let token = form.get("WebIdentityToken").cloned().unwrap_or_default();
                    HttpResponse::Forbidden()
                        .content_type("text/xml")
                        .body(format!(
                            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity with token {token}</Message></Error><RequestId>c6104cbe</RequestId></ErrorResponse>"
                        ))
                }
            }),
        );
    });
    (url, requests)
}

fn aws_login() -> String {
    format!(
        "values:\n  creds:\n    fn::open::aws-login:\n      oidc:\n        roleArn: {ROLE}\n        sessionName: tessera-test\n        duration: 1h\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sts_refusal_is_a_502_diagnostic_that_never_echoes_the_token() {
    let (url, requests) = refusing_sts();
    let app = TestApp::spawn_configured(|c| {
        c.providers = ProvidersConfig {
            aws_sts_endpoint: Some(url),
            ..ProvidersConfig::default()
        };
    })
    .await;
    app.create_env("app/dev", &aws_login()).await;
    let r = open(&app, "app/dev", ADMIN_TOKEN, 502).await;
    let body = r.json();
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(&format!(
            "{ORG}/app/dev cannot be opened: AWS refused AssumeRoleWithWebIdentity for role {ROLE}: AccessDenied"
        )),
        "{message}"
    );
    assert!(
        body["diagnostics"]
            .as_array()
            .is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    assert!(!r.text.contains("eyJ"), "a token leaked: {}", r.text);
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

/// A TCP port that accepts connections and never answers.
fn black_hole() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    format!("http://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_does_not_answer_is_a_504() {
    let url = black_hole();
    let app = TestApp::spawn_configured(|c| {
        c.providers = ProvidersConfig {
            azure_authority_host: Some(url),
            timeout: Duration::from_secs(1),
            ..ProvidersConfig::default()
        };
    })
    .await;
    app.create_env("app/dev", &azure_login("")).await;
    let r = open(&app, "app/dev", ADMIN_TOKEN, 504).await;
    assert!(r.text.contains("azure-login"), "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_provider_endpoint_is_a_startup_error_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let err = Config::load(RawConfig {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(dir.path().to_owned()),
        master_key: Some(MasterKey::generate().unwrap().to_base64()),
        bootstrap_token: Some(SecretString::new(ADMIN_TOKEN)),
        providers: Some(ProvidersConfig {
            aws_sts_endpoint: Some("ftp://sts.example".into()),
            ..ProvidersConfig::default()
        }),
        ..RawConfig::default()
    })
    .expect_err("refused when the configuration is validated, before anything starts")
    .to_string();
    assert!(
        err.starts_with("aws_sts_endpoint (from TESSERA_AWS_STS_ENDPOINT)"),
        "{err}"
    );
}

/// The signed token an environment's `fn::open::oidc` hands out.
async fn oidc_token(app: &TestApp) -> String {
    let props = open(app, "app/rp", ADMIN_TOKEN, 200).await.json()["properties"].clone();
    at(&props, &["rp", "token"]).0
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("header")
        .kid
        .expect("kid")
}

async fn published_kids(app: &TestApp) -> Vec<String> {
    app.send(app.request(reqwest::Method::GET, "/oidc/.well-known/jwks", None))
        .await
        .expect(200)
        .json()["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_keeps_the_old_key_published_until_its_tokens_expire() {
    // Tokens live 4 s here, so the overlap after a rotation is 4 s.
    let app = TestApp::spawn_configured(|c| c.oidc_token_lifetime = Duration::from_secs(4)).await;
    app.create_env(
        "app/rp",
        "values:\n  rp:\n    fn::open::oidc:\n      audience: https://rp.example\n",
    )
    .await;
    let iss = issuer(&app);
    let old_token = oidc_token(&app).await;
    let old = kid_of(&old_token);
    let claims = verify(&old_token, &iss, "https://rp.example")
        .await
        .expect("verifies");
    assert!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap() <= 4);

    // Only admins rotate.
    let member = app.member_token("bob").await;
    app.post(&format!("/api/orgs/{ORG}/oidc/keys/rotate"), &member)
        .await
        .expect(403);
    let r = app
        .post(&format!("/api/orgs/{ORG}/oidc/keys/rotate"), ADMIN_TOKEN)
        .await
        .expect(200)
        .json();
    let new = r["kid"].as_str().expect("kid").to_owned();
    assert_ne!(new, old);
    assert_eq!(r["retired"], json!([old.clone()]));

    // The new key signs; the old one is still published, so its token still verifies.
    let new_token = oidc_token(&app).await;
    assert_eq!(kid_of(&new_token), new);
    verify(&new_token, &iss, "https://rp.example")
        .await
        .expect("a token of the new key verifies");
    let kids = published_kids(&app).await;
    assert!(kids.contains(&old) && kids.contains(&new), "{kids:?}");
    let keys = app
        .get(&format!("/api/orgs/{ORG}/oidc/keys"), ADMIN_TOKEN)
        .await
        .expect(200)
        .json();
    assert_eq!(keys["keys"].as_array().map(Vec::len), Some(2), "{keys}");

    // Once every token of the old key has expired, it leaves the JWKS.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    let kids = published_kids(&app).await;
    assert_eq!(kids, vec![new], "{kids:?}");

    let events: Vec<String> = app.audit().await.into_iter().map(|e| e.event).collect();
    assert!(
        events.iter().any(|e| e == "oidc.signing_key.retire"),
        "{events:?}"
    );
}

/// `moto_server` on a free loopback port, killed when dropped.
struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts moto, or says SKIPPED when it is not installed (a failure under `CI=true`).
    async fn start(test: &str) -> Option<Moto> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let child = match Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("{test}: moto_server is required under CI=true: {e}");
                }
                eprintln!(
                    "SKIPPED {test}: moto_server is not on PATH (pip install 'moto[server]')"
                );
                return None;
            }
        };
        let moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if http
                .get(format!("{}/moto-api/", moto.url))
                .send()
                .await
                .is_ok()
            {
                return Some(moto);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{test}: moto_server did not answer within 30s");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_login_against_moto_gives_secret_credentials() {
    let Some(moto) = Moto::start("aws_login_against_moto_gives_secret_credentials").await else {
        return;
    };
    let url = moto.url.clone();
    let app = TestApp::spawn_configured(|c| {
        c.providers = ProvidersConfig {
            aws_sts_endpoint: Some(url),
            ..ProvidersConfig::default()
        };
    })
    .await;
    app.create_env("app/dev", &aws_login()).await;
    let props = open(&app, "app/dev", ADMIN_TOKEN, 200).await.json()["properties"].clone();
    for output in ["accessKeyId", "secretAccessKey", "sessionToken"] {
        let (value, secret) = at(&props, &["creds", output]);
        assert!(!value.is_empty(), "{output}: {props}");
        assert!(secret, "{output} must be secret");
    }
    // A GET of the definition shows no credential: providers run only on open.
    let r = app.get(&env_path("app/dev"), ADMIN_TOKEN).await.expect(200);
    assert!(!r.text.contains("sessionToken"), "{}", r.text);
}
