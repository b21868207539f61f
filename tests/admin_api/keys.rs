//! `/client-keys…`: a created key works at once and is shown once; limits are checked and echoed; revoking locks
//! the key out at once.

use serde_json::{Value, json};
use sha2::Digest;

use crate::api::Api;

fn sha256_hex(key: &str) -> String {
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

#[tokio::test]
async fn a_created_key_works_at_once_and_echoes_its_limits() {
    let api = Api::start().await;
    assert_eq!(api.h.message(&[]).await.status(), 200, "open on loopback while there is no key");
    let limits = json!({
        "models": ["claude-sonnet-*"], "rpm": 60, "tokens_per_day": 100000, "budget_usd_month": 12.5,
        "accounts": ["primary"], "priority_tiers": [0], "expires": "2999-12-31",
    });
    let mut body = json!({"name": "ide"});
    body.as_object_mut().unwrap().extend(limits.as_object().unwrap().clone());
    let created = api.post("/client-keys", None, body).await;
    let created = created.ok(201).clone();
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("lgw-"), "{created}");
    assert_eq!(created["id"], created["client_key"]["id"]);
    assert_eq!(created["client_key"]["name"], "ide");
    assert_eq!(created["client_key"]["limits"], limits);
    assert!(key.starts_with(created["client_key"]["prefix"].as_str().unwrap()));

    assert_eq!(api.h.message(&[("x-api-key", key)]).await.status(), 200, "the key works when the API answered");
    assert_eq!(api.h.message(&[]).await.status(), 401, "and from then on a key is required");
    assert!(!api.config_text().contains(key), "only the hash is stored");
    api.shutdown().await;
}

#[tokio::test]
async fn invalid_limits_are_refused_naming_the_field() {
    let api = Api::start().await;
    api.post("/client-keys", None, json!({"name": "taken"})).await.ok(201);
    let cases = [
        (json!({"name": "k", "rpm": 0}), 400, "invalid_request", "rpm"),
        (json!({"name": "k", "rpm": "x"}), 400, "invalid_request", "rpm"),
        (json!({"name": "k", "tokens_per_day": 0}), 400, "invalid_request", "tokens_per_day"),
        (json!({"name": "k", "budget_usd_month": -1}), 400, "invalid_request", "budget_usd_month"),
        (json!({"name": "k", "expires": "tomorrow"}), 400, "invalid_request", "expires"),
        (json!({"name": "k", "accounts": ["nobody"]}), 400, "invalid_request", "accounts"),
        (json!({"name": "k", "priority_tiers": ["first"]}), 400, "invalid_request", "priority_tiers[0]"),
        (json!({"name": "k", "scopes": ["all"]}), 400, "invalid_request", "scopes"),
        (json!({"name": ""}), 400, "invalid_request", "name"),
        (json!({}), 400, "invalid_request", "name"),
        (json!({"name": "taken"}), 409, "conflict", "name"),
    ];
    let before = api.config_text();
    for (body, status, kind, field) in cases {
        let answer = api.post("/client-keys", None, body.clone()).await;
        assert_eq!(answer.status, status, "{body} → {:#}", answer.body);
        answer.error(status, kind, Some(field));
    }
    assert_eq!(api.config_text(), before, "nothing was added");
    api.shutdown().await;
}

#[tokio::test]
async fn keys_and_their_hashes_are_never_shown_again() {
    let api = Api::start().await;
    let mut keys = Vec::new();
    for name in ["ide", "ci"] {
        keys.push(
            api.post("/client-keys", None, json!({"name": name})).await.ok(201)["key"].as_str().unwrap().to_string(),
        );
    }
    let listed = api.get("/client-keys", None).await;
    let names: Vec<&Value> = listed.ok(200)["client_keys"].as_array().unwrap().iter().map(|k| &k["name"]).collect();
    assert_eq!(names, [&json!("ide"), &json!("ci")]);
    let config = api.get("/config", None).await;
    let config_keys = config.ok(200)["config"]["client_keys"].as_array().unwrap().clone();
    assert_eq!(config_keys.len(), 2);
    for body in [listed.body.to_string(), config.body.to_string()] {
        for key in &keys {
            assert!(!body.contains(key.as_str()), "a key was shown: {body}");
            assert!(!body.contains(&sha256_hex(key)), "a key's hash was shown: {body}");
        }
        assert!(!body.contains("sha256"), "{body}");
    }
    api.shutdown().await;
}

#[tokio::test]
async fn revoking_by_id_or_name_locks_the_key_out_at_once() {
    let api = Api::start().await;
    let created = api.post("/client-keys", None, json!({"name": "ide"})).await.ok(201).clone();
    let (ide_id, ide) = (created["id"].as_str().unwrap().to_string(), created["key"].as_str().unwrap().to_string());
    let ci = api.post("/client-keys", None, json!({"name": "ci"})).await.ok(201)["key"].as_str().unwrap().to_string();
    // A third key keeps keys required once the other two are gone.
    api.post("/client-keys", None, json!({"name": "keeper"})).await.ok(201);
    for key in [&ide, &ci] {
        assert_eq!(api.h.message(&[("x-api-key", key)]).await.status(), 200);
    }

    assert_eq!(api.delete("/client-keys/{id}", Some(&ide_id)).await.ok(204), &Value::Null);
    assert_eq!(api.h.message(&[("x-api-key", &ide)]).await.status(), 401, "revoked when the API answered");
    assert_eq!(api.h.message(&[("x-api-key", &ci)]).await.status(), 200, "the other key still works");
    api.delete("/client-keys/{id}", Some("ci")).await.ok(204);
    assert_eq!(api.h.message(&[("x-api-key", &ci)]).await.status(), 401);

    api.delete("/client-keys/{id}", Some(&ide_id)).await.error(404, "not_found", None);
    api.delete("/client-keys/{id}", Some("ci")).await.error(404, "not_found", None);
    let left = api.get("/client-keys", None).await;
    assert_eq!(left.ok(200)["client_keys"].as_array().unwrap().len(), 1, "{:#}", left.body);
    api.shutdown().await;
}
