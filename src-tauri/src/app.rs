//! The app: its state and the start-up both shells share. `shell::run` claims the single instance (a second
//! launch hands its arguments over and exits 0 before anything binds a port), starts the toolkit's event loop and
//! calls [`start`]: the gateway service on its own thread, the monitor, signal handling; then, once the tray exists,
//! [`after_tray`] acts on the launch's deep links or shows the window.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::core::gateway;
use crate::core::monitor::{self, Trigger, Wake};
use crate::core::service::{GatewayService, Phase, ServiceEvent};
use crate::core::window::{self, WindowState};
use crate::core::{Desktop, deeplink};
use crate::feat;
use crate::shell::Shell;

/// Launched by "Start at login": stay in the tray.
pub const HIDDEN_ARG: &str = "--hidden";

/// The app: its state, its shell (tray, notifications, autostart, exit) and the runtime its own tasks run on
/// (the monitor, timers). Cheap to clone; passed to every action.
#[derive(Clone)]
pub struct App(Arc<Inner>);

struct Inner {
    desktop: Desktop,
    shell: Shell,
    tasks: tokio::runtime::Handle,
}

impl App {
    /// The app's state.
    pub fn desktop(&self) -> &Desktop {
        &self.0.desktop
    }

    /// The toolkit side.
    pub fn shell(&self) -> &Shell {
        &self.0.shell
    }

    /// Runs `task` on the app's own runtime (never the gateway's, never the UI thread).
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.0.tasks.spawn(task);
    }
}

/// A runtime for the app's own tasks, on a thread of its own.
pub fn task_runtime() -> std::io::Result<tokio::runtime::Handle> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("app-tasks".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
    Ok(handle)
}

/// Starts the gateway service and the monitor; returns the app. Called by the shell on its UI thread, before the
/// tray exists.
pub fn start(shell: Shell, tasks: tokio::runtime::Handle, launched: Instant) -> std::io::Result<App> {
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
    let desktop = Desktop {
        service,
        window: WindowState::from_env(),
        monitor: trigger,
        clipboard: Mutex::new(None),
        quitting: AtomicBool::new(false),
    };
    let app = App(Arc::new(Inner { desktop, shell, tasks }));
    app.spawn(monitor::run(app.clone(), wakes));
    watch_signals(&app);
    Ok(app)
}

/// Once the tray exists: the launch's deep links, else the window (unless started hidden).
pub fn after_tray(app: &App, args: &[String]) {
    let links = deeplink::links_in(args);
    for link in &links {
        feat::deep_link(app, link);
    }
    if links.is_empty() && !args.iter().any(|a| a == HIDDEN_ARG) {
        window::show(app, "launch", None);
    }
}

/// SIGTERM and SIGINT (logout, `kill`, Ctrl-C in a terminal) quit the way the Quit item does: drain, then exit.
fn watch_signals(app: &App) {
    let handle = app.clone();
    app.desktop().service.spawn(async move {
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
