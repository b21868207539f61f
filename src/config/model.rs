//! The configuration model. Field names are the YAML keys; `configs/config.yaml` documents each one.

use serde::{Deserialize, Serialize};

use super::glob::glob_match;
use super::model_plans::{Spillover, SubscriptionsConfig, UsageConfig};

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The gateway's own HTTP server.
    pub server: ServerConfig,
    /// Where requests go and how long to wait for them.
    pub upstream: UpstreamConfig,
    /// Which secret store holds account credentials.
    pub secrets: SecretsConfig,
    /// How an account is chosen for each request.
    pub routing: RoutingConfig,
    /// OAuth client settings for Claude Code (Pro/Max) accounts.
    pub oauth: OAuthConfig,
    /// Upstream accounts. Their credentials live in the secret store, never here.
    pub accounts: Vec<Account>,
    /// Gateway keys clients authenticate with (hashes only).
    pub client_keys: Vec<ClientKey>,
    /// Model names for OpenAI-format clients.
    pub models: ModelsConfig,
    /// The usage store: request log, token and cost accounting, retention, prices.
    pub usage: UsageConfig,
    /// Claude Pro/Max subscriptions: clients' own logins passed through, and what happens at the plan's limits.
    pub subscriptions: SubscriptionsConfig,
}

/// `models:` settings (OpenAI Chat Completions clients).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelsConfig {
    /// Model name → Claude model, on top of the built-in aliases (`gpt-4o` → `claude-sonnet-5`, …); an entry
    /// here overrides a built-in one. Names in neither pass through unchanged.
    pub aliases: std::collections::BTreeMap<String, String>,
    /// `max_tokens` sent for OpenAI requests that give neither `max_tokens` nor `max_completion_tokens`.
    pub default_max_tokens: u32,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        Self { aliases: Default::default(), default_max_tokens: 4096 }
    }
}

/// `server:` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// `HOST:PORT` to listen on. Loopback by default; a non-loopback address requires at least one client key.
    pub listen: String,
    /// Largest request body accepted, in bytes; larger bodies get 413 `request_too_large`.
    pub max_body_bytes: u64,
    /// Largest single server-sent event of an upstream stream the gateway holds while it waits for the event's
    /// end, in bytes (streams are forwarded in whole events). A longer event ends the stream with an `error`
    /// event in the client's format.
    pub max_stream_event_bytes: u64,
    /// On SIGINT/SIGTERM, how long in-flight requests (streams included) may take to finish, in seconds.
    pub shutdown_grace_secs: u64,
    /// Extra `Host` header values accepted besides loopback names (e.g. `gateway.internal:8787`), for a gateway
    /// reached by name on a network.
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed to call the gateway (e.g. `https://app.example.com`). Loopback origins are always
    /// allowed; any other `Origin` is refused, which blocks cross-site requests from web pages.
    pub allowed_origins: Vec<String>,
    /// Threads serving requests in the `server` command. 1 (the default) runs everything on one thread, the
    /// cheapest per request: no cross-thread wake-ups, and one thread forwards thousands of requests a second.
    /// Raise it on a shared many-core server; 0 means one per CPU core. Read at start-up.
    pub worker_threads: usize,
    /// Seconds a client has to send a request's headers (from connecting, or from the first byte of the next
    /// request on a kept-alive connection); a connection that is slower is closed. Read at start-up.
    pub header_read_timeout_secs: f64,
    /// Seconds a kept-alive connection may wait, idle, for its next request before it is closed. Read at start-up.
    pub idle_timeout_secs: f64,
    /// Most client connections open at once; at the limit new connections wait (in the OS backlog) until one
    /// closes. Read at start-up.
    pub max_connections: usize,
    /// Seconds between HTTP/2 PING frames that detect a vanished client (closed after 20 s without an answer);
    /// 0 turns them off. Read at start-up.
    pub http2_keep_alive_secs: f64,
    /// Hours a web UI session (opened with a one-time code from `llm-gateway ui`) lasts before the browser must
    /// sign in again (1–720). Applies to sessions opened after a change.
    pub ui_session_hours: u64,
}

impl ServerConfig {
    /// [`Self::max_stream_event_bytes`] as a memory size on this platform.
    pub fn stream_event_limit(&self) -> usize {
        usize::try_from(self.max_stream_event_bytes).unwrap_or(usize::MAX)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8787".into(),
            max_body_bytes: 32 * 1024 * 1024,
            max_stream_event_bytes: 16 * 1024 * 1024,
            shutdown_grace_secs: 30,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            worker_threads: 1,
            header_read_timeout_secs: 30.0,
            idle_timeout_secs: 120.0,
            max_connections: 4096,
            http2_keep_alive_secs: 60.0,
            ui_session_hours: 12,
        }
    }
}

