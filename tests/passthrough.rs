//! Anthropic pass-through: bytes, headers, statuses and streams cross the gateway unchanged.

mod common;

use std::time::{Duration, Instant};

use common::{GOOD_KEY, Harness, error_of, simple_body};
use futures_util::StreamExt;
use mock_upstream::Scripted;

#[tokio::test]
async fn body_bytes_query_and_client_headers_reach_the_upstream_unchanged() {
    let h = Harness::start().await;
    // Odd spacing, key order and unknown fields must survive byte for byte.
    let body = "{ \"max_tokens\" : 64,\"model\":\"claude-sonnet-5\",\n \"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"unknown_field\":{\"x\":[1,2.50]} }";
    let response = h
        .http
        .post(format!("{}/v1/messages?beta=true", h.url))
        .header("x-api-key", "client-supplied-key")
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "claude-code-20250219,mid-conversation-system-2026-04-07")
        .header("x-claude-code-session-id", "session-123")
        .header("x-custom-thing", "kept")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("request-id"), "upstream request-id comes back");
    assert!(response.headers().contains_key("anthropic-ratelimit-requests-remaining"));
    assert!(response.headers().contains_key("x-gateway-request-id"));
    let message: serde_json::Value = response.json().await.unwrap();
    assert_eq!(message["content"][0]["text"], mock_upstream::DEFAULT_TEXT);

    let recorded = h.mock.requests();
    let upstream = recorded.iter().find(|r| r.path == "/v1/messages").expect("request went upstream");
    assert_eq!(upstream.body, body);
    assert_eq!(upstream.query.as_deref(), Some("beta=true"));
    assert_eq!(upstream.header("x-api-key"), Some(GOOD_KEY), "the account's key replaces the client's");
    assert!(upstream.header("authorization").is_none());
    assert_eq!(upstream.header("anthropic-beta"), Some("claude-code-20250219,mid-conversation-system-2026-04-07"));
    assert_eq!(upstream.header("x-claude-code-session-id"), Some("session-123"));
    assert_eq!(upstream.header("x-custom-thing"), Some("kept"));
    assert_ne!(upstream.header("host"), Some(h.url.trim_start_matches("http://")));
    h.shutdown().await;
}

#[tokio::test]
async fn upstream_errors_pass_through_with_status_headers_and_body() {
    let h = Harness::with(|p| {
        common::add_account(p, "limited", "sk-ant-ratelimited-1", &[]);
    })
    .await;
    let response = h.message(&[]).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "30");
    assert!(response.headers().contains_key("anthropic-ratelimit-requests-reset"));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert!(body["request_id"].as_str().unwrap().starts_with("req_mock_"), "the upstream's own body: {body}");
    h.shutdown().await;

    // With no other account to fail over to, the last upstream failure goes back as it was.
    let h = Harness::start().await;
    h.mock.enqueue(Scripted::Response {
        status: 529,
        headers: vec![("x-should-retry".into(), "true".into())],
        body: r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#.into(),
    });
    let response = h.message(&[]).await;
    assert_eq!(response.status(), 529);
    assert_eq!(response.headers()["x-should-retry"], "true");
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
    );
    h.shutdown().await;
}

