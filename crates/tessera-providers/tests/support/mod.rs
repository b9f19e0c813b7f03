//! Test support: an OIDC issuer with a key made here (discovery + JWKS served on loopback),
//! a relying-party verifier that finds keys the way clouds do, `moto_server` under a guard,
//! and small fakes of Azure AD, Google STS / IAM Credentials and a refusing AWS STS.
#![allow(dead_code)]

pub mod fakes;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{web, App, HttpResponse, HttpServer};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value as Json};
use tessera_lang::{ProviderCall, Value};
use tessera_providers::{IdTokenIssuer, ProvidersConfig, Registry, TokenRequest};

pub const KID: &str = "test-key-1";

struct Key {
    encoding: EncodingKey,
    jwk: Json,
}

/// One RSA key per test binary: generating it is the slow part.
fn key() -> &'static Key {
    static KEY: OnceLock<Key> = OnceLock::new();
    KEY.get_or_init(|| {
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("rsa key");
        let pem = private
            .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
            .expect("pem");
        let b64 = |b: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        Key {
            encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).expect("encoding key"),
            jwk: json!({
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": KID,
                "n": b64(private.n().to_bytes_be()),
                "e": b64(private.e().to_bytes_be()),
            }),
        }
    })
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Tessera's issuer as the server will build it: claims from `TokenRequest::claims`, signed
/// RS256 with a `kid`; discovery and JWKS at `<issuer>/.well-known/…`.
pub struct TestIssuer {
    pub url: String,
}

impl TestIssuer {
    pub async fn start() -> Arc<TestIssuer> {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let url = format!("http://127.0.0.1:{port}/oidc");
        let issuer = url.clone();
        let server = HttpServer::new(move || {
            let issuer = issuer.clone();
            App::new()
                .route(
                    "/oidc/.well-known/openid-configuration",
                    web::get().to(move || {
                        let issuer = issuer.clone();
                        async move {
                            HttpResponse::Ok().json(json!({
                                "issuer": issuer,
                                "jwks_uri": format!("{issuer}/.well-known/jwks"),
                                "response_types_supported": ["id_token"],
                                "subject_types_supported": ["public"],
                                "id_token_signing_alg_values_supported": ["RS256"],
                            }))
                        }
                    }),
                )
                .route(
                    "/oidc/.well-known/jwks",
                    web::get().to(|| async {
                        HttpResponse::Ok().json(json!({"keys": [key().jwk.clone()]}))
                    }),
                )
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        key();
        Arc::new(TestIssuer { url })
    }
}

impl IdTokenIssuer for TestIssuer {
    fn issue(&self, request: TokenRequest) -> Result<String, String> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(KID.to_owned());
        jsonwebtoken::encode(&header, &self.claims(&request), &key().encoding)
            .map_err(|e| e.to_string())
    }

    fn claims(&self, request: &TokenRequest) -> Json {
        request.claims(&self.url, now())
    }
}

/// What a relying party does with a token from an issuer it trusts: discovery, JWKS, the
/// `kid`'s key, signature, `iss`, `aud`, `exp`, `iat`. Returns the claims.
pub async fn verify(token: &str, issuer: &str, audience: &str) -> Result<Json, String> {
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
    let jwks_uri = discovery["jwks_uri"]
        .as_str()
        .ok_or("no jwks_uri")?
        .to_owned();
    let jwks = get(jwks_uri).await?;
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
    validation.validate_nbf = true;
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

/// A registry on `config` with the test issuer.
pub fn registry(config: ProvidersConfig, issuer: &Arc<TestIssuer>) -> Registry {
    Registry::new(config, issuer.clone()).expect("registry")
}

/// `${context}` of an environment `current` opened as `root` by `user` in `acme`.
pub fn context(current: &str, root: &str, user: Option<&str>) -> Value {
    let mut pulumi = json!({"organization": {"login": "acme"}});
    if let Some(u) = user {
        pulumi["user"] = json!({"login": u});
    }
    Value::from_serde_json(&json!({
        "currentEnvironment": {"name": current},
        "rootEnvironment": {"name": root},
        "pulumi": pulumi,
    }))
}

/// A call of `provider` declared in `current`, opened as `root` by alice.
pub fn call(provider: &str, inputs: Json, current: &str, root: &str) -> ProviderCall {
    ProviderCall {
        provider: provider.to_owned(),
        inputs: Value::from_serde_json(&inputs),
        environment: current.to_owned(),
        root_environment: root.to_owned(),
        context: context(current, root, Some("alice")),
    }
}

/// The string at `path` of a value, with whether it is secret.
pub fn string_at(v: &Value, path: &[&str]) -> (String, bool) {
    let mut cur = v;
    for p in path {
        cur = cur.get(p).unwrap_or_else(|| panic!("no {p} in {path:?}"));
    }
    (cur.as_str().expect("a string").to_owned(), cur.secret)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `moto_server` on a free loopback port, killed when dropped.
pub struct Moto {
    child: Child,
    pub url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts moto, or says SKIPPED when it is not installed (a failure under `CI=true`).
    pub async fn start(test: &str) -> Option<Moto> {
        let port = free_port();
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
