//! A request that brought its own Anthropic credential (issue #13, `subscriptions.own_login: forward`): one
//! attempt on its own path, never a stored account. The credential is in the request's headers (kept by
//! `upstream::request_headers_for_own_login`); nothing is added (no identity prompt, no beta, no bearer of ours).
//! The path is tracked like an account (`gateway::OwnLogins`): its answer's rate-limit windows are recorded, a 429
//! with a reset benches it, and while it is benched the client gets a 429 with `retry-after` at the reset
//! ([`Exchange::subscription_exhausted`]) rather than a silent detour through someone else's account.

use std::time::Instant;

use super::attempt::{AttemptError, Judgement, judge};
use super::{Delivery, Exchange};
use crate::accounts::{Claim, LiveAccount};
use crate::common::ApiError;
use crate::gateway::OwnCredential;
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
            return self.subscription_exhausted(&path, now);
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
                self.give_up(None)
            }
            Judgement::Stop(error) => self.recorder.refuse(error, Outcome::ClientError),
        }
    }

    /// The only subscription path this request may use — its own login — is exhausted (benched until its
    /// reset): the client gets a 429 with `retry-after` at the reset, in its own format, and nothing is sent.
    ///
    /// This is where `routing.spillover: api_keys` (issue #13, item 5) connects: a Claude Code request whose
    /// own-login path is exhausted may instead run the failover loop ([`Exchange::run`]) over API-key accounts,
    /// marking the answer and the usage record as spilled over.
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
