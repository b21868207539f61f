//! The mock OAuth server: authorize redirect, JSON-only token endpoint with PKCE, rotating single-use
//! refresh tokens, failure injection, stats, and what `/v1/messages` demands of the tokens it issued.

mod common;

use common::{assert_error, body, client};
use mock_upstream::{EXPIRED_MESSAGE, MockUpstream, OAuthMockConfig, OAuthStats};
use serde_json::{Value, json};

const CLIENT: &str = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";
const REDIRECT: &str = "https://platform.claude.com/oauth/code/callback";
/// RFC 7636 appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const CC: &str = "You are Claude Code, Anthropic's official CLI for Claude.";

async fn token(mock: &MockUpstream, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = client().post(mock.oauth_token_url()).json(&body).send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.json().await.unwrap())
}

fn exchange(code: &str, verifier: &str) -> Value {
    json!({"grant_type":"authorization_code","code":code,"redirect_uri":REDIRECT,"client_id":CLIENT,
        "code_verifier":verifier,"state":"st"})
}

fn refresh(rt: &str) -> Value {
    json!({"grant_type":"refresh_token","refresh_token":rt,"client_id":CLIENT})
}

async fn logged_in(mock: &MockUpstream) -> Value {
    let code = mock.issue_code(CLIENT, CHALLENGE, REDIRECT, "st");
    let (status, _, v) = token(mock, exchange(&code, VERIFIER)).await;
    assert_eq!(status, 200, "{v}");
    v
}

