//! `/claude-code[/setup|/restore]` in a temporary home (the gateway's Claude Code environment,
//! `StartOptions::claude_code_env`): status, setup that puts its key in force at once, exact restore.

use crate::api::{Api, Auth, Body};

fn settings_path(api: &Api) -> std::path::PathBuf {
    api.home.join(".claude").join("settings.json")
}

#[tokio::test]
async fn setup_points_claude_code_at_this_gateway_and_restore_puts_the_file_back() {
    let api = Api::start().await;
    let settings = settings_path(&api);
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    let original = "{\n  \"theme\": \"dark\",\n  \"env\": {\"MY_VAR\": \"1\"}\n}\n";
    std::fs::write(&settings, original).unwrap();

    let before = api.get("/claude-code", None).await;
    assert_eq!(before.ok(200)["uses_gateway"], false, "{:#}", before.body);
    assert_eq!(before.body["gateway_url"], api.h.url.as_str());

    let setup = api.action("/claude-code/setup", None).await;
    let report = setup.ok(200);
    assert_eq!(report["settings_path"], settings.display().to_string());
    assert_eq!(report["mode"], "api_key_helper");
    assert_eq!(report["status"]["uses_gateway"], true);
    let keys: Vec<&str> = report["changes"].as_array().unwrap().iter().map(|c| c["key"].as_str().unwrap()).collect();
    assert!(keys.contains(&"env.ANTHROPIC_BASE_URL") && keys.contains(&"apiKeyHelper"), "{keys:?}");
    let written = std::fs::read_to_string(&settings).unwrap();
    assert!(written.contains(&api.h.url) && written.contains("MY_VAR"), "{written}");

    // The dedicated key setup made is accepted at once.
    let config = llm_gateway::config::ConfigFile::new(&api.h.config_path);
    let key = llm_gateway::claude_code::api_key(&config, None).unwrap();
    assert_eq!(api.h.message(&[("x-llm-gateway-key", key.expose())]).await.status(), 200);

    let after = api.get("/claude-code", None).await;
    assert_eq!(after.ok(200)["uses_gateway"], true, "{:#}", after.body);
    assert_eq!(after.body["setup"]["mode"], "api_key_helper");

    let restored = api.action("/claude-code/restore", None).await;
    assert_eq!(restored.ok(200)["had_setup"], true, "{:#}", restored.body);
    assert_eq!(restored.body["exact"], true);
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), original, "byte for byte");
    let again = api.action("/claude-code/restore", None).await;
    assert_eq!(again.ok(200)["had_setup"], false, "nothing left to restore");
    api.shutdown().await;
}

#[tokio::test]
async fn status_includes_a_projects_settings_when_asked() {
    let api = Api::start().await;
    let project = tempfile::tempdir().unwrap();
    let dir = project.path().join(".claude");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("settings.json"), r#"{"env": {"ANTHROPIC_BASE_URL": "https://elsewhere.example"}}"#)
        .unwrap();
    api.action("/claude-code/setup", None).await.ok(200);

    let query = format!("?project={}", project.path().display());
    let status = api.send("GET", "/claude-code", None, &query, Body::None, Auth::Admin).await;
    let status = status.ok(200);
    assert_eq!(status["uses_gateway"], false, "the project's base URL wins: {status:#}");
    assert_eq!(status["base_url"]["source"]["scope"], "project");
    assert_eq!(status["base_url"]["shown"], "https://elsewhere.example");
    let without = api.get("/claude-code", None).await;
    assert_eq!(without.ok(200)["uses_gateway"], true);
    api.shutdown().await;
}

#[tokio::test]
async fn setup_refuses_a_settings_file_it_cannot_read_and_leaves_it_alone() {
    let api = Api::start().await;
    let settings = settings_path(&api);
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(&settings, "{\"model\": \"opus\",").unwrap();

    let answer = api.action("/claude-code/setup", None).await;
    let message = answer.error(409, "conflict", None);
    assert!(message.contains("not valid JSON") && message.contains(&settings.display().to_string()), "{message}");
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), "{\"model\": \"opus\",");
    api.shutdown().await;
}
