//! The Anthropic Messages format: just enough of the request to route it.

use serde::Deserialize;
use serde_json::value::RawValue;

/// What routing needs to know about a Messages (or count_tokens) request. Borrows from the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagesSummary<'a> {
    /// The requested model.
    pub model: String,
    /// Whether the client asked for a server-sent-event stream.
    pub stream: bool,
    /// The session id from `metadata.user_id` (Claude Code's JSON form or the older `…_session_<uuid>` form).
    pub session_id: Option<String>,
    /// The raw `system` value, if any (for a session key when the client names no session).
    pub system: Option<&'a str>,
    /// The raw first message, if any.
    pub first_message: Option<&'a str>,
}

/// Why a request body is not a usable Messages request. The message is shown to the client as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body is not JSON (or not a JSON object).
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    /// A field has the wrong JSON type (the message names the field).
    #[error("{0}")]
    WrongType(String),
    /// The body is an OpenAI Chat Completions request sent to the Messages route.
    #[error(
        "this looks like an OpenAI Chat Completions request (it has `{0}`); send it to /v1/chat/completions, or use \
         Anthropic Messages fields here"
    )]
    OpenAiBody(&'static str),
    /// A required field is absent.
    #[error("{0}: Field required")]
    Missing(&'static str),
    /// A field has the wrong type or value.
    #[error("{field}: {problem}")]
    Invalid {
        /// The field name.
        field: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
}

#[derive(Deserialize)]
struct RoutingFields<'a> {
    #[serde(borrow, default)]
    model: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    // Borrowed raw slices: checks "is an array" and keeps the first turn without copying anything.
    #[serde(borrow, default)]
    messages: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    system: Option<&'a RawValue>,
    #[serde(borrow, default)]
    metadata: Option<Metadata<'a>>,
    // Fields only OpenAI Chat Completions has: their presence means the client used the wrong route.
    #[serde(default)]
    max_completion_tokens: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    stream_options: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    n: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    logprobs: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    frequency_penalty: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    presence_penalty: Option<serde::de::IgnoredAny>,
}

impl RoutingFields<'_> {
    fn openai_only_field(&self) -> Option<&'static str> {
        [
            ("max_completion_tokens", self.max_completion_tokens.is_some()),
            ("stream_options", self.stream_options.is_some()),
            ("n", self.n.is_some()),
            ("logprobs", self.logprobs.is_some()),
            ("frequency_penalty", self.frequency_penalty.is_some()),
            ("presence_penalty", self.presence_penalty.is_some()),
        ]
        .into_iter()
        .find_map(|(name, present)| present.then_some(name))
    }
}

#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(borrow, default)]
    user_id: Option<std::borrow::Cow<'a, str>>,
}

/// Claude Code ≥ 2.1.78 sends `{"device_id","account_uuid","session_id"}` as a JSON string; older clients
/// `user_<hex>_account_<uuid>_session_<uuid>`.
fn session_from_user_id(user_id: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Parts {
        session_id: Option<String>,
    }
    if user_id.trim_start().starts_with('{') {
        return serde_json::from_str::<Parts>(user_id).ok()?.session_id.filter(|s| !s.is_empty());
    }
    let (_, session) = user_id.rsplit_once("_session_")?;
    (!session.is_empty()).then(|| session.to_string())
}

/// Reads `model`, `stream` and the presence of `messages` from a request body, leaving the bytes untouched.
///
/// The whole document is still syntax-checked (so malformed JSON gets a clear 400 here rather than an opaque one
/// upstream), but nothing besides these fields is materialised.
pub fn inspect_messages_request(body: &[u8]) -> Result<MessagesSummary<'_>, RequestError> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(RequestError::MalformedJson("the body is empty".into())),
        // serde would read a JSON array into the struct positionally; only an object is a request.
        Some(b'{') => {}
        Some(_) => return Err(RequestError::WrongType("the body must be a JSON object".into())),
    }
    let fields: RoutingFields<'_> = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => RequestError::WrongType(data_error(&e)),
        _ => RequestError::MalformedJson(e.to_string()),
    })?;
    if let Some(field) = fields.openai_only_field() {
        return Err(RequestError::OpenAiBody(field));
    }
    let model = fields.model.ok_or(RequestError::Missing("model"))?;
    if model.trim().is_empty() {
        return Err(RequestError::Invalid { field: "model", problem: "must be a non-empty string" });
    }
    let Some(messages) = fields.messages else {
        return Err(RequestError::Missing("messages"));
    };
    Ok(MessagesSummary {
        model: model.into_owned(),
        stream: fields.stream.unwrap_or(false),
        session_id: fields.metadata.and_then(|m| m.user_id).and_then(|u| session_from_user_id(&u)),
        system: fields.system.map(RawValue::get),
        first_message: messages.first().map(|m| m.get()),
    })
}

