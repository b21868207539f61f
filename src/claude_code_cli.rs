//! `llm-gateway claude-code status|setup|restore [--json]` (and the hidden `api-key` that Claude Code's
//! `apiKeyHelper` runs): fills the library's inputs from this process and prints its reports, one line per
//! finding.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use llm_gateway::claude_code::{
    self, ChangeAction, ClaudeCodeStatus, Finding, Inputs, Level, RestoreReport, SetupContext, SetupMode, SetupReport,
};
use llm_gateway::config::ConfigFile;

/// What to do with Claude Code's settings.
#[derive(Debug, Subcommand)]
pub enum ClaudeCodeCommand {
    /// What Claude Code would use now (base URL, credential) and why, one line per finding.
    Status {
        /// One JSON document.
        #[arg(long)]
        json: bool,
        /// The project directory whose .claude/settings*.json to include (default: the current directory).
        #[arg(long)]
        project: Option<PathBuf>,
    },
    /// Point Claude Code at this gateway: writes only what is needed into its user settings (backed up first).
    Setup {
        /// One JSON document.
        #[arg(long)]
        json: bool,
        /// The project directory to check for overriding settings (default: the current directory).
        #[arg(long)]
        project: Option<PathBuf>,
    },
    /// Undo what setup changed in Claude Code's user settings, leaving every other edit in place.
    Restore {
        /// One JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Print the dedicated gateway key for Claude Code (its apiKeyHelper runs this).
    #[command(hide = true)]
    ApiKey,
}

fn process_env() -> BTreeMap<String, String> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect()
}

fn inputs(config: &ConfigFile, project: Option<PathBuf>) -> Result<Inputs> {
    let project = match project {
        Some(dir) => dir,
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    Ok(Inputs::for_config(config, Some(project), process_env())?)
}

/// Runs one `claude-code` command.
pub fn run(config_path: &Path, command: ClaudeCodeCommand) -> Result<ExitCode> {
    let config = ConfigFile::new(config_path);
    match command {
        ClaudeCodeCommand::Status { json, project } => {
            let status = claude_code::status(&inputs(&config, project)?)?;
            if json {
                print_json(&status)?;
            } else {
                print_status(&status);
            }
        }
        ClaudeCodeCommand::Setup { json, project } => {
            let helper_program = std::env::current_exe().context("cannot find this program's own path")?;
            let ctx = SetupContext { config: config.clone(), secrets: None, helper_program };
            let report = claude_code::setup(&inputs(&config, project)?, &ctx)?;
            if json {
                print_json(&report)?;
            } else {
                print_setup(&report);
            }
        }
        ClaudeCodeCommand::Restore { json } => {
            let report = claude_code::restore(&inputs(&config, None)?)?;
            if json {
                print_json(&report)?;
            } else {
                print_restore(&report);
            }
        }
        ClaudeCodeCommand::ApiKey => {
            let key = claude_code::api_key(&config, None)?;
            println!("{}", key.expose());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn print_findings(findings: &[Finding], warnings_only: bool) {
    for finding in findings {
        match finding.level {
            Level::Warning => println!("warning: {}", finding.message),
            Level::Info if !warnings_only => println!("note: {}", finding.message),
            Level::Info => {}
        }
    }
}

fn print_status(status: &ClaudeCodeStatus) {
    match &status.base_url {
        Some(base) => println!("base URL: {} (from {})", base.shown, base.source),
        None => println!("base URL: {} (Claude Code's default)", claude_code::DEFAULT_BASE_URL),
    }
    match &status.credential {
        Some(c) => println!("credential: {} from {}: {}", c.name, c.source, c.shown),
        None => println!("credential: none"),
    }
    if let Some(headers) = &status.custom_headers {
        println!("custom headers: {} (from {})", headers.shown, headers.source);
    }
    let login = &status.claude_ai_login;
    match &login.evidence {
        Some(evidence) if login.present => println!("claude.ai login: yes ({evidence})"),
        _ => println!("claude.ai login: no"),
    }
    if let Some(setup) = &status.setup {
        println!(
            "set up by llm-gateway ({}), since {}: {}",
            mode_name(setup.mode),
            setup.created_at,
            setup.keys.join(", ")
        );
    }
    print_findings(&status.findings, false);
}

fn mode_name(mode: SetupMode) -> &'static str {
    match mode {
        SetupMode::ApiKeyHelper => "gateway key through apiKeyHelper",
        SetupMode::OwnLogin => "own claude.ai login",
        SetupMode::OwnLoginWithKey => "own claude.ai login plus a gateway key header",
    }
}

fn print_changes(changes: &[claude_code::KeyChange]) {
    for change in changes {
        let value = change.shown.as_deref().map(|v| format!(" = {v}")).unwrap_or_default();
        match change.action {
            ChangeAction::Set => println!("set {}{value}", change.key),
            ChangeAction::Removed => println!("removed {} (restore puts it back)", change.key),
            ChangeAction::Restored => println!("restored {}{value}", change.key),
            ChangeAction::Unset => println!("removed {} (it was not there before setup)", change.key),
        }
    }
}

fn print_setup(report: &SetupReport) {
    let path = report.settings_path.display();
    if report.changes.is_empty() {
        println!("{path} already points Claude Code at this gateway ({})", mode_name(report.mode));
    } else {
        println!("{path}: {}", mode_name(report.mode));
        print_changes(&report.changes);
    }
    if let Some(backup) = &report.backup {
        println!("backup of the previous file: {}", backup.display());
    }
    if let Some(key) = &report.dedicated_key
        && key.created
    {
        println!("created gateway key `{}` for Claude Code (loopback only, kept in the secret store)", key.name);
    }
    for left in &report.left_alone {
        println!("left alone: {} ({})", left.key, left.reason);
    }
    print_findings(&report.status.findings, true);
    if report.status.uses_gateway {
        println!("Claude Code now uses this gateway ({}): start a new `claude` session", report.status.gateway_url);
    }
}

fn print_restore(report: &RestoreReport) {
    let path = report.settings_path.display();
    if !report.had_setup {
        println!("nothing to restore: llm-gateway has not changed {path}");
        return;
    }
    if report.exact {
        println!("{path} is back as it was before setup, byte for byte");
        return;
    }
    print_changes(&report.changes);
    for left in &report.left_alone {
        println!("left alone: {} ({})", left.key, left.reason);
    }
    if let Some(backup) = &report.backup {
        println!("backup of the previous file: {}", backup.display());
    }
    println!("{path}: the keys setup changed are back; your other edits are kept");
}
