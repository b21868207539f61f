//! Management operations behind the CLI (and later the admin API): accounts and client keys.
//!
//! Every change goes through [`ConfigFile::update`] (locked, validated, atomic), so a running server picks it up
//! by hot reload. Credentials go to the secret store *before* the account appears in the config, so a server never
//! sees an account it cannot load a key for.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::accounts::AccountView;
use crate::config::{Account, AccountKind, ClientKey, Config, ConfigError, ConfigFile};
use crate::secrets::keys::{hash_key, new_client_key};
use crate::secrets::{Secret, SecretError, SecretStore};

/// Why a management operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// Reading or writing the config failed, or the change is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The secret store failed.
    #[error("secret store: {0}")]
    Secrets(#[from] SecretError),
    /// No account or key by that id or name.
    #[error("{0}")]
    NotFound(String),
    /// The input is not acceptable.
    #[error("{0}")]
    Invalid(String),
}

/// What `add-api-key` needs.
#[derive(Debug)]
pub struct NewApiKeyAccount {
    /// The Anthropic API key.
    pub key: Secret,
    /// Unique name.
    pub name: String,
    /// Weight (≥ 1).
    pub weight: u32,
    /// Priority tier (lower is preferred).
    pub priority: u32,
    /// Model allowlist (empty: all).
    pub models: Vec<String>,
    /// Base URL override.
    pub base_url: Option<String>,
}

/// Management operations on one config file.
#[derive(Debug)]
pub struct Manager {
    file: ConfigFile,
    secrets: OnceLock<Arc<dyn SecretStore>>,
}

fn now() -> String {
    OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default()
}

