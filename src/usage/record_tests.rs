use super::*;
use http::HeaderValue;

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_static(v));
    }
    h
}

#[test]
fn client_kind_is_told_from_route_and_headers() {
    let claude = headers(&[
        ("x-app", "cli"),
        ("user-agent", "claude-cli/2.1.197 (external, sdk-cli)"),
        ("anthropic-version", "2023-06-01"),
    ]);
    assert_eq!(ClientKind::detect(Route::Messages, &claude), ClientKind::ClaudeCode);
    let ua_only = headers(&[("user-agent", "claude-cli/2.1.332 (external, cli)")]);
    assert_eq!(ClientKind::detect(Route::Messages, &ua_only), ClientKind::ClaudeCode);
    // The beta alone (a Claude Code build with another user agent), among others, in any of several lines.
    let mut beta_only = headers(&[("anthropic-version", "2023-06-01"), ("anthropic-beta", "oauth-2025-04-20")]);
    beta_only
        .append("anthropic-beta", HeaderValue::from_static("fine-grained-tool-streaming, claude-code-20250219"));
    assert_eq!(ClientKind::detect(Route::Messages, &beta_only), ClientKind::ClaudeCode);
    let other_beta =
        headers(&[("anthropic-version", "2023-06-01"), ("anthropic-beta", "code-execution-2025-05-22")]);
    assert_eq!(ClientKind::detect(Route::Messages, &other_beta), ClientKind::AnthropicSdk);
    let sdk = headers(&[("anthropic-version", "2026-10-21"), ("user-agent", "Anthropic/Python 2.14.0")]);
    assert_eq!(ClientKind::detect(Route::Messages, &sdk), ClientKind::AnthropicSdk);
    assert_eq!(ClientKind::detect(Route::Models, &sdk), ClientKind::AnthropicSdk);
    let openai = headers(&[("user-agent", "OpenAI/Python 3.57.0")]);
    assert_eq!(ClientKind::detect(Route::ChatCompletions, &openai), ClientKind::Openai);
    assert_eq!(ClientKind::detect(Route::Models, &HeaderMap::new()), ClientKind::Openai);
    assert_eq!(ClientKind::detect(Route::Messages, &headers(&[("user-agent", "curl/8")])), ClientKind::Other);
}

#[test]
fn names_round_trip_and_outcomes_follow_status() {
    for k in ClientKind::ALL {
        assert_eq!(ClientKind::parse(k.as_str()), k);
    }
    for r in Route::ALL {
        assert_eq!(Route::parse(r.as_str()), Some(r));
    }
    for o in Outcome::ALL {
        assert_eq!(Outcome::parse(o.as_str()), Some(o));
        assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
    }
    assert_eq!(Outcome::from_status(200), Outcome::Ok);
    assert_eq!(Outcome::from_status(400), Outcome::ClientError);
    assert_eq!(Outcome::from_status(429), Outcome::UpstreamError);
    assert_eq!(Outcome::from_status(529), Outcome::UpstreamError);
}

#[test]
fn session_hash_is_stable_and_fits_a_signed_integer() {
    let h = session_hash("3f1c5a8e-0000-4000-8000-000000000001");
    assert_eq!(h, session_hash("3f1c5a8e-0000-4000-8000-000000000001"));
    assert_ne!(h, session_hash("3f1c5a8e-0000-4000-8000-000000000002"));
    assert!(i64::try_from(h).is_ok());
    // Pinned: a change of hash would split every stored session in two.
    assert_eq!(session_hash("abc"), 0xba78_16bf_8f01_cfea >> 1);
}
