//! Property tests of everything that reads numbers from the network: rate-limit windows, reset times,
//! `retry-after`, and the benches they cause. Whatever the upstream sends, nothing panics or overflows, and the
//! results stay within their documented bounds.

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

use super::health::{Health, HealthPolicy, Observation};
use super::windows::{parse_windows, rate_limit_until, retry_after_delay_ms, retry_after_ms};
use crate::clock::MAX_TIME_MS;

/// Every header the parsers read, and one they must ignore.
const NAMES: [&str; 33] = [
    "retry-after",
    "retry-after-ms",
    "anthropic-ratelimit-unified-status",
    "anthropic-ratelimit-unified-reset",
    "anthropic-ratelimit-unified-5h-status",
    "anthropic-ratelimit-unified-5h-reset",
    "anthropic-ratelimit-unified-5h-utilization",
    "anthropic-ratelimit-unified-7d-status",
    "anthropic-ratelimit-unified-7d-reset",
    "anthropic-ratelimit-unified-7d-utilization",
    "anthropic-ratelimit-unified-overage-disabled-reason",
    "anthropic-ratelimit-requests-limit",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-limit",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-input-tokens-limit",
    "anthropic-ratelimit-input-tokens-remaining",
    "anthropic-ratelimit-input-tokens-reset",
    "anthropic-ratelimit-output-tokens-limit",
    "anthropic-ratelimit-output-tokens-remaining",
    "anthropic-ratelimit-output-tokens-reset",
    "anthropic-ratelimit-unified-9x-reset",
    "anthropic-ratelimit-unified-overage-status",
    "anthropic-ratelimit-unified-7d_oi-status",
    "anthropic-ratelimit-unified-7d_oi-reset",
    "anthropic-ratelimit-unified-7d_oi-utilization",
    "anthropic-ratelimit-unified-7d_opus-status",
    "anthropic-ratelimit-unified-7d_opus-reset",
    "anthropic-ratelimit-unified-representative-claim",
    "anthropic-ratelimit-unified-fallback-percentage",
    "anthropic-ratelimit-unified-5h-surpassed-threshold",
];

/// Strings that look like numbers, including the ones that break naive code: huge, tiny, negative, fractional,
/// exponents, NaN, infinities, integers past `u64`.
pub(crate) fn numberish() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|f| f.to_string()),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        any::<i64>().prop_map(|i| i.to_string()),
        any::<u64>().prop_map(|u| u.to_string()),
        "[-+]?[0-9]{0,25}(\\.[0-9]{0,12})?([eE][-+]?[0-9]{1,4})?",
        proptest::sample::select(
            &[
                "NaN",
                "nan",
                "inf",
                "-inf",
                "infinity",
                "1e20",
                "1e309",
                "-1e309",
                "-0",
                "0",
                "",
                " 5 ",
                "4.9e-324",
                "18446744073709551616",
                "9223372036854775808",
                "253402300800",
                "-1785518400",
            ][..]
        )
        .prop_map(str::to_owned),
    ]
}

/// RFC 3339 and HTTP dates, valid or not, with years far outside what either format allows.
pub(crate) fn dateish() -> impl Strategy<Value = String> {
    let rfc3339 = (
        0u32..100_000,
        0u32..14,
        0u32..33,
        0u32..25,
        0u32..61,
        0u32..61,
        "(\\.[0-9]{1,12})?",
        "(Z|[+-][0-9]{2}:[0-9]{2})",
    )
        .prop_map(|(y, mo, d, h, mi, s, frac, zone)| {
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{zone}")
        });
    let weekdays = &["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][..];
    let months = &["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Foo"][..];
    let http_date = (
        proptest::sample::select(weekdays),
        0u32..40,
        proptest::sample::select(months),
        0u32..100_000,
        0u32..25,
        0u32..61,
        0u32..61,
    )
        .prop_map(|(wd, d, mo, y, h, mi, s)| format!("{wd}, {d:02} {mo} {y:04} {h:02}:{mi:02}:{s:02} GMT"));
    prop_oneof![rfc3339, http_date]
}

/// Any header value: number-like, date-like, status words, printable junk, or raw bytes.
fn value() -> impl Strategy<Value = HeaderValue> {
    let text = prop_oneof![
        3 => numberish(),
        2 => dateish(),
        1 => proptest::sample::select(&["rejected", "allowed", "allowed_warning", "out_of_credits", "org_level_disabled", "0"][..]).prop_map(str::to_owned),
        1 => "[ -~]{0,40}",
    ];
    prop_oneof![
        6 => text.prop_filter_map("not a header value", |t| HeaderValue::from_str(&t).ok()),
        1 => proptest::collection::vec(any::<u8>(), 0..24).prop_filter_map("not a header value", |b| HeaderValue::from_bytes(&b).ok()),
    ]
}

fn headers() -> impl Strategy<Value = HeaderMap> {
    proptest::collection::vec((proptest::sample::select(&NAMES[..]), value()), 0..12).prop_map(|pairs| {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(HeaderName::from_static(name), value);
        }
        map
    })
}

