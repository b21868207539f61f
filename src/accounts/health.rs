//! Per-account routing health: cooldowns, the circuit breaker, half-open trials, and recent error rate and latency.
//!
//! Everything the selector reads on the hot path is an atomic, so choosing among 100 accounts takes no lock.
//! Details only shown to users (reasons, windows) sit behind a mutex that selection never touches.

use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// The routing knobs, from `routing:` in the config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthPolicy {
    /// Bench after a 529, in ms.
    pub overloaded_cooldown_ms: u64,
    /// Consecutive 5xx/network failures that open the circuit.
    pub breaker_threshold: u32,
    /// First open-circuit backoff, in ms; doubles per consecutive trip.
    pub breaker_base_ms: u64,
    /// Longest open-circuit backoff, in ms.
    pub breaker_max_ms: u64,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self { overloaded_cooldown_ms: 15_000, breaker_threshold: 5, breaker_base_ms: 5_000, breaker_max_ms: 300_000 }
    }
}

/// Why an account is benched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchReason {
    /// 429 with a reset time.
    RateLimited,
    /// 529.
    Overloaded,
    /// The circuit breaker opened after repeated 5xx/network failures.
    CircuitOpen,
    /// A subscription's plan window is exhausted and further use would be billed as extra usage
    /// (`subscriptions.extra_usage: avoid`): benched until the window resets.
    ExtraUsage,
}

impl BenchReason {
    fn code(self) -> u32 {
        match self {
            Self::RateLimited => 1,
            Self::Overloaded => 2,
            Self::CircuitOpen => 3,
            Self::ExtraUsage => 4,
        }
    }
    fn from_code(code: u32) -> Option<Self> {
        match code {
            1 => Some(Self::RateLimited),
            2 => Some(Self::Overloaded),
            3 => Some(Self::CircuitOpen),
            4 => Some(Self::ExtraUsage),
            _ => None,
        }
    }
    /// The lowercase name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::Overloaded => "overloaded",
            Self::CircuitOpen => "circuit_open",
            Self::ExtraUsage => "extra_usage",
        }
    }
}

/// What one upstream attempt told us about the account.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// The upstream answered (2xx, or a client error that says nothing against the account).
    Healthy {
        /// Time to response headers, ms.
        latency_ms: u64,
    },
    /// 429 naming a reset: bench until then.
    RateLimited {
        /// Bench end (Unix ms).
        until_ms: u64,
    },
    /// A subscription's plan is exhausted and more would be extra usage: bench until the window resets.
    PlanExhausted {
        /// Bench end (Unix ms).
        until_ms: u64,
    },
    /// 429 without rate-limit headers (request-scoped): try elsewhere, no bench.
    Windowless,
    /// 529.
    Overloaded,
    /// 5xx, a connect error or a timeout.
    Failed,
}

/// How [`Health::claim`] let a request through.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// The account is trusted: nothing to give back.
    Open,
    /// The half-open trial slot: held until the attempt's outcome is recorded, or given back with
    /// [`Health::release_trial`] (see [`super::Claim`], which does either on every path).
    Trial(TrialToken),
}

/// Proof of holding an account's trial slot. Not `Clone`: only its holder can give the slot back, and a stale
/// token (its trial already settled by an outcome) gives back nothing.
#[derive(Debug, PartialEq, Eq)]
pub struct TrialToken(NonZeroU64);

/// Lock-free health of one account.
#[derive(Debug, Default)]
pub struct Health {
    blocked_until_ms: AtomicU64,
    bench_reason: AtomicU32,
    probation: AtomicBool,
    /// The token of the trial in flight; 0 when none.
    trial: AtomicU64,
    trial_seq: AtomicU64,
    consecutive_failures: AtomicU32,
    trips: AtomicU32,
    /// Recent error rate ×1000 (EWMA).
    error_rate_milli: AtomicU32,
    /// Recent latency in ms (EWMA).
    latency_ms: AtomicU32,
    /// Fullest rate-limit window ×1000.
    utilization_milli: AtomicU32,
}

/// Exponentially weighted moving average on integers, weight 1/8 for the new sample.
fn ewma(cell: &AtomicU32, sample: u32) {
    let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
        Some(((u64::from(old) * 7 + u64::from(sample)) / 8) as u32)
    });
}

impl Health {
    /// Whether the account may be chosen at `now_ms` (ignoring enabled/credential state).
    pub fn available(&self, now_ms: u64) -> bool {
        now_ms >= self.blocked_until_ms.load(Ordering::Acquire)
            && !(self.probation.load(Ordering::Acquire) && self.trial.load(Ordering::Acquire) != 0)
    }

