//! `/admin/api/v1/accounts…`: list, get, add, change, enable/disable, remove, log in, probe.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::error::{AdminError, Body, created, no_content, ok};
use crate::config::AccountClients;
use crate::gateway::Gateway;
use crate::manage::{AccountPatch, LoginRedirect, NewApiKeyAccount, NewOAuthAccount, Ops};
use crate::secrets::Secret;

type Result<T = Response> = std::result::Result<T, AdminError>;

fn ops(gateway: &Arc<Gateway>) -> Ops {
    Ops::live(gateway.clone())
}

/// `POST /accounts` body: an API-key account or an OAuth account, by `kind`.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum NewAccount {
    ApiKey {
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
    },
    Oauth {
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
    },
}

pub(super) async fn list(State(gateway): State<Arc<Gateway>>) -> Result {
    Ok(ok(serde_json::json!({ "accounts": ops(&gateway).accounts().await? })))
}

pub(super) async fn add(State(gateway): State<Arc<Gateway>>, Body(body): Body<NewAccount>) -> Result {
    let account = match body {
        NewAccount::ApiKey { name, key, weight, priority, models, base_url } => {
            let new = NewApiKeyAccount {
                key: Secret::new(key),
                name,
                weight: weight.unwrap_or(1),
                priority: priority.unwrap_or(0),
                models,
                base_url,
            };
            ops(&gateway).add_api_key(new).await?
        }
        NewAccount::Oauth { name, client_id, client_secret, weight, priority, models, clients } => {
            let new = NewOAuthAccount {
                name,
                client_id,
                client_secret: client_secret.map(Secret::new),
                weight: weight.unwrap_or(1),
                priority: priority.unwrap_or(0),
                models,
                clients,
            };
            ops(&gateway).add_oauth(new).await?
        }
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
