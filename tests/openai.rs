//! OpenAI Chat Completions clients through the gateway (issue #3): conversion both ways over HTTP, streaming,
//! errors in OpenAI's shape, models for both SDKs, and format detection.

mod common;

use common::{GOOD_KEY, Harness};
use mock_upstream::Scripted;
use serde_json::{Value, json};

async fn chat(h: &Harness, body: Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = h.http.post(format!("{}/v1/chat/completions", h.url)).json(&body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().await.unwrap()
}

async fn openai_error(response: reqwest::Response, status: u16, kind: &str) -> String {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert!(body["error"].get("param").is_some() && body["error"].get("code").is_some(), "{body}");
    body["error"]["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn chat_completion_is_converted_both_ways() {
    let h = Harness::start().await;
    let response = chat(
        &h,
        json!({"model": "gpt-4o", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"}
        ]}),
        &[],
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4o", "the client's model name is echoed");
    assert_eq!(body["choices"][0]["message"]["content"], mock_upstream::DEFAULT_TEXT);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    let sent = h.mock.requests().into_iter().find(|r| r.path == "/v1/messages").unwrap();
    let upstream = sent.json().unwrap();
    assert!(upstream["model"].as_str().unwrap().starts_with("claude-"), "{upstream}");
    assert_eq!(upstream["system"][0]["text"], "Be brief.");
    assert_eq!(upstream["max_tokens"], 4096);
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("x-api-key"), Some(GOOD_KEY));
    h.shutdown().await;
}

#[tokio::test]
async fn streamed_chunks_start_with_the_role_and_end_with_done() {
    let h = Harness::start().await;
    let response = chat(
        &h,
        json!({"model": "claude-sonnet-5", "stream": true, "stream_options": {"include_usage": true},
               "messages": [{"role": "user", "content": "hi"}]}),
        &[],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.unwrap();
    let frames: Vec<&str> = text.split("\n\n").filter(|f| !f.is_empty()).collect();
    assert_eq!(frames.last(), Some(&"data: [DONE]"), "{text}");
    // The upstream's ping (the mock sends one after message_start) becomes an SSE comment.
    assert_eq!(frames[1], ": ping", "{text}");
    let frames: Vec<&str> = frames.into_iter().filter(|f| !f.starts_with(':')).collect();
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(f.trim_start_matches("data: ")).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect::<Vec<_>>().concat();
    assert_eq!(content, mock_upstream::DEFAULT_TEXT);
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]), "{usage}");
    assert!(usage["usage"]["completion_tokens"].as_u64().is_some(), "{usage}");
    h.shutdown().await;
}

#[tokio::test]
async fn errors_reach_openai_clients_in_openai_shape() {
    let h = Harness::start().await;
    let message = openai_error(
        chat(&h, json!({"model": "gpt-4o", "n": 2, "messages": [{"role": "user", "content": "hi"}]}), &[]).await,
        400,
        "invalid_request_error",
    )
    .await;
    assert!(message.contains('n'), "{message}");
    openai_error(
        chat(
            &h,
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
            &[("x-mock-status", "400")],
        )
        .await,
        400,
        "invalid_request_error",
    )
    .await;

    let key = h.manager().add_client_key("ide").unwrap();
    h.eventually("auth enforced", || async {
        chat(&h, json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}), &[]).await.status() == 401
    })
    .await;
    let message = openai_error(
        chat(
            &h,
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
            &[("authorization", "Bearer wrong")],
        )
        .await,
        401,
        "authentication_error",
    )
    .await;
    assert_eq!(message, "invalid gateway key");
    let bearer = format!("Bearer {key}");
    let response = chat(
        &h,
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        &[("authorization", &bearer), ("x-mock-status", "429")],
    )
    .await;
    assert!(response.headers().contains_key("retry-after"));
    openai_error(response, 429, "rate_limit_error").await;
    h.shutdown().await;
}

#[tokio::test]
async fn a_stream_failing_midway_ends_with_an_openai_error_frame() {
    let h = Harness::start().await;
    let mut events = mock_upstream::message_stream_events("claude-sonnet-5", &["partial ", "answer"]);
    events.truncate(4);
    h.mock.enqueue(Scripted::Stream { events, interval_ms: 0, cut_after: Some(4) });
    let response = chat(
        &h,
        json!({"model": "claude-sonnet-5", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        &[],
    )
    .await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let last = text.split("\n\n").filter(|f| !f.is_empty()).last().unwrap();
    let frame: Value = serde_json::from_str(last.trim_start_matches("data: ")).unwrap();
    assert!(frame["error"]["message"].is_string(), "{text}");
    assert!(!text.contains("[DONE]"), "a cut answer must not look complete: {text}");
    h.shutdown().await;
}

#[tokio::test]
async fn models_list_satisfies_both_sdks_and_wrong_routes_are_named() {
    let h = Harness::start().await;
    let openai: Value = h.http.get(format!("{}/v1/models", h.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(openai["object"], "list");
    assert_eq!(openai["data"][0]["object"], "model");
    assert!(openai["data"][0]["id"].as_str().unwrap().starts_with("claude-"));
    assert!(openai["data"][0]["created_at"].is_string(), "Anthropic's fields are kept too");
    let anthropic: Value = h
        .http
        .get(format!("{}/v1/models", h.url))
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(anthropic.get("object").is_none(), "Anthropic clients get the upstream's body untouched");

    let response = h
        .http
        .post(format!("{}/v1/messages", h.url))
        .json(&json!({"model": "gpt-4o", "max_completion_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let message = common::error_of(response, 400, "invalid_request_error").await;
    assert!(message.contains("/v1/chat/completions"), "{message}");
    let message = openai_error(
        chat(&h, json!({"model": "claude-sonnet-5", "max_tokens": 10, "system": "x", "messages": [{"role": "user", "content": "hi"}]}), &[]).await,
        400,
        "invalid_request_error",
    )
    .await;
    assert!(message.contains("/v1/messages"), "{message}");
    h.shutdown().await;
}
