//! Tests of `open_store`: backend choice, keychain fallback, the layered
//! keychain+file store, and (opt-in) the real OS keychain.
//!
//! Nothing here mutates the process environment: scenarios that need a
//! different environment (no D-Bus, `LLM_GATEWAY_MASTER_KEY`) re-run this
//! test binary as a child process with that environment.

use std::path::PathBuf;
use std::time::Instant;

use super::keychain::KeychainBackend as _;
use super::keychain::tests::{BrokenKeychain, HangingKeychain, MemoryKeychain};
use super::*;

fn s(v: &str) -> Secret {
    Secret::new(v)
}

fn value(store: &dyn SecretStore, id: &str) -> Option<String> {
    store.get(id).unwrap().map(|v| v.expose().to_string())
}

fn file_store(dir: &Path) -> FileStore {
    FileStore::open_with(dir, KeyChoice::KeyFile).unwrap()
}

#[test]
fn file_kind_opens_the_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store_with(
        BackendKind::File,
        dir.path(),
        Duration::from_secs(1),
        KeychainStore::with_backend("svc", Arc::new(HangingKeychain(Duration::from_secs(60)))),
        KeyChoice::KeyFile,
    )
    .unwrap();
    assert_eq!(store.backend(), BackendKind::File);
    store.set("a", &s("v")).unwrap();
    assert!(dir.path().join(SECRETS_FILE).exists());
}

#[test]
fn broken_keychain_falls_back_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store_with(
        BackendKind::Keychain,
        dir.path(),
        Duration::from_secs(1),
        KeychainStore::with_backend("svc", Arc::new(BrokenKeychain)),
        KeyChoice::KeyFile,
    )
    .unwrap();
    assert_eq!(store.backend(), BackendKind::File);
    store.set("a", &s("v")).unwrap();
    assert_eq!(value(&file_store(dir.path()), "a").as_deref(), Some("v"));
}

#[test]
fn hanging_keychain_falls_back_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let store = open_store_with(
        BackendKind::Keychain,
        dir.path(),
        Duration::from_millis(300),
        KeychainStore::with_backend("svc", Arc::new(HangingKeychain(Duration::from_secs(5)))),
        KeyChoice::KeyFile,
    )
    .unwrap();
    assert!(t.elapsed() < Duration::from_millis(2300), "{:?}", t.elapsed());
    assert_eq!(store.backend(), BackendKind::File);
}

#[test]
fn working_keychain_reads_old_file_secrets_and_writes_to_the_keychain() {
    let dir = tempfile::tempdir().unwrap();
    file_store(dir.path()).set("legacy", &s("from-file")).unwrap();
    file_store(dir.path()).set("both", &s("stale-file-copy")).unwrap();
    let mem = Arc::new(MemoryKeychain::default());
    mem.set("svc", "both", &s("keychain-copy")).unwrap();
    let store = open_store_with(
        BackendKind::Keychain,
        dir.path(),
        Duration::from_secs(1),
        KeychainStore::with_backend("svc", mem.clone()),
        KeyChoice::KeyFile,
    )
    .unwrap();
    assert_eq!(store.backend(), BackendKind::Keychain);
    assert_eq!(value(&*store, "legacy").as_deref(), Some("from-file"));
    assert_eq!(value(&*store, "both").as_deref(), Some("keychain-copy"));
    assert_eq!(value(&*store, "missing"), None);

    store.set("new", &s("n")).unwrap();
    assert_eq!(mem.peek("svc", "new").as_deref(), Some("n"));
    assert_eq!(value(&file_store(dir.path()), "new"), None);

    store.delete("legacy").unwrap();
    store.delete("both").unwrap();
    store.delete("never-existed").unwrap();
    assert_eq!(value(&*store, "legacy"), None);
    assert_eq!(value(&*store, "both"), None);
    assert_eq!(value(&file_store(dir.path()), "legacy"), None);
    assert_eq!(value(&file_store(dir.path()), "both"), None);
}

#[test]
fn working_keychain_without_a_file_creates_none_and_sees_a_later_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store_with(
        BackendKind::Keychain,
        dir.path(),
        Duration::from_secs(1),
        KeychainStore::with_backend("svc", Arc::new(MemoryKeychain::default())),
        KeyChoice::KeyFile,
    )
    .unwrap();
    assert_eq!(value(&*store, "a"), None);
    store.delete("a").unwrap();
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "files were created");
    // Another process fell back to the file after we started.
    file_store(dir.path()).set("a", &s("later")).unwrap();
    assert_eq!(value(&*store, "a").as_deref(), Some("later"));
}

// ---------------------------------------------------------------------------
// Real OS keychain (opt-in).

