//! The mock OAuth server (protocol.md §1): `GET /oauth/authorize` (auto-approves and redirects with
//! `code` and `state`), `POST /v1/oauth/token` (JSON only; PKCE-checked code exchange, single-use rotating
//! refresh tokens, failure injection), and the checks `/v1/messages` applies to the access tokens it issued.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::errors::{ApiError, ORGANIZATION_ID, build_response};

/// Prefix of the access tokens the mock issues; `/v1/messages` checks these for expiry and identity.
pub const MOCK_ACCESS_PREFIX: &str = "sk-ant-oat01-mock-";
/// Prefix of the refresh tokens the mock issues.
pub const MOCK_REFRESH_PREFIX: &str = "sk-ant-ort01-mock-";
/// Message of the 401 for an expired access token (protocol.md §3).
pub const EXPIRED_MESSAGE: &str = "OAuth token has expired. Please obtain a new token or refresh your existing token.";

/// Identity lines that satisfy the system-prompt check for non-Haiku models (protocol.md §2, §7).
const IDENTITIES: [&str; 3] = [
    "You are Claude Code, Anthropic's official CLI for Claude.",
    "You are Claude Code, Anthropic's official CLI for Claude, running within the Claude Agent SDK.",
    "You are a Claude agent, built on Anthropic's Claude Agent SDK.",
];
const BILLING_PREFIX: &str = "x-anthropic-billing-header:";

/// Settings of the mock OAuth server (`POST /_mock/oauth/config`): only the fields given change.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OAuthMockConfig {
    /// Lifetime of new access tokens, seconds (default 28800; 0 issues already-expired tokens).
    pub expires_in: Option<i64>,
    /// The next token request(s) fail with this status (429: with `retry_after`; 400: `invalid_grant`).
    pub fail_next_with_status: Option<u16>,
    /// How many token requests fail with `fail_next_with_status` (default 1).
    pub fail_times: Option<u32>,
    /// `Retry-After` seconds on injected failures.
    pub retry_after: Option<u64>,
    /// `Retry-After-Ms` on injected failures.
    pub retry_after_ms: Option<u64>,
    /// When true, successful refreshes leave `refresh_token` out (the old one stays valid).
    pub omit_refresh_token: Option<bool>,
    /// Delay before the token endpoint answers, milliseconds (0 turns it off).
    pub delay_ms: Option<u64>,
    /// `account.email_address` in token responses (default `mock-user@example.com`).
    pub email: Option<String>,
    /// `organization.name` in token responses (default `Mock Organization`).
    pub organization_name: Option<String>,
    /// Confidential clients: client id → secret. A code exchange for one of these clients must send its
    /// `client_secret`, else it gets `401 invalid_client` (entries add to earlier ones).
    pub client_secrets: Option<HashMap<String, String>>,
    /// claude.ai access tokens the mock did not issue but accepts, as a user's own Claude Code login (entries add
    /// to earlier ones). Once any is configured, other such tokens get `401 Invalid bearer token`; before, every
    /// `sk-ant-oat…` token the mock did not issue is accepted.
    pub accept_tokens: Option<Vec<String>>,
}

/// Counters of the token endpoint (`GET /_mock/oauth/stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthStats {
    /// `grant_type=refresh_token` requests received (including failed ones).
    pub refresh_calls: u64,
    /// `grant_type=authorization_code` requests received (including failed ones).
    pub exchange_calls: u64,
}

/// A code request (`POST /_mock/oauth/authorize`), as the authorize page would receive it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthorizeRequest {
    /// OAuth client id; the exchange must send the same.
    pub client_id: String,
    /// S256 code challenge; the exchange's `code_verifier` must hash to it.
    pub code_challenge: String,
    /// Redirect URI; the exchange must send the same.
    pub redirect_uri: String,
    /// State; when not empty, the exchange's `state` must equal it.
    pub state: String,
    /// Space-separated scopes granted (default `user:inference user:profile`).
    pub scope: String,
}

