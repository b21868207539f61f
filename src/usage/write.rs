//! The store's insert path: one transaction per batch writes the raw rows and folds the batch into the hourly and
//! daily rollups, the session totals and the account names; plus retention pruning. Used by the writer thread, and
//! directly for bulk loads (benchmarks, imports).

use std::collections::HashMap;

use rusqlite::{Connection, params};

use super::db::ROLLUP_TABLES;
use super::record::{CostBasis, OutcomeClass, RequestRecord};
use super::{PlanSubject, UsageError};

/// One hour and one day in milliseconds: the rollup buckets (UTC).
pub const HOUR_MS: u64 = 3_600_000;
/// One day in milliseconds.
pub const DAY_MS: u64 = 86_400_000;

/// SQLite integers are signed; every count and time here fits (a u64 beyond i64::MAX would be nonsense anyway).
pub(crate) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A plan-window state to keep (the latest per subject wins).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanUpdate {
    /// Whose windows.
    pub subject: PlanSubject,
    /// The state as JSON (e.g. `accounts::windows::RateWindows`).
    pub state: serde_json::Value,
    /// When it was reported, Unix ms.
    pub at_ms: u64,
}

/// Rollup dimensions: bucket start, account, client key, model, client kind ('' = none). Borrowed from the batch's
/// records: folding a record into its four rollups allocates nothing.
type RollupKey<'a> = (u64, &'a str, &'a str, &'a str, &'static str);

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    requests: u64,
    ok: u64,
    client_errors: u64,
    upstream_errors: u64,
    gateway_errors: u64,
    cancelled: u64,
    key_rejected: u64,
    failovers: u64,
    input: u64,
    output: u64,
    cache_creation: u64,
    cache_read: u64,
    spend: u64,
    equivalent: u64,
    unpriced: u64,
    latency: u64,
    first_byte: u64,
    first_byte_count: u64,
    upstream: u64,
}

impl Totals {
    fn add(&mut self, r: &RequestRecord) {
        self.requests += 1;
        match r.outcome.class() {
            OutcomeClass::Ok => self.ok += 1,
            OutcomeClass::ClientError => self.client_errors += 1,
            OutcomeClass::UpstreamError => self.upstream_errors += 1,
            OutcomeClass::GatewayError => self.gateway_errors += 1,
            OutcomeClass::Cancelled => self.cancelled += 1,
            OutcomeClass::KeyRejected => self.key_rejected += 1,
        }
        self.failovers += r.failovers() as u64;
        self.input += r.tokens.input;
        self.output += r.tokens.output;
        self.cache_creation += r.tokens.cache_creation;
        self.cache_read += r.tokens.cache_read;
        match (r.cost_micros, r.cost_basis) {
            (Some(c), CostBasis::Spend) => self.spend += c,
            (Some(c), CostBasis::ApiEquivalent) => self.equivalent += c,
            (None, _) => self.unpriced += u64::from(r.tokens.total() > 0),
        }
        self.latency += r.latency_ms;
        if let Some(fb) = r.first_byte_ms {
            self.first_byte += fb;
            self.first_byte_count += 1;
        }
        self.upstream += r.upstream_ms;
    }
}

#[derive(Debug, Default)]
struct SessionTotals {
    first_ms: u64,
    last_ms: u64,
    requests: u64,
    input: u64,
    output: u64,
    cache_creation: u64,
    cache_read: u64,
    spend: u64,
    equivalent: u64,
    client_key: Option<String>,
    account_id: Option<String>,
    model: Option<String>,
    client_kind: &'static str,
}

/// The write side of the store: owns the one writing connection.
#[derive(Debug)]
pub struct Writer {
    conn: Connection,
}

const INSERT_REQUEST: &str =
    "INSERT INTO requests (ts_ms, request_id, client_key, client_kind, account_id, account_name,
    route, model_requested, model_answered, model, status, outcome, stop_reason, stream, latency_ms, first_byte_ms,
    upstream_ms, attempts, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens,
    cache_creation_1h_tokens, cost_micros, cost_basis, session, spillover)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23,
    ?24, ?25, ?26, ?27)";

fn upsert_rollup(table: &str) -> String {
    format!(
        "INSERT INTO {table} (bucket, account_id, client_key, model, client_kind, requests, ok, client_errors,
        upstream_errors, gateway_errors, cancelled, key_rejected, failovers, input_tokens, output_tokens,
        cache_creation_tokens, cache_read_tokens, spend_micros, equivalent_micros, unpriced, latency_ms,
        first_byte_ms, first_byte_count, upstream_ms)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22,
        ?23, ?24)
        ON CONFLICT (bucket, account_id, client_key, model, client_kind) DO UPDATE SET
        requests = requests + excluded.requests, ok = ok + excluded.ok,
        client_errors = client_errors + excluded.client_errors,
        upstream_errors = upstream_errors + excluded.upstream_errors,
        gateway_errors = gateway_errors + excluded.gateway_errors, cancelled = cancelled + excluded.cancelled,
        key_rejected = key_rejected + excluded.key_rejected, failovers = failovers + excluded.failovers,
        input_tokens = input_tokens + excluded.input_tokens, output_tokens = output_tokens + excluded.output_tokens,
        cache_creation_tokens = cache_creation_tokens + excluded.cache_creation_tokens,
        cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
        spend_micros = spend_micros + excluded.spend_micros,
        equivalent_micros = equivalent_micros + excluded.equivalent_micros, unpriced = unpriced + excluded.unpriced,
        latency_ms = latency_ms + excluded.latency_ms, first_byte_ms = first_byte_ms + excluded.first_byte_ms,
        first_byte_count = first_byte_count + excluded.first_byte_count,
        upstream_ms = upstream_ms + excluded.upstream_ms"
    )
}