fn unique_id(tag: &str) -> String {
    let n = u64::from_le_bytes(crypto::random_bytes::<8>().unwrap());
    format!("test:{tag}:{}:{n:016x}", std::process::id())
}

/// What the Secret Service itself holds for our entry, bypassing keyring, so
/// the test proves entries land in the real store and not in a mock.
#[cfg(target_os = "linux")]
fn secret_tool_lookup(id: &str) -> Option<String> {
    let out = std::process::Command::new("secret-tool")
        .args(["lookup", "service", DEFAULT_SERVICE, "username", id])
        .output()
        .expect("secret-tool is needed for this test (apt-get install libsecret-tools)");
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim_end().to_string()).filter(|v| !v.is_empty())
}

#[test]
fn real_keychain_round_trip() {
    if std::env::var_os("LLM_GATEWAY_TEST_KEYCHAIN").is_none_or(|v| v != "1") {
        eprintln!(
            "real_keychain_round_trip skipped: set LLM_GATEWAY_TEST_KEYCHAIN=1 with an unlocked OS keychain to run it"
        );
        return;
    }
    let keychain = KeychainStore::new(DEFAULT_SERVICE);
    let t = Instant::now();
    keychain.probe(Duration::from_secs(5)).expect("the real keychain probe failed");
    eprintln!("real keychain probe took {:?}", t.elapsed());

    // A space and non-ASCII, as a user-chosen account id may have.
    let id = unique_id("direct é");
    keychain.set(&id, &s("real-secret-1")).unwrap();
    assert_eq!(value(&keychain, &id).as_deref(), Some("real-secret-1"));
    #[cfg(target_os = "linux")]
    assert_eq!(secret_tool_lookup(&id).as_deref(), Some("real-secret-1"));
    keychain.set(&id, &s("real-secret-2")).unwrap();
    assert_eq!(value(&keychain, &id).as_deref(), Some("real-secret-2"));
    keychain.delete(&id).unwrap();
    assert_eq!(value(&keychain, &id), None);
    #[cfg(target_os = "linux")]
    assert_eq!(secret_tool_lookup(&id), None);
    keychain.delete(&id).unwrap();

    // Through open_store: keychain-backed, with a legacy file secret readable.
    let dir = tempfile::tempdir().unwrap();
    let legacy = unique_id("legacy");
    FileStore::open(dir.path()).unwrap().set(&legacy, &s("file-secret")).unwrap();
    let store = open_store(BackendKind::Keychain, dir.path(), Duration::from_millis(1500)).unwrap();
    assert_eq!(store.backend(), BackendKind::Keychain);
    let id = unique_id("open_store");
    store.set(&id, &s("real-secret-3")).unwrap();
    assert_eq!(value(&*store, &id).as_deref(), Some("real-secret-3"));
    assert_eq!(value(&keychain, &id).as_deref(), Some("real-secret-3"));
    #[cfg(target_os = "linux")]
    assert_eq!(secret_tool_lookup(&id).as_deref(), Some("real-secret-3"));
    assert_eq!(value(&FileStore::open(dir.path()).unwrap(), &id), None);
    assert_eq!(value(&*store, &legacy).as_deref(), Some("file-secret"));
    store.delete(&id).unwrap();
    store.delete(&legacy).unwrap();
    assert_eq!(value(&*store, &id), None);
    assert_eq!(value(&*store, &legacy), None);
}

// ---------------------------------------------------------------------------
// Scenarios run in a child process with their own environment.

const CHILD_ENV: &str = "LLM_GATEWAY_SECRETS_TEST_CHILD";
const CHILD_DIR_ENV: &str = "LLM_GATEWAY_SECRETS_TEST_DIR";
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// Runs `child_scenario` in a fresh copy of this test binary and returns its
/// output (stdout + stderr).
fn run_child(scenario: &str, dir: &Path, env: &[(&str, Option<&str>)]) -> (bool, String) {
    // libtest names tests by module path without the crate name.
    let full = concat!(module_path!(), "::child_scenario");
    let name = full.split_once("::").map_or(full, |(_, rest)| rest);
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, scenario)
        .env(CHILD_DIR_ENV, dir)
        .env_remove(MASTER_KEY_ENV)
        .env_remove("LLM_GATEWAY_TEST_KEYCHAIN");
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd.output().unwrap();
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("1 passed") || text.contains("1 failed"), "child did not run the scenario:\n{text}");
    (out.status.success(), text)
}

