//! Selection behaviour on live accounts, without HTTP.

use std::sync::Arc;

use super::{SelectRequest, Selector, schedule};
use crate::accounts::{LiveAccount, Observation};
use crate::config::{Account, AccountKind, Strategy};
use crate::secrets::Secret;

fn account(name: &str, weight: u32, priority: u32, models: &[&str]) -> Arc<LiveAccount> {
    let config = Account {
        id: format!("acc_{name}"),
        name: name.into(),
        kind: AccountKind::ApiKey,
        enabled: true,
        weight,
        priority,
        models: models.iter().map(|m| m.to_string()).collect(),
        base_url: None,
        email: None,
        organization: None,
        oauth_client_id: None,
        clients: None,
        updated_at: String::new(),
    };
    Arc::new(LiveAccount::new(config, "http://up", Some(Secret::new("k"))))
}

fn request<'a>(strategy: Strategy, accounts: &'a [Arc<LiveAccount>], schedule: &'a [u32]) -> SelectRequest<'a> {
    SelectRequest {
        strategy,
        accounts,
        schedule,
        model: Some("claude-sonnet-5"),
        exclude: &[],
        session: None,
        affinity_ttl_ms: 3_600_000,
        now_ms: 1_000,
        key: None,
        claude_code: true,
    }
}

fn pick_names(selector: &Selector, req: &SelectRequest<'_>, n: usize) -> Vec<String> {
    (0..n).map(|_| selector.select(req).unwrap().claim.account().name().to_string()).collect()
}

#[test]
fn round_robin_is_exact() {
    let accounts = vec![account("a", 1, 0, &[]), account("b", 1, 0, &[]), account("c", 1, 0, &[])];
    let s = Selector::new();
    assert_eq!(pick_names(&s, &request(Strategy::RoundRobin, &accounts, &[]), 6), ["a", "b", "c", "a", "b", "c"]);
}

#[test]
fn weighted_proportions_hold_within_three_percent_over_ten_thousand_picks() {
    let accounts = vec![account("a", 5, 0, &[]), account("b", 3, 0, &[]), account("c", 2, 0, &[])];
    let order = schedule::smooth_weighted(&[5, 3, 2]);
    let s = Selector::new();
    let picks = pick_names(&s, &request(Strategy::Weighted, &accounts, &order), 10_000);
    for (name, share) in [("a", 0.5), ("b", 0.3), ("c", 0.2)] {
        let got = picks.iter().filter(|p| *p == name).count() as f64 / 10_000.0;
        assert!((got - share).abs() <= 0.03, "{name}: {got} vs {share}");
    }
}

#[test]
fn weighted_skips_a_benched_account_and_keeps_the_others_proportional() {
    let accounts = vec![account("a", 2, 0, &[]), account("b", 1, 0, &[]), account("c", 1, 0, &[])];
    let order = schedule::smooth_weighted(&[2, 1, 1]);
    accounts[2].health.observe(&Observation::RateLimited { until_ms: 10_000 }, 1_000, &Default::default());
    let s = Selector::new();
    let picks = pick_names(&s, &request(Strategy::Weighted, &accounts, &order), 3_000);
    assert!(!picks.iter().any(|p| p == "c"));
    let a = picks.iter().filter(|p| *p == "a").count();
    assert!((1_900..=2_100).contains(&a), "{a}");
}

#[test]
fn lower_priority_tiers_are_used_only_when_the_top_is_unusable() {
    let accounts = vec![account("top", 1, 0, &[]), account("second", 1, 1, &[]), account("last", 1, 2, &[])];
    let s = Selector::new();
    let req = request(Strategy::RoundRobin, &accounts, &[]);
    assert_eq!(pick_names(&s, &req, 3), ["top", "top", "top"]);
    accounts[0].health.observe(&Observation::Overloaded, 1_000, &Default::default());
    assert_eq!(pick_names(&s, &req, 2), ["second", "second"]);
    accounts[1].mark_error("revoked");
    assert_eq!(pick_names(&s, &req, 2), ["last", "last"]);
}

#[test]
fn model_filters_and_exclusions_apply() {
    let accounts = vec![account("opus", 1, 0, &["claude-opus-*"]), account("any", 1, 0, &[])];
    let s = Selector::new();
    let mut req = request(Strategy::RoundRobin, &accounts, &[]);
    assert_eq!(pick_names(&s, &req, 3), ["any", "any", "any"]);
    req.model = Some("claude-opus-4-8");
    let exclude = [1];
    req.exclude = &exclude;
    assert_eq!(pick_names(&s, &req, 2), ["opus", "opus"]);
    req.model = Some("claude-sonnet-5");
    let err = s.select(&req).unwrap_err();
    assert!(err.reason.contains("not serving model `claude-sonnet-5`"), "{err}");
}

