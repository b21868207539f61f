//! One settings file: a strict read (anything but a JSON object is refused), and an editor that changes only
//! the keys it is asked to, leaving every other byte of the file (order, spacing, unknown keys) as it was.
//!
//! Edits go through `jsonc-parser`'s concrete syntax tree rather than `serde_json::Value`: re-serialising a
//! `Value` would reorder keys (no `preserve_order` here: the OpenAI golden tests depend on the default) and
//! reformat the user's file.

use std::path::Path;

use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstInputValue, CstObject, CstRootNode};
use serde_json::{Map, Value};

use super::ClaudeCodeError;

/// A key in a settings file: `["env", "ANTHROPIC_BASE_URL"]` or `["apiKeyHelper"]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct KeyPath(pub Vec<String>);

impl KeyPath {
    /// `env.<name>`.
    pub fn env(name: &str) -> Self {
        Self(vec!["env".into(), name.into()])
    }

    /// A top-level key.
    pub fn top(name: &str) -> Self {
        Self(vec![name.into()])
    }
}

impl std::fmt::Display for KeyPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// A parsed settings file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Parsed {
    /// The top-level object.
    pub map: Map<String, Value>,
}

impl Parsed {
    /// The value at `path`, if present.
    pub fn get(&self, path: &KeyPath) -> Option<&Value> {
        let (first, rest) = path.0.split_first()?;
        let mut value = self.map.get(first)?;
        for key in rest {
            value = value.as_object()?.get(key)?;
        }
        Some(value)
    }

    /// `env.<name>` as a non-empty string (Claude Code treats an empty variable as unset).
    pub fn env_str(&self, name: &str) -> Option<&str> {
        self.get(&KeyPath::env(name)).and_then(Value::as_str).filter(|v| !v.is_empty())
    }

    /// A top-level non-empty string.
    pub fn top_str(&self, name: &str) -> Option<&str> {
        self.map.get(name).and_then(Value::as_str).filter(|v| !v.is_empty())
    }
}

