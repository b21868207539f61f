//! Configuration: the YAML model with its defaults, validation, atomic saves, env overrides and hot reload.
//!
//! Every key is optional. A missing file is created with defaults on first use; a partial file gets defaults for
//! what it leaves out. The file never holds a secret: account keys live in the secret store and client keys are
//! stored as SHA-256 hashes only.

mod glob;
mod model;
mod model_plans;
mod runtime;
mod store;
pub mod validate;
pub mod watch;

pub use glob::glob_match;
pub use model::*;
pub use model_plans::*;
pub use runtime::{RuntimeInfo, connect_url, runtime_info_path};
pub(crate) use store::FileLock;
pub use store::{ConfigError, ConfigFile, default_config_path, env_overrides, write_atomic as write_private};
pub use validate::{parse_listen, validate};
