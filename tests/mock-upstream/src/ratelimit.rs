//! Rate-limit response headers (protocol.md §3) and the time formats they use.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// RFC 3339 UTC timestamp (`2026-05-01T12:00:00Z`) for Unix seconds.
pub(crate) fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, (secs / 60) % 60, secs % 60)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn h(name: &str, value: impl ToString) -> (String, String) {
    (name.to_string(), value.to_string())
}

/// API-key rate-limit headers: requests/tokens/input-tokens/output-tokens limit, remaining and
/// RFC 3339 reset `reset_in` seconds from now. `exhausted` sets every remaining to 0.
pub(crate) fn api_key_headers(exhausted: bool, reset_in: u64) -> Vec<(String, String)> {
    let reset = rfc3339(unix_now() + reset_in);
    let mut out = Vec::new();
    for (kind, limit) in
        [("requests", 4_000u64), ("tokens", 2_000_000), ("input-tokens", 2_000_000), ("output-tokens", 400_000)]
    {
        let remaining = if exhausted { 0 } else { limit - 1 };
        out.push(h(&format!("anthropic-ratelimit-{kind}-limit"), limit));
        out.push(h(&format!("anthropic-ratelimit-{kind}-remaining"), remaining));
        out.push(h(&format!("anthropic-ratelimit-{kind}-reset"), &reset));
    }
    out
}

/// The 429 headers for an API key: `retry-after` plus exhausted API-key limits.
pub(crate) fn api_key_limited(retry_after: u64) -> Vec<(String, String)> {
    let mut out = vec![h("retry-after", retry_after)];
    out.extend(api_key_headers(true, retry_after));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_785_518_400), "2026-07-31T17:20:00Z");
    }
}
