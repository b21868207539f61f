//! Cross-cutting layers: request id + one log line per request, and the Host/Origin check that keeps web pages
//! (DNS rebinding, cross-site requests) away from a gateway on localhost.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;

use super::ApiError;
use crate::common::AccountUsed;
use crate::gateway::Gateway;
use crate::proxy::Arrival;

tokio::task_local! {
    static REQUEST_ID: String;
    static OPENAI_CLIENT: bool;
}

/// Whether the request being handled came from an OpenAI-format client (errors then use OpenAI's shape).
pub(crate) fn openai_client() -> bool {
    OPENAI_CLIENT.try_with(|v| *v).unwrap_or(false)
}

/// OpenAI clients: the chat route, and `/v1/models` without Anthropic's version header (every Anthropic SDK and
/// Claude Code send it; OpenAI SDKs never do).
fn is_openai_client(request: &Request) -> bool {
    let path = request.uri().path();
    path.starts_with("/v1/chat/") || (path == "/v1/models" && !request.headers().contains_key("anthropic-version"))
}

/// The id of the request handled by the current task, if any.
pub(crate) fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

fn new_request_id() -> String {
    const PREFIX: &str = "req_gw_";
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    let mut id = String::with_capacity(PREFIX.len() + 2 * bytes.len());
    id.push_str(PREFIX);
    for b in bytes {
        id.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        id.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    id
}

/// The one layer around every route (one layer, not several: each costs allocations on every request): assigns
/// the request id, refuses a foreign `Host`/`Origin`, and logs one line when the response head is ready.
pub async fn request_layer(State(gateway): State<Arc<Gateway>>, mut request: Request, next: Next) -> Response {
    let id = new_request_id();
    let started = Instant::now();
    request.extensions_mut().insert(Arrival { request_id: id.clone(), at: started, at_ms: gateway.now_ms() });
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let openai = is_openai_client(&request);
    let handle = async move {
        match check_host_and_origin(&gateway, &request) {
            Ok(()) => next.run(request).await,
            Err(refused) => refused.into_response(),
        }
    };
    let mut response = REQUEST_ID.scope(id.clone(), OPENAI_CLIENT.scope(openai, handle)).await;
    let account = response.extensions().get::<AccountUsed>().map(|a| a.0.clone());
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(
        request_id = %id,
        %method,
        path = %path,
        status = response.status().as_u16(),
        account = account.as_deref().unwrap_or("-"),
        latency_ms = format_args!("{latency_ms:.1}"),
        "request"
    );
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-gateway-request-id", value);
    }
    response
}

/// Refuses requests whose `Host` is not one the gateway answers to, or whose `Origin` is a web page elsewhere.
/// HTTP/2 requests name their host in the `:authority` pseudo-header (the URI's authority), usually without a
/// `Host` header; when a request carries both, both must be acceptable.
fn check_host_and_origin(gateway: &Gateway, request: &Request) -> Result<(), ApiError> {
    let live = gateway.live();
    let server = &live.config.server;
    if gateway.listen().ip().is_loopback() {
        let header = request.headers().get(http::header::HOST).map(|h| h.to_str().unwrap_or(""));
        let authority = request.uri().authority().map(http::uri::Authority::as_str);
        for host in header.into_iter().chain(authority) {
            let allowed = is_loopback_name(host_name(host))
                || server
                    .allowed_hosts
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(host) || h.eq_ignore_ascii_case(host_name(host)));
            if !allowed {
                return Err(ApiError::forbidden(format!(
                    "host `{host}` is not allowed: this gateway listens on loopback; add the name to server.allowed_hosts to reach it by name"
                )));
            }
        }
    }
    if let Some(origin) = request.headers().get(http::header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let host = request
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| request.uri().authority().map(http::uri::Authority::as_str));
        let allowed = origin_is_loopback(origin)
            || server.allowed_origins.iter().any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin))
            || host.is_some_and(|host| is_own_origin(origin, host, &server.allowed_hosts));
        if !allowed {
            return Err(ApiError::forbidden(format!(
                "origin `{origin}` is not allowed to call this gateway; add it to server.allowed_origins if you trust it"
            )));
        }
    }
    Ok(())
}

/// Whether `origin` is the gateway's own (`http://` + the request's `Host`, e.g. its web UI reached by a name in
/// `server.allowed_hosts`) for a host no other site can pose as: a name in `allowed_hosts` (the Host check keeps
/// DNS-rebinding pages with any other name out), or an IP address (a page whose origin is the gateway's own
/// address and port was served by the gateway; rebinding needs a name).
fn is_own_origin(origin: &str, host: &str, allowed_hosts: &[String]) -> bool {
    let same = origin.get(..7).is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
        && origin[7..].eq_ignore_ascii_case(host);
    same && (host_name(host).parse::<std::net::IpAddr>().is_ok()
        || allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(host) || h.eq_ignore_ascii_case(host_name(host))))
}

/// The host part of a `Host` header value (`[::1]:8787` → `::1`, `localhost:8787` → `localhost`).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':')
        .map_or(host, |(name, port)| if port.bytes().all(|b| b.is_ascii_digit()) { name } else { host })
}

use crate::common::net::is_loopback_name;

fn origin_is_loopback(origin: &str) -> bool {
    crate::common::net::is_loopback_url(origin, &["http", "https"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_extracted() {
        assert_eq!(host_name("localhost:8787"), "localhost");
        assert_eq!(host_name("[::1]:8787"), "::1");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn loopback_names_and_origins() {
        assert!(is_loopback_name("localhost"));
        assert!(is_loopback_name("127.0.0.2"));
        assert!(is_loopback_name("::1"));
        assert!(!is_loopback_name("evil.example"));
        assert!(!is_loopback_name("localhost.evil.example"));
        assert!(origin_is_loopback("http://localhost:3000"));
        assert!(origin_is_loopback("http://127.0.0.1:8787"));
        assert!(!origin_is_loopback("https://evil.example"));
        assert!(!origin_is_loopback("null"));
    }

    #[test]
    fn the_gateways_own_origin_is_its_host_when_no_other_site_can_pose_as_it() {
        let allowed = ["gateway.lan".to_string(), "other.lan:9000".to_string()];
        assert!(is_own_origin("http://gateway.lan:8787", "gateway.lan:8787", &allowed));
        assert!(is_own_origin("HTTP://Gateway.LAN:8787", "gateway.lan:8787", &allowed));
        assert!(is_own_origin("http://other.lan:9000", "other.lan:9000", &allowed));
        assert!(is_own_origin("http://192.168.1.5:8787", "192.168.1.5:8787", &[]));
        assert!(is_own_origin("http://[fd00::5]:8787", "[fd00::5]:8787", &[]));
        assert!(!is_own_origin("http://rebind.example:8787", "rebind.example:8787", &allowed), "a name not allowed");
        assert!(!is_own_origin("http://gateway.lan:8788", "gateway.lan:8787", &allowed), "another port");
        assert!(!is_own_origin("https://gateway.lan:8787", "gateway.lan:8787", &allowed), "another scheme");
        assert!(!is_own_origin("http://evil.example", "gateway.lan:8787", &allowed));
        assert!(!is_own_origin("null", "gateway.lan", &allowed));
    }
}
