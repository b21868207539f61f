//! Applying a new configuration to the running gateway (hot reload).

use std::sync::Arc;

use super::{Gateway, Live, load_accounts};
use crate::config::{self, Config};
use crate::secrets::SecretError;
use crate::secrets::keys::ClientKeySet;
use crate::upstream::{UpstreamClient, UpstreamError};

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
    /// The config file could not be read or is not valid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

impl Gateway {
    /// Reads the config file and applies it now: a management operation that has just written it answers only
    /// once its change is in force. (The file watcher sees the same version soon after and applies it again,
    /// which keeps every unchanged account as it is.)
    pub(crate) async fn apply_file_now(self: &Arc<Self>) -> Result<(), ReloadError> {
        let file = self.file.clone();
        let config = tokio::task::spawn_blocking(move || file.load())
            .await
            .map_err(|e| crate::config::ConfigError::Serialize(format!("config read task failed: {e}")))??;
        self.reload(config).await
    }

    /// Applies a new configuration: accounts whose config is unchanged keep their runtime state; new or changed
    /// ones get their credential from the secret store and fresh state. On an error nothing changes (the last
    /// good configuration stays in force) and the watcher tries again.
    pub(crate) async fn reload(self: &Arc<Self>, mut config: Config) -> Result<(), ReloadError> {
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
        let client_keys = ClientKeySet::from_config(&config.client_keys);
        if !self.listen.ip().is_loopback() && client_keys.general() == 0 {
            tracing::warn!("all client keys were removed: every API request is refused until one is added");
        }
        self.usage.set_prices(&config.usage);
        let without_prices =
            |u: &crate::config::UsageConfig| crate::config::UsageConfig { prices: Default::default(), ..u.clone() };
        if without_prices(&config.usage) != without_prices(&old.config.usage) {
            tracing::warn!("usage settings other than prices changed; restart the server to use them");
        }
        self.key_rates.retain(|name| config.client_keys.iter().any(|k| k.name == name && k.rpm.is_some()));
        tracing::info!(accounts = accounts.len(), client_keys = client_keys.len(), "configuration applied");
        self.live.store(Arc::new(Live::new(config, accounts, client_keys, upstream)));
        Ok(())
    }
}
