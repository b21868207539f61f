//! One client request, as the usage store keeps it: who asked, which account answered, how it went, how long it
//! took and what it used. Built by the proxy after the request ends (a stream: when its body is done or dropped).
//! Never holds content or secrets: key and account *names*, model names, counts and a hash of the session key.

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The kind of client, told from the request's route and headers (see [`ClientKind::detect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// The Claude Code CLI (`x-app: cli`, a `claude-cli/` user agent, or a `claude-code-…` beta).
    ClaudeCode,
    /// An Anthropic SDK or another Messages client (`anthropic-version` sent).
    AnthropicSdk,
    /// An OpenAI-format client (the chat-completions route, or `/v1/models` without `anthropic-version`).
    Openai,
    /// Anything else.
    Other,
}

impl ClientKind {
    /// Every kind, in display order.
    pub const ALL: [ClientKind; 4] = [Self::ClaudeCode, Self::AnthropicSdk, Self::Openai, Self::Other];

    /// Tells the client kind from the route and a few headers; no allocation. Claude Code sends `x-app: cli`, a
    /// `claude-cli/<version>` user agent and its `claude-code-<date>` beta (protocol.md §7): any one of them makes
    /// a request Claude Code's (issue #13's rule, whatever the route). Anthropic SDKs always send
    /// `anthropic-version`; OpenAI clients use the chat route or omit `anthropic-version` on `/v1/models` (§8).
    /// This is the one classification: routing (which subscription accounts may serve), the OAuth enhancement, the
    /// usage record and the status counts all read it.
    pub fn detect(route: Route, headers: &HeaderMap) -> Self {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let claude_code_beta = || {
            headers
                .get_all("anthropic-beta")
                .iter()
                .flat_map(|v| v.as_bytes().split(|b| *b == b','))
                .any(|beta| beta.trim_ascii().starts_with(b"claude-code-"))
        };
        if header("x-app") == Some("cli")
            || header("user-agent").is_some_and(|ua| ua.starts_with("claude-cli/"))
            || claude_code_beta()
        {
            return Self::ClaudeCode;
        }
        if route == Route::ChatCompletions {
            return Self::Openai;
        }
        if headers.contains_key("anthropic-version") {
            return Self::AnthropicSdk;
        }
        if route == Route::Models || header("user-agent").is_some_and(|ua| ua.starts_with("OpenAI/")) {
            return Self::Openai;
        }
        Self::Other
    }

    /// The stable name used in the database, metrics labels and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClaudeCode => "claude_code",
            Self::AnthropicSdk => "anthropic_sdk",
            Self::Openai => "openai",
            Self::Other => "other",
        }
    }

    /// The kind named by [`as_str`](Self::as_str) (unknown names read as `Other`).
    pub fn parse(name: &str) -> Self {
        Self::ALL.into_iter().find(|k| k.as_str() == name).unwrap_or(Self::Other)
    }
}

/// The client-facing route a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// `POST /v1/messages`
    Messages,
    /// `POST /v1/messages/count_tokens`
    CountTokens,
    /// `GET /v1/models`
    Models,
    /// `POST /v1/chat/completions` (OpenAI format, converted)
    ChatCompletions,
}

impl Route {
    /// Every route.
    pub const ALL: [Route; 4] = [Self::Messages, Self::CountTokens, Self::Models, Self::ChatCompletions];

