//! Renders the gateway's own errors in the client's format: Anthropic's
//! `{"type":"error","error":{"type":…,"message":…},"request_id":…}`, or OpenAI's `{"error":{…}}` for OpenAI clients.

use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};

use super::middleware::current_request_id;
use crate::common::ApiError;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = current_request_id();
        if super::middleware::openai_client() {
            let body = crate::transform::openai::openai_error_body(self.status.as_u16(), &self.message, None);
            let mut response = (self.status, [(http::header::CONTENT_TYPE, "application/json")], body).into_response();
            retry_headers(&mut response, &self);
            if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                response.headers_mut().insert("x-request-id", id);
            }
            return response;
        }
        let body =
            crate::transform::anthropic_error::error_body(self.kind.as_str(), &self.message, request_id.as_deref());
        let mut response = (self.status, [(http::header::CONTENT_TYPE, "application/json")], body).into_response();
        retry_headers(&mut response, &self);
        if let Some(id) = request_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
            response.headers_mut().insert("request-id", id);
        }
        response
    }
}

/// `retry-after` (seconds), for errors a retry cannot fix soon `x-should-retry: false`, and for a plan limit the
/// unified status and reset.
fn retry_headers(response: &mut Response, error: &ApiError) {
    if let Some(secs) = error.retry_after {
        response.headers_mut().insert("retry-after", HeaderValue::from(secs));
    }
    if error.no_retry {
        response.headers_mut().insert("x-should-retry", HeaderValue::from_static("false"));
    }
    if let Some(reset) = error.plan_reset_secs {
        let headers = response.headers_mut();
        headers.insert("anthropic-ratelimit-unified-status", HeaderValue::from_static("rejected"));
        headers.insert("anthropic-ratelimit-unified-reset", HeaderValue::from(reset));
    }
}
