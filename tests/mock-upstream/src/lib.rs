//! A mock of Anthropic's Messages API, faithful to `shared/docs/protocol.md`, for the gateway's
//! tests: in-process via [`MockUpstream`], or as the `mock-upstream` binary with a control API
//! under `/_mock/`.
//!
//! Default behaviour (no [`Scripted`] queued): every response carries `request-id: req_mock_<n>`
//! and `anthropic-organization-id`; the API key's name selects account-level errors
//! (`invalid`, `ratelimited`, `overloaded`, `oauthlimited`, `broken`); the request headers
//! `x-mock-status`, `x-mock-event-interval-ms`, `x-mock-text`, `x-mock-tools: none` and
//! `x-mock-cache-tokens: CREATION,READ` (prompt-cache tokens in `usage`) steer one
//! request; `/v1/messages` answers with text or a `tool_use` of the first tool, streamed as
//! SSE when `stream: true`. Answers are gzip-compressed when the request's `accept-encoding` allows it
//! (streams flushed event by event); `x-mock-encoding: gzip|identity` overrides that.
//!
//! OAuth (protocol.md §1): `GET /oauth/authorize` auto-approves and redirects with `code` and `state`;
//! `POST /v1/oauth/token` (JSON only) exchanges PKCE-checked codes for the client they were issued to (with its
//! secret, for clients configured as confidential) and rotates single-use refresh tokens;
//! the access tokens it issues (`sk-ant-oat01-mock-<n>`) work on `/v1/messages` only while unexpired, with the
//! oauth beta and, for non-Haiku models, the Claude Code identity system prompt. Control: `POST
//! /_mock/oauth/authorize` (issue a code), `POST /_mock/oauth/config`, `GET /_mock/oauth/stats`,
//! `POST /_mock/oauth/expire`, mirrored by [`MockUpstream::issue_code`], [`MockUpstream::approve`],
//! [`MockUpstream::oauth_config`], [`MockUpstream::oauth_stats`], [`MockUpstream::oauth_expire_access_tokens`].
//!
//! Subscription plans (protocol.md §3, §10): answers to OAuth tokens carry `anthropic-ratelimit-unified-*` headers
//! from the token's plan; `POST /_mock/plan` ([`MockUpstream::plan`], [`PlanConfig`]) sets where a plan stands —
//! within, warning, exhausted (429 `rejected`, overage off), overage (200 served beyond the plan) or third-party
//! (the 400 "Third-party apps now draw from your extra usage…").

mod api;
mod compress;
mod control;
mod errors;
mod messages;
mod models;
mod oauth;
mod oauth_control;
mod plan;
mod ratelimit;
mod reply;
mod server;
mod sse;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use compress::{gunzip, gzip};
pub use errors::{ORGANIZATION_ID, error_body, error_type_for_status};
pub use messages::DEFAULT_TEXT;
pub use models::MODELS;
pub use oauth::{
    AuthorizeRequest, EXPIRED_MESSAGE, MOCK_ACCESS_PREFIX, MOCK_REFRESH_PREFIX, OAuthMockConfig, OAuthStats,
};
pub use plan::{PlanConfig, PlanMode, THIRD_PARTY_MESSAGE};
pub use sse::message_stream_events;
pub use state::{RecordedRequest, Scripted, StreamEnd};

/// A running mock server. Dropping it stops the server.
#[derive(Debug)]
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<state::Shared>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl MockUpstream {
    /// Starts a server on `127.0.0.1` with an OS-chosen port.
    pub async fn start() -> std::io::Result<MockUpstream> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a server on `addr` (port 0 picks a free port). Must run inside a Tokio runtime.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<MockUpstream> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(state::Shared::default());
        let router = Router::new()
            .merge(control::router())
            .merge(oauth_control::router())
            .fallback(api::handle)
            .with_state(shared.clone());
        let (shutdown, rx) = watch::channel(false);
        let task = tokio::spawn(server::serve(listener, router, rx));
        Ok(MockUpstream { addr, shared, shutdown, task: Some(task) })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every recorded request, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.clear_requests();
    }

    /// Queues a script (FIFO): the next `/v1/messages*` request gets it instead of the default.
    pub fn enqueue(&self, r: Scripted) {
        self.shared.enqueue(r);
    }

    /// `{base_url}/v1/oauth/token`: the mock token endpoint (JSON bodies only).
    pub fn oauth_token_url(&self) -> String {
        format!("{}/v1/oauth/token", self.base_url())
    }

    /// `{base_url}/oauth/authorize`: a `GET` with the usual parameters auto-approves and redirects (302) to
    /// `redirect_uri?code=…&state=…`; the body is `code#state`, as the manual-paste page shows it.
    pub fn oauth_authorize_url(&self) -> String {
        format!("{}/oauth/authorize", self.base_url())
    }

    /// Counters of the token endpoint.
    pub fn oauth_stats(&self) -> OAuthStats {
        self.shared.oauth().stats()
    }

    /// Changes the mock OAuth server's settings (only the fields that are `Some`); a
    /// `fail_next_with_status` arms the failure for the next token request(s).
    pub fn oauth_config(&self, config: OAuthMockConfig) {
        self.shared.oauth().configure(config);
    }

    /// Issues an authorization code for this client, PKCE challenge, redirect URI and state, as the
    /// authorize page would after the user approves.
    pub fn issue_code(&self, client_id: &str, code_challenge: &str, redirect_uri: &str, state: &str) -> String {
        self.shared.oauth().issue_code(AuthorizeRequest {
            client_id: client_id.into(),
            code_challenge: code_challenge.into(),
            redirect_uri: redirect_uri.into(),
            state: state.into(),
            scope: String::new(),
        })
    }

    /// Approves an authorize URL (as built by the gateway's `oauth-start`) without HTTP: issues a code for
    /// its `client_id`, `code_challenge`, `redirect_uri`, `state` and `scope`, and returns `code#state`, the
    /// text the manual-paste page shows. Errors name a missing parameter.
    pub fn approve(&self, authorize_url: &str) -> Result<String, String> {
        let uri: axum::http::Uri = authorize_url.parse().map_err(|e| format!("bad authorize URL: {e}"))?;
        let q = axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(&uri)
            .map_err(|e| format!("bad query: {e}"))?
            .0;
        let get = |k: &str| q.get(k).cloned().ok_or_else(|| format!("the authorize URL has no {k}"));
        let state = get("state")?;
        let code = self.shared.oauth().issue_code(AuthorizeRequest {
            client_id: get("client_id")?,
            code_challenge: get("code_challenge")?,
            redirect_uri: get("redirect_uri")?,
            state: state.clone(),
            scope: q.get("scope").cloned().unwrap_or_default(),
        });
        Ok(format!("{code}#{state}"))
    }

    /// Sets the subscription plan of an OAuth token (or, with no `token`, of every OAuth token without one of its
    /// own): the unified rate-limit headers its answers carry, and the refusals of an exhausted plan.
    pub fn plan(&self, plan: PlanConfig) {
        self.shared.plans().configure(plan);
    }

    /// Expires every access token issued so far (`/v1/messages` then answers 401 "OAuth token has expired…").
    pub fn oauth_expire_access_tokens(&self) {
        self.shared.oauth().expire_access_tokens();
    }

    /// Stops the server and waits until its listener and connections are closed.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
