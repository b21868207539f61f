//! Browser sessions for the web UI: one-time sign-in codes, the sessions they open, and the limit on failed
//! code exchanges.
//!
//! A code is minted by the running gateway for someone who holds the admin token (`llm-gateway ui`, the desktop
//! app in-process); it works once, for [`CODE_TTL_MS`]. Exchanged, it opens a session whose random token the
//! browser keeps in an `HttpOnly` cookie. Only SHA-256 hashes of codes and session tokens are kept: codes in
//! memory, sessions also in [`SESSIONS_FILE`] beside the config (0600, written atomically), so a restarted
//! gateway keeps the UI signed in. Every expiry reads the gateway's clock ([`Gateway::now_ms`]).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::Gateway;
use crate::clock::rfc3339;
use crate::config::connect_url;
use crate::secrets::Secret;
use crate::secrets::keys::hash_key;

/// How long a sign-in code is accepted after it was minted.
pub const CODE_TTL_MS: u64 = 2 * 60 * 1000;
/// The session hashes beside the config file.
pub const SESSIONS_FILE: &str = "ui-sessions.json";
/// Failed code exchanges are counted over this sliding window.
pub const FAILURE_WINDOW_MS: u64 = 60 * 1000;
/// Failed exchanges one peer address may make per window; the next attempt is refused unchecked.
pub const MAX_FAILURES_PER_PEER: usize = 10;
/// Failed exchanges all peers together may make per window.
pub const MAX_FAILURES_TOTAL: usize = 30;
/// Codes kept at once (outstanding, or recently used/expired so their refusal can say why).
const MAX_CODES: usize = 64;
/// Sessions kept at once; beyond it the ones closest to expiry are dropped.
const MAX_SESSIONS: usize = 256;

/// A one-time sign-in code and the UI address that uses it. `Debug` hides the code.
#[derive(Clone, Serialize)]
pub struct UiCode {
    /// The code (URL-safe base64 of 192 random bits).
    pub code: String,
    /// `http://<loopback address>:PORT/ui/#code=<code>`: opening it signs the browser in.
    pub url: String,
    /// When the code stops being accepted (RFC 3339, UTC).
    pub expires_at: String,
}

impl std::fmt::Debug for UiCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiCode").field("code", &"[redacted]").field("expires_at", &self.expires_at).finish()
    }
}

/// A session just opened: the token goes into the browser's cookie and nowhere else.
#[derive(Debug)]
pub struct UiSession {
    /// The session token (256 random bits, URL-safe base64).
    pub token: Secret,
    /// When the session ends (Unix ms, gateway clock).
    pub expires_at_ms: u64,
    /// The session's lifetime in seconds (the cookie's `Max-Age`).
    pub max_age_secs: u64,
}

/// Why a code was not exchanged for a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// No such code was minted (or it was forgotten long ago).
    #[error("this sign-in code is not valid: run `llm-gateway ui` for a new one (each code works once, for 2 minutes)")]
    UnknownCode,
    /// The code was exchanged before.
    #[error("this sign-in code was already used: each code works once; run `llm-gateway ui` for a new one")]
    CodeUsed,
    /// The code is older than [`CODE_TTL_MS`].
    #[error("this sign-in code has expired (codes work for 2 minutes): run `llm-gateway ui` for a new one")]
    CodeExpired,
    /// Too many failed exchanges lately; nothing was checked.
    #[error("too many failed sign-in attempts: try again in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until an attempt is accepted again.
        retry_after_secs: u64,
    },
}

#[derive(Debug, Clone, Copy)]
struct CodeEntry {
    expires_at_ms: u64,
    used: bool,
}

#[derive(Debug, Default)]
struct State {
    codes: HashMap<[u8; 32], CodeEntry>,
    sessions: HashMap<[u8; 32], u64>,
    /// Failed exchanges within the window, oldest first (at most [`MAX_FAILURES_TOTAL`]: a limited attempt is
    /// not recorded, so this and the number of peers in it stay bounded).
    failures: VecDeque<(IpAddr, u64)>,
}

