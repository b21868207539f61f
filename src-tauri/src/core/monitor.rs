//! Keeps the tray, the notifications and the window's target true to the gateway's state. It wakes on the
//! service's events and on a timer (cooldowns end, windows fill up); when the library offers an event stream, a
//! task forwarding its events into [`Trigger`] replaces most of the timer's work, and nothing else changes.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tauri::{AppHandle, Manager};
use tauri_plugin_autostart::ManagerExt;
use tokio::sync::mpsc;

use super::service::ServiceEvent;
use super::window::Target;
use super::{Desktop, gateway, notify, tray, window};
use crate::view::{self, Observed, TrayView};

/// How often the tray is refreshed without an event.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(2);

/// What wakes the monitor.
#[derive(Debug)]
pub enum Wake {
    /// Something happened in the gateway service.
    Service(ServiceEvent),
    /// Refresh now (after a user action).
    Refresh,
}

/// The sending side, kept in [`Desktop`].
#[derive(Debug, Clone)]
pub struct Trigger(mpsc::UnboundedSender<Wake>);

impl Trigger {
    /// A trigger and the receiver [`run`] takes.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<Wake>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self(tx), rx)
    }

    /// Wakes the monitor.
    pub fn wake(&self, wake: Wake) {
        let _ = self.0.send(wake);
    }
}

#[derive(Default)]
struct Memory {
    last: Option<Observed>,
    shown: Option<(TrayView, tray::Extras)>,
    /// The address last probed for the web UI and whether it served one.
    ui: Option<(SocketAddr, bool)>,
}

/// The monitor loop (on Tauri's async runtime, never the gateway's).
pub async fn run(app: AppHandle, mut wakes: mpsc::UnboundedReceiver<Wake>) {
    let mut memory = Memory::default();
    let mut ticker = tokio::time::interval(REFRESH_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            wake = wakes.recv() => match wake {
                Some(Wake::Service(event)) => on_service_event(&app, event),
                Some(Wake::Refresh) => {}
                None => return,
            },
        }
        refresh(&app, &mut memory).await;
    }
}

fn on_service_event(app: &AppHandle, event: ServiceEvent) {
    match event {
        ServiceEvent::Phase(_) => {}
        ServiceEvent::LoginCompleted(done) => {
            let who = done.email.unwrap_or(done.account_id);
            notify::show(app, "Logged in", &format!("{who} is ready to use."));
            window::show(app, "login completed");
        }
        ServiceEvent::LoginFailed(message) => notify::show(app, "Login failed", &message),
    }
}

async fn refresh(app: &AppHandle, memory: &mut Memory) {
    let desktop = app.state::<Desktop>();
    let ops = desktop.service.ops();
    let observed = Observed { phase: desktop.service.phase(), snapshot: ops.as_ref().map(|o| o.snapshot()) };
    let now = now_ms();
    for notice in view::notices(memory.last.as_ref(), &observed, now) {
        let (title, body) = notice.text();
        notify::show(app, &title, &body);
    }
    let tray_view = view::tray_view(&observed.phase, observed.snapshot.as_ref(), now);
    let extras = tray::Extras {
        autostart: app.autolaunch().is_enabled().unwrap_or(false),
        claude_code: gateway::CLAUDE_CODE_SETUP_AVAILABLE,
    };
    if memory.shown.as_ref() != Some(&(tray_view.clone(), extras)) {
        tray::apply(app, &tray_view, extras);
        memory.shown = Some((tray_view, extras));
    }
    let target = match &ops {
        Some(ops) => {
            let addr = ops.snapshot().addr;
            let served = match memory.ui {
                Some((probed, served)) if probed == addr => served,
                _ => {
                    let served = ops.ui_available().await;
                    tracing::info!(served, "probed the gateway's web UI");
                    memory.ui = Some((addr, served));
                    served
                }
            };
            if served { Target::Ui(ops.ui_url()) } else { Target::Local }
        }
        None => Target::Local,
    };
    window::set_target(app, target);
    window::set_page(app, view::page_state(&observed.phase, observed.snapshot.as_ref(), now));
    memory.last = Some(observed);
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
