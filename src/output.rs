//! Human and JSON output for the CLI.

use anyhow::Result;
use llm_gateway::manage::{AccountView, ClientKeyView, ProbeResult, RateWindows};
use llm_gateway::{ReportSource, StatusReport};

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Columns padded to their widest cell.
pub fn table(rows: Vec<Vec<String>>) {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> =
        (0..columns).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    for row in rows {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        println!("{}", line.join("  ").trim_end());
    }
}

fn account_rows(accounts: &[AccountView], with_usage: bool) -> Vec<Vec<String>> {
    let mut header = vec!["ID", "NAME", "KIND", "STATE", "PRIO", "WEIGHT", "MODELS"];
    if with_usage {
        header.extend(["UNTIL", "WINDOWS", "REQUESTS", "FAILURES", "LAST USED"]);
    }
    header.push("DETAIL");
    let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
    for a in accounts {
        let kind = serde_json::to_value(a.kind).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        let mut state = a.state.as_str().to_string();
        if a.half_open {
            state.push_str(" (trial)");
        }
        let mut row = vec![
            a.id.clone(),
            a.name.clone(),
            kind,
            state,
            a.priority.to_string(),
            a.weight.to_string(),
            if a.models.is_empty() { "all".into() } else { a.models.join(",") },
        ];
        if with_usage {
            let until = match (&a.cooldown_until, &a.cooldown_reason) {
                (Some(until), Some(reason)) => format!("{until} ({reason})"),
                _ => "-".into(),
            };
            row.push(until);
            row.push(a.windows.as_ref().map_or_else(|| "-".into(), windows_summary));
            row.push(a.requests.to_string());
            row.push(a.failures.to_string());
            row.push(a.last_used.clone().unwrap_or_else(|| "-".into()));
        }
        let mut detail = a.error.clone().unwrap_or_default();
        if detail.is_empty()
            && let Some(email) = &a.email
        {
            detail = match &a.token_expires_at {
                Some(expiry) => format!("{email}, token valid until {expiry}"),
                None => email.clone(),
            };
        }
        row.push(detail);
        rows.push(row);
    }
    rows
}

/// "allowed_warning 5h 91% 7d 40% 7d_oi 12% extra usage rejected (out_of_credits)" or "req 45/50 tok 9000/10000".
fn windows_summary(w: &RateWindows) -> String {
    let mut parts = Vec::new();
    if let Some(status) = &w.unified_status {
        parts.push(status.clone());
    }
    let windows = [("5h", w.five_hour.as_ref()), ("7d", w.seven_day.as_ref())].into_iter();
    for (label, window) in windows.chain(w.other_windows.iter().map(|(n, w)| (n.as_str(), Some(w)))) {
        if let Some(u) = window.and_then(|w| w.utilization) {
            let rejected = if window.and_then(|w| w.status.as_deref()) == Some("rejected") { " rejected" } else { "" };
            parts.push(format!("{label} {:.0}%{rejected}", u * 100.0));
        }
    }
    if let Some(overage) = &w.overage_status {
        let reason = w.overage_disabled_reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
        parts.push(format!("extra usage {overage}{reason}"));
    }
    for (label, limit) in [("req", &w.requests), ("tok", &w.tokens)] {
        if let Some(l) = limit
            && let (Some(remaining), Some(max)) = (l.remaining, l.limit)
        {
            parts.push(format!("{label} {remaining}/{max}"));
        }
    }
    if parts.is_empty() { "-".into() } else { parts.join(" ") }
}

/// `list-accounts`.
pub fn accounts(report: &StatusReport, json: bool) -> Result<()> {
    if json {
        return print_json(&report.accounts);
    }
    if report.accounts.is_empty() {
        println!(
            "no accounts; add one with `llm-gateway add-api-key --name NAME` (it reads the key from standard input)"
        );
        return Ok(());
    }
    table(account_rows(&report.accounts, false));
    Ok(())
}

