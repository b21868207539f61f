//! Gateway (client) keys: list, create (the key is shown once; only its hash is stored), revoke.

use serde::{Deserialize, Serialize};

use super::{Error, Ops, Result, now_rfc3339, required_name};
use crate::config::{ClientKey, Config, KeyPurpose};
use crate::secrets::keys::{hash_key, new_client_key};
use crate::usage::counters::day_start;
use crate::usage::{GroupBy, LogQuery, UsageQuery, UsageTotals};

/// What a key may do. Every limit is optional; an empty list means no restriction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientKeyLimits {
    /// Allowed models (exact names or `prefix*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    /// Tokens per UTC day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_day: Option<u64>,
    /// Estimated spend per UTC month, in US dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd_month: Option<f64>,
    /// Allowed accounts (ids or names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    /// Allowed priority tiers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priority_tiers: Vec<u32>,
    /// Last day the key works (UTC, `YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

impl ClientKeyLimits {
    fn of(key: &ClientKey) -> Self {
        Self {
            models: key.models.clone(),
            rpm: key.rpm,
            tokens_per_day: key.tokens_per_day,
            budget_usd_month: key.budget_usd_month,
            accounts: key.accounts.clone(),
            priority_tiers: key.priority_tiers.clone(),
            expires: key.expires.clone(),
        }
    }

    /// Checks every limit, naming the field at fault; `config` is where named accounts must exist.
    fn checked(mut self, config: &Config) -> Result<Self> {
        self.models = self.models.into_iter().map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect();
        if self.rpm == Some(0) {
            return Err(Error::invalid("rpm", "`rpm` must be at least 1 (leave it out for no limit)"));
        }
        if self.tokens_per_day == Some(0) {
            return Err(Error::invalid("tokens_per_day", "`tokens_per_day` must be at least 1"));
        }
        if let Some(budget) = self.budget_usd_month
            && !(budget.is_finite() && budget >= 0.0)
        {
            return Err(Error::invalid("budget_usd_month", "`budget_usd_month` must be a number of dollars ≥ 0"));
        }
        for account in &self.accounts {
            if !config.accounts.iter().any(|a| a.id == *account || a.name == *account) {
                return Err(Error::invalid("accounts", format!("no account with id or name `{account}`")));
            }
        }
        if let Some(expires) = &self.expires {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            if time::Date::parse(expires.trim(), &format).is_err() {
                return Err(Error::invalid("expires", format!("`expires` must be a date YYYY-MM-DD, not `{expires}`")));
            }
            self.expires = Some(expires.trim().to_string());
        }
        Ok(self)
    }
}

/// A gateway key as shown to users (never the key itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientKeyView {
    /// Stable id (`key_…`).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The key's first characters.
    pub prefix: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// `claude_code` for the key `claude-code setup` made; absent for a general-purpose key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<KeyPurpose>,
    /// Accepted only from this machine.
    #[serde(default)]
    pub loopback_only: bool,
    /// What the key may do.
    pub limits: ClientKeyLimits,
    /// Its usage since UTC midnight (bound to a running gateway with usage recording on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_today: Option<UsageTotals>,
    /// When it last sent a request (RFC 3339), as far as the request log remembers (same condition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<String>,
}

impl ClientKeyView {
    /// The view of a configured key.
    pub fn of(key: &ClientKey) -> Self {
        Self {
            id: key.id(),
            name: key.name.clone(),
            prefix: key.prefix.clone(),
            created_at: key.created_at.clone(),
            purpose: key.purpose,
            loopback_only: key.loopback_only,
            limits: ClientKeyLimits::of(key),
            usage_today: None,
            last_used: None,
        }
    }
}

/// A key to create.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewClientKey {
    /// Unique name.
    pub name: String,
    /// What it may do.
    #[serde(flatten)]
    pub limits: ClientKeyLimits,
}

/// A key just created: `key` is shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedClientKey {
    /// The new key's id.
    pub id: String,
    /// The key (`lgw-…`); only its hash is stored.
    pub key: String,
    /// The new key's view.
    pub client_key: ClientKeyView,
}

fn find_key<'c>(config: &'c Config, id_or_name: &str) -> Result<&'c ClientKey> {
    config
        .client_keys
        .iter()
        .find(|k| k.id() == id_or_name)
        .or_else(|| config.client_keys.iter().find(|k| k.name == id_or_name))
        .ok_or_else(|| Error::not_found(format!("no client key with id or name `{id_or_name}`")))
}

impl Ops {
    /// The gateway keys; bound to a running gateway, each with its usage today.
    pub async fn client_keys(&self) -> Result<Vec<ClientKeyView>> {
        let mut views: Vec<ClientKeyView> = self.config().await?.client_keys.iter().map(ClientKeyView::of).collect();
        if let Some(gateway) = self.gateway() {
            let now = gateway.now_ms();
            let query = UsageQuery {
                since_ms: day_start(now),
                until_ms: now + 1,
                group_by: GroupBy::ClientKey,
                ..UsageQuery::default()
            };
            let names: Vec<String> = views.iter().map(|v| v.name.clone()).collect();
            let found = gateway
                .usage()
                .query(move |r| {
                    let report = r.usage(&query)?;
                    let mut last = Vec::with_capacity(names.len());
                    for name in names {
                        let latest = LogQuery { client_key: Some(name), limit: Some(1), ..LogQuery::default() };
                        last.push(r.requests(&latest)?.items.first().map(|i| i.record.started_at_ms));
                    }
                    Ok((report, last))
                })
                .await;
            if let Ok((report, last)) = found {
                for (view, last) in views.iter_mut().zip(last) {
                    let row = report.rows.iter().find(|r| r.key == view.name);
                    view.usage_today = Some(row.map(|r| r.totals.clone()).unwrap_or_default());
                    view.last_used = last.map(crate::clock::rfc3339);
                }
            }
        }
        Ok(views)
    }

    /// Creates a gateway key; the returned `key` is the only copy (only its hash is stored).
    pub async fn create_client_key(&self, new: NewClientKey) -> Result<CreatedClientKey> {
        let name = required_name("name", &new.name)?;
        let config = self.config().await?;
        let limits = new.limits.checked(&config)?;
        let key = new_client_key();
        let entry = ClientKey {
            name: name.clone(),
            sha256: hex::encode(hash_key(&key)),
            prefix: key.chars().take(10).collect(),
            created_at: now_rfc3339(),
            purpose: None,
            loopback_only: false,
            models: limits.models,
            rpm: limits.rpm,
            tokens_per_day: limits.tokens_per_day,
            budget_usd_month: limits.budget_usd_month,
            accounts: limits.accounts,
            priority_tiers: limits.priority_tiers,
            expires: limits.expires,
        };
        let view = ClientKeyView::of(&entry);
        self.update(move |config| {
            if config.client_keys.iter().any(|k| k.name == name) {
                return Err(Error::conflict("name", format!("a client key named `{name}` already exists")));
            }
            config.client_keys.push(entry);
            Ok(())
        })
        .await?;
        Ok(CreatedClientKey { id: view.id.clone(), key, client_key: view })
    }

    /// Revokes a gateway key (by id or name): requests with it get 401 from now on. Returns what it was.
    pub async fn revoke_client_key(&self, id_or_name: &str) -> Result<ClientKeyView> {
        let key = id_or_name.to_string();
        self.update(move |config| {
            let found = ClientKeyView::of(find_key(config, &key)?);
            config.client_keys.retain(|k| k.id() != found.id);
            Ok(found)
        })
        .await
    }
}
