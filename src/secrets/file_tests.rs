//! Tests for the encrypted file store. They never read or set
//! `LLM_GATEWAY_MASTER_KEY` (process-global); keys are injected via `KeyChoice`.

use std::sync::Arc;

use super::super::MAX_ID_LEN;
use super::*;

/// Cheap argon2 parameters so tests don't spend seconds in debug builds.
fn pass(p: &str) -> KeyChoice {
    KeyChoice::Passphrase {
        passphrase: Zeroizing::new(p.to_string()),
        params: KdfParams { m_cost: 256, t_cost: 1, p_cost: 1 },
    }
}

fn keyfile_store(dir: &Path) -> FileStore {
    FileStore::open_with(dir, KeyChoice::KeyFile).unwrap()
}

fn s(v: &str) -> Secret {
    Secret::new(v)
}

fn get(store: &FileStore, id: &str) -> Option<String> {
    store.get(id).unwrap().map(|v| v.expose().to_string())
}

fn load_json(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join(SECRETS_FILE)).unwrap()).unwrap()
}

fn save_json(dir: &Path, v: &serde_json::Value) {
    std::fs::write(dir.join(SECRETS_FILE), serde_json::to_vec(v).unwrap()).unwrap();
}

#[test]
fn round_trip_with_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = keyfile_store(dir.path());
    assert_eq!(store.backend(), BackendKind::File);
    assert_eq!(get(&store, "account:acc_1:api_key"), None);
    store.set("account:acc_1:api_key", &s("sk-ant-1")).unwrap();
    store.set("account:acc_2:api_key", &s("sk-ant-2")).unwrap();
    assert_eq!(get(&store, "account:acc_1:api_key").as_deref(), Some("sk-ant-1"));
    store.set("account:acc_1:api_key", &s("sk-ant-1b")).unwrap();
    assert_eq!(get(&store, "account:acc_1:api_key").as_deref(), Some("sk-ant-1b"));
    assert_eq!(get(&store, "account:acc_2:api_key").as_deref(), Some("sk-ant-2"));
    // Unicode values survive; plaintext never appears in the file.
    store.set("u", &s("clé-🔑")).unwrap();
    assert_eq!(get(&store, "u").as_deref(), Some("clé-🔑"));
    let raw = std::fs::read_to_string(dir.path().join(SECRETS_FILE)).unwrap();
    assert!(!raw.contains("sk-ant"), "plaintext leaked into secrets.enc");
}

#[test]
fn persists_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    keyfile_store(dir.path()).set("a", &s("one")).unwrap();
    assert_eq!(get(&keyfile_store(dir.path()), "a").as_deref(), Some("one"));

    let dir2 = tempfile::tempdir().unwrap();
    FileStore::open_with(dir2.path(), pass("hunter2")).unwrap().set("a", &s("two")).unwrap();
    let reopened = FileStore::open_with(dir2.path(), pass("hunter2")).unwrap();
    assert_eq!(get(&reopened, "a").as_deref(), Some("two"));
    assert!(!dir2.path().join(MASTER_KEY_FILE).exists());
    assert_eq!(load_json(dir2.path())["kdf"]["type"], "argon2id");
}

#[test]
fn wrong_passphrase_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    FileStore::open_with(dir.path(), pass("right")).unwrap().set("a", &s("v")).unwrap();
    let err = FileStore::open_with(dir.path(), pass("wrong")).unwrap_err();
    assert!(matches!(err, SecretError::Undecryptable { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("master key may be wrong"), "{msg}");
    assert!(msg.contains(SECRETS_FILE), "{msg}");
}

#[test]
fn wrong_key_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    keyfile_store(dir.path()).set("a", &s("v")).unwrap();
    let other = crypto::random_key().unwrap();
    std::fs::write(dir.path().join(MASTER_KEY_FILE), crypto::encode_key(&other).as_bytes()).unwrap();
    let err = FileStore::open_with(dir.path(), KeyChoice::KeyFile).unwrap_err();
    assert!(matches!(err, SecretError::Undecryptable { .. }), "{err:?}");

    std::fs::write(dir.path().join(MASTER_KEY_FILE), "garbage").unwrap();
    let err = FileStore::open_with(dir.path(), KeyChoice::KeyFile).unwrap_err();
    assert!(matches!(err, SecretError::BadMasterKey { .. }), "{err:?}");
}

