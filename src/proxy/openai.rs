//! OpenAI Chat Completions clients: convert the request to Anthropic Messages, run it through the same routing
//! and failover as Anthropic requests, and convert the answer back — streams event by event, nothing buffered
//! beyond the current event; errors in OpenAI's shape.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::BodyExt;
use rand::RngCore;

use super::{Endpoint, Recorder, exchange};
use crate::common::{AccountUsed, ApiError};
use crate::transform::openai::{
    ChunkConverter, ConvertOptions, ResponseContext, SseParser, anthropic_error_to_openai, anthropic_response_to_chat,
    chat_request_to_anthropic, models_list_for_openai, openai_error_body,
};
use crate::transform::sse::EventTooLarge;
use crate::usage::Outcome;

/// Largest upstream body converted in one piece (a non-streamed answer or an error).
const MAX_CONVERTED_BODY: usize = 64 * 1024 * 1024;

/// `POST /v1/chat/completions`.
pub async fn chat_completions(recorder: Recorder, mut headers: HeaderMap, body: Bytes) -> Response {
    let gateway = recorder.gateway().clone();
    let live = gateway.live();
    let options =
        ConvertOptions { default_max_tokens: live.config.models.default_max_tokens, aliases: &live.model_aliases };
    let event_limit = live.config.server.stream_event_limit();
    let converted = match chat_request_to_anthropic(&body, &options) {
        Ok(c) => c,
        Err(e) => {
            return recorder.answered(json_response(status_of(e.status()), e.to_body()), Outcome::ClientError);
        }
    };
    drop(live);
    prepare_headers(&mut headers);
    let mut id = [0u8; 12];
    rand::rng().fill_bytes(&mut id);
    let created = i64::try_from(gateway.now_ms() / 1000).unwrap_or(0);
    let ctx = converted.response_context(format!("chatcmpl-{}", hex::encode(id)), created);
    let stream = converted.stream;
    let delivery = exchange(recorder, Endpoint::Messages, None, headers, Bytes::from(converted.body)).await;
    match delivery.recorder {
        Some(recorder) => convert_response(delivery.response, ctx, stream, event_limit, recorder).await,
        None => delivery.response,
    }
}

/// `GET /v1/models` for callers without `anthropic-version`: one body that satisfies both SDKs' list shapes.
pub async fn models(recorder: Recorder, query: Option<&str>, mut headers: HeaderMap) -> Response {
    prepare_headers(&mut headers);
    let delivery = exchange(recorder, Endpoint::Models, query, headers, Bytes::new()).await;
    let Some(mut recorder) = delivery.recorder else {
        return delivery.response;
    };
    let (parts, body) = delivery.response.into_parts();
    let Some(bytes) = collect(body).await else {
        recorder.set_status(502);
        recorder.finish();
        return ApiError::bad_gateway("the upstream's model list could not be read").into_response();
    };
    recorder.observe(&bytes);
    recorder.sent();
    let response = if !parts.status.is_success() {
        with_parts(json_response(parts.status, anthropic_error_to_openai(parts.status.as_u16(), &bytes)), &parts)
    } else {
        match models_list_for_openai(&bytes) {
            Ok(body) => with_parts(json_response(parts.status, body), &parts),
            Err(e) => json_response(StatusCode::BAD_GATEWAY, openai_error_body(502, &e.to_string(), None)),
        }
    };
    recorder.set_status(response.status().as_u16());
    recorder.finish();
    response
}

