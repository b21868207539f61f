//! Message `content` (a string or an array of parts) → Anthropic content blocks.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::error::OpenAiError;
use super::request::{describe, take_str};
use super::wire::{Block, Source, ToolResultContent};

/// Which part types a role may send; OpenAI allows images and files only from the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Allowed {
    /// `system`/`developer`: text only.
    System,
    /// `user`: text, image_url, file.
    User,
    /// `assistant`: text and refusal (kept as text, so the model sees what it said).
    Assistant,
    /// `tool`: text and image_url (Anthropic accepts images in tool results).
    Tool,
}

impl Allowed {
    fn supported(self) -> &'static str {
        match self {
            Self::System => "'text'",
            Self::User => "'text', 'image_url' and 'file'",
            Self::Assistant => "'text' and 'refusal'",
            Self::Tool => "'text' and 'image_url'",
        }
    }
}

/// The blocks of `messages[i].content`. Absent or null content gives no blocks; empty or whitespace-only text is
/// dropped because Anthropic rejects empty text blocks.
pub(super) fn blocks(content: Option<Value>, i: usize, allowed: Allowed) -> Result<Vec<Block>, OpenAiError> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(text_block(text, None).into_iter().collect()),
        Some(Value::Array(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, part) in parts.into_iter().enumerate() {
                if let Some(block) = part_block(part, i, j, allowed)? {
                    out.push(block);
                }
            }
            Ok(out)
        }
        Some(other) => Err(OpenAiError::invalid(
            format!("messages[{i}].content"),
            format!("expected a string or an array of content parts, but got {} instead.", describe(&other)),
        )),
    }
}

/// A `tool` message's content as a `tool_result` content: a string stays a string, parts become blocks; nothing
/// left means no `content` field (a result without content is valid, an empty text block is not).
pub(super) fn tool_result(content: Option<Value>, i: usize) -> Result<Option<ToolResultContent>, OpenAiError> {
    match content {
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(ToolResultContent::Text(text))),
        other => {
            let blocks = blocks(other, i, Allowed::Tool)?;
            Ok(if blocks.is_empty() { None } else { Some(ToolResultContent::Blocks(blocks)) })
        }
    }
}

fn text_block(text: String, cache_control: Option<Value>) -> Option<Block> {
    if text.trim().is_empty() { None } else { Some(Block::Text { text, cache_control }) }
}

fn part_block(part: Value, i: usize, j: usize, allowed: Allowed) -> Result<Option<Block>, OpenAiError> {
    let path = || format!("messages[{i}].content[{j}]");
    let Value::Object(mut part) = part else {
        return Err(OpenAiError::invalid(path(), format!("expected an object, but got {} instead.", describe(&part))));
    };
    let kind = take_str(&mut part, "type", &path)?.ok_or_else(|| OpenAiError::missing(format!("{}.type", path())))?;
    let cache_control = part.remove("cache_control").filter(Value::is_object);
    match (kind.as_str(), allowed) {
        ("text", _) => {
            let text = take_str(&mut part, "text", &path)?.ok_or_else(|| OpenAiError::missing(format!("{}.text", path())))?;
            Ok(text_block(text, cache_control))
        }
        ("refusal", Allowed::Assistant) => {
            let text = take_str(&mut part, "refusal", &path)?.unwrap_or_default();
            Ok(text_block(text, cache_control))
        }
        ("image_url", Allowed::User | Allowed::Tool) => {
            let path = || format!("messages[{i}].content[{j}].image_url");
            let url = match part.remove("image_url") {
                // Some clients send the URL directly instead of `{"url": …}`.
                Some(Value::String(url)) => url,
                Some(Value::Object(mut obj)) => {
                    take_str(&mut obj, "url", &path)?.ok_or_else(|| OpenAiError::missing(format!("{}.url", path())))?
                }
                _ => return Err(OpenAiError::missing(format!("{}.url", path()))),
            };
            let source = image_source(url).map_err(|reason| OpenAiError::invalid(format!("{}.url", path()), reason))?;
            Ok(Some(Block::Image { source, cache_control }))
        }
        ("file", Allowed::User) => match part.remove("file") {
            Some(Value::Object(file)) => file_block(file, i, j, cache_control).map(Some),
            _ => Err(OpenAiError::missing(format!("{}.file", path()))),
        },
        ("input_audio", _) => Err(OpenAiError::unsupported(
            format!("{}.type", path()),
            "audio input is not supported by Claude; transcribe it and send text.",
        )),
        (other, _) => Err(OpenAiError::invalid(
            format!("{}.type", path()),
            format!("unknown value '{other}'; the supported values are {}.", allowed.supported()),
        )),
    }
}

const IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];

/// An image source from a data URL (→ base64) or an http(s) URL (→ url, fetched by Anthropic).
fn image_source(url: String) -> Result<Source, String> {
    if starts_with_ci(&url, "https://") || starts_with_ci(&url, "http://") {
        return Ok(Source::Url { url });
    }
    if !starts_with_ci(&url, "data:") {
        return Err("expected an http(s) URL or a base64 data URL such as 'data:image/png;base64,…'.".into());
    }
    let (media_type, data) = parse_data_url(&url)?;
    let media_type = image_media_type(&media_type)?;
    Ok(Source::Base64 { media_type, data })
}

fn image_media_type(media_type: &str) -> Result<String, String> {
    // `image/jpg` is a common mistake for `image/jpeg`; accept it rather than fail the whole request.
    let media_type = if media_type == "image/jpg" { "image/jpeg" } else { media_type };
    if IMAGE_TYPES.contains(&media_type) {
        Ok(media_type.to_owned())
    } else {
        Err(format!("unsupported image type '{media_type}'; Claude reads image/jpeg, image/png, image/gif and image/webp."))
    }
}

/// `data:<media type>[;param…];base64,<data>` → (lower-cased media type, data). Only base64 payloads are accepted:
/// Anthropic's sources take base64 and percent-decoding binary data here is not worth the risk.
fn parse_data_url(url: &str) -> Result<(String, String), String> {
    let rest = url.get(5..).unwrap_or_default();
    let Some((header, data)) = rest.split_once(',') else {
        return Err("the data URL has no ',' before its data.".into());
    };
    let mut params = header.split(';');
    let media_type = params.next().unwrap_or_default().trim().to_ascii_lowercase();
    if !params.any(|p| p.trim().eq_ignore_ascii_case("base64")) {
        return Err("only base64 data URLs (';base64,') are supported.".into());
    }
    if media_type.is_empty() {
        return Err("the data URL has no media type.".into());
    }
    if data.is_empty() {
        return Err("the data URL has no data.".into());
    }
    Ok((media_type, data.to_owned()))
}

/// A `file` part: `file_data` (a data URL, or bare base64 with a telling `filename`) → PDF document, plain-text
/// document (decoded: Anthropic's text source takes the text itself) or image.
fn file_block(mut file: Map<String, Value>, i: usize, j: usize, cache_control: Option<Value>) -> Result<Block, OpenAiError> {
    let path = || format!("messages[{i}].content[{j}].file");
    let filename = take_str(&mut file, "filename", &path)?;
    let Some(file_data) = take_str(&mut file, "file_data", &path)? else {
        if file.get("file_id").is_some_and(|v| !v.is_null()) {
            return Err(OpenAiError::unsupported(
                format!("{}.file_id", path()),
                "uploaded files are not available here; send the file inline as file_data (a base64 data URL).",
            ));
        }
        return Err(OpenAiError::missing(format!("{}.file_data", path())));
    };
    let data_path = || format!("{}.file_data", path());
    let (media_type, data) = if starts_with_ci(&file_data, "data:") {
        parse_data_url(&file_data).map_err(|reason| OpenAiError::invalid(data_path(), reason))?
    } else {
        let by_name = filename.as_deref().and_then(media_type_of_filename).ok_or_else(|| {
            OpenAiError::invalid(data_path(), "expected a base64 data URL such as 'data:application/pdf;base64,…'.")
        })?;
        (by_name.to_owned(), file_data)
    };
    if media_type == "application/pdf" {
        let source = Source::Base64 { media_type, data };
        return Ok(Block::Document { source, title: filename, cache_control });
    }
    if media_type.starts_with("text/") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.as_bytes())
            .map_err(|e| OpenAiError::invalid(data_path(), format!("the base64 data is invalid: {e}.")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| OpenAiError::invalid(data_path(), "a text file must be UTF-8 encoded."))?;
        let source = Source::Text { media_type: "text/plain", data: text };
        return Ok(Block::Document { source, title: filename, cache_control });
    }
    if media_type.starts_with("image/") {
        let media_type = image_media_type(&media_type).map_err(|reason| OpenAiError::invalid(data_path(), reason))?;
        return Ok(Block::Image { source: Source::Base64 { media_type, data }, cache_control });
    }
    Err(OpenAiError::unsupported(
        data_path(),
        format!("files of type '{media_type}' are not supported; Claude reads PDF, plain text and images."),
    ))
}

fn media_type_of_filename(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "pdf" => "application/pdf",
        "txt" | "md" | "csv" => "text/plain",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => return None,
    })
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.as_bytes().get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}
