//! Starting a login (PKCE, state, the authorize URL), the pending login kept in the secret store between
//! `oauth-start` and the callback, and parsing what the user pastes or the browser calls back with.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::registry::PendingState;
use super::{OAuthError, OAuthSettings, pending_secret_id, pkce, unix_now};
use crate::secrets::{Secret, SecretStore};

/// How long a pending login stays usable, in seconds (10 minutes).
pub const PENDING_LOGIN_TTL_SECS: i64 = 600;

/// Prefix of the secret ids that map a login's state to its account (for callbacks that carry no account id).
const STATE_INDEX_PREFIX: &str = "oauth:pending-state:";

/// A login in progress: PKCE S256 verifier and a random state, stored as JSON under
/// `oauth:pending:<account_id>` so the start and the callback can run in separate processes.
/// It expires [`PENDING_LOGIN_TTL_SECS`] after `created_at`.
#[derive(Debug, Clone)]
pub struct PendingLogin {
    /// The account the login is for.
    pub account_id: String,
    /// The `state` sent in the authorize URL (32 random bytes, base64url).
    pub state: String,
    /// The PKCE code verifier (32 random bytes, base64url); never logged.
    verifier: Secret,
    /// The redirect URI of the authorize URL; the code exchange must send the same one.
    pub redirect_uri: String,
    /// Unix seconds when the login started.
    pub created_at: i64,
}

#[derive(Serialize)]
struct PendingOut<'a> {
    account_id: &'a str,
    state: &'a str,
    verifier: &'a str,
    redirect_uri: &'a str,
    created_at: i64,
}

#[derive(Deserialize)]
struct PendingIn {
    account_id: String,
    state: String,
    verifier: String,
    redirect_uri: String,
    created_at: i64,
}

impl PendingLogin {
    /// A fresh login for `account_id` with a new verifier and state; also returns the code challenge.
    pub(crate) fn generate(account_id: &str, redirect_uri: &str) -> Result<(PendingLogin, String), OAuthError> {
        let verifier = pkce::new_verifier()?;
        let challenge = pkce::challenge(&verifier);
        let state = pkce::random_token()?.expose().to_string();
        let login = PendingLogin {
            account_id: account_id.to_string(),
            state,
            verifier,
            redirect_uri: redirect_uri.to_string(),
            created_at: unix_now(),
        };
        Ok((login, challenge))
    }

    /// The PKCE code verifier.
    pub(crate) fn verifier(&self) -> &Secret {
        &self.verifier
    }

    /// Whether the login is older than [`PENDING_LOGIN_TTL_SECS`] at `now` (unix seconds).
    pub fn is_expired(&self, now: i64) -> bool {
        now.saturating_sub(self.created_at) > PENDING_LOGIN_TTL_SECS
    }

    /// Checks a callback's `state` (constant-time) and the login's age.
    pub fn check(&self, state: &str, now: i64) -> Result<(), OAuthError> {
        let same: bool = self.state.as_bytes().ct_eq(state.as_bytes()).into();
        if !same {
            return Err(OAuthError::StateMismatch { account_id: self.account_id.clone() });
        }
        if self.is_expired(now) {
            return Err(OAuthError::LoginExpired { account_id: self.account_id.clone() });
        }
        Ok(())
    }

    fn to_secret(&self) -> Result<Secret, OAuthError> {
        let out = PendingOut {
            account_id: &self.account_id,
            state: &self.state,
            verifier: self.verifier.expose(),
            redirect_uri: &self.redirect_uri,
            created_at: self.created_at,
        };
        serde_json::to_string(&out)
            .map(Secret::new)
            .map_err(|e| OAuthError::Internal(format!("cannot serialise the pending login: {e}")))
    }

    fn from_secret(id: &str, s: &Secret) -> Result<PendingLogin, OAuthError> {
        let p: PendingIn = serde_json::from_str(s.expose())
            .map_err(|e| OAuthError::CorruptRecord { id: id.to_string(), detail: e.to_string() })?;
        Ok(PendingLogin {
            account_id: p.account_id,
            state: p.state,
            verifier: Secret::new(p.verifier),
            redirect_uri: p.redirect_uri,
            created_at: p.created_at,
        })
    }
}

/// Secret id of the state → account index entry (a hash: the state itself never goes into an id).
fn state_index_id(state: &str) -> String {
    let digest = Sha256::digest(state.as_bytes());
    format!("{STATE_INDEX_PREFIX}{}", hex::encode(&digest[..16]))
}

/// Starts a login for `account_id`: stores a fresh [`PendingLogin`] (replacing any earlier one for the
/// account) and returns the authorize URL to open in a browser.
///
/// Parameters, in this order: `code=true`, `client_id`, `response_type=code`, `redirect_uri`, `scope`
/// (space-separated), `code_challenge`, `code_challenge_method=S256`, `state`. Blocking (secret store).
pub fn start_login(store: &dyn SecretStore, settings: &OAuthSettings, account_id: &str) -> Result<String, OAuthError> {
    begin_login(store, settings, account_id).map(|started| started.url)
}

