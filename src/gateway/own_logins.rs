//! Clients' own logins passed through (issue #13, `subscriptions.own_login: forward`): a request that carries its
//! own Anthropic credential — Claude Code's claude.ai access token, or an Anthropic API key — goes upstream with
//! it. The gateway never keeps the credential: the auth layer puts only an [`OwnCredential`] (kind + a short
//! SHA-256 hash) on the request, and this registry keeps, per hash, a path tracked like an account (health and
//! benches, rate-limit windows, counters) so status, cooldowns and usage work for it. Bounded ([`CAPACITY`], least
//! recently used out) and forgetful (an entry idle for [`IDLE_MS`] is dropped).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::HeaderMap;
use sha2::{Digest, Sha256};

use super::monitor::Seen;
use crate::accounts::{AccountState, AccountView, BenchReason, LiveAccount, StateSignal};
use crate::config::{Account, AccountKind};

/// Own-login paths kept at most; the least recently used one goes when a new one arrives.
pub const CAPACITY: usize = 64;
/// An own-login path unused for this long is forgotten (its windows and bench with it).
pub const IDLE_MS: u64 = 24 * 3600 * 1000;

/// Prefix of a claude.ai (subscription) access token.
const OAUTH_TOKEN_PREFIX: &str = "sk-ant-oat";
/// Prefix of every Anthropic credential (API keys `sk-ant-api…`, tokens `sk-ant-oat…`).
const ANTHROPIC_PREFIX: &str = "sk-ant-";

/// What kind of credential a client brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnCredentialKind {
    /// A claude.ai subscription access token (`Authorization: Bearer sk-ant-oat…`).
    ClaudeAi,
    /// An Anthropic API key (`x-api-key: sk-ant-…`, or `Authorization: Bearer sk-ant-api…`).
    ApiKey,
}

/// Which header carries a client's own credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialHeader {
    /// `Authorization: Bearer …`
    Authorization,
    /// `x-api-key`
    XApiKey,
}

/// A request's own Anthropic credential, as the gateway remembers it: its kind, the header it came in, and a
/// hash. Never the credential itself (it stays in the request's headers, on its way upstream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnCredential {
    /// Token or API key.
    pub kind: OwnCredentialKind,
    /// Where it is in the request.
    pub header: CredentialHeader,
    /// The first 16 hex digits of its SHA-256: the registry's key (`own:` + 8 of them is the path's id, 4 its
    /// display name's).
    pub hash: String,
}

impl OwnCredential {
    /// The own Anthropic credential a request carries, if any: an `Authorization: Bearer sk-ant-…` or an
    /// `x-api-key: sk-ant-…` for which `is_gateway_key` is false. A gateway key is never one.
    pub fn find(headers: &HeaderMap, is_gateway_key: impl Fn(&str) -> bool) -> Option<Self> {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let bearer = text(http::header::AUTHORIZATION.as_str())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let found = match bearer.filter(|t| t.starts_with(ANTHROPIC_PREFIX) && !is_gateway_key(t)) {
            Some(token) => Some((token, CredentialHeader::Authorization)),
            None => text("x-api-key")
                .filter(|k| k.starts_with(ANTHROPIC_PREFIX) && !is_gateway_key(k))
                .map(|k| (k, CredentialHeader::XApiKey)),
        };
        let (value, header) = found?;
        let kind = if header == CredentialHeader::Authorization && value.starts_with(OAUTH_TOKEN_PREFIX) {
            OwnCredentialKind::ClaudeAi
        } else {
            OwnCredentialKind::ApiKey
        };
        let hash = hex::encode(&Sha256::digest(value.as_bytes())[..8]);
        Some(Self { kind, header, hash })
    }

    /// The path's id: `own:` and 8 hex digits of the hash.
    pub fn id(&self) -> String {
        format!("own:{}", &self.hash[..8])
    }

    /// The path's name as shown: "Claude Code login ·a1b2" (or "Own API key ·a1b2").
    pub fn name(&self) -> String {
        let what = match self.kind {
            OwnCredentialKind::ClaudeAi => "Claude Code login",
            OwnCredentialKind::ApiKey => "Own API key",
        };
        format!("{what} ·{}", &self.hash[..4])
    }
}

#[derive(Debug)]
struct Entry {
    path: Arc<LiveAccount>,
    last_used_ms: u64,
}

/// The own-login paths seen recently. See the module docs.
#[derive(Debug, Default)]
pub struct OwnLogins {
    paths: Mutex<HashMap<String, Entry>>,
    /// Given to each path, so its benches wake the account-state monitor like an account's.
    signal: StateSignal,
}

impl OwnLogins {
    /// A registry whose paths notify `signal` when their state may have changed.
    pub(crate) fn with_signal(signal: StateSignal) -> Self {
        Self { paths: Mutex::default(), signal }
    }

