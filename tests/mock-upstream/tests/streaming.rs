//! SSE: exact event order and shapes, per-event timing, cut streams.

mod common;

use std::time::{Duration, Instant};

use common::{body, names, post, read_events};
use mock_upstream::{MockUpstream, Scripted, message_stream_events};
use serde_json::json;

#[tokio::test]
async fn text_stream_exact_sequence_and_shapes() {
    let mock = MockUpstream::start().await.unwrap();
    let req = body(true);
    let resp = post(&mock.base_url(), "sk-ant-api03-good", &req).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert!(resp.headers()["request-id"].to_str().unwrap().starts_with("req_mock_"));
    let (ev, errored) = read_events(resp).await;
    assert!(!errored);
    assert_eq!(
        names(&ev),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let id = ev[0].data["message"]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("msg_mock_"));
    let input_tokens = (req.to_string().len() / 4) as u64;
    assert_eq!(
        ev[0].data,
        json!({"type":"message_start","message":{"id":id,"type":"message","role":"assistant",
            "content":[],"model":"claude-sonnet-5","stop_reason":null,"stop_sequence":null,
            "usage":{"input_tokens":input_tokens,"cache_creation_input_tokens":0,
                     "cache_read_input_tokens":0,"output_tokens":1}}})
    );
    assert_eq!(ev[1].data, json!({"type":"ping"}));
    assert_eq!(ev[2].data, json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}));
    let mut text = String::new();
    for e in &ev[3..6] {
        assert_eq!(e.data["type"], "content_block_delta");
        assert_eq!(e.data["index"], 0);
        assert_eq!(e.data["delta"]["type"], "text_delta");
        assert_eq!(e.data["delta"].as_object().unwrap().len(), 2);
        text.push_str(e.data["delta"]["text"].as_str().unwrap());
    }
    assert_eq!(text, mock_upstream::DEFAULT_TEXT);
    assert_eq!(ev[6].data, json!({"type":"content_block_stop","index":0}));
    assert_eq!(
        ev[7].data,
        json!({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},
               "usage":{"output_tokens":5}})
    );
    assert_eq!(ev[8].data, json!({"type":"message_stop"}));
}

