//! The web UI: the files under `ui/` (HTML, CSS, ES modules, vendored libraries), embedded in the binary at build
//! time and served at `/ui/` with a strict Content-Security-Policy. The UI itself is a client of the admin API and
//! its event stream only; nothing here knows what it shows.
//!
//! Caching: there is no build step, so file names carry no version. Every file gets a strong `ETag` (the SHA-256 of
//! its content, computed at compile time) and `Cache-Control: no-cache`: the browser keeps its copy and revalidates
//! it (`If-None-Match` → 304, a few bytes on loopback), so an upgraded gateway never serves a stale module graph.

use std::borrow::Cow;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;

use super::ApiError;

#[derive(rust_embed::RustEmbed)]
#[folder = "ui/"]
struct Assets;

/// The UI's Content-Security-Policy: nothing but this origin, no inline script or style, no framing, no plugins.
/// (Style set through the CSSOM, as Preact and uPlot do, is not inline style and stays allowed.)
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";

/// Routes `/ui` (redirect), `/ui/` (the page) and `/ui/<file>`.
pub(super) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/ui", get(redirect)).route("/ui/", get(index)).route("/ui/{*path}", get(asset))
}

/// `/ui` → `/ui/`, so the page's relative URLs resolve under `/ui/`. The browser keeps the fragment (`#code=…`).
async fn redirect(uri: Uri) -> Response {
    let location = match uri.query() {
        Some(q) => format!("/ui/?{q}"),
        None => "/ui/".to_owned(),
    };
    let mut response = StatusCode::PERMANENT_REDIRECT.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    secure(response)
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset(uri: Uri, headers: HeaderMap) -> Response {
    // The raw path, not a percent-decoded one: an encoded `..` or `/` is refused rather than interpreted.
    let relative = uri.path().strip_prefix("/ui/").unwrap_or("");
    if !is_plain_relative_path(relative) {
        return secure(ApiError::bad_request(format!("`{}` is not a UI file path", uri.path())).into_response());
    }
    serve(relative, &headers)
}

/// A path of plain names (`vendor/preact.mjs`): no empty, `.` or `..` segment, no escapes, no backslashes.
fn is_plain_relative_path(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        })
}

fn serve(path: &str, request_headers: &HeaderMap) -> Response {
    let Some(file) = Assets::get(path) else {
        return secure(ApiError::not_found(format!("no UI file `{path}`")).into_response());
    };
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    let mut response = if etag_matches(request_headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let body = match file.data {
            Cow::Borrowed(bytes) => Bytes::from_static(bytes),
            Cow::Owned(bytes) => Bytes::from(bytes),
        };
        let mut response = Response::new(Body::from(body));
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
        response
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure(response)
}

/// `If-None-Match` uses the weak comparison (RFC 9110 §13.1.2): `W/"x"` matches `"x"`; `*` matches anything.
fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).any(|list| {
        list.split(',').map(str::trim).any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
    })
}

fn content_type(path: &str) -> &'static str {
    let file = path.rsplit('/').next().unwrap_or(path);
    match file.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).as_deref() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt" | "md") | None => "text/plain; charset=utf-8",
        Some(_) => "application/octet-stream",
    }
}

