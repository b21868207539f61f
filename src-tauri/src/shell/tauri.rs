//! The tray as a Tauri app (macOS and Windows; on Linux with the `tauri-tray` feature): plugins in the order that
//! makes a second launch harmless (single instance first, so a second process hands its arguments over and exits
//! 0 before anything binds a port; deep links next), then, in `setup`, the app ([`crate::app::start`]) and the tray.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tauri::image::Image;
use tauri::menu::{CheckMenuItem, IsMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, RunEvent, Wry};
use tauri_plugin_autostart::ManagerExt;
use tauri_plugin_deep_link::DeepLinkExt;
use tauri_plugin_notification::NotificationExt;

use crate::app::{self, App, HIDDEN_ARG};
use crate::core::service::Phase;
use crate::core::tray::{self, Entry, Extras};
use crate::core::{deeplink, monitor};
use crate::feat;
use crate::view::{self, TrayView};

/// The tray's id.
const TRAY_ID: &str = "main";

/// The handle the app keeps: Tauri's app handle (usable from any thread) and the menu line that changes with
/// every request (updated in place).
#[derive(Clone)]
pub struct Shell(AppHandle, Arc<Mutex<Option<MenuItem<Wry>>>>);

impl Shell {
    /// Shows `view` (from any thread); `shown` is what is on screen now.
    pub fn set_tray(&self, view: &TrayView, extras: Extras, shown: Option<&(TrayView, Extras)>) {
        let Some(icon) = self.0.tray_by_id(TRAY_ID) else { return };
        let counts_only = tray::counts_only(shown, view, extras);
        let mut counts_item = self.1.lock().unwrap_or_else(PoisonError::into_inner);
        let result = if counts_only {
            match (counts_item.as_ref(), &view.counts) {
                (Some(item), Some(counts)) => item.set_text(counts),
                _ => Ok(()),
            }
            .and_then(|()| icon.set_tooltip(Some(&view.tooltip)))
        } else {
            menu(&self.0, &tray::menu(view, extras)).and_then(|(menu, counts)| {
                *counts_item = counts;
                icon.set_icon(Some(state_icon(view)))?;
                icon.set_tooltip(Some(&view.tooltip))?;
                icon.set_menu(Some(menu))
            })
        };
        match result {
            Ok(()) => tray::log_shown(view, counts_only),
            Err(e) => tracing::warn!("cannot update the tray: {e}"),
        }
    }

    /// A desktop notification.
    pub fn notify(&self, title: &str, body: &str) {
        if let Err(e) = self.0.notification().builder().title(title).body(body).show() {
            tracing::debug!("cannot show a notification: {e}");
        }
    }

    /// Whether Start at login is on.
    pub fn autostart(&self) -> Result<bool, String> {
        self.0.autolaunch().is_enabled().map_err(|e| e.to_string())
    }

    /// Turns Start at login on or off.
    pub fn set_autostart(&self, on: bool) -> Result<(), String> {
        let entry = self.0.autolaunch();
        if on { entry.enable() } else { entry.disable() }.map_err(|e| e.to_string())
    }

    /// Ends the app with `code`.
    pub fn exit(&self, code: i32) {
        self.0.exit(code);
    }
}

fn state_icon(view: &TrayView) -> Image<'static> {
    let image = tray::icon(view.state);
    Image::new(image.rgba, image.width, image.height)
}

/// The menu, and its counts line.
fn menu(handle: &AppHandle, entries: &[Entry]) -> tauri::Result<(Menu<Wry>, Option<MenuItem<Wry>>)> {
    let mut items: Vec<Box<dyn IsMenuItem<Wry>>> = Vec::new();
    let mut counts = None;
    for entry in entries {
        items.push(match entry {
            Entry::Line { id, text } => {
                let line = MenuItem::with_id(handle, id, text, false, None::<&str>)?;
                if id == tray::item::COUNTS {
                    counts = Some(line.clone());
                }
                Box::new(line)
            }
            Entry::Action { id, text, enabled } => {
                Box::new(MenuItem::with_id(handle, *id, text, *enabled, None::<&str>)?)
            }
            Entry::Check { id, text, checked } => {
                Box::new(CheckMenuItem::with_id(handle, *id, text, true, *checked, None::<&str>)?)
            }
            Entry::Separator => Box::new(PredefinedMenuItem::separator(handle)?),
        });
    }
    let refs: Vec<&dyn IsMenuItem<Wry>> = items.iter().map(|i| i.as_ref()).collect();
    Ok((Menu::with_items(handle, &refs)?, counts))
}

