//! The providers against real and fake relying parties: AWS through `moto_server` (and a
//! refusing fake STS), Azure AD and Google STS / IAM Credentials through fakes that verify
//! Tessera's tokens as the clouds do.

mod support;

use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::Credentials;
use serde_json::json;
use support::fakes::{self, Trust};
use support::{call, registry, string_at, Moto, TestIssuer};
use tessera_lang::{Decrypter, EvalContext, Limits, Loaded, Providers};
use tessera_providers::{ProviderError, ProvidersConfig};

const ROLE: &str = "arn:aws:iam::123456789012:role/deploy";

fn aws_http() -> aws_sdk_sts::config::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

fn moto_config(moto: &Moto) -> ProvidersConfig {
    ProvidersConfig {
        aws_sts_endpoint: Some(moto.url.clone()),
        aws_secretsmanager_endpoint: Some(moto.url.clone()),
        aws_ssm_endpoint: Some(moto.url.clone()),
        ..ProvidersConfig::default()
    }
}

fn aws_oidc_inputs() -> serde_json::Value {
    json!({"oidc": {"roleArn": ROLE, "sessionName": "tessera-test", "duration": "1h"}})
}

#[tokio::test]
async fn aws_login_oidc_gets_credentials_that_moto_accepts() {
    let Some(moto) = Moto::start("aws_login_oidc_gets_credentials_that_moto_accepts").await else {
        return;
    };
    let issuer = TestIssuer::start().await;
    let providers = registry(moto_config(&moto), &issuer);
    let out = providers
        .call(call("aws-login", aws_oidc_inputs(), "app/dev", "app/dev"))
        .await
        .expect("aws-login");
    let (key, key_secret) = string_at(&out, &["accessKeyId"]);
    let (secret_key, _) = string_at(&out, &["secretAccessKey"]);
    let (session, session_secret) = string_at(&out, &["sessionToken"]);
    assert!(key_secret && session_secret, "credentials must be secret");
    assert_eq!(out.as_object().map(|o| o.len()), Some(3));

    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new("us-east-1"))
            .endpoint_url(&moto.url)
            .http_client(aws_http())
            .credentials_provider(Credentials::new(
                key,
                secret_key,
                Some(session),
                None,
                "test",
            ))
            .build(),
    );
    let me = sts
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity");
    let arn = me.arn().unwrap_or_default();
    assert!(
        arn.contains("assumed-role/deploy/tessera-test"),
        "moto does not see the role: {arn}"
    );
}

#[tokio::test]
async fn aws_login_static_returns_the_keys_as_secrets() {
    let issuer = TestIssuer::start().await;
    let providers = registry(ProvidersConfig::default(), &issuer);
    let out = providers
        .call(call(
            "aws-login",
            json!({"static": {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "wJalrXUtnFEMI"}}),
            "app/dev",
            "app/dev",
        ))
        .await
        .expect("static");
    assert_eq!(
        string_at(&out, &["accessKeyId"]),
        ("AKIAEXAMPLE".into(), true)
    );
    assert_eq!(
        string_at(&out, &["secretAccessKey"]),
        ("wJalrXUtnFEMI".into(), true)
    );
    assert!(out.get("sessionToken").is_none());
}

#[tokio::test]
async fn aws_sts_refusal_is_clear_and_never_echoes_the_token() {
    let issuer = TestIssuer::start().await;
    let trust = Trust {
        issuer: issuer.url.clone(),
        audience: "aws:acme".into(),
        subject: "pulumi:environments:org:acme:env:app/dev".into(),
    };
    let (url, seen) = fakes::refusing_sts(trust);
    let providers = registry(
        ProvidersConfig {
            aws_sts_endpoint: Some(url),
            ..ProvidersConfig::default()
        },
        &issuer,
    );
    let err = providers
        .open(call("aws-login", aws_oidc_inputs(), "app/dev", "app/dev"))
        .await
        .expect_err("refused");
    assert!(
        err.starts_with(&format!(
            "AWS refused AssumeRoleWithWebIdentity for role {ROLE}: AccessDenied: Not authorized"
        )),
        "{err}"
    );
    assert!(err.contains("[redacted]"), "{err}");
    assert!(!err.contains("eyJ"), "a token leaked: {err}");
    // The fake did see a token that verifies through discovery, with the contract's claims.
    let seen = seen.lock().expect("lock");
    let claims = seen[0].as_ref().expect("token verifies");
    assert_eq!(claims["aud"], json!("aws:acme"));
    assert_eq!(claims["current_env"], json!("app/dev"));
}

