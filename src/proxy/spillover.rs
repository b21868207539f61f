//! Claude Code requests and their subscription paths: which accounts a request may use as its failover goes on
//! ([`Lane`]), when every subscription path is exhausted, and what happens then ([`when_subscriptions_exhausted`]:
//! spill over to API-key accounts, or a 429 until the earliest reset).
//!
//! **A subscription path for a request** is, for a Claude Code request (`usage::ClientKind::ClaudeCode`), each
//! stored subscription (OAuth) account that could serve it were it not benched: enabled, logged in (credential
//! present and not rejected), serving the requested model, and allowed by the request's gateway key (its
//! `accounts` / `priority_tiers`). (A client's own claude.ai login passed through is its request's only path; that
//! path calls [`when_subscriptions_exhausted`] itself.) A path is **exhausted** while it is benched for a plan
//! limit: a 429 naming a reset (`rate_limited`) or extra usage avoided (`extra_usage`). Other benches (529,
//! circuit breaker) are passing trouble, not an exhausted plan.
//!
//! A Claude Code request with at least one subscription path uses only those (API-key accounts are kept for the
//! other tools); when all are exhausted, `routing.spillover: api_keys` lets the API-key accounts serve it, and
//! `none` answers 429. A Claude Code request with no subscription path, and every other request, routes as usual;
//! another client whose only accounts are subscriptions with `clients: any`, all exhausted, gets the same 429.

use std::borrow::Cow;

use axum::http::HeaderValue;

use crate::accounts::{BenchReason, LiveAccount};
use crate::clock::hh_mm;
use crate::common::ApiError;
use crate::config::{AccountKind, ClientKey, RoutingConfig, Spillover};

/// The header on an answer an API-key account served because the request's subscriptions were exhausted.
pub const SPILLOVER_HEADER: &str = "x-llm-gateway-spillover";
/// Its value.
pub const SPILLOVER_API_KEY: HeaderValue = HeaderValue::from_static("api_key");

/// Which accounts a request may use at this point of its failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lane {
    /// Every account (routing as usual).
    All,
    /// A Claude Code request's subscription paths only.
    Subscriptions,
    /// Spilled over: API-key accounts only.
    ApiKeys,
}

impl Lane {
    /// The lane a request starts in: its subscription paths when it is Claude Code's and has one.
    pub(crate) fn start(claude_code: bool, accounts: &[std::sync::Arc<LiveAccount>], scope: &PathScope<'_>) -> Self {
        if claude_code && accounts.iter().any(|a| scope.is_path(a)) { Self::Subscriptions } else { Self::All }
    }

    /// The account indices the selector must skip: those already `tried`, plus those outside the lane.
    pub(crate) fn exclude<'a>(self, accounts: &[std::sync::Arc<LiveAccount>], tried: &'a [usize]) -> Cow<'a, [usize]> {
        let outside = match self {
            Self::All => return Cow::Borrowed(tried),
            Self::Subscriptions => AccountKind::ApiKey,
            Self::ApiKeys => AccountKind::Oauth,
        };
        let mut exclude = tried.to_vec();
        exclude.extend(accounts.iter().enumerate().filter(|(_, a)| a.kind() == outside).map(|(i, _)| i));
        Cow::Owned(exclude)
    }
}

/// What narrows a request's subscription paths besides the accounts' own state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PathScope<'a> {
    /// The requested model.
    pub(crate) model: Option<&'a str>,
    /// The gateway key, when it restricts accounts.
    pub(crate) key: Option<&'a ClientKey>,
    /// The request is Claude Code's: every subscription may serve it (others only those with `clients: any`).
    pub(crate) claude_code: bool,
}

