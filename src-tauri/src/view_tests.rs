use std::net::SocketAddr;

use super::*;

const NOW: u64 = 1_800_000_000_000;

fn addr() -> SocketAddr {
    "127.0.0.1:8787".parse().unwrap()
}

fn account(id: &str, health: Health) -> AccountLine {
    AccountLine {
        id: id.into(),
        name: id.into(),
        oauth: true,
        health,
        cooldown_until_ms: None,
        five_hour: None,
        seven_day: None,
    }
}

fn cooling(id: &str, left_ms: u64) -> AccountLine {
    AccountLine { cooldown_until_ms: Some(NOW + left_ms), ..account(id, Health::CoolingDown) }
}

fn snapshot(accounts: Vec<AccountLine>) -> Snapshot {
    Snapshot {
        addr: addr(),
        secrets_in_file_fallback: false,
        requests: 7,
        today_requests: None,
        accounts,
        own_logins: vec![],
    }
}

fn running() -> Phase {
    Phase::Running { addr: addr() }
}

fn observed(phase: Phase, snapshot: Option<Snapshot>) -> Observed {
    Observed { phase, snapshot }
}

#[test]
fn tray_is_ok_only_when_every_enabled_account_is_usable() {
    let s = snapshot(vec![account("a", Health::Usable), account("off", Health::Disabled)]);
    assert_eq!(tray_state(&running(), Some(&s)), TrayState::Ok);
}

#[test]
fn tray_is_degraded_when_some_accounts_cool_down_or_need_login() {
    let s = snapshot(vec![account("a", Health::Usable), cooling("b", 60_000)]);
    assert_eq!(tray_state(&running(), Some(&s)), TrayState::Degraded);
    let s = snapshot(vec![account("a", Health::Usable), account("b", Health::NeedsLogin)]);
    assert_eq!(tray_state(&running(), Some(&s)), TrayState::Degraded);
}

#[test]
fn tray_is_down_without_a_usable_account_or_a_serving_gateway() {
    assert_eq!(tray_state(&running(), Some(&snapshot(vec![]))), TrayState::Down);
    let s = snapshot(vec![cooling("a", 1), account("b", Health::Broken), account("c", Health::Disabled)]);
    assert_eq!(tray_state(&running(), Some(&s)), TrayState::Down);
    let busy = Phase::PortBusy { addr: addr(), suggested: Some(8788) };
    assert_eq!(tray_state(&busy, None), TrayState::Down);
    assert_eq!(tray_state(&Phase::Starting, None), TrayState::Down);
    assert_eq!(tray_state(&Phase::Failed { message: "x".into() }, None), TrayState::Down);
}

#[test]
fn tray_shows_paused_whatever_the_accounts() {
    assert_eq!(tray_state(&Phase::Paused { addr: addr() }, None), TrayState::Paused);
}

#[test]
fn account_lines_show_plan_windows_as_percentages() {
    let a = AccountLine { five_hour: Some(0.123), seven_day: Some(0.8), ..account("max", Health::Usable) };
    assert_eq!(account_line(&a, NOW), "max · 5h 12% · 7d 80%");
    let only_week = AccountLine { seven_day: Some(1.0), ..account("pro", Health::Usable) };
    assert_eq!(account_line(&only_week, NOW), "pro · 7d 100%");
    assert_eq!(account_line(&account("work", Health::Usable), NOW), "work · ready");
}

#[test]
fn account_lines_say_why_an_account_is_not_usable() {
    assert_eq!(account_line(&cooling("max", 65 * 60_000), NOW), "max · cooling down, 1 h 5 min left");
    assert_eq!(account_line(&cooling("max", 0), NOW), "max · cooling down");
    assert_eq!(account_line(&account("max", Health::NeedsLogin), NOW), "max · needs login");
    assert_eq!(account_line(&account("k", Health::Broken), NOW), "k · credential problem");
    assert_eq!(account_line(&account("k", Health::Disabled), NOW), "k · disabled");
}

#[test]
fn durations_read_naturally() {
    assert_eq!(duration(1), "1 s");
    assert_eq!(duration(59_000), "59 s");
    assert_eq!(duration(61_000), "2 min");
    assert_eq!(duration(2 * 3_600_000 + 5 * 60_000), "2 h 5 min");
    assert_eq!(duration(3 * 86_400_000 + 4 * 3_600_000), "3 d 4 h");
}

