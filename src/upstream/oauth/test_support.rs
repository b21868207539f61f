//! Test doubles and helpers shared by the OAuth tests: an in-memory [`SecretStore`] and mock-backed settings.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use mock_upstream::MockUpstream;

use super::OAuthSettings;
use crate::secrets::{BackendKind, Secret, SecretError, SecretStore};

/// An in-memory secret store; `fail_sets(n)` makes the next `n` writes fail.
#[derive(Debug, Default)]
pub(crate) struct MemoryStore {
    map: Mutex<HashMap<String, String>>,
    failing_sets: AtomicU32,
}

impl MemoryStore {
    pub fn new() -> Arc<MemoryStore> {
        Arc::new(MemoryStore::default())
    }

    pub fn fail_sets(&self, n: u32) {
        self.failing_sets.store(n, Ordering::SeqCst);
    }

    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.map.lock().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }

    /// The stored JSON under `id`, parsed.
    pub fn json(&self, id: &str) -> Option<serde_json::Value> {
        self.map.lock().unwrap().get(id).map(|s| serde_json::from_str(s).unwrap())
    }
}

impl SecretStore for MemoryStore {
    fn get(&self, id: &str) -> Result<Option<Secret>, SecretError> {
        Ok(self.map.lock().unwrap().get(id).map(|s| Secret::new(s.as_str())))
    }

    fn set(&self, id: &str, value: &Secret) -> Result<(), SecretError> {
        let failing = self.failing_sets.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if failing.is_ok() {
            let source = std::io::Error::other("disk full (test)");
            return Err(SecretError::Io { path: "memory".into(), source });
        }
        self.map.lock().unwrap().insert(id.to_string(), value.expose().to_string());
        Ok(())
    }

    fn delete(&self, id: &str) -> Result<(), SecretError> {
        self.map.lock().unwrap().remove(id);
        Ok(())
    }

    fn backend(&self) -> BackendKind {
        BackendKind::File
    }
}

/// Settings pointing at the mock's authorize and token endpoints.
pub(crate) fn mock_settings(mock: &MockUpstream) -> OAuthSettings {
    OAuthSettings {
        authorize_url: mock.oauth_authorize_url(),
        token_url: mock.oauth_token_url(),
        redirect_uri: "https://platform.claude.com/oauth/code/callback".into(),
        scopes: vec!["user:profile".into(), "user:inference".into()],
        ..OAuthSettings::default()
    }
}

pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}
