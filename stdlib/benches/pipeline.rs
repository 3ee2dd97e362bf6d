//! The stages of `relance plan` on generated portfolios (the generator of
//! `cargo run -p xtask -- gen-portfolio`, 5 invoices per customer, seed 42, as of 2026-03-01,
//! the example policy): loading the CSV, evaluation alone (`Engine::summarize`), and the
//! whole plan from CSV to JSON; and the other shapes of the same files (a CRM's CSV, JSON,
//! Excel). Portfolios are written once under `target/bench-e2e/` (the
//! folder `scripts/bench-e2e.sh` uses) and reused.
//!
//! `cargo bench -p relance-stdlib --bench pipeline`. The `relance` binary also sets its
//! allocator (no transparent huge pages, freed memory kept 1 s during evaluation); to measure
//! the same here, run with `MIMALLOC_ALLOW_THP=0 MIMALLOC_PURGE_DELAY=1000`. 10^7 invoices:
//! `RELANCE_BENCH_10M=1 cargo bench -p relance-stdlib --bench pipeline --
//! '(load_csv|evaluation_alone|evaluation_with_its_index|plan_csv_to_json)\b'` (the four
//! stages above, 10^7 with the other sizes), or `scripts/bench-e2e.sh 10000000`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;

use chrono::NaiveDate;
use divan::counter::ItemsCount;
use relance_engine::Engine;
use relance_engine::history::NoHistory;
use relance_stdlib::load::{LoadOptions, load_dir, load_dir_indexed};
use xtask::Files;

/// The allocator of the `relance` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}

const SIZES: [u64; 3] = [10_000, 100_000, 1_000_000];

/// The sizes of the four benchmarks of the stages (loading the CSV, the evaluation
/// alone with and without the loader's index, CSV to JSON): [`SIZES`], and 10^7 invoices
/// too when `RELANCE_BENCH_10M` is set (≈ 0.9 GB of CSV written once under
/// `target/bench-e2e/`, ≈ 4 GB of memory; the four at every size took ≈ 2.5 min in round 26).
fn stage_sizes() -> Vec<u64> {
    let mut sizes = SIZES.to_vec();
    if std::env::var_os("RELANCE_BENCH_10M").is_some() {
        sizes.push(10_000_000);
    }
    sizes
}

fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
}

/// The folder of a generated portfolio of `n` invoices, written if missing.
fn portfolio_dir(n: u64) -> PathBuf {
    shaped_dir(n, n / 5, Files::Csv)
}

