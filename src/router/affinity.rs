//! Session affinity: a session's requests stay on one account while it is usable, so the upstream prompt cache
//! stays warm. Sharded map (no global lock); idle sessions expire after the configured TTL.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

#[derive(Debug, Clone)]
struct Entry {
    account_id: Arc<str>,
    expires_ms: u64,
}

/// Session key hash → account id.
#[derive(Debug, Default)]
pub struct Affinity {
    map: DashMap<u64, Entry>,
    writes: AtomicU64,
}

impl Affinity {
    /// The account a live session is bound to.
    pub fn get(&self, session: u64, now_ms: u64) -> Option<Arc<str>> {
        let entry = self.map.get(&session)?;
        (entry.expires_ms > now_ms).then(|| entry.account_id.clone())
    }

    /// Binds (or re-binds) a session; returns the previous account when the session moved.
    pub fn bind(&self, session: u64, account_id: &str, now_ms: u64, ttl_ms: u64) -> Option<Arc<str>> {
        let expires_ms = now_ms.saturating_add(ttl_ms);
        let previous = match self.map.get_mut(&session) {
            Some(mut entry) if &*entry.account_id == account_id => {
                entry.expires_ms = expires_ms;
                return None;
            }
            Some(entry) if entry.expires_ms > now_ms => Some(entry.account_id.clone()),
            _ => None,
        };
        self.map.insert(session, Entry { account_id: Arc::from(account_id), expires_ms });
        // Sweep expired sessions now and then so the map stays bounded by live sessions.
        if self.writes.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            self.map.retain(|_, e| e.expires_ms > now_ms);
        }
        previous
    }

    /// Number of sessions held (expired ones included until the next sweep).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
