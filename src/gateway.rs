//! The embeddable gateway: [`start`] returns a [`GatewayHandle`] with graceful shutdown. Used by the CLI's
//! `server` command and by the desktop app.

mod login;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::accounts::{AccountList, HealthPolicy, LiveAccount};
use crate::client;
use crate::clock::{Clock, SystemClock, secs_to_ms};
use crate::config::AccountKind;
use crate::config::watch::ConfigSync;
use crate::config::{self, Config, ConfigError, ConfigFile};
use crate::router::Selector;
use crate::router::schedule;
use crate::secrets::{self, BackendKind, SecretError, SecretStore};
use crate::status::{ReportSource, StatusReport};
use crate::tasks::Tasks;
use crate::upstream::oauth::{self, OAuthSettings, PendingRegistry, TokenManager};
use crate::upstream::{UpstreamClient, UpstreamError};

/// How long the keychain gets to answer before the encrypted file is used instead.
pub const KEYCHAIN_PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

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

/// Why a configuration change could not be applied; the watcher retries it until it applies or a newer version
/// of the file replaces it.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// An account's credential could not be read (a keychain timeout, a locked keyring, an unreadable file).
    #[error("cannot read an account's credential from the secret store: {0}")]
    Secrets(#[from] SecretError),
    /// The new upstream settings do not make a usable HTTP client.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// Everything a request needs that can change on reload, swapped atomically as one snapshot.
#[derive(Debug)]
pub struct Live {
    /// The configuration in force (env overrides applied).
    pub config: Config,
    /// The accounts in force.
    pub accounts: AccountList,
    /// The gateway keys (hashes and scopes).
    pub client_keys: client::ClientKeySet,
    /// The pooled upstream client.
    pub upstream: UpstreamClient,
    /// Smooth weighted round-robin order over `accounts`.
    pub schedule: Vec<u32>,
    /// Cooldown and circuit-breaker settings.
    pub policy: HealthPolicy,
}

impl Live {
    fn new(config: Config, accounts: AccountList, client_keys: client::ClientKeySet, upstream: UpstreamClient) -> Self {
        let weights: Vec<u32> = accounts.iter().map(|a| a.config.weight).collect();
        let r = &config.routing;
        let policy = HealthPolicy {
            overloaded_cooldown_ms: secs_to_ms(r.overloaded_cooldown_secs),
            breaker_threshold: r.breaker_threshold,
            breaker_base_ms: secs_to_ms(r.breaker_backoff_secs),
            breaker_max_ms: secs_to_ms(r.breaker_max_backoff_secs),
        };
        Self { schedule: schedule::smooth_weighted(&weights), policy, config, accounts, client_keys, upstream }
    }
}

/// The running gateway's shared state.
#[derive(Debug)]
pub struct Gateway {
    file: ConfigFile,
    live: ArcSwap<Live>,
    secrets: Arc<dyn SecretStore>,
    selector: Selector,
    clock: Arc<dyn Clock>,
    listen: SocketAddr,
    started: Instant,
    admin_token_hash: [u8; 32],
    reload_lock: tokio::sync::Mutex<()>,
    oauth: TokenManager,
    /// Pending OAuth logins by state hash: callbacks are matched without the secret store.
    pending: PendingRegistry,
    /// Which version of the config file is in force, and any newer one not applied yet (from the watcher).
    config_sync: watch::Receiver<ConfigSync>,
}

impl Gateway {
    /// The current snapshot.
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// The account selector.
    pub fn selector(&self) -> &Selector {
        &self.selector
    }

    /// The current time (Unix ms) on the gateway's clock.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The bound listen address.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// OAuth token lifecycle for OAuth accounts.
    pub fn oauth(&self) -> &TokenManager {
        &self.oauth
    }

    /// The secret store.
    pub fn secrets(&self) -> &Arc<dyn SecretStore> {
        &self.secrets
    }

    /// The OAuth settings an account uses (client secrets are only needed at login, not for refresh).
    pub fn oauth_settings(&self, config: &Config, account: Option<&crate::config::Account>) -> OAuthSettings {
        oauth::settings_for(&config.oauth, account, None)
    }

    /// Refreshes OAuth tokens that expire within the margin; run periodically.
    async fn refresh_oauth_tokens(&self) {
        let live = self.live();
        let due: Vec<(String, OAuthSettings)> = live
            .accounts
            .iter()
            .filter(|a| a.kind() == AccountKind::Oauth && a.config.enabled && a.credential.is_some())
            .map(|a| (a.id().to_string(), self.oauth_settings(&live.config, Some(&a.config))))
            .collect();
        if !due.is_empty() {
            self.oauth.refresh_due(&due, oauth::DEFAULT_REFRESH_MARGIN).await;
        }
    }

    pub(crate) fn admin_token_hash(&self) -> &[u8; 32] {
        &self.admin_token_hash
    }

    /// The live status report. Reading an OAuth account's token state for the first time goes to the secret
    /// store on a blocking thread, so a slow keychain delays this report but never the runtime.
    pub async fn status(&self) -> StatusReport {
        let live = self.live();
        let now = self.now_ms();
        let accounts = futures_util::future::join_all(live.accounts.iter().map(|a| async move {
            let mut view = a.view(now);
            if a.kind() == AccountKind::Oauth {
                view.apply_oauth(&self.oauth.status(a.id()).await);
            }
            view
        }))
        .await;
        StatusReport {
            source: ReportSource::Server,
            version: env!("CARGO_PKG_VERSION").into(),
            listen: self.listen.to_string(),
            uptime_secs: Some(self.started.elapsed().as_secs()),
            strategy: live.config.routing.strategy,
            secrets_backend: Some(backend_name(self.secrets.backend()).into()),
            client_keys: live.client_keys.general(),
            accounts,
            config: Some(self.config_sync.borrow().clone()),
        }
    }

    /// Which version of the config file is in force, and any newer one not applied yet.
    pub fn config_sync(&self) -> ConfigSync {
        self.config_sync.borrow().clone()
    }

    /// Applies a new configuration: accounts whose config is unchanged keep their runtime state; new or changed
    /// ones get their credential from the secret store and fresh state. On an error nothing changes (the last
    /// good configuration stays in force) and the watcher tries again.
    async fn reload(self: &Arc<Self>, mut config: Config) -> Result<(), ReloadError> {
        let _serialised = self.reload_lock.lock().await;
        config::env_overrides(&mut config);
        let old = self.live();
        if config.server.listen != old.config.server.listen {
            tracing::warn!("server.listen changed; restart the server to listen on {}", config.server.listen);
        }
        if config.secrets != old.config.secrets {
            tracing::warn!("secrets.backend changed; restart the server to use it");
        }
        let accounts = load_accounts(&config, Some(&old.accounts), self.secrets.clone()).await?;
        let upstream = if config.upstream == old.config.upstream {
            old.upstream.clone()
        } else {
            UpstreamClient::new(&config.upstream)?
        };
        let client_keys = client::ClientKeySet::from_config(&config.client_keys);
        if !self.listen.ip().is_loopback() && client_keys.general() == 0 {
            tracing::warn!("all client keys were removed: every API request is refused until one is added");
        }
        tracing::info!(accounts = accounts.len(), client_keys = client_keys.len(), "configuration applied");
        self.live.store(Arc::new(Live::new(config, accounts, client_keys, upstream)));
        Ok(())
    }
}

fn backend_name(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Keychain => "keychain",
        BackendKind::File => "file",
    }
}

