use super::*;

#[test]
fn status_explains_a_project_file_that_overrides_the_user_file() {
    let f = Fixture::new();
    f.write_user(RICH);
    f.setup();
    let local = f.project.join(".claude").join("settings.local.json");
    write(&local, r#"{"env": {"ANTHROPIC_BASE_URL": "http://localhost:9999"}}"#);

    let status = f.status();

    assert!(!status.uses_gateway);
    let base = status.base_url.as_ref().unwrap();
    assert_eq!((base.source.scope, base.shown.as_str()), (Scope::ProjectLocal, "http://localhost:9999"));
    assert_eq!(base.overridden[0].source.scope, Scope::User);
    let message = &finding(&status, "project_override").message;
    assert!(
        message.contains(&local.display().to_string()) && message.contains("remove env.ANTHROPIC_BASE_URL"),
        "{message}"
    );
    assert_eq!(finding(&status, "project_override").level, Level::Warning);
}

#[test]
fn status_explains_a_shell_credential_that_beats_the_gateway_helper() {
    let mut f = Fixture::new();
    f.write_user(RICH);
    f.setup();
    let secret = "sk-ant-api03-from-the-shell-9f3c";
    f.env.insert("ANTHROPIC_API_KEY".into(), secret.into());

    let status = f.status();

    let used = status.credential.as_ref().unwrap();
    assert_eq!((used.kind, used.source.scope), (CredentialKind::ApiKey, Scope::Environment));
    assert_eq!(used.shown, "sk-ant-…9f3c");
    assert_eq!(status.other_credentials[0].kind, CredentialKind::ApiKeyHelper);
    let message = &finding(&status, "credential_overrides_setup").message;
    assert!(message.contains("unset ANTHROPIC_API_KEY in your shell"), "{message}");
    let json = serde_json::to_string(&status).unwrap();
    assert!(!json.contains(secret), "a key never appears in full: {json}");
}

#[test]
fn status_says_a_shell_base_url_is_ignored_when_a_settings_file_sets_it() {
    let mut f = Fixture::new();
    f.setup();
    f.env.insert("ANTHROPIC_BASE_URL".into(), "https://api.anthropic.com".into());

    let status = f.status();

    assert!(status.uses_gateway, "settings files beat the shell");
    let message = &finding(&status, "environment_ignored").message;
    assert!(message.contains("https://api.anthropic.com") && message.contains("user settings"), "{message}");
}

#[test]
fn status_reports_an_auth_conflict_between_two_credentials_in_one_place() {
    let mut f = Fixture::new();
    f.env.insert("ANTHROPIC_AUTH_TOKEN".into(), "token-from-the-shell-0001".into());
    f.env.insert("ANTHROPIC_API_KEY".into(), "sk-ant-api03-key-from-the-shell-0002".into());

    let status = f.status();

    assert_eq!(status.credential.as_ref().unwrap().kind, CredentialKind::AuthToken);
    let message = &finding(&status, "auth_conflict").message;
    assert!(message.contains("ANTHROPIC_AUTH_TOKEN") && message.contains("unset ANTHROPIC_API_KEY"), "{message}");
}

#[test]
fn managed_settings_pinning_another_base_url_are_a_warning_after_setup() {
    let f = Fixture::new();
    write(&f.managed.join("managed-settings.json"), r#"{"env": {"ANTHROPIC_BASE_URL": "https://llm.corp.example"}}"#);
    write(&f.managed.join("managed-settings.d").join("10-other.json"), r#"{"model": "opus"}"#);

    let report = f.setup();

    assert!(!report.status.uses_gateway);
    let message = &finding(&report.status, "managed_base_url").message;
    assert!(message.contains("managed-settings.json") && message.contains("https://llm.corp.example"), "{message}");
}

#[test]
fn a_later_managed_drop_in_wins_over_the_base_file() {
    let f = Fixture::new();
    write(&f.managed.join("managed-settings.json"), r#"{"env": {"ANTHROPIC_BASE_URL": "https://one.example"}}"#);
    write(
        &f.managed.join("managed-settings.d").join("20-url.json"),
        r#"{"env": {"ANTHROPIC_BASE_URL": "https://two.example"}}"#,
    );
    write(
        &f.managed.join("managed-settings.d").join(".hidden.json"),
        r#"{"env": {"ANTHROPIC_BASE_URL": "https://hidden.example"}}"#,
    );

    let base = f.status().base_url.unwrap();

    assert_eq!(base.shown, "https://two.example");
    assert_eq!(base.overridden.len(), 1);
}

#[test]
fn status_without_any_setting_points_to_the_default_and_suggests_setup() {
    let f = Fixture::new();

    let status = f.status();

    assert!(status.base_url.is_none() && !status.uses_gateway);
    assert!(finding(&status, "not_using_gateway").message.contains("llm-gateway claude-code setup"));
    assert!(codes(&status).contains(&"no_credential"));
}

#[test]
fn a_cloud_provider_switch_is_reported_as_sending_claude_code_elsewhere() {
    let mut f = Fixture::new();
    f.setup();
    f.env.insert("CLAUDE_CODE_USE_BEDROCK".into(), "1".into());

    let status = f.status();

    assert!(!status.uses_gateway);
    assert!(finding(&status, "cloud_provider").message.contains("unset CLAUDE_CODE_USE_BEDROCK"));
}

#[test]
fn an_invalid_project_file_is_reported_not_fatal() {
    let f = Fixture::new();
    write(&f.project.join(".claude").join("settings.json"), "{ nope");

    let status = f.status();

    let message = &finding(&status, "settings_invalid").message;
    assert!(message.contains("project") && message.contains("settings.json"), "{message}");
}

#[test]
fn a_project_at_the_home_directory_counts_the_user_file_once() {
    let mut f = Fixture::new();
    f.project = f.home.clone();
    f.setup();

    let status = f.status();

    assert!(status.files.iter().all(|file| file.scope != Scope::Project), "{:?}", status.files);
    assert!(status.uses_gateway);
}

#[test]
fn signed_in_but_gateway_needs_a_key_without_the_header_is_a_warning() {
    let f = Fixture::new();
    f.sign_in();
    f.write_user(&format!(r#"{{"env": {{"ANTHROPIC_BASE_URL": "{GATEWAY}"}}}}"#));
    f.add_general_key();

    let status = f.status();

    assert!(status.uses_gateway);
    assert!(finding(&status, "gateway_key_missing").message.contains("x-llm-gateway-key"));
}

#[test]
fn refused_own_login_is_a_warning() {
    let mut f = Fixture::new();
    f.sign_in();
    f.setup();
    f.forwarding = false;

    assert!(codes(&f.status()).contains(&"own_login_refused"));
}

#[test]
fn custom_headers_are_shown_by_name_only() {
    let f = Fixture::new();
    f.write_user(r#"{"env": {"ANTHROPIC_CUSTOM_HEADERS": "x-llm-gateway-key: lgw-secret-value-abcdef\nx-team: a"}}"#);

    let status = f.status();

    assert_eq!(status.custom_headers.unwrap().shown, "headers: x-llm-gateway-key, x-team");
}

#[test]
fn loopback_names_are_the_same_gateway_and_other_ports_are_not() {
    assert!(same_gateway("http://localhost:8787", "http://127.0.0.1:8787/"));
    assert!(same_gateway("http://[::1]:8787", "http://127.0.0.1:8787"));
    assert!(!same_gateway("http://127.0.0.1:8788", "http://127.0.0.1:8787"));
    assert!(!same_gateway("https://127.0.0.1:8787", "http://127.0.0.1:8787"));
    assert!(!same_gateway("http://gateway.lan:8787", "http://127.0.0.1:8787"));
    assert!(!same_gateway("not a url", "http://127.0.0.1:8787"));
}

#[test]
fn redaction_keeps_only_a_prefix_and_the_last_four_characters() {
    assert_eq!(redact("sk-ant-api03-abcdefghijklmnop-a1b2"), "sk-ant-…a1b2");
    assert_eq!(redact("lgw-0123456789abcdefXYZW"), "lgw-…XYZW");
    assert_eq!(redact("plain-secret-value-7777"), "…7777");
    assert_eq!(redact("short"), "…");
}
