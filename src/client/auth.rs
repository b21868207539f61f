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

use super::ApiError;
use crate::gateway::Gateway;
use std::sync::Arc;

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

/// The key a client presented: `x-api-key`, else `Authorization: Bearer`.
fn presented_key(request: &Request) -> Option<&str> {
    let headers = request.headers();
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key.trim());
    }
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Whether `key` matches one of `hashes`, in time independent of which (if any) matches.
pub(crate) fn key_matches(key: &str, hashes: &[[u8; 32]]) -> bool {
    let presented = hash_key(key);
    let mut found = subtle::Choice::from(0);
    for stored in hashes {
        found |= presented.ct_eq(stored);
    }
    found.into()
}

/// Layer for the API routes: open when no client key exists and the gateway listens on loopback only; otherwise
/// a valid gateway key is required.
pub async fn require_client_key(State(gateway): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    let live = gateway.live();
    if live.client_keys.is_empty() && gateway.listen().ip().is_loopback() {
        return next.run(request).await;
    }
    match presented_key(&request) {
        None => ApiError::unauthorized(
            "missing gateway key: send it as the x-api-key header or as Authorization: Bearer <key>",
        )
        .into_response(),
        Some(key) if key_matches(key, &live.client_keys) => next.run(request).await,
        Some(_) => ApiError::unauthorized("invalid gateway key").into_response(),
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

    #[test]
    fn matching_uses_the_hash() {
        let key = new_client_key();
        let hashes = [hash_key("other"), hash_key(&key)];
        assert!(key_matches(&key, &hashes));
        assert!(!key_matches("lgw-wrong", &hashes));
        assert!(!key_matches(&key, &[]));
    }
}
