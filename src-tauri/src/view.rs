//! What the tray and the notifications say, computed from the gateway's phase and a status snapshot. Pure
//! functions (the time is a parameter), so every wording and every state rule is unit-tested without a display.

use crate::core::gateway::{AccountLine, ClaudeCodeRestore, ClaudeCodeSetup, Health, Snapshot};
use crate::core::service::Phase;
pub use crate::core::window_protocol::PageState;

/// The UI page a finished login opens on.
pub const ACCOUNTS_PAGE: &str = "accounts";

/// The tray icon's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayState {
    /// Every enabled account is usable.
    Ok,
    /// Some account is usable, others are cooling down, need a login or are broken.
    Degraded,
    /// No account is usable, or the gateway is not serving.
    Down,
    /// Paused by the user.
    Paused,
}

/// Everything the tray shows; the tray is rebuilt only when this changes.
#[derive(Debug, Clone, PartialEq)]
pub struct TrayView {
    /// Icon.
    pub state: TrayState,
    /// Hover text (macOS, Windows; Linux's AppIndicator has none, so the counts are a menu line too).
    pub tooltip: String,
    /// `12 requests today` (or `since start`) while serving: in the tooltip and as a menu line.
    pub counts: Option<String>,
    /// First menu line.
    pub status: String,
    /// Warnings under it (secrets in the file fallback…).
    pub notices: Vec<String>,
    /// One line per account.
    pub accounts: Vec<String>,
    /// The gateway serves (login, copy address are possible).
    pub running: bool,
    /// Pause offered (running) or Resume (paused).
    pub paused: bool,
    /// A free port to switch to, when the configured one is busy.
    pub suggested_port: Option<u16>,
    /// Retry offered (after a failed start or a busy port).
    pub can_retry: bool,
    /// Its address, to copy.
    pub address: Option<String>,
}

impl TrayView {
    /// Whether `other` shows the same menu but for the counts (which are updated in place, without rebuilding
    /// the menu), the icon and the tooltip.
    pub fn same_menu(&self, other: &TrayView) -> bool {
        let counts_line = |v: &TrayView| v.counts.is_some();
        counts_line(self) == counts_line(other)
            && TrayView {
                state: other.state,
                tooltip: other.tooltip.clone(),
                counts: other.counts.clone(),
                ..self.clone()
            } == *other
    }
}

/// The tray's state for a phase and (while running) a snapshot.
pub fn tray_state(phase: &Phase, snapshot: Option<&Snapshot>) -> TrayState {
    match (phase, snapshot) {
        (Phase::Paused { .. }, _) => TrayState::Paused,
        // No stored account, but Claude Code works on its own login through the gateway: that is the state shown.
        (Phase::Running { .. }, Some(s)) if s.accounts.is_empty() && !s.own_logins.is_empty() => {
            if s.own_logins.iter().any(|o| o.health == Health::Usable) { TrayState::Ok } else { TrayState::Degraded }
        }
        (Phase::Running { .. }, Some(s)) => {
            let enabled: Vec<&AccountLine> = s.accounts.iter().filter(|a| a.health != Health::Disabled).collect();
            let usable = enabled.iter().filter(|a| a.health == Health::Usable).count();
            if usable == 0 {
                TrayState::Down
            } else if usable < enabled.len() {
                TrayState::Degraded
            } else {
                TrayState::Ok
            }
        }
        _ => TrayState::Down,
    }
}

