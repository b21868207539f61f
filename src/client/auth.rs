//! Client-key authentication on every API request (the keys themselves: `secrets::keys`).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;

use super::ApiError;
use crate::config::ClientKey;
use crate::gateway::Gateway;
use crate::proxy::Recorder;
use crate::secrets::keys::{AuthenticatedKey, ClientKeySet, GATEWAY_KEY_HEADER, KeyScope, hash_key};
use crate::usage::{Outcome, Route};
use subtle::ConstantTimeEq;

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
/// loopback only; otherwise a valid gateway key is required (a loopback-only key from a loopback peer only). The
/// key that matched, if any (on an open gateway a dedicated key still names its requests).
fn authorize(
    keys: &ClientKeySet,
    listen_is_loopback: bool,
    request: &Request,
) -> Result<Option<Arc<ClientKey>>, ApiError> {
    if keys.open_without_key(listen_is_loopback) {
        let known = presented_key(request).and_then(|k| keys.find(k));
        return Ok(known
            .filter(|(scope, _)| *scope == KeyScope::Any || peer_is_loopback(request, true))
            .map(|(_, k)| k));
    }
    let Some(key) = presented_key(request) else {
        return Err(ApiError::unauthorized(
            "missing gateway key: send it as the x-api-key header, as Authorization: Bearer <key>, or as \
             x-llm-gateway-key",
        ));
    };
    match keys.find(key) {
        Some((KeyScope::Any, key)) => Ok(Some(key)),
        Some((KeyScope::LoopbackOnly, key)) if peer_is_loopback(request, listen_is_loopback) => Ok(Some(key)),
        Some((KeyScope::LoopbackOnly, _)) => {
            Err(ApiError::forbidden("this gateway key is accepted only from the gateway's own machine (loopback)"))
        }
        None => Err(ApiError::unauthorized("invalid gateway key")),
    }
}

/// Whether a request may read `/metrics`: always on a loopback listen; beyond loopback only with a gateway key
/// (as for the API) or the admin token (`Authorization: Bearer`).
pub(super) fn may_read_metrics(gateway: &Gateway, request: &Request) -> bool {
    let listen_is_loopback = gateway.listen().ip().is_loopback();
    if listen_is_loopback {
        return true;
    }
    let Some(key) = presented_key(request) else {
        return false;
    };
    if bool::from(hash_key(key).ct_eq(gateway.admin_token_hash())) {
        return true;
    }
    matches!(authorize(&gateway.live().client_keys, listen_is_loopback, request), Ok(Some(_)))
}

/// The route of an API request, for its usage record.
fn route_of(path: &str) -> Route {
    match path {
        "/v1/messages/count_tokens" => Route::CountTokens,
        "/v1/models" => Route::Models,
        "/v1/chat/completions" => Route::ChatCompletions,
        _ => Route::Messages,
    }
}

/// Layer for the API routes: see [`authorize`]. The key that authenticated the request goes with it (a request
/// extension) for its record and its limits; a refused request is recorded here.
pub async fn require_client_key(State(gateway): State<Arc<Gateway>>, mut request: Request, next: Next) -> Response {
    let live = gateway.live();
    match authorize(&live.client_keys, gateway.listen().ip().is_loopback(), &request) {
        Ok(key) => {
            drop(live);
            if let Some(key) = key {
                request.extensions_mut().insert(AuthenticatedKey(key));
            }
            next.run(request).await
        }
        Err(e) => {
            let outcome =
                if e.status == http::StatusCode::FORBIDDEN { Outcome::DeniedByKey } else { Outcome::Unauthorized };
            let route = route_of(request.uri().path());
            Recorder::start(&gateway, route, request.headers(), request.extensions()).refuse(e, outcome).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClientKey;
    use crate::secrets::keys::{hash_key, new_client_key};

    fn key(name: &str, secret: &str, purpose: Option<crate::config::KeyPurpose>, loopback_only: bool) -> ClientKey {
        ClientKey {
            name: name.into(),
            sha256: hex::encode(hash_key(secret)),
            prefix: String::new(),
            created_at: String::new(),
            purpose,
            loopback_only,
            ..ClientKey::default()
        }
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
        // The matching key goes with the request (its name for the log, its limits for the proxy).
        let matched = authorize(&set, true, &request(&[("x-api-key", &general)], None)).unwrap();
        assert_eq!(matched.map(|k| k.name.clone()).as_deref(), Some("laptop"));
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
