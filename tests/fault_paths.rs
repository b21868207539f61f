//! Fault paths of one request (issue #10): a client hanging up during a half-open trial, compressed upstream
//! answers, error bodies cut short, streams broken in the middle of an event, events past the size limit, and
//! pings on both client formats. Each test ends with the gateway still serving and no request hanging.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Harness, simple_body};
use futures_util::StreamExt;
use llm_gateway::clock::{Clock, ManualClock, SystemClock};
use mock_upstream::{MockUpstream, Scripted, StreamEnd};
use serde_json::{Value, json};

/// What the Python SDK (httpx) sends by default.
const SDK_ACCEPT_ENCODING: &str = "gzip, deflate";
/// Long enough for any answer on a loaded machine; a hang fails the test instead of stalling it.
const GENEROUS: Duration = Duration::from_secs(15);

fn keys_used(mock: &MockUpstream) -> Vec<String> {
    mock.requests()
        .iter()
        .filter(|r| r.path.starts_with("/v1/messages"))
        .map(|r| r.header("x-api-key").unwrap_or_default().to_string())
        .collect()
}

async fn two_accounts() -> Harness {
    Harness::with(|p| {
        common::add_account(p, "first", "sk-ant-first", &[]);
        common::add_account(p, "second", "sk-ant-second", &[]);
    })
    .await
}

async fn post(h: &Harness, stream: bool, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = h.http.post(format!("{}/v1/messages", h.url)).timeout(GENEROUS).body(simple_body(stream));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().await.expect("the gateway answers")
}

async fn chat(h: &Harness, stream: bool) -> reqwest::Response {
    let body = json!({"model": "claude-sonnet-5", "stream": stream, "messages": [{"role": "user", "content": "hi"}]});
    h.http.post(format!("{}/v1/chat/completions", h.url)).timeout(GENEROUS).json(&body).send().await.unwrap()
}

/// The body as the client's HTTP stack would hand it over: gzip decoded when the response says so.
async fn decoded_body(response: reqwest::Response) -> String {
    let gzip = response.headers().get("content-encoding").is_some_and(|v| v == "gzip");
    let bytes = response.bytes().await.expect("a complete body");
    let bytes = if gzip { mock_upstream::gunzip(&bytes).expect("valid gzip") } else { bytes.to_vec() };
    String::from_utf8(bytes).expect("utf-8")
}

/// Parses an SSE text the way the SDKs do (LF or CRLF lines); every `data:` must be JSON. Returns
/// `(event name, data)` per event; comments are skipped.
fn parse_events(text: &str) -> Vec<(String, Value)> {
    let normalised = text.replace("\r\n", "\n");
    let mut events = Vec::new();
    for block in normalised.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut name = String::from("message");
        let mut data = String::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("event:") {
                name = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            } else {
                assert!(line.starts_with(':'), "not an SSE field line: {line:?} in {text:?}");
            }
        }
        if data.is_empty() {
            continue;
        }
        let value = serde_json::from_str(&data).unwrap_or_else(|e| panic!("event data is not JSON ({e}): {data:?}"));
        events.push((name, value));
    }
    assert!(normalised.is_empty() || normalised.ends_with("\n\n"), "the stream ends inside an event: {text:?}");
    events
}

fn anthropic_event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

fn message_start() -> String {
    let events = mock_upstream::message_stream_events("claude-sonnet-5", &["Hello"]);
    format!("event: message_start\ndata: {}\n\n", events[0].1)
}

// ----- #1: a half-open trial abandoned by its client ----------------------------------------------------------

#[tokio::test]
async fn a_trial_abandoned_by_its_client_is_given_back_and_the_next_request_reaches_the_upstream() {
    let clock = Arc::new(ManualClock::new(SystemClock.now_ms()));
    let c: Arc<dyn Clock> = clock.clone();
    let h = Harness::with_clock("", "", Some(c), |p| {
        common::add_account(p, "only", "sk-ant-only", &[]);
    })
    .await;
    h.mock.enqueue(Scripted::Response {
        status: 429,
        headers: vec![("retry-after".into(), "1".into())],
        body: mock_upstream::error_body("rate_limit_error", "slow down", "req_1"),
    });
    assert_eq!(post(&h, false, &[]).await.status(), 429);
    let ready = || async { h.http.get(format!("{}/ready", h.url)).send().await.unwrap().status().as_u16() };
    assert_eq!(ready().await, 503, "benched for a second");
    clock.advance(1_500);
    assert_eq!(ready().await, 200, "the bench is over: one trial may go");

    // The trial: the upstream is slow and the client hangs up after 100 ms (Esc in Claude Code).
    h.mock.enqueue(Scripted::Delay { ms: 60_000 });
    let abandoned = h
        .http
        .post(format!("{}/v1/messages", h.url))
        .timeout(Duration::from_millis(100))
        .body(simple_body(true))
        .send()
        .await;
    assert!(abandoned.is_err(), "the client gave up");

    h.eventually("the abandoned trial is given back", || async { ready().await == 200 }).await;
    h.mock.clear_requests();
    let response = post(&h, false, &[]).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(keys_used(&h.mock), ["sk-ant-only"], "the next request reached the upstream");
    assert_eq!(ready().await, 200);
    h.shutdown().await;
}