/// The whole tray view.
pub fn tray_view(phase: &Phase, snapshot: Option<&Snapshot>, now_ms: u64) -> TrayView {
    let state = tray_state(phase, snapshot);
    let running = matches!(phase, Phase::Running { .. }) && snapshot.is_some();
    let (status, address) = match (phase, snapshot) {
        (Phase::Running { addr }, Some(s)) => {
            let enabled = s.accounts.iter().filter(|a| a.health != Health::Disabled).count();
            let usable = s.accounts.iter().filter(|a| a.health == Health::Usable).count();
            let accounts = match enabled {
                0 if s.accounts.is_empty() && !s.own_logins.is_empty() => "Claude Code on its own login".to_string(),
                0 if s.accounts.is_empty() => "no accounts yet".to_string(),
                0 => "every account is disabled".to_string(),
                n => format!("{usable} of {n} {} usable", if n == 1 { "account" } else { "accounts" }),
            };
            (format!("Serving on {addr} · {accounts}"), Some(crate::core::gateway::base_url(*addr)))
        }
        (Phase::Running { addr }, None) => (format!("Serving on {addr}"), Some(crate::core::gateway::base_url(*addr))),
        (Phase::Starting, _) => ("Starting…".to_string(), None),
        (Phase::Paused { addr }, _) => (format!("Paused (was serving on {addr})"), None),
        (Phase::PortBusy { addr, .. }, _) => (format!("Port {} is in use by another program", addr.port()), None),
        (Phase::Failed { message }, _) => (format!("Could not start: {}", shorten(message, 90)), None),
        (Phase::Stopping, _) => ("Quitting: finishing open requests…".to_string(), None),
        (Phase::Stopped, _) => ("Stopped".to_string(), None),
    };
    let mut notices = Vec::new();
    if snapshot.is_some_and(|s| s.secrets_in_file_fallback) {
        notices.push("Keychain unavailable: secrets are in the encrypted file".to_string());
    }
    let accounts = match snapshot {
        Some(s) if running => s.accounts.iter().chain(&s.own_logins).map(|a| account_line(a, now_ms)).collect(),
        _ => Vec::new(),
    };
    let counts = snapshot.filter(|_| running).map(|s| match s.today_requests {
        Some(today) => format!("{} today", count(today, "request")),
        None => format!("{} since start", count(s.requests, "request")),
    });
    let tooltip = match (&address, &counts) {
        (Some(url), Some(counts)) => format!("LLM Gateway · {url} · {counts}"),
        (Some(url), None) => format!("LLM Gateway · {url}"),
        _ => format!("LLM Gateway · {status}"),
    };
    TrayView {
        state,
        tooltip,
        counts,
        status,
        notices,
        accounts,
        running,
        paused: matches!(phase, Phase::Paused { .. }),
        suggested_port: match phase {
            Phase::PortBusy { suggested, .. } => *suggested,
            _ => None,
        },
        can_retry: matches!(phase, Phase::PortBusy { .. } | Phase::Failed { .. }),
        address,
    }
}

/// The local page's state.
pub fn page_state(phase: &Phase, snapshot: Option<&Snapshot>, now_ms: u64) -> PageState {
    let view = tray_view(phase, snapshot, now_ms);
    PageState {
        phase: match phase {
            Phase::Starting => "starting",
            Phase::Running { .. } => "running",
            Phase::Paused { .. } => "paused",
            Phase::PortBusy { .. } => "port_busy",
            Phase::Failed { .. } => "failed",
            Phase::Stopping => "stopping",
            Phase::Stopped => "stopped",
        }
        .into(),
        busy_port: match phase {
            Phase::PortBusy { addr, .. } => Some(addr.port()),
            _ => None,
        },
        status: view.status,
        address: view.address,
        accounts: view.accounts,
        notices: view.notices,
        suggested_port: view.suggested_port,
    }
}

/// `max · 5h 12% · 7d 80%`, `work · ready`, `max · cooling down, 1 h 5 min left`, `max · needs login`.
pub fn account_line(account: &AccountLine, now_ms: u64) -> String {
    let mut parts = vec![account.name.clone()];
    match account.health {
        Health::Usable => {
            let windows: Vec<String> = [("5h", account.five_hour), ("7d", account.seven_day)]
                .into_iter()
                .filter_map(|(label, used)| used.map(|u| format!("{label} {}%", percent(u))))
                .collect();
            if windows.is_empty() {
                parts.push("ready".into());
            } else {
                parts.extend(windows);
            }
        }
        Health::CoolingDown => parts.push(match account.cooldown_until_ms {
            Some(until) if until > now_ms => format!("cooling down, {} left", duration(until - now_ms)),
            _ => "cooling down".into(),
        }),
        Health::NeedsLogin => parts.push("needs login".into()),
        Health::Broken => parts.push("credential problem".into()),
        Health::Disabled => parts.push("disabled".into()),
    }
    parts.join(" · ")
}

