//! The adapter: every call the shell makes into the `llm-gateway` library is in this file, and nothing else in
//! the shell imports the library. The rest of the shell sees only the small types below (`Snapshot`,
//! `AccountLine`, `GatewayEvent`, `StartFailure`, `OpError`, the Claude Code summaries), so a change in the
//! library's façade changes this one file.
//!
//! Blocking library calls (config file, keychain) run through `spawn_blocking`: callers are async tasks on the
//! gateway's own runtime, never the UI thread.

use std::future::Future;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use llm_gateway::claude_code::{ChangeAction, Level};
use llm_gateway::config::{AccountKind, ConfigFile, SecretsBackend};
use llm_gateway::manage::{AccountState, AccountView, LoginRedirect, NewOAuthAccount, Ops};
use llm_gateway::{EventKind, Gateway, GatewayHandle, StartError, StartOptions};

/// The config file the CLI uses too: `LLM_GATEWAY_CONFIG`, else the platform default.
pub fn config_path() -> PathBuf {
    match std::env::var_os("LLM_GATEWAY_CONFIG") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => llm_gateway::config::default_config_path(),
    }
}

/// How many threads the gateway's runtime gets (`server.worker_threads`; 1, the default, means a current-thread
/// runtime). Blocking: reads (and on first use creates) the config file. An unreadable config gives the
/// default; `start` then reports the real error.
pub fn worker_threads(path: &Path) -> usize {
    let mut config = ConfigFile::new(path).load().unwrap_or_default();
    llm_gateway::config::env_overrides(&mut config);
    config.server.worker_threads
}

/// Why the gateway did not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartFailure {
    /// Another program listens on the address.
    PortBusy {
        /// The address that was busy.
        addr: SocketAddr,
    },
    /// Anything else (bad config, secret store, insecure listen…), as the library words it.
    Other(String),
}

impl std::fmt::Display for StartFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PortBusy { addr } => write!(f, "{addr} is already in use by another program"),
            Self::Other(message) => f.write_str(message),
        }
    }
}

/// A failed operation, worded for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// The library refused or failed.
    #[error("{0}")]
    Failed(String),
}

/// Starts the gateway on the current runtime, with `listen` overriding `server.listen`.
pub async fn start(config_path: &Path, listen: Option<String>) -> Result<Running, StartFailure> {
    let mut options = StartOptions::new(config_path);
    options.listen = listen;
    llm_gateway::start(options).await.map(|handle| Running { handle }).map_err(start_failure)
}

fn start_failure(e: StartError) -> StartFailure {
    match e {
        StartError::Bind { addr, source } if source.kind() == ErrorKind::AddrInUse => StartFailure::PortBusy { addr },
        e => StartFailure::Other(e.to_string()),
    }
}

/// The hidden helper form `llm-gateway-desktop --config PATH claude-code api-key`, which Claude Code's
/// `apiKeyHelper` runs (the CLI's `claude-code api-key`): the config path when `args` (without the program) are
/// exactly that.
pub fn api_key_helper_config(args: &[String]) -> Option<PathBuf> {
    match args {
        [flag, path, command, sub] if flag == "--config" && command == "claude-code" && sub == "api-key" => {
            Some(PathBuf::from(path))
        }
        _ => None,
    }
}

/// The dedicated Claude Code key of the config at `path`, from the secret store the config names (blocking; no
/// gateway, window system or single-instance lock involved).
pub fn claude_code_api_key(path: &Path) -> Result<String, String> {
    llm_gateway::claude_code::api_key(&ConfigFile::new(path), None)
        .map(|key| key.expose().to_string())
        .map_err(|e| e.to_string())
}

/// Writes `server.listen` to the config file (validated and atomic, like every library change). Also used by
/// the CLI's users, so the next start of either front door listens there.
pub async fn save_listen(config_path: &Path, listen: String) -> Result<(), OpError> {
    let file = ConfigFile::new(config_path);
    blocking(move || {
        file.update(move |config| {
            config.server.listen = listen;
            Ok(())
        })
        .map_err(|e| OpError::Failed(e.to_string()))
    })
    .await
}

/// A running gateway, owned by the service (which alone stops it).
#[derive(Debug)]
pub struct Running {
    handle: GatewayHandle,
}

