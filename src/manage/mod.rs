//! The management operations every front door uses — the CLI, the admin API (and through it the web UI), and the
//! desktop app — so each operation exists once.
//!
//! [`Ops`] works on one config file. Bound to a running gateway ([`Ops::live`], what the admin API and the
//! desktop app hold), a change is written to the file and put in force before the operation returns, and the
//! views it returns carry the gateway's runtime state. Without one ([`Ops::offline`], the CLI), changes go to the
//! file and a running server picks them up by hot reload (the CLI then waits for it: [`Ops::wait_until_applied`]).
//!
//! Every operation is async and never blocks the runtime: config-file and secret-store I/O run on blocking
//! threads. Credentials go to the secret store *before* their account appears in the config (a server never sees
//! an account it cannot load a key for) and leave it only after. Errors keep their kind ([`Error`]).

mod accounts;
mod claude_code;
mod config_ops;
mod error;
mod keys;
mod login;
mod status;
mod usage;

use std::path::Path;
use std::sync::Arc;

pub use accounts::{AccountPatch, NewApiKeyAccount, NewOAuthAccount};
pub use config_ops::ConfigDocument;
pub use error::{Error, ErrorKind};
pub use keys::{ClientKeyLimits, ClientKeyView, CreatedClientKey, NewClientKey};
pub use login::{LoginRedirect, LoginStart};
pub use status::ServerSync;
pub use usage::{RequestParams, SessionParams, SessionsReport, UsageParams};

// The types the operations take and return, for front doors (their modules are internal).
pub use crate::accounts::{AccountState, AccountView, RateWindows};
pub use crate::secrets::Secret;
pub use crate::upstream::probe::ProbeResult;
pub use crate::usage::{CostBasis, GroupBy, LoggedRequest, UsageReport, UsageTotals};

use crate::config::{Config, ConfigFile};
use crate::gateway::Gateway;
use crate::secrets::SecretStore;

/// A shorthand for operation results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The management operations on one config file, optionally bound to the gateway running from it.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct Ops {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    file: ConfigFile,
    secrets: tokio::sync::OnceCell<Arc<dyn SecretStore>>,
    gateway: Option<Arc<Gateway>>,
    /// The environment Claude Code would start in (`None`: this process's).
    claude_code_env: Option<crate::claude_code::Environment>,
}

impl Ops {
    /// Operations on the config file at `path`, with no gateway in this process: changes go to the file (a
    /// server running from it applies them within about a second).
    pub fn offline(path: impl AsRef<Path>) -> Self {
        Self::offline_file(ConfigFile::new(path.as_ref()))
    }

    /// Like [`Ops::offline`], for a [`ConfigFile`].
    pub fn offline_file(file: ConfigFile) -> Self {
        let secrets = tokio::sync::OnceCell::new();
        Self { inner: Arc::new(Inner { file, secrets, gateway: None, claude_code_env: None }) }
    }

    /// Operations bound to a running gateway: changes are in force when they return, views carry live state,
    /// and the gateway's secret store is used.
    pub(crate) fn live(gateway: Arc<Gateway>) -> Self {
        let secrets = tokio::sync::OnceCell::new_with(Some(gateway.secrets().clone()));
        let file = gateway.config_file().clone();
        let claude_code_env = gateway.claude_code_env().cloned();
        Self { inner: Arc::new(Inner { file, secrets, gateway: Some(gateway), claude_code_env }) }
    }

    fn replace_claude_code_env(self, env: Option<crate::claude_code::Environment>) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        inner.claude_code_env = env;
        Self { inner: Arc::new(inner) }
    }

    /// The environment Claude Code would start in, when it is not this process's.
    fn claude_code_env(&self) -> Option<&crate::claude_code::Environment> {
        self.inner.claude_code_env.as_ref()
    }

    /// The config file.
    pub fn config_file(&self) -> &ConfigFile {
        &self.inner.file
    }

    /// The running gateway these operations are bound to, if any.
    pub(crate) fn gateway(&self) -> Option<&Arc<Gateway>> {
        self.inner.gateway.as_ref()
    }

    /// The configuration as the file has it now (created with defaults when missing).
    pub async fn config(&self) -> Result<Config> {
        let file = self.inner.file.clone();
        blocking(move || Ok(file.load()?)).await
    }

    /// The secret store the config names (opened once, on first use; probing the keychain can take a second).
    pub async fn secrets(&self) -> Result<Arc<dyn SecretStore>> {
        self.inner
            .secrets
            .get_or_try_init(|| async {
                let file = self.inner.file.clone();
                blocking(move || {
                    let config = file.load()?;
                    Ok(crate::secrets::open_for_config(&config, &file.dir())?)
                })
                .await
            })
            .await
            .cloned()
    }

    /// Changes the config file under its lock (validated, written atomically), then, bound to a gateway, puts the
    /// change in force before returning.
    pub(crate) async fn update<T, F>(&self, change: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Config) -> Result<T> + Send + 'static,
    {
        let file = self.inner.file.clone();
        let out = blocking(move || {
            let mut refused: Option<Error> = None;
            let result = file.update(|config| match change(config) {
                Ok(value) => Ok(value),
                Err(e) => {
                    // The change itself was refused: the file is left as it was.
                    refused = Some(e);
                    Err(crate::config::ConfigError::Rejected(String::new()))
                }
            });
            match (result, refused) {
                (_, Some(e)) => Err(e),
                (Ok(value), None) => Ok(value),
                (Err(e), None) => Err(Error::from(e)),
            }
        })
        .await?;
        self.apply().await?;
        Ok(out)
    }

    /// Bound to a gateway: applies the config file as it is now. Offline: nothing to do.
    pub(crate) async fn apply(&self) -> Result<()> {
        if let Some(gateway) = self.gateway() {
            gateway.apply_file_now().await.map_err(|e| match e {
                crate::gateway::ReloadError::Config(c) => Error::from(c),
                crate::gateway::ReloadError::Secrets(s) => Error::from(s),
                crate::gateway::ReloadError::Upstream(u) => Error::invalid("upstream", u.to_string()),
            })?;
        }
        Ok(())
    }
}

/// Runs blocking work (config file, secret store) off the async runtime.
pub(crate) async fn blocking<T, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work).await.map_err(Error::task)?
}

pub(crate) use crate::clock::now_rfc3339;

/// Trims a name and refuses an empty one.
pub(crate) fn required_name(field: &str, name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::invalid(field, format!("`{field}` must not be empty")));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(field, format!("`{field}` must not contain control characters")));
    }
    Ok(name.to_string())
}