#[test]
fn running_view_has_status_address_tooltip_and_account_lines() {
    let s = snapshot(vec![account("a", Health::Usable), account("b", Health::NeedsLogin)]);
    let view = tray_view(&running(), Some(&s), NOW);
    assert_eq!(view.status, "Serving on 127.0.0.1:8787 · 1 of 2 accounts usable");
    assert_eq!(view.address.as_deref(), Some("http://127.0.0.1:8787"));
    assert_eq!(view.tooltip, "LLM Gateway · http://127.0.0.1:8787 · 7 requests since start");
    assert_eq!(view.accounts, ["a · ready", "b · needs login"]);
    assert!(view.running && !view.paused && !view.can_retry);
    assert!(view.notices.is_empty());
}

#[test]
fn tooltip_counts_todays_requests_once_the_gateway_records_usage() {
    let s = Snapshot { today_requests: Some(1), ..snapshot(vec![account("a", Health::Usable)]) };
    assert_eq!(tray_view(&running(), Some(&s), NOW).tooltip, "LLM Gateway · http://127.0.0.1:8787 · 1 request today");
    let s = Snapshot { today_requests: Some(42), ..s };
    assert_eq!(tray_view(&running(), Some(&s), NOW).tooltip, "LLM Gateway · http://127.0.0.1:8787 · 42 requests today");
}

#[test]
fn a_new_request_count_changes_the_tooltip_but_not_the_menu() {
    let before = tray_view(&running(), Some(&snapshot(vec![account("a", Health::Usable)])), NOW);
    let s = Snapshot { requests: 8, ..snapshot(vec![account("a", Health::Usable)]) };
    let after = tray_view(&running(), Some(&s), NOW);
    assert_ne!(before, after);
    assert_eq!(after.counts.as_deref(), Some("8 requests since start"), "the counts line says it");
    assert!(before.same_menu(&after), "only the counts differ: updated in place");
    let cooling = tray_view(&running(), Some(&snapshot(vec![cooling("a", 90_000)])), NOW);
    assert!(!before.same_menu(&cooling), "an account line changed");
}

#[test]
fn countdowns_are_redrawn_when_their_text_would_change() {
    assert_eq!(next_change_in(&snapshot(vec![account("a", Health::Usable)]), NOW), None, "nothing counts down");
    // 45.3 s left: "46 s" becomes "45 s" in 300 ms.
    assert_eq!(next_change_in(&snapshot(vec![cooling("a", 45_300)]), NOW), Some(300));
    // 12 min 30 s left: "13 min" becomes "12 min" in 30 s.
    assert_eq!(next_change_in(&snapshot(vec![cooling("a", 750_000)]), NOW), Some(30_000));
    // The soonest of several; a cooldown already over waits for the gateway's own event.
    let s = snapshot(vec![
        cooling("a", 750_000),
        cooling("b", 2_000),
        AccountLine { cooldown_until_ms: Some(NOW - 5), ..account("c", Health::CoolingDown) },
    ]);
    assert_eq!(next_change_in(&s, NOW), Some(1_000));
    // Every format and every boundary between them: the text holds until the redraw and changes at it.
    for left in [1, 999, 1_000, 1_001, 59_999, 60_000, 60_001, 119_999, 3_599_000, 3_599_001, 3_600_000, 3_659_000]
        .into_iter()
        .chain([86_399_000, 86_400_000, 90_000_000])
    {
        let wait = next_change_in(&snapshot(vec![cooling("a", left)]), NOW).unwrap();
        assert!(wait > 0 && wait <= 60_000, "{left} ms left → redraw in {wait} ms");
        let at = |t| account_line(&cooling("a", left), t);
        assert_eq!(at(NOW), at(NOW + wait - 1), "{left} ms left: the text holds until the redraw in {wait} ms");
        if left > wait && left <= 86_400_000 {
            assert_ne!(at(NOW), at(NOW + wait), "{left} ms left: the text changes {wait} ms later");
        }
    }
}

