//! One pooled HTTP client for every upstream call.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};

use crate::accounts::LiveAccount;
use crate::config::{AccountKind, UpstreamConfig};
use crate::secrets::Secret;

/// Why an upstream call produced no response.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be made (refused, DNS, TLS).
    #[error("cannot reach the upstream at {url}: {message}")]
    Connect {
        /// The URL tried.
        url: String,
        /// The transport's explanation.
        message: String,
    },
    /// The upstream did not answer in time.
    #[error("the upstream at {url} did not answer within {secs} s")]
    Timeout {
        /// The URL tried.
        url: String,
        /// The timeout that ran out.
        secs: f64,
    },
    /// Any other transport failure.
    #[error("upstream request to {url} failed: {message}")]
    Other {
        /// The URL tried.
        url: String,
        /// The transport's explanation.
        message: String,
    },
    /// The account has no usable credential.
    #[error("account `{0}` has no credential in the secret store")]
    MissingCredential(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

impl UpstreamError {
    /// Whether the failure was a timeout (→ 504) rather than a failure to connect (→ 502).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }
}

/// The pooled upstream client.
#[derive(Debug, Clone)]
pub struct UpstreamClient {
    http: reqwest::Client,
    config: UpstreamConfig,
}

impl UpstreamClient {
    /// Builds the client with the configured connect and read timeouts.
    pub fn new(config: &UpstreamConfig) -> Result<Self, UpstreamError> {
        // Validation keeps these in (0, 86400]; a config built in code gets an error here, never a panic.
        let timeout = |key: &str, secs: f64| {
            Duration::try_from_secs_f64(secs)
                .map_err(|_| UpstreamError::Build(format!("upstream.{key} = {secs} is not a number of seconds")))
        };
        let http = reqwest::Client::builder()
            .connect_timeout(timeout("connect_timeout_secs", config.connect_timeout_secs)?)
            .read_timeout(timeout("read_timeout_secs", config.read_timeout_secs)?)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            // The gateway forwards what the upstream says; it never follows redirects on the client's behalf.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| UpstreamError::Build(e.to_string()))?;
        Ok(Self { http, config: config.clone() })
    }

    /// The settings this client was built with.
    pub fn config(&self) -> &UpstreamConfig {
        &self.config
    }

    /// Sends a request for `account`. With `credential`, it is added as the account kind requires (`x-api-key`
    /// for API keys, `Authorization: Bearer` for OAuth access tokens); with `None`, `headers` already carry the
    /// credential (OAuth requests after enhancement). `path_and_query` starts with `/`; `headers` are already
    /// filtered by [`super::request_headers_for_upstream`]. Returns once response headers arrive; the body
    /// streams from the returned response.
    pub async fn send(
        &self,
        account: &LiveAccount,
        credential: Option<&Secret>,
        method: Method,
        path_and_query: &str,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<reqwest::Response, UpstreamError> {
        if let Some(credential) = credential {
            let invalid = || UpstreamError::MissingCredential(account.name().into());
            match account.kind() {
                AccountKind::ApiKey => {
                    let mut value = HeaderValue::from_str(credential.expose()).map_err(|_| invalid())?;
                    value.set_sensitive(true);
                    headers.insert("x-api-key", value);
                }
                AccountKind::Oauth => {
                    let mut bearer =
                        HeaderValue::from_str(&format!("Bearer {}", credential.expose())).map_err(|_| invalid())?;
                    bearer.set_sensitive(true);
                    headers.insert(http::header::AUTHORIZATION, bearer);
                }
            }
        }
        let url = format!("{}{}", account.base_url, path_and_query);
        let parsed =
            reqwest::Url::parse(&url).map_err(|e| UpstreamError::Other { url: url.clone(), message: e.to_string() })?;
        // Built directly rather than with `RequestBuilder::headers`, which re-inserts every header one by one.
        let mut request = reqwest::Request::new(method, parsed);
        *request.headers_mut() = headers;
        if !body.is_empty() {
            *request.body_mut() = Some(body.into());
        }
        self.http.execute(request).await.map_err(|e| self.classify(url, e))
    }

    /// The underlying HTTP client (shared with the OAuth token calls, so they use the same pool).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn classify(&self, url: String, e: reqwest::Error) -> UpstreamError {
        if e.is_timeout() {
            let secs = if e.is_connect() { self.config.connect_timeout_secs } else { self.config.read_timeout_secs };
            UpstreamError::Timeout { url, secs }
        } else if e.is_connect() {
            UpstreamError::Connect { url, message: error_chain(&e) }
        } else {
            UpstreamError::Other { url, message: error_chain(&e) }
        }
    }
}

/// The error with its sources, e.g. "error sending request: connection refused".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