#[derive(Debug, Clone)]
struct Grant {
    client_id: String,
    scope: String,
}

#[derive(Debug, Default)]
struct Failure {
    status: u16,
    times: u32,
    retry_after: Option<u64>,
    retry_after_ms: Option<u64>,
}

/// Mutable state of the mock OAuth server.
#[derive(Debug, Default)]
pub(crate) struct MockOAuth {
    config: OAuthMockConfig,
    failure: Option<Failure>,
    codes: HashMap<String, AuthorizeRequest>,
    /// access token → expiry (unix ms).
    access: HashMap<String, u128>,
    /// refresh token → grant; each is removed when used.
    refresh: HashMap<String, Grant>,
    counter: u64,
    stats: OAuthStats,
}

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
}

/// S256 challenge of a verifier.
pub(crate) fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl MockOAuth {
    pub(crate) fn configure(&mut self, c: OAuthMockConfig) {
        if let Some(status) = c.fail_next_with_status {
            self.failure = Some(Failure {
                status,
                times: c.fail_times.unwrap_or(1),
                retry_after: c.retry_after,
                retry_after_ms: c.retry_after_ms,
            });
        }
        let cfg = &mut self.config;
        cfg.expires_in = c.expires_in.or(cfg.expires_in);
        cfg.omit_refresh_token = c.omit_refresh_token.or(cfg.omit_refresh_token);
        cfg.delay_ms = c.delay_ms.or(cfg.delay_ms);
        cfg.email = c.email.or(cfg.email.take());
        cfg.organization_name = c.organization_name.or(cfg.organization_name.take());
        if let Some(secrets) = c.client_secrets {
            cfg.client_secrets.get_or_insert_with(HashMap::new).extend(secrets);
        }
        if let Some(tokens) = c.accept_tokens {
            cfg.accept_tokens.get_or_insert_with(Vec::new).extend(tokens);
        }
    }

    /// Whether a claude.ai token the mock did not issue is accepted (see `OAuthMockConfig::accept_tokens`).
    pub(crate) fn accepts_foreign(&self, token: &str) -> bool {
        self.config.accept_tokens.as_ref().is_none_or(|tokens| tokens.iter().any(|t| t == token))
    }

    /// How long the token endpoint waits before answering.
    pub(crate) fn delay(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.config.delay_ms.unwrap_or(0))
    }

    pub(crate) fn stats(&self) -> OAuthStats {
        self.stats
    }

    /// Registers a code for this authorize request and returns it.
    pub(crate) fn issue_code(&mut self, mut req: AuthorizeRequest) -> String {
        self.counter += 1;
        let code = format!("mock-code-{}-{}", self.counter, now_ms() % 1_000_000);
        if req.scope.trim().is_empty() {
            req.scope = "user:inference user:profile".into();
        }
        self.codes.insert(code.clone(), req);
        code
    }

    /// Expires every access token issued so far.
    pub(crate) fn expire_access_tokens(&mut self) {
        let now = now_ms();
        self.access.values_mut().for_each(|t| *t = now);
    }

    /// `None` if `token` is one of ours and unexpired; else the 401 message.
    pub(crate) fn check_access(&self, token: &str) -> Option<&'static str> {
        match self.access.get(token) {
            Some(exp) if *exp > now_ms() => None,
            Some(_) => Some(EXPIRED_MESSAGE),
            None => Some("Invalid bearer token"),
        }
    }

    fn take_failure(&mut self) -> Option<Response> {
        let f = self.failure.as_mut()?;
        let mut headers = Vec::new();
        if let Some(s) = f.retry_after {
            headers.push(("retry-after".to_string(), s.to_string()));
        }
        if let Some(ms) = f.retry_after_ms {
            headers.push(("retry-after-ms".to_string(), ms.to_string()));
        }
        let status = f.status;
        f.times = f.times.saturating_sub(1);
        if f.times == 0 {
            self.failure = None;
        }
        let body = match status {
            400 => oauth_error("invalid_grant", "Refresh token not found or invalid"),
            429 => {
                json!({"type":"error","error":{"type":"rate_limit_error","message":"Rate limited. Please try again later."}})
            }
            _ => oauth_error("server_error", "mock: injected failure"),
        };
        Some(build_response(status, headers, body.to_string().into(), "req_mock_oauth", "application/json"))
    }

    fn tokens(&mut self, client_id: &str, scope: &str, with_refresh: bool) -> Value {
        self.counter += 1;
        let n = self.counter;
        let expires_in = self.config.expires_in.unwrap_or(28_800);
        let access = format!("{MOCK_ACCESS_PREFIX}{n}");
        let expiry = now_ms().saturating_add_signed(i128::from(expires_in) * 1000);
        self.access.insert(access.clone(), expiry);
        let mut body = json!({
            "token_type": "Bearer",
            "access_token": access,
            "expires_in": expires_in,
            "scope": scope,
            "organization": {"uuid": ORGANIZATION_ID, "name": self.config.organization_name.as_deref().unwrap_or("Mock Organization")},
            "account": {"uuid": "6d6f636b-0000-4000-8000-6163636f756e", "email_address": self.config.email.as_deref().unwrap_or("mock-user@example.com")},
        });
        if with_refresh {
            let refresh = format!("{MOCK_REFRESH_PREFIX}{n}");
            self.refresh.insert(refresh.clone(), Grant { client_id: client_id.to_string(), scope: scope.to_string() });
            body["refresh_token"] = json!(refresh);
        }
        body
    }

    /// `POST /v1/oauth/token`.
    pub(crate) fn token(&mut self, headers: &HeaderMap, body: &[u8]) -> Response {
        let json_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("application/json"));
        if !json_type {
            return bad("invalid_request", "Request body must be JSON (Content-Type: application/json)");
        }
        let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
            return bad("invalid_request", "Request body must be a JSON object");
        };
        let field = |k: &str| req.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        match field("grant_type").as_str() {
            "authorization_code" => {
                self.stats.exchange_calls += 1;
                if let Some(r) = self.take_failure() {
                    return r;
                }
                let Some(issued) = self.codes.remove(&field("code")) else {
                    return bad("invalid_grant", "Invalid 'code' in request.");
                };
                if field("client_id") != issued.client_id {
                    return bad("invalid_grant", "client_id does not match the authorization request");
                }
                let secret = self.config.client_secrets.as_ref().and_then(|m| m.get(&issued.client_id));
                if secret.is_some_and(|s| *s != field("client_secret")) {
                    let body = oauth_error("invalid_client", "Client authentication failed");
                    return build_response(
                        401,
                        Vec::new(),
                        body.to_string().into(),
                        "req_mock_oauth",
                        "application/json",
                    );
                }
                if field("redirect_uri") != issued.redirect_uri {
                    return bad("invalid_grant", "redirect_uri does not match the authorization request");
                }
                if s256(&field("code_verifier")) != issued.code_challenge {
                    return bad("invalid_grant", "Invalid code verifier");
                }
                if !issued.state.is_empty() && field("state") != issued.state {
                    return bad("invalid_grant", "state does not match the authorization request");
                }
                ok(self.tokens(&issued.client_id, &issued.scope, true))
            }
            "refresh_token" => {
                self.stats.refresh_calls += 1;
                if let Some(r) = self.take_failure() {
                    return r;
                }
                let token = field("refresh_token");
                let Some(grant) = self.refresh.get(&token).cloned() else {
                    return bad("invalid_grant", "Refresh token not found or invalid");
                };
                if field("client_id") != grant.client_id {
                    return bad("invalid_grant", "client_id does not match the refresh token");
                }
                let rotate = !self.config.omit_refresh_token.unwrap_or(false);
                if rotate {
                    self.refresh.remove(&token);
                }
                ok(self.tokens(&grant.client_id, &grant.scope, rotate))
            }
            "" => bad("invalid_request", "grant_type is required"),
            _ => bad("unsupported_grant_type", "Unsupported grant_type"),
        }
    }
}