/// The body of the child-process scenarios; a no-op in a normal test run.
#[test]
fn child_scenario() {
    let Some(scenario) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(std::env::var_os(CHILD_DIR_ENV).unwrap());
    let _ = tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false).try_init();
    match scenario.to_str().unwrap() {
        "keychain-fallback" => {
            let t = Instant::now();
            let store = open_store(BackendKind::Keychain, &dir, PROBE_TIMEOUT).unwrap();
            let elapsed = t.elapsed();
            eprintln!("open_store fell back after {elapsed:?}");
            assert_eq!(store.backend(), BackendKind::File);
            // Generous margin for a loaded CI machine; without the timeout a
            // blocked libdbus call would take 25 s or forever.
            assert!(elapsed < PROBE_TIMEOUT + Duration::from_secs(2), "{elapsed:?}");
            store.set("a", &s("v")).unwrap();
            assert_eq!(value(&*store, "a").as_deref(), Some("v"));
            assert!(dir.join(MASTER_KEY_FILE).exists());
        }
        "passphrase-write" => {
            let store = open_store(BackendKind::File, &dir, PROBE_TIMEOUT).unwrap();
            store.set("a", &s("v")).unwrap();
            assert!(!dir.join(MASTER_KEY_FILE).exists());
            let reopened = FileStore::open(&dir).unwrap();
            assert_eq!(value(&reopened, "a").as_deref(), Some("v"));
        }
        "passphrase-wrong" => {
            let err = FileStore::open(&dir).unwrap_err();
            eprintln!("error shown to the user: {err}");
            assert!(matches!(err, SecretError::Undecryptable { .. }), "{err:?}");
        }
        "passphrase-empty" => {
            let err = FileStore::open(&dir).unwrap_err();
            assert!(matches!(err, SecretError::BadMasterKey { .. }), "{err:?}");
            let err = open_store(BackendKind::Keychain, &dir, PROBE_TIMEOUT).unwrap_err();
            assert!(matches!(err, SecretError::BadMasterKey { .. }), "{err:?}");
        }
        other => panic!("unknown scenario {other}"),
    }
}

/// `open_store(Keychain, …)` with D-Bus unreachable falls back to the file
/// within the probe timeout and says so in a warning.
#[cfg(target_os = "linux")]
#[test]
fn unreachable_dbus_falls_back_to_the_file() {
    let cases: [&[(&str, Option<&str>)]; 2] = [
        &[("DBUS_SESSION_BUS_ADDRESS", Some("unix:path=/nonexistent/llm-gateway-test-bus"))],
        // No address at all: libdbus must not find a bus via XDG_RUNTIME_DIR
        // or autolaunch one via X11.
        &[("DBUS_SESSION_BUS_ADDRESS", None), ("XDG_RUNTIME_DIR", None), ("DISPLAY", None)],
    ];
    for env in cases {
        let dir = tempfile::tempdir().unwrap();
        let (ok, out) = run_child("keychain-fallback", dir.path(), env);
        assert!(ok, "{env:?}:\n{out}");
        assert!(out.contains("OS keychain is unavailable"), "no warning logged:\n{out}");
        assert!(out.contains(SECRETS_FILE), "warning does not name the file:\n{out}");
    }
}

/// A bus that accepts the connection and then never answers (the real-world
/// shape of a wedged D-Bus or an unanswered prompt): libdbus blocks, and only
/// the probe timeout gets the gateway going, on the file store.
#[cfg(target_os = "linux")]
#[test]
fn silent_dbus_falls_back_after_the_probe_timeout() {
    use std::os::unix::net::UnixListener;
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("silent-bus");
    let listener = UnixListener::bind(&socket).unwrap();
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let acceptor = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if let Ok((conn, _)) = listener.accept() {
                    held.push(conn);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let store_dir = dir.path().join("config");
    let address = format!("unix:path={}", socket.display());
    let (ok, out) = run_child("keychain-fallback", &store_dir, &[("DBUS_SESSION_BUS_ADDRESS", Some(&address))]);
    stop.store(true, Ordering::Relaxed);
    acceptor.join().unwrap();
    assert!(ok, "{out}");
    assert!(out.contains("did not answer"), "expected a timeout as the reason:\n{out}");
}

/// `LLM_GATEWAY_MASTER_KEY` is read from the environment, and a wrong one is
/// a clear error rather than a panic.
#[test]
fn master_key_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = run_child("passphrase-write", dir.path(), &[(MASTER_KEY_ENV, Some("correct horse"))]);
    assert!(ok, "{out}");
    let (ok, out) = run_child("passphrase-wrong", dir.path(), &[(MASTER_KEY_ENV, Some("battery staple"))]);
    assert!(ok, "{out}");
    assert!(out.contains("master key may be wrong"), "{out}");
    let (ok, out) = run_child("passphrase-empty", dir.path(), &[(MASTER_KEY_ENV, Some(""))]);
    assert!(ok, "{out}");
}
