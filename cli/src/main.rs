//! `relance`: the command-line tool of the relance dunning engine.
//!
//! Each subcommand lives in its own module and returns an [`ExitCode`]-like status:
//! 0 success, 1 problems found (errors, or a `fmt --check` difference), 2 usage errors
//! (bad arguments, missing paths, unreadable files).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The plan allocates many short strings (reasons, ids) across threads; mimalloc halves the
/// time spent in malloc/free compared with the system allocator (see docs/performance-history.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod check;
mod files;
mod fmt;
mod plan;

/// Exit status of a subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything is fine.
    Ok,
    /// The command ran and found problems.
    Problems,
    /// The command could not run as asked.
    Usage,
}

impl From<Status> for ExitCode {
    fn from(s: Status) -> Self {
        match s {
            Status::Ok => ExitCode::SUCCESS,
            Status::Problems => ExitCode::from(1),
            Status::Usage => ExitCode::from(2),
        }
    }
}

/// relance — an embeddable dunning rules engine.
#[derive(Debug, Parser)]
#[command(name = "relance", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands; each one maps to a module.
#[derive(Debug, Subcommand)]
enum Command {
    /// Check scenario files (or folders of `*.relance` files) for errors and warnings.
    Check(check::Args),
    /// Rewrite scenario files in the canonical layout.
    Fmt(fmt::Args),
    /// Evaluate a portfolio as of a date and print the action plan.
    Plan(plan::PlanArgs),
}

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (`mimalloc.h` of the vendored v2 and
/// v3 sources of `libmimalloc-sys` 0.1.49, which names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long mimalloc keeps memory freed during the evaluation before giving it back to the
/// system, in milliseconds.
///
/// Evaluation frees and reallocates the records and text of each batch of customers. Giving
/// pages back at once and touching them again cost much (10 ms, mimalloc v2's default: 10^6
/// invoices 7.1 s → 3.8 s with -1, never; docs/performance-history.md); never giving back
/// lets the freed memory that is not reused pile up: 10^6 peak ≈ 290 MB with -1, ≈ 278 MB
/// with 1000 ms, for the same time and 2 % more page faults. A second is far longer than a
/// batch, so the pages of the batches are reused, not purged.
const EVALUATION_PURGE_DELAY_MS: std::ffi::c_long = 1000;

/// How long mimalloc keeps memory freed while the portfolio is loaded, in milliseconds.
///
/// The loaders free large temporary blocks once (a workbook's shared strings, a file's
/// blocks, parts merged into the tables) and reuse their small ones within milliseconds.
/// mimalloc's default (1 s in the vendored version) kept the large ones resident through the
/// checks and sort that end the load, where the peak is: 100 ms gives them back before, for
/// the same time (round 24 at 10^6: CSV, 8 alternations, 0.651 → 0.607 s and 1.19 → 1.13 s
/// of processor time on average, 249 → 241 MB; 3 alternations each, JSON files 278–290 →
/// 269–271 MB, a workbook 275–277 → 262–268 MB); 10 ms gave back more but purged and
/// touched again the parts of a workbook's rows (its plan 0.15–0.25 s slower).
const LOAD_PURGE_DELAY_MS: std::ffi::c_long = 100;

/// Sets how long mimalloc keeps freed memory while the portfolio is loaded (see
/// [`LOAD_PURGE_DELAY_MS`]); `relance plan` calls it before loading.
pub(crate) fn give_back_freed_memory_soon() {
    set_purge_delay(LOAD_PURGE_DELAY_MS);
}

/// Sets how long mimalloc keeps freed memory during the evaluation (see
/// [`EVALUATION_PURGE_DELAY_MS`]); `relance plan` calls it once the portfolio is loaded, so
/// that the setting does not depend on the mimalloc version's default or on
/// `MIMALLOC_PURGE_DELAY`.
pub(crate) fn keep_freed_memory() {
    set_purge_delay(EVALUATION_PURGE_DELAY_MS);
}

fn set_purge_delay(ms: std::ffi::c_long) {
    #[expect(
        unsafe_code,
        reason = "mimalloc's option setter is a C function taking plain integers; it writes one word, and is called while no other thread runs (before the load, or while the loader's workers are idle)"
    )]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ms);
    }
}

/// Returns the memory that is free in mimalloc's pages to the system now, on every thread of
/// the rayon pool and on this one, instead of after the purge delay (a free page is only
/// given back when its thread next calls the allocator). `relance plan` calls it once the
/// portfolio is loaded and once it is sorted, so that the loader's and the sort's temporary
/// memory is not counted on top of the evaluation's.
pub(crate) fn give_back_free_memory() {
    #[expect(
        unsafe_code,
        reason = "mimalloc's collection function takes a plain flag and only touches the calling thread's heap and the shared arenas, which it locks"
    )]
    let collect = || unsafe { libmimalloc_sys::mi_collect(true) };
    rayon::broadcast(|_| collect());
    collect();
}

/// Turns off transparent huge pages for this process (Linux). mimalloc asks for them on its
/// arenas (`madvise(MADV_HUGEPAGE)`): a 2 MiB page is then resident as soon as one byte of it
/// is touched and stays whole while most of it is free, which made the peak memory of
/// `relance plan` 10^6 ≈ 35 MB higher (332 → 298 MB) for no measurable gain in time
/// (docs/performance-history.md). Has the effect of `MIMALLOC_ALLOW_THP=0`, which only works
/// from the environment, before the program starts.
pub(crate) fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let status = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Fmt(args) => fmt::run(&args),
        Command::Plan(args) => plan::run(&args),
    };
    status.into()
}
