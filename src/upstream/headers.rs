//! Which headers cross the gateway. Everything does, except hop-by-hop headers, `host`, `content-length` (the
//! HTTP client sets it for the body it sends) and the client's own credential, which the account's replaces.
//! `anthropic-beta` and unknown headers always pass: Claude Code breaks without its betas.

use http::HeaderMap;
use http::header::{self, HeaderName};

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

fn is_hop_by_hop(name: &HeaderName, connection_listed: &[String]) -> bool {
    name == header::TRANSFER_ENCODING
        || HOP_BY_HOP.contains(&name.as_str())
        || connection_listed.iter().any(|c| c == name.as_str())
}

/// Header names listed in the `Connection` header are hop-by-hop too (RFC 9110 §7.6.1).
fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Removes, in place, every header for which `drop` says so. The common case (nothing to drop) is one pass over
/// the names with no hashing and no allocation; this runs twice per request.
fn remove_where(headers: &mut HeaderMap, drop: impl Fn(&HeaderName, &[String]) -> bool) {
    let listed = if headers.contains_key(header::CONNECTION) { connection_listed(headers) } else { Vec::new() };
    let doomed: Vec<HeaderName> = headers.keys().filter(|name| drop(name, &listed)).cloned().collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// The client's headers as they go upstream, before the account's credential is added.
pub fn request_headers_for_upstream(mut client: HeaderMap) -> HeaderMap {
    remove_where(&mut client, |name, listed| {
        is_hop_by_hop(name, listed)
            || name == header::HOST
            || name == header::CONTENT_LENGTH
            || name == header::AUTHORIZATION
            || name.as_str() == "x-api-key"
            || name.as_str() == "x-llm-gateway-key"
    });
    client
}

/// The headers of a request that goes upstream with the client's own Anthropic credential (issue #13): as
/// [`request_headers_for_upstream`], but the header carrying that credential (`Authorization` when
/// `keep_authorization`, else `x-api-key`) stays, marked sensitive so no log prints it; the other credential
/// header and `x-llm-gateway-key` (the gateway's own key) never leave.
pub fn request_headers_for_own_login(mut client: HeaderMap, keep_authorization: bool) -> HeaderMap {
    let kept = if keep_authorization { header::AUTHORIZATION } else { HeaderName::from_static("x-api-key") };
    remove_where(&mut client, |name, listed| {
        is_hop_by_hop(name, listed)
            || name == header::HOST
            || name == header::CONTENT_LENGTH
            || (name != kept && (name == header::AUTHORIZATION || name.as_str() == "x-api-key"))
            || name.as_str() == "x-llm-gateway-key"
    });
    if let Some(value) = client.get_mut(&kept) {
        value.set_sensitive(true);
    }
    client
}

/// An own-login request's headers ([`request_headers_for_own_login`]) made ready for a stored account instead
/// (spill-over): as [`request_headers_for_upstream`] makes them, and without the `oauth-…` beta the client's login
/// needed (the account's credential replaces it; an OAuth account adds its own again).
pub fn own_login_headers_for_an_account(headers: HeaderMap) -> HeaderMap {
    let mut headers = request_headers_for_upstream(headers);
    let betas: Vec<String> = headers
        .get_all("anthropic-beta")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|b| !b.is_empty() && *b != super::oauth::OAUTH_BETA)
        .map(str::to_string)
        .collect();
    headers.remove("anthropic-beta");
    if !betas.is_empty()
        && let Ok(value) = http::HeaderValue::from_str(&betas.join(","))
    {
        headers.insert("anthropic-beta", value);
    }
    headers
}

/// The upstream's response headers as they go back to the client, filtered in place.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    remove_where(headers, is_hop_by_hop);
}