/// Anthropic needs `anthropic-version`; OpenAI clients don't send it. The body is converted here, so the
/// upstream must not compress it.
fn prepare_headers(headers: &mut HeaderMap) {
    if !headers.contains_key("anthropic-version") {
        headers.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
    }
    headers.insert(http::header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    headers.remove(http::header::CONTENT_LENGTH);
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
}

fn status_of(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST)
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Carries over what the client should still see from the upstream answer: request ids, rate-limit and
/// retry headers, and the account used (for the log line).
fn with_parts(mut response: Response, parts: &http::response::Parts) -> Response {
    for (name, value) in &parts.headers {
        let n = name.as_str();
        if n == "request-id" || n == "retry-after" || n.starts_with("anthropic-ratelimit-") || n == "x-should-retry" {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    if let Some(id) = parts.headers.get("request-id") {
        response.headers_mut().insert("x-request-id", id.clone());
    }
    if let Some(account) = parts.extensions.get::<AccountUsed>() {
        response.extensions_mut().insert(account.clone());
    }
    response
}

async fn collect(body: Body) -> Option<Bytes> {
    http_body_util::Limited::new(body, MAX_CONVERTED_BODY).collect().await.ok().map(|c| c.to_bytes())
}

async fn convert_response(
    response: Response,
    ctx: ResponseContext,
    stream: bool,
    event_limit: usize,
    mut recorder: Recorder,
) -> Response {
    let (parts, body) = response.into_parts();
    let is_sse = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if super::stream::is_encoded(&parts.headers) {
        // Asked for identity, the upstream compressed its answer anyway; the gateway does not decode.
        let message = "the upstream sent a compressed answer although the gateway asked for none";
        let response =
            with_parts(json_response(StatusCode::BAD_GATEWAY, openai_error_body(502, message, None)), &parts);
        return finished(recorder, response);
    }
    if parts.status.is_success() && stream && is_sse {
        let mut out = Response::new(Body::from_stream(convert_stream(body, ctx, event_limit, recorder)));
        out.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        out.headers_mut().insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return with_parts(out, &parts);
    }
    let Some(bytes) = collect(body).await else {
        let message = "the upstream answer could not be read";
        let response =
            with_parts(json_response(StatusCode::BAD_GATEWAY, openai_error_body(502, message, None)), &parts);
        return finished(recorder, response);
    };
    recorder.observe(&bytes);
    let response = if !parts.status.is_success() {
        let body = anthropic_error_to_openai(parts.status.as_u16(), &bytes);
        with_parts(json_response(parts.status, body), &parts)
    } else {
        match anthropic_response_to_chat(&bytes, &ctx) {
            Ok(body) => with_parts(json_response(StatusCode::OK, body), &parts),
            Err(e) => {
                with_parts(json_response(StatusCode::BAD_GATEWAY, openai_error_body(502, &e.to_string(), None)), &parts)
            }
        }
    };
    finished(recorder, response)
}

/// Records a converted answer sent in one piece, with the status the client gets.
fn finished(mut recorder: Recorder, response: Response) -> Response {
    recorder.set_status(response.status().as_u16());
    recorder.sent();
    recorder.finish();
    response
}

/// Upstream SSE bytes → OpenAI chunks, one upstream event at a time. A transport failure mid-stream, or an event
/// longer than `event_limit` (`server.max_stream_event_bytes`), becomes an OpenAI error frame; once the converter
/// is done (including after an error), the upstream is dropped.
fn convert_stream(
    body: Body,
    ctx: ResponseContext,
    event_limit: usize,
    recorder: Recorder,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    struct State {
        upstream: axum::body::BodyDataStream,
        parser: SseParser,
        converter: ChunkConverter,
        finished: bool,
        /// The request's record: fed the upstream bytes, finished with the stream (dropped early: cancelled).
        recorder: Option<Recorder>,
    }
    let state = State {
        upstream: body.into_data_stream(),
        parser: SseParser::with_limit(event_limit),
        converter: ChunkConverter::new(ctx),
        finished: false,
        recorder: Some(recorder),
    };
    futures_util::stream::unfold(state, move |mut st| async move {
        loop {
            if st.finished {
                return None;
            }
            let frames: Vec<String> = match st.upstream.next().await {
                Some(Ok(bytes)) => {
                    if let Some(recorder) = &mut st.recorder {
                        recorder.observe(&bytes);
                    }
                    let mut frames = Vec::new();
                    for event in st.parser.push(&bytes) {
                        frames.extend(st.converter.on_event(&event.event, &event.data));
                        if st.converter.is_done() {
                            break;
                        }
                    }
                    if st.parser.overflowed() {
                        let message =
                            format!("the upstream stream was cut off: {}", EventTooLarge { limit: event_limit });
                        tracing::warn!("{message}");
                        frames.extend(st.converter.fail_with(502, &message));
                    }
                    if st.converter.is_done() {
                        st.finished = true;
                    }
                    frames
                }
                Some(Err(e)) => {
                    st.finished = true;
                    st.converter.fail_with(502, &format!("the upstream stream failed: {e}"))
                }
                None => {
                    st.finished = true;
                    st.converter.finish()
                }
            };
            if !frames.is_empty()
                && let Some(recorder) = &mut st.recorder
            {
                recorder.sent();
            }
            if st.finished
                && let Some(recorder) = st.recorder.take()
            {
                recorder.finish();
            }
            if !frames.is_empty() {
                return Some((Ok(Bytes::from(frames.concat())), st));
            }
        }
    })
}
