//! Opening the usage database: pragmas, versioned migrations, and moving a corrupt file aside.
//!
//! Migrations are an ordered list of SQL scripts; `PRAGMA user_version` holds how many have run, and each runs in
//! its own transaction together with the version bump (the scheme `rusqlite_migration` implements; that crate lags
//! rusqlite releases — 2.6 pins rusqlite 0.40 while 0.43 is current — and would pull a second SQLite build into the
//! tree, for ~20 lines of code).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::UsageError;

/// Schema scripts; `user_version` = how many have been applied. Append only: never edit a released script.
const MIGRATIONS: &[&str] = &[
    // 1: request log, sessions, plan windows, account names; the rollup tables are `ROLLUPS_V1`.
    "
    CREATE TABLE requests (
        id INTEGER PRIMARY KEY,
        ts_ms INTEGER NOT NULL,
        request_id TEXT NOT NULL,
        client_key TEXT,
        client_kind TEXT NOT NULL,
        account_id TEXT,
        account_name TEXT,
        route TEXT NOT NULL,
        model_requested TEXT,
        model_answered TEXT,
        model TEXT,
        status INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        stop_reason TEXT,
        stream INTEGER NOT NULL,
        latency_ms INTEGER NOT NULL,
        first_byte_ms INTEGER,
        upstream_ms INTEGER NOT NULL,
        attempts TEXT,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cache_creation_tokens INTEGER NOT NULL,
        cache_read_tokens INTEGER NOT NULL,
        cache_creation_1h_tokens INTEGER NOT NULL,
        cost_micros INTEGER,
        cost_basis TEXT NOT NULL,
        session INTEGER,
        spillover INTEGER NOT NULL
    );
    CREATE INDEX requests_ts ON requests(ts_ms);
    CREATE INDEX requests_account ON requests(account_id, id);
    CREATE INDEX requests_key ON requests(client_key, id);

    CREATE TABLE sessions (
        session INTEGER PRIMARY KEY,
        first_ms INTEGER NOT NULL,
        last_ms INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cache_creation_tokens INTEGER NOT NULL,
        cache_read_tokens INTEGER NOT NULL,
        spend_micros INTEGER NOT NULL,
        equivalent_micros INTEGER NOT NULL,
        cost_micros INTEGER NOT NULL,
        client_key TEXT,
        account_id TEXT,
        model TEXT,
        client_kind TEXT NOT NULL
    );
    -- Covering for top sessions in a range: the range and the order are read from the index alone.
    CREATE INDEX sessions_recent ON sessions(last_ms, first_ms, cost_micros);

    CREATE TABLE plan_windows (
        subject TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        updated_ms INTEGER NOT NULL
    );

    CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        last_ms INTEGER NOT NULL
    );
    ",
];

/// The rollup tables of schema 1, all with the same columns: `rollup_hourly` and `rollup_daily` by every dimension,
/// `rollup_hourly_model` and `rollup_daily_model` by model only (the other dimensions are `''`), so unfiltered
/// charts read a few rows per hour instead of one per account × key × model × client kind.
pub const ROLLUP_TABLES: [&str; 4] = ["rollup_hourly", "rollup_daily", "rollup_hourly_model", "rollup_daily_model"];

fn rollup_table(name: &str) -> String {
    format!(
        "CREATE TABLE {name} (
            bucket INTEGER NOT NULL,
            account_id TEXT NOT NULL,
            client_key TEXT NOT NULL,
            model TEXT NOT NULL,
            client_kind TEXT NOT NULL,
            requests INTEGER NOT NULL,
            ok INTEGER NOT NULL,
            client_errors INTEGER NOT NULL,
            upstream_errors INTEGER NOT NULL,
            gateway_errors INTEGER NOT NULL,
            cancelled INTEGER NOT NULL,
            key_rejected INTEGER NOT NULL,
            failovers INTEGER NOT NULL,
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cache_creation_tokens INTEGER NOT NULL,
            cache_read_tokens INTEGER NOT NULL,
            spend_micros INTEGER NOT NULL,
            equivalent_micros INTEGER NOT NULL,
            unpriced INTEGER NOT NULL,
            latency_ms INTEGER NOT NULL,
            first_byte_ms INTEGER NOT NULL,
            first_byte_count INTEGER NOT NULL,
            upstream_ms INTEGER NOT NULL,
            PRIMARY KEY (bucket, account_id, client_key, model, client_kind)
        ) WITHOUT ROWID;"
    )
}

