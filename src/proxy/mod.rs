//! One request's orchestration: inspect the body, check the client key's rules, choose an account, call the
//! upstream, judge the answer, fail over to the next account while nothing has reached the client, and hand the
//! answer back unchanged — recording the request as it goes (`record.rs`).
//!
//! The failover loop reads as "pick, call, judge" ([`Exchange::run`]): the per-request context ([`Exchange`])
//! holds what every attempt needs and the request's record, and one function ([`attempt::judge`]) decides what an
//! attempt's answer means: deliver it, retry elsewhere (with the reason), or stop with an error.

mod attempt;
mod error_body;
mod limits;
pub mod openai;
mod own_login;
mod record;
pub mod spillover;
mod stream;

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;

use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::Response;
use bytes::Bytes;

use self::attempt::{Call, Failure, Judgement, judge, send_attempt};
pub use self::record::{Arrival, Delivery, Recorder};
use self::spillover::{Lane, PathScope, SPILLOVER_API_KEY, SPILLOVER_HEADER, WhenExhausted};
use crate::common::ApiError;
use crate::config::ClientKey;
use crate::gateway::CredentialHeader;
use crate::gateway::{Gateway, Live};
use crate::router::{NoAccount, Pick, SelectRequest};
use crate::transform::anthropic::{MessagesSummary, inspect_messages_request};
use crate::upstream::{request_headers_for_own_login, request_headers_for_upstream};
use crate::usage::{ClientKind, Outcome, session_hash};

/// The upstream endpoints the gateway forwards to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/messages`
    Messages,
    /// `POST /v1/messages/count_tokens`
    CountTokens,
    /// `GET /v1/models`
    Models,
}

impl Endpoint {
    fn path(self) -> &'static str {
        match self {
            Self::Messages => "/v1/messages",
            Self::CountTokens => "/v1/messages/count_tokens",
            Self::Models => "/v1/models",
        }
    }

    fn method(self) -> Method {
        match self {
            Self::Messages | Self::CountTokens => Method::POST,
            Self::Models => Method::GET,
        }
    }
}

/// Bytes of the system prompt and first message hashed into a session key when the client names no session.
const SESSION_PREFIX_BYTES: usize = 4096;

/// Forwards one client request (its record started by `recorder`). `query` is passed through as is (e.g.
/// `beta=true`).
pub async fn forward(
    recorder: Recorder,
    endpoint: Endpoint,
    query: Option<&str>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    exchange(recorder, endpoint, query, headers, body).await.into_response()
}

