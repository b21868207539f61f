//! Tests of `windows.rs`: header parsing, windows shown and saved, bench ends.

use super::*;
use http::HeaderValue;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

const NOW: u64 = 1_785_510_000_000;

#[test]
fn an_accounts_windows_are_handed_out_for_saving_when_they_change_at_most_once_per_interval() {
    let config: crate::config::Account = serde_json::from_str(r#"{"id":"acc_a","name":"a"}"#).unwrap();
    let account = crate::accounts::LiveAccount::new(config.clone(), "http://up", None);
    assert!(account.windows_to_save(NOW, 1000).is_none(), "nothing reported yet");
    let report = |remaining: &str, at: u64| {
        parse_windows(&headers(&[("anthropic-ratelimit-requests-remaining", remaining)]), at)
    };
    account.record_response(200, report("49", NOW));
    let first = account.windows_to_save(NOW, 1000).unwrap();
    assert_eq!(first.requests.as_ref().unwrap().remaining, Some(49));
    // The same values reported again later: nothing new to save.
    account.record_response(200, report("49", NOW + 5000));
    assert!(account.windows_to_save(NOW + 5000, 1000).is_none());
    // A change within the interval waits for the next answer after it (or shutdown, with no interval).
    account.record_response(200, report("48", NOW + 5100));
    assert!(account.windows_to_save(NOW + 5100, 10_000).is_none());
    assert_eq!(account.windows_to_save(NOW + 5100, 0).unwrap().requests.unwrap().remaining, Some(48));
    // Windows kept from before a restart show until new ones arrive.
    let restored = crate::accounts::LiveAccount::new(config, "http://up", None);
    restored.restore_windows(first.clone());
    assert_eq!(restored.view(NOW).windows, Some(first));
    restored.record_response(200, report("10", NOW));
    assert_eq!(restored.view(NOW).windows.unwrap().requests.unwrap().remaining, Some(10));
}

#[test]
fn unified_429_benches_until_the_latest_rejected_reset() {
    // The real capture from protocol.md §3: 5h rejected at 1785518400, 7d allowed (later reset ignored).
    let h = headers(&[
        ("anthropic-ratelimit-unified-status", "rejected"),
        ("anthropic-ratelimit-unified-reset", "1785518400"),
        ("anthropic-ratelimit-unified-5h-status", "rejected"),
        ("anthropic-ratelimit-unified-5h-reset", "1785518400"),
        ("anthropic-ratelimit-unified-7d-status", "allowed"),
        ("anthropic-ratelimit-unified-7d-reset", "1786006800"),
        ("retry-after", "7835"),
    ]);
    // retry-after: NOW + 7835 s = 1785517835000 < the 5h reset.
    assert_eq!(rate_limit_until(&h, NOW, 86_400_000), Some(1_785_518_400_000));
}

#[test]
fn rejected_seven_day_window_extends_the_bench_and_is_capped_at_a_day() {
    let h = headers(&[
        ("anthropic-ratelimit-unified-7d-status", "rejected"),
        ("anthropic-ratelimit-unified-7d-reset", "1786006800"),
    ]);
    assert_eq!(rate_limit_until(&h, NOW, 7 * 86_400_000), Some(1_786_006_800_000));
    assert_eq!(rate_limit_until(&h, NOW, 86_400_000), Some(NOW + 86_400_000), "capped at 24 h");
}

#[test]
fn api_key_limits_with_nothing_left_count_and_retry_after_dates_parse() {
    let h = headers(&[
        ("anthropic-ratelimit-tokens-remaining", "0"),
        ("anthropic-ratelimit-tokens-reset", "2026-07-31T15:00:30Z"),
        ("anthropic-ratelimit-requests-remaining", "10"),
        ("anthropic-ratelimit-requests-reset", "2026-07-31T16:00:00Z"),
    ]);
    let reset = rfc3339_ms("2026-07-31T15:00:30Z").unwrap();
    assert_eq!(rate_limit_until(&h, reset - 30_000, 86_400_000), Some(reset));
    let h = headers(&[("retry-after", "Wed, 21 Oct 2037 07:28:00 GMT")]);
    assert!(retry_after_ms(&h, NOW).unwrap() > NOW);
}

#[test]
fn past_resets_give_no_bench() {
    let h = headers(&[("anthropic-ratelimit-unified-reset", "1000")]);
    assert_eq!(rate_limit_until(&h, NOW, 86_400_000), None);
}

#[test]
fn overage_per_model_and_unknown_windows_are_kept_and_the_warning_flag_follows_allowed_warning() {
    let h = headers(&[
        ("anthropic-ratelimit-unified-status", "allowed"),
        ("anthropic-ratelimit-unified-5h-status", "allowed_warning"),
        ("anthropic-ratelimit-unified-5h-utilization", "0.91"),
        ("anthropic-ratelimit-unified-7d_oi-status", "allowed"),
        ("anthropic-ratelimit-unified-7d_oi-reset", "1786006800"),
        ("anthropic-ratelimit-unified-7d_oi-utilization", "0.4"),
        ("anthropic-ratelimit-unified-9x-reset", "1786006800"),
        ("anthropic-ratelimit-unified-overage-status", "rejected"),
        ("anthropic-ratelimit-unified-overage-disabled-reason", "out_of_credits"),
        ("anthropic-ratelimit-unified-fallback-percentage", "0.5"),
        ("anthropic-ratelimit-unified-representative-claim", "five_hour"),
    ]);
    let reported = parse_windows(&h, NOW).unwrap();
    assert!(!reported.plan_rejected(), "overage off is not an exhausted plan");
    let w = reported.view();
    assert!(w.warning);
    assert_eq!(w.overage_status.as_deref(), Some("rejected"));
    assert_eq!(w.overage_disabled_reason.as_deref(), Some("out_of_credits"));
    let oi = &w.other_windows["7d_oi"];
    assert_eq!((oi.status.as_deref(), oi.utilization), (Some("allowed"), Some(0.4)));
    assert_eq!(oi.reset.as_deref(), Some("2026-08-06T09:00:00Z"));
    assert_eq!(w.other_windows["9x"].reset, oi.reset, "an unknown window is kept by name");
    assert_eq!(w.other_windows.len(), 2, "fallback-percentage and representative-claim are not windows");
    // The latest reset is the plan's when nothing is rejected; a rejected per-model window is exhausted.
    assert_eq!(reported.plan_reset_ms(NOW), Some(1_786_006_800_000));
    let rejected = parse_windows(&headers(&[("anthropic-ratelimit-unified-7d_oi-status", "rejected")]), NOW).unwrap();
    assert!(rejected.plan_rejected() && !rejected.view().warning);
    // The view round-trips through the JSON the usage store keeps.
    let json = serde_json::to_value(&w).unwrap();
    assert_eq!(serde_json::from_value::<RateWindows>(json).unwrap(), w);
}

#[test]
fn windows_are_parsed_for_status_and_utilisation() {
    let h = headers(&[
        ("anthropic-ratelimit-unified-status", "allowed_warning"),
        ("anthropic-ratelimit-unified-5h-utilization", "0.82"),
        ("anthropic-ratelimit-unified-7d-utilization", "0.4"),
        ("anthropic-ratelimit-requests-limit", "50"),
        ("anthropic-ratelimit-requests-remaining", "45"),
    ]);
    let reported = parse_windows(&h, NOW).unwrap();
    assert!((reported.utilization() - 0.82).abs() < 1e-9);
    let w = reported.view();
    assert_eq!(w.unified_status.as_deref(), Some("allowed_warning"));
    assert_eq!(w.five_hour.as_ref().and_then(|w| w.utilization), Some(0.82));
    assert_eq!(w.requests.as_ref().and_then(|l| l.remaining), Some(45));
    assert!(w.seven_day.as_ref().is_some_and(|w| w.status.is_none() && w.reset.is_none()));
    assert!(w.tokens.is_none(), "limits the response did not report stay absent");
    assert!(parse_windows(&HeaderMap::new(), NOW).is_none());
    assert!(!has_rate_limit_headers(&headers(&[("x-should-retry", "true")])));
}