/// The store behind [`Gateway`]'s session methods: codes, sessions and failures, keyed by hashes.
#[derive(Debug)]
pub struct UiSessions {
    path: PathBuf,
    state: Mutex<State>,
    /// Held across a file write, so writes land in the order their snapshots were taken.
    write: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct SessionsFile {
    #[serde(default)]
    sessions: Vec<StoredSession>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredSession {
    /// SHA-256 of the session token, lowercase hex.
    sha256: String,
    /// Unix ms (gateway clock) after which the session is refused.
    expires_at_ms: u64,
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

impl UiSessions {
    /// An empty store whose sessions are persisted in [`SESSIONS_FILE`] in config directory `dir`.
    pub fn new(dir: &Path) -> Self {
        Self { path: dir.join(SESSIONS_FILE), state: Mutex::default(), write: tokio::sync::Mutex::new(()) }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new code valid until `now + CODE_TTL_MS`; returns the code and its expiry.
    fn mint(&self, now: u64) -> (String, u64) {
        let code = random_token(24);
        let expires_at_ms = now.saturating_add(CODE_TTL_MS);
        let mut state = self.state();
        // Keep spent and expired codes for one more TTL, so a late attempt is told why it failed.
        state.codes.retain(|_, c| c.expires_at_ms.saturating_add(CODE_TTL_MS) > now);
        while state.codes.len() >= MAX_CODES {
            let Some(oldest) = state.codes.iter().min_by_key(|(_, c)| c.expires_at_ms).map(|(h, _)| *h) else { break };
            state.codes.remove(&oldest);
        }
        state.codes.insert(hash_key(&code), CodeEntry { expires_at_ms, used: false });
        (code, expires_at_ms)
    }

    /// Spends `code` and opens a session of `lifetime_ms`, unless `peer` or everyone failed too often lately.
    fn exchange(&self, code: &str, peer: IpAddr, now: u64, lifetime_ms: u64) -> Result<UiSession, SessionError> {
        let mut state = self.state();
        let window_start = now.saturating_sub(FAILURE_WINDOW_MS);
        while state.failures.front().is_some_and(|(_, at)| *at <= window_start) {
            state.failures.pop_front();
        }
        let retry_after = |first_at: u64| (first_at + FAILURE_WINDOW_MS).saturating_sub(now).div_ceil(1000).max(1);
        if state.failures.len() >= MAX_FAILURES_TOTAL {
            let first = state.failures.front().map_or(now, |(_, at)| *at);
            return Err(SessionError::RateLimited { retry_after_secs: retry_after(first) });
        }
        let mut from_peer = state.failures.iter().filter(|(ip, _)| *ip == peer);
        if let Some((_, first)) = from_peer.next().copied()
            && 1 + from_peer.count() >= MAX_FAILURES_PER_PEER
        {
            return Err(SessionError::RateLimited { retry_after_secs: retry_after(first) });
        }
        let outcome = match state.codes.get_mut(&hash_key(code)) {
            None => Err(SessionError::UnknownCode),
            Some(entry) if entry.used => Err(SessionError::CodeUsed),
            Some(entry) if now >= entry.expires_at_ms => Err(SessionError::CodeExpired),
            Some(entry) => {
                entry.used = true;
                Ok(())
            }
        };
        if let Err(e) = outcome {
            state.failures.push_back((peer, now));
            return Err(e);
        }
        let token = random_token(32);
        let expires_at_ms = now.saturating_add(lifetime_ms);
        state.sessions.retain(|_, expires| *expires > now);
        while state.sessions.len() >= MAX_SESSIONS {
            let Some(first) = state.sessions.iter().min_by_key(|(_, e)| **e).map(|(h, _)| *h) else { break };
            state.sessions.remove(&first);
        }
        state.sessions.insert(hash_key(&token), expires_at_ms);
        Ok(UiSession { token: Secret::new(token), expires_at_ms, max_age_secs: lifetime_ms / 1000 })
    }

    /// Whether `token` names a session that has not expired at `now` (an expired one is forgotten).
    fn check(&self, token: &str, now: u64) -> bool {
        let hash = hash_key(token);
        let mut state = self.state();
        match state.sessions.get(&hash) {
            Some(expires) if now < *expires => true,
            Some(_) => {
                state.sessions.remove(&hash);
                false
            }
            None => false,
        }
    }

    /// Forgets the session of `token`; whether there was one.
    fn forget(&self, token: &str) -> bool {
        self.state().sessions.remove(&hash_key(token)).is_some()
    }

    /// Writes the sessions still valid at `now` to the file (atomic, 0600). A failure is logged: the sessions
    /// keep working in memory, they just would not survive a restart.
    async fn persist(&self, now: u64) {
        let _order = self.write.lock().await;
        let file = {
            let state = self.state();
            let sessions = state
                .sessions
                .iter()
                .filter(|(_, expires)| **expires > now)
                .map(|(hash, expires)| StoredSession { sha256: hex::encode(hash), expires_at_ms: *expires })
                .collect();
            SessionsFile { sessions }
        };
        let path = self.path.clone();
        let written = tokio::task::spawn_blocking(move || {
            let json = serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?;
            crate::config::write_private(&path, &json).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        if let Err(e) = written {
            tracing::warn!(path = %self.path.display(), "UI sessions not saved (they end if the gateway restarts): {e}");
        }
    }

    /// Reads the file's sessions still valid at `now` (an unreadable file is logged and ignored); rewrites the
    /// file when expired ones were dropped.
    async fn load(&self, now: u64) {
        let path = self.path.clone();
        let read = tokio::task::spawn_blocking(move || match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<SessionsFile>(&bytes).map(Some).map_err(|e| e.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        let file = match read {
            Ok(Some(file)) => file,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), "UI sessions unreadable, starting without them: {e}");
                return;
            }
        };
        let stored = file.sessions.len();
        let mut valid: Vec<([u8; 32], u64)> = file
            .sessions
            .iter()
            .filter(|s| s.expires_at_ms > now)
            .filter_map(|s| Some((<[u8; 32]>::try_from(hex::decode(&s.sha256).ok()?).ok()?, s.expires_at_ms)))
            .collect();
        valid.sort_by_key(|(_, expires)| std::cmp::Reverse(*expires));
        valid.truncate(MAX_SESSIONS);
        let kept = valid.len();
        self.state().sessions.extend(valid);
        if kept != stored {
            self.persist(now).await;
        }
    }
}

impl Gateway {
    /// Mints a one-time UI sign-in code (single use, valid for 2 minutes; only its hash is kept). For callers
    /// holding the admin token: the admin API's `POST /admin/api/v1/session/code`, and the desktop app directly.
    pub fn mint_ui_code(&self) -> UiCode {
        let (code, expires_at_ms) = self.ui_sessions.mint(self.now_ms());
        UiCode {
            url: format!("{}/ui/#code={code}", connect_url(self.listen)),
            code,
            expires_at: rfc3339(expires_at_ms),
        }
    }

    /// Exchanges a sign-in code from `peer` for a new session of `server.ui_session_hours`, persisted before
    /// this returns. Failed exchanges are limited per peer and overall ([`SessionError::RateLimited`]).
    pub async fn open_ui_session(&self, code: &str, peer: IpAddr) -> Result<UiSession, SessionError> {
        let now = self.now_ms();
        let lifetime_ms = self.live().config.server.ui_session_hours.saturating_mul(3_600_000);
        let session = self.ui_sessions.exchange(code, peer, now, lifetime_ms)?;
        self.ui_sessions.persist(now).await;
        Ok(session)
    }

    /// Whether a session cookie's token is a live session.
    pub fn ui_session_valid(&self, token: &str) -> bool {
        self.ui_sessions.check(token, self.now_ms())
    }

    /// Ends the session of `token` (signing out); the file is rewritten when there was one.
    pub async fn close_ui_session(&self, token: &str) {
        if self.ui_sessions.forget(token) {
            self.ui_sessions.persist(self.now_ms()).await;
        }
    }

    /// Loads the sessions a previous run of this gateway saved (at start, before serving).
    pub(crate) async fn load_ui_sessions(&self) {
        self.ui_sessions.load(self.now_ms()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000;
    const T0: u64 = 1_700_000_000_000;

    fn peer(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_code_is_long_url_safe_and_opens_one_session() {
        let dir = tempfile::tempdir().unwrap();
        let store = UiSessions::new(dir.path());
        let (code, expires) = store.mint(T0);
        assert_eq!(expires, T0 + CODE_TTL_MS);
        assert!(code.len() >= 22, "at least 128 bits: {code}");
        assert!(code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{code}");
        let session = store.exchange(&code, peer(1), T0 + 1, 12 * HOUR).unwrap();
        assert_eq!(session.max_age_secs, 12 * 3600);
        assert!(store.check(session.token.expose(), T0 + 12 * HOUR));
        assert_eq!(store.exchange(&code, peer(1), T0 + 2, HOUR).unwrap_err(), SessionError::CodeUsed);
        assert_ne!(store.mint(T0).0, code, "codes are random");
    }

    #[test]
    fn codes_expire_after_two_minutes_and_sessions_after_their_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let store = UiSessions::new(dir.path());
        let (code, _) = store.mint(T0);
        assert_eq!(store.exchange(&code, peer(1), T0 + CODE_TTL_MS, HOUR).unwrap_err(), SessionError::CodeExpired);
        let (code, _) = store.mint(T0);
        let session = store.exchange(&code, peer(1), T0 + CODE_TTL_MS - 1, HOUR).unwrap();
        let end = T0 + CODE_TTL_MS - 1 + HOUR;
        assert!(store.check(session.token.expose(), end - 1));
        assert!(!store.check(session.token.expose(), end));
        assert!(!store.check(session.token.expose(), end - 1), "an expired session is forgotten");
        assert_eq!(store.exchange("made-up", peer(1), T0, HOUR).unwrap_err(), SessionError::UnknownCode);
    }

    #[test]
    fn failed_exchanges_are_limited_per_peer_and_overall_but_successes_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = UiSessions::new(dir.path());
        for _ in 0..20 {
            let (code, _) = store.mint(T0);
            store.exchange(&code, peer(1), T0, HOUR).unwrap();
        }
        for i in 0..MAX_FAILURES_PER_PEER as u64 {
            assert_eq!(store.exchange("wrong", peer(1), T0 + i, HOUR).unwrap_err(), SessionError::UnknownCode);
        }
        // The 11th attempt is refused without looking at the code, even a good one.
        let (good, _) = store.mint(T0);
        let limited = store.exchange(&good, peer(1), T0 + 20, HOUR).unwrap_err();
        assert_eq!(limited, SessionError::RateLimited { retry_after_secs: 60 });
        // Another peer is not affected, until all peers together reach the overall limit.
        store.exchange(&good, peer(2), T0 + 20, HOUR).unwrap();
        for i in 0..(MAX_FAILURES_TOTAL - MAX_FAILURES_PER_PEER) as u8 {
            assert!(store.exchange("wrong", peer(100 + i), T0 + 30, HOUR).is_err());
        }
        let (good, _) = store.mint(T0 + 30);
        assert!(matches!(store.exchange(&good, peer(3), T0 + 31, HOUR), Err(SessionError::RateLimited { .. })));
        // A minute after the first failures, attempts are checked again.
        let retry = T0 + FAILURE_WINDOW_MS + 30;
        store.exchange(&good, peer(1), retry, HOUR).unwrap();
    }

    #[tokio::test]
    async fn sessions_are_saved_as_hashes_and_reloaded_without_expired_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = UiSessions::new(dir.path());
        let (short_code, _) = store.mint(T0);
        let short = store.exchange(&short_code, peer(1), T0, HOUR).unwrap();
        let (long_code, _) = store.mint(T0);
        let long = store.exchange(&long_code, peer(1), T0, 12 * HOUR).unwrap();
        store.persist(T0).await;
        let path = dir.path().join(SESSIONS_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        for secret in [short.token.expose(), long.token.expose(), &short_code, &long_code] {
            assert!(!text.contains(secret), "no token or code in the file: {text}");
        }
        assert!(text.contains(&hex::encode(hash_key(long.token.expose()))), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }

        let restarted = UiSessions::new(dir.path());
        restarted.load(T0 + 2 * HOUR).await;
        assert!(restarted.check(long.token.expose(), T0 + 2 * HOUR));
        assert!(!restarted.check(short.token.expose(), T0 + 2 * HOUR));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&hex::encode(hash_key(short.token.expose()))), "pruned at load: {text}");
    }

    #[tokio::test]
    async fn an_unreadable_sessions_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SESSIONS_FILE), b"{not json").unwrap();
        let store = UiSessions::new(dir.path());
        store.load(T0).await;
        assert!(store.state().sessions.is_empty());
        let (code, _) = store.mint(T0);
        store.exchange(&code, peer(1), T0, HOUR).unwrap();
    }
}
