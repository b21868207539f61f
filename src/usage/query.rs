//! The read side: usage reports from the rollups (whole UTC days from the daily table, the edges from the hourly
//! one), top sessions, the request log with cursor pagination, plan windows. Runs on its own read-only connection
//! (WAL), so a query never holds up the writer. Result types serialise as the admin API's JSON.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde::{Deserialize, Serialize};

use super::record::{Attempt, ClientKind, CostBasis, Outcome, RequestRecord, Route, Tokens};
use super::write::{DAY_MS, HOUR_MS, int};
use super::{PlanSubject, UsageError};

/// How usage rows are grouped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// One row: the total.
    #[default]
    Total,
    /// By account id (`""` = no account used).
    Account,
    /// By client key name (`""` = no key).
    ClientKey,
    /// By model (answered, else asked).
    Model,
    /// By client kind.
    ClientKind,
    /// By UTC hour (row key: the hour's start, Unix ms).
    Hour,
    /// By UTC day (row key: the day's start, Unix ms).
    Day,
}

impl GroupBy {
    fn column(self) -> &'static str {
        match self {
            Self::Total => "''",
            Self::Account => "account_id",
            Self::ClientKey => "client_key",
            Self::Model => "model",
            Self::ClientKind => "client_kind",
            Self::Hour => "CAST(bucket AS TEXT)",
            Self::Day => "CAST(bucket - bucket % 86400000 AS TEXT)",
        }
    }
}

/// A usage report's question.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageQuery {
    /// From (Unix ms; rounded down to the hour).
    pub since_ms: u64,
    /// Until (Unix ms, exclusive; rounded up to the hour).
    pub until_ms: u64,
    /// Grouping.
    #[serde(default)]
    pub group_by: GroupBy,
    /// Only this account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Only this client key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    /// Only this model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Only this client kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_kind: Option<ClientKind>,
}

/// Summed usage of a set of requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UsageTotals {
    /// Requests.
    pub requests: u64,
    /// Of which answered successfully.
    pub ok: u64,
    /// Refused by the upstream as invalid (4xx other than 429).
    pub client_errors: u64,
    /// Failed upstream (5xx, 529, 429 everywhere, broken streams).
    pub upstream_errors: u64,
    /// Failed in the gateway (unreachable upstream, timeouts, no usable account).
    pub gateway_errors: u64,
    /// Cancelled by the client.
    pub cancelled: u64,
    /// Refused by a client-key rule (limits, denied model, bad key).
    pub key_rejected: u64,
    /// Times a request moved to another account.
    pub failovers: u64,
    /// `(upstream_errors + gateway_errors) / requests`: failures that were not the client's doing.
    pub error_rate: f64,
    /// Token sums.
    pub tokens: Tokens,
    /// Estimated spend on API-key accounts, micro-USD.
    pub spend_micros: u64,
    /// API-equivalent value of subscription use, micro-USD (not money spent).
    pub equivalent_micros: u64,
    /// Requests with tokens but no price for their model (their cost is missing from the sums).
    pub unpriced: u64,
    /// Mean total latency, ms.
    pub avg_latency_ms: f64,
    /// Mean time to first byte, ms (requests that sent one).
    pub avg_first_byte_ms: f64,
    /// Mean time the gateway added (latency minus upstream time), ms.
    pub avg_gateway_ms: f64,
    /// The sums behind the means, so groups can be added up exactly.
    #[serde(skip)]
    sums: TimeSums,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct TimeSums {
    latency: u64,
    first_byte: u64,
    first_byte_count: u64,
    upstream: u64,
}