fn new_account_id() -> String {
    format!("acc_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

impl Manager {
    /// Operations on the config file at `file`.
    pub fn new(file: ConfigFile) -> Self {
        Self { file, secrets: OnceLock::new() }
    }

    /// The config file.
    pub fn file(&self) -> &ConfigFile {
        &self.file
    }

    /// Loads the config (creating it with defaults when missing).
    pub fn config(&self) -> Result<Config, ManageError> {
        Ok(self.file.load()?)
    }

    /// The secret store the config names (opened once, on first use).
    pub fn secrets(&self) -> Result<Arc<dyn SecretStore>, ManageError> {
        if let Some(store) = self.secrets.get() {
            return Ok(store.clone());
        }
        let config = self.config()?;
        let store = crate::secrets::open_for_config(&config, &self.file.dir())?;
        Ok(self.secrets.get_or_init(|| store).clone())
    }

    /// Adds an API-key account; returns it.
    pub fn add_api_key(&self, new: NewApiKeyAccount) -> Result<Account, ManageError> {
        let key = new.key.expose().trim();
        if key.is_empty() || key.chars().any(char::is_whitespace) || !key.is_ascii() {
            return Err(ManageError::Invalid("--key must be a non-empty API key without spaces".into()));
        }
        if new.name.trim().is_empty() {
            return Err(ManageError::Invalid("--name must not be empty".into()));
        }
        if new.weight == 0 {
            return Err(ManageError::Invalid("--weight must be at least 1".into()));
        }
        let config = self.config()?;
        if config.accounts.iter().any(|a| a.name == new.name) {
            return Err(ManageError::Invalid(format!("an account named `{}` already exists", new.name)));
        }
        let account = Account {
            id: new_account_id(),
            name: new.name.trim().to_string(),
            kind: AccountKind::ApiKey,
            enabled: true,
            weight: new.weight,
            priority: new.priority,
            models: new.models,
            base_url: new.base_url.map(|u| u.trim_end_matches('/').to_string()),
            email: None,
            organization: None,
            oauth_client_id: None,
            clients: None,
            updated_at: now(),
        };
        let secrets = self.secrets()?;
        secrets.set(&account.secret_id(), &Secret::new(key))?;
        let account_secret_id = Some(account.secret_id());
        self.insert_account(account, secrets.as_ref(), account_secret_id)
    }

    /// Appends `account` to the config (refusing a duplicate name); on failure deletes the secret stored for it
    /// under `stored_secret`, so no orphaned credential is left behind.
    fn insert_account(
        &self,
        account: Account,
        secrets: &dyn SecretStore,
        stored_secret: Option<String>,
    ) -> Result<Account, ManageError> {
        let added = account.clone();
        let result = self.file.update(move |config| {
            if config.accounts.iter().any(|a| a.name == added.name) {
                return Err(ConfigError::Rejected(format!("an account named `{}` already exists", added.name)));
            }
            config.accounts.push(added);
            Ok(())
        });
        if let Err(e) = result {
            if let Some(id) = stored_secret {
                let _ = secrets.delete(&id);
            }
            return Err(e.into());
        }
        Ok(account)
    }

    fn find<'c>(config: &'c Config, id_or_name: &str) -> Result<&'c Account, ManageError> {
        config
            .accounts
            .iter()
            .find(|a| a.id == id_or_name)
            .or_else(|| config.accounts.iter().find(|a| a.name == id_or_name))
            .ok_or_else(|| ManageError::NotFound(format!("no account with id or name `{id_or_name}`")))
    }

    /// Removes an account and its credential; returns it.
    pub fn remove_account(&self, id_or_name: &str) -> Result<Account, ManageError> {
        let config = self.config()?;
        let account = Self::find(&config, id_or_name)?.clone();
        let id = account.id.clone();
        self.file.update(move |config| {
            config.accounts.retain(|a| a.id != id);
            Ok(())
        })?;
        // The config no longer names it, so the credentials are unreachable: delete them (best effort, reported).
        let secrets = self.secrets()?;
        let mut deleted = secrets.delete(&account.secret_id()).map_err(|e| e.to_string());
        if account.kind == AccountKind::Oauth {
            let _ = secrets.delete(&account.client_secret_id());
            if let Err(e) = crate::upstream::oauth::delete_account_tokens(secrets.as_ref(), &account.id) {
                deleted = Err(e.to_string());
            }
        }
        if let Err(e) = deleted {
            tracing::warn!("account removed, but its credential could not be deleted from the secret store: {e}");
        }
        Ok(account)
    }

    /// Enables or disables an account; enabling also clears a credential error so the account is tried again.
    pub fn set_enabled(&self, id_or_name: &str, enabled: bool) -> Result<Account, ManageError> {
        let config = self.config()?;
        let id = Self::find(&config, id_or_name)?.id.clone();
        Ok(self.file.update(move |config| {
            let account = config
                .accounts
                .iter_mut()
                .find(|a| a.id == id)
                .ok_or_else(|| ConfigError::Rejected(format!("account `{id}` was removed meanwhile")))?;
            account.enabled = enabled;
            account.updated_at = now();
            Ok(account.clone())
        })?)
    }

    /// Accounts as configured, with whether the secret store holds each credential.
    pub fn account_views(&self) -> Result<Vec<AccountView>, ManageError> {
        let config = self.config()?;
        let secrets = self.secrets().ok();
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
    }

    /// Creates a gateway key; returns the key itself (shown once; only its hash is stored).
    pub fn add_client_key(&self, name: &str) -> Result<String, ManageError> {
        let name = name.trim().to_string();
        if name.is_empty() {
            return Err(ManageError::Invalid("--name must not be empty".into()));
        }
        let key = new_client_key();
        let entry = ClientKey {
            name: name.clone(),
            sha256: hex::encode(hash_key(&key)),
            prefix: key.chars().take(10).collect(),
            created_at: now(),
            purpose: None,
            loopback_only: false,
            ..Default::default()
        };
        self.file.update(move |config| {
            if config.client_keys.iter().any(|k| k.name == name) {
                return Err(ConfigError::Rejected(format!("a client key named `{name}` already exists")));
            }
            config.client_keys.push(entry);
            Ok(())
        })?;
        Ok(key)
    }

    /// The gateway keys (names, prefixes, dates; never the keys).
    pub fn client_keys(&self) -> Result<Vec<ClientKey>, ManageError> {
        Ok(self.config()?.client_keys)
    }

    /// Removes a gateway key by name.
    pub fn remove_client_key(&self, name: &str) -> Result<(), ManageError> {
        let name = name.to_string();
        self.file.update(move |config| {
            let before = config.client_keys.len();
            config.client_keys.retain(|k| k.name != name);
            if config.client_keys.len() == before {
                return Err(ConfigError::Rejected(format!("no client key named `{name}`")));
            }
            Ok(())
        })?;
        Ok(())
    }
}