const UPSERT_SESSION: &str = "INSERT INTO sessions (session, first_ms, last_ms, requests, input_tokens, output_tokens,
    cache_creation_tokens, cache_read_tokens, spend_micros, equivalent_micros, cost_micros, client_key, account_id,
    model, client_kind) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
    ON CONFLICT (session) DO UPDATE SET first_ms = min(first_ms, excluded.first_ms),
    last_ms = max(last_ms, excluded.last_ms), requests = requests + excluded.requests,
    input_tokens = input_tokens + excluded.input_tokens, output_tokens = output_tokens + excluded.output_tokens,
    cache_creation_tokens = cache_creation_tokens + excluded.cache_creation_tokens,
    cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
    spend_micros = spend_micros + excluded.spend_micros,
    equivalent_micros = equivalent_micros + excluded.equivalent_micros,
    cost_micros = cost_micros + excluded.cost_micros, client_key = coalesce(excluded.client_key, client_key), account_id = coalesce(excluded.account_id, account_id),
    model = coalesce(excluded.model, model), client_kind = excluded.client_kind";

/// Rows deleted per statement while pruning, so a long-overdue prune never holds the write lock for long.
const PRUNE_CHUNK: i64 = 20_000;

impl Writer {
    /// Wraps a connection opened by `db::open_writer`.
    pub fn new(conn: Connection) -> Self {
        Self { conn }
    }

    /// Opens (creating and migrating) the database at `path` for writing.
    pub fn open(path: &std::path::Path) -> Result<Self, UsageError> {
        super::db::open_writer(path).map(Self::new)
    }

