//! [`Registry`]: the providers by name, behind [`tessera_lang::Providers`].

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sts::config::SharedHttpClient;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider as TlsProvider};
use aws_smithy_http_client::Builder as AwsHttpBuilder;
use tessera_lang::{ProviderCall, Providers, Value};

use crate::config::{ConfigError, Endpoints, ProvidersConfig};
use crate::error::ProviderError;
use crate::issuer::{CallIdentity, IdTokenIssuer, TokenRequest};
use crate::{aws, azure, gcp, oidc};

/// Every provider name the registry answers, sorted.
pub const PROVIDERS: [&str; 7] = [
    "aws-login",
    "aws-parameter-store",
    "aws-secrets",
    "azure-login",
    "debug-oidc-claims",
    "gcp-login",
    "oidc",
];

/// The `fn::open` providers, ready to call. Cheap to clone; build one at startup and share it.
///
/// *Boundary*: the registry makes outbound requests on behalf of whoever holds it. The server
/// must only hand it to an evaluation that passed the Open check (its `GrantedProviders`
/// wrapper); nothing here checks permissions.
#[derive(Clone)]
pub struct Registry {
    shared: Arc<Shared>,
}

/// What every provider call needs: endpoints, clients, the issuer.
pub(crate) struct Shared {
    pub(crate) endpoints: Endpoints,
    pub(crate) timeout: Duration,
    pub(crate) issuer: Arc<dyn IdTokenIssuer>,
    /// For Azure AD and Google: plain OAuth exchanges, done by hand (see `azure`).
    pub(crate) http: reqwest::Client,
    /// For the AWS SDK clients: rustls with ring, so no C toolchain is needed to build.
    pub(crate) aws_http: SharedHttpClient,
}

impl Registry {
    /// Validates `config` and builds the HTTP clients.
    pub fn new(
        config: ProvidersConfig,
        issuer: Arc<dyn IdTokenIssuer>,
    ) -> Result<Registry, ConfigError> {
        let endpoints = Endpoints::parse(&config)?;
        let http = reqwest::Client::builder()
            // A backstop only: the per-call deadline below must fire first, so a silent
            // endpoint is reported as a timeout (504), never as unreachable (502).
            .timeout(config.timeout + std::time::Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        let aws_http = AwsHttpBuilder::new()
            .tls_provider(TlsProvider::Rustls(CryptoMode::Ring))
            .build_https();
        Ok(Registry {
            shared: Arc::new(Shared {
                endpoints,
                timeout: config.timeout,
                issuer,
                http,
                aws_http,
            }),
        })
    }

    /// Calls a provider, with the typed error. [`Providers::open`] is this with the error
    /// rendered for the user.
    pub async fn call(&self, call: ProviderCall) -> Result<Value, ProviderError> {
        let Some(name) = PROVIDERS.iter().copied().find(|p| *p == call.provider) else {
            return Err(ProviderError::UnknownProvider(call.provider));
        };
        tracing::debug!(provider = name, environment = %call.environment, root = %call.root_environment, "provider call");
        let shared = &*self.shared;
        let work = async {
            match name {
                "aws-login" => aws::login(shared, &call).await,
                "aws-secrets" => aws::secrets(shared, &call).await,
                "aws-parameter-store" => aws::parameter_store(shared, &call).await,
                "azure-login" => azure::login(shared, &call).await,
                "gcp-login" => gcp::login(shared, &call).await,
                "oidc" => oidc::token(shared, &call),
                _ => oidc::debug_claims(shared, &call),
            }
        };
        let result = match tokio::time::timeout(shared.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(ProviderError::Timeout {
                provider: name,
                after: shared.timeout,
            }),
        };
        if let Err(e) = &result {
            // The message is the user's diagnostic, which never carries a secret.
            tracing::info!(provider = name, environment = %call.environment, error = %e, "provider call failed");
        }
        result
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("endpoints", &self.shared.endpoints)
            .field("timeout", &self.shared.timeout)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Providers for Registry {
    async fn open(&self, call: ProviderCall) -> Result<Value, String> {
        self.call(call).await.map_err(|e| e.to_string())
    }
}

impl Shared {
    /// Mints a token for the call's identity: the request, then the signed token.
    pub(crate) fn mint(
        &self,
        provider: &'static str,
        call: &ProviderCall,
        audience: impl FnOnce(&str) -> String,
        attributes: Option<&[String]>,
        lifetime: Duration,
    ) -> Result<(TokenRequest, String), ProviderError> {
        let request = self.token_request(provider, call, audience, attributes, lifetime)?;
        let token = self
            .issuer
            .issue(request.clone())
            .map_err(|message| ProviderError::Issuer { provider, message })?;
        Ok((request, token))
    }

    /// The token request for the call's identity, unsigned.
    pub(crate) fn token_request(
        &self,
        provider: &'static str,
        call: &ProviderCall,
        audience: impl FnOnce(&str) -> String,
        attributes: Option<&[String]>,
        lifetime: Duration,
    ) -> Result<TokenRequest, ProviderError> {
        let context = |e: crate::SubjectError| ProviderError::Context {
            provider,
            message: e.to_string(),
        };
        let identity = CallIdentity::from_call(call).map_err(context)?;
        identity
            .token_request(audience(&identity.organization), attributes, lifetime)
            .map_err(context)
    }
}

/// A secret string output.
pub(crate) fn secret(s: impl Into<String>) -> Value {
    Value::string(s).into_secret()
}