fn oauth_error(code: &str, description: &str) -> Value {
    json!({"error": code, "error_description": description})
}

fn bad(code: &str, description: &str) -> Response {
    build_response(
        400,
        Vec::new(),
        oauth_error(code, description).to_string().into(),
        "req_mock_oauth",
        "application/json",
    )
}

fn ok(body: Value) -> Response {
    build_response(200, Vec::new(), body.to_string().into(), "req_mock_oauth", "application/json")
}

/// `GET /oauth/authorize?…`: auto-approves and redirects (302) to `redirect_uri?code=…&state=…`.
pub(crate) fn authorize_redirect(oauth: &mut MockOAuth, query: &HashMap<String, String>) -> Response {
    let get = |k: &str| query.get(k).cloned().unwrap_or_default();
    if get("response_type") != "code" || get("code_challenge_method") != "S256" {
        return bad("invalid_request", "response_type=code and code_challenge_method=S256 are required");
    }
    let (redirect_uri, state) = (get("redirect_uri"), get("state"));
    if redirect_uri.is_empty() || get("client_id").is_empty() || get("code_challenge").is_empty() {
        return bad("invalid_request", "client_id, redirect_uri and code_challenge are required");
    }
    let code = oauth.issue_code(AuthorizeRequest {
        client_id: get("client_id"),
        code_challenge: get("code_challenge"),
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        scope: get("scope"),
    });
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let location = format!("{redirect_uri}{sep}code={}&state={}", encode(&code), encode(&state));
    // The body is what the manual-paste page shows.
    let body = format!("{code}#{state}");
    build_response(302, vec![("location".into(), location)], body.into(), "req_mock_oauth", "text/plain")
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// For a mock-issued token on `/v1/messages`: the 400 `"Error"` when a non-Haiku request lacks the identity
/// as the first non-billing system block (or the start of a string system). Unparseable bodies pass (the
/// normal validation reports them).
pub(crate) fn identity_error(body: &[u8]) -> Option<ApiError> {
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else { return None };
    let model = req.get("model").and_then(Value::as_str).unwrap_or_default();
    if model.contains("haiku") {
        return None;
    }
    let starts = |t: &str| IDENTITIES.iter().any(|id| t.starts_with(id));
    let ok = match req.get("system") {
        Some(Value::String(s)) => starts(s),
        Some(Value::Array(blocks)) => {
            let text = |i: usize| blocks.get(i).and_then(|b| b.get("text")).and_then(Value::as_str);
            let first = usize::from(text(0).is_some_and(|t| t.starts_with(BILLING_PREFIX)));
            text(first).is_some_and(starts)
        }
        _ => false,
    };
    (!ok).then(|| ApiError::invalid("Error"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_rules() {
        let check = |v: Value| identity_error(v.to_string().as_bytes()).is_none();
        assert!(!check(json!({"model":"claude-sonnet-5","messages":[]})));
        assert!(check(json!({"model":"claude-haiku-4-5-20251001","messages":[]})));
        assert!(check(json!({"model":"m","system":"You are Claude Code, Anthropic's official CLI for Claude. More"})));
        assert!(!check(
            json!({"model":"m","system":"Be nice. You are Claude Code, Anthropic's official CLI for Claude."})
        ));
        let billing = json!({"type":"text","text":"x-anthropic-billing-header: cc_version=1;"});
        let agent = json!({"type":"text","text":IDENTITIES[2]});
        assert!(check(json!({"model":"m","system":[billing, agent]})));
        assert!(check(json!({"model":"m","system":[agent]})));
        assert!(!check(json!({"model":"m","system":[billing]})));
        assert!(!check(json!({"model":"m","system":[{"type":"text","text":"hi"}, agent]})));
        assert!(check(json!("not an object")));
    }

    #[test]
    fn rfc7636_vector_and_encoding() {
        assert_eq!(s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_eq!(encode("a b+c/~"), "a%20b%2Bc%2F~");
    }
}
