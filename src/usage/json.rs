//! The JSON shapes of the store's types, as the admin API (`docs/admin-api.yaml`), the event stream, the CLI's
//! `--json` and the web UI read them: flat token counts (`input_tokens`, …), times as RFC 3339, estimated cost in
//! US dollars next to the exact micro-dollars, `errors` next to its breakdown. One shape everywhere: the types
//! serialise through these (`#[serde(into, try_from)]`) and read back from them, so the CLI can take an admin API
//! answer as the same typed value it would get from the database.

use serde::{Deserialize, Serialize};

use super::query::{GroupBy, SessionRow, TimeSums, UsageReport, UsageRow, UsageTotals};
use super::record::{Attempt, ClientKind, CostBasis, Outcome, RequestRecord, Route, Tokens};
use crate::clock::rfc3339;

/// Unix ms from an RFC 3339 time.
pub(crate) fn parse_time(text: &str) -> Result<u64, String> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("`{text}` is not an RFC 3339 time: {e}"))?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| format!("`{text}` is before 1970"))
}

fn usd(micros: u64) -> f64 {
    micros as f64 / 1e6
}

fn micros(usd: f64) -> u64 {
    if usd.is_finite() && usd > 0.0 { (usd * 1e6).round() as u64 } else { 0 }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// [`RequestRecord`] as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RequestJson {
    id: String,
    time: String,
    #[serde(default)]
    client_key: Option<String>,
    client_kind: ClientKind,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    account_name: Option<String>,
    route: Route,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    model_answered: Option<String>,
    status: u16,
    outcome: Outcome,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    latency_ms: u64,
    #[serde(default)]
    first_byte_ms: Option<u64>,
    #[serde(default)]
    upstream_ms: u64,
    #[serde(default)]
    gateway_ms: u64,
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_creation_tokens: u64,
    #[serde(default)]
    cache_read_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    cache_creation_1h_tokens: u64,
    #[serde(default)]
    cost_basis: CostBasis,
    /// The estimate in micro-USD (exact).
    #[serde(default)]
    cost_micros: Option<u64>,
    /// The estimate as spend (API-key accounts).
    #[serde(default)]
    cost_usd: Option<f64>,
    /// The estimate as API-equivalent value (subscriptions): not spend.
    #[serde(default)]
    value_usd: Option<f64>,
    #[serde(default)]
    attempts: Vec<Attempt>,
    #[serde(default)]
    session: Option<String>,
    #[serde(default)]
    spillover: bool,
}

impl From<RequestRecord> for RequestJson {
    fn from(r: RequestRecord) -> Self {
        let gateway_ms = r.gateway_ms();
        let (cost_usd, value_usd) = match (r.cost_micros, r.cost_basis) {
            (Some(c), CostBasis::Spend) => (Some(usd(c)), None),
            (Some(c), CostBasis::ApiEquivalent) => (None, Some(usd(c))),
            (None, _) => (None, None),
        };
        Self {
            id: r.request_id,
            time: rfc3339(r.started_at_ms),
            client_key: r.client_key,
            client_kind: r.client_kind,
            account: r.account_id,
            account_name: r.account_name,
            route: r.route,
            model: r.model_requested,
            model_answered: r.model_answered,
            status: r.status,
            outcome: r.outcome,
            stop_reason: r.stop_reason,
            stream: r.stream,
            latency_ms: r.latency_ms,
            first_byte_ms: r.first_byte_ms,
            upstream_ms: r.upstream_ms,
            gateway_ms,
            input_tokens: r.tokens.input,
            output_tokens: r.tokens.output,
            cache_creation_tokens: r.tokens.cache_creation,
            cache_read_tokens: r.tokens.cache_read,
            cache_creation_1h_tokens: r.tokens.cache_creation_1h,
            cost_basis: r.cost_basis,
            cost_micros: r.cost_micros,
            cost_usd,
            value_usd,
            attempts: r.attempts,
            session: r.session.map(|s| format!("{s:016x}")),
            spillover: r.spillover,
        }
    }
}

impl TryFrom<RequestJson> for RequestRecord {
    type Error = String;

    fn try_from(j: RequestJson) -> Result<Self, String> {
        let cost_micros = j.cost_micros.or(j.cost_usd.map(micros)).or(j.value_usd.map(micros));
        Ok(Self {
            started_at_ms: parse_time(&j.time)?,
            request_id: j.id,
            client_key: j.client_key,
            client_kind: j.client_kind,
            account_id: j.account,
            account_name: j.account_name,
            route: j.route,
            model_requested: j.model,
            model_answered: j.model_answered,
            status: j.status,
            outcome: j.outcome,
            stop_reason: j.stop_reason,
            stream: j.stream,
            latency_ms: j.latency_ms,
            first_byte_ms: j.first_byte_ms,
            upstream_ms: j.upstream_ms,
            attempts: j.attempts,
            tokens: Tokens {
                input: j.input_tokens,
                output: j.output_tokens,
                cache_creation: j.cache_creation_tokens,
                cache_read: j.cache_read_tokens,
                cache_creation_1h: j.cache_creation_1h_tokens,
            },
            cost_micros,
            cost_basis: j.cost_basis,
            session: j.session.and_then(|s| u64::from_str_radix(&s, 16).ok()),
            spillover: j.spillover,
        })
    }
}

