//! `docs/admin-api.yaml` as the tests read it: the operations it documents, whether each needs authentication,
//! and the check every admin API answer in these tests goes through ([`Spec::check`]): the body must match the
//! schema documented for its status (or `default`, the Error schema).
//!
//! Schemas are checked strictly: an object schema that lists `properties` refuses properties it does not list,
//! unless it says otherwise (`additionalProperties`), so a field the server sends but the document does not
//! describe fails here instead of surprising a client. Formats (`date-time`, `date`) are checked too.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::{Map, Value, json};

const DOC: &str = include_str!("../../docs/admin-api.yaml");
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The parsed document, with a cache of compiled response validators.
pub struct Spec {
    doc: Value,
    /// Components whose schemas must stay open to other properties: those extended through `allOf`.
    extended: HashSet<String>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

static SPEC: LazyLock<Spec> = LazyLock::new(|| {
    let doc: Value = serde_saphyr::from_str(DOC).expect("docs/admin-api.yaml parses");
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..3]), Some("3.1"), "an OpenAPI 3.1 document");
    let mut extended = HashSet::new();
    collect_allof_refs(&doc, &mut extended);
    Spec { doc, extended, validators: Mutex::new(HashMap::new()) }
});

/// The document.
pub fn spec() -> &'static Spec {
    &SPEC
}

/// Components named by a `$ref` directly inside an `allOf`.
fn collect_allof_refs(value: &Value, out: &mut HashSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(members)) = map.get("allOf") {
                for member in members {
                    if let Some(name) = member["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
                        out.insert(name.to_string());
                    }
                }
            }
            map.values().for_each(|v| collect_allof_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_allof_refs(v, out)),
        _ => {}
    }
}

/// `schema` with `unevaluatedProperties: false` on every object schema that lists its properties and does not
/// say whether others are allowed. Members of an `allOf` stay open (their parent closes the union).
fn strict(schema: &Value, in_allof: bool) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                let value = match key.as_str() {
                    "allOf" => match value {
                        Value::Array(members) => Value::Array(members.iter().map(|m| strict(m, true)).collect()),
                        other => other.clone(),
                    },
                    "properties" | "$defs" | "patternProperties" => match value {
                        Value::Object(props) => {
                            Value::Object(props.iter().map(|(k, v)| (k.clone(), strict(v, false))).collect())
                        }
                        other => other.clone(),
                    },
                    "items" | "additionalProperties" | "not" | "if" | "then" | "else" | "contains" => {
                        strict(value, false)
                    }
                    "oneOf" | "anyOf" | "prefixItems" => match value {
                        Value::Array(members) => Value::Array(members.iter().map(|m| strict(m, false)).collect()),
                        other => other.clone(),
                    },
                    _ => value.clone(),
                };
                out.insert(key.clone(), value);
            }
            let lists = map.contains_key("properties") || map.contains_key("allOf");
            let says = map.contains_key("additionalProperties") || map.contains_key("unevaluatedProperties");
            if lists && !says && !in_allof {
                out.insert("unevaluatedProperties".into(), Value::Bool(false));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

impl Spec {
    /// Every documented operation as `(METHOD, path)`, paths relative to `/admin/api/v1`.
    pub fn operations(&self) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_object().expect("paths") {
            for method in METHODS {
                if item.get(method).is_some() {
                    out.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    fn operation(&self, method: &str, path: &str) -> &Value {
        let op = &self.doc["paths"][path][method.to_lowercase()];
        assert!(op.is_object(), "{method} {path} is not in docs/admin-api.yaml");
        op
    }

    /// Whether the operation needs credentials (its `security`, else the document's, is not empty).
    pub fn needs_auth(&self, method: &str, path: &str) -> bool {
        let op = self.operation(method, path);
        let security = op.get("security").unwrap_or(&self.doc["security"]);
        security.as_array().is_some_and(|s| !s.is_empty())
    }

    /// Follows a local `$ref` (`#/components/...`).
    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference.strip_prefix('#').expect("local $ref");
                self.resolve(self.doc.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref {reference}")))
            }
            None => value,
        }
    }

    /// The documented response for `status`: the exact code, its class (`4XX`), or `default`.
    fn response(&self, method: &str, path: &str, status: u16) -> &Value {
        let responses = &self.operation(method, path)["responses"];
        let class = format!("{}XX", status / 100);
        let response = [status.to_string(), class, "default".to_string()]
            .iter()
            .find_map(|key| responses.get(key))
            .unwrap_or_else(|| panic!("{method} {path}: status {status} is not documented"));
        self.resolve(response)
    }

    fn validator(&self, key: &str, schema: &Value) -> Arc<jsonschema::Validator> {
        if let Some(v) = self.validators.lock().unwrap().get(key) {
            return v.clone();
        }
        let schemas: Map<String, Value> = self.doc["components"]["schemas"]
            .as_object()
            .expect("components.schemas")
            .iter()
            .map(|(name, s)| (name.clone(), if self.extended.contains(name) { s.clone() } else { strict(s, false) }))
            .collect();
        let mut root = strict(schema, false);
        if let Value::Object(map) = &mut root {
            map.insert("$schema".into(), json!("https://json-schema.org/draft/2020-12/schema"));
            map.insert("components".into(), json!({ "schemas": schemas }));
        } else {
            root = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "allOf": [root],
                "components": { "schemas": schemas },
            });
        }
        let validator = Arc::new(
            jsonschema::options()
                .should_validate_formats(true)
                .build(&root)
                .unwrap_or_else(|e| panic!("the schema for {key} compiles: {e}")),
        );
        self.validators.lock().unwrap().insert(key.to_string(), validator.clone());
        validator
    }

    /// Checks an answer against the documented response of `method` `path` (a template, as in the document) for
    /// its status: a response documented without content has an empty body; a JSON one has a body that is JSON
    /// of the documented schema, with the JSON content type. Returns the body (`null` when empty).
    pub fn check(&self, method: &str, path: &str, status: u16, content_type: Option<&str>, body: &[u8]) -> Value {
        let response = self.response(method, path, status);
        let what = format!("{method} {path} → {status}");
        let Some(content) = response.get("content") else {
            assert!(body.is_empty(), "{what} is documented without a body, got: {}", String::from_utf8_lossy(body));
            return Value::Null;
        };
        let schema = content
            .get("application/json")
            .and_then(|c| c.get("schema"))
            .unwrap_or_else(|| panic!("{what}: only JSON answers are checked here, the document says {content}"));
        assert!(
            content_type.is_some_and(|t| t.starts_with("application/json")),
            "{what}: content-type {content_type:?}, documented application/json"
        );
        let value: Value = serde_json::from_slice(body)
            .unwrap_or_else(|e| panic!("{what}: the body is not JSON ({e}): {}", String::from_utf8_lossy(body)));
        let validator = self.validator(&format!("{method} {path} {status}"), schema);
        let errors: Vec<String> =
            validator.iter_errors(&value).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(
            errors.is_empty(),
            "{what}: the body does not match docs/admin-api.yaml:\n{}\nbody: {value:#}",
            errors.join("\n")
        );
        value
    }
}

