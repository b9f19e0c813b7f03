//! Relying parties on loopback that check what the real ones check: the token's signature
//! against the issuer's JWKS found through discovery, `iss`, `aud`, `sub`, `exp`, `iat`.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::json;

use super::verify;

/// What a relying party trusts: an Azure federated credential, a Google workload identity
/// provider (attribute condition on `sub`), an AWS trust policy.
#[derive(Clone)]
pub struct Trust {
    pub issuer: String,
    pub audience: String,
    pub subject: String,
}

impl Trust {
    /// The token's claims if it is trusted.
    pub async fn check(&self, token: &str) -> Result<serde_json::Value, String> {
        let claims = verify(token, &self.issuer, &self.audience).await?;
        if claims["sub"] != json!(self.subject) {
            return Err(format!(
                "subject {} does not match the configured subject",
                claims["sub"]
            ));
        }
        Ok(claims)
    }
}

/// Starts `app` on a loopback port and returns its base URL.
fn serve<F>(app: F) -> String
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

/// Azure AD's token endpoint with one app registration (`client_id`) and either a federated
/// credential (`trust`) or a client secret.
pub struct AzureAd {
    pub url: String,
    /// Subjects of the assertions it accepted.
    pub accepted: Arc<Mutex<Vec<String>>>,
}

pub fn azure_ad(
    tenant: &str,
    client_id: &str,
    trust: Trust,
    client_secret: Option<&str>,
) -> AzureAd {
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let state = (
        tenant.to_owned(),
        client_id.to_owned(),
        trust,
        client_secret.map(str::to_owned),
        accepted.clone(),
    );
    let url = serve(move |cfg: &mut web::ServiceConfig| {
        let state = state.clone();
        cfg.route(
            "/{tenant}/oauth2/v2.0/token",
            web::post().to(move |path: web::Path<String>, form: web::Form<HashMap<String, String>>| {
                let (tenant, client_id, trust, secret, accepted) = state.clone();
                async move {
                    let refuse = |code: &str, description: String| {
                        HttpResponse::BadRequest().json(json!({"error": code, "error_description": description}))
                    };
                    if path.into_inner() != tenant {
                        return refuse("invalid_request", "AADSTS90002: Tenant not found.".into());
                    }
                    if form.get("client_id") != Some(&client_id)
                        || form.get("grant_type").map(String::as_str) != Some("client_credentials")
                        || form.get("scope").map(String::as_str) != Some("https://management.azure.com/.default")
                    {
                        return refuse("unauthorized_client", "AADSTS700016: Application not found.".into());
                    }
                    if let Some(assertion) = form.get("client_assertion") {
                        if form.get("client_assertion_type").map(String::as_str)
                            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
                        {
                            return refuse("invalid_request", "AADSTS7000: bad assertion type".into());
                        }
                        match trust.check(assertion).await {
                            Ok(claims) => accepted
                                .lock()
                                .expect("lock")
                                .push(claims["sub"].as_str().unwrap_or_default().to_owned()),
                            Err(why) => {
                                return refuse(
                                    "invalid_client",
                                    format!("AADSTS70021: No matching federated identity record found for presented assertion: {why}. Assertion: {assertion}"),
                                )
                            }
                        }
                    } else if form.get("client_secret") != secret.as_ref() || secret.is_none() {
                        return refuse("invalid_client", "AADSTS7000215: Invalid client secret provided.".into());
                    }
                    HttpResponse::Ok().json(json!({
                        "token_type": "Bearer", "expires_in": 3599, "access_token": "azure-access-token",
                    }))
                }
            }),
        );
    });
    AzureAd { url, accepted }
}

/// Google STS plus IAM Credentials: a workload identity provider named `provider_name`
/// trusting `trust`, allowed to impersonate `service_account`.
pub fn google(provider_name: &str, trust: Trust, service_account: &str) -> String {
    google_trusting(provider_name, trust, service_account, &[])
}

