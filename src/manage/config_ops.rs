//! The configuration as a document: read it (nothing secret is in it; client keys show as ids and prefixes),
//! validate a proposed change, apply one — with the same validation as the file.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::keys::ClientKeyView;
use super::{Error, Ops, Result};
use crate::config::{Config, validate};

/// The sections a change may touch; accounts and client keys have their own operations, and the secret store
/// backend is chosen once (moving secrets between stores is not a config edit).
pub const PATCHABLE_SECTIONS: [&str; 7] =
    ["server", "upstream", "routing", "oauth", "models", "subscriptions", "usage"];

/// Keys read only when the gateway starts: a change to them is saved, but takes effect after a restart.
const RESTART_KEYS: [&str; 8] = [
    "server.listen",
    "server.worker_threads",
    "server.max_connections",
    "server.header_read_timeout_secs",
    "server.idle_timeout_secs",
    "server.http2_keep_alive_secs",
    "usage.enabled",
    "usage.path",
];

/// The configuration as the admin API and the UI see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigDocument {
    /// The config file.
    pub path: String,
    /// The configuration (every key documented in `configs/config.yaml`); client keys as ids and prefixes.
    pub config: Value,
    /// Keys of the change just validated or applied that need a restart to take effect.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restart_required: Vec<String>,
}

/// RFC 7396 JSON merge patch: objects merge key by key, `null` removes (back to the default), anything else
/// replaces.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

/// `config` with `patch` applied and validated.
fn patched(config: &Config, patch: &Value) -> Result<Config> {
    let Value::Object(sections) = patch else {
        return Err(Error::invalid("body", "a config change is a JSON object of sections, e.g. {\"routing\":{…}}"));
    };
    if sections.is_empty() {
        return Err(Error::invalid("body", "nothing to change: give at least one section"));
    }
    if let Some(key) = sections.keys().find(|k| !PATCHABLE_SECTIONS.contains(&k.as_str())) {
        return Err(Error::invalid(
            key.clone(),
            format!(
                "`{key}` cannot be changed here (allowed: {}); accounts and client keys have their own endpoints",
                PATCHABLE_SECTIONS.join(", ")
            ),
        ));
    }
    let mut value = serde_json::to_value(config).map_err(|e| Error::internal(e.to_string()))?;
    for (section, change) in sections {
        let slot = value.as_object_mut().map(|o| o.entry(section.clone()).or_insert(Value::Object(Map::new())));
        if let Some(slot) = slot {
            if change.is_null() {
                *slot = Value::Object(Map::new());
            } else {
                merge(slot, change);
            }
        }
    }
    let new: Config = serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        Error::invalid(field.clone(), format!("`{field}`: {}", e.into_inner()))
    })?;
    validate(&new)?;
    Ok(new)
}

/// The keys that need a restart and differ between `old` and `new`.
fn restart_required(old: &Config, new: &Config) -> Vec<String> {
    let (old, new) = (serde_json::to_value(old).unwrap_or_default(), serde_json::to_value(new).unwrap_or_default());
    RESTART_KEYS
        .iter()
        .filter(|key| old.pointer(&pointer(key)) != new.pointer(&pointer(key)))
        .map(|k| (*k).to_string())
        .collect()
}

fn pointer(key: &str) -> String {
    format!("/{}", key.replace('.', "/"))
}

fn document(ops: &Ops, config: &Config, restart_required: Vec<String>) -> Result<ConfigDocument> {
    let mut value = serde_json::to_value(config).map_err(|e| Error::internal(e.to_string()))?;
    let keys: Vec<ClientKeyView> = config.client_keys.iter().map(ClientKeyView::of).collect();
    if let Some(object) = value.as_object_mut() {
        object.insert("client_keys".into(), serde_json::to_value(keys).unwrap_or_default());
    }
    Ok(ConfigDocument { path: ops.config_file().path().display().to_string(), config: value, restart_required })
}

impl Ops {
    /// The configuration in the file.
    pub async fn config_document(&self) -> Result<ConfigDocument> {
        let config = self.config().await?;
        document(self, &config, Vec::new())
    }

    /// Validates a change (a JSON merge patch over [`PATCHABLE_SECTIONS`]) without applying it; returns the
    /// configuration it would produce.
    pub async fn validate_config(&self, patch: &Value) -> Result<ConfigDocument> {
        let config = self.config().await?;
        let new = patched(&config, patch)?;
        let restart = restart_required(&config, &new);
        document(self, &new, restart)
    }

    /// Applies a change: validated like the file, written atomically, in force when this returns (bound to a
    /// gateway). Keys read only at start-up are listed in `restart_required`.
    pub async fn patch_config(&self, patch: Value) -> Result<ConfigDocument> {
        let (new, restart) = self
            .update(move |config| {
                let new = patched(config, &patch)?;
                let restart = restart_required(config, &new);
                *config = new.clone();
                Ok((new, restart))
            })
            .await?;
        if !restart.is_empty() {
            tracing::info!(keys = %restart.join(", "), "configuration saved; these keys take effect after a restart");
        }
        document(self, &new, restart)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_merge_patch_changes_only_what_it_names() {
        let config = Config::default();
        let new = patched(&config, &json!({"routing": {"strategy": "weighted"}})).unwrap();
        assert_eq!(new.routing.strategy, crate::config::Strategy::Weighted);
        assert_eq!(new.routing.max_attempts, config.routing.max_attempts);
        assert_eq!(new.server, config.server);
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let err = patched(&Config::default(), &json!({"routing": {"strategy": "fastest"}})).unwrap_err();
        assert_eq!(err.kind, super::super::ErrorKind::InvalidInput);
        assert_eq!(err.field.as_deref(), Some("routing.strategy"), "{err:?}");
        let err = patched(&Config::default(), &json!({"routing": {"max_attempts": 0}})).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("routing.max_attempts"), "{err:?}");
        let err = patched(&Config::default(), &json!({"accounts": []})).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("accounts"));
        let err = patched(&Config::default(), &json!({"routing": {"nope": 1}})).unwrap_err();
        assert!(err.message.contains("nope"), "{err:?}");
    }

    #[test]
    fn null_puts_a_key_back_to_its_default() {
        let mut config = Config::default();
        config.routing.max_attempts = 7;
        let new = patched(&config, &json!({"routing": {"max_attempts": null}})).unwrap();
        assert_eq!(new.routing.max_attempts, Config::default().routing.max_attempts);
    }

    #[test]
    fn restart_keys_are_listed() {
        let config = Config::default();
        let new = patched(&config, &json!({"server": {"listen": "127.0.0.1:9999"}})).unwrap();
        assert_eq!(restart_required(&config, &new), ["server.listen"]);
    }
}
