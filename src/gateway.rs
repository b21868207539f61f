//! The embeddable gateway: [`start`] returns a [`GatewayHandle`] with graceful shutdown. Used by the CLI's
//! `server` command and by the desktop app.

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
use crate::clock::{Clock, SystemClock};
use crate::config::AccountKind;
use crate::config::{self, Config, ConfigError, ConfigFile};
use crate::router::Selector;
use crate::router::schedule;
use crate::secrets::{self, BackendKind, SecretError, SecretStore};
use crate::status::{ReportSource, StatusReport};
use crate::tasks::Tasks;
use crate::upstream::oauth::{self, OAuthSettings, TokenManager};
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

/// Everything a request needs that can change on reload, swapped atomically as one snapshot.
#[derive(Debug)]
pub struct Live {
    /// The configuration in force (env overrides applied).
    pub config: Config,
    /// The accounts in force.
    pub accounts: AccountList,
    /// SHA-256 hashes of the gateway keys.
    pub client_keys: Vec<[u8; 32]>,
    /// The pooled upstream client.
    pub upstream: UpstreamClient,
    /// Smooth weighted round-robin order over `accounts`.
    pub schedule: Vec<u32>,
    /// Cooldown and circuit-breaker settings.
    pub policy: HealthPolicy,
}

impl Live {
    fn new(config: Config, accounts: AccountList, client_keys: Vec<[u8; 32]>, upstream: UpstreamClient) -> Self {
        let weights: Vec<u32> = accounts.iter().map(|a| a.config.weight).collect();
        let r = &config.routing;
        let policy = HealthPolicy {
            overloaded_cooldown_ms: (r.overloaded_cooldown_secs * 1000.0) as u64,
            breaker_threshold: r.breaker_threshold,
            breaker_base_ms: (r.breaker_backoff_secs * 1000.0) as u64,
            breaker_max_ms: (r.breaker_max_backoff_secs * 1000.0) as u64,
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

    /// Completes an OAuth login delivered to the loopback callback or the desktop app's deep link, then records
    /// the account's email and organisation in the config (a reload picks up the new tokens).
    pub async fn complete_oauth_login(&self, input: &str) -> Result<oauth::LoginOutcome, oauth::OAuthError> {
        let live = self.live();
        let settings = self.oauth_settings(&live.config, None);
        let http = live.upstream.http().clone();
        let outcome = oauth::complete_login(self.secrets.clone(), &http, &settings, None, input).await?;
        self.oauth.forget(&outcome.account_id);
        let file = self.file.clone();
        let (id, email, organization) =
            (outcome.account_id.clone(), outcome.email.clone(), outcome.organization.clone());
        let saved = tokio::task::spawn_blocking(move || {
            file.update(move |config| {
                if let Some(account) = config.accounts.iter_mut().find(|a| a.id == id) {
                    account.email = email;
                    account.organization = organization;
                    account.updated_at = time::OffsetDateTime::now_utc()
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default();
                }
                Ok(())
            })
        })
        .await;
        if !matches!(saved, Ok(Ok(()))) {
            tracing::warn!("login completed but the account's email could not be saved to the config");
        }
        Ok(outcome)
    }

    /// Starts an OAuth login for an account (admin API): returns the authorize URL.
    pub async fn start_oauth_login(&self, account_id: &str) -> Result<String, oauth::OAuthError> {
        let live = self.live();
        let account = live
            .accounts
            .iter()
            .find(|a| (a.id() == account_id || a.name() == account_id) && a.kind() == AccountKind::Oauth)
            .ok_or_else(|| oauth::OAuthError::InvalidInput(format!("no OAuth account `{account_id}`")))?;
        let settings = self.oauth_settings(&live.config, Some(&account.config));
        let store = self.secrets.clone();
        let id = account.id().to_string();
        tokio::task::spawn_blocking(move || oauth::start_login(store.as_ref(), &settings, &id))
            .await
            .map_err(|e| oauth::OAuthError::Internal(e.to_string()))?
    }

    pub(crate) fn admin_token_hash(&self) -> &[u8; 32] {
        &self.admin_token_hash
    }

    /// The live status report.
    pub fn status(&self) -> StatusReport {
        let live = self.live();
        StatusReport {
            source: ReportSource::Server,
            version: env!("CARGO_PKG_VERSION").into(),
            listen: self.listen.to_string(),
            uptime_secs: Some(self.started.elapsed().as_secs()),
            strategy: live.config.routing.strategy,
            secrets_backend: Some(backend_name(self.secrets.backend()).into()),
            client_keys: live.client_keys.len(),
            accounts: live
                .accounts
                .iter()
                .map(|a| {
                    let mut view = a.view(self.now_ms());
                    if a.kind() == AccountKind::Oauth {
                        view.apply_oauth(&self.oauth.status(a.id()));
                    }
                    view
                })
                .collect(),
        }
    }

    /// Applies a new configuration: accounts whose config is unchanged keep their runtime state; new or changed
    /// ones get their credential from the secret store and fresh state.
    async fn reload(self: &Arc<Self>, mut config: Config) {
        let _serialised = self.reload_lock.lock().await;
        config::env_overrides(&mut config);
        let old = self.live();
        if config.server.listen != old.config.server.listen {
            tracing::warn!("server.listen changed; restart the server to listen on {}", config.server.listen);
        }
        if config.secrets != old.config.secrets {
            tracing::warn!("secrets.backend changed; restart the server to use it");
        }
        let accounts = match load_accounts(&config, Some(&old.accounts), self.secrets.clone()).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("configuration change ignored, keeping the last good configuration: {e}");
                return;
            }
        };
        let upstream = if config.upstream == old.config.upstream {
            old.upstream.clone()
        } else {
            match UpstreamClient::new(&config.upstream) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("configuration change ignored: {e}");
                    return;
                }
            }
        };
        if !self.listen.ip().is_loopback() && config.client_keys.is_empty() {
            tracing::warn!("all client keys were removed: every API request is refused until one is added");
        }
        let client_keys = client_key_hashes(&config);
        tracing::info!(accounts = accounts.len(), client_keys = client_keys.len(), "configuration applied");
        self.live.store(Arc::new(Live::new(config, accounts, client_keys, upstream)));
    }
}

