//! Usage reports, top sessions and the request log, for every front door: from the running gateway's store when
//! bound to it; else from a server running from the same config (its admin API, found through `runtime.json`);
//! else straight from the database file, read-only (WAL lets it sit next to a server).

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Error, ErrorKind, Ops, Result, blocking};
use crate::config::Config;
use crate::usage::counters::day_start;
use crate::usage::write::{DAY_MS, HOUR_MS};
use crate::usage::{
    ClientKind, GroupBy, LogPage, LogQuery, PlanWindow, Reader, SessionRow, StatusClass, UsageError, UsageQuery,
    UsageReport, UsageTotals, database_path, parse_time,
};

/// Most sessions one query returns.
const MAX_SESSIONS: usize = 200;

/// A usage report's question, as the admin API's query string and the CLI's options give it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageParams {
    /// From: a duration back from now (`30m`, `24h`, `7d`, `2w`), an RFC 3339 time or a UTC date
    /// (`YYYY-MM-DD`); default `24h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Until (exclusive), the same forms; default now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Grouping: `account`, `client_key` (or `client-key`), `model`, `client_kind`, `hour`, `day` (default) or
    /// `total`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Only this account (id or name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Only this client key (name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    /// Only this model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Only this client kind (`claude_code`, `anthropic_sdk`, `openai`, `other`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_kind: Option<String>,
}

/// A request-log page's question.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestParams {
    /// Page size, 1–1000 (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// The next (older) page: an earlier page's `next_cursor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Only requests after this cursor, oldest first (following: pass the last page's `newest_cursor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Only this account (id or name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Only this client key (name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    /// Only this model (answered, else asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Only this client kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_kind: Option<String>,
    /// Only this status: `2xx`, `4xx`, `5xx`, `error` (any failure), or a code (`429`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Only requests from (same forms as [`UsageParams::since`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Only requests before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

/// Top sessions' question.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionParams {
    /// From (default `24h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Until (default now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// How many (1–200, default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// Sessions with the most estimated cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionsReport {
    /// Most cost first.
    pub sessions: Vec<SessionRow>,
}

/// A time in a query: a duration back from `now_ms`, an RFC 3339 time or a UTC date.
fn parse_when(field: &str, text: &str, now_ms: u64) -> Result<u64> {
    let text = text.trim();
    let invalid = || {
        Error::invalid(
            field,
            format!(
                "`{field}` must be a duration back from now (30m, 24h, 7d, 2w), an RFC 3339 time or a date YYYY-MM-DD, not `{text}`"
            ),
        )
    };
    if let Some(unit) = text.chars().last()
        && let Ok(n) = text[..text.len() - unit.len_utf8()].parse::<u64>()
    {
        let ms = match unit {
            'm' => 60_000,
            'h' => HOUR_MS,
            'd' => DAY_MS,
            'w' => 7 * DAY_MS,
            _ => return Err(invalid()),
        };
        return Ok(now_ms.saturating_sub(n.saturating_mul(ms)));
    }
    if let Ok(ms) = parse_time(text) {
        return Ok(ms);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let day = time::Date::parse(text, &format).map_err(|_| invalid())?;
    u64::try_from(day.midnight().assume_utc().unix_timestamp()).map(|s| s * 1000).map_err(|_| invalid())
}

fn parse_kind(field: &str, text: Option<&str>) -> Result<Option<ClientKind>> {
    let Some(text) = text else { return Ok(None) };
    ClientKind::ALL.into_iter().find(|k| k.as_str() == text).map(Some).ok_or_else(|| {
        Error::invalid(field, format!("unknown client kind `{text}`: claude_code, anthropic_sdk, openai or other"))
    })
}

fn parse_group(text: Option<&str>) -> Result<GroupBy> {
    Ok(match text.map(|t| t.trim().replace('-', "_")).as_deref() {
        None | Some("day") => GroupBy::Day,
        Some("hour") => GroupBy::Hour,
        Some("account") => GroupBy::Account,
        Some("client_key") => GroupBy::ClientKey,
        Some("model") => GroupBy::Model,
        Some("client_kind") => GroupBy::ClientKind,
        Some("total") => GroupBy::Total,
        Some(other) => {
            return Err(Error::invalid(
                "by",
                format!("unknown grouping `{other}`: account, client_key, model, client_kind, hour, day or total"),
            ));
        }
    })
}

/// An account id for a filter given as id or name (unknown names pass as ids: the account may be gone).
fn account_id(config: &Config, account: Option<&str>) -> Option<String> {
    let account = account?;
    Some(config.accounts.iter().find(|a| a.name == account).map_or_else(|| account.to_string(), |a| a.id.clone()))
}

impl UsageParams {
    fn query(&self, config: &Config, now_ms: u64) -> Result<UsageQuery> {
        let since_ms = parse_when("since", self.since.as_deref().unwrap_or("24h"), now_ms)?;
        let until_ms = match &self.until {
            Some(u) => parse_when("until", u, now_ms)?,
            None => now_ms.saturating_add(1),
        };
        if until_ms < since_ms {
            return Err(Error::invalid("until", "`until` is before `since`"));
        }
        Ok(UsageQuery {
            since_ms,
            until_ms,
            group_by: parse_group(self.by.as_deref())?,
            account_id: account_id(config, self.account.as_deref()),
            client_key: self.client_key.clone(),
            model: self.model.clone(),
            client_kind: parse_kind("client_kind", self.client_kind.as_deref())?,
        })
    }
}

impl RequestParams {
    fn query(&self, config: &Config, now_ms: u64) -> Result<LogQuery> {
        let status = match self.status.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => Some(StatusClass::parse(s).ok_or_else(|| {
                Error::invalid("status", format!("`status` must be 2xx, 4xx, 5xx, error or a status code, not `{s}`"))
            })?),
        };
        Ok(LogQuery {
            limit: self.limit,
            cursor: self.cursor.clone(),
            after: self.after.clone(),
            account_id: account_id(config, self.account.as_deref()),
            client_key: self.client_key.clone(),
            model: self.model.clone(),
            status,
            client_kind: parse_kind("client_kind", self.client_kind.as_deref())?,
            since_ms: self.since.as_deref().map(|s| parse_when("since", s, now_ms)).transpose()?,
            until_ms: self.until.as_deref().map(|s| parse_when("until", s, now_ms)).transpose()?,
        })
    }
}