fn setup_done(changed: &[&str], uses_gateway: bool, warnings: &[&str]) -> ClaudeCodeSetup {
    ClaudeCodeSetup {
        settings_path: "/home/u/.claude/settings.json".into(),
        changed: changed.iter().map(|s| s.to_string()).collect(),
        left_alone: vec![],
        backup: true,
        uses_gateway,
        warnings: warnings.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn claude_code_setup_says_what_changed_or_that_nothing_had_to() {
    let (title, body) = claude_code_setup_text(&setup_done(&["env.ANTHROPIC_BASE_URL", "apiKeyHelper"], true, &[]));
    assert_eq!(title, "Claude Code set up");
    assert_eq!(
        body,
        "Changed env.ANTHROPIC_BASE_URL, apiKeyHelper in /home/u/.claude/settings.json (the previous file is backed \
         up). New `claude` sessions go through LLM Gateway."
    );
    let (title, body) = claude_code_setup_text(&setup_done(&[], true, &[]));
    assert_eq!(title, "Claude Code already set up");
    assert!(body.contains("already pointed Claude Code at LLM Gateway; nothing changed"), "{body}");
}

#[test]
fn claude_code_setup_that_another_setting_overrides_says_why() {
    let why = "ANTHROPIC_BASE_URL in managed settings (/etc/claude-code/managed-settings.json) wins";
    let (title, body) = claude_code_setup_text(&setup_done(&["env.ANTHROPIC_BASE_URL"], false, &[why]));
    assert_eq!(title, "Claude Code not using LLM Gateway yet");
    assert!(body.ends_with(&format!("But Claude Code still does not use the gateway: {why}")), "{body}");
}

#[test]
fn claude_code_restore_says_what_was_put_back() {
    let restore = |had_setup, exact, put_back: &[&str], left_alone: &[&str]| ClaudeCodeRestore {
        settings_path: "/h/.claude/settings.json".into(),
        had_setup,
        exact,
        put_back: put_back.iter().map(|s| s.to_string()).collect(),
        left_alone: left_alone.iter().map(|s| s.to_string()).collect(),
    };
    assert_eq!(
        claude_code_restore_text(&restore(false, false, &[], &[])),
        ("Nothing to restore".into(), "LLM Gateway has not changed /h/.claude/settings.json.".into())
    );
    assert_eq!(
        claude_code_restore_text(&restore(true, true, &[], &[])).1,
        "/h/.claude/settings.json is back as it was before setup."
    );
    assert_eq!(
        claude_code_restore_text(&restore(true, false, &["apiKeyHelper"], &["env.ANTHROPIC_BASE_URL"])).1,
        "Put back apiKeyHelper in /h/.claude/settings.json; your other edits are kept. Left alone, as you changed \
         them since: env.ANTHROPIC_BASE_URL."
    );
}

#[test]
fn busy_port_view_offers_the_suggested_port_and_a_retry() {
    let view = tray_view(&Phase::PortBusy { addr: addr(), suggested: Some(8790) }, None, NOW);
    assert_eq!(view.status, "Port 8787 is in use by another program");
    assert_eq!(view.suggested_port, Some(8790));
    assert!(view.can_retry && !view.running);
    assert!(view.address.is_none() && view.accounts.is_empty());
}

#[test]
fn keychain_fallback_shows_a_notice_line() {
    let s = Snapshot { secrets_in_file_fallback: true, ..snapshot(vec![]) };
    let view = tray_view(&running(), Some(&s), NOW);
    assert_eq!(view.notices, ["Keychain unavailable: secrets are in the encrypted file"]);
    assert_eq!(view.status, "Serving on 127.0.0.1:8787 · no accounts yet");
}

#[test]
fn a_failed_start_message_is_cut_to_one_short_line() {
    let long = format!("{}\nsecond line", "x".repeat(200));
    let view = tray_view(&Phase::Failed { message: long }, None, NOW);
    assert!(view.status.starts_with("Could not start: xxx"));
    assert!(view.status.ends_with('…') && view.status.chars().count() < 120);
}

#[test]
fn needs_login_is_announced_once_when_it_begins() {
    let before = observed(running(), Some(snapshot(vec![account("max", Health::Usable)])));
    let after = observed(running(), Some(snapshot(vec![account("max", Health::NeedsLogin)])));
    assert_eq!(notices(Some(&before), &after, NOW), [Notice::NeedsLogin { name: "max".into() }]);
    assert_eq!(notices(Some(&after), &after, NOW), []);
    assert_eq!(notices(None, &after, NOW), [Notice::NeedsLogin { name: "max".into() }], "announced at launch too");
}

#[test]
fn a_new_account_waiting_for_its_first_login_is_not_announced() {
    let before = observed(running(), Some(snapshot(vec![account("max", Health::Usable)])));
    let after = observed(
        running(),
        Some(snapshot(vec![account("max", Health::Usable), account("claude", Health::NeedsLogin)])),
    );
    assert_eq!(notices(Some(&before), &after, NOW), [], "the user is logging it in right now");
}

#[test]
fn every_account_exhausted_is_announced_with_the_earliest_return() {
    let before = observed(running(), Some(snapshot(vec![cooling("a", 60_000), account("b", Health::Usable)])));
    let after = observed(
        running(),
        Some(snapshot(vec![cooling("a", 60_000), cooling("b", 3_600_000), account("off", Health::Disabled)])),
    );
    assert_eq!(notices(Some(&before), &after, NOW), [Notice::AllExhausted { wait_ms: Some(60_000) }]);
    assert_eq!(notices(Some(&after), &after, NOW), [], "not repeated while it lasts");
    let (_, body) = Notice::AllExhausted { wait_ms: Some(60_000) }.text();
    assert_eq!(body, "Requests fail until the first account is back, in 1 min.");
}

#[test]
fn no_account_at_all_is_not_exhaustion() {
    assert_eq!(notices(None, &observed(running(), Some(snapshot(vec![]))), NOW), []);
}

#[test]
fn a_failed_start_is_announced_once_per_failure() {
    let busy = observed(Phase::PortBusy { addr: addr(), suggested: Some(8788) }, None);
    let found = notices(Some(&observed(Phase::Starting, None)), &busy, NOW);
    assert_eq!(
        found,
        [Notice::CouldNotStart {
            reason: "Port 8787 is in use by another program. Use port 8788 from the tray menu.".into()
        }]
    );
    assert_eq!(notices(Some(&busy), &busy, NOW), []);
    let failed = observed(Phase::Failed { message: "bad config".into() }, None);
    assert_eq!(notices(Some(&busy), &failed, NOW), [Notice::CouldNotStart { reason: "bad config".into() }]);
}

#[test]
fn keychain_fallback_is_announced_once() {
    let s = Snapshot { secrets_in_file_fallback: true, ..snapshot(vec![]) };
    let next = observed(running(), Some(s));
    assert_eq!(notices(None, &next, NOW), [Notice::KeychainFallback]);
    assert_eq!(notices(Some(&next), &next, NOW), []);
}

#[test]
fn the_window_processs_first_page_state_is_the_apps_view_of_a_start() {
    assert_eq!(PageState::default(), page_state(&Phase::Starting, None, 0));
}

#[test]
fn claude_codes_own_login_is_listed_after_the_accounts_with_its_windows() {
    let own = AccountLine {
        five_hour: Some(0.12),
        seven_day: Some(0.4),
        ..account("Claude Code login ·a1b2", Health::Usable)
    };
    let s = Snapshot { own_logins: vec![own], ..snapshot(vec![account("key", Health::Usable)]) };
    let view = tray_view(&running(), Some(&s), NOW);
    assert_eq!(view.accounts, ["key · ready", "Claude Code login ·a1b2 · 5h 12% · 7d 40%"]);
}

#[test]
fn with_no_stored_account_claude_codes_own_login_makes_the_gateway_ready() {
    let own = account("Claude Code login ·a1b2", Health::Usable);
    let s = Snapshot { own_logins: vec![own.clone()], ..snapshot(vec![]) };
    let view = tray_view(&running(), Some(&s), NOW);
    assert_eq!(view.state, TrayState::Ok);
    assert!(view.status.ends_with("· Claude Code on its own login"), "{}", view.status);
    let cooling = Snapshot { own_logins: vec![cooling("Claude Code login ·a1b2", 60_000)], ..snapshot(vec![]) };
    assert_eq!(tray_view(&running(), Some(&cooling), NOW).state, TrayState::Degraded, "its plan is cooling down");
    assert_eq!(tray_view(&running(), Some(&snapshot(vec![])), NOW).state, TrayState::Down, "nothing at all");
}
