//! `aws-login` (STS AssumeRoleWithWebIdentity with a Tessera token, or static keys), and the
//! stores that read with its credentials: `aws-secrets` (Secrets Manager) and
//! `aws-parameter-store` (SSM Parameter Store). All through the AWS SDK, pointed at the
//! configured endpoints.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_sts::config::{BehaviorVersion, Region};
use aws_sdk_sts::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sts::types::PolicyDescriptorType;
use futures::future::try_join_all;
use tessera_lang::{ProviderCall, Value};

use crate::error::{scrub, ProviderError};
use crate::inputs::Inputs;
use crate::issuer::audience;
use crate::registry::{secret, Shared};

/// ESC's default session duration.
const DEFAULT_SESSION: Duration = Duration::from_secs(2 * 60 * 60);
/// AWS's limits on a role session.
const MIN_SESSION: Duration = Duration::from_secs(15 * 60);
const MAX_SESSION: Duration = Duration::from_secs(12 * 60 * 60);
/// The web identity token is exchanged at once; it need not outlive the call by much.
const EXCHANGE_TOKEN_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// The region STS is addressed in when no endpoint is configured; any region's STS accepts
/// any role.
const STS_REGION: &str = "us-east-1";

/// `fn::open::aws-login`.
pub(crate) async fn login(shared: &Shared, call: &ProviderCall) -> Result<Value, ProviderError> {
    let inputs = Inputs::root("aws-login", &call.inputs)?;
    if let Some(oidc) = inputs.opt_object("oidc")? {
        return login_oidc(shared, call, oidc).await;
    }
    if let Some(fixed) = inputs.opt_object("static")? {
        let mut out = BTreeMap::new();
        out.insert("accessKeyId".into(), secret(fixed.string("accessKeyId")?));
        out.insert(
            "secretAccessKey".into(),
            secret(fixed.string("secretAccessKey")?),
        );
        if let Some(token) = fixed.opt_string("sessionToken")? {
            out.insert("sessionToken".into(), secret(token));
        }
        return Ok(Value::object(out));
    }
    Err(inputs.invalid("oidc", "or static is required"))
}

async fn login_oidc(
    shared: &Shared,
    call: &ProviderCall,
    oidc: Inputs<'_>,
) -> Result<Value, ProviderError> {
    let role_arn = oidc.string("roleArn")?;
    let session_name = oidc.string("sessionName")?;
    let duration = oidc.opt_duration("duration")?.unwrap_or(DEFAULT_SESSION);
    if !(MIN_SESSION..=MAX_SESSION).contains(&duration) {
        return Err(oidc.invalid("duration", "must be between 15m and 12h"));
    }
    let policy_arns = oidc.opt_strings("policyArns")?.unwrap_or_default();
    let attributes = oidc.subject_attributes()?;
    let (_, token) = shared.mint(
        "aws-login",
        call,
        |org| audience("aws", org),
        attributes.as_deref(),
        EXCHANGE_TOKEN_LIFETIME,
    )?;

    // No credentials provider: AssumeRoleWithWebIdentity is unsigned, the token is the proof.
    let mut config = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(STS_REGION))
        .http_client(shared.aws_http.clone());
    if let Some(endpoint) = &shared.endpoints.aws_sts {
        config = config.endpoint_url(endpoint);
    }
    let client = aws_sdk_sts::Client::from_conf(config.build());
    let policies = policy_arns
        .iter()
        .map(|arn| PolicyDescriptorType::builder().arn(arn).build())
        .collect::<Vec<_>>();
    let response = client
        .assume_role_with_web_identity()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .web_identity_token(token.as_str())
        .duration_seconds(i32::try_from(duration.as_secs()).unwrap_or(i32::MAX))
        .set_policy_arns((!policies.is_empty()).then_some(policies))
        .send()
        .await
        .map_err(|e| {
            sdk_error(e, "AWS STS", &[&token], |code, message| {
                format!(
                    "AWS refused AssumeRoleWithWebIdentity for role {role_arn}: {code}: {message}"
                )
            })
        })?;
    let credentials = response.credentials().ok_or_else(|| {
        ProviderError::Unreachable(format!(
            "AWS STS answered AssumeRoleWithWebIdentity for role {role_arn} without credentials"
        ))
    })?;
    let mut out = BTreeMap::new();
    out.insert("accessKeyId".into(), secret(credentials.access_key_id()));
    out.insert(
        "secretAccessKey".into(),
        secret(credentials.secret_access_key()),
    );
    out.insert("sessionToken".into(), secret(credentials.session_token()));
    Ok(Value::object(out))
}

/// The `login` and `region` inputs of the store providers.
fn store_login(inputs: &Inputs<'_>) -> Result<(Credentials, String), ProviderError> {
    let login = inputs
        .opt_object("login")?
        .ok_or_else(|| inputs.invalid("login", "is required (e.g. ${aws.login})"))?;
    let credentials = Credentials::new(
        login.string("accessKeyId")?,
        login.string("secretAccessKey")?,
        login.opt_string("sessionToken")?.map(str::to_owned),
        None,
        "tessera-aws-login",
    );
    Ok((credentials, inputs.string("region")?.to_owned()))
}

