//! Message `content` (a string or an array of parts) → Anthropic content blocks.

use std::borrow::Cow;

use base64::Engine as _;
use serde_json::Value;
use serde_json::value::RawValue;

use super::anthropic_wire::{Block, Source, ToolResultContent};
use super::detect;
use super::error::OpenAiError;
use super::fields::take_raw_str;
use super::lazy::{self, Obj, ObjList, RawObject, Text};

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
pub(super) fn blocks<'a>(
    content: Option<&'a RawValue>,
    i: usize,
    allowed: Allowed,
) -> Result<Vec<Block<'a>>, OpenAiError> {
    let Some(raw) = content.filter(|raw| !lazy::is_null(raw)) else { return Ok(Vec::new()) };
    if lazy::is_string(raw) {
        return Ok(text_block(Text::Raw(raw), None).into_iter().collect());
    }
    let ObjList::List(parts) = lazy::obj_list(raw) else {
        return Err(OpenAiError::invalid(
            format!("messages[{i}].content"),
            format!("expected a string or an array of content parts, but got {} instead.", lazy::describe_raw(raw)),
        ));
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.into_iter().enumerate() {
        let part = match part {
            Obj::Object(part) => part,
            Obj::Other(kind) => {
                return Err(OpenAiError::invalid(
                    format!("messages[{i}].content[{j}]"),
                    format!("expected an object, but got {kind} instead."),
                ));
            }
        };
        if let Some(block) = part_block(part, i, j, allowed)? {
            out.push(block);
        }
    }
    Ok(out)
}

/// A `tool` message's content as a `tool_result` content: a string stays a string, parts become blocks; nothing
/// left means no `content` field (a result without content is valid, an empty text block is not).
pub(super) fn tool_result<'a>(
    content: Option<&'a RawValue>,
    i: usize,
) -> Result<Option<ToolResultContent<'a>>, OpenAiError> {
    if let Some(raw) = content.filter(|raw| lazy::is_string(raw)) {
        let text = Text::Raw(raw);
        return Ok(if text.is_blank() { None } else { Some(ToolResultContent::Text(text)) });
    }
    let blocks = blocks(content, i, Allowed::Tool)?;
    Ok(if blocks.is_empty() { None } else { Some(ToolResultContent::Blocks(blocks)) })
}

fn text_block(text: Text<'_>, cache_control: Option<Value>) -> Option<Block<'_>> {
    if text.is_blank() { None } else { Some(Block::Text { text, cache_control }) }
}

/// A string field of a part as text to send verbatim; absent or null is `None`.
fn take_text<'a>(
    part: &mut RawObject<'a>,
    key: &str,
    path: &dyn Fn() -> String,
) -> Result<Option<Text<'a>>, OpenAiError> {
    match part.take(key) {
        None => Ok(None),
        Some(raw) if lazy::is_null(raw) => Ok(None),
        Some(raw) if lazy::is_string(raw) => Ok(Some(Text::Raw(raw))),
        Some(raw) => Err(OpenAiError::invalid(
            format!("{}.{key}", path()),
            format!("expected a string, but got {} instead.", lazy::describe_raw(raw)),
        )),
    }
}

