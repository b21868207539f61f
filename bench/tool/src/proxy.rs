//! The bare pass-through reference proxy (design.md §4): hyper server + hyper-util's pooled client, nothing else.
//! It swaps the client's credential for the account key, drops hop-by-hop headers and streams both bodies
//! through without buffering (`--buffer` reads the request body in full first, as a routing gateway must).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Uri, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::util::{Args, strip_hop_by_hop};

type Body = BoxBody<Bytes, hyper::Error>;

struct Ctx {
    base: String,
    key: HeaderValue,
    buffer: bool,
    client: Client<HttpConnector, Body>,
}

pub fn main(mut args: Args) -> Result<(), String> {
    let listen = args.req("--listen")?;
    let base = args.req("--upstream")?.trim_end_matches('/').to_string();
    let key = args.opt("--api-key").unwrap_or_else(|| "sk-ant-bench".into());
    let workers: usize = args.num("--workers", 2)?;
    let current_thread = args.flag("--current-thread");
    let buffer = args.flag("--buffer");
    args.done()?;
    crate::util::raise_nofile();
    let rt = crate::util::runtime(workers, current_thread)?;
    rt.block_on(async move {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(90)).build(connector);
        let mut key = HeaderValue::from_str(&key).map_err(|e| e.to_string())?;
        key.set_sensitive(true);
        let ctx = Arc::new(Ctx { base, key, buffer, client });
        let listener = TcpListener::bind(&listen).await.map_err(|e| format!("bind {listen}: {e}"))?;
        eprintln!("gwbench proxy on {listen} -> {} (current_thread {current_thread}, buffer {buffer})", ctx.base);
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| forward(req, ctx.clone()));
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    })
}

fn bad_gateway(message: String) -> Response<Body> {
    let body = format!("{{\"type\":\"error\",\"error\":{{\"type\":\"api_error\",\"message\":{message:?}}}}}");
    let mut r = Response::new(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed());
    *r.status_mut() = StatusCode::BAD_GATEWAY;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

async fn forward(req: Request<Incoming>, ctx: Arc<Ctx>) -> Result<Response<Body>, Infallible> {
    let (mut parts, body) = req.into_parts();
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = match format!("{}{pq}", ctx.base).parse::<Uri>() {
        Ok(u) => u,
        Err(e) => return Ok(bad_gateway(format!("bad uri: {e}"))),
    };
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(header::HOST);
    parts.headers.remove(header::AUTHORIZATION);
    parts.headers.insert("x-api-key", ctx.key.clone());
    let body: Body = if ctx.buffer {
        match body.collect().await {
            Ok(b) => Full::new(b.to_bytes()).map_err(|never| match never {}).boxed(),
            Err(e) => return Ok(bad_gateway(format!("client body: {e}"))),
        }
    } else {
        body.boxed()
    };
    match ctx.client.request(Request::from_parts(parts, body)).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Ok(Response::from_parts(parts, body.boxed()))
        }
        Err(e) => Ok(bad_gateway(format!("upstream: {e}"))),
    }
}
