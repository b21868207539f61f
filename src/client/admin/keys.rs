//! `/admin/api/v1/client-keys…`: list, create (the key is in the answer once), revoke.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;

use super::error::{AdminError, Body, created, no_content, ok};
use crate::gateway::Gateway;
use crate::manage::{NewClientKey, Ops};

type Result<T = Response> = std::result::Result<T, AdminError>;

pub(super) async fn list(State(gateway): State<Arc<Gateway>>) -> Result {
    Ok(ok(serde_json::json!({ "client_keys": Ops::live(gateway).client_keys().await? })))
}

pub(super) async fn create(State(gateway): State<Arc<Gateway>>, Body(new): Body<NewClientKey>) -> Result {
    Ok(created(Ops::live(gateway).create_client_key(new).await?))
}

pub(super) async fn revoke(State(gateway): State<Arc<Gateway>>, Path(id): Path<String>) -> Result {
    Ops::live(gateway).revoke_client_key(&id).await?;
    Ok(no_content())
}