#[test]
fn without_key_check_a_wrong_key_fails_per_entry() {
    let dir = tempfile::tempdir().unwrap();
    keyfile_store(dir.path()).set("a", &s("v")).unwrap();
    let mut doc = load_json(dir.path());
    doc.as_object_mut().unwrap().remove("check");
    save_json(dir.path(), &doc);
    let other = crypto::random_key().unwrap();
    std::fs::write(dir.path().join(MASTER_KEY_FILE), crypto::encode_key(&other).as_bytes()).unwrap();
    let store = keyfile_store(dir.path());
    let err = store.get("a").unwrap_err();
    assert!(err.to_string().contains("master key may be wrong"), "{err}");
}

#[test]
fn switching_key_kind_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    keyfile_store(dir.path()).set("a", &s("v")).unwrap();
    let err = FileStore::open_with(dir.path(), pass("p")).unwrap_err();
    assert!(matches!(err, SecretError::BadMasterKey { .. }), "{err:?}");
    assert!(err.to_string().contains(MASTER_KEY_ENV), "{err}");

    let dir = tempfile::tempdir().unwrap();
    FileStore::open_with(dir.path(), pass("p")).unwrap().set("a", &s("v")).unwrap();
    let err = FileStore::open_with(dir.path(), KeyChoice::KeyFile).unwrap_err();
    assert!(err.to_string().contains("which is not set"), "{err}");
}

#[test]
fn lost_key_file_is_not_silently_regenerated() {
    let dir = tempfile::tempdir().unwrap();
    keyfile_store(dir.path()).set("a", &s("v")).unwrap();
    std::fs::remove_file(dir.path().join(MASTER_KEY_FILE)).unwrap();
    let err = FileStore::open_with(dir.path(), KeyChoice::KeyFile).unwrap_err();
    assert!(matches!(err, SecretError::BadMasterKey { .. }), "{err:?}");
    assert!(!dir.path().join(MASTER_KEY_FILE).exists());
}

#[test]
fn entries_cannot_be_swapped_or_tampered() {
    let dir = tempfile::tempdir().unwrap();
    let store = keyfile_store(dir.path());
    store.set("a", &s("value-a")).unwrap();
    store.set("b", &s("value-b")).unwrap();
    let mut doc = load_json(dir.path());
    let entries = doc["entries"].as_object_mut().unwrap();
    let a = entries["a"].clone();
    let b = entries["b"].clone();
    entries.insert("a".into(), b);
    entries.insert("b".into(), a.clone());
    // A copy of a's record under a new id must not open either.
    entries.insert("c".into(), a);
    save_json(dir.path(), &doc);
    for id in ["a", "b", "c"] {
        let err = store.get(id).unwrap_err();
        assert!(matches!(err, SecretError::Undecryptable { .. }), "{id}: {err:?}");
        assert!(!err.to_string().contains("value-"), "secret in error: {err}");
    }

    let mut doc = load_json(dir.path());
    doc["entries"]["a"]["ciphertext"] = "AAAA".into();
    doc["entries"]["b"]["nonce"] = "!!".into();
    save_json(dir.path(), &doc);
    assert!(matches!(store.get("a"), Err(SecretError::Undecryptable { .. })));
    assert!(matches!(store.get("b"), Err(SecretError::Corrupt { .. })));
}

#[test]
fn corrupt_or_newer_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(SECRETS_FILE), "{ not json").unwrap();
    let err = FileStore::open_with(dir.path(), KeyChoice::KeyFile).unwrap_err();
    assert!(matches!(err, SecretError::Corrupt { .. }), "{err:?}");

    let dir = tempfile::tempdir().unwrap();
    keyfile_store(dir.path()).set("a", &s("v")).unwrap();
    let mut doc = load_json(dir.path());
    doc["version"] = 99.into();
    save_json(dir.path(), &doc);
    let err = FileStore::open_with(dir.path(), KeyChoice::KeyFile).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}

