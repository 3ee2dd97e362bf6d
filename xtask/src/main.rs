//! `cargo run -p xtask --release -- gen-portfolio …`: see the library's documentation.

use std::process::ExitCode;

use xtask::{Gen, USAGE};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("gen-portfolio") => match Gen::from_args(&args[1..]).and_then(|g| g.run()) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("{USAGE}");
            ExitCode::FAILURE
        }
    }
}