#[tokio::test]
async fn aws_secrets_and_parameter_store_read_moto_with_aws_login_credentials() {
    let Some(moto) = Moto::start("aws_secrets_and_parameter_store").await else {
        return;
    };
    let admin = Credentials::new("testing", "testing", None, None, "test");
    let sm = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::Config::builder()
            .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
            .region(aws_sdk_secretsmanager::config::Region::new("eu-west-1"))
            .endpoint_url(&moto.url)
            .http_client(aws_http())
            .credentials_provider(admin.clone())
            .build(),
    );
    sm.create_secret()
        .name("app/db")
        .secret_string(r#"{"password":"hunter2"}"#)
        .send()
        .await
        .expect("create secret");
    let ssm = aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::Config::builder()
            .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
            .region(aws_sdk_ssm::config::Region::new("eu-west-1"))
            .endpoint_url(&moto.url)
            .http_client(aws_http())
            .credentials_provider(admin)
            .build(),
    );
    ssm.put_parameter()
        .name("/app/api-key")
        .value("s3cr3t-api-key")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("put parameter");

    let issuer = TestIssuer::start().await;
    let providers = registry(moto_config(&moto), &issuer);
    let login = providers
        .call(call("aws-login", aws_oidc_inputs(), "app/dev", "app/dev"))
        .await
        .expect("aws-login")
        .to_serde_json(false);

    let secrets = providers
        .call(call(
            "aws-secrets",
            json!({"login": login, "region": "eu-west-1", "get": {"db": {"secretId": "app/db"}}}),
            "app/dev",
            "app/dev",
        ))
        .await
        .expect("aws-secrets");
    assert_eq!(
        string_at(&secrets, &["db"]),
        (r#"{"password":"hunter2"}"#.into(), true)
    );

    let params = providers
        .call(call(
            "aws-parameter-store",
            json!({"login": login, "region": "eu-west-1", "get": {"apiKey": {"name": "/app/api-key"}}}),
            "app/dev",
            "app/dev",
        ))
        .await
        .expect("aws-parameter-store");
    assert_eq!(
        string_at(&params, &["apiKey"]),
        ("s3cr3t-api-key".into(), true)
    );

    let missing = providers
        .open(call(
            "aws-secrets",
            json!({"login": login, "region": "eu-west-1", "get": {"x": {"secretId": "nope"}}}),
            "app/dev",
            "app/dev",
        ))
        .await
        .expect_err("missing secret");
    assert!(
        missing.starts_with(
            "AWS Secrets Manager refused GetSecretValue for nope: ResourceNotFoundException"
        ),
        "{missing}"
    );
}