fn data_error(e: &serde_json::Error) -> String {
    // serde's type errors read "invalid type: integer `3`, expected a string"; name the field where we can.
    let text = e.to_string();
    let field = if text.contains("expected a sequence") {
        "messages"
    } else if text.contains("expected a boolean") {
        "stream"
    } else if text.contains("expected a string") {
        "model"
    } else if text.contains("expected struct") || text.contains("expected a map") {
        return "the body must be a JSON object".into();
    } else {
        return text;
    };
    format!("{field}: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_model_and_stream() {
        let s = inspect_messages_request(
            br#"{"model":"claude-sonnet-5","stream":true,"messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#,
        )
        .unwrap();
        assert_eq!((s.model.as_str(), s.stream), ("claude-sonnet-5", true));
        assert_eq!(s.first_message, Some(r#"{"role":"user","content":"hi"}"#));
    }

    #[test]
    fn session_ids_come_from_both_user_id_forms() {
        let body = br#"{"model":"m","messages":[],"metadata":{"user_id":"{\"device_id\":\"d\",\"account_uuid\":\"\",\"session_id\":\"s-123\"}"}}"#;
        assert_eq!(inspect_messages_request(body).unwrap().session_id.as_deref(), Some("s-123"));
        let body = br#"{"model":"m","messages":[],"metadata":{"user_id":"user_ab_account__session_9f1c"}}"#;
        assert_eq!(inspect_messages_request(body).unwrap().session_id.as_deref(), Some("9f1c"));
        let body = br#"{"model":"m","messages":[],"metadata":{"user_id":"plain-user"}}"#;
        assert_eq!(inspect_messages_request(body).unwrap().session_id, None);
    }

    #[test]
    fn an_openai_body_on_the_messages_route_is_named() {
        let e = inspect_messages_request(br#"{"model":"gpt-4o","messages":[],"max_completion_tokens":5}"#).unwrap_err();
        assert!(e.to_string().contains("/v1/chat/completions") && e.to_string().contains("max_completion_tokens"));
    }

    #[test]
    fn stream_defaults_to_false() {
        let s = inspect_messages_request(br#"{"model":"m","messages":[]}"#).unwrap();
        assert!(!s.stream);
    }

    #[test]
    fn escaped_model_is_decoded() {
        let s = inspect_messages_request(br#"{"model":"claude\u002dx","messages":[]}"#).unwrap();
        assert_eq!(s.model, "claude-x");
    }

    #[test]
    fn missing_model_is_named() {
        let e = inspect_messages_request(br#"{"messages":[]}"#).unwrap_err();
        assert_eq!(e.to_string(), "model: Field required");
    }

    #[test]
    fn missing_messages_is_named() {
        let e = inspect_messages_request(br#"{"model":"m"}"#).unwrap_err();
        assert_eq!(e.to_string(), "messages: Field required");
    }

    #[test]
    fn malformed_json_is_reported_even_after_the_routing_fields() {
        let e = inspect_messages_request(br#"{"model":"m","messages":[],"x":[1,2"#).unwrap_err();
        assert!(matches!(e, RequestError::MalformedJson(_)), "{e}");
    }

    #[test]
    fn wrong_types_name_the_field() {
        let e = inspect_messages_request(br#"{"model":3,"messages":[]}"#).unwrap_err();
        assert!(e.to_string().starts_with("model:"), "{e}");
        let e = inspect_messages_request(br#"{"model":"m","messages":"hi"}"#).unwrap_err();
        assert!(e.to_string().starts_with("messages:"), "{e}");
        let e = inspect_messages_request(br#"[1,2]"#).unwrap_err();
        assert!(e.to_string().contains("JSON object"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn no_bytes_make_it_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let _ = inspect_messages_request(&bytes);
        }
    }

    #[test]
    fn empty_body_is_malformed() {
        assert!(matches!(inspect_messages_request(b"  "), Err(RequestError::MalformedJson(_))));
    }
}