/// Builds the live account list, reusing unchanged accounts from `previous`.
async fn load_accounts(
    config: &Config,
    previous: Option<&AccountList>,
    secrets: Arc<dyn SecretStore>,
) -> Result<AccountList, SecretError> {
    let mut out = Vec::with_capacity(config.accounts.len());
    for account in &config.accounts {
        let kept = previous.and_then(|p| {
            p.iter()
                .find(|a| {
                    a.config == *account && a.base_url == effective_base(account, config) && a.credential.is_some()
                })
                .cloned()
        });
        if let Some(kept) = kept {
            out.push(kept);
            continue;
        }
        let store = secrets.clone();
        let id = account.secret_id();
        let credential = tokio::task::spawn_blocking(move || store.get(&id)).await.map_err(|e| SecretError::Io {
            path: PathBuf::from("<secret store>"),
            source: std::io::Error::other(e),
        })??;
        if credential.is_none() {
            tracing::warn!(account = %account.name, "no credential in the secret store for this account");
        }
        out.push(Arc::new(LiveAccount::new(account.clone(), &config.upstream.base_url, credential)));
    }
    Ok(out)
}

fn effective_base(account: &crate::config::Account, config: &Config) -> String {
    account.base_url.as_deref().unwrap_or(&config.upstream.base_url).trim_end_matches('/').to_string()
}

