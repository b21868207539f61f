//! One attempt: send the request with an account's credential, then judge the answer — deliver it to the client,
//! retry elsewhere (saying why), or stop with an error — recording what it says about the account on the way.

use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;

use super::Endpoint;
use super::error_body::{ErrorAnswer, MAX_ERROR_BODY};
use super::spillover::extra_usage_avoided_error;
use super::stream::{first_event, is_encoded};
use crate::accounts::windows::parse_windows;
use crate::accounts::{Claim, LiveAccount, Observation};
use crate::common::{AccountUsed, ApiError};
use crate::config::{AccountKind, ExtraUsage};
use crate::gateway::{Gateway, Live};
use crate::secrets::Secret;
use crate::upstream::extra_usage::{PlanVerdict, extra_usage_verdict};
use crate::upstream::oauth::{self, OAuthError};
use crate::upstream::outcome::{self, Verdict, classify};
use crate::upstream::{self, UpstreamError, strip_hop_by_hop};
use crate::usage::FailoverReason;

/// One upstream call's inputs.
pub(super) struct Call<'a> {
    pub(super) endpoint: Endpoint,
    pub(super) path_and_query: &'a str,
    pub(super) headers: &'a HeaderMap,
    pub(super) body: &'a Bytes,
    /// The request is Claude Code's: it carries Claude Code's identity already, so none is added.
    pub(super) claude_code: bool,
}

/// Why an attempt got no answer.
pub(super) enum AttemptError {
    /// The upstream could not be reached, or did not answer in time.
    Upstream(UpstreamError),
    /// An OAuth account had no usable access token.
    OAuth(OAuthError),
    /// The body could not be prepared for an OAuth account (the client's request is at fault).
    BadBody(String),
}

/// A failed attempt, returned to the client when no account is left to try.
pub(super) enum Failure {
    /// The gateway's own error (upstream unreachable, no token).
    Gateway(ApiError),
    /// The upstream's error answer, as it was.
    Upstream { answer: ErrorAnswer, account: String },
}

impl ErrorAnswer {
    /// The answer as a response from `account`.
    pub(super) fn into_response(self, account: &str) -> Response {
        build(self.status, self.headers, Body::from(self.body), account)
    }
}

/// What an attempt's answer means for the request.
pub(super) enum Judgement {
    /// The client gets this answer (its body still streaming from the upstream).
    Deliver(Response),
    /// Try the next account: why, the upstream's status if it answered, and the failure kept in case none is left.
    Retry { reason: FailoverReason, status: Option<u16>, failure: Failure },
    /// Give up with this error (the request itself is at fault).
    Stop(ApiError),
}

