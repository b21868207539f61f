//! Subscription plans (protocol.md §3, §10): what an OAuth token's answers say about its plan windows, and the
//! answers of an exhausted plan. Control: `POST /_mock/plan` with a [`PlanConfig`] (for one token, or the default
//! for every OAuth token without its own), mirrored by [`crate::MockUpstream::plan`].

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::errors::ApiError;
use crate::ratelimit::unix_now;

/// The message of the 400 a subscription gets for traffic Anthropic counts as a third-party app's (protocol.md §10;
/// the wording reported with Claude Code, `invalid_request_error`).
pub const THIRD_PARTY_MESSAGE: &str = "Third-party apps now draw from your extra usage, not your plan limits. We've \
                                       added a $200 credit to get you started. Claim it at claude.ai/settings/usage \
                                       and keep going.";

/// Where a plan stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanMode {
    /// Within the plan: `allowed` everywhere (5 h at 12 %, 7 d at 69 %).
    #[default]
    Within,
    /// Close to the 5-hour limit: `allowed_warning` (5 h at 91 %).
    Warning,
    /// The 5-hour window is exhausted and extra usage is off: 429 `rate_limit_error` with the captured headers
    /// (`…-unified-status: rejected`, 5 h rejected, `…-overage-status: rejected`,
    /// `…-overage-disabled-reason: org_level_disabled`, `retry-after`).
    Exhausted,
    /// The 5-hour window is exhausted and extra usage is on: messages are served (200) with
    /// `…-unified-status: rejected`, 5 h rejected and `…-overage-status: allowed` — billed as extra usage.
    Overage,
    /// Third-party traffic draws from extra usage: messages get the 400 [`THIRD_PARTY_MESSAGE`] (with the plan's
    /// `allowed` headers).
    ThirdParty,
}

/// A plan's settings (`POST /_mock/plan`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PlanConfig {
    /// The OAuth access token this plan is for; `None`: the default for every OAuth token without a plan of its own.
    pub token: Option<String>,
    /// Where the plan stands.
    pub mode: PlanMode,
    /// The 5-hour window's reset, Unix seconds (default: an hour from now).
    pub five_hour_reset: Option<u64>,
    /// The 7-day window's reset, Unix seconds (default: five days from now).
    pub seven_day_reset: Option<u64>,
    /// A per-model weekly window to report besides, by name (e.g. `7d_oi`), `allowed` at 40 % with the 7-day reset.
    pub model_window: Option<String>,
}

/// The plans by token, and the default.
#[derive(Debug, Default)]
pub(crate) struct Plans {
    default: PlanConfig,
    by_token: HashMap<String, PlanConfig>,
}

impl Plans {
    pub(crate) fn configure(&mut self, plan: PlanConfig) {
        match plan.token.clone() {
            Some(token) => {
                self.by_token.insert(token, plan);
            }
            None => self.default = plan,
        }
    }

    pub(crate) fn for_token(&self, token: &str) -> PlanConfig {
        self.by_token.get(token).unwrap_or(&self.default).clone()
    }
}

fn h(name: &str, value: impl ToString) -> (String, String) {
    (name.to_string(), value.to_string())
}

impl PlanConfig {
    /// The unified headers every answer to this plan's token carries.
    pub(crate) fn headers(&self) -> Vec<(String, String)> {
        let now = unix_now();
        let reset_5h = self.five_hour_reset.unwrap_or(now + 3600);
        let reset_7d = self.seven_day_reset.unwrap_or(now + 5 * 86_400);
        let exhausted = matches!(self.mode, PlanMode::Exhausted | PlanMode::Overage);
        let (status, util_5h) = match self.mode {
            PlanMode::Within | PlanMode::ThirdParty => ("allowed", "0.12"),
            PlanMode::Warning => ("allowed_warning", "0.91"),
            PlanMode::Exhausted => ("rejected", "1.01"),
            PlanMode::Overage => ("rejected", "1.02"),
        };
        let mut out = vec![
            h("anthropic-ratelimit-unified-status", status),
            h("anthropic-ratelimit-unified-reset", reset_5h),
            h("anthropic-ratelimit-unified-representative-claim", "five_hour"),
            h("anthropic-ratelimit-unified-5h-status", status),
            h("anthropic-ratelimit-unified-5h-reset", reset_5h),
            h("anthropic-ratelimit-unified-5h-utilization", util_5h),
        ];
        if exhausted {
            out.push(h("anthropic-ratelimit-unified-5h-surpassed-threshold", "1.0"));
        }
        out.extend([
            h("anthropic-ratelimit-unified-7d-status", "allowed"),
            h("anthropic-ratelimit-unified-7d-reset", reset_7d),
            h("anthropic-ratelimit-unified-7d-utilization", "0.69"),
        ]);
        if let Some(name) = &self.model_window {
            out.extend([
                h(&format!("anthropic-ratelimit-unified-{name}-status"), "allowed"),
                h(&format!("anthropic-ratelimit-unified-{name}-reset"), reset_7d),
                h(&format!("anthropic-ratelimit-unified-{name}-utilization"), "0.4"),
            ]);
        }
        out.push(h("anthropic-ratelimit-unified-fallback-percentage", "0.5"));
        match self.mode {
            PlanMode::Exhausted => out.extend([
                h("anthropic-ratelimit-unified-overage-status", "rejected"),
                h("anthropic-ratelimit-unified-overage-disabled-reason", "org_level_disabled"),
                h("retry-after", reset_5h.saturating_sub(now).max(1)),
            ]),
            PlanMode::Overage => out.push(h("anthropic-ratelimit-unified-overage-status", "allowed")),
            _ => {}
        }
        out
    }

    /// The error a message request gets instead of an answer, if the plan refuses it.
    pub(crate) fn refusal(&self) -> Option<ApiError> {
        match self.mode {
            PlanMode::Exhausted => Some(ApiError::new(429, "rate limit exceeded").with_headers(self.headers())),
            PlanMode::ThirdParty => Some(ApiError::invalid(THIRD_PARTY_MESSAGE).with_headers(self.headers())),
            _ => None,
        }
    }
}
