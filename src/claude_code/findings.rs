//! One line per finding: which source wins, and what to change. Pure: works on a resolved snapshot.

use super::report::*;
use super::state::SetupMode;
use super::status::{DEFAULT_BASE_URL, Snapshot, is_gateway_key_line, same_gateway};
use super::{GATEWAY_KEY_HEADER, Inputs};

fn warn(code: &'static str, message: String) -> Finding {
    Finding { level: Level::Warning, code, message }
}

fn info(code: &'static str, message: String) -> Finding {
    Finding { level: Level::Info, code, message }
}

/// How to take `name` out of `source`.
fn how_to_remove(name: &str, source: &Source) -> String {
    let key = if name == "apiKeyHelper" { name.to_string() } else { format!("env.{name}") };
    match (source.scope, &source.path) {
        (Scope::Environment, _) => format!("unset {name} in your shell (and remove it from your shell profile)"),
        (Scope::Login, _) => "run /logout in Claude Code".into(),
        (Scope::Managed, Some(path)) => format!("ask your administrator to remove {key} from {}", path.display()),
        (_, Some(path)) => format!("remove {key} from {}", path.display()),
        (_, None) => format!("remove {name}"),
    }
}

fn label(c: &Credential) -> String {
    format!("{} ({})", c.name, c.source)
}

/// Builds the findings for `status`.
pub(crate) fn explain(
    inputs: &Inputs,
    snapshot: &Snapshot,
    status: &ClaudeCodeStatus,
    effective_url: &str,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for file in status.files.iter().filter(|f| f.error.is_some()) {
        out.push(warn(
            "settings_invalid",
            format!(
                "{} cannot be read ({}): Claude Code may ignore it; fix it",
                file.path.display(),
                file.error.as_deref().unwrap_or_default()
            ),
        ));
    }
    if let Some(cloud) = &status.cloud_provider {
        out.push(warn(
            "cloud_provider",
            format!(
                "{}={} ({}) sends Claude Code to a cloud provider, not to ANTHROPIC_BASE_URL; {}",
                cloud.name,
                cloud.shown,
                cloud.source,
                how_to_remove(&cloud.name, &cloud.source)
            ),
        ));
    }
    base_url(inputs, snapshot, status, effective_url, &mut out);
    credentials(inputs, snapshot, status, &mut out);
    gateway_key(inputs, snapshot, status, &mut out);
    out
}

fn base_url(
    inputs: &Inputs,
    snapshot: &Snapshot,
    status: &ClaudeCodeStatus,
    effective_url: &str,
    out: &mut Vec<Finding>,
) {
    let gateway = &inputs.gateway_url;
    if let Some(resolved) = &status.base_url {
        let source = &resolved.source;
        if source.scope == Scope::Managed && !status.uses_gateway {
            out.push(warn(
                "managed_base_url",
                format!(
                    "{source} pins ANTHROPIC_BASE_URL={}; it beats every other source, so Claude Code cannot use \
                     this gateway ({gateway}) unless your administrator changes it",
                    resolved.shown
                ),
            ));
        }
        let user = snapshot.env_in(Scope::User, "ANTHROPIC_BASE_URL");
        if matches!(source.scope, Scope::Project | Scope::ProjectLocal)
            && let Some(user) = user
            && !same_gateway(user, effective_url)
        {
            out.push(warn(
                "project_override",
                format!(
                    "{source} sets ANTHROPIC_BASE_URL={}, overriding the user settings ({user}) in this project; \
                     {} to use {user} here",
                    resolved.shown,
                    how_to_remove("ANTHROPIC_BASE_URL", source)
                ),
            ));
        }
        for shadow in resolved.overridden.iter().filter(|s| s.source.scope == Scope::Environment) {
            if shadow.shown != resolved.shown {
                out.push(info(
                    "environment_ignored",
                    format!(
                        "ANTHROPIC_BASE_URL={} in your shell is ignored: {source} sets {} (settings files beat the \
                         shell)",
                        shadow.shown, resolved.shown
                    ),
                ));
            }
        }
    }
    if status.uses_gateway {
        let from = status.base_url.as_ref().map_or_else(String::new, |r| format!(" (from {})", r.source));
        out.push(info("uses_gateway", format!("Claude Code uses this gateway, {gateway}{from}")));
    } else if status.cloud_provider.is_none() {
        let from = status.base_url.as_ref().map_or_else(|| "its default".to_string(), |r| r.source.to_string());
        let shown = status.base_url.as_ref().map_or(DEFAULT_BASE_URL, |r| r.shown.as_str());
        out.push(warn(
            "not_using_gateway",
            format!(
                "Claude Code uses {shown} ({from}), not this gateway ({gateway}); run `llm-gateway claude-code setup`"
            ),
        ));
    }
}

