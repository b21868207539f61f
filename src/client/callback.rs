//! The OAuth loopback callback (`/callback`, `/oauth/callback`): completes the login the authorize page redirected
//! back from, then tells the person in the browser how it went.
//!
//! The page has to make sense in a plain browser (the web UI, `llm-gateway oauth-start`), where there is nothing to
//! go back to but the tab the login started from, and for the desktop app, which registered `llm-gateway://`: so
//! it says the tab can be closed, and offers the app link as what it is, with the account in it so the app can
//! bring its window forward on that account.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};

use crate::gateway::Gateway;
use crate::upstream::oauth::DEEP_LINK_DONE;

/// No script, nothing loaded, no framing; the one `<style>` element is inline. The URL carries the login's code
/// and state, so no referrer either.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub(super) async fn oauth_callback(State(gateway): State<Arc<Gateway>>, uri: Uri) -> Response {
    let url = format!("http://localhost{}", uri.path_and_query().map_or("/", |p| p.as_str()));
    let (status, body) = match gateway.complete_oauth_login(&url, None).await {
        Ok(outcome) => {
            let name =
                gateway.live().config.accounts.iter().find(|a| a.id == outcome.account_id).map(|a| a.name.clone());
            let done =
                LoginDone { account_id: &outcome.account_id, name: name.as_deref(), email: outcome.email.as_deref() };
            (StatusCode::OK, success_page(&done))
        }
        Err(e) => (StatusCode::BAD_REQUEST, failure_page(&e.to_string())),
    };
    let mut response = (status, Html(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// A login the callback completed.
struct LoginDone<'a> {
    account_id: &'a str,
    name: Option<&'a str>,
    email: Option<&'a str>,
}

/// `llm-gateway://oauth/done?account=<id>`: the desktop app brings its window forward on that account.
fn app_link(account_id: Option<&str>) -> String {
    match account_id {
        Some(id) => format!("{DEEP_LINK_DONE}?account={}", url_component(id)),
        None => DEEP_LINK_DONE.to_owned(),
    }
}

fn success_page(done: &LoginDone<'_>) -> String {
    let account = match done.name {
        Some(name) => format!("The account <strong>{}</strong> is", html_escape(name)),
        None => "The account is".to_owned(),
    };
    let email = done.email.map(|e| format!(" as {}", html_escape(e))).unwrap_or_default();
    page(
        "Login complete",
        &format!(
            "<p>{account} logged in{email} and serves requests from now on.</p>\
             <p><strong>You can close this tab.</strong> The gateway uses the account already; its web UI and \
             desktop app show it as active by themselves.</p>"
        ),
        &app_link(Some(done.account_id)),
    )
}

fn failure_page(error: &str) -> String {
    page(
        "Login failed",
        &format!(
            "<p>{}</p><p>Start the login again from LLM Gateway: <em>Log in with Claude</em> on the web UI's or the \
             app's Accounts page, or <code>llm-gateway oauth-start &lt;account&gt;</code>. You can close this tab.</p>",
            html_escape(error)
        ),
        &app_link(None),
    )
}

fn page(title: &str, body: &str, app_link: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\"><title>LLM Gateway: {title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;line-height:1.5}}\
         .app{{margin-top:2em;font-size:.9em}}</style></head>\
         <body><main><h1>{title}</h1>{body}\
         <p class=\"app\">Using the LLM Gateway desktop app? <a href=\"{app_link}\">Open it in the app</a> \
         (this link does nothing in a browser without the app).</p></main></body></html>"
    )
}

/// Percent-encodes everything but unreserved characters (account ids are `acc_` + hex, but the link must stay a
/// link whatever the id holds).
fn url_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_page_says_the_tab_can_close_and_links_the_app_on_that_account() {
        let html = success_page(&LoginDone {
            account_id: "acc_1a2b",
            name: Some("work <max>"),
            email: Some("me@example.com"),
        });
        assert!(html.contains("Login complete"), "{html}");
        assert!(html.contains("<strong>work &lt;max&gt;</strong> is logged in as me@example.com"), "{html}");
        assert!(html.contains("You can close this tab"), "{html}");
        assert!(html.contains("href=\"llm-gateway://oauth/done?account=acc_1a2b\""), "{html}");
        assert!(html.contains("desktop app"), "the app link must say it is for the app: {html}");
        assert!(html.contains("<html lang=\"en\">"), "{html}");
    }

    #[test]
    fn failure_page_says_how_to_start_again_and_escapes_the_error() {
        let html = failure_page("state <unknown> & expired");
        assert!(html.contains("Login failed"), "{html}");
        assert!(html.contains("state &lt;unknown&gt; &amp; expired"), "{html}");
        assert!(html.contains("Log in with Claude"), "{html}");
        assert!(html.contains("href=\"llm-gateway://oauth/done\""), "{html}");
    }

    #[test]
    fn the_app_link_encodes_the_account() {
        assert_eq!(app_link(Some("acc_00ff")), "llm-gateway://oauth/done?account=acc_00ff");
        assert_eq!(app_link(Some("a b&c")), "llm-gateway://oauth/done?account=a%20b%26c");
        assert_eq!(app_link(None), "llm-gateway://oauth/done");
    }
}
