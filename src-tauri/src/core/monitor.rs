//! Keeps the tray, the notifications and the window's target true to the gateway's state (on the app's own
//! runtime). The gateway's events
//! drive it (an account changing state, a login, a reload, a lag: the menu is rebuilt at once; finished
//! requests and usage totals: the tooltip's count, at most once a second); a countdown shown in the menu is
//! redrawn when its text would change; and a slow timer ([`SAFETY_INTERVAL`]) refreshes anyway, as a safety net.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::gateway::GatewayEvent;
use super::service::ServiceEvent;
use super::window::Target;
use super::{notify, tray, window};
use crate::app::App;
use crate::view::{self, Observed, TrayView};

/// The longest the tray goes without a refresh when nothing happens.
pub const SAFETY_INTERVAL: Duration = Duration::from_secs(30);
/// Request counts in the tooltip are redrawn at most this often (a busy gateway finishes many per second).
pub const COUNT_INTERVAL: Duration = Duration::from_secs(1);

/// What wakes the monitor.
#[derive(Debug)]
pub enum Wake {
    /// Something happened in the gateway service or the gateway.
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
    /// Today's requests from the last `usage` event.
    today_requests: Option<u64>,
}

/// What a wake asks of the monitor; the most urgent (first) wins when wakes are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    /// Refresh everything now.
    Now,
    /// Only counts moved: refresh within [`COUNT_INTERVAL`].
    Counts,
    /// Nothing to redraw.
    Nothing,
}

/// The monitor loop (on Tauri's async runtime, never the gateway's).
pub async fn run(app: App, mut wakes: mpsc::UnboundedReceiver<Wake>) {
    let mut memory = Memory::default();
    let mut next_refresh = Instant::now();
    let mut counts_due: Option<Instant> = None;
    loop {
        let deadline = counts_due.map_or(next_refresh, |at| at.min(next_refresh));
        let mut due = tokio::select! {
            () = tokio::time::sleep_until(deadline) => Due::Now,
            wake = wakes.recv() => match wake {
                Some(wake) => on_wake(&app, &mut memory, wake),
                None => return,
            },
        };
        // Take whatever else is queued too: one refresh for a burst of events.
        while let Ok(wake) = wakes.try_recv() {
            due = due.min(on_wake(&app, &mut memory, wake));
        }
        match due {
            Due::Now => {}
            Due::Counts => {
                counts_due.get_or_insert_with(|| Instant::now() + COUNT_INTERVAL);
                continue;
            }
            Due::Nothing => continue,
        }
        let redraw_in = refresh(&app, &mut memory).await;
        counts_due = None;
        next_refresh = Instant::now() + redraw_in.map_or(SAFETY_INTERVAL, |d| d.min(SAFETY_INTERVAL));
    }
}

fn on_wake(app: &App, memory: &mut Memory, wake: Wake) -> Due {
    match wake {
        Wake::Refresh | Wake::Service(ServiceEvent::Phase(_)) => Due::Now,
        Wake::Service(ServiceEvent::Gateway(event)) => match event {
            GatewayEvent::AccountChanged { .. } | GatewayEvent::Changed => Due::Now,
            GatewayEvent::LoginCompleted(done) => {
                let who = done.email.unwrap_or(done.account_id);
                notify::show(app, "Logged in", &format!("{who} is ready to use."));
                Due::Now
            }
            GatewayEvent::LoginFailed { message } => {
                notify::show(app, "Login failed", &message);
                Due::Nothing
            }
            GatewayEvent::RequestFinished => Due::Counts,
            GatewayEvent::UsageToday { requests } => {
                memory.today_requests = Some(requests);
                Due::Counts
            }
        },
    }
}

/// Redraws what changed; returns when the menu's text would change next by itself (a countdown).
async fn refresh(app: &App, memory: &mut Memory) -> Option<Duration> {
    let desktop = app.desktop();
    let ops = desktop.service.ops();
    let mut snapshot = ops.as_ref().map(|o| o.snapshot());
    if let Some(s) = snapshot.as_mut()
        && s.today_requests.is_none()
    {
        s.today_requests = memory.today_requests;
    }
    let observed = Observed { phase: desktop.service.phase(), snapshot };
    let now = now_ms();
    for notice in view::notices(memory.last.as_ref(), &observed, now) {
        let (title, body) = notice.text();
        notify::show(app, &title, &body);
    }
    let tray_view = view::tray_view(&observed.phase, observed.snapshot.as_ref(), now);
    let extras = tray::Extras { autostart: app.shell().autostart().unwrap_or(false) };
    let shown = Some((tray_view.clone(), extras));
    if memory.shown != shown {
        app.shell().set_tray(&tray_view, extras, memory.shown.as_ref());
        memory.shown = shown;
    }
    // A paused gateway does not answer: the local page says so.
    let serving = observed.phase.running_addr().is_some();
    let target = match &ops {
        Some(ops) if serving => {
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
            if served { Target::Ui(ops.ui_base()) } else { Target::Local }
        }
        _ => Target::Local,
    };
    window::set_target(app, target);
    window::set_page(app, view::page_state(&observed.phase, observed.snapshot.as_ref(), now));
    let redraw_in = observed.snapshot.as_ref().and_then(|s| view::next_change_in(s, now));
    memory.last = Some(observed);
    redraw_in.map(Duration::from_millis)
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
