//! The token endpoint: code exchange and refresh, with JSON bodies exactly as protocol.md §1.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{OAuthError, OAuthSettings, PendingLogin, unix_now};
use crate::accounts::windows::retry_after_delay_ms;
use crate::clock::{Clock as _, SystemClock};
use crate::secrets::Secret;

/// `User-Agent` of token calls (CPA's; a versioned `claude-code/2.x` one drew 429s on refresh, protocol.md §1).
const TOKEN_USER_AGENT: &str = "axios/1.15.2";

/// Timeout of one token call.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Lifetime assumed when the response has no usable `expires_in`.
const DEFAULT_EXPIRES_IN: i64 = 3600;
/// Longest lifetime believed (a year; real tokens live hours): keeps `expires_at` a printable time whatever the
/// endpoint says, and a token that really lives longer is still refreshed after a 401.
const MAX_EXPIRES_IN: i64 = 366 * 86_400;

/// Backoff bounds after a 429 from the token endpoint (CPA).
pub(crate) const MIN_BACKOFF: Duration = Duration::from_secs(5);
/// Upper bound, see [`MIN_BACKOFF`].
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Longest error text taken from a token endpoint response.
const MAX_ERROR_CHARS: usize = 300;

/// Tokens and account facts from one exchange or refresh.
#[derive(Debug, Clone)]
pub struct TokenSet {
    /// The access token (`sk-ant-oat01-…`).
    pub access_token: Secret,
    /// The refresh token (`sk-ant-ort01-…`); after a refresh that returned none, the previous one.
    pub refresh_token: Option<Secret>,
    /// Unix seconds when the access token expires.
    pub expires_at: i64,
    /// Granted scopes (the response's space-separated `scope`).
    pub scopes: Vec<String>,
    /// `account.email_address`.
    pub email: Option<String>,
    /// `organization.name` (else its uuid).
    pub organization: Option<String>,
    /// `account.uuid`.
    pub account_uuid: Option<String>,
}

#[derive(Serialize)]
struct ExchangeBody<'a> {
    grant_type: &'static str,
    code: &'a str,
    redirect_uri: &'a str,
    client_id: &'a str,
    code_verifier: &'a str,
    state: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
}

#[derive(Serialize)]
struct RefreshBody<'a> {
    grant_type: &'static str,
    refresh_token: &'a str,
    client_id: &'a str,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    /// Seconds; any JSON number (integer, fractional, huge), judged by [`lifetime`].
    #[serde(default)]
    expires_in: Option<f64>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    organization: Option<Organization>,
    #[serde(default)]
    account: Option<AccountInfo>,
}

#[derive(Deserialize)]
struct Organization {
    #[serde(default)]
    uuid: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct AccountInfo {
    #[serde(default)]
    uuid: Option<String>,
    #[serde(default)]
    email_address: Option<String>,
}

/// Exchanges an authorization code for tokens (`grant_type=authorization_code`).
///
/// Body keys in this order: `grant_type, code, redirect_uri, client_id, code_verifier, state`, plus
/// `client_secret` when the settings have one; `redirect_uri` and `state` are the pending login's.
pub async fn exchange_code(
    http: &reqwest::Client,
    settings: &OAuthSettings,
    code: &str,
    login: &PendingLogin,
) -> Result<TokenSet, OAuthError> {
    let body = ExchangeBody {
        grant_type: "authorization_code",
        code,
        redirect_uri: &login.redirect_uri,
        client_id: &settings.client_id,
        code_verifier: login.verifier().expose(),
        state: &login.state,
        client_secret: settings.client_secret.as_ref().map(Secret::expose),
    };
    let body = to_body(&body)?;
    let set = post_token(http, &settings.token_url, body, None).await?;
    tracing::info!(account_id = %login.account_id, expires_at = set.expires_at, "OAuth code exchanged");
    Ok(set)
}

/// Refreshes tokens (`{"grant_type":"refresh_token","refresh_token":…,"client_id":…}`). Refresh tokens rotate:
/// the result carries the new one, or `refresh_token` itself when the response leaves it out.
pub async fn refresh_tokens(
    http: &reqwest::Client,
    settings: &OAuthSettings,
    refresh_token: &Secret,
) -> Result<TokenSet, OAuthError> {
    let body = RefreshBody {
        grant_type: "refresh_token",
        refresh_token: refresh_token.expose(),
        client_id: &settings.client_id,
    };
    let body = to_body(&body)?;
    post_token(http, &settings.token_url, body, Some(refresh_token)).await
}

fn to_body<T: Serialize>(body: &T) -> Result<Vec<u8>, OAuthError> {
    serde_json::to_vec(body).map_err(|e| OAuthError::Internal(format!("cannot serialise the token request: {e}")))
}

async fn post_token(
    http: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
    old_refresh: Option<&Secret>,
) -> Result<TokenSet, OAuthError> {
    let resp = http
        .post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json")
        .header(http::header::USER_AGENT, TOKEN_USER_AGENT)
        .timeout(TOKEN_TIMEOUT)
        .body(body)
        .send()
        .await
        .map_err(|e| network(url, &e))?;
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers());
    let bytes = resp.bytes().await.map_err(|e| network(url, &e))?;
    if !(200..300).contains(&status) {
        return Err(classify_failure(status, retry_after, &bytes));
    }
    let parsed: TokenResponse =
        serde_json::from_slice(&bytes).map_err(|e| OAuthError::BadResponse(format!("not a token response: {e}")))?;
    if parsed.access_token.trim().is_empty() {
        return Err(OAuthError::BadResponse("the access token is empty".into()));
    }
    let expires_in = lifetime(parsed.expires_in);
    let refresh_token =
        parsed.refresh_token.filter(|t| !t.trim().is_empty()).map(Secret::new).or_else(|| old_refresh.cloned());
    let organization = parsed.organization.and_then(|o| o.name.filter(|n| !n.is_empty()).or(o.uuid));
    let (email, account_uuid) = match parsed.account {
        Some(a) => (a.email_address, a.uuid),
        None => (None, None),
    };
    Ok(TokenSet {
        access_token: Secret::new(parsed.access_token),
        refresh_token,
        expires_at: unix_now().saturating_add(expires_in),
        scopes: parsed.scope.unwrap_or_default().split_whitespace().map(str::to_string).collect(),
        email,
        organization,
        account_uuid,
    })
}

