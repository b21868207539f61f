//! The control API under `/_mock/` (not recorded, no auth): inspect requests, enqueue scripts, set plans.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::errors::error_body;
use crate::state::{Scripted, Shared};

/// `GET/DELETE /_mock/requests`, `POST /_mock/enqueue`, `POST /_mock/plan`.
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_mock/requests", get(list).delete(clear))
        .route("/_mock/enqueue", post(enqueue))
        .route("/_mock/plan", post(plan))
        .layer(DefaultBodyLimit::disable())
}

async fn list(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.requests()).into_response()
}

async fn clear(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.clear_requests();
    StatusCode::NO_CONTENT
}

async fn enqueue(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<Scripted>(&body) {
        Ok(script) => {
            shared.enqueue(script);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            let msg = format!("invalid script: {e}");
            let body = error_body("invalid_request_error", &msg, "req_mock_control");
            (StatusCode::BAD_REQUEST, [("content-type", "application/json")], body).into_response()
        }
    }
}

async fn plan(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<crate::plan::PlanConfig>(&body) {
        Ok(plan) => {
            shared.plans().configure(plan);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            let body = error_body("invalid_request_error", &format!("invalid plan: {e}"), "req_mock_control");
            (StatusCode::BAD_REQUEST, [("content-type", "application/json")], body).into_response()
        }
    }
}
