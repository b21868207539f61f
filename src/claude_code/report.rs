//! The serialisable reports `status`, `setup` and `restore` return (the CLI prints them, `--json` and the admin
//! API send them as they are). They name sources and show non-secret values; a key or token appears at most as a
//! short redacted form (`sk-ant-…a1b2`).

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::state::SetupMode;

/// A kind of place Claude Code reads a setting from, highest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Managed settings (an administrator's file): beat everything.
    Managed,
    /// `<project>/.claude/settings.local.json`.
    ProjectLocal,
    /// `<project>/.claude/settings.json`.
    Project,
    /// `~/.claude/settings.json`.
    User,
    /// The shell environment Claude Code starts in (a settings file's `env` beats it).
    Environment,
    /// Claude Code's own claude.ai login.
    Login,
}

impl Scope {
    /// A short human label.
    pub fn label(self) -> &'static str {
        match self {
            Scope::Managed => "managed settings",
            Scope::ProjectLocal => "project local settings",
            Scope::Project => "project settings",
            Scope::User => "user settings",
            Scope::Environment => "shell environment",
            Scope::Login => "claude.ai login",
        }
    }
}

/// Where a value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// The kind of place.
    pub scope: Scope,
    /// The file, for settings files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{} ({})", self.scope.label(), path.display()),
            None => f.write_str(self.scope.label()),
        }
    }
}

/// One setting as Claude Code resolves it: the source that wins and the ones it overrides.
#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    /// The variable or setting (`ANTHROPIC_BASE_URL`, `apiKeyHelper`, …).
    pub name: String,
    /// A printable form: a URL or command as is, a key redacted, headers by name only.
    pub shown: String,
    /// The source that wins.
    pub source: Source,
    /// Lower-precedence sources that set it too (ignored by Claude Code).
    pub overridden: Vec<Shadowed>,
}

/// A source whose value is overridden.
#[derive(Debug, Clone, Serialize)]
pub struct Shadowed {
    /// Where.
    pub source: Source,
    /// Its printable form.
    pub shown: String,
}

/// How Claude Code authenticates, in its order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// `ANTHROPIC_AUTH_TOKEN`, sent as `Authorization: Bearer`.
    AuthToken,
    /// `ANTHROPIC_API_KEY`, sent as `x-api-key`.
    ApiKey,
    /// `apiKeyHelper`: a command whose output is sent as both headers.
    ApiKeyHelper,
    /// `CLAUDE_CODE_OAUTH_TOKEN`: a subscription token.
    OauthToken,
    /// The claude.ai login (`/login`).
    ClaudeAiLogin,
}

impl CredentialKind {
    /// Whether this is a subscription (claude.ai) credential rather than a key.
    pub fn is_subscription(self) -> bool {
        matches!(self, CredentialKind::OauthToken | CredentialKind::ClaudeAiLogin)
    }
}

/// A credential Claude Code finds.
#[derive(Debug, Clone, Serialize)]
pub struct Credential {
    /// Which kind.
    pub kind: CredentialKind,
    /// The variable or setting name (`ANTHROPIC_API_KEY`, `apiKeyHelper`, `/login`).
    pub name: String,
    /// Where it comes from.
    pub source: Source,
    /// A printable, redacted form.
    pub shown: String,
}

/// Whether a claude.ai login exists (never the token).
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoginPresence {
    /// A login is there.
    pub present: bool,
    /// What shows it (a file's existence, or `oauthAccount` in Claude Code's state file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

/// A settings file that was looked at.
#[derive(Debug, Clone, Serialize)]
pub struct SettingsFileView {
    /// Its scope.
    pub scope: Scope,
    /// The file.
    pub path: PathBuf,
    /// Whether it exists.
    pub exists: bool,
    /// Why it could not be read, if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// For information.
    Info,
    /// Something that stops Claude Code from using the gateway as set up, or that Claude Code warns about.
    Warning,
}

/// One line of explanation: what wins and what to change.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// How serious.
    pub level: Level,
    /// A stable machine-readable code (`project_override`, `auth_conflict`, …).
    pub code: &'static str,
    /// One line for a human.
    pub message: String,
}

