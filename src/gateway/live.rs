//! The snapshot a request reads ([`Live`]) and how the account list is built from a config.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::accounts::{AccountList, HealthPolicy, LiveAccount, StateSignal};
use crate::clock::secs_to_ms;
use crate::config::Config;
use crate::router::schedule;
use crate::secrets::keys::ClientKeySet;
use crate::secrets::{SecretError, SecretStore};
use crate::transform::openai::default_aliases;
use crate::upstream::UpstreamClient;

/// Everything a request needs that can change on reload, swapped atomically as one snapshot.
#[derive(Debug)]
pub struct Live {
    /// The configuration in force (env overrides applied).
    pub config: Config,
    /// The accounts in force.
    pub accounts: AccountList,
    /// The gateway keys (hashes and scopes).
    pub client_keys: ClientKeySet,
    /// The pooled upstream client.
    pub upstream: UpstreamClient,
    /// Smooth weighted round-robin order over `accounts`.
    pub schedule: Vec<u32>,
    /// Cooldown and circuit-breaker settings.
    pub policy: HealthPolicy,
    /// OpenAI model names → Claude models: the built-in aliases with `models.aliases` on top (built once per
    /// config, not per request).
    pub model_aliases: BTreeMap<String, String>,
}

impl Live {
    pub(crate) fn new(
        config: Config,
        accounts: AccountList,
        client_keys: ClientKeySet,
        upstream: UpstreamClient,
    ) -> Self {
        let weights: Vec<u32> = accounts.iter().map(|a| a.config.weight).collect();
        let r = &config.routing;
        let policy = HealthPolicy {
            overloaded_cooldown_ms: secs_to_ms(r.overloaded_cooldown_secs),
            breaker_threshold: r.breaker_threshold,
            breaker_base_ms: secs_to_ms(r.breaker_backoff_secs),
            breaker_max_ms: secs_to_ms(r.breaker_max_backoff_secs),
        };
        let mut model_aliases = default_aliases();
        model_aliases.extend(config.models.aliases.iter().map(|(k, v)| (k.clone(), v.clone())));
        Self {
            schedule: schedule::smooth_weighted(&weights),
            policy,
            model_aliases,
            config,
            accounts,
            client_keys,
            upstream,
        }
    }
}

/// Builds the live account list, reusing unchanged accounts from `previous`; new ones report possible state
/// changes to `signal`.
pub(crate) async fn load_accounts(
    config: &Config,
    previous: Option<&AccountList>,
    secrets: Arc<dyn SecretStore>,
    signal: &StateSignal,
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
        let live = LiveAccount::new(account.clone(), &config.upstream.base_url, credential);
        out.push(Arc::new(live.with_signal(signal.clone())));
    }
    Ok(out)
}

fn effective_base(account: &crate::config::Account, config: &Config) -> String {
    account.base_url.as_deref().unwrap_or(&config.upstream.base_url).trim_end_matches('/').to_string()
}
