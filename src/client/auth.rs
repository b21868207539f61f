//! Gateway (client) keys: generation, hashing, and the check on every API request.
//!
//! Only SHA-256 hashes are stored. Keys carry 256 random bits, so a fast hash is enough (no password stretching
//! needed), and every stored hash is compared in constant time without an early exit.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;

use super::ApiError;
use crate::config::ClientKey;
use crate::gateway::Gateway;

/// A new random gateway key: `lgw-` followed by 43 base64url characters (256 bits).
pub fn new_client_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("lgw-{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The SHA-256 of a key.
pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The gateway keys in force, with what each may do. Built from the config on every (re)load.
#[derive(Debug, Clone, Default)]
pub struct ClientKeySet {
    keys: Vec<KeyEntry>,
    general: usize,
}

#[derive(Debug, Clone)]
struct KeyEntry {
    hash: [u8; 32],
    loopback_only: bool,
}

/// What a matching key allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyScope {
    /// Any peer.
    Any,
    /// Only a loopback peer (a dedicated local key, e.g. Claude Code's).
    LoopbackOnly,
}

impl ClientKeySet {
    /// The keys of a config; entries whose hash is malformed (validation refuses them) are skipped.
    pub fn from_config(keys: &[ClientKey]) -> Self {
        let mut set = Self::default();
        for key in keys {
            let Some(hash) = hex::decode(&key.sha256).ok().and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok()) else {
                continue;
            };
            set.keys.push(KeyEntry { hash, loopback_only: key.loopback_only });
            set.general += usize::from(key.is_general());
        }
        set
    }

    /// Every key, dedicated ones included.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no key at all.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// General-purpose keys: with none, a loopback gateway is open (dedicated keys do not close it).
    pub fn general(&self) -> usize {
        self.general
    }

    /// The scope of `key` if it is one of the set, in time independent of which (if any) matches.
    pub fn check(&self, key: &str) -> Option<KeyScope> {
        let presented = hash_key(key);
        let mut found = subtle::Choice::from(0);
        let mut loopback_only = subtle::Choice::from(0);
        for entry in &self.keys {
            let hit = presented.ct_eq(&entry.hash);
            found |= hit;
            loopback_only |= hit & subtle::Choice::from(u8::from(entry.loopback_only));
        }
        match (bool::from(found), bool::from(loopback_only)) {
            (false, _) => None,
            (true, false) => Some(KeyScope::Any),
            (true, true) => Some(KeyScope::LoopbackOnly),
        }
    }
}

/// The header a client may send its gateway key in when `Authorization` carries something else (Claude Code
/// keeping its own claude.ai login sends the key here through `ANTHROPIC_CUSTOM_HEADERS`).
pub const GATEWAY_KEY_HEADER: &str = "x-llm-gateway-key";

/// The key a client presented: `x-llm-gateway-key`, else `x-api-key`, else `Authorization: Bearer`.
fn presented_key(request: &Request) -> Option<&str> {
    let headers = request.headers();
    for name in [GATEWAY_KEY_HEADER, "x-api-key"] {
        if let Some(key) = headers.get(name).and_then(|v| v.to_str().ok()) {
            return Some(key.trim());
        }
    }
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Whether the request comes from this machine. The peer address is the `ConnectInfo<SocketAddr>` extension the
/// server's accept loop inserts; without it (a server that does not record peers) only a loopback listen proves
/// the peer is local.
fn peer_is_loopback(request: &Request, listen_is_loopback: bool) -> bool {
    match request.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) => peer.ip().to_canonical().is_loopback(),
        None => listen_is_loopback,
    }
}

/// Whether a request may use the API: open when no general-purpose client key exists and the gateway listens on
/// loopback only; otherwise a valid gateway key is required (a loopback-only key from a loopback peer only).
fn authorize(keys: &ClientKeySet, listen_is_loopback: bool, request: &Request) -> Result<(), ApiError> {
    if keys.general() == 0 && listen_is_loopback {
        return Ok(());
    }
    let Some(key) = presented_key(request) else {
        return Err(ApiError::unauthorized(
            "missing gateway key: send it as the x-api-key header, as Authorization: Bearer <key>, or as \
             x-llm-gateway-key",
        ));
    };
    match keys.check(key) {
        Some(KeyScope::Any) => Ok(()),
        Some(KeyScope::LoopbackOnly) if peer_is_loopback(request, listen_is_loopback) => Ok(()),
        Some(KeyScope::LoopbackOnly) => {
            Err(ApiError::forbidden("this gateway key is accepted only from the gateway's own machine (loopback)"))
        }
        None => Err(ApiError::unauthorized("invalid gateway key")),
    }
}

