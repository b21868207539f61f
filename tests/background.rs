//! The gateway on a thread of its own (what the desktop app runs): it starts, answers, runs operations for
//! callers on other runtimes or plain threads, and stops completely.

mod common;

use llm_gateway::{BackgroundGateway, StartOptions};

#[test]
fn a_background_gateway_serves_runs_operations_from_any_thread_and_frees_its_port() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(dir.path(), "http://127.0.0.1:9", "", "");
    let gateway = BackgroundGateway::spawn(StartOptions::new(&path)).expect("starts");
    let addr = gateway.addr();

    // A plain thread: blocking call.
    let id = gateway
        .call_blocking(|ops| async move {
            let new = llm_gateway::manage::NewApiKeyAccount {
                key: llm_gateway::secrets::Secret::new("sk-ant-background"),
                name: "bg".into(),
                weight: 1,
                priority: 0,
                models: vec![],
                base_url: None,
            };
            ops.add_api_key(new).await.map(|a| a.id)
        })
        .expect("operation runs on the gateway's runtime");

    // Another runtime (as Tauri's): the change is in force, seen through the gateway's own HTTP API.
    let other = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let names = other.block_on(async {
        let accounts = gateway.call(|ops| async move { ops.accounts().await }).await.unwrap();
        let ready: serde_json::Value =
            reqwest::get(format!("http://{addr}/ready")).await.unwrap().json().await.unwrap();
        (accounts.into_iter().map(|a| a.id).collect::<Vec<_>>(), ready)
    });
    assert_eq!(names.0, [id]);
    assert_eq!(names.1["accounts"], 1, "{}", names.1);

    gateway.shutdown();
    std::net::TcpListener::bind(addr).expect("the port is free once shutdown returns");
}

#[test]
fn a_background_gateway_that_cannot_start_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(dir.path(), "http://127.0.0.1:9", "", "");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let options = StartOptions { listen: Some(busy.local_addr().unwrap().to_string()), ..StartOptions::new(&path) };
    let err = BackgroundGateway::spawn(options).unwrap_err();
    assert!(err.to_string().contains("cannot listen"), "{err}");
}
