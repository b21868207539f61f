//! Claude Code's settings: what it would use now ([`status`]), pointing it at this gateway in one step
//! ([`setup`]) and undoing that ([`restore`]). Shared by the CLI (`llm-gateway claude-code …`), the admin API and
//! the desktop tray.
//!
//! Invariants: setup never clobbers (only the keys it needs change, everything else in the file keeps its bytes,
//! the file keeps its mode, writes are atomic and locked, the original is backed up first); restore is exact (the
//! recorded keys go back to their earlier value or absence, a key the user changed since is left alone and
//! reported); no key sits in a settings file in API-key mode (`apiKeyHelper` prints it from the secret store);
//! the claude.ai token is never read (only whether a login exists).
//!
//! Everything here is blocking (files, keychain): async code calls the `*_async` wrappers, which run it on the
//! blocking pool.

mod error;
mod findings;
mod fsio;
mod key;
pub mod paths;
mod report;
mod restore;
mod settings;
mod setup;
mod state;
mod status;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

pub use error::ClaudeCodeError;
pub use key::{KEY_NAME as DEDICATED_KEY_NAME, SECRET_ID as DEDICATED_KEY_SECRET_ID};
pub use paths::{ClaudePaths, default_managed_dir};
pub use report::*;
pub use restore::restore;
pub use settings::KeyPath;
pub use setup::{SetupContext, setup};
pub use state::{RECORD_FILE, SetupMode};
pub use status::{DEFAULT_BASE_URL, redact, same_gateway};

use crate::config::{ConfigFile, parse_listen};
pub use crate::secrets::keys::GATEWAY_KEY_HEADER;
use crate::secrets::{Secret, SecretStore};

/// Everything the operations look at, explicit so tests run against temporary directories and a fake
/// environment. [`Inputs::for_config`] fills it from a gateway config and the real process.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The user's home directory (`~`).
    pub home: PathBuf,
    /// The project directory whose `.claude/settings*.json` are inspected (Claude Code's working directory).
    pub project_dir: Option<PathBuf>,
    /// The environment Claude Code would start in (`ANTHROPIC_*`, `CLAUDE_CODE_*`, `CLAUDE_CONFIG_DIR`).
    pub env: BTreeMap<String, String>,
    /// The managed settings folder ([`default_managed_dir`] on this platform).
    pub managed_dir: Option<PathBuf>,
    /// This gateway's address as Claude Code should reach it, e.g. `http://127.0.0.1:8787`.
    pub gateway_url: String,
    /// Whether the gateway has a general-purpose client key (then it requires a key from every client).
    pub gateway_has_general_keys: bool,
    /// Whether the gateway forwards a client's own claude.ai login (`subscriptions.own_login: forward`).
    pub own_login_forwarding: bool,
    /// The gateway's state directory (beside its config), where setup records what it changed.
    pub state_dir: PathBuf,
}

impl Inputs {
    /// Inputs for the gateway whose config is `config`: its address (from `runtime.json` while a server runs,
    /// else `server.listen` with a wildcard address mapped to loopback) and keys, the process environment `env`,
    /// the home directory and this platform's managed folder. Blocking (reads the config).
    pub fn for_config(
        config: &ConfigFile,
        project_dir: Option<PathBuf>,
        env: BTreeMap<String, String>,
    ) -> Result<Self, ClaudeCodeError> {
        let mut loaded = config.load()?;
        crate::config::env_overrides(&mut loaded);
        let home_var = if cfg!(windows) { "USERPROFILE" } else { "HOME" };
        let home = env
            .get(home_var)
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .or_else(dirs::home_dir)
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(Self {
            home,
            project_dir,
            env,
            managed_dir: default_managed_dir(),
            gateway_url: gateway_url(config, &loaded.server.listen),
            gateway_has_general_keys: loaded.client_keys.iter().any(|k| k.is_general()),
            own_login_forwarding: loaded.subscriptions.own_login == crate::config::OwnLogin::Forward,
            state_dir: config.dir(),
        })
    }
}

/// The environment Claude Code would start in, when it is not this process's own: the desktop app is started by
/// the desktop session rather than the user's shell, and tests use a temporary home. Given to
/// `StartOptions::claude_code_env` (the running gateway's operations and admin API then use it) or to
/// `manage::Ops::with_claude_code_env`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// The variables Claude Code would see (`HOME`, `ANTHROPIC_*`, `CLAUDE_CODE_*`, `CLAUDE_CONFIG_DIR`).
    pub vars: BTreeMap<String, String>,
    /// The managed settings folder (`None`: none is read).
    pub managed_dir: Option<PathBuf>,
}

impl Environment {
    /// This process's environment and this platform's managed settings folder.
    pub fn of_process() -> Self {
        Self { vars: std::env::vars().collect(), managed_dir: default_managed_dir() }
    }
}

/// The running server's URL from `runtime.json`, else the configured listen address reachable from here.
fn gateway_url(config: &ConfigFile, listen: &str) -> String {
    let runtime = std::fs::read(crate::config::runtime_info_path(config))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<crate::config::RuntimeInfo>(&bytes).ok());
    if let Some(info) = runtime {
        return info.url.trim_end_matches('/').to_string();
    }
    match parse_listen(listen) {
        Ok(addr) => {
            let host = match addr.ip() {
                ip if ip.is_unspecified() && addr.is_ipv4() => "127.0.0.1".to_string(),
                ip if ip.is_unspecified() => "[::1]".to_string(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                std::net::IpAddr::V4(ip) => ip.to_string(),
            };
            format!("http://{host}:{}", addr.port())
        }
        Err(_) => format!("http://{}", listen.trim()),
    }
}

/// What Claude Code would use now and why (blocking: reads files).
pub fn status(inputs: &Inputs) -> Result<ClaudeCodeStatus, ClaudeCodeError> {
    let paths = ClaudePaths::new(inputs);
    Ok(status::evaluate(inputs, &status::gather(inputs, &paths)?))
}

/// The dedicated key for Claude Code's `apiKeyHelper` (the hidden `claude-code api-key` command). Blocking.
pub fn api_key(config: &ConfigFile, secrets: Option<Arc<dyn SecretStore>>) -> Result<Secret, ClaudeCodeError> {
    let store = match secrets {
        Some(store) => store,
        None => crate::secrets::open_for_config(&config.load()?, &config.dir())?,
    };
    key::read(config, store.as_ref())
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ClaudeCodeError> + Send + 'static,
) -> Result<T, ClaudeCodeError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ClaudeCodeError::Internal(e.to_string()))?
}

/// [`status`] on the blocking pool.
pub async fn status_async(inputs: Inputs) -> Result<ClaudeCodeStatus, ClaudeCodeError> {
    blocking(move || status(&inputs)).await
}

/// [`setup`] on the blocking pool.
pub async fn setup_async(inputs: Inputs, ctx: SetupContext) -> Result<SetupReport, ClaudeCodeError> {
    blocking(move || setup(&inputs, &ctx)).await
}

/// [`restore`] on the blocking pool.
pub async fn restore_async(inputs: Inputs) -> Result<RestoreReport, ClaudeCodeError> {
    blocking(move || restore(&inputs)).await
}
