//! Scripts (FIFO, reset, delay), recording, the control API, non-stream replies, the binary.

mod common;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use common::{body, client, post};
use mock_upstream::{MockUpstream, RecordedRequest, Scripted};
use serde_json::{Value, json};

#[tokio::test]
async fn enqueue_is_fifo_then_default() {
    let mock = MockUpstream::start().await.unwrap();
    let url = mock.base_url();
    mock.enqueue(Scripted::Response {
        status: 503,
        headers: vec![("x-first".into(), "1".into())],
        body: "first".into(),
    });
    mock.enqueue(Scripted::Response {
        status: 418,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: "second".into(),
    });
    // Non-/v1/messages requests do not consume scripts.
    let r = client().get(format!("{url}/v1/models")).header("x-api-key", "k").send().await.unwrap();
    assert_eq!(r.status(), 200);

    let r = post(&url, "k", &body(false)).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["x-first"], "1");
    assert!(r.headers()["request-id"].to_str().unwrap().starts_with("req_mock_"));
    assert_eq!(r.text().await.unwrap(), "first");
    let r = client().post(format!("{url}/v1/messages/count_tokens?beta=true")).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 418);
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(r.text().await.unwrap(), "second");
    let r = post(&url, "k", &body(false)).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn reset_closes_the_connection_without_a_response() {
    let mock = MockUpstream::start().await.unwrap();
    mock.enqueue(Scripted::Reset);
    let err = post(&mock.base_url(), "k", &body(false)).send().await.unwrap_err();
    assert!(!err.is_timeout() && err.status().is_none(), "{err:?}");
    // It was accepted (recorded) and the server still serves.
    assert_eq!(mock.requests().len(), 1);
    let r = post(&mock.base_url(), "k", &body(false)).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn delay_then_default() {
    let mock = MockUpstream::start().await.unwrap();
    mock.enqueue(Scripted::Delay { ms: 600 });
    let err = post(&mock.base_url(), "k", &body(false)).timeout(Duration::from_millis(150)).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");

    mock.enqueue(Scripted::Delay { ms: 300 });
    let t = Instant::now();
    let r = post(&mock.base_url(), "k", &body(false)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn recording_captures_method_path_query_headers_body() {
    let mock = MockUpstream::start().await.unwrap();
    let b = body(true);
    let _ = client()
        .post(format!("{}/v1/messages?beta=true", mock.base_url()))
        .header("X-Api-Key", "sk-rec")
        .header("anthropic-beta", "a-1")
        .header("anthropic-beta", "b-2")
        .header("X-Custom", "Value With Case")
        .json(&b)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 1);
    let r: &RecordedRequest = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.query.as_deref(), Some("beta=true"));
    assert_eq!(r.header("x-api-key"), Some("sk-rec"));
    assert_eq!(r.header("X-CUSTOM"), Some("Value With Case"));
    assert_eq!(r.header_all("anthropic-beta"), ["a-1", "b-2"]);
    assert!(r.headers.iter().all(|(n, _)| *n == n.to_ascii_lowercase()));
    let pos = |n: &str| r.headers.iter().position(|(h, _)| h == n).unwrap();
    assert!(pos("x-api-key") < pos("anthropic-beta") && pos("anthropic-beta") < pos("x-custom"));
    assert_eq!(r.json(), Some(b.clone()));
    assert_eq!(r.body, b.to_string());

    mock.clear_requests();
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn control_api_over_http() {
    let mock = MockUpstream::start().await.unwrap();
    let url = mock.base_url();
    let c = client();
    let script = json!({"kind":"response","status":529,"body":"{\"x\":1}"});
    let r = c.post(format!("{url}/_mock/enqueue")).json(&script).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let bad = c.post(format!("{url}/_mock/enqueue")).json(&json!({"kind":"nope"})).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let r = c
        .post(format!("{url}/_mock/enqueue"))
        .json(&json!({"kind":"stream","events":[["ping","{\"type\":\"ping\"}"]]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    let r = post(&url, "k", &body(false)).header("x-trace", "t1").send().await.unwrap();
    assert_eq!(r.status(), 529);
    assert_eq!(r.headers()["content-type"], "application/json");
    let r = post(&url, "k", &body(true)).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "event: ping\ndata: {\"type\":\"ping\"}\n\n");

    let list: Vec<Value> = c.get(format!("{url}/_mock/requests")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list.len(), 2, "control requests are not recorded");
    assert_eq!(list[0]["path"], "/v1/messages");
    assert!(list[0]["headers"].as_array().unwrap().contains(&json!(["x-trace", "t1"])));
    let r = c.delete(format!("{url}/_mock/requests")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let list: Vec<Value> = c.get(format!("{url}/_mock/requests")).send().await.unwrap().json().await.unwrap();
    assert!(list.is_empty());
}

#[tokio::test]
async fn non_stream_messages_count_tokens_models() {
    let mock = MockUpstream::start().await.unwrap();
    let url = mock.base_url();
    let b = body(false);
    let r = post(&url, "k", &b).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let m: Value = r.json().await.unwrap();
    let id = m["id"].as_str().unwrap();
    assert!(id.starts_with("msg_mock_"));
    assert_eq!(
        m,
        json!({"id":id,"type":"message","role":"assistant","model":"claude-sonnet-5",
            "content":[{"type":"text","text":"Hello from the mock upstream."}],
            "stop_reason":"end_turn","stop_sequence":null,
            "usage":{"input_tokens":b.to_string().len()/4,"cache_creation_input_tokens":0,
                     "cache_read_input_tokens":0,"output_tokens":5}})
    );

    let r = post(&url, "k", &b).header("x-mock-text", "custom reply").send().await.unwrap();
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["content"][0]["text"], "custom reply");

    // tool_use when tools are present, then the tool_result is echoed.
    let mut t = b.clone();
    t["tools"] = json!([{"name":"Bash","input_schema":{"type":"object",
        "properties":{"command":{"type":"string"}},"required":["command"]}}]);
    let m: Value = post(&url, "k", &t).send().await.unwrap().json().await.unwrap();
    assert_eq!(m["stop_reason"], "tool_use");
    assert_eq!(m["content"][0]["type"], "text");
    assert_eq!(m["content"][1]["type"], "tool_use");
    assert_eq!(m["content"][1]["name"], "Bash");
    assert_eq!(m["content"][1]["input"], json!({"command":"mock"}));
    let tool_id = m["content"][1]["id"].as_str().unwrap();
    assert!(tool_id.starts_with("toolu_mock_"));
    t["messages"] = json!([
        {"role":"user","content":"run it"},
        {"role":"assistant","content":m["content"].clone()},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":tool_id,"content":"it worked"}]}
    ]);
    let m: Value = post(&url, "k", &t).send().await.unwrap().json().await.unwrap();
    assert_eq!(m["stop_reason"], "end_turn");
    assert_eq!(m["content"][0]["text"], "Tool result received: it worked");

    let ct = json!({"model":"claude-opus-4-8","messages":[{"role":"user","content":"hello"}]});
    let r = client()
        .post(format!("{url}/v1/messages/count_tokens?beta=true"))
        .header("x-api-key", "k")
        .json(&ct)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, json!({"input_tokens": ct.to_string().len() / 4}));

    let get = |q: &'static str| client().get(format!("{url}/v1/models{q}")).header("x-api-key", "k").send();
    let v: Value = get("").await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = v["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["claude-opus-4-8", "claude-sonnet-5", "claude-haiku-4-5-20251001"]);
    assert_eq!(v["has_more"], false);
    assert_eq!(v["first_id"], "claude-opus-4-8");
    assert_eq!(v["last_id"], "claude-haiku-4-5-20251001");
    assert_eq!(v["data"][0]["type"], "model");
    assert_eq!(v["data"][0]["display_name"], "Claude Opus 4.8");
    let v: Value = get("?limit=2").await.unwrap().json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["has_more"], true);
    assert_eq!(v["last_id"], "claude-sonnet-5");
    let v: Value = get("?limit=2&after_id=claude-sonnet-5").await.unwrap().json().await.unwrap();
    assert_eq!(v["data"][0]["id"], "claude-haiku-4-5-20251001");
    assert_eq!(v["has_more"], false);
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let mock = MockUpstream::start().await.unwrap();
    let addr = mock.addr();
    assert_eq!(mock.base_url(), format!("http://127.0.0.1:{}", addr.port()));
    mock.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[test]
fn binary_prints_address_and_stops_on_sigterm() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mock-upstream"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim_end().strip_prefix("listening on ").unwrap_or_else(|| panic!("bad line {line:?}")).to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let status = rt.block_on(async {
        client()
            .post(format!("{url}/_mock/enqueue"))
            .json(&json!({"kind":"response","status":402,"body":"{}"}))
            .send()
            .await
            .unwrap();
        post(&url, "k", &body(false)).send().await.unwrap().status()
    });
    assert_eq!(status, 402);
    let killed = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
}