/// Parses a settings file's bytes. Blank text is an empty object (Claude Code treats it so); anything that is not
/// a JSON object (with an object or no `env`) is refused with the parser's message.
pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Parsed, ClaudeCodeError> {
    let invalid = |message: String| ClaudeCodeError::InvalidSettings { path: path.to_path_buf(), message };
    let text = std::str::from_utf8(bytes).map_err(|e| invalid(format!("not UTF-8: {e}")))?;
    if text.trim().is_empty() {
        return Ok(Parsed::default());
    }
    let value: Value = serde_json::from_str(text).map_err(|e| invalid(format!("not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(invalid("not a settings file: the top level must be a JSON object".into()));
    };
    if map.get("env").is_some_and(|env| !env.is_object()) {
        return Err(invalid("not a settings file: `env` must be an object of variable names to values".into()));
    }
    Ok(Parsed { map })
}

/// Edits one settings file's text in place, key by key.
pub(crate) struct Editor {
    root: CstRootNode,
}

impl Editor {
    /// An editor over `text`, which [`parse`] accepted (blank text starts an empty object).
    pub fn new(path: &Path, text: &str) -> Result<Self, ClaudeCodeError> {
        let source = if text.trim().is_empty() { "{}\n" } else { text };
        let root = CstRootNode::parse(source, &ParseOptions::default()).map_err(|e| {
            ClaudeCodeError::InvalidSettings { path: path.to_path_buf(), message: format!("not valid JSON: {e}") }
        })?;
        if root.object_value().is_none() {
            return Err(ClaudeCodeError::InvalidSettings {
                path: path.to_path_buf(),
                message: "not a settings file: the top level must be a JSON object".into(),
            });
        }
        Ok(Self { root })
    }

    fn object(&self) -> CstObject {
        self.root.object_value_or_set()
    }

    /// The object holding `path`'s last key, created (appended at the end) when `create` and missing.
    fn parent(&self, path: &KeyPath, create: bool) -> Option<CstObject> {
        let (_, parents) = path.0.split_last()?;
        let mut object = self.object();
        for key in parents {
            object = if create { object.object_value_or_create(key)? } else { object.object_value(key)? };
        }
        Some(object)
    }

    /// The value at `path`, if present.
    pub fn get(&self, path: &KeyPath) -> Option<Value> {
        let name = path.0.last()?;
        self.parent(path, false)?.get(name)?.value()?.to_serde_value()
    }

    /// The position of `path` among its siblings, if present.
    pub fn index_of(&self, path: &KeyPath) -> Option<usize> {
        let name = path.0.last()?;
        Some(self.parent(path, false)?.get(name)?.property_index())
    }

    /// Sets `path` to `value`: in place when the key exists (its position kept), else appended (or inserted at
    /// `index` when given, for putting a removed key back where it was).
    pub fn set(&self, path: &KeyPath, value: &Value, index: Option<usize>) {
        let Some(name) = path.0.last() else { return };
        let Some(parent) = self.parent(path, true) else { return };
        match parent.get(name) {
            Some(prop) => prop.set_value(input(value)),
            None => match index {
                Some(i) => {
                    parent.insert(i.min(parent.properties().len()), name, input(value));
                }
                None => {
                    parent.append(name, input(value));
                }
            },
        }
    }

    /// Removes `path` if present.
    pub fn remove(&self, path: &KeyPath) {
        let Some(name) = path.0.last() else { return };
        if let Some(prop) = self.parent(path, false).and_then(|p| p.get(name)) {
            prop.remove();
        }
    }

    /// Whether the top-level object has `key`.
    pub fn has(&self, key: &str) -> bool {
        self.object().get(key).is_some()
    }

    /// Removes the top-level `key` when it is an empty object.
    pub fn remove_if_empty_object(&self, key: &str) {
        let object = self.object();
        if let Some(prop) = object.get(key)
            && prop.object_value().is_some_and(|o| o.properties().is_empty())
        {
            prop.remove();
        }
    }

    /// The edited text.
    pub fn text(&self) -> String {
        self.root.to_string()
    }
}

fn input(value: &Value) -> CstInputValue {
    match value {
        Value::Null => CstInputValue::Null,
        Value::Bool(b) => CstInputValue::Bool(*b),
        Value::Number(n) => CstInputValue::Number(n.to_string()),
        Value::String(s) => CstInputValue::String(s.clone()),
        Value::Array(items) => CstInputValue::Array(items.iter().map(input).collect()),
        Value::Object(map) => CstInputValue::Object(map.iter().map(|(k, v)| (k.clone(), input(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path() -> &'static Path {
        Path::new("settings.json")
    }

    #[test]
    fn refuses_what_is_not_a_json_object() {
        for bad in ["{\"a\": 1,}", "[]", "{\"env\": \"x\"}", "not json", "{\"a\": 1} trailing"] {
            let err = parse(path(), bad.as_bytes()).unwrap_err();
            assert!(matches!(err, ClaudeCodeError::InvalidSettings { .. }), "{bad}: {err}");
        }
        assert!(parse(path(), b"  \n").unwrap().map.is_empty());
    }

    #[test]
    fn setting_and_removing_a_new_key_gives_back_the_same_bytes() {
        let text =
            "{\n    \"model\": \"opus\",\n    \"env\": {\n        \"FOO\": \"1\"\n    },\n    \"hooks\": {}\n}\n";
        let editor = Editor::new(path(), text).unwrap();
        editor.set(&KeyPath::env("ANTHROPIC_BASE_URL"), &json!("http://127.0.0.1:8787"), None);
        editor.set(&KeyPath::top("apiKeyHelper"), &json!("helper"), None);
        let edited = editor.text();
        assert!(edited.contains("\"ANTHROPIC_BASE_URL\": \"http://127.0.0.1:8787\""), "{edited}");
        let order: Vec<usize> = ["\"model\"", "\"FOO\"", "\"ANTHROPIC_BASE_URL\"", "\"hooks\"", "\"apiKeyHelper\""]
            .iter()
            .map(|k| edited.find(k).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "keys kept in order, new ones appended: {edited}");
        parse(path(), edited.as_bytes()).unwrap();

        let editor = Editor::new(path(), &edited).unwrap();
        editor.remove(&KeyPath::env("ANTHROPIC_BASE_URL"));
        editor.remove(&KeyPath::top("apiKeyHelper"));
        assert_eq!(editor.text(), text);
    }

    #[test]
    fn a_removed_key_goes_back_where_it_was() {
        let text = "{\n  \"env\": {\n    \"A\": \"1\",\n    \"ANTHROPIC_API_KEY\": \"sk\",\n    \"B\": \"2\"\n  }\n}\n";
        let editor = Editor::new(path(), text).unwrap();
        let key = KeyPath::env("ANTHROPIC_API_KEY");
        let index = editor.index_of(&key);
        editor.remove(&key);
        assert_eq!(editor.get(&key), None);
        editor.set(&key, &json!("sk"), index);
        assert_eq!(editor.text(), text);
    }

    #[test]
    fn env_is_created_in_an_empty_file_and_removed_again_when_empty() {
        let editor = Editor::new(path(), "").unwrap();
        editor.set(&KeyPath::env("ANTHROPIC_BASE_URL"), &json!("http://127.0.0.1:1"), None);
        let text = editor.text();
        assert_eq!(parse(path(), text.as_bytes()).unwrap().env_str("ANTHROPIC_BASE_URL"), Some("http://127.0.0.1:1"));
        editor.remove(&KeyPath::env("ANTHROPIC_BASE_URL"));
        editor.remove_if_empty_object("env");
        assert!(!editor.has("env"), "{}", editor.text());
    }
}
