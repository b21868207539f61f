//! Hot reload and management operations together (`Gateway::reload`, `Gateway::apply_file_now` through
//! `Ops`): applies happen in the config file's order.

use crate::manage::NewApiKeyAccount;
use crate::secrets::Secret;

fn new_account(name: &str) -> NewApiKeyAccount {
    NewApiKeyAccount {
        key: Secret::new(format!("sk-ant-api03-{name}")),
        name: name.into(),
        weight: 1,
        priority: 0,
        models: vec![],
        base_url: None,
    }
}

/// The watcher hands over the version it read before a management operation wrote and applied a newer one
/// (a retry of a version that failed, or a reload waiting for the lock): the newer version stays in force.
#[tokio::test]
async fn a_version_read_before_a_newer_one_was_applied_does_not_replace_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, "server:\n  listen: 127.0.0.1:0\nsecrets:\n  backend: file\n").unwrap();
    let handle = super::start(super::StartOptions::new(&path)).await.unwrap();
    let ops = handle.ops();
    ops.add_api_key(new_account("first")).await.unwrap();
    let read_by_the_watcher = handle.gateway().config_file().load().unwrap();

    ops.add_api_key(new_account("second")).await.unwrap();
    handle.gateway().reload(read_by_the_watcher).await.unwrap();

    let names: Vec<String> = handle.gateway().live().accounts.iter().map(|a| a.name().to_string()).collect();
    assert_eq!(names, ["first", "second"]);
    assert_eq!(ops.account("second").await.unwrap().name, "second");
    handle.shutdown().await;
}

/// An editor's truncate-then-write caught half-way by a management operation's apply does not drop every
/// account.
#[tokio::test]
async fn an_emptied_file_is_not_applied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, "server:\n  listen: 127.0.0.1:0\nsecrets:\n  backend: file\n").unwrap();
    let handle = super::start(super::StartOptions::new(&path)).await.unwrap();
    handle.ops().add_api_key(new_account("first")).await.unwrap();
    std::fs::write(&path, "").unwrap();

    assert!(handle.gateway().apply_file_now().await.is_err(), "an empty file is refused");
    assert_eq!(handle.gateway().live().accounts.len(), 1, "the accounts in force stay");
    handle.shutdown().await;
}
