//! Anthropic's error JSON and the responses that carry it.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;

/// Value of the `anthropic-organization-id` header on every response.
pub const ORGANIZATION_ID: &str = "6d6f636b-0000-4000-8000-757073747265";

/// Anthropic's error body: `{"type":"error","error":{"type":KIND,"message":MESSAGE},"request_id":ID}`.
pub fn error_body(kind: &str, message: &str, request_id: &str) -> String {
    serde_json::json!({
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": request_id,
    })
    .to_string()
}

/// The Anthropic error type for an HTTP status (protocol.md §3).
pub fn error_type_for_status(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    }
}

/// A generic message for an error status, as the real API words it where known.
pub(crate) fn default_message(status: u16) -> &'static str {
    match status {
        400 => "Invalid request",
        401 => "invalid x-api-key",
        402 => "Your credit balance is too low to access the Anthropic API.",
        403 => "Your API key does not have permission to use the specified resource.",
        404 => "The requested resource could not be found.",
        413 => "Request exceeds the maximum allowed number of bytes.",
        429 => "rate limit exceeded",
        529 => "Overloaded",
        s if s >= 500 => "Internal server error",
        _ => "Invalid request",
    }
}

/// An error reply: status, Anthropic error type, message and extra headers.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
    pub headers: Vec<(String, String)>,
}

impl ApiError {
    /// An error with the type that matches `status`.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError { status, kind: error_type_for_status(status), message: message.into(), headers: Vec::new() }
    }

    /// `400 invalid_request_error`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// Adds response headers.
    pub fn with_headers(mut self, headers: Vec<(String, String)>) -> Self {
        self.headers.extend(headers);
        self
    }

    /// The full HTTP response, with `request-id`, `x-should-retry` and the JSON body.
    pub fn into_response(self, request_id: &str) -> Response {
        let retry = matches!(self.status, 408 | 409 | 429) || self.status >= 500;
        let mut headers = self.headers;
        headers.push(("x-should-retry".into(), retry.to_string()));
        let body = error_body(self.kind, &self.message, request_id);
        build_response(self.status, headers, body.into(), request_id, "application/json")
    }
}

/// Builds a response with `status`, the standard mock headers (`request-id`,
/// `anthropic-organization-id`, `content-type`, each unless `headers` sets it) and `headers`.
/// Header names or values that HTTP cannot carry are skipped.
pub(crate) fn build_response(
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
    request_id: &str,
    content_type: &str,
) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let map = resp.headers_mut();
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
            map.append(n, v);
        }
    }
    let defaults =
        [("request-id", request_id), ("anthropic-organization-id", ORGANIZATION_ID), ("content-type", content_type)];
    for (name, value) in defaults {
        if !map.contains_key(name)
            && let Ok(v) = HeaderValue::from_str(value)
        {
            map.insert(HeaderName::from_static(name), v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_shape() {
        let v: serde_json::Value = serde_json::from_str(&error_body("not_found_error", "nope", "req_1")).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"error","error":{"type":"not_found_error","message":"nope"},"request_id":"req_1"})
        );
    }

    #[test]
    fn status_table() {
        assert_eq!(error_type_for_status(413), "request_too_large");
        assert_eq!(error_type_for_status(529), "overloaded_error");
        assert_eq!(error_type_for_status(503), "api_error");
        assert_eq!(error_type_for_status(422), "invalid_request_error");
    }
}
