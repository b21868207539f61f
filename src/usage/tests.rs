//! The store end to end: records in, the writer thread, reopening, retention, corruption, queries.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::clock::ManualClock;
use crate::usage::write::{DAY_MS, HOUR_MS};

/// 2026-11-30T10:00:00Z
const T0: u64 = 1_796_032_800_000;

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    clock: Arc<ManualClock>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usage.db");
        Self { _dir: dir, path, clock: Arc::new(ManualClock::new(T0)) }
    }

    fn options(&self) -> UsageOptions {
        UsageOptions { path: self.path.clone(), config: UsageConfig::default(), clock: self.clock.clone(), stall: None }
    }

    fn open(&self) -> Usage {
        Usage::try_open(self.options()).expect("usage store opens")
    }
}

fn record(at: u64, id: &str) -> RequestRecord {
    let mut r = RequestRecord::new(at, id, Route::Messages, ClientKind::ClaudeCode);
    r.status = 200;
    r.client_key = Some("laptop".into());
    r.account_id = Some("acc_1".into());
    r.account_name = Some("work".into());
    r.model_requested = Some("claude-sonnet-5".into());
    r.model_answered = Some("claude-sonnet-5".into());
    r.latency_ms = 1000;
    r.first_byte_ms = Some(300);
    r.upstream_ms = 990;
    r.attempts = vec![Attempt { account_id: "acc_1".into(), status: Some(200), failover: None, ms: 290 }];
    r.tokens = Tokens { input: 1000, output: 500, cache_creation: 2000, cache_read: 10_000, cache_creation_1h: 0 };
    r
}

/// Sonnet 5: 1000 in × $2 + 500 out × $10 + 2000 writes × $2.50 + 10000 reads × $0.20 per MTok.
const RECORD_COST: u64 = 2000 + 5000 + 5000 + 2000;

fn log(usage: &Usage, q: LogQuery) -> LogPage {
    usage.with_reader(|r| r.requests(&q)).unwrap()
}

fn report(usage: &Usage, q: UsageQuery) -> UsageReport {
    usage.with_reader(|r| r.usage(&q)).unwrap()
}

const STREAM: &str = concat!(
    "event: message_start\n",
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-opus-4-8\",",
    "\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":4000,",
    "\"output_tokens\":1}}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
    "event: message_delta\n",
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\n",
    "event: message_stop\n",
    "data: {\"type\":\"message_stop\"}\n\n",
);

fn from_tap(at: u64, id: &str, seen: &Seen, stream: bool, outcome: Outcome, basis: CostBasis) -> RequestRecord {
    let mut r = RequestRecord::new(at, id, Route::Messages, ClientKind::AnthropicSdk);
    r.status = 200;
    r.outcome = outcome;
    r.stream = stream;
    r.account_id = Some("acc_2".into());
    r.account_name = Some("max".into());
    r.model_requested = Some("claude-opus-4-8".into());
    r.model_answered = seen.model.clone();
    r.stop_reason = seen.stop_reason.clone();
    r.tokens = seen.tokens;
    r.cost_basis = basis;
    r
}