fn azure_inputs(extra: serde_json::Value) -> serde_json::Value {
    let mut inputs = json!({
        "clientId": "11111111-2222-3333-4444-555555555555",
        "tenantId": "contoso-tenant",
        "subscriptionId": "sub-1",
        "oidc": true,
    });
    if let (Some(m), Some(e)) = (inputs.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    inputs
}

fn azure_trust(issuer: &TestIssuer, subject: &str) -> Trust {
    Trust {
        issuer: issuer.url.clone(),
        audience: "azure:acme".into(),
        subject: subject.into(),
    }
}

fn azure_config(url: &str) -> ProvidersConfig {
    ProvidersConfig {
        azure_authority_host: Some(url.to_owned()),
        ..ProvidersConfig::default()
    }
}

#[tokio::test]
async fn azure_login_with_the_default_subject() {
    let issuer = TestIssuer::start().await;
    let ad = fakes::azure_ad(
        "contoso-tenant",
        "11111111-2222-3333-4444-555555555555",
        azure_trust(&issuer, "pulumi:environments:org:acme:env:app/dev"),
        None,
    );
    let providers = registry(azure_config(&ad.url), &issuer);
    let out = providers
        .call(call(
            "azure-login",
            azure_inputs(json!({})),
            "app/dev",
            "app/dev",
        ))
        .await
        .expect("azure-login");
    assert_eq!(
        string_at(&out, &["accessToken"]),
        ("azure-access-token".into(), true)
    );
    assert_eq!(
        string_at(&out, &["tenantId"]),
        ("contoso-tenant".into(), false)
    );
    assert_eq!(string_at(&out, &["subscriptionId"]).0, "sub-1");
    assert_eq!(
        string_at(&out, &["clientId"]).0,
        "11111111-2222-3333-4444-555555555555"
    );
    let (token, secret) = string_at(&out, &["oidc", "token"]);
    assert!(secret);
    support::verify(&token, &issuer.url, "azure:acme")
        .await
        .expect("the handed-out token verifies");
}

/// `Decrypter` for evaluations without ciphertext.
struct NoCiphertext;

impl Decrypter for NoCiphertext {
    fn decrypt(&self, _: &str, _: &str) -> Result<zeroize::Zeroizing<String>, String> {
        Err("no ciphertext expected".into())
    }
}

#[tokio::test]
async fn subject_attributes_through_imports_name_the_declaring_and_opened_environments() {
    let issuer = TestIssuer::start().await;
    let subject = "pulumi:environments:pulumi.organization.login:acme:currentEnvironment.name:team/azure:rootEnvironment.name:app/dev:pulumi.user.login:alice";
    let ad = fakes::azure_ad(
        "contoso-tenant",
        "11111111-2222-3333-4444-555555555555",
        azure_trust(&issuer, subject),
        None,
    );
    let providers = registry(azure_config(&ad.url), &issuer);
    let mut loaded = Loaded::default();
    let declaring = r#"values:
  azure:
    login:
      fn::open::azure-login:
        clientId: 11111111-2222-3333-4444-555555555555
        tenantId: contoso-tenant
        subscriptionId: sub-1
        oidc: true
        subjectAttributes:
          - currentEnvironment.name
          - rootEnvironment.name
          - pulumi.user.login
"#;
    let opened = "imports:\n  - team/azure\nvalues:\n  token: ${azure.login.accessToken}\n";
    for (name, src) in [("team/azure", declaring), ("app/dev", opened)] {
        loaded.insert(
            name,
            Ok(Arc::new(tessera_lang::parse(name, src, &Limits::default()))),
        );
    }
    let mut ctx = EvalContext::default();
    ctx.set("pulumi.organization.login", "acme").expect("ctx");
    ctx.set("pulumi.user.login", "alice").expect("ctx");
    let evaluation = tessera_lang::open(
        &loaded,
        "app/dev",
        &ctx,
        &Limits::default(),
        &NoCiphertext,
        &providers,
        Duration::from_secs(30),
    )
    .await;
    assert!(!evaluation.has_errors(), "{:?}", evaluation.diagnostics);
    let value = evaluation.value.expect("value");
    assert_eq!(
        string_at(&value, &["token"]),
        ("azure-access-token".into(), true)
    );
    assert_eq!(*ad.accepted.lock().expect("lock"), vec![subject.to_owned()]);
}

#[tokio::test]
async fn azure_refuses_a_credential_for_another_audience_with_a_clear_error() {
    let issuer = TestIssuer::start().await;
    let trust = Trust {
        audience: "api://AzureADTokenExchange".into(),
        ..azure_trust(&issuer, "pulumi:environments:org:acme:env:app/dev")
    };
    let ad = fakes::azure_ad(
        "contoso-tenant",
        "11111111-2222-3333-4444-555555555555",
        trust,
        None,
    );
    let providers = registry(azure_config(&ad.url), &issuer);
    let err = providers
        .open(call(
            "azure-login",
            azure_inputs(json!({})),
            "app/dev",
            "app/dev",
        ))
        .await
        .expect_err("refused");
    assert!(
        err.starts_with("Azure AD refused the client assertion for client 11111111-2222-3333-4444-555555555555 in tenant contoso-tenant: invalid_client: AADSTS70021"),
        "{err}"
    );
    assert!(
        err.contains("InvalidAudience") || err.contains("audience"),
        "{err}"
    );
    assert!(!err.contains("eyJ"), "a token leaked: {err}");
}

#[tokio::test]
async fn azure_login_with_a_client_secret() {
    let issuer = TestIssuer::start().await;
    let ad = fakes::azure_ad(
        "contoso-tenant",
        "11111111-2222-3333-4444-555555555555",
        azure_trust(&issuer, "unused"),
        Some("client-secret-value"),
    );
    let providers = registry(azure_config(&ad.url), &issuer);
    let inputs = json!({"clientId": "11111111-2222-3333-4444-555555555555", "tenantId": "contoso-tenant", "clientSecret": "client-secret-value"});
    let out = providers
        .call(call("azure-login", inputs, "app/dev", "app/dev"))
        .await
        .expect("azure-login static");
    assert_eq!(
        string_at(&out, &["accessToken"]),
        ("azure-access-token".into(), true)
    );
    assert_eq!(
        string_at(&out, &["clientSecret"]),
        ("client-secret-value".into(), true)
    );

    let wrong = json!({"clientId": "11111111-2222-3333-4444-555555555555", "tenantId": "contoso-tenant", "clientSecret": "wrong-secret-value"});
    let err = providers
        .open(call("azure-login", wrong, "app/dev", "app/dev"))
        .await
        .expect_err("wrong secret");
    assert!(err.contains("invalid_client: AADSTS7000215"), "{err}");
    assert!(!err.contains("wrong-secret-value"), "{err}");
}

const POOL_PROVIDER: &str =
    "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/tessera/providers/tessera";
const SA: &str = "deploy@acme-prod.iam.gserviceaccount.com";

fn gcp_inputs(attributes: Option<serde_json::Value>) -> serde_json::Value {
    let mut oidc = json!({"workloadPoolId": "tessera", "providerId": "tessera", "serviceAccount": SA, "tokenLifetime": "30m"});
    if let Some(a) = attributes {
        oidc["subjectAttributes"] = a;
    }
    json!({"project": 123456789, "oidc": oidc})
}

fn gcp_config(url: &str) -> ProvidersConfig {
    ProvidersConfig {
        gcp_sts_endpoint: Some(url.to_owned()),
        gcp_iamcredentials_endpoint: Some(url.to_owned()),
        ..ProvidersConfig::default()
    }
}

#[tokio::test]
async fn gcp_login_exchanges_at_sts_and_impersonates_the_service_account() {
    let issuer = TestIssuer::start().await;
    let trust = Trust {
        issuer: issuer.url.clone(),
        audience: "gcp:acme".into(),
        subject:
            "pulumi:environments:pulumi.organization.login:acme:currentEnvironment.name:team/gcp"
                .into(),
    };
    let url = fakes::google(POOL_PROVIDER, trust, SA);
    let providers = registry(gcp_config(&url), &issuer);
    let out = providers
        .call(call(
            "gcp-login",
            gcp_inputs(Some(json!(["currentEnvironment.name"]))),
            "team/gcp",
            "app/dev",
        ))
        .await
        .expect("gcp-login");
    assert_eq!(
        string_at(&out, &["accessToken"]),
        ("ya29.service-account-token".into(), true)
    );
    assert_eq!(string_at(&out, &["tokenType"]), ("Bearer".into(), false));
    assert_eq!(string_at(&out, &["expiry"]).0, "2030-01-01T00:00:00Z");
    assert_eq!(string_at(&out, &["project"]).0, "123456789");
}

#[tokio::test]
async fn gcp_refuses_a_token_for_another_subject_with_a_clear_error() {
    let issuer = TestIssuer::start().await;
    let trust = Trust {
        issuer: issuer.url.clone(),
        audience: "gcp:acme".into(),
        subject: "pulumi:environments:org:acme:env:team/gcp".into(),
    };
    let url = fakes::google(POOL_PROVIDER, trust, SA);
    let providers = registry(gcp_config(&url), &issuer);
    // Declared in app/dev, not team/gcp: the default subject names app/dev.
    let err = providers
        .open(call("gcp-login", gcp_inputs(None), "app/dev", "app/dev"))
        .await
        .expect_err("refused");
    assert!(
        err.starts_with(&format!(
            "Google STS refused the token exchange for workload identity provider {POOL_PROVIDER}: invalid_grant: The given credential is rejected"
        )),
        "{err}"
    );
    assert!(!err.contains("eyJ"), "a token leaked: {err}");
}

/// A service-account key as Google hands it out (PKCS#8 PEM in a JSON key file), and the
/// public half a fake Google verifies with. Generated once per test binary.
struct SaKey {
    file: String,
    private_pem: String,
    public: jsonwebtoken::DecodingKey,
    /// The public modulus, base64url.
    modulus: String,
}

const SA_KEY_ID: &str = "0123456789abcdef0123456789abcdef01234567";
const SA_EMAIL: &str = "ci@acme-prod.iam.gserviceaccount.com";

fn sa_key() -> &'static SaKey {
    static KEY: std::sync::OnceLock<SaKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        use rsa::pkcs8::EncodePrivateKey as _;
        use rsa::traits::PublicKeyParts as _;
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("rsa key");
        let private_pem = private
            .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
            .expect("pem")
            .to_string();
        let b64 = |b: Vec<u8>| {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
        };
        let modulus = b64(private.n().to_bytes_be());
        let public = jsonwebtoken::DecodingKey::from_rsa_components(
            &modulus,
            &b64(private.e().to_bytes_be()),
        )
        .expect("public key");
        let file = json!({
            "type": "service_account",
            "project_id": "acme-prod",
            "private_key_id": SA_KEY_ID,
            "private_key": private_pem,
            "client_email": SA_EMAIL,
            "client_id": "111111111111111111111",
            // Never contacted: Tessera sends the assertion to its configured endpoint.
            "token_uri": "https://oauth2.googleapis.com/token",
        })
        .to_string();
        SaKey {
            file,
            private_pem,
            public,
            modulus,
        }
    })
}

