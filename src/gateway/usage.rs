//! The gateway's side of usage: where a finished request's record goes (metrics, the store, events), the plan
//! windows kept across restarts, and the metrics page with its scrape-time gauges.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{EventKind, Gateway};
use crate::accounts::{AccountList, LiveAccount, RateWindows};
use crate::usage::{ClientKind, Metrics, PlanSubject, RequestRate, RequestRecord, Usage};

/// Requests since start-up by client kind (status shows them; one relaxed atomic add per request).
#[derive(Debug, Default)]
pub(crate) struct ClientCounter([AtomicU64; ClientKind::ALL.len()]);

impl ClientCounter {
    fn index(kind: ClientKind) -> usize {
        match kind {
            ClientKind::ClaudeCode => 0,
            ClientKind::AnthropicSdk => 1,
            ClientKind::Openai => 2,
            ClientKind::Other => 3,
        }
    }

    fn add(&self, kind: ClientKind) {
        self.0[Self::index(kind)].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far.
    pub(crate) fn snapshot(&self) -> super::status::ClientCounts {
        let n = |kind: ClientKind| self.0[Self::index(kind)].load(Ordering::Relaxed);
        super::status::ClientCounts {
            claude_code: n(ClientKind::ClaudeCode),
            anthropic_sdk: n(ClientKind::AnthropicSdk),
            openai: n(ClientKind::Openai),
            other: n(ClientKind::Other),
        }
    }
}

/// How long after a finished request the `usage` event follows: past the writer's batch window, so the totals
/// include the request; requests finishing meanwhile share the event.
const USAGE_EVENT_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// An account's windows are written at most this often (API keys report new `remaining` counts on every answer).
const WINDOW_SAVE_INTERVAL_MS: u64 = 1000;

impl Gateway {
    /// The usage store.
    pub fn usage(&self) -> &Usage {
        &self.usage
    }

    /// The Prometheus metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Per-client-key requests-per-minute buckets.
    pub(crate) fn key_rates(&self) -> &RequestRate {
        &self.key_rates
    }

    /// Takes a finished request's record: counted in the metrics, then handed to the store (never waits: a full
    /// queue drops and counts it).
    /// With event subscribers, the record (priced) is also published as `request_finished`, and a `usage` event
    /// with today's totals follows within [`USAGE_EVENT_DELAY`] (one per burst: the totals come from the store,
    /// after the writer's batch). Without subscribers nothing is cloned or scheduled.
    pub(crate) fn record_request(&self, mut record: RequestRecord) {
        self.clients_seen.add(record.client_kind);
        self.metrics.observe(&record);
        self.usage.price(&mut record);
        if self.events.has_subscribers() {
            self.publish_request(record.clone());
            self.schedule_usage_event();
        }
        self.usage.record_priced(record);
    }

    /// Requests started today (UTC), from memory (`None` when recording is off): the tray's count.
    pub fn requests_today(&self) -> Option<u64> {
        self.usage.requests_today()
    }

    /// Publishes today's totals once, [`USAGE_EVENT_DELAY`] from now, unless that is already scheduled.
    fn schedule_usage_event(&self) {
        if !self.usage.is_enabled() || self.usage_event_due.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.usage_event_due.store(false, Ordering::Release);
            return;
        };
        let (usage, events, due) = (self.usage.clone(), self.events.clone(), self.usage_event_due.clone());
        runtime.spawn(async move {
            // Untracked but short: it ends with the bus at shutdown rather than outliving the gateway.
            tokio::select! {
                () = tokio::time::sleep(USAGE_EVENT_DELAY) => {}
                () = events.closed() => return,
            }
            due.store(false, Ordering::Release);
            if !events.has_subscribers() {
                return;
            }
            let store = usage.clone();
            match tokio::task::spawn_blocking(move || store.summary_today()).await {
                Ok(Ok(today)) => events.publish(|| EventKind::Usage { today: Box::new(today) }),
                Ok(Err(e)) => tracing::debug!(error = %e, "today's usage for the usage event"),
                Err(e) => tracing::debug!(error = %e, "today's usage task"),
            }
        });
    }

