//! Plain round robin across accounts, and config changes taking effect without a restart.

mod common;

use common::Harness;

#[tokio::test]
async fn round_robin_alternates_between_accounts() {
    let h = Harness::with(|p| {
        common::edit_config(p, |c| c.routing.session_affinity = false);
        common::add_account(p, "one", "sk-ant-one", &[]);
        common::add_account(p, "two", "sk-ant-two", &[]);
    })
    .await;
    for _ in 0..4 {
        assert_eq!(h.message(&[]).await.status(), 200);
    }
    let keys: Vec<String> =
        h.mock.requests().iter().map(|r| r.header("x-api-key").unwrap_or_default().to_string()).collect();
    assert_eq!(keys, ["sk-ant-one", "sk-ant-two", "sk-ant-one", "sk-ant-two"]);
    h.shutdown().await;
}

#[tokio::test]
async fn accounts_added_and_disabled_by_the_cli_take_effect_without_restart() {
    let h = Harness::with(|_| {}).await;
    assert_eq!(h.message(&[]).await.status(), 503);
    let id = common::add_account(&h.config_path, "late", "sk-ant-late", &[]);
    h.eventually("new account used", || async { h.message(&[]).await.status() == 200 }).await;
    h.manager().set_enabled(&id, false).unwrap();
    h.eventually("disabled account no longer used", || async { h.message(&[]).await.status() == 503 }).await;
    h.shutdown().await;
}

#[tokio::test]
async fn an_invalid_config_change_keeps_the_last_good_config() {
    let h = Harness::start().await;
    assert_eq!(h.message(&[]).await.status(), 200);
    let good = std::fs::read_to_string(&h.config_path).unwrap();
    std::fs::write(&h.config_path, good.replace("weight: 1", "weight: 0")).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    assert_eq!(h.message(&[]).await.status(), 200, "still serving with the last good config");
    std::fs::write(&h.config_path, "server: [unclosed").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    assert_eq!(h.message(&[]).await.status(), 200);
    h.shutdown().await;
}

#[tokio::test]
async fn an_emptied_config_file_keeps_the_accounts_serving() {
    // An editor or `>` redirection truncates before writing; a reload that caught the empty file would serve the
    // defaults (no accounts).
    let h = Harness::start().await;
    assert_eq!(h.message(&[]).await.status(), 200);
    std::fs::write(&h.config_path, "").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    assert_eq!(h.message(&[]).await.status(), 200, "still serving the account of the last good config");
    h.shutdown().await;
}

#[tokio::test]
async fn the_config_file_holds_no_secret_and_is_private() {
    let h = Harness::start().await;
    let text = std::fs::read_to_string(&h.config_path).unwrap();
    assert!(!text.contains(common::GOOD_KEY), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&h.config_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let runtime = std::fs::metadata(h.dir.path().join("runtime.json")).unwrap().permissions().mode() & 0o777;
        assert_eq!(runtime, 0o600);
    }
    h.shutdown().await;
}

#[test]
fn the_documented_example_config_is_valid_and_equals_the_defaults() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/config.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let parsed = llm_gateway::config::ConfigFile::new(&path).parse(&text).expect("configs/config.yaml parses");
    assert_eq!(parsed, llm_gateway::config::Config::default(), "configs/config.yaml must document the defaults");
}

#[tokio::test]
async fn a_reload_the_secret_store_fails_is_retried_until_the_removed_client_key_is_refused() {
    let (mut old, mut kept) = (String::new(), String::new());
    let h = Harness::with_test_store(|p| {
        common::add_account(p, "primary", common::GOOD_KEY, &[]);
        old = common::manager(p).add_client_key("old").unwrap();
        kept = common::manager(p).add_client_key("kept").unwrap();
    })
    .await;
    assert_eq!(h.message(&[("x-api-key", &old)]).await.status(), 200);

    // The reload reads the changed account's credential: the keychain times out twice before it answers.
    h.store.as_ref().unwrap().fail_next_gets(2);
    common::edit_config(&h.config_path, |c| {
        c.client_keys.retain(|k| k.name != "old");
        c.accounts[0].weight = 2;
    });
    h.eventually("the removed key is refused", || async { h.message(&[("x-api-key", &old)]).await.status() == 401 })
        .await;
    assert_eq!(h.message(&[("x-api-key", &kept)]).await.status(), 200);
    let status = h.status_json().await;
    let on_disk = llm_gateway::config::watch::text_sha256(&std::fs::read(&h.config_path).unwrap());
    assert_eq!(status["config"]["applied_sha256"], on_disk.as_str(), "{status}");
    assert!(status["config"]["pending"].is_null(), "{status}");
    h.shutdown().await;
}
