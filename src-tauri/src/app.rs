//! Start-up and the event loop: plugins in the order that makes a second launch harmless (single instance first,
//! so a second process hands its arguments over and exits 0 before anything binds a port; deep links next),
//! then, in `setup`, the gateway service on its own thread, the tray, the monitor and the window.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tauri::{AppHandle, Manager, RunEvent};
use tauri_plugin_deep_link::DeepLinkExt;

use crate::core::gateway;
use crate::core::monitor::{self, Trigger, Wake};
use crate::core::service::{GatewayService, Phase, ServiceEvent};
use crate::core::window::{self, WindowState};
use crate::core::{Desktop, tray};
use crate::{feat, view};

/// Launched by "Start at login": stay in the tray.
pub const HIDDEN_ARG: &str = "--hidden";

/// Builds and runs the app; returns only if Tauri could not start.
pub fn run(launched: Instant) -> Result<(), tauri::Error> {
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, args, _cwd| feat::second_launch(app, &args)))
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_autostart::Builder::new().arg(HIDDEN_ARG).build())
        .setup(move |app| {
            setup(app.handle(), launched)?;
            Ok(())
        })
        .build(crate::context())?;
    app.run(|app, event| {
        if let RunEvent::ExitRequested { code, api, .. } = event {
            match code {
                // A tray app has no window of its own (the window is another process) and keeps running.
                None => api.prevent_exit(),
                Some(_) if !app.state::<Desktop>().quitting.load(Ordering::SeqCst) => {
                    tracing::warn!("exit requested without Quit; the gateway is not drained");
                }
                Some(_) => {}
            }
        }
    });
    Ok(())
}

fn setup(app: &AppHandle, launched: Instant) -> Result<(), Box<dyn std::error::Error>> {
    let (trigger, wakes) = Trigger::new();
    let service = {
        let trigger = trigger.clone();
        let first_ready = AtomicBool::new(true);
        GatewayService::launch(gateway::config_path(), move |event| {
            if let ServiceEvent::Phase(Phase::Running { addr }) = &event {
                let url = gateway::base_url(*addr);
                if first_ready.swap(false, Ordering::SeqCst) {
                    // The launch-to-ready time (the desktop bench reads this line too).
                    tracing::info!(ms = launched.elapsed().as_millis() as u64, "gateway ready on {url}");
                } else {
                    tracing::info!("gateway serving on {url}");
                }
            }
            trigger.wake(Wake::Service(event));
        })?
    };
    app.manage(Desktop {
        service,
        window: WindowState::from_env(),
        monitor: trigger,
        clipboard: Mutex::new(None),
        quitting: AtomicBool::new(false),
    });

    let initial = view::tray_view(&Phase::Starting, None, monitor::now_ms());
    let extras = tray::Extras { autostart: false };
    tray::create(app, &initial, extras, feat::menu_item)?;
    tauri::async_runtime::spawn(monitor::run(app.clone(), wakes));
    watch_signals(app);

    // Registering the scheme runs xdg-mime and update-desktop-database: not on the UI thread.
    #[cfg(any(target_os = "linux", all(debug_assertions, windows)))]
    {
        let app = app.clone();
        std::thread::spawn(move || match app.deep_link().register_all() {
            Ok(()) => tracing::info!("registered the llm-gateway:// link handler"),
            Err(e) => tracing::warn!("cannot register the llm-gateway:// link handler: {e}"),
        });
    }
    let links_app = app.clone();
    app.deep_link().on_open_url(move |event| {
        for url in event.urls() {
            feat::deep_link(&links_app, url.as_str());
        }
    });
    let launch_links = app.deep_link().get_current().ok().flatten().unwrap_or_default();
    for url in &launch_links {
        feat::deep_link(app, url.as_str());
    }
    if launch_links.is_empty() && !std::env::args().any(|a| a == HIDDEN_ARG) {
        window::show(app, "launch", None);
    }
    Ok(())
}

/// SIGTERM and SIGINT (logout, `kill`, Ctrl-C in a terminal) quit the way the Quit item does: drain, then exit.
fn watch_signals(app: &AppHandle) {
    let handle = app.clone();
    app.state::<Desktop>().service.spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
                tracing::warn!("cannot watch SIGTERM/SIGINT");
                return;
            };
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = int.recv() => tracing::info!("SIGINT received"),
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        feat::quit(&handle);
    });
}
