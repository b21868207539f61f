//! Choosing an account: session affinity first, then the best priority tier among the eligible accounts
//! (enabled, credential accepted, not benched, serving the model, not already tried), then the strategy.
//! Lock-free: atomics only on the account side, a sharded map for sessions.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::Rng;

use super::Affinity;
use crate::accounts::{AccountState, Claim, LiveAccount};
use crate::clock::hh_mm;
use crate::config::{ClientKey, Strategy};

/// Chooses an account per request.
#[derive(Debug, Default)]
pub struct Selector {
    next: AtomicUsize,
    affinity: Affinity,
}

/// One selection's inputs.
#[derive(Debug, Clone, Copy)]
pub struct SelectRequest<'a> {
    /// The configured strategy.
    pub strategy: Strategy,
    /// All accounts, in config order.
    pub accounts: &'a [Arc<LiveAccount>],
    /// Smooth weighted round-robin order over `accounts` (see [`super::schedule`]).
    pub schedule: &'a [u32],
    /// The requested model (`None`: any account).
    pub model: Option<&'a str>,
    /// Indices already tried for this request.
    pub exclude: &'a [usize],
    /// Session key hash, when affinity is on and the request has one.
    pub session: Option<u64>,
    /// Session TTL in ms.
    pub affinity_ttl_ms: u64,
    /// Current time (Unix ms).
    pub now_ms: u64,
    /// The client key, when its `accounts` or `priority_tiers` narrow the choice.
    pub key: Option<&'a ClientKey>,
    /// Whether the request is Claude Code's (`usage::ClientKind::detect`): subscription accounts with `clients:
    /// claude_code` (the default) serve only those.
    pub claude_code: bool,
}

impl SelectRequest<'_> {
    /// Whether the client key (if any) lets this request use `account`.
    fn key_allows(&self, account: &LiveAccount) -> bool {
        self.key.is_none_or(|k| k.allows_account(&account.config))
    }

    /// Whether `account` serves this request's kind of client (a subscription account reserved for Claude Code
    /// does not serve the others).
    fn client_allowed(&self, account: &LiveAccount) -> bool {
        self.claude_code || account.config.serves_any_client()
    }
}

/// The chosen account.
#[derive(Debug)]
pub struct Pick {
    /// Index into the account list.
    pub index: usize,
    /// The account, claimed: a half-open trial slot taken by this pick is held until the claim records the
    /// outcome or is dropped.
    pub claim: Claim,
    /// Chosen because the session is bound to it.
    pub sticky: bool,
    /// The session was bound to this other account before (affinity broken by failover or a bench).
    pub moved_from: Option<Arc<str>>,
}

/// Why no account could serve a request; the message is shown to the client in the 503.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoAccount {
    /// A sentence naming the cause(s).
    pub reason: String,
    /// Seconds until the earliest bench ends, when waiting would help.
    pub retry_after_secs: Option<u64>,
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

    /// Sessions currently bound.
    pub fn sessions(&self) -> usize {
        self.affinity.len()
    }

    /// Picks and claims an account.
    pub fn select(&self, req: &SelectRequest<'_>) -> Result<Pick, NoAccount> {
        // A claim fails only when another request just took a half-open trial slot; skip that account and retry.
        let mut lost: [usize; 4] = [usize::MAX; 4];
        for round in 0..lost.len() {
            let tier = Tier::scan(req, &lost[..round]);
            if tier.candidates.is_empty() {
                break;
            }
            // A session stays on its account while that account is usable and in the best tier.
            if round == 0
                && let Some(session) = req.session
                && let Some(id) = self.affinity.get(session, req.now_ms)
                && let Some(&i) = tier.candidates.iter().find(|&&i| req.accounts[i].id() == &*id)
                && let Some(claim) = Claim::take(&req.accounts[i], req.now_ms)
            {
                self.affinity.bind(session, &id, req.now_ms, req.affinity_ttl_ms);
                return Ok(Pick { index: i, claim, sticky: true, moved_from: None });
            }
            let index = self.choose(req, &tier);
            let account = &req.accounts[index];
            let Some(claim) = Claim::take(account, req.now_ms) else {
                lost[round] = index;
                continue;
            };
            let moved_from = match req.session {
                Some(s) => self.affinity.bind(s, account.id(), req.now_ms, req.affinity_ttl_ms),
                None => None,
            };
            return Ok(Pick { index, claim, sticky: false, moved_from });
        }
        Err(explain(req))
    }

    fn choose(&self, req: &SelectRequest<'_>, tier: &Tier) -> usize {
        let candidates = &tier.candidates;
        let n = candidates.len();
        match req.strategy {
            Strategy::RoundRobin => candidates[self.next.fetch_add(1, Ordering::Relaxed) % n],
            Strategy::Random => candidates[rand::rng().random_range(0..n)],
            Strategy::Weighted => {
                let len = req.schedule.len();
                // Slots of unusable accounts are consumed, not handed to the next slot's account, so the
                // remaining accounts keep their proportions to each other.
                (0..len)
                    .find_map(|_| {
                        let slot = self.next.fetch_add(1, Ordering::Relaxed) % len;
                        let i = req.schedule[slot] as usize;
                        tier.contains(i).then_some(i)
                    })
                    .unwrap_or(candidates[0])
            }
            Strategy::HealthFirst => {
                // Lowest score wins; ties rotate so equally healthy accounts share the load.
                let offset = self.next.fetch_add(1, Ordering::Relaxed);
                (0..n)
                    .map(|k| candidates[(offset + k) % n])
                    .min_by_key(|&i| req.accounts[i].health.score())
                    .unwrap_or(candidates[0])
            }
        }
    }
}

