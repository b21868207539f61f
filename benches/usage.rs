//! Usage store bars (issue #12): `cargo bench --bench usage` (release build; ~2 minutes, of which ~1.5 generating
//! 3 million requests).
//!
//! (a) `Usage::record` on the request path: per-call cost when the record is queued and when the queue is full
//!     (dropped and counted), and a burst of 20,000 records at full speed against a stalled writer, a slow writer
//!     (50 ms per batch) and the normal writer: the burst must finish quickly and every record must be either
//!     written or counted as dropped.
//! (b) Queries over 30 days × 100,000 requests/day generated through the store's own insert path
//!     (`Writer::write_batch`): each must answer in ≤ 50 ms.
//!
//! Without `--bench` (e.g. `cargo test --benches`) it runs a tiny smoke version. Scale with `USAGE_BENCH_DAYS` and
//! `USAGE_BENCH_PER_DAY`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use llm_gateway::clock::ManualClock;
use llm_gateway::config::UsageConfig;
use llm_gateway::usage::write::{DAY_MS, HOUR_MS};
use llm_gateway::usage::{
    Attempt, ClientKind, CostBasis, FailoverReason, GroupBy, KeyCounters, LogQuery, Outcome, PriceTable, Reader,
    RequestRecord, Route, Stall, StatusClass, Tokens, Usage, UsageOptions, UsageQuery, Writer, session_hash,
};

/// 2026-11-30T10:00:00Z: "now" for the generated data (the last day is today).
const NOW: u64 = 1_796_032_800_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic, good enough for spreading synthetic traffic.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const ACCOUNTS: [(&str, &str, CostBasis); 4] = [
    ("acc_api_1", "team-key", CostBasis::Spend),
    ("acc_api_2", "backup-key", CostBasis::Spend),
    ("acc_max_1", "alice-max", CostBasis::ApiEquivalent),
    ("acc_max_2", "bob-max", CostBasis::ApiEquivalent),
];
const KEYS: [&str; 8] = ["alice", "bob", "carol", "dave", "ci", "ide", "batch", "eve"];
const MODELS: [&str; 5] =
    ["claude-sonnet-5", "claude-opus-5-5", "claude-haiku-4-5-20251001", "claude-opus-4-8", "claude-sonnet-5-5"];

fn synthetic(rng: &mut Rng, at: u64, n: u64, prices: &PriceTable) -> RequestRecord {
    let kind = [ClientKind::ClaudeCode, ClientKind::ClaudeCode, ClientKind::AnthropicSdk, ClientKind::Openai]
        [rng.below(4) as usize];
    let route = if kind == ClientKind::Openai { Route::ChatCompletions } else { Route::Messages };
    let mut r = RequestRecord::new(at, format!("req_gw_{n:024x}"), route, kind);
    let (id, name, basis) = ACCOUNTS[rng.below(4) as usize];
    r.account_id = Some(id.into());
    r.account_name = Some(name.into());
    r.cost_basis = basis;
    r.client_key = Some(KEYS[rng.below(8) as usize].into());
    let model = MODELS[rng.below(5) as usize];
    r.model_requested = Some(model.into());
    r.model_answered = Some(model.into());
    let roll = rng.below(100);
    (r.status, r.outcome) = match roll {
        0 => (400, Outcome::ClientError),
        1 | 2 => (529, Outcome::UpstreamError),
        3 => (200, Outcome::ClientCancelled),
        _ => (200, Outcome::Ok),
    };
    r.stream = kind == ClientKind::ClaudeCode;
    r.stop_reason = Some("end_turn".into());
    r.latency_ms = 500 + rng.below(30_000);
    r.first_byte_ms = Some(200 + rng.below(2000));
    r.upstream_ms = r.latency_ms - 1;
    r.attempts = vec![Attempt { account_id: id.into(), status: Some(r.status), failover: None, ms: 300 }];
    if roll == 5 {
        r.attempts.insert(
            0,
            Attempt {
                account_id: "acc_api_2".into(),
                status: Some(429),
                failover: Some(FailoverReason::RateLimited),
                ms: 4,
            },
        );
    }
    r.tokens = Tokens {
        input: 1 + rng.below(3000),
        output: 10 + rng.below(4000),
        cache_creation: rng.below(20_000),
        cache_read: rng.below(150_000),
        cache_creation_1h: 0,
    };
    // ~20 requests per session: Claude Code sessions make many calls.
    r.session = Some(session_hash(&format!("session-{}", n / 20)));
    r.cost_micros = prices.cost_micros(model, &r.tokens);
    r
}

