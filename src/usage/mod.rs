//! Usage you can trust: one [`RequestRecord`] per client request, stored in an embedded SQLite database with
//! hourly and daily rollups, per-session totals, plan windows and per-client-key counters; estimated cost from a
//! dated price table; Prometheus metrics.
//!
//! - The request path calls [`Usage::record`]: it prices the record, updates the in-memory key counters and hands
//!   it to the writer with a non-blocking `try_send`. It never waits on the disk: when the bounded queue is full,
//!   the record is dropped and counted ([`UsageStats::dropped_queue_full`]).
//! - One writer thread ([`writer`]) drains the queue every 200 ms into transactions, maintains the rollups, prunes
//!   by the gateway's clock and replaces a database that turns out corrupt. It never blocks on the queue, so a
//!   sender never waits for it, not even for a lock.
//! - Queries ([`query::Reader`]) run on their own read-only connection ([`Usage::query`] moves them off the async
//!   runtime); WAL lets them read while the writer writes.
//! - Opening never fails the gateway: a corrupt or unreadable file is moved aside (`usage.db.corrupt-<time>`) and a
//!   new one started; if even that fails, usage is off with a warning. `usage.enabled: false` gives a no-op handle.

pub mod counters;
pub mod db;
mod json;
pub mod log;
pub mod metrics;
pub mod prices;
pub mod query;
pub mod rate;
pub mod record;
pub mod tap;
pub mod write;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::Sender;
use tokio::sync::mpsc::error::TrySendError;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

pub use counters::{KeyCounters, KeyUsage};
pub(crate) use json::parse_time;
pub use log::{LogPage, LogQuery, LoggedRequest, StatusClass};
pub use metrics::Metrics;
pub use prices::PriceTable;
pub use query::{GroupBy, PlanWindow, Reader, SessionRow, UsageQuery, UsageReport, UsageRow, UsageTotals};
pub use rate::RequestRate;
pub use record::{Attempt, ClientKind, CostBasis, FailoverReason, Outcome, RequestRecord, Route, Tokens, session_hash};
pub use tap::{Seen, UsageTap};
pub use write::{PlanUpdate, Writer};
pub use writer::Stall;

use crate::clock::Clock;
use crate::config::UsageConfig;
use writer::{Msg, Stats, WriterSetup};

/// Why the usage store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// Opening or preparing the database failed.
    #[error("usage database {}: {source}", path.display())]
    Db {
        /// The file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A query failed.
    #[error("usage query failed: {0}")]
    Query(#[from] rusqlite::Error),
    /// A file-system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file was written by a newer build; it is left alone.
    #[error(
        "usage database {} has schema version {found}, newer than this build's {known}: it was written by a newer \
         llm-gateway. Usage recording is off; upgrade, or move the file away to start a new one",
        path.display()
    )]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
        /// This build's.
        known: u32,
    },
    /// A request-log cursor that this store did not hand out.
    #[error("invalid cursor `{0}`: pass a cursor from an earlier page")]
    BadCursor(String),
    /// Recording is off (`usage.enabled: false`, or the database could not be opened).
    #[error("usage recording is off")]
    Disabled,
    /// The blocking query task failed.
    #[error("usage query task failed: {0}")]
    Task(String),
}

impl UsageError {
    pub(crate) fn db(path: &Path, source: rusqlite::Error) -> Self {
        Self::Db { path: path.to_path_buf(), source }
    }

    fn is_corruption(&self) -> bool {
        matches!(self, Self::Db { source, .. } | Self::Query(source) if db::is_corruption(source))
    }
}

/// Whose rate-limit windows a plan-window row holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum PlanSubject {
    /// A configured account, by id.
    Account(String),
    /// A client's own Claude login forwarded by the gateway, by a hash of its token (never the token).
    OwnLogin(String),
}

impl PlanSubject {
    /// The database key: `account:<id>` or `login:<hash>`.
    pub fn key(&self) -> String {
        match self {
            Self::Account(id) => format!("account:{id}"),
            Self::OwnLogin(hash) => format!("login:{hash}"),
        }
    }

