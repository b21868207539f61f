//! Rate-limit windows from the upstream's response headers, and the cooldown a 429 implies.
//!
//! Subscription (OAuth) accounts report `anthropic-ratelimit-unified-*` headers (unix-second resets, fractional
//! utilisation); API keys report `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-*` (RFC 3339
//! resets). See protocol.md §3. Pure functions: headers and the current time in, values out.

use std::collections::BTreeMap;

use http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::clock::{MAX_TIME_MS, rfc3339, secs_to_ms};

/// One subscription window (5 h or 7 d).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// `allowed`, `allowed_warning` or `rejected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Fraction used (1.0 = full).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization: Option<f64>,
    /// When it resets (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<String>,
}

/// One API-key limit (requests, tokens, …).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limit {
    /// The limit per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// What is left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    /// When it is replenished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<String>,
}

/// The rate-limit state an account last reported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RateWindows {
    /// Unified status (`allowed`, `allowed_warning`, `rejected`), subscription accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unified_status: Option<String>,
    /// Unified reset (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unified_reset: Option<String>,
    /// The 5-hour window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub five_hour: Option<Window>,
    /// The 7-day window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seven_day: Option<Window>,
    /// Every other `anthropic-ratelimit-unified-<name>-*` window, by name: per-model weekly windows (`7d_oi`, …)
    /// and any the upstream adds later (protocol.md §10: the set is open).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other_windows: BTreeMap<String, Window>,
    /// Extra usage (overage) beyond the plan: `allowed`, `allowed_warning`, `rejected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overage_status: Option<String>,
    /// Why extra usage is off (`org_level_disabled`, `out_of_credits`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overage_disabled_reason: Option<String>,
    /// The plan is close to a limit: the unified status or a window's status is `allowed_warning`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warning: bool,
    /// Requests per minute (API keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Limit>,
    /// Tokens per minute (API keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Limit>,
    /// Input tokens per minute (API keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<Limit>,
    /// Output tokens per minute (API keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<Limit>,
    /// When these values were reported (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// A reset in unix seconds (fractional allowed) as unix ms. Zero, negative, NaN and infinite values mean nothing;
/// values past year 9999 are clamped to its end ([`MAX_TIME_MS`]).
fn unix_secs_ms(value: &str) -> Option<u64> {
    let secs: f64 = value.parse().ok()?;
    (secs.is_finite() && secs > 0.0).then(|| secs_to_ms(secs).min(MAX_TIME_MS))
}

/// An RFC 3339 reset as unix ms; times before 1970 mean nothing (RFC 3339 itself ends at year 9999).
fn rfc3339_ms(value: &str) -> Option<u64> {
    let t = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// A window's utilisation: a finite, non-negative fraction (1.0 = full); anything else means nothing.
fn utilization(value: &str) -> Option<f64> {
    value.parse().ok().filter(|u: &f64| u.is_finite() && *u >= 0.0)
}

/// Header names of one API-key limit.
struct LimitNames {
    remaining: &'static str,
    reset: &'static str,
}

const LIMITS: [LimitNames; 4] = [
    LimitNames { remaining: "anthropic-ratelimit-requests-remaining", reset: "anthropic-ratelimit-requests-reset" },
    LimitNames { remaining: "anthropic-ratelimit-tokens-remaining", reset: "anthropic-ratelimit-tokens-reset" },
    LimitNames {
        remaining: "anthropic-ratelimit-input-tokens-remaining",
        reset: "anthropic-ratelimit-input-tokens-reset",
    },
    LimitNames {
        remaining: "anthropic-ratelimit-output-tokens-remaining",
        reset: "anthropic-ratelimit-output-tokens-reset",
    },
];
/// The infixes of the API-key limits, in [`Reported::limits`] order.
const LIMIT_KINDS: [&str; 4] = ["requests-", "tokens-", "input-tokens-", "output-tokens-"];

const UNIFIED_STATUS: &str = "anthropic-ratelimit-unified-status";
const UNIFIED_RESET: &str = "anthropic-ratelimit-unified-reset";
const PREFIX: &str = "anthropic-ratelimit-";
const UNIFIED_PREFIX: &str = "anthropic-ratelimit-unified-";

/// A window's status word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Allowed,
    AllowedWarning,
    Rejected,
    Unknown,
}

