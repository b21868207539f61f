//! LLM Gateway: a local HTTP gateway in front of Anthropic's API.
//!
//! The library is the whole gateway; the `llm-gateway` binary and the desktop app are thin front doors to it.
//! Start it with [`start`] and stop it with [`GatewayHandle::shutdown`]. See ARCHITECTURE.md for the map.

// The one exception is argon2's working memory (secrets/kdf_memory.rs), allowed there with its safety argument.
#![deny(unsafe_code)]

pub mod accounts;
mod app;
pub mod claude_code;
pub mod client;
pub mod clock;
pub mod common;
pub mod config;
pub mod gateway;
pub mod manage;
pub mod proxy;
pub mod router;
pub mod secrets;
mod tasks;
pub mod transform;
pub mod upstream;
pub mod usage;

pub use app::{
    BackgroundGateway, GatewayHandle, OAUTH_REFRESH_INTERVAL, StartError, StartOptions, server_runtime, start,
};
pub use gateway::{Event, EventKind, Gateway, Subscription};