impl From<UsageError> for Error {
    fn from(e: UsageError) -> Self {
        match e {
            UsageError::BadCursor(_) => Error::invalid("cursor", e.to_string()),
            UsageError::Disabled => Error::conflict(
                "usage.enabled",
                "usage recording is off (usage.enabled: false, or the database could not be opened; see the log)",
            ),
            e => Error::new(ErrorKind::Storage, e.to_string()),
        }
    }
}

impl Ops {
    /// A usage report.
    pub async fn usage(&self, params: UsageParams) -> Result<UsageReport> {
        if let Some(gateway) = self.gateway() {
            let query = params.query(&gateway.live().config, gateway.now_ms())?;
            return Ok(gateway.usage().query(move |r| r.usage(&query)).await?);
        }
        let config = self.config().await?;
        if let Some(answer) = self.ask_running_server("/usage", &params).await {
            return answer;
        }
        let query = params.query(&config, now_ms())?;
        let empty = empty_report(&query);
        read(self.database(&config), move |r| r.usage(&query), move || empty).await
    }

    /// The sessions with the most estimated cost in a time range.
    pub async fn usage_sessions(&self, params: SessionParams) -> Result<SessionsReport> {
        let range = |now: u64| -> Result<(u64, u64, usize)> {
            let since = parse_when("since", params.since.as_deref().unwrap_or("24h"), now)?;
            let until = params.until.as_deref().map_or(Ok(now.saturating_add(1)), |u| parse_when("until", u, now))?;
            Ok((since, until, params.limit.unwrap_or(20).clamp(1, MAX_SESSIONS)))
        };
        if let Some(gateway) = self.gateway() {
            let (since, until, limit) = range(gateway.now_ms())?;
            let sessions = gateway.usage().query(move |r| r.top_sessions(since, until, limit)).await?;
            return Ok(SessionsReport { sessions });
        }
        let config = self.config().await?;
        if let Some(answer) = self.ask_running_server("/usage/sessions", &params).await {
            return answer;
        }
        let (since, until, limit) = range(now_ms())?;
        let sessions = read(self.database(&config), move |r| r.top_sessions(since, until, limit), Vec::new).await?;
        Ok(SessionsReport { sessions })
    }

    /// A page of the request log (newest first, or oldest first after a cursor).
    pub async fn requests(&self, params: RequestParams) -> Result<LogPage> {
        if let Some(gateway) = self.gateway() {
            let query = params.query(&gateway.live().config, gateway.now_ms())?;
            return Ok(gateway.usage().query(move |r| r.requests(&query)).await?);
        }
        let config = self.config().await?;
        if let Some(answer) = self.ask_running_server("/requests", &params).await {
            return answer;
        }
        let query = params.query(&config, now_ms())?;
        let after = query.after.clone();
        let empty = || LogPage { items: vec![], next_cursor: None, newest_cursor: after };
        read(self.database(&config), move |r| r.requests(&query), empty).await
    }

    /// Offline: today's totals and the stored plan windows from the database file, when there is one.
    pub(crate) async fn usage_from_database(&self, config: &Config) -> (Option<UsageTotals>, Vec<PlanWindow>) {
        let path = database_path(self.config_file().path(), &config.usage);
        if !config.usage.enabled || !path.exists() {
            return (None, Vec::new());
        }
        let now = now_ms();
        let read = blocking(move || {
            let reader = Reader::open(&path)?;
            let today = reader.summary_since(day_start(now), now)?;
            let windows = reader.plan_windows()?;
            Ok((Some(today), windows))
        });
        read.await.unwrap_or_else(|e| {
            tracing::debug!("usage database not readable: {e}");
            (None, Vec::new())
        })
    }