/// Layer for the API routes: see [`authorize`].
pub async fn require_client_key(State(gateway): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    let live = gateway.live();
    match authorize(&live.client_keys, gateway.listen().ip().is_loopback(), &request) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_distinct_and_well_formed() {
        let a = new_client_key();
        let b = new_client_key();
        assert_ne!(a, b);
        assert!(a.starts_with("lgw-") && a.len() == 47, "{a}");
    }

    fn key(name: &str, secret: &str, purpose: Option<crate::config::KeyPurpose>, loopback_only: bool) -> ClientKey {
        ClientKey {
            name: name.into(),
            sha256: hex::encode(hash_key(secret)),
            prefix: String::new(),
            created_at: String::new(),
            purpose,
            loopback_only,
        }
    }

    #[test]
    fn matching_uses_the_hash_and_reports_the_scope() {
        let general = new_client_key();
        let local = new_client_key();
        let set = ClientKeySet::from_config(&[
            key("laptop", &general, None, false),
            key("claude-code", &local, Some(crate::config::KeyPurpose::ClaudeCode), true),
        ]);
        assert_eq!(set.check(&general), Some(KeyScope::Any));
        assert_eq!(set.check(&local), Some(KeyScope::LoopbackOnly));
        assert_eq!(set.check("lgw-wrong"), None);
        assert_eq!(ClientKeySet::default().check(&general), None);
    }

    fn request(headers: &[(&str, &str)], peer: Option<&str>) -> Request {
        let mut builder = http::Request::builder().uri("/v1/messages");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder.body(axum::body::Body::empty()).unwrap();
        if let Some(peer) = peer {
            request.extensions_mut().insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        }
        request
    }

    fn keys() -> (ClientKeySet, String, String) {
        let general = new_client_key();
        let local = new_client_key();
        let set = ClientKeySet::from_config(&[
            key("laptop", &general, None, false),
            key("claude-code", &local, Some(crate::config::KeyPurpose::ClaudeCode), true),
        ]);
        (set, general, local)
    }

    #[test]
    fn a_key_is_accepted_in_any_of_the_three_headers() {
        let (set, general, _) = keys();
        let bearer = format!("Bearer {general}");
        for header in [("x-api-key", general.as_str()), ("authorization", &bearer), (GATEWAY_KEY_HEADER, &general)] {
            assert!(authorize(&set, true, &request(&[header], None)).is_ok(), "{header:?}");
        }
        // Claude Code with its own login: its OAuth token in Authorization, the gateway key in the custom header.
        let own_login = [("authorization", "Bearer sk-ant-oat01-own"), (GATEWAY_KEY_HEADER, general.as_str())];
        assert!(authorize(&set, true, &request(&own_login, None)).is_ok());
        let err = authorize(&set, true, &request(&[("x-api-key", "lgw-wrong")], None)).unwrap_err();
        assert_eq!(err.status, http::StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn a_loopback_only_key_is_refused_from_another_machine() {
        let (set, _, local) = keys();
        let with = |peer: Option<&str>, listen_loopback: bool| {
            authorize(&set, listen_loopback, &request(&[(GATEWAY_KEY_HEADER, &local)], peer))
        };
        assert!(with(Some("127.0.0.1:50000"), false).is_ok());
        assert!(with(Some("[::1]:50000"), false).is_ok());
        assert!(with(Some("[::ffff:127.0.0.1]:50000"), false).is_ok());
        let err = with(Some("192.168.1.20:50000"), false).unwrap_err();
        assert_eq!(err.status, http::StatusCode::FORBIDDEN, "{}", err.message);
        // No recorded peer: only a loopback listen proves the peer is local.
        assert!(with(None, true).is_ok());
        assert!(with(None, false).is_err());
    }

    #[test]
    fn a_dedicated_key_alone_leaves_a_loopback_gateway_open() {
        let set = ClientKeySet::from_config(&[key(
            "claude-code",
            "lgw-x",
            Some(crate::config::KeyPurpose::ClaudeCode),
            true,
        )]);
        assert!(authorize(&set, true, &request(&[], None)).is_ok());
        assert!(authorize(&set, false, &request(&[], None)).is_err(), "never open on a non-loopback listen");
        let (set, ..) = keys();
        assert!(authorize(&set, true, &request(&[], None)).is_err(), "a general key closes it");
    }

    #[test]
    fn only_general_purpose_keys_count_for_the_loopback_open_mode() {
        let set = ClientKeySet::from_config(&[key(
            "claude-code",
            "lgw-x",
            Some(crate::config::KeyPurpose::ClaudeCode),
            true,
        )]);
        assert_eq!((set.len(), set.general()), (1, 0));
        let set = ClientKeySet::from_config(&[key("laptop", "lgw-y", None, false)]);
        assert_eq!((set.len(), set.general()), (1, 1));
    }
}