/// The headers every UI response carries, errors and redirects included.
fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn get_ui(path: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = Request::get(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        router::<()>().oneshot(request.body(Body::empty()).unwrap()).await.unwrap()
    }

    async fn body_text(response: Response) -> String {
        String::from_utf8(to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec()).unwrap()
    }

    fn header<'a>(response: &'a Response, name: &str) -> &'a str {
        response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    #[tokio::test]
    async fn the_page_carries_a_strict_csp_and_is_always_revalidated() {
        let response = get_ui("/ui/", &[]).await;
        assert_eq!(response.status(), StatusCode::OK);
        let csp = header(&response, "content-security-policy");
        for directive in ["default-src 'self'", "script-src 'self'", "style-src 'self'", "connect-src 'self'"] {
            assert!(csp.contains(directive), "{directive} missing from {csp}");
        }
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("object-src 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert_eq!(header(&response, "referrer-policy"), "no-referrer");
        assert_eq!(header(&response, "cache-control"), "no-cache");
        assert_eq!(header(&response, "content-type"), "text/html; charset=utf-8");
        assert!(body_text(response).await.contains("<!doctype html>"));
    }

    #[tokio::test]
    async fn assets_are_served_with_their_content_types() {
        for (path, expected) in [
            ("/ui/app.css", "text/css; charset=utf-8"),
            ("/ui/js/main.js", "text/javascript; charset=utf-8"),
            ("/ui/vendor/preact.mjs", "text/javascript; charset=utf-8"),
            ("/ui/favicon.svg", "image/svg+xml"),
            ("/ui/vendor/README.md", "text/plain; charset=utf-8"),
        ] {
            let response = get_ui(path, &[]).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(header(&response, "content-type"), expected, "{path}");
            assert!(header(&response, "content-security-policy").contains("script-src 'self'"), "{path}");
        }
    }

    #[tokio::test]
    async fn a_matching_etag_gets_304_and_a_stale_one_the_file() {
        let first = get_ui("/ui/js/main.js", &[]).await;
        let etag = header(&first, "etag").to_owned();
        assert!(etag.starts_with('"') && etag.len() == 66, "strong SHA-256 ETag, got {etag}");
        let again = get_ui("/ui/js/main.js", &[("if-none-match", &etag)]).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header(&again, "etag"), etag);
        assert!(body_text(again).await.is_empty());
        let listed = get_ui("/ui/js/main.js", &[("if-none-match", &format!("\"old\", W/{etag}"))]).await;
        assert_eq!(listed.status(), StatusCode::NOT_MODIFIED);
        let stale = get_ui("/ui/js/main.js", &[("if-none-match", "\"0000\"")]).await;
        assert_eq!(stale.status(), StatusCode::OK);
        assert!(body_text(stale).await.contains("import"));
    }

    #[tokio::test]
    async fn an_unknown_ui_file_is_404() {
        let response = get_ui("/ui/no-such-file.js", &[]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(header(&response, "content-security-policy").contains("default-src 'self'"));
    }

    #[tokio::test]
    async fn paths_leaving_the_ui_folder_are_refused() {
        for path in [
            "/ui/../Cargo.toml",
            "/ui/vendor/../../Cargo.toml",
            "/ui/%2e%2e/Cargo.toml",
            "/ui/vendor%2f..%2f..%2fCargo.toml",
            "/ui/..%5cCargo.toml",
            "/ui//etc/passwd",
            "/ui/./index.html",
        ] {
            let response = get_ui(path, &[]).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path} must be refused, not looked up");
            assert!(!body_text(response).await.contains("[package]"), "{path} leaked a file");
        }
    }

    #[tokio::test]
    async fn bare_ui_redirects_to_the_folder() {
        let response = get_ui("/ui", &[]).await;
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(header(&response, "location"), "/ui/");
    }

    /// The CSP forbids inline script and style: the page must not need them, and every file it names must exist.
    #[test]
    fn the_page_has_no_inline_script_or_style_and_names_only_embedded_files() {
        let page = String::from_utf8(Assets::get("index.html").unwrap().data.to_vec()).unwrap();
        let lower = page.to_ascii_lowercase();
        assert!(!lower.contains(" style="), "inline style attribute in index.html");
        assert!(!lower.contains("<style"), "inline <style> in index.html");
        for script in lower.split("<script").skip(1) {
            let tag = script.split('>').next().unwrap();
            assert!(tag.contains("src="), "inline <script> in index.html: <script{tag}>");
        }
        for attr in ["src=\"", "href=\""] {
            for rest in page.split(attr).skip(1) {
                let target = rest.split('"').next().unwrap();
                if target.starts_with('#') {
                    continue;
                }
                assert!(Assets::get(target).is_some(), "index.html names {target}, which is not under ui/");
            }
        }
    }

    /// The budget: every UI asset together, vendored libraries included, under 300 KB uncompressed.
    #[test]
    fn all_ui_assets_fit_in_300_kb() {
        let total: usize = Assets::iter().map(|name| Assets::get(&name).map_or(0, |f| f.data.len())).sum();
        assert!(total < 300 * 1024, "ui/ holds {total} bytes");
    }
}
