//! `llm-gateway usage` and `llm-gateway requests`: the usage report and the request log, from the running
//! server's admin API when one runs, else from the database file read-only (the library's `Ops` decides).

use std::time::Duration;

use anyhow::Result;
use clap::{Args, ValueEnum};
use llm_gateway::manage::{
    CostBasis, GroupBy, LoggedRequest, Ops, RequestParams, UsageParams, UsageReport, UsageTotals,
};

/// How often `requests --follow` asks for new requests.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// `usage --by` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum By {
    /// Per account.
    Account,
    /// Per gateway (client) key.
    ClientKey,
    /// Per model.
    Model,
    /// Per kind of client (Claude Code, Anthropic SDK, OpenAI client, other).
    ClientKind,
    /// Per UTC hour.
    Hour,
    /// Per UTC day.
    Day,
}

impl By {
    fn as_param(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::ClientKey => "client_key",
            Self::Model => "model",
            Self::ClientKind => "client_kind",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }
}

/// `llm-gateway usage` options.
#[derive(Debug, Args)]
pub struct UsageArgs {
    /// From: a duration back from now (30m, 24h, 7d, 2w), an RFC 3339 time or a UTC date (YYYY-MM-DD).
    #[arg(long, default_value = "24h")]
    since: String,
    /// Until (exclusive), the same forms; default now.
    #[arg(long)]
    until: Option<String>,
    /// Grouping (default: day).
    #[arg(long, value_enum)]
    by: Option<By>,
    /// One JSON document (the admin API's `UsageReport`).
    #[arg(long)]
    json: bool,
}

/// `llm-gateway requests` options.
#[derive(Debug, Args)]
pub struct RequestsArgs {
    /// How many of the latest requests to show.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Keep printing requests as they finish, until interrupted.
    #[arg(long)]
    follow: bool,
    /// Only this account (id or name).
    #[arg(long)]
    account: Option<String>,
    /// Only this client key (name).
    #[arg(long)]
    client_key: Option<String>,
    /// Only this model.
    #[arg(long)]
    model: Option<String>,
    /// Only this status: 2xx, 4xx, 5xx, error or a code.
    #[arg(long)]
    status: Option<String>,
    /// JSON: one document (a page of the log); with --follow, one request per line.
    #[arg(long)]
    json: bool,
}

/// `llm-gateway usage`.
pub async fn usage(ops: &Ops, args: UsageArgs) -> Result<()> {
    let params = UsageParams {
        since: Some(args.since),
        until: args.until,
        by: args.by.map(|b| b.as_param().to_string()),
        ..UsageParams::default()
    };
    let report = ops.usage(params).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print_report(&report);
    Ok(())
}

/// `llm-gateway requests`.
pub async fn requests(ops: &Ops, args: RequestsArgs) -> Result<()> {
    let filters = RequestParams {
        account: args.account,
        client_key: args.client_key,
        model: args.model,
        status: args.status,
        ..RequestParams::default()
    };
    let page = ops.requests(RequestParams { limit: Some(args.limit.clamp(1, 1000)), ..filters.clone() }).await?;
    if args.json && !args.follow {
        println!("{}", serde_json::to_string_pretty(&page)?);
        return Ok(());
    }
    // Oldest first, as a log reads; following appends below.
    let mut items = page.items;
    items.reverse();
    print_requests(&items, args.json, true);
    if !args.follow {
        if items.is_empty() {
            eprintln!("no requests recorded yet");
        }
        return Ok(());
    }
    let mut after = page.newest_cursor;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            () = tokio::time::sleep(FOLLOW_EVERY) => {}
        }
        // Before the first request is logged there is no cursor yet: the first page then is the newest requests.
        let next = match &after {
            Some(cursor) => RequestParams { after: Some(cursor.clone()), limit: Some(1000), ..filters.clone() },
            None => RequestParams { limit: Some(1000), ..filters.clone() },
        };
        let page = ops.requests(next).await?;
        let mut new = page.items;
        if after.is_none() {
            new.reverse();
        }
        print_requests(&new, args.json, false);
        after = page.newest_cursor.or(after);
    }
}

