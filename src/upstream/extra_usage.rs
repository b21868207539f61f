//! Plan limits before extra usage: what an answer from a subscription path (a stored OAuth account, or a client's
//! own claude.ai login passed through) says about its plan, for `subscriptions.extra_usage: avoid`.
//!
//! A Pro/Max plan has windows (5 hours, 7 days, per-model weekly ones, and whatever the upstream adds, all
//! reported as `anthropic-ratelimit-unified-<name>-*`, protocol.md §3 and §10). When a window is exhausted the
//! upstream either goes on serving and bills the excess as extra usage (a 2xx whose unified status is `rejected`:
//! Claude Code itself reads that pair as "now using extra usage"), or refuses with a 429 whose unified status or
//! a window is `rejected` (with `…-overage-status` / `…-overage-disabled-reason` saying extra usage is off), or —
//! for traffic it counts as a third-party app's — answers 400 "Third-party apps now draw from your extra usage,
//! not your plan limits" (protocol.md §10). [`extra_usage_verdict`] is the one rule both paths apply.
//!
//! Not covered on purpose: a 429 saying only that the extra-usage *credits* ran out (`…-overage-disabled-reason:
//! out_of_credits` with the plan not rejected) and a 400 "You have run out of extra usage" are scoped to a model or
//! beta, not to the plan (protocol.md §2–§3): they keep their usual handling.

use http::{HeaderMap, StatusCode};

use crate::accounts::windows::{parse_windows, rate_limit_until};

/// How long a path is benched when neither the answer nor its earlier answers name a reset in the future: one
/// 5-hour window.
pub const DEFAULT_PLAN_BENCH_MS: u64 = 5 * 60 * 60 * 1000;

/// What an answer says about the plan of the subscription path that got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanVerdict {
    /// Nothing about an exhausted plan: judge the answer as usual.
    Within,
    /// Served, but beyond the plan (billed as extra usage): the answer goes to the client — it cannot be undone —
    /// and the path is benched until `until_ms` so the next requests are not.
    OverageInUse {
        /// Bench end (Unix ms).
        until_ms: u64,
    },
    /// The plan is exhausted and going on would be billed as extra usage (or is refused as such): nothing of this
    /// answer goes to the client; the path is benched until `until_ms` and the request fails over or gets a 429.
    Exhausted {
        /// Bench end (Unix ms).
        until_ms: u64,
        /// For logs and the client's message.
        why: &'static str,
    },
}

/// Fragments (lowercase) of the 400 that says third-party traffic is billed as extra usage. Seen worded "…now draw
/// from your extra usage, not your plan limits" and "…now draw from extra usage, not plan limits".
const THIRD_PARTY_EXTRA_USAGE: [&str; 2] = ["third-party apps", "extra usage"];

/// Judges an answer from a subscription path under `extra_usage: avoid`: its status, headers and, for a 400, the
/// start of its error body (`None` when not read). `known_reset_ms` is the path's plan reset from its earlier
/// answers (see [`crate::accounts::Reported::plan_reset_ms`]), used when this answer names none. Benches end at
/// the latest relevant reset the answer names (`retry-after`, the unified reset, rejected windows' resets), else
/// `known_reset_ms`, else now + [`DEFAULT_PLAN_BENCH_MS`]; never later than now + `max_cooldown_ms`.
pub fn extra_usage_verdict(
    status: StatusCode,
    headers: &HeaderMap,
    error_body: Option<&[u8]>,
    known_reset_ms: Option<u64>,
    now_ms: u64,
    max_cooldown_ms: u64,
) -> PlanVerdict {
    let until = || {
        let cap = now_ms.saturating_add(max_cooldown_ms);
        let fallback = known_reset_ms.filter(|&t| t > now_ms).unwrap_or(now_ms.saturating_add(DEFAULT_PLAN_BENCH_MS));
        rate_limit_until(headers, now_ms, max_cooldown_ms).unwrap_or(fallback).min(cap).max(now_ms.saturating_add(1))
    };
    let rejected = || parse_windows(headers, now_ms).is_some_and(|w| w.plan_rejected());
    match status.as_u16() {
        200..=299 if rejected() => PlanVerdict::OverageInUse { until_ms: until() },
        429 if rejected() => {
            PlanVerdict::Exhausted { until_ms: until(), why: "the plan's rate-limit window is exhausted" }
        }
        400 if error_body.is_some_and(is_third_party_extra_usage) => PlanVerdict::Exhausted {
            until_ms: until(),
            why: "the upstream bills this traffic as extra usage (\"Third-party apps now draw from your extra usage\")",
        },
        _ => PlanVerdict::Within,
    }
}

