//! LLM Gateway: a local HTTP gateway in front of Anthropic's API.
//!
//! The library is the whole gateway; the `llm-gateway` binary and the desktop app are thin front doors to it.
//! What a front door needs is public: [`start`] (or [`BackgroundGateway`] on a thread of its own) and
//! [`GatewayHandle::shutdown`], the management operations ([`manage::Ops`], with the types they take and return and
//! the typed [`manage::Error`]), the status report, the event subscription ([`Gateway::subscribe`]), the config file
//! and Claude Code's settings. Everything else is `pub(crate)`. See ARCHITECTURE.md for the map.
//!
//! The crate's own integration tests and benchmarks reach inside through the `internals` feature (enabled for them by
//! a dev-dependency of the package on itself): with it the internal modules are public, hidden from the docs, and
//! not an API.

// The one exception is argon2's working memory (secrets/kdf_memory.rs), allowed there with its safety argument.
#![deny(unsafe_code)]
// Without `internals`, helpers only the tests and benchmarks call are unused; with it everything is public, so
// either way the compiler could not tell dead code from test-only code.
#![cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]

/// Declares modules that are `pub(crate)`, or public and doc-hidden with the `internals` feature (tests, benches).
macro_rules! internal_modules {
    ($($name:ident),* $(,)?) => {$(
        #[cfg(feature = "internals")]
        #[doc(hidden)]
        pub mod $name;
        #[cfg(not(feature = "internals"))]
        pub(crate) mod $name;
    )*};
}

internal_modules!(accounts, client, common, gateway, proxy, router, secrets, transform, upstream, usage);

mod app;
pub mod claude_code;
pub mod clock;
pub mod config;
pub mod manage;
mod tasks;

pub use app::{
    BackgroundGateway, GatewayHandle, OAUTH_REFRESH_INTERVAL, StartError, StartOptions, server_runtime, start,
};
pub use client::raise_open_files_limit;
pub use gateway::{EVENT_CAPACITY, Event, EventKind, Gateway, ReportSource, StatusReport, Subscription};