impl Manager {
    /// Probes every account upstream with a cheap authenticated call (`health-check`).
    pub async fn health_check(&self) -> Result<Vec<crate::upstream::probe::ProbeResult>, ManageError> {
        let mut config = self.config()?;
        crate::config::env_overrides(&mut config);
        let secrets = self.secrets()?;
        let client =
            crate::upstream::UpstreamClient::new(&config.upstream).map_err(|e| ManageError::Invalid(e.to_string()))?;
        let tokens = crate::upstream::oauth::TokenManager::new(secrets.clone(), client.http().clone());
        let mut probes = Vec::new();
        for account in &config.accounts {
            let stored = secrets.get(&account.secret_id())?;
            let live = crate::accounts::LiveAccount::new(account.clone(), &config.upstream.base_url, stored);
            let client = client.clone();
            let tokens = &tokens;
            let settings = self.oauth_settings(&config, account)?;
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

    /// The status report: from the running server when one answers, else from the config.
    pub async fn status(&self) -> Result<crate::gateway::StatusReport, ManageError> {
        if let Some(report) = self.ask_server().await {
            return Ok(report);
        }
        let mut config = self.config()?;
        crate::config::env_overrides(&mut config);
        let accounts = self.account_views()?;
        Ok(crate::gateway::StatusReport {
            source: crate::gateway::ReportSource::Config,
            version: env!("CARGO_PKG_VERSION").into(),
            listen: config.server.listen.clone(),
            uptime_secs: None,
            strategy: config.routing.strategy,
            secrets_backend: self.secrets().ok().map(|s| match s.backend() {
                crate::secrets::BackendKind::Keychain => "keychain".to_string(),
                crate::secrets::BackendKind::File => "file".to_string(),
            }),
            client_keys: config.client_keys.iter().filter(|k| k.is_general()).count(),
            accounts,
            config: None,
        })
    }

    /// After a command changed the config file: waits up to `within` for a running server (found through
    /// `runtime.json`) to have the file's current contents in force. A server applies a change within about
    /// a second, or keeps retrying one that failed (a keychain timeout) and reports why.
    pub async fn wait_until_applied(&self, within: Duration) -> ServerSync {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Ok(Some(report)) = tokio::time::timeout(remaining.max(SERVER_POLL), self.ask_server()).await else {
                return ServerSync::NoServer;
            };
            // A server that does not report its config version cannot say; nothing to warn about.
            let Some(sync) = report.config else { return ServerSync::NoServer };
            let Ok(bytes) = tokio::fs::read(self.file.path()).await else { return ServerSync::NoServer };
            let current = crate::config::watch::text_sha256(&bytes);
            if sync.applied_sha256 == current {
                return ServerSync::Applied;
            }
            if tokio::time::Instant::now() >= deadline {
                let reason = sync.pending.filter(|p| p.sha256 == current).and_then(|p| p.error);
                return ServerSync::NotApplied { reason };
            }
            tokio::time::sleep(SERVER_POLL).await;
        }
    }

    /// Asks a running server (found through `runtime.json`) for its status.
    async fn ask_server(&self) -> Option<crate::gateway::StatusReport> {
        let path = crate::config::runtime_info_path(&self.file);
        let text = tokio::fs::read(&path).await.ok()?;
        let info: crate::config::RuntimeInfo = serde_json::from_slice(&text).ok()?;
        let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(3)).build().ok()?;
        let response =
            client.get(format!("{}/admin/api/status", info.url)).bearer_auth(&info.admin_token).send().await.ok()?;
        if !response.status().is_success() {
            tracing::debug!(status = %response.status(), "running server refused the status request");
            return None;
        }
        response.json().await.ok()
    }
}

/// How often [`Manager::wait_until_applied`] asks the server.
const SERVER_POLL: Duration = Duration::from_millis(100);

/// Whether a running server has the config file's current contents in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerSync {
    /// No server runs for this config file (or it did not answer, or cannot tell).
    NoServer,
    /// The running server has applied the file as it is now.
    Applied,
    /// The running server has not applied the file as it is now (yet).
    NotApplied {
        /// Why, when the server reported it (e.g. the secret store failed while reloading an account).
        reason: Option<String>,
    },
}

/// What `add-oauth` needs.
#[derive(Debug)]
pub struct NewOAuthAccount {
    /// Unique name.
    pub name: String,
    /// Overrides `oauth.client_id`.
    pub client_id: Option<String>,
    /// The OAuth client's secret, if it has one (stored in the secret store).
    pub client_secret: Option<Secret>,
    /// Weight (≥ 1).
    pub weight: u32,
    /// Priority tier (lower is preferred).
    pub priority: u32,
    /// Model allowlist (empty: all).
    pub models: Vec<String>,
}