async fn messages(mock: &MockUpstream, token: &str, beta: bool, body: &Value) -> reqwest::Response {
    let mut req = client().post(format!("{}/v1/messages", mock.base_url())).bearer_auth(token).json(body);
    if beta {
        req = req.header("anthropic-beta", "claude-code-20250219,oauth-2025-04-20");
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn code_exchange_checks_pkce_and_returns_protocol_fields() {
    let mock = MockUpstream::start().await.unwrap();
    let code = mock.issue_code(CLIENT, CHALLENGE, REDIRECT, "st");
    let (status, _, v) = token(&mock, exchange(&code, "wrong-verifier")).await;
    assert_eq!((status, v["error"].as_str()), (400, Some("invalid_grant")));
    // The code was consumed by the failed attempt; a fresh one works.
    let v = logged_in(&mock).await;
    assert!(v["access_token"].as_str().unwrap().starts_with("sk-ant-oat01-mock-"));
    assert!(v["refresh_token"].as_str().unwrap().starts_with("sk-ant-ort01-mock-"));
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 28_800);
    assert_eq!(v["scope"], "user:inference user:profile");
    assert_eq!(v["account"]["email_address"], "mock-user@example.com");
    assert!(v["account"]["uuid"].is_string() && v["organization"]["uuid"].is_string());
    assert_eq!(v["organization"]["name"], "Mock Organization");
    assert_eq!(mock.oauth_stats(), OAuthStats { refresh_calls: 0, exchange_calls: 2 });

    // Form-encoded bodies are refused.
    let r = client()
        .post(mock.oauth_token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=refresh_token&refresh_token=x&client_id=y")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (status, _, v) = token(&mock, json!({"grant_type":"password"})).await;
    assert_eq!((status, v["error"].as_str()), (400, Some("unsupported_grant_type")));
}

#[tokio::test]
async fn refresh_tokens_rotate_and_are_single_use() {
    let mock = MockUpstream::start().await.unwrap();
    let first = logged_in(&mock).await;
    let rt1 = first["refresh_token"].as_str().unwrap();
    let (status, _, second) = token(&mock, refresh(rt1)).await;
    assert_eq!(status, 200);
    let rt2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(rt1, rt2);
    assert_ne!(first["access_token"], second["access_token"]);
    let (status, _, v) = token(&mock, refresh(rt1)).await;
    assert_eq!(status, 400);
    assert_eq!(v, json!({"error":"invalid_grant","error_description":"Refresh token not found or invalid"}));
    let (status, _, _) = token(&mock, refresh(rt2)).await;
    assert_eq!(status, 200);
    assert_eq!(mock.oauth_stats().refresh_calls, 3);

    // Over HTTP as well.
    let stats: Value =
        client().get(format!("{}/_mock/oauth/stats", mock.base_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats, json!({"refresh_calls":3,"exchange_calls":1}));
}

#[tokio::test]
async fn injected_failures_and_config_over_http() {
    let mock = MockUpstream::start().await.unwrap();
    let v = logged_in(&mock).await;
    let rt = v["refresh_token"].as_str().unwrap();
    let cfg = json!({"fail_next_with_status":429,"retry_after":30,"fail_times":2,"expires_in":5});
    let r = client().post(format!("{}/_mock/oauth/config", mock.base_url())).json(&cfg).send().await.unwrap();
    assert_eq!(r.status(), 204);
    for _ in 0..2 {
        let (status, headers, v) = token(&mock, refresh(rt)).await;
        assert_eq!(status, 429);
        assert_eq!(headers["retry-after"], "30");
        assert_eq!(v["error"]["type"], "rate_limit_error");
    }
    // The refresh token survived the rejected attempts; the new expiry applies.
    let (status, _, v) = token(&mock, refresh(rt)).await;
    assert_eq!((status, v["expires_in"].as_i64()), (200, Some(5)));
    mock.oauth_config(OAuthMockConfig { fail_next_with_status: Some(400), ..Default::default() });
    let rt = v["refresh_token"].as_str().unwrap();
    let (status, _, v) = token(&mock, refresh(rt)).await;
    assert_eq!((status, v["error"].as_str()), (400, Some("invalid_grant")));

    // Codes over HTTP.
    let req = json!({"client_id":CLIENT,"code_challenge":CHALLENGE,"redirect_uri":REDIRECT,"state":"st"});
    let r: Value = client()
        .post(format!("{}/_mock/oauth/authorize", mock.base_url()))
        .json(&req)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (status, _, _) = token(&mock, exchange(r["code"].as_str().unwrap(), VERIFIER)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn authorize_redirects_with_code_and_state() {
    let mock = MockUpstream::start().await.unwrap();
    let url = format!(
        "{}?code=true&client_id={CLIENT}&response_type=code&redirect_uri=http%3A%2F%2Flocalhost%3A54545%2Fcallback\
         &scope=user%3Aprofile+user%3Ainference&code_challenge={CHALLENGE}&code_challenge_method=S256&state=abc",
        mock.oauth_authorize_url()
    );
    let no_redirect =
        reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = no_redirect.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let code =
        location.strip_prefix("http://localhost:54545/callback?code=").unwrap().strip_suffix("&state=abc").unwrap();
    assert_eq!(r.text().await.unwrap(), format!("{code}#abc"));
    let body = json!({"grant_type":"authorization_code","code":code,"redirect_uri":"http://localhost:54545/callback",
        "client_id":CLIENT,"code_verifier":VERIFIER,"state":"abc"});
    let (status, _, v) = token(&mock, body).await;
    assert_eq!(status, 200);
    assert_eq!(v["scope"], "user:profile user:inference");
    // `approve` does the same without HTTP and returns what the paste page shows.
    let pasted = mock.approve(&url).unwrap();
    assert!(pasted.ends_with("#abc"), "{pasted}");
}

#[tokio::test]
async fn issued_tokens_expire_and_need_identity_and_beta() {
    let mock = MockUpstream::start().await.unwrap();
    let v = logged_in(&mock).await;
    let at = v["access_token"].as_str().unwrap();
    let mut with_identity = body(false);
    with_identity["system"] =
        json!([{"type":"text","text":"x-anthropic-billing-header: cc_version=1;"},{"type":"text","text":CC}]);
    assert_eq!(messages(&mock, at, true, &with_identity).await.status(), 200);
    let msg = assert_error(messages(&mock, at, false, &with_identity).await, 401, "authentication_error").await;
    assert_eq!(msg, "OAuth authentication is currently not supported.");
    // Non-Haiku without the identity: 400 "Error"; Haiku is exempt.
    let msg = assert_error(messages(&mock, at, true, &body(false)).await, 400, "invalid_request_error").await;
    assert_eq!(msg, "Error");
    let mut haiku = body(false);
    haiku["model"] = json!("claude-haiku-4-5-20251001");
    assert_eq!(messages(&mock, at, true, &haiku).await.status(), 200);
    let mut string_system = body(false);
    string_system["system"] = json!(format!("{CC} Be terse."));
    assert_eq!(messages(&mock, at, true, &string_system).await.status(), 200);
    // Unknown mock tokens are refused; expired ones get the expiry message.
    let msg =
        assert_error(messages(&mock, "sk-ant-oat01-mock-999", true, &with_identity).await, 401, "authentication_error")
            .await;
    assert_eq!(msg, "Invalid bearer token");
    mock.oauth_expire_access_tokens();
    let msg = assert_error(messages(&mock, at, true, &with_identity).await, 401, "authentication_error").await;
    assert_eq!(msg, EXPIRED_MESSAGE);
    // Expiry by lifetime, and the HTTP control endpoint.
    mock.oauth_config(OAuthMockConfig { expires_in: Some(0), ..Default::default() });
    let v = logged_in(&mock).await;
    let r = messages(&mock, v["access_token"].as_str().unwrap(), true, &with_identity).await;
    assert_eq!(assert_error(r, 401, "authentication_error").await, EXPIRED_MESSAGE);
    let r = client().post(format!("{}/_mock/oauth/expire", mock.base_url())).send().await.unwrap();
    assert_eq!(r.status(), 204);
    // Other OAuth-looking tokens keep the old behaviour (no expiry or identity checks).
    assert_eq!(messages(&mock, "sk-ant-oat01-abc", true, &body(false)).await.status(), 200);
}