/// As [`google`], with IAM Credentials also accepting the bearer tokens in `known` (access
/// tokens the caller already holds, as ESC's static `accessToken` login sends).
pub fn google_trusting(
    provider_name: &str,
    trust: Trust,
    service_account: &str,
    known: &[&str],
) -> String {
    let issued = Arc::new(Mutex::new(
        known
            .iter()
            .map(|k| (*k).to_owned())
            .collect::<Vec<String>>(),
    ));
    let state = (
        provider_name.to_owned(),
        trust,
        service_account.to_owned(),
        issued,
    );
    serve(move |cfg: &mut web::ServiceConfig| {
        let sts = state.clone();
        let iam = state.clone();
        cfg.route(
            "/v1/token",
            web::post().to(move |form: web::Form<HashMap<String, String>>| {
                let (provider_name, trust, _, issued) = sts.clone();
                async move {
                    let refuse = |code: &str, description: String| {
                        HttpResponse::BadRequest().json(json!({"error": code, "error_description": description}))
                    };
                    let field = |k: &str| form.get(k).map(String::as_str);
                    if field("grant_type") != Some("urn:ietf:params:oauth:grant-type:token-exchange")
                        || field("subject_token_type") != Some("urn:ietf:params:oauth:token-type:jwt")
                        || field("requested_token_type") != Some("urn:ietf:params:oauth:token-type:access_token")
                    {
                        return refuse("invalid_request", "bad token exchange parameters".into());
                    }
                    if field("audience") != Some(provider_name.as_str()) {
                        return refuse("invalid_target", "The target service indicated by the \"audience\" parameters is invalid.".into());
                    }
                    let token = field("subject_token").unwrap_or_default();
                    if let Err(why) = trust.check(token).await {
                        return refuse("invalid_grant", format!("The given credential is rejected by the attribute condition: {why} ({token})"));
                    }
                    let federated = format!("federated-{}", issued.lock().expect("lock").len());
                    issued.lock().expect("lock").push(federated.clone());
                    HttpResponse::Ok().json(json!({
                        "access_token": federated,
                        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                        "token_type": "Bearer", "expires_in": 3600,
                    }))
                }
            }),
        );
        cfg.route(
            "/v1/projects/-/serviceAccounts/{name}",
            web::post().to(move |req: HttpRequest, path: web::Path<String>, body: web::Json<serde_json::Value>| {
                let (_, _, service_account, issued) = iam.clone();
                async move {
                    let denied = || {
                        HttpResponse::Forbidden().json(json!({"error": {
                            "code": 403, "status": "PERMISSION_DENIED",
                            "message": "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
                        }}))
                    };
                    let bearer = req
                        .headers()
                        .get("authorization")
                        .and_then(|h| h.to_str().ok())
                        .and_then(|h| h.strip_prefix("Bearer "))
                        .map(str::to_owned);
                    let known = bearer.is_some_and(|b| issued.lock().expect("lock").contains(&b));
                    if !known || path.into_inner() != format!("{service_account}:generateAccessToken") {
                        return denied();
                    }
                    if body["scope"] != json!(["https://www.googleapis.com/auth/cloud-platform"]) || !body["lifetime"].is_string() {
                        return HttpResponse::BadRequest().json(json!({"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "bad request"}}));
                    }
                    HttpResponse::Ok().json(json!({"accessToken": "ya29.service-account-token", "expireTime": "2030-01-01T00:00:00Z"}))
                }
            }),
        );
    })
}

/// What a fake made of each token it received: the claims, or why it does not verify.
pub type Seen = Arc<Mutex<Vec<Result<serde_json::Value, String>>>>;

/// An AWS STS that verifies the web identity token against `trust`, records the outcome, and
/// refuses anyway, quoting the token back (as a careless service might).
pub fn refusing_sts(trust: Trust) -> (String, Seen) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let state = (trust, seen.clone());
    let url = serve(move |cfg: &mut web::ServiceConfig| {
        let state = state.clone();
        cfg.route(
            "/",
            web::post().to(move |form: web::Form<HashMap<String, String>>| {
                let (trust, seen) = state.clone();
                async move {
                    let token = form.get("WebIdentityToken").cloned().unwrap_or_default();
                    let checked = trust.check(&token).await;
                    seen.lock().expect("lock").push(checked);
                    HttpResponse::Forbidden()
                        .content_type("text/xml")
                        .body(format!(
                            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity with token {token}</Message></Error><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>"
                        ))
                }
            }),
        );
    });
    (url, seen)
}

/// A TCP port that accepts connections and never answers.
pub fn black_hole() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    format!("http://127.0.0.1:{port}")
}

/// Google's OAuth 2.0 token endpoint for one service account: accepts an RFC 7523 JWT-bearer
/// assertion only if it is signed by `public_key` (RS256, `kid` = `key_id`), issued by
/// `client_email`, addressed (`aud`) to this endpoint's `/token` URL, asks for the
/// cloud-platform scope and lives at most an hour. Refusals quote the assertion back (as a
/// careless service might); every outcome is recorded in the returned [`Seen`].
pub fn google_oauth(
    public_key: jsonwebtoken::DecodingKey,
    key_id: &str,
    client_email: &str,
) -> (String, Seen) {
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let state = (
        Arc::new(public_key),
        key_id.to_owned(),
        client_email.to_owned(),
        seen.clone(),
    );
    let url = serve(move |cfg: &mut web::ServiceConfig| {
        let state = state.clone();
        cfg.route(
            "/token",
            web::post().to(
                move |req: HttpRequest, form: web::Form<HashMap<String, String>>| {
                    let (public_key, key_id, client_email, seen) = state.clone();
                    async move {
                        let assertion = form.get("assertion").cloned().unwrap_or_default();
                        let audience = format!("http://{}/token", req.connection_info().host());
                        let checked = check_assertion(
                            &form,
                            &assertion,
                            &audience,
                            &public_key,
                            &key_id,
                            &client_email,
                        );
                        seen.lock().expect("lock").push(checked.clone());
                        match checked {
                            Ok(_) => HttpResponse::Ok().json(json!({
                                "access_token": "ya29.from-service-account-key",
                                "expires_in": 3599,
                                "token_type": "Bearer",
                            })),
                            Err(why) => HttpResponse::BadRequest().json(json!({
                                "error": "invalid_grant",
                                "error_description": format!("{why} (assertion {assertion})"),
                            })),
                        }
                    }
                },
            ),
        );
    });
    (url, seen)
}

/// What Google checks of a service account's JWT-bearer assertion.
fn check_assertion(
    form: &HashMap<String, String>,
    assertion: &str,
    audience: &str,
    public_key: &jsonwebtoken::DecodingKey,
    key_id: &str,
    client_email: &str,
) -> Result<serde_json::Value, String> {
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return Err("unsupported grant_type".to_owned());
    }
    let header = jsonwebtoken::decode_header(assertion).map_err(|e| format!("header: {e}"))?;
    if header.kid.as_deref() != Some(key_id) {
        return Err("unknown kid".to_owned());
    }
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[client_email]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
    validation.leeway = 0;
    let claims = jsonwebtoken::decode::<serde_json::Value>(assertion, public_key, &validation)
        .map_err(|e| format!("Invalid JWT: {e}"))?
        .claims;
    if claims["scope"] != json!("https://www.googleapis.com/auth/cloud-platform") {
        return Err("bad scope".to_owned());
    }
    let iat = claims["iat"].as_u64().unwrap_or(0);
    let exp = claims["exp"].as_u64().unwrap_or(0);
    if exp <= iat || exp - iat > 3600 || iat > super::now() + 60 {
        return Err("Invalid JWT: token must be a short-lived token".to_owned());
    }
    Ok(claims)
}
