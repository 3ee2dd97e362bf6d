//! The evaluation makes no allocation per invoice (issue 6: "no per-invoice allocation on the
//! hot path"): the JSON plan of a portfolio three times as large, the same customers and
//! invoices three times over again under other ids, allocates about as often. The buffers of
//! its records, notes, reasons and scratch work are kept and reused from one batch of
//! customers to the next; what is left is made once per evaluation (the interest periods of
//! each due date, the first batches' buffers), per batch or per run of customers.
//!
//! Counted with a global allocator of this test binary that counts the allocations of every
//! thread (`support/counting.rs`: mimalloc, as in the `relance` binary); only this test
//! runs in the binary, on one thread of rayon's, so that the counts are the same from run to
//! run (with two, the buffers' first growths depend on how the work is split).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use chrono::NaiveDate;
use relance_engine::history::NoHistory;
use relance_engine::model::Portfolio;
use relance_engine::{Engine, IndexedPortfolio};
use relance_stdlib::load::{LoadOptions, load_dir};

mod support {
    pub mod counting;
}
use support::counting::{Bytes, Counting, allocations};

#[global_allocator]
static GLOBAL: Counting = Counting;

fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
}

fn engine() -> Engine {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scenarios/policy.relance");
    let text = std::fs::read_to_string(&path).unwrap();
    Engine::from_sources(vec![relance_dsl::Source::new(path.display().to_string(), text)], &relance_stdlib::registry())
        .unwrap()
}

/// `p` `times` over, each copy's customer, invoice and payment ids ending in `-k`.
fn copies(p: &Portfolio, times: usize) -> Portfolio {
    let mut out = Portfolio::default();
    for k in 0..times {
        let suffix = format!("-{k}");
        out.customers.extend(p.customers.iter().cloned().map(|mut c| {
            c.id.push_str(&suffix);
            c
        }));
        out.invoices.extend(p.invoices.iter().cloned().map(|mut i| {
            i.id.push_str(&suffix);
            i.customer_id.push_str(&suffix);
            i
        }));
        out.payments.extend(p.payments.iter().cloned().map(|mut pay| {
            pay.invoice_id.push_str(&suffix);
            if let Some(id) = &mut pay.id {
                id.push_str(&suffix);
            }
            pay
        }));
    }
    out
}

/// The allocations of writing the JSON plan of `p` into a sink, and its bytes.
fn plan_allocations(engine: &Engine, p: &IndexedPortfolio) -> (u64, u64) {
    let mut sink = Bytes(0);
    let before = allocations();
    relance_engine::render::write_plan_json(engine.program(), p, as_of(), &NoHistory, &mut sink).unwrap();
    (allocations() - before, sink.0)
}

#[test]
fn the_json_plan_allocates_nothing_per_invoice() {
    rayon::ThreadPoolBuilder::new().num_threads(1).build_global().unwrap();
    let dir = tempfile::tempdir().unwrap();
    xtask::Gen::new(6_000, 1_200, 42, as_of(), dir.path().to_path_buf()).run().unwrap();
    let base = load_dir(dir.path(), &LoadOptions::default()).unwrap();
    let engine = engine();
    // 14,400 customers (14 batches of the JSON writer: its buffers are warm by then), and
    // 43,200.
    let small = IndexedPortfolio::new(copies(&base, 12));
    let large = IndexedPortfolio::new(copies(&base, 36));
    let invoices = small.portfolio().invoices.len() as u64;
    // Once first: the thread pool and what is made once per process.
    plan_allocations(&engine, &small);
    let (a_small, bytes_small) = plan_allocations(&engine, &small);
    let (a_large, bytes_large) = plan_allocations(&engine, &large);
    // The larger plan says about three times as much…
    assert!(bytes_large > 2 * bytes_small, "{bytes_large} bytes against {bytes_small}");
    // … with few more allocations: fewer than one for eight of its extra invoices (0.057 in
    // round 27; before the buffers of the records, notes, reasons and scratch work were kept,
    // ≈ 1.4 an invoice).
    let extra = a_large.saturating_sub(a_small);
    assert!(
        extra * 8 < 2 * invoices,
        "{a_large} allocations for {} invoices against {a_small} for {invoices}: {extra} more",
        3 * invoices
    );
}
