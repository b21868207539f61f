//! Types that several layers share, kept below all of them so that dependencies point one way: the error a
//! request gets from the gateway itself, and the marker of the account that served a response.

mod api_error;
pub mod net;

pub use api_error::{ApiError, ErrorKind};

/// Set on a response by the handler that used an upstream account, for the request log line.
#[derive(Debug, Clone)]
pub struct AccountUsed(pub String);
