//! The admin API's error shape, `{"error":{"type":…,"message":…,"field":…}}`, and how each kind of operation
//! error maps to it (`docs/admin-api.yaml`, info.description).

use axum::Json;
use axum::extract::FromRequest;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::manage::{Error, ErrorKind};

/// An admin API error response.
#[derive(Debug, Clone)]
pub(crate) struct AdminError {
    pub(crate) status: StatusCode,
    /// `invalid_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`, `needs_login`, `rate_limited`,
    /// `internal`, `upstream_unavailable`.
    pub(crate) kind: &'static str,
    pub(crate) message: String,
    pub(crate) field: Option<String>,
    pub(crate) retry_after: Option<u64>,
}

impl AdminError {
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self { status, kind, message: message.into(), field: None, retry_after: None }
    }

    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: Some(field.into()), ..Self::new(StatusCode::BAD_REQUEST, "invalid_request", message) }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 400 `invalid_request` about `field`.
    pub(crate) fn invalid_request(field: &str, message: impl Into<String>) -> Self {
        Self::invalid(field, message)
    }

    /// 403 `forbidden`.
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 429 `rate_limited` (the caller adds `retry-after`, or sets `retry_after`).
    pub(crate) fn rate_limited(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
    }
}

impl From<Error> for AdminError {
    fn from(e: Error) -> Self {
        let (status, kind) = match e.kind {
            ErrorKind::InvalidInput => (StatusCode::BAD_REQUEST, "invalid_request"),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ErrorKind::Conflict => (StatusCode::CONFLICT, "conflict"),
            ErrorKind::NeedsLogin => (StatusCode::CONFLICT, "needs_login"),
            ErrorKind::UpstreamUnavailable => (StatusCode::BAD_GATEWAY, "upstream_unavailable"),
            ErrorKind::NotRunning | ErrorKind::Storage | ErrorKind::Internal => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        Self { status, kind, message: e.message, field: e.field, retry_after: None }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"type": self.kind, "message": self.message, "field": self.field}});
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        }
        response
    }
}

/// A JSON request body whose errors name the field at fault (`{"error":{"type":"invalid_request","field":…}}`).
pub(crate) struct Body<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = AdminError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"));
        if !is_json {
            return Err(AdminError::invalid("body", "the body must be JSON (content-type: application/json)"));
        }
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|e| AdminError::invalid("body", format!("cannot read the body: {e}")))?;
        let text = if bytes.is_empty() { &b"{}"[..] } else { &bytes[..] };
        let mut deserializer = serde_json::Deserializer::from_slice(text);
        serde_path_to_error::deserialize(&mut deserializer).map(Body).map_err(body_error)
    }
}

/// Deserializes part of a body already read as JSON, naming the field at fault like [`Body`] does. For bodies
/// whose shape depends on one of their fields: serde reads internally tagged enums and flattened structs through
/// a buffer that hides the path of a bad field.
pub(crate) fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, AdminError> {
    serde_path_to_error::deserialize(value).map_err(body_error)
}

/// A body that does not deserialize: the field is the path to the bad value, or the missing field's name.
fn body_error(e: serde_path_to_error::Error<serde_json::Error>) -> AdminError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    // Malformed JSON is about the body as a whole, wherever the parser stopped.
    let syntax = matches!(inner.classify(), serde_json::error::Category::Syntax | serde_json::error::Category::Eof);
    let path = if syntax { ".".to_string() } else { path };
    let message = inner.to_string();
    let missing = message.strip_prefix("missing field `").and_then(|rest| rest.split_once('`')).map(|(name, _)| name);
    let field = match (path.as_str(), missing) {
        (".", Some(name)) => name.to_string(),
        (_, Some(name)) => format!("{path}.{name}"),
        (".", None) => "body".to_string(),
        (_, None) => path,
    };
    AdminError::invalid(field, format!("invalid body: {message}"))
}

/// A successful JSON answer.
pub(crate) fn ok<T: serde::Serialize>(value: T) -> Response {
    Json(value).into_response()
}

/// `201 Created` with a JSON body.
pub(crate) fn created<T: serde::Serialize>(value: T) -> Response {
    (StatusCode::CREATED, Json(value)).into_response()
}

/// `204 No Content`.
pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}
