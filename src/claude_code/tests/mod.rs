//! Tests of status, setup and restore against temporary homes, projects and gateway state directories, with a
//! fake environment and an in-memory secret store.

mod setup_restore;
mod status;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::*;
use crate::config::ConfigFile;
use crate::secrets::{BackendKind, Secret, SecretError, SecretStore};

#[derive(Debug, Default)]
pub(super) struct MemoryStore(Mutex<HashMap<String, String>>);

impl SecretStore for MemoryStore {
    fn get(&self, id: &str) -> Result<Option<Secret>, SecretError> {
        Ok(self.0.lock().unwrap().get(id).map(|s| Secret::new(s.as_str())))
    }
    fn set(&self, id: &str, value: &Secret) -> Result<(), SecretError> {
        self.0.lock().unwrap().insert(id.into(), value.expose().into());
        Ok(())
    }
    fn delete(&self, id: &str) -> Result<(), SecretError> {
        self.0.lock().unwrap().remove(id);
        Ok(())
    }
    fn backend(&self) -> BackendKind {
        BackendKind::File
    }
}

pub(super) const GATEWAY: &str = "http://127.0.0.1:8787";
/// A helper program path with a space, so quoting matters.
pub(super) const HELPER: &str = "/opt/llm gateway/bin/llm-gateway";

/// A user settings file with everything a real one carries, formatted unevenly (tabs, one-line arrays) so a
/// reformat would show.
pub(super) const RICH: &str = r#"{
	"$schema": "https://json.schemastore.org/claude-code-settings.json",
	"model": "opus",
	"env": {
		"BASH_DEFAULT_TIMEOUT_MS": "60000",
		"ANTHROPIC_CUSTOM_HEADERS": "x-mock-tools: none",
		"DISABLE_TELEMETRY": "1"
	},
	"permissions": {
		"allow": ["Bash(npm run test:*)", "Read(~/.zshrc)"],
		"deny": [ "Read(./.env)" ],
		"defaultMode": "acceptEdits"
	},
	"hooks": {
		"PreToolUse": [
			{ "matcher": "Bash", "hooks": [ { "type": "command", "command": "echo \"pre\" >> /tmp/hook.log" } ] }
		]
	},
	"enabledPlugins": { "formatter@acme-tools": true, "linter@acme-tools": false },
	"statusLine": {"type": "command", "command": "~/.claude/statusline.sh", "padding": 0},
	"cleanupPeriodDays": 45,
	"includeCoAuthoredBy": false
}
"#;

/// The keys of [`RICH`] setup must never touch.
pub(super) const UNRELATED: [&str; 8] = [
    "$schema",
    "model",
    "permissions",
    "hooks",
    "enabledPlugins",
    "statusLine",
    "cleanupPeriodDays",
    "includeCoAuthoredBy",
];

pub(super) struct Fixture {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub project: PathBuf,
    pub managed: PathBuf,
    pub config: ConfigFile,
    pub secrets: Arc<MemoryStore>,
    pub env: BTreeMap<String, String>,
    pub forwarding: bool,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let project = dir.path().join("project");
        let managed = dir.path().join("managed");
        let state = dir.path().join("gateway");
        for d in [&home, &project, &state] {
            std::fs::create_dir_all(d).unwrap();
        }
        let config = ConfigFile::new(state.join("config.yaml"));
        std::fs::write(config.path(), "server:\n  listen: 127.0.0.1:8787\nsecrets:\n  backend: file\n").unwrap();
        Self {
            dir,
            home,
            project,
            managed,
            config,
            secrets: Arc::new(MemoryStore::default()),
            env: BTreeMap::new(),
            forwarding: true,
        }
    }

    pub fn inputs(&self) -> Inputs {
        let config = self.config.load().unwrap();
        Inputs {
            home: self.home.clone(),
            project_dir: Some(self.project.clone()),
            env: self.env.clone(),
            managed_dir: Some(self.managed.clone()),
            gateway_url: GATEWAY.into(),
            gateway_has_general_keys: config.client_keys.iter().any(|k| k.is_general()),
            own_login_forwarding: self.forwarding,
            state_dir: self.config.dir(),
        }
    }

    pub fn ctx(&self) -> SetupContext {
        SetupContext {
            config: self.config.clone(),
            secrets: Some(self.secrets.clone()),
            helper_program: PathBuf::from(HELPER),
        }
    }

    pub fn setup(&self) -> SetupReport {
        setup(&self.inputs(), &self.ctx()).expect("setup")
    }

    pub fn restore(&self) -> RestoreReport {
        restore(&self.inputs()).expect("restore")
    }

    pub fn status(&self) -> ClaudeCodeStatus {
        status(&self.inputs()).expect("status")
    }

    pub fn user_settings(&self) -> PathBuf {
        self.home.join(".claude").join("settings.json")
    }

    pub fn write_user(&self, text: &str) {
        write(&self.user_settings(), text);
    }

    pub fn user_text(&self) -> String {
        std::fs::read_to_string(self.user_settings()).unwrap()
    }

    pub fn user_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.user_text()).unwrap()
    }

    pub fn sign_in(&self) {
        write(&self.home.join(".claude").join(".credentials.json"), r#"{"claudeAiOauth":{}}"#);
    }

    pub fn add_general_key(&self) {
        self.add_key_named("laptop");
    }

    /// Adds a general-purpose client key straight to the config (as `add-client-key` would).
    pub fn add_key_named(&self, name: &str) {
        let key = crate::secrets::keys::new_client_key();
        let entry = crate::config::ClientKey {
            name: name.into(),
            sha256: hex::encode(crate::secrets::keys::hash_key(&key)),
            prefix: key.chars().take(10).collect(),
            created_at: String::new(),
            purpose: None,
            loopback_only: false,
            ..Default::default()
        };
        self.config
            .update(move |c| {
                c.client_keys.push(entry);
                Ok(())
            })
            .unwrap();
    }

    pub fn dedicated_key(&self) -> String {
        self.secrets.get(DEDICATED_KEY_SECRET_ID).unwrap().expect("dedicated key stored").expose().to_string()
    }

    /// Files beside the user settings whose names contain `part`.
    pub fn files_beside_settings(&self, part: &str) -> Vec<String> {
        std::fs::read_dir(self.home.join(".claude"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(part))
            .collect()
    }
}

pub(super) fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The exact text of top-level key `key` (name, colon and value) in `text`.
pub(super) fn raw_property(text: &str, key: &str) -> String {
    let root = jsonc_parser::cst::CstRootNode::parse(text, &Default::default()).unwrap();
    root.object_value().unwrap().get(key).unwrap_or_else(|| panic!("no {key} in {text}")).to_string()
}

pub(super) fn codes(status: &ClaudeCodeStatus) -> Vec<&'static str> {
    status.findings.iter().map(|f| f.code).collect()
}

pub(super) fn finding<'a>(status: &'a ClaudeCodeStatus, code: &str) -> &'a Finding {
    status.findings.iter().find(|f| f.code == code).unwrap_or_else(|| panic!("no {code} in {:#?}", status.findings))
}
