//! Reading request fields, with errors that name the parameter in OpenAI's wording.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::error::OpenAiError;
use super::lazy::{self, RawObject};

/// "a string", "an integer", … for error messages, in OpenAI's wording.
pub(super) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Removes `key` from a lazily read object as a string (borrowed when it has no escapes); absent or null is `None`.
/// `parent` is the object's parameter path.
pub(super) fn take_raw_str<'a>(
    obj: &mut RawObject<'a>,
    key: &str,
    parent: &dyn Fn() -> String,
) -> Result<Option<Cow<'a, str>>, OpenAiError> {
    match obj.take(key) {
        None => Ok(None),
        Some(raw) if lazy::is_null(raw) => Ok(None),
        Some(raw) => lazy::as_str(raw).map(Some).ok_or_else(|| {
            OpenAiError::invalid(
                join(&parent(), key),
                format!("expected a string, but got {} instead.", lazy::describe_raw(raw)),
            )
        }),
    }
}

/// Removes `key` from `obj` as a string; absent or null is `None`. `parent` is the object's parameter path.
pub(super) fn take_str(
    obj: &mut Map<String, Value>,
    key: &str,
    parent: &dyn Fn() -> String,
) -> Result<Option<String>, OpenAiError> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(OpenAiError::invalid(
            join(&parent(), key),
            format!("expected a string, but got {} instead.", describe(&other)),
        )),
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_owned() } else { format!("{parent}.{key}") }
}

pub(super) fn opt_bool(root: &Map<String, Value>, key: &str) -> Result<Option<bool>, OpenAiError> {
    match root.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => {
            Err(OpenAiError::invalid(key, format!("expected a boolean, but got {} instead.", describe(other))))
        }
    }
}

pub(super) fn opt_f64(root: &Map<String, Value>, key: &str) -> Result<Option<f64>, OpenAiError> {
    match root.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(other) => {
            Err(OpenAiError::invalid(key, format!("expected a number, but got {} instead.", describe(other))))
        }
    }
}

pub(super) fn opt_positive_int(root: &Map<String, Value>, key: &str) -> Result<Option<u64>, OpenAiError> {
    match root.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v >= 1 => Ok(Some(v)),
            _ => Err(OpenAiError::invalid(key, "expected an integer of at least 1.")),
        },
        Some(other) => {
            Err(OpenAiError::invalid(key, format!("expected an integer, but got {} instead.", describe(other))))
        }
    }
}
