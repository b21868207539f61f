//! Estimated cost: a dated price table per model (shipped as `prices.json`, with its source), overridable in
//! config (`usage.prices`), matched by the longest model-id prefix, computed in integer millionths of a dollar.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::record::Tokens;
use crate::config::ModelPrice;

const BUILT_IN: &str = include_str!("prices.json");

/// Prices of one model in millionths of a US dollar per million tokens (so $3 / MTok is 3,000,000): integers,
/// so sums never drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    /// Input tokens.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// 5-minute cache writes.
    pub cache_write: u64,
    /// 1-hour cache writes.
    pub cache_write_1h: u64,
    /// Cache reads.
    pub cache_read: u64,
}

/// One model family's entry: base rates, and optionally higher rates for long prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price {
    /// Rates for ordinary requests.
    pub base: Rates,
    /// `(above_tokens, rates)`: a request whose prompt (input + cache writes + cache reads) exceeds `above_tokens`
    /// pays these rates on every token.
    pub long_prompt: Option<(u64, Rates)>,
}

impl Price {
    /// The estimated cost of `tokens` in millionths of a dollar, rounded to the nearest.
    pub fn cost_micros(&self, tokens: &Tokens) -> u64 {
        let rates = match self.long_prompt {
            Some((above, long)) if tokens.prompt() > above => long,
            _ => self.base,
        };
        let one_hour = tokens.cache_creation_1h.min(tokens.cache_creation);
        let five_min = tokens.cache_creation - one_hour;
        let parts = [
            (tokens.input, rates.input),
            (tokens.output, rates.output),
            (five_min, rates.cache_write),
            (one_hour, rates.cache_write_1h),
            (tokens.cache_read, rates.cache_read),
        ];
        let pico: u128 = parts.iter().map(|(n, rate)| u128::from(*n) * u128::from(*rate)).sum();
        u64::try_from((pico + 500_000) / 1_000_000).unwrap_or(u64::MAX)
    }
}

/// The price table: model-id prefix → price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceTable {
    /// Sorted longest prefix first, so the first match is the longest.
    entries: Vec<(String, Price)>,
    /// The built-in table's `as_of` date.
    pub as_of: String,
    /// The built-in table's source.
    pub source: String,
}

#[derive(Deserialize)]
struct File {
    source: String,
    as_of: String,
    models: BTreeMap<String, FilePrice>,
}

#[derive(Deserialize)]
struct FilePrice {
    input: f64,
    output: f64,
    cache_write: f64,
    cache_read: f64,
    cache_write_1h: Option<f64>,
    long_prompt: Option<FileLong>,
}

#[derive(Deserialize)]
struct FileLong {
    above_tokens: u64,
    input: f64,
    output: f64,
    cache_write: f64,
    cache_read: f64,
    cache_write_1h: Option<f64>,
}

fn micros(usd: f64) -> u64 {
    if usd.is_finite() && usd > 0.0 { (usd * 1e6).round() as u64 } else { 0 }
}

fn rates(input: f64, output: f64, cache_write: f64, cache_read: f64, cache_write_1h: Option<f64>) -> Rates {
    Rates {
        input: micros(input),
        output: micros(output),
        cache_write: micros(cache_write),
        cache_write_1h: micros(cache_write_1h.unwrap_or(2.0 * input)),
        cache_read: micros(cache_read),
    }
}

impl PriceTable {
    /// The built-in table with `overrides` (from `usage.prices`) on top: an override replaces the entry with the
    /// same prefix, or adds one.
    pub fn new(overrides: &BTreeMap<String, ModelPrice>) -> Self {
        // The built-in file is part of the binary and checked by a unit test; an unreadable one would be a build
        // defect, so it degrades to an empty table instead of failing start-up.
        let file: File = serde_json::from_str(BUILT_IN).unwrap_or_else(|e| {
            tracing::error!("built-in price table unreadable ({e}); costs are not estimated");
            File { source: String::new(), as_of: String::new(), models: BTreeMap::new() }
        });
        let mut map: BTreeMap<String, Price> = file
            .models
            .into_iter()
            .map(|(prefix, p)| {
                let long = p
                    .long_prompt
                    .map(|l| (l.above_tokens, rates(l.input, l.output, l.cache_write, l.cache_read, l.cache_write_1h)));
                let base = rates(p.input, p.output, p.cache_write, p.cache_read, p.cache_write_1h);
                (prefix, Price { base, long_prompt: long })
            })
            .collect();
        for (prefix, p) in overrides {
            let base = rates(p.input, p.output, p.cache_write, p.cache_read, p.cache_write_1h);
            map.insert(prefix.clone(), Price { base, long_prompt: None });
        }
        let mut entries: Vec<(String, Price)> = map.into_iter().collect();
        entries.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Self { entries, as_of: file.as_of, source: file.source }
    }

    /// The price of `model`: the entry with the longest prefix of it.
    pub fn price(&self, model: &str) -> Option<&Price> {
        self.entries.iter().find(|(prefix, _)| model.starts_with(prefix.as_str())).map(|(_, p)| p)
    }

