//! Unit tests of [`enhance_request`]: every `system` shape, headers, byte-for-byte preservation.

use serde_json::{Value, json};

use super::super::CLAUDE_CODE_IDENTITY as CC;
use super::*;

const AGENT: &str = "You are a Claude agent, built on Anthropic's Claude Agent SDK.";
const CC_SDK: &str = "You are Claude Code, Anthropic's official CLI for Claude, running within the Claude Agent SDK.";
const BILLING: &str = "x-anthropic-billing-header: cc_version=2.1.197.abc; cc_entrypoint=cli;";

fn token() -> Secret {
    Secret::new("sk-ant-oat01-test")
}

/// Runs the enhancement with the default prompt; returns the new body (parsed) or `None`.
fn run(body: &Value) -> Option<Value> {
    let mut h = HeaderMap::new();
    let out = enhance_request(body.to_string().as_bytes(), &mut h, &token(), CC).unwrap();
    out.map(|b| serde_json::from_slice(&b).unwrap())
}

fn system_of(v: &Value) -> Value {
    v["system"].clone()
}

fn text(t: &str) -> Value {
    json!({"type": "text", "text": t})
}

fn count(v: &Value, needle: &str) -> usize {
    v.to_string().matches(needle).count()
}

#[test]
fn absent_system_gets_the_identity() {
    let body = json!({"model": "claude-sonnet-5", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5});
    let out = run(&body).unwrap();
    assert_eq!(system_of(&out), json!([text(CC)]));
    assert_eq!(out["messages"], body["messages"]);
    let null = json!({"model": "m", "system": null, "messages": []});
    assert_eq!(system_of(&run(&null).unwrap()), json!([text(CC)]));
}

#[test]
fn string_system_keeps_the_callers_text() {
    let out = run(&json!({"model": "m", "system": "Be terse.", "messages": []})).unwrap();
    assert_eq!(system_of(&out), json!([text(CC), text("Be terse.")]));
    // Already starting with an identity: unchanged.
    for s in [format!("{CC} Be terse."), CC_SDK.to_string(), format!("  {AGENT}\nMore.")] {
        assert_eq!(run(&json!({"model": "m", "system": s, "messages": []})), None, "{s}");
    }
    // Empty string: just the identity, no empty block.
    let out = run(&json!({"model": "m", "system": "", "messages": []})).unwrap();
    assert_eq!(system_of(&out), json!([text(CC)]));
}

