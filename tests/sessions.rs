//! The web UI's browser sessions: one-time codes minted with the admin token, the session cookie they open, the
//! CSRF rules for cookie-authenticated changes, sign-out, rate limiting, and sessions surviving a restart.

mod common;

use std::sync::Arc;

use common::Harness;
use llm_gateway::clock::{Clock, ManualClock};
use reqwest::Response;
use serde_json::{Value, json};

const T0: u64 = 1_750_000_000_000;
const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;
const CSRF: (&str, &str) = ("x-llm-gateway-csrf", "1");

async fn with_clock(server_extra: &str) -> (Harness, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(T0));
    let h = Harness::with_clock(server_extra, "", Some(clock.clone() as Arc<dyn Clock>), |_| {}).await;
    (h, clock)
}

fn v1(h: &Harness, path: &str) -> String {
    format!("{}/admin/api/v1{path}", h.url)
}

/// `POST /session/code` with the admin token: the answer's JSON.
async fn mint(h: &Harness) -> Value {
    let response = h.http.post(v1(h, "/session/code")).bearer_auth(h.admin_token()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

async fn mint_code(h: &Harness) -> String {
    mint(h).await["code"].as_str().unwrap().to_string()
}

async fn sign_in(h: &Harness, code: &str) -> Response {
    h.http.post(v1(h, "/session")).json(&json!({ "code": code })).send().await.unwrap()
}

/// The `Set-Cookie` header of a response, whole.
fn set_cookie(response: &Response) -> String {
    response.headers()["set-cookie"].to_str().unwrap().to_string()
}

/// Signs in with a fresh code; returns the `Cookie` header value to send.
async fn session(h: &Harness) -> String {
    let response = sign_in(h, &mint_code(h).await).await;
    assert_eq!(response.status(), 200);
    set_cookie(&response).split(';').next().unwrap().to_string()
}

async fn status_with(h: &Harness, cookie: &str) -> Response {
    h.http.get(v1(h, "/status")).header("cookie", cookie).send().await.unwrap()
}

async fn sign_out(h: &Harness, cookie: &str, headers: &[(&str, &str)]) -> Response {
    let mut request = h.http.delete(v1(h, "/session")).header("cookie", cookie);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// Asserts an admin API v1 error (`{"error": {"type", "message", "field"}}`) and returns its message.
async fn admin_error(response: Response, status: u16, kind: &str) -> String {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], kind, "{body}");
    let message = body["error"]["message"].as_str().unwrap().to_string();
    assert!(!message.contains("  ") && !message.contains('\n'), "one clean sentence: {message:?}");
    message
}

fn own_origin(h: &Harness) -> String {
    h.url.clone()
}

#[tokio::test]
async fn a_code_minted_with_the_admin_token_signs_the_browser_in_with_a_strict_http_only_cookie() {
    let (h, _clock) = with_clock("").await;
    let minted = mint(&h).await;
    let code = minted["code"].as_str().unwrap();
    assert!(code.len() >= 22 && code.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)), "{code}");
    let port = h.gateway.as_ref().unwrap().addr().port();
    assert_eq!(minted["url"], format!("http://127.0.0.1:{port}/ui/#code={code}"));
    assert_eq!(minted["expires_at"], llm_gateway::clock::rfc3339(T0 + 2 * MINUTE));

    let response = sign_in(&h, code).await;
    assert_eq!(response.status(), 200);
    let cookie = set_cookie(&response);
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(attributes[0].starts_with("lgw_session=") && attributes[0].len() > 40, "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin/api", "Max-Age=43200"] {
        assert!(attributes.contains(&attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: a Secure cookie would be dropped: {cookie}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_at"], llm_gateway::clock::rfc3339(T0 + 12 * HOUR));

    let cookie = attributes[0];
    let status = status_with(&h, cookie).await;
    assert_eq!(status.status(), 200);
    let report: Value = status.json().await.unwrap();
    assert!(report["accounts"].is_array(), "{report}");

    let message = admin_error(h.http.get(v1(&h, "/status")).send().await.unwrap(), 401, "unauthorized").await;
    assert!(message.contains("llm-gateway admin-token") && message.contains("llm-gateway ui"), "{message}");
    let outside = h.http.get(format!("{}/admin/api/status", h.url)).header("cookie", cookie).send().await.unwrap();
    assert_eq!(outside.status(), 404, "only version 1 exists under /admin/api");
}

#[tokio::test]
async fn a_code_works_only_once() {
    let (h, _clock) = with_clock("").await;
    let code = mint_code(&h).await;
    assert_eq!(sign_in(&h, &code).await.status(), 200);
    let message = admin_error(sign_in(&h, &code).await, 401, "unauthorized").await;
    assert!(message.contains("already used"), "{message}");
    let message = admin_error(sign_in(&h, "never-minted-code").await, 401, "unauthorized").await;
    assert!(message.contains("llm-gateway ui"), "{message}");
}

#[tokio::test]
async fn a_code_older_than_two_minutes_is_refused() {
    let (h, clock) = with_clock("").await;
    let late = mint_code(&h).await;
    let in_time = mint_code(&h).await;
    clock.advance(2 * MINUTE - 1);
    assert_eq!(sign_in(&h, &in_time).await.status(), 200);
    clock.advance(1);
    let message = admin_error(sign_in(&h, &late).await, 401, "unauthorized").await;
    assert!(message.contains("expired"), "{message}");
}

#[tokio::test]
async fn an_expired_session_is_refused_and_its_cookie_cleared() {
    let (h, clock) = with_clock("  ui_session_hours: 1\n").await;
    let response = sign_in(&h, &mint_code(&h).await).await;
    assert!(set_cookie(&response).contains("Max-Age=3600"), "{}", set_cookie(&response));
    let cookie = set_cookie(&response).split(';').next().unwrap().to_string();
    clock.advance(HOUR - 1);
    assert_eq!(status_with(&h, &cookie).await.status(), 200);
    clock.advance(1);
    let response = status_with(&h, &cookie).await;
    assert!(set_cookie(&response).contains("Max-Age=0"), "the browser is told to drop it");
    let message = admin_error(response, 401, "unauthorized").await;
    assert!(message.contains("expired") && message.contains("llm-gateway ui"), "{message}");
}

#[tokio::test]
async fn a_cookie_change_without_the_csrf_header_is_refused() {
    let (h, _clock) = with_clock("").await;
    let cookie = session(&h).await;
    let origin = own_origin(&h);
    let message = admin_error(sign_out(&h, &cookie, &[("origin", &origin)]).await, 403, "forbidden").await;
    assert!(message.contains("x-llm-gateway-csrf"), "{message}");
    let wrong_value = sign_out(&h, &cookie, &[("x-llm-gateway-csrf", "true")]).await;
    assert_eq!(wrong_value.status(), 403);
    assert_eq!(status_with(&h, &cookie).await.status(), 200, "the session was not ended");
}

#[tokio::test]
async fn a_cookie_change_from_another_origin_is_refused() {
    let (h, _clock) = with_clock("").await;
    let cookie = session(&h).await;
    // Another page on this machine: the front layer lets loopback origins through, the cookie rule does not.
    let other_local = sign_out(&h, &cookie, &[CSRF, ("origin", "http://localhost:3000")]).await;
    let message = admin_error(other_local, 403, "forbidden").await;
    assert!(message.contains("own page") && message.contains("http://localhost:3000"), "{message}");
    let cross_site = sign_out(&h, &cookie, &[CSRF, ("origin", "https://evil.example")]).await;
    assert_eq!(cross_site.status(), 403);
    let mint_cross_site = h
        .http
        .post(v1(&h, "/session/code"))
        .header("cookie", &cookie)
        .header(CSRF.0, CSRF.1)
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(mint_cross_site.status(), 403);
    assert_eq!(status_with(&h, &cookie).await.status(), 200, "the session was not ended");
}

#[tokio::test]
async fn signing_out_from_the_gateways_own_page_ends_the_session() {
    let (h, _clock) = with_clock("").await;
    let cookie = session(&h).await;
    let token = cookie.trim_start_matches("lgw_session=").to_string();
    let hash = hex::encode(llm_gateway::secrets::keys::hash_key(&token));
    let file = h.dir.path().join("ui-sessions.json");
    assert!(std::fs::read_to_string(&file).unwrap().contains(&hash));

    let origin = own_origin(&h);
    let response = sign_out(&h, &cookie, &[CSRF, ("origin", &origin)]).await;
    assert_eq!(response.status(), 204);
    let cleared = set_cookie(&response);
    assert!(cleared.starts_with("lgw_session=;") && cleared.contains("Max-Age=0"), "{cleared}");
    assert!(cleared.contains("Path=/admin/api"), "the same cookie is cleared: {cleared}");
    assert_eq!(status_with(&h, &cookie).await.status(), 401);
    assert!(!std::fs::read_to_string(&file).unwrap().contains(&hash), "forgotten in the file too");
    // Signing out again (a second tab) just clears the cookie.
    assert_eq!(sign_out(&h, &cookie, &[CSRF, ("origin", &origin)]).await.status(), 204);
    // The admin token may end a session without the cookie rules (no browser sends it on its own).
    let other = session(&h).await;
    let with_token = h.http.delete(v1(&h, "/session")).header("cookie", &other).bearer_auth(h.admin_token());
    assert_eq!(with_token.send().await.unwrap().status(), 204);
    assert_eq!(status_with(&h, &other).await.status(), 401);
    // With neither cookie nor token there is nothing to sign out of.
    let anonymous = h.http.delete(v1(&h, "/session")).header(CSRF.0, CSRF.1).send().await.unwrap();
    admin_error(anonymous, 401, "unauthorized").await;
}

#[tokio::test]
async fn the_admin_token_needs_no_csrf_header() {
    let (h, _clock) = with_clock("").await;
    let minted = h
        .http
        .post(v1(&h, "/session/code"))
        .bearer_auth(h.admin_token())
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(minted.status(), 200, "a bearer token is never sent by a browser on its own");
    let wrong = h.http.get(v1(&h, "/status")).bearer_auth("lgw-not-the-token").send().await.unwrap();
    let message = admin_error(wrong, 401, "unauthorized").await;
    assert!(message.contains("admin-token"), "{message}");
}

#[tokio::test]
async fn a_ui_session_cannot_mint_sign_in_codes() {
    let (h, _clock) = with_clock("").await;
    let cookie = session(&h).await;
    let origin = own_origin(&h);
    let mint_with_cookie = |headers: &'static [(&'static str, &'static str)]| {
        let mut request = h.http.post(v1(&h, "/session/code")).header("cookie", &cookie).header("origin", &origin);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    let message = admin_error(mint_with_cookie(&[CSRF]).await.unwrap(), 403, "forbidden").await;
    assert!(message.contains("admin token"), "{message}");
    assert_eq!(mint_with_cookie(&[]).await.unwrap().status(), 403);
}

#[tokio::test]
async fn the_eleventh_failed_exchange_within_a_minute_is_rate_limited() {
    let (h, clock) = with_clock("").await;
    let good = mint_code(&h).await;
    for attempt in 0..10 {
        let status = sign_in(&h, &format!("guess-{attempt}")).await.status();
        assert_eq!(status, 401, "attempt {attempt}");
    }
    let response = sign_in(&h, &good).await;
    assert_eq!(response.headers()["retry-after"], "60");
    let message = admin_error(response, 429, "rate_limited").await;
    assert!(message.contains("try again in 60 s"), "{message}");
    clock.advance(MINUTE);
    assert_eq!(sign_in(&h, &good).await.status(), 200, "a minute later the good code (unspent) works");
    for _ in 0..12 {
        let code = mint_code(&h).await;
        assert_eq!(sign_in(&h, &code).await.status(), 200, "successful exchanges are never limited");
    }
}

#[tokio::test]
async fn a_sign_in_body_other_than_a_code_is_an_invalid_request_naming_code() {
    let (h, _clock) = with_clock("").await;
    for body in ["", "not json", "{}", r#"{"code": 5}"#, r#"{"code": ""}"#, r#"["code"]"#] {
        let response =
            h.http.post(v1(&h, "/session")).header("content-type", "application/json").body(body).send().await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["type"], "invalid_request", "{body}: {error}");
        assert_eq!(error["error"]["field"], "code", "{body}: {error}");
    }
    let huge = format!(r#"{{"code": "{}"}}"#, "x".repeat(10_000));
    let response = h.http.post(v1(&h, "/session")).body(huge).send().await.unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn sessions_survive_a_gateway_restart_and_are_stored_as_hashes_only() {
    let mut h = Harness::with(|_| {}).await;
    let code = mint_code(&h).await;
    let response = sign_in(&h, &code).await;
    assert_eq!(response.status(), 200);
    let cookie = set_cookie(&response).split(';').next().unwrap().to_string();
    let token = cookie.trim_start_matches("lgw_session=");

    let path = h.dir.path().join("ui-sessions.json");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(token) && !text.contains(&code), "no token or code on disk: {text}");
    assert!(text.contains(&hex::encode(llm_gateway::secrets::keys::hash_key(token))), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    h.gateway.take().unwrap().shutdown().await;
    let restarted = llm_gateway::start(llm_gateway::StartOptions::new(&h.config_path)).await.unwrap();
    h.url = format!("http://{}", restarted.addr());
    h.gateway = Some(restarted);
    assert_eq!(status_with(&h, &cookie).await.status(), 200, "still signed in after the restart");
    assert_eq!(sign_in(&h, &code).await.status(), 401, "codes do not survive it");
    h.shutdown().await;
}

#[tokio::test]
async fn the_ui_of_a_gateway_reached_by_an_allowed_name_may_sign_in_and_change_things() {
    let (h, _clock) = with_clock("  allowed_hosts: [gateway.test]\n").await;
    let port = h.gateway.as_ref().unwrap().addr().port();
    let host = format!("gateway.test:{port}");
    let origin = format!("http://{host}");
    let code = mint_code(&h).await;
    // What a browser on http://gateway.test:PORT/ui/ sends: its own origin on every change.
    let response = h
        .http
        .post(v1(&h, "/session"))
        .header("host", &host)
        .header("origin", &origin)
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let cookie = set_cookie(&response).split(';').next().unwrap().to_string();
    let response = sign_out(&h, &cookie, &[CSRF, ("host", &host), ("origin", &origin)]).await;
    assert_eq!(response.status(), 204);
    // A name that is not allowed is still refused, origin or not.
    let other = h
        .http
        .get(v1(&h, "/status"))
        .header("host", format!("rebind.example:{port}"))
        .header("origin", format!("http://rebind.example:{port}"))
        .bearer_auth(h.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 403);
}
