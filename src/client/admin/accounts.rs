//! `/admin/api/v1/accounts…`: list, get, add, change, enable/disable, remove, log in, probe.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{AdminError, Body, created, from_value, no_content, ok};
use crate::config::AccountClients;
use crate::gateway::Gateway;
use crate::manage::{AccountPatch, LoginRedirect, NewApiKeyAccount, NewOAuthAccount, Ops};
use crate::secrets::Secret;

type Result<T = Response> = std::result::Result<T, AdminError>;

fn ops(gateway: &Arc<Gateway>) -> Ops {
    Ops::live(gateway.clone())
}

/// `POST /accounts {"kind":"api_key",…}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewApiKeyBody {
    name: String,
    key: String,
    #[serde(default)]
    weight: Option<u32>,
    #[serde(default)]
    priority: Option<u32>,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    base_url: Option<String>,
}

/// `POST /accounts {"kind":"oauth",…}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOAuthBody {
    name: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    weight: Option<u32>,
    #[serde(default)]
    priority: Option<u32>,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    clients: Option<AccountClients>,
}

pub(super) async fn list(State(gateway): State<Arc<Gateway>>) -> Result {
    Ok(ok(serde_json::json!({ "accounts": ops(&gateway).accounts().await? })))
}

/// `POST /accounts`: an API-key account or an OAuth account, by `kind`. The kind is read first and the rest as
/// that kind's body (not as a tagged enum), so a bad field is named in the error.
pub(super) async fn add(State(gateway): State<Arc<Gateway>>, Body(mut body): Body<Map<String, Value>>) -> Result {
    let account = match body.remove("kind").as_ref().and_then(Value::as_str) {
        Some("api_key") => {
            let new: NewApiKeyBody = from_value(Value::Object(body))?;
            let new = NewApiKeyAccount {
                key: Secret::new(new.key),
                name: new.name,
                weight: new.weight.unwrap_or(1),
                priority: new.priority.unwrap_or(0),
                models: new.models,
                base_url: new.base_url,
            };
            ops(&gateway).add_api_key(new).await?
        }
        Some("oauth") => {
            let new: NewOAuthBody = from_value(Value::Object(body))?;
            let new = NewOAuthAccount {
                name: new.name,
                client_id: new.client_id,
                client_secret: new.client_secret.map(Secret::new),
                weight: new.weight.unwrap_or(1),
                priority: new.priority.unwrap_or(0),
                models: new.models,
                clients: new.clients,
            };
            ops(&gateway).add_oauth(new).await?
        }
        _ => return Err(AdminError::invalid("kind", "`kind` must be `api_key` or `oauth`")),
    };
    Ok(created(account))
}

pub(super) async fn get(State(gateway): State<Arc<Gateway>>, Path(id): Path<String>) -> Result {
    Ok(ok(ops(&gateway).account(&id).await?))
}

pub(super) async fn update(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    Body(patch): Body<AccountPatch>,
) -> Result {
    Ok(ok(ops(&gateway).update_account(&id, patch).await?))
}

pub(super) async fn remove(State(gateway): State<Arc<Gateway>>, Path(id): Path<String>) -> Result {
    ops(&gateway).remove_account(&id).await?;
    Ok(no_content())
}

pub(super) async fn enable(State(gateway): State<Arc<Gateway>>, Path(id): Path<String>) -> Result {
    Ok(ok(ops(&gateway).set_account_enabled(&id, true).await?))
}

pub(super) async fn disable(State(gateway): State<Arc<Gateway>>, Path(id): Path<String>) -> Result {
    Ok(ok(ops(&gateway).set_account_enabled(&id, false).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct StartLogin {
    #[serde(default)]
    redirect: Option<LoginRedirect>,
}

pub(super) async fn login(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    Body(body): Body<StartLogin>,
) -> Result {
    Ok(ok(ops(&gateway).start_login(&id, body.redirect).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CompleteLogin {
    code: String,
}

pub(super) async fn complete_login(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    Body(body): Body<CompleteLogin>,
) -> Result {
    Ok(ok(ops(&gateway).complete_login(Some(&id), &body.code).await?))
}

pub(super) async fn probe(State(gateway): State<Arc<Gateway>>, Path(id): Path<String>) -> Result {
    Ok(ok(ops(&gateway).probe_account(&id).await?))
}
