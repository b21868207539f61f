//! The one writer: a dedicated OS thread (SQLite calls block) fed by a bounded channel. The request path only ever
//! `try_send`s, and the writer never blocks on the channel: it drains it every [`BATCH_WINDOW`] (parked in between)
//! into transactions of at most [`BATCH_MAX`] records. So a sender never meets the writer in a lock — with a
//! receiver blocked in `recv`, waking it takes a mutex the receiver also takes, and on a loaded machine a
//! descheduled writer held a request for a scheduler tick (4 ms, measured in `benches/usage.rs`). Flush and
//! shutdown unpark the thread. It also prunes old rows once per [`PRUNE_EVERY`] of the injectable clock, and
//! replaces a database that turns out corrupt.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::db;
use super::record::RequestRecord;
use super::write::{PlanUpdate, Writer};
use crate::clock::Clock;

/// Most records per transaction.
pub const BATCH_MAX: usize = 500;
/// How often the writer drains the queue: the longest a record waits before it is written (plus the write).
pub const BATCH_WINDOW: Duration = Duration::from_millis(200);
/// How often (on the gateway's clock) old rows are pruned.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// What the writer thread is sent.
#[derive(Debug)]
pub enum Msg {
    /// A finished request.
    Record(Box<RequestRecord>),
    /// The latest plan-window state of a subject.
    Plan(Box<PlanUpdate>),
    /// Write everything received so far (and prune if due), then answer.
    Flush(SyncSender<()>),
    /// Write everything and stop.
    Shutdown(SyncSender<()>),
}

/// Counters shared between the request path, the writer and status/metrics.
#[derive(Debug, Default)]
pub struct Stats {
    /// Records written to the database.
    pub written: AtomicU64,
    /// Records dropped because the queue was full.
    pub dropped_queue_full: AtomicU64,
    /// Records lost because a write failed (full disk, I/O error).
    pub dropped_write_error: AtomicU64,
    /// Incremented each time the database was replaced after corruption (readers reopen).
    pub generation: AtomicU64,
}

/// A test hook: holds the writer (after it has taken at most one message off the queue) until opened, or slows each
/// batch down (benchmarks: a slow disk).
#[derive(Debug, Default)]
pub struct Stall {
    closed: Mutex<bool>,
    cond: Condvar,
    /// Added before each batch is written.
    pub delay: Mutex<Duration>,
}

impl Stall {
    /// Holds the writer before its next batch.
    pub fn close(&self) {
        *self.closed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = true;
    }

    /// Lets it go on.
    pub fn open(&self) {
        *self.closed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = false;
        self.cond.notify_all();
    }

    fn slow_down(&self) {
        let delay = *self.delay.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
    }

