//! The gateway's events (issue #11): account states as they change (a bench within 100 ms of the answer that
//! caused it, its end without any request, a rejected credential, disable/enable), reloads and rejected configs,
//! client keys created and revoked through the file, OAuth logins, a lagging subscriber, and the admin API's
//! Server-Sent Events stream (framing, authentication, shutdown with a stream open).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Harness;
use futures_util::StreamExt;
use llm_gateway::accounts::AccountState;
use llm_gateway::clock::{Clock, ManualClock, SystemClock};
use llm_gateway::usage::{ClientKind, RequestRecord, Route};
use llm_gateway::{Event, EventKind};
use mock_upstream::OAuthMockConfig;
use tokio::sync::mpsc;

/// How long a test waits for an event it expects (generous: machines under load are slow, not wrong).
const PATIENCE: Duration = Duration::from_secs(10);

/// A subscriber running in its own task, stamping each event with the instant it arrived.
struct Events {
    received: mpsc::UnboundedReceiver<(Instant, Event)>,
}

impl Events {
    fn follow(h: &Harness) -> Self {
        let mut subscription = h.gateway.as_ref().expect("running").subscribe();
        let (tx, received) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(event) = subscription.recv().await {
                if tx.send((Instant::now(), event)).is_err() {
                    return;
                }
            }
        });
        Self { received }
    }

    /// The first event `wanted` accepts (others are skipped), with the instant it arrived.
    async fn wait_for(&mut self, what: &str, wanted: impl Fn(&EventKind) -> bool) -> (Instant, Event) {
        let found = tokio::time::timeout(PATIENCE, async {
            loop {
                let (at, event) = self.received.recv().await.expect("the subscription is open");
                if wanted(&event.kind) {
                    return (at, event);
                }
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("no {what} event within {PATIENCE:?}"))
    }

    /// The next `account_state` event for the account named `name` in state `state`.
    async fn state(&mut self, name: &str, state: AccountState) -> (Instant, Event) {
        self.wait_for(
            &format!("{name}: {}", state.as_str()),
            |k| matches!(k, EventKind::AccountState { name: n, state: s, .. } if n == name && *s == state),
        )
        .await
    }
}

fn until_of(event: &Event) -> Option<u64> {
    match &event.kind {
        EventKind::AccountState { until_ms, .. } => *until_ms,
        other => panic!("not an account state: {other:?}"),
    }
}

fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(SystemClock.now_ms()))
}

/// An account the mock rate-limits (429 with `retry-after: 30` and exhausted limits resetting in 30 s), and a
/// spare one in a lower tier, on a manual clock.
async fn rate_limited_and_spare(clock: &Arc<ManualClock>) -> Harness {
    let c: Arc<dyn Clock> = clock.clone();
    Harness::with_clock("", "", Some(c), |p| {
        common::add_account_at(p, "limited", "sk-ant-ratelimited-a", None, 0);
        common::add_account_at(p, "spare", "sk-ant-spare", None, 1);
    })
    .await
}

#[tokio::test]
async fn a_rate_limited_account_reaches_a_subscriber_as_cooling_down_within_100_ms_of_the_answer() {
    let clock = manual_clock();
    let h = rate_limited_and_spare(&clock).await;
    let mut events = Events::follow(&h);
    let sent = Instant::now();
    let response = h.message(&[]).await;
    let answered = Instant::now();
    assert_eq!(response.status(), 200, "failed over to the spare account");

    let (arrived, event) = events.state("limited", AccountState::CoolingDown).await;
    let until = until_of(&event).expect("a cooldown says when it ends");
    let expected = clock.now_ms() + 30_000;
    assert!(until.abs_diff(expected) <= 1_000, "bench until the mock's reset: {until} vs {expected}");
    // The bench is recorded before the failover's answer goes back, so the event normally arrives before the
    // answer does; `after_answer` is what a user waiting on both sees, `since_sent` bounds the real latency.
    let after_answer = arrived.saturating_duration_since(answered);
    let since_sent = arrived.duration_since(sent);
    eprintln!("account_state latency: {after_answer:?} after the answer, {since_sent:?} after the request was sent");
    assert!(after_answer <= Duration::from_millis(100), "the event came {after_answer:?} after the answer");
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["type"], "account_state");
    assert_eq!(json["state"], "cooling_down");
    assert!(json["until"].as_str().is_some_and(|u| u.ends_with('Z')), "{json}");
    h.shutdown().await;
}