fn count(n: u64, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// How long until an account line's countdown (`cooling down, 12 min left`, see [`duration`]) would read
/// differently, in ms: at the next whole second in the last minute, else at the next minute boundary of the
/// format in use. `None` when nothing counts down.
pub fn next_change_in(snapshot: &Snapshot, now_ms: u64) -> Option<u64> {
    snapshot
        .accounts
        .iter()
        .filter(|a| a.health == Health::CoolingDown)
        .filter_map(|a| a.cooldown_until_ms?.checked_sub(now_ms).filter(|left| *left > 0))
        .map(|left| {
            // `duration` rounds seconds up; minutes up below an hour ("13 min" until 12:00 is left), whole
            // minutes down from an hour on ("1 h 5 min" until 1:04:59).
            let (step, until_change) = match left {
                0..=60_000 => (1_000, left % 1_000),
                60_001..=3_599_000 => (60_000, left % 60_000),
                _ => (60_000, (left - 59_000) % 60_000),
            };
            if until_change == 0 { step } else { until_change }
        })
        .min()
}

fn percent(fraction: f64) -> u32 {
    (fraction.clamp(0.0, 1.0) * 100.0).round() as u32
}

/// `45 s`, `12 min`, `2 h 5 min`, `3 d 4 h`.
pub fn duration(ms: u64) -> String {
    let secs = ms.div_ceil(1000);
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min", secs.div_ceil(60)),
        3600..=86_399 => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
        _ => format!("{} d {} h", secs / 86_400, (secs % 86_400) / 3600),
    }
}

fn shorten(text: &str, max_chars: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    if line.chars().count() <= max_chars {
        line.to_string()
    } else {
        format!("{}…", line.chars().take(max_chars).collect::<String>())
    }
}

/// The notification after "Set up Claude Code": what changed, or that nothing had to, and what still gets in the
/// way (a managed or project setting that wins over the user settings).
pub fn claude_code_setup_text(done: &ClaudeCodeSetup) -> (String, String) {
    let file = &done.settings_path;
    let mut body = if done.changed.is_empty() {
        format!("{file} already pointed Claude Code at LLM Gateway; nothing changed.")
    } else {
        let backup = if done.backup { " (the previous file is backed up)" } else { "" };
        format!("Changed {} in {file}{backup}.", done.changed.join(", "))
    };
    if !done.left_alone.is_empty() {
        body.push_str(&format!(" Left alone, as you changed them: {}.", done.left_alone.join(", ")));
    }
    if done.uses_gateway {
        if !done.changed.is_empty() {
            body.push_str(" New `claude` sessions go through LLM Gateway.");
        }
        for warning in &done.warnings {
            body.push_str(&format!(" Note: {warning}"));
        }
        let title = if done.changed.is_empty() { "Claude Code already set up" } else { "Claude Code set up" };
        (title.into(), body)
    } else {
        let why = done.warnings.first().map_or("another setting wins over the user settings", String::as_str);
        body.push_str(&format!(" But Claude Code still does not use the gateway: {why}"));
        ("Claude Code not using LLM Gateway yet".into(), body)
    }
}

/// The notification after "Restore Claude Code settings".
pub fn claude_code_restore_text(done: &ClaudeCodeRestore) -> (String, String) {
    let file = &done.settings_path;
    if !done.had_setup {
        return ("Nothing to restore".into(), format!("LLM Gateway has not changed {file}."));
    }
    let mut body = if done.exact {
        format!("{file} is back as it was before setup.")
    } else if done.put_back.is_empty() {
        format!("Nothing of setup's was left to put back in {file}.")
    } else {
        format!("Put back {} in {file}; your other edits are kept.", done.put_back.join(", "))
    };
    if !done.left_alone.is_empty() {
        body.push_str(&format!(" Left alone, as you changed them since: {}.", done.left_alone.join(", ")));
    }
    ("Claude Code settings restored".into(), body)
}