/// `fn::open::aws-secrets`: `get: {<key>: {secretId, versionId?, versionStage?}}` →
/// `{<key>: <secret string>}`.
pub(crate) async fn secrets(shared: &Shared, call: &ProviderCall) -> Result<Value, ProviderError> {
    let inputs = Inputs::root("aws-secrets", &call.inputs)?;
    let (credentials, region) = store_login(&inputs)?;
    let mut config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new(region))
        .credentials_provider(credentials)
        .http_client(shared.aws_http.clone());
    if let Some(endpoint) = &shared.endpoints.aws_secretsmanager {
        config = config.endpoint_url(endpoint);
    }
    let client = aws_sdk_secretsmanager::Client::from_conf(config.build());
    let gets = inputs
        .entries("get")?
        .into_iter()
        .map(|(key, get)| {
            let client = client.clone();
            async move {
                let id = get.string("secretId")?;
                let out = client
                    .get_secret_value()
                    .secret_id(id)
                    .set_version_id(get.opt_string("versionId")?.map(str::to_owned))
                    .set_version_stage(get.opt_string("versionStage")?.map(str::to_owned))
                    .send()
                    .await
                    .map_err(|e| {
                        sdk_error(e, "AWS Secrets Manager", &[], |code, message| {
                            format!("AWS Secrets Manager refused GetSecretValue for {id}: {code}: {message}")
                        })
                    })?;
                let value = out.secret_string().ok_or_else(|| {
                    ProviderError::Refused(format!(
                        "aws-secrets: secret {id} has no string value (binary secrets are not supported)"
                    ))
                })?;
                Ok::<_, ProviderError>((key.to_owned(), secret(value)))
            }
        });
    Ok(Value::object(
        try_join_all(gets).await?.into_iter().collect(),
    ))
}

/// `fn::open::aws-parameter-store`: `get: {<key>: {name, version?}}` → `{<key>: <value>}`,
/// SecureString parameters decrypted.
pub(crate) async fn parameter_store(
    shared: &Shared,
    call: &ProviderCall,
) -> Result<Value, ProviderError> {
    let inputs = Inputs::root("aws-parameter-store", &call.inputs)?;
    let (credentials, region) = store_login(&inputs)?;
    let mut config = aws_sdk_ssm::Config::builder()
        .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
        .region(aws_sdk_ssm::config::Region::new(region))
        .credentials_provider(credentials)
        .http_client(shared.aws_http.clone());
    if let Some(endpoint) = &shared.endpoints.aws_ssm {
        config = config.endpoint_url(endpoint);
    }
    let client = aws_sdk_ssm::Client::from_conf(config.build());
    let gets = inputs.entries("get")?.into_iter().map(|(key, get)| {
        let client = client.clone();
        async move {
            let name = get.string("name")?;
            let selector = match get.opt_string("version")? {
                Some(v) => format!("{name}:{v}"),
                None => name.to_owned(),
            };
            let out = client
                .get_parameter()
                .name(&selector)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| {
                    sdk_error(e, "AWS SSM", &[], |code, message| {
                        format!("AWS SSM refused GetParameter for {selector}: {code}: {message}")
                    })
                })?;
            let value = out.parameter().and_then(|p| p.value()).ok_or_else(|| {
                ProviderError::Refused(format!(
                    "AWS SSM returned no value for parameter {selector}"
                ))
            })?;
            Ok::<_, ProviderError>((key.to_owned(), secret(value)))
        }
    });
    Ok(Value::object(
        try_join_all(gets).await?.into_iter().collect(),
    ))
}

/// An SDK error as a diagnostic: a service refusal through `refused(code, message)`, other
/// failures naming `service`; all scrubbed of `secrets`.
fn sdk_error<E, R>(
    err: SdkError<E, R>,
    service: &str,
    secrets: &[&str],
    refused: impl FnOnce(&str, &str) -> String,
) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: Debug,
{
    match &err {
        SdkError::ServiceError(e) => {
            let e = e.err();
            let code = e.code().unwrap_or("Unknown");
            let message = e.message().unwrap_or("no message");
            ProviderError::Refused(scrub(&refused(code, message), secrets))
        }
        SdkError::TimeoutError(_) => {
            ProviderError::Unreachable(format!("{service} did not answer in time"))
        }
        SdkError::DispatchFailure(_) => ProviderError::Unreachable(scrub(
            &format!("could not reach {service}: {}", DisplayErrorContext(&err)),
            secrets,
        )),
        _ => ProviderError::Unreachable(scrub(
            &format!("{service} failed: {}", DisplayErrorContext(&err)),
            secrets,
        )),
    }
}
