//! Claude Code's `apiKeyHelper` pointed at the desktop app's own binary (what "Set up Claude Code" writes when no
//! `llm-gateway` CLI is installed beside the app): the command in the settings file, run through a shell as
//! Claude Code runs it, prints the dedicated gateway key, without a display and without starting the app.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use llm_gateway::claude_code::Environment;
use llm_gateway::manage::Ops;

const DESKTOP: &str = env!("CARGO_BIN_EXE_llm-gateway-desktop");

fn set_up_claude_code(config: &Path, home: &Path) {
    let env = Environment { vars: BTreeMap::from([("HOME".into(), home.display().to_string())]), managed_dir: None };
    let ops = Ops::offline(config).with_claude_code_env(env);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(ops.claude_code_setup(Some(DESKTOP.into()))).expect("setup");
}

/// Runs a command line through `sh -c` with only the variables a helper needs (no display, no D-Bus session).
fn run_shell(command: &str, home: &Path) -> std::process::Output {
    Command::new("sh")
        .arg("-c")
        .arg(command)
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap()
}

#[test]
fn the_api_key_helper_written_by_setup_runs_the_desktop_binary_and_prints_the_dedicated_key() {
    let dir = tempfile::tempdir().unwrap();
    let (config, home) = (dir.path().join("config.yaml"), dir.path().join("home"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(&config, "secrets:\n  backend: file\n").unwrap();
    set_up_claude_code(&config, &home);

    let settings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.join(".claude/settings.json")).unwrap()).unwrap();
    let helper = settings["apiKeyHelper"].as_str().expect("setup wrote an apiKeyHelper (no claude.ai login here)");
    assert!(helper.starts_with(DESKTOP) && helper.ends_with("claude-code api-key"), "{helper}");

    let out = run_shell(helper, &home);
    assert!(out.status.success(), "the helper failed: {}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8(out.stdout).unwrap();
    let key = llm_gateway::claude_code::api_key(&llm_gateway::config::ConfigFile::new(&config), None).unwrap();
    assert_eq!(printed, format!("{}\n", key.expose()), "stdout is the key and nothing else");
    assert!(out.stderr.is_empty(), "nothing on stderr: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_api_key_helper_without_a_dedicated_key_fails_with_a_message_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "secrets:\n  backend: file\n").unwrap();
    let out = Command::new(DESKTOP)
        .args(["--config", config.to_str().unwrap(), "claude-code", "api-key"])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no key printed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("claude-code"), "the message says what is missing: {stderr}");
}
