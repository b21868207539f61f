//! The tray's icon and menu as data, drawn from a [`TrayView`]: the shell (`shell/`) renders it with its
//! toolkit. Menu items carry ids; what they do is in `feat`.

use crate::view::{TrayState, TrayView};

/// Menu item ids.
pub mod item {
    /// The request counts line (updated in place).
    pub const COUNTS: &str = "counts";
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

/// An icon as RGBA pixels (decoded from `icons/tray-*.png` at build time).
#[derive(Debug, Clone, Copy)]
pub struct Rgba {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width × height × 4` bytes.
    pub rgba: &'static [u8],
}

mod icons {
    use super::Rgba;
    include!(concat!(env!("OUT_DIR"), "/tray_icons.rs"));
}

/// The icon for a state.
pub fn icon(state: TrayState) -> Rgba {
    match state {
        TrayState::Ok => icons::OK,
        TrayState::Degraded => icons::DEGRADED,
        TrayState::Down => icons::DOWN,
        TrayState::Paused => icons::PAUSED,
    }
}

/// What the menu depends on besides the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extras {
    /// Start at login is on.
    pub autostart: bool,
}

/// One menu entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A line of information (disabled).
    Line {
        /// Its id.
        id: String,
        /// Its text.
        text: String,
    },
    /// An action.
    Action {
        /// Its id (one of [`item`]).
        id: &'static str,
        /// Its label.
        text: String,
        /// Whether it can be chosen now.
        enabled: bool,
    },
    /// An on/off setting.
    Check {
        /// Its id.
        id: &'static str,
        /// Its label.
        text: String,
        /// On.
        checked: bool,
    },
    /// A separator.
    Separator,
}

/// The menu for `view`.
pub fn menu(view: &TrayView, extras: Extras) -> Vec<Entry> {
    let line = |id: String, text: &str| Entry::Line { id, text: text.to_string() };
    let action = |id: &'static str, text: &str, enabled: bool| Entry::Action { id, text: text.to_string(), enabled };
    let mut items = vec![line("status".into(), &view.status)];
    if let Some(counts) = &view.counts {
        items.push(line(item::COUNTS.into(), counts));
    }
    for (n, notice) in view.notices.iter().enumerate() {
        items.push(line(format!("notice-{n}"), &format!("⚠ {notice}")));
    }
    if view.running {
        items.push(Entry::Separator);
        if view.accounts.is_empty() {
            items.push(line("account-none".into(), "No accounts yet"));
        }
        for (n, account) in view.accounts.iter().enumerate() {
            items.push(line(format!("account-{n}"), account));
        }
    }
    items.push(Entry::Separator);
    if let Some(port) = view.suggested_port {
        items.push(action(item::USE_PORT, &format!("Use port {port} instead"), true));
    }
    if view.can_retry {
        items.push(action(item::RETRY, "Try again", true));
    }
    items.push(action(item::OPEN, "Open dashboard", true));
    items.push(action(item::LOGIN, "Log in with Claude…", view.running));
    items.push(action(item::COPY, "Copy gateway address", view.address.is_some()));
    items.push(Entry::Separator);
    // Both work on the settings file with the gateway's address; a paused gateway keeps its address.
    let gateway = view.running || view.paused;
    items.push(action(item::CLAUDE_SETUP, "Set up Claude Code", gateway));
    items.push(action(item::CLAUDE_RESTORE, "Restore Claude Code settings", gateway));
    items.push(Entry::Separator);
    items.push(action(item::PAUSE, if view.paused { "Resume" } else { "Pause" }, view.running || view.paused));
    items.push(Entry::Check { id: item::AUTOSTART, text: "Start at login".into(), checked: extras.autostart });
    items.push(Entry::Separator);
    items.push(action(item::QUIT, "Quit", true));
    items
}

/// Whether going from `shown` to `view` changes only the counts (tooltip and counts line): then the menu is not
/// rebuilt, the counts line is given its new text.
pub fn counts_only(shown: Option<&(TrayView, Extras)>, view: &TrayView, extras: Extras) -> bool {
    shown.is_some_and(|(old, old_extras)| *old_extras == extras && old.same_menu(view) && old.state == view.state)
}

/// The log line for a shown menu (names and states only): what a user sees, and what a reader of the log needs.
pub fn log_shown(view: &TrayView, counts_only: bool) {
    if counts_only {
        tracing::debug!(tooltip = %view.tooltip, "tray counts updated");
    } else {
        tracing::info!(
            state = ?view.state,
            status = %view.status,
            accounts = ?view.accounts,
            tooltip = %view.tooltip,
            "tray menu updated"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::service::Phase;
    use crate::view::tray_view;

    /// Each entry's text and whether it can be chosen (lines cannot).
    fn labels(entries: &[Entry]) -> Vec<(String, bool)> {
        entries
            .iter()
            .filter_map(|e| match e {
                Entry::Line { text, .. } => Some((text.clone(), false)),
                Entry::Action { text, enabled, .. } => Some((text.clone(), *enabled)),
                Entry::Check { text, .. } => Some((text.clone(), true)),
                Entry::Separator => None,
            })
            .collect()
    }

    fn shows(labels: &[(String, bool)], text: &str, enabled: bool) -> bool {
        labels.iter().any(|(t, e)| t == text && *e == enabled)
    }

    #[test]
    fn a_running_gateway_offers_every_action_and_lists_its_accounts() {
        let addr = "127.0.0.1:8787".parse().unwrap();
        let snapshot = crate::core::gateway::Snapshot {
            addr,
            secrets_in_file_fallback: false,
            requests: 0,
            today_requests: None,
            accounts: vec![],
            own_logins: vec![],
        };
        let view = tray_view(&Phase::Running { addr }, Some(&snapshot), 0);
        let entries = menu(&view, Extras { autostart: true });
        let labels = labels(&entries);
        assert_eq!(labels[0], ("Serving on 127.0.0.1:8787 · no accounts yet".to_string(), false));
        assert_eq!(labels[1], ("0 requests since start".to_string(), false));
        assert_eq!(labels[2], ("No accounts yet".to_string(), false));
        for action in ["Open dashboard", "Log in with Claude…", "Set up Claude Code", "Pause", "Quit"] {
            assert!(shows(&labels, action, true), "{action} enabled: {labels:?}");
        }
        assert!(entries.contains(&Entry::Check { id: item::AUTOSTART, text: "Start at login".into(), checked: true }));
    }

    #[test]
    fn a_paused_gateway_offers_resume_but_no_login() {
        let view = tray_view(&Phase::Paused { addr: "127.0.0.1:8787".parse().unwrap() }, None, 0);
        let labels = labels(&menu(&view, Extras { autostart: false }));
        assert!(shows(&labels, "Resume", true), "{labels:?}");
        assert!(shows(&labels, "Log in with Claude…", false), "{labels:?}");
        assert!(shows(&labels, "Copy gateway address", false), "{labels:?}");
        assert!(shows(&labels, "Set up Claude Code", true), "{labels:?}");
    }

    #[test]
    fn a_busy_port_offers_the_free_one_and_a_retry() {
        let view =
            tray_view(&Phase::PortBusy { addr: "127.0.0.1:8787".parse().unwrap(), suggested: Some(8790) }, None, 0);
        let labels = labels(&menu(&view, Extras { autostart: false }));
        assert!(shows(&labels, "Use port 8790 instead", true), "{labels:?}");
        assert!(shows(&labels, "Try again", true), "{labels:?}");
        assert!(shows(&labels, "Pause", false), "{labels:?}");
    }

    #[test]
    fn every_state_has_an_icon_of_its_own_with_whole_pixels() {
        let all = [TrayState::Ok, TrayState::Degraded, TrayState::Down, TrayState::Paused].map(icon);
        for icon in all {
            assert_eq!(icon.rgba.len() as u32, icon.width * icon.height * 4);
        }
        for (n, a) in all.iter().enumerate() {
            for b in &all[n + 1..] {
                assert_ne!(a.rgba, b.rgba, "states are told apart");
            }
        }
    }
}