    /// The subject of a database key.
    pub fn from_key(key: &str) -> Option<Self> {
        if let Some(id) = key.strip_prefix("account:") {
            Some(Self::Account(id.to_string()))
        } else {
            key.strip_prefix("login:").map(|h| Self::OwnLogin(h.to_string()))
        }
    }
}

/// Where the usage database is, given the config file's path: `usage.path` (relative to the config's directory),
/// else `usage.db` beside the config.
pub fn database_path(config_path: &Path, config: &UsageConfig) -> PathBuf {
    let dir = config_path.parent().unwrap_or(Path::new("."));
    match &config.path {
        Some(p) => dir.join(p),
        None => dir.join("usage.db"),
    }
}

/// What [`Usage::open`] needs.
#[derive(Debug, Clone)]
pub struct UsageOptions {
    /// The database file (see [`database_path`]).
    pub path: PathBuf,
    /// `usage:` settings.
    pub config: UsageConfig,
    /// The gateway's clock (retention, day and month boundaries).
    pub clock: Arc<dyn Clock>,
    /// Test and benchmark hook: hold or slow the writer.
    #[doc(hidden)]
    pub stall: Option<Arc<Stall>>,
}

impl UsageOptions {
    /// Options for the database beside `config_path`.
    pub fn new(config_path: &Path, config: &UsageConfig, clock: Arc<dyn Clock>) -> Self {
        Self { path: database_path(config_path, config), config: config.clone(), clock, stall: None }
    }
}

/// Recording counters for status and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsageStats {
    /// Whether records are being stored.
    pub enabled: bool,
    /// The database file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Records written.
    pub written: u64,
    /// Records dropped because the writer's queue was full.
    pub dropped_queue_full: u64,
    /// Records lost because the database could not be written.
    pub dropped_write_error: u64,
}

impl UsageStats {
    /// Every record not stored.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full + self.dropped_write_error
    }
}

/// The usage store's handle: cheap to clone. Without a database (`usage.enabled: false`, or one that could not be
/// opened) it still keeps the per-key day and month counters in memory, so client-key limits hold (until a
/// restart); [`Usage::disabled`] does nothing at all.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    counters: KeyCounters,
    prices: ArcSwap<PriceTable>,
    clock: Arc<dyn Clock>,
    /// The database and its writer; none when recording is off.
    store: Option<Store>,
}

#[derive(Debug)]
struct Store {
    tx: Sender<Msg>,
    stats: Arc<Stats>,
    reader: Mutex<Option<(u64, Reader)>>,
    path: PathBuf,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The writer thread, to wake it for flush and shutdown.
    writer_thread: std::thread::Thread,
}