/// [`UsageTotals`] as JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct TotalsJson {
    requests: u64,
    ok: u64,
    /// Every request that did not succeed, cancellations aside.
    errors: u64,
    client_errors: u64,
    upstream_errors: u64,
    gateway_errors: u64,
    cancelled: u64,
    key_rejected: u64,
    failovers: u64,
    error_rate: f64,
    input_tokens: u64,
    output_tokens: u64,
    cache_creation_tokens: u64,
    cache_read_tokens: u64,
    total_tokens: u64,
    spend_micros: u64,
    equivalent_micros: u64,
    cost_usd: f64,
    value_usd: f64,
    unpriced: u64,
    avg_latency_ms: f64,
    avg_first_byte_ms: f64,
    avg_gateway_ms: f64,
}

impl From<UsageTotals> for TotalsJson {
    fn from(t: UsageTotals) -> Self {
        Self {
            requests: t.requests,
            ok: t.ok,
            errors: t.client_errors + t.upstream_errors + t.gateway_errors + t.key_rejected,
            client_errors: t.client_errors,
            upstream_errors: t.upstream_errors,
            gateway_errors: t.gateway_errors,
            cancelled: t.cancelled,
            key_rejected: t.key_rejected,
            failovers: t.failovers,
            error_rate: t.error_rate,
            input_tokens: t.tokens.input,
            output_tokens: t.tokens.output,
            cache_creation_tokens: t.tokens.cache_creation,
            cache_read_tokens: t.tokens.cache_read,
            total_tokens: t.tokens.total(),
            spend_micros: t.spend_micros,
            equivalent_micros: t.equivalent_micros,
            cost_usd: usd(t.spend_micros),
            value_usd: usd(t.equivalent_micros),
            unpriced: t.unpriced,
            avg_latency_ms: t.avg_latency_ms,
            avg_first_byte_ms: t.avg_first_byte_ms,
            avg_gateway_ms: t.avg_gateway_ms,
        }
    }
}

impl From<TotalsJson> for UsageTotals {
    fn from(j: TotalsJson) -> Self {
        // The sums behind the means are not in the JSON; they are rebuilt from the means (whole milliseconds).
        let n = j.requests as f64;
        let latency = (j.avg_latency_ms * n).round() as u64;
        Self {
            requests: j.requests,
            ok: j.ok,
            client_errors: j.client_errors,
            upstream_errors: j.upstream_errors,
            gateway_errors: j.gateway_errors,
            cancelled: j.cancelled,
            key_rejected: j.key_rejected,
            failovers: j.failovers,
            error_rate: j.error_rate,
            tokens: Tokens {
                input: j.input_tokens,
                output: j.output_tokens,
                cache_creation: j.cache_creation_tokens,
                cache_read: j.cache_read_tokens,
                cache_creation_1h: 0,
            },
            spend_micros: if j.spend_micros > 0 { j.spend_micros } else { micros(j.cost_usd) },
            equivalent_micros: if j.equivalent_micros > 0 { j.equivalent_micros } else { micros(j.value_usd) },
            unpriced: j.unpriced,
            avg_latency_ms: j.avg_latency_ms,
            avg_first_byte_ms: j.avg_first_byte_ms,
            avg_gateway_ms: j.avg_gateway_ms,
            sums: TimeSums {
                latency,
                first_byte: 0,
                first_byte_count: 0,
                upstream: latency.saturating_sub((j.avg_gateway_ms * n).round() as u64),
            },
        }
    }
}

/// [`UsageReport`] as JSON: `from`/`to` as RFC 3339; hour and day rows keyed by their start in RFC 3339.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ReportJson {
    from: String,
    to: String,
    by: GroupBy,
    rows: Vec<UsageRow>,
    totals: UsageTotals,
}

fn is_time_group(by: GroupBy) -> bool {
    matches!(by, GroupBy::Hour | GroupBy::Day)
}

impl From<UsageReport> for ReportJson {
    fn from(r: UsageReport) -> Self {
        let mut rows = r.rows;
        if is_time_group(r.group_by) {
            for row in &mut rows {
                if let Ok(ms) = row.key.parse::<u64>() {
                    row.key = rfc3339(ms);
                }
            }
        }
        Self { from: rfc3339(r.since_ms), to: rfc3339(r.until_ms), by: r.group_by, rows, totals: r.total }
    }
}

impl TryFrom<ReportJson> for UsageReport {
    type Error = String;

    fn try_from(j: ReportJson) -> Result<Self, String> {
        let mut rows = j.rows;
        if is_time_group(j.by) {
            for row in &mut rows {
                row.key = parse_time(&row.key)?.to_string();
            }
        }
        Ok(Self { since_ms: parse_time(&j.from)?, until_ms: parse_time(&j.to)?, group_by: j.by, rows, total: j.totals })
    }
}

