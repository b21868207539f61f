//! The window, seen from the app: a process of its own (the [`WINDOW_PROGRAM`] beside this one, see `window_app.rs`)
//! that shows the gateway-served UI (`http://127.0.0.1:PORT/ui/`) when the gateway serves one, else the bundled
//! local page (starting, paused, busy port, failed start, a build without the UI). The UI opens signed in: each
//! time the app points a window process at it, it mints a one-time code in-process (`#code=…`), so every new
//! window process starts with a session of its own and no code is ever reused. Closing the window hides it; after
//! `LLM_GATEWAY_DESKTOP_WEBVIEW_TTL_SECS` (default 60) hidden, the window process exits, and with it every
//! byte WebKit held (its GL state, the web and network processes, which WebKit keeps for the life of the
//! process on Linux). Opening the window again starts a new one.
//!
//! This side keeps what the window should show, sends it down the child's stdin, and turns the child's stdout
//! lines (the local page's buttons) into user actions.

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::window_protocol::{FromWindow, PageState, ToWindow, WINDOW_PROGRAM, decode, encode};
use crate::app::App;

/// What the window should show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The bundled local page (`fallback/index.html`).
    Local,
    /// The gateway-served UI at this address (without a sign-in code).
    Ui(String),
}

/// Default time a hidden window keeps its process.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// The window process and what it should show.
#[derive(Debug)]
pub struct WindowState {
    inner: Mutex<Inner>,
    ttl: Duration,
}

#[derive(Debug)]
struct Inner {
    child: Option<Child>,
    target: Target,
    page: PageState,
    /// Bumped on every show and hide: a hide's timer ends the process only if nothing happened since.
    generation: u64,
}

#[derive(Debug)]
struct Child {
    pid: u32,
    stdin: ChildStdin,
}

impl WindowState {
    /// No window yet; the TTL from `LLM_GATEWAY_DESKTOP_WEBVIEW_TTL_SECS` (default 60 s).
    pub fn from_env() -> Self {
        let ttl = std::env::var("LLM_GATEWAY_DESKTOP_WEBVIEW_TTL_SECS")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(DEFAULT_TTL, Duration::from_secs);
        Self {
            inner: Mutex::new(Inner { child: None, target: Target::Local, page: PageState::default(), generation: 0 }),
            ttl,
        }
    }
}

fn send(child: &mut Child, message: &ToWindow) -> std::io::Result<()> {
    child.stdin.write_all(encode(message).as_bytes())?;
    child.stdin.flush()
}

/// Shows the window and brings it forward, starting a window process when there is none; with `page`, the UI
/// opens on that page (`accounts`).
pub fn show(app: &App, reason: &str, page: Option<&str>) {
    let desktop = app.desktop();
    let mut inner = desktop.window.inner.lock().unwrap_or_else(PoisonError::into_inner);
    inner.generation += 1;
    let target = inner.target.clone();
    if let Some(child) = inner.child.as_mut() {
        let navigated = match (page, &target) {
            (Some(_), Target::Ui(_)) => send(child, &target_message(app, &target, page)).is_ok(),
            _ => true,
        };
        if navigated && send(child, &ToWindow::Show { reason: reason.into() }).is_ok() {
            tracing::info!(reason, page = page.unwrap_or("-"), "window shown");
            return;
        }
        // It is exiting (hidden too long) or gone: start another.
        inner.child = None;
    }
    match spawn(app, &inner, reason, page) {
        Ok(child) => {
            tracing::info!(pid = child.pid, reason, "window process started");
            inner.child = Some(child);
        }
        Err(e) => {
            tracing::error!("cannot start the window process: {e}");
            super::notify::show(app, "Cannot open the window", &e.to_string());
        }
    }
}

