//! `llm-gateway-desktop-window`: the app's window, a Tauri webview in a process of its own, started by the tray
//! app (`core/window.rs`) and driven over its stdin/stdout (`core/window_protocol.rs`); or, with `--url URL`, on
//! its own (WebDriver sessions). See `window_app.rs`.

// No console window behind the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod cmd;
mod startup;
mod window_app;
// Shared with the app, whose side of the protocol (the window program's name) goes unused here.
#[allow(dead_code)]
#[path = "core/window_protocol.rs"]
mod window_protocol;

use std::process::ExitCode;

fn main() -> ExitCode {
    startup::disable_gl();
    startup::init_logging();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match window_app::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("the LLM Gateway window could not start: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The window's Tauri context (tauri.conf.json, the bundled local page, capabilities).
fn context() -> tauri::Context<tauri::Wry> {
    tauri::generate_context!()
}
