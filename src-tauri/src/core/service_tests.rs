//! The service against the real library gateway: a temp config with the file secret store (no keychain, no
//! display needed), events observed through the listener, the HTTP side through plain sockets.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;
use crate::core::gateway::GatewayEvent;

/// Generous: the first start opens the secret store and may create the config.
const DEADLINE: Duration = Duration::from_secs(30);

struct Harness {
    service: GatewayService,
    events: mpsc::Receiver<ServiceEvent>,
    _dir: tempfile::TempDir,
    config: PathBuf,
}

fn launch(listen: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, format!("server:\n  listen: {listen}\nsecrets:\n  backend: file\n")).unwrap();
    launch_with(dir, config)
}

fn launch_with(dir: tempfile::TempDir, config: PathBuf) -> Harness {
    let (tx, events) = mpsc::channel();
    let sender = Mutex::new(tx);
    let service = GatewayService::launch(config.clone(), move |event| {
        let _ = sender.lock().unwrap().send(event);
    })
    .unwrap();
    Harness { service, events, _dir: dir, config }
}

impl Harness {
    /// Waits for the first phase matching `want`, failing on a deadline.
    fn wait_phase(&self, want: impl Fn(&Phase) -> bool) -> Phase {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(ServiceEvent::Phase(phase)) if want(&phase) => return phase,
                Ok(_) => {}
                Err(e) => panic!("no matching phase before the deadline ({e}); phase now {:?}", self.service.phase()),
            }
        }
    }

    fn wait_running(&self) -> SocketAddr {
        match self.wait_phase(|p| matches!(p, Phase::Running { .. } | Phase::Failed { .. })) {
            Phase::Running { addr } => addr,
            other => panic!("expected the gateway to run, got {other:?}"),
        }
    }
}

fn health(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

fn config_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn starts_the_gateway_from_the_config_file_and_it_answers_health() {
    let h = launch("127.0.0.1:0");
    let addr = h.wait_running();
    assert!(health(addr).unwrap().starts_with("HTTP/1.1 200"));
    assert_eq!(h.service.phase(), Phase::Running { addr });
    let ops = h.service.ops().expect("operations while running");
    assert_eq!(ops.snapshot().addr, addr);
    assert!(ops.snapshot().accounts.is_empty());
}

#[test]
fn pause_stops_listening_and_resume_listens_on_the_same_address_with_the_same_gateway() {
    let h = launch("127.0.0.1:0");
    let addr = h.wait_running();
    let ops = h.service.ops().expect("running");

    h.service.pause();
    assert_eq!(h.wait_phase(|p| matches!(p, Phase::Paused { .. })), Phase::Paused { addr });
    assert!(health(addr).is_err(), "a paused gateway must not accept connections");
    drop(TcpListener::bind(addr).expect("the port is free while paused"));
    let paused_ops = h.service.ops().expect("the paused gateway keeps its state and operations");
    assert_eq!(paused_ops.snapshot(), ops.snapshot());

    h.service.resume();
    assert_eq!(h.wait_running(), addr);
    assert!(health(addr).unwrap().starts_with("HTTP/1.1 200"));
}

#[test]
fn a_port_taken_while_paused_is_reported_busy_and_retry_resumes_once_it_is_free() {
    let h = launch("127.0.0.1:0");
    let addr = h.wait_running();
    h.service.pause();
    h.wait_phase(|p| matches!(p, Phase::Paused { .. }));
    let squatter = TcpListener::bind(addr).unwrap();

    h.service.resume();
    let phase = h.wait_phase(|p| !matches!(p, Phase::Starting));
    assert!(matches!(phase, Phase::PortBusy { addr: a, .. } if a == addr), "{phase:?}");

    drop(squatter);
    h.service.retry();
    assert_eq!(h.wait_running(), addr);
    assert!(health(addr).unwrap().starts_with("HTTP/1.1 200"));
}

#[test]
fn the_gateways_events_reach_the_listener() {
    let h = launch("127.0.0.1:0");
    h.wait_running();
    let ops = h.service.ops().unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    h.service.spawn(async move {
        done_tx.send(ops.start_login().await).unwrap();
    });
    done_rx.recv_timeout(DEADLINE).unwrap().expect("a login starts (adding an OAuth account)");
    let end = Instant::now() + DEADLINE;
    loop {
        match h.events.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok(ServiceEvent::Gateway(GatewayEvent::Changed)) => break,
            Ok(_) => {}
            Err(e) => panic!("no gateway event for the new account ({e})"),
        }
    }
}