/// Builds and runs the app; returns only if Tauri could not start (a second launch exits inside the
/// single-instance plugin).
pub fn run(launched: Instant) -> Result<(), String> {
    let tauri_app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|handle, args, _cwd| {
            // A link as the only argument (as the OS passes it) reaches the deep-link plugin's handler instead.
            let links_delivered = args.len() == 2 && deeplink::links_in(&args).len() == 1;
            if let Some(app) = handle.try_state::<App>() {
                feat::second_launch(&app, &args, links_delivered);
            }
        }))
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_autostart::Builder::new().app_name(super::APP_NAME).arg(HIDDEN_ARG).build())
        .setup(move |tauri_app| {
            setup(tauri_app.handle(), launched)?;
            Ok(())
        })
        .build(tauri::generate_context!())
        .map_err(|e| e.to_string())?;
    tauri_app.run(|handle, event| {
        if let RunEvent::ExitRequested { code, api, .. } = event {
            match code {
                // A tray app has no window of its own (the window is another program) and keeps running.
                None => api.prevent_exit(),
                Some(_)
                    if !handle
                        .try_state::<App>()
                        .is_some_and(|app| app.desktop().quitting.load(std::sync::atomic::Ordering::SeqCst)) =>
                {
                    tracing::warn!("exit requested without Quit; the gateway is not drained");
                }
                Some(_) => {}
            }
        }
    });
    Ok(())
}

fn setup(handle: &AppHandle, launched: Instant) -> Result<(), Box<dyn std::error::Error>> {
    let tasks = app::task_runtime()?;
    let app = app::start(Shell(handle.clone(), Arc::default()), tasks, launched)?;
    handle.manage(app.clone());

    let initial = view::tray_view(&Phase::Starting, None, monitor::now_ms());
    let extras = Extras { autostart: app.shell().autostart().unwrap_or(false) };
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(state_icon(&initial))
        .tooltip(&initial.tooltip)
        .menu(&menu(handle, &tray::menu(&initial, extras))?.0)
        .show_menu_on_left_click(true)
        .on_menu_event(|handle, event| {
            if let Some(app) = handle.try_state::<App>() {
                feat::menu_item(&app, event.id().as_ref());
            }
        })
        .build(handle)?;
    tray::log_shown(&initial, false);

    // Registering the scheme runs xdg-mime and update-desktop-database: not on the UI thread.
    #[cfg(any(target_os = "linux", all(debug_assertions, windows)))]
    {
        let handle = handle.clone();
        std::thread::spawn(move || match handle.deep_link().register_all() {
            Ok(()) => tracing::info!("registered the llm-gateway:// link handler"),
            Err(e) => tracing::warn!("cannot register the llm-gateway:// link handler: {e}"),
        });
    }
    let links_app = app.clone();
    handle.deep_link().on_open_url(move |event| {
        for url in event.urls() {
            feat::deep_link(&links_app, url.as_str());
        }
    });
    // The launch's own links come through the plugin (on macOS as an Apple event, not as arguments).
    let mut args: Vec<String> = std::env::args().collect();
    let launch_links = handle.deep_link().get_current().ok().flatten().unwrap_or_default();
    args.retain(|a| deeplink::links_in(&["", a.as_str()]).is_empty());
    args.extend(launch_links.iter().map(|url| url.to_string()));
    app::after_tray(&app, &args);
    Ok(())
}
