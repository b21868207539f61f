//! `tools`, `tool_choice`, `response_format`, tool names and tool-call ids.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::anthropic_wire::{Schema, Tool};
use super::detect;
use super::error::OpenAiError;
use super::fields::{describe, take_raw_str};
use super::lazy::{self, Obj, ObjList};

/// Anthropic's tool-name rule, checked here so the client gets a 400 naming the parameter.
pub(super) fn check_tool_name(name: &str, param: impl Fn() -> String) -> Result<(), OpenAiError> {
    let valid =
        (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(OpenAiError::invalid(
            param(),
            "string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]{1,64}$'.",
        ))
    }
}

/// A tool-call id in Anthropic's charset (`^[a-zA-Z0-9_-]+$`): other characters become `_`. Applied to both
/// `tool_use.id` and `tool_result.tool_use_id`, so pairs still match; valid ids (all of OpenAI's and Anthropic's
/// own) are unchanged.
pub(super) fn sanitize_tool_id(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}

/// `tools[]` → Anthropic tools. Only `function` tools exist in Claude's client-tool model. Read lazily: agents send
/// dozens of tools with large schemas, which are copied verbatim.
pub(super) fn convert_tools(raw: Option<&RawValue>) -> Result<Vec<Tool<'_>>, OpenAiError> {
    let Some(raw) = raw.filter(|raw| !lazy::is_null(raw)) else { return Ok(Vec::new()) };
    let list = match lazy::obj_list(raw) {
        ObjList::List(list) => list,
        ObjList::Other(kind) => {
            return Err(OpenAiError::invalid("tools", format!("expected an array, but got {kind} instead.")));
        }
    };
    let mut tools = Vec::with_capacity(list.len());
    for (i, tool) in list.into_iter().enumerate() {
        let path = || format!("tools[{i}]");
        let mut tool = match tool {
            Obj::Object(tool) => tool,
            Obj::Other(kind) => {
                return Err(OpenAiError::invalid(path(), format!("expected an object, but got {kind} instead.")));
            }
        };
        if tool.has("input_schema") && !tool.has("function") {
            let found = format!("`tools[{i}]` has an `input_schema`");
            return Err(OpenAiError::WrongFormat(detect::sent_to_openai_route(&found)));
        }
        if let Some(kind) = take_raw_str(&mut tool, "type", &path)?
            && kind != "function"
        {
            return Err(OpenAiError::unsupported(
                format!("tools[{i}].type"),
                format!("only 'function' tools are supported, not '{kind}'."),
            ));
        }
        let fpath = || format!("tools[{i}].function");
        let Some(Obj::Object(mut function)) = tool.take("function").map(lazy::obj) else {
            return Err(OpenAiError::missing(fpath()));
        };
        let name = take_raw_str(&mut function, "name", &fpath)?
            .ok_or_else(|| OpenAiError::missing(format!("{}.name", fpath())))?
            .into_owned();
        check_tool_name(&name, || format!("{}.name", fpath()))?;
        let description =
            take_raw_str(&mut function, "description", &fpath)?.filter(|d| !d.trim().is_empty()).map(Cow::into_owned);
        let input_schema = raw_object_schema(function.take("parameters"), &|| format!("{}.parameters", fpath()))?;
        let cache_control = tool
            .take("cache_control")
            .filter(|raw| raw.get().starts_with('{'))
            .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok());
        tools.push(Tool { name, description, input_schema, cache_control });
    }
    Ok(tools)
}

/// [`object_schema`] for a raw schema, kept raw (copied verbatim) when it already says `"type": "object"`.
fn raw_object_schema<'a>(raw: Option<&'a RawValue>, param: &dyn Fn() -> String) -> Result<Schema<'a>, OpenAiError> {
    #[derive(Deserialize)]
    struct TypeField<'a> {
        #[serde(rename = "type", borrow, default)]
        kind: Option<&'a RawValue>,
    }
    if let Some(raw) = raw.filter(|raw| raw.get().starts_with('{'))
        && let Ok(TypeField { kind: Some(kind) }) = serde_json::from_str::<TypeField<'_>>(raw.get())
        && lazy::as_str(kind).as_deref() == Some("object")
    {
        return Ok(Schema::Raw(raw));
    }
    // Absent, without `type`, or wrong: the `Value` path adds the type or names the problem.
    let value = raw.and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok());
    object_schema(value, param).map(Schema::Value)
}

/// A JSON Schema usable as `input_schema`, whose root Anthropic requires to be `type: object`: absent → an empty
/// object schema; a schema without `type` gets `"type": "object"`.
fn object_schema(value: Option<Value>, param: &dyn Fn() -> String) -> Result<Value, OpenAiError> {
    match value {
        None | Some(Value::Null) => Ok(json!({"type": "object", "properties": {}})),
        Some(Value::Object(mut schema)) => {
            match schema.get("type") {
                None => {
                    schema.insert("type".into(), Value::String("object".into()));
                }
                Some(Value::String(t)) if t == "object" => {}
                Some(_) => {
                    return Err(OpenAiError::invalid(param(), "the schema's root must have \"type\": \"object\"."));
                }
            }
            Ok(Value::Object(schema))
        }
        Some(other) => Err(OpenAiError::invalid(
            param(),
            format!("expected a JSON Schema object, but got {} instead.", describe(&other)),
        )),
    }
}

