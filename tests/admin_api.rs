//! The admin API v1 against `docs/admin-api.yaml` (issue 11): the router and the document list the same routes,
//! every answer in these tests matches its documented schema (`spec.rs`, through the client in `api.rs`), every
//! endpoint's success and error kinds, and concurrent changes through the CLI and the API together.

mod common;

#[path = "admin_api/accounts.rs"]
mod accounts;
#[path = "admin_api/api.rs"]
mod api;
#[path = "admin_api/claude_code.rs"]
mod claude_code;
#[path = "admin_api/concurrency.rs"]
mod concurrency;
#[path = "admin_api/config.rs"]
mod config;
#[path = "admin_api/conformance.rs"]
mod conformance;
#[path = "admin_api/keys.rs"]
mod keys;
#[path = "admin_api/login.rs"]
mod login;
#[path = "admin_api/spec.rs"]
mod spec;
