//! What Claude Code would use now and why: gathers the settings files, the environment and the login presence
//! ([`gather`], I/O), then resolves them in Claude Code's order of precedence ([`evaluate`], pure).
//!
//! Precedence (protocol.md §9): managed settings > project local > project > user settings (their `env` objects
//! merge per variable) > the shell environment. Credentials: `ANTHROPIC_AUTH_TOKEN` > `ANTHROPIC_API_KEY` >
//! `apiKeyHelper` > `CLAUDE_CODE_OAUTH_TOKEN` > the claude.ai login; a cloud-provider switch beats them all.

use std::path::Path;

use serde::Deserialize;

use super::paths::ClaudePaths;
use super::report::*;
use super::settings::{self, Parsed};
use super::state::{Records, SetupRecord};
use super::{ClaudeCodeError, GATEWAY_KEY_HEADER, Inputs, findings, fsio};

/// Claude Code's default API address, used when nothing sets `ANTHROPIC_BASE_URL`.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

/// The variables that switch Claude Code to a cloud provider (then `ANTHROPIC_BASE_URL` is not used).
const CLOUD_SWITCHES: [&str; 3] = ["CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX", "CLAUDE_CODE_USE_FOUNDRY"];

/// One settings file as read for status: parsed, or why not.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    pub source: Source,
    pub parsed: Option<Parsed>,
    pub exists: bool,
    pub error: Option<String>,
}

/// Everything status looks at, read once.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// Settings files, highest precedence first.
    pub layers: Vec<Layer>,
    pub login: LoginPresence,
    pub record: Option<SetupRecord>,
}

fn read_layer(scope: Scope, path: &Path) -> Layer {
    let source = Source { scope, path: Some(path.to_path_buf()) };
    match fsio::read_optional(path) {
        Ok(None) => Layer { source, parsed: None, exists: false, error: None },
        Ok(Some(bytes)) => match settings::parse(path, &bytes) {
            Ok(parsed) => Layer { source, parsed: Some(parsed), exists: true, error: None },
            Err(ClaudeCodeError::InvalidSettings { message, .. }) => {
                Layer { source, parsed: None, exists: true, error: Some(message) }
            }
            Err(e) => Layer { source, parsed: None, exists: true, error: Some(e.to_string()) },
        },
        Err(e) => Layer { source, parsed: None, exists: true, error: Some(e.to_string()) },
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b || matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
}

/// Reads every settings file Claude Code would read, the login presence and the setup record.
pub(crate) fn gather(inputs: &Inputs, paths: &ClaudePaths) -> Result<Snapshot, ClaudeCodeError> {
    let mut layers = Vec::new();
    // Later managed files win for plain values, so the last drop-in comes first.
    for path in paths.managed_files().iter().rev() {
        layers.push(read_layer(Scope::Managed, path));
    }
    for (scope, path) in
        [(Scope::ProjectLocal, &paths.project_local_settings), (Scope::Project, &paths.project_settings)]
    {
        // A project at the home directory has the user file as its "project" file: count it once, as the user's.
        if let Some(path) = path
            && !same_file(path, &paths.user_settings)
        {
            layers.push(read_layer(scope, path));
        }
    }
    layers.push(read_layer(Scope::User, &paths.user_settings));
    let record = Records::new(&inputs.state_dir).get(&paths.user_settings)?;
    Ok(Snapshot { layers, login: login_presence(paths), record })
}

#[derive(Deserialize)]
struct GlobalState {
    /// Presence only: `IgnoredAny` keeps the value out of memory.
    #[serde(rename = "oauthAccount", default)]
    oauth_account: Option<serde::de::IgnoredAny>,
}

/// Whether a claude.ai login exists: the credentials file exists (Linux, Windows), or Claude Code's state file has
/// an `oauthAccount` (all platforms, the macOS Keychain included). The credentials file is never opened.
pub(crate) fn login_presence(paths: &ClaudePaths) -> LoginPresence {
    if paths.credentials.is_file() {
        return LoginPresence { present: true, evidence: Some(format!("{} exists", paths.credentials.display())) };
    }
    let has_account = std::fs::read(&paths.global_state)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<GlobalState>(&bytes).ok())
        .is_some_and(|state| state.oauth_account.is_some());
    if has_account {
        return LoginPresence {
            present: true,
            evidence: Some(format!("oauthAccount in {}", paths.global_state.display())),
        };
    }
    LoginPresence::default()
}