/// A login just started: the authorize URL, and the public facts a callback is matched by (see
/// [`super::PendingRegistry`]).
#[derive(Debug, Clone)]
pub struct StartedLogin {
    /// The authorize URL to open in a browser.
    pub url: String,
    /// The state's hash, the account and the expiry (no secret).
    pub pending: PendingState,
}

/// [`start_login`], also returning the login's [`PendingState`] for the pending-login registry. Blocking.
pub fn begin_login(
    store: &dyn SecretStore,
    settings: &OAuthSettings,
    account_id: &str,
) -> Result<StartedLogin, OAuthError> {
    let mut url = url::Url::parse(&settings.authorize_url)
        .map_err(|e| OAuthError::Settings(format!("authorize_url {:?}: {e}", settings.authorize_url)))?;
    let (login, challenge) = PendingLogin::generate(account_id, &settings.redirect_uri)?;
    if let Ok(Some(old)) = load_pending(store, account_id)
        && let Err(e) = store.delete(&state_index_id(&old.state))
    {
        tracing::debug!(account_id, error = %e, "could not remove the previous login's state index");
    }
    store.set(&pending_secret_id(account_id), &login.to_secret()?)?;
    store.set(&state_index_id(&login.state), &Secret::new(account_id))?;
    url.query_pairs_mut()
        .append_pair("code", "true")
        .append_pair("client_id", &settings.client_id)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", &settings.redirect_uri)
        .append_pair("scope", &settings.scopes.join(" "))
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", &login.state);
    tracing::info!(account_id, redirect_uri = %settings.redirect_uri, "OAuth login started");
    Ok(StartedLogin { url: url.into(), pending: PendingState::of(&login) })
}

/// The pending login of `account_id`, if any (blocking).
pub(crate) fn load_pending(store: &dyn SecretStore, account_id: &str) -> Result<Option<PendingLogin>, OAuthError> {
    let id = pending_secret_id(account_id);
    match store.get(&id)? {
        Some(s) => PendingLogin::from_secret(&id, &s).map(Some),
        None => Ok(None),
    }
}

/// The account whose pending login has this `state`, if any (blocking).
pub(crate) fn account_for_state(store: &dyn SecretStore, state: &str) -> Result<Option<String>, OAuthError> {
    Ok(store.get(&state_index_id(state))?.map(|s| s.expose().to_string()))
}

/// Removes a pending login and its state index entry (blocking).
pub(crate) fn delete_pending(store: &dyn SecretStore, login: &PendingLogin) -> Result<(), OAuthError> {
    store.delete(&state_index_id(&login.state))?;
    store.delete(&pending_secret_id(&login.account_id))?;
    Ok(())
}

/// Stores a pending login as is (tests build expired or foreign ones).
#[cfg(test)]
pub(crate) fn save_pending(store: &dyn SecretStore, login: &PendingLogin) -> Result<(), OAuthError> {
    store.set(&pending_secret_id(&login.account_id), &login.to_secret()?)?;
    store.set(&state_index_id(&login.state), &Secret::new(login.account_id.as_str()))?;
    Ok(())
}

/// Splits what the user pasted, or what a callback delivered, into the authorization code and its state.
///
/// Accepts `code#state` (what the code page shows), a whole callback URL (`https://…/callback?code=…&state=…`,
/// `http://localhost:PORT/callback?…`, `llm-gateway://oauth/callback?code=…&state=…`), a bare query string
/// (`code=…&state=…`), or a bare `code` (state `None`: the caller must supply it). Like CRS, anything after an
/// `&` in a pasted code is dropped. A callback with `error=` is reported as [`OAuthError::Denied`].
pub fn parse_callback_input(input: &str) -> Result<(String, Option<String>), OAuthError> {
    let input = input.trim().trim_matches(|c| c == '"' || c == '\'').trim();
    if input.is_empty() {
        return Err(OAuthError::InvalidInput("nothing was pasted".into()));
    }
    let query = if input.contains("://") {
        let url = url::Url::parse(input).map_err(|e| OAuthError::InvalidInput(format!("not a valid URL: {e}")))?;
        Some((url.query().unwrap_or_default().to_string(), url.fragment().map(str::to_string)))
    } else if let Some(q) = input.strip_prefix('?') {
        Some((q.to_string(), None))
    } else if input.starts_with("code=") || input.contains("&code=") || input.starts_with("error=") {
        Some((input.to_string(), None))
    } else {
        None
    };
    let (code, state) = match query {
        Some((query, fragment)) => from_query(&query, fragment)?,
        None => {
            let (code, state) = match input.split_once('#') {
                Some((c, s)) => (c, Some(s)),
                None => (input, None),
            };
            let state = state.map(|s| s.split('&').next().unwrap_or_default().trim().to_string());
            (code.to_string(), state.filter(|s| !s.is_empty()))
        }
    };
    let code = code.split('&').next().unwrap_or_default().trim().to_string();
    if code.is_empty() {
        return Err(OAuthError::InvalidInput("the authorization code is empty".into()));
    }
    if code.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(OAuthError::InvalidInput("the authorization code contains spaces or control characters".into()));
    }
    Ok((code, state))
}