#[test]
fn streamed_plain_and_cancelled_requests_are_stored_with_exact_tokens_and_cost() {
    let f = Fixture::new();
    let usage = f.open();
    // Streamed, in awkward chunks.
    let mut tap = UsageTap::sse();
    for chunk in STREAM.as_bytes().chunks(7) {
        tap.feed(chunk);
    }
    let streamed = from_tap(T0, "req_stream", &tap.finish(), true, Outcome::Ok, CostBasis::ApiEquivalent);
    // Not streamed.
    let mut tap = UsageTap::json();
    tap.feed(br#"{"id":"msg_2","type":"message","model":"claude-opus-4-8","content":[],"stop_reason":"max_tokens","usage":{"input_tokens":7,"output_tokens":9,"cache_creation_input_tokens":0,"cache_read_input_tokens":0}}"#);
    let plain = from_tap(T0 + 1, "req_plain", &tap.finish(), false, Outcome::Ok, CostBasis::Spend);
    // Cancelled after the first delta: what was seen.
    let mut tap = UsageTap::sse();
    tap.feed(&STREAM.as_bytes()[..STREAM.find("event: message_delta").unwrap()]);
    let cancelled = from_tap(T0 + 2, "req_cancel", tap.seen(), true, Outcome::ClientCancelled, CostBasis::Spend);
    for r in [streamed, plain, cancelled] {
        usage.record(r);
    }
    usage.flush();

    let page = log(&usage, LogQuery::default());
    let by_id = |id: &str| page.items.iter().find(|i| i.record.request_id == id).unwrap().record.clone();
    let s = by_id("req_stream");
    assert_eq!(s.tokens, Tokens { input: 25, output: 15, cache_creation: 100, cache_read: 4000, cache_creation_1h: 0 });
    assert_eq!(s.stop_reason.as_deref(), Some("end_turn"));
    // Opus 4.8: 25 × $5 + 15 × $25 + 100 × $6.25 + 4000 × $0.50 per MTok = 125 + 375 + 625 + 2000 µ$.
    assert_eq!(s.cost_micros, Some(3125));
    assert_eq!(s.cost_basis, CostBasis::ApiEquivalent);
    let p = by_id("req_plain");
    assert_eq!(p.tokens, Tokens { input: 7, output: 9, ..Tokens::default() });
    assert_eq!(p.cost_micros, Some(35 + 225));
    let c = by_id("req_cancel");
    assert_eq!(c.outcome, Outcome::ClientCancelled);
    assert_eq!(c.tokens, Tokens { input: 25, output: 1, cache_creation: 100, cache_read: 4000, cache_creation_1h: 0 });
    assert_eq!(c.stop_reason, None);

    let total = report(&usage, UsageQuery { since_ms: T0, until_ms: T0 + HOUR_MS, ..UsageQuery::default() }).total;
    assert_eq!(total.requests, 3);
    assert_eq!(total.tokens.input, 25 + 7 + 25);
    assert_eq!(total.tokens.output, 15 + 9 + 1);
    assert_eq!(total.equivalent_micros, 3125, "subscription use is API-equivalent value, not spend");
    assert_eq!(total.spend_micros, 260 + (125 + 25 + 625 + 2000));
    assert_eq!((total.ok, total.cancelled), (2, 1));
    assert_eq!(usage.stats().written, 3);
}

#[test]
fn restart_keeps_usage_plan_windows_and_key_counters() {
    let f = Fixture::new();
    let usage = f.open();
    usage.record(record(T0, "a"));
    usage.record(record(T0 + 5, "b"));
    let windows = serde_json::json!({"unified_status": "allowed_warning", "five_hour": {"utilization": 0.82}});
    usage.save_plan_window(PlanSubject::Account("acc_1".into()), windows.clone());
    usage.save_plan_window(PlanSubject::OwnLogin("9f86d081".into()), serde_json::json!({"unified_status": "allowed"}));
    let before = usage.key_usage("laptop");
    assert_eq!(before.requests_today, 2);
    assert_eq!(before.tokens_today.total(), 2 * 13_500);
    assert_eq!(before.spend_month_micros, 2 * RECORD_COST);
    usage.shutdown();
    drop(usage);

    let usage = f.open();
    assert_eq!(usage.key_usage("laptop"), before, "per-key counters are reloaded from the daily rollups");
    let total =
        report(&usage, UsageQuery { since_ms: T0 - DAY_MS, until_ms: T0 + DAY_MS, ..UsageQuery::default() }).total;
    assert_eq!(total.requests, 2);
    assert_eq!(total.spend_micros, 2 * RECORD_COST);
    let plan = usage.with_reader(|r| r.plan_window(&PlanSubject::Account("acc_1".into()))).unwrap().unwrap();
    assert_eq!(plan.state, windows);
    assert_eq!(plan.updated_ms, T0);
    let all = usage.with_reader(|r| r.plan_windows()).unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().any(|w| w.subject == PlanSubject::OwnLogin("9f86d081".into())));
    assert_eq!(log(&usage, LogQuery::default()).items.len(), 2);
}

