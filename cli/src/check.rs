//! `relance check PATH…`: parse and check a set of scenario files.

use std::io::IsTerminal;
use std::path::PathBuf;

use relance_dsl::{Diagnostic, render_human, render_json};
use relance_engine::Engine;

use crate::{Status, files};

/// Output format of the diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Compiler-style text on stderr.
    Human,
    /// A JSON array on stdout.
    Json,
}

/// Arguments of `relance check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario files, or folders searched recursively for `*.relance` files.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    pub deny_warnings: bool,
    /// A custom channel the program provides (repeatable).
    #[arg(long = "channel", value_name = "NAME")]
    pub channels: Vec<String>,
}

/// Runs the command.
pub fn run(args: &Args) -> Status {
    let paths = match files::collect(&args.paths) {
        Ok(p) => p,
        Err(e) => return files::usage(&e),
    };
    let sources = match files::read(&paths) {
        Ok(s) => s,
        Err(e) => return files::usage(&e),
    };
    let n = sources.len();
    // Check and compile against the standard registry: this also reports what only the
    // engine knows (rhai scripts that do not compile, `functions` files that cannot be read).
    let mut registry = relance_stdlib::registry();
    for c in &args.channels {
        registry.channels.insert(c.clone());
    }
    let diags: Vec<Diagnostic> = match Engine::from_sources(sources, &registry) {
        Ok(engine) => engine.scenarios().warnings.clone(),
        Err(e) => e.diagnostics().to_vec(),
    };
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    match args.format {
        Format::Json => println!("{}", render_json(&diags)),
        Format::Human => {
            if diags.is_empty() {
                eprintln!("{n} file{} checked: no problem found", if n == 1 { "" } else { "s" });
            } else {
                eprint!("{}", render_human(&diags, std::io::stderr().is_terminal()));
            }
        }
    }
    if errors > 0 || (args.deny_warnings && warnings > 0) { Status::Problems } else { Status::Ok }
}
