//! Pause and resume (`GatewayHandle::pause`/`resume`, the desktop tray's Pause): the port is free while paused,
//! the same address serves again after resume, and the gateway's state lives through it: cooldowns, session
//! affinity, a stream in flight.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Harness;
use llm_gateway::accounts::AccountState;
use llm_gateway::clock::{Clock, ManualClock, SystemClock};

fn gateway(h: &mut Harness) -> &mut llm_gateway::GatewayHandle {
    h.gateway.as_mut().expect("running")
}

/// A client without a connection pool: each request opens a connection, so "refused" means the listener.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).timeout(Duration::from_secs(10)).build().unwrap()
}

async fn health(h: &Harness) -> Result<u16, reqwest::Error> {
    fresh_client().get(format!("{}/health", h.url)).send().await.map(|r| r.status().as_u16())
}

fn keys_used(h: &Harness) -> Vec<String> {
    h.mock
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/messages")
        .filter_map(|r| r.header("x-api-key").map(str::to_string))
        .collect()
}

fn state_of(h: &Harness, name: &str) -> (AccountState, Option<String>) {
    let report = h.gateway.as_ref().unwrap().gateway().status_now();
    let account = report.accounts.into_iter().find(|a| a.name == name).expect("account");
    (account.state, account.cooldown_until)
}

#[tokio::test]
async fn pause_frees_the_port_and_resume_serves_the_same_address_with_cooldowns_kept() {
    let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
    let c: Arc<dyn Clock> = clock.clone();
    let mut h = Harness::with_clock("", "", Some(c), |p| {
        common::add_account_at(p, "limited", "sk-ant-ratelimited-a", None, 0);
        common::add_account_at(p, "spare", "sk-ant-spare", None, 1);
    })
    .await;
    let addr = gateway(&mut h).addr();
    assert_eq!(h.message(&[]).await.status(), 200, "failed over to the spare account");
    let (state, until) = state_of(&h, "limited");
    assert_eq!(state, AccountState::CoolingDown);
    assert!(until.is_some());

    gateway(&mut h).pause().await;
    assert!(gateway(&mut h).is_paused());
    drop(std::net::TcpListener::bind(addr).expect("the port is free while paused"));
    assert!(health(&h).await.is_err(), "a paused gateway refuses connections");
    assert_eq!(state_of(&h, "limited"), (AccountState::CoolingDown, until.clone()), "the bench is kept");

    gateway(&mut h).resume().await.expect("resumes on the same address");
    assert!(!gateway(&mut h).is_paused());
    assert_eq!(gateway(&mut h).addr(), addr);
    assert_eq!(health(&h).await.unwrap(), 200);
    let before = keys_used(&h).len();
    assert_eq!(h.message(&[]).await.status(), 200);
    assert_eq!(keys_used(&h)[before..], ["sk-ant-spare"], "the benched account was not tried again");
    let status = h.status_json().await;
    let limited = status["accounts"].as_array().unwrap().iter().find(|a| a["name"] == "limited").unwrap().clone();
    assert_eq!(limited["state"], "cooling_down", "{status}");
    assert_eq!(limited["cooldown_until"].as_str(), until.as_deref(), "the same bench, not a new one");
    h.shutdown().await;
}

#[tokio::test]
async fn session_affinity_and_the_round_robin_position_survive_a_pause() {
    let mut h = Harness::with(|p| {
        common::add_account_at(p, "a", "sk-ant-first", None, 0);
        common::add_account_at(p, "b", "sk-ant-second", None, 0);
    })
    .await;
    for session in ["session-1", "session-2"] {
        assert_eq!(h.message(&[("x-claude-code-session-id", session)]).await.status(), 200);
    }
    let first = keys_used(&h);
    assert_ne!(first[0], first[1], "two sessions were spread over both accounts: {first:?}");

    gateway(&mut h).pause().await;
    gateway(&mut h).resume().await.unwrap();

    // The second session first: a gateway that had forgotten its sessions would start the round robin over.
    for session in ["session-2", "session-1"] {
        assert_eq!(h.message(&[("x-claude-code-session-id", session)]).await.status(), 200);
    }
    let after = keys_used(&h);
    assert_eq!(after[2..], [first[1].clone(), first[0].clone()], "each session kept its account");
    h.shutdown().await;
}

#[tokio::test]
async fn a_stream_in_flight_when_paused_runs_to_its_end() {
    let mut h = Harness::start().await;
    let response = h
        .http
        .post(format!("{}/v1/messages", h.url))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .header("x-mock-event-interval-ms", "100")
        .header("x-mock-text", "one two three four five")
        .body(common::simple_body(true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    gateway(&mut h).pause().await;
    assert!(health(&h).await.is_err(), "no new connection while paused");
    let body = tokio::time::timeout(Duration::from_secs(30), response.text()).await.expect("the stream ends").unwrap();
    assert!(body.contains("event: message_stop"), "the stream ran to its end: {body}");
    h.shutdown().await;
}

#[tokio::test]
async fn resume_fails_while_another_program_holds_the_port_and_works_once_it_is_free() {
    let mut h = Harness::start().await;
    let addr = gateway(&mut h).addr();
    gateway(&mut h).pause().await;
    let squatter = std::net::TcpListener::bind(addr).unwrap();

    let err = gateway(&mut h).resume().await.unwrap_err();
    assert!(matches!(err, llm_gateway::StartError::Bind { addr: a, .. } if a == addr), "{err}");
    assert!(gateway(&mut h).is_paused(), "still paused after a failed resume");

    drop(squatter);
    gateway(&mut h).resume().await.expect("the port is free again");
    assert_eq!(health(&h).await.unwrap(), 200);
    assert_eq!(h.message(&[]).await.status(), 200);
    h.shutdown().await;
}
