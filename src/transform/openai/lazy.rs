//! Lazy, borrowed reading of a request body: objects as (key, raw JSON) pairs, so the bulk of a chat request (message
//! text) is scanned once and copied to the upstream body verbatim, never unescaped and re-escaped. This is what keeps
//! converting a 100 KB request near the cost of one pass over it.
//!
//! The walkers still look at every value they use and report the exact parameter path on a wrong type, as a
//! `serde_json::Value` walk would.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

/// Implements a visitor's scalar `visit_*` methods by wrapping the kind of value found ("a string", …, in OpenAI's
/// wording) in `$wrap`; with `seq`, also `visit_seq`, skipping the array.
macro_rules! forward_kinds {
    ($wrap:path) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($wrap("a boolean"))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($wrap("an integer"))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($wrap("an integer"))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($wrap("a decimal"))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($wrap("a string"))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap("null"))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap("null"))
        }
    };
    ($wrap:path, seq) => {
        forward_kinds!($wrap);
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($wrap("an array"))
        }
    };
}

/// A JSON object with its values left as raw JSON text borrowed from the body.
#[derive(Debug, Default)]
pub(super) struct RawObject<'a> {
    entries: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> RawObject<'a> {
    /// Removes and returns `key`'s value; with duplicate keys the last one counts, as in `serde_json::Value`.
    pub fn take(&mut self, key: &str) -> Option<&'a RawValue> {
        let at = self.entries.iter().rposition(|(k, _)| k == key)?;
        let (_, value) = self.entries.swap_remove(at);
        self.entries.retain(|(k, _)| k != key);
        Some(value)
    }

    /// Whether `key` is present with a non-null value.
    pub fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, v)| k == key && v.get() != "null")
    }

    /// The remaining entries.
    pub fn into_entries(self) -> impl Iterator<Item = (Cow<'a, str>, &'a RawValue)> {
        self.entries.into_iter()
    }
}

/// A value that should be an object: the object, or what was found instead (for the error message).
#[derive(Debug)]
pub(super) enum Obj<'a> {
    Object(RawObject<'a>),
    Other(&'static str),
}

/// A value that should be an array of objects: the elements, or what was found instead.
#[derive(Debug)]
pub(super) enum ObjList<'a> {
    List(Vec<Obj<'a>>),
    Other(&'static str),
}

/// The request root: `messages` read element by element (still lazily), everything else raw.
#[derive(Debug, Default)]
pub(super) struct Root<'a> {
    pub messages: Option<ObjList<'a>>,
    pub rest: RawObject<'a>,
}

/// Reads a body's root, which must be an object (`Err` names what it was instead). Takes `&str`: borrowing raw
/// values from bytes would make serde_json check every one of them for UTF-8 again.
pub(super) fn parse_root(body: &str) -> Result<Result<Root<'_>, &'static str>, serde_json::Error> {
    struct RootVisitor;
    impl<'de> Visitor<'de> for RootVisitor {
        type Value = Result<Root<'de>, &'static str>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut root = Root::default();
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                if key == "messages" {
                    root.messages = Some(map.next_value()?);
                } else {
                    root.rest.entries.push((key, map.next_value()?));
                }
            }
            Ok(Ok(root))
        }
        forward_kinds!(Err, seq);
    }
    let mut de = serde_json::Deserializer::from_str(body);
    let root = de.deserialize_any(RootVisitor)?;
    de.end()?;
    Ok(root)
}

/// Parses a raw value that should be an array of objects (content parts, tool calls, tools).
pub(super) fn obj_list(raw: &RawValue) -> ObjList<'_> {
    // The raw text is valid JSON already, so this cannot fail; `Other` covers it anyway.
    serde_json::from_str(raw.get()).unwrap_or(ObjList::Other("invalid JSON"))
}

/// Parses a raw value that should be an object.
pub(super) fn obj(raw: &RawValue) -> Obj<'_> {
    serde_json::from_str(raw.get()).unwrap_or(Obj::Other("invalid JSON"))
}

impl<'de> Deserialize<'de> for Obj<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjVisitor;
        impl<'de> Visitor<'de> for ObjVisitor {
            type Value = Obj<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut object = RawObject::default();
                while let Some(entry) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    object.entries.push(entry);
                }
                Ok(Obj::Object(object))
            }
            forward_kinds!(Obj::Other, seq);
        }
        deserializer.deserialize_any(ObjVisitor)
    }
}

impl<'de> Deserialize<'de> for ObjList<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = ObjList<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(item) = seq.next_element::<Obj<'de>>()? {
                    list.push(item);
                }
                Ok(ObjList::List(list))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(ObjList::Other("an object"))
            }
            forward_kinds!(ObjList::Other);
        }
        deserializer.deserialize_any(ListVisitor)
    }
}