/// `list-client-keys`.
pub fn client_keys(keys: &[ClientKeyView], json: bool) -> Result<()> {
    if json {
        return print_json(&keys);
    }
    if keys.is_empty() {
        println!("no client keys: the gateway accepts unauthenticated requests on loopback only");
        return Ok(());
    }
    let mut rows = vec![vec!["ID".to_string(), "NAME".into(), "PREFIX".into(), "CREATED".into(), "LIMITS".into()]];
    rows.extend(keys.iter().map(|k| {
        let l = &k.limits;
        let mut limits = Vec::new();
        if !l.models.is_empty() {
            limits.push(format!("models {}", l.models.join(",")));
        }
        if let Some(rpm) = l.rpm {
            limits.push(format!("{rpm} rpm"));
        }
        if let Some(t) = l.tokens_per_day {
            limits.push(format!("{t} tokens/day"));
        }
        if let Some(b) = l.budget_usd_month {
            limits.push(format!("${b}/month"));
        }
        if let Some(e) = &l.expires {
            limits.push(format!("until {e}"));
        }
        if k.purpose.is_some() {
            limits.push("Claude Code, this machine only".into());
        }
        vec![
            k.id.clone(),
            k.name.clone(),
            format!("{}…", k.prefix),
            k.created_at.clone(),
            if limits.is_empty() { "-".into() } else { limits.join("; ") },
        ]
    }));
    table(rows);
    Ok(())
}

/// `status`.
pub fn status(report: &StatusReport, json: bool) -> Result<()> {
    if json {
        return print_json(report);
    }
    match report.source {
        ReportSource::Server => println!(
            "server: running on {} (up {} s), version {}",
            report.listen,
            report.uptime_secs.unwrap_or(0),
            report.version
        ),
        ReportSource::Config => println!("server: not running (configured listen {})", report.listen),
    }
    if let Some(pending) = report.config.as_ref().and_then(|c| c.pending.as_ref()) {
        let why = pending.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
        let next = if pending.retrying { " (retrying)" } else { "" };
        println!("config: the latest change to the config file is not applied yet{why}{next}");
    }
    let strategy = serde_json::to_value(report.strategy).ok().and_then(|v| v.as_str().map(String::from));
    println!("routing: {}", strategy.unwrap_or_default());
    if let Some(backend) = &report.secrets_backend {
        println!("secrets: {backend}");
    }
    println!(
        "client keys: {}",
        if report.client_keys == 0 { "none (open on loopback)".to_string() } else { report.client_keys.to_string() }
    );
    if let Some(t) = &report.today {
        let money = |m: u64| format!("${:.2}", m as f64 / 1e6);
        println!(
            "today (UTC): {} requests, {} tokens, spend {}, API-equivalent value {}",
            t.requests,
            t.tokens.total(),
            money(t.spend_micros),
            money(t.equivalent_micros)
        );
    }
    if let Some(c) = report.clients_seen.filter(|c| c.claude_code + c.anthropic_sdk + c.openai + c.other > 0) {
        println!(
            "clients since start: Claude Code {}, Anthropic SDK {}, OpenAI {}, other {}",
            c.claude_code, c.anthropic_sdk, c.openai, c.other
        );
    }
    if let Some(dropped) = report.usage_dropped.filter(|d| *d > 0) {
        println!("usage: {dropped} request records dropped (the usage store fell behind; see the log)");
    }
    let usable = report.accounts.iter().filter(|a| a.state.as_str() == "active").count();
    println!("accounts: {} ({usable} usable)", report.accounts.len());
    if !report.accounts.is_empty() {
        println!();
        table(account_rows(&report.accounts, report.source == ReportSource::Server));
    }
    if !report.own_logins.is_empty() {
        println!("\nclients' own logins (passed through, never stored): {}", report.own_logins.len());
        table(account_rows(&report.own_logins, true));
    }
    Ok(())
}

/// `health-check`.
pub fn health(results: &[ProbeResult], json: bool) -> Result<()> {
    if json {
        #[derive(serde::Serialize)]
        struct Doc<'a> {
            usable: bool,
            accounts: &'a [ProbeResult],
        }
        return print_json(&Doc { usable: results.iter().any(|r| r.usable), accounts: results });
    }
    if results.is_empty() {
        println!("no accounts to check");
        return Ok(());
    }
    let mut rows =
        vec![vec!["ID".to_string(), "NAME".into(), "RESULT".into(), "STATUS".into(), "MS".into(), "DETAIL".into()]];
    for r in results {
        rows.push(vec![
            r.id.clone(),
            r.name.clone(),
            if r.usable { "ok".into() } else { "FAIL".into() },
            r.status.map_or_else(|| "-".into(), |s| s.to_string()),
            r.latency_ms.to_string(),
            r.detail.clone(),
        ]);
    }
    table(rows);
    Ok(())
}
