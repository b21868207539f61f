//! Starting and stopping a gateway: load the config, open the secret store, bind, serve, watch the config file,
//! refresh OAuth tokens; [`GatewayHandle::shutdown`] drains and ends every task. The top of the library: the
//! front doors (CLI, desktop) call this, and nothing in the library calls into it.

mod pause;
mod thread;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::accounts::StateSignal;
use crate::clock::{Clock, SystemClock};
use crate::config::watch::ConfigSync;
use crate::config::{self, ConfigError, ConfigFile, RuntimeInfo, runtime_info_path};
use crate::gateway::{Gateway, Live, Subscription, load_accounts, seed_plan_windows};
use crate::secrets::keys::{self, ClientKeySet};
use crate::secrets::{SecretError, SecretStore};
use crate::tasks::Tasks;
use crate::upstream::oauth::TokenManager;
use crate::upstream::{UpstreamClient, UpstreamError};
use crate::usage::{Usage, UsageOptions};

pub use thread::{BackgroundGateway, server_runtime};
#[cfg(test)]
mod reload_tests;

/// How often OAuth tokens close to expiry are refreshed in the background.
pub const OAUTH_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// What the gateway needs to start.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// The config file (created with defaults when missing).
    pub config_path: PathBuf,
    /// Overrides `server.listen` (the CLI's `--listen`).
    pub listen: Option<String>,
    /// The clock for cooldowns and sessions (default: the system clock; tests pass a manual one).
    pub clock: Option<Arc<dyn Clock>>,
    /// The secret store (default: the one `secrets.backend` names, opened beside the config). The desktop app
    /// passes the store it already opened; tests pass one that fails or stalls on purpose.
    pub secrets: Option<Arc<dyn SecretStore>>,
    /// The environment Claude Code would start in, for the Claude Code operations of the admin API and
    /// [`GatewayHandle::ops`] (default: this process's). The desktop app passes the user's; tests a temporary home.
    pub claude_code_env: Option<crate::claude_code::Environment>,
}

impl StartOptions {
    /// Options for the config file at `path`, everything else default.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { config_path: path.into(), ..Self::default() }
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The secret store could not be opened.
    #[error("secret store: {0}")]
    Secrets(#[from] SecretError),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// Non-loopback listen without client keys.
    #[error(
        "refusing to listen on {0} without client keys: anyone who can reach it could use your accounts. \
         Add a key first with `llm-gateway add-client-key --name NAME` (clients send it as x-api-key or \
         Authorization: Bearer), or listen on 127.0.0.1"
    )]
    InsecureListen(SocketAddr),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A background task failed.
    #[error("internal error: {0}")]
    Internal(String),
}

/// A running gateway. Stop it with [`GatewayHandle::shutdown`]; dropping it instead stops it abruptly: the
/// listener closes and every connection and task of the gateway is aborted (at their next poll, without waiting).
#[derive(Debug)]
pub struct GatewayHandle {
    addr: SocketAddr,
    gateway: Arc<Gateway>,
    stop: watch::Sender<bool>,
    drain: CancellationToken,
    tasks: Tasks,
    watcher: JoinHandle<()>,
    runtime_path: PathBuf,
    grace: Duration,
    stopped: bool,
    /// The accept loop while listening; `None` while paused (`pause.rs`).
    listening: Option<pause::Listening>,
}

impl GatewayHandle {
    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The gateway's shared state.
    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// The management operations, bound to this gateway: changes are in force when they return.
    pub fn ops(&self) -> crate::manage::Ops {
        crate::manage::Ops::live(self.gateway.clone())
    }

    /// A subscription to the gateway's events from now on (account states, logins, reloads, client keys,
    /// finished requests); it ends when the gateway shuts down.
    pub fn subscribe(&self) -> Subscription {
        self.gateway.subscribe()
    }

    /// Stops accepting connections (the port is free when this returns), lets in-flight requests (streams
    /// included) finish for up to `server.shutdown_grace_secs`, then aborts whatever still runs. When this
    /// returns, no task of this gateway runs any more and its connections are closed.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        // Event streams end now: an open one would otherwise hold its connection, and so the drain, for the grace.
        self.gateway.close_events();
        // The watcher goes first: it is what spawns reloads, which must not start once the tasks are counted.
        self.watcher.abort();
        let _ = (&mut self.watcher).await;
        self.drain.cancel();
        let grace = self.grace;
        if tokio::time::timeout(grace, self.tasks.wait()).await.is_err() {
            tracing::warn!("in-flight requests still running after {} s; closing them", grace.as_secs());
            self.tasks.abort();
            self.tasks.wait().await;
        }
        // Every request has been recorded by now: the store writes what is queued and closes.
        self.gateway.save_all_windows();
        let usage = self.gateway.usage().clone();
        if let Err(e) = tokio::task::spawn_blocking(move || usage.shutdown()).await {
            tracing::warn!("usage store did not close cleanly: {e}");
        }
        self.stopped = true;
        let _ = std::fs::remove_file(&self.runtime_path);
        tracing::info!("gateway stopped");
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.stop.send(true);
            self.gateway.close_events();
            self.drain.cancel();
            self.tasks.abort();
            self.watcher.abort();
            let _ = std::fs::remove_file(&self.runtime_path);
        }
    }
}

