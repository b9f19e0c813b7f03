//! Tokenless pipelines: a fake CI issuer on loopback (discovery + JWKS, keys made here) signs
//! tokens that `POST /api/oauth/token` exchanges for short-lived Tessera tokens under the
//! trusted issuer's policies — and refuses everything else with a 4xx, audited.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::{web, HttpResponse};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value as Json};
use tessera_store::audit::AuditFilter;

use crate::helpers::{Resp, TestApp, ADMIN_TOKEN, ORG};

const AUDIENCE: &str = "urn:pulumi:org:acme";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
const TEAM_TOKEN: &str = "urn:pulumi:token-type:access_token:team";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// RSA keys are slow to make in a debug build: three, made once for the whole test binary.
fn rsa_keys() -> &'static [RsaPrivateKey] {
    static KEYS: OnceLock<Vec<RsaPrivateKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (0..3)
            .map(|_| RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("rsa key"))
            .collect()
    })
}

fn jwk(kid: &str, key: &RsaPrivateKey) -> Json {
    json!({
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
        "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be()),
    })
}

/// A CI platform's OIDC issuer: discovery and JWKS on loopback, and the signing of tokens.
struct CiIssuer {
    url: String,
    /// The published keys: (kid, index into `rsa_keys()`).
    keys: Arc<Mutex<Vec<(String, usize)>>>,
    /// Requests it received.
    hits: Arc<AtomicUsize>,
    /// Further published keys (JWKs), e.g. an EC key.
    extra: Arc<Mutex<Vec<Json>>>,
}

impl CiIssuer {
    fn start() -> CiIssuer {
        let keys = Arc::new(Mutex::new(vec![("k1".to_owned(), 0usize)]));
        let hits = Arc::new(AtomicUsize::new(0));
        let extra: Arc<Mutex<Vec<Json>>> = Arc::default();
        let url_cell: Arc<Mutex<String>> = Arc::default();
        let state = (keys.clone(), hits.clone(), url_cell.clone(), extra.clone());
        let url = crate::oidc::serve(move |cfg| {
            let (keys, hits, url_cell, extra) = state.clone();
            let hits2 = hits.clone();
            let url2 = url_cell.clone();
            cfg.route(
                "/.well-known/openid-configuration",
                web::get().to(move || {
                    let url = url2.lock().unwrap().clone();
                    hits2.fetch_add(1, Ordering::SeqCst);
                    async move {
                        // As GitHub Actions publishes it: no authorization_endpoint.
                        HttpResponse::Ok().json(json!({
                            "issuer": url,
                            "jwks_uri": format!("{url}/.well-known/jwks"),
                            "subject_types_supported": ["public", "pairwise"],
                            "response_types_supported": ["id_token"],
                            "id_token_signing_alg_values_supported": ["RS256"],
                            "claims_supported": ["sub", "aud", "exp", "iat", "iss", "repository", "ref"],
                        }))
                    }
                }),
            )
            .route(
                "/.well-known/jwks",
                web::get().to(move || {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let mut published: Vec<Json> = keys
                        .lock()
                        .unwrap()
                        .iter()
                        .map(|(kid, i)| jwk(kid, &rsa_keys()[*i]))
                        .collect();
                    published.extend(extra.lock().unwrap().iter().cloned());
                    async move { HttpResponse::Ok().json(json!({ "keys": published })) }
                }),
            );
        });
        *url_cell.lock().unwrap() = url.clone();
        CiIssuer {
            url,
            keys,
            hits,
            extra,
        }
    }

    /// Claims as GitHub Actions sets them for a workflow on `main` of `acme/app`.
    fn claims(&self, extra: Json) -> Json {
        let mut c = json!({
            "iss": self.url, "aud": AUDIENCE,
            "sub": "repo:acme/app:ref:refs/heads/main",
            "repository": "acme/app", "ref": "refs/heads/main", "environment": "production",
            "iat": now(), "nbf": now() - 5, "exp": now() + 300,
        });
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    fn sign_with(&self, kid: &str, key_index: usize, claims: &Json) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        let der = rsa_keys()[key_index].to_pkcs1_der().unwrap();
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(der.as_bytes())).unwrap()
    }

    /// A token signed with the current key.
    fn token(&self, extra: Json) -> String {
        let (kid, i) = self.keys.lock().unwrap()[0].clone();
        self.sign_with(&kid, i, &self.claims(extra))
    }

    /// Replaces the published key with a new one (the old one is withdrawn).
    fn rotate(&self) -> (String, usize) {
        let mut keys = self.keys.lock().unwrap();
        let next = (format!("k{}", keys[0].1 + 2), keys[0].1 + 1);
        *keys = vec![next.clone()];
        next
    }
}