impl UsageTotals {
    /// Adds another group's sums to these.
    fn add(&mut self, x: &UsageTotals) {
        self.requests += x.requests;
        self.ok += x.ok;
        self.client_errors += x.client_errors;
        self.upstream_errors += x.upstream_errors;
        self.gateway_errors += x.gateway_errors;
        self.cancelled += x.cancelled;
        self.key_rejected += x.key_rejected;
        self.failovers += x.failovers;
        self.tokens.add(&x.tokens);
        self.spend_micros += x.spend_micros;
        self.equivalent_micros += x.equivalent_micros;
        self.unpriced += x.unpriced;
        self.sums.latency += x.sums.latency;
        self.sums.first_byte += x.sums.first_byte;
        self.sums.first_byte_count += x.sums.first_byte_count;
        self.sums.upstream += x.sums.upstream;
    }

    /// Computes the means and the error rate from the sums.
    fn finish(mut self) -> Self {
        if self.requests > 0 {
            let n = self.requests as f64;
            self.avg_latency_ms = self.sums.latency as f64 / n;
            self.avg_gateway_ms = self.sums.latency.saturating_sub(self.sums.upstream) as f64 / n;
            self.error_rate = (self.upstream_errors + self.gateway_errors) as f64 / n;
        }
        if self.sums.first_byte_count > 0 {
            self.avg_first_byte_ms = self.sums.first_byte as f64 / self.sums.first_byte_count as f64;
        }
        self
    }
}

/// One group of a usage report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageRow {
    /// The group's value (account id, key name, model, client kind, or bucket start in Unix ms); `""` = none.
    pub key: String,
    /// For accounts: the account's last known name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The sums.
    #[serde(flatten)]
    pub totals: UsageTotals,
}

/// A usage report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageReport {
    /// The range covered (hour-aligned).
    pub since_ms: u64,
    /// End of the range, exclusive.
    pub until_ms: u64,
    /// The grouping.
    pub group_by: GroupBy,
    /// The groups (by requests, most first; hours and days in time order).
    pub rows: Vec<UsageRow>,
    /// All groups together.
    pub total: UsageTotals,
}

/// One session's totals (a session active in the range, with everything it used while its rows are kept).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionRow {
    /// The session hash, hex.
    pub session: String,
    /// First request, Unix ms.
    pub first_ms: u64,
    /// Latest request, Unix ms.
    pub last_ms: u64,
    /// Requests.
    pub requests: u64,
    /// Token sums.
    pub tokens: Tokens,
    /// Spend, micro-USD.
    pub spend_micros: u64,
    /// API-equivalent value, micro-USD.
    pub equivalent_micros: u64,
    /// Client key of its latest request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    /// Account of its latest request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Model of its latest request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Client kind.
    pub client_kind: ClientKind,
}

/// Status classes for the request log filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatusClass {
    /// 200–299
    #[serde(rename = "2xx")]
    Success,
    /// 400–499
    #[serde(rename = "4xx")]
    ClientError,
    /// 500–599
    #[serde(rename = "5xx")]
    ServerError,
}

