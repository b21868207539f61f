//! Every non-control request: recording, scripts, auth, key- and header-driven errors, routing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::response::Response;

use crate::compress::{gzip_response, wants_gzip};
use crate::errors::{ApiError, build_response, default_message};
use crate::plan::{PlanConfig, PlanMode};
use crate::ratelimit::{api_key_headers, api_key_limited};
use crate::server::ConnControl;
use crate::sse::{chunks_response, stream_response};
use crate::state::{RecordedRequest, Scripted, Shared};
use crate::{messages, models, oauth};

/// The beta an OAuth access token must come with (protocol.md §2).
const OAUTH_BETA: &str = "oauth-2025-04-20";

#[derive(Debug, Clone, PartialEq)]
enum Route {
    Messages,
    CountTokens,
    ListModels,
    GetModel(String),
    NotFound,
}

impl Route {
    fn of(method: &Method, path: &str) -> Route {
        match (method.as_str(), path) {
            ("POST", "/v1/messages") => Route::Messages,
            ("POST", "/v1/messages/count_tokens") => Route::CountTokens,
            ("GET", "/v1/models") => Route::ListModels,
            ("GET", p) => match p.strip_prefix("/v1/models/") {
                Some(id) if !id.is_empty() && !id.contains('/') => Route::GetModel(id.to_string()),
                _ => Route::NotFound,
            },
            _ => Route::NotFound,
        }
    }
}

/// The caller's credential: `x-api-key`, else `Authorization: Bearer`.
struct Credential {
    key: String,
    bearer: bool,
}

impl Credential {
    fn from_headers(headers: &HeaderMap) -> Option<Credential> {
        let text = |name: &str| headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string());
        if let Some(key) = text("x-api-key").filter(|k| !k.is_empty()) {
            return Some(Credential { key, bearer: false });
        }
        let auth = text("authorization")?;
        let (scheme, token) = auth.split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty())
            .then(|| Credential { key: token.to_string(), bearer: true })
    }

    /// An OAuth access token (`sk-ant-oat…`) sent as Bearer.
    fn is_oauth(&self) -> bool {
        self.bearer && self.key.starts_with("sk-ant-oat")
    }

    /// The account-level behaviour the key's name selects, if any.
    fn behaviour(&self) -> Option<ApiError> {
        let k = self.key.as_str();
        if k.contains("invalid") {
            Some(ApiError::new(401, "invalid x-api-key"))
        } else if k.contains("ratelimited") {
            Some(ApiError::new(429, default_message(429)).with_headers(api_key_limited(30)))
        } else if k.contains("overloaded") {
            Some(ApiError::new(529, "Overloaded"))
        } else if k.contains("oauthlimited") {
            PlanConfig { mode: PlanMode::Exhausted, ..PlanConfig::default() }.refusal()
        } else if k.contains("broken") {
            Some(ApiError::new(500, default_message(500)))
        } else {
            None
        }
    }
}

fn has_beta(headers: &HeaderMap, beta: &str) -> bool {
    headers
        .get_all("anthropic-beta")
        .iter()
        .any(|v| String::from_utf8_lossy(v.as_bytes()).split(',').any(|b| b.trim() == beta))
}

/// `x-mock-status: <code>` (400–599) → that error.
fn forced_status(headers: &HeaderMap) -> Option<ApiError> {
    let code: u16 = headers.get("x-mock-status")?.to_str().ok()?.trim().parse().ok()?;
    if !(400..=599).contains(&code) {
        return None;
    }
    let err = ApiError::new(code, default_message(code));
    Some(if code == 429 { err.with_headers(api_key_limited(1)) } else { err })
}

fn record(shared: &Shared, parts: &Parts, body: &[u8]) {
    shared.record(RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (n.as_str().to_ascii_lowercase(), value)
            })
            .collect(),
        body: String::from_utf8_lossy(body).into_owned(),
    });
}

/// The fallback handler: everything that is not `/_mock/…` control. Answers in gzip when the request allows it.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let gzip = wants_gzip(req.headers());
    let response = answer(&shared, req).await;
    if gzip { gzip_response(response).await } else { response }
}

