//! The relance scenario language: grammar, typed AST, diagnostics, checks and formatter.
//!
//! ```text
//! text ──parse──▶ ast::File ──check (with the other files of the set)──▶ ScenarioSet
//!                     └──format──▶ canonical text
//! ```
//!
//! CONTRACT (filled in by the dsl work, issue 2):
//! - `Source { name, text }` — one file's name and text.
//! - `parse(&Source) -> Result<ast::File, Vec<Diagnostic>>` — every syntax error of the file.
//! - `check(&[(Source, ast::File)], &KnownNames) -> Vec<Diagnostic>` — semantic errors and warnings.
//! - `load(Vec<Source>, &KnownNames) -> Result<ScenarioSet, Vec<Diagnostic>>` — parse + check.
//! - `format(&ast::File, &str) -> String` — canonical layout, comments kept.
//! - `Diagnostic` implements `miette::Diagnostic`; `render_human` / `render_json`.

pub mod ast;