impl Spec {
    /// Checks an answer of a path or method the document does not have: the router's fallbacks answer with the
    /// documented Error schema.
    pub fn check_error(&self, status: u16, content_type: Option<&str>, body: &[u8]) -> Value {
        assert!(status >= 400, "an undocumented route answered {status}");
        assert!(content_type.is_some_and(|t| t.starts_with("application/json")), "content-type {content_type:?}");
        let value: Value = serde_json::from_slice(body).expect("an error body is JSON");
        let validator = self.validator("error", &json!({"$ref": "#/components/schemas/Error"}));
        let errors: Vec<String> = validator.iter_errors(&value).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "not the documented Error shape: {errors:?}\n{value:#}");
        value
    }

    /// Checks that an event stream is what the operation documents for `status`.
    pub fn check_stream(&self, method: &str, path: &str, status: u16) {
        let response = self.response(method, path, status);
        assert!(
            response.pointer("/content/text~1event-stream").is_some(),
            "{method} {path} → {status}: an event stream, documented as {response}"
        );
    }

    /// Whether the operation takes a JSON body.
    pub fn has_request_body(&self, method: &str, path: &str) -> bool {
        self.operation(method, path).get("requestBody").is_some()
    }

    /// Checks a request body the server accepted against the documented request body: what the server takes
    /// must be documented as valid (strictly, like answers).
    pub fn check_request(&self, method: &str, path: &str, body: &Value) {
        let what = format!("{method} {path} request");
        let schema = self
            .operation(method, path)
            .get("requestBody")
            .map(|r| self.resolve(r))
            .and_then(|r| r.pointer("/content/application~1json/schema"))
            .unwrap_or_else(|| panic!("{what}: the server accepted a body the document does not describe: {body}"));
        let validator = self.validator(&format!("{method} {path} request"), schema);
        let errors: Vec<String> =
            validator.iter_errors(body).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(
            errors.is_empty(),
            "{what}: accepted, but invalid per docs/admin-api.yaml:\n{}\nbody: {body:#}",
            errors.join("\n")
        );
    }
}

#[test]
fn the_strict_check_refuses_undocumented_properties_and_bad_formats() {
    let s = spec();
    // An error answer with an extra property is refused; the documented one passes.
    let good = json!({"error": {"type": "not_found", "message": "no", "field": null}});
    s.check("GET", "/status", 404, Some("application/json"), good.to_string().as_bytes());
    let extra = json!({"error": {"type": "not_found", "message": "no", "hint": "x"}});
    let refused = std::panic::catch_unwind(|| {
        s.check("GET", "/status", 404, Some("application/json"), extra.to_string().as_bytes());
    });
    assert!(refused.is_err(), "an undocumented property fails the check");
    let bad_date = json!({"url": "u", "redirect_uri": "r", "expires_at": "tomorrow"});
    let refused = std::panic::catch_unwind(|| {
        s.check("POST", "/accounts/{id}/login", 200, Some("application/json"), bad_date.to_string().as_bytes());
    });
    assert!(refused.is_err(), "a date-time that is not one fails the check");
    let refused = std::panic::catch_unwind(|| {
        s.check("DELETE", "/accounts/{id}", 204, None, b"{}");
    });
    assert!(refused.is_err(), "a 204 with a body fails the check");
}