/// What kind of JSON value `raw` is, in OpenAI's wording ("a string", "an integer", …).
pub(super) fn describe_raw(raw: &RawValue) -> &'static str {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ if text.contains(['.', 'e', 'E']) => "a decimal",
        _ => "an integer",
    }
}

/// Whether `raw` is JSON `null`.
pub(super) fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

/// Whether `raw` is a JSON string.
pub(super) fn is_string(raw: &RawValue) -> bool {
    raw.get().starts_with('"')
}

/// The string `raw` holds, borrowed when it has no escapes; `None` if it is not a string.
pub(super) fn as_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    if is_string(raw) { serde_json::from_str(raw.get()).ok() } else { None }
}

/// `json` without insignificant whitespace (key order and string contents untouched); borrowed when it already is.
/// Tool arguments go to OpenAI clients compact, as OpenAI sends them.
pub(super) fn compact(json: &str) -> Cow<'_, str> {
    let mut out: Option<String> = None;
    let (mut in_string, mut escaped) = (false, false);
    for (at, c) in json.char_indices() {
        let keep = if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            true
        } else {
            in_string = c == '"';
            !matches!(c, ' ' | '\t' | '\n' | '\r')
        };
        match (&mut out, keep) {
            (Some(s), true) => s.push(c),
            (None, false) => out = Some(json.get(..at).unwrap_or_default().to_owned()),
            _ => {}
        }
    }
    out.map_or(Cow::Borrowed(json), Cow::Owned)
}

/// Text that goes upstream: either the client's JSON string literal, copied verbatim, or a string the conversion
/// made (or had to change).
#[derive(Debug, Clone)]
pub(super) enum Text<'a> {
    /// A raw JSON string literal (quotes and escapes included).
    Raw(&'a RawValue),
    Owned(String),
}

impl Text<'_> {
    /// Whether the text is empty or whitespace only (`str::trim` semantics), decided on the raw literal without
    /// unescaping it.
    pub fn is_blank(&self) -> bool {
        match self {
            Text::Owned(s) => s.trim().is_empty(),
            Text::Raw(raw) => raw_is_blank(raw.get()),
        }
    }

    /// The text as a Rust string (unescaped).
    pub fn to_owned_string(&self) -> String {
        match self {
            Text::Owned(s) => s.clone(),
            Text::Raw(raw) => serde_json::from_str(raw.get()).unwrap_or_default(),
        }
    }
}

impl Serialize for Text<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Text::Raw(raw) => raw.serialize(serializer),
            Text::Owned(s) => s.serialize(serializer),
        }
    }
}

/// `str::trim().is_empty()` for the string a JSON string literal denotes.
fn raw_is_blank(literal: &str) -> bool {
    let inner = literal.get(1..literal.len().saturating_sub(1)).unwrap_or_default();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        let c = if c == '\\' {
            match chars.next() {
                Some('n') => '\n',
                Some('t') => '\t',
                Some('r') => '\r',
                Some('f') => '\u{c}',
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    // A surrogate (half of a non-BMP character) is never whitespace.
                    match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                        Some(c) => c,
                        None => return false,
                    }
                }
                _ => return false,
            }
        } else {
            c
        };
        if !c.is_whitespace() {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_literals() {
        for (literal, blank) in [
            (r#""""#, true),
            (r#"" \n\t\r""#, true),
            (r#""\u0020\u00a0\u2003\f""#, true),
            (r#"" x ""#, false),
            (r#""\"""#, false),
            (r#""\\""#, false),
            (r#""\ud83d\ude00""#, false),
            (r#""\u0041""#, false),
            ("\"\u{3000}\"", true),
        ] {
            assert_eq!(raw_is_blank(literal), blank, "{literal}");
            let unescaped: String = serde_json::from_str(literal).expect("valid literal");
            assert_eq!(unescaped.trim().is_empty(), blank, "{literal}");
        }
    }

    #[test]
    fn compact_keeps_order_and_strings() {
        assert_eq!(compact(r#"{"b": 1, "a": [1, 2]}"#), r#"{"b":1,"a":[1,2]}"#);
        assert_eq!(compact("{\n  \"s\": \"a b \\\" c\"\n}"), r#"{"s":"a b \" c"}"#);
        assert!(matches!(compact(r#"{"x":"y z"}"#), Cow::Borrowed(_)));
    }

    #[test]
    fn root_and_kinds() {
        let root = parse_root(r#"{"model":"m","messages":[{"role":"user"},3,"x"],"messages2":1}"#)
            .expect("JSON")
            .expect("object");
        let Some(ObjList::List(list)) = root.messages else { panic!("list") };
        assert!(matches!(list.as_slice(), [Obj::Object(_), Obj::Other("an integer"), Obj::Other("a string")]));
        assert!(matches!(parse_root("[1]").expect("JSON"), Err("an array")));
        assert!(parse_root("{} x").is_err());
        let raw: &RawValue = serde_json::from_str("1.5e3").expect("JSON");
        assert_eq!(describe_raw(raw), "a decimal");
    }
}
