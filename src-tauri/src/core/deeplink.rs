//! The `llm-gateway://` links the app answers. The scheme is in the bundle configuration for macOS and Windows
//! (tauri.conf.json, `plugins.deep-link`) and registered at runtime on Linux (a `.desktop` handler in the
//! user's data dir, `shell/native.rs`). A link opened while the app runs reaches it as a second launch: the second
//! process forwards its arguments to the first (D-Bus on Linux) and exits 0.

/// What a link asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeepLink {
    /// `llm-gateway://oauth/callback?code=…&state=…`: finish a Claude login (the whole URL goes to the library,
    /// which checks the state against the pending login).
    LoginCallback(String),
    /// `llm-gateway://oauth/done?account=…`: the browser finished a login on the gateway's loopback page;
    /// bring the window forward (on that account).
    LoginDone {
        /// The account the login was for.
        account: Option<String>,
    },
    /// `llm-gateway://` or `llm-gateway://open`: bring the window forward.
    Open,
}

/// The scheme.
pub const SCHEME: &str = "llm-gateway";

/// Parses a link; `None` for anything that is not one of ours (it is then ignored, with a log line).
pub fn parse(link: &str) -> Option<DeepLink> {
    let url = url::Url::parse(link.trim()).ok()?;
    if url.scheme() != SCHEME {
        return None;
    }
    let host = url.host_str().unwrap_or_default();
    let path = url.path().trim_end_matches('/');
    match (host, path) {
        ("oauth", "/callback") => Some(DeepLink::LoginCallback(url.to_string())),
        ("oauth", "/done") => Some(DeepLink::LoginDone {
            account: url.query_pairs().find(|(k, _)| k == "account").map(|(_, v)| v.into_owned()),
        }),
        ("" | "open", "") => Some(DeepLink::Open),
        _ => None,
    }
}

/// The deep links among a launch's arguments (the first one is the program).
pub fn links_in<S: AsRef<str>>(args: &[S]) -> Vec<String> {
    args.iter()
        .skip(1)
        .map(AsRef::as_ref)
        .filter(|a| a.to_ascii_lowercase().starts_with("llm-gateway:"))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_callback_links_keep_the_whole_url_for_the_library() {
        let link = "llm-gateway://oauth/callback?code=abc&state=xyz";
        assert_eq!(parse(link), Some(DeepLink::LoginCallback(link.into())));
    }

    #[test]
    fn oauth_done_links_name_the_account() {
        assert_eq!(
            parse("llm-gateway://oauth/done?account=acc_1"),
            Some(DeepLink::LoginDone { account: Some("acc_1".into()) })
        );
        assert_eq!(parse("llm-gateway://oauth/done"), Some(DeepLink::LoginDone { account: None }));
    }

    #[test]
    fn bare_and_open_links_bring_the_window_forward() {
        assert_eq!(parse("llm-gateway://"), Some(DeepLink::Open));
        assert_eq!(parse("llm-gateway://open/"), Some(DeepLink::Open));
    }

    #[test]
    fn other_schemes_and_unknown_paths_are_not_ours() {
        assert_eq!(parse("https://oauth/callback?code=a&state=b"), None);
        assert_eq!(parse("llm-gateway://oauth/steal"), None);
        assert_eq!(parse("llm-gateway://quit"), None);
        assert_eq!(parse("not a url"), None);
    }

    #[test]
    fn links_are_found_among_forwarded_arguments() {
        let args = ["/usr/bin/llm-gateway-desktop", "--hidden", "llm-gateway://oauth/done?account=x"];
        assert_eq!(links_in(&args), ["llm-gateway://oauth/done?account=x"]);
        assert!(links_in(&["llm-gateway://open"]).is_empty(), "the first argument is the program");
    }
}
