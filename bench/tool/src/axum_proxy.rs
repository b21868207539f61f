//! Reference proxy on the gateway's own stack, without its logic: axum (one fallback handler) + a pooled
//! reqwest client; reads the request body in full (as the gateway must, to route), swaps the credential, streams
//! the response back. Separates "cost of the stack" from "cost of the gateway's per-request work".
//! Built only with `--features axum-ref` (full benchmark runs).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};

use crate::util::{Args, strip_hop_by_hop};

#[derive(Clone)]
struct Ctx {
    base: String,
    key: HeaderValue,
    client: reqwest::Client,
}

pub fn main(mut args: Args) -> Result<(), String> {
    let listen = args.req("--listen")?;
    let base = args.req("--upstream")?.trim_end_matches('/').to_string();
    let key = args.opt("--api-key").unwrap_or_else(|| "sk-ant-bench".into());
    let workers: usize = args.num("--workers", 2)?;
    let current_thread = args.flag("--current-thread");
    args.done()?;
    crate::util::raise_nofile();
    let rt = crate::util::runtime(workers, current_thread)?;
    rt.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let mut key = HeaderValue::from_str(&key).map_err(|e| e.to_string())?;
        key.set_sensitive(true);
        let ctx = Ctx { base, key, client };
        let app = axum::Router::new().fallback(forward).with_state(ctx);
        let listener = tokio::net::TcpListener::bind(&listen).await.map_err(|e| format!("bind {listen}: {e}"))?;
        eprintln!("gwbench axum-proxy on {listen} (current_thread {current_thread})");
        axum::serve(listener, app).await.map_err(|e| e.to_string())
    })
}

async fn forward(State(ctx): State<Ctx>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    headers.remove(header::HOST);
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::AUTHORIZATION);
    headers.insert("x-api-key", ctx.key.clone());
    let url = format!("{}{}", ctx.base, parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    let resp = match ctx.client.request(parts.method, url).headers(headers).body(body).send().await {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_GATEWAY, e.to_string()),
    };
    let status = resp.status();
    let mut out_headers = resp.headers().clone();
    strip_hop_by_hop(&mut out_headers);
    let mut out = Response::new(Body::from_stream(resp.bytes_stream()));
    *out.status_mut() = status;
    *out.headers_mut() = out_headers;
    out
}

fn error(status: StatusCode, message: String) -> Response {
    let mut r = Response::new(Body::from(format!("{{\"type\":\"error\",\"error\":{{\"type\":\"api_error\",\"message\":{message:?}}}}}")));
    *r.status_mut() = status;
    r
}