fn network(url: &str, e: &reqwest::Error) -> OAuthError {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    // reqwest puts the URL in its message; ours has no secrets in it, but keep the text short.
    OAuthError::Network { url: url.to_string(), message: truncate(&message) }
}

/// A token's lifetime in seconds from `expires_in`: missing, negative or not finite gives the default, and it is
/// clamped to [`MAX_EXPIRES_IN`].
fn lifetime(expires_in: Option<f64>) -> i64 {
    match expires_in {
        // In range after the clamp, so the cast is exact (fractions are dropped).
        Some(secs) if secs.is_finite() && secs >= 0.0 => secs.min(MAX_EXPIRES_IN as f64) as i64,
        _ => DEFAULT_EXPIRES_IN,
    }
}

/// `Retry-After-Ms`, else `Retry-After` (seconds or an HTTP date), unclamped but saturating: the same parser as the
/// proxy's cooldowns ([`retry_after_delay_ms`]).
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    retry_after_delay_ms(headers, SystemClock.now_ms()).map(Duration::from_millis)
}

/// The backoff for a 429: `Retry-After` clamped to 5 s – 5 min, or `fallback` when there is none.
pub(crate) fn clamp_backoff(retry_after: Option<Duration>, fallback: Duration) -> Duration {
    retry_after.unwrap_or(fallback).clamp(MIN_BACKOFF, MAX_BACKOFF)
}

/// The error for a non-2xx token response.
fn classify_failure(status: u16, retry_after: Option<Duration>, body: &[u8]) -> OAuthError {
    let (code, message) = error_fields(body);
    if status == 429 {
        let wait = clamp_backoff(retry_after, MIN_BACKOFF);
        let until = unix_now().saturating_add(i64::try_from(wait.as_secs()).unwrap_or(300)).saturating_add(1);
        return OAuthError::RateLimited { until };
    }
    if code.as_deref() == Some("invalid_grant") {
        return OAuthError::InvalidGrant { description: message };
    }
    let message = match (code, message) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c,
        (None, Some(m)) => m,
        (None, None) => "no error details".to_string(),
    };
    OAuthError::TokenEndpoint { status, message }
}

