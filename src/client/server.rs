//! The router: routes, handlers (extract, call the library, map the result) and the layers around them.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::json;

use super::{ApiError, admin, auth, callback, middleware, ui};
use crate::gateway::Gateway;
use crate::proxy::{self, Endpoint, Recorder};
use crate::usage::{Outcome, Route};

/// Builds the gateway's HTTP router.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let api = Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat_completions))
        .route_layer(axum::middleware::from_fn_with_state(gateway.clone(), auth::require_client_key));
    Router::new()
        .merge(api)
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/oauth/callback", get(callback::oauth_callback))
        // Claude Code's own loopback redirect path, so `oauth.redirect_uri: http://localhost:PORT/callback` with the
        // gateway's port works too.
        .route("/callback", get(callback::oauth_callback))
        .nest("/admin/api", admin::router(gateway.clone()))
        .merge(ui::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(gateway.clone(), middleware::request_layer))
        .with_state(gateway)
}

// Handlers take the whole request and split it, rather than extracting `HeaderMap` and `Uri` (which clones them).
// Each starts the request's usage record first, so a request refused on the way (body too large) is recorded too.

async fn messages(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    forward(gateway, Endpoint::Messages, Route::Messages, request).await
}

async fn count_tokens(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    forward(gateway, Endpoint::CountTokens, Route::CountTokens, request).await
}

async fn chat_completions(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let limit = gateway.live().config.server.max_body_bytes;
    let (parts, body) = request.into_parts();
    let recorder = Recorder::start(&gateway, Route::ChatCompletions, &parts.headers, &parts.extensions);
    let body = match read_body(body, &parts.headers, limit).await {
        Ok(body) => body,
        Err(e) => return recorder.refuse(e, Outcome::ClientError).into_response(),
    };
    proxy::openai::chat_completions(recorder, parts.headers, body).await
}

async fn models(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let recorder = Recorder::start(&gateway, Route::Models, &parts.headers, &parts.extensions);
    if !parts.headers.contains_key("anthropic-version") {
        return proxy::openai::models(recorder, parts.uri.query(), parts.headers).await;
    }
    proxy::forward(recorder, Endpoint::Models, parts.uri.query(), parts.headers, Bytes::new()).await
}

async fn forward(gateway: Arc<Gateway>, endpoint: Endpoint, route: Route, request: Request) -> Response {
    let limit = gateway.live().config.server.max_body_bytes;
    let (parts, body) = request.into_parts();
    let recorder = Recorder::start(&gateway, route, &parts.headers, &parts.extensions);
    let body = match read_body(body, &parts.headers, limit).await {
        Ok(body) => body,
        Err(e) => return recorder.refuse(e, Outcome::ClientError).into_response(),
    };
    proxy::forward(recorder, endpoint, parts.uri.query(), parts.headers, body).await
}

/// Reads the whole request body (needed to route it), refusing more than `limit` bytes without reading them.
async fn read_body(body: Body, headers: &HeaderMap, limit: u64) -> Result<Bytes, ApiError> {
    let declared =
        headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(ApiError::too_large(limit));
    }
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    match http_body_util::Limited::new(body, limit_usize).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(ApiError::too_large(limit)),
        Err(e) => Err(ApiError::bad_request(format!("could not read the request body: {e}"))),
    }
}

async fn health() -> Response {
    (StatusCode::OK, axum::Json(json!({"status": "ok"}))).into_response()
}

async fn ready(State(gateway): State<Arc<Gateway>>) -> Response {
    let live = gateway.live();
    let now = gateway.now_ms();
    let usable = live.accounts.iter().filter(|a| a.is_available(now)).count();
    let status = if usable > 0 { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let word = if usable > 0 { "ready" } else { "no usable account" };
    (status, axum::Json(json!({"status": word, "usable_accounts": usable, "accounts": live.accounts.len()})))
        .into_response()
}

/// Prometheus metrics (OpenMetrics text). Beyond a loopback listen they need a gateway key or the admin token.
async fn metrics(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    if !auth::may_read_metrics(&gateway, &request) {
        return ApiError::unauthorized(
            "metrics beyond loopback need a gateway key (x-api-key or Authorization: Bearer) or the admin token",
        )
        .into_response();
    }
    let body = gateway.render_metrics();
    ([(http::header::CONTENT_TYPE, crate::usage::metrics::CONTENT_TYPE)], body).into_response()
}

/// Loopback OAuth login: the browser lands here with `?code=…&state=…` when `oauth.redirect_uri` points at the
/// gateway. Answers with a small page saying what happened; on success it links to the desktop app.
async fn not_found(method: Method, uri: Uri) -> Response {
    ApiError::not_found(format!("no route for {method} {}", uri.path())).into_response()
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        super::ErrorKind::InvalidRequest,
        format!("method {method} is not allowed on {}", uri.path()),
    )
    .into_response()
}
