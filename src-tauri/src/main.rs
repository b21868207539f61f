//! `llm-gateway-desktop`: LLM Gateway in the tray. A thin shell over the `llm-gateway` library: `feat` (user
//! actions, shared by tray, window and deep links) → `core` (long-lived services; `core/gateway.rs` is the only
//! door to the library), worded by `view`, drawn by `shell` (the toolkit: native on Linux, Tauri elsewhere). The
//! window is another program (`llm-gateway-desktop-window`, `window_main.rs`), so closing it gives all of
//! WebKit's memory back; on Linux this one does not link WebKit at all.

// No console window behind the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod app;
mod core;
mod feat;
mod shell;
mod startup;
mod view;

use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let launched = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Claude Code's apiKeyHelper runs this binary for the gateway key: answer and exit, before the window system,
    // the single-instance check or anything else that prints.
    if let Some(config) = core::gateway::api_key_helper_config(&args) {
        return print_claude_code_key(&config);
    }
    startup::disable_gl();
    startup::init_logging();
    match shell::run(launched) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("LLM Gateway could not start: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `llm-gateway-desktop --config PATH claude-code api-key`: the dedicated key on stdout (what `apiKeyHelper`
/// reads), or why not on stderr with exit status 1.
fn print_claude_code_key(config: &std::path::Path) -> ExitCode {
    match core::gateway::claude_code_api_key(config) {
        Ok(key) => {
            println!("{key}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("llm-gateway-desktop: {e}");
            ExitCode::FAILURE
        }
    }
}
