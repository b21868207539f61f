//! Per-client-key counters for limits (tokens per day, cost per month), kept in memory so a limit check reads no
//! database: loaded from the daily rollups at start-up, then updated by every record. Days and months are UTC,
//! the same buckets the rollups use, so a restart gives the same numbers.

use std::collections::HashMap;
use std::sync::Mutex;

use rusqlite::{Connection, params};
use serde::Serialize;

use super::record::{CostBasis, RequestRecord, Tokens};
use super::write::{DAY_MS, int};

/// One client key's usage in the current UTC day and month.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KeyUsage {
    /// Requests started today.
    pub requests_today: u64,
    /// Tokens of requests started today.
    pub tokens_today: Tokens,
    /// Spend this month (API-key accounts), micro-USD.
    pub spend_month_micros: u64,
    /// API-equivalent value this month (subscription accounts), micro-USD.
    pub equivalent_month_micros: u64,
}

#[derive(Debug, Default)]
struct State {
    day_start: u64,
    month_start: u64,
    keys: HashMap<String, KeyUsage>,
    /// Every request started today, with or without a key (the tray's count).
    requests_today: u64,
}

/// The in-memory counters. Cheap to update (one short lock per record); reads copy one key's numbers.
#[derive(Debug, Default)]
pub struct KeyCounters {
    state: Mutex<State>,
}

/// Start of the UTC day containing `ms`.
pub fn day_start(ms: u64) -> u64 {
    ms - ms % DAY_MS
}

/// Start of the UTC calendar month containing `ms`.
pub fn month_start(ms: u64) -> u64 {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(secs) else {
        return day_start(ms);
    };
    let first = t.date().replace_day(1).unwrap_or(t.date());
    u64::try_from(first.midnight().assume_utc().unix_timestamp()).map_or(0, |s| s * 1000)
}

/// Start of the UTC calendar month after the one containing `ms`.
pub fn next_month_start(ms: u64) -> u64 {
    let start = month_start(ms);
    // 32 days after the 1st is always in the next month.
    month_start(start + 32 * DAY_MS)
}

impl KeyCounters {
    /// Counters as the daily rollups say, for the day and month of `now_ms`: two small indexed queries.
    pub fn load(conn: &Connection, now_ms: u64) -> rusqlite::Result<Self> {
        let (day, month) = (day_start(now_ms), month_start(now_ms));
        let mut keys: HashMap<String, KeyUsage> = HashMap::new();
        let mut stmt = conn.prepare(
            "SELECT client_key, sum(requests), sum(input_tokens), sum(output_tokens), sum(cache_creation_tokens),
             sum(cache_read_tokens) FROM rollup_daily WHERE bucket = ?1 AND client_key != '' GROUP BY client_key",
        )?;
        let rows = stmt.query_map(params![int(day)], |r| {
            Ok((
                r.get::<_, String>(0)?,
                KeyUsage {
                    requests_today: r.get::<_, i64>(1)?.max(0) as u64,
                    tokens_today: Tokens {
                        input: r.get::<_, i64>(2)?.max(0) as u64,
                        output: r.get::<_, i64>(3)?.max(0) as u64,
                        cache_creation: r.get::<_, i64>(4)?.max(0) as u64,
                        cache_read: r.get::<_, i64>(5)?.max(0) as u64,
                        cache_creation_1h: 0,
                    },
                    ..KeyUsage::default()
                },
            ))
        })?;
        for row in rows {
            let (key, usage) = row?;
            keys.insert(key, usage);
        }
        let mut stmt = conn.prepare(
            "SELECT client_key, sum(spend_micros), sum(equivalent_micros) FROM rollup_daily
             WHERE bucket >= ?1 AND client_key != '' GROUP BY client_key",
        )?;
        let rows = stmt.query_map(params![int(month)], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64, r.get::<_, i64>(2)?.max(0) as u64))
        })?;
        for row in rows {
            let (key, spend, equivalent) = row?;
            let usage = keys.entry(key).or_default();
            usage.spend_month_micros = spend;
            usage.equivalent_month_micros = equivalent;
        }
        let requests_today: i64 = conn.query_row(
            "SELECT coalesce(sum(requests), 0) FROM rollup_daily WHERE bucket = ?1",
            params![int(day)],
            |r| r.get(0),
        )?;
        let requests_today = requests_today.max(0) as u64;
        Ok(Self { state: Mutex::new(State { day_start: day, month_start: month, keys, requests_today }) })
    }

    /// Adds a finished request (priced) to its key's counters. A request that started before the current day or
    /// month (a long stream across midnight) counts where the rollups put it: in the earlier period.
    pub fn add(&self, record: &RequestRecord) {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (day, month) = (day_start(record.started_at_ms), month_start(record.started_at_ms));
        state.roll(day, month);
        let counts_today = day == state.day_start;
        let counts_month = month == state.month_start;
        if counts_today {
            state.requests_today += 1;
        }
        let Some(key) = &record.client_key else {
            return;
        };
        if !counts_today && !counts_month {
            return;
        }
        let usage = match state.keys.get_mut(key.as_str()) {
            Some(u) => u,
            None => state.keys.entry(key.clone()).or_default(),
        };
        if counts_today {
            usage.requests_today += 1;
            usage.tokens_today.add(&record.tokens);
        }
        if counts_month && let Some(cost) = record.cost_micros {
            match record.cost_basis {
                CostBasis::Spend => usage.spend_month_micros += cost,
                CostBasis::ApiEquivalent => usage.equivalent_month_micros += cost,
            }
        }
    }

    /// A key's usage in the day and month of `now_ms` (zero when it has none yet).
    pub fn get(&self, key: &str, now_ms: u64) -> KeyUsage {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.roll(day_start(now_ms), month_start(now_ms));
        state.keys.get(key).copied().unwrap_or_default()
    }

    /// Requests started in the day of `now_ms`, every key and none (0 for a day with none yet).
    pub fn requests_today(&self, now_ms: u64) -> u64 {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.roll(day_start(now_ms), month_start(now_ms));
        state.requests_today
    }
}

