//! `relance fmt PATH… [--check]`: rewrite scenario files in the canonical layout.

use std::io::IsTerminal;
use std::path::PathBuf;

use relance_dsl::{format, parse, render_human};

use crate::{Status, files};

/// Arguments of `relance fmt`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario files, or folders searched recursively for `*.relance` files.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Change nothing: show what would change and exit 1 if anything would.
    #[arg(long)]
    pub check: bool,
}

/// Runs the command.
pub fn run(args: &Args) -> Status {
    let paths = match files::collect(&args.paths) {
        Ok(p) => p,
        Err(e) => return files::usage(&e),
    };
    let color = std::io::stderr().is_terminal();
    let mut status = Status::Ok;
    for path in &paths {
        let sources = match files::read(std::slice::from_ref(path)) {
            Ok(s) => s,
            Err(e) => return files::usage(&e),
        };
        let Some(src) = sources.into_iter().next() else { continue };
        let file = match parse(&src) {
            Ok(f) => f,
            Err(d) => {
                eprint!("{}", render_human(&d, color));
                status = Status::Problems;
                continue;
            }
        };
        let formatted = format(&file, &src.text);
        if formatted == src.text {
            continue;
        }
        if args.check {
            print!("{}", diff(&src.name, &src.text, &formatted, std::io::stdout().is_terminal()));
            status = Status::Problems;
        } else if let Err(e) = std::fs::write(path, &formatted) {
            eprintln!("error: cannot write `{}`: {}", path.display(), files::lower(&e));
            return Status::Usage;
        } else {
            eprintln!("formatted {}", path.display());
        }
    }
    status
}

/// A unified diff of the change, with 3 lines of context.
fn diff(name: &str, old: &str, new: &str, color: bool) -> String {
    let d = similar::TextDiff::from_lines(old, new);
    let mut out = format!("--- {name}\n+++ {name} (formatted)\n");
    for hunk in d.unified_diff().context_radius(3).iter_hunks() {
        out.push_str(&format!("{}\n", hunk.header()));
        for change in hunk.iter_changes() {
            let (sign, code) = match change.tag() {
                similar::ChangeTag::Delete => ("-", "31"),
                similar::ChangeTag::Insert => ("+", "32"),
                similar::ChangeTag::Equal => (" ", ""),
            };
            let mut line = format!("{sign}{}", change.value());
            if !line.ends_with('\n') {
                line.push('\n');
            }
            if color && !code.is_empty() {
                line = format!("\x1b[{code}m{}\x1b[0m\n", line.trim_end_matches('\n'));
            }
            out.push_str(&line);
        }
    }
    out
}
