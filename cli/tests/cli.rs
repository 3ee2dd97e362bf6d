//! End-to-end tests of `relance check` and `relance fmt`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

fn relance(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relance")).args(args).output().unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const CLEAN: &str = "scenario \"Everyone\" {\n  for others\n  D+1  email \"reminder-1\"\n}\n";
const WARN: &str = "scenario \"Some\" {\n  for segment \"sme\"\n  D+1  email \"reminder-1\"\n}\n";
const BAD: &str = "scenario \"Everyone\" {\n  for others\n  D+1  emial \"reminder-1\"\n}\n";

#[test]
fn check_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let clean = write(dir.path(), "clean.relance", CLEAN);
    let warn = write(dir.path(), "w/warn.relance", WARN);
    let bad = write(dir.path(), "bad.relance", BAD);
    assert_eq!(relance(&["check", &clean]).status.code(), Some(0));
    assert_eq!(relance(&["check", &warn]).status.code(), Some(0));
    assert_eq!(relance(&["check", "--deny-warnings", &warn]).status.code(), Some(1));
    let out = relance(&["check", &bad]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bad.relance:3:8"), "{err}");
    assert!(err.contains("did you mean `email`?"), "{err}");
    assert!(!err.contains('\x1b'), "colour when not a terminal");
    // Usage errors.
    assert_eq!(relance(&["check", "/no/such/file.relance"]).status.code(), Some(2));
    assert_eq!(relance(&["check"]).status.code(), Some(2));
    assert_eq!(relance(&["check", "--format", "xml", &clean]).status.code(), Some(2));
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(relance(&["check", &empty.path().display().to_string()]).status.code(), Some(2));
}

#[test]
fn check_a_folder_recursively_and_as_json() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a/one.relance", BAD);
    write(dir.path(), "b/c/two.relance", WARN.replace("Some", "Other").as_str());
    write(dir.path(), "notes.txt", "not a scenario");
    let out = relance(&["check", "--format", "json", &dir.path().display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 1, "{v}");
    assert_eq!(arr[0]["code"], "relance::check::unknown-channel");
    assert_eq!(arr[0]["line"], 3);
    assert_eq!(arr[0]["column"], 8);
    assert_eq!(arr[0]["severity"], "error");
    assert!(arr[0]["file"].as_str().unwrap().ends_with("one.relance"));
}

#[test]
fn fmt_check_and_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let messy = "scenario \"Everyone\" { for others\nD+1 email \"reminder-1\" }\n";
    let p = write(dir.path(), "m.relance", messy);
    let out = relance(&["fmt", "--check", &p]);
    assert_eq!(out.status.code(), Some(1));
    let diff = String::from_utf8(out.stdout).unwrap();
    assert!(diff.contains("-scenario \"Everyone\" { for others"), "{diff}");
    assert!(diff.contains("+  for others"), "{diff}");
    assert_eq!(std::fs::read_to_string(&p).unwrap(), messy, "--check must not write");
    assert_eq!(relance(&["fmt", &p]).status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&p).unwrap(), CLEAN);
    assert_eq!(relance(&["fmt", "--check", &p]).status.code(), Some(0));
    let bad = write(dir.path(), "bad.relance", "scenario {");
    assert_eq!(relance(&["fmt", &bad]).status.code(), Some(1));
}

#[test]
fn example_policy_is_clean_and_formatted() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scenarios");
    let d = dir.display().to_string();
    let out = relance(&["check", "--deny-warnings", &d]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(relance(&["fmt", "--check", &d]).status.code(), Some(0));
}