impl State {
    /// Moves to a later day or month, clearing what belongs to the one that ended.
    fn roll(&mut self, day: u64, month: u64) {
        if month > self.month_start {
            self.month_start = month;
            for u in self.keys.values_mut() {
                u.spend_month_micros = 0;
                u.equivalent_month_micros = 0;
            }
        }
        if day > self.day_start {
            self.day_start = day;
            self.requests_today = 0;
            for u in self.keys.values_mut() {
                u.requests_today = 0;
                u.tokens_today = Tokens::default();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::record::{ClientKind, Route};

    // 2026-11-15T10:00:00Z
    const NOW: u64 = 1_794_736_800_000;

    fn record(at: u64, key: &str, tokens: u64, cost: u64, basis: CostBasis) -> RequestRecord {
        let mut r = RequestRecord::new(at, "req", Route::Messages, ClientKind::ClaudeCode);
        r.client_key = Some(key.into());
        r.tokens.input = tokens;
        r.cost_micros = Some(cost);
        r.cost_basis = basis;
        r
    }

    #[test]
    fn month_and_day_starts_are_utc() {
        assert_eq!(day_start(NOW), 1_794_700_800_000); // 2026-11-15T00:00Z
        assert_eq!(month_start(NOW), 1_793_491_200_000); // 2026-11-01T00:00Z
        assert_eq!(next_month_start(NOW), 1_796_083_200_000); // 2026-12-01T00:00Z
        assert_eq!(next_month_start(1_796_083_200_000), 1_798_761_600_000); // 2027-01-01T00:00Z
    }

    #[test]
    fn counters_roll_over_at_utc_midnight_and_month_start() {
        let c = KeyCounters::default();
        c.add(&record(NOW, "k", 100, 5, CostBasis::Spend));
        c.add(&record(NOW, "k", 50, 7, CostBasis::ApiEquivalent));
        let u = c.get("k", NOW);
        assert_eq!((u.requests_today, u.tokens_today.input), (2, 150));
        assert_eq!((u.spend_month_micros, u.equivalent_month_micros), (5, 7));
        // Next day: today's counts reset, the month's stay.
        let tomorrow = NOW + DAY_MS;
        let u = c.get("k", tomorrow);
        assert_eq!((u.requests_today, u.spend_month_micros), (0, 5));
        // A request that started yesterday but finished today counts in yesterday (as in the rollups).
        c.add(&record(NOW, "k", 10, 1, CostBasis::Spend));
        assert_eq!(c.get("k", tomorrow).tokens_today.input, 0);
        assert_eq!(c.get("k", tomorrow).spend_month_micros, 6);
        // Next month (December 1st): everything resets.
        assert_eq!(c.get("k", NOW + 16 * DAY_MS), KeyUsage::default());
        assert_eq!(c.get("other", NOW), KeyUsage::default());
    }
}