#[test]
fn retention_prunes_request_rows_and_then_rollups_by_the_clock() {
    let f = Fixture::new();
    let mut options = f.options();
    options.config.retention_days = 30;
    options.config.rollup_retention_days = 400;
    let usage = Usage::try_open(options).unwrap();
    usage.record(record(T0, "old"));
    usage.flush();
    let mut r = record(T0, "old-session");
    r.session = Some(session_hash("s-old"));
    usage.record(r);
    usage.flush();

    // 31 days later: the request rows and sessions are past retention, the rollups are not.
    f.clock.advance(31 * DAY_MS);
    usage.record(record(f.clock.now_ms(), "new"));
    usage.flush();
    let ids: Vec<String> = log(&usage, LogQuery::default()).items.into_iter().map(|i| i.record.request_id).collect();
    assert_eq!(ids, vec!["new"]);
    assert!(usage.with_reader(|r| r.top_sessions(0, u64::MAX / 2, 10)).unwrap().is_empty());
    let old = UsageQuery { since_ms: T0 - HOUR_MS, until_ms: T0 + HOUR_MS, ..UsageQuery::default() };
    assert_eq!(report(&usage, old.clone()).total.requests, 2, "rollups outlive the request log");

    // 401 days after T0: the old rollups go too.
    f.clock.advance(370 * DAY_MS);
    usage.flush();
    assert_eq!(report(&usage, old).total.requests, 0);
    let old_days = UsageQuery {
        since_ms: T0 - DAY_MS,
        until_ms: T0 + 2 * DAY_MS,
        group_by: GroupBy::Day,
        ..UsageQuery::default()
    };
    assert!(report(&usage, old_days).rows.is_empty(), "daily rollups are pruned as well");
}

#[test]
fn corrupt_database_is_moved_aside_and_a_fresh_one_works() {
    let f = Fixture::new();
    std::fs::write(&f.path, b"this is not an SQLite database, just garbage bytes ".repeat(200)).unwrap();
    let usage = Usage::open(f.options());
    assert!(usage.is_enabled(), "a corrupt database never turns usage off when a new one can be made");
    let aside: Vec<_> = std::fs::read_dir(f.path.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("usage.db.corrupt-"))
        .collect();
    assert_eq!(aside, vec!["usage.db.corrupt-20261130T100000Z".to_string()], "kept for inspection");
    usage.record(record(T0, "after"));
    usage.flush();
    assert_eq!(log(&usage, LogQuery::default()).items.len(), 1);
}

#[test]
fn damaged_pages_found_while_writing_are_recovered_into_a_new_database() {
    let f = Fixture::new();
    let usage = f.open();
    usage.record(record(T0, "before"));
    usage.shutdown();
    drop(usage);
    // Damage the request log's root page only: opening (header, schema, the key counters from the daily rollups)
    // still works, and the writer meets the damage on its first insert.
    let conn = rusqlite::Connection::open(&f.path).unwrap();
    let root: i64 =
        conn.query_row("SELECT rootpage FROM sqlite_schema WHERE name = 'requests'", [], |r| r.get(0)).unwrap();
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    drop(conn);
    let mut bytes = std::fs::read(&f.path).unwrap();
    let at = ((root - 1) * page_size) as usize;
    bytes[at..at + page_size as usize].fill(0xA5);
    std::fs::write(&f.path, bytes).unwrap();

    let usage = f.open();
    let corrupt_files = || {
        std::fs::read_dir(f.path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("usage.db.corrupt-") && n.ends_with('Z'))
            .count()
    };
    assert_eq!(corrupt_files(), 0, "the damage is not visible when opening");
    usage.record(record(T0 + 1, "after"));
    usage.flush();
    assert_eq!(corrupt_files(), 1, "the damaged file was moved aside by the writer");
    let ids: Vec<String> = log(&usage, LogQuery::default()).items.into_iter().map(|i| i.record.request_id).collect();
    assert_eq!(ids, vec!["after"], "the batch that met the damage is written to the new database");
    assert_eq!(usage.stats().dropped(), 0);
}

