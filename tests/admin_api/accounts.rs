//! `/accounts…`: add, list, read, change, enable/disable, remove, probe; each error kind names its field.

use serde_json::{Value, json};

use crate::api::{Api, Body};
use crate::common;

fn accounts(answer: &crate::api::Answer) -> Vec<Value> {
    answer.ok(200)["accounts"].as_array().expect("accounts").clone()
}

#[tokio::test]
async fn api_key_accounts_are_added_then_listed_and_read_by_id_or_name() {
    let api = Api::start().await;
    let body = json!({
        "kind": "api_key", "name": "team", "key": "sk-ant-api03-team-key", "weight": 3, "priority": 2,
        "models": ["claude-opus-*", " claude-sonnet-5 "], "base_url": "http://127.0.0.1:9/",
    });
    let added = api.post("/accounts", None, body).await;
    let view = added.ok(201).clone();
    let id = view["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("acc_"), "{view}");
    assert_eq!(view["name"], "team");
    assert_eq!(view["kind"], "api_key");
    assert_eq!(view["state"], "active");
    assert_eq!(view["weight"], 3);
    assert_eq!(view["priority"], 2);
    assert_eq!(view["models"], json!(["claude-opus-*", "claude-sonnet-5"]));
    assert_eq!(view["base_url"], "http://127.0.0.1:9");

    let listed = accounts(&api.get("/accounts", None).await);
    assert_eq!(listed.iter().map(|a| a["name"].as_str().unwrap()).collect::<Vec<_>>(), ["primary", "team"]);
    assert_eq!(listed[1]["id"], id.as_str());
    assert_eq!(api.get("/accounts/{id}", Some(&id)).await.ok(200)["name"], "team");
    assert_eq!(api.get("/accounts/{id}", Some("team")).await.ok(200)["id"], id.as_str());

    // The key is in the secret store only.
    assert_eq!(api.secret(&format!("account:{id}:api_key")).as_deref(), Some("sk-ant-api03-team-key"));
    assert!(!api.config_text().contains("sk-ant-api03-team-key"));
    assert!(!added.body.to_string().contains("sk-ant-api03-team-key"), "the key is never sent back");
    api.shutdown().await;
}

#[tokio::test]
async fn an_added_api_key_account_serves_requests_at_once() {
    let api = Api::with(|_| {}).await;
    assert_eq!(api.h.message(&[]).await.status(), 503, "no account yet");
    api.add_api_key("first", common::GOOD_KEY).await;
    assert_eq!(api.h.message(&[]).await.status(), 200, "in force when the API answered");
    api.shutdown().await;
}

#[tokio::test]
async fn oauth_accounts_are_added_waiting_for_a_login() {
    let api = Api::start().await;
    let body = json!({"kind": "oauth", "name": "max", "clients": "any", "models": ["claude-sonnet-*"]});
    let view = api.post("/accounts", None, body).await.ok(201).clone();
    assert_eq!(view["kind"], "oauth");
    assert_eq!(view["state"], "needs_login");
    assert_eq!(view["clients"], "any");
    assert_eq!(view["models"], json!(["claude-sonnet-*"]));
    let defaults = api.post("/accounts", None, json!({"kind": "oauth", "name": "pro"})).await;
    assert_eq!(defaults.ok(201)["weight"], 1);
    assert_eq!(defaults.body["priority"], 0);
    api.shutdown().await;
}

#[tokio::test]
async fn adding_an_account_refuses_bad_input_naming_the_field() {
    let api = Api::start().await;
    let key = |extra: Value| {
        let mut body = json!({"kind": "api_key", "name": "new", "key": "sk-ant-api03-new"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let cases = [
        (key(json!({"name": "primary"})), 409, "conflict", "name"),
        (key(json!({"name": "  "})), 400, "invalid_request", "name"),
        (key(json!({"weight": 0})), 400, "invalid_request", "weight"),
        (key(json!({"weight": "x"})), 400, "invalid_request", "weight"),
        (key(json!({"priority": -1})), 400, "invalid_request", "priority"),
        (key(json!({"models": "claude-*"})), 400, "invalid_request", "models"),
        (key(json!({"base_url": "ftp://example.com"})), 400, "invalid_request", "base_url"),
        (key(json!({"key": ""})), 400, "invalid_request", "key"),
        (key(json!({"key": 7})), 400, "invalid_request", "key"),
        (key(json!({"clients": "any"})), 400, "invalid_request", "clients"),
        (json!({"kind": "api_key", "name": "new"}), 400, "invalid_request", "key"),
        (json!({"kind": "bearer", "name": "new"}), 400, "invalid_request", "kind"),
        (json!({"name": "new", "key": "sk"}), 400, "invalid_request", "kind"),
        (json!({"kind": "oauth", "name": "primary"}), 409, "conflict", "name"),
        (json!({"kind": "oauth", "name": "o", "clients": "everyone"}), 400, "invalid_request", "clients"),
        (json!(["not", "an", "object"]), 400, "invalid_request", "body"),
    ];
    for (body, status, kind, field) in cases {
        let answer = api.post("/accounts", None, body.clone()).await;
        assert_eq!(answer.status, status, "{body} → {:#}", answer.body);
        answer.error(status, kind, Some(field));
    }
    let answer = api
        .send(
            "POST",
            "/accounts",
            None,
            "",
            Body::Raw("application/json", b"{\"kind\":".to_vec()),
            crate::api::Auth::Admin,
        )
        .await;
    answer.error(400, "invalid_request", Some("body"));
    let answer = api
        .send("POST", "/accounts", None, "", Body::Raw("text/plain", b"name=x".to_vec()), crate::api::Auth::Admin)
        .await;
    answer.error(400, "invalid_request", Some("body"));

    // Nothing of the refused accounts stayed: not in the config, not in the list.
    let listed = accounts(&api.get("/accounts", None).await);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(!api.config_text().contains("new"));
    api.shutdown().await;
}

#[tokio::test]
async fn unknown_accounts_are_not_found_on_every_account_route() {
    let api = Api::start().await;
    let routes = [
        ("GET", "/accounts/{id}", None),
        ("PATCH", "/accounts/{id}", Some(json!({"weight": 2}))),
        ("DELETE", "/accounts/{id}", None),
        ("POST", "/accounts/{id}/enable", None),
        ("POST", "/accounts/{id}/disable", None),
        ("POST", "/accounts/{id}/login", Some(json!({}))),
        ("POST", "/accounts/{id}/login/complete", Some(json!({"code": "abc#def"}))),
        ("POST", "/accounts/{id}/probe", None),
    ];
    for (method, path, body) in routes {
        let message = api.call(method, path, Some("acc_nope"), body).await.error(404, "not_found", None);
        assert!(message.contains("acc_nope"), "{method} {path}: {message}");
    }
    api.shutdown().await;
}

#[tokio::test]
async fn patch_changes_each_field_and_a_null_base_url_removes_it() {
    let api = Api::start().await;
    let id = api.add_api_key("team", "sk-ant-api03-team").await;
    let changed = api
        .patch(
            "/accounts/{id}",
            Some(&id),
            json!({"name": "renamed", "weight": 5, "priority": 3, "models": ["claude-haiku-*"],
                   "base_url": "https://proxy.example.com/"}),
        )
        .await;
    let view = changed.ok(200);
    assert_eq!(
        (&view["name"], &view["weight"], &view["priority"], &view["models"], &view["base_url"]),
        (&json!("renamed"), &json!(5), &json!(3), &json!(["claude-haiku-*"]), &json!("https://proxy.example.com"))
    );
    let read = api.get("/accounts/{id}", Some("renamed")).await;
    assert_eq!(read.ok(200)["base_url"], "https://proxy.example.com", "the change is what GET shows");
    assert!(api.config_text().contains("renamed"));

    let removed = api.patch("/accounts/{id}", Some(&id), json!({"base_url": null})).await;
    assert!(removed.ok(200).get("base_url").is_none(), "{:#}", removed.body);
    assert_eq!(removed.body["weight"], 5, "other fields stay");
    let models = api.patch("/accounts/{id}", Some(&id), json!({"models": []})).await;
    assert_eq!(models.ok(200)["models"], json!([]));

    let oauth = api.add_oauth("max").await;
    let clients = api.patch("/accounts/{id}", Some(&oauth), json!({"clients": "claude_code"})).await;
    assert_eq!(clients.ok(200)["clients"], "claude_code");
    api.shutdown().await;
}

#[tokio::test]
async fn patch_refuses_bad_changes_naming_the_field() {
    let api = Api::start().await;
    let id = api.add_api_key("team", "sk-ant-api03-team").await;
    let cases = [
        (json!({"clients": "any"}), 400, "invalid_request", "clients"),
        (json!({}), 400, "invalid_request", "body"),
        (json!({"name": "primary"}), 409, "conflict", "name"),
        (json!({"name": ""}), 400, "invalid_request", "name"),
        (json!({"weight": 0}), 400, "invalid_request", "weight"),
        (json!({"weight": "x"}), 400, "invalid_request", "weight"),
        (json!({"base_url": "not a url"}), 400, "invalid_request", "base_url"),
        (json!({"colour": "red"}), 400, "invalid_request", "colour"),
    ];
    let before = api.config_text();
    for (body, status, kind, field) in cases {
        let answer = api.patch("/accounts/{id}", Some(&id), body.clone()).await;
        assert_eq!(answer.status, status, "{body} → {:#}", answer.body);
        answer.error(status, kind, Some(field));
    }
    assert_eq!(api.config_text(), before, "a refused change leaves the file as it was");
    api.shutdown().await;
}

#[tokio::test]
async fn disable_and_enable_are_in_force_when_they_answer() {
    let api = Api::start().await;
    let disabled = api.action("/accounts/{id}/disable", Some("primary")).await;
    assert_eq!(disabled.ok(200)["state"], "disabled");
    assert_eq!(disabled.body["enabled"], false);
    assert_eq!(api.get("/accounts/{id}", Some("primary")).await.ok(200)["state"], "disabled");
    assert_eq!(api.h.message(&[]).await.status(), 503, "no request goes to a disabled account");

    let enabled = api.action("/accounts/{id}/enable", Some("primary")).await;
    assert_eq!(enabled.ok(200)["state"], "active");
    assert_eq!(accounts(&api.get("/accounts", None).await)[0]["state"], "active");
    assert_eq!(api.h.message(&[]).await.status(), 200);
    api.shutdown().await;
}

#[tokio::test]
async fn removing_an_account_deletes_its_credential() {
    let api = Api::start().await;
    let id = api.add_api_key("team", "sk-ant-api03-team").await;
    let secret_id = format!("account:{id}:api_key");
    assert!(api.secret(&secret_id).is_some());

    assert_eq!(api.delete("/accounts/{id}", Some(&id)).await.ok(204), &Value::Null);
    api.get("/accounts/{id}", Some(&id)).await.error(404, "not_found", None);
    api.delete("/accounts/{id}", Some(&id)).await.error(404, "not_found", None);
    assert_eq!(api.secret(&secret_id), None, "the credential left the secret store");
    assert!(!api.config_text().contains(&id));
    assert_eq!(accounts(&api.get("/accounts", None).await).len(), 1);
    api.shutdown().await;
}

#[tokio::test]
async fn probe_reports_whether_an_account_is_usable() {
    let api = Api::start().await;
    let good = api.action("/accounts/{id}/probe", Some("primary")).await;
    assert_eq!(good.ok(200)["usable"], true, "{:#}", good.body);
    assert_eq!(good.body["status"], 200);
    let bad = api.add_api_key("bad", "sk-ant-invalid-key").await;
    let probe = api.action("/accounts/{id}/probe", Some(&bad)).await;
    assert_eq!(probe.ok(200)["usable"], false, "{:#}", probe.body);
    assert_eq!(probe.body["status"], 401);
    assert!(probe.body["detail"].as_str().unwrap().contains("invalid x-api-key"), "{:#}", probe.body);
    let oauth = api.add_oauth("max").await;
    let probe = api.action("/accounts/{id}/probe", Some(&oauth)).await;
    assert_eq!(probe.ok(200)["usable"], false, "not logged in yet: {:#}", probe.body);
    api.shutdown().await;
}

#[tokio::test]
async fn an_account_another_process_just_added_is_found_at_once() {
    let api = Api::start().await;
    // The CLI's way: the file and the secret store change, the server's hot reload has not run yet.
    let id = common::add_account(&api.h.config_path, "from-cli", "sk-ant-api03-from-cli", &[]);
    let view = api.get("/accounts/{id}", Some(&id)).await;
    assert_eq!(view.ok(200)["name"], "from-cli", "{:#}", view.body);
    assert_eq!(view.body["state"], "active");

    let other = common::add_account(&api.h.config_path, "also-from-cli", "sk-ant-api03-also", &[]);
    api.delete("/accounts/{id}", Some(&other)).await.ok(204);
    assert_eq!(api.secret(&format!("account:{other}:api_key")), None);
    api.shutdown().await;
}