    /// The estimated cost of `tokens` on `model`, or none when the model has no price.
    pub fn cost_micros(&self, model: &str, tokens: &Tokens) -> Option<u64> {
        self.price(model).map(|p| p.cost_micros(tokens))
    }

    /// How many prefixes the table has.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Default for PriceTable {
    fn default() -> Self {
        Self::new(&BTreeMap::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(input: u64, output: u64, cache_creation: u64, cache_read: u64) -> Tokens {
        Tokens { input, output, cache_creation, cache_read, cache_creation_1h: 0 }
    }

    #[test]
    fn built_in_table_parses_with_its_source_and_date() {
        let file: File = serde_json::from_str(BUILT_IN).expect("prices.json parses");
        assert!(file.source.starts_with("https://"));
        assert_eq!(file.as_of.len(), 10, "as_of is a YYYY-MM-DD date");
        let table = PriceTable::default();
        assert_eq!(table.len(), file.models.len());
        for model in
            ["claude-opus-4-8", "claude-sonnet-5", "claude-haiku-4-5-20251001", "claude-opus-5-5", "claude-sonnet-5-5"]
        {
            assert!(table.price(model).is_some(), "{model} (protocol.md §7) has a price");
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let t = PriceTable::default();
        // Opus 4 / 4.1 are $15 input; 4.5 and later $5.
        assert_eq!(t.price("claude-opus-4-20250514").unwrap().base.input, 15_000_000);
        assert_eq!(t.price("claude-opus-4-1-20250805").unwrap().base.input, 15_000_000);
        assert_eq!(t.price("claude-opus-4-8").unwrap().base.input, 5_000_000);
        assert_eq!(t.price("claude-opus-5-5").unwrap().base.input, 4_000_000);
        assert_eq!(t.price("claude-opus-5").unwrap().base.input, 5_000_000);
        assert_eq!(t.price("claude-sonnet-5-5").unwrap().base.cache_read, 100_000);
        assert_eq!(t.price("claude-sonnet-5").unwrap().base.cache_read, 200_000);
        assert!(t.price("gpt-4o").is_none());
    }

    #[test]
    fn cost_is_exact_in_micro_dollars() {
        let t = PriceTable::default();
        // Sonnet 5: $2 in, $10 out, $2.50 5m write, $0.20 read, per MTok.
        // 1000 in = 2000 µ$; 500 out = 5000 µ$; 2000 write = 5000 µ$; 10000 read = 2000 µ$.
        assert_eq!(t.cost_micros("claude-sonnet-5", &tokens(1000, 500, 2000, 10_000)), Some(14_000));
        // Haiku 4.5: 1h writes at $2 / MTok: 1000 1h-write tokens = 2000 µ$, 1000 5m = 1250 µ$.
        let mut t1h = tokens(0, 0, 2000, 0);
        t1h.cache_creation_1h = 1000;
        assert_eq!(t.cost_micros("claude-haiku-4-5-20251001", &t1h), Some(3250));
        // Rounded to the nearest micro-dollar: 1 read token on Haiku 5.5 = 0.01 µ$ → 0; 60 = 0.6 → 1.
        assert_eq!(t.cost_micros("claude-haiku-5-5", &tokens(0, 0, 0, 1)), Some(0));
        assert_eq!(t.cost_micros("claude-haiku-5-5", &tokens(0, 0, 0, 60)), Some(1));
        assert_eq!(t.cost_micros("unknown-model", &tokens(1, 1, 1, 1)), None);
    }

    #[test]
    fn long_prompts_pay_the_long_rates_on_every_token() {
        let t = PriceTable::default();
        // Sonnet 4.5 above 200K prompt tokens: $6 in, $22.50 out.
        let short = tokens(200_000, 1000, 0, 0);
        let long = tokens(200_001, 1000, 0, 0);
        assert_eq!(t.cost_micros("claude-sonnet-4-5", &short), Some(600_000 + 15_000));
        assert_eq!(t.cost_micros("claude-sonnet-4-5", &long), Some(1_200_006 + 22_500));
        // Sonnet 4.6 has one flat rate.
        assert_eq!(t.cost_micros("claude-sonnet-4-6", &long), Some(600_003 + 15_000));
    }

    #[test]
    fn config_overrides_replace_or_add_prefixes() {
        let mut overrides = BTreeMap::new();
        let price = |input| ModelPrice { input, output: 1.0, cache_write: 0.0, cache_read: 0.0, cache_write_1h: None };
        overrides.insert("claude-sonnet-5".to_string(), price(9.0));
        overrides.insert("my-finetune".to_string(), price(0.5));
        let t = PriceTable::new(&overrides);
        assert_eq!(t.price("claude-sonnet-5-20260101").unwrap().base.input, 9_000_000);
        assert_eq!(t.price("claude-sonnet-5-5").unwrap().base.input, 2_000_000, "a longer built-in prefix still wins");
        assert_eq!(t.price("my-finetune-v2").unwrap().base.cache_write_1h, 1_000_000, "1h write defaults to 2x input");
    }
}