/// A gcp-login call whose `serviceAccountKey` is `key` (a secret unless told otherwise).
fn key_call(key: tessera_lang::Value) -> tessera_lang::ProviderCall {
    let mut c = call("gcp-login", json!({}), "app/dev", "app/dev");
    let mut inputs = std::collections::BTreeMap::new();
    inputs.insert(
        "project".to_owned(),
        tessera_lang::Value::from_serde_json(&json!(123456789)),
    );
    inputs.insert("serviceAccountKey".to_owned(), key);
    c.inputs = tessera_lang::Value::object(inputs);
    c
}

/// The RFC 3339 form of a time, derived from `httpdate`'s IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), an implementation independent of Tessera's.
fn rfc3339_via_httpdate(unix: u64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_secs(unix);
    let text = httpdate::fmt_http_date(t);
    let parts: Vec<&str> = text.split_whitespace().collect();
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = months.iter().position(|m| *m == parts[2]).expect("month") + 1;
    format!("{}-{month:02}-{}T{}Z", parts[3], parts[1], parts[4])
}

fn oauth_config(url: &str) -> ProvidersConfig {
    ProvidersConfig {
        gcp_oauth2_endpoint: Some(url.to_owned()),
        ..ProvidersConfig::default()
    }
}

#[tokio::test]
async fn gcp_login_with_a_service_account_key_signs_an_assertion_google_accepts() {
    let issuer = TestIssuer::start().await;
    let key = sa_key();
    let (url, seen) = fakes::google_oauth(key.public.clone(), SA_KEY_ID, SA_EMAIL);
    let providers = registry(oauth_config(&url), &issuer);

    // The key file's JSON, as a secret string (`fn::secret` in the definition).
    let started = support::now();
    let out = providers
        .call(key_call(
            tessera_lang::Value::string(key.file.clone()).into_secret(),
        ))
        .await
        .expect("gcp-login with a key");
    assert_eq!(
        string_at(&out, &["accessToken"]),
        ("ya29.from-service-account-key".into(), true)
    );
    assert_eq!(string_at(&out, &["tokenType"]), ("Bearer".into(), false));
    assert_eq!(string_at(&out, &["project"]).0, "123456789");
    // expires_in 3599 s from the call, written as Google writes `expireTime`.
    let ended = support::now();
    let expiry = string_at(&out, &["expiry"]).0;
    let expected: Vec<String> = (started..=ended)
        .map(|t| rfc3339_via_httpdate(t + 3599))
        .collect();
    assert!(expected.contains(&expiry), "{expiry} not in {expected:?}");

    let claims = seen
        .lock()
        .expect("lock")
        .remove(0)
        .expect("the assertion verified");
    assert_eq!(claims["iss"], json!(SA_EMAIL));
    assert_eq!(claims["aud"], json!(format!("{url}/token")));
    assert_eq!(
        claims["scope"],
        json!("https://www.googleapis.com/auth/cloud-platform")
    );

    // The key file's fields as an object (e.g. from `fn::fromJSON`), private key secret.
    let fields: serde_json::Value = serde_json::from_str(&key.file).expect("json");
    let mut object = std::collections::BTreeMap::new();
    for (k, v) in fields.as_object().expect("object") {
        let value = tessera_lang::Value::from_serde_json(v);
        let value = if k == "private_key" {
            value.into_secret()
        } else {
            value
        };
        object.insert(k.clone(), value);
    }
    let out = providers
        .call(key_call(tessera_lang::Value::object(object)))
        .await
        .expect("gcp-login with the key's fields");
    assert_eq!(
        string_at(&out, &["accessToken"]),
        ("ya29.from-service-account-key".into(), true)
    );
}

