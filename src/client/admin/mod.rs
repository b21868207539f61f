//! The admin API (`/admin/api/…`): the management surface the web UI, the desktop app, the CLI and scripts use.
//! Version 1 lives under `/admin/api/v1/` (`docs/admin-api.yaml` describes it); each file here holds one group
//! of its routes, and every handler is one call into the library's operations (`manage`).
//!
//! Authenticated by the admin token the server writes to `runtime.json` (0600) beside the config when it starts,
//! so only someone who can read the config directory can use it.

mod events;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use subtle::ConstantTimeEq;

use super::ApiError;
use crate::gateway::Gateway;
use crate::secrets::keys::hash_key;

pub(super) fn router(gateway: Arc<Gateway>) -> Router<Arc<Gateway>> {
    Router::new()
        .nest("/v1", v1())
        .route("/status", get(status))
        .route("/oauth/start", axum::routing::post(oauth_start))
        .route("/oauth/complete", axum::routing::post(oauth_complete))
        .route_layer(axum::middleware::from_fn_with_state(gateway, require_admin_token))
}

/// The routes of version 1 (`/admin/api/v1/…`), behind the same authentication as the rest.
fn v1() -> Router<Arc<Gateway>> {
    Router::new().route("/status", get(status)).route("/events", get(events::stream))
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
