//! `mock-upstream [--listen ADDR]`: serves the mock until SIGTERM or SIGINT.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use mock_upstream::MockUpstream;

const USAGE: &str = "usage: mock-upstream [--listen 127.0.0.1:0]\n\
Prints `listening on http://IP:PORT` once bound, then serves until SIGTERM/SIGINT.";

fn parse_args() -> Result<SocketAddr, String> {
    let mut listen = "127.0.0.1:0".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        } else if arg == "--listen" {
            listen = args.next().ok_or("--listen needs an address")?;
        } else if let Some(v) = arg.strip_prefix("--listen=") {
            listen = v.to_string();
        } else {
            return Err(format!("unknown argument {arg:?}"));
        }
    }
    listen.parse().map_err(|e| format!("bad --listen address {listen:?}: {e}"))
}

async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let addr = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("mock-upstream: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mock = match MockUpstream::start_on(addr).await {
        Ok(m) => m,
        Err(e) => {
            eprintln!("mock-upstream: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {}", mock.base_url());
    let _ = out.flush();
    drop(out);
    wait_for_signal().await;
    mock.shutdown().await;
    ExitCode::SUCCESS
}
