//! The errors the gateway itself answers a client request with (upstream errors pass through instead). The type
//! lives here, below every layer that produces one; `client` renders it in the client's own format.

use http::StatusCode;

/// Anthropic's error types (protocol.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 400 and other client mistakes.
    InvalidRequest,
    /// 401.
    Authentication,
    /// 403.
    Permission,
    /// 404.
    NotFound,
    /// 413.
    RequestTooLarge,
    /// 429.
    RateLimit,
    /// 500/502/503/504.
    Api,
}

impl ErrorKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request_error",
            Self::Authentication => "authentication_error",
            Self::Permission => "permission_error",
            Self::NotFound => "not_found_error",
            Self::RequestTooLarge => "request_too_large",
            Self::RateLimit => "rate_limit_error",
            Self::Api => "api_error",
        }
    }
}

/// An error response produced by the gateway (upstream errors pass through untouched instead).
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Error type.
    pub kind: ErrorKind,
    /// Human-readable message saying what is wrong and, where possible, how to fix it.
    pub message: String,
    /// Seconds after which a retry may succeed (sent as `retry-after`).
    pub retry_after: Option<u64>,
    /// Retrying soon cannot help (a spent budget): sent as `x-should-retry: false`, which Anthropic's and
    /// OpenAI's SDKs honour instead of retrying a 429 by themselves.
    pub no_retry: bool,
    /// A subscription's plan limit, reached until this Unix second: sent as `anthropic-ratelimit-unified-status:
    /// rejected` and `anthropic-ratelimit-unified-reset`, which Claude Code reads to tell a plan limit from a
    /// throttle (protocol.md §9).
    pub plan_reset_secs: Option<u64>,
}

impl ApiError {
    /// Builds an error.
    pub fn new(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { status, kind, message: message.into(), retry_after: None, no_retry: false, plan_reset_secs: None }
    }
    /// 400 `invalid_request_error`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorKind::InvalidRequest, message)
    }
    /// 401 `authentication_error`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorKind::Authentication, message)
    }
    /// 403 `permission_error`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorKind::Permission, message)
    }
    /// 404 `not_found_error`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorKind::NotFound, message)
    }
    /// 413 `request_too_large`.
    pub fn too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::RequestTooLarge,
            format!("request body exceeds the gateway's limit of {limit} bytes (server.max_body_bytes)"),
        )
    }
    /// 429 `rate_limit_error`, retry after `retry_after` seconds.
    pub fn rate_limited(message: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, ErrorKind::RateLimit, message)
        }
    }
    /// 503 `api_error`: nothing can serve the request.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, ErrorKind::Api, message)
    }
    /// 502 `api_error`: the upstream could not be reached.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, ErrorKind::Api, message)
    }
    /// 504 `api_error`: the upstream did not answer in time.
    pub fn gateway_timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, ErrorKind::Api, message)
    }
    /// 500 `api_error`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorKind::Api, message)
    }
}
