//! The request log: newest-first pages with an opaque cursor, filters, and "follow" (everything after a cursor,
//! oldest first). Filters become plain `column = ?` clauses so SQLite can use the `(account_id, id)` and
//! `(client_key, id)` indexes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::types::Value;
use rusqlite::{Row, params_from_iter};
use serde::{Deserialize, Serialize};

use super::UsageError;
use super::query::{Reader, uint};
use super::record::{Attempt, ClientKind, CostBasis, Outcome, RequestRecord, Route, Tokens};
use super::write::int;

/// The request log's status filter: `2xx`, `4xx`, `5xx`, `error` (400 and above) or one status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum StatusClass {
    /// 200–299
    Success,
    /// 400–499
    ClientError,
    /// 500–599
    ServerError,
    /// 400 and above: every failure.
    Error,
    /// Exactly this status.
    Code(u16),
}

impl StatusClass {
    fn range(self) -> (u16, u16) {
        match self {
            Self::Success => (200, 300),
            Self::ClientError => (400, 500),
            Self::ServerError => (500, 600),
            Self::Error => (400, 1000),
            Self::Code(c) => (c, c.saturating_add(1)),
        }
    }

    /// The filter named `2xx`, `4xx`, `5xx`, `error`, or a status code.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "2xx" => Some(Self::Success),
            "4xx" => Some(Self::ClientError),
            "5xx" => Some(Self::ServerError),
            "error" => Some(Self::Error),
            code => code.parse().ok().filter(|c| (100..1000).contains(c)).map(Self::Code),
        }
    }
}

impl TryFrom<String> for StatusClass {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text).ok_or_else(|| format!("unknown status filter `{text}`"))
    }
}

impl From<StatusClass> for String {
    fn from(class: StatusClass) -> String {
        match class {
            StatusClass::Success => "2xx".into(),
            StatusClass::ClientError => "4xx".into(),
            StatusClass::ServerError => "5xx".into(),
            StatusClass::Error => "error".into(),
            StatusClass::Code(c) => c.to_string(),
        }
    }
}

/// A request-log page's question.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogQuery {
    /// Page size (1–1000; default 50).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Newest first: the page after this cursor (an earlier page's `next_cursor`).
    #[serde(default)]
    pub cursor: Option<String>,
    /// Oldest first: only requests logged after this cursor (for `--follow`: pass the last `newest_cursor`).
    #[serde(default)]
    pub after: Option<String>,
    /// Only this account.
    #[serde(default)]
    pub account_id: Option<String>,
    /// Only this client key.
    #[serde(default)]
    pub client_key: Option<String>,
    /// Only this model (answered, else asked).
    #[serde(default)]
    pub model: Option<String>,
    /// Only this status class.
    #[serde(default)]
    pub status: Option<StatusClass>,
    /// Only this client kind.
    #[serde(default)]
    pub client_kind: Option<ClientKind>,
    /// Only requests started at or after (Unix ms).
    #[serde(default)]
    pub since_ms: Option<u64>,
    /// Only requests started before (Unix ms).
    #[serde(default)]
    pub until_ms: Option<u64>,
}

/// One logged request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedRequest {
    /// This row's cursor.
    pub cursor: String,
    /// The request.
    #[serde(flatten)]
    pub record: RequestRecord,
}

/// A page of the request log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogPage {
    /// The requests: newest first, or oldest first with `after` (`requests` in JSON).
    #[serde(rename = "requests")]
    pub items: Vec<LoggedRequest>,
    /// Pass as `cursor` for the next (older) page; none at the end.
    pub next_cursor: Option<String>,
    /// The newest row's cursor in this page (or the `after` given when the page is empty), for following.
    pub newest_cursor: Option<String>,
}

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 1000;

fn encode_cursor(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("r{id}"))
}

fn decode_cursor(cursor: &str) -> Result<i64, UsageError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix('r').and_then(|n| n.parse().ok()))
        .ok_or_else(|| UsageError::BadCursor(cursor.to_string()))
}

