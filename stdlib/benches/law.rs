//! Interest and calendar throughput, without a bench framework (no extra dependency):
//! `cargo bench -p relance-stdlib --bench law`. Prints the median of several runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use iso_currency::Currency;
use relance_engine::money::{round, simple_interest};
use relance_stdlib::calendar::{self, next_business_day};
use relance_stdlib::law::{self, LawOptions};
use relance_stdlib::rates::RateTables;
use rust_decimal::Decimal;

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn bench(name: &str, per_run: usize, mut f: impl FnMut()) {
    f(); // warm up
    let runs: Vec<Duration> = (0..7)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    let m = median(runs);
    println!(
        "{name}: {:.0} ns per item ({per_run} items per run, median of 7 runs: {m:?})",
        m.as_nanos() as f64 / per_run as f64
    );
}

fn main() {
    let tables = Arc::new(RateTables::builtin());
    let as_of = NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
    let start = NaiveDate::from_ymd_opt(2015, 1, 1).unwrap();
    const N: usize = 10_000;
    // Invoices due between 2015 and 2026 (up to 11 years of half-year periods), with one
    // partial payment each.
    let invoices: Vec<(NaiveDate, Vec<(NaiveDate, Decimal)>)> = (0..N)
        .map(|i| {
            let due = start.checked_add_days(Days::new((i as u64 * 7) % 4000)).unwrap();
            let paid = due.checked_add_days(Days::new(30)).unwrap();
            (due, vec![(due, Decimal::new(123_456 + i as i64, 2)), (paid, Decimal::new(50_000, 2))])
        })
        .collect();
    for (name, options) in [("FR", LawOptions::default()), ("UK", LawOptions::default()), ("DE", LawOptions::default())]
    {
        let l = law::by_name(name, Arc::clone(&tables), options).unwrap();
        bench(&format!("{name} interest per invoice (periods + simple_interest + round)"), N, || {
            let mut total = Decimal::ZERO;
            for (due, balance) in &invoices {
                let first = due.succ_opt().unwrap();
                let periods = l.interest().periods(first, as_of, false).unwrap();
                total += round(simple_interest(first, as_of, balance, &periods), Currency::EUR);
            }
            black_box(total);
        });
    }
    for name in ["FR", "UK"] {
        let cal = calendar::by_name(name).unwrap();
        bench(&format!("{name} next_business_day"), N, || {
            for i in 0..N {
                let d = start.checked_add_days(Days::new(i as u64)).unwrap();
                black_box(next_business_day(cal.as_ref(), d));
            }
        });
    }
}
