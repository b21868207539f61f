//! The toolkit side of the tray app: the event loop, the tray icon and its menu, single instance, deep links,
//! notifications, Start at login, exiting. Each shell offers the same [`Shell`] handle and a `run` entry point;
//! everything else (`core`, `feat`, `view`) is the same on every platform.
//!
//! - Linux (`native.rs`): tao's event loop and the `tray-icon` crate (what Tauri itself uses), single instance
//!   over D-Bus, the `llm-gateway://` handler registered as a `.desktop` file, notify-rust, auto-launch. The tray
//!   process does not link WebKit at all: ~35 MB less resident memory (bench/README.md).
//! - macOS and Windows (`tauri.rs`; on Linux with the `tauri-tray` feature, to test it): a Tauri app with the
//!   single-instance, deep-link, notification and autostart plugins. WebKit/WebView2 there is a system component.

#[cfg(all(target_os = "linux", not(feature = "tauri-tray")))]
mod native;
#[cfg(all(target_os = "linux", not(feature = "tauri-tray")))]
pub use native::{Shell, run};

#[cfg(any(not(target_os = "linux"), feature = "tauri-tray"))]
mod tauri;
#[cfg(any(not(target_os = "linux"), feature = "tauri-tray"))]
pub use self::tauri::{Shell, run};

/// The name autostart entries and notifications carry (Tauri's `productName`).
pub const APP_NAME: &str = "LLM Gateway";
