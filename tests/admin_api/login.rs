//! `/accounts/{id}/login[/complete]`: OAuth logins started and completed through the admin API.

use serde_json::json;

use crate::api::Api;

/// The `redirect_uri` query parameter of an authorize URL.
fn redirect_uri_of(url: &str) -> String {
    let url = url::Url::parse(url).expect("authorize URL");
    url.query_pairs().find(|(k, _)| k == "redirect_uri").map(|(_, v)| v.into_owned()).expect("redirect_uri")
}

#[tokio::test]
async fn a_login_returns_to_the_gateway_by_default_and_to_the_configured_page_when_manual() {
    let api = Api::start().await;
    let id = api.add_oauth("max").await;
    let port = api.h.gateway.as_ref().unwrap().addr().port();

    let started = api.action("/accounts/{id}/login", Some(&id)).await;
    let started = started.ok(200);
    let loopback = format!("http://localhost:{port}/callback");
    assert_eq!(started["redirect_uri"], loopback.as_str());
    assert_eq!(redirect_uri_of(started["url"].as_str().unwrap()), loopback);
    assert!(started["url"].as_str().unwrap().starts_with(&format!("{}/oauth/authorize?", api.h.mock.base_url())));

    let configured = api.get("/config", None).await.ok(200)["config"]["oauth"]["redirect_uri"].clone();
    assert!(configured.as_str().is_some_and(|c| c.starts_with("https://")), "{configured}");
    let manual = api.post("/accounts/{id}/login", Some(&id), json!({"redirect": "manual"})).await;
    assert_eq!(manual.ok(200)["redirect_uri"], configured);
    assert_eq!(redirect_uri_of(manual.body["url"].as_str().unwrap()), configured.as_str().unwrap());

    let bad = api.post("/accounts/{id}/login", Some(&id), json!({"redirect": "sideways"})).await;
    bad.error(400, "invalid_request", Some("redirect"));
    let api_key = api.action("/accounts/{id}/login", Some("primary")).await;
    api_key.error(409, "conflict", Some("id"));
    api.shutdown().await;
}

#[tokio::test]
async fn a_pasted_code_completes_the_login_and_the_account_serves_at_once() {
    let api = Api::with(|_| {}).await;
    let id = api.add_oauth("max").await;
    let started = api.post("/accounts/{id}/login", Some(&id), json!({"redirect": "manual"})).await;
    let pasted = api.h.mock.approve(started.ok(200)["url"].as_str().unwrap()).unwrap();

    let done = api.post("/accounts/{id}/login/complete", Some("max"), json!({"code": pasted})).await;
    assert_eq!(done.ok(200)["account_id"], id.as_str());
    assert_eq!(done.body["email"], "mock-user@example.com");

    let view = api.get("/accounts/{id}", Some(&id)).await;
    assert_eq!(view.ok(200)["state"], "active", "{:#}", view.body);
    assert_eq!(view.body["email"], "mock-user@example.com");
    assert_eq!(api.h.message(&[]).await.status(), 200, "the login is in force when the API answered");
    let config = api.config_text();
    assert!(config.contains("mock-user@example.com") && !config.contains("sk-ant-oat01"), "{config}");
    assert!(api.secret(&format!("account:{id}:oauth")).is_some_and(|t| t.contains("sk-ant-ort01")));

    // Removing it deletes the tokens too.
    api.delete("/accounts/{id}", Some(&id)).await.ok(204);
    assert_eq!(api.secret(&format!("account:{id}:oauth")), None);
    api.shutdown().await;
}

#[tokio::test]
async fn a_loopback_login_completes_through_the_gateways_callback() {
    let api = Api::with(|_| {}).await;
    let id = api.add_oauth("max").await;
    let started = api.action("/accounts/{id}/login", Some(&id)).await;
    let pasted = api.h.mock.approve(started.ok(200)["url"].as_str().unwrap()).unwrap();
    let (code, state) = pasted.split_once('#').unwrap();
    let callback = api.h.http.get(format!("{}/callback", api.h.url)).query(&[("code", code), ("state", state)]);
    assert_eq!(callback.send().await.unwrap().status(), 200);
    assert_eq!(api.get("/accounts/{id}", Some(&id)).await.ok(200)["state"], "active");
    api.shutdown().await;
}

#[tokio::test]
async fn a_wrong_or_garbled_code_is_refused_naming_the_code() {
    let api = Api::start().await;
    let id = api.add_oauth("max").await;
    let started = api.post("/accounts/{id}/login", Some(&id), json!({"redirect": "manual"})).await;
    let pasted = api.h.mock.approve(started.ok(200)["url"].as_str().unwrap()).unwrap();
    let (code, state) = pasted.split_once('#').unwrap();

    for wrong in ["", "   ", "no-state-here", &format!("{code}#not-the-state"), &format!("wrong-code#{state}")] {
        let answer = api.post("/accounts/{id}/login/complete", Some(&id), json!({"code": wrong})).await;
        assert_eq!(answer.status, 400, "{wrong:?} → {:#}", answer.body);
        answer.error(400, "invalid_request", Some("code"));
    }
    for body in [json!({"code": 7}), json!({})] {
        api.post("/accounts/{id}/login/complete", Some(&id), body).await.error(400, "invalid_request", Some("code"));
    }
    assert_eq!(api.get("/accounts/{id}", Some(&id)).await.ok(200)["state"], "needs_login");

    // The mistakes did not spend the login: the right code still completes it.
    let done = api.post("/accounts/{id}/login/complete", Some(&id), json!({"code": pasted})).await;
    assert_eq!(done.ok(200)["account_id"], id.as_str());
    // A code used once is refused the second time.
    let again = api.post("/accounts/{id}/login/complete", Some(&id), json!({"code": pasted})).await;
    again.error(400, "invalid_request", Some("code"));

    let api_key = api.post("/accounts/{id}/login/complete", Some("primary"), json!({"code": pasted})).await;
    api_key.error(409, "conflict", Some("id"));
    api.shutdown().await;
}

#[tokio::test]
async fn a_code_for_another_accounts_login_is_refused() {
    let api = Api::start().await;
    let (max, pro) = (api.add_oauth("max").await, api.add_oauth("pro").await);
    let started = api.post("/accounts/{id}/login", Some(&max), json!({"redirect": "manual"})).await;
    let pasted = api.h.mock.approve(started.ok(200)["url"].as_str().unwrap()).unwrap();
    let answer = api.post("/accounts/{id}/login/complete", Some(&pro), json!({"code": pasted})).await;
    answer.error(400, "invalid_request", Some("code"));
    assert_eq!(api.get("/accounts/{id}", Some(&pro)).await.ok(200)["state"], "needs_login");
    let done = api.post("/accounts/{id}/login/complete", Some(&max), json!({"code": pasted})).await;
    assert_eq!(done.ok(200)["account_id"], max.as_str());
    api.shutdown().await;
}
