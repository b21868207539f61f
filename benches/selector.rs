//! Account selection cost with 100 accounts (issue #5 bar: under 1 µs, no global lock).
//! Run: `cargo bench --bench selector`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use llm_gateway::accounts::LiveAccount;
use llm_gateway::config::{Account, AccountKind, Strategy};
use llm_gateway::router::{SelectRequest, Selector, schedule};
use llm_gateway::secrets::Secret;

fn accounts(n: usize) -> Vec<Arc<LiveAccount>> {
    (0..n)
        .map(|i| {
            let config = Account {
                id: format!("acc_{i:04}"),
                name: format!("account-{i}"),
                kind: AccountKind::ApiKey,
                enabled: true,
                weight: 1 + (i % 5) as u32,
                priority: 0,
                models: if i % 3 == 0 { vec!["claude-opus-*".into()] } else { vec![] },
                base_url: None,
                email: None,
                organization: None,
                oauth_client_id: None,
                clients: None,
                updated_at: String::new(),
            };
            Arc::new(LiveAccount::new(config, "http://127.0.0.1:1", Some(Secret::new("k"))))
        })
        .collect()
}

fn selection(c: &mut Criterion) {
    let accounts = accounts(100);
    let weights: Vec<u32> = accounts.iter().map(|a| a.config.weight).collect();
    let order = schedule::smooth_weighted(&weights);
    let selector = Selector::new();
    for (name, strategy, session) in [
        ("round_robin", Strategy::RoundRobin, None),
        ("weighted", Strategy::Weighted, None),
        ("health_first", Strategy::HealthFirst, None),
        ("round_robin_sticky_session", Strategy::RoundRobin, Some(7u64)),
    ] {
        let request = SelectRequest {
            strategy,
            accounts: &accounts,
            schedule: &order,
            model: Some("claude-sonnet-5"),
            exclude: &[],
            session,
            affinity_ttl_ms: 3_600_000,
            now_ms: 1_000,
            key: None,
            claude_code: true,
        };
        c.bench_function(&format!("select_100_accounts/{name}"), |b| {
            b.iter(|| black_box(selector.select(black_box(&request)).map(|p| p.index)))
        });
    }
}

criterion_group!(benches, selection);
criterion_main!(benches);