async fn dev_app() -> TestApp {
    TestApp::spawn_configured(|c| c.dev = true).await
}

/// Registers `issuer` with `policies` as the admin; returns its id.
async fn trust(app: &TestApp, issuer: &CiIssuer, policies: Json) -> String {
    let r = app
        .post_json(
            &format!("/api/orgs/{ORG}/oidc/issuers"),
            ADMIN_TOKEN,
            json!({ "name": "github", "url": issuer.url, "policies": policies }),
        )
        .await
        .expect(200);
    r.json()["id"].as_str().unwrap().to_owned()
}

/// A team `team` with open permission on `env` (created if missing).
async fn team_with_read(app: &TestApp, team: &str, env: &str) {
    let path = format!("/api/esc/environments/{ORG}/{env}");
    if app.get(&path, ADMIN_TOKEN).await.status == 404 {
        app.create_env(env, "values:\n  x: 1\n").await;
    }
    app.post_json(
        &format!("/api/orgs/{ORG}/teams"),
        ADMIN_TOKEN,
        json!({ "name": team }),
    )
    .await
    .expect(200);
    app.put_json(
        &format!("/api/orgs/{ORG}/teams/{team}/environments/{env}"),
        ADMIN_TOKEN,
        json!({ "permission": "open" }),
    )
    .await
    .expect(200);
}

fn form(token: &str, scope: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", GRANT.into()),
        ("subject_token", token.into()),
        ("subject_token_type", ID_TOKEN.into()),
        ("audience", AUDIENCE.into()),
        ("requested_token_type", TEAM_TOKEN.into()),
        ("scope", scope.into()),
    ]
}

async fn exchange(app: &TestApp, params: &[(&str, String)]) -> Resp {
    app.send(
        app.client
            .post(format!("{}/api/oauth/token", app.addr))
            .form(params),
    )
    .await
}

/// Asserts a refusal: a 4xx in both the contract's and OAuth's error shapes.
#[track_caller]
fn refused(r: Resp, needle: &str) {
    assert!((400..500).contains(&r.status), "{} {}", r.status, r.text);
    let j = r.json();
    assert_eq!(j["code"], r.status, "{j}");
    assert!(j["error"].as_str().is_some(), "{j}");
    let msg = j["message"].as_str().unwrap_or_default();
    assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
    assert!(!r.text.contains("eyJ"), "the token is echoed: {}", r.text);
}

const CI_POLICY: &str = r#"[
  {"decision":"allow","tokenType":"team","teamName":"ci",
   "rules":{"repository":"acme/*","ref":"refs/heads/main"}},
  {"decision":"deny","tokenType":"team","rules":{"environment":"sandbox-*"}}
]"#;

async fn setup() -> (TestApp, CiIssuer) {
    let app = dev_app().await;
    let issuer = CiIssuer::start();
    app.create_env(
        "app/prod",
        "values:\n  db:\n    password:\n      fn::secret: hunter2\n",
    )
    .await;
    app.create_env("app/other", "values:\n  x: 1\n").await;
    team_with_read(&app, "ci", "app/prod").await;
    trust(&app, &issuer, serde_json::from_str(CI_POLICY).unwrap()).await;
    (app, issuer)
}