#[test]
fn a_full_queue_drops_and_counts_records_and_never_waits() {
    let f = Fixture::new();
    let stall = Arc::new(Stall::default());
    stall.close();
    let mut options = f.options();
    options.config.queue_capacity = 16;
    options.stall = Some(stall.clone());
    let usage = Usage::try_open(options).unwrap();
    // With the writer held, record() must still return at once: run it on a thread and give it a generous deadline.
    let sender = usage.clone();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for i in 0..200 {
            sender.record(record(T0 + i, &format!("r{i}")));
        }
        let _ = done_tx.send(());
    });
    done_rx.recv_timeout(Duration::from_secs(30)).expect("record() returned while the writer was stalled");
    let dropped = usage.stats().dropped_queue_full;
    assert!(dropped >= 200 - 16 - BATCH_HELD, "dropped {dropped}");
    stall.open();
    usage.flush();
    let stats = usage.stats();
    assert_eq!(stats.written + stats.dropped_queue_full, 200, "every record is stored or counted, none vanishes");
    let stored = report(&usage, UsageQuery { since_ms: T0, until_ms: T0 + HOUR_MS, ..UsageQuery::default() });
    assert_eq!(stored.total.requests, stats.written);
    // The in-memory key counters saw every request, stored or not (limits must not be dodged by a slow disk).
    assert_eq!(usage.key_usage("laptop").requests_today, 200);
}

/// Records the stalled writer may have taken off the queue before it stopped at the stall (one batch in hand).
const BATCH_HELD: u64 = 1;

#[test]
fn disabled_usage_records_nothing_and_queries_say_so() {
    let f = Fixture::new();
    let mut options = f.options();
    options.config.enabled = false;
    let usage = Usage::open(options);
    assert!(!usage.is_enabled());
    usage.record(record(T0, "x"));
    usage.flush();
    usage.shutdown();
    assert!(!f.path.exists(), "no database is created");
    assert!(matches!(usage.with_reader(|r| r.requests(&LogQuery::default())), Err(UsageError::Disabled)));
    assert_eq!(usage.stats(), UsageStats::default());
}

/// Three days of traffic over two accounts, two keys, two models and three client kinds.
fn seeded() -> (Fixture, Usage) {
    let f = Fixture::new();
    let usage = f.open();
    let day0 = T0 - T0 % DAY_MS;
    let mut n = 0;
    for day in 0..3u64 {
        for hour in [1u64, 10, 23] {
            for i in 0..4u64 {
                let at = day0 + day * DAY_MS + hour * HOUR_MS + i * 60_000;
                let mut r = record(at, &format!("req_{n}"));
                n += 1;
                if i % 2 == 1 {
                    r.account_id = Some("acc_2".into());
                    r.account_name = Some("max".into());
                    r.cost_basis = CostBasis::ApiEquivalent;
                }
                if i == 3 {
                    r.client_key = Some("ci".into());
                    r.model_answered = Some("claude-haiku-4-5-20251001".into());
                    r.client_kind = ClientKind::Openai;
                    r.route = Route::ChatCompletions;
                }
                if i == 2 {
                    r.client_kind = ClientKind::AnthropicSdk;
                    r.status = 529;
                    r.outcome = Outcome::UpstreamError;
                    r.first_byte_ms = None;
                    r.attempts.insert(
                        0,
                        Attempt {
                            account_id: "acc_2".into(),
                            status: Some(429),
                            failover: Some(FailoverReason::RateLimited),
                            ms: 5,
                        },
                    );
                }
                r.session = Some(session_hash(&format!("session-{day}-{}", i % 2)));
                usage.record(r);
            }
        }
    }
    usage.flush();
    (f, usage)
}