    /// The stable name used in the database, metrics labels and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Messages => "messages",
            Self::CountTokens => "count_tokens",
            Self::Models => "models",
            Self::ChatCompletions => "chat_completions",
        }
    }

    /// The route named by [`as_str`](Self::as_str).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// How a request ended, from the client's point of view. Exactly one per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A 2xx answer delivered in full (a stream: through `message_stop`).
    Ok,
    /// The upstream refused the request itself (400, 404, 413, …): returned as is, never retried.
    ClientError,
    /// The upstream failed and no other account could take over (5xx, 529, a 429 from every account), or a stream
    /// broke after its first byte (an `error` event).
    UpstreamError,
    /// The gateway could not reach an upstream (connect error, timeout) or failed itself (502/504).
    GatewayError,
    /// No account could be tried (all cooling down, disabled, or none serves the model): the gateway's 503.
    NoAccount,
    /// The client went away before the answer was complete; tokens are what had been seen.
    ClientCancelled,
    /// A per-client-key rate or budget limit answered 429 before any upstream call.
    RateLimitedByKey,
    /// A per-client-key rule answered 403 before any upstream call (model not allowed, key expired).
    DeniedByKey,
    /// The gateway key was missing or wrong (401).
    Unauthorized,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 9] = [
        Self::Ok,
        Self::ClientError,
        Self::UpstreamError,
        Self::GatewayError,
        Self::NoAccount,
        Self::ClientCancelled,
        Self::RateLimitedByKey,
        Self::DeniedByKey,
        Self::Unauthorized,
    ];

    /// The stable name used in the database, metrics labels and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::ClientError => "client_error",
            Self::UpstreamError => "upstream_error",
            Self::GatewayError => "gateway_error",
            Self::NoAccount => "no_account",
            Self::ClientCancelled => "client_cancelled",
            Self::RateLimitedByKey => "rate_limited_by_key",
            Self::DeniedByKey => "denied_by_key",
            Self::Unauthorized => "unauthorized",
        }
    }

    /// The outcome named by [`as_str`](Self::as_str).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == name)
    }

    /// The rollup bucket this outcome is counted in (see [`OutcomeClass`]).
    pub fn class(self) -> OutcomeClass {
        match self {
            Self::Ok => OutcomeClass::Ok,
            Self::ClientError => OutcomeClass::ClientError,
            Self::UpstreamError => OutcomeClass::UpstreamError,
            Self::GatewayError | Self::NoAccount => OutcomeClass::GatewayError,
            Self::ClientCancelled => OutcomeClass::Cancelled,
            Self::RateLimitedByKey | Self::DeniedByKey | Self::Unauthorized => OutcomeClass::KeyRejected,
        }
    }

    /// The outcome a finished upstream answer implies: 2xx → ok, 4xx → client error, else upstream error. The proxy
    /// overrides it for gateway-made answers, cancelled streams and streams that ended with an `error` event.
    pub fn from_status(status: u16) -> Self {
        match status {
            200..=299 => Self::Ok,
            400..=499 if status != 429 => Self::ClientError,
            _ => Self::UpstreamError,
        }
    }
}

/// The coarse classes rollups count separately, so error rates need no raw rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutcomeClass {
    /// [`Outcome::Ok`]
    Ok,
    /// [`Outcome::ClientError`]
    ClientError,
    /// [`Outcome::UpstreamError`]
    UpstreamError,
    /// [`Outcome::GatewayError`], [`Outcome::NoAccount`]
    GatewayError,
    /// [`Outcome::ClientCancelled`]
    Cancelled,
    /// [`Outcome::RateLimitedByKey`], [`Outcome::DeniedByKey`], [`Outcome::Unauthorized`]
    KeyRejected,
}

/// Why an attempt was given up and the next account tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailoverReason {
    /// 429 from the upstream.
    RateLimited,
    /// 529 overloaded.
    Overloaded,
    /// 500/502/503/504 from the upstream.
    ServerError,
    /// Connect or read failure before the answer.
    Network,
    /// No answer in time.
    Timeout,
    /// 401/403: the account's credential was refused.
    CredentialRejected,
    /// An OAuth account had no usable access token (login needed, refresh failed).
    NoToken,
    /// The stream's first event was an `error`.
    StreamError,
    /// A subscription's plan window was exhausted and more would have been billed as extra usage
    /// (`subscriptions.extra_usage: avoid`).
    ExtraUsage,
}

