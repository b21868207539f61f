//! The admin API (`/admin/api/…`): the management surface the web UI, the desktop app, the CLI and scripts use.
//! Version 1 lives under `/admin/api/v1/` (`docs/admin-api.yaml` describes it); each file here holds one group
//! of its routes, and every handler is one call into the library's operations (`manage`).
//!
//! Authenticated by the admin token the server writes to `runtime.json` (0600) beside the config when it starts,
//! so only someone who can read the config directory can use it; version 1 also accepts the web UI's session
//! cookie (`session.rs`), under the CSRF rules for changes.

mod error;
mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::HeaderMap;
use subtle::ConstantTimeEq;

use super::ApiError;
use crate::gateway::Gateway;
use crate::secrets::keys::hash_key;
pub(crate) use error::AdminError;

pub(super) fn router(gateway: Arc<Gateway>) -> Router<Arc<Gateway>> {
    // The first routes, used by the CLI: the admin token only, errors in the Anthropic shape.
    let legacy = Router::new()
        .route("/status", get(status))
        .route("/oauth/start", post(oauth_start))
        .route("/oauth/complete", post(oauth_complete))
        .route_layer(from_fn_with_state(gateway.clone(), require_admin_token));
    Router::new().nest("/v1", v1(gateway)).merge(legacy)
}

/// The routes of version 1 (`/admin/api/v1/…`): the admin token or the UI session cookie ([`require_admin`]).
fn v1(gateway: Arc<Gateway>) -> Router<Arc<Gateway>> {
    Router::new()
        .route("/status", get(status))
        .route("/session/code", post(session::mint_code))
        .route_layer(from_fn_with_state(gateway, require_admin))
        // Added after the layer, so outside it: signing in and out (the code, or the cookie, is the credential).
        .merge(session::routes())
}

/// How an admin API v1 request was authenticated: a request extension [`require_admin`] sets for handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AdminAuth {
    /// `Authorization: Bearer <admin token>` (scripts, the CLI, the desktop app).
    Token,
    /// The web UI's session cookie.
    Session,
}

/// `Some(valid)` when the request carries `Authorization: Bearer …`, compared with the admin token in constant
/// time; `None` without one.
fn bearer_auth(gateway: &Gateway, headers: &HeaderMap) -> Option<bool> {
    let token = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)?;
    Some(bool::from(hash_key(token).ct_eq(gateway.admin_token_hash())))
}

fn unauthenticated() -> AdminError {
    AdminError::unauthorized(
        "the admin API needs the admin token (`Authorization: Bearer <token>`; `llm-gateway admin-token` prints \
         it) or a web UI session (`llm-gateway ui` signs a browser in)",
    )
}

fn invalid_token() -> AdminError {
    AdminError::unauthorized(
        "invalid admin token: use the one `llm-gateway admin-token` prints (a new one is made at each gateway \
         start)",
    )
}

/// Admin API v1 authentication: the admin token as a bearer token, or a live UI session cookie. A request
/// authenticated by the cookie that changes anything must pass the CSRF rules (`session::check_csrf`).
async fn require_admin(State(gateway): State<Arc<Gateway>>, mut request: Request, next: Next) -> Response {
    let auth = match bearer_auth(&gateway, request.headers()) {
        Some(true) => AdminAuth::Token,
        Some(false) => return invalid_token().into_response(),
        None if session::live_session(&gateway, request.headers()).is_some() => {
            if let Err(e) = session::check_csrf(&request) {
                return e.into_response();
            }
            AdminAuth::Session
        }
        None if session::session_cookies(request.headers()).next().is_some() => {
            let mut response = AdminError::unauthorized(
                "this web UI session has expired or was signed out: run `llm-gateway ui` to sign in again",
            )
            .into_response();
            response.headers_mut().insert(http::header::SET_COOKIE, session::cleared_cookie());
            return response;
        }
        None => return unauthenticated().into_response(),
    };
    request.extensions_mut().insert(auth);
    next.run(request).await
}

async fn require_admin_token(State(gateway): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    match bearer_auth(&gateway, request.headers()) {
        Some(true) => next.run(request).await,
        _ => ApiError::unauthorized("the admin API needs the admin token from runtime.json beside the config file")
            .into_response(),
    }
}

async fn status(State(gateway): State<Arc<Gateway>>) -> Response {
    axum::Json(gateway.status().await).into_response()
}

#[derive(serde::Deserialize)]
struct StartBody {
    account_id: String,
}

#[derive(serde::Deserialize)]
struct CompleteBody {
    /// `code#state`, the callback URL, or a deep link.
    code: String,
}

async fn oauth_start(State(gateway): State<Arc<Gateway>>, body: axum::Json<StartBody>) -> Response {
    match gateway.start_oauth_login(&body.account_id).await {
        Ok(url) => axum::Json(serde_json::json!({ "url": url })).into_response(),
        Err(e) => ApiError::bad_request(e.to_string()).into_response(),
    }
}

async fn oauth_complete(State(gateway): State<Arc<Gateway>>, body: axum::Json<CompleteBody>) -> Response {
    match gateway.complete_oauth_login(&body.code).await {
        Ok(outcome) => axum::Json(outcome).into_response(),
        Err(e) => ApiError::bad_request(e.to_string()).into_response(),
    }
}