fn part_block<'a>(
    mut part: RawObject<'a>,
    i: usize,
    j: usize,
    allowed: Allowed,
) -> Result<Option<Block<'a>>, OpenAiError> {
    let path = || format!("messages[{i}].content[{j}]");
    let kind =
        take_raw_str(&mut part, "type", &path)?.ok_or_else(|| OpenAiError::missing(format!("{}.type", path())))?;
    if detect::is_anthropic_block(&kind, part.has("source")) {
        let found = format!("`messages[{i}].content[{j}]` is a '{kind}' block");
        return Err(OpenAiError::WrongFormat(detect::sent_to_openai_route(&found)));
    }
    let cache_control = part
        .take("cache_control")
        .filter(|raw| raw.get().starts_with('{'))
        .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok());
    match (kind.as_ref(), allowed) {
        ("text", _) => {
            let text =
                take_text(&mut part, "text", &path)?.ok_or_else(|| OpenAiError::missing(format!("{}.text", path())))?;
            Ok(text_block(text, cache_control))
        }
        ("refusal", Allowed::Assistant) => {
            Ok(take_text(&mut part, "refusal", &path)?.and_then(|text| text_block(text, cache_control)))
        }
        ("image_url", Allowed::User | Allowed::Tool) => {
            let path = || format!("messages[{i}].content[{j}].image_url");
            let raw = part.take("image_url");
            let url = match raw.map(lazy::obj) {
                // Some clients send the URL directly instead of `{"url": …}`.
                Some(Obj::Other("a string")) => raw.and_then(lazy::as_str),
                Some(Obj::Object(mut obj)) => take_raw_str(&mut obj, "url", &path)?,
                _ => None,
            };
            let url = url.ok_or_else(|| OpenAiError::missing(format!("{}.url", path())))?;
            let source = image_source(url).map_err(|reason| OpenAiError::invalid(format!("{}.url", path()), reason))?;
            Ok(Some(Block::Image { source, cache_control }))
        }
        ("file", Allowed::User) => match part.take("file").map(lazy::obj) {
            Some(Obj::Object(file)) => file_block(file, i, j, cache_control).map(Some),
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
fn image_source(url: Cow<'_, str>) -> Result<Source<'_>, String> {
    if starts_with_ci(&url, "https://") || starts_with_ci(&url, "http://") {
        return Ok(Source::Url { url });
    }
    if !starts_with_ci(&url, "data:") {
        return Err("expected an http(s) URL or a base64 data URL such as 'data:image/png;base64,…'.".into());
    }
    let (media_type, data) = parse_data_url(url)?;
    let media_type = image_media_type(&media_type)?;
    Ok(Source::Base64 { media_type, data })
}

fn image_media_type(media_type: &str) -> Result<String, String> {
    // `image/jpg` is a common mistake for `image/jpeg`; accept it rather than fail the whole request.
    let media_type = if media_type == "image/jpg" { "image/jpeg" } else { media_type };
    if IMAGE_TYPES.contains(&media_type) {
        Ok(media_type.to_owned())
    } else {
        Err(format!(
            "unsupported image type '{media_type}'; Claude reads image/jpeg, image/png, image/gif and image/webp."
        ))
    }
}

/// `data:<media type>[;param…];base64,<data>` → (lower-cased media type, data). Only base64 payloads are accepted:
/// Anthropic's sources take base64 and percent-decoding binary data here is not worth the risk.
fn parse_data_url(url: Cow<'_, str>) -> Result<(String, Cow<'_, str>), String> {
    let Some(comma) = url.find(',') else {
        return Err("the data URL has no ',' before its data.".into());
    };
    let header = url.get(5..comma).unwrap_or_default();
    let mut params = header.split(';');
    let media_type = params.next().unwrap_or_default().trim().to_ascii_lowercase();
    if !params.any(|p| p.trim().eq_ignore_ascii_case("base64")) {
        return Err("only base64 data URLs (';base64,') are supported.".into());
    }
    if media_type.is_empty() {
        return Err("the data URL has no media type.".into());
    }
    if url.len() <= comma + 1 {
        return Err("the data URL has no data.".into());
    }
    // Borrowed stays borrowed: a large image is copied once, into the upstream body.
    let data = match url {
        Cow::Borrowed(s) => Cow::Borrowed(s.get(comma + 1..).unwrap_or_default()),
        Cow::Owned(s) => Cow::Owned(s.get(comma + 1..).unwrap_or_default().to_owned()),
    };
    Ok((media_type, data))
}

/// A `file` part: `file_data` (a data URL, or bare base64 with a telling `filename`) → PDF document, plain-text
/// document (decoded: Anthropic's text source takes the text itself) or image.
fn file_block<'a>(
    mut file: RawObject<'a>,
    i: usize,
    j: usize,
    cache_control: Option<Value>,
) -> Result<Block<'a>, OpenAiError> {
    let path = || format!("messages[{i}].content[{j}].file");
    let filename = take_raw_str(&mut file, "filename", &path)?.map(Cow::into_owned);
    let Some(file_data) = take_raw_str(&mut file, "file_data", &path)? else {
        if file.has("file_id") {
            return Err(OpenAiError::unsupported(
                format!("{}.file_id", path()),
                "uploaded files are not available here; send the file inline as file_data (a base64 data URL).",
            ));
        }
        return Err(OpenAiError::missing(format!("{}.file_data", path())));
    };
    let data_path = || format!("{}.file_data", path());
    let (media_type, data) = if starts_with_ci(&file_data, "data:") {
        parse_data_url(file_data).map_err(|reason| OpenAiError::invalid(data_path(), reason))?
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
