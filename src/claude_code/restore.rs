//! `restore`: undoes what `setup` recorded. When the settings file still holds exactly what setup wrote, the
//! original is written back byte for byte (or removed, if there was none); otherwise each recorded key is put
//! back (its earlier value, or absent) while every other edit stays, and a key of ours the user changed since
//! is left alone and reported.

use super::paths::ClaudePaths;
use super::report::{ChangeAction, KeyChange, RestoreReport};
use super::settings::{self, Editor};
use super::setup::{lock_path, undo};
use super::state::Records;
use super::{ClaudeCodeError, Inputs, fsio};

/// Restores the user settings file (blocking; async callers use [`super::restore_async`]).
pub fn restore(inputs: &Inputs) -> Result<RestoreReport, ClaudeCodeError> {
    let paths = ClaudePaths::new(inputs);
    let user = paths.user_settings.clone();
    let records = Records::new(&inputs.state_dir);
    let mut report = RestoreReport {
        settings_path: user.clone(),
        had_setup: false,
        exact: false,
        changes: Vec::new(),
        left_alone: Vec::new(),
        backup: None,
    };
    // Without a record there is nothing of ours to undo (and no reason to create a lock file).
    if records.get(&user)?.is_none() {
        return Ok(report);
    }
    let _settings_lock = fsio::Lock::acquire(&lock_path(&user), fsio::LOCK_TIMEOUT)?;
    let _records_lock = records.lock()?;
    let Some(record) = records.get(&user)? else { return Ok(report) };
    report.had_setup = true;

    let current = fsio::read_optional(&user)?;
    let all_ours = |action| {
        record.changes.iter().map(|c| KeyChange { key: c.key.to_string(), action, shown: None }).collect::<Vec<_>>()
    };
    let untouched = current.as_deref().map(fsio::sha256_hex) == record.written_sha256;
    if untouched {
        let original = match (&record.original_backup, record.file_existed) {
            (Some(backup), true) => fsio::read_optional(backup)?,
            _ => None,
        };
        if let Some(bytes) = original {
            fsio::replace_file(&user, &bytes)?;
            report.exact = true;
        } else if !record.file_existed {
            fsio::remove_file(&user)?;
            report.exact = true;
        }
        if report.exact {
            report.changes = all_ours(ChangeAction::Restored);
            records.put(&user, None)?;
            tracing::info!(path = %user.display(), "Claude Code settings restored byte for byte");
            return Ok(report);
        }
    }

    // Edited since setup (or the backup is gone): undo key by key.
    let Some(bytes) = current else {
        // The user removed the file: nothing of ours is left in it.
        report.left_alone = record
            .changes
            .iter()
            .map(|c| super::report::LeftAlone { key: c.key.to_string(), reason: "the file was removed".into() })
            .collect();
        records.put(&user, None)?;
        return Ok(report);
    };
    settings::parse(&user, &bytes)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let editor = Editor::new(&user, &text)?;
    for change in record.changes.iter().rev() {
        match undo(&editor, change) {
            Ok(done) => report.changes.push(done),
            Err(left) => report.left_alone.push(left),
        }
    }
    report.changes.reverse();
    report.left_alone.reverse();
    if record.env_created {
        editor.remove_if_empty_object("env");
    }
    let new_text = editor.text();
    if new_text != text {
        report.backup = Some(fsio::backup(&user, &bytes)?);
        fsio::replace_file(&user, new_text.as_bytes())?;
    }
    records.put(&user, None)?;
    tracing::info!(path = %user.display(), restored = report.changes.len(), left = report.left_alone.len(), "Claude Code settings restored");
    Ok(report)
}
