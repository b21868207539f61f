//! The read side: usage reports from the rollups (whole UTC days from the daily table, the edges from the hourly
//! one), top sessions, plan windows; the request log is in `log.rs`. Runs on its own read-only connection
//! (WAL), so a query never holds up the writer. Result types serialise as the admin API's JSON.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::record::{ClientKind, Tokens};
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
            Self::Hour => "bucket",
            Self::Day => "bucket - bucket % 86400000",
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

/// Summed usage of a set of requests. Its JSON is the admin API's `UsageTotals` (see `json.rs`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(into = "super::json::TotalsJson", from = "super::json::TotalsJson")]
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
    pub(super) sums: TimeSums,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct TimeSums {
    pub(super) latency: u64,
    pub(super) first_byte: u64,
    pub(super) first_byte_count: u64,
    pub(super) upstream: u64,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRow {
    /// The group's value (account id, key name, model, client kind, or bucket start in Unix ms — RFC 3339 in
    /// JSON); `""` = none.
    pub key: String,
    /// For accounts: the account's last known name (`label` in JSON).
    #[serde(rename = "label", default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The sums.
    #[serde(flatten)]
    pub totals: UsageTotals,
}

/// A usage report. Its JSON is the admin API's `UsageReport` (`from`, `to`, `by`, `rows`, `totals`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "super::json::ReportJson", try_from = "super::json::ReportJson")]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "super::json::SessionJson", try_from = "super::json::SessionJson")]
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
    pub(super) conn: Connection,
}

/// Most sessions one query returns.
const MAX_SESSIONS: usize = 1000;

pub(super) fn uint(row: &Row<'_>, i: usize) -> rusqlite::Result<u64> {
    Ok(row.get::<_, Option<i64>>(i)?.unwrap_or(0).max(0) as u64)
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
        // Whole days inside the range come from a daily table (24x fewer rows), the edges from an hourly one;
        // by-hour reports need hours throughout.
        let (mut d0, mut d1) = (ceil_to(h0, DAY_MS), h1 - h1 % DAY_MS);
        if q.group_by == GroupBy::Hour || d0 >= d1 {
            (d0, d1) = (h1, h1);
        }
        // Without account, key or client-kind filters or groups, the by-model tables hold the same sums in a few
        // rows per bucket.
        let by_model_only = q.account_id.is_none()
            && q.client_key.is_none()
            && q.client_kind.is_none()
            && !matches!(q.group_by, GroupBy::Account | GroupBy::ClientKey | GroupBy::ClientKind);
        let (hourly, daily) = if by_model_only {
            ("rollup_hourly_model", "rollup_daily_model")
        } else {
            ("rollup_hourly", "rollup_daily")
        };
        let mut groups: HashMap<String, UsageTotals> = HashMap::new();
        // Each table is aggregated on its own (no UNION of whole rows), and the two parts merged here.
        let parts = [
            (daily, "bucket >= ?1 AND bucket < ?2", (d0, d1), None),
            (hourly, "((bucket >= ?1 AND bucket < ?2) OR (bucket >= ?3 AND bucket < ?4))", (h0, d0), Some((d1, h1))),
        ];
        let kind = q.client_kind.map(ClientKind::as_str);
        for (table, range, (a, b), second) in parts {
            let (c, d) = second.unwrap_or((0, 0));
            if b <= a && c >= d {
                continue;
            }
            let sql = format!(
                "SELECT {group} AS g, {TOTALS} FROM {table} WHERE {range}
                 AND (?5 IS NULL OR account_id = ?5) AND (?6 IS NULL OR client_key = ?6)
                 AND (?7 IS NULL OR model = ?7) AND (?8 IS NULL OR client_kind = ?8) GROUP BY g",
                group = q.group_by.column()
            );
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![int(a), int(b), int(c), int(d), q.account_id, q.client_key, q.model, kind],
                |r| {
                    let key = match r.get::<_, Value>(0)? {
                        Value::Integer(i) => i.to_string(),
                        Value::Text(t) => t,
                        _ => String::new(),
                    };
                    Ok((key, totals(r, 1)?))
                },
            )?;
            for row in rows {
                let (key, t) = row?;
                groups.entry(key).or_default().add(&t);
            }
        }
        let mut out: Vec<UsageRow> =
            groups.into_iter().map(|(key, t)| UsageRow { key, name: None, totals: t.finish() }).collect();
        match q.group_by {
            GroupBy::Hour | GroupBy::Day => out.sort_by_key(|r| r.key.parse::<u64>().unwrap_or(0)),
            _ => out.sort_by(|a, b| b.totals.requests.cmp(&a.totals.requests).then_with(|| a.key.cmp(&b.key))),
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

    /// The sessions active in `[since_ms, until_ms)` with the most estimated cost (spend + API-equivalent value).
    pub fn top_sessions(&self, since_ms: u64, until_ms: u64, limit: usize) -> Result<Vec<SessionRow>, UsageError> {
        let mut stmt = self.conn.prepare_cached(
            // The inner query reads only the covering index `sessions_recent`; the details of the few winners
            // come from the table.
            "SELECT session, first_ms, last_ms, requests, input_tokens, output_tokens, cache_creation_tokens,
             cache_read_tokens, spend_micros, equivalent_micros, client_key, account_id, model, client_kind
             FROM sessions WHERE session IN (
                SELECT session FROM sessions INDEXED BY sessions_recent WHERE last_ms >= ?1 AND first_ms < ?2
                ORDER BY cost_micros DESC LIMIT ?3)
             ORDER BY cost_micros DESC, requests DESC",
        )?;
        let rows = stmt.query_map(params![int(since_ms), int(until_ms), limit.min(MAX_SESSIONS) as i64], |r| {
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
