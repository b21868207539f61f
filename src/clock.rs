//! Time as the gateway sees it. Cooldowns, circuit breakers and session TTLs all read one injectable clock, so
//! tests can move time forward instead of sleeping.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};

/// Milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + Debug {
    /// The current time in Unix milliseconds.
    fn now_ms(&self) -> u64;

    /// For a clock that moves only when told to (tests' manual clock): woken (`notify_waiters`) each time it
    /// moves. Whoever waits until a time on such a clock (the account-state monitor, until a bench ends) waits
    /// on this instead of a timer, since real time says nothing about it. `None` for a clock that runs by itself.
    fn moved(&self) -> Option<&tokio::sync::Notify> {
        None
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        u64::try_from(now.as_millis()).unwrap_or(u64::MAX)
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicU64,
    moved: tokio::sync::Notify,
}

impl ManualClock {
    /// A clock at `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        Self { now: AtomicU64::new(start_ms), moved: tokio::sync::Notify::new() }
    }
    /// Moves the clock forward.
    pub fn advance(&self, ms: u64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
        self.moved.notify_waiters();
    }
    /// Sets the clock.
    pub fn set(&self, ms: u64) {
        self.now.store(ms, Ordering::SeqCst);
        self.moved.notify_waiters();
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    fn moved(&self) -> Option<&tokio::sync::Notify> {
        Some(&self.moved)
    }
}

/// The last millisecond RFC 3339 can show (9999-12-31T23:59:59.999Z). Times parsed from the network are clamped
/// to it, so whatever an upstream sends stays printable.
pub const MAX_TIME_MS: u64 = 253_402_300_799_999;

/// Seconds (from the network or the config, possibly fractional) as milliseconds, saturating: NaN and negative
/// values give 0, values beyond `u64` milliseconds give `u64::MAX`. Never panics.
pub fn secs_to_ms(secs: f64) -> u64 {
    if secs.is_nan() || secs <= 0.0 {
        return 0;
    }
    // A float-to-int `as` cast saturates (infinity and overflow give u64::MAX).
    (secs * 1000.0) as u64
}

/// Formats Unix seconds as RFC 3339 (UTC); `None` outside what RFC 3339 can show (years 0000–9999).
pub fn rfc3339_secs(secs: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .filter(|t| (0..=9999).contains(&t.year()))
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
}

/// Now (the system clock), as RFC 3339 (UTC): the timestamps written into config entries and records.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Formats Unix milliseconds as RFC 3339 (UTC), for status output.
pub fn rfc3339(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Formats Unix milliseconds as `HH:MM UTC`, for messages.
pub fn hh_mm(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map(|t| format!("{:02}:{:02}:{:02} UTC", t.hour(), t.minute(), t.second()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_convert_to_milliseconds_without_panicking() {
        assert_eq!(secs_to_ms(1.5), 1_500);
        assert_eq!(secs_to_ms(0.0), 0);
        assert_eq!(secs_to_ms(-3.0), 0);
        assert_eq!(secs_to_ms(f64::NAN), 0);
        assert_eq!(secs_to_ms(f64::INFINITY), u64::MAX);
        assert_eq!(secs_to_ms(1e20), u64::MAX);
    }

    #[test]
    fn unix_seconds_format_only_within_rfc3339_years() {
        assert_eq!(rfc3339_secs(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(rfc3339_secs(MAX_TIME_MS as i64 / 1000).as_deref(), Some("9999-12-31T23:59:59Z"));
        assert_eq!(rfc3339_secs(i64::MAX), None);
        assert_eq!(rfc3339_secs(MAX_TIME_MS as i64 / 1000 + 1), None);
        assert!(!rfc3339(MAX_TIME_MS).is_empty());
    }
}
