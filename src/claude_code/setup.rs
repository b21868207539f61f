//! `setup`: points Claude Code at the gateway by writing only what is needed into the user settings file, and
//! records what it changed (and what was there) so `restore` can undo exactly that.
//!
//! What is "needed" depends on how Claude Code signs in (protocol.md §9):
//! - signed in to claude.ai (or `CLAUDE_CODE_OAUTH_TOKEN`) with own-login forwarding on: `env.ANTHROPIC_BASE_URL`
//!   only while the gateway has no general-purpose client key; with one, also `env.ANTHROPIC_CUSTOM_HEADERS` with
//!   the dedicated key as `x-llm-gateway-key` (so `Authorization` keeps carrying the login);
//! - otherwise: `env.ANTHROPIC_BASE_URL` and `apiKeyHelper` = this binary's `claude-code api-key` command, which
//!   prints the dedicated key from the secret store (no key in the settings file).
//!
//! Credentials in the user settings that would beat the chosen one (`env.ANTHROPIC_AUTH_TOKEN`,
//! `env.ANTHROPIC_API_KEY`, and in own-login mode `apiKeyHelper`) are taken out, recorded, and put back by
//! `restore`: leaving them would make Claude Code send them instead (and warn about an auth conflict). The same
//! credentials in the shell, a project file or managed settings cannot be changed here; the report warns about
//! them and says what to do.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::paths::ClaudePaths;
use super::report::*;
use super::settings::{self, Editor, KeyPath};
use super::state::{Change, Records, SetupMode, SetupRecord, value_hash};
use super::status::{self, header_names, is_gateway_key_line};
use super::{ClaudeCodeError, GATEWAY_KEY_HEADER, Inputs, fsio, key};
use crate::config::ConfigFile;
use crate::secrets::SecretStore;

/// What `setup` needs besides [`Inputs`]: the gateway's config (the dedicated key lives there), its secret store,
/// and the program `apiKeyHelper` runs.
#[derive(Debug, Clone)]
pub struct SetupContext {
    /// The gateway's config file.
    pub config: ConfigFile,
    /// The secret store; opened from the config when `None` and a key is needed (a keychain probe, blocking).
    pub secrets: Option<Arc<dyn SecretStore>>,
    /// The `llm-gateway` binary `apiKeyHelper` runs (the CLI passes `std::env::current_exe()`).
    pub helper_program: PathBuf,
}

pub(crate) use crate::clock::now_rfc3339 as now;

/// The lock file beside a settings file.
pub(crate) fn lock_path(settings: &Path) -> PathBuf {
    let name = settings.file_name().and_then(|n| n.to_str()).unwrap_or("settings.json");
    settings.with_file_name(format!(".{name}.llm-gateway.lock"))
}

