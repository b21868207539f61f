//! A request that brought its own Anthropic credential (issue #13, `subscriptions.own_login: forward`): one
//! attempt on its own path, never a stored account. The credential is in the request's headers (kept by
//! `upstream::request_headers_for_own_login`); nothing is added (no identity prompt, no beta, no bearer of ours).
//! The path is tracked like an account (`gateway::OwnLogins`): its answer's rate-limit windows are recorded, a 429
//! with a reset benches it, and while it is benched the client gets a 429 with `retry-after` at the reset
//! ([`Exchange::subscription_exhausted`]) rather than a silent detour through someone else's account.

use std::time::Instant;

use super::attempt::{AttemptError, Judgement, judge};
use super::spillover::{self, Lane, PathScope, WhenExhausted};
use super::{Delivery, Exchange};
use crate::accounts::{BenchReason, Claim, LiveAccount};
use crate::common::ApiError;
use crate::gateway::OwnCredential;
use crate::upstream::own_login_headers_for_an_account;
use crate::usage::Outcome;

/// `retry-after` when the path is between a bench and its half-open trial (another request holds the trial).
const TRIAL_BUSY_RETRY_SECS: u64 = 1;
/// Past this wait, the 429 says `x-should-retry: false`: Claude Code (and the SDKs) then report the limit at once
/// instead of sleeping through retries for up to hours.
const RETRY_SOON_MAX_SECS: u64 = 60;

impl Exchange {
    /// Sends the request once with the client's own credential and judges the answer like any attempt: a success
    /// or the request's error goes back; an upstream failure (401, 429, 5xx) goes back as the upstream sent it,
    /// after being recorded on the path (Claude Code reads it: a 401 makes it refresh its login, a 429's headers
    /// tell a plan limit from a throttle).
    pub(super) async fn run_own_login(mut self, own: &OwnCredential) -> Delivery {
        let now = self.gateway.now_ms();
        let path = self.gateway.own_logins().path(own, &self.live.config.upstream.base_url, now);
        let Some(claim) = Claim::take(&path, now) else {
            return self.own_path_exhausted(&path, now).await;
        };
        path.record_attempt(now);
        let started = Instant::now();
        let sent = self
            .live
            .upstream
            .send(&path, None, self.endpoint.method(), &self.path_and_query, self.headers.clone(), self.body.clone())
            .await
            .map_err(AttemptError::Upstream);
        match judge(&self.gateway, &self.live, claim, sent, started, 1).await {
            Judgement::Deliver(answer) => {
                if answer.status().is_success() {
                    // A login the upstream refused before (an expired token) works again.
                    path.clear_error();
                }
                self.recorder.attempt(&path, Some(answer.status().as_u16()), None, started);
                self.recorder.deliver(answer, None)
            }
            Judgement::Retry { reason, status, failure } => {
                self.recorder.attempt(&path, status, Some(reason), started);
                self.last_failure = Some(failure);
                // An answer that benched the path at its plan limit: spill over, or it goes back to the client.
                let now = self.gateway.now_ms();
                match self.try_spillover(&path, now).await {
                    Ok(delivery) => delivery,
                    Err(this) => this.give_up(None),
                }
            }
            Judgement::Stop(error) => self.recorder.refuse(error, Outcome::ClientError),
        }
    }

    /// The request's own login is benched: with `routing.spillover: api_keys`, a Claude Code request whose login is
    /// at its plan limit goes to an API-key account instead ([`Self::try_spillover`]); otherwise the 429 of
    /// [`Self::subscription_exhausted`].
    async fn own_path_exhausted(self, path: &LiveAccount, now_ms: u64) -> Delivery {
        match self.try_spillover(path, now_ms).await {
            Ok(delivery) => delivery,
            Err(this) => this.subscription_exhausted(path, now_ms),
        }
    }

    /// Spill-over for a request whose own login (its only subscription path) is at its plan limit: when
    /// `routing.spillover` says so and an API-key account could serve it, the failover loop runs over API-key
    /// accounts only, without the client's credential (its `oauth-…` beta dropped too: the gateway's key
    /// authenticates now); the answer and the record are marked. `Err(self)`: no spill-over; the caller answers.
    async fn try_spillover(mut self, path: &LiveAccount, now_ms: u64) -> Result<Delivery, Self> {
        let Some(until) = plan_limited(path, now_ms).filter(|_| self.claude_code) else {
            return Err(self);
        };
        if !matches!(
            spillover::when_subscriptions_exhausted(&self.live.config.routing, until, now_ms),
            WhenExhausted::SpillOver
        ) {
            return Err(self);
        }
        let scope = PathScope {
            model: self.model.as_deref(),
            key: self.key.as_deref().filter(|k| k.restricts_accounts()),
            claude_code: true,
        };
        if !scope.any_api_key(&self.live.accounts) {
            return Err(self);
        }
        tracing::info!(path = %path.name(), "own login at its plan limit; spilling over to an API-key account");
        self.headers = own_login_headers_for_an_account(std::mem::take(&mut self.headers));
        self.lane = Lane::ApiKeys;
        Ok(Box::pin(self.run()).await)
    }

    /// The only subscription path this request may use — its own login — is exhausted (benched until its
    /// reset): the client gets a 429 with `retry-after` at the reset, in its own format, and nothing is sent.
    pub(super) fn subscription_exhausted(self, path: &LiveAccount, now_ms: u64) -> Delivery {
        let (retry_after, message) = match path.health.benched(now_ms) {
            Some((until, reason)) => (
                until.saturating_sub(now_ms).div_ceil(1000).max(1),
                format!(
                    "your own login ({}) is {} until {}: the gateway does not send it upstream before then",
                    path.name(),
                    reason.as_str().replace('_', " "),
                    crate::clock::hh_mm(until)
                ),
            ),
            None => (
                TRIAL_BUSY_RETRY_SECS,
                format!("your own login ({}) is being tried again after a rate limit; retry in a moment", path.name()),
            ),
        };
        tracing::info!(path = %path.name(), retry_after, "own login exhausted; answering 429");
        let error =
            ApiError { no_retry: retry_after > RETRY_SOON_MAX_SECS, ..ApiError::rate_limited(message, retry_after) };
        self.recorder.refuse(error, Outcome::NoAccount)
    }
}

/// When the path is benched at a plan limit (a 429 naming a reset, or extra usage avoided): its end.
fn plan_limited(path: &LiveAccount, now_ms: u64) -> Option<u64> {
    match path.health.benched(now_ms) {
        Some((until, BenchReason::RateLimited | BenchReason::ExtraUsage)) => Some(until),
        _ => None,
    }
}