/// The eligible accounts of the best priority tier, found in one pass, as a list and as a bit set.
struct Tier {
    candidates: Vec<usize>,
    bits: Vec<u64>,
}

impl Tier {
    fn scan(req: &SelectRequest<'_>, lost: &[usize]) -> Self {
        let mut best = u32::MAX;
        let mut candidates = Vec::with_capacity(req.accounts.len());
        let mut bits = vec![0u64; req.accounts.len().div_ceil(64)];
        for (i, a) in req.accounts.iter().enumerate() {
            let priority = a.config.priority;
            if priority > best
                || !a.is_available(req.now_ms)
                || req.exclude.contains(&i)
                || lost.contains(&i)
                || !req.model.is_none_or(|m| a.config.serves(m))
                || !req.key_allows(a)
                || !req.client_allowed(a)
            {
                continue;
            }
            if priority < best {
                best = priority;
                candidates.clear();
                bits.iter_mut().for_each(|b| *b = 0);
            }
            candidates.push(i);
            bits[i / 64] |= 1 << (i % 64);
        }
        Self { candidates, bits }
    }

    fn contains(&self, i: usize) -> bool {
        self.bits.get(i / 64).is_some_and(|b| b & (1 << (i % 64)) != 0)
    }
}

/// Explains why nothing is eligible, e.g. "2 accounts cooling down (a until 14:05:00 UTC, …); 1 disabled".
fn explain(req: &SelectRequest<'_>) -> NoAccount {
    let accounts = req.accounts;
    if accounts.is_empty() {
        return NoAccount {
            reason: "no account is configured; add one with `llm-gateway add-api-key --name NAME` (it reads the key from standard input)"
                .into(),
            retry_after_secs: None,
        };
    }
    let now = req.now_ms;
    let serves = |a: &LiveAccount| req.model.is_none_or(|m| a.config.serves(m));
    let mut parts = Vec::new();
    let mut benched = Vec::new();
    let mut earliest: Option<u64> = None;
    let mut counts = [0usize; 3];
    let mut errors = Vec::new();
    let mut not_serving = 0;
    let mut needs_login = Vec::new();
    let mut not_allowed = 0;
    let mut claude_code_only = 0;
    for a in accounts {
        if !req.key_allows(a) {
            not_allowed += 1;
            continue;
        }
        if !req.client_allowed(a) {
            claude_code_only += 1;
            continue;
        }
        match a.state(now) {
            AccountState::Disabled => counts[0] += 1,
            AccountState::MissingCredential => counts[1] += 1,
            AccountState::Error => errors.push(format!("{} ({})", a.name(), a.error_message().unwrap_or_default())),
            AccountState::CoolingDown | AccountState::CircuitOpen if serves(a) => {
                if let Some((until, reason)) = a.health.benched(now) {
                    benched.push(format!("{} {} until {}", a.name(), reason.as_str(), hh_mm(until)));
                    earliest = Some(earliest.map_or(until, |e: u64| e.min(until)));
                }
            }
            AccountState::NeedsLogin => needs_login.push(a.name().to_string()),
            AccountState::Active | AccountState::Refreshing if !serves(a) => not_serving += 1,
            AccountState::Active | AccountState::Refreshing => counts[2] += 1,
            AccountState::CoolingDown | AccountState::CircuitOpen => not_serving += 1,
        }
    }
    if !needs_login.is_empty() {
        parts.push(format!(
            "OAuth login needed for {} (run `llm-gateway oauth-start --account-id NAME`)",
            needs_login.join(", ")
        ));
    }
    if !benched.is_empty() {
        parts.push(format!("{} cooling down ({})", plural(benched.len()), benched.join(", ")));
    }
    if counts[2] > 0 {
        parts.push(format!("{} busy with a half-open trial or already tried", plural(counts[2])));
    }
    if counts[0] > 0 {
        parts.push(format!("{} disabled", plural(counts[0])));
    }
    if counts[1] > 0 {
        parts.push(format!("{} without a credential in the secret store", plural(counts[1])));
    }
    if !errors.is_empty() {
        parts.push(format!("credential rejected by the upstream: {}", errors.join(", ")));
    }
    if let Some(model) = req.model
        && not_serving > 0
    {
        parts.push(format!("{} not serving model `{model}`", plural(not_serving)));
    }
    if let Some(key) = req.key
        && not_allowed > 0
    {
        parts.push(format!(
            "{} not allowed for gateway key `{}` (its accounts / priority_tiers)",
            plural(not_allowed),
            key.name
        ));
    }
    if claude_code_only > 0 {
        parts.push(claude_code_only_reason(claude_code_only));
    }
    NoAccount {
        reason: format!("no usable account: {}", parts.join("; ")),
        retry_after_secs: earliest.map(|e| e.saturating_sub(now).div_ceil(1000).max(1)),
    }
}

/// Why subscription accounts reserved for Claude Code did not serve this request, and the switch that changes it.
fn claude_code_only_reason(n: usize) -> String {
    let accounts = if n == 1 {
        "1 subscription (OAuth) account serves".to_string()
    } else {
        format!("{n} subscription (OAuth) accounts serve")
    };
    format!(
        "{accounts} Claude Code only (`clients: claude_code`, the default) and this request is not Claude Code's. \
         Anthropic's terms reserve subscription credentials for Claude Code and Anthropic's own apps; other tools' \
         traffic may be billed as extra usage or get the account suspended. To accept that risk, set `clients: any` \
         on the account (in the config file, or PATCH /admin/api/v1/accounts/ID with {{\"clients\":\"any\"}}); \
         or add an API-key account (`llm-gateway add-api-key`)"
    )
}

fn plural(n: usize) -> String {
    if n == 1 { "1 account".into() } else { format!("{n} accounts") }
}