impl Manager {
    /// The OAuth settings for `account` (global `oauth:` plus the account's client id and secret).
    pub fn oauth_settings(
        &self,
        config: &Config,
        account: &Account,
    ) -> Result<crate::upstream::oauth::OAuthSettings, ManageError> {
        let secret = match account.kind {
            AccountKind::Oauth => self.secrets()?.get(&account.client_secret_id())?,
            AccountKind::ApiKey => None,
        };
        Ok(crate::upstream::oauth::settings_for(&config.oauth, Some(account), secret))
    }

    /// Adds an OAuth (Claude Pro/Max) account, not yet logged in; returns it.
    pub fn add_oauth(&self, new: NewOAuthAccount) -> Result<Account, ManageError> {
        if new.name.trim().is_empty() {
            return Err(ManageError::Invalid("--name must not be empty".into()));
        }
        if new.weight == 0 {
            return Err(ManageError::Invalid("--weight must be at least 1".into()));
        }
        let account = Account {
            id: new_account_id(),
            name: new.name.trim().to_string(),
            kind: AccountKind::Oauth,
            enabled: true,
            weight: new.weight,
            priority: new.priority,
            models: new.models,
            base_url: None,
            email: None,
            organization: None,
            oauth_client_id: new.client_id.filter(|c| !c.trim().is_empty()),
            clients: None,
            updated_at: now(),
        };
        let secrets = self.secrets()?;
        if let Some(secret) = &new.client_secret {
            secrets.set(&account.client_secret_id(), secret)?;
        }
        let stored = new.client_secret.as_ref().map(|_| account.client_secret_id());
        self.insert_account(account, secrets.as_ref(), stored)
    }

    fn oauth_account(&self, id_or_name: &str) -> Result<(Config, Account), ManageError> {
        let config = self.config()?;
        let account = Self::find(&config, id_or_name)?.clone();
        if account.kind != AccountKind::Oauth {
            return Err(ManageError::Invalid(format!(
                "account `{}` is an API-key account; OAuth login applies to accounts added with add-oauth",
                account.name
            )));
        }
        Ok((config, account))
    }

    /// Starts a login: stores a pending PKCE login (valid 10 minutes) and returns the authorize URL. The
    /// login's state hash is recorded in the pending-login index beside the config, so a running server can
    /// complete it through its loopback callback.
    pub fn oauth_start(&self, id_or_name: &str) -> Result<String, ManageError> {
        let (config, account) = self.oauth_account(id_or_name)?;
        let settings = self.oauth_settings(&config, &account)?;
        let started = crate::upstream::oauth::begin_login(self.secrets()?.as_ref(), &settings, &account.id)
            .map_err(|e| ManageError::Invalid(e.to_string()))?;
        if let Err(e) = crate::upstream::oauth::record_pending(&self.file.dir(), &started.pending) {
            tracing::warn!(
                "a running gateway's loopback callback will not recognise this login ({e}); paste the code instead"
            );
        }
        Ok(started.url)
    }

    /// Completes a login from `code#state`, the callback URL, or a deep link, and records the account's email and
    /// organisation in the config (which also makes a running server reload the account with its new tokens).
    pub async fn oauth_complete(
        &self,
        id_or_name: Option<&str>,
        input: &str,
        http: &reqwest::Client,
    ) -> Result<crate::upstream::oauth::LoginOutcome, ManageError> {
        let config = self.config()?;
        let settings = match id_or_name {
            Some(id) => {
                let (_, account) = self.oauth_account(id)?;
                self.oauth_settings(&config, &account)?
            }
            None => crate::upstream::oauth::settings_for(&config.oauth, None, None),
        };
        let account_id = match id_or_name {
            Some(id) => Some(self.oauth_account(id)?.1.id),
            None => None,
        };
        let outcome =
            crate::upstream::oauth::complete_login(self.secrets()?, http, &settings, account_id.as_deref(), input)
                .await
                .map_err(|e| ManageError::Invalid(e.to_string()))?;
        if let Ok((_, Some(state))) = crate::upstream::oauth::parse_callback_input(input) {
            let hash = crate::upstream::oauth::state_hash(&state);
            if let Err(e) = crate::upstream::oauth::forget_pending(&self.file.dir(), &hash) {
                tracing::debug!("completed login left in the pending-login index: {e}");
            }
        }
        let (id, email, organization) =
            (outcome.account_id.clone(), outcome.email.clone(), outcome.organization.clone());
        self.file.update(move |config| {
            if let Some(account) = config.accounts.iter_mut().find(|a| a.id == id) {
                account.email = email;
                account.organization = organization;
                account.updated_at = now();
            }
            Ok(())
        })?;
        Ok(outcome)
    }
}
