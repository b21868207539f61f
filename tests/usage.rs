//! Usage you can trust (issue #9/#12): every request recorded with the upstream's own token counts (streams,
//! plain answers, OpenAI clients, cancelled streams, failovers, cache tokens), kept across restarts with the plan
//! windows, a corrupt database replaced at start, the admin API's reports and log, and `/metrics`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Harness, simple_body};
use llm_gateway::clock::{Clock, ManualClock};
use llm_gateway::usage::Usage;
use serde_json::{Value, json};

/// 2026-11-15T10:00:00Z: tests that cross restarts pin the day.
const T0: u64 = 1_794_736_800_000;

fn usage(h: &Harness) -> Usage {
    h.gateway.as_ref().expect("running").gateway().usage().clone()
}

/// Waits until every record so far is written.
async fn flush(h: &Harness) {
    let usage = usage(h);
    tokio::task::spawn_blocking(move || usage.flush()).await.unwrap();
}

async fn admin(h: &Harness, path_and_query: &str) -> (u16, Value) {
    let response = h
        .http
        .get(format!("{}/admin/api/v1{path_and_query}", h.url))
        .bearer_auth(h.admin_token())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The request log, newest first, once everything so far is written.
async fn logged(h: &Harness) -> Vec<Value> {
    flush(h).await;
    let (status, page) = admin(h, "/requests?limit=1000").await;
    assert_eq!(status, 200, "{page}");
    page["requests"].as_array().unwrap().clone()
}

/// Polls the log until it holds `n` requests (a cancelled stream is recorded when the gateway notices).
async fn logged_eventually(h: &Harness, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let log = logged(h).await;
        if log.len() >= n || tokio::time::Instant::now() > deadline {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn post_messages(h: &Harness, body: String, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = h
        .http
        .post(format!("{}/v1/messages", h.url))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .body(body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().await.unwrap()
}

/// The `usage` an SSE answer reported: `message_start`'s, with `message_delta`'s cumulative counts on top.
fn stream_usage(text: &str) -> Value {
    let mut usage = json!({});
    for data in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
        let event: Value = serde_json::from_str(data).unwrap();
        let found = match event["type"].as_str() {
            Some("message_start") => &event["message"]["usage"],
            Some("message_delta") => &event["usage"],
            _ => continue,
        };
        for (k, v) in found.as_object().unwrap() {
            usage[k] = v.clone();
        }
    }
    usage
}

/// Asserts the record's tokens are the upstream's usage, to the token.
fn assert_tokens(record: &Value, usage: &Value) {
    for (field, upstream) in [
        ("input_tokens", "input_tokens"),
        ("output_tokens", "output_tokens"),
        ("cache_creation_tokens", "cache_creation_input_tokens"),
        ("cache_read_tokens", "cache_read_input_tokens"),
    ] {
        assert_eq!(record[field], usage[upstream], "{field}: record {record} vs upstream {usage}");
    }
}

/// claude-sonnet-5's built-in price in micro-USD per token ×10 (input 2, output 10, cache write 2.5, read 0.2 $/MTok).
fn sonnet_cost_micros(record: &Value) -> u64 {
    let n = |f: &str| record[f].as_u64().unwrap();
    let pico = n("input_tokens") * 2_000_000
        + n("output_tokens") * 10_000_000
        + n("cache_creation_tokens") * 2_500_000
        + n("cache_read_tokens") * 200_000;
    (pico + 500_000) / 1_000_000
}

#[tokio::test]
async fn plain_and_streamed_answers_are_recorded_with_the_upstreams_exact_tokens() {
    let h = Harness::start().await;
    let claude_code = [
        ("x-app", "cli"),
        ("user-agent", "claude-cli/2.1.0 (external, cli)"),
        ("x-claude-code-session-id", "3f1c5a8e-0000-4000-8000-000000000001"),
    ];
    let mut headers = claude_code.to_vec();
    headers.push(("x-mock-cache-tokens", "1200,3400"));
    let plain: Value = post_messages(&h, simple_body(false), &headers).await.json().await.unwrap();
    let mut headers = claude_code.to_vec();
    headers.push(("x-mock-cache-tokens", "7,9"));
    let streamed = post_messages(&h, simple_body(true), &headers).await.text().await.unwrap();

    let log = logged(&h).await;
    assert_eq!(log.len(), 2, "{log:#?}");
    let (s, p) = (&log[0], &log[1]);
    assert_tokens(p, &plain["usage"]);
    assert_eq!(p["cache_read_tokens"], 3400);
    assert_tokens(s, &stream_usage(&streamed));
    assert_eq!(s["cache_creation_tokens"], 7);
    for (r, stream) in [(p, false), (s, true)] {
        assert_eq!(r["route"], "messages");
        assert_eq!(r["client_kind"], "claude_code");
        assert_eq!(r["status"], 200);
        assert_eq!(r["outcome"], "ok");
        assert_eq!(r["stream"], stream);
        assert_eq!(r["stop_reason"], "end_turn");
        assert_eq!(r["model"], "claude-sonnet-5");
        assert_eq!(r["model_answered"], "claude-sonnet-5");
        assert_eq!(r["account_name"], "primary");
        assert!(r["client_key"].is_null(), "open loopback gateway: no key");
        assert!(r["id"].as_str().unwrap().starts_with("req_gw_"));
        assert!(r["first_byte_ms"].is_u64(), "{r}");
        let (latency, upstream, added) =
            (r["latency_ms"].as_u64().unwrap(), r["upstream_ms"].as_u64().unwrap(), r["gateway_ms"].as_u64().unwrap());
        assert_eq!(latency, upstream + added);
        assert_eq!(r["cost_basis"], "spend");
        assert_eq!(r["cost_micros"], sonnet_cost_micros(r));
        assert!(r["value_usd"].is_null());
        assert_eq!(r["session"], p["session"], "one Claude Code session");
        assert!(r["session"].is_string());
    }
    // The same numbers in the report, to the token.
    let (_, report) = admin(&h, "/usage?by=model").await;
    let row = &report["rows"][0];
    assert_eq!(row["key"], "claude-sonnet-5");
    assert_eq!(row["requests"], 2);
    let sum = |f: &str| p[f].as_u64().unwrap() + s[f].as_u64().unwrap();
    for f in ["input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens"] {
        assert_eq!(row[f], sum(f), "{f}");
        assert_eq!(report["totals"][f], sum(f), "{f}");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn a_gzip_answer_goes_to_the_client_compressed_and_is_recorded_with_its_tokens() {
    let h = Harness::start().await;
    let response = post_messages(&h, simple_body(false), &[("accept-encoding", "gzip")]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-encoding"], "gzip", "the upstream's bytes, untouched");
    let compressed = response.bytes().await.unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&compressed[..]), &mut text).unwrap();
    let answer: Value = serde_json::from_str(&text).unwrap();
    let log = logged(&h).await;
    assert_eq!(log.len(), 1, "{log:#?}");
    assert_tokens(&log[0], &answer["usage"]);
    assert!(log[0]["output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(log[0]["stop_reason"], "end_turn");
    h.shutdown().await;
}

#[tokio::test]
async fn openai_requests_are_recorded_with_the_upstream_tokens_before_conversion() {
    let h = Harness::start().await;
    for stream in [false, true] {
        let response = h
            .http
            .post(format!("{}/v1/chat/completions", h.url))
            .header("x-mock-cache-tokens", "5,6")
            .json(&json!({"model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap();
    }
    let sent: Vec<_> = h.mock.requests().into_iter().filter(|r| r.path == "/v1/messages").collect();
    let log = logged(&h).await;
    assert_eq!(log.len(), 2);
    for (record, upstream) in log.iter().rev().zip(&sent) {
        // The mock counts a quarter of the converted body's bytes as input; output is the default text's words.
        assert_eq!(record["input_tokens"], (upstream.body.len() / 4) as u64, "{record}");
        assert_eq!(record["output_tokens"], 5);
        assert_eq!(record["cache_creation_tokens"], 5);
        assert_eq!(record["cache_read_tokens"], 6);
        assert_eq!(record["route"], "chat_completions");
        assert_eq!(record["client_kind"], "openai");
        assert_eq!(record["model"], "claude-sonnet-5", "the model after alias mapping");
        assert_eq!(record["outcome"], "ok");
        assert_eq!(record["status"], 200);
    }
    assert_eq!(log[0]["stream"], true);
    h.shutdown().await;
}

#[tokio::test]
async fn a_stream_the_client_cancels_is_recorded_with_what_was_seen() {
    let h = Harness::start().await;
    let response =
        post_messages(&h, simple_body(true), &[("x-mock-event-interval-ms", "300"), ("x-mock-cache-tokens", "11,22")])
            .await;
    assert_eq!(response.status(), 200);
    let mut response = response;
    // The first event (message_start) arrives, then the client goes away.
    let first = response.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("message_start"));
    drop(response);
    let log = logged_eventually(&h, 1).await;
    assert_eq!(log.len(), 1);
    let r = &log[0];
    assert_eq!(r["outcome"], "client_cancelled");
    assert_eq!(r["status"], 200);
    // message_start's usage: the input side in full, output 1 so far.
    let sent = h.mock.requests().into_iter().find(|r| r.path == "/v1/messages").unwrap();
    assert_eq!(r["input_tokens"], (sent.body.len() / 4) as u64);
    assert_eq!(r["output_tokens"], 1);
    assert_eq!(r["cache_creation_tokens"], 11);
    assert_eq!(r["cache_read_tokens"], 22);
    assert!(r["stop_reason"].is_null());
    h.shutdown().await;
}

#[tokio::test]
async fn a_failover_is_recorded_with_each_attempt_and_the_answering_accounts_tokens() {
    let h = Harness::with(|p| {
        common::add_account_at(p, "limited", "sk-ant-ratelimited-a", None, 0);
        common::add_account_at(p, "spare", "sk-ant-spare", None, 1);
    })
    .await;
    let body: Value =
        post_messages(&h, simple_body(false), &[("x-mock-cache-tokens", "3,4")]).await.json().await.unwrap();
    let log = logged(&h).await;
    let r = &log[0];
    assert_tokens(r, &body["usage"]);
    assert_eq!(r["outcome"], "ok");
    assert_eq!(r["account_name"], "spare");
    let attempts = r["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{r}");
    assert_eq!(attempts[0]["status"], 429);
    assert_eq!(attempts[0]["reason"], "rate_limited");
    assert_eq!(attempts[1]["status"], 200);
    assert!(attempts[1]["reason"].is_null());
    assert_eq!(attempts[1]["account"], r["account"]);

    // Every account failing: the last upstream answer goes back, recorded as an upstream error.
    let h2 = Harness::with(|p| {
        common::add_account_at(p, "a", "sk-ant-ratelimited-a", None, 0);
    })
    .await;
    assert_eq!(post_messages(&h2, simple_body(false), &[]).await.status(), 429);
    let log = logged(&h2).await;
    assert_eq!((log[0]["status"].clone(), log[0]["outcome"].clone()), (json!(429), json!("upstream_error")));
    h.shutdown().await;
    h2.shutdown().await;
}

#[tokio::test]
async fn every_route_and_refusal_is_recorded() {
    let h = Harness::with(|p| {
        common::add_account(p, "primary", common::GOOD_KEY, &[]);
        common::manager(p).add_client_key("laptop").unwrap();
    })
    .await;
    let key = {
        // A second key, whose plaintext this test keeps.
        common::manager(&h.config_path).add_client_key("ci").unwrap()
    };
    h.eventually("the new key is in force", || async {
        h.http.get(format!("{}/v1/models", h.url)).header("x-api-key", &key).send().await.unwrap().status() == 200
    })
    .await;
    let count = h
        .http
        .post(format!("{}/v1/messages/count_tokens", h.url))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(simple_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(count.status(), 200);
    let refused = h.http.post(format!("{}/v1/messages", h.url)).header("x-api-key", "lgw-wrong").send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let bad = post_messages(&h, "{nope".into(), &[("x-api-key", &key)]).await;
    assert_eq!(bad.status(), 400);

    let log = logged(&h).await;
    let find = |route: &str, status: u64| {
        log.iter()
            .find(|r| r["route"] == route && r["status"] == status)
            .unwrap_or_else(|| panic!("{route} {status}: {log:#?}"))
    };
    let models = find("models", 200);
    assert_eq!(models["client_kind"], "openai", "no anthropic-version: an OpenAI client");
    assert_eq!(models["client_key"], "ci");
    let counted = find("count_tokens", 200);
    assert_eq!((counted["input_tokens"].clone(), counted["outcome"].clone()), (json!(0), json!("ok")));
    let unauthorized = find("messages", 401);
    assert_eq!(unauthorized["outcome"], "unauthorized");
    assert!(unauthorized["client_key"].is_null());
    assert_eq!(find("messages", 400)["outcome"], "client_error");
    // Each key's use today and its latest request, in the key list.
    let (_, keys) = admin(&h, "/client-keys").await;
    let by_name =
        |name: &str| keys["client_keys"].as_array().unwrap().iter().find(|k| k["name"] == name).unwrap().clone();
    let ci = by_name("ci");
    let ci_requests = log.iter().filter(|r| r["client_key"] == "ci").count();
    assert_eq!(ci["usage_today"]["requests"], ci_requests as u64);
    assert_eq!(ci["last_used"], log.iter().find(|r| r["client_key"] == "ci").unwrap()["time"]);
    let laptop = by_name("laptop");
    assert_eq!(laptop["usage_today"]["requests"], 0);
    assert!(laptop.get("last_used").is_none());
    h.shutdown().await;
}

#[tokio::test]
async fn a_restart_keeps_usage_plan_windows_and_per_key_day_counts() {
    let clock = Arc::new(ManualClock::new(T0));
    let c: Arc<dyn Clock> = clock.clone();
    let mut h = Harness::with_clock("", "", Some(c.clone()), |p| {
        common::add_account(p, "primary", common::GOOD_KEY, &[]);
    })
    .await;
    let key = common::create_key(&h.config_path, "metered", |l| l.tokens_per_day = Some(1_000_000));
    h.eventually("the key is in force", || async { h.message(&[]).await.status() == 401 }).await;
    for _ in 0..2 {
        assert_eq!(post_messages(&h, simple_body(false), &[("x-api-key", &key)]).await.status(), 200);
    }
    let before = logged(&h).await;
    let used: u64 = before
        .iter()
        .filter(|r| r["client_key"] == "metered")
        .map(|r| ["input_tokens", "output_tokens"].iter().map(|f| r[*f].as_u64().unwrap()).sum::<u64>())
        .sum();
    assert!(used > 0);
    let status = h.status_json().await;
    let windows = status["accounts"][0]["windows"].clone();
    assert!(windows["requests"]["remaining"].is_u64(), "the mock reports API-key limits: {windows}");

    // Restart on the same directory.
    h.gateway.take().unwrap().shutdown().await;
    let options =
        llm_gateway::StartOptions { config_path: h.config_path.clone(), clock: Some(c), ..Default::default() };
    let gateway = llm_gateway::start(options).await.unwrap();
    h.url = format!("http://{}", gateway.addr());
    h.gateway = Some(gateway);

    let status = h.status_json().await;
    assert_eq!(status["accounts"][0]["windows"], windows, "windows shown right after the restart");
    assert_eq!(status["today"]["requests"], before.len() as u64);
    let gateway = h.gateway.as_ref().unwrap().gateway().clone();
    assert_eq!(
        gateway.requests_today(),
        Some(before.len() as u64),
        "the tray's in-memory count starts from the database"
    );
    assert_eq!(post_messages(&h, simple_body(false), &[("x-api-key", &key)]).await.status(), 200);
    assert_eq!(gateway.requests_today(), Some(before.len() as u64 + 1), "and counts on");
    let (_, report) = admin(&h, "/usage?by=client_key").await;
    let metered = report["rows"].as_array().unwrap().iter().find(|r| r["key"] == "metered").unwrap();
    assert_eq!(metered["input_tokens"].as_u64().unwrap() + metered["output_tokens"].as_u64().unwrap(), used);
    // The key's day count survived: a limit just below it refuses the next request.
    common::edit_config(&h.config_path, |config| {
        config.client_keys.iter_mut().find(|k| k.name == "metered").unwrap().tokens_per_day = Some(used);
    });
    h.eventually("the lowered limit refuses the key", || async {
        post_messages(&h, simple_body(false), &[("x-api-key", &key)]).await.status() == 429
    })
    .await;
    h.shutdown().await;
}

#[tokio::test]
async fn a_corrupt_usage_database_is_moved_aside_and_the_gateway_serves() {
    let h = Harness::with(|p| {
        common::add_account(p, "primary", common::GOOD_KEY, &[]);
        let mut garbage = b"SQLite format 3\0".to_vec();
        garbage.extend(std::iter::repeat_n(0xA5u8, 8192));
        std::fs::write(p.parent().unwrap().join("usage.db"), garbage).unwrap();
    })
    .await;
    assert_eq!(h.message(&[]).await.status(), 200);
    let moved: Vec<_> = std::fs::read_dir(h.dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("usage.db.corrupt-"))
        .collect();
    assert_eq!(moved.len(), 1, "the unreadable file is kept beside the new one");
    assert_eq!(logged(&h).await.len(), 1, "recording goes on in a new database");
    h.shutdown().await;
}

#[tokio::test]
async fn the_admin_api_pages_the_log_and_names_bad_parameters() {
    let h = Harness::start().await;
    for _ in 0..5 {
        assert_eq!(h.message(&[]).await.status(), 200);
    }
    flush(&h).await;
    let (_, first) = admin(&h, "/requests?limit=2").await;
    let (_, second) = admin(&h, &format!("/requests?limit=2&cursor={}", first["next_cursor"].as_str().unwrap())).await;
    let (_, third) = admin(&h, &format!("/requests?limit=2&cursor={}", second["next_cursor"].as_str().unwrap())).await;
    let ids: Vec<Value> = [&first, &second, &third]
        .iter()
        .flat_map(|p| p["requests"].as_array().unwrap().clone())
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(ids.len(), 5);
    assert!(third["next_cursor"].is_null());
    let unique: std::collections::HashSet<String> = ids.iter().map(|i| i.to_string()).collect();
    assert_eq!(unique.len(), 5, "pages do not overlap");
    // Following: nothing after the newest, then exactly the next request.
    let newest = first["newest_cursor"].as_str().unwrap().to_string();
    let (_, none) = admin(&h, &format!("/requests?after={newest}")).await;
    assert!(none["requests"].as_array().unwrap().is_empty());
    h.message(&[]).await;
    flush(&h).await;
    let (_, next) = admin(&h, &format!("/requests?after={newest}")).await;
    assert_eq!(next["requests"].as_array().unwrap().len(), 1);

    let (_, by_day) = admin(&h, "/usage?since=7d&by=day").await;
    assert_eq!(by_day["by"], "day");
    assert_eq!(by_day["totals"]["requests"], 6);
    assert!(by_day["rows"][0]["key"].as_str().unwrap().ends_with("T00:00:00Z"), "{by_day}");
    let (status, sessions) = admin(&h, "/usage/sessions?since=24h").await;
    assert_eq!(status, 200, "{sessions}");
    assert!(sessions["sessions"].is_array());

    for (query, field) in [
        ("/requests?cursor=nonsense!", "cursor"),
        ("/usage?by=planet", "by"),
        ("/usage?since=yesterday", "since"),
        ("/requests?limit=many", "limit"),
        ("/requests?colour=red", "colour"),
    ] {
        let (status, body) = admin(&h, query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request", "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn recording_off_keeps_serving_and_says_so() {
    let h = Harness::with(|p| {
        common::add_account(p, "primary", common::GOOD_KEY, &[]);
        common::edit_config(p, |c| c.usage.enabled = false);
    })
    .await;
    assert_eq!(h.message(&[]).await.status(), 200);
    assert!(!h.dir.path().join("usage.db").exists());
    let (status, body) = admin(&h, "/usage").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["field"], "usage.enabled");
    assert!(h.status_json().await.get("today").is_none());
    h.shutdown().await;
}
