//! `relance`: the command-line tool of the relance dunning engine.
//!
//! Each subcommand lives in its own module and returns an [`ExitCode`]-like status:
//! 0 success, 1 problems found (errors, or a `fmt --check` difference), 2 usage errors
//! (bad arguments, missing paths, unreadable files).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The plan allocates many short strings (reasons, ids) across threads; mimalloc halves the
/// time spent in malloc/free compared with the system allocator (see PERFORMANCE.md).
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

/// Tells mimalloc to keep the memory it frees for reuse instead of returning it to the
/// system 10 ms later. `relance plan` calls it once the portfolio is loaded: evaluation frees
/// and reallocates the records of each batch of customers, and on a virtual machine
/// returning then touching again those pages cost more than half of the run (10^6 invoices:
/// 7.1 s → 3.8 s; PERFORMANCE.md). Loading keeps the default, so that its temporary memory is
/// given back before evaluation starts. The process is short lived; all is returned at exit.
pub(crate) fn keep_freed_memory() {
    #[expect(
        unsafe_code,
        reason = "mimalloc's option setter is a C function taking plain integers; it writes one word, and is called while no other thread runs (the loader's workers are idle)"
    )]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
    }
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
