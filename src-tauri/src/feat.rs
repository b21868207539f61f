//! User actions, shared by the tray menu, the window's commands, deep links and second launches. Each one is
//! a few calls into `core`; none holds a gateway rule.

use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use crate::app::App;
use crate::core::deeplink::{self, DeepLink};
use crate::core::gateway;
use crate::core::monitor::Wake;
use crate::core::service::Phase;
use crate::core::window_protocol::FromWindow;
use crate::core::{notify, tray, window};
use crate::view;

/// Dispatches a tray menu item.
pub fn menu_item(app: &App, id: &str) {
    match id {
        tray::item::OPEN => open_dashboard(app),
        tray::item::LOGIN => log_in(app),
        tray::item::COPY => copy_address(app),
        tray::item::USE_PORT => use_suggested_port(app),
        tray::item::RETRY => retry(app),
        tray::item::CLAUDE_SETUP => claude_code(app, true),
        tray::item::CLAUDE_RESTORE => claude_code(app, false),
        tray::item::PAUSE => toggle_pause(app),
        tray::item::AUTOSTART => toggle_autostart(app),
        tray::item::QUIT => quit(app),
        _ => {}
    }
}

/// Dispatches what the window process reports (its local page's buttons, its closing).
pub fn window_message(app: &App, message: FromWindow) {
    match message {
        FromWindow::UsePort { port } => use_port(app, port),
        FromWindow::Resume => resume(app),
        FromWindow::Retry => retry(app),
        FromWindow::LogIn => log_in(app),
        FromWindow::CopyAddress => copy_address(app),
        FromWindow::Hidden => window::hidden(app),
    }
}

/// Opens (or re-creates) the window and brings it forward.
pub fn open_dashboard(app: &App) {
    window::show(app, "open dashboard", None);
}

/// Starts a Claude login: the library picks or creates the account and gives the authorize URL, which opens in
/// the system browser. The login completes through the gateway's loopback callback (whose page hands back with
/// `llm-gateway://oauth/done?account=…`) or the `llm-gateway://oauth/callback` deep link; the gateway's
/// `login_completed` event brings the notification.
pub fn log_in(app: &App) {
    let desktop = app.desktop();
    let (Some(ops), Phase::Running { .. }) = (desktop.service.ops(), desktop.service.phase()) else {
        notify::show(app, "LLM Gateway is not serving", "Resume or restart it first, then log in.");
        return;
    };
    let app = app.clone();
    desktop.service.spawn(async move {
        match ops.start_login().await {
            Ok(url) => {
                tracing::info!("login started; opening the system browser on the authorize page");
                let opened = tokio::task::spawn_blocking(move || open::that_detached(url)).await;
                if !matches!(opened, Ok(Ok(()))) {
                    notify::show(&app, "Cannot open a browser", "Open the login page from the dashboard instead.");
                }
            }
            Err(e) => notify::show(&app, "Cannot start the login", &e.to_string()),
        }
        app.desktop().monitor.wake(Wake::Refresh);
    });
}

/// Copies `http://127.0.0.1:PORT` to the clipboard.
pub fn copy_address(app: &App) {
    let desktop = app.desktop();
    let Some(addr) = desktop.service.phase().running_addr() else { return };
    let url = gateway::base_url(addr);
    let mut clipboard = desktop.clipboard.lock().unwrap_or_else(PoisonError::into_inner);
    if clipboard.is_none() {
        *clipboard = arboard::Clipboard::new().map_err(|e| tracing::warn!("no clipboard: {e}")).ok();
    }
    if let Some(clipboard) = clipboard.as_mut() {
        match clipboard.set_text(url) {
            Ok(()) => tracing::info!("gateway address copied to the clipboard"),
            Err(e) => tracing::warn!("cannot copy to the clipboard: {e}"),
        }
    }
}

/// Pause (stop listening; cooldowns, sessions and tokens kept) or resume.
pub fn toggle_pause(app: &App) {
    let desktop = app.desktop();
    match desktop.service.phase() {
        Phase::Running { .. } => desktop.service.pause(),
        Phase::Paused { .. } => desktop.service.resume(),
        _ => {}
    }
}

