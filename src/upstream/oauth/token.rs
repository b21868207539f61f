//! The token endpoint: code exchange and refresh, with JSON bodies exactly as protocol.md §1.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{OAuthError, OAuthSettings, PendingLogin, unix_now};
use crate::secrets::Secret;

/// `User-Agent` of token calls (CPA's; a versioned `claude-code/2.x` one drew 429s on refresh, protocol.md §1).
const TOKEN_USER_AGENT: &str = "axios/1.15.2";

/// Timeout of one token call.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Lifetime assumed when the response has no `expires_in`.
const DEFAULT_EXPIRES_IN: i64 = 3600;

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
    #[serde(default)]
    expires_in: Option<i64>,
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
    let expires_in = parsed.expires_in.filter(|s| *s >= 0).unwrap_or(DEFAULT_EXPIRES_IN);
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

/// `Retry-After-Ms`, else `Retry-After` (seconds; an HTTP date is not honoured), unclamped.
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()).filter(|v| v.is_finite() && *v >= 0.0)
    {
        return Some(Duration::from_millis(ms as u64));
    }
    text("retry-after")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(Duration::from_secs_f64)
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
