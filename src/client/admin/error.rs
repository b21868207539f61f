//! The admin API v1's error answer: `{"error": {"type", "message", "field"}}` with the matching status
//! (`docs/admin-api.yaml`, `components.schemas.Error`).

use axum::response::{IntoResponse, Response};
use http::StatusCode;

/// An admin API v1 error.
#[derive(Debug, Clone)]
pub(crate) struct AdminError {
    /// HTTP status.
    pub status: StatusCode,
    /// The error type (`invalid_request`, `unauthorized`, `forbidden`, `rate_limited`, …).
    pub kind: &'static str,
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
    /// The input field or config key the error is about.
    pub field: Option<String>,
}

impl AdminError {
    /// An error without a field.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self { status, kind, message: message.into(), field: None }
    }
    /// 400 `invalid_request` about `field`.
    pub fn invalid_request(field: &str, message: impl Into<String>) -> Self {
        Self { field: Some(field.to_string()), ..Self::new(StatusCode::BAD_REQUEST, "invalid_request", message) }
    }
    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    /// 429 `rate_limited` (the caller adds `retry-after`).
    pub fn rate_limited(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "type": self.kind, "message": self.message, "field": self.field }
        });
        (self.status, axum::Json(body)).into_response()
    }
}
