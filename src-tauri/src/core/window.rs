//! The one window. It shows the gateway-served UI (`http://127.0.0.1:PORT/ui/`) when the gateway serves one,
//! else the local page bundled with the app (starting, paused, busy port, failed start, or no UI yet). Closing
//! it hides it; after `LLM_GATEWAY_DESKTOP_WEBVIEW_TTL_SECS` (default 60) hidden, the webview window is destroyed
//! so WebKit's processes give their memory back, and opening it again creates a new one.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindow, WebviewWindowBuilder};

use super::Desktop;

/// The window's label.
pub const LABEL: &str = "main";

/// Default time a hidden window keeps its webview.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// What the window should show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The bundled local page (`fallback/index.html`).
    Local,
    /// The gateway-served UI at this URL.
    Ui(String),
}

/// The window's bookkeeping.
#[derive(Debug)]
pub struct WindowState {
    /// Bumped on every show and hide: a destroy timer fires only if nothing happened since it was set.
    generation: AtomicU64,
    ttl: Duration,
    target: Mutex<Target>,
}

impl WindowState {
    /// With the TTL from `LLM_GATEWAY_DESKTOP_WEBVIEW_TTL_SECS` (default 60 s).
    pub fn from_env() -> Self {
        let ttl = std::env::var("LLM_GATEWAY_DESKTOP_WEBVIEW_TTL_SECS")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(DEFAULT_TTL, Duration::from_secs);
        Self { generation: AtomicU64::new(0), ttl, target: Mutex::new(Target::Local) }
    }

    fn target(&self) -> Target {
        self.target.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// Shows the window (creating it when it was destroyed) and brings it forward.
pub fn show(app: &AppHandle, reason: &str) {
    let desktop = app.state::<Desktop>();
    desktop.window.generation.fetch_add(1, Ordering::SeqCst);
    if let Some(window) = app.get_webview_window(LABEL) {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
        tracing::info!(reason, "window shown");
        return;
    }
    let target = desktop.window.target();
    let url = match &target {
        Target::Local => WebviewUrl::App("index.html".into()),
        Target::Ui(url) => match url.parse() {
            Ok(url) => WebviewUrl::External(url),
            Err(_) => WebviewUrl::App("index.html".into()),
        },
    };
    match WebviewWindowBuilder::new(app, LABEL, url)
        .title("LLM Gateway")
        .inner_size(1080.0, 760.0)
        .min_inner_size(560.0, 420.0)
        .center()
        .focused(true)
        .build()
    {
        Ok(_) => tracing::info!(reason, "window created and shown"),
        Err(e) => tracing::error!("cannot create the window: {e}"),
    }
}

/// The user closed the window: hide it, and destroy its webview if it stays hidden for the TTL.
pub fn hide(window: &WebviewWindow) {
    let _ = window.hide();
    let app = window.app_handle().clone();
    let desktop = app.state::<Desktop>();
    let generation = desktop.window.generation.fetch_add(1, Ordering::SeqCst) + 1;
    let ttl = desktop.window.ttl;
    tracing::info!("window hidden; its webview goes in {} s unless reopened", ttl.as_secs());
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(ttl).await;
        let desktop = app.state::<Desktop>();
        if desktop.window.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if let Some(window) = app.get_webview_window(LABEL)
            && !window.is_visible().unwrap_or(true)
        {
            match window.destroy() {
                Ok(()) => tracing::info!("webview destroyed after {} s hidden", ttl.as_secs()),
                Err(e) => tracing::warn!("cannot destroy the hidden window: {e}"),
            }
        }
    });
}

/// Points the window at `target` (navigating an open window when it changed).
pub fn set_target(app: &AppHandle, target: Target) {
    let desktop = app.state::<Desktop>();
    {
        let mut current = desktop.window.target.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *current == target {
            return;
        }
        *current = target.clone();
    }
    let Some(window) = app.get_webview_window(LABEL) else { return };
    let url = match &target {
        Target::Ui(url) => url.clone(),
        Target::Local => local_page_url(),
    };
    match url.parse() {
        Ok(url) => {
            tracing::info!(target = ?target, "window navigates");
            if let Err(e) = window.navigate(url) {
                tracing::warn!("cannot navigate the window: {e}");
            }
        }
        Err(e) => tracing::warn!("bad window URL: {e}"),
    }
}

/// Where Tauri serves the bundled page (its custom protocol differs by platform).
fn local_page_url() -> String {
    if cfg!(windows) { "http://tauri.localhost/index.html".into() } else { "tauri://localhost/index.html".into() }
}
