//! `relance-example-embed`: plan the dunning of a French FEC with a custom calendar and
//! channel.
//!
//! ```text
//! cargo run -p relance-example-embed -- [--fec PATH] [--as-of YYYY-MM-DD]
//! ```
//!
//! Without arguments it reads the bundled FEC (`examples/fec/0000000001FEC20220831.txt`) as of
//! 2022-08-31, its closing date. Read `src/lib.rs` for the embedding steps.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use chrono::NaiveDate;
use relance_engine::render;
use relance_example_embed::{TEAMS_CHANNEL, plan, teams_message};

/// The FEC shipped with the example.
const BUNDLED_FEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fec/0000000001FEC20220831.txt");

const USAGE: &str = "usage: relance-example-embed [--fec PATH] [--as-of YYYY-MM-DD]";

struct Args {
    fec: PathBuf,
    as_of: NaiveDate,
}

fn parse_args() -> Result<Args, String> {
    let mut args =
        Args { fec: PathBuf::from(BUNDLED_FEC), as_of: NaiveDate::from_ymd_opt(2022, 8, 31).unwrap_or_default() };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--fec" => args.fec = it.next().map(PathBuf::from).ok_or("`--fec` needs a path")?,
            "--as-of" => {
                let text = it.next().ok_or("`--as-of` needs a date")?;
                args.as_of = NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|_| {
                    format!("`{text}` is not a date\n  help: write the date as YYYY-MM-DD, like `2022-08-31`")
                })?;
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`\n  help: {USAGE}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };

    // Steps 1 to 4 (registry, policy, FEC source, evaluation) are in `src/lib.rs`.
    let start = Instant::now();
    let (plan, summary) = match plan(&args.fec, args.as_of) {
        Ok(p) => p,
        Err(e) => {
            // Errors are miette diagnostics: file, line, column, value and a help line.
            eprintln!("{:?}", miette::Report::new(e));
            return ExitCode::FAILURE;
        }
    };
    let elapsed = start.elapsed();

    // The plan as a terminal table (also available: render::to_json, render::to_csv).
    print!("{}", render::to_table(&plan));

    // Per customer, when something happens next (the FR-ACME closing week moves these).
    println!();
    println!("next actions:");
    for n in &plan.next {
        if let Some(d) = n.next_action_on {
            println!("  {:<8} {d}", n.customer);
        }
    }

    // The custom channel: relance plans `teams` actions; delivering them is this program's job.
    let teams: Vec<String> = plan.actions.iter().filter(|a| a.channel == TEAMS_CHANNEL).map(teams_message).collect();
    if !teams.is_empty() {
        println!();
        println!("teams messages:");
        for m in teams {
            println!("  {m}");
        }
    }

    eprintln!(
        "read {} FEC lines ({} on customer accounts), {} customers, {} open EUR; planned in {} ms",
        summary.lines,
        summary.customer_lines,
        summary.customers,
        summary.open_amount,
        elapsed.as_millis()
    );
    ExitCode::SUCCESS
}
