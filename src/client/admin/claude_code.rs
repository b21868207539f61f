//! `/admin/api/v1/claude-code[/setup|/restore]`: what Claude Code uses; point it at this gateway; undo that.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::error::{AdminError, ok};
use crate::gateway::Gateway;
use crate::manage::Ops;

type Result<T = Response> = std::result::Result<T, AdminError>;

#[derive(Deserialize)]
pub(super) struct StatusQuery {
    #[serde(default)]
    project: Option<PathBuf>,
}

pub(super) async fn status(State(gateway): State<Arc<Gateway>>, Query(query): Query<StatusQuery>) -> Result {
    Ok(ok(Ops::live(gateway).claude_code_status(query.project).await?))
}

pub(super) async fn setup(State(gateway): State<Arc<Gateway>>) -> Result {
    Ok(ok(Ops::live(gateway).claude_code_setup(None).await?))
}

pub(super) async fn restore(State(gateway): State<Arc<Gateway>>) -> Result {
    Ok(ok(Ops::live(gateway).claude_code_restore().await?))
}
