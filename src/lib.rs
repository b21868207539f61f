//! LLM Gateway: a local HTTP gateway in front of Anthropic's API.
//!
//! The library is the whole gateway; the `llm-gateway` binary and the desktop app are thin front doors to it.
//! Start it with [`start`] and stop it with [`GatewayHandle::shutdown`]. See ARCHITECTURE.md for the map.

pub mod accounts;
pub mod client;
pub mod clock;
pub mod config;
pub mod gateway;
pub mod manage;
pub mod proxy;
pub mod router;
pub mod secrets;
pub mod status;
pub mod transform;
pub mod upstream;
pub mod usage;

pub use gateway::{Gateway, GatewayHandle, StartError, StartOptions, start};
