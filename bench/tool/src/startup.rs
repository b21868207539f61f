//! Start-up to ready: spawns the command, polls `--url` (a GET) every 250 µs until it answers 200, records the
//! time from exec, stops the process (SIGTERM, then SIGKILL after 5 s) and repeats. With `--idle-rss-ms`, the
//! first run also waits that long after ready and reads the server's idle RSS.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Args, rss_kb_tree, stats_json};

pub fn main(mut args: Args) -> Result<(), String> {
    let url = args.req("--url")?;
    let runs: usize = args.num("--runs", 10)?.max(1);
    let timeout = Duration::from_millis(args.num("--timeout-ms", 10_000)?);
    let idle_rss_ms: u64 = args.num("--idle-rss-ms", 0)?;
    let cmd = args.rest();
    args.done()?;
    let (program, cmd_args) = cmd.split_first().ok_or("missing -- COMMAND")?;
    let rest = url.strip_prefix("http://").ok_or("--url must be http://HOST:PORT/PATH")?;
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: gwbench\r\n\r\n");

    let mut times = Vec::with_capacity(runs);
    let mut failures = 0usize;
    let mut idle_rss_kb: Option<u64> = None;
    let mut rss_at_ready: Vec<f64> = Vec::new();
    let started = Instant::now();
    for run in 0..runs {
        let t0 = Instant::now();
        let mut child = Command::new(program)
            .args(cmd_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn {program}: {e}"))?;
        let mut ready = None;
        while t0.elapsed() < timeout {
            if probe(authority, &request) {
                ready = Some(t0.elapsed());
                break;
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_micros(250));
        }
        match ready {
            Some(t) => {
                times.push(t.as_secs_f64() * 1e3);
                if let Some(kb) = rss_kb_tree(child.id()) {
                    rss_at_ready.push(kb as f64);
                }
                if run == 0 && idle_rss_ms > 0 {
                    std::thread::sleep(Duration::from_millis(idle_rss_ms));
                    idle_rss_kb = rss_kb_tree(child.id());
                }
            }
            None => failures += 1,
        }
        stop(&mut child);
        // Bounded overall: never spend more than runs × timeout.
        if started.elapsed() > timeout * runs as u32 {
            break;
        }
    }
    println!(
        "{{\"runs\":{},\"failures\":{failures},\"ready_ms\":{},\"rss_kb_at_ready\":{},\"idle_rss_kb\":{}}}",
        times.len() + failures,
        stats_json(&mut times),
        stats_json(&mut rss_at_ready),
        idle_rss_kb.map_or("null".into(), |v| v.to_string())
    );
    Ok(())
}

/// One GET; true on a `200` status line. The client closes first, so TIME_WAIT stays on our side.
fn probe(authority: &str, request: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(authority) else { return false };
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        match s.read(&mut buf[n..]) {
            Ok(0) | Err(_) => return false,
            Ok(k) => n += k,
        }
    }
    buf[..n].starts_with(b"HTTP/1.1 200") || buf[..n].starts_with(b"HTTP/1.0 200")
}

fn stop(child: &mut std::process::Child) {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill();
    let _ = child.wait();
}