#[tokio::test]
async fn tool_use_stream_exact_sequence_and_shapes() {
    let mock = MockUpstream::start().await.unwrap();
    let mut req = body(true);
    req["tools"] = json!([
        {"name":"get_weather","description":"w","input_schema":{"type":"object",
          "properties":{"city":{"type":"string"},"days":{"type":"integer"}},"required":["city","days"]}},
        {"name":"other","input_schema":{"type":"object"}}
    ]);
    let resp = post(&mock.base_url(), "k", &req).send().await.unwrap();
    let (ev, errored) = read_events(resp).await;
    assert!(!errored);
    assert_eq!(
        names(&ev),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let start = &ev[7].data;
    assert_eq!(start["index"], 1);
    let tool_id = start["content_block"]["id"].as_str().unwrap();
    assert!(tool_id.starts_with("toolu_mock_"));
    assert_eq!(start["content_block"], json!({"type":"tool_use","id":tool_id,"name":"get_weather","input":{}}));
    let parts: Vec<&str> = ev[8..11]
        .iter()
        .map(|e| {
            assert_eq!(e.data["index"], 1);
            assert_eq!(e.data["delta"]["type"], "input_json_delta");
            e.data["delta"]["partial_json"].as_str().unwrap()
        })
        .collect();
    assert_eq!(parts[0], "");
    let input: serde_json::Value = serde_json::from_str(&parts.concat()).unwrap();
    assert_eq!(input, json!({"city":"mock"}));
    assert_eq!(ev[11].data, json!({"type":"content_block_stop","index":1}));
    assert_eq!(ev[12].data["delta"]["stop_reason"], "tool_use");
    assert!(ev[12].data["usage"]["output_tokens"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn events_arrive_separately_in_time() {
    let mock = MockUpstream::start().await.unwrap();
    let interval = Duration::from_millis(300);
    let resp = post(&mock.base_url(), "k", &body(true)).header("x-mock-event-interval-ms", "300").send().await.unwrap();
    let (ev, _) = read_events(resp).await;
    assert_eq!(ev.len(), 9);
    // The first event is in hand well before the second one is even sent.
    assert!(ev[0].at < Duration::from_millis(200), "{:?}", ev[0].at);
    for pair in ev.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= interval - Duration::from_millis(30), "gap {gap:?}");
    }
}

#[tokio::test]
async fn scripted_stream_with_interval_and_cut() {
    let mock = MockUpstream::start().await.unwrap();
    let events = message_stream_events("claude-opus-4-8", &["Hel", "lo"]);
    assert_eq!(events.len(), 8);
    mock.enqueue(Scripted::Stream { events: events.clone(), interval_ms: 0, cut_after: None });
    mock.enqueue(Scripted::Stream { events: events.clone(), interval_ms: 100, cut_after: Some(3) });
    let url = mock.base_url();

    let (ev, errored) = read_events(post(&url, "k", &body(true)).send().await.unwrap()).await;
    assert!(!errored);
    assert_eq!(ev.len(), 8);
    for (got, (name, data)) in ev.iter().zip(&events) {
        assert_eq!(&got.name, name);
        assert_eq!(got.data, serde_json::from_str::<serde_json::Value>(data).unwrap());
    }

    let t = Instant::now();
    let resp = post(&url, "k", &body(true)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let (ev, errored) = read_events(resp).await;
    assert!(errored, "a cut stream must end in a body error");
    assert_eq!(names(&ev), ["message_start", "ping", "content_block_start"]);
    assert!(t.elapsed() >= Duration::from_millis(200));

    // The server is still fine afterwards.
    let resp = post(&url, "k", &body(false)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn gzip_answers_flush_every_event_and_compress_json_whole() {
    use std::io::Write;
    let mock = MockUpstream::start().await.unwrap();
    let url = mock.base_url();
    let resp = post(&url, "k", &body(true))
        .header("accept-encoding", "gzip, deflate")
        .header("x-mock-event-interval-ms", "200")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let mut chunks = resp.bytes_stream();
    let first = futures_util::StreamExt::next(&mut chunks).await.unwrap().unwrap();
    // The first chunk alone decodes to the whole first event: the encoder flushed it.
    let mut decoder = flate2::write::GzDecoder::new(Vec::new());
    decoder.write_all(&first).unwrap();
    decoder.flush().unwrap();
    let text = String::from_utf8(decoder.get_ref().clone()).unwrap();
    assert!(text.starts_with("event: message_start\ndata: ") && text.ends_with("\n\n"), "{text:?}");
    let mut rest = first.to_vec();
    while let Some(chunk) = futures_util::StreamExt::next(&mut chunks).await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    let all = String::from_utf8(mock_upstream::gunzip(&rest).unwrap()).unwrap();
    assert!(all.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"), "{all}");

    let resp = post(&url, "k", &body(false)).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let length: usize = resp.headers()["content-length"].to_str().unwrap().parse().unwrap();
    let bytes = resp.bytes().await.unwrap();
    assert_eq!(bytes.len(), length);
    let message: serde_json::Value = serde_json::from_slice(&mock_upstream::gunzip(&bytes).unwrap()).unwrap();
    assert_eq!(message["type"], "message");

    let resp = post(&url, "k", &body(false)).header("accept-encoding", "identity").send().await.unwrap();
    assert!(!resp.headers().contains_key("content-encoding"));
    let resp = post(&url, "k", &body(false)).header("x-mock-encoding", "gzip").send().await.unwrap();
    assert_eq!(resp.headers()["content-encoding"], "gzip", "forced without accept-encoding");
}

#[tokio::test]
async fn raw_chunks_can_cut_a_stream_in_the_middle_of_an_event() {
    let mock = MockUpstream::start().await.unwrap();
    let chunks = vec!["event: ping\ndata: {\"type\":\"ping\"}\n\nevent: message_start\ndata: {\"ty".to_string()];
    mock.enqueue(Scripted::Chunks { chunks: chunks.clone(), interval_ms: 0, end: mock_upstream::StreamEnd::Cut });
    let resp = post(&mock.base_url(), "k", &body(true)).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut received = Vec::new();
    let mut stream = resp.bytes_stream();
    let mut errored = false;
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        match chunk {
            Ok(c) => received.extend_from_slice(&c),
            Err(_) => errored = true,
        }
    }
    assert!(errored, "the body ends in an error");
    assert_eq!(received, chunks[0].as_bytes(), "exactly the scripted bytes, cut mid-event");
}

#[tokio::test]
async fn cache_tokens_are_reported_when_asked() {
    let mock = MockUpstream::start().await.unwrap();
    for stream in [false, true] {
        let resp = post(&mock.base_url(), "sk-ant-api03-good", &body(stream))
            .header("x-mock-cache-tokens", "1200, 3400")
            .send()
            .await
            .unwrap();
        let usage = if stream {
            read_events(resp).await.0[0].data["message"]["usage"].clone()
        } else {
            resp.json::<serde_json::Value>().await.unwrap()["usage"].clone()
        };
        assert_eq!(usage["cache_creation_input_tokens"], 1200, "stream {stream}");
        assert_eq!(usage["cache_read_input_tokens"], 3400, "stream {stream}");
    }
}
