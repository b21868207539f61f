//! Control endpoints of the mock OAuth server: `POST /_mock/oauth/authorize` (issue a code),
//! `POST /_mock/oauth/config`, `GET /_mock/oauth/stats`, `POST /_mock/oauth/expire`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::errors::error_body;
use crate::oauth::{AuthorizeRequest, OAuthMockConfig};
use crate::state::Shared;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_mock/oauth/authorize", post(authorize))
        .route("/_mock/oauth/config", post(config))
        .route("/_mock/oauth/stats", get(stats))
        .route("/_mock/oauth/expire", post(expire))
}

/// The parsed body, or the 400 to answer with (boxed: a `Response` is large).
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        let body = error_body("invalid_request_error", &format!("invalid JSON: {e}"), "req_mock_control");
        Box::new((StatusCode::BAD_REQUEST, [("content-type", "application/json")], body).into_response())
    })
}

async fn authorize(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match parse::<AuthorizeRequest>(&body) {
        Ok(req) => Json(json!({"code": shared.oauth().issue_code(req)})).into_response(),
        Err(r) => *r,
    }
}

async fn config(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match parse::<OAuthMockConfig>(&body) {
        Ok(c) => {
            shared.oauth().configure(c);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => *r,
    }
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.oauth().stats()).into_response()
}

async fn expire(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.oauth().expire_access_tokens();
    StatusCode::NO_CONTENT
}
