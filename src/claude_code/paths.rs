//! Where Claude Code keeps its settings and its login, per platform.
//!
//! Sources (checked 2026-12 against code.claude.com/docs/en/settings and /docs/en/managed-settings, and the
//! strings of the Claude Code 2.1.332 binary):
//! - user settings: `~/.claude/settings.json`; `CLAUDE_CONFIG_DIR` moves the whole `~/.claude` folder, and with
//!   it the global state file `.claude.json` (otherwise `~/.claude.json`);
//! - project settings: `<project>/.claude/settings.json` (shared) and `<project>/.claude/settings.local.json`;
//! - managed settings files: `managed-settings.json` plus `managed-settings.d/*.json` (merged in name order) in
//!   `/etc/claude-code` (Linux, WSL), `/Library/Application Support/ClaudeCode` (macOS) and
//!   `C:\Program Files\ClaudeCode` (Windows; older docs named `C:\ProgramData\ClaudeCode`). MDM profiles, the
//!   Windows registry and server-managed settings are not files and are not inspected here;
//! - the claude.ai login: the OAuth tokens are in `~/.claude/.credentials.json` on Linux and Windows and in the
//!   macOS Keychain; after a login `.claude.json` also holds an `oauthAccount` object (account and organisation
//!   ids, no token). We only look at whether those exist, never at a token.

use std::path::PathBuf;

use super::Inputs;

/// The user settings file's name inside the Claude Code folder.
pub const SETTINGS_FILE: &str = "settings.json";
/// The project-local settings file's name inside `<project>/.claude`.
pub const LOCAL_SETTINGS_FILE: &str = "settings.local.json";
/// Claude Code's credentials file (claude.ai login) inside its folder, on Linux and Windows.
pub const CREDENTIALS_FILE: &str = ".credentials.json";
/// The managed settings file's name inside the managed folder.
pub const MANAGED_SETTINGS_FILE: &str = "managed-settings.json";
/// The managed drop-in folder's name inside the managed folder.
pub const MANAGED_DROP_IN_DIR: &str = "managed-settings.d";

/// The files Claude Code reads, for one home and one project directory.
#[derive(Debug, Clone)]
pub struct ClaudePaths {
    /// `~/.claude`, or `$CLAUDE_CONFIG_DIR`.
    pub config_dir: PathBuf,
    /// The user settings file: the one file `setup` and `restore` change.
    pub user_settings: PathBuf,
    /// Claude Code's global state file (`~/.claude.json`): holds `oauthAccount` after a claude.ai login.
    pub global_state: PathBuf,
    /// Claude Code's credentials file (`~/.claude/.credentials.json`).
    pub credentials: PathBuf,
    /// `<project>/.claude/settings.json`, when a project directory is inspected.
    pub project_settings: Option<PathBuf>,
    /// `<project>/.claude/settings.local.json`, when a project directory is inspected.
    pub project_local_settings: Option<PathBuf>,
    /// The managed settings folder, if the platform has one.
    pub managed_dir: Option<PathBuf>,
}

impl ClaudePaths {
    /// The paths for `inputs` (its home, environment, project and managed folder).
    pub fn new(inputs: &Inputs) -> Self {
        let custom = inputs.env.get("CLAUDE_CONFIG_DIR").map(|d| d.trim()).filter(|d| !d.is_empty());
        let (config_dir, global_state) = match custom {
            Some(dir) => {
                let dir = std::path::absolute(dir).unwrap_or_else(|_| PathBuf::from(dir));
                let state = dir.join(".claude.json");
                (dir, state)
            }
            None => (inputs.home.join(".claude"), inputs.home.join(".claude.json")),
        };
        let project = inputs.project_dir.as_ref().map(|p| p.join(".claude"));
        Self {
            user_settings: config_dir.join(SETTINGS_FILE),
            credentials: config_dir.join(CREDENTIALS_FILE),
            project_settings: project.as_ref().map(|p| p.join(SETTINGS_FILE)),
            project_local_settings: project.as_ref().map(|p| p.join(LOCAL_SETTINGS_FILE)),
            managed_dir: inputs.managed_dir.clone(),
            config_dir,
            global_state,
        }
    }

    /// The managed files in the order Claude Code merges them (later ones win for plain values):
    /// `managed-settings.json`, then `managed-settings.d/*.json` by name, hidden files skipped.
    pub fn managed_files(&self) -> Vec<PathBuf> {
        let Some(dir) = &self.managed_dir else { return Vec::new() };
        let mut files = vec![dir.join(MANAGED_SETTINGS_FILE)];
        if let Ok(entries) = std::fs::read_dir(dir.join(MANAGED_DROP_IN_DIR)) {
            let mut drop_ins: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    !name.starts_with('.') && name.ends_with(".json")
                })
                .collect();
            drop_ins.sort();
            files.extend(drop_ins);
        }
        files
    }
}

/// The platform's managed settings folder (see the module doc for the sources).
pub fn default_managed_dir() -> Option<PathBuf> {
    if cfg!(target_os = "macos") {
        Some(PathBuf::from("/Library/Application Support/ClaudeCode"))
    } else if cfg!(windows) {
        Some(PathBuf::from(r"C:\Program Files\ClaudeCode"))
    } else if cfg!(unix) {
        Some(PathBuf::from("/etc/claude-code"))
    } else {
        None
    }
}
