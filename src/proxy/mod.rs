//! One request's orchestration: inspect the body, choose an account, call the upstream, report the outcome, fail
//! over to the next account while nothing has reached the client, and hand the answer back unchanged.

mod error_body;
pub mod openai;
mod stream;

use std::hash::{Hash, Hasher};
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use self::error_body::{ErrorAnswer, MAX_ERROR_BODY};
use self::stream::{first_event, is_encoded};
use crate::accounts::windows::parse_windows;
use crate::accounts::{Claim, LiveAccount, Observation};
use crate::common::{AccountUsed, ApiError};
use crate::config::AccountKind;
use crate::gateway::{Gateway, Live};
use crate::router::{Pick, SelectRequest};
use crate::secrets::Secret;
use crate::transform::anthropic::{MessagesSummary, inspect_messages_request};
use crate::upstream::oauth::{self, OAuthError};
use crate::upstream::outcome::{self, Verdict, classify};
use crate::upstream::{self, UpstreamError, request_headers_for_upstream, strip_hop_by_hop};

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

/// The last failed attempt, returned to the client when no account is left to try.
enum Failure {
    Gateway(ApiError),
    Upstream { answer: ErrorAnswer, account: String },
}

impl Failure {
    fn into_response(self) -> Response {
        match self {
            Self::Gateway(e) => e.into_response(),
            Self::Upstream { answer, account } => {
                build(answer.status, answer.headers, Body::from(answer.body), &account)
            }
        }
    }
}