/// `tool_choice` as the client meant it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ClientChoice {
    None,
    Auto,
    Required,
    Named(String),
}

pub(super) fn parse_tool_choice(value: Option<&Value>) -> Result<Option<ClientChoice>, OpenAiError> {
    let invalid = |reason: String| OpenAiError::invalid("tool_choice", reason);
    Ok(Some(match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => match s.as_str() {
            "none" => ClientChoice::None,
            "auto" => ClientChoice::Auto,
            "required" => ClientChoice::Required,
            other => {
                return Err(invalid(format!(
                    "unknown value '{other}'; the supported values are 'none', 'auto' and 'required', or a named function."
                )));
            }
        },
        Some(Value::Object(obj)) => {
            let name = match obj.get("type").and_then(Value::as_str) {
                Some("function") => obj.get("function").and_then(|f| f.get("name")).and_then(Value::as_str),
                Some("allowed_tools") => {
                    return Err(OpenAiError::unsupported(
                        "tool_choice.type",
                        "'allowed_tools' is not supported; send only the allowed tools in 'tools'.",
                    ));
                }
                _ => None,
            };
            match name {
                Some(name) => ClientChoice::Named(name.to_owned()),
                None => return Err(invalid("expected {\"type\": \"function\", \"function\": {\"name\": …}}.".into())),
            }
        }
        Some(other) => {
            return Err(invalid(format!("expected a string or an object, but got {} instead.", describe(other))));
        }
    }))
}

/// `response_format` as the conversion uses it.
#[derive(Debug)]
pub(super) enum ResponseFormat<'a> {
    Text,
    JsonObject,
    JsonSchema { name: Option<String>, description: Option<String>, schema: Schema<'a> },
}

/// Reads `response_format` lazily: its schema is copied verbatim, so its property order (which steers the order in
/// which the model writes keys) is kept.
pub(super) fn parse_response_format(raw: Option<&RawValue>) -> Result<ResponseFormat<'_>, OpenAiError> {
    let Some(raw) = raw.filter(|raw| !lazy::is_null(raw)) else { return Ok(ResponseFormat::Text) };
    let mut obj = match lazy::obj(raw) {
        Obj::Object(obj) => obj,
        Obj::Other(kind) => {
            return Err(OpenAiError::invalid(
                "response_format",
                format!("expected an object, but got {kind} instead."),
            ));
        }
    };
    let path = || "response_format".to_owned();
    let kind = take_raw_str(&mut obj, "type", &path)?.ok_or_else(|| OpenAiError::missing("response_format.type"))?;
    match kind.as_ref() {
        "text" => Ok(ResponseFormat::Text),
        "json_object" => Ok(ResponseFormat::JsonObject),
        "json_schema" => {
            let spath = || "response_format.json_schema".to_owned();
            let Some(Obj::Object(mut spec)) = obj.take("json_schema").map(lazy::obj) else {
                return Err(OpenAiError::missing(spath()));
            };
            let name = take_raw_str(&mut spec, "name", &spath)?.map(Cow::into_owned);
            let description =
                take_raw_str(&mut spec, "description", &spath)?.filter(|d| !d.trim().is_empty()).map(Cow::into_owned);
            let schema = raw_object_schema(spec.take("schema"), &|| "response_format.json_schema.schema".to_owned())?;
            Ok(ResponseFormat::JsonSchema { name, description, schema })
        }
        other => Err(OpenAiError::invalid(
            "response_format.type",
            format!("unknown value '{other}'; the supported values are 'text', 'json_object' and 'json_schema'."),
        )),
    }
}

/// Base name of the tool that carries a `json_schema` answer.
const JSON_TOOL: &str = "json_response";

/// The tool for a `json_schema` response format, named so it does not clash with the client's tools.
pub(super) fn json_tool<'a>(
    existing: &[Tool<'_>],
    name: Option<String>,
    description: Option<String>,
    schema: Schema<'a>,
) -> Tool<'a> {
    let mut tool_name = JSON_TOOL.to_owned();
    while existing.iter().any(|t| t.name == tool_name) {
        tool_name.push('_');
    }
    let description = description.unwrap_or_else(|| {
        let what = name.map(|n| format!(" `{n}`")).unwrap_or_default();
        format!("Give the final answer by calling this tool: its input is the response{what}, a JSON object matching the schema.")
    });
    Tool { name: tool_name, description: Some(description), input_schema: schema, cache_control: None }
}

/// Declarations for tools called in the history when the client sent no `tools` (OpenAI accepts that, Anthropic does
/// not). Open schemas, because the real ones are unknown.
pub(super) fn history_tools<'a>(names: Vec<String>) -> Vec<Tool<'a>> {
    names
        .into_iter()
        .map(|name| Tool {
            name,
            description: None,
            input_schema: Schema::Value(Value::Object(open_schema())),
            cache_control: None,
        })
        .collect()
}

fn open_schema() -> Map<String, Value> {
    let mut schema = Map::new();
    schema.insert("type".into(), Value::String("object".into()));
    schema
}