#[test]
fn health_first_prefers_the_account_with_fewer_recent_errors() {
    let accounts = vec![account("shaky", 1, 0, &[]), account("solid", 1, 0, &[])];
    let policy = Default::default();
    accounts[0].health.observe(&Observation::Windowless, 1_000, &policy);
    accounts[1].health.observe(&Observation::Healthy { latency_ms: 50 }, 1_000, &policy);
    let s = Selector::new();
    assert_eq!(pick_names(&s, &request(Strategy::HealthFirst, &accounts, &[]), 4), ["solid"; 4]);
}

#[test]
fn a_session_sticks_until_its_account_is_benched_then_moves_once() {
    let accounts = vec![account("a", 1, 0, &[]), account("b", 1, 0, &[])];
    let s = Selector::new();
    let mut req = request(Strategy::RoundRobin, &accounts, &[]);
    req.session = Some(42);
    let first = s.select(&req).unwrap();
    for _ in 0..5 {
        let again = s.select(&req).unwrap();
        assert!(again.sticky);
        assert_eq!(again.claim.account().name(), first.claim.account().name());
    }
    first.claim.account().health.observe(&Observation::Overloaded, 1_000, &Default::default());
    let moved = s.select(&req).unwrap();
    assert_ne!(moved.claim.account().name(), first.claim.account().name());
    assert_eq!(moved.moved_from.as_deref(), Some(first.claim.account().id()));
    assert!(s.select(&req).unwrap().sticky);
}

#[test]
fn only_one_request_takes_a_half_open_trial() {
    let accounts = vec![account("recovering", 1, 0, &[]), account("other", 1, 1, &[])];
    accounts[0].health.observe(&Observation::RateLimited { until_ms: 2_000 }, 1_000, &Default::default());
    let s = Selector::new();
    let mut req = request(Strategy::RoundRobin, &accounts, &[]);
    req.now_ms = 2_000;
    let held: Vec<_> = (0..3).map(|_| s.select(&req).unwrap()).collect();
    let names: Vec<&str> = held.iter().map(|p| p.claim.account().name()).collect();
    assert_eq!(names, ["recovering", "other", "other"]);
    drop(held);
    let again = s.select(&req).unwrap();
    assert_eq!(again.claim.account().name(), "recovering", "a trial claim dropped without an outcome is given back");
    assert!(again.claim.is_trial());
}

#[test]
fn a_client_key_narrows_the_choice_to_its_accounts_and_tiers() {
    let accounts = vec![account("work", 1, 0, &[]), account("home", 1, 0, &[]), account("spare", 1, 1, &[])];
    let s = Selector::new();
    let mut req = request(Strategy::RoundRobin, &accounts, &[]);
    let by_name = crate::config::ClientKey { name: "ci".into(), accounts: vec!["home".into()], ..Default::default() };
    req.key = Some(&by_name);
    assert_eq!(pick_names(&s, &req, 3), ["home"; 3]);
    // A tier restriction reaches past the better tier: the key may use only the spare tier.
    let by_tier = crate::config::ClientKey { name: "batch".into(), priority_tiers: vec![1], ..Default::default() };
    req.key = Some(&by_tier);
    assert_eq!(pick_names(&s, &req, 2), ["spare"; 2]);
    // Nothing allowed left: the 503 says why.
    let exclude = [2];
    req.exclude = &exclude;
    let err = s.select(&req).unwrap_err();
    assert!(err.reason.contains("2 accounts not allowed for gateway key `batch`"), "{err}");
}

fn oauth(name: &str, clients: Option<crate::config::AccountClients>) -> Arc<LiveAccount> {
    let mut config = account(name, 1, 0, &[]).config.clone();
    config.kind = AccountKind::Oauth;
    config.clients = clients;
    Arc::new(LiveAccount::new(config, "http://up", Some(Secret::new("token-record"))))
}

#[test]
fn a_subscription_account_serves_other_clients_only_when_opted_in() {
    use crate::config::AccountClients;
    let accounts = vec![oauth("max", None), oauth("pro", Some(AccountClients::ClaudeCode))];
    let s = Selector::new();
    let claude_code = request(Strategy::RoundRobin, &accounts, &[]);
    assert!(s.select(&claude_code).is_ok(), "Claude Code's requests may use them");
    let sdk = SelectRequest { claude_code: false, ..claude_code };
    let none = s.select(&sdk).unwrap_err();
    assert!(none.reason.contains("2 subscription (OAuth) accounts serve Claude Code only"), "{}", none.reason);
    assert!(none.reason.contains("`clients: any`") && none.reason.contains("Anthropic's terms"), "{}", none.reason);
    assert_eq!(none.retry_after_secs, None, "waiting would not help");

    // An API-key account and an opted-in subscription serve anyone; the reserved one is skipped.
    let accounts = vec![oauth("max", None), oauth("any", Some(AccountClients::Any)), account("key", 1, 0, &[])];
    let sdk = SelectRequest { claude_code: false, ..request(Strategy::RoundRobin, &accounts, &[]) };
    let picks = pick_names(&s, &sdk, 4);
    assert!(picks.iter().all(|n| n != "max"), "{picks:?}");
    assert!(picks.contains(&"any".to_string()) && picks.contains(&"key".to_string()), "{picks:?}");
}