impl Usage {
    /// A handle that records and counts nothing.
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// A handle without a database: records are priced and counted per key in memory only.
    pub fn in_memory(config: &UsageConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Some(Arc::new(Inner {
                counters: KeyCounters::default(),
                prices: ArcSwap::from_pointee(PriceTable::new(&config.prices)),
                clock,
                store: None,
            })),
        }
    }

    /// Opens the store and starts its writer. Never fails: `usage.enabled: false` gives an in-memory handle (see
    /// [`Usage::in_memory`]), and so does a database that cannot be opened even after moving a corrupt one aside
    /// (logged as a warning). Blocking (file I/O): call it from `spawn_blocking` on an async runtime.
    pub fn open(options: UsageOptions) -> Self {
        if !options.config.enabled {
            return Self::in_memory(&options.config, options.clock);
        }
        let (path, config, clock) = (options.path.clone(), options.config.clone(), options.clock.clone());
        match Self::try_open(options) {
            Ok(usage) => usage,
            Err(e) => {
                tracing::warn!(path = %path.display(), "usage recording is off: {e}");
                Self::in_memory(&config, clock)
            }
        }
    }

    /// Like [`open`](Self::open), but says why it failed.
    pub fn try_open(options: UsageOptions) -> Result<Self, UsageError> {
        let UsageOptions { path, config, clock, stall } = options;
        let (writer, counters) = match open_and_load(&path, &*clock) {
            Ok(v) => v,
            Err(e) if matches!(e, UsageError::NewerSchema { .. }) || !path.exists() => return Err(e),
            Err(e) => {
                tracing::error!(
                    path = %path.display(),
                    "usage database is corrupt or unreadable ({e}); moving it aside and starting a new one"
                );
                let moved = db::move_aside(&path, clock.now_ms())
                    .map_err(|source| UsageError::Io { path: path.clone(), source })?;
                tracing::error!(from = %path.display(), to = %moved.display(), "unreadable usage database moved aside");
                open_and_load(&path, &*clock)?
            }
        };
        let (tx, rx) = tokio::sync::mpsc::channel(config.queue_capacity);
        let stats = Arc::new(Stats::default());
        let setup = WriterSetup {
            path: path.clone(),
            writer,
            clock: clock.clone(),
            raw_days: config.retention_days,
            rollup_days: config.rollup_retention_days,
            stats: stats.clone(),
            stall,
        };
        let handle = std::thread::Builder::new()
            .name("usage-writer".into())
            .spawn(move || writer::run(setup, rx))
            .map_err(|source| UsageError::Io { path: path.clone(), source })?;
        let writer_thread = handle.thread().clone();
        Ok(Self {
            inner: Some(Arc::new(Inner {
                counters,
                prices: ArcSwap::from_pointee(PriceTable::new(&config.prices)),
                clock,
                store: Some(Store {
                    tx,
                    stats,
                    reader: Mutex::new(None),
                    path,
                    writer: Mutex::new(Some(handle)),
                    writer_thread,
                }),
            })),
        })
    }

    fn store(&self) -> Option<&Store> {
        self.inner.as_deref().and_then(|i| i.store.as_ref())
    }

    /// Whether records are being stored.
    pub fn is_enabled(&self) -> bool {
        self.store().is_some()
    }

    /// The database file, when enabled.
    pub fn path(&self) -> Option<&Path> {
        self.store().map(|s| s.path.as_path())
    }

    /// Replaces the price overrides (config reload).
    pub fn set_prices(&self, config: &UsageConfig) {
        if let Some(inner) = &self.inner {
            inner.prices.store(Arc::new(PriceTable::new(&config.prices)));
        }
    }

    /// The price table in force (the built-in one when disabled).
    pub fn prices(&self) -> Arc<PriceTable> {
        match &self.inner {
            Some(inner) => inner.prices.load_full(),
            None => Arc::new(PriceTable::default()),
        }
    }

    /// Records a finished request: fills in `cost_micros`, adds it to the key counters and queues it for the
    /// writer. Never blocks: with the queue full the record is dropped and counted.
    pub fn record(&self, mut record: RequestRecord) {
        self.price(&mut record);
        self.record_priced(record);
    }

    /// Fills in a record's estimated cost from the price table (what [`record`](Self::record) does first).
    pub fn price(&self, record: &mut RequestRecord) {
        if let Some(inner) = &self.inner {
            record.cost_micros = record.model().and_then(|m| inner.prices.load().cost_micros(m, &record.tokens));
        }
    }

    /// [`record`](Self::record) for a record [`price`](Self::price) has priced already.
    pub fn record_priced(&self, record: RequestRecord) {
        let Some(inner) = &self.inner else {
            return;
        };
        inner.counters.add(&record);
        let Some(store) = &inner.store else {
            return;
        };
        match store.tx.try_send(Msg::Record(Box::new(record))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                store.stats.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Closed(_)) => {
                store.stats.dropped_write_error.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Keeps the latest rate-limit state of an account or own login (e.g. `RateWindows` as JSON), so status and
    /// the UI show it right after a restart. Never blocks; coalesced per subject by the writer.
    pub fn save_plan_window(&self, subject: PlanSubject, state: serde_json::Value) {
        let (Some(inner), Some(store)) = (&self.inner, self.store()) else {
            return;
        };
        let update = PlanUpdate { subject, state, at_ms: inner.clock.now_ms() };
        if store.tx.try_send(Msg::Plan(Box::new(update))).is_err() {
            tracing::debug!("usage queue full; plan-window update skipped (the next response carries it again)");
        }
    }

    /// A client key's usage today and this month (UTC), from memory: no database read.
    pub fn key_usage(&self, key: &str) -> KeyUsage {
        match &self.inner {
            Some(inner) => inner.counters.get(key, inner.clock.now_ms()),
            None => KeyUsage::default(),
        }
    }

    /// Requests started today (UTC), from memory: every request recorded since start plus what the database
    /// held for today when it opened. `None` when recording is off.
    pub fn requests_today(&self) -> Option<u64> {
        let inner = self.inner.as_ref()?;
        self.store()?;
        Some(inner.counters.requests_today(inner.clock.now_ms()))
    }

    /// Recording counters.
    pub fn stats(&self) -> UsageStats {
        let Some(store) = self.store() else {
            return UsageStats::default();
        };
        UsageStats {
            enabled: true,
            path: Some(store.path.clone()),
            written: store.stats.written.load(Ordering::Relaxed),
            dropped_queue_full: store.stats.dropped_queue_full.load(Ordering::Relaxed),
            dropped_write_error: store.stats.dropped_write_error.load(Ordering::Relaxed),
        }
    }

    /// Waits until everything queued so far is written (and runs pruning if due). Blocking; for tests and tools.
    pub fn flush(&self) {
        if let Some(store) = self.store() {
            let (ack, done) = std::sync::mpsc::sync_channel(1);
            if send_waiting(&store.tx, Msg::Flush(ack)) {
                store.writer_thread.unpark();
                let _ = done.recv();
            }
        }
    }

    /// Writes everything queued and stops the writer. Blocking (call from `spawn_blocking`); later records are
    /// counted as dropped. Idempotent.
    pub fn shutdown(&self) {
        let Some(store) = self.store() else {
            return;
        };
        let handle = store.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(handle) = handle {
            let (ack, done) = std::sync::mpsc::sync_channel(1);
            if send_waiting(&store.tx, Msg::Shutdown(ack)) {
                store.writer_thread.unpark();
                let _ = done.recv();
            }
            let _ = handle.join();
        }
    }

    /// Runs `f` on the read connection (opened on first use, reopened after the database was replaced). Blocking.
    pub fn with_reader<T>(&self, f: impl FnOnce(&Reader) -> Result<T, UsageError>) -> Result<T, UsageError> {
        let store = self.store().ok_or(UsageError::Disabled)?;
        let mut slot = store.reader.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let generation = store.stats.generation.load(Ordering::SeqCst);
        if slot.as_ref().is_none_or(|(g, _)| *g != generation) {
            *slot = Some((generation, Reader::open(&store.path)?));
        }
        let Some((_, reader)) = slot.as_ref() else {
            return Err(UsageError::Disabled);
        };
        let result = f(reader);
        if result.as_ref().err().is_some_and(UsageError::is_corruption) {
            *slot = None;
        }
        result
    }

    /// Runs a query off the async runtime (`spawn_blocking`), e.g.
    /// `usage.query(move |r| r.usage(&q)).await`.
    pub async fn query<T, F>(&self, f: F) -> Result<T, UsageError>
    where
        T: Send + 'static,
        F: FnOnce(&Reader) -> Result<T, UsageError> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.with_reader(f)).await.map_err(|e| UsageError::Task(e.to_string()))?
    }

    /// Today's totals (since UTC midnight) for the tray and UI. Blocking; see [`query`](Self::query).
    pub fn summary_today(&self) -> Result<UsageTotals, UsageError> {
        let now = self.now_ms();
        self.with_reader(|r| r.summary_since(counters::day_start(now), now))
    }

    /// The current time on the store's clock (0 when disabled).
    pub fn now_ms(&self) -> u64 {
        self.inner.as_ref().map_or(0, |i| i.clock.now_ms())
    }
}

/// Queues a control message, waiting while the queue is full (flush and shutdown only; never on the request path).
/// Works on any thread, async runtime or not. False when the writer is gone.
fn send_waiting(tx: &Sender<Msg>, mut msg: Msg) -> bool {
    loop {
        match tx.try_send(msg) {
            Ok(()) => return true,
            Err(TrySendError::Full(back)) => {
                msg = back;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(TrySendError::Closed(_)) => return false,
        }
    }
}

fn open_and_load(path: &Path, clock: &dyn Clock) -> Result<(Writer, KeyCounters), UsageError> {
    let writer = Writer::open(path)?;
    let counters = KeyCounters::load(writer.connection(), clock.now_ms()).map_err(|e| UsageError::db(path, e))?;
    Ok((writer, counters))
}

#[cfg(test)]
mod tests;