/// The folder of a generated portfolio of `n` invoices of `customers` customers, written if
/// missing: the generator's default files, as a CRM exports them (`Files::QuotedCsv`, with
/// `--opaque-ids`), as JSON files or as a workbook (inline or shared strings); each in the folder that
/// `SHAPE=… scripts/bench-e2e.sh` writes.
fn shaped_dir(n: u64, customers: u64, files: Files) -> PathBuf {
    let name = match (files, customers == n / 5) {
        (Files::QuotedCsv, _) => format!("p{n}-quote-all-opaque-ids"),
        (Files::Json, _) => format!("p{n}-json"),
        (Files::Xlsx, _) => format!("p{n}-xlsx"),
        (Files::XlsxShared, _) => format!("p{n}-xlsx-shared"),
        (Files::Csv, true) => format!("p{n}"),
        (Files::Csv, false) => format!("p{n}-c{customers}"),
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-e2e").join(name);
    if std::fs::read_dir(&dir).map_or(true, |mut d| d.next().is_none()) {
        xtask::Gen::new(n, customers, 42, as_of(), dir.clone())
            .files(files)
            .opaque_ids(files == Files::QuotedCsv)
            .run()
            .unwrap();
    }
    dir
}

fn engine() -> Engine {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/scenarios/policy.relance");
    let text = std::fs::read_to_string(&path).unwrap();
    Engine::from_sources(vec![relance_dsl::Source::new(path.display().to_string(), text)], &relance_stdlib::registry())
        .unwrap()
}

/// The loader's options in `relance plan`: the portfolio sorted for evaluation.
fn sorted() -> LoadOptions {
    LoadOptions { sort_for_evaluation: true, ..LoadOptions::default() }
}

#[divan::bench(args = stage_sizes(), sample_count = 5)]
fn load_csv(bencher: divan::Bencher, n: u64) {
    load_of(bencher, n, &portfolio_dir(n));
}

/// The evaluation of the portfolio as `relance plan` loads it: sorted and indexed.
#[divan::bench(args = stage_sizes(), sample_count = 5)]
fn evaluation_alone(bencher: divan::Bencher, n: u64) {
    let engine = engine();
    let p = load_dir_indexed(&portfolio_dir(n), &LoadOptions::default()).unwrap();
    bencher.counter(ItemsCount::new(n)).bench(|| engine.summarize(&p, as_of(), &NoHistory));
}

/// The same of a sorted [`relance_engine::Portfolio`]: each evaluation indexes it first.
#[divan::bench(args = stage_sizes(), sample_count = 5)]
fn evaluation_with_its_index(bencher: divan::Bencher, n: u64) {
    let engine = engine();
    let p = load_dir(&portfolio_dir(n), &sorted()).unwrap();
    bencher.counter(ItemsCount::new(n)).bench(|| engine.summarize(&p, as_of(), &NoHistory));
}

/// What `relance plan --format json` does after compiling the scenarios, into a sink.
#[divan::bench(args = stage_sizes(), sample_count = 5)]
fn plan_csv_to_json(bencher: divan::Bencher, n: u64) {
    plan_of(bencher, n, &portfolio_dir(n));
}

/// The CSV loader on the portfolio as a CRM exports it: every field quoted, CRLF, customer
/// ids that are record ids, not in order.
#[divan::bench(args = SIZES, sample_count = 5)]
fn load_csv_quoted(bencher: divan::Bencher, n: u64) {
    load_of(bencher, n, &shaped_dir(n, n / 5, Files::QuotedCsv));
}

/// The whole plan of that portfolio.
#[divan::bench(args = SIZES, sample_count = 5)]
fn plan_csv_to_json_quoted(bencher: divan::Bencher, n: u64) {
    plan_of(bencher, n, &shaped_dir(n, n / 5, Files::QuotedCsv));
}

/// The JSON loader on the same portfolio as JSON files.
#[divan::bench(args = SIZES, sample_count = 5)]
fn load_json(bencher: divan::Bencher, n: u64) {
    load_of(bencher, n, &shaped_dir(n, n / 5, Files::Json));
}

/// The Excel loader on the same portfolio as one workbook, its texts as inline strings
/// (10^6: 2 s a sample, left out).
#[divan::bench(args = [10_000, 100_000], sample_count = 5)]
fn load_xlsx(bencher: divan::Bencher, n: u64) {
    load_of(bencher, n, &shaped_dir(n, n / 5, Files::Xlsx));
}

/// The same workbook as Excel writes it: its texts in the shared strings table.
#[divan::bench(args = [10_000, 100_000], sample_count = 5)]
fn load_xlsx_shared(bencher: divan::Bencher, n: u64) {
    load_of(bencher, n, &shaped_dir(n, n / 5, Files::XlsxShared));
}

/// The whole plan of few large customers: 500 invoices each.
#[divan::bench(args = SIZES, sample_count = 5)]
fn plan_csv_to_json_large_customers(bencher: divan::Bencher, n: u64) {
    plan_of(bencher, n, &shaped_dir(n, n / 500, Files::Csv));
}

/// The whole plan of very large customers (key accounts of 50,000 invoices: 20 at 10^6,
/// evaluated two by two side by side, see `Evaluator::batches_side_by_side`; 2 at 10^5, one
/// after the other; 2 of 5,000 at 10^4).
#[divan::bench(args = SIZES, sample_count = 5)]
fn plan_csv_to_json_very_large_customers(bencher: divan::Bencher, n: u64) {
    plan_of(bencher, n, &shaped_dir(n, (n / 50_000).max(2), Files::Csv));
}

/// The loader on the portfolio in `dir`, with its default options.
fn load_of(bencher: divan::Bencher, n: u64, dir: &std::path::Path) {
    bencher.counter(ItemsCount::new(n)).bench(|| load_dir(dir, &LoadOptions::default()).unwrap());
}

/// `relance plan --format json` of the portfolio in `dir`, with the loader's options the
/// command sets (the legal cap's warnings under `law FR`, only the extra columns read).
fn plan_of(bencher: divan::Bencher, n: u64, dir: &std::path::Path) {
    let engine = engine();
    let options = LoadOptions {
        fr_cap_warnings: engine.program().law_name() == Some("FR"),
        extra_columns: engine.program().extra_columns().cloned(),
        ..LoadOptions::default()
    };
    bencher.counter(ItemsCount::new(n)).bench(|| {
        let p = load_dir_indexed(dir, &options).unwrap();
        relance_engine::render::write_plan_json(engine.program(), &p, as_of(), &NoHistory, &mut std::io::sink())
            .unwrap();
    });
}
