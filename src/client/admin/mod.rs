//! The admin API (`/admin/api/…`): the management surface the web UI, the desktop app, the CLI and scripts use.
//! Version 1 lives under `/admin/api/v1/` (`docs/admin-api.yaml` describes it); each file here holds one group
//! of its routes, and every handler is one call into the library's operations (`manage`).
//!
//! Authenticated by the admin token the server writes to `runtime.json` (0600) beside the config when it starts,
//! so only someone who can read the config directory can use it; version 1 also accepts the web UI's session
//! cookie (`session.rs`), under the CSRF rules for changes.

mod accounts;
mod claude_code;
mod config;
mod error;
mod keys;
mod session;
mod usage;

mod events;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};
use http::HeaderMap;
use subtle::ConstantTimeEq;

use crate::gateway::Gateway;
use crate::secrets::keys::hash_key;
pub(crate) use error::AdminError;

pub(super) fn router(gateway: Arc<Gateway>) -> Router<Arc<Gateway>> {
    // A router without a fallback of its own drops its nested routers' fallbacks when it is nested in turn
    // (axum), so this one has one: unknown paths under `/admin/api` get the admin error shape too.
    Router::new().nest("/v1", v1(gateway)).fallback(v1_not_found)
}

type Handler = MethodRouter<Arc<Gateway>>;

/// Every route of version 1: path, methods, handlers. The router is built from this table, and the OpenAPI
/// conformance test (`tests/admin_api.rs`) compares it with `docs/admin-api.yaml` through [`v1_routes`].
fn v1_table() -> Vec<(&'static str, &'static [&'static str], Handler)> {
    vec![
        ("/status", &["GET"], get(config::status)),
        ("/config", &["GET", "PATCH"], get(config::get).patch(config::patch)),
        ("/config/validate", &["POST"], post(config::validate)),
        ("/accounts", &["GET", "POST"], get(accounts::list).post(accounts::add)),
        (
            "/accounts/{id}",
            &["GET", "PATCH", "DELETE"],
            get(accounts::get).patch(accounts::update).delete(accounts::remove),
        ),
        ("/accounts/{id}/enable", &["POST"], post(accounts::enable)),
        ("/accounts/{id}/disable", &["POST"], post(accounts::disable)),
        ("/accounts/{id}/login", &["POST"], post(accounts::login)),
        ("/accounts/{id}/login/complete", &["POST"], post(accounts::complete_login)),
        ("/accounts/{id}/probe", &["POST"], post(accounts::probe)),
        ("/client-keys", &["GET", "POST"], get(keys::list).post(keys::create)),
        ("/client-keys/{id}", &["DELETE"], delete(keys::revoke)),
        ("/claude-code", &["GET"], get(claude_code::status)),
        ("/claude-code/setup", &["POST"], post(claude_code::setup)),
        ("/claude-code/restore", &["POST"], post(claude_code::restore)),
        ("/session/code", &["POST"], post(session::mint_code)),
        ("/events", &["GET"], get(events::stream)),
        ("/usage", &["GET"], get(usage::usage)),
        ("/usage/sessions", &["GET"], get(usage::sessions)),
        ("/requests", &["GET"], get(usage::requests)),
    ]
}

/// The routes of version 1 as `(METHOD, path)` pairs, paths relative to `/admin/api/v1`.
pub fn v1_routes() -> Vec<(&'static str, &'static str)> {
    let table = v1_table().into_iter().flat_map(|(path, methods, _)| methods.iter().map(move |m| (*m, path)));
    table.chain(session::ROUTES).collect()
}

/// The routes of version 1 (`/admin/api/v1/…`): the admin token or the UI session cookie ([`require_admin`]);
/// an unknown path or method gets the v1 error shape.
fn v1(gateway: Arc<Gateway>) -> Router<Arc<Gateway>> {
    let mut router = Router::new();
    for (path, _, handler) in v1_table() {
        router = router.route(path, handler);
    }
    router
        .route_layer(from_fn_with_state(gateway, require_admin))
        // Added after the layer, so outside it: signing in and out (the code, or the cookie, is the credential).
        .merge(session::routes())
        .fallback(v1_not_found)
        .method_not_allowed_fallback(v1_method_not_allowed)
}

async fn v1_not_found(uri: axum::http::Uri) -> Response {
    AdminError::not_found(format!("no admin API route {}", uri.path())).into_response()
}

async fn v1_method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    AdminError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request",
        format!("method {method} is not allowed on {}", uri.path()),
    )
    .into_response()
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
