//! `llm-gateway-desktop`: LLM Gateway in the tray. A thin Tauri shell over the `llm-gateway` library:
//! `cmd` (commands of one call) → `feat` (user actions, shared by tray, window and deep links) → `core`
//! (long-lived services; `core/gateway.rs` is the only door to the library). `view` words it all. The window
//! runs in a process of its own (`window_app`), so closing it gives all of WebKit's memory back.

// No console window behind the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod app;
mod cmd;
mod core;
mod feat;
mod view;
mod window_app;

use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let launched = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Claude Code's apiKeyHelper runs this binary for the gateway key: answer and exit, before the window system,
    // the single-instance lock or anything else that prints.
    if let Some(config) = core::gateway::api_key_helper_config(&args) {
        return print_claude_code_key(&config);
    }
    init_logging();
    if std::env::var_os("GDK_GL").is_none() {
        // Neither process draws with OpenGL itself (the tray has no window; in the window, WebKit composites on its
        // own), but GTK's X11 backend loads the GL driver at start-up to pick visuals: with Mesa's software
        // renderer that is ~50 MB of LLVM in the tray process and ~80 MB in WebKit's web process. The window
        // process and WebKit's helpers inherit this.
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("GDK_GL", "disable") };
    }
    let result = if args.first().map(String::as_str) == Some(core::window_protocol::WINDOW_ARG) {
        window_app::run(&args[1..])
    } else {
        app::run(launched)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("LLM Gateway could not start its window system: {e}");
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

/// The app's Tauri context (tauri.conf.json, the bundled page, capabilities), for both processes.
fn context() -> tauri::Context<tauri::Wry> {
    tauri::generate_context!()
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
