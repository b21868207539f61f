//! Anthropic-shaped errors the gateway writes in place of an upstream answer it cannot pass on as is: the `error`
//! event that ends a broken stream, and the body that replaces an upstream error body cut short.

use bytes::Bytes;
use serde_json::json;

/// Characters of an upstream error message quoted in a replacement body.
const QUOTED_CHARS: usize = 300;

/// An SSE `error` event (`event: error`, Anthropic's mid-stream error shape), a whole event on its own. `kind` is
/// Anthropic's error type, e.g. `api_error`.
pub fn error_event(kind: &str, message: &str) -> Bytes {
    let data = json!({"type": "error", "error": {"type": kind, "message": message}});
    Bytes::from(format!("event: error\ndata: {data}\n\n"))
}

/// An Anthropic error body: `{"type":"error","error":{"type":kind,"message":message},"request_id":…}` (the one
/// place this shape is written, for the gateway's own errors and for replaced upstream bodies).
pub fn error_body(kind: &str, message: &str, request_id: Option<&str>) -> Vec<u8> {
    json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id})
        .to_string()
        .into_bytes()
}

/// Anthropic's error type for an HTTP status (protocol.md §3).
pub fn error_type_for_status(status: u16) -> &'static str {
    match status {
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

/// The error body sent instead of an upstream error body the gateway could not read in full (`why` says why:
/// larger than its limit, or a read failure). Keeps the upstream's error type and quotes the start of its message
/// when `start` (the bytes read; `None` when they are compressed) is readable; the type otherwise follows `status`.
pub fn cut_error_body(status: u16, start: Option<&[u8]>, why: &str, request_id: Option<&str>) -> Vec<u8> {
    let text = start.map(String::from_utf8_lossy);
    let kind = text.as_deref().and_then(|t| error_field(t, "type")).filter(|k| is_type_name(k));
    let kind = kind.unwrap_or_else(|| error_type_for_status(status).to_owned());
    let message = match text.as_deref().and_then(|t| error_field(t, "message")) {
        Some(quoted) => format!("{why}; its message began: {quoted}"),
        None if start.is_none() => format!("{why} (it was compressed, so nothing of it can be quoted)"),
        None => format!("{why} (its start is not an Anthropic error)"),
    };
    error_body(&kind, &message, request_id)
}

fn is_type_name(kind: &str) -> bool {
    !kind.is_empty() && kind.len() <= 64 && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// The start of string field `key` inside the `"error"` object of a possibly cut JSON text: up to its closing
/// quote or the end of the text, at most [`QUOTED_CHARS`] characters, simple escapes decoded.
fn error_field(text: &str, key: &str) -> Option<String> {
    let after_error = after_key(text, "error")?.strip_prefix('{')?;
    let value = after_key(after_error, key)?.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if out.chars().count() >= QUOTED_CHARS {
            out.push('…');
            break;
        }
        match c {
            '"' => break,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some(other) => out.push(other),
                None => break,
            },
            c => out.push(c),
        }
    }
    (!out.is_empty()).then_some(out)
}

/// What follows `"key":` (whitespace skipped) at the first occurrence of the key as a key (not as a value).
fn after_key<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let quoted = format!("\"{key}\"");
    text.match_indices(&quoted)
        .find_map(|(at, _)| text[at + quoted.len()..].trim_start().strip_prefix(':'))
        .map(str::trim_start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_anthropic_error_keeps_its_type_and_quotes_its_message() {
        let start =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded \"now\" and a very lon"#;
        let body: serde_json::Value =
            serde_json::from_slice(&cut_error_body(503, Some(start), "cut short", Some("req_1"))).unwrap();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "overloaded_error");
        assert_eq!(body["error"]["message"], "cut short; its message began: Overloaded \"now\" and a very lon");
        assert_eq!(body["request_id"], "req_1");
    }

    #[test]
    fn an_unreadable_or_compressed_start_falls_back_to_the_status() {
        let body: serde_json::Value =
            serde_json::from_slice(&cut_error_body(503, Some(b"<html>"), "cut short", None)).unwrap();
        assert_eq!(body["error"]["type"], "api_error");
        assert!(body["error"]["message"].as_str().unwrap().contains("not an Anthropic error"));
        let body: serde_json::Value = serde_json::from_slice(&cut_error_body(429, None, "cut", None)).unwrap();
        assert_eq!(body["error"]["type"], "rate_limit_error");
        assert!(body["error"]["message"].as_str().unwrap().contains("compressed"));
    }

    #[test]
    fn the_error_event_is_one_whole_parseable_event() {
        let event = error_event("api_error", "the upstream stream failed: \"reset\"\n");
        let text = std::str::from_utf8(&event).unwrap();
        let data = text.strip_prefix("event: error\ndata: ").unwrap().strip_suffix("\n\n").unwrap();
        assert!(!data.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["error"]["message"], "the upstream stream failed: \"reset\"\n");
    }
}