#[actix_web::test]
async fn a_matching_token_becomes_a_short_lived_team_token_with_exactly_the_teams_access() {
    let (app, issuer) = setup().await;
    let r = exchange(&app, &form(&issuer.token(json!({})), "team:ci"))
        .await
        .expect(200);
    let j = r.json();
    assert_eq!(j["issued_token_type"], TEAM_TOKEN);
    assert_eq!(j["token_type"], "Bearer");
    let expires_in = j["expires_in"].as_i64().unwrap();
    assert!(expires_in > 0 && expires_in <= 7200, "{j}");
    let token = j["access_token"].as_str().unwrap().to_owned();

    // The team's grant: open on app/prod, nothing on app/other, no administration.
    let opened = app
        .post(
            &format!("/api/esc/environments/{ORG}/app/prod/open"),
            &token,
        )
        .await
        .expect(200);
    let id = opened.json()["id"].as_str().unwrap().to_owned();
    let values = app
        .get(
            &format!("/api/esc/environments/{ORG}/app/prod/open/{id}"),
            &token,
        )
        .await
        .expect(200);
    assert!(values.text.contains("hunter2"), "{}", values.text);
    app.get(&format!("/api/esc/environments/{ORG}/app/other"), &token)
        .await
        .expect(404);
    app.patch_yaml(
        &format!("/api/esc/environments/{ORG}/app/prod"),
        &token,
        "values: {}\n",
    )
    .await
    .expect(403);
    app.get(&format!("/api/orgs/{ORG}/oidc/issuers"), &token)
        .await
        .expect(403);

    // The token expires within the asked lifetime, and can be revoked like any other.
    let r = exchange(
        &app,
        &[
            form(&issuer.token(json!({})), "team:ci"),
            vec![("expiration", "600".into())],
        ]
        .concat(),
    )
    .await
    .expect(200);
    assert_eq!(r.json()["expires_in"], 600);
    let r = exchange(
        &app,
        &[
            form(&issuer.token(json!({})), "team:ci"),
            vec![("expiration", "86400".into())],
        ]
        .concat(),
    )
    .await
    .expect(200);
    assert_eq!(r.json()["expires_in"], 7200, "capped at two hours");
    let tokens = app.store.list_tokens(&app.org()).await.unwrap();
    let exchanged: Vec<_> = tokens
        .iter()
        .filter(|t| t.name.starts_with("oidc:github:"))
        .collect();
    assert_eq!(exchanged.len(), 3);
    for t in &exchanged {
        let left = t.expires_at.unwrap() - now();
        assert!(left > 0 && left <= 7200, "{t:?}");
    }
    for t in &exchanged {
        app.delete(&format!("/api/orgs/{ORG}/tokens/{}", t.id), ADMIN_TOKEN)
            .await
            .expect(204);
    }
    app.post(
        &format!("/api/esc/environments/{ORG}/app/prod/open"),
        &token,
    )
    .await
    .expect(401);

    // Granted exchanges are audited with the issuer, the policy and the deciding claims.
    let page = app
        .store
        .list_audit(&app.org(), &AuditFilter::default())
        .await
        .unwrap();
    let e = page
        .entries
        .iter()
        .find(|e| e.event == "oidc.token_exchange")
        .expect("an exchange entry");
    assert_eq!(e.outcome, tessera_store::audit::Outcome::Allowed);
    assert_eq!(e.details["issuer"]["name"], "github");
    assert_eq!(e.details["policy"], 0);
    assert_eq!(e.details["claims"]["repository"], "acme/app");
    assert_eq!(e.actor, "oidc:repo:acme/app:ref:refs/heads/main");
    assert!(!serde_json::to_string(&page.entries)
        .unwrap()
        .contains("eyJ"));
}

#[actix_web::test]
async fn json_bodies_are_accepted_too() {
    let (app, issuer) = setup().await;
    let body = json!({
        "grant_type": GRANT, "subject_token": issuer.token(json!({})),
        "subject_token_type": ID_TOKEN, "audience": AUDIENCE,
        "requested_token_type": TEAM_TOKEN, "scope": "team:ci", "expiration": 900,
    });
    let r = app
        .send(
            app.client
                .post(format!("{}/api/oauth/token", app.addr))
                .json(&body),
        )
        .await
        .expect(200);
    assert_eq!(r.json()["expires_in"], 900);
}

