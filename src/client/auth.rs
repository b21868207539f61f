//! Client-key authentication on every API request (the keys themselves: `secrets::keys`).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;

use super::ApiError;
use crate::config::{ClientKey, OwnLogin};
use crate::gateway::{CredentialHeader, Gateway, OwnCredential};
use crate::proxy::Recorder;
use crate::secrets::keys::{AuthenticatedKey, ClientKeySet, GATEWAY_KEY_HEADER, KeyScope, hash_key};
use crate::usage::{Outcome, Route};
use subtle::ConstantTimeEq;

/// The key a client presented: `x-llm-gateway-key`, else `x-api-key`, else `Authorization: Bearer` — leaving out
/// the header that carries the client's own Anthropic credential (`own`), which is never a gateway key.
fn presented_key(request: &Request, own: Option<CredentialHeader>) -> Option<&str> {
    let headers = request.headers();
    if let Some(key) = headers.get(GATEWAY_KEY_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(key.trim());
    }
    if own != Some(CredentialHeader::XApiKey)
        && let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok())
    {
        return Some(key.trim());
    }
    if own == Some(CredentialHeader::Authorization) {
        return None;
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
    own: Option<CredentialHeader>,
) -> Result<Option<Arc<ClientKey>>, ApiError> {
    if keys.open_without_key(listen_is_loopback) {
        let known = presented_key(request, own).and_then(|k| keys.find(k));
        return Ok(known
            .filter(|(scope, _)| *scope == KeyScope::Any || peer_is_loopback(request, true))
            .map(|(_, k)| k));
    }
    let Some(key) = presented_key(request, own) else {
        if own.is_some() {
            return Err(ApiError::unauthorized(
                "missing gateway key: this request carries its own Anthropic login, which the gateway forwards, \
                 and the gateway needs its own key beside it in the x-llm-gateway-key header (Claude Code: \
                 ANTHROPIC_CUSTOM_HEADERS='x-llm-gateway-key: lgw-…'; `llm-gateway claude-code setup` writes it)",
            ));
        }
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
    let Some(key) = presented_key(request, None) else {
        return false;
    };
    if bool::from(hash_key(key).ct_eq(gateway.admin_token_hash())) {
        return true;
    }
    matches!(authorize(&gateway.live().client_keys, listen_is_loopback, request, None), Ok(Some(_)))
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

/// The 401 for a client's own credential under `subscriptions.own_login: refuse`.
const OWN_LOGIN_REFUSED: &str = "this request carries its own Anthropic credential (a claude.ai login or an API \
     key), and this gateway does not forward those (subscriptions.own_login: refuse). Use a gateway key instead: \
     `llm-gateway claude-code setup` configures Claude Code with one, or set ANTHROPIC_API_KEY to a key from \
     `llm-gateway add-client-key` (and sign Claude Code out of claude.ai, or unset CLAUDE_CODE_OAUTH_TOKEN)";

/// Layer for the API routes: see [`authorize`]. The key that authenticated the request goes with it (a request
/// extension) for its record and its limits, and so does what the request's own Anthropic credential is (its
/// kind and a hash, never the credential: the proxy then forwards the request with it). A refused request is
/// recorded here.
pub async fn require_client_key(State(gateway): State<Arc<Gateway>>, mut request: Request, next: Next) -> Response {
    let live = gateway.live();
    let own = OwnCredential::find(request.headers(), |v| live.client_keys.find(v).is_some());
    let refused = own.is_some() && live.config.subscriptions.own_login == OwnLogin::Refuse;
    let authorized = if refused {
        Err(ApiError::unauthorized(OWN_LOGIN_REFUSED))
    } else {
        authorize(&live.client_keys, gateway.listen().ip().is_loopback(), &request, own.as_ref().map(|o| o.header))
    };
    match authorized {
        Ok(key) => {
            drop(live);
            if let Some(key) = key {
                request.extensions_mut().insert(AuthenticatedKey(key));
            }
            if let Some(own) = own {
                request.extensions_mut().insert(own);
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
            assert!(authorize(&set, true, &request(&[header], None), None).is_ok(), "{header:?}");
        }
        // The matching key goes with the request (its name for the log, its limits for the proxy).
        let matched = authorize(&set, true, &request(&[("x-api-key", &general)], None), None).unwrap();
        assert_eq!(matched.map(|k| k.name.clone()).as_deref(), Some("laptop"));
        // Claude Code with its own login: its OAuth token in Authorization, the gateway key in the custom header.
        let own_login = [("authorization", "Bearer sk-ant-oat01-own"), (GATEWAY_KEY_HEADER, general.as_str())];
        assert!(authorize(&set, true, &request(&own_login, None), None).is_ok());
        let err = authorize(&set, true, &request(&[("x-api-key", "lgw-wrong")], None), None).unwrap_err();
        assert_eq!(err.status, http::StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn an_own_login_needs_the_gateway_key_in_its_own_header_when_keys_exist() {
        let (set, general, _) = keys();
        let own = Some(CredentialHeader::Authorization);
        let token = [("authorization", "Bearer sk-ant-oat01-own")];
        let err = authorize(&set, true, &request(&token, None), own).unwrap_err();
        assert_eq!(err.status, http::StatusCode::UNAUTHORIZED);
        assert!(
            err.message.contains("x-llm-gateway-key") && err.message.contains("ANTHROPIC_CUSTOM_HEADERS"),
            "{}",
            err.message
        );
        let with_key = [token[0], (GATEWAY_KEY_HEADER, general.as_str())];
        let key = authorize(&set, true, &request(&with_key, None), own).unwrap();
        assert_eq!(key.map(|k| k.name.clone()).as_deref(), Some("laptop"));
        // An own API key in x-api-key beside a gateway key in Authorization: the Bearer is the gateway key.
        let bearer = format!("Bearer {general}");
        let mixed = [("x-api-key", "sk-ant-api03-own"), ("authorization", bearer.as_str())];
        assert!(authorize(&set, true, &request(&mixed, None), Some(CredentialHeader::XApiKey)).unwrap().is_some());
        // No keys and a loopback listen: open, as for any request.
        assert!(authorize(&ClientKeySet::default(), true, &request(&token, None), own).is_ok());
    }

    #[test]
    fn a_loopback_only_key_is_refused_from_another_machine() {
        let (set, _, local) = keys();
        let with = |peer: Option<&str>, listen_loopback: bool| {
            authorize(&set, listen_loopback, &request(&[(GATEWAY_KEY_HEADER, &local)], peer), None)
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
        assert!(authorize(&set, true, &request(&[], None), None).is_ok());
        assert!(authorize(&set, false, &request(&[], None), None).is_err(), "never open on a non-loopback listen");
        let (set, ..) = keys();
        assert!(authorize(&set, true, &request(&[], None), None).is_err(), "a general key closes it");
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
