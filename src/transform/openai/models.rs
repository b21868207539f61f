//! Model names: the OpenAI → Claude alias table and the `GET /v1/models` answer for OpenAI clients.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::error::OpenAiError;

/// The documented default aliases, used when the config has no `models.aliases`. Exact, case-sensitive names:
///
/// | client asks for | sent upstream |
/// |---|---|
/// | `gpt-4o`, `gpt-4.1`, `gpt-4`, `gpt-4-turbo`, `chatgpt-4o-latest`, `gpt-5` | `claude-sonnet-5` |
/// | `gpt-4o-mini`, `gpt-4.1-mini`, `gpt-4.1-nano`, `gpt-3.5-turbo`, `gpt-5-mini`, `gpt-5-nano` | `claude-haiku-4-5-20251001` |
/// | `o1`, `o3`, `o1-pro`, `o3-pro` | `claude-opus-4-8` |
/// | `o1-mini`, `o3-mini`, `o4-mini` | `claude-sonnet-5` |
///
/// Flagship chat models map to Sonnet, small ones to Haiku, the large reasoning models to Opus. Any other name
/// (including every `claude-…` name) passes through unchanged.
pub fn default_aliases() -> BTreeMap<String, String> {
    const SONNET: &str = "claude-sonnet-5";
    const HAIKU: &str = "claude-haiku-4-5-20251001";
    const OPUS: &str = "claude-opus-4-8";
    [
        ("gpt-4o", SONNET),
        ("gpt-4.1", SONNET),
        ("gpt-4", SONNET),
        ("gpt-4-turbo", SONNET),
        ("chatgpt-4o-latest", SONNET),
        ("gpt-5", SONNET),
        ("gpt-4o-mini", HAIKU),
        ("gpt-4.1-mini", HAIKU),
        ("gpt-4.1-nano", HAIKU),
        ("gpt-3.5-turbo", HAIKU),
        ("gpt-5-mini", HAIKU),
        ("gpt-5-nano", HAIKU),
        ("o1", OPUS),
        ("o3", OPUS),
        ("o1-pro", OPUS),
        ("o3-pro", OPUS),
        ("o1-mini", SONNET),
        ("o3-mini", SONNET),
        ("o4-mini", SONNET),
    ]
    .into_iter()
    .map(|(from, to)| (from.to_owned(), to.to_owned()))
    .collect()
}

/// Anthropic's `GET /v1/models` body → one body that both SDKs accept: every field of Anthropic's list is kept
/// (`data`, `has_more`, `first_id`, `last_id`; per model `type`, `id`, `display_name`, `created_at`, …) and OpenAI's
/// are added: `"object": "list"` and, per model, `"object": "model"`, `"created"` (Unix seconds from `created_at`, 0
/// when it cannot be read) and `"owned_by": "anthropic"`. Fields already present are not overwritten.
pub fn models_list_for_openai(anthropic_body: &[u8]) -> Result<Vec<u8>, OpenAiError> {
    let value: Value = serde_json::from_slice(anthropic_body).map_err(|e| OpenAiError::Upstream(e.to_string()))?;
    let Value::Object(mut root) = value else {
        return Err(OpenAiError::Upstream("the model list is not a JSON object".into()));
    };
    match root.get_mut("data") {
        Some(Value::Array(models)) => {
            for model in models.iter_mut().filter_map(Value::as_object_mut) {
                let created = model.get("created_at").and_then(Value::as_str).and_then(unix_seconds).unwrap_or(0);
                add(model, "object", Value::from("model"));
                add(model, "created", Value::from(created));
                add(model, "owned_by", Value::from("anthropic"));
            }
        }
        _ => return Err(OpenAiError::Upstream("the model list has no 'data' array".into())),
    }
    add(&mut root, "object", Value::from("list"));
    serde_json::to_vec(&root).map_err(|e| OpenAiError::Upstream(e.to_string()))
}

fn add(obj: &mut Map<String, Value>, key: &str, value: Value) {
    obj.entry(key).or_insert(value);
}

/// RFC 3339 (`2025-10-01T00:00:00Z`, fractions and offsets allowed) → Unix seconds.
fn unix_seconds(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from.checked_add(len)?)?;
        digits.iter().try_fold(0i64, |acc, d| d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, chars: &[u8]| b.get(at).is_some_and(|c| chars.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut at = 19;
    if b.get(at) == Some(&b'.') {
        at += 1;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
    }
    let offset = match b.get(at) {
        Some(b'Z' | b'z') if at + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if at + 6 == b.len() && sep(at + 3, b":") => {
            let minutes = num(at + 1, 2)? * 60 + num(at + 4, 2)?;
            if *sign == b'+' { minutes * 60 } else { -minutes * 60 }
        }
        _ => return None,
    };
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::unix_seconds;

    #[test]
    fn rfc3339() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2025-02-19T00:00:00Z"), Some(1_739_923_200));
        assert_eq!(unix_seconds("2024-02-29T12:30:15.123456Z"), Some(1_709_209_815));
        assert_eq!(unix_seconds("2024-02-29T14:30:15+02:00"), Some(1_709_209_815));
        assert_eq!(unix_seconds("2024-02-29T10:30:15-02:00"), Some(1_709_209_815));
        for bad in [
            "",
            "2024",
            "2024-13-01T00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00+0200",
            "２０２４-01-01T00:00:00Z",
        ] {
            assert_eq!(unix_seconds(bad), None, "{bad}");
        }
    }
}