impl FailoverReason {
    /// Every reason.
    pub const ALL: [FailoverReason; 9] = [
        Self::RateLimited,
        Self::Overloaded,
        Self::ServerError,
        Self::Network,
        Self::Timeout,
        Self::CredentialRejected,
        Self::NoToken,
        Self::StreamError,
        Self::ExtraUsage,
    ];

    /// The stable name used in metrics labels and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::Overloaded => "overloaded",
            Self::ServerError => "server_error",
            Self::Network => "network",
            Self::Timeout => "timeout",
            Self::CredentialRejected => "credential_rejected",
            Self::NoToken => "no_token",
            Self::StreamError => "stream_error",
            Self::ExtraUsage => "extra_usage",
        }
    }
}

/// One upstream attempt of a request. JSON: `{"account", "status", "reason", "ms"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// The account tried.
    #[serde(rename = "account", alias = "account_id")]
    pub account_id: String,
    /// The upstream's status, or none when no answer came (network, timeout, no token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why the gateway moved on to another account; none for the attempt that answered the client.
    #[serde(rename = "reason", alias = "failover", default)]
    pub failover: Option<FailoverReason>,
    /// Time spent on this attempt, until its answer's head (or its failure).
    pub ms: u64,
}

/// Token counts as the upstream reported them (protocol.md §4). Total input is `input + cache_creation +
/// cache_read`; `input` counts only the tokens after the last cache breakpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// `input_tokens`
    pub input: u64,
    /// `output_tokens`
    pub output: u64,
    /// `cache_creation_input_tokens` (all TTLs)
    pub cache_creation: u64,
    /// `cache_read_input_tokens`
    pub cache_read: u64,
    /// The part of `cache_creation` written with the 1-hour TTL (`cache_creation.ephemeral_1h_input_tokens`),
    /// priced higher than 5-minute writes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_creation_1h: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Tokens {
    /// Every token the request processed: input, cache writes, cache reads and output.
    pub fn total(&self) -> u64 {
        self.input.saturating_add(self.output).saturating_add(self.cache_creation).saturating_add(self.cache_read)
    }

    /// The prompt's size: input + cache writes + cache reads.
    pub fn prompt(&self) -> u64 {
        self.input.saturating_add(self.cache_creation).saturating_add(self.cache_read)
    }

    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &Tokens) {
        self.input = self.input.saturating_add(other.input);
        self.output = self.output.saturating_add(other.output);
        self.cache_creation = self.cache_creation.saturating_add(other.cache_creation);
        self.cache_read = self.cache_read.saturating_add(other.cache_read);
        self.cache_creation_1h = self.cache_creation_1h.saturating_add(other.cache_creation_1h);
    }
}

/// What an estimated cost means for the account that answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostBasis {
    /// Billed per token: an API-key account. The cost is money spent.
    #[default]
    Spend,
    /// A subscription (OAuth account, or the client's own Claude login forwarded): the cost is what the same tokens
    /// would have cost on the API, shown as "API-equivalent value", never as spend.
    ApiEquivalent,
}

impl CostBasis {
    /// The basis for an account of this kind.
    pub fn for_account(kind: crate::config::AccountKind) -> Self {
        match kind {
            crate::config::AccountKind::ApiKey => Self::Spend,
            crate::config::AccountKind::Oauth => Self::ApiEquivalent,
        }
    }

    /// The stable name used in the database and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spend => "spend",
            Self::ApiEquivalent => "api_equivalent",
        }
    }

    /// The basis named by [`as_str`](Self::as_str).
    pub fn parse(name: &str) -> Self {
        if name == "api_equivalent" { Self::ApiEquivalent } else { Self::Spend }
    }
}