impl StatusClass {
    fn range(self) -> (u16, u16) {
        match self {
            Self::Success => (200, 300),
            Self::ClientError => (400, 500),
            Self::ServerError => (500, 600),
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedRequest {
    /// This row's cursor.
    pub cursor: String,
    /// The request.
    #[serde(flatten)]
    pub record: RequestRecord,
}

/// A page of the request log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogPage {
    /// The requests: newest first, or oldest first with `after`.
    pub items: Vec<LoggedRequest>,
    /// Pass as `cursor` for the next (older) page; none at the end.
    pub next_cursor: Option<String>,
    /// The newest row's cursor in this page (or the `after` given when the page is empty), for following.
    pub newest_cursor: Option<String>,
}

/// A subject's stored plan windows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanWindow {
    /// Whose.
    pub subject: PlanSubject,
    /// The state as it was saved.
    pub state: serde_json::Value,
    /// When it was reported, Unix ms.
    pub updated_ms: u64,
}

/// The read side of the store.
#[derive(Debug)]
pub struct Reader {
    conn: Connection,
}

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 1000;

fn uint(row: &Row<'_>, i: usize) -> rusqlite::Result<u64> {
    Ok(row.get::<_, Option<i64>>(i)?.unwrap_or(0).max(0) as u64)
}

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

fn ceil_to(ms: u64, unit: u64) -> u64 {
    ms.div_ceil(unit).saturating_mul(unit)
}

const TOTALS: &str = "sum(requests), sum(ok), sum(client_errors), sum(upstream_errors), sum(gateway_errors),
    sum(cancelled), sum(key_rejected), sum(failovers), sum(input_tokens), sum(output_tokens),
    sum(cache_creation_tokens), sum(cache_read_tokens), sum(spend_micros), sum(equivalent_micros), sum(unpriced),
    sum(latency_ms), sum(first_byte_ms), sum(first_byte_count), sum(upstream_ms)";

/// Reads the 19 sums of [`TOTALS`] starting at column `at`.
fn totals(row: &Row<'_>, at: usize) -> rusqlite::Result<UsageTotals> {
    let v = |i: usize| uint(row, at + i);
    let t = UsageTotals {
        requests: v(0)?,
        ok: v(1)?,
        client_errors: v(2)?,
        upstream_errors: v(3)?,
        gateway_errors: v(4)?,
        cancelled: v(5)?,
        key_rejected: v(6)?,
        failovers: v(7)?,
        tokens: Tokens {
            input: v(8)?,
            output: v(9)?,
            cache_creation: v(10)?,
            cache_read: v(11)?,
            cache_creation_1h: 0,
        },
        spend_micros: v(12)?,
        equivalent_micros: v(13)?,
        unpriced: v(14)?,
        sums: TimeSums { latency: v(15)?, first_byte: v(16)?, first_byte_count: v(17)?, upstream: v(18)? },
        ..UsageTotals::default()
    };
    Ok(t.finish())
}

impl Reader {
    /// Opens a read-only connection to the database at `path`.
    pub fn open(path: &Path) -> Result<Self, UsageError> {
        super::db::open_reader(path).map(|conn| Self { conn })
    }

    /// Usage in a time range, grouped, from the rollups.
    pub fn usage(&self, q: &UsageQuery) -> Result<UsageReport, UsageError> {
        let h0 = q.since_ms - q.since_ms % HOUR_MS;
        let h1 = ceil_to(q.until_ms.max(q.since_ms), HOUR_MS);
        // Whole days inside the range come from the daily table (24x fewer rows); by-hour reports need hours.
        let (mut d0, mut d1) = (ceil_to(h0, DAY_MS), h1 - h1 % DAY_MS);
        if q.group_by == GroupBy::Hour || d0 >= d1 {
            (d0, d1) = (h1, h1);
        }
        let filters = "(?5 IS NULL OR account_id = ?5) AND (?6 IS NULL OR client_key = ?6)
            AND (?7 IS NULL OR model = ?7) AND (?8 IS NULL OR client_kind = ?8)";
        let group = q.group_by.column();
        let order = match q.group_by {
            GroupBy::Hour | GroupBy::Day => "CAST(g AS INTEGER)",
            _ => "sum(requests) DESC, g",
        };
        let sql = format!(
            "SELECT {group} AS g, {TOTALS} FROM (
                SELECT * FROM rollup_daily WHERE bucket >= ?3 AND bucket < ?4 AND {filters}
                UNION ALL
                SELECT * FROM rollup_hourly WHERE ((bucket >= ?1 AND bucket < ?3) OR (bucket >= ?4 AND bucket < ?2))
                    AND {filters}
            ) GROUP BY g ORDER BY {order}"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let kind = q.client_kind.map(ClientKind::as_str);
        let rows = stmt
            .query_map(params![int(h0), int(h1), int(d0), int(d1), q.account_id, q.client_key, q.model, kind], |r| {
                Ok((r.get::<_, String>(0)?, totals(r, 1)?))
            })?;
        let mut out = Vec::new();
        for row in rows {
            let (key, totals) = row?;
            out.push(UsageRow { key, name: None, totals });
        }
        if q.group_by == GroupBy::Account {
            let names = self.account_names()?;
            for row in &mut out {
                row.name = names.get(&row.key).cloned();
            }
        }
        let total = sum_rows(&out);
        Ok(UsageReport { since_ms: h0, until_ms: h1, group_by: q.group_by, rows: out, total })
    }