#[tokio::test]
async fn the_end_of_a_bench_is_announced_as_active_when_the_clock_passes_it_without_any_request() {
    let clock = manual_clock();
    let h = rate_limited_and_spare(&clock).await;
    let mut events = Events::follow(&h);
    assert_eq!(h.message(&[]).await.status(), 200);
    let (_, benched) = events.state("limited", AccountState::CoolingDown).await;
    let until = until_of(&benched).unwrap();
    let requests = h.mock.requests().len();

    // The manual clock tells the monitor it moved; no request is made.
    clock.set(until);
    let (_, back) = events.state("limited", AccountState::Active).await;
    assert!(back.time_ms >= until, "announced at the bench's end, not before");
    assert_eq!(until_of(&back), None);
    assert_eq!(h.mock.requests().len(), requests, "no request was needed to notice");
    h.shutdown().await;
}

#[tokio::test]
async fn a_cooldown_running_out_in_real_time_is_announced_without_any_request() {
    let h = Harness::with(|p| {
        common::edit_config(p, |c| c.routing.overloaded_cooldown_secs = 0.3);
        common::add_account_at(p, "busy", "sk-ant-overloaded-a", None, 0);
        common::add_account_at(p, "spare", "sk-ant-spare", None, 1);
    })
    .await;
    let mut events = Events::follow(&h);
    assert_eq!(h.message(&[]).await.status(), 200);
    let (_, benched) = events.state("busy", AccountState::CoolingDown).await;
    let until = until_of(&benched).unwrap();
    let requests = h.mock.requests().len();
    let (_, back) = events.state("busy", AccountState::Active).await;
    assert!(back.time_ms >= until, "active at {} before the bench ended at {until}", back.time_ms);
    assert_eq!(h.mock.requests().len(), requests, "the monitor's own timer noticed, not a request");
    h.shutdown().await;
}

#[tokio::test]
async fn a_rejected_credential_is_announced_as_error_with_the_upstreams_message() {
    let h = Harness::with(|p| {
        common::add_account_at(p, "revoked", "sk-ant-invalid-key", None, 0);
        common::add_account_at(p, "spare", "sk-ant-spare", None, 1);
    })
    .await;
    let mut events = Events::follow(&h);
    assert_eq!(h.message(&[]).await.status(), 200);
    let (_, event) = events.state("revoked", AccountState::Error).await;
    let EventKind::AccountState { message, account_id, .. } = &event.kind else { unreachable!() };
    assert!(message.as_deref().is_some_and(|m| m.contains("invalid x-api-key")), "{message:?}");
    assert!(account_id.starts_with("acc_"), "{account_id}");
    h.shutdown().await;
}

#[tokio::test]
async fn disabling_and_enabling_in_the_config_file_announce_the_reload_and_the_state() {
    let h = Harness::start().await;
    let mut events = Events::follow(&h);
    common::edit_config(&h.config_path, |c| c.accounts[0].enabled = false);
    events
        .wait_for("config_reloaded", |k| matches!(k, EventKind::ConfigReloaded { accounts: 1, client_keys: 0 }))
        .await;
    events.state("primary", AccountState::Disabled).await;
    common::edit_config(&h.config_path, |c| c.accounts[0].enabled = true);
    events.state("primary", AccountState::Active).await;
    h.shutdown().await;
}

#[tokio::test]
async fn client_keys_added_and_removed_by_the_cli_are_announced_with_their_id() {
    let h = Harness::start().await;
    let mut events = Events::follow(&h);
    h.manager().add_client_key("ci").unwrap();
    let config = llm_gateway::config::ConfigFile::new(&h.config_path).load().unwrap();
    let stored = config.client_keys.into_iter().find(|k| k.name == "ci").unwrap();
    let id = stored.id();
    assert_eq!(id, format!("key_{}", &stored.sha256[..12]));
    let (_, created) = events.wait_for("client_key_created", |k| matches!(k, EventKind::ClientKeyCreated { .. })).await;
    assert_eq!(created.kind, EventKind::ClientKeyCreated { id: id.clone(), name: "ci".into() });

    h.manager().revoke_client_key("ci").unwrap();
    let (_, revoked) = events.wait_for("client_key_revoked", |k| matches!(k, EventKind::ClientKeyRevoked { .. })).await;
    assert_eq!(revoked.kind, EventKind::ClientKeyRevoked { id, name: "ci".into() });
    h.shutdown().await;
}

