use super::*;

#[test]
fn setup_without_a_login_writes_the_base_url_and_helper_and_leaves_every_other_key_byte_for_byte() {
    let f = Fixture::new();
    f.write_user(RICH);

    let report = f.setup();

    assert_eq!(report.mode, SetupMode::ApiKeyHelper);
    let changed: Vec<&str> = report.changes.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(changed, ["env.ANTHROPIC_BASE_URL", "apiKeyHelper"]);
    let after = f.user_text();
    for key in UNRELATED {
        assert_eq!(raw_property(&after, key), raw_property(RICH, key), "{key} must keep its bytes");
    }
    let json = f.user_json();
    assert_eq!(json["env"]["ANTHROPIC_BASE_URL"], GATEWAY);
    assert_eq!(json["env"]["BASH_DEFAULT_TIMEOUT_MS"], "60000");
    assert_eq!(json["env"]["ANTHROPIC_CUSTOM_HEADERS"], "x-mock-tools: none");
    let config_path = std::path::absolute(f.config.path()).unwrap();
    assert_eq!(json["apiKeyHelper"], format!("'{HELPER}' --config {} claude-code api-key", config_path.display()));
    assert!(!after.contains(&f.dedicated_key()), "no key in the settings file");
    // The dedicated key: hash in the config, loopback only, not a general-purpose key.
    let config = f.config.load().unwrap();
    let [entry] = config.client_keys.as_slice() else { panic!("{:?}", config.client_keys) };
    assert_eq!(
        (entry.name.as_str(), entry.purpose, entry.loopback_only),
        ("claude-code", Some(crate::config::KeyPurpose::ClaudeCode), true)
    );
    assert!(report.status.uses_gateway, "{:#?}", report.status);
    assert_eq!(report.status.credential.as_ref().unwrap().kind, CredentialKind::ApiKeyHelper);
    assert_eq!(f.files_beside_settings("llm-gateway-backup").len(), 1, "the original was backed up first");
}

#[cfg(unix)]
#[test]
fn restore_gives_back_the_original_file_byte_for_byte_with_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    f.write_user(RICH);
    std::fs::set_permissions(f.user_settings(), std::fs::Permissions::from_mode(0o640)).unwrap();

    f.setup();
    assert_eq!(
        std::fs::metadata(f.user_settings()).unwrap().permissions().mode() & 0o777,
        0o640,
        "setup kept the mode"
    );
    let report = f.restore();

    assert!(report.had_setup && report.exact, "{report:?}");
    assert_eq!(f.user_text(), RICH);
    assert_eq!(std::fs::metadata(f.user_settings()).unwrap().permissions().mode() & 0o777, 0o640);
    assert!(f.status().setup.is_none(), "the record is gone after restore");
    assert!(!f.restore().had_setup, "a second restore has nothing to do");
}

#[test]
fn restore_after_an_unrelated_edit_keeps_the_edit_and_removes_only_our_keys() {
    let f = Fixture::new();
    f.write_user(RICH);
    f.setup();
    // The user edits another key, and Claude Code itself may add one.
    let edited = f.user_text().replace("\"model\": \"opus\"", "\"model\": \"sonnet\"").replacen(
        "\"cleanupPeriodDays\": 45,",
        "\"cleanupPeriodDays\": 45,\n\t\"theme\": \"dark\",",
        1,
    );
    f.write_user(&edited);

    let report = f.restore();

    assert!(report.had_setup && !report.exact, "{report:?}");
    assert!(report.left_alone.is_empty(), "{report:?}");
    let expected = RICH.replace("\"model\": \"opus\"", "\"model\": \"sonnet\"").replacen(
        "\"cleanupPeriodDays\": 45,",
        "\"cleanupPeriodDays\": 45,\n\t\"theme\": \"dark\",",
        1,
    );
    assert_eq!(f.user_text(), expected);
}

#[test]
fn a_key_of_ours_the_user_changed_is_left_alone_and_reported() {
    let f = Fixture::new();
    f.write_user(RICH);
    f.setup();
    let url_line = format!("\"ANTHROPIC_BASE_URL\": \"{GATEWAY}\"");
    let edited = f.user_text().replace(&url_line, "\"ANTHROPIC_BASE_URL\": \"http://127.0.0.1:9999\"");
    assert_ne!(edited, f.user_text());
    f.write_user(&edited);

    let report = f.restore();

    let left: Vec<&str> = report.left_alone.iter().map(|l| l.key.as_str()).collect();
    assert_eq!(left, ["env.ANTHROPIC_BASE_URL"]);
    let restored: Vec<&str> = report.changes.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(restored, ["apiKeyHelper"]);
    let json = f.user_json();
    assert_eq!(json["env"]["ANTHROPIC_BASE_URL"], "http://127.0.0.1:9999");
    assert!(json.get("apiKeyHelper").is_none());
}