/// The credential setup meant Claude Code to use, if setup ran.
fn intended(snapshot: &Snapshot) -> Option<&'static [CredentialKind]> {
    Some(match snapshot.record.as_ref()?.mode {
        SetupMode::ApiKeyHelper => &[CredentialKind::ApiKeyHelper],
        SetupMode::OwnLogin | SetupMode::OwnLoginWithKey => {
            &[CredentialKind::OauthToken, CredentialKind::ClaudeAiLogin]
        }
    })
}

fn credentials(inputs: &Inputs, snapshot: &Snapshot, status: &ClaudeCodeStatus, out: &mut Vec<Finding>) {
    let Some(used) = &status.credential else {
        out.push(info(
            "no_credential",
            "Claude Code has no credential yet: it will ask you to sign in (/login)".into(),
        ));
        return;
    };
    let intended = intended(snapshot).filter(|_| status.uses_gateway);
    if let Some(kinds) = intended
        && !kinds.contains(&used.kind)
    {
        out.push(warn(
            "credential_overrides_setup",
            format!(
                "{} beats the credential setup configured for this gateway; {}",
                label(used),
                how_to_remove(&used.name, &used.source)
            ),
        ));
    }
    for other in &status.other_credentials {
        // Two subscription credentials are the same login, not a conflict.
        if used.kind.is_subscription() && other.kind.is_subscription() {
            continue;
        }
        let fix = match intended {
            Some(kinds) if !kinds.contains(&used.kind) => continue, // reported above
            _ => how_to_remove(&other.name, &other.source),
        };
        out.push(warn(
            "auth_conflict",
            format!(
                "auth conflict: Claude Code uses {} and ignores {} (it warns about both being set); {fix}",
                label(used),
                label(other)
            ),
        ));
    }
    if status.uses_gateway && used.kind.is_subscription() && !inputs.own_login_forwarding {
        out.push(warn(
            "own_login_refused",
            format!(
                "Claude Code sends its own claude.ai login ({}), which this gateway is set to refuse; run \
                 `llm-gateway claude-code setup` to use a gateway key instead",
                label(used)
            ),
        ));
    }
}

fn gateway_key(inputs: &Inputs, snapshot: &Snapshot, status: &ClaudeCodeStatus, out: &mut Vec<Finding>) {
    if !status.uses_gateway || !inputs.gateway_has_general_keys {
        return;
    }
    let Some(used) = &status.credential else { return };
    let headers = snapshot.env_candidates(inputs, "ANTHROPIC_CUSTOM_HEADERS");
    let header_sent = headers.first().is_some_and(|(_, value)| value.lines().any(is_gateway_key_line));
    if used.kind.is_subscription() && !header_sent {
        out.push(warn(
            "gateway_key_missing",
            format!(
                "this gateway requires a client key, but Claude Code sends only its claude.ai login; run \
                 `llm-gateway claude-code setup` (it adds {GATEWAY_KEY_HEADER} through ANTHROPIC_CUSTOM_HEADERS)"
            ),
        ));
    }
}
