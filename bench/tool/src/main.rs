//! `gwbench`: the benchmark's helpers, one binary with subcommands. See bench/README.md.
//!
//!   gwbench upstream --listen ADDR [--workers N] [--sse-interval-ms MS] [--sse-deltas N]
//!   gwbench proxy    --listen ADDR --upstream URL [--api-key K] [--workers N] [--current-thread] [--buffer]
//!   gwbench axum-proxy --listen ADDR --upstream URL [--api-key K] [--workers N] [--current-thread]
//!                    (only with --features axum-ref)
//!   gwbench sse      --url URL --body FILE [--header 'K: V']... [--requests N] [--concurrency C]
//!                    [--timeout-secs S] [--rss-pid PID]... [--done-marker TEXT]
//!   gwbench startup  --url URL [--runs N] [--timeout-ms MS] [--idle-rss-ms MS] -- COMMAND ARGS...

#[cfg(feature = "axum-ref")]
mod axum_proxy;
mod proxy;
mod sse;
mod startup;
mod upstream;
mod util;

fn main() {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.is_empty() {
        eprintln!("usage: gwbench upstream|proxy|sse|startup ARGS (see src/main.rs)");
        std::process::exit(2);
    }
    let cmd = argv.remove(0);
    let args = util::Args::new(argv);
    let result = match cmd.as_str() {
        "upstream" => upstream::main(args),
        "proxy" => proxy::main(args),
        #[cfg(feature = "axum-ref")]
        "axum-proxy" => axum_proxy::main(args),
        "sse" => sse::main(args),
        "startup" => startup::main(args),
        other => Err(format!("unknown subcommand `{other}`")),
    };
    if let Err(e) = result {
        eprintln!("gwbench {cmd}: error: {e}");
        std::process::exit(1);
    }
}
