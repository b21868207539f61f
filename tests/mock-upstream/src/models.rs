//! `GET /v1/models` and `GET /v1/models/{id}`.

use axum::response::Response;
use serde_json::{Value, json};

use crate::errors::{ApiError, build_response};

/// The models the mock lists, newest first: `(id, display_name, created_at)`.
pub const MODELS: [(&str, &str, &str); 3] = [
    ("claude-opus-4-8", "Claude Opus 4.8", "2026-06-10T00:00:00Z"),
    ("claude-sonnet-5", "Claude Sonnet 5", "2026-03-18T00:00:00Z"),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-01T00:00:00Z"),
];

fn model_json((id, name, created): (&str, &str, &str)) -> Value {
    json!({"type": "model", "id": id, "display_name": name, "created_at": created})
}

/// The value of `key` in a raw query string (no percent-decoding: ids and numbers only).
fn query_param<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?.split('&').filter_map(|kv| kv.split_once('=').or(Some((kv, "")))).find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// `GET /v1/models`, honouring `limit` (1–1000, default 20), `after_id` and `before_id`.
pub(crate) fn list(query: Option<&str>, extra: Vec<(String, String)>, request_id: &str) -> Response {
    let limit = match query_param(query, "limit") {
        None => 20,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            Ok(0) => {
                return ApiError::invalid("limit: Input should be greater than or equal to 1")
                    .into_response(request_id);
            }
            Ok(_) => {
                return ApiError::invalid("limit: Input should be less than or equal to 1000")
                    .into_response(request_id);
            }
            Err(_) => {
                return ApiError::invalid("limit: Input should be a valid integer").into_response(request_id);
            }
        },
    };
    let position = |id: &str| MODELS.iter().position(|m| m.0 == id);
    let (start, end) = match (query_param(query, "after_id"), query_param(query, "before_id")) {
        (Some(after), _) => {
            let s = position(after).map_or(MODELS.len(), |i| i + 1);
            (s, (s + limit).min(MODELS.len()))
        }
        (None, Some(before)) => {
            let e = position(before).unwrap_or(0);
            (e.saturating_sub(limit), e)
        }
        (None, None) => (0, limit.min(MODELS.len())),
    };
    let page = &MODELS[start..end];
    let has_more = if query_param(query, "before_id").is_some() && query_param(query, "after_id").is_none() {
        start > 0
    } else {
        end < MODELS.len()
    };
    let body = json!({
        "data": page.iter().copied().map(model_json).collect::<Vec<_>>(),
        "has_more": has_more,
        "first_id": page.first().map(|m| m.0),
        "last_id": page.last().map(|m| m.0),
    });
    build_response(200, extra, body.to_string().into(), request_id, "application/json")
}

/// `GET /v1/models/{id}`.
pub(crate) fn get(id: &str, extra: Vec<(String, String)>, request_id: &str) -> Response {
    match MODELS.iter().find(|m| m.0 == id) {
        Some(m) => build_response(200, extra, model_json(*m).to_string().into(), request_id, "application/json"),
        None => ApiError::new(404, format!("model: {id}")).into_response(request_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        assert_eq!(query_param(Some("a=1&limit=2"), "limit"), Some("2"));
        assert_eq!(query_param(Some("beta"), "beta"), Some(""));
        assert_eq!(query_param(None, "limit"), None);
    }
}
