//! The SSE timing client: sends streaming requests and measures, per stream, the time to the response head and
//! to the first body byte, and for every event carrying `<ts:NANOS>` (stamped by the mock upstream when it wrote
//! the event) the delivery delay = arrival time − upstream write time. Through a proxy that holds nothing back,
//! the delivery delay stays near the direct call's; a buffered chunk shows up as a delay near the event interval.
//!
//! With `--rss-pid PID`, it samples that process's RSS (and its children's) every 50 ms while the requests run and
//! reports the peak, the peak number of streams open at once (first byte received, not yet finished) and the RSS
//! at that moment: RSS with N concurrent open streams.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::{Mutex, Semaphore};

use crate::util::{Args, now_ns, rss_kb_tree, stats_json};

#[derive(Default)]
struct Sample {
    ok: usize,
    errors: usize,
    incomplete: usize,
    statuses: std::collections::BTreeMap<u16, usize>,
    first_error: Option<String>,
    head_ms: Vec<f64>,
    ttfb_ms: Vec<f64>,
    total_ms: Vec<f64>,
    first_event_ms: Vec<f64>,
    event_ms: Vec<f64>,
    events: Vec<f64>,
    chunks: Vec<f64>,
}

pub fn main(mut args: Args) -> Result<(), String> {
    let url: Uri = args.req("--url")?.parse().map_err(|e| format!("--url: {e}"))?;
    let body = Bytes::from(std::fs::read(args.req("--body")?).map_err(|e| format!("--body: {e}"))?);
    let mut headers = Vec::new();
    for h in args.all("--header") {
        let (k, v) = h.split_once(':').ok_or_else(|| format!("--header `{h}`: want NAME: VALUE"))?;
        headers.push((
            HeaderName::from_bytes(k.trim().as_bytes()).map_err(|e| e.to_string())?,
            HeaderValue::from_str(v.trim()).map_err(|e| e.to_string())?,
        ));
    }
    let requests: usize = args.num("--requests", 20)?;
    let concurrency: usize = args.num("--concurrency", 2)?.max(1);
    let timeout = Duration::from_secs_f64(args.num("--timeout-secs", 60.0)?);
    let rss_pids: Vec<u32> = args.all("--rss-pid").iter().filter_map(|p| p.parse().ok()).collect();
    let done_marker = args.opt("--done-marker").unwrap_or_else(|| "message_stop".into());
    args.done()?;
    crate::util::raise_nofile();
    let rt = crate::util::runtime(1, true)?;
    rt.block_on(async move {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).pool_max_idle_per_host(concurrency).build(connector);
        let sample = Arc::new(Mutex::new(Sample::default()));
        let sem = Arc::new(Semaphore::new(concurrency));
        let opened = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(requests);
        for _ in 0..requests {
            let (client, sample, sem, opened, finished) =
                (client.clone(), sample.clone(), sem.clone(), opened.clone(), finished.clone());
            let (url, body, headers, done_marker) = (url.clone(), body.clone(), headers.clone(), done_marker.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = sem.acquire_owned().await.unwrap();
                let mut req = Request::post(url).body(Full::new(body)).unwrap();
                for (k, v) in headers {
                    req.headers_mut().append(k, v);
                }
                let r = tokio::time::timeout(timeout, one(&client, req, &opened, &done_marker)).await;
                finished.fetch_add(1, Ordering::Relaxed);
                let mut s = sample.lock().await;
                match r {
                    Ok(Ok(m)) => {
                        *s.statuses.entry(m.status).or_default() += 1;
                        if m.status == 200 {
                            s.ok += 1;
                        } else {
                            s.errors += 1;
                            s.first_error.get_or_insert(format!("status {}: {}", m.status, m.error_body));
                        }
                        if m.status == 200 && !m.complete {
                            s.incomplete += 1;
                        }
                        s.head_ms.push(m.head_ms);
                        if let Some(t) = m.ttfb_ms {
                            s.ttfb_ms.push(t);
                        }
                        s.total_ms.push(m.total_ms);
                        if let Some(f) = m.first_event_ms {
                            s.first_event_ms.push(f);
                        }
                        s.event_ms.extend(m.event_ms);
                        s.events.push(m.events as f64);
                        s.chunks.push(m.chunks as f64);
                    }
                    Ok(Err(e)) => {
                        s.errors += 1;
                        s.first_error.get_or_insert(e);
                    }
                    Err(_) => {
                        s.errors += 1;
                        s.first_error.get_or_insert("timeout".into());
                    }
                }
            }));
        }
        // RSS while the streams are open: sample every 50 ms until every request is done (bounded by the
        // timeout); report the peak RSS, the peak number of streams open at once, and the RSS at that peak.
        let mut rss_max: Option<u64> = None;
        let mut rss_at_peak: Option<u64> = None;
        let mut peak_open = 0usize;
        if !rss_pids.is_empty() {
            let deadline = Instant::now() + timeout + Duration::from_secs(5);
            while finished.load(Ordering::Relaxed) < requests && Instant::now() < deadline {
                let open = opened.load(Ordering::Relaxed).saturating_sub(finished.load(Ordering::Relaxed));
                let total: u64 = rss_pids.iter().filter_map(|p| rss_kb_tree(*p)).sum();
                rss_max = Some(rss_max.map_or(total, |m| m.max(total)));
                if open >= peak_open {
                    peak_open = open;
                    rss_at_peak = Some(total);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        for t in tasks {
            let _ = t.await;
        }
        let wall = started.elapsed().as_secs_f64();
        let mut guard = sample.lock().await;
        let s = &mut *guard;
        let statuses: Vec<String> = s.statuses.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let first_error = s.first_error.clone().map(|e| format!("{e:?}")).unwrap_or_else(|| "null".into());
        println!(
            "{{\"requests\":{requests},\"concurrency\":{concurrency},\"wall_secs\":{wall:.3},\"ok\":{},\"errors\":{},\"incomplete\":{},\"statuses\":{{{}}},\"first_error\":{first_error},\"head_ms\":{},\"ttfb_ms\":{},\"total_ms\":{},\"first_event_delivery_ms\":{},\"event_delivery_ms\":{},\"events_per_stream\":{},\"chunks_per_stream\":{},\"rss_pids\":{:?},\"peak_open_streams\":{peak_open},\"rss_at_peak_kb\":{},\"rss_max_kb\":{}}}",
            s.ok,
            s.errors,
            s.incomplete,
            statuses.join(","),
            stats_json(&mut s.head_ms),
            stats_json(&mut s.ttfb_ms),
            stats_json(&mut s.total_ms),
            stats_json(&mut s.first_event_ms),
            stats_json(&mut s.event_ms),
            stats_json(&mut s.events),
            stats_json(&mut s.chunks),
            rss_pids,
            rss_at_peak.map_or("null".into(), |v| v.to_string()),
            rss_max.map_or("null".into(), |v| v.to_string()),
        );
        Ok(())
    })
}

