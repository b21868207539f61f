//! The mock upstream: answers like Anthropic's API with fixed bodies, as cheaply as hyper allows.
//!
//! - `POST …/v1/messages`: a fixed `message` JSON, or (when the body has `"stream": true`) Anthropic SSE events:
//!   `message_start`, `content_block_start`, `ping` at once, then `--sse-deltas` `content_block_delta` events
//!   `--sse-interval-ms` apart, then `content_block_stop`, `message_delta`, `message_stop`.
//! - `POST …/v1/chat/completions`: a fixed OpenAI `chat.completion`, or `chat.completion.chunk` events likewise.
//! - `POST …/v1/messages/count_tokens`, `GET …/v1/models`, `GET /health`, `GET /bench/stats` (requests served).
//!
//! Every streamed event carries `<ts:NANOS>` (wall clock when the upstream emitted it), in `message_start`'s id
//! and in every text delta, so the SSE client can tell how long each event took to get through a proxy.
//! The request body is always read in full (as a real upstream does) and otherwise ignored.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::util::{Args, now_ns};

type Body = BoxBody<Bytes, Infallible>;

#[derive(Clone, Copy)]
struct Pace {
    interval: Duration,
    deltas: usize,
}

static SERVED: AtomicU64 = AtomicU64::new(0);

const MESSAGE: &str = r#"{"id":"msg_01BenchUpstreamFixedReply","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hello from the benchmark upstream. This is a fixed reply."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":250,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":14}}"#;
const CHAT: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"claude-sonnet-4-5","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the benchmark upstream. This is a fixed reply."},"finish_reason":"stop"}],"usage":{"prompt_tokens":250,"completion_tokens":14,"total_tokens":264}}"#;
const COUNT: &str = r#"{"input_tokens":250}"#;
const MODELS: &str = r#"{"data":[{"type":"model","id":"claude-sonnet-4-5","display_name":"Claude Sonnet 4.5","created_at":"2025-09-29T00:00:00Z"}],"has_more":false,"first_id":"claude-sonnet-4-5","last_id":"claude-sonnet-4-5"}"#;

pub fn main(mut args: Args) -> Result<(), String> {
    let listen = args.req("--listen")?;
    let workers: usize = args.num("--workers", 2)?;
    let pace = Pace {
        interval: Duration::from_millis(args.num("--sse-interval-ms", 0)?),
        deltas: args.num("--sse-deltas", 20)?,
    };
    args.done()?;
    let rt = crate::util::runtime(workers, false)?;
    rt.block_on(async move {
        let listener = TcpListener::bind(&listen).await.map_err(|e| format!("bind {listen}: {e}"))?;
        eprintln!("gwbench upstream listening on {listen} (workers {workers}, sse {pace:?})", pace = pace.interval);
        let pace = Arc::new(pace);
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let pace = pace.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(req, *pace));
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    })
}

async fn handle(req: Request<Incoming>, pace: Pace) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(plain(StatusCode::BAD_REQUEST, "application/json", r#"{"error":"body"}"#)),
    };
    let path = parts.uri.path();
    let served = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
    Ok(match (parts.method, path) {
        (Method::GET, "/health") => plain(StatusCode::OK, "application/json", r#"{"status":"ok"}"#),
        (Method::GET, "/bench/stats") => {
            let text = format!("{{\"requests\":{}}}", served - 1);
            SERVED.fetch_sub(1, Ordering::Relaxed);
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(text)).boxed())
                .unwrap()
        }
        (Method::POST, p) if p.ends_with("/v1/messages/count_tokens") => anthropic(plain_body(COUNT)),
        (Method::POST, p) if p.ends_with("/v1/messages") => {
            if wants_stream(&body) {
                anthropic(sse(pace, Format::Anthropic))
            } else {
                anthropic(plain_body(MESSAGE))
            }
        }
        (Method::POST, p) if p.ends_with("/chat/completions") => {
            if wants_stream(&body) {
                openai(sse(pace, Format::OpenAi))
            } else {
                openai(plain_body(CHAT))
            }
        }
        (Method::GET, p) if p.ends_with("/v1/models") => anthropic(plain_body(MODELS)),
        _ => plain(StatusCode::NOT_FOUND, "application/json", r#"{"type":"error","error":{"type":"not_found_error","message":"no such route"}}"#),
    })
}