impl Running {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.handle.addr()
    }

    /// A cheap handle for operations and status, usable while the service keeps this gateway running.
    pub fn ops(&self) -> GatewayOps {
        GatewayOps { gateway: self.handle.gateway().clone(), ops: self.handle.ops() }
    }

    /// Stops listening (the port is free when this returns; requests in flight finish), keeping every account's
    /// state, sessions and tokens.
    pub async fn pause(&mut self) {
        self.handle.pause().await;
    }

    /// Listens again on the same address.
    pub async fn resume(&mut self) -> Result<(), StartFailure> {
        self.handle.resume().await.map_err(start_failure)
    }

    /// A task (to spawn on the gateway's runtime) that hands each of the gateway's events to `on_event` until
    /// the gateway shuts down.
    pub fn follow_events<F>(&self, on_event: F) -> impl Future<Output = ()> + Send + use<F>
    where
        F: Fn(GatewayEvent) + Send + 'static,
    {
        let mut subscription = self.handle.subscribe();
        async move {
            while let Some(event) = subscription.recv().await {
                if let Some(event) = gateway_event(event.kind) {
                    on_event(event);
                }
            }
        }
    }

    /// Stops accepting connections and lets in-flight requests (streams included) finish, up to
    /// `server.shutdown_grace_secs`.
    pub async fn stop(self) {
        self.handle.shutdown().await;
    }
}

/// Operations on a running gateway.
#[derive(Debug, Clone)]
pub struct GatewayOps {
    gateway: Arc<Gateway>,
    ops: Ops,
}

impl GatewayOps {
    /// The gateway's state now (cheap: reads the live snapshot, no I/O).
    pub fn snapshot(&self) -> Snapshot {
        let report = self.gateway.status_now();
        let live = self.gateway.live();
        let file_fallback = live.config.secrets.backend == SecretsBackend::Keychain
            && report.secrets_backend.as_deref() == Some("file");
        Snapshot {
            addr: self.gateway.listen(),
            secrets_in_file_fallback: file_fallback,
            requests: report.accounts.iter().map(|a| a.requests).sum(),
            // From the usage store's in-memory day count (`None` with recording off: the tray then counts since
            // start); the `usage` events refresh it too.
            today_requests: self.gateway.requests_today(),
            accounts: report.accounts.iter().map(account_line).collect(),
            own_logins: report.own_logins.iter().map(account_line).collect(),
        }
    }

    /// Starts a Claude (OAuth) login and returns the authorize URL to open in the browser: for the first OAuth
    /// account that needs one, else for a new account (`claude`, `claude-2`, …).
    pub async fn start_login(&self) -> Result<String, OpError> {
        let target = self
            .snapshot()
            .accounts
            .into_iter()
            .find(|a| a.oauth && matches!(a.health, Health::NeedsLogin))
            .map(|a| a.id);
        let failed = |e: llm_gateway::manage::Error| OpError::Failed(e.to_string());
        let id = match target {
            Some(id) => id,
            None => {
                let config = self.ops.config().await.map_err(failed)?;
                let taken = |name: &str| config.accounts.iter().any(|a| a.name == name);
                let name = (1..)
                    .map(|n| if n == 1 { "claude".to_string() } else { format!("claude-{n}") })
                    .find(|name| !taken(name))
                    .unwrap_or_else(|| "claude".into());
                let new = NewOAuthAccount { name, weight: 1, ..NewOAuthAccount::default() };
                self.ops.add_oauth(new).await.map_err(failed)?.id
            }
        };
        // The authorize page returns to this gateway's own loopback callback, which completes the login by itself.
        let login = self.ops.start_login(&id, Some(LoginRedirect::Loopback)).await.map_err(failed)?;
        Ok(login.url)
    }

    /// Completes a login from a callback URL (`llm-gateway://oauth/callback?code=…&state=…`, or a loopback one).
    pub async fn complete_login(&self, url: &str) -> Result<LoginDone, OpError> {
        let outcome = self.ops.complete_login(None, url).await.map_err(|e| OpError::Failed(e.to_string()))?;
        Ok(LoginDone { account_id: outcome.account_id, email: outcome.email })
    }

    /// Points Claude Code at this gateway (only the keys it needs in the user settings; restorable). The
    /// `apiKeyHelper` it may write runs the `llm-gateway` CLI when one is installed beside this app, else this
    /// app's own binary, which answers the same hidden command ([`api_key_helper_config`]).
    pub async fn claude_code_setup(&self) -> Result<ClaudeCodeSetup, OpError> {
        let helper = helper_program().map_err(|e| OpError::Failed(format!("cannot find this program's path: {e}")))?;
        let report = self.ops.claude_code_setup(Some(helper)).await.map_err(|e| OpError::Failed(e.to_string()))?;
        Ok(ClaudeCodeSetup {
            settings_path: report.settings_path.display().to_string(),
            changed: report.changes.iter().map(|c| c.key.clone()).collect(),
            left_alone: report.left_alone.iter().map(|l| l.key.clone()).collect(),
            backup: report.backup.is_some(),
            uses_gateway: report.status.uses_gateway,
            warnings: report
                .status
                .findings
                .iter()
                .filter(|f| f.level == Level::Warning)
                .map(|f| f.message.clone())
                .collect(),
        })
    }