#[tokio::test]
async fn an_invalid_config_file_is_announced_as_rejected_with_the_reason() {
    let h = Harness::start().await;
    let mut events = Events::follow(&h);
    let good = std::fs::read_to_string(&h.config_path).unwrap();
    std::fs::write(&h.config_path, format!("{good}routing:\n  strategy: sideways\n")).unwrap();
    let (_, rejected) = events.wait_for("config_rejected", |k| matches!(k, EventKind::ConfigRejected { .. })).await;
    let EventKind::ConfigRejected { reason } = &rejected.kind else { unreachable!() };
    assert!(reason.contains("sideways") || reason.contains("strategy"), "the reason names the problem: {reason}");

    std::fs::write(&h.config_path, good).unwrap();
    events.wait_for("config_reloaded", |k| matches!(k, EventKind::ConfigReloaded { .. })).await;
    h.shutdown().await;
}

/// A gateway whose OAuth endpoints are the mock's, with one OAuth account `max` that has not logged in (serving any
/// client: the requests here are SDK-style).
async fn oauth_gateway() -> (Harness, String) {
    let mut id = String::new();
    let h = Harness::with(|p| {
        common::edit_config(p, common::oauth_at_mock);
        id = common::add_oauth_account(p, "max", Some(llm_gateway::config::AccountClients::Any));
    })
    .await;
    (h, id)
}

#[tokio::test]
async fn an_oauth_login_announces_its_start_its_completion_and_the_account_active() {
    let (h, id) = oauth_gateway().await;
    let gateway = h.gateway.as_ref().unwrap().gateway().clone();
    let mut events = Events::follow(&h);
    let url = gateway.start_oauth_login(&id, None).await.unwrap().url;
    let (_, started) = events.wait_for("login_started", |k| matches!(k, EventKind::LoginStarted { .. })).await;
    assert_eq!(started.kind, EventKind::LoginStarted { account_id: id.clone() });

    let pasted = h.mock.approve(&url).unwrap();
    gateway.complete_oauth_login(&pasted, None).await.unwrap();
    let (_, completed) = events.wait_for("login_completed", |k| matches!(k, EventKind::LoginCompleted { .. })).await;
    let email = Some("mock-user@example.com".to_string());
    assert_eq!(completed.kind, EventKind::LoginCompleted { account_id: id.clone(), email });
    let (_, active) = events.state("max", AccountState::Active).await;
    let json = serde_json::to_string(&active).unwrap() + &serde_json::to_string(&completed).unwrap();
    assert!(!json.contains("sk-ant-o"), "no token in any event: {json}");
    h.shutdown().await;
}

#[tokio::test]
async fn an_oauth_token_refresh_is_announced_while_it_runs_and_when_it_is_done() {
    let (h, id) = oauth_gateway().await;
    let gateway = h.gateway.as_ref().unwrap().gateway().clone();
    let mut events = Events::follow(&h);
    let url = gateway.start_oauth_login(&id, None).await.unwrap().url;
    gateway.complete_oauth_login(&h.mock.approve(&url).unwrap(), None).await.unwrap();
    events.state("max", AccountState::Active).await;

    // The upstream refuses the expired token; the refresh takes a moment; the request then succeeds.
    h.mock.oauth_config(OAuthMockConfig { delay_ms: Some(300), ..Default::default() });
    h.mock.oauth_expire_access_tokens();
    let request = h.message(&[]);
    let announced = async {
        events.state("max", AccountState::Refreshing).await;
        events.state("max", AccountState::Active).await;
    };
    let (response, ()) = tokio::join!(request, announced);
    assert_eq!(response.status(), 200);
    h.shutdown().await;
}

