//! What the app and its window process say to each other: one JSON document per line, over the window
//! process's stdin (app → window) and stdout (window → app).
//!
//! The window lives in a process of its own (the `llm-gateway-desktop-window` binary) so that closing it gives
//! back everything WebKit took: the window's GTK and GL state, the web process and the network process (which
//! WebKit keeps for the whole life of its context on Linux). On Linux the tray process does not even link WebKit.
//!
//! Both binaries compile this file (the window's as `crate::window_protocol`): it names nothing else of either.

use serde::{Deserialize, Serialize};

/// The window program's name, beside the tray app's.
pub const WINDOW_PROGRAM: &str = "llm-gateway-desktop-window";

/// What the bundled local page shows (it asks through the `page_state` command).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageState {
    /// `starting`, `running`, `paused`, `port_busy`, `failed`, `stopping`, `stopped`.
    pub phase: String,
    /// The tray's status line.
    pub status: String,
    /// The gateway's address while running.
    pub address: Option<String>,
    /// The tray's account lines.
    pub accounts: Vec<String>,
    /// The tray's warnings.
    pub notices: Vec<String>,
    /// The busy port, when it is.
    pub busy_port: Option<u16>,
    /// A free port to offer instead.
    pub suggested_port: Option<u16>,
}

impl Default for PageState {
    /// Before the app has said anything (the same as the app's own view of a gateway starting).
    fn default() -> Self {
        Self {
            phase: "starting".into(),
            status: "Starting…".into(),
            address: None,
            accounts: Vec::new(),
            notices: Vec::new(),
            busy_port: None,
            suggested_port: None,
        }
    }
}

/// From the app to its window process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWindow {
    /// Show the window (create it if needed) and bring it forward.
    Show {
        /// Why, for the log.
        reason: String,
    },
    /// What the window shows: the gateway-served UI at `url`, or the bundled local page when `None`.
    Target {
        /// The UI's URL.
        url: Option<String>,
    },
    /// The state the local page displays.
    State {
        /// It.
        state: PageState,
    },
}

/// From the window process (its local page's buttons) to the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromWindow {
    /// Listen on this port instead.
    UsePort {
        /// The port.
        port: u16,
    },
    /// Resume the paused gateway.
    Resume,
    /// Start again after a failure.
    Retry,
    /// Start a Claude login.
    LogIn,
    /// Copy the gateway's address.
    CopyAddress,
    /// The user closed the window; it is hidden.
    Hidden,
}

/// One line of the protocol.
pub fn encode<T: Serialize>(message: &T) -> String {
    // These types always serialise (no maps with non-string keys, no failing Serialize impls).
    let mut line = serde_json::to_string(message).unwrap_or_default();
    line.push('\n');
    line
}

/// Reads one line; `None` for anything else (a stray line some library printed).
pub fn decode<T: for<'de> Deserialize<'de>>(line: &str) -> Option<T> {
    serde_json::from_str(line.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_single_lines() {
        let state = PageState {
            phase: "port_busy".into(),
            status: "Port 8787 is in use by another program".into(),
            address: None,
            accounts: vec!["max · needs login".into()],
            notices: vec![],
            busy_port: Some(8787),
            suggested_port: Some(8788),
        };
        for message in [
            ToWindow::Show { reason: "open dashboard".into() },
            ToWindow::Target { url: Some("http://127.0.0.1:8787/ui/".into()) },
            ToWindow::Target { url: None },
            ToWindow::State { state },
        ] {
            let line = encode(&message);
            assert!(line.ends_with('\n') && !line.trim_end().contains('\n'));
            assert_eq!(decode::<ToWindow>(&line), Some(message));
        }
        for message in [FromWindow::UsePort { port: 9000 }, FromWindow::Resume, FromWindow::LogIn] {
            assert_eq!(decode::<FromWindow>(&encode(&message)), Some(message));
        }
    }

    #[test]
    fn stray_lines_are_ignored() {
        assert_eq!(decode::<FromWindow>("Gtk-Message: 12:00:00.000: Failed to load module"), None);
        assert_eq!(decode::<FromWindow>(r#"{"type":"format_disk"}"#), None);
        assert_eq!(encode(&FromWindow::UsePort { port: 1 }), "{\"type\":\"use_port\",\"port\":1}\n");
    }
}
