//! Prometheus metrics, through the official Rust client (`prometheus-client`): one registry per gateway (no global
//! state, so several gateways in one process — the tests — keep separate counts), rendered in the OpenMetrics text
//! format (serve it as `application/openmetrics-text; version=1.0.0; charset=utf-8`; Prometheus scrapes it).
//! Units are in the names (`_seconds`) without `# UNIT` lines, which strict parsers refuse on histograms.
//!
//! Names (all prefixed `llm_gateway_`):
//! - `requests_total{route,status,account,model,client_kind}`
//! - `request_duration_seconds{route}`, `first_byte_seconds{route}`, `gateway_added_seconds{route}` (histograms)
//! - `tokens_total{kind,account,model}` (`kind`: input, output, cache_creation, cache_read)
//! - `failovers_total{reason}`, `token_refreshes_total{account,result}`
//! - `account_state{account,state}` (1 for the current state, 0 for the others it had),
//!   `account_cooldown_seconds{account}`, `plan_utilization{account,window}` (fraction, 1.0 = full)
//! - `usage_records_written_total`, `usage_records_dropped_total{reason}` (`queue_full`, `write_error`)
//!
//! Label values are bounded: models pass through [`normalise_model`] and at most [`MAX_MODELS`] distinct ones
//! are kept (later ones become `other`); accounts are capped at [`MAX_ACCOUNTS`] the same way.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::record::RequestRecord;
use super::{FailoverReason, Usage};

