//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().expect("client")
}

/// A minimal valid Messages body.
pub fn body(stream: bool) -> Value {
    json!({
        "model": "claude-sonnet-5",
        "max_tokens": 1024,
        "stream": stream,
        "messages": [{"role": "user", "content": "Hi"}],
    })
}

/// POST /v1/messages with an API key.
pub fn post(mock_url: &str, key: &str, body: &Value) -> reqwest::RequestBuilder {
    client()
        .post(format!("{mock_url}/v1/messages"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(body)
}

/// One parsed SSE event and when it arrived (relative to the response headers).
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub data: Value,
    pub at: Duration,
}

/// Reads an SSE body to its end (or to an error), parsing events as they arrive.
/// Returns the events and whether the body ended with an error.
pub async fn read_events(resp: reqwest::Response) -> (Vec<Event>, bool) {
    let start = Instant::now();
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut events = Vec::new();
    let mut errored = false;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(_) => {
                errored = true;
                break;
            }
        };
        buf.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        while let Some(end) = buf.find("\n\n") {
            let raw: String = buf.drain(..end + 2).collect();
            let mut name = None;
            let mut data = None;
            for line in raw.trim_end().lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = Some(v.to_string());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str(v).expect("data is JSON"));
                } else {
                    panic!("unexpected SSE line {line:?}");
                }
            }
            events.push(Event { name: name.expect("event line"), data: data.expect("data line"), at: start.elapsed() });
        }
    }
    assert!(errored || buf.is_empty(), "trailing partial event {buf:?}");
    (events, errored)
}

pub fn names(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.name.as_str()).collect()
}

/// Asserts the response is Anthropic's error shape with this type, and that `request_id`
/// matches the `request-id` header. Returns the message.
pub async fn assert_error(resp: reqwest::Response, status: u16, kind: &str) -> String {
    assert_eq!(resp.status().as_u16(), status);
    let rid = resp.headers().get("request-id").expect("request-id").to_str().unwrap().to_string();
    assert!(rid.starts_with("req_mock_"), "{rid}");
    assert!(resp.headers().get("anthropic-organization-id").is_some());
    assert_eq!(resp.headers()["content-type"].to_str().unwrap(), "application/json");
    let v: Value = resp.json().await.expect("json error body");
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], kind, "{v}");
    assert_eq!(v["request_id"], rid.as_str());
    assert_eq!(v.as_object().unwrap().len(), 3, "{v}");
    assert_eq!(v["error"].as_object().unwrap().len(), 2, "{v}");
    v["error"]["message"].as_str().expect("message").to_string()
}
