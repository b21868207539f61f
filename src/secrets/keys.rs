//! Gateway (client) keys: generation, hashing, and the set in force that requests are checked against.
//!
//! Only SHA-256 hashes are stored. Keys carry 256 random bits, so a fast hash is enough (no password stretching
//! needed), and every stored hash is compared in constant time without an early exit.

use std::sync::Arc;

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::config::ClientKey;

/// A new random gateway key: `lgw-` followed by 43 base64url characters (256 bits).
pub fn new_client_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("lgw-{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The SHA-256 of a key.
pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The gateway keys in force, with what each may do. Built from the config on every (re)load.
#[derive(Debug, Clone, Default)]
pub struct ClientKeySet {
    keys: Vec<KeyEntry>,
    general: usize,
}

#[derive(Debug, Clone)]
struct KeyEntry {
    hash: [u8; 32],
    loopback_only: bool,
    key: Arc<ClientKey>,
}

/// The gateway key a request authenticated with (a request extension the auth layer sets): its name for the
/// request log, its limits for the proxy. Absent on an open loopback gateway.
#[derive(Debug, Clone)]
pub struct AuthenticatedKey(pub Arc<ClientKey>);

/// What a matching key allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyScope {
    /// Any peer.
    Any,
    /// Only a loopback peer (a dedicated local key, e.g. Claude Code's).
    LoopbackOnly,
}

impl ClientKeySet {
    /// The keys of a config; entries whose hash is malformed (validation refuses them) are skipped.
    pub fn from_config(keys: &[ClientKey]) -> Self {
        let mut set = Self::default();
        for key in keys {
            let Some(hash) = hex::decode(&key.sha256).ok().and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok()) else {
                continue;
            };
            set.keys.push(KeyEntry { hash, loopback_only: key.loopback_only, key: Arc::new(key.clone()) });
            set.general += usize::from(key.is_general());
        }
        set
    }

    /// Every key, dedicated ones included.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no key at all.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// General-purpose keys: with none, a loopback gateway is open (dedicated keys do not close it).
    pub fn general(&self) -> usize {
        self.general
    }

    /// The one rule for requests without a key: a gateway listening on loopback is open to them while it has no
    /// general-purpose key (dedicated keys, such as Claude Code's, do not close it).
    pub fn open_without_key(&self, listen_is_loopback: bool) -> bool {
        listen_is_loopback && self.general == 0
    }

    /// The other half of the rule: a gateway on a non-loopback address without a general-purpose key would be
    /// open to the network, so it refuses to start (and, should its last key go while it runs, every request).
    pub fn exposed_without_key(&self, listen_is_loopback: bool) -> bool {
        !listen_is_loopback && self.general == 0
    }

    /// The scope of `key` if it is one of the set, in time independent of which (if any) matches.
    pub fn check(&self, key: &str) -> Option<KeyScope> {
        self.find(key).map(|(scope, _)| scope)
    }

    /// The scope and configuration of `key` if it is one of the set, in time independent of which (if any)
    /// matches: every stored hash is compared, and the match is selected without a branch.
    pub fn find(&self, key: &str) -> Option<(KeyScope, Arc<ClientKey>)> {
        let presented = hash_key(key);
        let mut found = subtle::Choice::from(0);
        let mut loopback_only = subtle::Choice::from(0);
        let mut index = 0u32;
        for (i, entry) in self.keys.iter().enumerate() {
            let hit = presented.ct_eq(&entry.hash);
            found |= hit;
            loopback_only |= hit & subtle::Choice::from(u8::from(entry.loopback_only));
            index = u32::conditional_select(&index, &u32::try_from(i).unwrap_or(u32::MAX), hit);
        }
        if !bool::from(found) {
            return None;
        }
        let scope = if bool::from(loopback_only) { KeyScope::LoopbackOnly } else { KeyScope::Any };
        let entry = self.keys.get(usize::try_from(index).ok()?)?;
        Some((scope, entry.key.clone()))
    }
}

/// The header a client may send its gateway key in when `Authorization` carries something else (Claude Code
/// keeping its own claude.ai login sends the key here through `ANTHROPIC_CUSTOM_HEADERS`).
pub const GATEWAY_KEY_HEADER: &str = "x-llm-gateway-key";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_distinct_and_well_formed() {
        let a = new_client_key();
        let b = new_client_key();
        assert_ne!(a, b);
        assert!(a.starts_with("lgw-") && a.len() == 47, "{a}");
    }

    fn key(name: &str, secret: &str, purpose: Option<crate::config::KeyPurpose>, loopback_only: bool) -> ClientKey {
        ClientKey {
            name: name.into(),
            sha256: hex::encode(hash_key(secret)),
            prefix: String::new(),
            created_at: String::new(),
            purpose,
            loopback_only,
            ..ClientKey::default()
        }
    }

    #[test]
    fn matching_uses_the_hash_and_reports_the_scope() {
        let general = new_client_key();
        let local = new_client_key();
        let set = ClientKeySet::from_config(&[
            key("laptop", &general, None, false),
            key("claude-code", &local, Some(crate::config::KeyPurpose::ClaudeCode), true),
        ]);
        assert_eq!(set.check(&general), Some(KeyScope::Any));
        assert_eq!(set.check(&local), Some(KeyScope::LoopbackOnly));
        assert_eq!(set.find(&local).map(|(_, k)| k.name.clone()).as_deref(), Some("claude-code"));
        assert_eq!(set.find(&general).map(|(_, k)| k.name.clone()).as_deref(), Some("laptop"));
        assert_eq!(set.check("lgw-wrong"), None);
        assert_eq!(ClientKeySet::default().check(&general), None);
    }
}
