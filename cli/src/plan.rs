//! `relance plan`: evaluate a portfolio as of a date and print the action plan.

use std::path::PathBuf;

use chrono::NaiveDate;
use relance_engine::history::NoHistory;
use relance_engine::{render, Engine};

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
}

/// Parses `YYYY-MM-DD` with a helpful message.
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("`{s}` is not a date: write it as YYYY-MM-DD, for example 2026-03-31"))
}

/// Runs `relance plan`.
pub fn run(args: &PlanArgs) -> Status {
    let registry = relance_stdlib::registry();
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
    let mut options = relance_stdlib::load::LoadOptions::default();
    options.decimal_comma = args.decimal_comma;
    if args.day_first {
        options.date_format = relance_stdlib::load::DateFormat::DayMonthYear;
    }
    let portfolio = match relance_stdlib::load::load_dir(&args.portfolio, &options) {
        Ok(p) => p,
        Err(e) => {
            eprint!("{}", render_load_errors(&e));
            return Status::Problems;
        }
    };
    let as_of = args.as_of.unwrap_or_else(|| chrono::Local::now().date_naive());
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let written = match args.format {
        // Streamed: evaluated and written in batches, never held whole in memory.
        PlanFormat::Json => render::write_plan_json(engine.program(), &portfolio, as_of, &NoHistory, &mut out),
        PlanFormat::Table => out.write_all(render::to_table(&engine.evaluate(&portfolio, as_of, &NoHistory)).as_bytes()),
        PlanFormat::Csv => out.write_all(render::to_csv(&engine.evaluate(&portfolio, as_of, &NoHistory)).as_bytes()),
    };
    match written.and_then(|()| out.flush()) {
        Ok(()) => Status::Ok,
        // `relance plan … | head`: the reader has what it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Status::Ok,
        Err(e) => {
            eprintln!("error: cannot write the plan: {e}\n  help: check that the output can be written (disk space, pipe)");
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
