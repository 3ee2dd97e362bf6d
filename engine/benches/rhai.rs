//! rhai conditions over 1,000,000 pre-built (invoice, customer) contexts, against the same
//! condition as a native Rust closure. Run: `cargo bench -p relance-engine --bench rhai`.
//! Divan reports the time for the whole million: divide by 1,000,000 for ns per invoice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::LazyLock;

use chrono::NaiveDate;
use divan::{Bencher, black_box};
use iso_currency::Currency;
use relance_engine::model::{Customer, Extra, Invoice};
use relance_engine::script::{ScriptContext, ScriptEngine, ScriptLimits};
use rust_decimal::Decimal;

const INVOICES: usize = 1_000_000;
const CUSTOMERS: usize = 20_000;

struct Data {
    invoices: Vec<Invoice>,
    customers: Vec<Customer>,
    as_of: NaiveDate,
}

static DATA: LazyLock<Data> = LazyLock::new(|| {
    let as_of = NaiveDate::from_ymd_opt(2025, 6, 30).unwrap();
    let customers = (0..CUSTOMERS)
        .map(|i| {
            let mut c = Customer::new(format!("C{i:05}"), format!("Customer {i}"), ["smb", "key"][i % 2]);
            c.tags = if i % 3 == 0 { vec!["vip".into()] } else { Vec::new() };
            c.avg_days_late = Some(Decimal::from(i % 40));
            c.extra = Extra::from([
                ("region".to_owned(), ["north", "south"][i % 2].to_owned()),
                ("yearly_revenue".to_owned(), format!("{}", 10_000 + (i % 50) * 1000)),
            ]);
            c
        })
        .collect();
    let invoices = (0..INVOICES)
        .map(|i| {
            let due = as_of - chrono::Duration::days((i % 90) as i64 - 30);
            let amount = Decimal::new(((i * 7919) % 200_000) as i64, 2);
            let mut inv =
                Invoice::new(format!("F{i:07}"), format!("C{:05}", i % CUSTOMERS), due, amount, Currency::EUR);
            inv.extra = Extra::from([("po_number".to_owned(), format!("PO-{i}"))]);
            inv
        })
        .collect();
    Data { invoices, customers, as_of }
});

fn contexts(data: &Data) -> Vec<ScriptContext<'_>> {
    data.invoices
        .iter()
        .map(|inv| {
            let c = &data.customers[inv.customer_id[1..].parse::<usize>().unwrap()];
            let days_late = (data.as_of - inv.due_date).num_days().max(0);
            ScriptContext {
                invoice: inv,
                customer: c,
                as_of: data.as_of,
                outstanding: inv.amount,
                days_late,
                balance: inv.amount,
                overdue_balance: inv.amount,
                reminders_sent: 0,
                reminded: false,
                promise_to_pay: false,
            }
        })
        .collect()
}

fn main() {
    divan::main();
}

fn bench_rhai(bencher: Bencher, src: &str, functions: Option<&str>) {
    let mut engine = ScriptEngine::new(ScriptLimits::default());
    if let Some(f) = functions {
        engine.add_functions("helpers.rhai", f).unwrap();
    }
    let script = engine.compile(src).unwrap();
    let ctxs = contexts(&DATA);
    bencher.counter(divan::counter::ItemsCount::new(ctxs.len())).bench_local(|| {
        let mut n = 0_usize;
        for ctx in &ctxs {
            n += usize::from(engine.eval_bool(&script, black_box(ctx)).unwrap());
        }
        n
    });
}

/// `invoice.amount > 500 && days_late > 10`.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn rhai_amount_and_days_late(bencher: Bencher) {
    bench_rhai(bencher, "invoice.amount > 500 && days_late > 10", None);
}

/// The same condition as a native Rust closure.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn native_amount_and_days_late(bencher: Bencher) {
    let ctxs = contexts(&DATA);
    let five_hundred = Decimal::from(500);
    let cond = |c: &ScriptContext<'_>| c.invoice.amount > five_hundred && c.days_late > 10;
    bencher.counter(divan::counter::ItemsCount::new(ctxs.len())).bench_local(|| {
        let mut n = 0_usize;
        for ctx in &ctxs {
            n += usize::from(cond(black_box(ctx)));
        }
        n
    });
}

/// The SPEC 2.4 example: an extra column parsed to a decimal, `percent`, `avg_days_late`.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn rhai_spec_example(bencher: Bencher) {
    bench_rhai(
        bencher,
        "customer.avg_days_late > 20 && invoice.amount > percent(to_decimal(customer[\"yearly_revenue\"]), 5)",
        None,
    );
}

/// A condition calling a function of a `functions` file.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn rhai_functions_file(bencher: Bencher) {
    bench_rhai(
        bencher,
        "late_and_big(invoice, days_late)",
        Some("fn late_and_big(invoice, days) { invoice.amount > 500 && days > 10 }"),
    );
}

/// `true`: the fixed cost of one evaluation (scope refresh, rhai's per-run state).
#[divan::bench(sample_count = 5, sample_size = 1)]
fn rhai_constant_true(bencher: Bencher) {
    bench_rhai(bencher, "true", None);
}
