//! Request enhancement for OAuth accounts (protocol.md §2, §7): Bearer token, the oauth beta, and the identity
//! system prompt. The body is re-serialised only when `system` has to change, and then without parsing
//! `messages` or any other field: every top-level value except `system` is copied byte for byte, in order.

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{KNOWN_IDENTITIES, OAUTH_BETA, OAuthError};
use crate::secrets::Secret;

/// Prefix of the billing-header block Claude Code puts first in `system`.
const BILLING_PREFIX: &str = "x-anthropic-billing-header:";

/// Prepares a request for an OAuth account.
///
/// - `authorization: Bearer <access_token>` (marked sensitive); `x-api-key` removed.
/// - `oauth-2025-04-20` appended to the client's `anthropic-beta` list unless already there (client betas
///   and their order are kept; several header lines are joined into one).
/// - The identity `system_prompt` as its own first text block (after a leading billing-header block) unless a
///   recognised identity ([`KNOWN_IDENTITIES`] or `system_prompt` itself) is already there: an absent `system`
///   becomes `[PROMPT]`, a string becomes `[PROMPT, caller's string]` (unless it starts with an identity), an
///   array gets PROMPT inserted (an exact identity block found further down is moved up instead of copied).
///   An empty `system_prompt` disables this part.
///
/// Returns the new body when it changed, `None` when the original bytes can be forwarded (also for an empty
/// body). A body that is not a JSON object is an error.
pub fn enhance_request(
    body: &[u8],
    headers: &mut HeaderMap,
    access_token: &Secret,
    system_prompt: &str,
) -> Result<Option<Bytes>, OAuthError> {
    set_bearer(headers, access_token)?;
    merge_beta(headers)?;
    if system_prompt.trim().is_empty() || body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let Fields(fields) = serde_json::from_slice(body).map_err(|e| OAuthError::InvalidBody(e.to_string()))?;
    let position = fields.iter().position(|(k, _)| k == "system");
    let current = position.map(|i| fields[i].1.as_ref());
    let Some(system) = new_system(current, system_prompt)? else { return Ok(None) };
    let mut out = Vec::with_capacity(body.len() + system.len() + 16);
    out.push(b'{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_key(&mut out, key)?;
        out.extend_from_slice(if Some(i) == position { system.as_bytes() } else { value.get().as_bytes() });
    }
    if position.is_none() {
        if !fields.is_empty() {
            out.push(b',');
        }
        write_key(&mut out, "system")?;
        out.extend_from_slice(system.as_bytes());
    }
    out.push(b'}');
    Ok(Some(Bytes::from(out)))
}

fn set_bearer(headers: &mut HeaderMap, token: &Secret) -> Result<(), OAuthError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| OAuthError::Internal("the access token contains characters not allowed in a header".into()))?;
    value.set_sensitive(true);
    headers.remove("x-api-key");
    headers.insert(header::AUTHORIZATION, value);
    Ok(())
}

fn merge_beta(headers: &mut HeaderMap) -> Result<(), OAuthError> {
    let values: Vec<&[u8]> = headers.get_all("anthropic-beta").iter().map(HeaderValue::as_bytes).collect();
    let present = values.iter().flat_map(|v| v.split(|b| *b == b',')).any(|b| b.trim_ascii() == OAUTH_BETA.as_bytes());
    if present {
        return Ok(());
    }
    let mut joined = Vec::new();
    for v in values {
        let v = v.trim_ascii().trim_ascii_end();
        let v = v.strip_suffix(b",").unwrap_or(v).trim_ascii_end();
        if !v.is_empty() {
            joined.extend_from_slice(v);
            joined.push(b',');
        }
    }
    joined.extend_from_slice(OAUTH_BETA.as_bytes());
    let value = HeaderValue::from_bytes(&joined)
        .map_err(|_| OAuthError::InvalidBody("the anthropic-beta header is not a valid header value".into()))?;
    headers.insert("anthropic-beta", value);
    Ok(())
}

fn write_key(out: &mut Vec<u8>, key: &str) -> Result<(), OAuthError> {
    serde_json::to_writer(&mut *out, key).map_err(|e| OAuthError::Internal(format!("cannot write a JSON key: {e}")))?;
    out.push(b':');
    Ok(())
}

/// The top-level members of a JSON object, in order, values unparsed.
struct Fields(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((k, v)) = map.next_entry::<String, Box<RawValue>>()? {
                    fields.push((k, v));
                }
                Ok(Fields(fields))
            }
        }
        d.deserialize_map(V)
    }
}

/// Just what is needed of one system block.
#[derive(Deserialize)]
struct BlockView {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Serialize)]
struct TextBlock<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

fn text_block(text: &str) -> Result<String, OAuthError> {
    serde_json::to_string(&TextBlock { kind: "text", text })
        .map_err(|e| OAuthError::Internal(format!("cannot write a system block: {e}")))
}

fn has_identity(text: &str, prompt: &str) -> bool {
    let text = text.trim_start();
    KNOWN_IDENTITIES.iter().any(|id| text.starts_with(id)) || text.starts_with(prompt.trim())
}

fn is_exact_identity(text: &str, prompt: &str) -> bool {
    let text = text.trim();
    KNOWN_IDENTITIES.contains(&text) || text == prompt.trim()
}

/// The new `system` JSON, or `None` when it already carries an identity (or is of a shape left alone).
fn new_system(current: Option<&RawValue>, prompt: &str) -> Result<Option<String>, OAuthError> {
    let ours = text_block(prompt)?;
    let raw = match current.map(|r| r.get().trim()) {
        None | Some("null") => return Ok(Some(format!("[{ours}]"))),
        Some(raw) => raw,
    };
    let invalid = |e: serde_json::Error| OAuthError::InvalidBody(format!("system: {e}"));
    if raw.starts_with('"') {
        let text: String = serde_json::from_str(raw).map_err(invalid)?;
        if has_identity(&text, prompt) {
            return Ok(None);
        }
        if text.trim().is_empty() {
            return Ok(Some(format!("[{ours}]")));
        }
        return Ok(Some(format!("[{ours},{}]", text_block(&text)?)));
    }
    if !raw.starts_with('[') {
        return Ok(None);
    }
    let mut blocks: Vec<Box<RawValue>> = serde_json::from_str(raw).map_err(invalid)?;
    let views: Vec<BlockView> =
        blocks.iter().map(|b| serde_json::from_str(b.get()).unwrap_or(BlockView { kind: None, text: None })).collect();
    let text_of = |i: usize| {
        views.get(i).filter(|v| v.kind.as_deref().is_none_or(|k| k == "text")).and_then(|v| v.text.as_deref())
    };
    let at = usize::from(text_of(0).is_some_and(|t| t.trim_start().starts_with(BILLING_PREFIX)));
    if text_of(at).is_some_and(|t| has_identity(t, prompt)) {
        return Ok(None);
    }
    let exact_elsewhere = (at + 1..blocks.len()).find(|&j| text_of(j).is_some_and(|t| is_exact_identity(t, prompt)));
    // An exact identity block further down is moved up rather than copied.
    let moved = exact_elsewhere.map(|j| blocks.remove(j));
    let first = moved.as_deref().map_or(ours.as_str(), RawValue::get);
    let mut parts: Vec<&str> = Vec::with_capacity(blocks.len() + 1);
    parts.extend(blocks[..at].iter().map(|b| b.get()));
    parts.push(first);
    parts.extend(blocks[at..].iter().map(|b| b.get()));
    Ok(Some(format!("[{}]", parts.join(","))))
}

#[cfg(test)]
#[path = "enhance_tests.rs"]
mod tests;