    /// The database file, when there is one.
    fn database(&self, config: &Config) -> Option<std::path::PathBuf> {
        let path = database_path(self.config_file().path(), &config.usage);
        path.exists().then_some(path)
    }

    /// The answer of the server running from this config (`runtime.json`), or none when no server runs or it does
    /// not answer (a `runtime.json` left behind by a server that was killed): the database is read instead.
    async fn ask_running_server<T: DeserializeOwned, P: Serialize>(&self, path: &str, params: &P) -> Option<Result<T>> {
        match self.server_get(path, params).await {
            Err(e) if e.kind == ErrorKind::NotRunning => {
                tracing::debug!("{e}; reading the usage database instead");
                None
            }
            answer => Some(answer),
        }
    }

    /// `GET /admin/api/v1{path}?{params}` on the server running from this config.
    async fn server_get<T: DeserializeOwned, P: Serialize>(&self, path: &str, params: &P) -> Result<T> {
        let not_running = || Error::new(ErrorKind::NotRunning, "no server runs from this config");
        let info = self.runtime_info().await.ok_or_else(not_running)?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::internal(format!("HTTP client: {e}")))?;
        let response = client
            .get(format!("{}/admin/api/v1{path}", info.url))
            .query(params)
            .bearer_auth(&info.admin_token)
            .send()
            .await
            .map_err(|e| Error::new(ErrorKind::NotRunning, format!("the running server did not answer ({e})")))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| Error::internal(format!("reading the server's answer: {e}")))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| Error::internal(format!("the server's answer is not what this version expects: {e}")));
        }
        Err(admin_error(status.as_u16(), &bytes))
    }
}

/// An admin API error answer as an operation error of the same kind.
fn admin_error(status: u16, body: &[u8]) -> Error {
    #[derive(Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(rename = "type")]
        kind: String,
        message: String,
        field: Option<String>,
    }
    let Ok(Body { error }) = serde_json::from_slice::<Body>(body) else {
        return Error::internal(format!("the running server answered {status}"));
    };
    let kind = match error.kind.as_str() {
        "invalid_request" => ErrorKind::InvalidInput,
        "not_found" => ErrorKind::NotFound,
        "conflict" => ErrorKind::Conflict,
        "needs_login" => ErrorKind::NeedsLogin,
        "upstream_unavailable" => ErrorKind::UpstreamUnavailable,
        _ => ErrorKind::Internal,
    };
    Error { kind, message: error.message, field: error.field }
}

fn now_ms() -> u64 {
    u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// Runs `query` on the database file read-only, off the runtime; `empty` when there is no file yet.
async fn read<T: Send + 'static>(
    path: Option<std::path::PathBuf>,
    query: impl FnOnce(&Reader) -> Result<T, UsageError> + Send + 'static,
    empty: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let Some(path) = path else { return Ok(empty()) };
    blocking(move || Ok(query(&Reader::open(&path)?)?)).await
}

fn empty_report(q: &UsageQuery) -> UsageReport {
    UsageReport {
        since_ms: q.since_ms - q.since_ms % HOUR_MS,
        until_ms: q.until_ms.div_ceil(HOUR_MS) * HOUR_MS,
        group_by: q.group_by,
        rows: Vec::new(),
        total: UsageTotals::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_794_736_800_000; // 2026-11-15T10:00:00Z

    #[test]
    fn times_are_durations_back_rfc3339_or_dates() {
        assert_eq!(parse_when("since", "24h", NOW).unwrap(), NOW - DAY_MS);
        assert_eq!(parse_when("since", "30m", NOW).unwrap(), NOW - 1_800_000);
        assert_eq!(parse_when("since", "2w", NOW).unwrap(), NOW - 14 * DAY_MS);
        assert_eq!(parse_when("since", "2026-11-15T09:00:00Z", NOW).unwrap(), NOW - HOUR_MS);
        assert_eq!(parse_when("since", "2026-11-15", NOW).unwrap(), NOW - 10 * HOUR_MS);
        let e = parse_when("since", "yesterday", NOW).unwrap_err();
        assert_eq!((e.kind, e.field.as_deref()), (ErrorKind::InvalidInput, Some("since")));
        assert!(parse_when("until", "5y", NOW).is_err());
    }

    #[test]
    fn usage_questions_name_the_field_at_fault() {
        let config = Config::default();
        let q = UsageParams { by: Some("client-key".into()), ..Default::default() }.query(&config, NOW).unwrap();
        assert_eq!((q.group_by, q.since_ms, q.until_ms), (GroupBy::ClientKey, NOW - DAY_MS, NOW + 1));
        let e = UsageParams { by: Some("planet".into()), ..Default::default() }.query(&config, NOW).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("by"));
        let e =
            UsageParams { client_kind: Some("emacs".into()), ..Default::default() }.query(&config, NOW).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("client_kind"));
        let e = RequestParams { status: Some("6xx".into()), ..Default::default() }.query(&config, NOW).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("status"));
        let q = RequestParams { status: Some("429".into()), ..Default::default() }.query(&config, NOW).unwrap();
        assert_eq!(q.status, Some(StatusClass::Code(429)));
    }
}
