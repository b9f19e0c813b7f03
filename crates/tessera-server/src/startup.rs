//! Startup in one place: [`build`] connects the store, bootstraps an empty database and binds
//! the listeners (the API, HTTPS when configured, and `/metrics` on its own address when
//! configured); [`Server::run`] serves until the server is stopped, and
//! [`Server::run_until_signal`] also stops gracefully on SIGTERM or SIGINT: no new connection
//! is accepted, requests in flight finish (up to `shutdown_timeout_seconds`), then the store
//! is closed.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, HttpServer};
use metrics_exporter_prometheus::PrometheusHandle;
use tessera_crypto::{Keyring, SecretString};
use tessera_store::audit::AuditContext;
use tessera_store::members::OrgRole;
use tessera_store::tokens::{generate_token_value, NewToken, TokenOwner};
use tessera_store::{ServerLock, Store, StoreError};

use crate::config::{Bootstrap, Config};
use crate::metrics;
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
    /// The metrics listen address cannot be bound.
    #[error("metrics_listen: cannot listen on {addr}: {source}")]
    MetricsBind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
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
    tls: bool,
    server: actix_web::dev::Server,
    /// The separate `/metrics` listener, when `metrics_listen` is set.
    metrics: Option<(SocketAddr, actix_web::dev::Server)>,
    metrics_handle: PrometheusHandle,
    store: Store,
    generated_token: Option<SecretString>,
    /// Held while the server runs: its SQLite database is its alone.
    _lock: Option<ServerLock>,
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

    /// The base URL clients use: `https://ADDR` with TLS, else `http://ADDR`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The address `/metrics` is served on by itself, when `metrics_listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(addr, _)| *addr)
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

    /// Serves until stopped through a [`handle`](Server::handle). Expired open sessions are
    /// swept once a minute meanwhile. When the API server stops, the metrics listener stops
    /// too and the store is closed.
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
        let upkeep = tokio::spawn(metrics::upkeep(self.metrics_handle.clone()));
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            (handle, tokio::spawn(server))
        });
        let result = self.server.await;
        if let Some((handle, task)) = metrics {
            handle.stop(true).await;
            let _ = task.await;
        }
        upkeep.abort();
        sweeper.abort();
        self.store.close().await;
        tracing::info!("stopped");
        result
    }

    /// As [`run`](Server::run), and on SIGTERM or SIGINT stops gracefully: the listeners
    /// close at once, requests in flight get up to `shutdown_timeout_seconds` to finish, then
    /// the store is closed and this returns.
    pub async fn run_until_signal(self) -> std::io::Result<()> {
        let mut handles = vec![self.server.handle()];
        if let Some((_, server)) = &self.metrics {
            handles.push(server.handle());
        }
        let stopper = tokio::spawn(async move {
            let signal = stop_signal().await;
            tracing::info!(
                signal,
                "stopping: no new connections, finishing requests in flight"
            );
            for handle in handles {
                handle.stop(true).await;
            }
        });
        let result = self.run().await;
        stopper.abort();
        result
    }
}

/// Waits for SIGTERM or SIGINT (Ctrl-C elsewhere than Unix); names the one received.
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            },
            _ => {
                tracing::warn!("cannot listen for SIGTERM/SIGINT: stop the server another way");
                std::future::pending::<&'static str>().await
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
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
        Some(v) => {
            if v.len() < 16 {
                tracing::warn!("bootstrap_token is shorter than 16 characters: use a long random token outside tests");
            }
            (v, false)
        }
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
    let lock = store.lock_for_server()?;
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
        Service::new(store.clone(), issuer, registry)
            .dev_mode(config.dev)
            .with_rate_limit(config.rate_limit_per_token),
    );
    let metrics_handle = metrics::install();
    let handle_data = web::Data::new(metrics_handle.clone());
    // `/metrics` is on the main listener unless it has one of its own.
    let metrics_on_main = config.metrics_listen.is_none().then(|| handle_data.clone());
    let api = {
        let service = service.clone();
        HttpServer::new(move || routes::app(service.clone(), metrics_on_main.clone()))
            .disable_signals()
            .shutdown_timeout(config.shutdown_timeout.as_secs())
    };
    let api = match &config.tls {
        Some(tls) => api.listen_rustls_0_23(listener, (*tls.server).clone()),
        None => api.listen(listener),
    }
    .map_err(|source| StartupError::Bind { addr, source })?;
    let metrics = match config.metrics_listen {
        Some(wanted) => {
            let bind_error = |source| StartupError::MetricsBind {
                addr: wanted,
                source,
            };
            let listener = TcpListener::bind(wanted).map_err(bind_error)?;
            let bound = listener.local_addr().map_err(bind_error)?;
            let server = HttpServer::new(move || {
                actix_web::App::new()
                    .app_data(service.clone())
                    .app_data(handle_data.clone())
                    .route("/metrics", web::get().to(metrics::render))
                    .default_service(web::to(crate::error::not_found))
            })
            .workers(1)
            .disable_signals()
            .shutdown_timeout(config.shutdown_timeout.as_secs())
            .listen(listener)
            .map_err(bind_error)?
            .run();
            Some((bound, server))
        }
        None => None,
    };
    tracing::info!(
        %addr,
        tls = config.tls.is_some(),
        metrics = %config.metrics_listen.map_or_else(|| "on the main listener".to_owned(), |a| a.to_string()),
        "listening"
    );
    Ok(Server {
        addr,
        tls: config.tls.is_some(),
        server: api.run(),
        metrics,
        metrics_handle,
        store,
        generated_token,
        _lock: lock,
    })
}

/// Runs `future` to completion on the runtime the server needs (an actix system over tokio).
/// For synchronous callers such as the `tessera` binary.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    actix_web::rt::System::new().block_on(future)
}