/// A filtered copy of the upstream's response headers.
pub fn response_headers_for_client(upstream: &HeaderMap) -> HeaderMap {
    let mut out = upstream.clone();
    strip_hop_by_hop(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn credentials_host_and_hop_by_hop_are_dropped_the_rest_kept() {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", HeaderValue::from_static("gateway-key"));
        h.insert("authorization", HeaderValue::from_static("Bearer gateway-key"));
        h.insert("x-llm-gateway-key", HeaderValue::from_static("gateway-key"));
        h.insert("host", HeaderValue::from_static("127.0.0.1:8787"));
        h.insert("connection", HeaderValue::from_static("keep-alive, x-drop-me"));
        h.insert("x-drop-me", HeaderValue::from_static("1"));
        h.insert("content-length", HeaderValue::from_static("12"));
        h.insert("anthropic-beta", HeaderValue::from_static("claude-code-20250219,context-1m-2025-08-07"));
        h.append("x-custom", HeaderValue::from_static("a"));
        h.append("x-custom", HeaderValue::from_static("b"));
        h.insert("x-claude-code-session-id", HeaderValue::from_static("s-1"));
        let out = request_headers_for_upstream(h);
        for dropped in
            ["x-api-key", "authorization", "x-llm-gateway-key", "host", "connection", "x-drop-me", "content-length"]
        {
            assert!(!out.contains_key(dropped), "{dropped} must not go upstream");
        }
        assert_eq!(out["anthropic-beta"], "claude-code-20250219,context-1m-2025-08-07");
        assert_eq!(out.get_all("x-custom").iter().count(), 2);
        assert_eq!(out["x-claude-code-session-id"], "s-1");
    }

    #[test]
    fn an_own_login_keeps_its_credential_and_betas_but_never_the_gateway_key() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer sk-ant-oat01-own"));
        h.insert("x-api-key", HeaderValue::from_static("lgw-gateway"));
        h.insert("x-llm-gateway-key", HeaderValue::from_static("lgw-gateway"));
        h.insert("anthropic-beta", HeaderValue::from_static("claude-code-20250219,oauth-2025-04-20"));
        h.insert("host", HeaderValue::from_static("127.0.0.1:8787"));
        let out = request_headers_for_own_login(h.clone(), true);
        assert_eq!(out["authorization"], "Bearer sk-ant-oat01-own");
        assert!(out["authorization"].is_sensitive());
        assert_eq!(out["anthropic-beta"], "claude-code-20250219,oauth-2025-04-20");
        for dropped in ["x-api-key", "x-llm-gateway-key", "host"] {
            assert!(!out.contains_key(dropped), "{dropped} must not go upstream");
        }
        h.insert("x-api-key", HeaderValue::from_static("sk-ant-api03-own"));
        h.insert("authorization", HeaderValue::from_static("Bearer lgw-gateway"));
        let out = request_headers_for_own_login(h, false);
        assert_eq!(out["x-api-key"], "sk-ant-api03-own");
        assert!(!out.contains_key("authorization") && !out.contains_key("x-llm-gateway-key"));
    }

    #[test]
    fn an_own_login_spilled_over_loses_its_credential_and_oauth_beta_only() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer sk-ant-oat01-x"));
        h.insert("anthropic-beta", HeaderValue::from_static("claude-code-20250219, oauth-2025-04-20,context-1m-2025-08-07"));
        h.insert("x-app", HeaderValue::from_static("cli"));
        let out = own_login_headers_for_an_account(request_headers_for_own_login(h, true));
        assert!(out.get("authorization").is_none());
        assert_eq!(out["anthropic-beta"], "claude-code-20250219,context-1m-2025-08-07");
        assert_eq!(out["x-app"], "cli");
    }

    #[test]
    fn response_keeps_rate_limit_and_request_id_headers() {
        let mut h = HeaderMap::new();
        h.insert("request-id", HeaderValue::from_static("req_1"));
        h.insert("anthropic-ratelimit-requests-remaining", HeaderValue::from_static("9"));
        h.insert("retry-after", HeaderValue::from_static("3"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        let out = response_headers_for_client(&h);
        assert_eq!(out["request-id"], "req_1");
        assert_eq!(out["anthropic-ratelimit-requests-remaining"], "9");
        assert_eq!(out["retry-after"], "3");
        assert!(!out.contains_key("transfer-encoding"));
    }
}
