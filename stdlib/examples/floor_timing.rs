//! Times the floor under `relance plan`: what no implementation of it can avoid on this
//! machine, measured in the same minutes as the plan itself (see
//! docs/performance-history.md, "The floor").
//!
//! 1. The bare parse of the portfolio's CSV files with the `csv` crate, one thread, records
//!    read and counted (the reference point: "0.1 s at 10^6 invoices").
//! 2. The plan's bytes, already made, copied through a 1 MB buffer: what producing them
//!    costs with no formatting at all.
//! 3. The same bytes written to `/dev/null`, then to a new file beside `PLAN` (what the
//!    system costs; `relance plan > file` pays it too).
//!
//! `cargo run -p relance-stdlib --release --example floor_timing -- DIR [RUNS [PLAN]]`, where
//! `PLAN` is a plan written before, for example by
//! `relance plan … --format json > /tmp/plan.json` (read into memory first); without it,
//! only the bare parse is timed (`scripts/bench-e2e.sh` does this).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Bytes copied or written at a time, as `relance plan` writes its output.
const BUFFER: usize = 1 << 20;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: floor_timing DIR [RUNS [PLAN]]");
        std::process::exit(2);
    };
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(3);
    let plan = args.next().map(PathBuf::from);
    let bytes = match &plan {
        Some(path) => match std::fs::read(path) {
            Ok(b) => Some(b),
            Err(e) => fail(path, &e),
        },
        None => None,
    };
    for run in 1..=runs {
        let start = Instant::now();
        let mut records = 0usize;
        for name in ["customers.csv", "invoices.csv", "payments.csv"] {
            let path = dir.join(name);
            if !path.exists() {
                continue;
            }
            records += bare_parse(&path);
        }
        let parse = start.elapsed().as_secs_f64();
        print!("run {run}: bare CSV parse {parse:.3} s ({records} records)");
        if let (Some(bytes), Some(plan)) = (&bytes, &plan) {
            let start = Instant::now();
            let mut buffer = vec![0u8; BUFFER];
            let mut checksum = 0u8;
            for chunk in bytes.chunks(BUFFER) {
                let out = buffer.get_mut(..chunk.len()).unwrap_or_default();
                out.copy_from_slice(chunk);
                checksum ^= out.last().copied().unwrap_or_default();
            }
            std::hint::black_box(checksum);
            let copy = start.elapsed().as_secs_f64();
            let null = write_all(Path::new("/dev/null"), bytes);
            let copy_to = plan.with_extension("floor-copy");
            let file = write_all(&copy_to, bytes);
            let _ = std::fs::remove_file(&copy_to);
            print!(
                ", copy {:.0} MB {copy:.3} s, write to /dev/null {null:.3} s, write to a file {file:.3} s",
                bytes.len() as f64 / 1e6
            );
        }
        println!();
    }
}

/// Records of one CSV file, read by the `csv` crate without any conversion.
fn bare_parse(path: &Path) -> usize {
    let mut reader = match csv::ReaderBuilder::new().from_path(path) {
        Ok(r) => r,
        Err(e) => fail(path, &e),
    };
    let mut record = csv::ByteRecord::new();
    let mut n = 0;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => n += 1,
            Ok(false) => return n,
            Err(e) => fail(path, &e),
        }
    }
}

/// Seconds to write `bytes` to a new `path`, `BUFFER` bytes per call, as `relance plan`
/// writes to its standard output.
fn write_all(path: &Path, bytes: &[u8]) -> f64 {
    let start = Instant::now();
    let mut file = match File::create(path) {
        Ok(f) => f,
        Err(e) => fail(path, &e),
    };
    for chunk in bytes.chunks(BUFFER) {
        if let Err(e) = file.write_all(chunk) {
            fail(path, &e);
        }
    }
    drop(file);
    start.elapsed().as_secs_f64()
}

fn fail(path: &Path, e: &dyn std::fmt::Display) -> ! {
    eprintln!("{}: {e}", path.display());
    std::process::exit(1);
}
