//! `relance check` reports what only the engine knows: rhai scripts that do not compile, at
//! their line and column in the scenario file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use relance_tests::{relance, stderr, stdout};

#[test]
fn check_reports_a_rhai_syntax_error_at_its_file_position() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("policy.relance");
    std::fs::write(&p, "scenario \"A\" {\n  for others\n  D+3 email \"r\" when rhai \"invoice.amount > \"\n}\n")
        .unwrap();
    let out = relance(&["check", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("policy.relance:3:"), "{err}");
    assert!(err.contains("rhai script does not compile"), "{err}");

    let out = relance(&["check", "--format", "json", p.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v[0]["line"], 3, "{v}");
    assert_eq!(v[0]["code"], "relance::compile");
}