/// Whether an error body is the 400 that moves third-party traffic to extra usage.
fn is_third_party_extra_usage(body: &[u8]) -> bool {
    super::error_message(body).is_some_and(|m| {
        let m = m.to_ascii_lowercase();
        THIRD_PARTY_EXTRA_USAGE.iter().all(|f| m.contains(f))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const NOW: u64 = 1_785_510_000_000;
    const DAY: u64 = 86_400_000;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn error(message: &str) -> Vec<u8> {
        serde_json::json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}, "request_id": "req_1"})
            .to_string()
            .into_bytes()
    }

    fn verdict(status: u16, h: &HeaderMap, body: Option<&[u8]>, known: Option<u64>) -> PlanVerdict {
        extra_usage_verdict(StatusCode::from_u16(status).unwrap(), h, body, known, NOW, DAY)
    }

    #[test]
    fn a_rejected_429_is_an_exhausted_plan_until_the_latest_rejected_reset() {
        // protocol.md §3's capture: 5 h rejected (reset 1785518400), 7 d allowed, overage off.
        let h = headers(&[
            ("anthropic-ratelimit-unified-status", "rejected"),
            ("anthropic-ratelimit-unified-reset", "1785518400"),
            ("anthropic-ratelimit-unified-5h-status", "rejected"),
            ("anthropic-ratelimit-unified-5h-reset", "1785518400"),
            ("anthropic-ratelimit-unified-7d-status", "allowed"),
            ("anthropic-ratelimit-unified-7d-reset", "1786006800"),
            ("anthropic-ratelimit-unified-overage-status", "rejected"),
            ("anthropic-ratelimit-unified-overage-disabled-reason", "org_level_disabled"),
            ("retry-after", "7835"),
        ]);
        assert!(matches!(verdict(429, &h, None, None), PlanVerdict::Exhausted { until_ms: 1_785_518_400_000, .. }));
        // A rejected per-model weekly window alone exhausts the plan too, until its own reset.
        let h = headers(&[
            ("anthropic-ratelimit-unified-7d_oi-status", "rejected"),
            ("anthropic-ratelimit-unified-7d_oi-reset", "1785580000"),
        ]);
        assert!(matches!(verdict(429, &h, None, None), PlanVerdict::Exhausted { until_ms: 1_785_580_000_000, .. }));
    }

    #[test]
    fn a_served_answer_beyond_the_plan_is_overage_in_use() {
        let h = headers(&[
            ("anthropic-ratelimit-unified-status", "rejected"),
            ("anthropic-ratelimit-unified-reset", "1785518400"),
            ("anthropic-ratelimit-unified-overage-status", "allowed"),
        ]);
        assert_eq!(verdict(200, &h, None, None), PlanVerdict::OverageInUse { until_ms: 1_785_518_400_000 });
        let fine = headers(&[
            ("anthropic-ratelimit-unified-status", "allowed_warning"),
            ("anthropic-ratelimit-unified-overage-status", "allowed"),
        ]);
        assert_eq!(verdict(200, &fine, None, None), PlanVerdict::Within, "overage available is not overage in use");
    }

    #[test]
    fn the_third_party_400_benches_until_the_known_reset_or_a_default_window() {
        let body = error(
            "Third-party apps now draw from your extra usage, not your plan limits. We've added a $200 credit to get \
             you started. Claim it at claude.ai/settings/usage and keep going.",
        );
        let none = HeaderMap::new();
        let known = NOW + 3_600_000;
        assert!(
            matches!(verdict(400, &none, Some(&body), Some(known)), PlanVerdict::Exhausted { until_ms, .. } if until_ms == known)
        );
        assert!(matches!(
            verdict(400, &none, Some(&body), Some(NOW - 1)),
            PlanVerdict::Exhausted { until_ms, .. } if until_ms == NOW + DEFAULT_PLAN_BENCH_MS
        ));
        let short = error("Third-party apps now draw from extra usage, not plan limits.");
        assert!(matches!(verdict(400, &none, Some(&short), None), PlanVerdict::Exhausted { .. }));
    }

    #[test]
    fn model_scoped_extra_usage_answers_and_ordinary_ones_keep_their_usual_handling() {
        let credits = headers(&[
            ("anthropic-ratelimit-unified-status", "allowed"),
            ("anthropic-ratelimit-unified-overage-disabled-reason", "out_of_credits"),
            ("retry-after", "30"),
        ]);
        assert_eq!(verdict(429, &credits, None, None), PlanVerdict::Within);
        assert_eq!(
            verdict(400, &HeaderMap::new(), Some(&error("You have run out of extra usage.")), None),
            PlanVerdict::Within
        );
        assert_eq!(verdict(400, &HeaderMap::new(), Some(&error("prompt is too long")), None), PlanVerdict::Within);
        assert_eq!(verdict(400, &HeaderMap::new(), None, None), PlanVerdict::Within);
        let allowed = headers(&[("anthropic-ratelimit-unified-status", "allowed")]);
        assert_eq!(verdict(200, &allowed, None, None), PlanVerdict::Within);
        assert_eq!(verdict(429, &headers(&[("retry-after", "5")]), None, None), PlanVerdict::Within);
    }

    #[test]
    fn benches_never_pass_the_cap() {
        let h = headers(&[
            ("anthropic-ratelimit-unified-7d-status", "rejected"),
            ("anthropic-ratelimit-unified-7d-reset", "1786006800"),
        ]);
        let v = extra_usage_verdict(StatusCode::TOO_MANY_REQUESTS, &h, None, None, NOW, 60_000);
        assert!(matches!(v, PlanVerdict::Exhausted { until_ms, .. } if until_ms == NOW + 60_000));
    }
}