#[cfg(unix)]
#[test]
fn files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let store = keyfile_store(dir.path());
    store.set("a", &s("v")).unwrap();
    for name in [SECRETS_FILE, MASTER_KEY_FILE, LOCK_FILE] {
        let mode = std::fs::metadata(dir.path().join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name} has mode {mode:o}");
    }
    // Still 0600 after a rewrite, even if someone loosened it.
    std::fs::set_permissions(dir.path().join(SECRETS_FILE), std::fs::Permissions::from_mode(0o644)).unwrap();
    store.set("b", &s("v")).unwrap();
    let mode = std::fs::metadata(dir.path().join(SECRETS_FILE)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let nested = dir.path().join("new/config");
    keyfile_store(&nested);
    let mode = std::fs::metadata(&nested).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn delete_removes_and_tolerates_missing() {
    let dir = tempfile::tempdir().unwrap();
    let store = keyfile_store(dir.path());
    store.delete("nothing").unwrap();
    assert!(!dir.path().join(SECRETS_FILE).exists(), "delete created the file");
    store.set("a", &s("1")).unwrap();
    store.set("b", &s("2")).unwrap();
    store.delete("a").unwrap();
    store.delete("a").unwrap();
    assert_eq!(get(&store, "a"), None);
    assert_eq!(get(&store, "b").as_deref(), Some("2"));
    assert_eq!(get(&keyfile_store(dir.path()), "a"), None);
}

#[test]
fn invalid_ids_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = keyfile_store(dir.path());
    for id in ["", "tab\t", "new\nline", "nul\0", &"x".repeat(MAX_ID_LEN + 1)] {
        assert!(matches!(store.set(id, &s("v")), Err(SecretError::InvalidId { .. })), "{id:?}");
        assert!(matches!(store.get(id), Err(SecretError::InvalidId { .. })), "{id:?}");
    }
    store.set(&"x".repeat(MAX_ID_LEN), &s("v")).unwrap();
    store.set("account:my account é:api_key", &s("v")).unwrap();
    assert_eq!(get(&store, "account:my account é:api_key").as_deref(), Some("v"));
}

#[test]
fn concurrent_writers_lose_nothing() {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let shared = Arc::new(keyfile_store(dir.path()));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let path = dir.path().to_path_buf();
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                // Half the threads use their own store (like separate
                // processes), half share one.
                let own;
                let store: &FileStore = if t % 2 == 0 {
                    own = keyfile_store(&path);
                    &own
                } else {
                    &shared
                };
                for i in 0..PER_THREAD {
                    store.set(&format!("t{t}:k{i}"), &s(&format!("v{t}-{i}"))).unwrap();
                }
                store.delete(&format!("t{t}:k0")).unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let store = keyfile_store(dir.path());
    for t in 0..THREADS {
        assert_eq!(get(&store, &format!("t{t}:k0")), None);
        for i in 1..PER_THREAD {
            assert_eq!(get(&store, &format!("t{t}:k{i}")), Some(format!("v{t}-{i}")));
        }
    }
    let doc = load_json(dir.path());
    assert_eq!(doc["entries"].as_object().unwrap().len(), THREADS * (PER_THREAD - 1));
}

#[test]
fn passphrase_stores_opened_before_the_file_existed_agree_on_the_salt() {
    let dir = tempfile::tempdir().unwrap();
    let a = FileStore::open_with(dir.path(), pass("p")).unwrap();
    let b = FileStore::open_with(dir.path(), pass("p")).unwrap();
    a.set("x", &s("from-a")).unwrap();
    b.set("y", &s("from-b")).unwrap();
    let c = FileStore::open_with(dir.path(), pass("p")).unwrap();
    assert_eq!(get(&c, "x").as_deref(), Some("from-a"));
    assert_eq!(get(&c, "y").as_deref(), Some("from-b"));
    assert_eq!(get(&a, "y").as_deref(), Some("from-b"));
}

#[test]
fn empty_file_can_switch_key_kind() {
    let dir = tempfile::tempdir().unwrap();
    let store = keyfile_store(dir.path());
    store.set("a", &s("v")).unwrap();
    store.delete("a").unwrap();
    let p = FileStore::open_with(dir.path(), pass("p")).unwrap();
    p.set("b", &s("w")).unwrap();
    assert_eq!(get(&p, "b").as_deref(), Some("w"));
    assert_eq!(load_json(dir.path())["kdf"]["type"], "argon2id");
}

/// Prints how long opening costs; run with
/// `cargo test --release -- --ignored --nocapture measure_open_cost`.
#[test]
#[ignore]
fn measure_open_cost() {
    let dir = tempfile::tempdir().unwrap();
    let real =
        KeyChoice::Passphrase { passphrase: Zeroizing::new("a passphrase".into()), params: KdfParams::default() };
    FileStore::open_with(dir.path(), real.clone()).unwrap().set("a", &s("v")).unwrap();
    for _ in 0..3 {
        let t = std::time::Instant::now();
        FileStore::open_with(dir.path(), real.clone()).unwrap();
        eprintln!("open with {MASTER_KEY_ENV} (argon2id, default params): {:?}", t.elapsed());
    }
    let dir = tempfile::tempdir().unwrap();
    keyfile_store(dir.path()).set("a", &s("v")).unwrap();
    let t = std::time::Instant::now();
    let store = keyfile_store(dir.path());
    eprintln!("open with master.key: {:?}", t.elapsed());
    let t = std::time::Instant::now();
    store.get("a").unwrap();
    eprintln!("get: {:?}", t.elapsed());
    let t = std::time::Instant::now();
    store.set("b", &s("v")).unwrap();
    eprintln!("set: {:?}", t.elapsed());
}