/// Resumes a paused gateway.
pub fn resume(app: &App) {
    app.desktop().service.resume();
}

/// Starts again after a failed start or a busy port.
pub fn retry(app: &App) {
    app.desktop().service.retry();
}

/// Saves `server.listen` with `port` and restarts the gateway there.
pub fn use_port(app: &App, port: u16) {
    tracing::info!(port, "switching the gateway to another port");
    app.desktop().service.use_port(port);
}

fn use_suggested_port(app: &App) {
    if let Phase::PortBusy { suggested: Some(port), .. } = app.desktop().service.phase() {
        use_port(app, port);
    }
}

fn toggle_autostart(app: &App) {
    let shell = app.shell();
    if let Err(e) = shell.autostart().and_then(|on| shell.set_autostart(!on)) {
        notify::show(app, "Cannot change Start at login", &e);
    }
    app.desktop().monitor.wake(Wake::Refresh);
}

/// Points Claude Code at the gateway (`setup`) or puts its settings back, with a notification of what changed
/// or why nothing could.
fn claude_code(app: &App, setup: bool) {
    let desktop = app.desktop();
    let Some(ops) = desktop.service.ops() else {
        notify::show(app, "LLM Gateway is not running", "Start it first, then set up Claude Code.");
        return;
    };
    let app = app.clone();
    desktop.service.spawn(async move {
        let (title, body) = if setup {
            match ops.claude_code_setup().await {
                Ok(done) => view::claude_code_setup_text(&done),
                Err(e) => ("Claude Code was not set up".into(), e.to_string()),
            }
        } else {
            match ops.claude_code_restore().await {
                Ok(done) => view::claude_code_restore_text(&done),
                Err(e) => ("Claude Code settings were not restored".into(), e.to_string()),
            }
        };
        notify::show(&app, &title, &body);
    });
}

/// Quit: stop listening, let running requests (streams included) finish, then exit 0.
pub fn quit(app: &App) {
    let desktop = app.desktop();
    if desktop.quitting.swap(true, Ordering::SeqCst) {
        return;
    }
    tracing::info!("quit: draining in-flight requests");
    window::close(app);
    let app = app.clone();
    desktop.service.shutdown(move || {
        tracing::info!("gateway stopped; exiting");
        app.shell().exit(0);
    });
}

/// A launch of the app while it runs: its deep links are followed (unless the shell delivers them itself:
/// `links_delivered`), and a plain launch brings the window forward.
pub fn second_launch(app: &App, args: &[String], links_delivered: bool) {
    let links = deeplink::links_in(args);
    tracing::info!(links = links.len(), "another launch forwarded its arguments");
    if links.is_empty() {
        window::show(app, "second launch", None);
    } else if !links_delivered {
        for link in links {
            deep_link(app, &link);
        }
    }
}

/// Acts on an `llm-gateway://` link.
pub fn deep_link(app: &App, link: &str) {
    match deeplink::parse(link) {
        Some(DeepLink::LoginCallback(url)) => {
            tracing::info!("deep link: oauth/callback; completing the login");
            let desktop = app.desktop();
            let Some(ops) = desktop.service.ops() else {
                notify::show(app, "Login failed", "LLM Gateway is not running: start it and log in again.");
                return;
            };
            let app = app.clone();
            // The outcome's notification comes from the gateway's login_completed / login_failed event.
            desktop.service.spawn(async move {
                match ops.complete_login(&url).await {
                    Ok(done) => {
                        tracing::info!(account = %done.account_id, "login completed");
                        window::show(&app, "login completed", Some(view::ACCOUNTS_PAGE));
                    }
                    Err(e) => tracing::warn!("login failed: {e}"),
                }
            });
        }
        Some(DeepLink::LoginDone { account }) => {
            tracing::info!(account = account.as_deref().unwrap_or("-"), "deep link: oauth/done");
            window::show(app, "login done", Some(view::ACCOUNTS_PAGE));
            app.desktop().monitor.wake(Wake::Refresh);
        }
        Some(DeepLink::Open) => window::show(app, "deep link", None),
        None => tracing::warn!("ignoring a link the app does not handle"),
    }
}
