//! Where the time of `relance plan` goes, phase by phase, on a portfolio folder (for example
//! one written by `cargo run -p xtask --release -- gen-portfolio ...`):
//!
//! `cargo run -p relance-stdlib --release --example plan_timing -- SCENARIOS DIR AS_OF [RUNS] [eval|eval-plain|json]`
//!
//! With `eval` as last argument, loads once and runs only the evaluation `RUNS` times (for a
//! profile of the evaluation alone: `perf record ... plan_timing ... 20 eval`); with
//! `eval-plain`, the same of the portfolio without its index (`IndexedPortfolio::portfolio`:
//! each evaluation then builds it, as for any `Portfolio`); with `json`,
//! loads once and runs evaluation + JSON into a sink `RUNS` times (the part of `relance plan`
//! after loading and sorting).
//!
//! Prints, for each run: loading the CSV (and sorting and indexing it for evaluation, as
//! `relance plan` does: `load_dir_indexed`), evaluating alone (`Engine::summarize`: every
//! decision and amount, no text) and evaluating + writing the JSON plan into a sink
//! (`render::write_plan_json`), with invoices per second.

use std::path::PathBuf;
use std::time::Instant;

use relance_engine::history::NoHistory;
use relance_engine::{Engine, IndexedPortfolio};
use relance_stdlib::load::{LoadOptions, load_dir_indexed};

/// The allocator of the `relance` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [scenarios, dir, as_of, rest @ ..] = args.as_slice() else {
        eprintln!("usage: plan_timing SCENARIOS DIR AS_OF [RUNS] [eval|eval-plain|json]");
        std::process::exit(2);
    };
    let runs: usize = rest.first().and_then(|r| r.parse().ok()).unwrap_or(3);
    let eval_only = rest.get(1).is_some_and(|m| m == "eval");
    let eval_plain = rest.get(1).is_some_and(|m| m == "eval-plain");
    let json_only = rest.get(1).is_some_and(|m| m == "json");
    let Ok(as_of) = as_of.parse::<chrono::NaiveDate>() else {
        eprintln!("error: `{as_of}` is not a date (YYYY-MM-DD)");
        std::process::exit(2);
    };
    let mut sources = Vec::new();
    let path = PathBuf::from(scenarios);
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&path)
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "relance"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    } else {
        vec![path]
    };
    for f in files {
        match std::fs::read_to_string(&f) {
            Ok(text) => sources.push(relance_dsl::Source::new(f.display().to_string(), text)),
            Err(e) => {
                eprintln!("error: cannot read `{}`: {e}", f.display());
                std::process::exit(2);
            }
        }
    }
    let engine = match Engine::from_sources(sources, &relance_stdlib::registry()) {
        Ok(e) => e,
        Err(e) => {
            eprint!("{}", relance_dsl::render_human(e.diagnostics(), false));
            std::process::exit(1);
        }
    };
    if eval_only || eval_plain {
        let portfolio = load(dir);
        for run in 1..=runs {
            let start = Instant::now();
            let summary = if eval_plain {
                // The portfolio without its index: the evaluation builds one first.
                engine.summarize(portfolio.portfolio(), as_of, &NoHistory)
            } else {
                engine.summarize(&portfolio, as_of, &NoHistory)
            };
            let eval = start.elapsed().as_secs_f64();
            let n = portfolio.invoices.len() as f64;
            println!(
                "run {run}: evaluation alone{} {eval:.3} s ({:.2} M invoices/s, {} actions)",
                if eval_plain { ", its index built too," } else { "" },
                n / eval / 1e6,
                summary.actions
            );
        }
        return;
    }
    if json_only {
        let portfolio = load(dir);
        for run in 1..=runs {
            let (json, bytes) = json_into_sink(&engine, &portfolio, as_of);
            println!("run {run}: evaluation + JSON {json:.3} s ({} MB)", bytes / 1_000_000);
        }
        return;
    }
    for run in 1..=runs {
        let start = Instant::now();
        let portfolio = load(dir);
        let load = start.elapsed().as_secs_f64();
        let n = portfolio.invoices.len() as f64;
        let start = Instant::now();
        let summary = engine.summarize(&portfolio, as_of, &NoHistory);
        let eval = start.elapsed().as_secs_f64();
        let (json, bytes) = json_into_sink(&engine, &portfolio, as_of);
        println!(
            "run {run}: {} invoices; load {load:.3} s; evaluation alone {eval:.3} s ({:.2} M invoices/s, {} actions); evaluation + JSON {json:.3} s ({} MB)",
            portfolio.invoices.len(),
            n / eval / 1e6,
            summary.actions,
            bytes / 1_000_000
        );
    }
}

/// Loads the folder sorted and indexed for evaluation, as `relance plan` does.
fn load(dir: &str) -> IndexedPortfolio {
    match load_dir_indexed(std::path::Path::new(dir), &LoadOptions::default()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

/// Evaluates and writes the JSON plan into a byte counter: the seconds it took and the bytes.
fn json_into_sink(engine: &Engine, portfolio: &IndexedPortfolio, as_of: chrono::NaiveDate) -> (f64, usize) {
    let start = Instant::now();
    let mut sink = Counter(0);
    if let Err(e) = relance_engine::render::write_plan_json(engine.program(), portfolio, as_of, &NoHistory, &mut sink) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
    (start.elapsed().as_secs_f64(), sink.0)
}

/// Counts the bytes written.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
