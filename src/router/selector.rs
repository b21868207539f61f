//! Strategies over the eligible accounts (enabled, credential present, not in error, serving the model).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::Rng;

use crate::accounts::{AccountState, LiveAccount};
use crate::config::Strategy;

/// Chooses an account per request. Lock-free: one atomic counter.
#[derive(Debug, Default)]
pub struct Selector {
    next: AtomicUsize,
}

/// Why no account could serve a request; the message is shown to the client in the 503.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoAccount {
    /// A sentence naming the cause(s).
    pub reason: String,
}

impl fmt::Display for NoAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl Selector {
    /// A selector starting at the first account.
    pub fn new() -> Self {
        Self::default()
    }

    /// Picks an account for `model` (or any account when `model` is `None`).
    pub fn select(
        &self,
        strategy: Strategy,
        accounts: &[Arc<LiveAccount>],
        model: Option<&str>,
    ) -> Result<Arc<LiveAccount>, NoAccount> {
        let serves = |a: &LiveAccount| model.is_none_or(|m| a.config.serves(m));
        // Two passes over a short list beat allocating a filtered Vec per request.
        let eligible = accounts.iter().filter(|a| a.is_usable() && serves(a)).count();
        if eligible == 0 {
            return Err(explain(accounts, model));
        }
        let nth = match strategy {
            Strategy::RoundRobin | Strategy::HealthFirst => self.next.fetch_add(1, Ordering::Relaxed) % eligible,
            Strategy::Random => rand::rng().random_range(0..eligible),
            Strategy::Weighted => {
                let total: u64 =
                    accounts.iter().filter(|a| a.is_usable() && serves(a)).map(|a| u64::from(a.config.weight)).sum();
                let mut point = rand::rng().random_range(0..total.max(1));
                let mut index = 0;
                for (i, a) in accounts.iter().filter(|a| a.is_usable() && serves(a)).enumerate() {
                    let w = u64::from(a.config.weight);
                    if point < w {
                        index = i;
                        break;
                    }
                    point -= w;
                }
                index
            }
        };
        accounts.iter().filter(|a| a.is_usable() && serves(a)).nth(nth).cloned().ok_or_else(|| explain(accounts, model))
    }
}

/// Explains why nothing is eligible, e.g. "2 accounts disabled, 1 account's key was rejected (…)".
fn explain(accounts: &[Arc<LiveAccount>], model: Option<&str>) -> NoAccount {
    if accounts.is_empty() {
        return NoAccount {
            reason: "no account is configured; add one with `llm-gateway add-api-key --key sk-ant-… --name NAME`"
                .into(),
        };
    }
    let mut parts = Vec::new();
    let count = |state: AccountState| accounts.iter().filter(|a| a.state() == state).count();
    let disabled = count(AccountState::Disabled);
    if disabled > 0 {
        parts.push(format!("{} disabled", plural(disabled)));
    }
    let missing = count(AccountState::MissingCredential);
    if missing > 0 {
        parts.push(format!("{} without a credential in the secret store", plural(missing)));
    }
    let errors: Vec<String> = accounts
        .iter()
        .filter(|a| a.state() == AccountState::Error)
        .map(|a| format!("{} ({})", a.name(), a.error_message().unwrap_or_default()))
        .collect();
    if !errors.is_empty() {
        parts.push(format!("credential rejected by the upstream: {}", errors.join(", ")));
    }
    if let Some(model) = model {
        let not_serving = accounts.iter().filter(|a| a.is_usable() && !a.config.serves(model)).count();
        if not_serving > 0 {
            parts.push(format!("{} not serving model `{model}`", plural(not_serving)));
        }
    }
    NoAccount { reason: format!("no usable account: {}", parts.join("; ")) }
}

fn plural(n: usize) -> String {
    if n == 1 { "1 account".into() } else { format!("{n} accounts") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Account, AccountKind};
    use crate::secrets::Secret;

    fn account(name: &str, weight: u32, models: &[&str]) -> Arc<LiveAccount> {
        let config = Account {
            id: format!("acc_{name}"),
            name: name.into(),
            kind: AccountKind::ApiKey,
            enabled: true,
            weight,
            models: models.iter().map(|m| m.to_string()).collect(),
            base_url: None,
            updated_at: String::new(),
        };
        Arc::new(LiveAccount::new(config, "http://up", Some(Secret::new("k"))))
    }

    #[test]
    fn round_robin_visits_each_account_in_turn() {
        let accounts = vec![account("a", 1, &[]), account("b", 1, &[]), account("c", 1, &[])];
        let s = Selector::new();
        let picks: Vec<String> =
            (0..6).map(|_| s.select(Strategy::RoundRobin, &accounts, Some("m")).unwrap().name().to_string()).collect();
        assert_eq!(picks, ["a", "b", "c", "a", "b", "c"]);
    }

    #[test]
    fn model_filter_excludes_accounts_and_supports_prefixes() {
        let accounts = vec![account("opus", 1, &["claude-opus-*"]), account("haiku", 1, &["claude-haiku-4-5"])];
        let s = Selector::new();
        for _ in 0..4 {
            assert_eq!(s.select(Strategy::RoundRobin, &accounts, Some("claude-opus-4-8")).unwrap().name(), "opus");
        }
        let err = s.select(Strategy::RoundRobin, &accounts, Some("claude-sonnet-5")).unwrap_err();
        assert!(err.reason.contains("2 accounts not serving model `claude-sonnet-5`"), "{err}");
    }

    #[test]
    fn errored_and_disabled_accounts_are_skipped_and_explained() {
        let a = account("a", 1, &[]);
        a.mark_error("invalid x-api-key");
        let mut b_cfg = account("b", 1, &[]).config.clone();
        b_cfg.enabled = false;
        let b = Arc::new(LiveAccount::new(b_cfg, "http://up", Some(Secret::new("k"))));
        let err = Selector::new().select(Strategy::RoundRobin, &[a, b], Some("m")).unwrap_err();
        assert!(err.reason.contains("1 account disabled"), "{err}");
        assert!(err.reason.contains("a (invalid x-api-key)"), "{err}");
    }

    #[test]
    fn no_accounts_says_how_to_add_one() {
        let err = Selector::new().select(Strategy::RoundRobin, &[], Some("m")).unwrap_err();
        assert!(err.reason.contains("add-api-key"), "{err}");
    }

    #[test]
    fn weighted_follows_weights() {
        let accounts = vec![account("heavy", 3, &[]), account("light", 1, &[])];
        let s = Selector::new();
        let heavy =
            (0..10_000).filter(|_| s.select(Strategy::Weighted, &accounts, None).unwrap().name() == "heavy").count();
        // Expected 7500; binomial sd ≈ 43, so ±500 cannot fail by chance.
        assert!((7_000..8_000).contains(&heavy), "{heavy}");
    }
}
