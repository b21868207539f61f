//! Long-lived services: the gateway service (its own thread and runtime), the tray, the window, deep links,
//! notifications and the monitor that keeps the tray true. `gateway.rs` is the only door to the library.

pub mod deeplink;
pub mod gateway;
pub mod monitor;
pub mod notify;
pub mod service;
pub mod tray;
pub mod window;
pub mod window_protocol;

use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

/// The app's state, held by [`crate::app::App`]; no globals.
pub struct Desktop {
    /// The gateway on its own thread.
    pub service: service::GatewayService,
    /// The window process (hidden → ended after a while).
    pub window: window::WindowState,
    /// Wakes the monitor (the service's phases and the gateway's events, user actions).
    pub monitor: monitor::Trigger,
    /// The clipboard, kept open: on X11 the copied text lives only as long as its owner.
    pub clipboard: Mutex<Option<arboard::Clipboard>>,
    /// Quit was chosen: the gateway is draining.
    pub quitting: AtomicBool,
}
