//! OAuth logins the running gateway starts and completes (admin API, loopback callback, the desktop app's deep
//! link): each with the OAuth settings of the account it is for, callbacks matched from memory, and the login in
//! force before the answer goes back.

use std::sync::Arc;

use super::{EventKind, Gateway, Live};
use crate::accounts::LiveAccount;
use crate::config::{Account, AccountKind, Config};
use crate::upstream::oauth::{self, CompletedLogin, LoginOutcome, OAuthError, OAuthSettings};

fn task_failed(e: tokio::task::JoinError) -> OAuthError {
    OAuthError::Internal(format!("secret store task failed: {e}"))
}

impl Gateway {
    /// Starts an OAuth login for an account (admin API, desktop app) and returns the authorize URL. The login's
    /// state is registered in memory, and in the pending-login index beside the config (so a restarted server
    /// still finds it), so its callback is matched without the secret store.
    ///
    /// `redirect_uri` overrides the configured `oauth.redirect_uri` (the admin API passes this gateway's own
    /// loopback callback, `http://localhost:PORT/callback`, so the login completes by itself).
    pub async fn start_oauth_login(
        &self,
        account_id: &str,
        redirect_uri: Option<String>,
    ) -> Result<oauth::StartedLogin, OAuthError> {
        let live = self.live();
        let account = live
            .accounts
            .iter()
            .find(|a| (a.id() == account_id || a.name() == account_id) && a.kind() == AccountKind::Oauth)
            .ok_or_else(|| OAuthError::InvalidInput(format!("no OAuth account `{account_id}`")))?;
        let mut settings = self.oauth_settings(&live.config, Some(&account.config));
        if let Some(redirect_uri) = redirect_uri {
            settings.redirect_uri = redirect_uri;
        }
        let (store, id, dir) = (self.secrets.clone(), account.id().to_string(), self.file.dir());
        let started = tokio::task::spawn_blocking(move || {
            let started = oauth::begin_login(store.as_ref(), &settings, &id)?;
            if let Err(e) = oauth::record_pending(&dir, &started.pending) {
                tracing::warn!(account_id = %id, "login started, but not recorded for other processes: {e}");
            }
            Ok::<_, OAuthError>(started)
        })
        .await
        .map_err(task_failed)??;
        self.pending.insert(started.pending.clone());
        self.publish(|| EventKind::LoginStarted { account_id: account.id().to_string() });
        Ok(started)
    }

    /// Completes an OAuth login delivered to the loopback callback, the admin API or the desktop app's deep
    /// link (`code#state`, a callback URL, `llm-gateway://oauth/callback?…`).
    ///
    /// The state is matched against the pending logins in memory first: one that matches none is refused
    /// without any secret-store I/O. The code is exchanged with the OAuth settings of the account the login is
    /// for (its own client id and secret). When this returns `Ok`, the login is in force: the next request
    /// uses the new tokens, and the account's email and organisation are saved to the config.
    ///
    /// With `expected_account`, a login in progress for another account is refused (the admin API's
    /// `/accounts/{id}/login/complete`). Subscribers get `login_completed` (and, from the monitor, the account's
    /// new state) or `login_failed`.
    pub async fn complete_oauth_login(
        &self,
        input: &str,
        expected_account: Option<&str>,
    ) -> Result<LoginOutcome, OAuthError> {
        let mut account = None;
        let result = self.complete_login(input, expected_account, &mut account).await;
        match &result {
            Ok(outcome) => self.publish(|| EventKind::LoginCompleted {
                account_id: outcome.account_id.clone(),
                email: outcome.email.clone(),
            }),
            Err(e) => self.publish(|| EventKind::LoginFailed { account_id: account, message: e.to_string() }),
        }
        result
    }

