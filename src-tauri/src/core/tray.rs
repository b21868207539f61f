//! The tray icon and its menu, drawn from a [`TrayView`]. Menu items carry ids; what they do is in `feat`.

use tauri::image::Image;
use tauri::menu::{CheckMenuItem, IsMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Wry};

use crate::view::{TrayState, TrayView};

/// The tray's id.
pub const ID: &str = "main";

/// Menu item ids.
pub mod item {
    /// Open the window.
    pub const OPEN: &str = "open";
    /// Start a Claude login in the browser.
    pub const LOGIN: &str = "login";
    /// Copy the gateway's address.
    pub const COPY: &str = "copy";
    /// Listen on the suggested port instead of the busy one.
    pub const USE_PORT: &str = "use-port";
    /// Start again after a failure.
    pub const RETRY: &str = "retry";
    /// Point Claude Code at the gateway.
    pub const CLAUDE_SETUP: &str = "claude-setup";
    /// Undo that.
    pub const CLAUDE_RESTORE: &str = "claude-restore";
    /// Pause or resume.
    pub const PAUSE: &str = "pause";
    /// Start at login on/off.
    pub const AUTOSTART: &str = "autostart";
    /// Drain and quit.
    pub const QUIT: &str = "quit";
}

const ICON_OK: Image<'static> = tauri::include_image!("icons/tray-ok.png");
const ICON_DEGRADED: Image<'static> = tauri::include_image!("icons/tray-degraded.png");
const ICON_DOWN: Image<'static> = tauri::include_image!("icons/tray-down.png");
const ICON_PAUSED: Image<'static> = tauri::include_image!("icons/tray-paused.png");

fn icon(state: TrayState) -> Image<'static> {
    match state {
        TrayState::Ok => ICON_OK,
        TrayState::Degraded => ICON_DEGRADED,
        TrayState::Down => ICON_DOWN,
        TrayState::Paused => ICON_PAUSED,
    }
}

/// What the menu depends on besides the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extras {
    /// Start at login is on.
    pub autostart: bool,
}

/// Creates the tray (at setup, on the main thread).
pub fn create(
    app: &AppHandle,
    view: &TrayView,
    extras: Extras,
    on_item: impl Fn(&AppHandle, &str) + Send + Sync + 'static,
) -> tauri::Result<()> {
    TrayIconBuilder::with_id(ID)
        .icon(icon(view.state))
        .tooltip(&view.tooltip)
        .menu(&menu(app, view, extras)?)
        .show_menu_on_left_click(true)
        .on_menu_event(move |app, event| on_item(app, event.id().as_ref()))
        .build(app)?;
    Ok(())
}

/// Shows `view` (from any thread), touching only what differs from `shown`: a new request count changes the
/// tooltip alone, without rebuilding the menu.
pub fn apply(app: &AppHandle, view: &TrayView, extras: Extras, shown: Option<&(TrayView, Extras)>) {
    let Some(tray) = app.tray_by_id(ID) else { return };
    let tooltip_only =
        shown.is_some_and(|(old, old_extras)| *old_extras == extras && old.same_menu(view) && old.state == view.state);
    let result = if tooltip_only {
        tray.set_tooltip(Some(&view.tooltip))
    } else {
        menu(app, view, extras).and_then(|menu| {
            tray.set_icon(Some(icon(view.state)))?;
            tray.set_tooltip(Some(&view.tooltip))?;
            tray.set_menu(Some(menu))
        })
    };
    if let Err(e) = result {
        tracing::warn!("cannot update the tray: {e}");
    } else if tooltip_only {
        tracing::debug!(tooltip = %view.tooltip, "tray tooltip updated");
    } else {
        // The menu's model, one line (names and states only): what a user sees, and what the desktop tests read.
        tracing::info!(
            state = ?view.state,
            status = %view.status,
            accounts = ?view.accounts,
            tooltip = %view.tooltip,
            "tray menu updated"
        );
    }
}

fn menu(app: &AppHandle, view: &TrayView, extras: Extras) -> tauri::Result<Menu<Wry>> {
    let mut items: Vec<Box<dyn IsMenuItem<Wry>>> = Vec::new();
    let line = |id: String, text: &str| MenuItem::with_id(app, id, text, false, None::<&str>);
    let action = |id: &str, text: &str, enabled: bool| MenuItem::with_id(app, id, text, enabled, None::<&str>);
    items.push(Box::new(line("status".into(), &view.status)?));
    for (n, notice) in view.notices.iter().enumerate() {
        items.push(Box::new(line(format!("notice-{n}"), &format!("⚠ {notice}"))?));
    }
    if view.running {
        items.push(Box::new(PredefinedMenuItem::separator(app)?));
        if view.accounts.is_empty() {
            items.push(Box::new(line("account-none".into(), "No accounts yet")?));
        }
        for (n, account) in view.accounts.iter().enumerate() {
            items.push(Box::new(line(format!("account-{n}"), account)?));
        }
    }
    items.push(Box::new(PredefinedMenuItem::separator(app)?));
    if let Some(port) = view.suggested_port {
        items.push(Box::new(action(item::USE_PORT, &format!("Use port {port} instead"), true)?));
    }
    if view.can_retry {
        items.push(Box::new(action(item::RETRY, "Try again", true)?));
    }
    items.push(Box::new(action(item::OPEN, "Open dashboard", true)?));
    items.push(Box::new(action(item::LOGIN, "Log in with Claude…", view.running)?));
    items.push(Box::new(action(item::COPY, "Copy gateway address", view.address.is_some())?));
    items.push(Box::new(PredefinedMenuItem::separator(app)?));
    // Both work on the settings file with the gateway's address; a paused gateway keeps its address.
    let gateway = view.running || view.paused;
    items.push(Box::new(action(item::CLAUDE_SETUP, "Set up Claude Code", gateway)?));
    items.push(Box::new(action(item::CLAUDE_RESTORE, "Restore Claude Code settings", gateway)?));
    items.push(Box::new(PredefinedMenuItem::separator(app)?));
    let pause = if view.paused { "Resume" } else { "Pause" };
    items.push(Box::new(action(item::PAUSE, pause, view.running || view.paused)?));
    items.push(Box::new(CheckMenuItem::with_id(
        app,
        item::AUTOSTART,
        "Start at login",
        true,
        extras.autostart,
        None::<&str>,
    )?));
    items.push(Box::new(PredefinedMenuItem::separator(app)?));
    items.push(Box::new(action(item::QUIT, "Quit", true)?));
    let refs: Vec<&dyn IsMenuItem<Wry>> = items.iter().map(|i| i.as_ref()).collect();
    Menu::with_items(app, &refs)
}
