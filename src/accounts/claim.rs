//! A request's hold on an account, from selection to the attempt's outcome.

use std::sync::Arc;

use super::LiveAccount;
use super::health::{Admission, BenchReason, HealthPolicy, Observation, TrialToken};

/// The account chosen for one attempt. When the selection took the account's half-open trial slot, the claim
/// holds it: [`Claim::observe`] settles it with the outcome, and dropping the claim without an outcome (the client
/// hung up during the upstream call, no OAuth token could be had, an early return) gives it back. So a trial can
/// never be lost, whichever await a request is cancelled at.
#[derive(Debug)]
pub struct Claim {
    account: Arc<LiveAccount>,
    trial: Option<TrialToken>,
}

impl Claim {
    /// Tries to claim `account` at `now_ms`; `None` when it is benched or another request holds its trial.
    pub fn take(account: &Arc<LiveAccount>, now_ms: u64) -> Option<Self> {
        let trial = match account.health.claim(now_ms)? {
            Admission::Open => None,
            Admission::Trial(token) => Some(token),
        };
        Some(Self { account: account.clone(), trial })
    }

    /// The claimed account.
    pub fn account(&self) -> &Arc<LiveAccount> {
        &self.account
    }

    /// Whether this attempt is the account's half-open trial.
    pub fn is_trial(&self) -> bool {
        self.trial.is_some()
    }

    /// Records the attempt's outcome and ends the claim; returns the bench it caused, if any.
    pub fn observe(
        mut self,
        observation: &Observation,
        now_ms: u64,
        policy: &HealthPolicy,
    ) -> Option<(u64, BenchReason)> {
        let bench = self.account.health.observe(observation, now_ms, policy);
        // A success or a bench has settled the trial; anything else (a request-scoped 429) gives it back.
        self.release();
        // Only a bench changes what the account shows (a healthy answer never does): wake the monitor for it.
        if bench.is_some() {
            self.account.state_may_have_changed();
        }
        bench
    }

    fn release(&mut self) {
        if let Some(token) = self.trial.take() {
            self.account.health.release_trial(token);
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.release();
    }
}