async fn answer(shared: &Shared, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    if path.starts_with("/_mock/") {
        return ApiError::new(404, default_message(404)).into_response("req_mock_control");
    }
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            let id = shared.next_request_id();
            return ApiError::invalid(format!("could not read the request body: {e}")).into_response(&id);
        }
    };
    record(shared, &parts, &body);
    let request_id = shared.next_request_id();

    if parts.method == Method::POST && path == "/v1/oauth/token" {
        let delay = shared.oauth().delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        return shared.oauth().token(&parts.headers, &body);
    }
    if parts.method == Method::GET && path == "/oauth/authorize" {
        let query =
            axum::extract::Query::<HashMap<String, String>>::try_from_uri(&parts.uri).map(|q| q.0).unwrap_or_default();
        return oauth::authorize_redirect(&mut shared.oauth(), &query);
    }

    let scriptable = path == "/v1/messages" || path.starts_with("/v1/messages/");
    if let Some(script) = scriptable.then(|| shared.next_script()).flatten() {
        match script {
            Scripted::Response { status, headers, body } => {
                return build_response(status, headers, body.into(), &request_id, "application/json");
            }
            Scripted::Stream { events, interval_ms, cut_after } => {
                let interval = Duration::from_millis(interval_ms);
                return stream_response(events, interval, cut_after, Vec::new(), &request_id);
            }
            Scripted::Chunks { chunks, interval_ms, end } => {
                return chunks_response(chunks, Duration::from_millis(interval_ms), end, &request_id);
            }
            Scripted::Reset => return reset(&parts, &request_id).await,
            Scripted::Delay { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
        }
    }
    default_response(shared, &parts, &body, &request_id)
}

/// Closes the connection without a response; the handler never completes.
async fn reset(parts: &Parts, request_id: &str) -> Response {
    match parts.extensions.get::<ConnControl>() {
        Some(ctl) => {
            ctl.kill();
            std::future::pending().await
        }
        None => ApiError::new(500, "mock: reset unavailable on this connection").into_response(request_id),
    }
}

fn default_response(shared: &Shared, parts: &Parts, body: &[u8], request_id: &str) -> Response {
    let route = Route::of(&parts.method, parts.uri.path());
    if route == Route::NotFound {
        return ApiError::new(404, default_message(404)).into_response(request_id);
    }
    let headers = &parts.headers;
    let Some(cred) = Credential::from_headers(headers) else {
        return ApiError::new(401, "x-api-key header is required").into_response(request_id);
    };
    if let Some(err) = cred.behaviour() {
        return err.into_response(request_id);
    }
    if cred.is_oauth() && !has_beta(headers, OAUTH_BETA) {
        return ApiError::new(401, "OAuth authentication is currently not supported.").into_response(request_id);
    }
    if cred.is_oauth() && cred.key.starts_with(oauth::MOCK_ACCESS_PREFIX) {
        // Tokens this mock issued: valid only until they expire, and (for messages) only with the identity.
        if let Some(message) = shared.oauth().check_access(&cred.key) {
            return ApiError::new(401, message).into_response(request_id);
        }
        if route == Route::Messages
            && let Some(err) = oauth::identity_error(body)
        {
            return err.into_response(request_id);
        }
    }
    if cred.is_oauth() && !cred.key.starts_with(oauth::MOCK_ACCESS_PREFIX) && !shared.oauth().accepts_foreign(&cred.key)
    {
        // A user's own login the mock was not told about (`accept_tokens`).
        return ApiError::new(401, "Invalid bearer token").into_response(request_id);
    }
    if let Some(err) = forced_status(headers) {
        return err.into_response(request_id);
    }
    let extra = if cred.is_oauth() {
        let plan = shared.plans().for_token(&cred.key);
        if route == Route::Messages
            && let Some(err) = plan.refusal()
        {
            return err.into_response(request_id);
        }
        plan.headers()
    } else {
        api_key_headers(false, 60)
    };
    match route {
        Route::Messages => messages::create(body, headers, extra, request_id),
        Route::CountTokens => messages::count_tokens(body, extra, request_id),
        Route::ListModels => models::list(parts.uri.query(), extra, request_id),
        Route::GetModel(id) => models::get(&id, extra, request_id),
        Route::NotFound => ApiError::new(404, default_message(404)).into_response(request_id),
    }
}