impl PathScope<'_> {
    /// Whether `account` is a subscription path for the request (see the module docs).
    pub(crate) fn is_path(&self, account: &LiveAccount) -> bool {
        account.kind() == AccountKind::Oauth
            && self.could_serve(account)
            && (self.claude_code || account.config.serves_any_client())
    }

    /// Whether `account` could serve the request, benched or not: enabled with a credential, serving its model,
    /// allowed by its gateway key.
    fn could_serve(&self, account: &LiveAccount) -> bool {
        account.is_configured_usable()
            && self.model.is_none_or(|m| account.config.serves(m))
            && self.key.is_none_or(|k| k.allows_account(&account.config))
    }

    /// Whether an API-key account could serve the request (benched or not).
    pub(crate) fn any_api_key(&self, accounts: &[std::sync::Arc<LiveAccount>]) -> bool {
        accounts.iter().any(|a| a.kind() == AccountKind::ApiKey && self.could_serve(a))
    }

    /// When every subscription path is exhausted at `now_ms`: `Some(earliest reset)`; `None` when at least one is
    /// not (or there is none).
    pub(crate) fn all_exhausted(&self, accounts: &[std::sync::Arc<LiveAccount>], now_ms: u64) -> Option<u64> {
        let mut earliest: Option<u64> = None;
        for a in accounts.iter().filter(|a| self.is_path(a)) {
            match a.health.benched(now_ms) {
                Some((until, BenchReason::RateLimited | BenchReason::ExtraUsage)) => {
                    earliest = Some(earliest.map_or(until, |e| e.min(until)));
                }
                _ => return None,
            }
        }
        earliest
    }
}

/// What becomes of a Claude Code request whose subscription paths are all exhausted.
#[derive(Debug)]
pub enum WhenExhausted {
    /// `routing.spillover: api_keys`: an API-key account serves it (mark the answer with [`SPILLOVER_HEADER`] and
    /// its usage record as spill-over).
    SpillOver,
    /// `routing.spillover: none`: this 429 (`retry-after` at the earliest reset), in the client's format.
    Refuse(ApiError),
}

/// The decision for a Claude Code request whose every subscription path is exhausted until `earliest_reset_ms` at
/// the earliest: spill over to API-key accounts, or a 429 until then. The own-login path calls this too.
pub fn when_subscriptions_exhausted(routing: &RoutingConfig, earliest_reset_ms: u64, now_ms: u64) -> WhenExhausted {
    match routing.spillover {
        Spillover::ApiKeys => WhenExhausted::SpillOver,
        Spillover::None => WhenExhausted::Refuse(subscriptions_exhausted_error(
            earliest_reset_ms,
            now_ms,
            "wait for the reset, or set routing.spillover: api_keys to let an API-key account take over",
        )),
    }
}

/// The 429 for a request whose subscriptions are all exhausted until `earliest_reset_ms` and that nothing else
/// serves; `way_out` says what the user can do.
pub(crate) fn subscriptions_exhausted_error(earliest_reset_ms: u64, now_ms: u64, way_out: &str) -> ApiError {
    plan_limit_error(
        format!(
            "every Claude subscription this request may use has reached a plan limit until {}; {way_out}",
            hh_mm(earliest_reset_ms)
        ),
        earliest_reset_ms,
        now_ms,
    )
}

/// The failure of an attempt refused under `subscriptions.extra_usage: avoid` on `account` (benched until
/// `until_ms`): what the client gets when no other account takes the request.
pub fn extra_usage_avoided_error(account: &str, why: &str, until_ms: u64, now_ms: u64) -> ApiError {
    plan_limit_error(
        format!(
            "the Claude subscription of account `{account}` cannot serve this request until {}: {why}, and going on \
             would be billed as extra usage, which the gateway avoids (subscriptions.extra_usage: avoid). Wait for \
             the reset, set routing.spillover: api_keys to let an API-key account take over, or set \
             subscriptions.extra_usage: allow to pay for extra usage",
            hh_mm(until_ms)
        ),
        until_ms,
        now_ms,
    )
}

/// A 429 with `retry-after` at `until_ms`, `x-should-retry: false` (a plan window takes minutes to days; a
/// client retrying within seconds cannot help) and the unified status and reset Claude Code reads as a plan limit.
fn plan_limit_error(message: String, until_ms: u64, now_ms: u64) -> ApiError {
    let secs = until_ms.saturating_sub(now_ms).div_ceil(1000).max(1);
    ApiError { no_retry: true, plan_reset_secs: Some(until_ms.div_ceil(1000)), ..ApiError::rate_limited(message, secs) }
}
