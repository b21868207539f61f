//! Per-account state of the [`super::TokenManager`]: the single-flight guard, the cached record, the phase,
//! and what a finished flight leaves for the callers that waited on it.

use std::sync::{Mutex, MutexGuard, PoisonError};

use sha2::{Digest as _, Sha256};

use super::record::TokenRecord;
use super::{OAuthError, secrets_equal};
use crate::secrets::Secret;

/// One account: the refresh guard (one flight at a time) and the cached state.
#[derive(Debug, Default)]
pub(super) struct Slot {
    pub(super) flight: tokio::sync::Mutex<()>,
    pub(super) state: Mutex<SlotState>,
    /// Refreshes the token endpoint granted, and refused or failed (metrics), since start-up.
    pub(super) refreshes: [std::sync::atomic::AtomicU64; 2],
}

#[derive(Debug, Default)]
pub(super) struct SlotState {
    /// The store was read at least once.
    pub(super) loaded: bool,
    pub(super) record: Option<TokenRecord>,
    /// `record` is newer than the store (its save failed): persist before handing it out.
    pub(super) unsaved: bool,
    pub(super) phase: Phase,
    /// Bumped whenever a flight (store reload or refresh) finishes; waiters share its outcome.
    pub(super) generation: u64,
    /// The outcome of the last finished flight, when it failed.
    pub(super) last_error: Option<OAuthError>,
    pub(super) backoff_until: Option<i64>,
    /// SHA-256 of the refresh token the endpoint rejected with `invalid_grant`.
    pub(super) dead_refresh: Option<[u8; 32]>,
}

#[derive(Debug, Default, Clone)]
pub(super) enum Phase {
    #[default]
    Idle,
    Refreshing,
    NeedsLogin(String),
    Error(String),
}

/// Why a flight runs, and when a token is good enough to skip the refresh.
#[derive(Debug, Clone)]
pub(super) enum Trigger {
    /// Refresh when the token expires within the margin (seconds).
    Expiring(i64),
    /// Upstream rejected this token: refresh unless the current one is another.
    Rejected(Secret),
}

impl Trigger {
    /// The token needs no refresh.
    pub(super) fn satisfied_by(&self, r: &TokenRecord, now: i64) -> bool {
        match self {
            Trigger::Expiring(margin) => r.expires_at.saturating_sub(now) > *margin,
            Trigger::Rejected(bad) => r.expires_at > now && !secrets_equal(&r.access_token, bad),
        }
    }

    /// A flight that just finished produced a token the waiter may use (even if inside the margin).
    pub(super) fn accepts_fresh(&self, r: &TokenRecord, now: i64) -> bool {
        match self {
            Trigger::Expiring(_) => r.expires_at > now,
            Trigger::Rejected(_) => self.satisfied_by(r, now),
        }
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn fingerprint(s: &Secret) -> [u8; 32] {
    Sha256::digest(s.expose().as_bytes()).into()
}

impl SlotState {
    /// Ends a flight: bump the generation and remember its failure for the waiters.
    pub(super) fn finish<T>(&mut self, result: Result<T, OAuthError>) -> Result<T, OAuthError> {
        self.generation = self.generation.wrapping_add(1);
        self.last_error = result.as_ref().err().cloned();
        result
    }

    pub(super) fn usable(&self, trigger: &Trigger, now: i64) -> Option<Secret> {
        let r = self.record.as_ref().filter(|_| self.loaded && !self.unsaved)?;
        trigger.satisfied_by(r, now).then(|| r.access_token.clone())
    }

    /// The first read of the store (for `status`): adopted unless a flight loaded the slot meanwhile.
    pub(super) fn adopt_first_load(&mut self, stored: Result<Option<TokenRecord>, OAuthError>) {
        if self.loaded {
            return;
        }
        match stored {
            Ok(r) => self.adopt(r),
            Err(e) => self.phase = Phase::Error(e.to_string()),
        }
    }

    /// Adopts a record read from the store; clears `needs_login` when it holds a new refresh token.
    pub(super) fn adopt(&mut self, stored: Option<TokenRecord>) {
        self.loaded = true;
        if let (Phase::NeedsLogin(_), Some(rt)) = (&self.phase, stored.as_ref().and_then(|r| r.refresh_token.as_ref()))
            && self.dead_refresh != Some(fingerprint(rt))
        {
            self.phase = Phase::Idle;
            self.dead_refresh = None;
        }
        if stored.is_none() {
            self.phase = Phase::NeedsLogin("not logged in; run oauth-start to log in".into());
        } else if matches!(self.phase, Phase::NeedsLogin(ref m) if m.starts_with("not logged in")) {
            self.phase = Phase::Idle;
        }
        self.record = stored;
    }
}
