//! The `subscriptions:` and `usage:` sections of the config model (and `routing.spillover`'s values), apart from
//! `model.rs` to keep each file small; re-exported from `config` like the rest of the model.

use serde::{Deserialize, Serialize};

/// `subscriptions:` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SubscriptionsConfig {
    /// What to do with a request that carries its own Anthropic credential (Claude Code's claude.ai login, or an
    /// Anthropic API key) instead of only a gateway key.
    pub own_login: OwnLogin,
    /// What a subscription does when its plan window is exhausted and more would be billed as extra usage:
    /// `avoid` (default: bench it until the window resets, fail over or answer 429) or `allow` (pass through).
    pub extra_usage: ExtraUsage,
}

/// `subscriptions.own_login`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OwnLogin {
    /// Forward it upstream untouched (with the client's betas, no enhancement), never storing it: only a short
    /// hash groups its usage, windows and cooldowns.
    #[default]
    Forward,
    /// Answer 401, saying how to use a gateway key instead.
    Refuse,
}

/// `subscriptions.extra_usage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ExtraUsage {
    /// Never let a subscription run into extra usage silently: bench it until its plan window resets.
    #[default]
    Avoid,
    /// Pass the upstream's answers through; the plan's owner pays for extra usage as Anthropic bills it.
    Allow,
}

/// `routing.spillover`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Spillover {
    /// A Claude Code request whose subscriptions are all exhausted gets a 429 until the earliest reset.
    #[default]
    None,
    /// An API-key account serves it (marked `x-llm-gateway-spillover: api_key` and in usage).
    ApiKeys,
}

/// `usage:` settings (the request log and usage database).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageConfig {
    /// Record every request in the usage database. Off: nothing is recorded (queries answer empty).
    pub enabled: bool,
    /// The SQLite database; relative paths are beside the config file. Default: `usage.db` beside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Days the request log (one row per request) is kept.
    pub retention_days: u32,
    /// Days the hourly and daily totals are kept.
    pub rollup_retention_days: u32,
    /// Finished requests waiting for the database writer; when full, new records are dropped and counted (the
    /// request path never waits on disk).
    pub queue_capacity: usize,
    /// Price overrides by model-id prefix (longest match wins), in USD per million tokens, on top of the built-in
    /// table (`src/usage/prices.json`).
    pub prices: std::collections::BTreeMap<String, ModelPrice>,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: None,
            retention_days: 30,
            rollup_retention_days: 400,
            queue_capacity: 8192,
            prices: Default::default(),
        }
    }
}

impl UsageConfig {
    /// The first unusable value, as (key, what is expected).
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.retention_days == 0 {
            return Err(("usage.retention_days".into(), "must be at least 1".into()));
        }
        if self.rollup_retention_days < self.retention_days {
            return Err(("usage.rollup_retention_days".into(), "must be at least usage.retention_days".into()));
        }
        if !(16..=1_000_000).contains(&self.queue_capacity) {
            return Err(("usage.queue_capacity".into(), "must be between 16 and 1000000".into()));
        }
        if self.path.as_deref().is_some_and(|p| p.trim().is_empty()) {
            return Err((
                "usage.path".into(),
                "must not be empty (leave it out for usage.db beside the config)".into(),
            ));
        }
        for (model, price) in &self.prices {
            let fields = [price.input, price.output, price.cache_write, price.cache_read];
            let ok = !model.trim().is_empty()
                && fields.into_iter().chain(price.cache_write_1h).all(|p| p.is_finite() && (0.0..=1e6).contains(&p));
            if !ok {
                return Err((
                    format!("usage.prices.{model}"),
                    "needs a model prefix and prices in USD per million tokens between 0 and 1000000".into(),
                ));
            }
        }
        Ok(())
    }
}

/// One model's prices in USD per million tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Input tokens (after the last cache breakpoint).
    pub input: f64,
    /// Output tokens.
    pub output: f64,
    /// Cache writes with the 5-minute TTL.
    pub cache_write: f64,
    /// Cache reads (hits and refreshes).
    pub cache_read: f64,
    /// Cache writes with the 1-hour TTL; default twice `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_1h: Option<f64>,
}