    /// [`Gateway::complete_oauth_login`]; sets `account` as soon as the login's account is known.
    async fn complete_login(
        &self,
        input: &str,
        expected_account: Option<&str>,
        account: &mut Option<String>,
    ) -> Result<LoginOutcome, OAuthError> {
        let (code, state) = oauth::parse_callback_input(input)?;
        let state = state.ok_or(OAuthError::MissingState)?;
        let Some(account_id) = self.pending.account_for(&state, oauth::unix_now()).await else {
            tracing::warn!("OAuth callback refused: its state matches no login in progress");
            return Err(OAuthError::NoPendingLogin { account_id: expected_account.map(str::to_string) });
        };
        if let Some(expected) = expected_account
            && expected != account_id
        {
            return Err(OAuthError::NoPendingLogin { account_id: Some(expected.to_string()) });
        }
        *account = Some(account_id.clone());
        let live = self.live();
        let account = live
            .accounts
            .iter()
            .find(|a| a.id() == account_id && a.kind() == AccountKind::Oauth)
            .map(|a| a.config.clone())
            .ok_or_else(|| {
                OAuthError::Settings(format!("account {account_id} is not an OAuth account of this gateway"))
            })?;
        let login = oauth::checked_pending(&self.secrets, &account_id, &state).await?;
        let settings = self.login_settings(&live.config, &account).await?;
        let done =
            oauth::exchange_and_store(self.secrets.clone(), live.upstream.http(), &settings, &login, &code).await?;
        self.forget_pending(&state).await;
        let saved = self.save_login_facts(&done.outcome).await;
        self.apply_login(&done, saved).await;
        Ok(done.outcome)
    }

    /// The account's OAuth settings for a code exchange: its own client id, and its client secret from the
    /// secret store (read on a blocking thread).
    async fn login_settings(&self, config: &Config, account: &Account) -> Result<OAuthSettings, OAuthError> {
        let (store, id) = (self.secrets.clone(), account.client_secret_id());
        let secret = tokio::task::spawn_blocking(move || store.get(&id)).await.map_err(task_failed)??;
        Ok(oauth::settings_for(&config.oauth, Some(account), secret))
    }

    /// Forgets a completed login's state in memory at once, and in the index file in the background (that
    /// write syncs to disk; the answer need not wait for it).
    async fn forget_pending(&self, state: &str) {
        self.pending.remove(state).await;
        let (dir, hash) = (self.file.dir(), oauth::state_hash(state));
        tokio::task::spawn_blocking(move || {
            if let Err(e) = oauth::forget_pending(&dir, &hash) {
                tracing::debug!("completed login left in the pending-login index: {e}");
            }
        });
    }

    /// Records the login's email and organisation in the config; returns the account's saved entry.
    async fn save_login_facts(&self, outcome: &LoginOutcome) -> Option<Account> {
        let file = self.file.clone();
        let (id, email, organization) =
            (outcome.account_id.clone(), outcome.email.clone(), outcome.organization.clone());
        let saved = tokio::task::spawn_blocking(move || {
            file.update(move |config| {
                let Some(account) = config.accounts.iter_mut().find(|a| a.id == id) else { return Ok(None) };
                account.email = email;
                account.organization = organization;
                account.updated_at = crate::clock::now_rfc3339();
                Ok(Some(account.clone()))
            })
        })
        .await;
        match saved {
            Ok(Ok(account)) => account,
            Ok(Err(e)) => {
                tracing::warn!("login completed but the account's email could not be saved to the config: {e}");
                None
            }
            Err(e) => {
                tracing::warn!("login completed but the account's email could not be saved to the config: {e}");
                None
            }
        }
    }

    /// Puts a completed login in force: the token manager holds its tokens, and the live snapshot gets the
    /// account afresh with its credential (clearing a `needs_login` or credential error). With `saved`, the
    /// account's entry is the one just written to the config, so the reload that follows keeps this account
    /// as it is instead of reading its credential again.
    async fn apply_login(&self, done: &CompletedLogin, saved: Option<Account>) {
        let id = done.outcome.account_id.as_str();
        self.oauth.adopt_login(id, done);
        let credential = match done.credential() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(account_id = %id, "login stored, but not put in force until the next reload: {e}");
                return;
            }
        };
        // Serialised with reloads, so neither overwrites the other's snapshot with a stale one.
        let _serialised = self.reload_lock.lock().await;
        let old = self.live();
        let Some(index) = old.accounts.iter().position(|a| a.id() == id) else {
            tracing::info!(account_id = %id, "login completed for an account that was removed meanwhile");
            return;
        };
        let account = saved.unwrap_or_else(|| old.accounts[index].config.clone());
        let mut config = old.config.clone();
        if let Some(entry) = config.accounts.iter_mut().find(|a| a.id == id) {
            *entry = account.clone();
        }
        let mut accounts = old.accounts.clone();
        let fresh = LiveAccount::new(account, &config.upstream.base_url, Some(credential));
        accounts[index] = Arc::new(fresh.with_signal(self.signal.clone()));
        self.live.store(Arc::new(Live::new(config, accounts, old.client_keys.clone(), old.upstream.clone())));
        self.signal.notify();
        tracing::info!(account_id = %id, "OAuth login in force");
    }
}
