//! The web UI's sign-in: minting one-time codes (admin token only), exchanging a code for the session cookie,
//! signing out; and the cookie rules the admin API's authentication applies (`mod.rs`).
//!
//! The cookie is `lgw_session=<token>; HttpOnly; SameSite=Strict; Path=/admin/api; Max-Age=<ui_session_hours>`.
//! It has no `Secure` attribute: the gateway serves plain HTTP only (on loopback, or on a network behind client
//! keys), and a browser would drop a `Secure` cookie set over HTTP. Should the gateway ever terminate TLS, the
//! attribute belongs on cookies set over it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::header::{CACHE_CONTROL, COOKIE, ORIGIN, RETRY_AFTER, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::{AdminAuth, AdminError};
use crate::clock::rfc3339;
use crate::gateway::{Gateway, SessionError};

/// The session cookie's name.
pub(crate) const COOKIE_NAME: &str = "lgw_session";
/// The header a cookie-authenticated change must carry with the value `1`: a cross-site form cannot send it, and
/// a cross-site script may not without a CORS preflight the gateway never grants.
pub(crate) const CSRF_HEADER: &str = "x-llm-gateway-csrf";
/// The largest sign-in body read (`{"code": "…"}` is under 100 bytes).
const MAX_BODY_BYTES: usize = 4096;

/// `POST/DELETE /session`: outside the admin authentication layer (the code, or the cookie itself, is the
/// credential).
pub(super) fn routes() -> Router<Arc<Gateway>> {
    Router::new().route("/session", post(sign_in).delete(sign_out))
}

/// The routes [`routes`] adds, as `(METHOD, path)` (for the route list the OpenAPI conformance test reads).
pub(super) const ROUTES: [(&str, &str); 2] = [("POST", "/session"), ("DELETE", "/session")];

/// The `lgw_session` values a request's `Cookie` headers carry (HTTP/2 may split them over several headers).
pub(super) fn session_cookies(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers.get_all(COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).filter_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        (name.trim() == COOKIE_NAME && !value.trim().is_empty()).then(|| value.trim())
    })
}

/// The first session cookie naming a live session, if any.
pub(super) fn live_session<'a>(gateway: &Gateway, headers: &'a HeaderMap) -> Option<&'a str> {
    session_cookies(headers).find(|token| gateway.ui_session_valid(token))
}

/// For a request authenticated by the session cookie: a change (any method but GET, HEAD, OPTIONS) must carry
/// `x-llm-gateway-csrf: 1` and, when it has an `Origin`, the gateway's own origin (`http://` + its `Host`).
pub(super) fn check_csrf(request: &Request) -> Result<(), AdminError> {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let headers = request.headers();
    if headers.get(CSRF_HEADER).map(HeaderValue::as_bytes) != Some(b"1") {
        return Err(AdminError::forbidden(format!(
            "a change made with the UI session cookie must carry the header `{CSRF_HEADER}: 1` (the web UI sends \
             it; a form on another site cannot)"
        )));
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let host = headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| request.uri().authority().map(http::uri::Authority::as_str));
        let own = host.map(|h| format!("http://{h}"));
        if !own.as_deref().is_some_and(|own| own.as_bytes().eq_ignore_ascii_case(origin.as_bytes())) {
            return Err(AdminError::forbidden(format!(
                "a change made with the UI session cookie must come from the gateway's own page: Origin `{}` is \
                 not `{}`",
                String::from_utf8_lossy(origin.as_bytes()),
                own.as_deref().unwrap_or("http://<Host>")
            )));
        }
    }
    Ok(())
}

fn cookie(value: &str, max_age_secs: u64) -> HeaderValue {
    let text = format!("{COOKIE_NAME}={value}; HttpOnly; SameSite=Strict; Path=/admin/api; Max-Age={max_age_secs}");
    // The token is URL-safe base64, so the value is always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("lgw_session=; Max-Age=0"))
}

/// The `Set-Cookie` value that makes the browser drop the session cookie.
pub(super) fn cleared_cookie() -> HeaderValue {
    HeaderValue::from_static("lgw_session=; HttpOnly; SameSite=Strict; Path=/admin/api; Max-Age=0")
}