/// [`forward`] up to the answer's head: the caller streams the body (the OpenAI route converts it first).
pub(crate) async fn exchange(
    mut recorder: Recorder,
    endpoint: Endpoint,
    query: Option<&str>,
    headers: HeaderMap,
    body: Bytes,
) -> Delivery {
    let summary = match endpoint {
        Endpoint::Messages | Endpoint::CountTokens => match inspect_messages_request(&body) {
            Ok(summary) => Some(summary),
            Err(e) => return recorder.refuse(ApiError::bad_request(e.to_string()), Outcome::ClientError),
        },
        Endpoint::Models => None,
    };
    let gateway = recorder.gateway().clone();
    let live = gateway.live();
    if let Some(s) = &summary {
        recorder.request(&s.model, s.stream, usage_session(&headers, s));
    }
    let key = recorder.key().cloned();
    if let Some(key) = &key
        && let Err(refusal) = limits::check(&gateway, key, summary.as_ref().map(|s| s.model.as_str()), gateway.now_ms())
    {
        return recorder.refuse(refusal.error, refusal.outcome);
    }
    let session = match (&summary, endpoint) {
        (Some(s), Endpoint::Messages) if live.config.routing.session_affinity => Some(session_key(&headers, s)),
        _ => None,
    };
    let stream = summary.as_ref().is_some_and(|s| s.stream);
    let model = summary.map(|s| s.model);
    let path_and_query = match query {
        Some(q) if !q.is_empty() => format!("{}?{q}", endpoint.path()),
        _ => endpoint.path().to_string(),
    };
    // A request with its own Anthropic credential goes upstream with it (and nothing of the gateway's).
    let own = recorder.own_credential().cloned();
    let mut upstream_headers = match &own {
        Some(own) => request_headers_for_own_login(headers, own.header == CredentialHeader::Authorization),
        None => request_headers_for_upstream(headers),
    };
    if stream {
        // The gateway reads a stream's first event and may end a broken stream with an error event: neither is
        // possible inside a compressed body. Non-streamed answers keep the client's Accept-Encoding and come back
        // byte for byte.
        upstream_headers.insert(http::header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    }
    let claude_code = recorder.client_kind() == ClientKind::ClaudeCode;
    let scope =
        PathScope { model: model.as_deref(), key: key.as_deref().filter(|k| k.restricts_accounts()), claude_code };
    let lane = Lane::start(claude_code, &live.accounts, &scope);
    let exchange = Exchange {
        lane,
        gateway,
        live,
        endpoint,
        path_and_query,
        headers: upstream_headers,
        body,
        model,
        session,
        key,
        claude_code,
        tried: Vec::with_capacity(2),
        last_failure: None,
        recorder,
    };
    match own {
        Some(own) => exchange.run_own_login(&own).await,
        None => exchange.run().await,
    }
}

/// One request on its way through the failover loop: what every attempt needs, the accounts tried so far, the
/// last failure (returned when nothing else is left), and the request's record.
struct Exchange {
    /// Which accounts the request may use now (a Claude Code request's subscriptions, spilled over, or all).
    lane: Lane,
    gateway: Arc<Gateway>,
    live: Arc<Live>,
    endpoint: Endpoint,
    path_and_query: String,
    headers: HeaderMap,
    body: Bytes,
    model: Option<String>,
    session: Option<u64>,
    key: Option<Arc<ClientKey>>,
    /// The request is Claude Code's (it carries its own identity; subscription accounts reserved for Claude
    /// Code may serve it).
    claude_code: bool,
    tried: Vec<usize>,
    last_failure: Option<Failure>,
    recorder: Recorder,
}

impl Exchange {
    /// Pick, call, judge — until an answer can be delivered, an attempt says stop, or no account is left.
    async fn run(mut self) -> Delivery {
        for attempt in 1..=self.live.config.routing.max_attempts {
            let pick = match self.pick() {
                Ok(pick) => pick,
                Err(NoPick::Left(none)) => return self.give_up(Some(none)),
                Err(NoPick::Refuse(mut error)) => {
                    // This request met the exhausted plan itself: say what the upstream told it.
                    if let Some(Failure::Gateway(last)) = &self.last_failure
                        && last.status == http::StatusCode::TOO_MANY_REQUESTS
                    {
                        error.message = format!("{} (this request: {})", error.message, last.message);
                    }
                    return self.recorder.refuse(error, Outcome::NoAccount);
                }
            };
            self.tried.push(pick.index);
            log_pick(&pick, attempt);
            // The claim gives a half-open trial back if this attempt ends without an outcome, at any await below.
            let claim = pick.claim;
            let account = claim.account().clone();
            account.record_attempt(self.gateway.now_ms());
            let started = Instant::now();
            let call = Call {
                endpoint: self.endpoint,
                path_and_query: &self.path_and_query,
                headers: &self.headers,
                body: &self.body,
                claude_code: self.claude_code,
            };
            let sent = send_attempt(&self.gateway, &self.live, &account, &call).await;
            match judge(&self.gateway, &self.live, claim, sent, started, attempt).await {
                Judgement::Deliver(mut answer) => {
                    self.recorder.attempt(&account, Some(answer.status().as_u16()), None, started);
                    self.mark_spillover(&mut answer);
                    return self.recorder.deliver(answer, None);
                }
                Judgement::Retry { reason, status, failure } => {
                    self.recorder.attempt(&account, status, Some(reason), started);
                    self.last_failure = Some(failure);
                }
                Judgement::Stop(error) => return self.recorder.refuse(error, Outcome::ClientError),
            }
        }
        self.give_up(None)
    }

    /// The next account to try, in the request's lane; when a Claude Code request's subscriptions are all
    /// exhausted, spill over to API-key accounts or refuse with a 429 (`spillover.rs`).
    fn pick(&mut self) -> Result<Pick, NoPick> {
        let none = match self.select() {
            Ok(pick) => return Ok(pick),
            Err(none) => none,
        };
        let now = self.gateway.now_ms();
        let scope = PathScope {
            model: self.model.as_deref(),
            key: self.key.as_deref().filter(|k| k.restricts_accounts()),
            claude_code: self.lane == Lane::Subscriptions,
        };
        let accounts = &self.live.accounts;
        match self.lane {
            Lane::Subscriptions => {}
            // Another client served by subscriptions alone (`clients: any`), all exhausted: the same 429.
            Lane::All if !scope.any_api_key(accounts) => {
                return Err(match scope.all_exhausted(accounts, now) {
                    Some(earliest) => NoPick::Refuse(spillover::subscriptions_exhausted_error(
                        earliest,
                        now,
                        "wait for the reset, or add an API-key account for this client",
                    )),
                    None => NoPick::Left(none),
                });
            }
            Lane::All | Lane::ApiKeys => return Err(NoPick::Left(none)),
        }
        let Some(earliest) = scope.all_exhausted(accounts, now) else {
            return Err(NoPick::Left(none));
        };
        match spillover::when_subscriptions_exhausted(&self.live.config.routing, earliest, now) {
            WhenExhausted::Refuse(error) => Err(NoPick::Refuse(error)),
            WhenExhausted::SpillOver => {
                self.lane = Lane::ApiKeys;
                tracing::info!(
                    "every subscription of this Claude Code request is exhausted; spilling over to an API-key account"
                );
                self.select().map_err(|_| {
                    let way_out = "no API-key account could take over (routing.spillover: api_keys); wait for the \
                                   reset or add one";
                    NoPick::Refuse(spillover::subscriptions_exhausted_error(earliest, now, way_out))
                })
            }
        }
    }

    fn select(&self) -> Result<Pick, NoAccount> {
        let routing = &self.live.config.routing;
        let exclude = self.lane.exclude(&self.live.accounts, &self.tried);
        let request = SelectRequest {
            strategy: routing.strategy,
            accounts: &self.live.accounts,
            schedule: &self.live.schedule,
            model: self.model.as_deref(),
            exclude: &exclude,
            session: self.session,
            affinity_ttl_ms: routing.affinity_ttl_secs.saturating_mul(1000),
            now_ms: self.gateway.now_ms(),
            key: self.key.as_deref().filter(|k| k.restricts_accounts()),
            claude_code: self.claude_code,
        };
        self.gateway.selector().select(&request)
    }

    /// No account (left) to try: the last upstream answer goes back as it was; else the gateway's own error
    /// (the last attempt's failure, or a 503 saying why nothing could be tried).
    fn give_up(mut self, none: Option<NoAccount>) -> Delivery {
        match self.last_failure.take() {
            Some(Failure::Upstream { answer, account }) => {
                let mut answer = answer.into_response(&account);
                self.mark_spillover(&mut answer);
                self.recorder.deliver(answer, Some(Outcome::UpstreamError))
            }
            Some(Failure::Gateway(e)) => self.recorder.refuse(e, Outcome::GatewayError),
            None => {
                let error = match none {
                    Some(none) => ApiError { retry_after: none.retry_after_secs, ..ApiError::unavailable(none.reason) },
                    None => ApiError::unavailable("no attempt was made (routing.max_attempts)"),
                };
                self.recorder.refuse(error, Outcome::NoAccount)
            }
        }
    }
}

impl Exchange {
    /// An answer from an API-key account that took over a Claude Code request's exhausted subscriptions says so,
    /// and so does its usage record.
    fn mark_spillover(&mut self, answer: &mut Response) {
        if self.lane == Lane::ApiKeys {
            answer.headers_mut().insert(SPILLOVER_HEADER, SPILLOVER_API_KEY);
            self.recorder.spilled_over();
        }
    }
}

/// Why no account was picked.
enum NoPick {
    /// Nothing (left) to try: the last failure, or the selector's reasons.
    Left(NoAccount),
    /// A Claude Code request's subscriptions are all exhausted and nothing takes over: this 429.
    Refuse(ApiError),
}

fn log_pick(pick: &Pick, attempt: u32) {
    if let Some(from) = &pick.moved_from {
        tracing::info!(attempt, from = %from, to = %pick.claim.account().name(), "session moved to another account");
    } else if attempt > 1 {
        tracing::info!(attempt, account = %pick.claim.account().name(), "failing over");
    }
}

/// The session key: Claude Code's session header, else the session in `metadata.user_id`, else a hash of the
/// client's key with the start of the system prompt and first message.
fn session_key(headers: &HeaderMap, summary: &MessagesSummary<'_>) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    if let Some(id) = headers.get("x-claude-code-session-id").and_then(|v| v.to_str().ok()) {
        ("header", id).hash(&mut hasher);
    } else if let Some(id) = &summary.session_id {
        ("metadata", id).hash(&mut hasher);
    } else {
        let key = headers.get("x-api-key").or_else(|| headers.get(http::header::AUTHORIZATION));
        ("derived", key.map(|k| k.as_bytes())).hash(&mut hasher);
        prefix(summary.system).hash(&mut hasher);
        prefix(summary.first_message).hash(&mut hasher);
    }
    hasher.finish()
}

/// The session the usage store groups by: the one the client names (Claude Code's header, else
/// `metadata.user_id`), hashed stably; none when the client names none.
fn usage_session(headers: &HeaderMap, summary: &MessagesSummary<'_>) -> Option<u64> {
    match headers.get("x-claude-code-session-id").and_then(|v| v.to_str().ok()) {
        Some(id) => Some(session_hash(id)),
        None => summary.session_id.as_deref().map(session_hash),
    }
}

fn prefix(s: Option<&str>) -> Option<&[u8]> {
    s.map(|s| &s.as_bytes()[..s.len().min(SESSION_PREFIX_BYTES)])
}