#[test]
fn invalid_json_is_refused_with_its_path_and_left_untouched() {
    let f = Fixture::new();
    let broken = "{\n  \"model\": \"opus\",\n}\n";
    f.write_user(broken);

    let err = setup(&f.inputs(), &f.ctx()).unwrap_err();

    match &err {
        ClaudeCodeError::InvalidSettings { path, message } => {
            assert_eq!(path, &f.user_settings());
            assert!(message.contains("line 3"), "{message}");
        }
        other => panic!("expected InvalidSettings, got {other:?}"),
    }
    assert!(err.to_string().contains("settings.json"), "{err}");
    assert_eq!(f.user_text(), broken);
    assert!(f.files_beside_settings("backup").is_empty());
    assert!(f.config.load().unwrap().client_keys.is_empty(), "nothing done before the refusal");
    assert!(f.status().setup.is_none());
}

#[test]
fn restore_refuses_a_settings_file_that_became_invalid() {
    let f = Fixture::new();
    f.write_user(RICH);
    f.setup();
    let broken = f.user_text().replacen('{', "{,", 1);
    f.write_user(&broken);

    let err = restore(&f.inputs()).unwrap_err();

    assert!(matches!(err, ClaudeCodeError::InvalidSettings { .. }), "{err}");
    assert_eq!(f.user_text(), broken);
    assert!(f.status().setup.is_some(), "the record stays for a restore once the file is fixed");
}

#[test]
fn concurrent_setups_leave_a_valid_file_with_our_keys_once() {
    let f = Fixture::new();
    f.write_user(RICH);
    let inputs = f.inputs();
    let ctx = f.ctx();

    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..4).map(|_| scope.spawn(|| setup(&inputs, &ctx))).collect();
        for run in runs {
            run.join().unwrap().expect("every setup succeeds");
        }
    });

    let text = f.user_text();
    let json = f.user_json();
    assert_eq!(json["env"]["ANTHROPIC_BASE_URL"], GATEWAY);
    assert_eq!(text.matches("ANTHROPIC_BASE_URL").count(), 1, "{text}");
    assert_eq!(text.matches("apiKeyHelper").count(), 1, "{text}");
    assert_eq!(f.config.load().unwrap().client_keys.len(), 1, "one dedicated key");
    // The record still holds the true original, not a state one of the other setups wrote.
    assert!(f.restore().exact);
    assert_eq!(f.user_text(), RICH);
}

#[test]
fn running_setup_again_changes_nothing_and_restore_stays_exact() {
    let f = Fixture::new();
    f.write_user(RICH);
    f.setup();
    let after_first = f.user_text();

    let second = f.setup();

    assert!(second.changes.is_empty(), "{:?}", second.changes);
    assert!(second.backup.is_none());
    assert!(!second.dedicated_key.unwrap().created, "the dedicated key is reused");
    assert_eq!(f.user_text(), after_first);
    f.restore();
    assert_eq!(f.user_text(), RICH);
}

#[test]
fn credentials_in_the_user_settings_are_set_aside_and_put_back_in_place() {
    let f = Fixture::new();
    let text = "{\n  \"env\": {\n    \"A\": \"1\",\n    \"ANTHROPIC_API_KEY\": \"sk-ant-api03-user-own-key-1234\",\n    \"B\": \"2\"\n  },\n  \"model\": \"opus\"\n}\n";
    f.write_user(text);

    let report = f.setup();

    let removed = report.changes.iter().find(|c| c.key == "env.ANTHROPIC_API_KEY").expect("reported");
    assert_eq!(removed.action, ChangeAction::Removed);
    assert!(f.user_json()["env"].get("ANTHROPIC_API_KEY").is_none());
    // An unrelated edit forces the key-by-key restore.
    f.write_user(&f.user_text().replace("\"opus\"", "\"haiku\""));
    f.restore();
    assert_eq!(f.user_text(), text.replace("\"opus\"", "\"haiku\""), "the key is back where it was");
}

#[cfg(unix)]
#[test]
fn a_missing_settings_file_is_created_private_and_restore_removes_it() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();

    f.setup();

    assert_eq!(std::fs::metadata(f.user_settings()).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(f.user_json()["env"]["ANTHROPIC_BASE_URL"], GATEWAY);
    assert!(f.restore().exact);
    assert!(!f.user_settings().exists());
}

#[test]
fn signed_in_and_no_general_keys_writes_only_the_base_url() {
    let f = Fixture::new();
    f.write_user(RICH);
    f.sign_in();

    let report = f.setup();

    assert_eq!(report.mode, SetupMode::OwnLogin);
    let changed: Vec<&str> = report.changes.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(changed, ["env.ANTHROPIC_BASE_URL"]);
    assert!(report.dedicated_key.is_none());
    assert!(f.config.load().unwrap().client_keys.is_empty(), "no key made: the gateway stays open on loopback");
    assert!(f.secrets.get(DEDICATED_KEY_SECRET_ID).unwrap().is_none());
    assert_eq!(report.status.credential.as_ref().unwrap().kind, CredentialKind::ClaudeAiLogin);
    assert!(!codes(&report.status).contains(&"gateway_key_missing"));
    f.restore();
    assert_eq!(f.user_text(), RICH);
}