fn usd(micros: u64) -> String {
    if micros == 0 { "-".into() } else { format!("${:.4}", micros as f64 / 1e6) }
}

fn totals_row(label: String, t: &UsageTotals) -> Vec<String> {
    let errors = t.client_errors + t.upstream_errors + t.gateway_errors + t.key_rejected;
    vec![
        label,
        t.requests.to_string(),
        errors.to_string(),
        t.tokens.input.to_string(),
        t.tokens.output.to_string(),
        t.tokens.cache_creation.to_string(),
        t.tokens.cache_read.to_string(),
        usd(t.spend_micros),
        usd(t.equivalent_micros),
    ]
}

fn print_report(report: &UsageReport) {
    let by = match report.group_by {
        GroupBy::Total => "total",
        GroupBy::Account => "account",
        GroupBy::ClientKey => "client key",
        GroupBy::Model => "model",
        GroupBy::ClientKind => "client",
        GroupBy::Hour => "hour (UTC)",
        GroupBy::Day => "day (UTC)",
    };
    println!(
        "usage from {} to {}, by {by}",
        llm_gateway::clock::rfc3339(report.since_ms),
        llm_gateway::clock::rfc3339(report.until_ms)
    );
    let head = [by, "REQUESTS", "ERRORS", "INPUT", "OUTPUT", "CACHE WRITE", "CACHE READ", "SPEND", "API-EQUIV. VALUE"];
    let mut rows = vec![head.iter().map(|h| h.to_uppercase()).collect::<Vec<_>>()];
    for row in &report.rows {
        let label = match report.group_by {
            GroupBy::Hour | GroupBy::Day => {
                row.key.parse::<u64>().map_or_else(|_| row.key.clone(), llm_gateway::clock::rfc3339)
            }
            _ if row.key.is_empty() => "(none)".into(),
            _ => match &row.name {
                Some(name) => format!("{name} ({})", row.key),
                None => row.key.clone(),
            },
        };
        rows.push(totals_row(label, &row.totals));
    }
    rows.push(totals_row("TOTAL".into(), &report.total));
    crate::output::table(rows);
    println!(
        "Spend: estimated cost of API-key accounts. API-equivalent value: what subscription traffic would cost on \
         an API key (not money spent)."
    );
    if report.total.unpriced > 0 {
        println!("{} requests used models without a known price (not in the cost).", report.total.unpriced);
    }
}

fn print_requests(items: &[LoggedRequest], json: bool, header: bool) {
    if json {
        for item in items {
            if let Ok(line) = serde_json::to_string(item) {
                println!("{line}");
            }
        }
        return;
    }
    let mut rows = Vec::new();
    if header {
        rows.push(
            ["TIME", "CLIENT", "KEY", "ACCOUNT", "MODEL", "STATUS", "MS", "IN", "OUT", "CACHE R/W", "COST", "ATTEMPTS"]
                .map(String::from)
                .to_vec(),
        );
    }
    for item in items {
        let r = &item.record;
        let cost = match r.cost_micros {
            Some(c) if r.cost_basis == CostBasis::ApiEquivalent => format!("({})", usd(c)),
            Some(c) => usd(c),
            None => "-".into(),
        };
        rows.push(vec![
            llm_gateway::clock::rfc3339(r.started_at_ms),
            r.client_kind.as_str().into(),
            r.client_key.clone().unwrap_or_else(|| "-".into()),
            r.account_name.clone().or_else(|| r.account_id.clone()).unwrap_or_else(|| "-".into()),
            r.model().unwrap_or("-").into(),
            format!("{} {}", r.status, r.outcome.as_str()),
            r.latency_ms.to_string(),
            r.tokens.input.to_string(),
            r.tokens.output.to_string(),
            format!("{}/{}", r.tokens.cache_read, r.tokens.cache_creation),
            cost,
            r.attempts.len().max(usize::from(r.account_id.is_some())).to_string(),
        ]);
    }
    if rows.len() > usize::from(header) {
        crate::output::table(rows);
        if header {
            println!("(COST in parentheses: API-equivalent value of subscription traffic, not spend)");
        }
    }
}