/// Finite floats of every size and sign (the domain where "later" is defined).
fn finite() -> impl Strategy<Value = f64> {
    use proptest::num::f64 as f;
    f::POSITIVE | f::NEGATIVE | f::NORMAL | f::SUBNORMAL | f::ZERO
}

fn one(name: &'static str, value: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(value) {
        map.insert(HeaderName::from_static(name), v);
    }
    map
}

fn is_rfc3339(text: &str) -> bool {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn windows_parse_anything_into_printable_bounded_values(h in headers(), now in 0..=MAX_TIME_MS) {
        if let Some(reported) = parse_windows(&h, now) {
            let u = reported.utilization();
            prop_assert!(u.is_finite() && u >= 0.0, "utilisation {u}");
            let view = reported.view();
            let windows = [view.five_hour.as_ref(), view.seven_day.as_ref()];
            let limits = [view.requests.as_ref(), view.tokens.as_ref(), view.input_tokens.as_ref(), view.output_tokens.as_ref()];
            let resets = windows.iter().flatten().map(|w| &w.reset)
                .chain(limits.iter().flatten().map(|l| &l.reset))
                .chain([&view.unified_reset, &view.updated_at]);
            for reset in resets.flatten() {
                prop_assert!(is_rfc3339(reset), "unprintable time {reset:?}");
            }
            for w in windows.iter().flatten().copied().chain(view.other_windows.values()) {
                prop_assert!(w.utilization.is_none_or(|u| u.is_finite() && u >= 0.0));
                prop_assert!(w.reset.as_deref().is_none_or(is_rfc3339));
            }
            prop_assert!(view.other_windows.len() <= 8);
            prop_assert!(!view.other_windows.contains_key("5h") && !view.other_windows.contains_key("7d"));
            let warned = [view.unified_status.as_ref()].into_iter().chain(windows.iter().flatten().map(|w| w.status.as_ref()))
                .chain(view.other_windows.values().map(|w| w.status.as_ref()))
                .any(|s| s.is_some_and(|s| s == "allowed_warning"));
            prop_assert_eq!(view.warning, warned);
            if let Some(at) = reported.plan_reset_ms(now) {
                prop_assert!(at > now && at <= MAX_TIME_MS);
            }
        }
    }

    #[test]
    fn unknown_unified_windows_are_kept_by_name_and_bounded(
        names in proptest::collection::vec("[a-z0-9_]{1,40}|[a-z0-9_-]{0,12}", 0..20),
        reset in 1u64..4_000_000_000,
    ) {
        let mut map = HeaderMap::new();
        for name in &names {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(format!("anthropic-ratelimit-unified-{name}-reset").as_bytes()),
                HeaderValue::from_str(&reset.to_string()),
            ) {
                map.insert(n, v);
            }
        }
        let view = parse_windows(&map, 0).map(|r| r.view()).unwrap_or_default();
        prop_assert!(view.other_windows.len() <= 8);
        for (name, w) in &view.other_windows {
            prop_assert!(names.contains(name), "{name} was not sent");
            prop_assert!(name.len() <= 32 && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            prop_assert_eq!(w.reset.clone(), Some(crate::clock::rfc3339(reset * 1000)));
        }
        let keepable = names.iter().filter(|n| {
            n.len() <= 32 && !n.is_empty() && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                && !["5h", "7d"].contains(&n.as_str())
        }).collect::<std::collections::BTreeSet<_>>();
        prop_assert_eq!(view.other_windows.len(), keepable.len().min(8));
    }

    #[test]
    fn a_rejected_window_of_any_name_benches_until_its_reset(name in "[a-z0-9_]{1,20}", reset in 1u64..4_000_000_000) {
        prop_assume!(name != "overage");
        let mut map = HeaderMap::new();
        map.insert(HeaderName::from_bytes(format!("anthropic-ratelimit-unified-{name}-status").as_bytes()).unwrap(), HeaderValue::from_static("rejected"));
        map.insert(HeaderName::from_bytes(format!("anthropic-ratelimit-unified-{name}-reset").as_bytes()).unwrap(), HeaderValue::from_str(&reset.to_string()).unwrap());
        prop_assert_eq!(rate_limit_until(&map, 0, u64::MAX), Some(reset * 1000));
    }

    #[test]
    fn a_rate_limit_bench_is_in_the_future_and_never_beyond_the_cap(h in headers(), now in any::<u64>(), cap in any::<u64>()) {
        if let Some(until) = rate_limit_until(&h, now, cap) {
            prop_assert!(until > now, "bench {until} is not after now {now}");
            prop_assert!(until <= now.saturating_add(cap), "bench {until} beyond now {now} + cap {cap}");
        }
    }

    #[test]
    fn retry_after_is_never_in_the_past_and_saturates(h in headers(), now in any::<u64>()) {
        let delay = retry_after_delay_ms(&h, now);
        let at = retry_after_ms(&h, now);
        prop_assert_eq!(at, delay.map(|d| now.saturating_add(d)));
        if let Some(at) = at {
            prop_assert!(at >= now);
        }
    }

    #[test]
    fn longer_retry_after_never_means_an_earlier_end(a in finite(), b in finite(), now in any::<u64>()) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        for name in ["retry-after", "retry-after-ms"] {
            let early = retry_after_ms(&one(name, &lo.to_string()), now);
            let late = retry_after_ms(&one(name, &hi.to_string()), now);
            if let (Some(early), Some(late)) = (early, late) {
                prop_assert!(early <= late, "{name}: {lo} -> {early}, {hi} -> {late}");
            }
            prop_assert!(late.is_some() || hi < 0.0, "{name}: {hi} was not understood");
        }
    }

    #[test]
    fn later_resets_never_shorten_a_bench(a in finite(), b in finite(), now in 0..=MAX_TIME_MS, cap in any::<u64>()) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let bench = |reset: f64| rate_limit_until(&one("anthropic-ratelimit-unified-reset", &reset.to_string()), now, cap);
        match (bench(lo), bench(hi)) {
            (Some(early), Some(late)) => prop_assert!(early <= late),
            (Some(early), None) => prop_assert!(false, "{lo} benched until {early} but the later {hi} did not"),
            _ => {}
        }
    }

    #[test]
    fn health_never_overflows_and_benches_start_now_or_later(
        now in any::<u64>(),
        overloaded in any::<u64>(),
        base in any::<u64>(),
        max in any::<u64>(),
        threshold in 1u32..4,
        steps in proptest::collection::vec(0u8..6, 1..20),
    ) {
        let policy = HealthPolicy { overloaded_cooldown_ms: overloaded, breaker_threshold: threshold, breaker_base_ms: base, breaker_max_ms: max };
        let health = Health::default();
        for step in steps {
            let observation = match step {
                0 => Observation::Healthy { latency_ms: now },
                1 => Observation::RateLimited { until_ms: now },
                2 => Observation::Windowless,
                3 => Observation::Overloaded,
                4 => Observation::PlanExhausted { until_ms: now },
                _ => Observation::Failed,
            };
            if let Some((until, _)) = health.observe(&observation, now, &policy) {
                prop_assert!(until >= now);
            }
            let _ = health.claim(now);
            let _ = health.benched(now);
        }
    }
}
