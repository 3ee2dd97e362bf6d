//! How often `relance plan`'s phases allocate, on a portfolio folder (for example one written
//! by `cargo run -p xtask --release -- gen-portfolio ...`):
//!
//! `cargo run -p relance-stdlib --release --example alloc_count -- SCENARIO_FILE DIR AS_OF`
//!
//! Prints the allocations (and reallocations) of loading the folder as `relance plan` does
//! (`load_dir_indexed`), of the evaluation alone (`Engine::summarize`) and of the evaluation +
//! JSON plan into a sink (`render::write_plan_json`, twice), each in all and per invoice.
//! Counted by a global allocator that forwards to mimalloc, the binary's allocator
//! (`tests/support/counting.rs`); the test
//! `stdlib/tests/allocations.rs` checks that the JSON plan does not allocate per invoice.
//! With `PRINT_SUMMARY` set in the environment, also prints the evaluation's summary (to
//! check that two builds count the same).

use relance_engine::Engine;
use relance_engine::history::NoHistory;
use relance_stdlib::load::{LoadOptions, load_dir_indexed};

#[path = "../tests/support/counting.rs"]
mod counting;
use counting::{Bytes, Counting, allocations};

#[global_allocator]
static GLOBAL: Counting = Counting;

fn fail(message: String) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}

/// The allocations `f` makes.
fn counted<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = allocations();
    let out = f();
    (out, allocations() - before)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [scenario, dir, as_of] = args.as_slice() else {
        eprintln!("usage: alloc_count SCENARIO_FILE DIR AS_OF");
        std::process::exit(2);
    };
    let as_of: chrono::NaiveDate =
        as_of.parse().unwrap_or_else(|_| fail(format!("`{as_of}` is not a date (YYYY-MM-DD)")));
    let text = std::fs::read_to_string(scenario).unwrap_or_else(|e| fail(format!("cannot read `{scenario}`: {e}")));
    let engine =
        Engine::from_sources(vec![relance_dsl::Source::new(scenario.clone(), text)], &relance_stdlib::registry())
            .unwrap_or_else(|e| fail(relance_dsl::render_human(e.diagnostics(), false)));
    let (portfolio, load) = counted(|| load_dir_indexed(std::path::Path::new(dir), &LoadOptions::default()));
    let portfolio = portfolio.unwrap_or_else(|e| fail(e.to_string()));
    let n = portfolio.portfolio().invoices.len().max(1) as f64;
    let per = |a: u64| a as f64 / n;
    println!("{n} invoices: load {load} allocations ({:.3} an invoice)", per(load));
    let (summary, summarize) = counted(|| engine.summarize(&portfolio, as_of, &NoHistory));
    if std::env::var_os("PRINT_SUMMARY").is_some() {
        println!("{summary:?}");
    }
    println!("evaluation alone: {summarize} ({:.3} an invoice)", per(summarize));
    for run in 1..=2 {
        let mut sink = Bytes(0);
        let (written, json) = counted(|| {
            relance_engine::render::write_plan_json(engine.program(), &portfolio, as_of, &NoHistory, &mut sink)
        });
        written.unwrap_or_else(|e| fail(e.to_string()));
        println!("evaluation + JSON, run {run}: {json} ({:.3} an invoice), {} bytes", per(json), sink.0);
    }
}
