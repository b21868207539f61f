//! Requests per minute per client key: a token bucket per key in memory (capacity `rpm`, refilled at `rpm` per
//! minute), so a key may send `rpm` requests at once and then one every `60 / rpm` seconds. Integer arithmetic in
//! "units" (one request = 60,000 units; `rpm` units come back per millisecond), so boundaries are exact.

use std::collections::HashMap;
use std::sync::Mutex;

/// Units one request takes.
const UNITS_PER_REQUEST: u64 = 60_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    units: u64,
    at_ms: u64,
}

/// The per-key buckets. One short lock per request of a key that has a rate limit; keys without one never
/// touch it.
#[derive(Debug, Default)]
pub struct RequestRate {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RequestRate {
    /// Takes one request from `key`'s bucket at `now_ms` under a limit of `rpm` requests per minute. `Err` holds
    /// the milliseconds until a request would be allowed; a refused request takes nothing.
    pub fn take(&self, key: &str, rpm: u32, now_ms: u64) -> Result<(), u64> {
        let rpm = u64::from(rpm.max(1));
        let capacity = rpm * UNITS_PER_REQUEST;
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = match buckets.get_mut(key) {
            Some(b) => b,
            None => buckets.entry(key.to_string()).or_insert(Bucket { units: capacity, at_ms: now_ms }),
        };
        let elapsed = now_ms.saturating_sub(bucket.at_ms);
        // A lowered limit (config reload) caps what was saved up under the old one.
        bucket.units = bucket.units.saturating_add(elapsed.saturating_mul(rpm)).min(capacity);
        bucket.at_ms = bucket.at_ms.max(now_ms);
        if bucket.units >= UNITS_PER_REQUEST {
            bucket.units -= UNITS_PER_REQUEST;
            return Ok(());
        }
        Err((UNITS_PER_REQUEST - bucket.units).div_ceil(rpm))
    }

    /// Forgets keys that no longer exist (config reload).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|k, _| keep(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_rpm_requests_at_once_then_one_per_interval() {
        let rate = RequestRate::default();
        let t0 = 1_000_000;
        for _ in 0..3 {
            assert_eq!(rate.take("k", 3, t0), Ok(()));
        }
        // The fourth waits 20 s (60 s / 3), to the millisecond.
        assert_eq!(rate.take("k", 3, t0), Err(20_000));
        assert_eq!(rate.take("k", 3, t0 + 19_999), Err(1));
        assert_eq!(rate.take("k", 3, t0 + 20_000), Ok(()));
        assert_eq!(rate.take("k", 3, t0 + 20_000), Err(20_000));
        // Other keys have their own buckets; a long pause refills to the limit, no further.
        assert_eq!(rate.take("other", 3, t0), Ok(()));
        for _ in 0..3 {
            assert_eq!(rate.take("k", 3, t0 + 3_600_000), Ok(()));
        }
        assert!(rate.take("k", 3, t0 + 3_600_000).is_err());
    }

    #[test]
    fn a_lowered_limit_caps_what_was_saved() {
        let rate = RequestRate::default();
        assert_eq!(rate.take("k", 100, 0), Ok(()));
        assert_eq!(rate.take("k", 1, 0), Ok(()));
        assert_eq!(rate.take("k", 1, 0), Err(60_000));
        // A clock that goes back never adds units.
        assert!(rate.take("k", 1, 0).is_err());
    }
}