#[test]
fn a_busy_port_is_reported_with_a_free_port_and_using_it_saves_the_listen_address() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap();
    let h = launch(&busy.to_string());

    let phase = h.wait_phase(|p| !matches!(p, Phase::Starting));
    let Phase::PortBusy { addr, suggested: Some(port) } = phase else { panic!("expected a busy port, got {phase:?}") };
    assert_eq!(addr, busy);
    assert!(port > busy.port());

    h.service.use_port(port);
    let addr = h.wait_running();
    assert_eq!(addr, SocketAddr::new(busy.ip(), port));
    assert!(health(addr).unwrap().starts_with("HTTP/1.1 200"));
    assert!(config_text(&h.config).contains(&format!("127.0.0.1:{port}")), "server.listen saved for the next start");
}

#[test]
fn an_unusable_config_is_reported_as_a_failed_start_and_retry_reads_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "server:\n  listen: not-an-address\nsecrets:\n  backend: file\n").unwrap();
    let h = launch_with(dir, config.clone());

    let phase = h.wait_phase(|p| !matches!(p, Phase::Starting));
    let Phase::Failed { message } = phase else { panic!("expected a failed start, got {phase:?}") };
    assert!(message.contains("server.listen"), "the message names the key: {message}");

    std::fs::write(&config, "server:\n  listen: 127.0.0.1:0\nsecrets:\n  backend: file\n").unwrap();
    h.service.retry();
    h.wait_running();
}

#[test]
fn shutdown_stops_the_gateway_for_good_then_calls_back() {
    let h = launch("127.0.0.1:0");
    let addr = h.wait_running();
    let (done_tx, done_rx) = mpsc::channel();
    h.service.shutdown(move || done_tx.send(()).unwrap());
    done_rx.recv_timeout(DEADLINE).expect("shutdown calls back");
    assert_eq!(h.service.phase(), Phase::Stopped);
    assert!(health(addr).is_err());
    // A second shutdown (the thread is gone) still calls back instead of hanging the quit.
    let (again_tx, again_rx) = mpsc::channel();
    let end = Instant::now() + DEADLINE;
    while Instant::now() < end && !h.service.commands.is_closed() {
        std::thread::sleep(Duration::from_millis(10));
    }
    h.service.shutdown(move || again_tx.send(()).unwrap());
    again_rx.recv_timeout(DEADLINE).expect("a late shutdown calls back too");
}

#[test]
fn spawned_tasks_run_on_the_gateway_runtime_after_the_start() {
    let h = launch("127.0.0.1:0");
    let (tx, rx) = mpsc::channel();
    let ops_seen = Arc::new(Mutex::new(None));
    let service_ops = ops_seen.clone();
    // Sent right after launch: it must run after the start command, with the gateway up.
    let shared = h.service.shared.clone();
    h.service.spawn(async move {
        *service_ops.lock().unwrap() = shared.ops.lock().unwrap().as_ref().map(|o| o.snapshot().addr);
        tx.send(tokio::runtime::Handle::current().runtime_flavor()).unwrap();
    });
    let flavor = rx.recv_timeout(DEADLINE).unwrap();
    assert_eq!(flavor, tokio::runtime::RuntimeFlavor::CurrentThread, "server.worker_threads defaults to 1");
    let addr = h.wait_running();
    assert_eq!(*ops_seen.lock().unwrap(), Some(addr));
}