    /// Writes `records` and `plans` in one transaction.
    pub fn write_batch(&mut self, records: &[RequestRecord], plans: &[PlanUpdate]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        // One map per table of `db::ROLLUP_TABLES`, in that order.
        let mut rollups: [HashMap<RollupKey<'_>, Totals>; 4] = Default::default();
        let mut sessions: HashMap<u64, SessionTotals> = HashMap::new();
        let mut accounts: HashMap<&str, (&str, u64)> = HashMap::new();
        {
            let mut insert = tx.prepare_cached(INSERT_REQUEST)?;
            for r in records {
                // A request its first account answered is fully described by its own columns; only failovers
                // are worth the bytes (the request log is the biggest table).
                let attempts = if r.attempts.len() > 1 || r.failovers() > 0 {
                    serde_json::to_string(&r.attempts).ok()
                } else {
                    None
                };
                insert.execute(params![
                    int(r.started_at_ms),
                    r.request_id,
                    r.client_key,
                    r.client_kind.as_str(),
                    r.account_id,
                    r.account_name,
                    r.route.as_str(),
                    r.model_requested,
                    r.model_answered,
                    r.model(),
                    r.status,
                    r.outcome.as_str(),
                    r.stop_reason,
                    r.stream,
                    int(r.latency_ms),
                    r.first_byte_ms.map(int),
                    int(r.upstream_ms),
                    attempts,
                    int(r.tokens.input),
                    int(r.tokens.output),
                    int(r.tokens.cache_creation),
                    int(r.tokens.cache_read),
                    int(r.tokens.cache_creation_1h),
                    r.cost_micros.map(int),
                    r.cost_basis.as_str(),
                    r.session.map(int),
                    r.spillover,
                ])?;
                let model = r.model().unwrap_or_default();
                let (account, key) = (r.account_id.as_deref().unwrap_or(""), r.client_key.as_deref().unwrap_or(""));
                let dims = |bucket: u64| -> RollupKey<'_> { (bucket, account, key, model, r.client_kind.as_str()) };
                let by_model = |bucket: u64| -> RollupKey<'_> { (bucket, "", "", model, "") };
                let t = r.started_at_ms;
                let (hour, day) = (t - t % HOUR_MS, t - t % DAY_MS);
                rollups[0].entry(dims(hour)).or_default().add(r);
                rollups[1].entry(dims(day)).or_default().add(r);
                rollups[2].entry(by_model(hour)).or_default().add(r);
                rollups[3].entry(by_model(day)).or_default().add(r);
                if let Some(session) = r.session {
                    let s = sessions.entry(session).or_insert_with(|| SessionTotals {
                        first_ms: t,
                        last_ms: t,
                        ..SessionTotals::default()
                    });
                    s.first_ms = s.first_ms.min(t);
                    s.last_ms = s.last_ms.max(t);
                    s.requests += 1;
                    s.input += r.tokens.input;
                    s.output += r.tokens.output;
                    s.cache_creation += r.tokens.cache_creation;
                    s.cache_read += r.tokens.cache_read;
                    match (r.cost_micros, r.cost_basis) {
                        (Some(c), CostBasis::Spend) => s.spend += c,
                        (Some(c), CostBasis::ApiEquivalent) => s.equivalent += c,
                        (None, _) => {}
                    }
                    s.client_key.clone_from(&r.client_key);
                    if r.account_id.is_some() {
                        s.account_id.clone_from(&r.account_id);
                    }
                    if let Some(m) = r.model() {
                        s.model = Some(m.to_string());
                    }
                    s.client_kind = r.client_kind.as_str();
                }
                if let (Some(id), Some(name)) = (&r.account_id, &r.account_name) {
                    let entry = accounts.entry(id.as_str()).or_insert((name.as_str(), t));
                    if t >= entry.1 {
                        *entry = (name.as_str(), t);
                    }
                }
            }
        }
        for (table, map) in ROLLUP_TABLES.iter().zip(&rollups) {
            let mut upsert = tx.prepare_cached(&upsert_rollup(table))?;
            for ((bucket, account, key, model, kind), t) in map {
                upsert.execute(params![
                    int(*bucket),
                    account,
                    key,
                    model,
                    kind,
                    int(t.requests),
                    int(t.ok),
                    int(t.client_errors),
                    int(t.upstream_errors),
                    int(t.gateway_errors),
                    int(t.cancelled),
                    int(t.key_rejected),
                    int(t.failovers),
                    int(t.input),
                    int(t.output),
                    int(t.cache_creation),
                    int(t.cache_read),
                    int(t.spend),
                    int(t.equivalent),
                    int(t.unpriced),
                    int(t.latency),
                    int(t.first_byte),
                    int(t.first_byte_count),
                    int(t.upstream),
                ])?;
            }
        }
        {
            let mut upsert = tx.prepare_cached(UPSERT_SESSION)?;
            for (session, s) in &sessions {
                upsert.execute(params![
                    int(*session),
                    int(s.first_ms),
                    int(s.last_ms),
                    int(s.requests),
                    int(s.input),
                    int(s.output),
                    int(s.cache_creation),
                    int(s.cache_read),
                    int(s.spend),
                    int(s.equivalent),
                    int(s.spend + s.equivalent),
                    s.client_key,
                    s.account_id,
                    s.model,
                    s.client_kind,
                ])?;
            }
            let mut upsert = tx.prepare_cached(
                "INSERT INTO accounts (id, name, last_ms) VALUES (?1, ?2, ?3) ON CONFLICT (id) DO UPDATE SET
                 name = excluded.name, last_ms = excluded.last_ms WHERE excluded.last_ms >= last_ms",
            )?;
            for (id, (name, at)) in &accounts {
                upsert.execute(params![id, name, int(*at)])?;
            }
            let mut upsert = tx.prepare_cached(
                "INSERT INTO plan_windows (subject, state, updated_ms) VALUES (?1, ?2, ?3) ON CONFLICT (subject)
                 DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms
                 WHERE excluded.updated_ms >= updated_ms",
            )?;
            for p in plans {
                upsert.execute(params![p.subject.key(), p.state.to_string(), int(p.at_ms)])?;
            }
        }
        tx.commit()
    }

    /// Deletes request rows and sessions older than `raw_days`, and rollups older than `rollup_days`, as of
    /// `now_ms`. Returns the number of request rows deleted.
    pub fn prune(&mut self, now_ms: u64, raw_days: u32, rollup_days: u32) -> rusqlite::Result<u64> {
        let raw_cutoff = int(now_ms.saturating_sub(u64::from(raw_days) * DAY_MS));
        let rollup_cutoff = int(now_ms.saturating_sub(u64::from(rollup_days) * DAY_MS));
        let mut deleted = 0u64;
        loop {
            let n = self.conn.execute(
                "DELETE FROM requests WHERE id IN (SELECT id FROM requests WHERE ts_ms < ?1 LIMIT ?2)",
                params![raw_cutoff, PRUNE_CHUNK],
            )?;
            deleted += n as u64;
            if (n as i64) < PRUNE_CHUNK {
                break;
            }
        }
        self.conn.execute("DELETE FROM sessions WHERE last_ms < ?1", params![raw_cutoff])?;
        for table in ROLLUP_TABLES {
            // A daily bucket goes only once all of its day is past the cutoff.
            let span = if table.starts_with("rollup_daily") { DAY_MS } else { HOUR_MS };
            self.conn
                .execute(&format!("DELETE FROM {table} WHERE bucket + ?2 <= ?1"), params![rollup_cutoff, int(span)])?;
        }
        Ok(deleted)
    }

    /// The connection (tests and tools).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}