#[tokio::test]
async fn a_refused_unsigned_or_plaintext_service_account_key_is_a_clear_error_without_the_key() {
    let issuer = TestIssuer::start().await;
    let key = sa_key();
    // Google knows another key for this account: the assertion's signature does not verify.
    let other =
        jsonwebtoken::DecodingKey::from_rsa_components(&key.modulus, "Aw").expect("public key");
    let (url, seen) = fakes::google_oauth(other, SA_KEY_ID, SA_EMAIL);
    let providers = registry(oauth_config(&url), &issuer);
    let secret_key = || tessera_lang::Value::string(key.file.clone()).into_secret();
    let err = providers
        .open(key_call(secret_key()))
        .await
        .expect_err("refused");
    assert!(
        err.starts_with(&format!(
            "Google OAuth refused the key of service account {SA_EMAIL}: invalid_grant: Invalid JWT: InvalidSignature"
        )),
        "{err}"
    );
    assert_eq!(seen.lock().expect("lock").len(), 1);
    assert!(!err.contains("eyJ"), "the assertion leaked: {err}");
    assert!(!err.contains("PRIVATE KEY"), "the key leaked: {err}");

    // A key written in plain text is refused before anything is sent.
    let err = providers
        .open(key_call(tessera_lang::Value::string(key.file.clone())))
        .await
        .expect_err("plaintext");
    assert_eq!(
        err,
        "gcp-login: serviceAccountKey must be a secret (fn::secret): it holds a private key"
    );
    // Not a key: the message says what is wrong and quotes nothing of it.
    // (The key file is JSON: the PEM's line breaks are written `\n`.)
    let mangled = key
        .file
        .replace("PRIVATE KEY-----\\n", "PRIVATE KEY-----\\n!!");
    assert_ne!(mangled, key.file);
    let err = providers
        .open(key_call(tessera_lang::Value::string(mangled).into_secret()))
        .await
        .expect_err("bad pem");
    assert_eq!(
        err,
        "gcp-login: serviceAccountKey private_key is not an RSA private key in PEM form"
    );
    let err = providers
        .open(key_call(
            tessera_lang::Value::string("{\"client_email\": 1}").into_secret(),
        ))
        .await
        .expect_err("not a key file");
    assert!(
        err.starts_with("gcp-login: serviceAccountKey must be a service-account key file"),
        "{err}"
    );
    assert!(!key.private_pem.is_empty());
    assert_eq!(
        seen.lock().expect("lock").len(),
        1,
        "a refused input was sent"
    );

    // One way to log in at a time.
    let mut both = key_call(secret_key());
    if let tessera_lang::ValueKind::Object(map) = &mut both.inputs.kind {
        map.insert(
            "accessToken".into(),
            tessera_lang::Value::from_serde_json(&json!({"accessToken": "ya29.x"})),
        );
    }
    let err = providers.open(both).await.expect_err("two modes");
    assert_eq!(
        err,
        "gcp-login: serviceAccountKey cannot be given together with accessToken: choose one way to log in"
    );
}

