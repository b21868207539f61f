//! `/admin/api/v1/config`: read, validate a change, apply a change; and `/status`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use super::error::{AdminError, Body, ok};
use crate::gateway::Gateway;
use crate::manage::Ops;

type Result<T = Response> = std::result::Result<T, AdminError>;

pub(super) async fn status(State(gateway): State<Arc<Gateway>>) -> Result {
    Ok(ok(gateway.status().await))
}

pub(super) async fn get(State(gateway): State<Arc<Gateway>>) -> Result {
    Ok(ok(Ops::live(gateway).config_document().await?))
}

pub(super) async fn validate(State(gateway): State<Arc<Gateway>>, Body(patch): Body<serde_json::Value>) -> Result {
    Ok(ok(Ops::live(gateway).validate_config(&patch).await?))
}

pub(super) async fn patch(State(gateway): State<Arc<Gateway>>, Body(patch): Body<serde_json::Value>) -> Result {
    Ok(ok(Ops::live(gateway).patch_config(patch).await?))
}
