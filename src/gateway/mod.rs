//! The running gateway's live state: the configuration, accounts and keys in force (one snapshot swapped
//! atomically on reload), the selector, the OAuth token manager, pending logins, and the status built from them.
//! Below the HTTP layer and the request orchestration, which both read it; above the modules it composes.

mod events;
mod live;
mod login;
mod monitor;
mod own_logins;
mod reload;
mod sessions;
mod status;
mod usage;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::accounts::StateSignal;
use crate::clock::Clock;
use crate::config::watch::ConfigSync;
use crate::config::{AccountKind, Config, ConfigFile};
use crate::router::Selector;
use crate::secrets::SecretStore;
use crate::upstream::oauth::{self, OAuthSettings, PendingRegistry, TokenManager};
use crate::usage::{Metrics, RequestRate, RequestRecord, Usage};

pub use events::{CAPACITY as EVENT_CAPACITY, Event, EventBus, EventKind, Subscription};
pub use live::Live;
pub(crate) use live::load_accounts;
pub use own_logins::{CredentialHeader, OwnCredential, OwnCredentialKind, OwnLogins};
pub use reload::ReloadError;
use sessions::UiSessions;
pub use sessions::{SessionError, UiCode, UiSession};
pub(crate) use status::with_oauth;
pub use status::{ClientCounts, ReportSource, StatusReport};
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
    /// The web UI's sign-in codes and browser sessions (hashes only; sessions also in `ui-sessions.json`).
    ui_sessions: UiSessions,
    /// Events for subscribers (admin API stream, desktop tray).
    events: EventBus,
    /// Wakes the account-state monitor; every live account and the token manager hold a clone.
    signal: StateSignal,
    /// The environment Claude Code would start in, when it is not this process's (`StartOptions`, set once at
    /// start).
    claude_code_env: std::sync::OnceLock<crate::claude_code::Environment>,
    /// The usage store (request log, rollups, per-key day/month counters).
    usage: Usage,
    /// Prometheus metrics, observed with every request record.
    metrics: Metrics,
    /// Per-client-key requests-per-minute buckets.
    key_rates: RequestRate,
    /// A `usage` event is scheduled (`usage.rs`): requests finishing meanwhile share it.
    usage_event_due: Arc<std::sync::atomic::AtomicBool>,
    /// Requests since start-up by client kind.
    clients_seen: usage::ClientCounter,
    /// Clients' own logins passed through, tracked like accounts (hashes only).
    own_logins: OwnLogins,
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
        signal: StateSignal,
        usage: Usage,
    ) -> Self {
        let pending = PendingRegistry::new(&file.dir());
        let ui_sessions = UiSessions::new(&file.dir());
        let events = EventBus::new(events::CAPACITY, clock.clone());
        let own_logins = OwnLogins::with_signal(signal.clone());
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
            ui_sessions,
            events,
            signal,
            claude_code_env: std::sync::OnceLock::new(),
            usage,
            metrics,
            key_rates: RequestRate::default(),
            usage_event_due: Arc::default(),
            clients_seen: usage::ClientCounter::default(),
            own_logins,
        }
    }

    /// Clients' own logins passed through (`subscriptions.own_login: forward`).
    pub fn own_logins(&self) -> &OwnLogins {
        &self.own_logins
    }

    /// Sets the environment Claude Code would start in (`StartOptions::claude_code_env`); only the first call
    /// counts.
    pub(crate) fn set_claude_code_env(&self, env: crate::claude_code::Environment) {
        let _ = self.claude_code_env.set(env);
    }

    /// The environment Claude Code would start in, when the gateway was given one (else this process's).
    pub fn claude_code_env(&self) -> Option<&crate::claude_code::Environment> {
        self.claude_code_env.get()
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

    /// The gateway's event bus.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// A subscription to the gateway's events from now on (see [`EventBus`]).
    pub fn subscribe(&self) -> Subscription {
        self.events.subscribe()
    }

    /// Publishes the event `make` builds; `make` is not even called when nobody listens. Never waits.
    pub(crate) fn publish(&self, make: impl FnOnce() -> EventKind) {
        self.events.publish(make);
    }

    /// Announces a finished request (`request_finished`). Costs one atomic load when nobody listens.
    pub fn publish_request(&self, record: RequestRecord) {
        self.events.publish(|| EventKind::RequestFinished { request: Box::new(record) });
    }

    /// Ends every event subscription (shutdown), so an open event stream does not hold the drain up.
    pub(crate) fn close_events(&self) {
        self.events.close();
    }
}
