//! Inbound HTTP: the router and its layers (request id and logging, Host/Origin checks, client-key auth), the
//! error shape, the admin API, and the web UI's assets. Knows nothing about account kinds.

mod admin;
mod auth;
mod error;
mod middleware;
mod server;
mod ui;

pub use auth::{hash_key, new_client_key};
pub use error::{ApiError, ErrorKind};
pub use middleware::AccountUsed;
pub use server::router;