    /// After an answer from `account`: persists its rate-limit windows when they changed (at most once a second
    /// per account), so status shows them right after a restart.
    pub(crate) fn save_windows(&self, account: &LiveAccount, now_ms: u64) {
        if !self.usage.is_enabled() {
            return;
        }
        if let Some(windows) = account.windows_to_save(now_ms, WINDOW_SAVE_INTERVAL_MS) {
            save(&self.usage, account, &windows);
        }
    }

    /// Persists every account's latest windows not saved yet (at shutdown, before the store closes).
    pub(crate) fn save_all_windows(&self) {
        let now = self.now_ms();
        for account in &self.live().accounts {
            if let Some(windows) = account.windows_to_save(now, 0) {
                save(&self.usage, account, &windows);
            }
        }
    }

    /// The metrics page: account state, cooldown and plan-utilisation gauges and token-refresh counters brought up
    /// to date, then everything rendered (OpenMetrics text).
    pub fn render_metrics(&self) -> String {
        let live = self.live();
        let now = self.now_ms();
        for account in &live.accounts {
            let view = account.view(now);
            let name = view.name.as_str();
            self.metrics.set_account_state(name, view.state.as_str());
            let remaining = account.health.benched(now).map_or(0, |(until, _)| until.saturating_sub(now));
            self.metrics.set_cooldown_remaining(name, remaining as f64 / 1000.0);
            if let Some(windows) = &view.windows {
                for (window, utilization) in utilizations(windows) {
                    self.metrics.set_plan_utilization(name, window, utilization);
                }
            }
        }
        for (id, ok, failed) in self.oauth.refresh_counts() {
            let name = live.accounts.iter().find(|a| a.id() == id).map_or(id.as_str(), |a| a.name());
            self.metrics.set_token_refreshes(name, ok, failed);
        }
        self.metrics.render()
    }
}

fn save(usage: &Usage, account: &LiveAccount, windows: &RateWindows) {
    match serde_json::to_value(windows) {
        Ok(state) => usage.save_plan_window(PlanSubject::Account(account.id().to_string()), state),
        Err(e) => tracing::debug!(account = %account.name(), "rate-limit windows not saved: {e}"),
    }
}

/// Each window's used fraction: the plan's 5-hour, 7-day and other windows, and API-key limits as `1 - remaining/limit`.
fn utilizations(w: &RateWindows) -> Vec<(&str, f64)> {
    let mut out = Vec::new();
    let windows = [("5h", w.five_hour.as_ref()), ("7d", w.seven_day.as_ref())].into_iter();
    // Per-model weekly windows and any other by name (at most 8 per account, names checked by the parser).
    for (name, window) in windows.chain(w.other_windows.iter().map(|(n, w)| (n.as_str(), Some(w)))) {
        if let Some(u) = window.and_then(|w| w.utilization) {
            out.push((name, u));
        }
    }
    for (name, limit) in [
        ("requests", &w.requests),
        ("tokens", &w.tokens),
        ("input_tokens", &w.input_tokens),
        ("output_tokens", &w.output_tokens),
    ] {
        if let Some(l) = limit
            && let (Some(limit), Some(remaining)) = (l.limit, l.remaining)
            && limit > 0
        {
            out.push((name, 1.0 - remaining.min(limit) as f64 / limit as f64));
        }
    }
    out
}

/// Shows each account the windows the store kept from before the restart (until the upstream reports new ones).
/// Reads the database: call off the async runtime.
pub(crate) fn seed_plan_windows(usage: &Usage, accounts: &AccountList) {
    if !usage.is_enabled() || accounts.is_empty() {
        return;
    }
    let stored = match usage.with_reader(|r| r.plan_windows()) {
        Ok(stored) => stored,
        Err(e) => {
            tracing::warn!("stored rate-limit windows could not be read: {e}");
            return;
        }
    };
    for plan in stored {
        let PlanSubject::Account(id) = &plan.subject else { continue };
        let Some(account) = accounts.iter().find(|a| a.id() == id) else { continue };
        match serde_json::from_value::<RateWindows>(plan.state) {
            Ok(windows) => account.restore_windows(windows),
            Err(e) => tracing::debug!(account = %account.name(), "stored rate-limit windows unreadable: {e}"),
        }
    }
}
