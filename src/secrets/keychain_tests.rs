//! Tests for `KeychainStore` against simulated keychains; the real keychain
//! is exercised in `secrets/tests.rs` behind `LLM_GATEWAY_TEST_KEYCHAIN=1`.

use std::collections::HashMap;
use std::thread::sleep;

use super::*;

/// A keychain that works, held in memory.
#[derive(Debug, Default)]
pub(crate) struct MemoryKeychain {
    map: Mutex<HashMap<(String, String), Secret>>,
}

impl MemoryKeychain {
    pub(crate) fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }

    pub(crate) fn peek(&self, service: &str, id: &str) -> Option<String> {
        let map = self.map.lock().unwrap();
        map.get(&(service.to_string(), id.to_string())).map(|s| s.expose().to_string())
    }
}

impl KeychainBackend for MemoryKeychain {
    fn get(&self, service: &str, id: &str) -> Result<Option<Secret>, SecretError> {
        Ok(self.map.lock().unwrap().get(&(service.into(), id.into())).cloned())
    }
    fn set(&self, service: &str, id: &str, value: &Secret) -> Result<(), SecretError> {
        self.map.lock().unwrap().insert((service.into(), id.into()), value.clone());
        Ok(())
    }
    fn delete(&self, service: &str, id: &str) -> Result<(), SecretError> {
        self.map.lock().unwrap().remove(&(service.into(), id.into()));
        Ok(())
    }
}

/// A keychain whose every call blocks (like an unanswered unlock prompt).
#[derive(Debug)]
pub(crate) struct HangingKeychain(pub(crate) Duration);

impl KeychainBackend for HangingKeychain {
    fn get(&self, _: &str, _: &str) -> Result<Option<Secret>, SecretError> {
        sleep(self.0);
        Ok(None)
    }
    fn set(&self, _: &str, _: &str, _: &Secret) -> Result<(), SecretError> {
        sleep(self.0);
        Ok(())
    }
    fn delete(&self, _: &str, _: &str) -> Result<(), SecretError> {
        sleep(self.0);
        Ok(())
    }
}

/// A keychain that fails at once (like a missing D-Bus session).
#[derive(Debug)]
pub(crate) struct BrokenKeychain;

fn broken() -> SecretError {
    SecretError::KeychainUnavailable { reason: "simulated: no D-Bus session".into() }
}

impl KeychainBackend for BrokenKeychain {
    fn get(&self, _: &str, _: &str) -> Result<Option<Secret>, SecretError> {
        Err(broken())
    }
    fn set(&self, _: &str, _: &str, _: &Secret) -> Result<(), SecretError> {
        Err(broken())
    }
    fn delete(&self, _: &str, _: &str) -> Result<(), SecretError> {
        Err(broken())
    }
}

/// Panics on the id "boom", works otherwise.
#[derive(Debug, Default)]
struct PanickyKeychain(MemoryKeychain);

impl KeychainBackend for PanickyKeychain {
    fn get(&self, service: &str, id: &str) -> Result<Option<Secret>, SecretError> {
        assert_ne!(id, "boom", "simulated backend panic");
        self.0.get(service, id)
    }
    fn set(&self, service: &str, id: &str, value: &Secret) -> Result<(), SecretError> {
        self.0.set(service, id, value)
    }
    fn delete(&self, service: &str, id: &str) -> Result<(), SecretError> {
        self.0.delete(service, id)
    }
}

#[test]
fn round_trip_and_probe_on_a_working_keychain() {
    let mem = Arc::new(MemoryKeychain::default());
    let store = KeychainStore::with_backend("svc", mem.clone());
    assert_eq!(store.backend(), BackendKind::Keychain);
    store.probe(Duration::from_secs(2)).unwrap();
    assert_eq!(mem.len(), 0, "probe left its entry behind");
    assert!(store.get("a").unwrap().is_none());
    store.set("a", &Secret::new("v1")).unwrap();
    assert_eq!(mem.peek("svc", "a").as_deref(), Some("v1"));
    assert_eq!(store.get("a").unwrap().unwrap().expose(), "v1");
    store.delete("a").unwrap();
    store.delete("a").unwrap();
    assert!(store.get("a").unwrap().is_none());
    assert!(matches!(store.get("bad\nid"), Err(SecretError::InvalidId { .. })));
}

#[test]
fn hanging_keychain_times_out_and_then_fails_fast() {
    // Margins are wide so a loaded CI machine can't make this flaky.
    let store = KeychainStore::with_backend("svc", Arc::new(HangingKeychain(Duration::from_secs(10))))
        .with_timeout(Duration::from_secs(1));
    let t = Instant::now();
    let err = store.get("a").unwrap_err();
    assert!(matches!(err, SecretError::KeychainTimeout { op: "get", .. }), "{err:?}");
    assert!(t.elapsed() >= Duration::from_millis(900) && t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // The first call is still stuck: don't queue behind it for another second.
    sleep(Duration::from_millis(50));
    let t = Instant::now();
    let err = store.set("a", &Secret::new("v")).unwrap_err();
    assert!(matches!(err, SecretError::KeychainTimeout { .. }), "{err:?}");
    assert!(t.elapsed() < Duration::from_millis(500), "{:?}", t.elapsed());
}

#[test]
fn probe_times_out() {
    let store = KeychainStore::with_backend("svc", Arc::new(HangingKeychain(Duration::from_secs(3))));
    let t = Instant::now();
    let err = store.probe(Duration::from_millis(300)).unwrap_err();
    assert!(matches!(err, SecretError::KeychainTimeout { op: "probe", .. }), "{err:?}");
    assert!(t.elapsed() < Duration::from_millis(2300), "{:?}", t.elapsed());
}

#[test]
fn probe_reports_backend_errors() {
    let store = KeychainStore::with_backend("svc", Arc::new(BrokenKeychain));
    let err = store.probe(Duration::from_secs(1)).unwrap_err();
    assert!(err.to_string().contains("no D-Bus session"), "{err}");
}

#[test]
fn a_panicking_backend_does_not_kill_the_store() {
    let store = KeychainStore::with_backend("svc", Arc::new(PanickyKeychain::default()));
    let err = store.get("boom").unwrap_err();
    assert!(matches!(err, SecretError::Keychain { .. }), "{err:?}");
    store.set("ok", &Secret::new("v")).unwrap();
    assert_eq!(store.get("ok").unwrap().unwrap().expose(), "v");
}

#[test]
fn keyring_errors_never_carry_the_secret() {
    let err = keyring_error("get", keyring::Error::BadEncoding(b"sk-ant-secret\xff".to_vec()));
    assert!(!format!("{err:?} {err}").contains("sk-ant"), "{err:?}");
    let err = keyring_error("get", keyring::Error::NoStorageAccess("locked".into()));
    assert!(matches!(err, SecretError::KeychainUnavailable { .. }));
}

/// Guards the `keyring` feature flags: without them keyring 3 silently uses
/// an in-memory mock (secrets vanish at exit), and with `linux-native` alone
/// it uses the kernel keyring (lost at logout, needs `keyctl session`).
/// Building an entry does not contact the store, so this runs anywhere.
#[test]
fn keyring_default_store_is_the_real_os_store() {
    let entry = keyring::Entry::new(DEFAULT_SERVICE, "feature-check").unwrap();
    let credential = entry.get_credential();
    assert!(credential.downcast_ref::<keyring::mock::MockCredential>().is_none(), "keyring uses its mock store");
    #[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
    assert!(
        credential.downcast_ref::<keyring::secret_service::SsCredential>().is_some(),
        "keyring does not default to the Secret Service"
    );
}
