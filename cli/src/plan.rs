//! `relance plan`: evaluate a portfolio as of a date and print the action plan.

use std::path::PathBuf;

use chrono::NaiveDate;
use relance_engine::history::NoHistory;
use relance_engine::{Engine, render};

use std::io::{IsTerminal, Write};

use crate::{Status, files};

/// Output formats of `relance plan`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PlanFormat {
    /// A readable terminal table.
    Table,
    /// JSON as documented in the README (SPEC section 5).
    Json,
    /// One CSV line per action, safe to open in a spreadsheet.
    Csv,
}

/// Arguments of `relance plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Scenario files or folders of `*.relance` files.
    #[arg(long = "scenarios", required = true, num_args = 1..)]
    pub scenarios: Vec<PathBuf>,
    /// Folder with customers/invoices/payments (.csv or .json), or one .xlsx file.
    #[arg(long)]
    pub portfolio: PathBuf,
    /// The day of the run (YYYY-MM-DD); defaults to today's local date.
    #[arg(long, value_parser = parse_date)]
    pub as_of: Option<NaiveDate>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: PlanFormat,
    /// Accept `dd/mm/yyyy` dates in the portfolio.
    #[arg(long)]
    pub day_first: bool,
    /// Accept decimal commas (`1 234,56`) in the portfolio.
    #[arg(long)]
    pub decimal_comma: bool,
    /// A rate override file (`table,effective,percent`) that adds or corrects ECB, BOE or
    /// BASE rates without rebuilding.
    #[arg(long, value_name = "FILE")]
    pub rates: Option<PathBuf>,
    /// Company closing days (one `YYYY-MM-DD` per line), added to every calendar.
    #[arg(long, value_name = "FILE")]
    pub closing_days: Option<PathBuf>,
    /// FR law: one interest rate for the whole debt (the rate of the half-year in which
    /// interest starts) instead of one rate per half-year.
    #[arg(long)]
    pub fr_single_rate: bool,
}

/// The standard registry with the user's rate overrides, closing days and law options.
pub fn registry(
    rates: Option<&PathBuf>,
    closing_days: Option<&PathBuf>,
    fr_single_rate: bool,
) -> Result<relance_engine::Registry, String> {
    let mut tables = relance_stdlib::rates::RateTables::builtin();
    if let Some(path) = rates {
        tables.load_overrides(path).map_err(|e| render_diagnostic(&e))?;
    }
    let options = relance_stdlib::law::LawOptions { fr_single_rate };
    let mut registry = relance_stdlib::registry_with(std::sync::Arc::new(tables), options);
    if let Some(path) = closing_days {
        let days = relance_stdlib::calendar::load_closing_days(path).map_err(|e| render_diagnostic(&e))?;
        for cal in registry.calendars.values_mut() {
            let wrapped = relance_stdlib::calendar::WithClosures::new(cal.clone(), days.iter().copied());
            *cal = std::sync::Arc::new(wrapped);
        }
    }
    Ok(registry)
}

fn render_diagnostic(e: &dyn miette::Diagnostic) -> String {
    let mut s = format!("error: {e}");
    if let Some(help) = e.help() {
        s.push_str(&format!("\n  help: {help}"));
    }
    s
}

/// Parses `YYYY-MM-DD` with a helpful message.
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a date: write it as YYYY-MM-DD, for example 2026-03-31"))
}

/// Runs `relance plan`.
pub fn run(args: &PlanArgs) -> Status {
    // Before anything large is allocated (see `no_huge_pages`).
    crate::no_huge_pages();
    crate::give_back_freed_memory_soon();
    let registry = match registry(args.rates.as_ref(), args.closing_days.as_ref(), args.fr_single_rate) {
        Ok(r) => r,
        Err(msg) => {
            eprintln!("{msg}");
            return Status::Problems;
        }
    };
    let sources = match files::collect(&args.scenarios).and_then(|p| files::read(&p)) {
        Ok(s) => s,
        Err(e) => return files::usage(&e),
    };
    let engine = match Engine::from_sources(sources, &registry) {
        Ok(e) => e,
        Err(e) => {
            eprint!("{}", relance_dsl::render_human(e.diagnostics(), std::io::stderr().is_terminal()));
            return Status::Problems;
        }
    };
    let options = relance_stdlib::load::LoadOptions {
        decimal_comma: args.decimal_comma,
        date_format: if args.day_first {
            relance_stdlib::load::DateFormat::DayMonthYear
        } else {
            relance_stdlib::load::DateFormat::Iso
        },
        // Under French law, invoices whose terms exceed the legal cap get a warning, checked
        // while the rows are read.
        fr_cap_warnings: engine.program().law_name() == Some("FR"),
        // Only the extra columns the conditions read: an export's other columns are not
        // loaded (no plan shows them).
        extra_columns: engine.program().extra_columns().cloned(),
        ..relance_stdlib::load::LoadOptions::default()
    };
    // Each customer's invoices side by side (the evaluator then reads memory in order), and
    // the evaluator's index of them built in the same pass as the sort.
    let portfolio = match relance_stdlib::load::load_dir_indexed(&args.portfolio, &options) {
        Ok(p) => p,
        Err(e) => {
            eprint!("{}", render_load_errors(&e));
            return Status::Problems;
        }
    };
    // The loader's temporary memory (row parts, id indexes, the sort's order) goes back
    // before the evaluation allocates its own.
    crate::give_back_free_memory();
    crate::keep_freed_memory();
    let as_of = args.as_of.unwrap_or_else(|| chrono::Local::now().date_naive());
    // The JSON plan arrives in parts of hundreds of KB: a small buffer lets them go to stdout
    // directly instead of being copied through it.
    let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
    let written = match args.format {
        // All formats are streamed: evaluated and written in batches, never held whole.
        PlanFormat::Json => render::write_plan_json(engine.program(), &portfolio, as_of, &NoHistory, &mut out),
        PlanFormat::Table => render::write_plan_table(engine.program(), &portfolio, as_of, &NoHistory, &mut out),
        PlanFormat::Csv => render::write_plan_csv(engine.program(), &portfolio, as_of, &NoHistory, &mut out),
    };
    let written = written.and_then(|()| out.flush());
    // The process ends right after: the system takes the portfolio's memory back in one go,
    // faster than freeing its rows one by one (≈ 30 ms at 10^6 invoices).
    std::mem::forget(portfolio);
    match written {
        Ok(()) => Status::Ok,
        // `relance plan … | head`: the reader has what it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Status::Ok,
        Err(e) => {
            eprintln!(
                "error: cannot write the plan: {e}\n  help: check that the output can be written (disk space, pipe)"
            );
            Status::Problems
        }
    }
}

/// Every load error on its own line, then the count of those not shown.
fn render_load_errors(e: &relance_stdlib::load::LoadErrors) -> String {
    let mut out = String::new();
    for err in &e.errors {
        out.push_str(&format!("error: {err}\n"));
        if let Some(help) = &err.help {
            out.push_str(&format!("  help: {help}\n"));
        }
    }
    if e.not_shown > 0 {
        out.push_str(&format!("… and {} more error(s)\n", e.not_shown));
    }
    out.push_str("nothing was loaded: fix the portfolio files and run again\n");
    out
}
