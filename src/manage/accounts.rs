//! Accounts: list, get, add (API key or OAuth), change, enable/disable, remove, probe.

use serde::{Deserialize, Serialize};

use super::{Error, Ops, Result, blocking, now_rfc3339, required_name};
use crate::accounts::{AccountView, LiveAccount};
use crate::config::{Account, AccountClients, AccountKind, Config};
use crate::secrets::Secret;
use crate::upstream::probe::ProbeResult;

/// A new API-key account (`add-api-key`, `POST /accounts {"kind":"api_key"}`).
#[derive(Debug, Clone)]
pub struct NewApiKeyAccount {
    /// The Anthropic API key; stored in the secret store only.
    pub key: Secret,
    /// Unique name.
    pub name: String,
    /// Weight under the `weighted` strategy (≥ 1).
    pub weight: u32,
    /// Priority tier (lower is preferred).
    pub priority: u32,
    /// Models it serves (exact names or `prefix*`); empty: all.
    pub models: Vec<String>,
    /// Base URL override.
    pub base_url: Option<String>,
}

/// A new OAuth (Claude Pro/Max) account, not logged in yet (`add-oauth`, `POST /accounts {"kind":"oauth"}`).
#[derive(Debug, Clone, Default)]
pub struct NewOAuthAccount {
    /// Unique name.
    pub name: String,
    /// Overrides `oauth.client_id`.
    pub client_id: Option<String>,
    /// The OAuth client's secret, if it has one (stored in the secret store).
    pub client_secret: Option<Secret>,
    /// Weight (≥ 1).
    pub weight: u32,
    /// Priority tier.
    pub priority: u32,
    /// Models it serves; empty: all.
    pub models: Vec<String>,
    /// Which clients it serves (default: Claude Code only).
    pub clients: Option<AccountClients>,
}

/// A change to an account: only the fields that are `Some` change. `base_url: Some(None)` removes the override.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    /// New unique name.
    #[serde(default)]
    pub name: Option<String>,
    /// New weight (≥ 1).
    #[serde(default)]
    pub weight: Option<u32>,
    /// New priority tier.
    #[serde(default)]
    pub priority: Option<u32>,
    /// New model list (empty: all).
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// New base URL override; `null` removes it.
    #[serde(default, with = "double_option")]
    pub base_url: Option<Option<String>>,
    /// Which clients an OAuth account serves.
    #[serde(default)]
    pub clients: Option<AccountClients>,
}

/// `Option<Option<T>>` for a JSON merge patch: absent → `None`, `null` → `Some(None)`.
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, T: Serialize>(value: &Option<Option<T>>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

fn new_account_id() -> String {
    format!("acc_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// The account named by `id_or_name` (id first, then name).
pub(crate) fn find<'c>(config: &'c Config, id_or_name: &str) -> Result<&'c Account> {
    config
        .accounts
        .iter()
        .find(|a| a.id == id_or_name)
        .or_else(|| config.accounts.iter().find(|a| a.name == id_or_name))
        .ok_or_else(|| Error::not_found(format!("no account with id or name `{id_or_name}`")))
}

fn check_weight(weight: u32) -> Result<()> {
    if weight == 0 {
        return Err(Error::invalid("weight", "`weight` must be at least 1"));
    }
    Ok(())
}

fn clean_models(models: Vec<String>) -> Vec<String> {
    models.into_iter().map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect()
}

fn check_base_url(url: &str) -> Result<String> {
    let url = url.trim().trim_end_matches('/');
    match url::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(url.to_string()),
        _ => Err(Error::invalid("base_url", format!("`base_url` must be an http(s) URL, not `{url}`"))),
    }
}

impl Ops {
    /// Every account with its state (live state when bound to a gateway; from the config and the secret store
    /// otherwise).
    pub async fn accounts(&self) -> Result<Vec<AccountView>> {
        if let Some(gateway) = self.gateway() {
            return Ok(gateway.status().await.accounts);
        }
        let config = self.config().await?;
        let secrets = self.secrets().await.ok();
        blocking(move || {
            let tokens =
                secrets.as_ref().map(|s| crate::upstream::oauth::TokenManager::new(s.clone(), reqwest::Client::new()));
            Ok(config
                .accounts
                .iter()
                .map(|a| {
                    let has = secrets.as_ref().map(|s| matches!(s.get(&a.secret_id()), Ok(Some(_))));
                    let mut view = AccountView::from_config(a, has);
                    if a.kind == AccountKind::Oauth
                        && let Some(tokens) = &tokens
                    {
                        crate::gateway::with_oauth(&mut view, &tokens.status_blocking(&a.id));
                    }
                    view
                })
                .collect())
        })
        .await
    }

