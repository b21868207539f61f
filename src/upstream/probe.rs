//! `health-check`: a cheap authenticated call per account (`GET /v1/models?limit=1`).

use std::time::{Duration, Instant};

/// A probe that takes longer than this counts as failed: health checks must answer quickly.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use serde::{Deserialize, Serialize};

use super::UpstreamClient;
use crate::accounts::LiveAccount;
use crate::secrets::Secret;

/// One account's probe result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeResult {
    /// Account id.
    pub id: String,
    /// Account name.
    pub name: String,
    /// Whether the account can serve requests.
    pub usable: bool,
    /// HTTP status from the upstream, if it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Round-trip time in milliseconds.
    pub latency_ms: u64,
    /// What was found ("ok", the upstream's error message, or why it was not probed).
    pub detail: String,
}

/// Probes one account with `credential` (its API key, or an OAuth access token).
pub async fn probe(client: &UpstreamClient, account: &LiveAccount, credential: Option<&Secret>) -> ProbeResult {
    let mut result = ProbeResult {
        id: account.id().into(),
        name: account.name().into(),
        usable: false,
        status: None,
        latency_ms: 0,
        detail: String::new(),
    };
    if !account.config.enabled {
        result.detail = "disabled".into();
        return result;
    }
    let Some(credential) = credential else {
        result.detail = "no credential (API key missing from the secret store, or OAuth account not logged in)".into();
        return result;
    };
    let mut headers = HeaderMap::new();
    headers.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
    if account.kind() == crate::config::AccountKind::Oauth {
        headers.insert("anthropic-beta", HeaderValue::from_static(super::oauth::OAUTH_BETA));
    }
    let started = Instant::now();
    let call = client.send(account, Some(credential), Method::GET, "/v1/models?limit=1", headers, Bytes::new());
    let outcome = match tokio::time::timeout(PROBE_TIMEOUT, call).await {
        Ok(outcome) => outcome,
        Err(_) => {
            result.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            result.detail = format!("no answer within {} s", PROBE_TIMEOUT.as_secs());
            return result;
        }
    };
    result.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok(response) => {
            let status = response.status();
            result.status = Some(status.as_u16());
            let body = response.bytes().await.unwrap_or_default();
            if status.is_success() {
                result.usable = true;
                result.detail = "ok".into();
            } else {
                result.detail = super::error_message(&body).unwrap_or_else(|| format!("upstream answered {status}"));
            }
        }
        Err(e) => result.detail = e.to_string(),
    }
    result
}
