//! The token record stored per account (`account:<id>:oauth`) and the secret-store plumbing around it.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{OAuthError, token_secret_id};
use crate::secrets::{Secret, SecretStore};

/// What the secret store holds for one OAuth account, written as one JSON document in one
/// [`SecretStore::set`], so the refresh token and the access token it goes with never disagree on disk.
#[derive(Debug, Clone)]
pub(crate) struct TokenRecord {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    /// Unix seconds.
    pub expires_at: i64,
    pub scopes: Vec<String>,
    /// Unix seconds of the last successful refresh (or of the login).
    pub last_refresh: Option<i64>,
}

#[derive(Serialize)]
struct RecordOut<'a> {
    access_token: &'a str,
    refresh_token: Option<&'a str>,
    expires_at: i64,
    scopes: &'a [String],
    last_refresh: Option<i64>,
}

#[derive(Deserialize)]
struct RecordIn {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    expires_at: i64,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    last_refresh: Option<i64>,
}

impl TokenRecord {
    /// The JSON document, as a secret.
    pub fn to_secret(&self) -> Result<Secret, OAuthError> {
        let out = RecordOut {
            access_token: self.access_token.expose(),
            refresh_token: self.refresh_token.as_ref().map(Secret::expose),
            expires_at: self.expires_at,
            scopes: &self.scopes,
            last_refresh: self.last_refresh,
        };
        serde_json::to_string(&out)
            .map(Secret::new)
            .map_err(|e| OAuthError::Internal(format!("cannot serialise the token record: {e}")))
    }

    /// Parses a stored record; `id` names it in errors.
    pub fn from_secret(id: &str, s: &Secret) -> Result<TokenRecord, OAuthError> {
        let r: RecordIn = serde_json::from_str(s.expose())
            .map_err(|e| OAuthError::CorruptRecord { id: id.to_string(), detail: e.to_string() })?;
        Ok(TokenRecord {
            access_token: Secret::new(r.access_token),
            refresh_token: r.refresh_token.filter(|t| !t.is_empty()).map(Secret::new),
            expires_at: r.expires_at,
            scopes: r.scopes,
            last_refresh: r.last_refresh,
        })
    }
}

/// Reads an account's token record (blocking).
pub(crate) fn load_record(store: &dyn SecretStore, account_id: &str) -> Result<Option<TokenRecord>, OAuthError> {
    let id = token_secret_id(account_id);
    match store.get(&id)? {
        Some(s) => TokenRecord::from_secret(&id, &s).map(Some),
        None => Ok(None),
    }
}

/// Writes an account's token record in one `set` (blocking).
pub(crate) fn save_record(store: &dyn SecretStore, account_id: &str, record: &TokenRecord) -> Result<(), OAuthError> {
    store.set(&token_secret_id(account_id), &record.to_secret()?)?;
    Ok(())
}

/// Runs blocking secret-store work off the async runtime.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, OAuthError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, OAuthError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| OAuthError::Internal(format!("secret store task failed: {e}")))?
}

/// [`load_record`] on a blocking thread.
pub(crate) async fn load_record_async(
    store: &Arc<dyn SecretStore>,
    account_id: &str,
) -> Result<Option<TokenRecord>, OAuthError> {
    let (store, id) = (store.clone(), account_id.to_string());
    blocking(move || load_record(store.as_ref(), &id)).await
}

/// [`save_record`] on a blocking thread.
pub(crate) async fn save_record_async(
    store: &Arc<dyn SecretStore>,
    account_id: &str,
    record: &TokenRecord,
) -> Result<(), OAuthError> {
    let (store, id, record) = (store.clone(), account_id.to_string(), record.clone());
    blocking(move || save_record(store.as_ref(), &id, &record)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_shape() {
        let r = TokenRecord {
            access_token: Secret::new("sk-ant-oat01-a"),
            refresh_token: Some(Secret::new("sk-ant-ort01-r")),
            expires_at: 100,
            scopes: vec!["user:inference".into()],
            last_refresh: Some(50),
        };
        let s = r.to_secret().unwrap();
        assert_eq!(
            s.expose(),
            r#"{"access_token":"sk-ant-oat01-a","refresh_token":"sk-ant-ort01-r","expires_at":100,"scopes":["user:inference"],"last_refresh":50}"#
        );
        let back = TokenRecord::from_secret("x", &s).unwrap();
        assert_eq!(back.access_token.expose(), "sk-ant-oat01-a");
        assert_eq!(back.refresh_token.unwrap().expose(), "sk-ant-ort01-r");
        assert_eq!((back.expires_at, back.last_refresh), (100, Some(50)));
        assert!(matches!(TokenRecord::from_secret("x", &Secret::new("nope")), Err(OAuthError::CorruptRecord { .. })));
    }
}