/// Quotes `word` for `/bin/sh` (Claude Code runs `apiKeyHelper` through a shell) when it needs it.
pub(crate) fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | ':' | '=' | '+' | ',' | '@' | '%')
        });
    if plain {
        word.to_string()
    } else if cfg!(windows) {
        format!("\"{}\"", word.replace('"', "\"\""))
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The `apiKeyHelper` command for a config file.
pub(crate) fn helper_command(program: &Path, config: &Path) -> String {
    let config = std::path::absolute(config).unwrap_or_else(|_| config.to_path_buf());
    format!(
        "{} --config {} claude-code api-key",
        shell_quote(&program.to_string_lossy()),
        shell_quote(&config.to_string_lossy())
    )
}

/// `base` (the user's own custom headers, if any) with our `x-llm-gateway-key` line in place of any earlier one.
fn merged_headers(base: Option<&str>, key: &str) -> String {
    let ours = format!("{GATEWAY_KEY_HEADER}: {key}");
    let mut lines: Vec<&str> =
        base.unwrap_or("").lines().filter(|l| !l.trim().is_empty() && !is_gateway_key_line(l)).collect();
    lines.push(&ours);
    lines.join("\n")
}

fn decide(inputs: &Inputs, snapshot: &status::Snapshot) -> SetupMode {
    match (inputs.own_login_forwarding && snapshot.signed_in(inputs), inputs.gateway_has_general_keys) {
        (true, false) => SetupMode::OwnLogin,
        (true, true) => SetupMode::OwnLoginWithKey,
        (false, _) => SetupMode::ApiKeyHelper,
    }
}

fn shown(key: &KeyPath, value: &Value) -> String {
    match (key.0.last().map(String::as_str), value.as_str()) {
        (Some("ANTHROPIC_CUSTOM_HEADERS"), Some(v)) => header_names(v),
        (Some("ANTHROPIC_API_KEY" | "ANTHROPIC_AUTH_TOKEN"), Some(v)) => status::redact(v),
        (_, Some(v)) => v.to_string(),
        _ => value.to_string(),
    }
}

/// Puts `key` back to `change.before` when it still holds what setup wrote; says what happened.
pub(crate) fn undo(editor: &Editor, change: &Change) -> Result<KeyChange, LeftAlone> {
    let current = editor.get(&change.key);
    if current.as_ref().map(value_hash) != change.after_sha256 {
        return Err(LeftAlone { key: change.key.to_string(), reason: "changed since setup; left as it is".into() });
    }
    Ok(match &change.before {
        Some(before) => {
            editor.set(&change.key, before, change.before_index);
            KeyChange {
                key: change.key.to_string(),
                action: ChangeAction::Restored,
                shown: Some(shown(&change.key, before)),
            }
        }
        None => {
            editor.remove(&change.key);
            KeyChange { key: change.key.to_string(), action: ChangeAction::Unset, shown: None }
        }
    })
}

/// The keys this mode wants, and their values (`None`: absent).
fn desired_keys(
    inputs: &Inputs,
    mode: SetupMode,
    helper: &str,
    dedicated: Option<&key::DedicatedKey>,
    editor: &Editor,
    record: &SetupRecord,
) -> Vec<(KeyPath, Option<Value>)> {
    let gateway = Value::String(inputs.gateway_url.trim_end_matches('/').to_string());
    let helper = (mode == SetupMode::ApiKeyHelper).then(|| Value::String(helper.to_string()));
    let mut desired = vec![
        (KeyPath::env("ANTHROPIC_BASE_URL"), Some(gateway)),
        (KeyPath::top("apiKeyHelper"), helper),
        (KeyPath::env("ANTHROPIC_AUTH_TOKEN"), None),
        (KeyPath::env("ANTHROPIC_API_KEY"), None),
    ];
    if mode == SetupMode::OwnLoginWithKey
        && let Some(dedicated) = dedicated
    {
        // Merge with the user's own headers as they were before setup, not with our earlier line.
        let headers = KeyPath::env("ANTHROPIC_CUSTOM_HEADERS");
        let current = editor.get(&headers);
        let base = match record.change(&headers) {
            Some(c) if current.as_ref().map(value_hash) == c.after_sha256 => c.before.clone(),
            _ => current,
        };
        let merged = merged_headers(base.as_ref().and_then(Value::as_str), dedicated.key.expose());
        desired.push((headers, Some(Value::String(merged))));
    }
    desired
}

/// Brings the file to `desired`, recording each key's earlier value the first time it changes, and undoes the
/// keys an earlier setup (in another mode) changed that this one does not want.
fn apply(
    editor: &Editor,
    record: &mut SetupRecord,
    desired: &[(KeyPath, Option<Value>)],
) -> (Vec<KeyChange>, Vec<LeftAlone>) {
    let mut changes = Vec::new();
    for (key, want) in desired {
        let current = editor.get(key);
        if &current == want {
            continue;
        }
        if record.change(key).is_none() {
            record.changes.push(Change {
                key: key.clone(),
                before: current.clone(),
                before_index: editor.index_of(key),
                after_sha256: None,
            });
        }
        match want {
            Some(value) => editor.set(key, value, None),
            None => editor.remove(key),
        }
        let mut action = if want.is_some() { ChangeAction::Set } else { ChangeAction::Removed };
        if let Some(at) = record.changes.iter().position(|c| &c.key == key) {
            if &record.changes[at].before == want {
                // Back to what it was before the first setup (a mode switch): nothing of ours left to restore.
                record.changes.remove(at);
                action = if want.is_some() { ChangeAction::Restored } else { ChangeAction::Unset };
            } else {
                record.changes[at].after_sha256 = want.as_ref().map(value_hash);
            }
        }
        changes.push(KeyChange { key: key.to_string(), action, shown: want.as_ref().map(|v| shown(key, v)) });
    }
    let wanted: HashSet<&KeyPath> = desired.iter().map(|(k, _)| k).collect();
    let mut left_alone = Vec::new();
    let mut kept = Vec::new();
    for change in std::mem::take(&mut record.changes) {
        if wanted.contains(&change.key) {
            kept.push(change);
            continue;
        }
        match undo(editor, &change) {
            Ok(done) => changes.push(done),
            Err(left) => left_alone.push(left),
        }
    }
    record.changes = kept;
    (changes, left_alone)
}

/// Points Claude Code at the gateway (blocking: file, config and secret-store I/O; async callers use
/// [`super::setup_async`]).
pub fn setup(inputs: &Inputs, ctx: &SetupContext) -> Result<SetupReport, ClaudeCodeError> {
    let paths = ClaudePaths::new(inputs);
    let user = paths.user_settings.clone();
    fsio::ensure_dir(&paths.config_dir)?;
    let _settings_lock = fsio::Lock::acquire(&lock_path(&user), fsio::LOCK_TIMEOUT)?;
    let records = Records::new(&inputs.state_dir);
    let _records_lock = records.lock()?;

    let original = fsio::read_optional(&user)?;
    let text = match &original {
        Some(bytes) => {
            settings::parse(&user, bytes)?;
            String::from_utf8_lossy(bytes).into_owned()
        }
        None => String::new(),
    };
    let snapshot = status::gather(inputs, &paths)?;
    let mode = decide(inputs, &snapshot);
    let dedicated = match mode {
        SetupMode::OwnLogin => None,
        SetupMode::ApiKeyHelper | SetupMode::OwnLoginWithKey => {
            let secrets = match &ctx.secrets {
                Some(store) => store.clone(),
                None => crate::secrets::open_for_config(&ctx.config.load()?, &ctx.config.dir())?,
            };
            Some(key::ensure(&ctx.config, secrets.as_ref())?)
        }
    };

    let editor = Editor::new(&user, &text)?;
    let env_existed = editor.has("env");
    let mut record = snapshot.record.clone().unwrap_or_else(|| SetupRecord {
        settings_path: user.clone(),
        created_at: now(),
        updated_at: now(),
        mode,
        file_existed: original.is_some(),
        env_created: false,
        original_backup: None,
        written_sha256: None,
        changes: Vec::new(),
    });
    let first_setup = snapshot.record.is_none();

    let helper = helper_command(&ctx.helper_program, ctx.config.path());
    let desired = desired_keys(inputs, mode, &helper, dedicated.as_ref(), &editor, &record);
    let (changes, left_alone) = apply(&editor, &mut record, &desired);
    if !env_existed && editor.has("env") {
        record.env_created = true;
    }

    let new_text = editor.text();
    let mut backup = None;
    if new_text != text {
        if let Some(bytes) = &original {
            backup = Some(fsio::backup(&user, bytes)?);
        }
        if first_setup {
            record.original_backup = backup.clone();
        }
        fsio::replace_file(&user, new_text.as_bytes())?;
        record.written_sha256 = Some(fsio::sha256_hex(new_text.as_bytes()));
        record.updated_at = now();
        tracing::info!(path = %user.display(), ?mode, "Claude Code settings pointed at the gateway");
    }
    record.mode = mode;
    let keep_record = !record.changes.is_empty() || record.env_created;
    records.put(&user, keep_record.then_some(record))?;

    let after = status::evaluate(inputs, &status::gather(inputs, &paths)?);
    Ok(SetupReport {
        settings_path: user,
        mode,
        changes,
        left_alone,
        backup,
        dedicated_key: dedicated.map(|d| KeyInfo { name: d.name, created: d.created }),
        status: after,
    })
}
