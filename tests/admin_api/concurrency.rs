//! Changes through the admin API and the CLI at the same time, against one config file: none is lost.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::Api;

const BIN: &str = env!("CARGO_BIN_EXE_llm-gateway");
const EACH: usize = 25;

/// `llm-gateway add-api-key` as a script runs it; returns the new account's id.
fn cli_add(config: std::path::PathBuf, name: String, key: String) -> String {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["add-api-key", "--key", &key, "--name", &name])
        .env_remove("LLM_GATEWAY_MASTER_KEY")
        .env_remove("LLM_GATEWAY_LISTEN")
        .env_remove("LLM_GATEWAY_UPSTREAM_URL")
        .output()
        .expect("the CLI runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{name}: exit {:?}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    stdout.lines().last().unwrap_or_default().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_account_creations_through_the_cli_and_the_admin_api_lose_none() {
    let api = Api::with(|_| {}).await;
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    let mut cli = Vec::new();
    for i in 0..EACH {
        let (name, key) = (format!("cli-{i}"), format!("sk-ant-api03-cli-{i}"));
        expected.insert(name.clone(), key.clone());
        let config = api.h.config_path.clone();
        cli.push(tokio::task::spawn_blocking(move || cli_add(config, name, key)));
    }
    let mut through_api = Vec::new();
    for i in 0..EACH {
        let (name, key) = (format!("api-{i}"), format!("sk-ant-api03-api-{i}"));
        expected.insert(name.clone(), key.clone());
        let body = json!({"kind": "api_key", "name": name, "key": key});
        through_api.push(api.post("/accounts", None, body));
    }
    let (answers, cli_ids) = tokio::join!(futures_util::future::join_all(through_api), async {
        let mut ids = Vec::new();
        for task in cli {
            ids.push(task.await.expect("CLI task"));
        }
        ids
    });
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for answer in &answers {
        let view = answer.ok(201);
        ids.insert(view["name"].as_str().unwrap().to_string(), view["id"].as_str().unwrap().to_string());
    }
    for (i, id) in cli_ids.into_iter().enumerate() {
        assert!(id.starts_with("acc_"), "{id}");
        ids.insert(format!("cli-{i}"), id);
    }
    assert_eq!(ids.len(), 2 * EACH);

    // Every account is in the file...
    let config = llm_gateway::config::ConfigFile::new(&api.h.config_path).load().unwrap();
    let in_file: BTreeMap<String, String> = config.accounts.iter().map(|a| (a.name.clone(), a.id.clone())).collect();
    assert_eq!(in_file, ids, "the config file has every account once");
    // ...with its own key in the secret store...
    for (name, id) in &ids {
        assert_eq!(api.secret(&format!("account:{id}:api_key")).as_ref(), expected.get(name), "{name}");
    }
    // ...and the gateway serves all of them (the CLI's arrive by hot reload).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let listed = api.get("/accounts", None).await;
        let accounts: Vec<Value> = listed.ok(200)["accounts"].as_array().unwrap().clone();
        let active: BTreeMap<String, String> = accounts
            .iter()
            .filter(|a| a["state"] == "active")
            .map(|a| (a["name"].as_str().unwrap().to_string(), a["id"].as_str().unwrap().to_string()))
            .collect();
        if active == ids {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "GET /accounts after 30 s: {accounts:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.shutdown().await;
}