    /// Totals since `since_ms` (e.g. the start of today, local or UTC) until now: the tray's and UI's summary.
    pub fn summary_since(&self, since_ms: u64, now_ms: u64) -> Result<UsageTotals, UsageError> {
        let q = UsageQuery { since_ms, until_ms: now_ms.max(since_ms) + 1, ..UsageQuery::default() };
        Ok(self.usage(&q)?.total)
    }

    /// The sessions active in `[since_ms, until_ms)` with the most estimated cost (then requests).
    pub fn top_sessions(&self, since_ms: u64, until_ms: u64, limit: usize) -> Result<Vec<SessionRow>, UsageError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT session, first_ms, last_ms, requests, input_tokens, output_tokens, cache_creation_tokens,
             cache_read_tokens, spend_micros, equivalent_micros, client_key, account_id, model, client_kind
             FROM sessions WHERE last_ms >= ?1 AND first_ms < ?2
             ORDER BY spend_micros + equivalent_micros DESC, requests DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![int(since_ms), int(until_ms), limit.min(MAX_PAGE) as i64], |r| {
            Ok(SessionRow {
                session: format!("{:016x}", uint(r, 0)?),
                first_ms: uint(r, 1)?,
                last_ms: uint(r, 2)?,
                requests: uint(r, 3)?,
                tokens: Tokens {
                    input: uint(r, 4)?,
                    output: uint(r, 5)?,
                    cache_creation: uint(r, 6)?,
                    cache_read: uint(r, 7)?,
                    cache_creation_1h: 0,
                },
                spend_micros: uint(r, 8)?,
                equivalent_micros: uint(r, 9)?,
                client_key: r.get(10)?,
                account_id: r.get(11)?,
                model: r.get(12)?,
                client_kind: ClientKind::parse(&r.get::<_, String>(13)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

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

    /// Every stored plan-window state.
    pub fn plan_windows(&self) -> Result<Vec<PlanWindow>, UsageError> {
        let mut stmt =
            self.conn.prepare_cached("SELECT subject, state, updated_ms FROM plan_windows ORDER BY subject")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, uint(r, 2)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (subject, state, updated_ms) = row?;
            let (Some(subject), Ok(state)) = (PlanSubject::from_key(&subject), serde_json::from_str(&state)) else {
                continue;
            };
            out.push(PlanWindow { subject, state, updated_ms });
        }
        Ok(out)
    }

    /// One subject's stored plan windows.
    pub fn plan_window(&self, subject: &PlanSubject) -> Result<Option<PlanWindow>, UsageError> {
        let row = self
            .conn
            .query_row("SELECT state, updated_ms FROM plan_windows WHERE subject = ?1", params![subject.key()], |r| {
                Ok((r.get::<_, String>(0)?, uint(r, 1)?))
            })
            .optional()?;
        Ok(row.and_then(|(state, updated_ms)| {
            serde_json::from_str(&state).ok().map(|state| PlanWindow { subject: subject.clone(), state, updated_ms })
        }))
    }

    /// Account id → last known name.
    pub fn account_names(&self) -> Result<HashMap<String, String>, UsageError> {
        let mut stmt = self.conn.prepare_cached("SELECT id, name FROM accounts")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

fn sum_rows(rows: &[UsageRow]) -> UsageTotals {
    let mut t = UsageTotals::default();
    for r in rows {
        t.add(&r.totals);
    }
    t.finish()
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