/// Sends one attempt with the account's credential. OAuth accounts get a valid access token (refreshed if due),
/// the request enhancement (bearer, oauth beta, and the identity system prompt only for a request that is not
/// Claude Code's, which only a `clients: any` account serves), and one refresh-and-retry when the upstream
/// rejects the token with 401.
pub(super) async fn send_attempt(
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
    // Claude Code's own requests carry its identity (and its billing block) already: never a second copy.
    let identity = if call.claude_code { "" } else { live.config.oauth.system_prompt.as_str() };
    let send = |token: Secret| async move {
        let mut headers = call.headers.clone();
        let body = oauth::enhance_request(call.body, &mut headers, &token, identity)
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

/// Judges an attempt on `claim`'s account, started at `started` (the `attempt`-th of the request): records what
/// the answer says about the account (health, rate-limit windows, a rejected credential) and decides what the
/// request does next. A stream is held until its first event, so an error there still fails over.
pub(super) async fn judge(
    gateway: &Gateway,
    live: &Live,
    claim: Claim,
    sent: Result<reqwest::Response, AttemptError>,
    started: Instant,
    attempt: u32,
) -> Judgement {
    let account = claim.account().clone();
    let response = match sent {
        Ok(response) => response,
        Err(AttemptError::Upstream(e)) => {
            account.record_network_failure();
            observe(gateway, live, claim, &Observation::Failed);
            tracing::warn!(attempt, account = %account.name(), "upstream call failed: {e}");
            let reason = if e.is_timeout() { FailoverReason::Timeout } else { FailoverReason::Network };
            let failure = Failure::Gateway(with_account(upstream_failure(&e), &account));
            return Judgement::Retry { reason, status: None, failure };
        }
        Err(AttemptError::OAuth(e)) => {
            match &e {
                OAuthError::NeedsLogin { .. } | OAuthError::InvalidGrant { .. } => {
                    account.mark_error(format!("OAuth login needed: {e}"));
                }
                _ => observe(gateway, live, claim, &Observation::Failed),
            }
            tracing::warn!(attempt, account = %account.name(), "no OAuth access token: {e}");
            let failure = Failure::Gateway(with_account(ApiError::unavailable(e.to_string()), &account));
            return Judgement::Retry { reason: FailoverReason::NoToken, status: None, failure };
        }
        Err(AttemptError::BadBody(message)) => return Judgement::Stop(ApiError::bad_request(message)),
    };
    let status = response.status();
    let now = gateway.now_ms();
    account.record_response(status.as_u16(), parse_windows(response.headers(), now));
    gateway.save_windows(&account, now);
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    // 400/401/403: whether the account or the request is at fault is in the error body (outcome.rs).
    let (error_head, response) = if outcome::needs_body(status) {
        let (head, response) = outcome::read_error_head(response, MAX_ERROR_BODY).await;
        (Some(head), response)
    } else {
        (None, response)
    };
    let max_cooldown_ms = live.config.routing.max_cooldown_secs.saturating_mul(1000);
    let plan = if account.kind() == AccountKind::Oauth && live.config.subscriptions.extra_usage == ExtraUsage::Avoid {
        let known = account.plan_reset_ms(now);
        extra_usage_verdict(status, response.headers(), error_head.as_deref(), known, now, max_cooldown_ms)
    } else {
        PlanVerdict::Within
    };
    // What a delivered answer records on the account: a plan already in extra usage benches it for the next ones.
    let served = match plan {
        PlanVerdict::Exhausted { until_ms, why } => {
            observe(gateway, live, claim, &Observation::PlanExhausted { until_ms });
            tracing::warn!(attempt, account = %account.name(), "{why}; benched to avoid extra usage, trying another account");
            let failure = Failure::Gateway(extra_usage_avoided_error(account.name(), why, until_ms, now));
            return Judgement::Retry { reason: FailoverReason::ExtraUsage, status: Some(status.as_u16()), failure };
        }
        PlanVerdict::OverageInUse { until_ms } => {
            tracing::warn!(account = %account.name(), "answer served beyond the plan (extra usage); benched until the reset");
            Observation::PlanExhausted { until_ms }
        }
        PlanVerdict::Within => Observation::Healthy { latency_ms },
    };
    match classify(status, response.headers(), error_head.as_deref(), now, max_cooldown_ms) {
        Verdict::Success if is_event_stream(response.headers()) && !is_encoded(response.headers()) => {
            let headers = upstream::response_headers_for_client(response.headers());
            match first_event(response, live.config.server.stream_event_limit()).await {
                Ok(opened) => {
                    if let Some(observation) = opened.error_observation() {
                        observe(gateway, live, claim, &observation);
                        tracing::warn!(attempt, account = %account.name(), "stream opened with an error event");
                        let answer = ErrorAnswer::new(status, headers, opened.head_bytes());
                        let failure = Failure::Upstream { answer, account: account.name().into() };
                        return Judgement::Retry {
                            reason: FailoverReason::StreamError,
                            status: Some(status.as_u16()),
                            failure,
                        };
                    }
                    observe(gateway, live, claim, &served);
                    let body = Body::from_stream(opened.into_stream());
                    Judgement::Deliver(build(status, headers, body, account.name()))
                }
                Err(e) => {
                    account.record_network_failure();
                    observe(gateway, live, claim, &Observation::Failed);
                    tracing::warn!(attempt, account = %account.name(), "stream failed before its first event: {e}");
                    let error =
                        ApiError::bad_gateway(format!("the upstream stream failed before its first event: {e}"));
                    let failure = Failure::Gateway(with_account(error, &account));
                    Judgement::Retry { reason: FailoverReason::Network, status: Some(status.as_u16()), failure }
                }
            }
        }
        Verdict::Success | Verdict::ClientError => {
            if is_event_stream(response.headers()) {
                // Asked for identity, the upstream compressed the stream anyway: it goes out as opaque bytes,
                // without the first-event check and without an error event at a break.
                tracing::debug!(account = %account.name(), "compressed event stream passed through unchecked");
            }
            observe(gateway, live, claim, &served);
            // Forward chunks as they arrive: the upstream body itself becomes the client's body (its size hint
            // kept). Dropping it (client gone) drops the upstream response, which closes its connection and so
            // cancels the upstream call.
            let (mut parts, body) = http::Response::from(response).into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Judgement::Deliver(build(status, parts.headers, Body::new(body), account.name()))
        }
        Verdict::CredentialRejected => {
            let answer = ErrorAnswer::read(response, MAX_ERROR_BODY).await;
            let message =
                upstream::error_message(&answer.body).unwrap_or_else(|| format!("the upstream answered {status}"));
            account.mark_error(format!("upstream rejected the credential ({}): {message}", status.as_u16()));
            tracing::warn!(attempt, account = %account.name(), "{} credential rejected; trying another account", status.as_u16());
            let failure = Failure::Upstream { answer, account: account.name().into() };
            Judgement::Retry { reason: FailoverReason::CredentialRejected, status: Some(status.as_u16()), failure }
        }
        Verdict::RetryElsewhere { observation, reason } => {
            // Judged from the status and headers alone, so recorded before the body is read.
            observe(gateway, live, claim, &observation);
            let answer = ErrorAnswer::read(response, MAX_ERROR_BODY).await;
            tracing::warn!(attempt, account = %account.name(), "{reason}; trying another account");
            let failure = Failure::Upstream { answer, account: account.name().into() };
            Judgement::Retry { reason: retry_reason(status), status: Some(status.as_u16()), failure }
        }
    }
}

/// Why an answer judged "retry elsewhere" was left for another account.
fn retry_reason(status: StatusCode) -> FailoverReason {
    match status.as_u16() {
        429 => FailoverReason::RateLimited,
        529 => FailoverReason::Overloaded,
        _ => FailoverReason::ServerError,
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