#[test]
fn signed_in_with_general_keys_sends_the_dedicated_key_in_a_custom_header() {
    let f = Fixture::new();
    f.write_user(RICH);
    f.sign_in();
    f.add_general_key();

    let report = f.setup();

    assert_eq!(report.mode, SetupMode::OwnLoginWithKey);
    let key = f.dedicated_key();
    assert_eq!(
        f.user_json()["env"]["ANTHROPIC_CUSTOM_HEADERS"],
        format!("x-mock-tools: none\nx-llm-gateway-key: {key}")
    );
    assert!(f.user_json().get("apiKeyHelper").is_none());
    let shown = serde_json::to_string(&report).unwrap();
    assert!(!shown.contains(&key), "the report never carries the key: {shown}");
    assert!(!codes(&report.status).contains(&"gateway_key_missing"), "{:#?}", report.status.findings);
    // Setup again: the header is not added twice.
    f.setup();
    assert_eq!(f.user_text().matches("x-llm-gateway-key").count(), 1);
    f.restore();
    assert_eq!(f.user_text(), RICH);
}

#[test]
fn a_claude_code_oauth_token_in_the_environment_counts_as_signed_in() {
    let mut f = Fixture::new();
    f.env.insert("CLAUDE_CODE_OAUTH_TOKEN".into(), "sk-ant-oat01-test-token-abcd".into());
    f.add_general_key();

    let report = f.setup();

    assert_eq!(report.mode, SetupMode::OwnLoginWithKey);
    assert_eq!(report.status.credential.as_ref().unwrap().kind, CredentialKind::OauthToken);
}

#[test]
fn oauth_account_in_the_state_file_counts_as_signed_in() {
    let f = Fixture::new();
    write(&f.home.join(".claude.json"), r#"{"numStartups": 3, "oauthAccount": {"accountUuid": "u-1"}}"#);

    assert_eq!(f.setup().mode, SetupMode::OwnLogin);
}

#[test]
fn switching_mode_undoes_the_keys_the_new_mode_does_not_need() {
    let f = Fixture::new();
    f.write_user(RICH);
    f.setup();
    f.sign_in();

    let report = f.setup();

    assert_eq!(report.mode, SetupMode::OwnLogin);
    let helper = report.changes.iter().find(|c| c.key == "apiKeyHelper").expect("helper undone");
    assert_eq!(helper.action, ChangeAction::Unset);
    assert!(f.user_json().get("apiKeyHelper").is_none());
    f.restore();
    assert_eq!(f.user_text(), RICH);
}

#[test]
fn a_settings_directory_moved_by_claude_config_dir_is_the_one_changed() {
    let mut f = Fixture::new();
    let custom = f.dir.path().join("custom-claude");
    f.env.insert("CLAUDE_CONFIG_DIR".into(), custom.display().to_string());

    let report = f.setup();

    assert_eq!(report.settings_path, custom.join("settings.json"));
    assert!(custom.join("settings.json").is_file());
    assert!(!f.user_settings().exists());
}

#[test]
fn the_dedicated_key_is_reused_and_recreated_when_its_secret_is_missing() {
    let f = Fixture::new();
    let first = key::ensure(&f.config, f.secrets.as_ref()).unwrap();
    let again = key::ensure(&f.config, f.secrets.as_ref()).unwrap();
    assert!(first.created && !again.created);
    assert_eq!(first.key.expose(), again.key.expose());
    assert_eq!(api_key(&f.config, Some(f.secrets.clone())).unwrap().expose(), first.key.expose());

    f.secrets.delete(DEDICATED_KEY_SECRET_ID).unwrap();
    let err = api_key(&f.config, Some(f.secrets.clone())).unwrap_err();
    assert!(matches!(err, ClaudeCodeError::NoDedicatedKey(_)), "{err}");
    let fresh = key::ensure(&f.config, f.secrets.as_ref()).unwrap();

    assert!(fresh.created);
    assert_ne!(fresh.key.expose(), first.key.expose());
    let config = f.config.load().unwrap();
    assert_eq!(config.client_keys.len(), 1, "the stale entry was replaced");
    assert_eq!(config.client_keys[0].sha256, hex::encode(crate::secrets::keys::hash_key(fresh.key.expose())));
}

#[test]
fn a_general_key_named_claude_code_is_kept_and_the_dedicated_one_gets_another_name() {
    let f = Fixture::new();
    f.add_key_named("claude-code");

    let dedicated = key::ensure(&f.config, f.secrets.as_ref()).unwrap();

    assert_eq!(dedicated.name, "claude-code-2");
    assert_eq!(f.config.load().unwrap().client_keys.len(), 2);
}

#[cfg(unix)]
#[test]
fn the_helper_command_runs_through_sh_with_paths_that_need_quoting() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("bin dir").join("it's llm-gateway");
    write(&program, "#!/bin/sh\nfor a in \"$@\"; do echo \"[$a]\"; done\n");
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.path().join("conf dir").join("config.yaml");

    let command = setup::helper_command(&program, &config);
    let out = std::process::Command::new("/bin/sh").arg("-c").arg(&command).output().unwrap();

    assert!(out.status.success(), "{command}: {}", String::from_utf8_lossy(&out.stderr));
    let expected = format!("[--config]\n[{}]\n[claude-code]\n[api-key]\n", config.display());
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected, "{command}");
}