// ----- #5: compressed upstream answers ------------------------------------------------------------------------

#[tokio::test]
async fn a_gzip_accepting_stream_whose_first_event_is_overloaded_fails_over() {
    let h = two_accounts().await;
    let overloaded = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    h.mock.enqueue(Scripted::Stream {
        events: vec![("error".into(), overloaded.to_string())],
        interval_ms: 0,
        cut_after: None,
    });
    let response = post(&h, true, &[("accept-encoding", SDK_ACCEPT_ENCODING)]).await;
    assert_eq!(response.status(), 200);
    let events = parse_events(&decoded_body(response).await);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"), "{names:?}");
    assert_eq!(names.last(), Some(&"message_stop"), "{names:?}");
    assert!(!names.contains(&"error"), "{names:?}");
    let keys = keys_used(&h.mock);
    assert_eq!(keys.len(), 2, "failed over: {keys:?}");
    assert_ne!(keys[0], keys[1]);
    for request in h.mock.requests() {
        assert_eq!(request.header("accept-encoding"), Some("identity"), "streams are asked for uncompressed");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn a_gzip_accepting_stream_broken_midway_ends_with_a_parseable_error_event() {
    let h = Harness::start().await;
    let events = mock_upstream::message_stream_events("claude-sonnet-5", &["partial ", "answer"]);
    h.mock.enqueue(Scripted::Stream { events, interval_ms: 0, cut_after: Some(4) });
    let response = post(&h, true, &[("accept-encoding", SDK_ACCEPT_ENCODING)]).await;
    assert_eq!(response.status(), 200);
    let events = parse_events(&decoded_body(response).await);
    let (name, data) = events.last().expect("events");
    assert_eq!(name, "error");
    assert_eq!(data["type"], "error");
    assert_eq!(data["error"]["type"], "api_error");
    assert_eq!(events.len(), 5, "the four events sent, then the error: {events:?}");
    h.shutdown().await;
}

#[tokio::test]
async fn a_non_streamed_gzip_answer_reaches_the_client_byte_for_byte_with_its_encoding() {
    let h = Harness::start().await;
    let body = json!({"id": "msg_fixed", "type": "message", "role": "assistant", "model": "claude-sonnet-5",
        "content": [{"type": "text", "text": "same bytes ".repeat(50)}], "stop_reason": "end_turn",
        "stop_sequence": null, "usage": {"input_tokens": 1, "output_tokens": 100}})
    .to_string();
    let scripted = Scripted::Response {
        status: 200,
        headers: vec![("request-id".into(), "req_fixed".into())],
        body: body.clone(),
    };
    h.mock.enqueue(scripted.clone());
    h.mock.enqueue(scripted);
    let through_gateway = post(&h, false, &[("accept-encoding", SDK_ACCEPT_ENCODING)]).await;
    let direct = reqwest::Client::new()
        .post(format!("{}/v1/messages", h.mock.base_url()))
        .header("x-api-key", common::GOOD_KEY)
        .header("accept-encoding", SDK_ACCEPT_ENCODING)
        .body(simple_body(false))
        .send()
        .await
        .unwrap();
    let sent = h.mock.requests();
    assert_eq!(sent[0].header("accept-encoding"), Some(SDK_ACCEPT_ENCODING), "the client's choice goes upstream");
    for header in ["content-encoding", "content-type", "content-length", "request-id"] {
        assert_eq!(through_gateway.headers().get(header), direct.headers().get(header), "{header}");
    }
    assert_eq!(through_gateway.headers()["content-encoding"], "gzip");
    let (gateway_bytes, direct_bytes) = (through_gateway.bytes().await.unwrap(), direct.bytes().await.unwrap());
    assert_eq!(gateway_bytes, direct_bytes, "the upstream's bytes, unchanged");
    assert_eq!(mock_upstream::gunzip(&gateway_bytes).unwrap(), body.as_bytes());
    h.shutdown().await;
}

#[tokio::test]
async fn a_stream_compressed_against_the_gateways_wish_passes_through_untouched() {
    let h = Harness::start().await;
    // `x-mock-encoding: gzip` makes the mock ignore the gateway's `accept-encoding: identity`.
    let response = post(&h, true, &[("x-mock-encoding", "gzip")]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let events = parse_events(&decoded_body(response).await);
    assert_eq!(events.last().map(|(n, _)| n.as_str()), Some("message_stop"), "decodes to the whole stream");

    // OpenAI clients get their answer converted, which a compressed body does not allow: a clear 502.
    let response = h
        .http
        .post(format!("{}/v1/chat/completions", h.url))
        .header("x-mock-encoding", "gzip")
        .json(&json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("compressed"), "{body}");
    h.shutdown().await;
}

// ----- #7: an error body larger than the gateway reads --------------------------------------------------------

#[tokio::test]
async fn an_error_body_larger_than_the_limit_still_gives_a_complete_response() {
    let h = Harness::start().await;
    let long = "x".repeat(70 * 1024);
    let huge = mock_upstream::error_body("api_error", &format!("Upstream trouble {long}"), "req_big");
    let scripted = Scripted::Response {
        status: 503,
        headers: vec![("request-id".into(), "req_big".into()), ("retry-after".into(), "7".into())],
        body: huge,
    };
    h.mock.enqueue(scripted.clone());
    let response = post(&h, false, &[]).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "7", "the upstream's headers stay");
    assert_eq!(response.headers()["request-id"], "req_big");
    let length: usize = response.headers()["content-length"].to_str().unwrap().parse().unwrap();
    let bytes = tokio::time::timeout(GENEROUS, response.bytes()).await.expect("no hang").unwrap();
    assert_eq!(bytes.len(), length, "the length sent is the length of the body");
    let body: Value = serde_json::from_slice(&bytes).expect("well-formed JSON, not a truncated body");
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "api_error");
    assert_eq!(body["request_id"], "req_big");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("larger than") && message.contains("Upstream trouble xxx"), "{message}");

    // The OpenAI route converts the replacement like any upstream error.
    h.mock.enqueue(scripted);
    let response = chat(&h, false).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("larger than"), "{body}");
    h.shutdown().await;
}