#[test]
fn usage_reports_group_by_every_dimension_and_agree_on_totals() {
    let (_f, usage) = seeded();
    let day0 = T0 - T0 % DAY_MS;
    let all = UsageQuery { since_ms: day0, until_ms: day0 + 3 * DAY_MS, ..UsageQuery::default() };
    let total = report(&usage, all.clone()).total;
    assert_eq!(total.requests, 36);
    assert_eq!(total.upstream_errors, 9);
    assert!((total.error_rate - 0.25).abs() < 1e-9);
    assert_eq!(total.failovers, 9);
    assert_eq!(total.avg_latency_ms, 1000.0);
    assert_eq!(total.avg_gateway_ms, 10.0);
    assert_eq!(total.avg_first_byte_ms, 300.0);
    for group_by in
        [GroupBy::Account, GroupBy::ClientKey, GroupBy::Model, GroupBy::ClientKind, GroupBy::Hour, GroupBy::Day]
    {
        let r = report(&usage, UsageQuery { group_by, ..all.clone() });
        assert_eq!(r.total, total, "{group_by:?} rows add up to the total");
    }
    let by_account = report(&usage, UsageQuery { group_by: GroupBy::Account, ..all.clone() });
    let keys: Vec<(&str, Option<&str>, u64)> =
        by_account.rows.iter().map(|r| (r.key.as_str(), r.name.as_deref(), r.totals.requests)).collect();
    assert_eq!(keys, vec![("acc_1", Some("work"), 18), ("acc_2", Some("max"), 18)]);
    assert!(by_account.rows[0].totals.spend_micros > 0 && by_account.rows[0].totals.equivalent_micros == 0);
    assert!(by_account.rows[1].totals.equivalent_micros > 0 && by_account.rows[1].totals.spend_micros == 0);
    let by_kind = report(&usage, UsageQuery { group_by: GroupBy::ClientKind, ..all.clone() });
    let kinds: Vec<(&str, u64)> = by_kind.rows.iter().map(|r| (r.key.as_str(), r.totals.requests)).collect();
    assert_eq!(kinds, vec![("claude_code", 18), ("anthropic_sdk", 9), ("openai", 9)]);
    let by_day = report(&usage, UsageQuery { group_by: GroupBy::Day, ..all.clone() });
    let days: Vec<(String, u64)> = by_day.rows.iter().map(|r| (r.key.clone(), r.totals.requests)).collect();
    assert_eq!(days, (0..3).map(|d| ((day0 + d * DAY_MS).to_string(), 12)).collect::<Vec<_>>());
    let by_hour = report(&usage, UsageQuery { group_by: GroupBy::Hour, ..all.clone() });
    assert_eq!(by_hour.rows.len(), 9);
    assert_eq!(by_hour.rows[0].key, (day0 + HOUR_MS).to_string());
    // Filters.
    let ci = report(&usage, UsageQuery { client_key: Some("ci".into()), group_by: GroupBy::Model, ..all.clone() });
    assert_eq!(ci.rows.len(), 1);
    assert_eq!((ci.rows[0].key.as_str(), ci.total.requests), ("claude-haiku-4-5-20251001", 9));
    let sdk = report(&usage, UsageQuery { client_kind: Some(ClientKind::AnthropicSdk), ..all.clone() });
    assert_eq!((sdk.total.requests, sdk.total.upstream_errors), (9, 9));
    // A range with partial days at both ends reads the whole days from the daily table and the edges by hour:
    // day 0 from 10:00 (2 hours of traffic) to day 2 before 11:00 (2 hours): 2 + 3 + 2 hours × 4 requests.
    let partial = UsageQuery { since_ms: day0 + 10 * HOUR_MS, until_ms: day0 + 2 * DAY_MS + 10 * HOUR_MS + 1, ..all };
    assert_eq!(report(&usage, partial.clone()).total.requests, 28);
    let hourly_only = report(&usage, UsageQuery { group_by: GroupBy::Hour, ..partial });
    assert_eq!(hourly_only.total.requests, 28);
}

#[test]
fn top_sessions_and_today_summary() {
    let (_f, usage) = seeded();
    let day0 = T0 - T0 % DAY_MS;
    let top = usage.with_reader(|r| r.top_sessions(day0, day0 + 3 * DAY_MS, 3)).unwrap();
    assert_eq!(top.len(), 3);
    assert!(
        top.windows(2)
            .all(|w| w[0].spend_micros + w[0].equivalent_micros >= w[1].spend_micros + w[1].equivalent_micros)
    );
    assert_eq!(top[0].requests, 6);
    assert_eq!(top[0].session.len(), 16);
    // Only day 1's sessions are active on day 1.
    let day1 = usage.with_reader(|r| r.top_sessions(day0 + DAY_MS, day0 + 2 * DAY_MS, 10)).unwrap();
    assert_eq!(day1.len(), 2);
    // The manual clock is at T0 (day 0, 10:00): today so far has the 01:00 and 10:00 hours.
    let today = usage.summary_today().unwrap();
    assert_eq!(today.requests, 8);
    assert_eq!(today.upstream_errors, 2);
}

