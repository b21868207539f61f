//! Finishing a login: pasted code, loopback callback or deep link, all through [`complete_login`].

use std::sync::Arc;

use serde::Serialize;

use super::login::{account_for_state, delete_pending, load_pending};
use super::record::{TokenRecord, blocking, save_record};
use super::{OAuthError, OAuthSettings, PendingLogin, exchange_code, parse_callback_input, token_secret_id, unix_now};
use crate::secrets::{Secret, SecretStore};

/// The public facts of a completed login (no tokens). `email` and `organization` belong in the account's
/// config entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoginOutcome {
    /// The account that is now logged in.
    pub account_id: String,
    /// `account.email_address` from the token response.
    pub email: Option<String>,
    /// The organisation's name (else uuid) from the token response.
    pub organization: Option<String>,
    /// Unix seconds when the access token expires.
    pub expires_at: i64,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// `account.uuid` from the token response.
    pub account_uuid: Option<String>,
}

/// Completes a login from what the user pasted (`code#state`, a callback URL) or what a loopback or deep-link
/// callback delivered.
///
/// Finds the pending login by `account_id`, or, when that is `None`, by the callback's state across pending
/// logins; checks the state (constant-time) and the 10-minute expiry; exchanges the code; stores the token
/// record (`account:<id>:oauth`, refresh token included, in one write) and only then deletes the pending
/// login. A gateway that already runs a [`super::TokenManager`] should call its `forget(account_id)` afterwards.
pub async fn complete_login(
    store: Arc<dyn SecretStore>,
    http: &reqwest::Client,
    settings: &OAuthSettings,
    account_id: Option<&str>,
    input: &str,
) -> Result<LoginOutcome, OAuthError> {
    complete_with(store, http, |_| Some(settings.clone()), account_id, input).await
}

/// Completes a login from the desktop app's deep link `llm-gateway://oauth/callback?code=…&state=…`: the
/// account is the one whose pending login has that state, and `settings_for` gives its OAuth settings.
pub async fn complete_from_deep_link(
    store: Arc<dyn SecretStore>,
    http: &reqwest::Client,
    settings_for: impl Fn(&str) -> Option<OAuthSettings>,
    url: &str,
) -> Result<LoginOutcome, OAuthError> {
    let trimmed = url.trim();
    if !trimmed.to_ascii_lowercase().starts_with("llm-gateway://") {
        return Err(OAuthError::InvalidInput(format!(
            "not an llm-gateway:// link (expected {})",
            super::DEEP_LINK_CALLBACK
        )));
    }
    complete_with(store, http, settings_for, None, trimmed).await
}

/// Removes an account's token record and any pending login (for `remove-account`). Blocking.
pub fn delete_account_tokens(store: &dyn SecretStore, account_id: &str) -> Result<(), OAuthError> {
    if let Some(login) = load_pending(store, account_id).ok().flatten() {
        delete_pending(store, &login)?;
    } else {
        store.delete(&super::pending_secret_id(account_id))?;
    }
    store.delete(&token_secret_id(account_id))?;
    Ok(())
}

async fn complete_with(
    store: Arc<dyn SecretStore>,
    http: &reqwest::Client,
    settings_for: impl Fn(&str) -> Option<OAuthSettings>,
    account_id: Option<&str>,
    input: &str,
) -> Result<LoginOutcome, OAuthError> {
    let (code, state) = parse_callback_input(input)?;
    let state = state.ok_or(OAuthError::MissingState)?;
    let login = find_pending(&store, account_id, &state).await?;
    check_login(&store, &login, &state).await?;
    let settings = settings_for(&login.account_id).ok_or_else(|| {
        OAuthError::Settings(format!("account {} is not an OAuth account of this gateway", login.account_id))
    })?;
    Ok(exchange_and_store(store, http, &settings, &login, &code).await?.outcome)
}