/// [`SessionRow`] as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SessionJson {
    session: String,
    first: String,
    last: String,
    requests: u64,
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_creation_tokens: u64,
    #[serde(default)]
    cache_read_tokens: u64,
    #[serde(default)]
    spend_micros: u64,
    #[serde(default)]
    equivalent_micros: u64,
    #[serde(default)]
    cost_usd: f64,
    #[serde(default)]
    value_usd: f64,
    #[serde(default)]
    client_key: Option<String>,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    model: Option<String>,
    client_kind: ClientKind,
}

impl From<SessionRow> for SessionJson {
    fn from(s: SessionRow) -> Self {
        Self {
            session: s.session,
            first: rfc3339(s.first_ms),
            last: rfc3339(s.last_ms),
            requests: s.requests,
            input_tokens: s.tokens.input,
            output_tokens: s.tokens.output,
            cache_creation_tokens: s.tokens.cache_creation,
            cache_read_tokens: s.tokens.cache_read,
            spend_micros: s.spend_micros,
            equivalent_micros: s.equivalent_micros,
            cost_usd: usd(s.spend_micros),
            value_usd: usd(s.equivalent_micros),
            client_key: s.client_key,
            account: s.account_id,
            model: s.model,
            client_kind: s.client_kind,
        }
    }
}

impl TryFrom<SessionJson> for SessionRow {
    type Error = String;

    fn try_from(j: SessionJson) -> Result<Self, String> {
        Ok(Self {
            session: j.session,
            first_ms: parse_time(&j.first)?,
            last_ms: parse_time(&j.last)?,
            requests: j.requests,
            tokens: Tokens {
                input: j.input_tokens,
                output: j.output_tokens,
                cache_creation: j.cache_creation_tokens,
                cache_read: j.cache_read_tokens,
                cache_creation_1h: 0,
            },
            spend_micros: j.spend_micros,
            equivalent_micros: j.equivalent_micros,
            client_key: j.client_key,
            account_id: j.account,
            model: j.model,
            client_kind: j.client_kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::record::FailoverReason;

    #[test]
    fn a_record_round_trips_through_its_json_with_the_api_field_names() {
        let mut r = RequestRecord::new(1_794_736_800_123, "req_gw_1", Route::ChatCompletions, ClientKind::Openai);
        r.client_key = Some("ci".into());
        r.account_id = Some("acc_1".into());
        r.account_name = Some("work".into());
        r.model_requested = Some("claude-sonnet-5".into());
        r.status = 200;
        r.latency_ms = 90;
        r.upstream_ms = 80;
        r.first_byte_ms = Some(40);
        r.tokens = Tokens { input: 10, output: 20, cache_creation: 30, cache_read: 40, cache_creation_1h: 5 };
        r.cost_micros = Some(1_500_000);
        r.cost_basis = CostBasis::ApiEquivalent;
        r.session = Some(0xabc);
        r.attempts = vec![Attempt {
            account_id: "acc_0".into(),
            status: Some(429),
            failover: Some(FailoverReason::RateLimited),
            ms: 3,
        }];
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["id"], "req_gw_1");
        assert_eq!(json["time"], "2026-11-15T10:00:00.123Z");
        assert_eq!(json["account"], "acc_1");
        assert_eq!(json["model"], "claude-sonnet-5");
        assert_eq!(json["gateway_ms"], 10);
        assert_eq!(json["cache_read_tokens"], 40);
        assert_eq!(json["value_usd"], 1.5);
        assert!(json["cost_usd"].is_null(), "subscription value is never shown as spend");
        assert_eq!(json["attempts"][0]["account"], "acc_0");
        assert_eq!(json["attempts"][0]["reason"], "rate_limited");
        assert_eq!(json["session"], "0000000000000abc");
        let back: RequestRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn totals_and_reports_use_flat_token_fields_and_rfc3339_buckets() {
        let totals = UsageTotals {
            requests: 4,
            ok: 2,
            client_errors: 1,
            cancelled: 1,
            tokens: Tokens { input: 1, output: 2, cache_creation: 3, cache_read: 4, cache_creation_1h: 0 },
            spend_micros: 250_000,
            ..UsageTotals::default()
        };
        let report = UsageReport {
            since_ms: 1_794_700_800_000,
            until_ms: 1_794_787_200_000,
            group_by: GroupBy::Day,
            rows: vec![UsageRow { key: "1794700800000".into(), name: None, totals: totals.clone() }],
            total: totals,
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["by"], "day");
        assert_eq!(json["from"], "2026-11-15T00:00:00Z");
        assert_eq!(json["rows"][0]["key"], "2026-11-15T00:00:00Z");
        assert_eq!(json["rows"][0]["errors"], 1);
        assert_eq!(json["totals"]["total_tokens"], 10);
        assert_eq!(json["totals"]["cost_usd"], 0.25);
        let back: UsageReport = serde_json::from_value(json).unwrap();
        assert_eq!(back.rows[0].key, "1794700800000");
        assert_eq!(back.total.tokens, report.total.tokens);
        assert_eq!(back.total.spend_micros, 250_000);
    }
}
