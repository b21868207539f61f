//! `/admin/api/v1/usage`, `/usage/sessions` and `/requests`: reports and the request log, from the usage store.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use super::error::{AdminError, ok};
use crate::gateway::Gateway;
use crate::manage::{Ops, RequestParams, SessionParams, UsageParams};

type Result<T = Response> = std::result::Result<T, AdminError>;

/// Query strings whose errors name the parameter at fault, in the v1 error shape.
pub(super) struct Params<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S> for Params<T> {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut http::request::Parts, _: &S) -> std::result::Result<Self, AdminError> {
        let query = parts.uri.query().unwrap_or("");
        let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer).map(Params).map_err(|e| {
            let field = e.path().to_string();
            let field = if field == "." { "query".to_string() } else { field };
            AdminError::invalid(field, format!("invalid query: {}", e.into_inner()))
        })
    }
}

pub(super) async fn usage(State(gateway): State<Arc<Gateway>>, Params(params): Params<UsageParams>) -> Result {
    Ok(ok(Ops::live(gateway).usage(params).await?))
}

pub(super) async fn sessions(State(gateway): State<Arc<Gateway>>, Params(params): Params<SessionParams>) -> Result {
    Ok(ok(Ops::live(gateway).usage_sessions(params).await?))
}

pub(super) async fn requests(State(gateway): State<Arc<Gateway>>, Params(params): Params<RequestParams>) -> Result {
    Ok(ok(Ops::live(gateway).requests(params).await?))
}