#[actix_web::test]
async fn tokens_that_do_not_verify_or_match_are_refused_and_audited() {
    let (app, issuer) = setup().await;
    // Wrong audience, expired, not yet valid.
    let t = issuer.token(json!({"aud": "urn:pulumi:org:other"}));
    refused(exchange(&app, &form(&t, "team:ci")).await, "aud");
    let t = issuer.token(json!({"exp": now() - 600, "iat": now() - 900}));
    refused(exchange(&app, &form(&t, "team:ci")).await, "expired");
    let t = issuer.token(json!({"nbf": now() + 600}));
    refused(exchange(&app, &form(&t, "team:ci")).await, "not valid yet");
    // A signature by another key under the published kid.
    let t = issuer.sign_with("k1", 2, &issuer.claims(json!({})));
    refused(exchange(&app, &form(&t, "team:ci")).await, "signature");
    // A payload changed after signing.
    let good = issuer.token(json!({}));
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] =
        b64(&serde_json::to_vec(&issuer.claims(json!({"repository": "acme/other"}))).unwrap());
    refused(
        exchange(&app, &form(&parts.join("."), "team:ci")).await,
        "signature",
    );
    // Claims the policy does not allow; the deny policy; another team than the policy names.
    let t = issuer.token(json!({"ref": "refs/heads/feature"}));
    refused(exchange(&app, &form(&t, "team:ci")).await, "no policy");
    let t = issuer.token(json!({"repository": "evil/app"}));
    refused(exchange(&app, &form(&t, "team:ci")).await, "no policy");
    let t = issuer.token(json!({"environment": "sandbox-1"}));
    refused(exchange(&app, &form(&t, "team:ci")).await, "denies");
    app.post_json(
        &format!("/api/orgs/{ORG}/teams"),
        ADMIN_TOKEN,
        json!({"name": "ops"}),
    )
    .await
    .expect(200);
    refused(
        exchange(&app, &form(&issuer.token(json!({})), "team:ops")).await,
        "no policy",
    );
    // A claim missing entirely never matches a rule, even `*`.
    let mut c = issuer.claims(json!({}));
    c.as_object_mut().unwrap().remove("ref");
    let t = issuer.sign_with("k1", 0, &c);
    refused(exchange(&app, &form(&t, "team:ci")).await, "no policy");

    let page = app
        .store
        .list_audit(&app.org(), &AuditFilter::default())
        .await
        .unwrap();
    let denied: Vec<_> = page
        .entries
        .iter()
        .filter(|e| {
            e.event == "oidc.token_exchange" && e.outcome == tessera_store::audit::Outcome::Denied
        })
        .collect();
    assert_eq!(denied.len(), 10, "{denied:#?}");
    let by_deny = denied
        .iter()
        .find(|e| e.details["decision"] == "deny")
        .unwrap();
    assert_eq!(by_deny.details["policy"], 1);
    assert_eq!(by_deny.details["claims"]["environment"], "sandbox-1");
    assert!(!serde_json::to_string(&page.entries)
        .unwrap()
        .contains("eyJ"));
}