fn backend_name(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Keychain => "keychain",
        BackendKind::File => "file",
    }
}

fn client_key_hashes(config: &Config) -> Vec<[u8; 32]> {
    config
        .client_keys
        .iter()
        .filter_map(|k| {
            let bytes = hex::decode(&k.sha256).ok()?;
            <[u8; 32]>::try_from(bytes.as_slice()).ok()
        })
        .collect()
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
    if !listen.ip().is_loopback() && config.client_keys.is_empty() {
        return Err(StartError::InsecureListen(listen));
    }

    let dir = file.dir();
    let secrets_config = config.clone();
    let secrets_dir = dir.clone();
    let secrets = tokio::task::spawn_blocking(move || open_secrets(&secrets_config, &secrets_dir))
        .await
        .map_err(|e| StartError::Internal(e.to_string()))??;
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
    config::write_private(&runtime_path, &info_json)?;

    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let secrets_for_oauth = secrets.clone();
    let upstream_http = upstream.http().clone();
    let client_keys = client_key_hashes(&config);
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
    let reload_tasks = tasks.clone();
    let watcher = config::watch::spawn(gateway.file.clone(), initial_text, stop_rx, move |config| {
        let gateway = reloader.clone();
        reload_tasks.spawn(async move { gateway.reload(config).await });
    });
    tracing::info!(%addr, "gateway listening on http://{addr}");
    Ok(GatewayHandle { addr, gateway, stop, drain, tasks, watcher, runtime_path, grace, stopped: false })
}
