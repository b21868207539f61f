//! `runtime.json` beside the config: written by a running gateway (0600), read by the CLI and other front doors
//! to find it: its address and the admin token.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigFile;

/// What `runtime.json` beside the config holds while a server runs: where it is and the admin token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuntimeInfo {
    /// Base URL of the running server, reachable from this machine.
    pub url: String,
    /// Admin API token (a secret; the file is 0600).
    pub admin_token: String,
    /// Server process id.
    pub pid: u32,
}

/// The path of `runtime.json` for a config file.
pub fn runtime_info_path(file: &ConfigFile) -> PathBuf {
    file.dir().join("runtime.json")
}

impl RuntimeInfo {
    /// The running gateway's `runtime.json` for this config, if one is there and readable (blocking).
    pub fn read(file: &ConfigFile) -> Option<RuntimeInfo> {
        let text = std::fs::read(runtime_info_path(file)).ok()?;
        serde_json::from_slice(&text).ok()
    }
}

/// The address clients on this machine use for a gateway listening on `addr` (a wildcard address maps to
/// loopback), e.g. `http://127.0.0.1:8787`.
pub fn connect_url(addr: std::net::SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() {
        if addr.is_ipv4() { "127.0.0.1".to_string() } else { "[::1]".to_string() }
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    format!("http://{host}:{}", addr.port())
}
