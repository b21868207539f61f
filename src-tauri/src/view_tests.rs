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
    Snapshot { addr: addr(), secrets_in_file_fallback: false, requests: 7, accounts }
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
