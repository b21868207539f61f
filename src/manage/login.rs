//! OAuth logins: start one (the authorize URL to open) and complete one with what the page showed.

use serde::{Deserialize, Serialize};

use super::accounts::find;
use super::{Error, Ops, Result, blocking, now_rfc3339};
use crate::config::{Account, AccountKind, Config};
use crate::upstream::oauth::{self, LoginOutcome, OAuthSettings};

/// Where the authorize page sends the browser back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginRedirect {
    /// To this gateway's own `/callback` on its loopback address: the login completes by itself.
    Loopback,
    /// To `oauth.redirect_uri` (the page that shows a `code#state` to paste).
    Manual,
}

/// A login in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginStart {
    /// The authorize URL to open in a browser.
    pub url: String,
    /// Where the page sends the browser back.
    pub redirect_uri: String,
    /// When the login stops being accepted (RFC 3339).
    pub expires_at: String,
}

fn oauth_account(config: &Config, id_or_name: &str) -> Result<Account> {
    let account = find(config, id_or_name)?.clone();
    if account.kind != AccountKind::Oauth {
        return Err(Error::conflict(
            "id",
            format!(
                "account `{}` is an API-key account; logging in applies to subscription accounts (add-oauth)",
                account.name
            ),
        ));
    }
    Ok(account)
}

/// A login's code exchange refused by the token endpoint (`invalid_grant`: mistyped, expired or already used) is
/// bad input in `code`, not an account that needs a login; other errors keep their kind.
fn code_refused(e: oauth::OAuthError) -> Error {
    match e {
        oauth::OAuthError::InvalidGrant { .. } => {
            Error::invalid("code", format!("the code was refused ({e}); copy it again, or start a new login"))
        }
        e => Error::from(e),
    }
}

fn rfc3339_secs(secs: i64) -> String {
    crate::clock::rfc3339_secs(secs).unwrap_or_default()
}

impl Ops {
    /// The OAuth settings of `account`: the global `oauth:` section with its own client id and secret.
    async fn oauth_settings(&self, config: &Config, account: &Account) -> Result<OAuthSettings> {
        let store = self.secrets().await?;
        let id = account.client_secret_id();
        let secret = blocking(move || Ok(store.get(&id)?)).await?;
        Ok(oauth::settings_for(&config.oauth, Some(account), secret))
    }

    /// Starts a login for an OAuth account. Bound to a gateway, `redirect` picks where the page returns
    /// (default: loopback when the gateway listens on loopback); offline, `oauth.redirect_uri` is used and the
    /// login is recorded so a running server's callback can still complete it.
    pub async fn start_login(&self, id_or_name: &str, redirect: Option<LoginRedirect>) -> Result<LoginStart> {
        let config = self.config().await?;
        let account = oauth_account(&config, id_or_name)?;
        if let Some(gateway) = self.gateway() {
            let listen = gateway.listen();
            let redirect = redirect.unwrap_or(if listen.ip().is_loopback() {
                LoginRedirect::Loopback
            } else {
                LoginRedirect::Manual
            });
            let redirect_uri = match redirect {
                LoginRedirect::Loopback => Some(format!("http://localhost:{}/callback", listen.port())),
                LoginRedirect::Manual => None,
            };
            let uri = redirect_uri.clone().unwrap_or_else(|| config.oauth.redirect_uri.clone());
            let started = gateway.start_oauth_login(&account.id, redirect_uri).await?;
            return Ok(LoginStart {
                url: started.url,
                redirect_uri: uri,
                expires_at: rfc3339_secs(started.pending.expires_at),
            });
        }
        if redirect == Some(LoginRedirect::Loopback) {
            return Err(Error::invalid("redirect", "a loopback login needs the running gateway; start it first"));
        }
        let settings = self.oauth_settings(&config, &account).await?;
        let (store, dir, id) = (self.secrets().await?, self.config_file().dir(), account.id.clone());
        let redirect_uri = settings.redirect_uri.clone();
        let started = blocking(move || {
            let started = oauth::begin_login(store.as_ref(), &settings, &id)?;
            if let Err(e) = oauth::record_pending(&dir, &started.pending) {
                tracing::warn!(
                    "a running gateway's loopback callback will not recognise this login ({e}); paste the code instead"
                );
            }
            Ok(started)
        })
        .await?;
        Ok(LoginStart { url: started.url, redirect_uri, expires_at: rfc3339_secs(started.pending.expires_at) })
    }

    /// Completes a login with what the authorize page showed (`code#state`), the whole callback URL, or a deep
    /// link. With `id_or_name`, only that account's login is accepted. Bound to a gateway, the login is in force
    /// when this returns; offline, a running server picks it up when it reloads the account.
    pub async fn complete_login(&self, id_or_name: Option<&str>, code: &str) -> Result<LoginOutcome> {
        if code.trim().is_empty() {
            return Err(Error::invalid("code", "`code` must not be empty: paste the `code#state` the page showed"));
        }
        let config = self.config().await?;
        let account = id_or_name.map(|id| oauth_account(&config, id)).transpose()?;
        if let Some(gateway) = self.gateway() {
            let id = account.as_ref().map(|a| a.id.as_str());
            return gateway.complete_oauth_login(code, id).await.map_err(code_refused);
        }
        let settings = match &account {
            Some(account) => self.oauth_settings(&config, account).await?,
            None => oauth::settings_for(&config.oauth, None, None),
        };
        let store = self.secrets().await?;
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| Error::internal(format!("cannot build the HTTP client: {e}")))?;
        let outcome = oauth::complete_login(store, &http, &settings, account.as_ref().map(|a| a.id.as_str()), code)
            .await
            .map_err(code_refused)?;
        if let Ok((_, Some(state))) = oauth::parse_callback_input(code) {
            let (dir, hash) = (self.config_file().dir(), oauth::state_hash(&state));
            let _ = blocking(move || {
                if let Err(e) = oauth::forget_pending(&dir, &hash) {
                    tracing::debug!("completed login left in the pending-login index: {e}");
                }
                Ok(())
            })
            .await;
        }
        let (id, email, organization) =
            (outcome.account_id.clone(), outcome.email.clone(), outcome.organization.clone());
        self.update(move |config| {
            if let Some(account) = config.accounts.iter_mut().find(|a| a.id == id) {
                account.email = email;
                account.organization = organization;
                account.updated_at = now_rfc3339();
            }
            Ok(())
        })
        .await?;
        Ok(outcome)
    }
}