    /// Restores Claude Code's settings from before `claude_code_setup`.
    pub async fn claude_code_restore(&self) -> Result<ClaudeCodeRestore, OpError> {
        let report = self.ops.claude_code_restore().await.map_err(|e| OpError::Failed(e.to_string()))?;
        Ok(ClaudeCodeRestore {
            settings_path: report.settings_path.display().to_string(),
            had_setup: report.had_setup,
            exact: report.exact,
            put_back: report
                .changes
                .iter()
                .filter(|c| matches!(c.action, ChangeAction::Restored | ChangeAction::Unset))
                .map(|c| c.key.clone())
                .collect(),
            left_alone: report.left_alone.iter().map(|l| l.key.clone()).collect(),
        })
    }

    /// Whether the gateway serves its web UI: until it does (a build without it), the window shows the local
    /// page. Asks over HTTP, as the window would.
    pub async fn ui_available(&self) -> bool {
        let client = match reqwest::Client::builder().no_proxy().timeout(std::time::Duration::from_secs(3)).build() {
            Ok(client) => client,
            Err(_) => return false,
        };
        client.get(self.ui_base()).send().await.is_ok_and(|r| r.status().is_success())
    }

    /// The gateway-served UI's address, without a sign-in code.
    pub fn ui_base(&self) -> String {
        format!("{}/ui/", base_url(self.gateway.listen()))
    }

    /// The UI's address with a fresh one-time sign-in code (minted in-process: no admin token, no HTTP), opening
    /// on `page` (`accounts`, …) once signed in. Each call mints a new code; a code works once, for 2 minutes.
    pub fn ui_sign_in_url(&self, page: Option<&str>) -> String {
        let code = self.gateway.mint_ui_code();
        match page {
            Some(page) => format!("{}&page={page}", code.url),
            None => code.url,
        }
    }
}

/// What `apiKeyHelper` runs: the `llm-gateway` CLI next to this app's binary when there is one (the two
/// installed together), else this binary.
fn helper_program() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let cli = exe.with_file_name(if cfg!(windows) { "llm-gateway.exe" } else { "llm-gateway" });
    Ok(if cli.is_file() { cli } else { exe })
}

/// What Claude Code setup did, for its notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaudeCodeSetup {
    /// The user settings file.
    pub settings_path: String,
    /// The keys written now (empty: it was set up already).
    pub changed: Vec<String>,
    /// Keys of an earlier setup the user changed since, left alone.
    pub left_alone: Vec<String>,
    /// A backup of the previous file was taken.
    pub backup: bool,
    /// Claude Code's requests now go to this gateway.
    pub uses_gateway: bool,
    /// Why not, or what may still get in the way (the library's findings).
    pub warnings: Vec<String>,
}

/// What restoring Claude Code's settings did, for its notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaudeCodeRestore {
    /// The user settings file.
    pub settings_path: String,
    /// Setup had changed the file (else there was nothing to do).
    pub had_setup: bool,
    /// The file is byte for byte as before setup.
    pub exact: bool,
    /// The keys put back or removed again.
    pub put_back: Vec<String>,
    /// Keys the user changed since setup, left as they are.
    pub left_alone: Vec<String>,
}

/// What the gateway announced, as far as the shell cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayEvent {
    /// An account's state changed (the snapshot says to what).
    AccountChanged {
        /// Its id.
        account_id: String,
    },
    /// A login completed and is in force.
    LoginCompleted(LoginDone),
    /// A login could not be completed.
    LoginFailed {
        /// Why.
        message: String,
    },
    /// The accounts or keys in force changed, or events were missed: everything may have changed.
    Changed,
    /// A request finished (the request counts moved).
    RequestFinished,
    /// Today's totals.
    UsageToday {
        /// Requests since midnight.
        requests: u64,
    },
}

