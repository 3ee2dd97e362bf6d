//! Development helper: `cargo run -p relance-dsl --example dsl_tool -- FILE…` prints the
//! diagnostics of a set of files, or its formatted text when it is clean.
#![allow(clippy::unwrap_used, clippy::expect_used)]
fn main() {
    let sources: Vec<relance_dsl::Source> = std::env::args()
        .skip(1)
        .map(|p| relance_dsl::Source::new(p.clone(), std::fs::read_to_string(&p).expect("read")))
        .collect();
    match relance_dsl::load(sources, &relance_dsl::KnownNames::default()) {
        Ok(set) => {
            print!("{}", relance_dsl::render_human(&set.warnings, false));
            for (s, f) in &set.files {
                print!("{}", relance_dsl::format(f, &s.text));
            }
        }
        Err(d) => print!("{}", relance_dsl::render_human(&d, false)),
    }
}