#[actix_web::test]
async fn none_and_hmac_signatures_are_refused() {
    let (app, issuer) = setup().await;
    let claims = issuer.claims(json!({}));
    let payload = b64(&serde_json::to_vec(&claims).unwrap());
    // alg: none, with and without a signature part.
    let header = b64(br#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
    refused(
        exchange(&app, &form(&format!("{header}.{payload}."), "team:ci")).await,
        "",
    );
    // HS256 keyed with the issuer's public key (the classic key-confusion attack).
    let public_pem = rsa_keys()[0]
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("k1".into());
    let t = jsonwebtoken::encode(
        &h,
        &claims,
        &EncodingKey::from_secret(public_pem.as_bytes()),
    )
    .unwrap();
    refused(exchange(&app, &form(&t, "team:ci")).await, "HS256");
}

#[actix_web::test]
async fn an_unregistered_issuer_is_never_contacted() {
    let app = dev_app().await;
    let registered = CiIssuer::start();
    let stranger = CiIssuer::start();
    trust(&app, &registered, serde_json::from_str(CI_POLICY).unwrap()).await;
    team_with_read(&app, "ci", "app/prod").await;
    refused(
        exchange(&app, &form(&stranger.token(json!({})), "team:ci")).await,
        "not trusted",
    );
    assert_eq!(stranger.hits.load(Ordering::SeqCst), 0);
    // An unknown organization in the audience.
    let mut f = form(&registered.token(json!({})), "team:ci");
    f[3].1 = "urn:pulumi:org:nobody".into();
    refused(exchange(&app, &f).await, "nobody");
    assert_eq!(registered.hits.load(Ordering::SeqCst), 0);
}

#[actix_web::test]
async fn the_issuers_key_rotation_is_followed_and_a_withdrawn_key_refused() {
    let (app, issuer) = setup().await;
    let old = issuer.token(json!({}));
    exchange(&app, &form(&old, "team:ci")).await.expect(200);
    let fetches = issuer.hits.load(Ordering::SeqCst);
    // A second exchange uses the cached keys.
    exchange(&app, &form(&issuer.token(json!({})), "team:ci"))
        .await
        .expect(200);
    assert_eq!(issuer.hits.load(Ordering::SeqCst), fetches);
    issuer.rotate();
    // The new kid is unknown: one re-fetch, which replaces the cached set.
    exchange(&app, &form(&issuer.token(json!({})), "team:ci"))
        .await
        .expect(200);
    assert!(issuer.hits.load(Ordering::SeqCst) > fetches);
    // The withdrawn key no longer verifies anything.
    refused(exchange(&app, &form(&old, "team:ci")).await, "no key");
    // Unknown kids do not make Tessera fetch again and again.
    let after = issuer.hits.load(Ordering::SeqCst);
    for i in 0..5 {
        let t = issuer.sign_with(&format!("forged-{i}"), 2, &issuer.claims(json!({})));
        refused(exchange(&app, &form(&t, "team:ci")).await, "no key");
    }
    assert_eq!(issuer.hits.load(Ordering::SeqCst), after);
}

#[actix_web::test]
async fn malformed_requests_are_4xx() {
    let (app, issuer) = setup().await;
    let good = form(&issuer.token(json!({})), "team:ci");
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![], "grant_type"),
        (
            good.iter()
                .map(|(k, v)| {
                    (
                        *k,
                        if *k == "grant_type" {
                            "password".into()
                        } else {
                            v.clone()
                        },
                    )
                })
                .collect(),
            "grant_type",
        ),
        (
            good.iter()
                .filter(|(k, _)| *k != "subject_token")
                .cloned()
                .collect(),
            "subject_token",
        ),
        (
            good.iter()
                .map(|(k, v)| {
                    (
                        *k,
                        if *k == "subject_token_type" {
                            "urn:x".into()
                        } else {
                            v.clone()
                        },
                    )
                })
                .collect(),
            "subject_token_type",
        ),
        (
            good.iter()
                .map(|(k, v)| {
                    (
                        *k,
                        if *k == "subject_token" {
                            "not-a-jwt".into()
                        } else {
                            v.clone()
                        },
                    )
                })
                .collect(),
            "JWT",
        ),
        (
            good.iter()
                .map(|(k, v)| {
                    (
                        *k,
                        if *k == "audience" {
                            "acme".into()
                        } else {
                            v.clone()
                        },
                    )
                })
                .collect(),
            "audience",
        ),
        (
            good.iter()
                .map(|(k, v)| {
                    (
                        *k,
                        if *k == "requested_token_type" {
                            "urn:pulumi:token-type:access_token:root".into()
                        } else {
                            v.clone()
                        },
                    )
                })
                .collect(),
            "requested_token_type",
        ),
        (
            good.iter()
                .map(|(k, v)| {
                    (
                        *k,
                        if *k == "scope" {
                            "ci".into()
                        } else {
                            v.clone()
                        },
                    )
                })
                .collect(),
            "scope",
        ),
        (
            [good.clone(), vec![("expiration", "-5".into())]].concat(),
            "expiration",
        ),
        (
            [good.clone(), vec![("expiration", "soon".into())]].concat(),
            "expiration",
        ),
    ];
    for (params, needle) in cases {
        refused(exchange(&app, &params).await, needle);
    }
    let r = app
        .send(
            app.client
                .post(format!("{}/api/oauth/token", app.addr))
                .header("Content-Type", "application/json")
                .body("{not json"),
        )
        .await;
    refused(r, "JSON");
}