fn gateway_event(kind: EventKind) -> Option<GatewayEvent> {
    Some(match kind {
        EventKind::AccountState { account_id, .. } => GatewayEvent::AccountChanged { account_id },
        EventKind::LoginCompleted { account_id, email } => {
            GatewayEvent::LoginCompleted(LoginDone { account_id, email })
        }
        EventKind::LoginFailed { message, .. } => GatewayEvent::LoginFailed { message },
        EventKind::RequestFinished { .. } => GatewayEvent::RequestFinished,
        EventKind::Usage { today } => GatewayEvent::UsageToday { requests: today.requests },
        EventKind::LoginStarted { .. } => return None,
        EventKind::ConfigReloaded { .. }
        | EventKind::ConfigRejected { .. }
        | EventKind::ClientKeyCreated { .. }
        | EventKind::ClientKeyRevoked { .. }
        | EventKind::Lagged { .. } => GatewayEvent::Changed,
    })
}

/// `http://IP:PORT` for a bound address (loopback when it listens on every interface).
pub fn base_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() && addr.is_ipv4() => "127.0.0.1".to_string(),
        ip if ip.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    format!("http://{ip}:{}", addr.port())
}

/// A completed login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginDone {
    /// The account now logged in.
    pub account_id: String,
    /// Its email, when the token response named it.
    pub email: Option<String>,
}

/// What the tray and the notifications show about the running gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The keychain is configured but did not answer, so secrets went to the encrypted file.
    pub secrets_in_file_fallback: bool,
    /// Requests sent upstream since the gateway started (all accounts).
    pub requests: u64,
    /// Requests since midnight, when the gateway records usage (the status report's or the last `usage` event's).
    pub today_requests: Option<u64>,
    /// One line per account, in config order.
    pub accounts: Vec<AccountLine>,
    /// Clients' own logins the gateway passes through (Claude Code on its claude.ai login), most recent first:
    /// shown like accounts, but they are not stored and take no login action.
    pub own_logins: Vec<AccountLine>,
}

/// One account, as the tray shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountLine {
    /// Account id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// A Claude (OAuth) login rather than an API key.
    pub oauth: bool,
    /// Usable or why not.
    pub health: Health,
    /// End of a cooldown (Unix ms), when cooling down.
    pub cooldown_until_ms: Option<u64>,
    /// Share of the 5-hour window used (0–1), subscription accounts.
    pub five_hour: Option<f64>,
    /// Share of the 7-day window used (0–1), subscription accounts.
    pub seven_day: Option<f64>,
}

/// An account's state, from the tray's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Requests can use it.
    Usable,
    /// Rate-limited or benched until `cooldown_until`.
    CoolingDown,
    /// Its Claude login must be redone (or never happened).
    NeedsLogin,
    /// The upstream rejected its credential, or it has none.
    Broken,
    /// The user turned it off.
    Disabled,
}

fn health(state: AccountState, oauth: bool) -> Health {
    match state {
        AccountState::Active | AccountState::Refreshing => Health::Usable,
        AccountState::CoolingDown | AccountState::CircuitOpen => Health::CoolingDown,
        AccountState::NeedsLogin => Health::NeedsLogin,
        AccountState::MissingCredential if oauth => Health::NeedsLogin,
        AccountState::Error | AccountState::MissingCredential => Health::Broken,
        AccountState::Disabled => Health::Disabled,
    }
}

fn account_line(view: &AccountView) -> AccountLine {
    let oauth = view.kind == AccountKind::Oauth;
    let windows = view.windows.as_ref();
    AccountLine {
        id: view.id.clone(),
        name: view.name.clone(),
        oauth,
        health: health(view.state, oauth),
        cooldown_until_ms: view.cooldown_until.as_deref().and_then(unix_ms),
        five_hour: windows.and_then(|w| w.five_hour.as_ref()).and_then(|w| w.utilization),
        seven_day: windows.and_then(|w| w.seven_day.as_ref()).and_then(|w| w.utilization),
    }
}

fn unix_ms(rfc3339: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, OpError> + Send + 'static) -> Result<T, OpError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| OpError::Failed(format!("internal error: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_uses_loopback_for_an_unspecified_listen() {
        assert_eq!(base_url("0.0.0.0:8787".parse().unwrap()), "http://127.0.0.1:8787");
        assert_eq!(base_url("[::]:8787".parse().unwrap()), "http://[::1]:8787");
        assert_eq!(base_url("[::1]:9000".parse().unwrap()), "http://[::1]:9000");
        assert_eq!(base_url("127.0.0.1:1".parse().unwrap()), "http://127.0.0.1:1");
    }

    #[test]
    fn cooldown_ends_are_read_as_unix_milliseconds() {
        assert_eq!(unix_ms("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(unix_ms("2026-01-01T00:00:00+01:00"), Some(1_767_222_000_000));
        assert_eq!(unix_ms("soon"), None);
    }
}