/// Opens the configured secret store (blocking; probes the keychain).
pub fn open_secrets(config: &Config, dir: &Path) -> Result<Arc<dyn SecretStore>, SecretError> {
    let kind = match config.secrets.backend {
        config::SecretsBackend::Keychain => BackendKind::Keychain,
        config::SecretsBackend::File => BackendKind::File,
    };
    secrets::open_store(kind, dir, KEYCHAIN_PROBE_TIMEOUT)
}

/// What `runtime.json` beside the config holds while a server runs: where it is and the admin token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuntimeInfo {
    /// Base URL of the running server, reachable from this machine.
    pub url: String,
    /// Admin API token (a secret; the file is 0600).
    pub admin_token: String,
    /// Server process id.
    pub pid: u32,
}

/// The path of `runtime.json` for a config file.
pub fn runtime_info_path(file: &ConfigFile) -> PathBuf {
    file.dir().join("runtime.json")
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

    /// Stops accepting connections (the port is free when this returns), lets in-flight requests (streams
    /// included) finish for up to `server.shutdown_grace_secs`, then aborts whatever still runs. When this
    /// returns, no task of this gateway runs any more and its connections are closed.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
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
        self.stopped = true;
        let _ = std::fs::remove_file(&self.runtime_path);
        tracing::info!("gateway stopped");
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.stop.send(true);
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
    if !listen.ip().is_loopback() && !config.client_keys.iter().any(|k| k.is_general()) {
        return Err(StartError::InsecureListen(listen));
    }

    let dir = file.dir();
    let secrets = match options.secrets.clone() {
        Some(store) => store,
        None => {
            let (secrets_config, secrets_dir) = (config.clone(), dir.clone());
            tokio::task::spawn_blocking(move || open_secrets(&secrets_config, &secrets_dir))
                .await
                .map_err(|e| StartError::Internal(e.to_string()))??
        }
    };
    let accounts = load_accounts(&config, None, secrets.clone()).await?;
    let upstream = UpstreamClient::new(&config.upstream)?;

    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|source| StartError::Bind { addr: listen, source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: listen, source })?;

    let admin_token = client::new_client_key();
    let runtime_path = runtime_info_path(&file);
    let connect_ip = if addr.ip().is_unspecified() {
        if addr.is_ipv4() { "127.0.0.1".to_string() } else { "[::1]".to_string() }
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    let info = RuntimeInfo {
        url: format!("http://{connect_ip}:{}", addr.port()),
        admin_token: admin_token.clone(),
        pid: std::process::id(),
    };
    let info_json = serde_json::to_vec_pretty(&info).map_err(|e| StartError::Internal(e.to_string()))?;
    let info_path = runtime_path.clone();
    tokio::task::spawn_blocking(move || config::write_private(&info_path, &info_json))
        .await
        .map_err(|e| StartError::Internal(e.to_string()))??;

    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let secrets_for_oauth = secrets.clone();
    let upstream_http = upstream.http().clone();
    let client_keys = client::ClientKeySet::from_config(&config.client_keys);
    let (sync_tx, config_sync) = watch::channel(ConfigSync::in_force(&initial_text));
    let gateway = Arc::new(Gateway {
        file: file.clone(),
        live: ArcSwap::from_pointee(Live::new(config, accounts, client_keys, upstream)),
        secrets,
        selector: Selector::new(),
        clock: options.clock.clone().unwrap_or_else(|| Arc::new(SystemClock)),
        listen: addr,
        started: Instant::now(),
        admin_token_hash: client::hash_key(&admin_token),
        reload_lock: tokio::sync::Mutex::new(()),
        oauth: TokenManager::new(secrets_for_oauth, upstream_http),
        pending: PendingRegistry::new(&dir),
        config_sync,
    });

    let (stop, stop_rx) = watch::channel(false);
    let tasks = Tasks::new();
    let drain = CancellationToken::new();
    let settings = client::ServeSettings::from_config(&gateway.live().config.server);
    client::warn_if_few_descriptors(settings.max_connections);
    let app = client::router(gateway.clone());
    tasks.spawn(client::serve(listener, app, settings, tasks.clone(), drain.clone()));
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
    let reloader = gateway.clone();
    let watcher = config::watch::spawn(gateway.file.clone(), initial_text, stop_rx, sync_tx, move |config| {
        let gateway = reloader.clone();
        async move { gateway.reload(config).await }
    });
    tracing::info!(%addr, "gateway listening on http://{addr}");
    Ok(GatewayHandle { addr, gateway, stop, drain, tasks, watcher, runtime_path, grace, stopped: false })
}
