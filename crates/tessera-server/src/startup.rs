//! Startup in one place: [`build`] connects the store, bootstraps an empty database and binds
//! the listener; [`Server::run`] serves until the server is stopped.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, HttpServer};
use tessera_crypto::{Keyring, SecretString};
use tessera_store::audit::AuditContext;
use tessera_store::members::OrgRole;
use tessera_store::tokens::{generate_token_value, NewToken, TokenOwner};
use tessera_store::{Store, StoreError};

use crate::config::{Bootstrap, Config};
use crate::oidc::Issuer;
use crate::routes;
use crate::service::Service;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartupError {
    /// The data directory cannot be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The database cannot be opened or migrated, or bootstrapping failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A provider setting is invalid (the message names the variable).
    #[error(transparent)]
    Providers(#[from] tessera_providers::ConfigError),
    /// The OIDC signing keys cannot be prepared.
    #[error("cannot prepare the OIDC signing keys: {0}")]
    SigningKeys(String),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    addr: SocketAddr,
    server: actix_web::dev::Server,
    store: Store,
    generated_token: Option<SecretString>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// The address the listener is bound to (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bootstrap admin token generated because of `--dev`, to show once; `None` when a
    /// token was given or the database was not empty.
    pub fn take_generated_token(&mut self) -> Option<SecretString> {
        self.generated_token.take()
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// The store the server uses (for tests and operator tooling).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until stopped. Expired open sessions are swept once a minute meanwhile.
    pub async fn run(self) -> std::io::Result<()> {
        let store = self.store.clone();
        let sweeper = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                if let Err(e) = store.delete_expired_sessions().await {
                    tracing::warn!(error = %e, "sweeping expired open sessions failed");
                }
            }
        });
        let result = self.server.await;
        sweeper.abort();
        self.store.close().await;
        result
    }
}

/// Creates the bootstrap organization, its admin and the admin's token on an empty database.
/// Returns the token value when it was generated here (to be shown once).
async fn bootstrap(
    store: &Store,
    bootstrap: Bootstrap,
) -> Result<Option<SecretString>, StartupError> {
    if !store.is_empty().await? {
        tracing::info!("the database is not empty: bootstrap settings are ignored");
        return Ok(None);
    }
    let ctx = AuditContext::system();
    let org = bootstrap.org;
    store.create_org(&org, &ctx).await?;
    store
        .add_member(&org, "admin", OrgRole::Admin, &ctx)
        .await?;
    let (value, generated) = match bootstrap.token {
        Some(v) => (v, false),
        None => (generate_token_value()?, true),
    };
    let spec = NewToken {
        name: "bootstrap".into(),
        owner: TokenOwner::User("admin".into()),
        expires_at: None,
    };
    store.create_token(&org, &spec, &value, &ctx).await?;
    tracing::info!(org = %org, "bootstrapped an empty database: organization and admin created");
    Ok(generated.then_some(value))
}

/// Connects the store, bootstraps an empty database, binds the listener, builds the OIDC
/// issuer (creating a signing key for every organization that has none) and the provider
/// registry.
pub async fn build(config: Config) -> Result<Server, StartupError> {
    if config.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartupError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
    }
    let store = Store::connect(&config.database_url, Keyring::new(config.master_key)).await?;
    let generated_token = match config.bootstrap {
        Some(b) => bootstrap(&store, b).await?,
        None => None,
    };
    let listener = TcpListener::bind(config.listen).map_err(|source| StartupError::Bind {
        addr: config.listen,
        source,
    })?;
    let addr = listener.local_addr().map_err(|source| StartupError::Bind {
        addr: config.listen,
        source,
    })?;
    let issuer_url = config
        .oidc_issuer
        .clone()
        .unwrap_or_else(|| format!("http://{addr}/oidc"));
    let issuer = Arc::new(Issuer::new(
        store.clone(),
        issuer_url,
        config.oidc_token_lifetime,
    ));
    let registry = tessera_providers::Registry::new(config.providers.clone(), issuer.clone())?;
    issuer
        .ensure_every_org()
        .await
        .map_err(|e| StartupError::SigningKeys(e.to_string()))?;
    let service = web::Data::new(
        Service::new(store.clone(), issuer, registry).with_rate_limit(config.rate_limit_per_token),
    );
    let server = HttpServer::new(move || routes::app(service.clone()))
        .listen(listener)
        .map_err(|source| StartupError::Bind { addr, source })?
        .run();
    Ok(Server {
        addr,
        server,
        store,
        generated_token,
    })
}

/// Runs `future` to completion on the runtime the server needs (an actix system over tokio).
/// For synchronous callers such as the `tessera` binary.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    actix_web::rt::System::new().block_on(future)
}

/// Installs the log subscriber: human-readable lines on stderr, filtered by `RUST_LOG`
/// (default `info`). Calling it twice is harmless.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