    fn wait_open(&self) {
        let mut closed = self.closed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while *closed {
            closed = self.cond.wait(closed).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

/// What the writer thread needs.
pub struct WriterSetup {
    /// The database file.
    pub path: PathBuf,
    /// The open writing connection.
    pub writer: Writer,
    /// The gateway's clock (pruning, names of moved-aside files).
    pub clock: Arc<dyn Clock>,
    /// Request-log retention, days.
    pub raw_days: u32,
    /// Rollup retention, days.
    pub rollup_days: u32,
    /// Shared counters.
    pub stats: Arc<Stats>,
    /// Optional test hook.
    pub stall: Option<Arc<Stall>>,
}

/// How much lower than the gateway's threads the writer runs (nice levels, Linux).
const WRITER_NICE: i32 = 5;

/// The writer yields to the request path: this thread only runs a few nice levels lower, so when the cores are
/// busy its bursts of SQLite work wait for the request path instead of delaying a request, while its share of a
/// saturated machine (about a third of a nice-0 thread's) still keeps up with the gateway's full throughput.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let tid = Some(rustix::thread::gettid());
        let now = rustix::process::getpriority_process(tid).unwrap_or(0);
        if let Err(e) = rustix::process::setpriority_process(tid, (now + WRITER_NICE).min(19)) {
            tracing::debug!("usage writer keeps its priority: {e}");
        }
    }
}

/// Runs the writer loop until shutdown or until every sender is gone.
pub fn run(setup: WriterSetup, mut rx: tokio::sync::mpsc::Receiver<Msg>) {
    use tokio::sync::mpsc::error::TryRecvError;
    lower_priority();
    let WriterSetup { path, mut writer, clock, raw_days, rollup_days, stats, stall } = setup;
    let mut batch: Vec<RequestRecord> = Vec::with_capacity(BATCH_MAX);
    let mut plans: Vec<PlanUpdate> = Vec::new();
    // Prune once right after start-up (catches up after downtime), then every PRUNE_EVERY of the clock.
    let mut last_prune: Option<u64> = None;
    let commit = |writer: &mut Writer, batch: &mut Vec<RequestRecord>, plans: &mut Vec<PlanUpdate>| {
        if batch.is_empty() && plans.is_empty() {
            return;
        }
        if let Some(stall) = &stall {
            stall.slow_down();
        }
        write(writer, &path, &*clock, &stats, batch, plans);
        batch.clear();
        plans.clear();
    };
    let mut prune_if_due = |writer: &mut Writer| {
        let now = clock.now_ms();
        let every = PRUNE_EVERY.as_millis() as u64;
        if last_prune.is_some_and(|at| now < at.saturating_add(every)) {
            return;
        }
        last_prune = Some(now);
        match writer.prune(now, raw_days, rollup_days) {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "usage: pruned request log rows past retention"),
            Err(e) => tracing::warn!("usage: pruning failed: {e}"),
        }
    };
    loop {
        let msg = match rx.try_recv() {
            Ok(msg) => msg,
            Err(TryRecvError::Empty) => {
                // Drained: write what came in, then sleep until the next round (or a flush/shutdown unparks us).
                commit(&mut writer, &mut batch, &mut plans);
                prune_if_due(&mut writer);
                std::thread::park_timeout(BATCH_WINDOW);
                continue;
            }
            Err(TryRecvError::Disconnected) => {
                commit(&mut writer, &mut batch, &mut plans);
                return;
            }
        };
        if let Some(stall) = &stall {
            stall.wait_open();
        }
        match msg {
            Msg::Record(record) => {
                batch.push(*record);
                if batch.len() >= BATCH_MAX {
                    commit(&mut writer, &mut batch, &mut plans);
                }
            }
            Msg::Plan(plan) => {
                // Only the latest state per subject matters.
                plans.retain(|p| p.subject != plan.subject);
                plans.push(*plan);
            }
            Msg::Flush(ack) => {
                commit(&mut writer, &mut batch, &mut plans);
                prune_if_due(&mut writer);
                let _ = ack.send(());
            }
            Msg::Shutdown(ack) => {
                commit(&mut writer, &mut batch, &mut plans);
                let _ = ack.send(());
                return;
            }
        }
    }
}

/// Writes one batch; on corruption moves the file aside, starts a new database and writes the batch there.
fn write(
    writer: &mut Writer,
    path: &std::path::Path,
    clock: &dyn Clock,
    stats: &Stats,
    batch: &[RequestRecord],
    plans: &[PlanUpdate],
) {
    let error = match writer.write_batch(batch, plans) {
        Ok(()) => {
            stats.written.fetch_add(batch.len() as u64, Ordering::Relaxed);
            return;
        }
        Err(e) => e,
    };
    if db::is_corruption(&error) {
        tracing::error!(
            path = %path.display(),
            "usage database is corrupt ({error}); moving it aside and starting a new one"
        );
        if let Some(fresh) = replace_corrupt(path, clock) {
            *writer = fresh;
            stats.generation.fetch_add(1, Ordering::SeqCst);
            if writer.write_batch(batch, plans).is_ok() {
                stats.written.fetch_add(batch.len() as u64, Ordering::Relaxed);
                return;
            }
        }
    }
    tracing::error!(path = %path.display(), records = batch.len(), "usage records could not be written: {error}");
    stats.dropped_write_error.fetch_add(batch.len() as u64, Ordering::Relaxed);
}

fn replace_corrupt(path: &std::path::Path, clock: &dyn Clock) -> Option<Writer> {
    match db::move_aside(path, clock.now_ms()) {
        Ok(to) => tracing::error!(from = %path.display(), to = %to.display(), "corrupt usage database moved aside"),
        Err(e) => tracing::error!(path = %path.display(), "could not move the corrupt usage database aside: {e}"),
    }
    match Writer::open(path) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::error!(path = %path.display(), "could not start a new usage database: {e}");
            None
        }
    }
}
