//! The status report, and what the CLI needs to know about a server running from the same config.

use std::time::Duration;

use super::{Ops, Result};
use crate::config::RuntimeInfo;
use crate::gateway::{ReportSource, StatusReport};

/// How often [`Ops::wait_until_applied`] asks the server.
const SERVER_POLL: Duration = Duration::from_millis(100);

/// Whether a running server has the config file's current contents in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerSync {
    /// No server runs for this config file (or it did not answer, or cannot tell).
    NoServer,
    /// The running server has applied the file as it is now.
    Applied,
    /// The running server has not applied the file as it is now (yet).
    NotApplied {
        /// Why, when the server reported it (e.g. the secret store failed while reloading an account).
        reason: Option<String>,
    },
}

impl Ops {
    /// The status report: live when bound to a gateway; else from a server running from this config (found
    /// through `runtime.json`) when one answers; else from the config alone.
    pub async fn status(&self) -> Result<StatusReport> {
        if let Some(gateway) = self.gateway() {
            return Ok(gateway.status().await);
        }
        if let Some(report) = self.ask_server().await {
            return Ok(report);
        }
        let mut config = self.config().await?;
        crate::config::env_overrides(&mut config);
        let mut accounts = self.accounts().await?;
        let (today, windows) = self.usage_from_database(&config).await;
        for plan in windows {
            if let crate::usage::PlanSubject::Account(id) = &plan.subject
                && let Some(view) = accounts.iter_mut().find(|a| a.id == *id && a.windows.is_none())
            {
                view.windows = serde_json::from_value(plan.state).ok();
            }
        }
        Ok(StatusReport {
            source: ReportSource::Config,
            version: env!("CARGO_PKG_VERSION").into(),
            listen: config.server.listen.clone(),
            url: None,
            usable_accounts: None,
            uptime_secs: None,
            strategy: config.routing.strategy,
            secrets_backend: self.secrets().await.ok().map(|s| crate::secrets::backend_name(s.backend()).into()),
            client_keys: config.client_keys.iter().filter(|k| k.is_general()).count(),
            accounts,
            config: None,
            today,
            usage_dropped: None,
            clients_seen: None,
            own_logins: Vec::new(),
        })
    }

    /// After a change to the config file: waits up to `within` for a running server (found through
    /// `runtime.json`) to have the file's current contents in force. A server applies a change within about a
    /// second, or keeps retrying one that failed (a keychain timeout) and reports why.
    pub async fn wait_until_applied(&self, within: Duration) -> ServerSync {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Ok(Some(report)) = tokio::time::timeout(remaining.max(SERVER_POLL), self.ask_server()).await else {
                return ServerSync::NoServer;
            };
            // A server that does not report its config version cannot say; nothing to warn about.
            let Some(sync) = report.config else { return ServerSync::NoServer };
            let Ok(bytes) = tokio::fs::read(self.config_file().path()).await else { return ServerSync::NoServer };
            let current = crate::config::watch::text_sha256(&bytes);
            if sync.applied_sha256 == current {
                return ServerSync::Applied;
            }
            if tokio::time::Instant::now() >= deadline {
                let reason = sync.pending.filter(|p| p.sha256 == current).and_then(|p| p.error);
                return ServerSync::NotApplied { reason };
            }
            tokio::time::sleep(SERVER_POLL).await;
        }
    }

    /// The running server's `runtime.json`, if a server runs from this config.
    pub async fn runtime_info(&self) -> Option<RuntimeInfo> {
        let file = self.config_file().clone();
        tokio::task::spawn_blocking(move || RuntimeInfo::read(&file)).await.ok().flatten()
    }

    /// Asks a running server for its status (admin API v1).
    async fn ask_server(&self) -> Option<StatusReport> {
        let info = self.runtime_info().await?;
        let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().ok()?;
        let response =
            client.get(format!("{}/admin/api/v1/status", info.url)).bearer_auth(&info.admin_token).send().await.ok()?;
        if !response.status().is_success() {
            tracing::debug!(status = %response.status(), "running server refused the status request");
            return None;
        }
        response.json().await.ok()
    }
}
