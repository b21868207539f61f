//! `runtime.json` beside the config: written by a running gateway (0600), read by the CLI and other front doors
//! to find it: its address and the admin token.

use std::net::SocketAddr;
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

/// The base URL (`http://IP:PORT`) that reaches a gateway bound to `addr` from this machine: an unspecified
/// address (`0.0.0.0`, `::`) becomes the loopback address of its family.
pub fn connect_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() && addr.is_ipv4() => "127.0.0.1".to_string(),
        ip if ip.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    format!("http://{ip}:{}", addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_urls_name_a_reachable_address() {
        let url = |a: &str| connect_url(a.parse().unwrap());
        assert_eq!(url("127.0.0.1:8787"), "http://127.0.0.1:8787");
        assert_eq!(url("0.0.0.0:8787"), "http://127.0.0.1:8787");
        assert_eq!(url("[::]:8787"), "http://[::1]:8787");
        assert_eq!(url("[::1]:9000"), "http://[::1]:9000");
        assert_eq!(url("192.168.1.5:80"), "http://192.168.1.5:80");
    }
}
