//! Applying a new configuration to the running gateway (hot reload).

use std::sync::Arc;

use super::{EventKind, Gateway, Live, load_accounts};
use crate::accounts::LiveAccount;
use crate::config::{self, AccountKind, ClientKey, Config};
use crate::secrets::SecretError;
use crate::secrets::keys::ClientKeySet;
use crate::upstream::oauth::OAuthState;
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
        let _serialised = self.reload_lock.lock().await;
        let config = self.read_file().await?.ok_or_else(|| {
            crate::config::ConfigError::Rejected(
                "the configuration file is empty (being rewritten?); the current configuration stays in force".into(),
            )
        })?;
        self.apply_locked(config).await
    }

    /// Applies a new configuration: accounts whose config is unchanged keep their runtime state; new or changed
    /// ones get their credential from the secret store and fresh state. On an error nothing changes (the last
    /// good configuration stays in force) and the watcher tries again.
    ///
    /// `config` is the version the watcher read, before this call waited for the lock: a management operation
    /// may have written and applied a newer one meanwhile, which must stay. So the file as it is now, read under
    /// the lock (applies then happen in the file's order), is applied instead; `config` only when the file
    /// cannot be read as a valid configuration right now.
    pub(crate) async fn reload(self: &Arc<Self>, config: Config) -> Result<(), ReloadError> {
        let _serialised = self.reload_lock.lock().await;
        let config = match self.read_file().await {
            Ok(Some(current)) => current,
            Ok(None) | Err(_) => config,
        };
        self.apply_locked(config).await
    }

    /// The config file as it is now; `None` when it is empty (an editor's truncate-then-write caught half-way,
    /// which must not drop every account).
    async fn read_file(&self) -> Result<Option<Config>, crate::config::ConfigError> {
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            let text = match std::fs::read_to_string(file.path()) {
                Ok(text) => text,
                Err(source) => {
                    return Err(crate::config::ConfigError::Io {
                        action: "cannot read",
                        path: file.path().to_path_buf(),
                        source,
                    });
                }
            };
            if text.trim().is_empty() { Ok(None) } else { file.parse(&text).map(Some) }
        })
        .await
        .map_err(|e| crate::config::ConfigError::Serialize(format!("config read task failed: {e}")))?
    }

    /// [`Gateway::reload`]'s work, with the reload lock held by the caller.
    async fn apply_locked(self: &Arc<Self>, mut config: Config) -> Result<(), ReloadError> {
        config::env_overrides(&mut config);
        let old = self.live();
        if config.server.listen != old.config.server.listen {
            tracing::warn!("server.listen changed; restart the server to listen on {}", config.server.listen);
        }
        if config.secrets != old.config.secrets {
            tracing::warn!("secrets.backend changed; restart the server to use it");
        }
        let accounts = load_accounts(&config, Some(&old.accounts), self.secrets.clone(), &self.signal).await?;
        self.forget_stale_logins(&accounts, &old.accounts);
        let upstream = if config.upstream == old.config.upstream {
            old.upstream.clone()
        } else {
            UpstreamClient::new(&config.upstream)?
        };
        let client_keys = ClientKeySet::from_config(&config.client_keys);
        if client_keys.exposed_without_key(self.listen.ip().is_loopback()) {
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
        let (account_count, key_count) = (accounts.len(), client_keys.len());
        let (created, revoked) = key_changes(&old.config.client_keys, &config.client_keys);
        self.live.store(Arc::new(Live::new(config, accounts, client_keys, upstream)));
        // Accounts may have appeared, gone, been disabled or got a new credential: the monitor looks.
        self.signal.notify();
        self.publish(|| EventKind::ConfigReloaded { accounts: account_count, client_keys: key_count });
        for key in created {
            self.publish(|| EventKind::ClientKeyCreated { id: key.id(), name: key.name });
        }
        for key in revoked {
            self.publish(|| EventKind::ClientKeyRevoked { id: key.id(), name: key.name });
        }
        Ok(())
    }
}

/// The client keys in `new` but not in `old` (created), and those in `old` but not in `new` (revoked), told
/// apart by their hash: a key written to the file by the CLI in another process counts as created here too.
impl Gateway {
    /// An OAuth account the reload rebuilt (its config entry or its credential changed: another process, e.g.
    /// `llm-gateway oauth-callback`, may just have logged it in) whose token state this process had cached as "not
    /// logged in" or failed: that cache is dropped, so the next request or status reads the secret store again.
    fn forget_stale_logins(&self, accounts: &[Arc<LiveAccount>], old: &[Arc<LiveAccount>]) {
        for account in accounts {
            if account.kind() != AccountKind::Oauth || old.iter().any(|o| Arc::ptr_eq(o, account)) {
                continue;
            }
            let stale = self
                .oauth
                .cached_status(account.id())
                .is_some_and(|s| matches!(s.state, OAuthState::NeedsLogin { .. } | OAuthState::Error { .. }));
            if stale {
                tracing::debug!(account = %account.name(), "account changed on reload; its cached login state is re-read");
                self.oauth.forget(account.id());
            }
        }
    }
}

fn key_changes(old: &[ClientKey], new: &[ClientKey]) -> (Vec<ClientKey>, Vec<ClientKey>) {
    let missing_from = |from: &[ClientKey], keys: &[ClientKey]| {
        keys.iter().filter(|k| !from.iter().any(|f| f.sha256 == k.sha256)).cloned().collect()
    };
    (missing_from(old, new), missing_from(new, old))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, sha256: &str) -> ClientKey {
        ClientKey {
            name: name.into(),
            sha256: sha256.into(),
            prefix: String::new(),
            created_at: String::new(),
            ..ClientKey::default()
        }
    }

    #[test]
    fn key_changes_tell_created_and_revoked_keys_apart_by_hash() {
        let old = [key("ci", &"a".repeat(64)), key("laptop", &"b".repeat(64))];
        let new = [key("laptop-renamed", &"b".repeat(64)), key("phone", &"c".repeat(64))];
        let (created, revoked) = key_changes(&old, &new);
        assert_eq!(created.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["phone"]);
        assert_eq!(revoked.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["ci"]);
        assert_eq!(created[0].id(), "key_cccccccccccc");
        assert!(key_changes(&old, &old).0.is_empty() && key_changes(&old, &old).1.is_empty());
    }
}
