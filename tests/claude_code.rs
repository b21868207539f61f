//! `claude-code setup` against a running gateway: the dedicated key it makes is accepted (in all three headers,
//! never forwarded upstream) without closing the loopback-open mode; and the CLI as users call it.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use common::{Harness, add_account, error_of};
use llm_gateway::claude_code::{self, Inputs, SetupContext};
use llm_gateway::config::ConfigFile;

const BIN: &str = env!("CARGO_BIN_EXE_llm-gateway");

fn inputs(config: &Path, home: &Path) -> Inputs {
    let mut inputs = Inputs::for_config(&ConfigFile::new(config), None, BTreeMap::new()).unwrap();
    inputs.home = home.to_path_buf();
    inputs.managed_dir = None;
    inputs
}

/// Runs `setup` for a fresh home beside the config and returns the dedicated key it made.
fn setup_dedicated_key(config: &Path) -> String {
    let home = config.parent().unwrap().join("home");
    let ctx = SetupContext { config: ConfigFile::new(config), secrets: None, helper_program: BIN.into() };
    claude_code::setup(&inputs(config, &home), &ctx).expect("setup");
    claude_code::api_key(&ConfigFile::new(config), None).expect("dedicated key").expose().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claude_code_key_leaves_a_loopback_gateway_open_and_works_once_keys_are_required() {
    let mut key = String::new();
    let h = Harness::with(|path| {
        add_account(path, "primary", common::GOOD_KEY, &[]);
        key = setup_dedicated_key(path);
    })
    .await;

    assert_eq!(h.message(&[]).await.status(), 200, "a dedicated key alone does not close the open mode");

    h.manager().add_client_key("laptop").unwrap();
    h.eventually("keys required after reload", || async { h.message(&[]).await.status() == 401 }).await;
    let bearer = format!("Bearer {key}");
    for header in [("x-llm-gateway-key", key.as_str()), ("x-api-key", &key), ("authorization", &bearer)] {
        assert_eq!(h.message(&[header]).await.status(), 200, "{}", header.0);
    }
    // Claude Code keeping its own login sends its token in Authorization (with its oauth beta) and the gateway key
    // beside it: the token is forwarded (issue #13), the gateway key is not.
    let own_login = [
        ("authorization", "Bearer sk-ant-oat01-not-a-gateway-key"),
        ("anthropic-beta", "oauth-2025-04-20"),
        ("x-llm-gateway-key", key.as_str()),
    ];
    assert_eq!(h.message(&own_login).await.status(), 200);
    let forwarded = h.mock.requests().into_iter().rev().find(|r| r.path == "/v1/messages").unwrap();
    assert_eq!(forwarded.header("authorization"), Some("Bearer sk-ant-oat01-not-a-gateway-key"));
    let message = error_of(h.message(&[("x-llm-gateway-key", "lgw-wrong")]).await, 401, "authentication_error").await;
    assert_eq!(message, "invalid gateway key");
    for request in h.mock.requests() {
        for (name, value) in &request.headers {
            assert!(!value.contains(&key), "the gateway key went upstream in {name}");
            assert_ne!(name.as_str(), "x-llm-gateway-key");
        }
    }
    h.shutdown().await;
}

#[tokio::test]
async fn a_public_listen_with_only_the_claude_code_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(dir.path(), "http://127.0.0.1:9", "", "");
    setup_dedicated_key(&path);

    let err = llm_gateway::start(llm_gateway::StartOptions {
        config_path: path,
        listen: Some("0.0.0.0:0".into()),
        ..Default::default()
    })
    .await
    .unwrap_err();

    assert!(err.to_string().contains("add-client-key"), "{err}");
}

fn cli(config: &Path, home: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("claude-code")
        .args(args)
        .env("HOME", home)
        .env("USERPROFILE", home)
        .env_remove("CLAUDE_CONFIG_DIR")
        .env_remove("LLM_GATEWAY_MASTER_KEY")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_AUTH_TOKEN")
        .env_remove("CLAUDE_CODE_OAUTH_TOKEN")
        .current_dir(home)
        .output()
        .expect("binary runs")
}

#[test]
fn the_cli_refuses_an_invalid_settings_file_with_a_clear_error_and_a_failure_status() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), "http://127.0.0.1:9", "", "");
    let home = dir.path().join("home");
    let settings = home.join(".claude").join("settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(&settings, "{\"model\": \"opus\",}").unwrap();

    let out = cli(&config, &home, &["setup"]);

    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&settings.display().to_string()) && stderr.contains("not valid JSON"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), "{\"model\": \"opus\",}");
}

#[test]
fn the_cli_sets_up_prints_the_key_for_the_helper_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), "http://127.0.0.1:9", "", "");
    let home = dir.path().join("home");
    let settings = home.join(".claude").join("settings.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    let original = "{\n  \"statusLine\": {\"type\": \"command\", \"command\": \"echo hi\"}\n}\n";
    std::fs::write(&settings, original).unwrap();

    let out = cli(&config, &home, &["setup", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(report["mode"], "api_key_helper");
    assert_eq!(report["status"]["uses_gateway"], true);

    // The helper command, run through the shell as Claude Code does, prints the key the gateway accepts.
    let written: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&settings).unwrap()).unwrap();
    let helper = written["apiKeyHelper"].as_str().unwrap();
    let printed = Command::new("sh").arg("-c").arg(helper).env_remove("LLM_GATEWAY_MASTER_KEY").output().unwrap();
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    let key = String::from_utf8(printed.stdout).unwrap().trim().to_string();
    assert!(key.starts_with("lgw-"), "{key}");
    let stored = &ConfigFile::new(&config).load().unwrap().client_keys[0];
    assert_eq!(stored.sha256, hex::encode(llm_gateway::secrets::keys::hash_key(&key)));

    let status = cli(&config, &home, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success() && text.contains("uses this gateway"), "{text}");
    assert!(!text.contains(&key), "status never prints the key: {text}");

    let out = cli(&config, &home, &["restore"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("byte for byte"));
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), original);
}