#[actix_web::test]
async fn issuers_are_managed_by_admins_only_and_policies_are_checked() {
    let app = dev_app().await;
    let issuer = CiIssuer::start();
    let path = format!("/api/orgs/{ORG}/oidc/issuers");
    let member = app.member_token("dev").await;
    app.post_json(
        &path,
        &member,
        json!({"name": "gh", "url": issuer.url, "policies": []}),
    )
    .await
    .expect(403);
    app.get(&path, &member).await.expect(403);
    for bad in [
        json!({"name": "gh", "url": "ftp://x", "policies": []}),
        json!({"name": "gh", "url": "http://ci.example.com", "policies": []}),
        json!({"name": "", "url": issuer.url, "policies": []}),
        json!({"name": "gh", "url": issuer.url, "policies": [{"decision": "allow", "tokenType": "team"}]}),
        json!({"name": "gh", "url": issuer.url, "policies": [{"decision": "allow", "tokenType": "team", "teamName": "ci", "rules": {"sub": 5}}]}),
    ] {
        app.post_json(&path, ADMIN_TOKEN, bad).await.expect(400);
    }
    let id = trust(&app, &issuer, json!([])).await;
    let listed = app.get(&path, ADMIN_TOKEN).await.expect(200).json();
    assert_eq!(listed["oidcIssuers"][0]["url"], json!(issuer.url));
    app.get(&format!("{path}/{id}"), ADMIN_TOKEN)
        .await
        .expect(200);
    // No policy: nothing is allowed.
    team_with_read(&app, "ci", "app/prod").await;
    refused(
        exchange(&app, &form(&issuer.token(json!({})), "team:ci")).await,
        "no policy",
    );
    let updated = app
        .patch_json(
            &format!("{path}/{id}"),
            ADMIN_TOKEN,
            json!({"policies": [{"decision": "allow", "tokenType": "team", "teamName": "ci", "rules": {"sub": "repo:acme/*"}}]}),
        )
        .await
        .expect(200);
    assert_eq!(updated.json()["policies"][0]["teamName"], "ci");
    exchange(&app, &form(&issuer.token(json!({})), "team:ci"))
        .await
        .expect(200);
    app.delete(&format!("{path}/{id}"), ADMIN_TOKEN)
        .await
        .expect(204);
    app.get(&format!("{path}/{id}"), ADMIN_TOKEN)
        .await
        .expect(404);
    refused(
        exchange(&app, &form(&issuer.token(json!({})), "team:ci")).await,
        "not trusted",
    );
}

#[actix_web::test]
async fn http_issuers_need_dev_mode() {
    let app = TestApp::spawn().await;
    let issuer = CiIssuer::start();
    let r = app
        .post_json(
            &format!("/api/orgs/{ORG}/oidc/issuers"),
            ADMIN_TOKEN,
            json!({"name": "gh", "url": issuer.url, "policies": []}),
        )
        .await
        .expect(400);
    assert!(r.text.contains("--dev"), "{}", r.text);
}

#[actix_web::test]
async fn the_pipeline_examples_register_and_their_environment_checks() {
    let app = TestApp::spawn().await;
    team_with_read(&app, "ci", "app/prod").await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/pipelines");
    for file in ["github-issuer.json", "gitlab-issuer.json"] {
        let body: Json =
            serde_json::from_str(&std::fs::read_to_string(format!("{dir}/{file}")).unwrap())
                .unwrap();
        app.post_json(&format!("/api/orgs/{ORG}/oidc/issuers"), ADMIN_TOKEN, body)
            .await
            .expect(200);
    }
    let yaml = std::fs::read_to_string(format!("{dir}/app-prod.yaml")).unwrap();
    let r = app
        .post_yaml(
            &format!("/api/esc/environments/{ORG}/yaml/check"),
            ADMIN_TOKEN,
            &yaml,
        )
        .await
        .expect(200);
    assert!(
        r.json().get("diagnostics").is_none_or(Json::is_null),
        "{}",
        r.text
    );
    for file in ["github-actions.yml", "gitlab-ci.yml"] {
        let text = std::fs::read_to_string(format!("{dir}/{file}")).unwrap();
        assert!(
            text.contains("--oidc-token @") || text.contains("--oidc-token \"@"),
            "{file} passes the token from a file"
        );
        assert!(
            text.contains("urn:pulumi:org:acme"),
            "{file} asks for the organization's audience"
        );
        assert!(
            text.contains("tessera run acme/app/prod --"),
            "{file} runs under the environment"
        );
    }
}

#[actix_web::test]
async fn es256_tokens_are_accepted_with_a_p256_key() {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let (app, issuer) = setup().await;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    // The uncompressed point: 0x04, then x and y.
    let point = pair.public_key().as_ref();
    issuer.extra.lock().unwrap().push(json!({
        "kty": "EC", "crv": "P-256", "kid": "ec1", "use": "sig", "alg": "ES256",
        "x": b64(&point[1..33]), "y": b64(&point[33..65]),
    }));
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("ec1".into());
    let t = jsonwebtoken::encode(
        &h,
        &issuer.claims(json!({})),
        &EncodingKey::from_ec_der(pkcs8.as_ref()),
    )
    .unwrap();
    exchange(&app, &form(&t, "team:ci")).await.expect(200);
    // The EC key cannot stand in for an RS256 signature under its kid.
    let t = issuer.sign_with("ec1", 0, &issuer.claims(json!({})));
    refused(exchange(&app, &form(&t, "team:ci")).await, "algorithm");
}