/// Starts the gateway: loads config (creating it when missing), opens the secret store, binds, serves, and watches
/// the config file for changes.
pub async fn start(options: StartOptions) -> Result<GatewayHandle, StartError> {
    let file = ConfigFile::new(&options.config_path);
    let loader = file.clone();
    let (mut config, initial_text) = tokio::task::spawn_blocking(move || {
        let config = loader.load()?;
        let text = std::fs::read(loader.path()).unwrap_or_default();
        Ok::<_, ConfigError>((config, text))
    })
    .await
    .map_err(|e| StartError::Internal(e.to_string()))??;
    config::env_overrides(&mut config);
    if let Some(listen) = options.listen.clone() {
        config.server.listen = listen;
    }
    let listen = config::parse_listen(&config.server.listen)
        .map_err(|m| ConfigError::Invalid { key: "server.listen".into(), message: m })?;
    // Only general-purpose keys count: a dedicated loopback-only key (Claude Code's) opens nothing to the network.
    if ClientKeySet::from_config(&config.client_keys).exposed_without_key(listen.ip().is_loopback()) {
        return Err(StartError::InsecureListen(listen));
    }

    let dir = file.dir();
    let secrets = match options.secrets.clone() {
        Some(store) => store,
        None => {
            let (secrets_config, secrets_dir) = (config.clone(), dir.clone());
            tokio::task::spawn_blocking(move || crate::secrets::open_for_config(&secrets_config, &secrets_dir))
                .await
                .map_err(|e| StartError::Internal(e.to_string()))??
        }
    };
    let signal = StateSignal::new();
    let accounts = load_accounts(&config, None, secrets.clone(), &signal).await?;
    let upstream = UpstreamClient::new(&config.upstream)?;
    let clock = options.clock.clone().unwrap_or_else(|| Arc::new(SystemClock));
    // The usage store: opening reads and may repair a file, and the stored plan windows are read for status.
    // Never fails the start: an unusable database is moved aside or recording is turned off (logged).
    let usage_options = UsageOptions::new(file.path(), &config.usage, clock.clone());
    let seed_accounts = accounts.clone();
    let usage = tokio::task::spawn_blocking(move || {
        let usage = Usage::open(usage_options);
        seed_plan_windows(&usage, &seed_accounts);
        usage
    })
    .await
    .map_err(|e| StartError::Internal(e.to_string()))?;

    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|source| StartError::Bind { addr: listen, source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: listen, source })?;

    let admin_token = keys::new_client_key();
    let runtime_path = runtime_info_path(&file);
    let info =
        RuntimeInfo { url: config::connect_url(addr), admin_token: admin_token.clone(), pid: std::process::id() };
    let info_json = serde_json::to_vec_pretty(&info).map_err(|e| StartError::Internal(e.to_string()))?;
    let info_path = runtime_path.clone();
    tokio::task::spawn_blocking(move || config::write_private(&info_path, &info_json))
        .await
        .map_err(|e| StartError::Internal(e.to_string()))??;

    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let secrets_for_oauth = secrets.clone();
    let upstream_http = upstream.http().clone();
    let client_keys = ClientKeySet::from_config(&config.client_keys);
    let (sync_tx, config_sync) = watch::channel(ConfigSync::in_force(&initial_text));
    let gateway = Arc::new(Gateway::new(
        file.clone(),
        Live::new(config, accounts, client_keys, upstream),
        secrets,
        clock,
        addr,
        keys::hash_key(&admin_token),
        TokenManager::with_signal(secrets_for_oauth, upstream_http, signal.clone()),
        config_sync,
        signal,
        usage,
    ));
    gateway.load_ui_sessions().await;
    if let Some(env) = options.claude_code_env.clone() {
        gateway.set_claude_code_env(env);
    }

    let (stop, stop_rx) = watch::channel(false);
    let tasks = Tasks::new();
    let drain = CancellationToken::new();
    let listening = Some(pause::Listening::spawn(&gateway, listener, &tasks, &drain));
    let refresher = gateway.clone();
    let mut refresher_stop = stop_rx.clone();
    tasks.spawn(async move {
        let mut ticker = tokio::time::interval(OAUTH_REFRESH_INTERVAL);
        loop {
            tokio::select! {
                _ = ticker.tick() => refresher.refresh_oauth_tokens().await,
                _ = refresher_stop.changed() => return,
            }
        }
    });
    // Account states as they change: ends with the other tasks at shutdown.
    tasks.spawn(gateway.clone().monitor(stop_rx.clone()));
    let reloader = gateway.clone();
    let watcher = config::watch::spawn(file.clone(), initial_text, stop_rx, sync_tx, move |config| {
        let gateway = reloader.clone();
        async move { gateway.reload(config).await }
    });
    tracing::info!(%addr, "gateway listening on http://{addr}");
    Ok(GatewayHandle { addr, gateway, stop, drain, tasks, watcher, runtime_path, grace, stopped: false, listening })
}