    /// Claims the account for a request. After a bench ends, only one trial request at a time goes through
    /// (half-open) until one succeeds; returns `None` when benched or when another request holds the trial.
    pub fn claim(&self, now_ms: u64) -> Option<Admission> {
        if now_ms < self.blocked_until_ms.load(Ordering::Acquire) {
            return None;
        }
        if !self.probation.load(Ordering::Acquire) {
            return Some(Admission::Open);
        }
        let seq = self.trial_seq.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let token = NonZeroU64::new(seq).unwrap_or(NonZeroU64::MIN);
        self.trial
            .compare_exchange(0, token.get(), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
            .then_some(Admission::Trial(TrialToken(token)))
    }

    /// Gives the trial slot back without judging the account (the request ended before an answer: the client
    /// went away, no token could be had, the body was refused). A no-op when an outcome already settled it.
    pub fn release_trial(&self, token: TrialToken) {
        let _ = self.trial.compare_exchange(token.0.get(), 0, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Whether the account is in its half-open trial phase.
    pub fn on_probation(&self) -> bool {
        self.probation.load(Ordering::Acquire)
    }

    /// The bench end and reason, if benched at `now_ms`.
    pub fn benched(&self, now_ms: u64) -> Option<(u64, BenchReason)> {
        let until = self.blocked_until_ms.load(Ordering::Acquire);
        (until > now_ms)
            .then(|| (until, BenchReason::from_code(self.bench_reason.load(Ordering::Acquire))))
            .and_then(|(u, r)| r.map(|r| (u, r)))
    }

    fn bench(&self, until_ms: u64, reason: BenchReason) {
        self.bench_reason.store(reason.code(), Ordering::Release);
        self.blocked_until_ms.store(until_ms, Ordering::Release);
        self.probation.store(true, Ordering::Release);
        self.trial.store(0, Ordering::Release);
    }

    /// Records an attempt's result; returns the bench it caused, if any (for logging).
    pub fn observe(&self, observation: &Observation, now_ms: u64, policy: &HealthPolicy) -> Option<(u64, BenchReason)> {
        match observation {
            Observation::Healthy { latency_ms } => {
                self.consecutive_failures.store(0, Ordering::Release);
                self.trips.store(0, Ordering::Release);
                self.probation.store(false, Ordering::Release);
                self.trial.store(0, Ordering::Release);
                ewma(&self.error_rate_milli, 0);
                ewma(&self.latency_ms, u32::try_from(*latency_ms).unwrap_or(u32::MAX));
                None
            }
            Observation::RateLimited { until_ms } => {
                ewma(&self.error_rate_milli, 1000);
                self.bench(*until_ms, BenchReason::RateLimited);
                Some((*until_ms, BenchReason::RateLimited))
            }
            Observation::PlanExhausted { until_ms } => {
                self.bench(*until_ms, BenchReason::ExtraUsage);
                Some((*until_ms, BenchReason::ExtraUsage))
            }
            // A request-scoped 429 says nothing about the account; a trial it ended is given back by its claim.
            Observation::Windowless => {
                ewma(&self.error_rate_milli, 1000);
                None
            }
            Observation::Overloaded => {
                // Overload is the upstream's, not the account's: short bench, never counted as exhaustion.
                let until = now_ms.saturating_add(policy.overloaded_cooldown_ms);
                self.bench(until, BenchReason::Overloaded);
                Some((until, BenchReason::Overloaded))
            }
            Observation::Failed => {
                ewma(&self.error_rate_milli, 1000);
                let failures = self.consecutive_failures.fetch_add(1, Ordering::AcqRel) + 1;
                // A failed half-open trial reopens at once; otherwise open after `threshold` failures in a row.
                if self.probation.load(Ordering::Acquire) || failures >= policy.breaker_threshold {
                    let trips = self.trips.fetch_add(1, Ordering::AcqRel);
                    let backoff =
                        policy.breaker_base_ms.saturating_mul(1u64 << trips.min(20)).min(policy.breaker_max_ms);
                    self.consecutive_failures.store(0, Ordering::Release);
                    let until = now_ms.saturating_add(backoff);
                    self.bench(until, BenchReason::CircuitOpen);
                    return Some((until, BenchReason::CircuitOpen));
                }
                None
            }
        }
    }

    /// Records the fullest window's utilisation (0.0–1.0+).
    pub fn set_utilization(&self, utilization: f64) {
        let milli = (utilization.clamp(0.0, 4.0) * 1000.0) as u32;
        self.utilization_milli.store(milli, Ordering::Relaxed);
    }

    /// Lower is better: recent errors weigh most, then window fullness, then latency.
    pub fn score(&self) -> u64 {
        u64::from(self.error_rate_milli.load(Ordering::Relaxed)) * 1_000
            + u64::from(self.utilization_milli.load(Ordering::Relaxed)) * 300
            + u64::from(self.latency_ms.load(Ordering::Relaxed))
    }

    /// Recent error rate (0–1) and latency (ms), for status.
    pub fn recent(&self) -> (f64, u32) {
        (f64::from(self.error_rate_milli.load(Ordering::Relaxed)) / 1000.0, self.latency_ms.load(Ordering::Relaxed))
    }

    /// Consecutive 5xx/network failures so far.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: HealthPolicy = HealthPolicy {
        overloaded_cooldown_ms: 15_000,
        breaker_threshold: 3,
        breaker_base_ms: 1_000,
        breaker_max_ms: 8_000,
    };

    #[test]
    fn rate_limit_benches_until_reset_then_allows_one_trial() {
        let h = Health::default();
        h.observe(&Observation::RateLimited { until_ms: 10_000 }, 0, &P);
        assert!(!h.available(9_999));
        assert_eq!(h.benched(5_000), Some((10_000, BenchReason::RateLimited)));
        assert!(h.available(10_000));
        assert!(matches!(h.claim(10_000), Some(Admission::Trial(_))), "first request after the reset is the trial");
        assert_eq!(h.claim(10_000), None, "a second request waits for the trial's outcome");
        assert!(!h.available(10_000));
        h.observe(&Observation::Healthy { latency_ms: 20 }, 10_050, &P);
        assert_eq!(h.claim(10_060), Some(Admission::Open), "trusted again after a good trial");
    }

    #[test]
    fn a_released_trial_lets_the_next_request_try_and_a_stale_token_releases_nothing() {
        let h = Health::default();
        h.observe(&Observation::RateLimited { until_ms: 10_000 }, 0, &P);
        let Some(Admission::Trial(first)) = h.claim(10_000) else { panic!("trial") };
        h.release_trial(first);
        assert!(h.available(10_000), "the abandoned trial is given back");
        let Some(Admission::Trial(second)) = h.claim(10_000) else { panic!("trial") };
        // The second trial fails and re-benches; after that bench a third request holds the trial.
        h.observe(&Observation::Failed, 10_000, &P);
        let Some(Admission::Trial(third)) = h.claim(20_000) else { panic!("trial") };
        h.release_trial(second);
        assert_eq!(h.claim(20_000), None, "a stale token does not free someone else's trial");
        h.release_trial(third);
        assert!(h.available(20_000));
    }

    #[test]
    fn overload_benches_briefly_and_windowless_429_not_at_all() {
        let h = Health::default();
        h.observe(&Observation::Windowless, 0, &P);
        assert!(h.available(0));
        h.observe(&Observation::Overloaded, 0, &P);
        assert_eq!(h.benched(1), Some((15_000, BenchReason::Overloaded)));
        assert!(h.available(15_000));
    }

    #[test]
    fn breaker_opens_after_threshold_and_backoff_grows_on_failed_trials() {
        let h = Health::default();
        assert!(h.observe(&Observation::Failed, 0, &P).is_none());
        assert!(h.observe(&Observation::Failed, 0, &P).is_none());
        assert_eq!(h.observe(&Observation::Failed, 0, &P), Some((1_000, BenchReason::CircuitOpen)));
        assert!(h.claim(1_000).is_some());
        // The half-open trial fails: open again for twice as long.
        assert_eq!(h.observe(&Observation::Failed, 1_000, &P), Some((3_000, BenchReason::CircuitOpen)));
        assert!(h.claim(3_000).is_some());
        assert_eq!(h.observe(&Observation::Failed, 3_000, &P), Some((7_000, BenchReason::CircuitOpen)));
        assert!(h.claim(7_000).is_some());
        assert_eq!(h.observe(&Observation::Failed, 7_000, &P), Some((15_000, BenchReason::CircuitOpen)), "capped");
        assert!(h.claim(15_000).is_some());
        h.observe(&Observation::Healthy { latency_ms: 5 }, 15_000, &P);
        assert!(h.observe(&Observation::Failed, 15_001, &P).is_none(), "closed: counting from zero again");
    }
}