/// Something worth a desktop notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// An account's Claude login must be redone.
    NeedsLogin {
        /// The account's name.
        name: String,
    },
    /// Every enabled account is cooling down; the first one is back after `wait_ms`.
    AllExhausted {
        /// Time until the earliest cooldown ends, when known.
        wait_ms: Option<u64>,
    },
    /// The gateway could not start.
    CouldNotStart {
        /// Why, for the user.
        reason: String,
    },
    /// The keychain did not answer: secrets went to the encrypted file.
    KeychainFallback,
}

impl Notice {
    /// Title and body of the notification.
    pub fn text(&self) -> (String, String) {
        match self {
            Self::NeedsLogin { name } => (
                "Claude login needed".into(),
                format!("The account `{name}` needs a new login: use \"Log in with Claude\" in the tray menu."),
            ),
            Self::AllExhausted { wait_ms } => (
                "Every account is rate-limited".into(),
                match wait_ms {
                    Some(ms) => format!("Requests fail until the first account is back, in {}.", duration(*ms)),
                    None => "Requests fail until an account's limit resets.".into(),
                },
            ),
            Self::CouldNotStart { reason } => ("LLM Gateway could not start".into(), reason.clone()),
            Self::KeychainFallback => (
                "Keychain unavailable".into(),
                "The OS keychain did not answer, so credentials are kept in the encrypted file beside the config."
                    .into(),
            ),
        }
    }
}

/// What one refresh observed.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The phase.
    pub phase: Phase,
    /// The snapshot while running.
    pub snapshot: Option<Snapshot>,
}

/// The notices `next` deserves, given what was observed before (`None` at launch). Each condition is
/// announced when it begins, not again while it lasts.
pub fn notices(previous: Option<&Observed>, next: &Observed, now_ms: u64) -> Vec<Notice> {
    let mut out = Vec::new();
    let was_failed = previous.is_some_and(|p| failure(&p.phase).is_some());
    if let Some(reason) = failure(&next.phase)
        && (!was_failed || previous.is_some_and(|p| p.phase != next.phase))
    {
        out.push(Notice::CouldNotStart { reason });
    }
    let Some(snapshot) = &next.snapshot else { return out };
    let before = previous.and_then(|p| p.snapshot.as_ref());
    for account in &snapshot.accounts {
        let known = before.map(|b| b.accounts.iter().find(|a| a.id == account.id));
        // An account added since (a login just started for it) waits for its first login: nothing to announce.
        let new_or_needed_before = match known {
            Some(None) => true,
            Some(Some(a)) => a.health == Health::NeedsLogin,
            None => false,
        };
        if account.health == Health::NeedsLogin && !new_or_needed_before {
            out.push(Notice::NeedsLogin { name: account.name.clone() });
        }
    }
    if let Some(wait_ms) = exhausted(snapshot, now_ms)
        && before.and_then(|b| exhausted(b, now_ms)).is_none()
    {
        out.push(Notice::AllExhausted { wait_ms });
    }
    if snapshot.secrets_in_file_fallback && !before.is_some_and(|b| b.secrets_in_file_fallback) {
        out.push(Notice::KeychainFallback);
    }
    out
}

fn failure(phase: &Phase) -> Option<String> {
    match phase {
        Phase::PortBusy { addr, suggested } => Some(match suggested {
            Some(port) => {
                format!("Port {} is in use by another program. Use port {port} from the tray menu.", addr.port())
            }
            None => format!("Port {} is in use by another program.", addr.port()),
        }),
        Phase::Failed { message } => Some(message.clone()),
        _ => None,
    }
}

/// `Some(time until the first account is back)` when every enabled account is cooling down.
fn exhausted(snapshot: &Snapshot, now_ms: u64) -> Option<Option<u64>> {
    let enabled: Vec<&AccountLine> = snapshot.accounts.iter().filter(|a| a.health != Health::Disabled).collect();
    if enabled.is_empty() || enabled.iter().any(|a| a.health != Health::CoolingDown) {
        return None;
    }
    Some(enabled.iter().filter_map(|a| a.cooldown_until_ms).min().map(|until| until.saturating_sub(now_ms)))
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