/// `"stream"` followed by `:` and `true` anywhere in the body (serialisers differ in spacing).
fn wants_stream(body: &[u8]) -> bool {
    let finder = memchr::memmem::Finder::new(b"\"stream\"");
    for pos in finder.find_iter(body) {
        let mut i = pos + 8;
        while i < body.len() && body[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < body.len() && body[i] == b':' {
            i += 1;
            while i < body.len() && body[i].is_ascii_whitespace() {
                i += 1;
            }
            return body[i..].starts_with(b"true");
        }
    }
    false
}

enum Payload {
    Json(Body),
    Sse(Body),
}

fn plain_body(text: &'static str) -> Payload {
    Payload::Json(Full::new(Bytes::from_static(text.as_bytes())).boxed())
}

fn plain(status: StatusCode, ct: &'static str, text: &'static str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, ct)
        .body(Full::new(Bytes::from_static(text.as_bytes())).boxed())
        .unwrap()
}

/// The response headers Anthropic's API sends for an API key (request id and rate-limit windows).
fn anthropic(payload: Payload) -> Response<Body> {
    let (ct, body) = match payload {
        Payload::Json(b) => ("application/json", b),
        Payload::Sse(b) => ("text/event-stream; charset=utf-8", b),
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    h.insert("request-id", HeaderValue::from_static("req_011CBenchUpstreamFixed"));
    h.insert("anthropic-organization-id", HeaderValue::from_static("00000000-0000-4000-8000-000000000000"));
    h.insert("anthropic-ratelimit-requests-limit", HeaderValue::from_static("4000"));
    h.insert("anthropic-ratelimit-requests-remaining", HeaderValue::from_static("3999"));
    h.insert("anthropic-ratelimit-requests-reset", HeaderValue::from_static("2030-01-01T00:00:00Z"));
    h.insert("anthropic-ratelimit-tokens-limit", HeaderValue::from_static("2000000"));
    h.insert("anthropic-ratelimit-tokens-remaining", HeaderValue::from_static("1999000"));
    h.insert("anthropic-ratelimit-tokens-reset", HeaderValue::from_static("2030-01-01T00:00:00Z"));
    if matches!(ct, "text/event-stream; charset=utf-8") {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    r
}

fn openai(payload: Payload) -> Response<Body> {
    let (ct, body) = match payload {
        Payload::Json(b) => ("application/json", b),
        Payload::Sse(b) => ("text/event-stream; charset=utf-8", b),
    };
    let mut r = Response::new(body);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r.headers_mut().insert("x-request-id", HeaderValue::from_static("req_bench_openai"));
    r
}

#[derive(Clone, Copy)]
enum Format {
    Anthropic,
    OpenAi,
}

/// Step `i` of the event sequence: 0 = opening events, 1..=deltas = one delta each, deltas+1 = closing events.
fn event(format: Format, i: usize, deltas: usize) -> Bytes {
    let ts = now_ns();
    let text = match (format, i) {
        (Format::Anthropic, 0) => format!(
            "event: message_start\ndata: {{\"type\":\"message_start\",\"message\":{{\"id\":\"msg_bench<ts:{ts}>\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{{\"input_tokens\":250,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}}}}\n\n\
             event: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{{\"type\":\"text\",\"text\":\"\"}}}}\n\n\
             event: ping\ndata: {{\"type\": \"ping\"}}\n\n"
        ),
        (Format::Anthropic, i) if i <= deltas => format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"<ts:{ts}> word \"}}}}\n\n"
        ),
        (Format::Anthropic, _) => format!(
            "event: content_block_stop\ndata: {{\"type\":\"content_block_stop\",\"index\":0}}\n\n\
             event: message_delta\ndata: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"end_turn\",\"stop_sequence\":null}},\"usage\":{{\"output_tokens\":{deltas}}}}}\n\n\
             event: message_stop\ndata: {{\"type\":\"message_stop\"}}\n\n"
        ),
        (Format::OpenAi, 0) => format!(
            "data: {{\"id\":\"chatcmpl-bench<ts:{ts}>\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"claude-sonnet-4-5\",\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"finish_reason\":null}}]}}\n\n"
        ),
        (Format::OpenAi, i) if i <= deltas => format!(
            "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"claude-sonnet-4-5\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"<ts:{ts}> word \"}},\"finish_reason\":null}}]}}\n\n"
        ),
        (Format::OpenAi, _) => "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"claude-sonnet-4-5\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":250,\"completion_tokens\":20,\"total_tokens\":270}}\n\ndata: [DONE]\n\n".to_string(),
    };
    Bytes::from(text)
}

fn sse(pace: Pace, format: Format) -> Payload {
    let stream = futures_util::stream::unfold(0usize, move |i| async move {
        if i > pace.deltas + 1 {
            return None;
        }
        if i >= 1 && i <= pace.deltas && !pace.interval.is_zero() {
            tokio::time::sleep(pace.interval).await;
        }
        Some((Ok::<_, Infallible>(Frame::data(event(format, i, pace.deltas))), i + 1))
    });
    Payload::Sse(BodyExt::boxed(StreamBody::new(stream)))
}