/// This thread's (voluntary, involuntary) context switches so far (Linux; zeros elsewhere). A voluntary switch is
/// the thread blocking (a lock, a full channel, I/O); an involuntary one is the scheduler preempting it.
fn context_switches() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    let field =
        |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    (field("voluntary_ctxt_switches:"), field("nonvoluntary_ctxt_switches:"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn us(d: Duration) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn open(dir: &std::path::Path, name: &str, queue: usize, stall: Option<Arc<Stall>>) -> Usage {
    let config = UsageConfig { queue_capacity: queue, ..UsageConfig::default() };
    Usage::try_open(UsageOptions { path: dir.join(name), config, clock: Arc::new(ManualClock::new(NOW)), stall })
        .expect("usage store opens")
}

fn record_path(dir: &std::path::Path, burst: u64) {
    println!("## (a) record() on the request path\n");
    let prices = PriceTable::default();
    let mut rng = Rng(7);
    let records: Vec<RequestRecord> = (0..burst).map(|n| synthetic(&mut rng, NOW, n, &prices)).collect();

    // Per-call cost, queued and dropped: a held writer and a queue larger than the run, then a full queue. The
    // records are cloned beforehand so only `record()` is timed.
    let stall = Arc::new(Stall::default());
    stall.close();
    let usage = open(dir, "percall.db", burst as usize + 16, Some(stall.clone()));
    let copies = records.clone();
    let started = Instant::now();
    for r in copies {
        usage.record(r);
    }
    let queued = started.elapsed();
    let copies = records.clone();
    let started = Instant::now();
    for r in copies {
        usage.record(r);
    }
    let dropped = started.elapsed();
    let per = |d: Duration| us(d / burst as u32);
    println!("| path | mean per call |\n|---|---|");
    println!("| queued (priced, key counters, boxed, try_send) | {} |", per(queued));
    println!("| queue full (priced, key counters, dropped and counted) | {} |\n", per(dropped));
    // The held writer took at most one record off the queue: 16 or 17 more fit.
    assert!(usage.stats().dropped_queue_full >= burst - 17);
    stall.open();
    usage.shutdown();

    println!("Burst of {burst} records at full speed, queue 8192 (the default):\n");
    println!(
        "| writer | burst took | per call p50 / p99 / p99.9 / max | calls > 100 µs | context switches: blocked / preempted | written | dropped (counted) |\n|---|---|---|---|---|---|---|"
    );
    for (label, closed, delay) in [
        ("stalled (held)", true, Duration::ZERO),
        ("slow (50 ms per batch)", false, Duration::from_millis(50)),
        ("normal", false, Duration::ZERO),
    ] {
        let stall = Arc::new(Stall::default());
        *stall.delay.lock().unwrap() = delay;
        if closed {
            stall.close();
        }
        let usage = open(dir, &format!("burst-{}.db", label.len()), 8192, Some(stall.clone()));
        let mut calls = Vec::with_capacity(records.len());
        let batch: Vec<RequestRecord> = records.clone();
        let switches = context_switches();
        let started = Instant::now();
        for r in batch {
            let t = Instant::now();
            usage.record(r);
            calls.push(t.elapsed());
        }
        let took = started.elapsed();
        let after = context_switches();
        let (blocked, preempted) = (after.0 - switches.0, after.1 - switches.1);
        let slow_calls = calls.iter().filter(|d| **d > Duration::from_micros(100)).count();
        stall.open();
        *stall.delay.lock().unwrap() = Duration::ZERO;
        usage.flush();
        let stats = usage.stats();
        assert_eq!(stats.written + stats.dropped(), burst, "every record is written or counted");
        calls.sort_unstable();
        println!(
            "| {label} | {} | {} / {} / {} / {} | {slow_calls} | {blocked} / {preempted} | {} | {} |",
            ms(took),
            us(percentile(&calls, 0.5)),
            us(percentile(&calls, 0.99)),
            us(percentile(&calls, 0.999)),
            us(*calls.last().unwrap()),
            stats.written,
            stats.dropped()
        );
        usage.shutdown();
    }
    // Control: the same timed loop around a plain clone of a record. Its maximum is what the machine alone adds
    // (preemption on a shared 2-core host), not the store.
    let mut calls = Vec::with_capacity(records.len());
    let switches = context_switches();
    for r in &records {
        let t = Instant::now();
        std::hint::black_box(r.clone());
        calls.push(t.elapsed());
    }
    let after = context_switches();
    let slow_calls = calls.iter().filter(|d| **d > Duration::from_micros(100)).count();
    calls.sort_unstable();
    println!(
        "| control: same loop, `clone()` only | | {} / {} / {} / {} | {slow_calls} | {} / {} | | |",
        us(percentile(&calls, 0.5)),
        us(percentile(&calls, 0.99)),
        us(percentile(&calls, 0.999)),
        us(*calls.last().unwrap()),
        after.0 - switches.0,
        after.1 - switches.1
    );
    println!();

    // The real writer's sustained rate (transactions of ≤ 500 records, rollups and sessions maintained): a queue
    // big enough to hold the whole run, then a flush.
    let n = burst * 5;
    let mut rng = Rng(11);
    let many: Vec<RequestRecord> = (0..n).map(|i| synthetic(&mut rng, NOW - i * 50, i, &prices)).collect();
    let usage = open(dir, "throughput.db", n as usize + 16, None);
    let started = Instant::now();
    for r in many {
        usage.record(r);
    }
    usage.flush();
    let took = started.elapsed();
    assert_eq!(usage.stats().written, n);
    println!(
        "Writer throughput: {n} records queued and written (batches of ≤ 500) in {} = {:.0} records/s.\n",
        ms(took),
        n as f64 / took.as_secs_f64()
    );
    usage.shutdown();
}

fn generate(path: &std::path::Path, days: u64, per_day: u64) -> Duration {
    let prices = PriceTable::default();
    let mut writer = Writer::open(path).expect("writer opens");
    let mut rng = Rng(42);
    let start_day = NOW - NOW % DAY_MS - (days - 1) * DAY_MS;
    let started = Instant::now();
    let chunk = 5000;
    let mut batch = Vec::with_capacity(chunk);
    let mut n = 0;
    for day in 0..days {
        let step = DAY_MS / per_day;
        for i in 0..per_day {
            let at = start_day + day * DAY_MS + i * step;
            batch.push(synthetic(&mut rng, at, n, &prices));
            n += 1;
            if batch.len() == chunk {
                writer.write_batch(&batch, &[]).expect("batch written");
                batch.clear();
            }
        }
    }
    writer.write_batch(&batch, &[]).expect("batch written");
    started.elapsed()
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, Duration, T) {
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        last = Some(f());
        times.push(t.elapsed());
    }
    times.sort_unstable();
    (percentile(&times, 0.5), *times.last().unwrap(), last.unwrap())
}

fn queries(dir: &std::path::Path, days: u64, per_day: u64) {
    println!("## (b) queries over {days} days × {per_day} requests/day\n");
    // USAGE_BENCH_DB keeps the generated database between runs (generated when missing).
    let kept = std::env::var("USAGE_BENCH_DB").ok().map(std::path::PathBuf::from);
    let path = kept.clone().unwrap_or_else(|| dir.join("big.db"));
    if kept.is_none() || !path.exists() {
        let generation = generate(&path, days, per_day);
        println!(
            "Generated {} requests through `Writer::write_batch` (5,000 per transaction) in {:.1} s ({:.0} records/s).\n",
            days * per_day,
            generation.as_secs_f64(),
            (days * per_day) as f64 / generation.as_secs_f64(),
        );
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(format!("{}-wal", path.display())).map(|m| m.len()).unwrap_or(0);
    println!("Database {:.0} MB.\n", size as f64 / 1e6);
    let reader = Reader::open(&path).expect("reader opens");
    let month = UsageQuery { since_ms: NOW - days * DAY_MS, until_ms: NOW, ..UsageQuery::default() };
    let day = UsageQuery { since_ms: NOW - DAY_MS, until_ms: NOW, ..UsageQuery::default() };
    let week = UsageQuery { since_ms: NOW - 7 * DAY_MS, until_ms: NOW, ..UsageQuery::default() };
    let runs = 7;
    println!("| query | median | max of {runs} | result |\n|---|---|---|---|");
    let report = |name: &str, f: &mut dyn FnMut() -> String| {
        let (median, max, result) = time(runs, f);
        let flag = if max > Duration::from_millis(50) { " ⚠ over 50 ms" } else { "" };
        println!("| {name} | {} | {}{flag} | {result} |", ms(median), ms(max));
    };
    for (label, q) in [("30 days", &month), ("7 days", &week), ("24 h", &day)] {
        for group_by in
            [GroupBy::Total, GroupBy::Account, GroupBy::ClientKey, GroupBy::Model, GroupBy::ClientKind, GroupBy::Day]
        {
            let q = UsageQuery { group_by, ..q.clone() };
            report(&format!("usage {label} by {group_by:?}"), &mut || {
                let r = reader.usage(&q).unwrap();
                format!("{} rows, {} requests", r.rows.len(), r.total.requests)
            });
        }
    }
    for (label, q) in [("24 h", &day), ("7 days", &week)] {
        let q = UsageQuery { group_by: GroupBy::Hour, ..q.clone() };
        report(&format!("usage {label} by Hour"), &mut || format!("{} rows", reader.usage(&q).unwrap().rows.len()));
    }
    let filtered = UsageQuery { client_key: Some("ci".into()), group_by: GroupBy::Model, ..month.clone() };
    report("usage 30 days, key `ci`, by Model", &mut || {
        format!("{} rows", reader.usage(&filtered).unwrap().rows.len())
    });
    report("summary today", &mut || {
        format!("{} requests", reader.summary_since(NOW - NOW % DAY_MS, NOW).unwrap().requests)
    });
    report("top 10 sessions 24 h", &mut || {
        format!("{} rows", reader.top_sessions(NOW - DAY_MS, NOW, 10).unwrap().len())
    });
    report("top 10 sessions 30 days", &mut || {
        format!("{} rows", reader.top_sessions(NOW - days * DAY_MS, NOW, 10).unwrap().len())
    });
    report("request log, first page (50)", &mut || {
        format!("{} rows", reader.requests(&LogQuery::default()).unwrap().items.len())
    });
    let mut cursor = None;
    for _ in 0..100 {
        cursor = reader.requests(&LogQuery { cursor, ..LogQuery::default() }).unwrap().next_cursor;
    }
    let deep = LogQuery { cursor: cursor.clone(), ..LogQuery::default() };
    report("request log, page 101 (cursor)", &mut || format!("{} rows", reader.requests(&deep).unwrap().items.len()));
    for (name, q) in [
        ("request log, key `ci`", LogQuery { client_key: Some("ci".into()), ..LogQuery::default() }),
        ("request log, account", LogQuery { account_id: Some("acc_max_2".into()), ..LogQuery::default() }),
        ("request log, model", LogQuery { model: Some("claude-opus-4-8".into()), ..LogQuery::default() }),
        ("request log, 5xx", LogQuery { status: Some(StatusClass::ServerError), ..LogQuery::default() }),
        ("request log, 4xx", LogQuery { status: Some(StatusClass::ClientError), ..LogQuery::default() }),
        ("request log, OpenAI clients", LogQuery { client_kind: Some(ClientKind::Openai), ..LogQuery::default() }),
        (
            "request log, one hour 10 days ago",
            LogQuery {
                since_ms: Some(NOW - 10 * DAY_MS),
                until_ms: Some(NOW - 10 * DAY_MS + HOUR_MS),
                ..LogQuery::default()
            },
        ),
    ] {
        report(name, &mut || format!("{} rows", reader.requests(&q).unwrap().items.len()));
    }
    let writer = Writer::open(&path).expect("writer opens");
    report("key counters load (start-up)", &mut || {
        let c = KeyCounters::load(writer.connection(), NOW).unwrap();
        format!("`alice` today: {} requests", c.get("alice", NOW).requests_today)
    });
    println!();
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let env = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let (days, per_day, burst) = if bench {
        (env("USAGE_BENCH_DAYS", 30), env("USAGE_BENCH_PER_DAY", 100_000), 20_000)
    } else {
        (2, 2_000, 2_000)
    };
    // /var/tmp: the generated database is ~1 GB at full scale, more than a tmpfs /tmp may hold.
    let dir =
        tempfile::tempdir_in(std::env::var("USAGE_BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into())).expect("temp dir");
    println!("# usage store benchmark ({} build)\n", if cfg!(debug_assertions) { "debug" } else { "release" });
    record_path(dir.path(), burst);
    queries(dir.path(), days, per_day);
}
