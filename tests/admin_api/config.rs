//! `/config`, `/config/validate` and `/status`: read, validate without writing, apply (in force at once).

use serde_json::json;

use crate::api::Api;

#[tokio::test]
async fn the_config_is_read_with_every_section() {
    let api = Api::start().await;
    let doc = api.get("/config", None).await;
    let doc = doc.ok(200);
    assert_eq!(doc["path"], api.h.config_path.display().to_string());
    for section in ["server", "upstream", "routing", "oauth", "secrets", "accounts", "client_keys"] {
        assert!(doc["config"].get(section).is_some(), "{section} missing: {doc:#}");
    }
    assert_eq!(doc["config"]["accounts"][0]["name"], "primary");
    assert!(doc.get("restart_required").is_none(), "{doc:#}");
    api.shutdown().await;
}

#[tokio::test]
async fn validate_accepts_a_good_change_without_writing_it() {
    let api = Api::start().await;
    let before = api.config_text();
    let valid =
        api.post("/config/validate", None, json!({"routing": {"strategy": "weighted", "max_attempts": 5}})).await;
    let valid = valid.ok(200);
    assert_eq!(valid["config"]["routing"]["strategy"], "weighted", "the configuration the change would produce");
    assert_eq!(valid["config"]["routing"]["max_attempts"], 5);
    assert_eq!(api.config_text(), before, "validation writes nothing");
    assert_ne!(api.get("/status", None).await.ok(200)["strategy"], "weighted");
    let restart = api.post("/config/validate", None, json!({"server": {"listen": "127.0.0.1:1"}})).await;
    assert_eq!(restart.ok(200)["restart_required"], json!(["server.listen"]));
    api.shutdown().await;
}

#[tokio::test]
async fn invalid_changes_are_refused_naming_the_key() {
    let api = Api::start().await;
    let before = api.config_text();
    let cases = [
        (json!({"routing": {"strategy": "fastest"}}), "routing.strategy"),
        (json!({"routing": {"max_attempts": 0}}), "routing.max_attempts"),
        (json!({"routing": {"max_attempts": "many"}}), "routing.max_attempts"),
        (json!({"server": {"listen": "nowhere"}}), "server.listen"),
        (json!({"accounts": []}), "accounts"),
        (json!({"client_keys": []}), "client_keys"),
        (json!({"secrets": {"backend": "keychain"}}), "secrets"),
        (json!({"telemetry": {"on": true}}), "telemetry"),
        (json!({"routing": {"fastest": true}}), "routing.fastest"),
        (json!({}), "body"),
        (json!(["routing"]), "body"),
    ];
    for route in ["/config/validate", "/config"] {
        let method = if route == "/config" { "PATCH" } else { "POST" };
        for (body, field) in &cases {
            let answer = api.call(method, route, None, Some(body.clone())).await;
            assert_eq!(answer.status, 400, "{method} {route} {body} → {:#}", answer.body);
            let message = answer.error(400, "invalid_request", Some(field));
            if *field != "body" {
                assert!(message.contains(field.split('.').next_back().unwrap()), "{message}");
            }
        }
    }
    assert_eq!(api.config_text(), before, "a refused change writes nothing");
    api.shutdown().await;
}

#[tokio::test]
async fn a_change_is_written_and_in_force_when_it_answers() {
    let api = Api::start().await;
    let applied = api.patch("/config", None, json!({"routing": {"strategy": "weighted", "max_attempts": 4}})).await;
    assert_eq!(applied.ok(200)["config"]["routing"]["strategy"], "weighted");
    assert!(applied.body.get("restart_required").is_none(), "{:#}", applied.body);
    let text = api.config_text();
    assert!(text.contains("strategy: weighted") && text.contains("max_attempts: 4"), "{text}");
    assert_eq!(api.get("/status", None).await.ok(200)["strategy"], "weighted", "in force at once");
    assert_eq!(api.get("/config", None).await.ok(200)["config"]["routing"]["max_attempts"], 4);

    // null puts a key back to its default.
    let reset = api.patch("/config", None, json!({"routing": {"strategy": null}})).await;
    assert_eq!(reset.ok(200)["config"]["routing"]["strategy"], "round_robin");
    assert_eq!(reset.body["config"]["routing"]["max_attempts"], 4, "other keys stay");
    assert_eq!(api.get("/status", None).await.ok(200)["strategy"], "round_robin");

    let listen = api.patch("/config", None, json!({"server": {"listen": "127.0.0.1:1"}})).await;
    assert_eq!(listen.ok(200)["restart_required"], json!(["server.listen"]));
    assert!(api.config_text().contains("127.0.0.1:1"));
    assert_eq!(api.h.message(&[]).await.status(), 200, "still served where it listens until a restart");
    api.shutdown().await;
}

#[tokio::test]
async fn max_attempts_changed_through_the_api_bounds_the_next_request() {
    let api = Api::with(|path| {
        crate::common::add_account(path, "bad-a", "sk-ant-overloaded-a", &[]);
        crate::common::add_account(path, "bad-b", "sk-ant-overloaded-b", &[]);
        crate::common::add_account(path, "good", crate::common::GOOD_KEY, &[]);
    })
    .await;
    api.patch("/config", None, json!({"routing": {"max_attempts": 1}})).await.ok(200);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        api.h.mock.clear_requests();
        statuses.push(api.h.message(&[]).await.status().as_u16());
        let sent = api.h.mock.requests().into_iter().filter(|r| r.path == "/v1/messages").count();
        assert_eq!(sent, 1, "one attempt per request");
    }
    assert!(
        statuses.iter().any(|s| *s != 200),
        "without failover a failing account's answer reaches the client: {statuses:?}"
    );
    api.shutdown().await;
}

#[tokio::test]
async fn status_reports_the_running_gateway() {
    let api = Api::start().await;
    // A request on its own claude.ai login (passed through, shown under a hash) and the count by client kind: both
    // in the answer, which is checked against the documented schema.
    let own_login = [("authorization", "Bearer sk-ant-oat01-status-check"), ("anthropic-beta", "oauth-2025-04-20")];
    assert_eq!(api.h.message(&own_login).await.status(), 200);
    let status = api.get("/status", None).await;
    let shown = status.ok(200);
    assert!(shown["own_logins"][0]["name"].as_str().unwrap().starts_with("Claude Code login ·"), "{shown}");
    assert_eq!(shown["clients_seen"]["anthropic_sdk"], 1, "{shown}");
    assert!(!shown.to_string().contains("status-check"), "never the credential");
    let status = status.ok(200);
    assert_eq!(status["source"], "server");
    assert_eq!(status["url"], api.h.url.as_str());
    assert_eq!(status["usable_accounts"], 1);
    assert_eq!(status["accounts"][0]["name"], "primary");
    assert_eq!(status["secrets_backend"], "file");
    api.shutdown().await;
}