#[test]
fn request_log_pages_newest_first_with_filters_and_follows() {
    let (_f, usage) = seeded();
    let first = log(&usage, LogQuery { limit: Some(10), ..LogQuery::default() });
    assert_eq!(first.items.len(), 10);
    assert_eq!(first.items[0].record.request_id, "req_35", "newest first");
    let mut seen: Vec<String> = first.items.iter().map(|i| i.record.request_id.clone()).collect();
    let mut cursor = first.next_cursor.clone();
    while let Some(c) = cursor {
        let page = log(&usage, LogQuery { limit: Some(10), cursor: Some(c), ..LogQuery::default() });
        seen.extend(page.items.iter().map(|i| i.record.request_id.clone()));
        cursor = page.next_cursor;
    }
    assert_eq!(seen.len(), 36);
    assert_eq!(seen.last().map(String::as_str), Some("req_0"));

    let errors = log(&usage, LogQuery { status: Some(StatusClass::ServerError), ..LogQuery::default() });
    assert_eq!(errors.items.len(), 9);
    let failed = &errors.items[0].record;
    assert_eq!(failed.attempts.len(), 2);
    assert_eq!(failed.attempts[0].failover, Some(FailoverReason::RateLimited));
    let ci = log(
        &usage,
        LogQuery { client_key: Some("ci".into()), account_id: Some("acc_2".into()), ..LogQuery::default() },
    );
    assert_eq!(ci.items.len(), 9);
    assert!(
        ci.items.iter().all(|i| i.record.client_kind == ClientKind::Openai && i.record.route == Route::ChatCompletions)
    );
    let model = log(&usage, LogQuery { model: Some("claude-haiku-4-5-20251001".into()), ..LogQuery::default() });
    assert_eq!(model.items.len(), 9);
    let kind = log(&usage, LogQuery { client_kind: Some(ClientKind::AnthropicSdk), ..LogQuery::default() });
    assert_eq!(kind.items.len(), 9);
    let day0 = T0 - T0 % DAY_MS;
    let ranged = log(
        &usage,
        LogQuery { since_ms: Some(day0 + DAY_MS), until_ms: Some(day0 + 2 * DAY_MS), ..LogQuery::default() },
    );
    assert_eq!(ranged.items.len(), 12);

    // Following: nothing new after the newest cursor, then exactly the new request, oldest first.
    let newest = first.newest_cursor.clone();
    let empty = log(&usage, LogQuery { after: newest.clone(), ..LogQuery::default() });
    assert!(empty.items.is_empty());
    assert_eq!(empty.newest_cursor, newest);
    usage.record(record(T0, "req_new"));
    usage.flush();
    let follow = log(&usage, LogQuery { after: newest, ..LogQuery::default() });
    assert_eq!(follow.items.len(), 1);
    assert_eq!(follow.items[0].record.request_id, "req_new");

    let bad = usage.with_reader(|r| r.requests(&LogQuery { cursor: Some("nonsense!".into()), ..LogQuery::default() }));
    assert!(matches!(bad, Err(UsageError::BadCursor(_))));
    // JSON shape the admin API returns (docs/admin-api.yaml), and back.
    let json = serde_json::to_value(&first).unwrap();
    assert!(json["requests"][0]["cursor"].is_string());
    assert_eq!(json["requests"][0]["client_kind"], "openai");
    assert_eq!(json["requests"][0]["outcome"], "ok");
    assert_eq!(serde_json::from_value::<LogPage>(json).unwrap(), first);
}

#[tokio::test(flavor = "current_thread")]
async fn queries_run_off_the_async_runtime() {
    let (_f, usage) = seeded();
    let q = UsageQuery { since_ms: 0, until_ms: T0 + 3 * DAY_MS, group_by: GroupBy::Model, ..UsageQuery::default() };
    let report = usage.query(move |r| r.usage(&q)).await.unwrap();
    assert_eq!(report.total.requests, 36);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["by"], "model");
    assert!(json["rows"][0]["input_tokens"].is_u64());
}
