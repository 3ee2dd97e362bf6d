//! Times `load_dir` on a portfolio folder (for example one written by
//! `cargo run -p xtask --release -- gen-portfolio ...`).
//!
//! `cargo run -p relance-stdlib --release --example load_timing -- DIR [RUNS]`

use std::path::PathBuf;
use std::time::Instant;

use relance_stdlib::load::{LoadOptions, load_dir};

/// The allocator of the `relance` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: load_timing DIR [RUNS]");
        std::process::exit(2);
    };
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(3);
    for run in 1..=runs {
        let start = Instant::now();
        match load_dir(&dir, &LoadOptions::default()) {
            Ok(p) => println!(
                "run {run}: {} customers, {} invoices, {} payments in {:.3} s",
                p.customers.len(),
                p.invoices.len(),
                p.payments.len(),
                start.elapsed().as_secs_f64()
            ),
            Err(e) => {
                eprintln!("{e}");
                for err in e.errors.iter().take(5) {
                    eprintln!("  {err}");
                }
                std::process::exit(1);
            }
        }
    }
}
