//! Per-client-key rules, checked before any upstream call: expiry and allowed models (403), tokens per UTC day
//! and estimated cost per UTC month (429 with `retry-after` until the day or month rolls over, and
//! `x-should-retry: false`), requests per minute (429 with `retry-after` until the next request is allowed).
//! Day and month counts are the usage store's in-memory counters (loaded from the database at start, so a restart
//! does not reset them); the minute is a token bucket per key. A key's `accounts` and `priority_tiers` narrow the
//! router's choice instead (`router::SelectRequest::key`).

use crate::common::ApiError;
use crate::config::ClientKey;
use crate::gateway::Gateway;
use crate::usage::Outcome;
use crate::usage::counters::{day_start, next_month_start};
use crate::usage::write::DAY_MS;

/// A request a key's rules refuse: the error the client gets, and the outcome recorded.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) error: ApiError,
    pub(crate) outcome: Outcome,
}

fn denied(message: String) -> Refusal {
    Refusal { error: ApiError::forbidden(message), outcome: Outcome::DeniedByKey }
}

fn exhausted(message: String, until_ms: u64, now_ms: u64) -> Refusal {
    let retry_after = until_ms.saturating_sub(now_ms).div_ceil(1000).max(1);
    let error = ApiError { no_retry: true, ..ApiError::rate_limited(message, retry_after) };
    Refusal { error, outcome: Outcome::RateLimitedByKey }
}

/// Checks `key`'s rules for a request for `model` (none: the route names no model) at `now_ms`. The rate check
/// comes last, so a refused request never uses up one of the key's requests per minute.
pub(crate) fn check(gateway: &Gateway, key: &ClientKey, model: Option<&str>, now_ms: u64) -> Result<(), Refusal> {
    if let Some(from) = key.expired_from_ms()
        && now_ms >= from
    {
        let day = key.expires.as_deref().unwrap_or_default();
        return Err(denied(format!("gateway key `{}` expired at the end of {day} (UTC)", key.name)));
    }
    if let Some(model) = model
        && !key.allows_model(model)
    {
        return Err(denied(format!(
            "gateway key `{}` may not use model `{model}`; it may use: {}",
            key.name,
            key.models.join(", ")
        )));
    }
    if key.tokens_per_day.is_some() || key.budget_usd_month.is_some() {
        let used = gateway.usage().key_usage(&key.name);
        if let Some(limit) = key.tokens_per_day
            && used.tokens_today.total() >= limit
        {
            return Err(exhausted(
                format!(
                    "gateway key `{}` has used its {limit} tokens for today ({} used); the count resets at 00:00 UTC",
                    key.name,
                    used.tokens_today.total()
                ),
                day_start(now_ms) + DAY_MS,
                now_ms,
            ));
        }
        if let Some(budget) = key.budget_usd_month {
            let budget_micros = if budget.is_finite() && budget > 0.0 { (budget * 1e6).round() as u64 } else { 0 };
            let spent = used.spend_month_micros.saturating_add(used.equivalent_month_micros);
            if spent >= budget_micros {
                return Err(exhausted(
                    format!(
                        "gateway key `{}` has used its monthly budget of ${budget:.2} (estimated ${:.2} this month); \
                         it resets on the 1st at 00:00 UTC",
                        key.name,
                        spent as f64 / 1e6
                    ),
                    next_month_start(now_ms),
                    now_ms,
                ));
            }
        }
    }
    if let Some(rpm) = key.rpm
        && let Err(wait_ms) = gateway.key_rates().take(&key.name, rpm, now_ms)
    {
        let retry_after = wait_ms.div_ceil(1000).max(1);
        let message =
            format!("gateway key `{}` is limited to {rpm} requests per minute; retry in {retry_after} s", key.name);
        return Err(Refusal {
            error: ApiError::rate_limited(message, retry_after),
            outcome: Outcome::RateLimitedByKey,
        });
    }
    Ok(())
}