    /// One account by id or name.
    pub async fn account(&self, id_or_name: &str) -> Result<AccountView> {
        let config = self.config().await?;
        let id = find(&config, id_or_name)?.id.clone();
        if let Some(view) = self.accounts().await?.into_iter().find(|a| a.id == id) {
            return Ok(view);
        }
        // In the file but not in force: another process (the CLI) just added it and the gateway's hot reload has
        // not run yet. Put the file in force now rather than answer that it does not exist.
        self.apply().await?;
        self.accounts()
            .await?
            .into_iter()
            .find(|a| a.id == id)
            .ok_or_else(|| Error::not_found(format!("no account with id or name `{id_or_name}`")))
    }

    /// Adds an API-key account; returns it.
    pub async fn add_api_key(&self, new: NewApiKeyAccount) -> Result<AccountView> {
        let key = new.key.expose().trim();
        if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) || !key.is_ascii() {
            return Err(Error::invalid("key", "`key` must be a non-empty API key without spaces"));
        }
        let name = required_name("name", &new.name)?;
        check_weight(new.weight)?;
        let base_url = new.base_url.as_deref().map(check_base_url).transpose()?;
        let account = Account {
            id: new_account_id(),
            name,
            kind: AccountKind::ApiKey,
            enabled: true,
            weight: new.weight,
            priority: new.priority,
            models: clean_models(new.models),
            base_url,
            email: None,
            organization: None,
            oauth_client_id: None,
            clients: None,
            updated_at: now_rfc3339(),
        };
        let secret = Secret::new(key);
        self.insert_account(account, vec![(String::new(), secret)]).await
    }

    /// Adds an OAuth (Claude Pro/Max) account, not yet logged in; returns it.
    pub async fn add_oauth(&self, new: NewOAuthAccount) -> Result<AccountView> {
        let name = required_name("name", &new.name)?;
        check_weight(new.weight)?;
        let account = Account {
            id: new_account_id(),
            name,
            kind: AccountKind::Oauth,
            enabled: true,
            weight: new.weight,
            priority: new.priority,
            models: clean_models(new.models),
            base_url: None,
            email: None,
            organization: None,
            oauth_client_id: new.client_id.map(|c| c.trim().to_string()).filter(|c| !c.is_empty()),
            clients: new.clients,
            updated_at: now_rfc3339(),
        };
        let secrets = match new.client_secret {
            Some(secret) if !secret.expose().trim().is_empty() => vec![(account.client_secret_id(), secret)],
            _ => Vec::new(),
        };
        self.insert_account(account, secrets).await
    }

    /// Stores `secrets` (an empty id means the account's own credential id), then appends the account to the
    /// config (refusing a duplicate name); on failure deletes what it stored, so no orphaned credential stays.
    async fn insert_account(&self, account: Account, secrets: Vec<(String, Secret)>) -> Result<AccountView> {
        let store = self.secrets().await?;
        let stored: Vec<String> =
            secrets.iter().map(|(id, _)| if id.is_empty() { account.secret_id() } else { id.clone() }).collect();
        let (writer, ids) = (store.clone(), stored.clone());
        blocking(move || {
            for (id, (_, secret)) in ids.iter().zip(&secrets) {
                writer.set(id, secret)?;
            }
            Ok(())
        })
        .await?;
        let added = account.clone();
        let result = self
            .update(move |config| {
                if config.accounts.iter().any(|a| a.name == added.name) {
                    return Err(Error::conflict("name", format!("an account named `{}` already exists", added.name)));
                }
                config.accounts.push(added);
                Ok(())
            })
            .await;
        if let Err(e) = result {
            let _ = blocking(move || {
                for id in &stored {
                    let _ = store.delete(id);
                }
                Ok(())
            })
            .await;
            return Err(e);
        }
        self.account(&account.id).await
    }

    /// Changes an account's name, weight, priority, models, base URL or clients; returns it.
    pub async fn update_account(&self, id_or_name: &str, patch: AccountPatch) -> Result<AccountView> {
        if patch == AccountPatch::default() {
            return Err(Error::invalid("body", "nothing to change: give at least one field"));
        }
        let name = patch.name.as_deref().map(|n| required_name("name", n)).transpose()?;
        if let Some(weight) = patch.weight {
            check_weight(weight)?;
        }
        let base_url = match &patch.base_url {
            Some(Some(url)) => Some(Some(check_base_url(url)?)),
            Some(None) => Some(None),
            None => None,
        };
        let key = id_or_name.to_string();
        let id = self
            .update(move |config| {
                let id = find(config, &key)?.id.clone();
                if let Some(name) = &name
                    && config.accounts.iter().any(|a| a.name == *name && a.id != id)
                {
                    return Err(Error::conflict("name", format!("an account named `{name}` already exists")));
                }
                let account = config.accounts.iter_mut().find(|a| a.id == id).ok_or_else(|| Error::not_found(&key))?;
                if patch.clients.is_some() && account.kind != AccountKind::Oauth {
                    return Err(Error::invalid("clients", "`clients` applies to subscription (OAuth) accounts only"));
                }
                if let Some(name) = name {
                    account.name = name;
                }
                if let Some(weight) = patch.weight {
                    account.weight = weight;
                }
                if let Some(priority) = patch.priority {
                    account.priority = priority;
                }
                if let Some(models) = patch.models {
                    account.models = clean_models(models);
                }
                if let Some(base_url) = base_url {
                    account.base_url = base_url;
                }
                if let Some(clients) = patch.clients {
                    account.clients = Some(clients);
                }
                account.updated_at = now_rfc3339();
                Ok(id)
            })
            .await?;
        self.account(&id).await
    }

    /// Enables or disables an account; enabling also clears a credential error so it is tried again.
    pub async fn set_account_enabled(&self, id_or_name: &str, enabled: bool) -> Result<AccountView> {
        let key = id_or_name.to_string();
        let id = self
            .update(move |config| {
                let id = find(config, &key)?.id.clone();
                if let Some(account) = config.accounts.iter_mut().find(|a| a.id == id) {
                    account.enabled = enabled;
                    account.updated_at = now_rfc3339();
                }
                Ok(id)
            })
            .await?;
        self.account(&id).await
    }

    /// Removes an account, then deletes its credentials from the secret store; returns what it was.
    pub async fn remove_account(&self, id_or_name: &str) -> Result<AccountView> {
        let view = self.account(id_or_name).await?;
        let id = view.id.clone();
        let removed = self
            .update(move |config| {
                let account = find(config, &id)?.clone();
                config.accounts.retain(|a| a.id != account.id);
                Ok(account)
            })
            .await?;
        if let Some(gateway) = self.gateway() {
            gateway.oauth().forget(&removed.id);
        }
        // The config no longer names it, so its credentials are unreachable: delete them (best effort, logged).
        let store = self.secrets().await?;
        blocking(move || {
            let mut deleted = store.delete(&removed.secret_id()).map_err(|e| e.to_string());
            if removed.kind == AccountKind::Oauth {
                let _ = store.delete(&removed.client_secret_id());
                if let Err(e) = crate::upstream::oauth::delete_account_tokens(store.as_ref(), &removed.id) {
                    deleted = Err(e.to_string());
                }
            }
            if let Err(e) = deleted {
                tracing::warn!("account removed, but its credential could not be deleted from the secret store: {e}");
            }
            Ok(())
        })
        .await?;
        Ok(view)
    }

    /// Probes one account upstream with a cheap authenticated call.
    pub async fn probe_account(&self, id_or_name: &str) -> Result<ProbeResult> {
        let config = self.config().await?;
        let account = find(&config, id_or_name)?.clone();
        let mut results = self.probe(config, vec![account]).await?;
        results.pop().ok_or_else(|| Error::internal("the probe returned nothing"))
    }

    /// Probes every account (`health-check`).
    pub async fn health_check(&self) -> Result<Vec<ProbeResult>> {
        let config = self.config().await?;
        let accounts = config.accounts.clone();
        self.probe(config, accounts).await
    }

    async fn probe(&self, mut config: Config, accounts: Vec<Account>) -> Result<Vec<ProbeResult>> {
        crate::config::env_overrides(&mut config);
        let store = self.secrets().await?;
        let client = crate::upstream::UpstreamClient::new(&config.upstream)
            .map_err(|e| Error::invalid("upstream", e.to_string()))?;
        // Bound to a gateway, its token manager holds the current tokens (and refreshes single-flight).
        let tokens = match self.gateway() {
            Some(gateway) => gateway.oauth().clone(),
            None => crate::upstream::oauth::TokenManager::new(store.clone(), client.http().clone()),
        };
        let mut probes = Vec::with_capacity(accounts.len());
        for account in accounts {
            let (reader, ids) = (store.clone(), (account.secret_id(), account.client_secret_id()));
            let (stored, client_secret) = blocking(move || {
                let stored = reader.get(&ids.0)?;
                let secret = reader.get(&ids.1)?;
                Ok((stored, secret))
            })
            .await?;
            let settings = crate::upstream::oauth::settings_for(&config.oauth, Some(&account), client_secret);
            let live = LiveAccount::new(account.clone(), &config.upstream.base_url, stored);
            let (client, tokens) = (client.clone(), tokens.clone());
            probes.push(async move {
                let credential = match account.kind {
                    AccountKind::ApiKey => live.credential.clone(),
                    AccountKind::Oauth if live.credential.is_some() => {
                        match tokens.access_token(&account.id, &settings).await {
                            Ok(token) => Some(token),
                            Err(e) => {
                                let mut r = crate::upstream::probe::probe(&client, &live, None).await;
                                r.detail = format!("OAuth: {e}");
                                return r;
                            }
                        }
                    }
                    AccountKind::Oauth => None,
                };
                crate::upstream::probe::probe(&client, &live, credential.as_ref()).await
            });
        }
        Ok(futures_util::future::join_all(probes).await)
    }
}
