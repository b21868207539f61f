//! Calls to the upstream: the pooled HTTP client, header forwarding rules, credentials, and probes.
//! Never parses client formats.

mod client;
pub mod extra_usage;
mod headers;
pub mod oauth;
pub mod outcome;
pub mod probe;

pub use client::{UpstreamClient, UpstreamError};
pub use headers::{
    own_login_headers_for_an_account, request_headers_for_own_login, request_headers_for_upstream, response_headers_for_client, strip_hop_by_hop,
};

/// The `error.message` of an Anthropic error body (`{"type":"error","error":{"type","message"}}`), if it is one.
pub fn error_message(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        message: String,
    }
    serde_json::from_slice::<Envelope>(body).ok().map(|e| e.error.message)
}
