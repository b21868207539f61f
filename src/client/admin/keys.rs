//! `/admin/api/v1/client-keys…`: list, create (the key is in the answer once), revoke.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;

use serde_json::{Map, Value};

use super::error::{AdminError, Body, created, from_value, no_content, ok};
use crate::gateway::Gateway;
use crate::manage::{ClientKeyLimits, NewClientKey, Ops};

type Result<T = Response> = std::result::Result<T, AdminError>;

pub(super) async fn list(State(gateway): State<Arc<Gateway>>) -> Result {
    Ok(ok(serde_json::json!({ "client_keys": Ops::live(gateway).client_keys().await? })))
}

/// `POST /client-keys {"name":…, <limits>}`: the name is read first and the rest as the limits (not through a
/// flattened struct), so a bad limit is named in the error.
pub(super) async fn create(State(gateway): State<Arc<Gateway>>, Body(mut body): Body<Map<String, Value>>) -> Result {
    let name = match body.remove("name") {
        Some(Value::String(name)) => name,
        Some(_) => return Err(AdminError::invalid("name", "`name` must be a string")),
        None => return Err(AdminError::invalid("name", "`name` is required")),
    };
    let limits: ClientKeyLimits = from_value(Value::Object(body))?;
    Ok(created(Ops::live(gateway).create_client_key(NewClientKey { name, limits }).await?))
}

pub(super) async fn revoke(State(gateway): State<Arc<Gateway>>, Path(id): Path<String>) -> Result {
    Ops::live(gateway).revoke_client_key(&id).await?;
    Ok(no_content())
}
