//! The relance scenario language: grammar, typed AST, diagnostics, checks and formatter.
//!
//! ```text
//! text ──parse──▶ ast::File ──check (with the other files of the set)──▶ ScenarioSet
//!                     └──format──▶ canonical text
//! ```
//!
//! - [`parse`] turns one [`Source`] into an [`ast::File`], or every syntax error of it.
//! - [`check()`] runs the semantic checks over a set of parsed files: errors and warnings.
//! - [`load`] does both for a whole set and returns a [`ScenarioSet`] with a content hash.
//! - [`format()`] prints a file in the canonical layout, comments kept.
//! - [`Diagnostic`] is the one error/warning type; [`render_human`] and [`render_json`]
//!   print a list of them.
//!
//! ```
//! use relance_dsl::{load, KnownNames, Source};
//! let src = Source::new("policy.relance", r#"
//!     scenario "Everyone" {
//!       for others
//!       D+1 email "reminder-1"
//!     }
//! "#);
//! let set = load(vec![src], &KnownNames::default()).expect("valid");
//! assert_eq!(set.files.len(), 1);
//! ```

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

pub mod ast;
mod check;
mod diagnostic;
mod erase;
mod format;
mod parser;
pub mod suggest;

pub use check::codes as check_codes;
pub use diagnostic::{Diagnostic, Label, Severity, line_col, render_human, render_json};

/// One scenario file: its name (a path, usually) and its full text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The name shown in diagnostics, e.g. `scenarios/policy.relance`.
    pub name: String,
    /// The whole UTF-8 text.
    pub text: String,
}

impl Source {
    /// A source named `name` with text `text`.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self { name: name.into(), text: text.into() }
    }
}

/// Parses one file. On failure, returns every syntax error found (the parser resumes at
/// the next `settings` or `scenario` block after an error).
pub fn parse(source: &Source) -> Result<ast::File, Vec<Diagnostic>> {
    parser::parse(source)
}

/// The names the checker accepts for calendars, laws, reference rates and channels.
///
/// [`KnownNames::default`] holds the built-ins; an embedding program that provides more
/// (a custom channel, say) adds them before calling [`check()`] or [`load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownNames {
    /// Business-day calendars (`FR`, `FR-ALSACE`, `UK`, `DE`, `none`).
    pub calendars: BTreeSet<String>,
    /// Late-payment laws (`FR`, `EU`, `UK`, `DE`).
    pub laws: BTreeSet<String>,
    /// Reference rates for `with interest NAME + N points` (`ECB`, `BOE`, `BASE`).
    pub reference_rates: BTreeSet<String>,
    /// Channels (`email`, `sms`, `letter`, …, plus custom ones).
    pub channels: BTreeSet<String>,
}

impl Default for KnownNames {
    fn default() -> Self {
        let set = |xs: &[&str]| xs.iter().map(|s| (*s).to_string()).collect();
        Self {
            calendars: set(&["FR", "FR-ALSACE", "UK", "DE", "none"]),
            laws: set(&["FR", "EU", "UK", "DE"]),
            // BASE: the German Basiszinssatz.
            reference_rates: set(&["ECB", "BOE", "BASE"]),
            channels: set(&[
                "email",
                "sms",
                "letter",
                "registered_letter",
                "call",
                "webhook",
                "escalate",
                "notify",
                "stdout",
            ]),
        }
    }
}

impl KnownNames {
    /// Adds a custom channel that the embedding program provides.
    pub fn add_channel(&mut self, name: impl Into<String>) -> &mut Self {
        self.channels.insert(name.into());
        self
    }

    /// Builder form of [`KnownNames::add_channel`].
    pub fn with_channel(mut self, name: impl Into<String>) -> Self {
        self.add_channel(name);
        self
    }
}

/// Runs the semantic checks over a set of parsed files (the order of the files is the
/// order in which scenarios are matched). Returns errors and warnings, sorted by file
/// order then position; an empty list means the set is clean.
pub fn check(files: &[(Source, ast::File)], known: &KnownNames) -> Vec<Diagnostic> {
    check::check(files, known)
}

/// A parsed and checked set of scenario files, ready to be compiled by the engine.
#[derive(Debug, Clone)]
pub struct ScenarioSet {
    /// The files in the order given, each with its syntax tree.
    pub files: Vec<(Source, ast::File)>,
    /// Warnings of the checker (the set has no error).
    pub warnings: Vec<Diagnostic>,
    /// Lowercase hex SHA-256 over each file's name and text, in order (see [`content_hash`]).
    pub hash: String,
}

/// The content hash of a list of sources: SHA-256 over, for each source in order, the
/// name's byte length as 8 little-endian bytes, the name, the text's byte length as 8
/// little-endian bytes and the text. Lowercase hex.
pub fn content_hash(sources: &[Source]) -> String {
    let mut h = Sha256::new();
    for s in sources {
        h.update((s.name.len() as u64).to_le_bytes());
        h.update(s.name.as_bytes());
        h.update((s.text.len() as u64).to_le_bytes());
        h.update(s.text.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses and checks a set of files. Returns the set with its warnings, or every error
/// of every file together with the warnings: the syntax errors of the files that do not
/// parse, and the check errors of those that do (checked together).
pub fn load(sources: Vec<Source>, known: &KnownNames) -> Result<ScenarioSet, Vec<Diagnostic>> {
    let hash = content_hash(&sources);
    let mut errors = Vec::new();
    let mut files = Vec::new();
    for s in sources {
        match parse(&s) {
            Ok(f) => files.push((s, f)),
            Err(mut d) => errors.append(&mut d),
        }
    }
    if !errors.is_empty() {
        // Check what parsed, but keep only errors: set-wide warnings (no fallback…)
        // would be misleading while some files are missing.
        errors.extend(check(&files, known).into_iter().filter(Diagnostic::is_error));
        return Err(errors);
    }
    let diags = check(&files, known);
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    Ok(ScenarioSet { files, warnings: diags, hash })
}

/// Prints `file` in the canonical layout. `source` is the text it was parsed from; the
/// comments of `file` are placed back next to the items they were written beside.
pub fn format(file: &ast::File, source: &str) -> String {
    format::format(file, source)
}