/// A short redacted form of a key or token: its well-known prefix, then `…` and the last four characters.
pub fn redact(value: &str) -> String {
    let value = value.trim();
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < 12 {
        return "…".into();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    let prefix = ["sk-ant-", "lgw-"].into_iter().find(|p| value.starts_with(p)).unwrap_or("");
    format!("{prefix}…{tail}")
}

/// A command with anything that looks like a key redacted.
fn redact_command(command: &str) -> String {
    command
        .split(' ')
        .map(|word| {
            let bare = word.trim_matches(|c| c == '\'' || c == '"');
            if bare.starts_with("sk-ant-") || bare.starts_with("lgw-") { redact(bare) } else { word.to_string() }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a line of `ANTHROPIC_CUSTOM_HEADERS` is an `x-llm-gateway-key` header.
pub(crate) fn is_gateway_key_line(line: &str) -> bool {
    line.split_once(':').is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case(GATEWAY_KEY_HEADER))
}

/// `ANTHROPIC_CUSTOM_HEADERS` shown by header names (its values may be keys).
pub(crate) fn header_names(value: &str) -> String {
    let names: Vec<&str> = value
        .lines()
        .filter_map(|line| line.split_once(':').map(|(name, _)| name.trim()))
        .filter(|name| !name.is_empty())
        .collect();
    if names.is_empty() { "(no headers)".into() } else { format!("headers: {}", names.join(", ")) }
}

fn shown(name: &str, value: &str) -> String {
    match name {
        "ANTHROPIC_BASE_URL" => match url::Url::parse(value) {
            Ok(mut url) if url.password().is_some() || !url.username().is_empty() => {
                let _ = url.set_password(None);
                let _ = url.set_username("");
                url.to_string()
            }
            _ => value.to_string(),
        },
        "ANTHROPIC_CUSTOM_HEADERS" => header_names(value),
        "apiKeyHelper" => redact_command(value),
        n if CLOUD_SWITCHES.contains(&n) => value.to_string(),
        _ => redact(value),
    }
}

fn resolve_with(name: &str, candidates: Vec<(Source, &str)>) -> Option<Resolved> {
    let mut candidates = candidates.into_iter();
    let (source, value) = candidates.next()?;
    Some(Resolved {
        name: name.to_string(),
        shown: shown(name, value),
        source,
        overridden: candidates.map(|(source, v)| Shadowed { source, shown: shown(name, v) }).collect(),
    })
}

impl Snapshot {
    fn parsed(&self) -> impl Iterator<Item = (&Source, &Parsed)> {
        self.layers.iter().filter_map(|l| l.parsed.as_ref().map(|p| (&l.source, p)))
    }

    /// The value a settings file layer gives `env.<name>`, for a scope.
    pub(crate) fn env_in(&self, scope: Scope, name: &str) -> Option<&str> {
        self.parsed().find(|(s, _)| s.scope == scope).and_then(|(_, p)| p.env_str(name))
    }

    /// Every source of variable `name`, highest precedence first: settings files' `env`, then the shell.
    pub(crate) fn env_candidates<'a>(&'a self, inputs: &'a Inputs, name: &str) -> Vec<(Source, &'a str)> {
        let mut out: Vec<(Source, &str)> =
            self.parsed().filter_map(|(s, p)| p.env_str(name).map(|v| (s.clone(), v))).collect();
        if let Some(v) = inputs.env.get(name).map(String::as_str).filter(|v| !v.is_empty()) {
            out.push((Source { scope: Scope::Environment, path: None }, v));
        }
        out
    }

    /// Variable `name` as Claude Code resolves it.
    pub(crate) fn env_var(&self, inputs: &Inputs, name: &str) -> Option<Resolved> {
        resolve_with(name, self.env_candidates(inputs, name))
    }

    /// The top-level setting `name` as Claude Code resolves it (settings files only).
    pub(crate) fn setting(&self, name: &str) -> Option<Resolved> {
        resolve_with(name, self.parsed().filter_map(|(s, p)| p.top_str(name).map(|v| (s.clone(), v))).collect())
    }

    /// The credentials present, in Claude Code's order of precedence (the first is the one it uses).
    pub(crate) fn credentials(&self, inputs: &Inputs) -> Vec<Credential> {
        let mut out = Vec::new();
        let from = |kind, resolved: Option<Resolved>| {
            resolved.map(|r| Credential { kind, name: r.name, source: r.source, shown: r.shown })
        };
        out.extend(from(CredentialKind::AuthToken, self.env_var(inputs, "ANTHROPIC_AUTH_TOKEN")));
        out.extend(from(CredentialKind::ApiKey, self.env_var(inputs, "ANTHROPIC_API_KEY")));
        out.extend(from(CredentialKind::ApiKeyHelper, self.setting("apiKeyHelper")));
        out.extend(from(CredentialKind::OauthToken, self.env_var(inputs, "CLAUDE_CODE_OAUTH_TOKEN")));
        if self.login.present {
            out.push(Credential {
                kind: CredentialKind::ClaudeAiLogin,
                name: "/login".into(),
                source: Source { scope: Scope::Login, path: None },
                shown: self.login.evidence.clone().unwrap_or_default(),
            });
        }
        out
    }

    /// Whether Claude Code has a subscription credential (a claude.ai login or `CLAUDE_CODE_OAUTH_TOKEN`).
    pub(crate) fn signed_in(&self, inputs: &Inputs) -> bool {
        self.credentials(inputs).iter().any(|c| c.kind.is_subscription())
    }
}

/// Whether two base URLs name the same server, loopback names (`localhost`, `127.0.0.1`, `[::1]`) counting as
/// one.
pub fn same_gateway(a: &str, b: &str) -> bool {
    let (Ok(a), Ok(b)) = (url::Url::parse(a.trim()), url::Url::parse(b.trim())) else { return false };
    let loopback = |u: &url::Url| crate::common::net::is_loopback_url(u.as_str(), &["http", "https"]);
    a.scheme() == b.scheme()
        && a.port_or_known_default() == b.port_or_known_default()
        && (a.host() == b.host() || (loopback(&a) && loopback(&b)))
        && a.path().trim_end_matches('/') == b.path().trim_end_matches('/')
}

/// Resolves a snapshot into the status report.
pub(crate) fn evaluate(inputs: &Inputs, snapshot: &Snapshot) -> ClaudeCodeStatus {
    let base_url = snapshot.env_var(inputs, "ANTHROPIC_BASE_URL");
    let cloud_provider = CLOUD_SWITCHES
        .iter()
        .find_map(|name| snapshot.env_var(inputs, name).filter(|r| !matches!(r.shown.trim(), "0" | "false" | "")));
    let effective_url =
        snapshot.env_candidates(inputs, "ANTHROPIC_BASE_URL").first().map_or(DEFAULT_BASE_URL, |(_, v)| *v);
    let uses_gateway = cloud_provider.is_none() && same_gateway(effective_url, &inputs.gateway_url);
    let mut credentials = snapshot.credentials(inputs).into_iter();
    let credential = credentials.next();
    let mut status = ClaudeCodeStatus {
        gateway_url: inputs.gateway_url.clone(),
        uses_gateway,
        base_url,
        credential,
        other_credentials: credentials.collect(),
        custom_headers: snapshot.env_var(inputs, "ANTHROPIC_CUSTOM_HEADERS"),
        cloud_provider,
        claude_ai_login: snapshot.login.clone(),
        files: snapshot
            .layers
            .iter()
            .filter_map(|l| {
                l.source.path.clone().map(|path| SettingsFileView {
                    scope: l.source.scope,
                    path,
                    exists: l.exists,
                    error: l.error.clone(),
                })
            })
            .collect(),
        setup: snapshot.record.as_ref().map(|r| SetupSummary {
            mode: r.mode,
            created_at: r.created_at.clone(),
            updated_at: r.updated_at.clone(),
            keys: r.changes.iter().map(|c| c.key.to_string()).collect(),
        }),
        findings: Vec::new(),
    };
    status.findings = findings::explain(inputs, snapshot, &status, effective_url);
    status
}
