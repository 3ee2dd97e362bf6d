//! Evaluation alone (no loading, no output) on synthetic in-memory portfolios.
//! Run: `cargo bench -p relance-engine --bench evaluate`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use chrono::{Days, NaiveDate};
use divan::counter::ItemsCount;
use iso_currency::Currency;
use relance_engine::history::NoHistory;
use relance_engine::model::{Customer, Invoice, Portfolio};
use relance_engine::{Engine, Registry};
use rust_decimal::Decimal;

/// The allocator of the `relance` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}

const POLICY_NATIVE: &str = r#"
settings { currency EUR calendar none }
scenario "Key accounts" { for segment "key-account" D-5 call "check" D+3 call "follow-up" D+10 email "r1" D+45 registered_letter "notice" when balance >= 1000 EUR with fee 40 EUR }
scenario "Others" { for others D-10 email "statement" D+3 email "r1" when amount > 500 EUR and days_late > 2 D+15 letter "r2" D+30 registered_letter "notice" with fee 40 EUR with interest 12.15% per year pause when disputed }
"#;

pub(crate) fn portfolio(invoices: usize) -> Portfolio {
    let customers = (invoices / 5).max(1);
    let segments = ["key-account", "sme", "micro", "public"];
    let base = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let mut p = Portfolio { customers: Vec::new(), ..Portfolio::default() };
    p.customers =
        (0..customers).map(|i| Customer::new(format!("C{i:07}"), format!("Client {i}"), segments[i % 4])).collect();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for n in 0..invoices {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let due = base.checked_add_days(Days::new(x % 120)).unwrap();
        let mut inv = Invoice::new(
            format!("F{n:08}"),
            format!("C{:07}", (x >> 20) as usize % customers),
            due,
            Decimal::new((x % 1_000_000) as i64 + 1000, 2),
            Currency::EUR,
        );
        inv.disputed = x.is_multiple_of(31);
        p.invoices.push(inv);
    }
    p
}

/// Evaluation into the plan's values (`Engine::evaluate`: every action and skipped step with
/// its reason as a `String`).
#[divan::bench(args = [10_000, 100_000, 1_000_000], sample_count = 5)]
fn evaluate_native(bencher: divan::Bencher, n: usize) {
    let engine =
        Engine::from_sources(vec![relance_dsl::Source::new("p.relance", POLICY_NATIVE)], &Registry::new()).unwrap();
    let p = portfolio(n);
    let as_of = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    bencher.counter(ItemsCount::new(n)).bench(|| engine.evaluate(&p, as_of, &NoHistory));
}

/// Evaluation alone: every decision and amount of the plan, no text (`Engine::summarize`).
#[divan::bench(args = [10_000, 100_000, 1_000_000], sample_count = 5)]
fn summarize_native(bencher: divan::Bencher, n: usize) {
    let engine =
        Engine::from_sources(vec![relance_dsl::Source::new("p.relance", POLICY_NATIVE)], &Registry::new()).unwrap();
    let p = portfolio(n);
    let as_of = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    bencher.counter(ItemsCount::new(n)).bench(|| engine.summarize(&p, as_of, &NoHistory));
}

/// Evaluation and JSON output together, streamed into a sink (what `relance plan --format json`
/// does after loading).
#[divan::bench(args = [10_000, 100_000, 1_000_000], sample_count = 5)]
fn evaluate_to_json(bencher: divan::Bencher, n: usize) {
    let engine =
        Engine::from_sources(vec![relance_dsl::Source::new("p.relance", POLICY_NATIVE)], &Registry::new()).unwrap();
    let p = portfolio(n);
    let as_of = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    bencher.counter(ItemsCount::new(n)).bench(|| {
        relance_engine::render::write_plan_json(engine.program(), &p, as_of, &NoHistory, &mut std::io::sink()).unwrap()
    });
}

/// The same condition written natively and in rhai, on every step of the scenario, so that
/// it is evaluated for every invoice that reaches a step (issue 5: the cost of rhai).
fn condition_policy(condition: &str) -> String {
    format!(
        r#"settings {{ currency EUR calendar none }}
scenario "All" {{ for others D-10 email "statement" when {condition} D+3 email "r1" when {condition} D+15 letter "r2" when {condition} D+30 registered_letter "notice" when {condition} }}"#
    )
}

#[divan::bench(args = [100_000, 1_000_000], sample_count = 3)]
fn condition_native(bencher: divan::Bencher, n: usize) {
    let policy = condition_policy("amount > 500 EUR and days_late > 2");
    let engine = Engine::from_sources(vec![relance_dsl::Source::new("p.relance", policy)], &Registry::new()).unwrap();
    let p = portfolio(n);
    let as_of = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    bencher.counter(ItemsCount::new(n)).bench(|| engine.evaluate(&p, as_of, &NoHistory));
}

#[divan::bench(args = [100_000, 1_000_000], sample_count = 3)]
fn condition_rhai(bencher: divan::Bencher, n: usize) {
    let policy = condition_policy(r#"rhai "invoice.amount > 500 && days_late > 2""#);
    let engine = Engine::from_sources(vec![relance_dsl::Source::new("p.relance", policy)], &Registry::new()).unwrap();
    let p = portfolio(n);
    let as_of = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    let plan = engine.evaluate(&p, as_of, &NoHistory);
    assert!(plan.errors.is_empty(), "{:?}", plan.errors.first());
    bencher.counter(ItemsCount::new(n)).bench(|| engine.evaluate(&p, as_of, &NoHistory));
}
