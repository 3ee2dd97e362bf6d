//! Helpers for the end-to-end tests in `tests/tests/`: they run the real `relance` binary on
//! the bundled examples.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The workspace root (where `examples/` is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `relance` binary built by `cargo test --workspace` next to this test executable.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/relance
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin = dir.join(format!("relance{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "`{}` is missing: run `cargo test --workspace` (or `cargo build -p relance-cli`) first",
        bin.display()
    );
    bin
}

/// Runs `relance ARGS` from the workspace root.
pub fn relance(args: &[&str]) -> Output {
    Command::new(binary()).args(args).current_dir(root()).output().expect("run relance")
}

/// Stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8 stderr")
}