impl Status {
    fn parse(value: &str) -> Self {
        match value {
            "allowed" => Self::Allowed,
            "allowed_warning" => Self::AllowedWarning,
            "rejected" => Self::Rejected,
            _ => Self::Unknown,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::AllowedWarning => "allowed_warning",
            Self::Rejected => "rejected",
            Self::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct RawWindow {
    status: Option<Status>,
    utilization: Option<f64>,
    reset_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct RawLimit {
    limit: Option<u64>,
    remaining: Option<u64>,
    reset_ms: Option<u64>,
}

/// A window the parser has no field for (`anthropic-ratelimit-unified-<name>-*`), kept by name.
#[derive(Debug, Clone, PartialEq)]
struct NamedWindow {
    name: Box<str>,
    window: RawWindow,
}

/// Most unknown windows kept from one response, and the longest name: a hostile or broken upstream cannot make
/// the gateway hold more than this per account.
const MAX_OTHER_WINDOWS: usize = 8;
const MAX_WINDOW_NAME: usize = 32;

/// The rate-limit state one response reported, as plain numbers: recorded on every response, allocating only for
/// windows beyond 5 h / 7 d and an overage-disabled reason (subscription answers that carry them); turned into
/// the displayed [`RateWindows`] (RFC 3339 strings) only when someone asks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reported {
    unified_status: Option<Status>,
    unified_reset_ms: Option<u64>,
    five_hour: RawWindow,
    seven_day: RawWindow,
    other: Vec<NamedWindow>,
    overage_status: Option<Status>,
    overage_disabled_reason: Option<Box<str>>,
    limits: [RawLimit; 4],
    at_ms: u64,
}

/// The window attributes read from `anthropic-ratelimit-unified-<name>-<attr>` (others, such as
/// `surpassed-threshold`, are ignored).
const WINDOW_ATTRS: [&str; 3] = ["status", "utilization", "reset"];

impl Reported {
    /// Records one `anthropic-ratelimit-*` header (name without the prefix); false when it is not one we know.
    fn set(&mut self, field: &str, value: &str) -> bool {
        if let Some(rest) = field.strip_prefix("unified-") {
            return self.set_unified(rest, value);
        }
        let Some((i, attr)) = LIMIT_KINDS.iter().enumerate().find_map(|(i, k)| field.strip_prefix(k).map(|a| (i, a)))
        else {
            return false;
        };
        let limit = &mut self.limits[i];
        match attr {
            "limit" => limit.limit = value.parse().ok(),
            "remaining" => limit.remaining = value.parse().ok(),
            "reset" => limit.reset_ms = rfc3339_ms(value),
            _ => return false,
        }
        true
    }

    /// One `anthropic-ratelimit-unified-*` header, `rest` being what follows `unified-`.
    fn set_unified(&mut self, rest: &str, value: &str) -> bool {
        match rest {
            "status" => {
                self.unified_status = Some(Status::parse(value));
                return true;
            }
            "reset" => {
                self.unified_reset_ms = unix_secs_ms(value);
                return true;
            }
            "overage-status" => {
                self.overage_status = Some(Status::parse(value));
                return true;
            }
            "overage-disabled-reason" => {
                self.overage_disabled_reason = reason_word(value).map(Box::from);
                return true;
            }
            _ => {}
        }
        let Some((name, attr)) = WINDOW_ATTRS.iter().find_map(|a| {
            let name = rest.strip_suffix(a)?.strip_suffix('-')?;
            Some((name, *a))
        }) else {
            return false;
        };
        let window = match name {
            "5h" => &mut self.five_hour,
            "7d" => &mut self.seven_day,
            _ if is_window_name(name) => match self.other.iter().position(|w| &*w.name == name) {
                Some(i) => &mut self.other[i].window,
                None if self.other.len() < MAX_OTHER_WINDOWS => {
                    self.other.push(NamedWindow { name: name.into(), window: RawWindow::default() });
                    let last = self.other.len() - 1;
                    &mut self.other[last].window
                }
                None => return false,
            },
            _ => return false,
        };
        match attr {
            "status" => window.status = Some(Status::parse(value)),
            "utilization" => window.utilization = utilization(value),
            _ => window.reset_ms = unix_secs_ms(value),
        }
        true
    }

    /// Whether `other` reports the same values, whenever it was reported.
    pub fn same_values(&self, other: &Reported) -> bool {
        self.unified_status == other.unified_status
            && self.unified_reset_ms == other.unified_reset_ms
            && self.five_hour == other.five_hour
            && self.seven_day == other.seven_day
            && self.other == other.other
            && self.overage_status == other.overage_status
            && self.overage_disabled_reason == other.overage_disabled_reason
            && self.limits == other.limits
    }

    fn windows(&self) -> impl Iterator<Item = &RawWindow> {
        [&self.five_hour, &self.seven_day].into_iter().chain(self.other.iter().map(|w| &w.window))
    }

    /// How full the fullest window is, 0.0–1.0+ (0 when unknown). Used by `health_first`.
    pub fn utilization(&self) -> f64 {
        let mut max: f64 = 0.0;
        for w in self.windows() {
            max = max.max(w.utilization.unwrap_or(0.0));
        }
        for l in &self.limits {
            if let (Some(limit), Some(remaining)) = (l.limit, l.remaining)
                && limit > 0
            {
                max = max.max(1.0 - remaining.min(limit) as f64 / limit as f64);
            }
        }
        if self.unified_status == Some(Status::Rejected) {
            max = max.max(1.0);
        }
        max
    }

    /// The plan is exhausted: the unified status or a window is `rejected`.
    pub fn plan_rejected(&self) -> bool {
        self.unified_status == Some(Status::Rejected) || self.windows().any(|w| w.status == Some(Status::Rejected))
    }

    /// The plan is close to a limit: the unified status or a window says `allowed_warning`.
    pub fn warning(&self) -> bool {
        self.unified_status == Some(Status::AllowedWarning)
            || self.windows().any(|w| w.status == Some(Status::AllowedWarning))
    }

    /// The latest future reset these windows name that matters for an exhausted plan: the unified reset and the
    /// resets of rejected windows; when none is rejected, the latest reset of any window. `None` when none is
    /// after `now_ms`.
    pub fn plan_reset_ms(&self, now_ms: u64) -> Option<u64> {
        let rejected = self.windows().filter(|w| w.status == Some(Status::Rejected)).filter_map(|w| w.reset_ms);
        let mut latest = self.unified_reset_ms.into_iter().chain(rejected).filter(|&t| t > now_ms).max();
        if latest.is_none() {
            latest = self.windows().filter_map(|w| w.reset_ms).filter(|&t| t > now_ms).max();
        }
        latest
    }

    /// The displayed form.
    pub fn view(&self) -> RateWindows {
        let window = |w: &RawWindow| Window {
            status: w.status.map(|s| s.as_str().to_string()),
            utilization: w.utilization,
            reset: w.reset_ms.map(rfc3339),
        };
        let known = |w: &RawWindow| (*w != RawWindow::default()).then(|| window(w));
        let limit = |l: &RawLimit| {
            (*l != RawLimit::default()).then(|| Limit {
                limit: l.limit,
                remaining: l.remaining,
                reset: l.reset_ms.map(rfc3339),
            })
        };
        let [requests, tokens, input_tokens, output_tokens] = &self.limits;
        RateWindows {
            unified_status: self.unified_status.map(|s| s.as_str().to_string()),
            unified_reset: self.unified_reset_ms.map(rfc3339),
            five_hour: known(&self.five_hour),
            seven_day: known(&self.seven_day),
            other_windows: self.other.iter().map(|w| (w.name.to_string(), window(&w.window))).collect(),
            overage_status: self.overage_status.map(|s| s.as_str().to_string()),
            overage_disabled_reason: self.overage_disabled_reason.as_deref().map(str::to_string),
            warning: self.warning(),
            requests: limit(requests),
            tokens: limit(tokens),
            input_tokens: limit(input_tokens),
            output_tokens: limit(output_tokens),
            updated_at: Some(rfc3339(self.at_ms)),
        }
    }
}

/// A window name worth keeping: short, lowercase letters, digits and `_` (`7d_oi`).
fn is_window_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_WINDOW_NAME
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A reason word (`org_level_disabled`, `out_of_credits`): the same rule as window names.
fn reason_word(value: &str) -> Option<&str> {
    is_window_name(value).then_some(value)
}

/// Whether the response carries any rate-limit information at all.
pub fn has_rate_limit_headers(headers: &HeaderMap) -> bool {
    headers.contains_key("retry-after")
        || headers.contains_key("retry-after-ms")
        || headers.keys().any(|k| k.as_str().starts_with(PREFIX))
}

/// The windows a response reports, or `None` when it reports none. Runs on every response: one pass over the
/// headers, no lookups by name, no allocation.
pub fn parse_windows(headers: &HeaderMap, now_ms: u64) -> Option<Reported> {
    let mut reported = Reported { at_ms: now_ms, ..Reported::default() };
    let mut any = false;
    for (name, value) in headers {
        if let Some(field) = name.as_str().strip_prefix(PREFIX)
            && let Ok(value) = value.to_str()
        {
            any |= reported.set(field, value.trim());
        }
    }
    any.then_some(reported)
}

/// How long the upstream asks to wait, in ms from `now_ms`: `retry-after-ms`, else `retry-after` (seconds,
/// fractional allowed, or an HTTP date; a date in the past is 0). Negative, NaN and infinite values mean nothing;
/// huge ones saturate. Shared by the proxy's cooldowns and the OAuth token endpoint's backoff.
pub fn retry_after_delay_ms(headers: &HeaderMap, now_ms: u64) -> Option<u64> {
    let number = |value: &str| value.parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0);
    if let Some(ms) = header(headers, "retry-after-ms").and_then(number) {
        // A float-to-int `as` cast saturates.
        return Some(ms as u64);
    }
    let value = header(headers, "retry-after")?;
    if value.parse::<f64>().is_ok() {
        return number(value).map(secs_to_ms);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at_ms = u64::try_from(at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis()).ok()?;
    Some(at_ms.saturating_sub(now_ms))
}

/// `retry-after` (seconds or HTTP date) or `retry-after-ms`, as an absolute time (never before `now_ms`,
/// saturating at `u64::MAX`).
pub fn retry_after_ms(headers: &HeaderMap, now_ms: u64) -> Option<u64> {
    retry_after_delay_ms(headers, now_ms).map(|delay| now_ms.saturating_add(delay))
}

/// Until when a 429 benches the account: the latest of `retry-after`, the unified reset, the resets of unified
/// windows (5 h, 7 d, per-model, any by name) whose status is `rejected`, and the resets of API-key limits with nothing remaining; capped at
/// `now + cap_ms`. `None` when the response names no future time.
pub fn rate_limit_until(headers: &HeaderMap, now_ms: u64, cap_ms: u64) -> Option<u64> {
    let mut candidates = Vec::with_capacity(8);
    candidates.extend(retry_after_ms(headers, now_ms));
    candidates.extend(header(headers, UNIFIED_RESET).and_then(unix_secs_ms));
    // Every rejected unified window: 5 h, 7 d, per-model weekly ones and any other by name.
    for (name, value) in headers {
        if let Some(window) = name.as_str().strip_prefix(UNIFIED_PREFIX).and_then(|r| r.strip_suffix("-status"))
            // `overage-status: rejected` says extra usage is off, not that a window is exhausted.
            && window != "overage"
            && value.as_bytes().trim_ascii() == b"rejected"
            && let Some(reset) = headers.get(format!("{UNIFIED_PREFIX}{window}-reset").as_str())
        {
            candidates.extend(reset.to_str().ok().and_then(|v| unix_secs_ms(v.trim())));
        }
    }
    for l in &LIMITS {
        if header(headers, l.remaining) == Some("0") {
            candidates.extend(header(headers, l.reset).and_then(rfc3339_ms));
        }
    }
    let latest = candidates.into_iter().max()?;
    (latest > now_ms).then(|| latest.min(now_ms.saturating_add(cap_ms)))
}

/// A 429 caused by exhausted extra-usage credits is scoped to a model or beta, not the account (protocol.md §3).
pub fn is_out_of_credits_only(headers: &HeaderMap) -> bool {
    header(headers, "anthropic-ratelimit-unified-overage-disabled-reason") == Some("out_of_credits")
        && header(headers, UNIFIED_STATUS) != Some("rejected")
}

#[cfg(test)]
#[path = "windows_tests.rs"]
mod tests;