/// What `setup` recorded for the user settings file.
#[derive(Debug, Clone, Serialize)]
pub struct SetupSummary {
    /// The last setup's mode.
    pub mode: SetupMode,
    /// First setup (RFC 3339).
    pub created_at: String,
    /// Last setup.
    pub updated_at: String,
    /// The keys setup manages.
    pub keys: Vec<String>,
}

/// What Claude Code would use now, and why.
#[derive(Debug, Clone, Serialize)]
pub struct ClaudeCodeStatus {
    /// This gateway's address.
    pub gateway_url: String,
    /// Whether Claude Code's requests go to this gateway.
    pub uses_gateway: bool,
    /// The effective `ANTHROPIC_BASE_URL` (`None`: Claude Code's default, https://api.anthropic.com).
    pub base_url: Option<Resolved>,
    /// The credential Claude Code sends.
    pub credential: Option<Credential>,
    /// Other credentials present, which Claude Code ignores (and may warn about).
    pub other_credentials: Vec<Credential>,
    /// The effective `ANTHROPIC_CUSTOM_HEADERS` (header names only).
    pub custom_headers: Option<Resolved>,
    /// A cloud-provider switch (`CLAUDE_CODE_USE_BEDROCK`, …) that sends Claude Code elsewhere.
    pub cloud_provider: Option<Resolved>,
    /// Whether a claude.ai login exists.
    pub claude_ai_login: LoginPresence,
    /// The settings files looked at, highest precedence first.
    pub files: Vec<SettingsFileView>,
    /// What `setup` recorded for the user settings file, if anything.
    pub setup: Option<SetupSummary>,
    /// One line per finding.
    pub findings: Vec<Finding>,
}

/// A key setup or restore changed.
#[derive(Debug, Clone, Serialize)]
pub struct KeyChange {
    /// The key (`env.ANTHROPIC_BASE_URL`, `apiKeyHelper`).
    pub key: String,
    /// What happened.
    pub action: ChangeAction,
    /// The value now, printable (redacted for keys), when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shown: Option<String>,
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeAction {
    /// Set to a new value.
    Set,
    /// Removed (restore puts it back).
    Removed,
    /// Put back to its value before setup.
    Restored,
    /// Removed again because it did not exist before setup.
    Unset,
}

/// A key of ours that the user changed since setup, left as it is.
#[derive(Debug, Clone, Serialize)]
pub struct LeftAlone {
    /// The key.
    pub key: String,
    /// Why it was left.
    pub reason: String,
}

/// The dedicated gateway key setup uses.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    /// Its name in the gateway config.
    pub name: String,
    /// Whether setup created it now.
    pub created: bool,
}

/// What `setup` did.
#[derive(Debug, Clone, Serialize)]
pub struct SetupReport {
    /// The settings file.
    pub settings_path: PathBuf,
    /// How Claude Code is pointed at the gateway.
    pub mode: SetupMode,
    /// The keys changed now (empty: it was already set up).
    pub changes: Vec<KeyChange>,
    /// Keys from an earlier setup that the user changed since, left alone.
    pub left_alone: Vec<LeftAlone>,
    /// The copy of the file taken before writing it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<PathBuf>,
    /// The dedicated gateway key, when the mode needs one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedicated_key: Option<KeyInfo>,
    /// Claude Code's view after the change.
    pub status: ClaudeCodeStatus,
}

/// What `restore` did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// The settings file.
    pub settings_path: PathBuf,
    /// Whether setup had changed it (else there was nothing to restore).
    pub had_setup: bool,
    /// Whether the file is byte for byte what it was before setup.
    pub exact: bool,
    /// The keys put back.
    pub changes: Vec<KeyChange>,
    /// Keys of ours the user changed since setup, left as they are.
    pub left_alone: Vec<LeftAlone>,
    /// The copy of the file taken before writing it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<PathBuf>,
}