/// Migration `n` (1-based) as SQL.
fn migration(n: usize) -> String {
    let mut sql = MIGRATIONS[n - 1].to_string();
    if n == 1 {
        for table in ROLLUP_TABLES {
            sql.push_str(&rollup_table(table));
        }
        // The start-up load of the per-key counters reads one day and one month by key.
        sql.push_str("CREATE INDEX rollup_daily_key ON rollup_daily(client_key, bucket);");
    }
    sql
}

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// How long a connection waits for another one's lock before failing (the writer's transactions are short).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens (creating if needed) the database for writing and brings its schema up to date.
pub fn open_writer(path: &Path) -> Result<Connection, UsageError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| UsageError::Io { path: dir.to_path_buf(), source: e })?;
    }
    let mut conn = Connection::open(path).map_err(|e| UsageError::db(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| UsageError::db(path, e))?;
    // WAL: readers never block the writer nor the writer them. synchronous=NORMAL: a commit survives a crash of
    // the gateway; only a power loss can lose the last transactions, which is fine for usage records.
    let mode: String =
        conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(|e| UsageError::db(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "usage database is not in WAL mode; queries may wait on writes");
    }
    conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY;").map_err(|e| UsageError::db(path, e))?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// Opens a read-only connection for queries (WAL lets it read while the writer writes).
pub fn open_reader(path: &Path) -> Result<Connection, UsageError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| UsageError::db(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| UsageError::db(path, e))?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), UsageError> {
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| UsageError::db(path, e))?;
    if version > SCHEMA_VERSION {
        return Err(UsageError::NewerSchema { path: path.to_path_buf(), found: version, known: SCHEMA_VERSION });
    }
    for i in (version as usize)..MIGRATIONS.len() {
        let tx = conn.transaction().map_err(|e| UsageError::db(path, e))?;
        tx.execute_batch(&migration(i + 1)).map_err(|e| UsageError::db(path, e))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64).map_err(|e| UsageError::db(path, e))?;
        tx.commit().map_err(|e| UsageError::db(path, e))?;
    }
    Ok(())
}

/// Whether an error means the file is damaged or not a database at all (as opposed to, say, a full disk).
pub fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase))
}

/// Renames the database (and its `-wal`/`-shm` files) to `<name>.corrupt-<UTC time>`, keeping it for inspection.
/// Returns the new path of the main file.
pub fn move_aside(path: &Path, now_ms: u64) -> std::io::Result<PathBuf> {
    let stamp = stamp(now_ms);
    let mut target = path.as_os_str().to_owned();
    target.push(format!(".corrupt-{stamp}"));
    let target = PathBuf::from(target);
    std::fs::rename(path, &target)?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let mut side_target = target.as_os_str().to_owned();
        side_target.push(suffix);
        match std::fs::rename(&side, &side_target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(file = %PathBuf::from(&side).display(), "could not move aside: {e}"),
        }
    }
    Ok(target)
}

/// `20261201T110926Z`: sorts by time and is valid in file names everywhere.
fn stamp(now_ms: u64) -> String {
    let nanos = i128::from(now_ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map(|t| {
            format!(
                "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .unwrap_or_else(|_| now_ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_set_the_schema_version_and_reopening_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("usage.db");
        let conn = open_writer(&path).unwrap();
        let v: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        drop(conn);
        let conn = open_writer(&path).unwrap();
        let tables: i64 =
            conn.query_row("SELECT count(*) FROM sqlite_schema WHERE type = 'table'", [], |r| r.get(0)).unwrap();
        assert_eq!(tables, 8);
    }

    #[test]
    fn a_database_from_a_newer_build_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usage.db");
        let conn = open_writer(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        drop(conn);
        assert!(matches!(open_writer(&path), Err(UsageError::NewerSchema { .. })));
    }

    #[test]
    fn garbage_is_reported_as_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("usage.db");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        match open_writer(&path) {
            Err(UsageError::Db { source, .. }) => assert!(is_corruption(&source), "{source}"),
            other => panic!("expected a corruption error, got {other:?}"),
        }
        let moved = move_aside(&path, 1_796_000_000_000).unwrap();
        assert!(!path.exists());
        assert!(moved.to_string_lossy().ends_with("usage.db.corrupt-20261130T005320Z"), "{}", moved.display());
    }
}