/// `code`/`state`/`error` from a callback query; a `#fragment` stands in for a missing state.
fn from_query(query: &str, fragment: Option<String>) -> Result<(String, Option<String>), OAuthError> {
    let (mut code, mut state, mut error, mut description) = (None, None, None, None);
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "code" if code.is_none() => code = Some(v.into_owned()),
            "state" if state.is_none() => state = Some(v.into_owned()),
            "error" if error.is_none() => error = Some(v.into_owned()),
            "error_description" if description.is_none() => description = Some(v.into_owned()),
            _ => {}
        }
    }
    if let Some(error) = error {
        return Err(OAuthError::Denied { error, description });
    }
    let Some(code) = code else {
        return Err(OAuthError::InvalidInput("the callback URL has no `code` parameter".into()));
    };
    // `…?code=C#S`: the code page's `code#state` glued to a URL.
    let (code, glued) = match code.split_once('#') {
        Some((c, s)) => (c.to_string(), Some(s.to_string())),
        None => (code, None),
    };
    let state = state.or(glued).or(fragment).map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    Ok((code, state))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> (String, Option<String>) {
        parse_callback_input(s).unwrap()
    }

    fn some(c: &str, s: &str) -> (String, Option<String>) {
        (c.to_string(), Some(s.to_string()))
    }

    #[test]
    fn pasted_code_and_state() {
        assert_eq!(parse("abc123#st-ate_1"), some("abc123", "st-ate_1"));
        assert_eq!(parse("  abc123#state \n"), some("abc123", "state"));
        assert_eq!(parse("\"abc#st\""), some("abc", "st"));
        // CRS: anything after `&` in a pasted code goes.
        assert_eq!(parse("abc&foo=bar#st"), some("abc", "st"));
        assert_eq!(parse("abc#st&x=1"), some("abc", "st"));
        assert_eq!(parse("abc"), ("abc".to_string(), None));
        assert_eq!(parse("abc#"), ("abc".to_string(), None));
        assert_eq!(parse("abc&scope=x"), ("abc".to_string(), None));
    }

    #[test]
    fn callback_urls() {
        let url = "https://platform.claude.com/oauth/code/callback?code=c0de&state=s%2B1";
        assert_eq!(parse(url), some("c0de", "s+1"));
        assert_eq!(parse("http://localhost:54545/callback?state=S&code=C"), some("C", "S"));
        assert_eq!(parse("llm-gateway://oauth/callback?code=C&state=S"), some("C", "S"));
        assert_eq!(parse("https://x/cb?code=C#S"), some("C", "S"));
        assert_eq!(parse("https://x/cb?code=C"), ("C".to_string(), None));
        assert_eq!(parse("?code=C&state=S"), some("C", "S"));
        assert_eq!(parse("code=C&state=S"), some("C", "S"));
    }

    #[test]
    fn bad_inputs() {
        assert!(matches!(parse_callback_input("  "), Err(OAuthError::InvalidInput(_))));
        assert!(matches!(parse_callback_input("#state"), Err(OAuthError::InvalidInput(_))));
        assert!(matches!(parse_callback_input("https://x/cb?state=S"), Err(OAuthError::InvalidInput(_))));
        assert!(matches!(parse_callback_input("two words#s"), Err(OAuthError::InvalidInput(_))));
        let e =
            parse_callback_input("http://localhost:1/cb?error=access_denied&error_description=User+said+no&state=S");
        match e {
            Err(OAuthError::Denied { error, description }) => {
                assert_eq!(error, "access_denied");
                assert_eq!(description.as_deref(), Some("User said no"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn state_and_expiry_checks() {
        let (login, challenge) = PendingLogin::generate("acc_1", "https://x/cb").unwrap();
        assert_eq!(challenge, pkce::challenge(login.verifier()));
        assert_eq!(login.state.len(), 43);
        let now = login.created_at;
        assert!(login.check(&login.state, now).is_ok());
        assert!(login.check(&login.state, now + PENDING_LOGIN_TTL_SECS).is_ok());
        assert!(matches!(login.check(&login.state, now + 601), Err(OAuthError::LoginExpired { .. })));
        assert!(matches!(login.check("other", now), Err(OAuthError::StateMismatch { .. })));
        let mut shorter = login.state.clone();
        shorter.pop();
        assert!(matches!(login.check(&shorter, now), Err(OAuthError::StateMismatch { .. })));
    }

    #[test]
    fn pending_round_trip() {
        let (login, _) = PendingLogin::generate("acc 1", "https://x/cb").unwrap();
        let back = PendingLogin::from_secret("id", &login.to_secret().unwrap()).unwrap();
        assert_eq!(back.account_id, "acc 1");
        assert_eq!(back.state, login.state);
        assert_eq!(back.verifier().expose(), login.verifier().expose());
        assert_eq!(back.redirect_uri, "https://x/cb");
        assert_eq!(back.created_at, login.created_at);
        assert!(!format!("{back:?}").contains(login.verifier().expose()));
    }
}
