//! The accept loop: header-read and idle timeouts, the connection limit, Host checks over HTTP/2, and shutdown of
//! an embedded gateway.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{GOOD_KEY, Harness, add_account, simple_body};
use futures_util::StreamExt;
use llm_gateway::StartOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous bound for things that should happen quickly (slow shared CI machines).
const PATIENCE: Duration = Duration::from_secs(10);

async fn start(server_extra: &str) -> Harness {
    Harness::with_config(server_extra, "", |path| {
        add_account(path, "primary", GOOD_KEY, &[]);
    })
    .await
}

fn addr(h: &Harness) -> std::net::SocketAddr {
    h.gateway.as_ref().expect("running").addr()
}

/// Reads until the peer closes the connection (EOF or reset); returns what arrived meanwhile.
async fn read_until_closed(socket: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one HTTP/1.1 response with a `content-length` body; returns its head and body.
async fn read_response(socket: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.expect("read response");
        assert!(n > 0, "connection closed before a whole response: {}", String::from_utf8_lossy(&data));
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse::<usize>().ok())
                .expect("content-length");
            if data.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

#[tokio::test]
async fn half_sent_request_line_is_closed_within_the_header_timeout() {
    let h = start("  header_read_timeout_secs: 0.5\n").await;
    let started = Instant::now();
    let mut socket = TcpStream::connect(addr(&h)).await.unwrap();
    socket.write_all(b"POST /v1/messages HT").await.unwrap();
    let left = tokio::time::timeout(PATIENCE, read_until_closed(&mut socket)).await;
    assert!(left.is_ok(), "a half-sent request line kept its connection open for {PATIENCE:?}");
    assert!(started.elapsed() >= Duration::from_millis(450), "closed before the header timeout");
    // The gateway itself keeps serving.
    assert_eq!(h.message(&[]).await.status(), 200);
    h.shutdown().await;
}

#[tokio::test]
async fn connection_sending_nothing_is_closed_within_the_header_timeout() {
    let h = start("  header_read_timeout_secs: 0.5\n").await;
    let mut socket = TcpStream::connect(addr(&h)).await.unwrap();
    let left = tokio::time::timeout(PATIENCE, read_until_closed(&mut socket)).await;
    assert!(left.is_ok(), "a silent connection stayed open for {PATIENCE:?}");
    h.shutdown().await;
}

#[tokio::test]
async fn valid_request_succeeds_while_1100_half_open_connections_wait() {
    // 1,100 client sockets and the gateway's 1,100 accepted ones live in this one process.
    let limit = rlimit::increase_nofile_limit(u64::MAX).expect("raise the open-files limit");
    assert!(limit >= 2_600, "this test needs an open-files hard limit of at least 2600, not {limit}");
    let h = start("  header_read_timeout_secs: 60\n").await;
    let mut half_open = Vec::with_capacity(1_100);
    for _ in 0..1_100 {
        let mut socket = TcpStream::connect(addr(&h)).await.unwrap();
        socket.write_all(b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty").await.unwrap();
        half_open.push(socket);
    }
    let client = reqwest::Client::builder().timeout(PATIENCE).build().unwrap();
    let response = client
        .post(format!("{}/v1/messages", h.url))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .body(simple_body(false))
        .send()
        .await
        .expect("a valid request is served while 1,100 connections dawdle");
    assert_eq!(response.status(), 200);
    drop(half_open);
    h.shutdown().await;
}

#[tokio::test]
async fn at_the_connection_limit_new_connections_wait_for_a_free_slot() {
    let h = start("  header_read_timeout_secs: 60\n  max_connections: 4\n").await;
    let mut half_open = Vec::new();
    for _ in 0..4 {
        let mut socket = TcpStream::connect(addr(&h)).await.unwrap();
        socket.write_all(b"GET /health HT").await.unwrap();
        half_open.push(socket);
    }
    let url = format!("{}/health", h.url);
    let waiting = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "a fifth connection was served while 4 (the limit) were open");
    drop(half_open.pop());
    let status = tokio::time::timeout(PATIENCE, waiting).await.expect("served once a slot freed").unwrap();
    assert_eq!(status.expect("request"), 200);
    h.shutdown().await;
}

#[tokio::test]
async fn idle_keep_alive_connection_outlives_the_header_timeout_and_closes_after_the_idle_timeout() {
    let h = start("  header_read_timeout_secs: 0.3\n  idle_timeout_secs: 3\n").await;
    let mut socket = TcpStream::connect(addr(&h)).await.unwrap();
    socket.write_all(HEALTH).await.unwrap();
    assert!(read_response(&mut socket).await.starts_with("HTTP/1.1 200"));
    // Idle for longer than the header timeout: the connection is still usable.
    tokio::time::sleep(Duration::from_secs(1)).await;
    socket.write_all(HEALTH).await.unwrap();
    assert!(read_response(&mut socket).await.starts_with("HTTP/1.1 200"));
    let idle_from = Instant::now();
    let left = tokio::time::timeout(PATIENCE, read_until_closed(&mut socket)).await;
    assert_eq!(left.expect("an idle keep-alive connection was never closed"), b"");
    assert!(idle_from.elapsed() >= Duration::from_millis(2_900), "closed before the idle timeout");
    h.shutdown().await;
}

#[tokio::test]
async fn stream_lasting_longer_than_the_header_and_idle_timeouts_is_not_cut() {
    let h = start("  header_read_timeout_secs: 0.3\n  idle_timeout_secs: 0.3\n").await;
    let response = h
        .http
        .post(format!("{}/v1/messages", h.url))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .header("x-mock-event-interval-ms", "200")
        .body(simple_body(true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let started = Instant::now();
    let body = response.text().await.expect("the whole stream arrives");
    assert!(started.elapsed() > Duration::from_millis(600), "the stream was expected to take over 0.6 s");
    assert!(body.contains("event: message_stop"), "stream cut short: {body}");
    h.shutdown().await;
}

#[tokio::test]
async fn http2_request_for_a_foreign_authority_is_refused() {
    let h = start("").await;
    let addr = addr(&h);
    let client = reqwest::Client::builder().http2_prior_knowledge().resolve("evil.example", addr).build().unwrap();
    let foreign = client.get(format!("http://evil.example:{}/health", addr.port())).send().await.unwrap();
    assert_eq!(foreign.version(), reqwest::Version::HTTP_2);
    common::error_of(foreign, 403, "permission_error").await;

    let own = client
        .post(format!("http://127.0.0.1:{}/v1/messages", addr.port()))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .body(simple_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(own.version(), reqwest::Version::HTTP_2);
    assert_eq!(own.status(), 200);

    // HTTP/1.1 in absolute form carries both a URI authority and a Host header: both must pass.
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(b"GET http://evil.example/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    assert!(read_response(&mut socket).await.starts_with("HTTP/1.1 403"));
    h.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_connections_frees_the_port_and_leaves_no_task_running() {
    let mut h = start("  shutdown_grace_secs: 1\n").await;
    let gateway = h.gateway.take().expect("running");
    let addr = gateway.addr();
    let state = Arc::downgrade(gateway.gateway());

    // A stream that would run for ~40 s (one event every 5 s) …
    let response = h
        .http
        .post(format!("{}/v1/messages", h.url))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .header("x-mock-event-interval-ms", "5000")
        .body(simple_body(true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let first = stream.next().await.expect("first event").expect("first event");
    assert!(String::from_utf8_lossy(&first).contains("message_start"));
    // … and an idle keep-alive connection.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(HEALTH).await.unwrap();
    read_response(&mut idle).await;

    let started = Instant::now();
    gateway.shutdown().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "shutdown with a 1 s grace took {took:?}");

    // No task of the old gateway holds its state any more (connections, streams, refresher, watcher).
    assert!(state.upgrade().is_none(), "a task of the stopped gateway still runs");
    // Its connections are closed: the stream ends without its last event, the idle connection reads EOF.
    let rest = tokio::time::timeout(PATIENCE, async {
        let mut rest = Vec::new();
        while let Some(Ok(chunk)) = stream.next().await {
            rest.extend_from_slice(&chunk);
        }
        rest
    })
    .await
    .expect("the cut stream ends");
    assert!(!String::from_utf8_lossy(&rest).contains("message_stop"), "the stream was not cut");
    tokio::time::timeout(PATIENCE, read_until_closed(&mut idle)).await.expect("the idle connection is closed");

    // The port is free at once: a new gateway binds it and serves.
    let second =
        llm_gateway::start(StartOptions { listen: Some(addr.to_string()), ..StartOptions::new(&h.config_path) })
            .await
            .expect("a new gateway binds the same port right away");
    assert_eq!(second.addr(), addr);
    assert_eq!(h.message(&[]).await.status(), 200);
    second.shutdown().await;
}

#[tokio::test]
async fn shutdown_does_not_wait_for_connections_without_a_request() {
    let h = start("").await;
    let mut idle = TcpStream::connect(addr(&h)).await.unwrap();
    idle.write_all(HEALTH).await.unwrap();
    read_response(&mut idle).await;
    let mut half_open = TcpStream::connect(addr(&h)).await.unwrap();
    half_open.write_all(b"GET /health HT").await.unwrap();
    let mut silent = TcpStream::connect(addr(&h)).await.unwrap();
    let started = Instant::now();
    h.shutdown().await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "shutdown (grace 30 s) waited {took:?} for connections with no request");
    for socket in [&mut idle, &mut half_open, &mut silent] {
        tokio::time::timeout(PATIENCE, read_until_closed(socket)).await.expect("closed");
    }
}

#[tokio::test]
async fn dropping_the_handle_stops_the_gateway() {
    let mut h = start("").await;
    let gateway = h.gateway.take().expect("running");
    let addr = gateway.addr();
    let state = Arc::downgrade(gateway.gateway());
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(HEALTH).await.unwrap();
    read_response(&mut idle).await;
    drop(gateway);
    tokio::time::timeout(PATIENCE, read_until_closed(&mut idle)).await.expect("connections are closed");
    let deadline = Instant::now() + PATIENCE;
    while state.upgrade().is_some() || TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "a dropped gateway still runs or listens");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