/// `(error code, message)` from `{"error":"…","error_description":"…"}` or Anthropic's
/// `{"type":"error","error":{"type":"…","message":"…"}}`.
fn error_fields(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else { return (None, None) };
    let s = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(truncate);
    match v.get("error") {
        Some(serde_json::Value::String(code)) => (Some(truncate(code)), s(v.get("error_description"))),
        Some(obj @ serde_json::Value::Object(_)) => (s(obj.get("type")), s(obj.get("message"))),
        _ => (None, s(v.get("message"))),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(MAX_ERROR_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::proptests::{dateish, numberish};

    #[test]
    fn exchange_body_key_order() {
        let b = ExchangeBody {
            grant_type: "authorization_code",
            code: "C",
            redirect_uri: "R",
            client_id: "I",
            code_verifier: "V",
            state: "S",
            client_secret: None,
        };
        assert_eq!(
            String::from_utf8(to_body(&b).unwrap()).unwrap(),
            r#"{"grant_type":"authorization_code","code":"C","redirect_uri":"R","client_id":"I","code_verifier":"V","state":"S"}"#
        );
        let b = ExchangeBody { client_secret: Some("X"), ..b };
        assert!(String::from_utf8(to_body(&b).unwrap()).unwrap().ends_with(r#""state":"S","client_secret":"X"}"#));
        let r = RefreshBody { grant_type: "refresh_token", refresh_token: "T", client_id: "I" };
        assert_eq!(
            String::from_utf8(to_body(&r).unwrap()).unwrap(),
            r#"{"grant_type":"refresh_token","refresh_token":"T","client_id":"I"}"#
        );
    }

    #[test]
    fn failures_are_classified() {
        let e = classify_failure(400, None, br#"{"error":"invalid_grant","error_description":"nope"}"#);
        assert!(matches!(e, OAuthError::InvalidGrant { description: Some(ref d) } if d == "nope"));
        let e = classify_failure(400, None, br#"{"error":"invalid_request"}"#);
        assert!(matches!(e, OAuthError::TokenEndpoint { status: 400, ref message } if message == "invalid_request"));
        let e = classify_failure(500, None, br#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#);
        assert!(matches!(e, OAuthError::TokenEndpoint { status: 500, ref message } if message == "api_error: boom"));
        let e = classify_failure(503, None, b"<html>");
        assert!(matches!(e, OAuthError::TokenEndpoint { status: 503, .. }));
        let before = unix_now();
        let OAuthError::RateLimited { until } = classify_failure(429, Some(Duration::from_secs(3600)), b"") else {
            panic!("not rate limited")
        };
        assert!((before + 300..=before + 302).contains(&until), "{until}");
    }

    #[test]
    fn absurd_numbers_from_the_token_endpoint_saturate() {
        let mut h = http::HeaderMap::new();
        h.insert("retry-after", http::HeaderValue::from_static("1e20"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(u64::MAX)), "saturates instead of panicking");
        assert_eq!(clamp_backoff(retry_after(&h), MIN_BACKOFF), MAX_BACKOFF);
        h.insert("retry-after", http::HeaderValue::from_static("-5"));
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", http::HeaderValue::from_static("Wed, 21 Oct 2037 07:28:00 GMT"));
        assert!(retry_after(&h).is_some_and(|d| d > Duration::from_secs(86_400)), "HTTP dates are honoured");
        assert_eq!(lifetime(Some(1e30)), MAX_EXPIRES_IN);
        assert_eq!(lifetime(Some(28_800.7)), 28_800);
        assert_eq!(lifetime(Some(-1.0)), DEFAULT_EXPIRES_IN);
        assert_eq!(lifetime(Some(f64::NAN)), DEFAULT_EXPIRES_IN);
        assert_eq!(lifetime(None), DEFAULT_EXPIRES_IN);
        for expires_in in ["99999999999999999999999", "1e30", "3599.5", "-7"] {
            let body = format!(r#"{{"access_token":"sk-ant-oat01-a","expires_in":{expires_in}}}"#);
            let parsed: TokenResponse = serde_json::from_str(&body).unwrap();
            assert!((0..=MAX_EXPIRES_IN).contains(&lifetime(parsed.expires_in)), "{expires_in}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_retry_after_gives_a_backoff_within_bounds(
            seconds in proptest::prop_oneof![numberish(), dateish(), "[ -~]{0,30}"],
            millis in proptest::option::of(numberish()),
        ) {
            let mut h = http::HeaderMap::new();
            if let Ok(v) = http::HeaderValue::from_str(&seconds) {
                h.insert("retry-after", v);
            }
            if let Some(Ok(v)) = millis.map(|m| http::HeaderValue::from_str(&m)) {
                h.insert("retry-after-ms", v);
            }
            let before = unix_now();
            let wait = clamp_backoff(retry_after(&h), MIN_BACKOFF);
            proptest::prop_assert!((MIN_BACKOFF..=MAX_BACKOFF).contains(&wait));
            let OAuthError::RateLimited { until } = classify_failure(429, retry_after(&h), b"") else {
                return Err(proptest::test_runner::TestCaseError::fail("a 429 is rate limited"));
            };
            proptest::prop_assert!((before + 5..=unix_now() + 301).contains(&until), "{until}");
        }

        #[test]
        fn any_expires_in_gives_a_lifetime_within_bounds(secs in proptest::option::of(proptest::prelude::any::<f64>())) {
            let life = lifetime(secs);
            proptest::prop_assert!((0..=MAX_EXPIRES_IN).contains(&life));
            proptest::prop_assert!(crate::clock::rfc3339_secs(unix_now().saturating_add(life)).is_some());
        }
    }

    #[test]
    fn retry_after_headers() {
        let mut h = http::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", http::HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert("retry-after-ms", http::HeaderValue::from_static("12500"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(12500)));
        assert_eq!(clamp_backoff(Some(Duration::from_secs(1)), MAX_BACKOFF), MIN_BACKOFF);
        assert_eq!(clamp_backoff(Some(Duration::from_secs(9999)), MIN_BACKOFF), MAX_BACKOFF);
        assert_eq!(clamp_backoff(None, Duration::from_secs(40)), Duration::from_secs(40));
    }
}