#[tokio::test]
async fn stream_events_arrive_one_by_one_as_the_upstream_sends_them() {
    let h = Harness::start().await;
    let events = mock_upstream::message_stream_events("claude-sonnet-5", &["Hel", "lo"]);
    let event_count = events.len();
    h.mock.enqueue(Scripted::Stream { events, interval_ms: 200, cut_after: None });
    let started = Instant::now();
    let response = h.http.post(format!("{}/v1/messages", h.url)).body(simple_body(true)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    let first_at = started.elapsed();
    let first = String::from_utf8_lossy(&first).to_string();
    // The upstream sends the second event 200 ms after the first: holding anything back would either delay the
    // first chunk past that point or merge the second event into it.
    assert!(first.starts_with("event: message_start"), "{first}");
    assert!(!first.contains("content_block_start"), "second event was held back with the first: {first}");
    assert!(first_at < Duration::from_millis(180), "first event took {first_at:?}");
    let mut rest = String::new();
    while let Some(chunk) = stream.next().await {
        rest.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    assert_eq!(rest.matches("event: ").count() + 1, event_count);
    assert!(rest.trim_end().ends_with(r#"data: {"type":"message_stop"}"#), "{rest}");
    h.shutdown().await;
}

#[tokio::test]
async fn count_tokens_and_models_are_forwarded() {
    let h = Harness::start().await;
    let response = h
        .http
        .post(format!("{}/v1/messages/count_tokens?beta=true", h.url))
        .body(r#"{"model":"claude-sonnet-5","messages":[{"role":"user","content":"count me"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["input_tokens"].as_u64().unwrap() > 0);

    let response = h.http.get(format!("{}/v1/models?limit=2", h.url)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    let models = h.mock.requests().into_iter().find(|r| r.path == "/v1/models").unwrap();
    assert_eq!(models.query.as_deref(), Some("limit=2"));
    assert_eq!(models.header("x-api-key"), Some(GOOD_KEY));
    h.shutdown().await;
}

#[tokio::test]
async fn unreachable_upstream_is_502_and_slow_upstream_is_504() {
    let h = Harness::with_config("", "  read_timeout_secs: 0.5\n", |p| {
        common::add_account(p, "primary", GOOD_KEY, &[]);
    })
    .await;
    h.mock.enqueue(Scripted::Delay { ms: 2_000 });
    let message = error_of(h.message(&[]).await, 504, "api_error").await;
    assert!(message.contains("did not answer"), "{message}");

    h.mock.enqueue(Scripted::Reset);
    let message = error_of(h.message(&[]).await, 502, "api_error").await;
    assert!(message.contains("primary"), "{message}");
    h.shutdown().await;

    // Nothing listens on the account's base URL at all.
    let dead = Harness::with(|p| {
        llm_gateway::config::ConfigFile::new(p)
            .update(|c| {
                c.upstream.base_url = "http://127.0.0.1:9".into();
                Ok(())
            })
            .unwrap();
        common::add_account(p, "primary", GOOD_KEY, &[]);
    })
    .await;
    let message = error_of(dead.message(&[]).await, 502, "api_error").await;
    assert!(message.contains("cannot reach the upstream"), "{message}");
    dead.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_lets_a_running_stream_finish() {
    let h = Harness::start().await;
    let events = mock_upstream::message_stream_events("claude-sonnet-5", &["a", "b", "c"]);
    h.mock.enqueue(Scripted::Stream { events, interval_ms: 100, cut_after: None });
    let response = h.http.post(format!("{}/v1/messages", h.url)).body(simple_body(true)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let Harness { gateway, mock, dir, .. } = h;
    let stopping = tokio::spawn(async move { gateway.unwrap().shutdown().await });
    let text = response.text().await.unwrap();
    assert!(text.contains("message_stop"), "stream was cut by shutdown: {text}");
    stopping.await.unwrap();
    drop((mock, dir));
}

/// An upstream that streams an event every 50 ms until the connection is closed, then reports that it was.
async fn endless_stream_upstream() -> (String, tokio::sync::oneshot::Receiver<usize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let _ = socket.read(&mut buf).await;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        socket.write_all(head.as_bytes()).await.unwrap();
        let mut sent = 0;
        loop {
            let event = "event: ping\ndata: {\"type\":\"ping\"}\n\n";
            let chunk = format!("{:x}\r\n{event}\r\n", event.len());
            if socket.write_all(chunk.as_bytes()).await.is_err() || socket.flush().await.is_err() {
                break;
            }
            sent += 1;
            if sent > 200 {
                break; // 10 s: the gateway never closed the connection
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = closed_tx.send(sent);
    });
    (url, closed_rx)
}

#[tokio::test]
async fn client_going_away_cancels_the_upstream_call() {
    let (upstream_url, closed) = endless_stream_upstream().await;
    let h = Harness::with(|p| {
        llm_gateway::config::ConfigFile::new(p)
            .update(|c| {
                c.upstream.base_url = upstream_url.clone();
                Ok(())
            })
            .unwrap();
        common::add_account(p, "primary", GOOD_KEY, &[]);
    })
    .await;
    let response = h.http.post(format!("{}/v1/messages", h.url)).body(simple_body(true)).send().await.unwrap();
    let mut stream = response.bytes_stream();
    assert!(stream.next().await.unwrap().unwrap().starts_with(b"event: ping"));
    drop(stream);
    let sent = tokio::time::timeout(Duration::from_secs(15), closed).await.expect("upstream finished").unwrap();
    assert!(sent < 100, "upstream kept streaming for {sent} events after the client left");
    h.shutdown().await;
}
