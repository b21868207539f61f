//! [`KeychainStore`]: secrets in the OS keychain (macOS Keychain, Windows
//! Credential Manager, Secret Service over D-Bus on Linux/BSD) via `keyring`.
//!
//! Any keychain call can block indefinitely (no D-Bus, a locked keyring
//! showing an unlock prompt), so every call runs on a worker thread and the
//! caller waits at most a timeout. A call that times out is left to finish on
//! its own; while it is still stuck, further calls fail at once instead of
//! queueing behind it.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use zeroize::Zeroize as _;

use super::crypto::random_bytes;
use super::{BackendKind, Secret, SecretError, SecretStore, validate_id};

/// The keychain service name used by the gateway.
pub const DEFAULT_SERVICE: &str = "llm-gateway";

/// How long a single get/set/delete may take before it is reported as
/// [`SecretError::KeychainTimeout`]. Long enough for a Secret Service round
/// trip on a loaded machine, short enough not to stall a request for long.
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_secs(5);

/// The raw keychain operations; a seam so tests can simulate a keychain that
/// hangs or fails without touching the real one.
pub(crate) trait KeychainBackend: Send + Sync + fmt::Debug + 'static {
    fn get(&self, service: &str, id: &str) -> Result<Option<Secret>, SecretError>;
    fn set(&self, service: &str, id: &str, value: &Secret) -> Result<(), SecretError>;
    fn delete(&self, service: &str, id: &str) -> Result<(), SecretError>;
}

/// The real OS keychain through the `keyring` crate's default store.
#[derive(Debug)]
struct OsKeychain;

fn keyring_error(op: &'static str, err: keyring::Error) -> SecretError {
    match err {
        keyring::Error::NoStorageAccess(e) => SecretError::KeychainUnavailable { reason: format!("{op}: {e}") },
        keyring::Error::BadEncoding(mut bytes) => {
            // The raw bytes are the stored secret: wipe them, never print them.
            bytes.zeroize();
            SecretError::Keychain { op, reason: "the stored value is not UTF-8".into() }
        }
        other => SecretError::Keychain { op, reason: other.to_string() },
    }
}

impl KeychainBackend for OsKeychain {
    fn get(&self, service: &str, id: &str) -> Result<Option<Secret>, SecretError> {
        let entry = keyring::Entry::new(service, id).map_err(|e| keyring_error("get", e))?;
        match entry.get_password() {
            Ok(value) => Ok(Some(Secret::from(value))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keyring_error("get", e)),
        }
    }

    fn set(&self, service: &str, id: &str, value: &Secret) -> Result<(), SecretError> {
        let entry = keyring::Entry::new(service, id).map_err(|e| keyring_error("set", e))?;
        entry.set_password(value.expose()).map_err(|e| keyring_error("set", e))
    }

    fn delete(&self, service: &str, id: &str) -> Result<(), SecretError> {
        let entry = keyring::Entry::new(service, id).map_err(|e| keyring_error("delete", e))?;
        match entry.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(keyring_error("delete", e)),
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Milliseconds since `epoch`, plus one so a job started in the first
/// millisecond isn't read as "idle" (0).
fn ms_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
}

/// The single worker thread that talks to the keychain. One thread, not one
/// per call: keyring's docs warn that concurrent Secret Service calls can
/// fail, and a hung keychain then costs one thread, not one per request.
struct Worker {
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    /// Milliseconds since `epoch` at which the running job started, 0 = idle.
    busy_since: Arc<AtomicU64>,
    epoch: Instant,
}

impl Worker {
    fn new() -> Self {
        Worker { sender: Mutex::new(None), busy_since: Arc::new(AtomicU64::new(0)), epoch: Instant::now() }
    }

    fn now_ms(&self) -> u64 {
        ms_since(self.epoch)
    }

    /// How long the current job has been running, if any.
    fn stuck_for(&self) -> Option<Duration> {
        match self.busy_since.load(Ordering::Acquire) {
            0 => None,
            since => Some(Duration::from_millis(self.now_ms().saturating_sub(since))),
        }
    }