// ----- #8: whole events only ----------------------------------------------------------------------------------

fn cut_mid_event(line_ending: &str) -> Scripted {
    let start = message_start().replace('\n', line_ending);
    let ping = anthropic_event("ping", json!({"type": "ping"})).replace('\n', line_ending);
    let partial = format!("event: content_block_start{line_ending}data: {{\"type\":\"content_block_st");
    Scripted::Chunks { chunks: vec![start, format!("{ping}{partial}")], interval_ms: 0, end: StreamEnd::Cut }
}

#[tokio::test]
async fn a_stream_cut_mid_event_ends_with_a_whole_error_event() {
    let h = Harness::start().await;
    for line_ending in ["\n", "\r\n"] {
        h.mock.enqueue(cut_mid_event(line_ending));
        let response = post(&h, true, &[]).await;
        assert_eq!(response.status(), 200);
        let text = decoded_body(response).await;
        let events = parse_events(&text);
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["message_start", "ping", "error"], "{line_ending:?}: {text:?}");
        assert!(!text.contains("content_block_st"), "the half event is dropped: {text:?}");
        assert_eq!(events[2].1["error"]["type"], "api_error");
    }
    h.shutdown().await;
}

#[tokio::test]
async fn an_openai_stream_cut_mid_event_ends_with_an_openai_error_frame() {
    let h = Harness::start().await;
    h.mock.enqueue(cut_mid_event("\n"));
    let response = chat(&h, true).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let events = parse_events(&text);
    let (_, last) = events.last().expect("frames");
    assert!(last["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{text}");
    assert_eq!(events[0].1["choices"][0]["delta"]["role"], "assistant", "{text}");
    h.shutdown().await;
}

#[tokio::test]
async fn events_split_across_reads_arrive_whole_and_unchanged() {
    let h = Harness::start().await;
    let events = mock_upstream::message_stream_events("claude-sonnet-5", &["Hel", "lo"]);
    let wire: String = events.iter().map(|(n, d)| format!("event: {n}\ndata: {d}\n\n")).collect();
    // Cut at awkward places: inside a line, between CR-less line ends, right after a blank line.
    let cuts = [7, 40, wire.find("\n\n").unwrap() + 1, wire.len() / 2, wire.len() - 3];
    let mut sorted = cuts.to_vec();
    sorted.sort_unstable();
    let mut chunks = Vec::new();
    let mut at = 0;
    for cut in sorted.into_iter().chain([wire.len()]) {
        chunks.push(wire[at..cut].to_string());
        at = cut;
    }
    h.mock.enqueue(Scripted::Chunks { chunks, interval_ms: 5, end: StreamEnd::Close });
    let response = post(&h, true, &[]).await;
    assert_eq!(response.text().await.unwrap(), wire, "byte for byte");
    h.shutdown().await;
}

// ----- #17: one event's size is bounded -----------------------------------------------------------------------

async fn with_small_event_limit() -> Harness {
    Harness::with_config("  max_stream_event_bytes: 1024\n", "", |p| {
        common::add_account(p, "primary", common::GOOD_KEY, &[]);
    })
    .await
}

fn endless_event() -> Scripted {
    let piece = "y".repeat(700);
    let chunks =
        vec![message_start(), format!("event: content_block_delta\ndata: {{\"text\":\"{piece}"), piece.clone(), piece];
    // The upstream never finishes the event: the gateway must end the stream itself.
    Scripted::Chunks { chunks, interval_ms: 0, end: StreamEnd::Hang }
}

#[tokio::test]
async fn an_event_longer_than_the_limit_ends_the_stream_with_an_error_event_in_each_format() {
    let h = with_small_event_limit().await;
    h.mock.enqueue(endless_event());
    let response = post(&h, true, &[]).await;
    let text = tokio::time::timeout(GENEROUS, response.text()).await.expect("the stream ends").unwrap();
    let events = parse_events(&text);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["message_start", "error"], "{text}");
    assert!(events[1].1["error"]["message"].as_str().unwrap().contains("max_stream_event_bytes"), "{text}");

    h.mock.enqueue(endless_event());
    let response = chat(&h, true).await;
    let text = tokio::time::timeout(GENEROUS, response.text()).await.expect("the stream ends").unwrap();
    let events = parse_events(&text);
    let (_, last) = events.last().unwrap();
    assert!(last["error"]["message"].as_str().unwrap().contains("max_stream_event_bytes"), "{text}");
    h.shutdown().await;
}