/// `POST /session/code` (behind the admin authentication): a new one-time code. The admin token only: a UI
/// session must not be able to mint more sessions for itself.
pub(super) async fn mint_code(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    if request.extensions().get::<AdminAuth>() != Some(&AdminAuth::Token) {
        return AdminError::forbidden(
            "sign-in codes are minted with the admin token only (`llm-gateway ui` does it); a UI session cannot \
             mint them",
        )
        .into_response();
    }
    let mut response = axum::Json(gateway.mint_ui_code()).into_response();
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `POST /session {"code"}`: exchanges a one-time code for the session cookie.
async fn sign_in(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(addr)| addr.ip().to_canonical());
    let body = match axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            return AdminError::invalid_request("code", "the body must be JSON {\"code\": \"…\"}").into_response();
        }
    };
    // An object, not the array form serde would also accept for a struct.
    let object = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body);
    let code = match object.as_ref().map(|o| o.get("code").and_then(serde_json::Value::as_str)) {
        Ok(Some(code)) if !code.trim().is_empty() => code,
        Ok(Some(_)) => return AdminError::invalid_request("code", "the sign-in code is empty").into_response(),
        _ => {
            return AdminError::invalid_request("code", "the body must be the JSON object {\"code\": \"…\"}")
                .into_response();
        }
    };
    match gateway.open_ui_session(code.trim(), peer).await {
        Ok(session) => {
            let body = serde_json::json!({ "expires_at": rfc3339(session.expires_at_ms) });
            let mut response = axum::Json(body).into_response();
            let headers = response.headers_mut();
            headers.insert(SET_COOKIE, cookie(session.token.expose(), session.max_age_secs));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            tracing::info!(%peer, "web UI signed in");
            response
        }
        Err(e @ SessionError::RateLimited { retry_after_secs }) => {
            tracing::warn!(%peer, "web UI sign-in refused: {e}");
            let mut response = AdminError::rate_limited(e.to_string()).into_response();
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
            response
        }
        Err(e) => {
            tracing::warn!(%peer, "web UI sign-in refused: {e}");
            AdminError::unauthorized(e.to_string()).into_response()
        }
    }
}

/// `DELETE /session`: forgets the cookie's session and clears the cookie. A live session is ended only by a
/// request that passes the cookie rules ([`check_csrf`]) or carries the admin token; a cookie whose session
/// already ended is just cleared. Without any cookie, the admin token is required as everywhere else.
async fn sign_out(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let headers = request.headers();
    let bearer = super::bearer_auth(&gateway, headers);
    if bearer == Some(false) {
        return super::invalid_token().into_response();
    }
    if let Some(token) = live_session(&gateway, headers) {
        if bearer.is_none()
            && let Err(e) = check_csrf(&request)
        {
            return e.into_response();
        }
        gateway.close_ui_session(token).await;
    } else if bearer.is_none() && session_cookies(headers).next().is_none() {
        return super::unauthenticated().into_response();
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(SET_COOKIE, cleared_cookie());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, headers: &[(&str, &str)]) -> Request {
        let mut builder = http::Request::builder().method(method).uri("/admin/api/v1/session");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn session_cookies_are_found_among_others_and_across_headers() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("theme=dark; lgw_session=abc ;x=1"));
        headers.append(COOKIE, HeaderValue::from_static("lgw_session=def"));
        headers.append(COOKIE, HeaderValue::from_static("lgw_session=; lgw_session_other=zzz"));
        assert_eq!(session_cookies(&headers).collect::<Vec<_>>(), ["abc", "def"]);
    }

    #[test]
    fn cookie_changes_need_the_csrf_header_and_the_gateways_own_origin() {
        let host = ("host", "127.0.0.1:8787");
        assert!(check_csrf(&request(Method::GET, &[host])).is_ok(), "reads need neither");
        let err = check_csrf(&request(Method::POST, &[host])).unwrap_err();
        assert!(err.message.contains(CSRF_HEADER), "{}", err.message);
        assert!(check_csrf(&request(Method::DELETE, &[host, (CSRF_HEADER, "yes")])).is_err());
        assert!(check_csrf(&request(Method::PATCH, &[host, (CSRF_HEADER, "1")])).is_ok(), "no Origin: header alone");
        let same = ("origin", "http://127.0.0.1:8787");
        assert!(check_csrf(&request(Method::POST, &[host, (CSRF_HEADER, "1"), same])).is_ok());
        for origin in ["http://localhost:3000", "http://127.0.0.1:8788", "https://127.0.0.1:8787", "null"] {
            let err = check_csrf(&request(Method::POST, &[host, (CSRF_HEADER, "1"), ("origin", origin)])).unwrap_err();
            assert_eq!(err.status, StatusCode::FORBIDDEN);
            assert!(err.message.contains("own page"), "{origin}: {}", err.message);
        }
        let no_host = request(Method::POST, &[(CSRF_HEADER, "1"), same]);
        assert!(check_csrf(&no_host).is_err(), "an Origin with no Host to compare to is refused");
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_scoped_to_the_admin_api() {
        let value = cookie("tok_en-123", 43_200);
        assert_eq!(value, "lgw_session=tok_en-123; HttpOnly; SameSite=Strict; Path=/admin/api; Max-Age=43200");
        assert!(cleared_cookie().to_str().unwrap().ends_with("Max-Age=0"));
    }
}
