//! Small shared helpers: argument parsing, runtimes, clocks, percentiles, /proc readers.

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// `--flag value` arguments, consumed as they are read; anything left over is an error.
pub struct Args {
    items: Vec<String>,
}

impl Args {
    pub fn new(items: Vec<String>) -> Self {
        Self { items }
    }

    pub fn opt(&mut self, name: &str) -> Option<String> {
        let i = self.items.iter().position(|a| a == name)?;
        if i + 1 >= self.items.len() {
            return None;
        }
        let value = self.items.remove(i + 1);
        self.items.remove(i);
        Some(value)
    }

    pub fn all(&mut self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(v) = self.opt(name) {
            out.push(v);
        }
        out
    }

    pub fn flag(&mut self, name: &str) -> bool {
        match self.items.iter().position(|a| a == name) {
            Some(i) => {
                self.items.remove(i);
                true
            }
            None => false,
        }
    }

    pub fn req(&mut self, name: &str) -> Result<String, String> {
        self.opt(name).ok_or_else(|| format!("missing {name} VALUE"))
    }

    pub fn num<T: FromStr>(&mut self, name: &str, default: T) -> Result<T, String> {
        match self.opt(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("{name}: cannot parse `{v}`")),
        }
    }

    /// Everything after a literal `--`.
    pub fn rest(&mut self) -> Vec<String> {
        match self.items.iter().position(|a| a == "--") {
            Some(i) => {
                let rest = self.items.split_off(i + 1);
                self.items.pop();
                rest
            }
            None => Vec::new(),
        }
    }

    pub fn done(&self) -> Result<(), String> {
        if self.items.is_empty() { Ok(()) } else { Err(format!("unexpected arguments: {:?}", self.items)) }
    }
}

pub fn runtime(workers: usize, current_thread: bool) -> Result<tokio::runtime::Runtime, String> {
    let mut b = if current_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers.max(1));
        b
    };
    b.enable_all().build().map_err(|e| format!("runtime: {e}"))
}

/// Wall-clock nanoseconds (comparable between processes on this machine).
pub fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

/// Raises the open-files soft limit to the hard limit (1,000 streams need ~2,000 descriptors in a proxy).
pub fn raise_nofile() {
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// VmRSS of a process in KiB, summed over `pid` and its descendants (a proxy may fork workers).
pub fn rss_kb_tree(pid: u32) -> Option<u64> {
    let own = rss_kb(pid)?;
    Some(own + children(pid).into_iter().filter_map(rss_kb_tree).sum::<u64>())
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
            }
        }
    }
    out
}

/// Percentiles of a sample (nearest rank), as a JSON object; values in the unit given.
pub fn stats_json(values: &mut [f64]) -> String {
    if values.is_empty() {
        return "null".into();
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let pick = |q: f64| {
        let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
        values[rank - 1]
    };
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    format!(
        "{{\"n\":{},\"min\":{:.4},\"p50\":{:.4},\"p90\":{:.4},\"p99\":{:.4},\"max\":{:.4},\"mean\":{:.4}}}",
        values.len(),
        values[0],
        pick(0.5),
        pick(0.9),
        pick(0.99),
        values[values.len() - 1],
        mean
    )
}

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes hop-by-hop headers and those the `Connection` header names (both reference proxies forward alike).
pub fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    let listed: Vec<String> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    for name in HOP_BY_HOP.iter().copied().chain(listed.iter().map(String::as_str)) {
        headers.remove(name);
    }
}
