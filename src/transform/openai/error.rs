//! Errors in OpenAI's shape: `{"error":{"message","type","param","code"}}`.
//!
//! The official `openai` SDKs pick their exception class from the HTTP status and read these four fields, so the
//! status decides `type` and `code` (protocol.md §6, as CLIProxyAPI maps them) and the message is kept verbatim.

use serde::Serialize;
use serde_json::Value;

/// Why a request could not be converted (a 400 for the client) or an upstream answer could not be read (a 502).
///
/// Messages follow OpenAI's wording and name the offending parameter, e.g. `messages[2].tool_calls[0].id`, which
/// [`OpenAiError::param`] also returns for the error body's `param` field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenAiError {
    /// The body is not valid JSON, or not a JSON object.
    #[error("We could not parse the JSON body of your request: {0}")]
    InvalidJson(String),
    /// A required parameter is absent.
    #[error("Missing required parameter: '{param}'.")]
    Missing {
        /// Where the parameter belongs, e.g. `messages[0].role`.
        param: String,
    },
    /// A parameter has the wrong type or value.
    #[error("Invalid '{param}': {reason}")]
    Invalid {
        /// The parameter.
        param: String,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// A parameter asks for something the gateway cannot do with Claude.
    #[error("Unsupported parameter '{param}': {reason}")]
    Unsupported {
        /// The parameter.
        param: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// The body is in the Anthropic Messages format; the message says where to send it.
    #[error("{0}")]
    WrongFormat(String),
    /// The upstream answered 2xx with a body that is not a Messages response.
    #[error("The upstream returned an unreadable response: {0}")]
    Upstream(String),
}

impl OpenAiError {
    /// The HTTP status to answer with: 502 for an unreadable upstream answer, 400 for everything else.
    pub fn status(&self) -> u16 {
        match self {
            Self::Upstream(_) => 502,
            _ => 400,
        }
    }

    /// The offending parameter, for the error body's `param` field.
    pub fn param(&self) -> Option<&str> {
        match self {
            Self::Missing { param } | Self::Invalid { param, .. } | Self::Unsupported { param, .. } => Some(param),
            Self::InvalidJson(_) | Self::WrongFormat(_) | Self::Upstream(_) => None,
        }
    }

    /// The complete OpenAI-shaped error body for this error.
    pub fn to_body(&self) -> Vec<u8> {
        openai_error_body(self.status(), &self.to_string(), self.param())
    }

    pub(super) fn invalid(param: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid { param: param.into(), reason: reason.into() }
    }

    pub(super) fn unsupported(param: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Unsupported { param: param.into(), reason: reason.into() }
    }

    pub(super) fn missing(param: impl Into<String>) -> Self {
        Self::Missing { param: param.into() }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorObject<'a>,
}

/// The inner object, also used alone in mid-stream error frames.
#[derive(Serialize)]
pub(super) struct ErrorObject<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    param: Option<&'a str>,
    code: Option<&'static str>,
}

/// OpenAI's `type` and `code` for an HTTP status (protocol.md §6).
fn type_and_code(status: u16) -> (&'static str, Option<&'static str>) {
    match status {
        401 => ("authentication_error", Some("invalid_api_key")),
        403 => ("permission_error", Some("insufficient_quota")),
        404 => ("invalid_request_error", Some("model_not_found")),
        429 => ("rate_limit_error", Some("rate_limit_exceeded")),
        500..=599 => ("server_error", Some("internal_server_error")),
        _ => ("invalid_request_error", None),
    }
}

/// The error object for `status`, with `code` refined for an over-long prompt: clients such as LangChain look for
/// `context_length_exceeded` to trim history and retry.
pub(super) fn error_object<'a>(status: u16, message: &'a str, param: Option<&'a str>) -> ErrorObject<'a> {
    let (kind, mut code) = type_and_code(status);
    if status == 400 && message.starts_with("prompt is too long") {
        code = Some("context_length_exceeded");
    }
    ErrorObject { message, kind, param, code }
}

/// An OpenAI error body: `{"error":{"message","type","param","code"}}`, `type` and `code` chosen by `status`
/// (401 `authentication_error`/`invalid_api_key`, 403 `permission_error`/`insufficient_quota`, 404
/// `invalid_request_error`/`model_not_found`, 429 `rate_limit_error`/`rate_limit_exceeded`, 5xx
/// `server_error`/`internal_server_error`, other statuses `invalid_request_error` with a null code).
pub fn openai_error_body(status: u16, message: &str, param: Option<&str>) -> Vec<u8> {
    // Serialising borrowed strings into a Vec cannot fail; the fallback only keeps this function panic-free.
    serde_json::to_vec(&ErrorBody { error: error_object(status, message, param) }).unwrap_or_default()
}

/// Longest piece of a non-JSON upstream body quoted in an error message.
const QUOTE_LIMIT: usize = 300;

/// Converts an upstream error response (`{"type":"error","error":{"type","message"}}`) to OpenAI's shape with the same
/// status semantics, keeping the upstream's message. A body that is not Anthropic's error JSON is quoted (shortened).
pub fn anthropic_error_to_openai(status: u16, anthropic_body: &[u8]) -> Vec<u8> {
    let message = upstream_message(anthropic_body).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(anthropic_body);
        let text = text.trim();
        if text.is_empty() {
            format!("The upstream returned HTTP {status}.")
        } else {
            let quoted: String = text.chars().take(QUOTE_LIMIT).collect();
            format!("The upstream returned HTTP {status}: {quoted}")
        }
    });
    openai_error_body(status, &message, None)
}

fn upstream_message(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error")?;
    match error.get("message") {
        Some(Value::String(m)) if !m.is_empty() => Some(m.clone()),
        _ => error.get("type").and_then(Value::as_str).map(|t| format!("The upstream returned an error: {t}.")),
    }
}

/// The HTTP status Anthropic uses for an error `type`, so a mid-stream error gets the same OpenAI type and code as the
/// same error would before the stream started.
pub(super) fn status_of_anthropic_type(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}

/// A complete SSE frame carrying an error: `data: {"error":{…}}\n\n`. The `openai` SDK raises `APIError` for any
/// data object with an `error` key.
pub(super) fn error_frame(status: u16, message: &str) -> String {
    #[derive(Serialize)]
    struct Frame<'a> {
        error: ErrorObject<'a>,
    }
    let json = serde_json::to_string(&Frame { error: error_object(status, message, None) }).unwrap_or_default();
    format!("data: {json}\n\n")
}
