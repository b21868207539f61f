//! The window process (`llm-gateway-desktop-window`, started by the app, never by users): one Tauri window and
//! nothing else (no tray, no gateway, no plugins). It does what the app says on stdin
//! ([`ToWindow`]) and reports the local page's buttons and the window's closing on stdout ([`FromWindow`]).
//! When its stdin closes (the app ended it after the window stayed hidden, or quit), it exits.
//!
//! `llm-gateway-desktop-window --url URL` is the same window on its own: it opens `URL` at once, reads no instructions and
//! exits when the window is closed. WebDriver sessions (`tauri-driver`, which starts the application itself with
//! no stdin) drive the real window this way, pointed at a running app's UI with a sign-in code.

use std::io::{BufRead, Write};
use std::sync::{Mutex, PoisonError};

use tauri::{AppHandle, Manager, RunEvent, WebviewUrl, WebviewWindowBuilder, WindowEvent};

use crate::cmd;
use crate::window_protocol::{FromWindow, PageState, ToWindow, decode, encode};

/// The window's label.
pub const LABEL: &str = "main";

/// The window process's state.
#[derive(Debug, Default)]
pub struct WindowProcess {
    page: Mutex<PageState>,
    /// The gateway UI's URL, or `None` for the bundled page.
    target: Mutex<Option<String>>,
    out: Mutex<Option<std::io::Stdout>>,
}

impl WindowProcess {
    /// The local page's state.
    pub fn page(&self) -> PageState {
        self.page.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Tells the app.
    pub fn tell(&self, message: FromWindow) {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        let out = out.get_or_insert_with(std::io::stdout);
        if out.write_all(encode(&message).as_bytes()).and_then(|()| out.flush()).is_err() {
            tracing::debug!("the app is gone; message dropped");
        }
    }
}

/// `--url URL` among the window process's arguments.
pub const URL_ARG: &str = "--url";

/// Runs the window process until its stdin closes, or (with `--url`) until its window is closed.
pub fn run(args: &[String]) -> Result<(), tauri::Error> {
    let standalone = args.iter().position(|a| a == URL_ARG).and_then(|at| args.get(at + 1)).cloned();
    let on_its_own = standalone.is_some();
    let app = tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![
            cmd::page_state,
            cmd::use_port,
            cmd::resume,
            cmd::retry,
            cmd::log_in,
            cmd::copy_address
        ])
        .on_window_event(move |window, event| {
            if let WindowEvent::CloseRequested { api, .. } = event
                && !on_its_own
            {
                api.prevent_close();
                let _ = window.hide();
                window.app_handle().state::<WindowProcess>().tell(FromWindow::Hidden);
            }
        })
        .setup(move |app| {
            app.manage(WindowProcess::default());
            let handle = app.handle().clone();
            match standalone {
                Some(url) => {
                    let state = handle.state::<WindowProcess>();
                    *state.target.lock().unwrap_or_else(PoisonError::into_inner) = Some(url);
                    show(&handle, &state, "--url");
                }
                None => {
                    std::thread::Builder::new().name("app-commands".into()).spawn(move || listen(&handle))?;
                }
            }
            Ok(())
        })
        .build(crate::context())?;
    app.run(move |_, event| {
        if let RunEvent::ExitRequested { code: None, api, .. } = event
            && !on_its_own
        {
            // The window is only hidden or not created yet; the app decides when this process ends.
            api.prevent_exit();
        }
    });
    Ok(())
}

fn listen(app: &AppHandle) {
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Some(message) = decode::<ToWindow>(&line) else {
            tracing::warn!("window process: unreadable message from the app");
            continue;
        };
        let state = app.state::<WindowProcess>();
        match message {
            ToWindow::State { state: page } => *state.page.lock().unwrap_or_else(PoisonError::into_inner) = page,
            ToWindow::Target { url } => {
                *state.target.lock().unwrap_or_else(PoisonError::into_inner) = url.clone();
                if let Some(window) = app.get_webview_window(LABEL) {
                    navigate(&window, url.as_deref());
                }
            }
            ToWindow::Show { reason } => show(app, &state, &reason),
        }
    }
    app.exit(0);
}

fn show(app: &AppHandle, state: &WindowProcess, reason: &str) {
    if let Some(window) = app.get_webview_window(LABEL) {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
        return;
    }
    let target = state.target.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let url = match target.as_deref().map(str::parse) {
        Some(Ok(url)) => WebviewUrl::External(url),
        _ => WebviewUrl::App("index.html".into()),
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

fn navigate(window: &tauri::WebviewWindow, url: Option<&str>) {
    // Where Tauri serves the bundled page (its custom protocol differs by platform).
    let local = if cfg!(windows) { "http://tauri.localhost/index.html" } else { "tauri://localhost/index.html" };
    match url.unwrap_or(local).parse() {
        Ok(url) => {
            if let Err(e) = window.navigate(url) {
                tracing::warn!("cannot navigate the window: {e}");
            }
        }
        Err(e) => tracing::warn!("bad window URL: {e}"),
    }
}