#[tokio::test]
async fn a_login_that_cannot_complete_is_announced_as_failed_with_its_account() {
    let (h, id) = oauth_gateway().await;
    let gateway = h.gateway.as_ref().unwrap().gateway().clone();
    let mut events = Events::follow(&h);
    let url = gateway.start_oauth_login(&id, None).await.unwrap().url;
    let pasted = h.mock.approve(&url).unwrap();
    let (_, state) = pasted.split_once('#').unwrap();
    let error = gateway.complete_oauth_login(&format!("not-the-code#{state}"), None).await.unwrap_err();
    let (_, failed) = events.wait_for("login_failed", |k| matches!(k, EventKind::LoginFailed { .. })).await;
    assert_eq!(failed.kind, EventKind::LoginFailed { account_id: Some(id), message: error.to_string() });
    assert!(!error.to_string().contains("not-the-code"), "the code is not repeated: {error}");

    // A callback matching no login is announced too, without an account.
    gateway.complete_oauth_login("code#forged-state", None).await.unwrap_err();
    let (_, forged) = events.wait_for("login_failed", |k| matches!(k, EventKind::LoginFailed { .. })).await;
    assert!(matches!(forged.kind, EventKind::LoginFailed { account_id: None, .. }), "{forged:?}");
    h.shutdown().await;
}

#[tokio::test]
async fn a_finished_request_is_published_with_its_tokens_then_todays_totals_follow() {
    let h = Harness::start().await;
    let mut events = Events::follow(&h);
    let response = h.message(&[]).await;
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-gateway-request-id"].to_str().unwrap().to_string();
    let answer: serde_json::Value = response.json().await.unwrap();
    let (_, finished) = events.wait_for("request_finished", |k| matches!(k, EventKind::RequestFinished { .. })).await;
    let json = serde_json::to_value(&finished).unwrap();
    assert_eq!(json["type"], "request_finished");
    assert_eq!(json["request"]["id"], request_id);
    assert_eq!(json["request"]["status"], 200);
    assert_eq!(json["request"]["input_tokens"], answer["usage"]["input_tokens"], "{json}");
    assert_eq!(json["request"]["output_tokens"], answer["usage"]["output_tokens"], "{json}");
    assert!(json["request"]["cost_usd"].as_f64().is_some_and(|c| c > 0.0), "priced before publishing: {json}");
    let (_, usage) = events.wait_for("usage", |k| matches!(k, EventKind::Usage { .. })).await;
    let EventKind::Usage { today } = &usage.kind else { unreachable!() };
    assert_eq!(today.requests, 1, "today's totals include the request");
    assert_eq!(today.tokens.output, answer["usage"]["output_tokens"].as_u64().unwrap());
    h.shutdown().await;
}

