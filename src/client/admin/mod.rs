//! The admin API (`/admin/api/…`): the management surface the web UI, the desktop app, the CLI and scripts use.
//! Version 1 lives under `/admin/api/v1/` (`docs/admin-api.yaml` describes it); each file here holds one group
//! of its routes, and every handler is one call into the library's operations (`manage`).
//!
//! Authenticated by the admin token the server writes to `runtime.json` (0600) beside the config when it starts,
//! so only someone who can read the config directory can use it.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use subtle::ConstantTimeEq;

mod accounts;
mod claude_code;
mod config;
mod error;
mod keys;
mod usage;

use axum::routing::{MethodRouter, delete, post};

use crate::gateway::Gateway;
use crate::secrets::keys::hash_key;
use error::AdminError;

pub(super) fn router(gateway: Arc<Gateway>) -> Router<Arc<Gateway>> {
    Router::new().nest("/v1", v1()).route_layer(axum::middleware::from_fn_with_state(gateway, require_admin_token))
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
        ("/usage", &["GET"], get(usage::usage)),
        ("/usage/sessions", &["GET"], get(usage::sessions)),
        ("/requests", &["GET"], get(usage::requests)),
    ]
}

/// The routes of version 1 as `(METHOD, path)` pairs, paths relative to `/admin/api/v1`.
pub fn v1_routes() -> Vec<(&'static str, &'static str)> {
    v1_table().into_iter().flat_map(|(path, methods, _)| methods.iter().map(move |m| (*m, path))).collect()
}

/// The routes of version 1 (`/admin/api/v1/…`), behind the same authentication as the rest; an unknown path or
/// method gets the v1 error shape.
fn v1() -> Router<Arc<Gateway>> {
    let mut router = Router::new();
    for (path, _, handler) in v1_table() {
        router = router.route(path, handler);
    }
    router.fallback(v1_not_found).method_not_allowed_fallback(v1_method_not_allowed)
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

async fn require_admin_token(State(gateway): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match token {
        Some(t) if bool::from(hash_key(t).ct_eq(gateway.admin_token_hash())) => next.run(request).await,
        _ => AdminError::unauthorized(
            "the admin API needs the admin token (`llm-gateway admin-token`, or runtime.json beside the config file)",
        )
        .into_response(),
    }
}