/// Distinct model label values kept; later new models are counted as `other`.
pub const MAX_MODELS: usize = 32;
/// Distinct account label values kept.
pub const MAX_ACCOUNTS: usize = 64;
/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
    account: String,
    model: String,
    client_kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    kind: &'static str,
    account: String,
    model: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabels {
    account: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    account: String,
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WindowLabels {
    account: String,
    window: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefreshLabels {
    account: String,
    result: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

fn latency_histogram() -> Histogram {
    // 50 ms … ~410 s: LLM answers take seconds to minutes.
    Histogram::new(exponential_buckets(0.05, 2.0, 14))
}

fn first_byte_histogram() -> Histogram {
    // 10 ms … ~82 s.
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

fn added_histogram() -> Histogram {
    // 50 µs … ~0.8 s: the gateway's own overhead (design bar: p99 ≤ 0.5 ms).
    Histogram::new(exponential_buckets(0.000_05, 2.0, 15))
}

/// A bounded set of label values: the first `cap` distinct ones pass, later new ones become `other`.
#[derive(Debug)]
struct Bounded {
    cap: usize,
    seen: Mutex<HashSet<String>>,
}

impl Bounded {
    fn new(cap: usize) -> Self {
        Self { cap, seen: Mutex::new(HashSet::new()) }
    }

    fn label(&self, value: &str) -> String {
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.contains(value) {
            return value.to_string();
        }
        if seen.len() >= self.cap {
            return "other".to_string();
        }
        seen.insert(value.to_string());
        value.to_string()
    }
}

/// A model id as a label value: lower case, only `[a-z0-9._-]` (others become `_`), at most 64 characters;
/// empty → `none`. The date suffix stays (`claude-haiku-4-5-20251001`): it names a distinct model.
pub fn normalise_model(model: &str) -> String {
    let cleaned: String = model
        .trim()
        .chars()
        .take(64)
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .collect();
    if cleaned.is_empty() { "none".into() } else { cleaned }
}

/// The gateway's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<RouteLabels, Histogram>,
    first_byte: Family<RouteLabels, Histogram>,
    added: Family<RouteLabels, Histogram>,
    tokens: Family<TokenLabels, Counter>,
    failovers: Family<ReasonLabels, Counter>,
    refreshes: Family<RefreshLabels, Counter>,
    account_state: Family<StateLabels, Gauge>,
    cooldown: Family<AccountLabels, FloatGauge>,
    utilization: Family<WindowLabels, FloatGauge>,
    usage_written: Counter,
    usage_dropped: Family<ReasonLabels, Counter>,
    models: Bounded,
    accounts: Bounded,
    states: Mutex<HashMap<String, String>>,
    usage: Usage,
    /// Serialises [`Metrics::sync_usage`], which reads then advances counters.
    sync: Mutex<()>,
}

impl Metrics {
    /// Registers every metric. `usage` supplies the written/dropped record counts at render time (pass
    /// [`Usage::disabled`] when there is no store).
    pub fn new(usage: Usage) -> Self {
        let mut registry = Registry::with_prefix("llm_gateway");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Client requests by route, status, account, model and client kind",
            requests.clone(),
        );
        let duration = Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "request_duration_seconds",
            "Request arrival to last byte sent to the client",
            duration.clone(),
        );
        let first_byte =
            Family::<RouteLabels, Histogram>::new_with_constructor(first_byte_histogram as fn() -> Histogram);
        registry.register(
            "first_byte_seconds",
            "Request arrival to the first body byte sent to the client",
            first_byte.clone(),
        );
        let added = Family::<RouteLabels, Histogram>::new_with_constructor(added_histogram as fn() -> Histogram);
        registry.register(
            "gateway_added_seconds",
            "Time the gateway added to a request (total latency minus time waiting on the upstream)",
            added.clone(),
        );
        let tokens = Family::<TokenLabels, Counter>::default();
        registry.register("tokens", "Tokens reported by the upstream, by kind, account and model", tokens.clone());
        let failovers = Family::<ReasonLabels, Counter>::default();
        registry.register("failovers", "Attempts abandoned for another account, by reason", failovers.clone());
        let refreshes = Family::<RefreshLabels, Counter>::default();
        registry.register("token_refreshes", "OAuth access-token refreshes by account and result", refreshes.clone());
        let account_state = Family::<StateLabels, Gauge>::default();
        registry.register("account_state", "1 for each account's current state", account_state.clone());
        let cooldown = Family::<AccountLabels, FloatGauge>::default();
        registry.register(
            "account_cooldown_seconds",
            "Seconds until a benched account may be tried again",
            cooldown.clone(),
        );
        let utilization = Family::<WindowLabels, FloatGauge>::default();
        registry.register(
            "plan_utilization",
            "Fraction of each rate-limit window used, as the upstream last reported (1.0 = full)",
            utilization.clone(),
        );
        let usage_written = Counter::default();
        registry.register(
            "usage_records_written",
            "Request records written to the usage database",
            usage_written.clone(),
        );
        let usage_dropped = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "usage_records_dropped",
            "Request records not stored: queue_full (the writer fell behind) or write_error",
            usage_dropped.clone(),
        );
        Self {
            registry,
            requests,
            duration,
            first_byte,
            added,
            tokens,
            failovers,
            refreshes,
            account_state,
            cooldown,
            utilization,
            usage_written,
            usage_dropped,
            models: Bounded::new(MAX_MODELS),
            accounts: Bounded::new(MAX_ACCOUNTS),
            states: Mutex::new(HashMap::new()),
            usage,
            sync: Mutex::new(()),
        }
    }

    fn account_label(&self, account: Option<&str>) -> String {
        match account {
            Some(a) if !a.is_empty() => self.accounts.label(a),
            _ => "none".into(),
        }
    }

    /// Counts one finished request (call it next to [`Usage::record`]).
    pub fn observe(&self, r: &RequestRecord) {
        let account = self.account_label(r.account_name.as_deref().or(r.account_id.as_deref()));
        let model = self.models.label(&normalise_model(r.model().unwrap_or("")));
        let route = r.route.as_str();
        self.requests
            .get_or_create(&RequestLabels {
                route,
                status: r.status,
                account: account.clone(),
                model: model.clone(),
                client_kind: r.client_kind.as_str(),
            })
            .inc();
        let route_labels = RouteLabels { route };
        self.duration.get_or_create(&route_labels).observe(r.latency_ms as f64 / 1000.0);
        if let Some(fb) = r.first_byte_ms {
            self.first_byte.get_or_create(&route_labels).observe(fb as f64 / 1000.0);
        }
        self.added.get_or_create(&route_labels).observe(r.gateway_ms() as f64 / 1000.0);
        let t = &r.tokens;
        for (kind, n) in [
            ("input", t.input),
            ("output", t.output),
            ("cache_creation", t.cache_creation),
            ("cache_read", t.cache_read),
        ] {
            if n > 0 {
                self.tokens
                    .get_or_create(&TokenLabels { kind, account: account.clone(), model: model.clone() })
                    .inc_by(n);
            }
        }
        for a in &r.attempts {
            if let Some(reason) = a.failover {
                self.failovers.get_or_create(&ReasonLabels { reason: reason.as_str() }).inc();
            }
        }
    }

    /// Sets an account's current state (`active`, `cooling`, `error`, `needs_login`, `disabled`, …): 1 for it, 0 for
    /// the state it had before.
    pub fn set_account_state(&self, account: &str, state: &str) {
        let account = self.account_label(Some(account));
        let mut states = self.states.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(old) = states.insert(account.clone(), state.to_string())
            && old != state
        {
            self.account_state.get_or_create(&StateLabels { account: account.clone(), state: old }).set(0);
        }
        self.account_state.get_or_create(&StateLabels { account, state: state.to_string() }).set(1);
    }

    /// Sets how long an account stays benched (0 when usable).
    pub fn set_cooldown_remaining(&self, account: &str, seconds: f64) {
        let account = self.account_label(Some(account));
        self.cooldown.get_or_create(&AccountLabels { account }).set(seconds.max(0.0));
    }

    /// Sets a rate-limit window's utilisation (`window`: `5h`, `7d`, `7d_opus`, `requests`, `tokens`, …).
    pub fn set_plan_utilization(&self, account: &str, window: &str, fraction: f64) {
        if !fraction.is_finite() {
            return;
        }
        let account = self.account_label(Some(account));
        let window = normalise_model(window);
        self.utilization.get_or_create(&WindowLabels { account, window }).set(fraction);
    }

    /// Counts an OAuth token refresh (`ok` true for success).
    pub fn token_refreshed(&self, account: &str, ok: bool) {
        let account = self.account_label(Some(account));
        self.refreshes.get_or_create(&RefreshLabels { account, result: if ok { "ok" } else { "error" } }).inc();
    }

    /// Brings an account's token-refresh counters up to the totals the token manager keeps (called at scrape
    /// time; counters only move forward).
    pub fn set_token_refreshes(&self, account: &str, ok_total: u64, failed_total: u64) {
        let account = self.account_label(Some(account));
        for (result, total) in [("ok", ok_total), ("error", failed_total)] {
            let counter = self.refreshes.get_or_create(&RefreshLabels { account: account.clone(), result });
            let now = counter.get();
            if total > now {
                counter.inc_by(total - now);
            }
        }
    }

    /// Counts a failover that is not part of a finished record (normally [`observe`](Self::observe) counts them).
    pub fn failover(&self, reason: FailoverReason) {
        self.failovers.get_or_create(&ReasonLabels { reason: reason.as_str() }).inc();
    }

    /// Everything in the OpenMetrics text format (see [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        self.sync_usage();
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Brings the usage-record counters up to the store's atomics (counters only ever move forward).
    fn sync_usage(&self) {
        let _serial = self.sync.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let stats = self.usage.stats();
        let advance = |counter: &Counter, to: u64| {
            let now = counter.get();
            if to > now {
                counter.inc_by(to - now);
            }
        };
        advance(&self.usage_written, stats.written);
        advance(&self.usage_dropped.get_or_create(&ReasonLabels { reason: "queue_full" }), stats.dropped_queue_full);
        advance(&self.usage_dropped.get_or_create(&ReasonLabels { reason: "write_error" }), stats.dropped_write_error);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(Usage::disabled())
    }
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