/// `upstream:` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Anthropic API base URL; accounts may override it with their own `base_url`.
    pub base_url: String,
    /// Seconds to wait for a TCP/TLS connection to the upstream.
    pub connect_timeout_secs: f64,
    /// Seconds to wait for the next bytes from the upstream (response headers or a body chunk) before giving up.
    pub read_timeout_secs: f64,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self { base_url: "https://api.anthropic.com".into(), connect_timeout_secs: 10.0, read_timeout_secs: 600.0 }
    }
}

/// Which secret store backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SecretsBackend {
    /// The OS keychain (macOS Keychain, Windows Credential Manager, Linux Secret Service).
    #[default]
    Keychain,
    /// An AES-256-GCM encrypted file beside the config.
    File,
}

/// `secrets:` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsConfig {
    /// `keychain` (default; falls back to `file` with a warning when no keychain answers) or `file`.
    pub backend: SecretsBackend,
}

/// Account selection strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Each eligible account in turn.
    #[default]
    RoundRobin,
    /// A uniformly random eligible account.
    Random,
    /// Smooth weighted round robin over account weights.
    Weighted,
    /// Prefer accounts with the best recent health.
    HealthFirst,
}

/// `routing:` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    /// `round_robin` | `random` | `weighted` | `health_first`.
    pub strategy: Strategy,
    /// Accounts tried per request before giving up (failover happens only before the first byte to the client).
    pub max_attempts: u32,
    /// Keep a session's requests on one account so the upstream prompt cache stays warm.
    pub session_affinity: bool,
    /// How long an idle session keeps its account, in seconds.
    pub affinity_ttl_secs: u64,
    /// Bench after a 529 overloaded answer, in seconds.
    pub overloaded_cooldown_secs: f64,
    /// Longest bench a rate-limit reset can impose, in seconds (protects against absurd reset headers).
    pub max_cooldown_secs: u64,
    /// Consecutive 5xx/network failures that open an account's circuit breaker.
    pub breaker_threshold: u32,
    /// First open-circuit backoff in seconds; doubles per failed trial, up to `breaker_max_backoff_secs`.
    pub breaker_backoff_secs: f64,
    /// Longest open-circuit backoff, in seconds.
    pub breaker_max_backoff_secs: f64,
    /// When every subscription path of a Claude Code request is exhausted: `none` (429 until the earliest
    /// reset) or `api_keys` (an API-key account serves it).
    pub spillover: Spillover,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            strategy: Strategy::RoundRobin,
            max_attempts: 3,
            session_affinity: true,
            affinity_ttl_secs: 3600,
            overloaded_cooldown_secs: 15.0,
            max_cooldown_secs: 86_400,
            breaker_threshold: 5,
            breaker_backoff_secs: 5.0,
            breaker_max_backoff_secs: 300.0,
            spillover: Spillover::None,
        }
    }
}

/// `oauth:` settings: the Claude Code OAuth client by default (see docs/protocol.md §1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuthConfig {
    /// OAuth client id.
    pub client_id: String,
    /// Authorization page URL.
    pub authorize_url: String,
    /// Token exchange and refresh URL.
    pub token_url: String,
    /// Redirect URI registered for the client.
    pub redirect_uri: String,
    /// Scopes requested at login.
    pub scopes: Vec<String>,
    /// Identity system prompt added to OAuth requests that carry none.
    pub system_prompt: String,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        Self {
            client_id: "9d1c250a-e61b-44d9-88ed-5944d1962f5e".into(),
            authorize_url: "https://claude.ai/oauth/authorize".into(),
            token_url: "https://platform.claude.com/v1/oauth/token".into(),
            redirect_uri: "https://platform.claude.com/oauth/code/callback".into(),
            scopes: vec!["org:create_api_key".into(), "user:profile".into(), "user:inference".into()],
            system_prompt: "You are Claude Code, Anthropic's official CLI for Claude.".into(),
        }
    }
}

/// The kind of credential an account holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// An Anthropic API key (`sk-ant-…`).
    #[default]
    ApiKey,
    /// A Claude Code OAuth (Pro/Max) login.
    Oauth,
}

/// One upstream account. The credential itself is in the secret store under [`Account::secret_id`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Stable id (`acc_…`), used by every command that names an account.
    pub id: String,
    /// Human-readable name, unique.
    pub name: String,
    /// Credential kind.
    #[serde(default)]
    pub kind: AccountKind,
    /// Disabled accounts are never chosen.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Share of traffic under the `weighted` strategy (≥ 1).
    #[serde(default = "one")]
    pub weight: u32,
    /// Priority tier: accounts with a lower number are preferred; a higher tier is used only when every account
    /// of the lower tiers is unusable.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: u32,
    /// Models this account serves (exact names, or prefixes ending in `*`); empty means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// Overrides `upstream.base_url` for this account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// OAuth accounts: the account's email, from the last login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// OAuth accounts: the organisation, from the last login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// OAuth accounts: overrides `oauth.client_id` (the client secret, if any, is in the secret store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth_client_id: Option<String>,
    /// Subscription (OAuth) accounts: which clients they serve, `claude_code` (the default) or `any`.
    /// Anthropic's terms reserve subscription credentials for Claude Code and Anthropic's own apps; `any` lets
    /// other tools use this account too, which Anthropic may bill as extra usage or answer by suspending it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<AccountClients>,
    /// When the account was added or last changed (RFC 3339); a change resets its runtime error state.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub updated_at: String,
}

fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}
fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Account {
    /// The secret store id holding this account's credential.
    pub fn secret_id(&self) -> String {
        match self.kind {
            AccountKind::ApiKey => format!("account:{}:api_key", self.id),
            // The token record (access + refresh token, expiry, scopes) managed by upstream::oauth.
            AccountKind::Oauth => format!("account:{}:oauth", self.id),
        }
    }

    /// The secret store id of an OAuth account's client secret (only when `add-oauth --client-secret` was given).
    pub fn client_secret_id(&self) -> String {
        format!("account:{}:oauth_client_secret", self.id)
    }

    /// Whether this account may serve requests that are not Claude Code's: API-key accounts always; subscription
    /// (OAuth) accounts only with `clients: any` (Anthropic's terms reserve their credentials for Claude Code).
    pub fn serves_any_client(&self) -> bool {
        self.kind == AccountKind::ApiKey || self.clients == Some(AccountClients::Any)
    }

    /// Whether this account serves `model` per its allowlist.
    pub fn serves(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|m| glob_match(m, model))
    }
}

/// Which clients a subscription (OAuth) account serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AccountClients {
    /// Claude Code only (its own requests, recognised by their headers).
    #[default]
    ClaudeCode,
    /// Any client (the identity system prompt is added to requests that are not Claude Code's).
    Any,
}

/// A gateway key clients authenticate with; only its SHA-256 hash is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ClientKey {
    /// Unique name.
    pub name: String,
    /// Lowercase hex SHA-256 of the key.
    pub sha256: String,
    /// The key's first characters, to recognise it in listings.
    #[serde(default)]
    pub prefix: String,
    /// Creation time (RFC 3339).
    #[serde(default)]
    pub created_at: String,
    /// What the key is for; absent for a general-purpose key. Only general-purpose keys close the gateway's
    /// "no client keys: open on loopback" mode, so a dedicated key (e.g. the one `claude-code setup` makes for
    /// Claude Code) never locks the user's other local tools out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<KeyPurpose>,
    /// Accepted only from a loopback peer (a request from this machine).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub loopback_only: bool,
    /// Models this key may use (exact names, or prefixes ending in `*`); empty means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// Requests per minute this key may send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    /// Tokens (input, output and cache) per UTC day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_day: Option<u64>,
    /// Estimated spend per UTC calendar month, in US dollars (API-key accounts' cost; subscription traffic counts
    /// at its API-equivalent value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd_month: Option<f64>,
    /// Accounts (ids or names) this key's requests may use; empty means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    /// Priority tiers this key's requests may use; empty means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priority_tiers: Vec<u32>,
    /// Last day (UTC, `YYYY-MM-DD`) the key works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

impl ClientKey {
    /// The key's stable public id: `key_` and the first 12 hex digits of its SHA-256. Names a key in the admin
    /// API and in events without revealing anything usable (12 hex digits of a hash of 256 random bits).
    pub fn id(&self) -> String {
        let hash = self.sha256.get(..12).unwrap_or(&self.sha256);
        format!("key_{}", hash.to_ascii_lowercase())
    }

    /// Whether this is a general-purpose key (one that closes the loopback-open mode).
    pub fn is_general(&self) -> bool {
        self.purpose.is_none()
    }

    /// Whether the key may use `model` (its `models` globs; none means all).
    pub fn allows_model(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|m| glob_match(m, model))
    }

    /// Whether the key's requests may go to `account` (its `accounts`, by id or name, and `priority_tiers`).
    pub fn allows_account(&self, account: &Account) -> bool {
        (self.accounts.is_empty() || self.accounts.iter().any(|a| *a == account.id || *a == account.name))
            && (self.priority_tiers.is_empty() || self.priority_tiers.contains(&account.priority))
    }

    /// Whether the key restricts which accounts it may use.
    pub fn restricts_accounts(&self) -> bool {
        !self.accounts.is_empty() || !self.priority_tiers.is_empty()
    }

    /// The first moment (Unix ms, UTC) the key no longer works: the midnight after its `expires` day. `None`
    /// without an expiry; an unreadable date (validation refuses one) counts as expired long ago.
    pub fn expired_from_ms(&self) -> Option<u64> {
        let expires = self.expires.as_deref()?;
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let Ok(day) = time::Date::parse(expires.trim(), &format) else {
            return Some(0);
        };
        let next = day.next_day().map_or(i64::MAX, |d| d.midnight().assume_utc().unix_timestamp());
        Some(u64::try_from(next).unwrap_or(0).saturating_mul(1000))
    }
}

/// What a dedicated gateway key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPurpose {
    /// The key `llm-gateway claude-code setup` made for Claude Code on this machine (its plaintext is in the
    /// secret store so the `apiKeyHelper` command can print it).
    ClaudeCode,
}