    fn submit(&self, job: Job) -> Result<(), SecretError> {
        let mut sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        let job = match sender.as_ref() {
            Some(tx) => match tx.send(job) {
                Ok(()) => return Ok(()),
                // The thread is gone; start a new one below.
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let busy = Arc::clone(&self.busy_since);
        let epoch = self.epoch;
        std::thread::Builder::new()
            .name("keychain".into())
            .spawn(move || {
                for job in rx {
                    busy.store(ms_since(epoch), Ordering::Release);
                    // A panic inside a platform backend must not kill the
                    // worker; the caller sees a closed reply channel instead.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                    busy.store(0, Ordering::Release);
                }
            })
            .map_err(|e| SecretError::KeychainUnavailable {
                reason: format!("cannot start the keychain thread: {e}"),
            })?;
        tx.send(job).map_err(|_| SecretError::KeychainUnavailable { reason: "the keychain thread exited".into() })?;
        *sender = Some(tx);
        Ok(())
    }
}

/// Secrets in the OS keychain under one service name, one entry per id
/// (the id is the keychain "user"/account name).
pub struct KeychainStore {
    service: String,
    op_timeout: Duration,
    backend: Arc<dyn KeychainBackend>,
    worker: Worker,
}

impl fmt::Debug for KeychainStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeychainStore")
            .field("service", &self.service)
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }
}

impl KeychainStore {
    /// A store for `service` (the gateway uses [`DEFAULT_SERVICE`]). Nothing
    /// is contacted until the first call; use [`KeychainStore::probe`] to
    /// find out whether the keychain works.
    pub fn new(service: &str) -> Self {
        Self::with_backend(service, Arc::new(OsKeychain))
    }

    pub(crate) fn with_backend(service: &str, backend: Arc<dyn KeychainBackend>) -> Self {
        KeychainStore { service: service.to_string(), op_timeout: DEFAULT_OP_TIMEOUT, backend, worker: Worker::new() }
    }

    /// Sets the timeout for each get/set/delete (default [`DEFAULT_OP_TIMEOUT`]).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.op_timeout = timeout;
        self
    }

    /// The service name entries are stored under.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Runs `f` on the worker thread and waits at most `timeout` for it.
    fn run<T: Send + 'static>(
        &self,
        op: &'static str,
        timeout: Duration,
        f: impl FnOnce(&dyn KeychainBackend, &str) -> Result<T, SecretError> + Send + 'static,
    ) -> Result<T, SecretError> {
        if let Some(stuck) = self.worker.stuck_for()
            && stuck >= self.op_timeout.min(timeout)
        {
            return Err(SecretError::KeychainTimeout { op, timeout });
        }
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        let backend = Arc::clone(&self.backend);
        let service = self.service.clone();
        self.worker.submit(Box::new(move || {
            // If the caller gave up, the result (maybe a secret) is dropped
            // here and zeroized.
            let _ = reply_tx.send(f(backend.as_ref(), &service));
        }))?;
        match reply_rx.recv_timeout(timeout) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                tracing::warn!(
                    op,
                    timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                    service = %self.service,
                    "OS keychain call timed out; it may complete later in the background"
                );
                Err(SecretError::KeychainTimeout { op, timeout })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(SecretError::Keychain { op, reason: "the keychain backend panicked".into() })
            }
        }
    }

    /// Checks that the OS keychain really works with a round trip (set, get,
    /// delete of a uniquely named probe entry) on the worker thread, giving
    /// up after `timeout`. `keyring` silently falls back to an in-memory mock
    /// store on platforms it was built without support for; this module's
    /// features avoid that, and a round trip is the only reliable check that
    /// a Secret Service provider is running and unlocked.
    pub fn probe(&self, timeout: Duration) -> Result<(), SecretError> {
        let suffix = u64::from_le_bytes(random_bytes::<8>()?);
        let id = format!("probe:{}:{suffix:016x}", std::process::id());
        let expected = Secret::new(format!("probe-{suffix:016x}"));
        self.run("probe", timeout, move |backend, service| {
            backend.set(service, &id, &expected)?;
            let read = backend.get(service, &id);
            let deleted = backend.delete(service, &id);
            match read? {
                Some(value) if value.expose() == expected.expose() => deleted,
                Some(_) => Err(SecretError::Keychain {
                    op: "probe",
                    reason: "the probe entry read back with a different value".into(),
                }),
                None => Err(SecretError::Keychain {
                    op: "probe",
                    reason: "the probe entry was not found right after writing it".into(),
                }),
            }
        })
    }
}

impl SecretStore for KeychainStore {
    fn get(&self, id: &str) -> Result<Option<Secret>, SecretError> {
        validate_id(id)?;
        let id = id.to_string();
        self.run("get", self.op_timeout, move |b, service| b.get(service, &id))
    }

    fn set(&self, id: &str, value: &Secret) -> Result<(), SecretError> {
        validate_id(id)?;
        let id = id.to_string();
        let value = value.clone();
        self.run("set", self.op_timeout, move |b, service| b.set(service, &id, &value))
    }

    fn delete(&self, id: &str) -> Result<(), SecretError> {
        validate_id(id)?;
        let id = id.to_string();
        self.run("delete", self.op_timeout, move |b, service| b.delete(service, &id))
    }

    fn backend(&self) -> BackendKind {
        BackendKind::Keychain
    }
}

#[cfg(test)]
#[path = "keychain_tests.rs"]
pub(crate) mod tests;