// ----- pings keep idle clients alive --------------------------------------------------------------------------

/// Reads `response` until `seen` holds for the text so far; fails if that takes longer than [`GENEROUS`].
async fn read_until(response: reqwest::Response, seen: impl Fn(&str) -> bool) -> String {
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let read = async {
        while !seen(&text) {
            let chunk = body.next().await.expect("the stream stays open").expect("no error");
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    };
    tokio::time::timeout(GENEROUS, read).await.unwrap_or_else(|_| panic!("never seen; got {text:?}"));
    text
}

fn then_silence_after_a_ping() -> Scripted {
    let ping = anthropic_event("ping", json!({"type": "ping"}));
    let (a, b) = ping.split_at(15);
    // The ping arrives in two reads; then the upstream says nothing for a long time.
    Scripted::Chunks { chunks: vec![message_start(), a.into(), b.into()], interval_ms: 5, end: StreamEnd::Hang }
}

#[tokio::test]
async fn anthropic_pings_reach_the_client_even_when_nothing_follows() {
    let h = Harness::start().await;
    h.mock.enqueue(then_silence_after_a_ping());
    let response = post(&h, true, &[]).await;
    let text = read_until(response, |t| t.contains("event: ping") && t.ends_with("\n\n")).await;
    let names: Vec<String> = parse_events(&text).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["message_start", "ping"]);
    h.shutdown().await;
}

#[tokio::test]
async fn openai_streams_turn_pings_into_sse_comments() {
    let h = Harness::start().await;
    h.mock.enqueue(then_silence_after_a_ping());
    let response = chat(&h, true).await;
    let text = read_until(response, |t| t.contains(": ping\n\n")).await;
    assert!(text.starts_with("data: "), "the role chunk first: {text:?}");
    h.shutdown().await;
}