#[tokio::test]
async fn gcp_login_with_an_access_token_returns_it_or_impersonates_with_it() {
    let issuer = TestIssuer::start().await;
    let trust = Trust {
        issuer: issuer.url.clone(),
        audience: "gcp:acme".into(),
        subject: "unused".into(),
    };
    let url = fakes::google_trusting(POOL_PROVIDER, trust, SA, &["ya29.user-token"]);
    let providers = registry(gcp_config(&url), &issuer);

    // ESC's static login: the token is handed back, secret, with no expiry known.
    let out = providers
        .call(call(
            "gcp-login",
            json!({"project": 123456789, "accessToken": {"accessToken": "ya29.user-token"}}),
            "app/dev",
            "app/dev",
        ))
        .await
        .expect("static token");
    assert_eq!(
        string_at(&out, &["accessToken"]),
        ("ya29.user-token".into(), true)
    );
    assert!(out.get("expiry").is_none());

    // With serviceAccount, it impersonates that account through IAM Credentials.
    let inputs = json!({"project": 123456789, "accessToken": {
        "accessToken": "ya29.user-token", "serviceAccount": SA, "tokenLifetime": "15m"}});
    let out = providers
        .call(call("gcp-login", inputs, "app/dev", "app/dev"))
        .await
        .expect("impersonation");
    assert_eq!(
        string_at(&out, &["accessToken"]),
        ("ya29.service-account-token".into(), true)
    );
    assert_eq!(string_at(&out, &["expiry"]).0, "2030-01-01T00:00:00Z");

    // A token IAM does not accept: refused, and the token is not quoted.
    let inputs = json!({"project": 123456789, "accessToken": {
        "accessToken": "ya29.stolen", "serviceAccount": SA}});
    let err = providers
        .open(call("gcp-login", inputs, "app/dev", "app/dev"))
        .await
        .expect_err("denied");
    assert!(
        err.starts_with(&format!(
            "Google IAM Credentials refused generateAccessToken for service account {SA}: PERMISSION_DENIED"
        )),
        "{err}"
    );
    assert!(!err.contains("ya29.stolen"), "{err}");
}

