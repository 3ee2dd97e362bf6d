//! Snapshots of the rendered diagnostics of common mistakes (`tests/bad/*.relance`, one
//! mistake per file), plus a JSON snapshot.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use relance_dsl::{KnownNames, Source, load, render_human, render_json};

fn bad_files() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "relance"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_bad_input_has_a_snapshotted_error() {
    let files = bad_files();
    assert!(files.len() >= 30, "only {} bad inputs", files.len());
    for (name, text) in files {
        let src = Source::new(format!("{name}.relance"), text);
        let diags = match load(vec![src], &KnownNames::default()) {
            Ok(set) => panic!("{name} loaded without error: {:?}", set.warnings),
            Err(d) => d,
        };
        assert!(diags.iter().any(|d| d.is_error()), "{name}");
        for d in &diags {
            for raw in ["kw_", "rule_", "expr", "sel_", "bad_", "string_ok", "offset_ok", "item_at", "EOI", "SOI"] {
                assert!(!d.message.contains(raw), "{name}: raw rule name in `{}`", d.message);
            }
            assert!(d.help.is_some(), "{name}: no help for `{}`", d.message);
            let first = d.message.chars().next().unwrap();
            assert!(!first.is_uppercase(), "{name}: message starts with a capital");
            assert!(!d.message.ends_with('.'), "{name}: message ends with a period");
        }
        insta::assert_snapshot!(name.clone(), render_human(&diags, false));
    }
}

#[test]
fn json_rendering() {
    let text = "scenario \"Everyone\" {\n  for others\n  D+20  leter \"reminder-2\"\n  D 10 email \"x\"\n}\n";
    let diags = load(vec![Source::new("policy.relance", text)], &KnownNames::default()).unwrap_err();
    insta::assert_snapshot!(render_json(&diags));
}

#[test]
fn errors_of_all_files_are_reported() {
    let a = Source::new("a.relance", "scenario \"A\" { for others D+1 leter \"x\" }\n");
    let b = Source::new("b.relance", "scenario \"B\" { for others D+ email \"x\" }\n");
    let c = Source::new("c.relance", "scenario \"A\" { for segment \"x\" D+1 email \"x\" }\n");
    let diags = load(vec![a, b, c], &KnownNames::default()).unwrap_err();
    let files: Vec<&str> = diags.iter().map(|d| d.file.as_str()).collect();
    assert!(files.contains(&"a.relance"), "{files:?}");
    assert!(files.contains(&"b.relance"));
    assert!(files.contains(&"c.relance"));
    let codes: Vec<&str> = diags.iter().map(|d| d.code).collect();
    assert!(codes.contains(&"relance::check::unknown-channel"));
    assert!(codes.contains(&"relance::syntax::offset-missing-number"));
    assert!(codes.contains(&"relance::check::duplicate-scenario"));
}

#[test]
fn custom_channels_can_be_registered() {
    let text = "scenario \"x\" { for others D+1 fax \"x\" }\n";
    assert!(load(vec![Source::new("a", text)], &KnownNames::default()).is_err());
    let known = KnownNames::default().with_channel("fax");
    assert!(load(vec![Source::new("a", text)], &known).is_ok());
}

#[test]
fn colour_is_optional() {
    let diags = load(vec![Source::new("a", "scenaro")], &KnownNames::default()).unwrap_err();
    assert!(!render_human(&diags, false).contains('\x1b'));
    assert!(render_human(&diags, true).contains("\x1b["));
}

#[test]
fn miette_sees_the_source() {
    use miette::Diagnostic as _;
    let diags = load(vec![Source::new("a.relance", "scenaro")], &KnownNames::default()).unwrap_err();
    let d = &diags[0];
    assert!(d.source_code().is_some());
    assert_eq!(d.code().unwrap().to_string(), "relance::syntax::unexpected");
    assert_eq!(d.labels().unwrap().count(), 1);
}