#[tokio::test]
async fn an_own_login_reaching_its_plan_limit_is_announced_as_cooling_down_under_its_hashed_name() {
    let h = Harness::start().await;
    let mut events = Events::follow(&h);
    let token = "sk-ant-oat01-oauthlimited-events";
    let response = h
        .http
        .post(format!("{}/v1/messages", h.url))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "claude-code-20250219,oauth-2025-04-20")
        .header("user-agent", "claude-cli/2.1.0 (external, cli)")
        .header("authorization", format!("Bearer {token}"))
        .body(common::simple_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let (_, event) = events
        .wait_for("the own login cooling down", |k| {
            matches!(k, EventKind::AccountState { account_id, state: AccountState::CoolingDown, .. } if account_id.starts_with("own:"))
        })
        .await;
    let EventKind::AccountState { name, until_ms, .. } = &event.kind else { unreachable!() };
    assert!(name.starts_with("Claude Code login ·"), "{name}");
    assert!(until_ms.is_some_and(|u| u > SystemClock.now_ms()), "with its reset: {event:?}");
    assert!(!format!("{event:?}").contains(token), "never the token");
    h.shutdown().await;
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_is_told_how_many_it_missed_and_continues() {
    let h = Harness::start().await;
    let gateway = h.gateway.as_ref().unwrap().gateway().clone();
    let mut slow = gateway.subscribe();
    let overflow = 10;
    let published = llm_gateway::gateway::EVENT_CAPACITY + overflow;
    for n in 0..published {
        let record = RequestRecord::new(1, format!("req_gw_{n}"), Route::Messages, ClientKind::Other);
        gateway.publish_request(record);
    }
    let first = slow.recv().await.unwrap();
    assert_eq!(first.kind, EventKind::Lagged { missed: overflow as u64 });
    let next = slow.recv().await.unwrap();
    let EventKind::RequestFinished { request } = &next.kind else { panic!("{next:?}") };
    assert_eq!(request.request_id, format!("req_gw_{overflow}"), "the oldest kept event follows");
    assert_eq!(serde_json::to_value(&next).unwrap()["request"]["id"], format!("req_gw_{overflow}"));
    h.shutdown().await;
}

async fn open_event_stream(h: &Harness) -> reqwest::Response {
    h.http
        .get(format!("{}/admin/api/v1/events", h.url))
        .bearer_auth(h.admin_token())
        .send()
        .await
        .expect("the events request is answered")
}

/// Reads the stream (appending to `text`) until `text` holds `needle`.
async fn read_until(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    text: &mut String,
    needle: &str,
) {
    tokio::time::timeout(PATIENCE, async {
        while !text.contains(needle) {
            let chunk = stream.next().await.expect("the stream stays open").expect("readable");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("`{needle}` not in the event stream within {PATIENCE:?}: {text}"));
}

/// Reads the stream until it holds a whole `event: <name>` block; returns its JSON data.
async fn read_block(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    text: &mut String,
    name: &str,
) -> serde_json::Value {
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(data) = block_data(text, name) {
                return data;
            }
            let chunk = stream.next().await.expect("the stream stays open").expect("readable");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no `{name}` block in the event stream within {PATIENCE:?}: {text}"))
}

/// The JSON data of the first complete `event: <name>` block in `text`.
fn block_data(text: &str, name: &str) -> Option<serde_json::Value> {
    let complete = &text[..text.rfind("\n\n").map_or(0, |end| end + 2)];
    complete.split("\n\n").find_map(|block| {
        let mut lines = block.lines();
        (lines.next()? == format!("event: {name}")).then_some(())?;
        let data = lines.next()?.strip_prefix("data: ")?;
        serde_json::from_str(data).ok()
    })
}

#[tokio::test]
async fn the_events_endpoint_streams_server_sent_events_after_a_connected_comment() {
    let h = Harness::start().await;
    let response = open_event_stream(&h).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let mut stream = response.bytes_stream();
    let mut text = String::new();
    read_until(&mut stream, &mut text, ": connected\n\n").await;
    assert!(text.starts_with(": connected\n\n"), "{text}");

    common::edit_config(&h.config_path, |c| c.accounts[0].enabled = false);
    let state = read_block(&mut stream, &mut text, "account_state").await;
    assert_eq!(state["name"], "primary");
    assert_eq!(state["state"], "disabled");
    let reloaded = block_data(&text, "config_reloaded").expect("a config_reloaded block with JSON data");
    assert_eq!(reloaded["type"], "config_reloaded");
    assert_eq!(reloaded["accounts"], 1);
    let time = reloaded["time"].as_str().expect("time");
    time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339).expect("RFC 3339 time");
    h.shutdown().await;
}

#[tokio::test]
async fn the_events_endpoint_needs_the_admin_token() {
    let h = Harness::start().await;
    let url = format!("{}/admin/api/v1/events", h.url);
    let anonymous = h.http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = h.http.get(&url).bearer_auth("lgw-not-the-admin-token").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(!h.gateway.as_ref().unwrap().gateway().events().has_subscribers(), "no subscription was made");
    h.shutdown().await;
}

#[tokio::test]
async fn a_client_leaving_the_event_stream_ends_its_subscription() {
    let h = Harness::start().await;
    let gateway = h.gateway.as_ref().unwrap().gateway().clone();
    let response = open_event_stream(&h).await;
    let mut stream = response.bytes_stream();
    read_until(&mut stream, &mut String::new(), ": connected").await;
    assert!(gateway.events().has_subscribers());
    drop(stream);
    h.eventually("the subscription ends with its client", || async { !gateway.events().has_subscribers() }).await;
    h.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_open_event_streams_instead_of_waiting_for_the_grace_period() {
    let mut h = Harness::start().await;
    let response = open_event_stream(&h).await;
    let mut stream = response.bytes_stream();
    read_until(&mut stream, &mut String::new(), ": connected").await;
    let gateway = h.gateway.take().unwrap();
    let state = Arc::downgrade(gateway.gateway());

    let started = Instant::now();
    gateway.shutdown().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "shutdown (grace 30 s) waited {took:?} for an open event stream");
    assert!(state.upgrade().is_none(), "no task of the stopped gateway holds it (the monitor ended too)");
    let ended = tokio::time::timeout(PATIENCE, async { while let Some(Ok(_)) = stream.next().await {} }).await;
    assert!(ended.is_ok(), "the event stream ended with the gateway");
}
