//! Fuzz target: parsing, checking and formatting never panic, and formatting a file
//! that parses gives a file that parses to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relance_dsl::{KnownNames, Source, check, format, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let src = Source::new("fuzz.relance", text);
    if let Ok(file) = parse(&src) {
        let files = vec![(src.clone(), file.clone())];
        let _ = check(&files, &KnownNames::default());
        let out = format(&file, text);
        let again = parse(&Source::new("fuzz.relance", out.clone()))
            .unwrap_or_else(|d| panic!("formatted text does not parse: {d:?}\n{out}"));
        assert_eq!(again.without_spans(), file.without_spans(), "format changed the tree:\n{out}");
        assert_eq!(format(&again, &out), out, "format is not idempotent");
    }
});