/// Forwards one client request. `query` is passed through as is (e.g. `beta=true`).
pub async fn forward(
    gateway: &Gateway,
    endpoint: Endpoint,
    query: Option<&str>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let summary = match endpoint {
        Endpoint::Messages | Endpoint::CountTokens => {
            Some(inspect_messages_request(&body).map_err(|e| ApiError::bad_request(e.to_string()))?)
        }
        Endpoint::Models => None,
    };
    let live = gateway.live();
    let routing = &live.config.routing;
    let session = match (&summary, endpoint) {
        (Some(s), Endpoint::Messages) if routing.session_affinity => Some(session_key(&headers, s)),
        _ => None,
    };
    let model = summary.as_ref().map(|s| s.model.as_str());
    let path_and_query = match query {
        Some(q) if !q.is_empty() => format!("{}?{q}", endpoint.path()),
        _ => endpoint.path().to_string(),
    };
    let mut upstream_headers = request_headers_for_upstream(headers);
    if summary.as_ref().is_some_and(|s| s.stream) {
        // The gateway reads a stream's first event and may end a broken stream with an error event: neither is
        // possible inside a compressed body. Non-streamed answers keep the client's Accept-Encoding and come back
        // byte for byte.
        upstream_headers.insert(http::header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    }
    let event_limit = live.config.server.stream_event_limit();
    let max_cooldown_ms = routing.max_cooldown_secs.saturating_mul(1000);

    let mut tried: Vec<usize> = Vec::with_capacity(2);
    let mut last_failure: Option<Failure> = None;
    for attempt in 1..=routing.max_attempts {
        let request = SelectRequest {
            strategy: routing.strategy,
            accounts: &live.accounts,
            schedule: &live.schedule,
            model,
            exclude: &tried,
            session,
            affinity_ttl_ms: routing.affinity_ttl_secs.saturating_mul(1000),
            now_ms: gateway.now_ms(),
        };
        let pick = match gateway.selector().select(&request) {
            Ok(pick) => pick,
            Err(none) => {
                return match last_failure {
                    Some(failure) => Ok(failure.into_response()),
                    None => Err(ApiError { retry_after: none.retry_after_secs, ..ApiError::unavailable(none.reason) }),
                };
            }
        };
        tried.push(pick.index);
        log_pick(&pick, attempt);
        // The claim gives a half-open trial back if this attempt ends without an outcome, at any await below.
        let claim = pick.claim;
        let account = claim.account().clone();
        account.record_attempt(gateway.now_ms());
        let started = Instant::now();
        let call = Call { endpoint, path_and_query: &path_and_query, headers: &upstream_headers, body: &body };
        let response = match send_attempt(gateway, &live, &account, &call).await {
            Ok(r) => r,
            Err(AttemptError::Upstream(e)) => {
                account.record_network_failure();
                observe(gateway, &live, claim, &Observation::Failed);
                tracing::warn!(attempt, account = %account.name(), "upstream call failed: {e}");
                last_failure = Some(Failure::Gateway(with_account(upstream_failure(&e), &account)));
                continue;
            }
            Err(AttemptError::OAuth(e)) => {
                match &e {
                    OAuthError::NeedsLogin { .. } | OAuthError::InvalidGrant { .. } => {
                        account.mark_error(format!("OAuth login needed: {e}"));
                    }
                    _ => observe(gateway, &live, claim, &Observation::Failed),
                }
                tracing::warn!(attempt, account = %account.name(), "no OAuth access token: {e}");
                last_failure = Some(Failure::Gateway(with_account(ApiError::unavailable(e.to_string()), &account)));
                continue;
            }
            Err(AttemptError::BadBody(message)) => return Err(ApiError::bad_request(message)),
        };
        let status = response.status();
        let now = gateway.now_ms();
        account.record_response(status.as_u16(), parse_windows(response.headers(), now));
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        // 400/401/403: whether the account or the request is at fault is in the error body (outcome.rs).
        let (error_head, response) = if outcome::needs_body(status) {
            let (head, response) = outcome::read_error_head(response, MAX_ERROR_BODY).await;
            (Some(head), response)
        } else {
            (None, response)
        };
        match classify(status, response.headers(), error_head.as_deref(), now, max_cooldown_ms) {
            Verdict::Success if is_event_stream(response.headers()) && !is_encoded(response.headers()) => {
                let headers = upstream::response_headers_for_client(response.headers());
                match first_event(response, event_limit).await {
                    Ok(opened) => {
                        if let Some(observation) = opened.error_observation() {
                            observe(gateway, &live, claim, &observation);
                            tracing::warn!(attempt, account = %account.name(), "stream opened with an error event");
                            let answer = ErrorAnswer::new(status, headers, opened.head_bytes());
                            last_failure = Some(Failure::Upstream { answer, account: account.name().into() });
                            continue;
                        }
                        observe(gateway, &live, claim, &Observation::Healthy { latency_ms });
                        let body = Body::from_stream(opened.into_stream());
                        return Ok(build(status, headers, body, account.name()));
                    }
                    Err(e) => {
                        account.record_network_failure();
                        observe(gateway, &live, claim, &Observation::Failed);
                        tracing::warn!(attempt, account = %account.name(), "stream failed before its first event: {e}");
                        last_failure = Some(Failure::Gateway(with_account(
                            ApiError::bad_gateway(format!("the upstream stream failed before its first event: {e}")),
                            &account,
                        )));
                        continue;
                    }
                }
            }
            Verdict::Success | Verdict::ClientError => {
                if is_event_stream(response.headers()) {
                    // Asked for identity, the upstream compressed the stream anyway: it goes out as opaque bytes,
                    // without the first-event check and without an error event at a break.
                    tracing::debug!(account = %account.name(), "compressed event stream passed through unchecked");
                }
                observe(gateway, &live, claim, &Observation::Healthy { latency_ms });
                // Forward chunks as they arrive: the upstream body itself becomes the client's body (no stream
                // adapter, its size hint kept). Dropping it (client gone) drops the upstream response, which
                // closes its connection and so cancels the upstream call.
                let (mut parts, body) = http::Response::from(response).into_parts();
                strip_hop_by_hop(&mut parts.headers);
                return Ok(build(status, parts.headers, Body::new(body), account.name()));
            }
            Verdict::CredentialRejected => {
                let answer = ErrorAnswer::read(response, MAX_ERROR_BODY).await;
                let message =
                    upstream::error_message(&answer.body).unwrap_or_else(|| format!("the upstream answered {status}"));
                account.mark_error(format!("upstream rejected the credential ({}): {message}", status.as_u16()));
                tracing::warn!(attempt, account = %account.name(), "{} credential rejected; trying another account", status.as_u16());
                last_failure = Some(Failure::Upstream { answer, account: account.name().into() });
            }
            Verdict::RetryElsewhere { observation, reason } => {
                // Judged from the status and headers alone, so recorded before the body is read.
                observe(gateway, &live, claim, &observation);
                let answer = ErrorAnswer::read(response, MAX_ERROR_BODY).await;
                tracing::warn!(attempt, account = %account.name(), "{reason}; trying another account");
                last_failure = Some(Failure::Upstream { answer, account: account.name().into() });
            }
        }
    }
    Ok(last_failure.map_or_else(
        || ApiError::unavailable("no attempt was made (routing.max_attempts)").into_response(),
        Failure::into_response,
    ))
}

/// One upstream call's inputs.
struct Call<'a> {
    endpoint: Endpoint,
    path_and_query: &'a str,
    headers: &'a HeaderMap,
    body: &'a Bytes,
}

