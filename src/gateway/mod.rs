//! The running gateway's live state: the configuration, accounts and keys in force (one snapshot swapped
//! atomically on reload), the selector, the OAuth token manager, pending logins, and the status built from them.
//! Below the HTTP layer and the request orchestration, which both read it; above the modules it composes.

mod live;
mod login;
mod reload;
mod status;
mod usage;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::watch::ConfigSync;
use crate::config::{AccountKind, Config, ConfigFile};
use crate::router::Selector;
use crate::secrets::SecretStore;
use crate::upstream::oauth::{self, OAuthSettings, PendingRegistry, TokenManager};
use crate::usage::{Metrics, RequestRate, Usage};

pub use live::Live;
pub(crate) use live::load_accounts;
pub use reload::ReloadError;
pub(crate) use status::with_oauth;
pub use status::{ReportSource, StatusReport};
pub(crate) use usage::seed_plan_windows;

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
    /// The usage store (request log, rollups, per-key day/month counters).
    usage: Usage,
    /// Prometheus metrics, observed with every request record.
    metrics: Metrics,
    /// Per-client-key requests-per-minute buckets.
    key_rates: RequestRate,
}

impl Gateway {
    /// The state of a gateway about to serve (`app::start` builds it).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        file: ConfigFile,
        live: Live,
        secrets: Arc<dyn SecretStore>,
        clock: Arc<dyn Clock>,
        listen: SocketAddr,
        admin_token_hash: [u8; 32],
        oauth: TokenManager,
        config_sync: watch::Receiver<ConfigSync>,
        usage: Usage,
    ) -> Self {
        let pending = PendingRegistry::new(&file.dir());
        let metrics = Metrics::new(usage.clone());
        Self {
            file,
            live: ArcSwap::from_pointee(live),
            secrets,
            selector: Selector::new(),
            clock,
            listen,
            started: Instant::now(),
            admin_token_hash,
            reload_lock: tokio::sync::Mutex::new(()),
            oauth,
            pending,
            config_sync,
            usage,
            metrics,
            key_rates: RequestRate::default(),
        }
    }

    /// The config file this gateway runs from.
    pub fn config_file(&self) -> &ConfigFile {
        &self.file
    }

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
    pub(crate) async fn refresh_oauth_tokens(&self) {
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

    /// Which version of the config file is in force, and any newer one not applied yet.
    pub fn config_sync(&self) -> ConfigSync {
        self.config_sync.borrow().clone()
    }
}