#[test]
fn array_system_gets_the_identity_first() {
    let caller = json!({"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}});
    let out = run(&json!({"model": "m", "system": [caller.clone()], "messages": []})).unwrap();
    assert_eq!(system_of(&out), json!([text(CC), caller]));
    let out = run(&json!({"model": "m", "system": [], "messages": []})).unwrap();
    assert_eq!(system_of(&out), json!([text(CC)]));
}

#[test]
fn billing_header_block_stays_first() {
    let body = json!({"model": "m", "system": [text(BILLING), text("Long prompt")], "messages": []});
    let out = run(&body).unwrap();
    assert_eq!(system_of(&out), json!([text(BILLING), text(CC), text("Long prompt")]));
    let only_billing = json!({"model": "m", "system": [text(BILLING)], "messages": []});
    assert_eq!(system_of(&run(&only_billing).unwrap()), json!([text(BILLING), text(CC)]));
}

#[test]
fn identity_already_present_is_not_copied() {
    let cached = json!({"type": "text", "text": CC, "cache_control": {"type": "ephemeral"}});
    for identity in [cached, text(AGENT), text(CC_SDK)] {
        let with_billing =
            json!({"model": "m", "system": [text(BILLING), identity.clone(), text("P")], "messages": []});
        assert_eq!(run(&with_billing), None, "{identity}");
        let without = json!({"model": "m", "system": [identity.clone(), text("P")], "messages": []});
        assert_eq!(run(&without), None, "{identity}");
    }
    // An exact identity block further down moves up instead of being duplicated.
    let body = json!({"model": "m", "system": [text(BILLING), text("P"), text(CC)], "messages": []});
    let out = run(&body).unwrap();
    assert_eq!(system_of(&out), json!([text(BILLING), text(CC), text("P")]));
    assert_eq!(count(&out, CC), 1);
    // Running the enhancement twice changes nothing the second time.
    for body in [json!({"model": "m", "messages": []}), json!({"model": "m", "system": "x", "messages": []})] {
        let once = run(&body).unwrap();
        assert_eq!(run(&once), None);
        assert_eq!(count(&once, CC), 1);
    }
}

#[test]
fn configured_prompt_is_recognised_and_used() {
    let custom = "You are a helpful gateway.";
    let mut h = HeaderMap::new();
    let body = json!({"model": "m", "system": format!("{custom} Extra."), "messages": []}).to_string();
    assert_eq!(enhance_request(body.as_bytes(), &mut h, &token(), custom).unwrap(), None);
    let body = json!({"model": "m", "messages": []}).to_string();
    let out = enhance_request(body.as_bytes(), &mut h, &token(), custom).unwrap().unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["system"], json!([text(custom)]));
    // An empty prompt turns the system part off.
    assert_eq!(enhance_request(body.as_bytes(), &mut h, &token(), "").unwrap(), None);
}

#[test]
fn haiku_is_treated_like_any_model() {
    let body = json!({"model": "claude-haiku-4-5-20251001", "system": "Short.", "messages": []});
    assert_eq!(system_of(&run(&body).unwrap()), json!([text(CC), text("Short.")]));
}

#[test]
fn other_fields_are_kept_byte_for_byte_in_order() {
    let messages = r#"[ {"role":"user","content":"caf\u00e9 \"q\" 1.50e3 😀", "z":1, "a":2},
        {"role" : "assistant", "content":[{"type":"text","text":"ok"}]} ]"#;
    let metadata = r#"{"user_id":"{\"device_id\":\"d\"}"}"#;
    let body = format!(
        r#"{{"zeta":1.0,"model":"claude-sonnet-5","messages":{messages},"system":"Be terse.","metadata":{metadata},"stream":true,"max_tokens":32000}}"#
    );
    let mut h = HeaderMap::new();
    let out = enhance_request(body.as_bytes(), &mut h, &token(), CC).unwrap().unwrap();
    let out = std::str::from_utf8(&out).unwrap();
    let system = format!(r#"[{{"type":"text","text":"{CC}"}},{{"type":"text","text":"Be terse."}}]"#);
    let expected = format!(
        r#"{{"zeta":1.0,"model":"claude-sonnet-5","messages":{messages},"system":{system},"metadata":{metadata},"stream":true,"max_tokens":32000}}"#
    );
    assert_eq!(out, expected);
    // Array system: untouched blocks keep their bytes too.
    let body = format!(
        r#"{{"system":[ {{"text":"P","type":"text", "cache_control":{{"type":"ephemeral"}}}} ],"messages":{messages}}}"#
    );
    let out = enhance_request(body.as_bytes(), &mut h, &token(), CC).unwrap().unwrap();
    let expected = format!(
        r#"{{"system":[{{"type":"text","text":"{CC}"}},{{"text":"P","type":"text", "cache_control":{{"type":"ephemeral"}}}}],"messages":{messages}}}"#
    );
    assert_eq!(std::str::from_utf8(&out).unwrap(), expected);
}

#[test]
fn headers_bearer_and_beta() {
    let mut h = HeaderMap::new();
    h.insert("x-api-key", HeaderValue::from_static("gateway-client-key"));
    h.insert("authorization", HeaderValue::from_static("Bearer client"));
    let body = br#"{"model":"m","system":"You are Claude Code, Anthropic's official CLI for Claude.","messages":[]}"#;
    assert_eq!(enhance_request(body, &mut h, &token(), CC).unwrap(), None);
    assert!(h.get("x-api-key").is_none());
    assert_eq!(h["authorization"], "Bearer sk-ant-oat01-test");
    assert!(h["authorization"].is_sensitive());
    assert_eq!(h["anthropic-beta"], OAUTH_BETA);

    // Client betas kept, in order, the oauth beta added once at the end.
    let mut h = HeaderMap::new();
    h.insert("anthropic-beta", HeaderValue::from_static("claude-code-20250219, context-1m-2025-08-07"));
    enhance_request(b"", &mut h, &token(), CC).unwrap();
    assert_eq!(h["anthropic-beta"], "claude-code-20250219, context-1m-2025-08-07,oauth-2025-04-20");
    enhance_request(b"", &mut h, &token(), CC).unwrap();
    assert_eq!(h["anthropic-beta"], "claude-code-20250219, context-1m-2025-08-07,oauth-2025-04-20");

    // Already there (anywhere in the list): untouched.
    let mut h = HeaderMap::new();
    h.insert("anthropic-beta", HeaderValue::from_static("a-1, oauth-2025-04-20 ,b-2"));
    enhance_request(b"", &mut h, &token(), CC).unwrap();
    assert_eq!(h["anthropic-beta"], "a-1, oauth-2025-04-20 ,b-2");

    // Several header lines become one list.
    let mut h = HeaderMap::new();
    h.append("anthropic-beta", HeaderValue::from_static("a-1,"));
    h.append("anthropic-beta", HeaderValue::from_static("b-2"));
    enhance_request(b"  ", &mut h, &token(), CC).unwrap();
    assert_eq!(h.get_all("anthropic-beta").iter().count(), 1);
    assert_eq!(h["anthropic-beta"], "a-1,b-2,oauth-2025-04-20");
}

#[test]
fn bad_bodies() {
    let mut h = HeaderMap::new();
    assert!(matches!(enhance_request(b"[1,2]", &mut h, &token(), CC), Err(OAuthError::InvalidBody(_))));
    assert!(matches!(enhance_request(b"{nope", &mut h, &token(), CC), Err(OAuthError::InvalidBody(_))));
    assert!(matches!(
        enhance_request(br#"{"system":"x"} trailing"#, &mut h, &token(), CC),
        Err(OAuthError::InvalidBody(_))
    ));
    // A `system` of an unexpected type is left for the upstream to judge.
    assert_eq!(enhance_request(br#"{"system":42}"#, &mut h, &token(), CC).unwrap(), None);
    // `{}` gets a system.
    let out = enhance_request(b"{}", &mut h, &token(), CC).unwrap().unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), json!({"system": [text(CC)]}));
}
