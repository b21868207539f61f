//! The router and `docs/admin-api.yaml` describe the same API: every route is documented, every documented route
//! exists and is reached (not the router's 404/405 fallback), and every route needs the admin token.

use std::collections::BTreeSet;

use serde_json::json;

use crate::api::{Api, Auth, Body};
use crate::spec::spec;

/// Routes documented ahead of their implementation, each with who adds it. Remove an entry when its route lands:
/// this test fails while a route listed here exists, so the list cannot go stale, and once it is empty every
/// documented route must exist.
const NOT_YET: &[(&str, &str, &str)] = &[];

fn not_yet(method: &str, path: &str) -> bool {
    NOT_YET.iter().any(|(m, p, _)| *m == method && *p == path)
}

fn router_routes() -> BTreeSet<(String, String)> {
    llm_gateway::client::admin_v1_routes().into_iter().map(|(m, p)| (m.to_string(), p.to_string())).collect()
}

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let (routes, documented) = (router_routes(), spec().operations());
    assert!(routes.len() >= 20, "the router's table was read: {routes:?}");
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    assert!(undocumented.is_empty(), "routes missing from docs/admin-api.yaml: {undocumented:?}");
    let missing: Vec<_> = documented.difference(&routes).filter(|(m, p)| !not_yet(m, p)).collect();
    assert!(missing.is_empty(), "documented routes the router does not have: {missing:?}");
    for (method, path, who) in NOT_YET {
        let route = (method.to_string(), path.to_string());
        assert!(documented.contains(&route), "NOT_YET lists {method} {path}, which the document does not have");
        assert!(!routes.contains(&route), "{method} {path} exists now ({who}): remove it from NOT_YET");
    }
}

/// An account and a client key for the `{id}` of the routes that need one.
async fn fixtures(api: &Api) -> (String, String) {
    let account = api.add_api_key("conformance", "sk-ant-api03-conformance").await;
    let answer = api.post("/client-keys", None, json!({"name": "conformance"})).await;
    (account, answer.ok(201)["id"].as_str().unwrap().to_string())
}

/// A concrete call for each documented operation (`{id}`: the fixtures), deletions last.
async fn call_every_operation(
    api: &Api,
    auth: Auth<'_>,
    (account, key): &(String, String),
) -> Vec<(String, String, crate::api::Answer)> {
    let mut operations: Vec<(String, String)> = spec().operations().into_iter().collect();
    operations.sort_by_key(|(method, _)| method == "DELETE");
    let mut answers = Vec::new();
    for (method, path) in operations {
        let id = if path.starts_with("/client-keys/") { key } else { account };
        let id = path.contains("{id}").then_some(id.as_str());
        let body = if spec().has_request_body(&method, &path) { Body::Json(json!({})) } else { Body::None };
        let answer = api.send(&method, &path, id, "", body, auth).await;
        answers.push((method, path, answer));
    }
    answers
}

fn is_fallback(answer: &crate::api::Answer) -> bool {
    let message = answer.body["error"]["message"].as_str().unwrap_or_default();
    (answer.status == 404 && message.contains("no admin API route"))
        || (answer.status == 405 && message.contains("is not allowed"))
}

#[tokio::test]
async fn every_documented_route_is_reached_with_the_admin_token() {
    let api = Api::start().await;
    let fixtures = fixtures(&api).await;
    for (method, path, answer) in call_every_operation(&api, Auth::Admin, &fixtures).await {
        if not_yet(&method, &path) {
            assert!(is_fallback(&answer), "{method} {path} answers now: remove it from NOT_YET ({answer:?})");
        } else {
            assert!(!is_fallback(&answer), "{method} {path} fell through to the router's fallback: {answer:?}");
            assert_ne!(answer.status, 401, "{method} {path} refused the admin token: {answer:?}");
        }
    }
    api.shutdown().await;
}

#[tokio::test]
async fn every_route_refuses_a_missing_or_wrong_token() {
    let api = Api::start().await;
    let fixtures = fixtures(&api).await;
    let wrong = format!("{}x", api.token);
    for auth in [Auth::None, Auth::Bearer(&wrong), Auth::Bearer("")] {
        for (method, path, answer) in call_every_operation(&api, auth, &fixtures).await {
            if spec().needs_auth(&method, &path) && !not_yet(&method, &path) {
                answer.error(401, "unauthorized", None);
            }
        }
    }
    // Nothing was changed by the refused calls.
    let accounts = api.get("/accounts", None).await;
    assert_eq!(accounts.ok(200)["accounts"].as_array().unwrap().len(), 2, "{:#}", accounts.body);
    api.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_get_the_error_shape() {
    let api = Api::start().await;
    let cases = [
        ("GET", "/admin/api/v1/nope", 404, "not_found", "no admin API route"),
        ("GET", "/admin/api/nope", 404, "not_found", "no admin API route"),
        ("DELETE", "/admin/api/v1/status", 405, "invalid_request", "is not allowed"),
        ("PUT", "/admin/api/v1/accounts/primary", 405, "invalid_request", "is not allowed"),
    ];
    for (method, path, status, kind, says) in cases {
        let request = api.h.http.request(method.parse().unwrap(), format!("{}{path}", api.h.url));
        let response = request.bearer_auth(&api.token).send().await.unwrap();
        let code = response.status().as_u16();
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = spec().check_error(code, content_type.as_deref(), &response.bytes().await.unwrap());
        assert_eq!(code, status, "{method} {path}: {body}");
        assert_eq!(body["error"]["type"], kind, "{method} {path}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(says), "{method} {path}: {body}");
    }
    api.shutdown().await;
}