/// One finished client request. The proxy fills it in; [`crate::usage::Usage::record`] prices it (`cost_micros`)
/// and hands it to the store. Its JSON is the admin API's `RequestRecord` (see `json.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "super::json::RequestJson", try_from = "super::json::RequestJson")]
pub struct RequestRecord {
    /// When the request arrived, Unix milliseconds.
    pub started_at_ms: u64,
    /// The gateway's request id (`req_gw_…`).
    pub request_id: String,
    /// The client key's name; none on an open loopback gateway.
    pub client_key: Option<String>,
    /// What kind of client sent it.
    pub client_kind: ClientKind,
    /// The account that answered (the last one tried); none when no account was used.
    pub account_id: Option<String>,
    /// That account's name when the request ended.
    pub account_name: Option<String>,
    /// The route.
    pub route: Route,
    /// The `model` the client asked for (after OpenAI alias mapping).
    pub model_requested: Option<String>,
    /// The `model` the upstream answered with.
    pub model_answered: Option<String>,
    /// The HTTP status the client got.
    pub status: u16,
    /// How it ended.
    pub outcome: Outcome,
    /// `stop_reason` of the answer (`end_turn`, `max_tokens`, `tool_use`, …), or the `error.type` of an error
    /// event.
    pub stop_reason: Option<String>,
    /// Whether the answer was streamed.
    pub stream: bool,
    /// Request arrival → last byte to the client (or the client's disconnect), milliseconds.
    pub latency_ms: u64,
    /// Request arrival → first body byte to the client.
    pub first_byte_ms: Option<u64>,
    /// Time spent waiting on the upstream: every attempt until its answer's head, plus the body's transfer.
    /// `latency_ms - upstream_ms` is what the gateway added (see [`RequestRecord::gateway_ms`]).
    pub upstream_ms: u64,
    /// Each upstream attempt in order; the last one is the account that answered. The store keeps the list only
    /// when there was a failover (a request answered by its first attempt reads back with none).
    pub attempts: Vec<Attempt>,
    /// Tokens the upstream reported (for a cancelled stream: what had been seen).
    pub tokens: Tokens,
    /// Estimated cost in millionths of a US dollar; none when the model has no price. Filled in by
    /// [`crate::usage::Usage::record`] from the price table.
    pub cost_micros: Option<u64>,
    /// Whether the cost is spend or API-equivalent value.
    pub cost_basis: CostBasis,
    /// A stable hash of the session key (see [`session_hash`]), for "top sessions".
    pub session: Option<u64>,
    /// The request spilled over to an API-key account because the subscriptions were exhausted (issue #13).
    pub spillover: bool,
}

impl RequestRecord {
    /// A record with the identifying fields set and everything else empty (status 0, outcome ok, no tokens).
    pub fn new(started_at_ms: u64, request_id: impl Into<String>, route: Route, client_kind: ClientKind) -> Self {
        Self {
            started_at_ms,
            request_id: request_id.into(),
            client_key: None,
            client_kind,
            account_id: None,
            account_name: None,
            route,
            model_requested: None,
            model_answered: None,
            status: 0,
            outcome: Outcome::Ok,
            stop_reason: None,
            stream: false,
            latency_ms: 0,
            first_byte_ms: None,
            upstream_ms: 0,
            attempts: Vec::new(),
            tokens: Tokens::default(),
            cost_micros: None,
            cost_basis: CostBasis::Spend,
            session: None,
            spillover: false,
        }
    }

    /// Time the gateway itself added: total latency minus time spent on the upstream.
    pub fn gateway_ms(&self) -> u64 {
        self.latency_ms.saturating_sub(self.upstream_ms)
    }

    /// The model the request is accounted under: the one that answered, else the one asked for.
    pub fn model(&self) -> Option<&str> {
        self.model_answered.as_deref().or(self.model_requested.as_deref())
    }

    /// How many times the gateway moved to another account.
    pub fn failovers(&self) -> usize {
        self.attempts.iter().filter(|a| a.failover.is_some()).count()
    }
}

/// A stable 63-bit hash of a session key (Claude Code's `x-claude-code-session-id`, the session in
/// `metadata.user_id`, …), the same in every process and version, so "top sessions" survives restarts. The raw key
/// is never stored. Positive, so it round-trips through SQLite's signed integers.
pub fn session_hash(session_key: &str) -> u64 {
    let digest = Sha256::digest(session_key.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes) >> 1
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
