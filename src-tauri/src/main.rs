//! `llm-gateway-desktop`: LLM Gateway in the tray. A thin Tauri shell over the `llm-gateway` library:
//! `cmd` (commands of one call) → `feat` (user actions, shared by tray, window and deep links) → `core`
//! (long-lived services; `core/gateway.rs` is the only door to the library). `view` words it all.

// No console window behind the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod app;
mod cmd;
mod core;
mod feat;
mod view;

use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let launched = Instant::now();
    init_logging();
    match app::run(launched) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("LLM Gateway could not start its window system: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (`RUST_LOG` filters; default `info`).
fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