#[tokio::test]
async fn oidc_mints_a_token_for_any_audience_and_previews_its_claims() {
    let issuer = TestIssuer::start().await;
    let providers = registry(ProvidersConfig::default(), &issuer);
    let inputs = json!({"audience": "https://registry.example.com", "subjectAttributes": ["rootEnvironment.name"]});
    let out = providers
        .call(call("oidc", inputs.clone(), "team/registry", "app/dev"))
        .await
        .expect("oidc");
    let (token, secret) = string_at(&out, &["token"]);
    assert!(secret);
    let claims = support::verify(&token, &issuer.url, "https://registry.example.com")
        .await
        .expect("verifies");
    assert_eq!(
        claims["sub"],
        json!("pulumi:environments:pulumi.organization.login:acme:rootEnvironment.name:app/dev")
    );
    assert_eq!(claims["root_env"], json!("app/dev"));
    assert_eq!(claims["current_env"], json!("team/registry"));
    assert_eq!(claims["user"], json!("alice"));

    let preview = providers
        .call(call(
            "debug-oidc-claims",
            inputs,
            "team/registry",
            "app/dev",
        ))
        .await
        .expect("preview");
    assert!(!preview.contains_secrets());
    assert_eq!(
        string_at(&preview, &["sub"]).0,
        claims["sub"].as_str().unwrap_or_default()
    );
    assert_eq!(string_at(&preview, &["iss"]).0, issuer.url);
}

#[tokio::test]
async fn input_and_context_mistakes_are_clear_errors() {
    let issuer = TestIssuer::start().await;
    let providers = registry(ProvidersConfig::default(), &issuer);
    let err = providers
        .open(call("nope", json!({}), "app/dev", "app/dev"))
        .await
        .expect_err("unknown");
    assert_eq!(err, "unknown provider \"nope\"");

    let err = providers
        .open(call(
            "aws-login",
            json!({"oidc": {"sessionName": "s"}}),
            "app/dev",
            "app/dev",
        ))
        .await
        .expect_err("no role");
    assert_eq!(err, "aws-login: oidc.roleArn is required");

    let err = providers
        .open(call(
            "oidc",
            json!({"audience": "x", "subjectAttributes": ["pulumi.user.email"]}),
            "app/dev",
            "app/dev",
        ))
        .await
        .expect_err("unknown attribute");
    assert!(
        err.starts_with("oidc: subjectAttributes: \"pulumi.user.email\" is not set"),
        "{err}"
    );

    let mut anonymous = call("oidc", json!({"audience": "x"}), "app/dev", "app/dev");
    anonymous.context = tessera_lang::Value::from_serde_json(&json!({}));
    let err = providers.call(anonymous).await.expect_err("no org");
    assert!(matches!(err, ProviderError::Context { .. }), "{err}");
}

#[tokio::test]
async fn a_silent_endpoint_times_out_within_the_configured_bound() {
    let issuer = TestIssuer::start().await;
    let providers = registry(
        ProvidersConfig {
            azure_authority_host: Some(fakes::black_hole()),
            timeout: Duration::from_millis(500),
            ..ProvidersConfig::default()
        },
        &issuer,
    );
    let started = std::time::Instant::now();
    let err = providers
        .open(call(
            "azure-login",
            azure_inputs(json!({})),
            "app/dev",
            "app/dev",
        ))
        .await
        .expect_err("timeout");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        err.starts_with("azure-login: no answer within 0.5s")
            || err.starts_with("could not reach Azure AD"),
        "{err}"
    );
}