/// Points the window at `target`.
pub fn set_target(app: &App, target: Target) {
    let desktop = app.desktop();
    let mut inner = desktop.window.inner.lock().unwrap_or_else(PoisonError::into_inner);
    if inner.target == target {
        return;
    }
    inner.target = target.clone();
    if let Some(child) = inner.child.as_mut() {
        tracing::info!(target = ?target, "window navigates");
        let _ = send(child, &target_message(app, &target, None));
    }
}

/// Updates what the local page shows.
pub fn set_page(app: &App, page: PageState) {
    let desktop = app.desktop();
    let mut inner = desktop.window.inner.lock().unwrap_or_else(PoisonError::into_inner);
    if inner.page == page {
        return;
    }
    inner.page = page.clone();
    if let Some(child) = inner.child.as_mut() {
        let _ = send(child, &ToWindow::State { state: page });
    }
}

/// The user closed the window (the process hid it): end the process if it stays hidden for the TTL.
pub fn hidden(app: &App) {
    let desktop = app.desktop();
    let (generation, ttl) = {
        let mut inner = desktop.window.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.generation += 1;
        (inner.generation, desktop.window.ttl)
    };
    tracing::info!("window hidden; its webview goes in {} s unless reopened", ttl.as_secs());
    let app = app.clone();
    app.clone().spawn(async move {
        tokio::time::sleep(ttl).await;
        let desktop = app.desktop();
        let mut inner = desktop.window.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.generation == generation && inner.child.take().is_some() {
            // Closing its stdin ends the window process.
            tracing::info!("webview destroyed after {} s hidden", ttl.as_secs());
        }
    });
}

/// Ends the window process (Quit): closing its stdin makes it exit.
pub fn close(app: &App) {
    let desktop = app.desktop();
    desktop.window.inner.lock().unwrap_or_else(PoisonError::into_inner).child = None;
}

/// Where the window should go: the UI with a fresh sign-in code (on `page`), or the local page. Never logged:
/// the URL carries the code.
fn target_message(app: &App, target: &Target, page: Option<&str>) -> ToWindow {
    let url = match target {
        Target::Local => None,
        // No gateway to mint a code (it stopped meanwhile): the local page says why.
        Target::Ui(_) => app.desktop().service.ops().map(|ops| ops.ui_sign_in_url(page)),
    };
    ToWindow::Target { url }
}

/// The window program, installed beside this one (the `.deb` and the app bundle hold both; `cargo build` builds
/// both).
fn window_program() -> std::io::Result<std::path::PathBuf> {
    let program = std::env::current_exe()?.with_file_name(format!("{WINDOW_PROGRAM}{}", std::env::consts::EXE_SUFFIX));
    if program.is_file() {
        Ok(program)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} is missing (build it with `cargo build -p llm-gateway-desktop`)", program.display()),
        ))
    }
}

fn spawn(app: &App, inner: &Inner, reason: &str, page: Option<&str>) -> std::io::Result<Child> {
    let mut process = Command::new(window_program()?)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let (Some(stdin), Some(stdout)) = (process.stdin.take(), process.stdout.take()) else {
        let _ = process.kill();
        return Err(std::io::Error::other("the window process has no pipes"));
    };
    let mut child = Child { pid: process.id(), stdin };
    send(&mut child, &target_message(app, &inner.target, page))?;
    send(&mut child, &ToWindow::State { state: inner.page.clone() })?;
    send(&mut child, &ToWindow::Show { reason: reason.into() })?;

    let app = app.clone();
    let pid = child.pid;
    std::thread::Builder::new().name("window-process".into()).spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            match decode::<FromWindow>(&line) {
                Some(message) => crate::feat::window_message(&app, message),
                None => tracing::debug!("window process: {line}"),
            }
        }
        let status = process.wait();
        tracing::info!(pid, status = ?status.ok(), "window process exited; its memory is back");
        let desktop = app.desktop();
        let mut inner = desktop.window.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.child.as_ref().is_some_and(|c| c.pid == pid) {
            inner.child = None;
        }
    })?;
    Ok(child)
}