enum AttemptError {
    Upstream(UpstreamError),
    OAuth(OAuthError),
    BadBody(String),
}

/// Sends one attempt with the account's credential. OAuth accounts get a valid access token (refreshed if due),
/// the request enhancement (bearer, oauth beta, identity system prompt), and one refresh-and-retry when the
/// upstream rejects the token with 401.
async fn send_attempt(
    gateway: &Gateway,
    live: &Live,
    account: &LiveAccount,
    call: &Call<'_>,
) -> Result<reqwest::Response, AttemptError> {
    let method = call.endpoint.method();
    if account.kind() == AccountKind::ApiKey {
        return live
            .upstream
            .send(
                account,
                account.credential.as_ref(),
                method,
                call.path_and_query,
                call.headers.clone(),
                call.body.clone(),
            )
            .await
            .map_err(AttemptError::Upstream);
    }
    let settings = gateway.oauth_settings(&live.config, Some(&account.config));
    let token = gateway.oauth().access_token(account.id(), &settings).await.map_err(AttemptError::OAuth)?;
    let send = |token: Secret| async move {
        let mut headers = call.headers.clone();
        let body = oauth::enhance_request(call.body, &mut headers, &token, &live.config.oauth.system_prompt)
            .map_err(|e| AttemptError::BadBody(e.to_string()))?
            .unwrap_or_else(|| call.body.clone());
        live.upstream
            .send(account, None, call.endpoint.method(), call.path_and_query, headers, body)
            .await
            .map_err(AttemptError::Upstream)
    };
    let response = send(token.clone()).await?;
    if response.status() != StatusCode::UNAUTHORIZED {
        return Ok(response);
    }
    // Most likely "OAuth token has expired": refresh (single-flight; skipped if another request already did)
    // and retry once. A second 401 is then a real credential failure.
    drop(response);
    tracing::info!(account = %account.name(), "upstream refused the OAuth token; refreshing and retrying once");
    let fresh =
        gateway.oauth().refresh_after_rejection(account.id(), &settings, &token).await.map_err(AttemptError::OAuth)?;
    send(fresh).await
}

fn log_pick(pick: &Pick, attempt: u32) {
    if let Some(from) = &pick.moved_from {
        tracing::info!(attempt, from = %from, to = %pick.claim.account().name(), "session moved to another account");
    } else if attempt > 1 {
        tracing::info!(attempt, account = %pick.claim.account().name(), "failing over");
    }
}

fn observe(gateway: &Gateway, live: &Live, claim: Claim, observation: &Observation) {
    let account = claim.account().clone();
    if let Some((until, reason)) = claim.observe(observation, gateway.now_ms(), &live.policy) {
        tracing::warn!(
            account = %account.name(),
            reason = reason.as_str(),
            until = %crate::clock::rfc3339(until),
            "account benched"
        );
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

fn prefix(s: Option<&str>) -> Option<&[u8]> {
    s.map(|s| &s.as_bytes()[..s.len().min(SESSION_PREFIX_BYTES)])
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}

fn build(status: StatusCode, headers: HeaderMap, body: Body, account: &str) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response.extensions_mut().insert(AccountUsed(account.to_string()));
    response
}

fn with_account(error: ApiError, account: &LiveAccount) -> ApiError {
    ApiError { message: format!("{} (account `{}`)", error.message, account.name()), ..error }
}

fn upstream_failure(e: &UpstreamError) -> ApiError {
    if e.is_timeout() { ApiError::gateway_timeout(e.to_string()) } else { ApiError::bad_gateway(e.to_string()) }
}
