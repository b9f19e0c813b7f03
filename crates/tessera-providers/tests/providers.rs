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
