//! The dedicated gateway key for Claude Code: a normal client key in the config (hash only, `purpose:
//! claude_code`, `loopback_only: true`) whose plaintext is kept in the secret store, so the `apiKeyHelper`
//! command can print it and no key has to sit in Claude Code's settings file. Being dedicated, it does not close
//! the gateway's "no client keys: open on loopback" mode for the user's other tools.

use super::ClaudeCodeError;
use crate::config::{ClientKey, Config, ConfigError, ConfigFile, KeyPurpose};
use crate::secrets::keys::{hash_key, new_client_key};
use crate::secrets::{Secret, SecretStore};

/// The secret store id of the dedicated key's plaintext.
pub const SECRET_ID: &str = "client-key:claude-code";
/// The dedicated key's name in the config (a suffix is added if a general key already has it).
pub const KEY_NAME: &str = "claude-code";

/// The dedicated key, ready to hand to Claude Code.
#[derive(Debug)]
pub struct DedicatedKey {
    /// Its name in the config.
    pub name: String,
    /// The key itself.
    pub key: Secret,
    /// Whether it was made now (else an existing one was reused).
    pub created: bool,
}

fn configured(config: &Config) -> Option<&ClientKey> {
    config.client_keys.iter().find(|k| k.purpose == Some(KeyPurpose::ClaudeCode))
}

fn matches(entry: &ClientKey, key: &Secret) -> bool {
    entry.sha256.eq_ignore_ascii_case(&hex::encode(hash_key(key.expose())))
}

/// The dedicated key: the existing one when the config names it and the secret store holds its plaintext,
/// otherwise a new one (stored in the secret store first, then its hash in the config, replacing a stale entry).
pub fn ensure(config: &ConfigFile, secrets: &dyn SecretStore) -> Result<DedicatedKey, ClaudeCodeError> {
    let current = config.load()?;
    if let Some(entry) = configured(&current)
        && let Some(key) = secrets.get(SECRET_ID)?
        && matches(entry, &key)
    {
        return Ok(DedicatedKey { name: entry.name.clone(), key, created: false });
    }
    let key = Secret::new(new_client_key());
    secrets.set(SECRET_ID, &key)?;
    let entry_hash = hex::encode(hash_key(key.expose()));
    let prefix: String = key.expose().chars().take(10).collect();
    let name = config.update(move |config| {
        config.client_keys.retain(|k| k.purpose != Some(KeyPurpose::ClaudeCode));
        let name = (1..)
            .map(|n| if n == 1 { KEY_NAME.to_string() } else { format!("{KEY_NAME}-{n}") })
            .find(|name| !config.client_keys.iter().any(|k| &k.name == name))
            .ok_or_else(|| ConfigError::Rejected("no free client key name".into()))?;
        config.client_keys.push(ClientKey {
            name: name.clone(),
            sha256: entry_hash,
            prefix,
            created_at: crate::clock::now_rfc3339(),
            purpose: Some(KeyPurpose::ClaudeCode),
            loopback_only: true,
            ..Default::default()
        });
        Ok(name)
    })?;
    Ok(DedicatedKey { name, key, created: true })
}

/// The dedicated key for the `apiKeyHelper` command: only when the config still names it and the stored
/// plaintext matches its hash, so Claude Code is never handed a key the gateway would refuse.
pub fn read(config: &ConfigFile, secrets: &dyn SecretStore) -> Result<Secret, ClaudeCodeError> {
    let current = config.load()?;
    let Some(entry) = configured(&current) else {
        return Err(ClaudeCodeError::NoDedicatedKey(format!(
            "{} has no Claude Code key; run `llm-gateway claude-code setup`",
            config.path().display()
        )));
    };
    match secrets.get(SECRET_ID)? {
        Some(key) if matches(entry, &key) => Ok(key),
        Some(_) => Err(ClaudeCodeError::NoDedicatedKey(
            "the stored Claude Code key does not match the config; run `llm-gateway claude-code setup`".into(),
        )),
        None => Err(ClaudeCodeError::NoDedicatedKey(
            "the Claude Code key is missing from the secret store; run `llm-gateway claude-code setup`".into(),
        )),
    }
}
