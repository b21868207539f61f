//! The default secret backend, the real OS keychain, end to end. Runs when LLM_GATEWAY_TEST_KEYCHAIN=1 (set by
//! scripts/test.sh inside a D-Bus session with an unlocked gnome-keyring), and must then pass.

mod common;

use common::Harness;

#[tokio::test]
async fn api_key_account_in_the_os_keychain_serves_requests_and_is_removed_with_the_account() {
    if std::env::var("LLM_GATEWAY_TEST_KEYCHAIN").as_deref() != Ok("1") {
        eprintln!("skipped: set LLM_GATEWAY_TEST_KEYCHAIN=1 inside a D-Bus session with an unlocked keyring");
        return;
    }
    let key = format!("sk-ant-api03-keychain-{}", uuid::Uuid::new_v4().simple());
    let mut account_id = String::new();
    let h = Harness::with(|p| {
        let text = std::fs::read_to_string(p).unwrap().replace("backend: file", "backend: keychain");
        std::fs::write(p, text).unwrap();
        account_id = common::add_account(p, "in-keychain", &key, &[]);
    })
    .await;
    assert!(!h.dir.path().join("secrets.enc").exists(), "the keychain answered, so nothing went to the file");
    assert_eq!(h.status_json().await["secrets_backend"], "keychain");
    assert_eq!(h.message(&[]).await.status(), 200);
    let sent = h.mock.requests().into_iter().find(|r| r.path == "/v1/messages").unwrap();
    assert_eq!(sent.header("x-api-key"), Some(key.as_str()));

    let store = h.manager().secrets().unwrap();
    let secret_id = format!("account:{account_id}:api_key");
    assert_eq!(store.get(&secret_id).unwrap().unwrap().expose(), key);
    h.manager().remove_account(&account_id).unwrap();
    assert!(store.get(&secret_id).unwrap().is_none(), "the credential leaves the keychain with the account");
    h.shutdown().await;
}