impl Reader {
    /// A page of the request log.
    pub fn requests(&self, q: &LogQuery) -> Result<LogPage, UsageError> {
        let limit = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        let mut clauses: Vec<&str> = Vec::new();
        let mut values: Vec<Value> = Vec::new();
        let mut add = |clause: &'static str, value: Value| {
            clauses.push(clause);
            values.push(value);
        };
        let following = q.after.is_some();
        if let Some(after) = &q.after {
            add("id > ?", Value::Integer(decode_cursor(after)?));
        } else if let Some(cursor) = &q.cursor {
            add("id < ?", Value::Integer(decode_cursor(cursor)?));
        }
        if let Some(v) = &q.account_id {
            add("account_id = ?", Value::Text(v.clone()));
        }
        if let Some(v) = &q.client_key {
            add("client_key = ?", Value::Text(v.clone()));
        }
        if let Some(v) = &q.model {
            add("model = ?", Value::Text(v.clone()));
        }
        if let Some(v) = q.client_kind {
            add("client_kind = ?", Value::Text(v.as_str().into()));
        }
        if let Some(class) = q.status {
            let (lo, hi) = class.range();
            add("status >= ?", Value::Integer(i64::from(lo)));
            add("status < ?", Value::Integer(i64::from(hi)));
        }
        if let Some(v) = q.since_ms {
            add("ts_ms >= ?", Value::Integer(int(v)));
        }
        if let Some(v) = q.until_ms {
            add("ts_ms < ?", Value::Integer(int(v)));
        }
        let filter = if clauses.is_empty() { "1".to_string() } else { clauses.join(" AND ") };
        let order = if following { "ASC" } else { "DESC" };
        let sql = format!("SELECT {LOG_COLUMNS} FROM requests WHERE {filter} ORDER BY id {order} LIMIT {}", limit + 1);
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut items =
            stmt.query_map(params_from_iter(values.iter()), logged_request)?.collect::<rusqlite::Result<Vec<_>>>()?;
        let more = items.len() > limit;
        items.truncate(limit);
        let (next_cursor, newest_cursor) = if following {
            (None, items.last().map(|i| i.cursor.clone()).or_else(|| q.after.clone()))
        } else {
            (more.then(|| items.last().map(|i| i.cursor.clone())).flatten(), items.first().map(|i| i.cursor.clone()))
        };
        Ok(LogPage { items, next_cursor, newest_cursor })
    }
}

const LOG_COLUMNS: &str = "id, ts_ms, request_id, client_key, client_kind, account_id, account_name, route,
    model_requested, model_answered, status, outcome, stop_reason, stream, latency_ms, first_byte_ms, upstream_ms,
    attempts, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens, cache_creation_1h_tokens,
    cost_micros, cost_basis, session, spillover";

fn logged_request(r: &Row<'_>) -> rusqlite::Result<LoggedRequest> {
    let id: i64 = r.get(0)?;
    let attempts: Option<String> = r.get(17)?;
    let record = RequestRecord {
        started_at_ms: uint(r, 1)?,
        request_id: r.get(2)?,
        client_key: r.get(3)?,
        client_kind: ClientKind::parse(&r.get::<_, String>(4)?),
        account_id: r.get(5)?,
        account_name: r.get(6)?,
        route: Route::parse(&r.get::<_, String>(7)?).unwrap_or(Route::Messages),
        model_requested: r.get(8)?,
        model_answered: r.get(9)?,
        status: r.get(10)?,
        outcome: Outcome::parse(&r.get::<_, String>(11)?).unwrap_or(Outcome::UpstreamError),
        stop_reason: r.get(12)?,
        stream: r.get(13)?,
        latency_ms: uint(r, 14)?,
        first_byte_ms: r.get::<_, Option<i64>>(15)?.map(|v| v.max(0) as u64),
        upstream_ms: uint(r, 16)?,
        attempts: attempts.and_then(|a| serde_json::from_str::<Vec<Attempt>>(&a).ok()).unwrap_or_default(),
        tokens: Tokens {
            input: uint(r, 18)?,
            output: uint(r, 19)?,
            cache_creation: uint(r, 20)?,
            cache_read: uint(r, 21)?,
            cache_creation_1h: uint(r, 22)?,
        },
        cost_micros: r.get::<_, Option<i64>>(23)?.map(|v| v.max(0) as u64),
        cost_basis: CostBasis::parse(&r.get::<_, String>(24)?),
        session: r.get::<_, Option<i64>>(25)?.map(|v| v.max(0) as u64),
        spillover: r.get(26)?,
    };
    Ok(LoggedRequest { cursor: encode_cursor(id), record })
}
