//! One request's orchestration: inspect the body, choose an account, call the upstream, report the outcome, and
//! hand the upstream's answer back unchanged (status, headers, streamed body).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::accounts::LiveAccount;
use crate::client::{AccountUsed, ApiError};
use crate::config::AccountKind;
use crate::gateway::Gateway;
use crate::transform::anthropic::inspect_messages_request;
use crate::upstream::{self, UpstreamError, request_headers_for_upstream, response_headers_for_client};

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

/// Error bodies read to learn why a credential was rejected are small; never read more than this.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Forwards one client request. `query` is passed through as is (e.g. `beta=true`).
pub async fn forward(
    gateway: &Gateway,
    endpoint: Endpoint,
    query: Option<&str>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let model = match endpoint {
        Endpoint::Messages | Endpoint::CountTokens => {
            Some(inspect_messages_request(&body).map_err(|e| ApiError::bad_request(e.to_string()))?.model)
        }
        Endpoint::Models => None,
    };
    let live = gateway.live();
    let account = gateway
        .selector()
        .select(live.config.routing.strategy, &live.accounts, model.as_deref())
        .map_err(|e| ApiError::unavailable(e.reason))?;

    let path_and_query = match query {
        Some(q) if !q.is_empty() => format!("{}?{q}", endpoint.path()),
        _ => endpoint.path().to_string(),
    };
    account.record_attempt();
    let sent = live
        .upstream
        .send(&account, endpoint.method(), &path_and_query, request_headers_for_upstream(&headers), body)
        .await;
    let upstream_response = match sent {
        Ok(r) => r,
        Err(e) => {
            account.record_network_failure();
            tracing::warn!(account = %account.name(), "upstream call failed: {e}");
            return Err(with_account(upstream_failure(&e), &account));
        }
    };
    let status = upstream_response.status();
    account.record_status(status.as_u16());
    let response_headers = response_headers_for_client(upstream_response.headers());

    if status == http::StatusCode::UNAUTHORIZED && account.kind() == AccountKind::ApiKey {
        // The key was rejected: remember why (the body is a small JSON error), then return it unchanged.
        let body = read_capped(upstream_response, MAX_ERROR_BODY).await;
        let message = upstream::error_message(&body).unwrap_or_else(|| "the upstream answered 401".into());
        account.mark_error(format!("upstream rejected the API key: {message}"));
        return Ok(build(status, response_headers, Body::from(body), &account));
    }

    // Forward chunks as they arrive. Dropping this body (client gone) drops the upstream response, which closes
    // its connection and so cancels the upstream call.
    let stream = upstream_response.bytes_stream();
    Ok(build(status, response_headers, Body::from_stream(stream), &account))
}

fn build(status: http::StatusCode, headers: HeaderMap, body: Body, account: &Arc<LiveAccount>) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response.extensions_mut().insert(AccountUsed(account.name().to_string()));
    response
}

fn with_account(error: ApiError, account: &LiveAccount) -> ApiError {
    ApiError { message: format!("{} (account `{}`)", error.message, account.name()), ..error }
}

fn upstream_failure(e: &UpstreamError) -> ApiError {
    if e.is_timeout() { ApiError::gateway_timeout(e.to_string()) } else { ApiError::bad_gateway(e.to_string()) }
}

async fn read_capped(response: reqwest::Response, cap: usize) -> Bytes {
    let mut out = BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = cap.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= cap {
            break;
        }
    }
    out.freeze()
}