    /// The path of `credential` (created on first sight), marked used at `now_ms`. `base_url` is where its
    /// requests go (`upstream.base_url`).
    pub fn path(&self, credential: &OwnCredential, base_url: &str, now_ms: u64) -> Arc<LiveAccount> {
        let mut paths = self.lock();
        if let Some(entry) = paths.get_mut(&credential.hash)
            && entry.path.base_url == base_url.trim_end_matches('/')
        {
            entry.last_used_ms = now_ms;
            return entry.path.clone();
        }
        paths.retain(|_, e| now_ms.saturating_sub(e.last_used_ms) < IDLE_MS);
        if paths.len() >= CAPACITY
            && let Some(oldest) = paths.iter().min_by_key(|(_, e)| e.last_used_ms).map(|(k, _)| k.clone())
        {
            paths.remove(&oldest);
        }
        let config = Account {
            id: credential.id(),
            name: credential.name(),
            kind: match credential.kind {
                OwnCredentialKind::ClaudeAi => AccountKind::Oauth,
                OwnCredentialKind::ApiKey => AccountKind::ApiKey,
            },
            enabled: true,
            weight: 1,
            priority: 0,
            models: Vec::new(),
            base_url: None,
            email: None,
            organization: None,
            oauth_client_id: None,
            clients: None,
            updated_at: String::new(),
        };
        // No credential: the client's own goes with each request.
        let path = Arc::new(LiveAccount::new(config, base_url, None).with_signal(self.signal.clone()));
        paths.insert(credential.hash.clone(), Entry { path: path.clone(), last_used_ms: now_ms });
        path
    }

    /// The paths' public views at `now_ms`, most recently used first (idle ones left out).
    pub fn views(&self, now_ms: u64) -> Vec<AccountView> {
        let paths = self.lock();
        let mut entries: Vec<&Entry> =
            paths.values().filter(|e| now_ms.saturating_sub(e.last_used_ms) < IDLE_MS).collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.last_used_ms));
        entries.into_iter().map(|e| view(&e.path, now_ms)).collect()
    }

    /// The paths' public states at `now_ms`, for the account-state monitor (`id`, `name`, state).
    pub(crate) fn states(&self, now_ms: u64) -> Vec<(String, String, Seen)> {
        let paths = self.lock();
        paths
            .values()
            .filter(|e| now_ms.saturating_sub(e.last_used_ms) < IDLE_MS)
            .map(|e| {
                let view = view(&e.path, now_ms);
                let until = e.path.health.benched(now_ms).map(|(until, _)| until);
                (view.id.clone(), view.name.clone(), Seen::from_view(&view, until))
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A poisoned lock only means a panic elsewhere mid-update; the map is still usable.
        self.paths.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An own-login path's view: an account's, with the state its health gives (it holds no stored credential, which
/// an account's view would call "needs login") and no stored-account settings.
fn view(path: &LiveAccount, now_ms: u64) -> AccountView {
    let mut view = path.view(now_ms);
    view.state = match path.health.benched(now_ms) {
        Some((_, BenchReason::CircuitOpen)) => AccountState::CircuitOpen,
        Some(_) => AccountState::CoolingDown,
        None if view.error.is_some() => AccountState::Error,
        None => AccountState::Active,
    };
    view.clients = None;
    view
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn an_own_credential_is_an_anthropic_one_that_is_not_a_gateway_key() {
        let none = |_: &str| false;
        let token = OwnCredential::find(&headers(&[("authorization", "Bearer sk-ant-oat01-abc")]), none).unwrap();
        assert_eq!((token.kind, token.header), (OwnCredentialKind::ClaudeAi, CredentialHeader::Authorization));
        assert_eq!(token.hash.len(), 16);
        assert!(token.name().starts_with("Claude Code login ·") && token.id().starts_with("own:"));
        assert!(!format!("{token:?}").contains("abc"), "only the hash is kept");
        let key = OwnCredential::find(&headers(&[("x-api-key", "sk-ant-api03-k")]), none).unwrap();
        assert_eq!((key.kind, key.header), (OwnCredentialKind::ApiKey, CredentialHeader::XApiKey));
        let bearer_key = OwnCredential::find(&headers(&[("authorization", "Bearer sk-ant-api03-k")]), none).unwrap();
        assert_eq!(bearer_key.kind, OwnCredentialKind::ApiKey);
        assert_eq!(bearer_key.hash, key.hash, "the same key groups together whichever header brings it");
        // Gateway keys and anything else are not.
        assert!(
            OwnCredential::find(&headers(&[("x-api-key", "lgw-abc"), ("authorization", "Bearer lgw-abc")]), none)
                .is_none()
        );
        assert!(OwnCredential::find(&headers(&[("x-api-key", "sk-ant-gw")]), |k| k == "sk-ant-gw").is_none());
        // The claude.ai token beside a gateway key in x-api-key (apiKeyHelper + login): the token is the own one.
        let both = headers(&[("authorization", "Bearer sk-ant-oat01-abc"), ("x-api-key", "lgw-abc")]);
        assert_eq!(OwnCredential::find(&both, none).unwrap().kind, OwnCredentialKind::ClaudeAi);
    }

    #[test]
    fn paths_are_kept_per_hash_bounded_and_forgotten_when_idle() {
        let logins = OwnLogins::default();
        let cred = |n: u32| OwnCredential {
            kind: OwnCredentialKind::ClaudeAi,
            header: CredentialHeader::Authorization,
            hash: format!("{n:08x}{n:08x}"),
        };
        let first = logins.path(&cred(0), "http://up/", 1);
        assert!(Arc::ptr_eq(&first, &logins.path(&cred(0), "http://up", 2)), "one path per credential");
        assert_eq!(first.base_url, "http://up");
        for n in 1..=CAPACITY as u32 {
            logins.path(&cred(n), "http://up", 10 + u64::from(n));
        }
        let views = logins.views(100);
        assert_eq!(views.len(), CAPACITY, "bounded");
        assert!(views.iter().all(|v| v.id != cred(0).id()), "the least recently used went");
        assert_eq!(views[0].state, AccountState::Active, "no stored credential is not 'needs login'");
        assert!(logins.views(IDLE_MS + 200).is_empty(), "idle paths are not shown");
    }
}