/// A login that has just completed: what to show, and the tokens a running gateway puts to use at once
/// ([`super::TokenManager::adopt_login`]) instead of reading them back from the secret store.
#[derive(Debug, Clone)]
pub struct CompletedLogin {
    /// The public facts of the login.
    pub outcome: LoginOutcome,
    pub(crate) record: TokenRecord,
}

impl CompletedLogin {
    /// The stored form of the tokens (what the secret store now holds under `account:<id>:oauth`).
    pub fn credential(&self) -> Result<Secret, OAuthError> {
        self.record.to_secret()
    }
}

/// The pending login of `account_id`, checked against a callback's `state` (constant-time) and its 10-minute
/// expiry; an expired one is removed.
pub async fn checked_pending(
    store: &Arc<dyn SecretStore>,
    account_id: &str,
    state: &str,
) -> Result<PendingLogin, OAuthError> {
    let login = find_pending(store, Some(account_id), state).await?;
    check_login(store, &login, state).await?;
    Ok(login)
}

async fn check_login(store: &Arc<dyn SecretStore>, login: &PendingLogin, state: &str) -> Result<(), OAuthError> {
    let Err(e) = login.check(state, unix_now()) else { return Ok(()) };
    if matches!(e, OAuthError::LoginExpired { .. }) {
        let (s, l) = (store.clone(), login.clone());
        if let Err(d) = blocking(move || delete_pending(s.as_ref(), &l)).await {
            tracing::debug!(account_id = %login.account_id, error = %d, "could not remove an expired login");
        }
    }
    tracing::warn!(account_id = %login.account_id, error = %e, "OAuth callback rejected");
    Err(e)
}

/// Exchanges `code` for the tokens of a checked pending login, stores the token record (`account:<id>:oauth`,
/// refresh token included, in one write) and only then deletes the pending login.
pub async fn exchange_and_store(
    store: Arc<dyn SecretStore>,
    http: &reqwest::Client,
    settings: &OAuthSettings,
    login: &PendingLogin,
    code: &str,
) -> Result<CompletedLogin, OAuthError> {
    let set = exchange_code(http, settings, code, login).await?;
    let record = TokenRecord {
        access_token: set.access_token.clone(),
        refresh_token: set.refresh_token.clone(),
        expires_at: set.expires_at,
        scopes: set.scopes.clone(),
        last_refresh: Some(unix_now()),
    };
    let (s, l, r) = (store.clone(), login.clone(), record.clone());
    blocking(move || {
        // One write holds the refresh token and the access token; the pending login goes only after it.
        save_record(s.as_ref(), &l.account_id, &r)?;
        if let Err(e) = delete_pending(s.as_ref(), &l) {
            tracing::warn!(account_id = %l.account_id, error = %e, "tokens stored, but the pending login could not be removed");
        }
        Ok(())
    })
    .await?;
    tracing::info!(account_id = %login.account_id, expires_at = set.expires_at, "OAuth login completed");
    let outcome = LoginOutcome {
        account_id: login.account_id.clone(),
        email: set.email,
        organization: set.organization,
        expires_at: set.expires_at,
        scopes: set.scopes,
        account_uuid: set.account_uuid,
    };
    Ok(CompletedLogin { outcome, record })
}

/// The pending login for `account_id`, or for `state` when no account is named.
async fn find_pending(
    store: &Arc<dyn SecretStore>,
    account_id: Option<&str>,
    state: &str,
) -> Result<PendingLogin, OAuthError> {
    let (s, account, st) = (store.clone(), account_id.map(str::to_string), state.to_string());
    let found = blocking(move || {
        let account = match account {
            Some(a) => Some(a),
            None => account_for_state(s.as_ref(), &st)?,
        };
        match account {
            Some(a) => load_pending(s.as_ref(), &a),
            None => Ok(None),
        }
    })
    .await?;
    found.ok_or_else(|| OAuthError::NoPendingLogin { account_id: account_id.map(str::to_string) })
}