struct Measured {
    status: u16,
    error_body: String,
    complete: bool,
    head_ms: f64,
    ttfb_ms: Option<f64>,
    total_ms: f64,
    first_event_ms: Option<f64>,
    event_ms: Vec<f64>,
    events: usize,
    chunks: usize,
}

async fn one(
    client: &Client<HttpConnector, Full<Bytes>>,
    req: Request<Full<Bytes>>,
    opened: &AtomicUsize,
    done_marker: &str,
) -> Result<Measured, String> {
    let t0 = Instant::now();
    let resp = client.request(req).await.map_err(|e| format!("request: {e}"))?;
    let head_ms = t0.elapsed().as_secs_f64() * 1e3;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut scanned = 0usize;
    let mut m = Measured {
        status,
        error_body: String::new(),
        complete: false,
        head_ms,
        ttfb_ms: None,
        total_ms: 0.0,
        first_event_ms: None,
        event_ms: Vec::new(),
        events: 0,
        chunks: 0,
    };
    let finder = memchr::memmem::Finder::new(b"<ts:");
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("body: {e}"))?;
        let Ok(data) = frame.into_data() else { continue };
        if data.is_empty() {
            continue;
        }
        let now = now_ns();
        if m.ttfb_ms.is_none() {
            m.ttfb_ms = Some(t0.elapsed().as_secs_f64() * 1e3);
            opened.fetch_add(1, Ordering::Relaxed);
        }
        m.chunks += 1;
        buf.extend_from_slice(&data);
        while let Some(pos) = finder.find(&buf[scanned..]) {
            let start = scanned + pos + 4;
            let Some(end) = buf[start..].iter().position(|&b| b == b'>') else { break };
            scanned = start + end + 1;
            let Ok(ts) = std::str::from_utf8(&buf[start..start + end]).unwrap_or("").parse::<u128>() else {
                continue;
            };
            let delay_ms = now.saturating_sub(ts) as f64 / 1e6;
            m.events += 1;
            if m.first_event_ms.is_none() {
                m.first_event_ms = Some(delay_ms);
            } else {
                m.event_ms.push(delay_ms);
            }
        }
        // Keep at most a partial marker's worth of unscanned bytes in view.
        if scanned < buf.len().saturating_sub(64) && finder.find(&buf[scanned..]).is_none() {
            scanned = buf.len().saturating_sub(64);
        }
    }
    m.total_ms = t0.elapsed().as_secs_f64() * 1e3;
    m.complete = memchr::memmem::find(&buf, done_marker.as_bytes()).is_some();
    if status != 200 {
        m.error_body = String::from_utf8_lossy(&buf[..buf.len().min(300)]).into_owned();
    }
    if m.ttfb_ms.is_none() {
        opened.fetch_add(1, Ordering::Relaxed);
    }
    Ok(m)
}
