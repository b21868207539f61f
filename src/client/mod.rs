//! Inbound HTTP: the router and its layers (request id and logging, Host/Origin checks, client-key auth), the
//! error shape, the admin API, and the web UI's assets. Knows nothing about account kinds.

mod admin;
mod auth;
mod callback;
mod conn;
mod error;
mod middleware;
mod serve;
mod server;
mod ui;

pub use crate::common::{AccountUsed, ApiError, ErrorKind};
pub use admin::v1_routes as admin_v1_routes;
pub(crate) use serve::serve;
pub use serve::{ServeSettings, raise_open_files_limit, warn_if_few_descriptors};
pub use server::router;
