//! The relance engine: compile scenario files, evaluate a portfolio as of a date, and get an
//! explained action plan.
//!
//! ```text
//! scenario text ──relance_dsl::load──▶ ScenarioSet ──Engine::new──▶ Program (compiled once)
//! Portfolio + as-of date + History ──Engine::evaluate──▶ Plan { actions, skipped, … }
//! ```
//!
//! A [`Portfolio`] is indexed by each evaluation; an [`IndexedPortfolio`] is indexed once.
//!
//! The engine knows no calendar, law or rate table by itself: they come through a
//! [`Registry`]; `relance_stdlib::registry()` gives the standard ones.
//!
//! ```
//! use relance_engine::{Engine, Registry, history::NoHistory, model::*};
//! use chrono::NaiveDate;
//! use rust_decimal::Decimal;
//!
//! let text = r#"
//! scenario "Everyone" {
//!   for others
//!   D+1  email "reminder-1"
//!   D+30 letter "reminder-2" with fee 40 EUR per invoice
//! }"#;
//! let sources = vec![relance_dsl::Source::new("policy.relance", text)];
//! let engine = Engine::from_sources(sources, &Registry::new()).map_err(|e| format!("{e:?}"))?;
//!
//! let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap_or_default();
//! let portfolio = Portfolio {
//!     customers: vec![Customer::new("C1", "Boulangerie Martin", "sme")],
//!     invoices: vec![Invoice::new("F-1", "C1", day(3, 1), Decimal::new(120000, 2), iso_currency::Currency::EUR)],
//!     ..Portfolio::default()
//! };
//! let plan = engine.evaluate(&portfolio, day(3, 31), &NoHistory);
//! assert_eq!(plan.actions.len(), 1);
//! assert_eq!(plan.actions[0].step, "D+30");
//! assert_eq!(plan.actions[0].fees.to_string(), "40.00");
//!
//! // Indexed once, for several evaluations: the same plans.
//! let indexed = IndexedPortfolio::new(portfolio);
//! assert_eq!(engine.evaluate(&indexed, day(3, 31), &NoHistory), plan);
//! # Ok::<(), String>(())
//! ```

pub mod calendar;
pub mod compile;
mod cond;
pub mod datefmt;
pub mod eval;
pub mod fxhash;
pub mod history;
mod json;
pub mod law;
pub mod model;
pub mod money;
mod outcome;
mod payindex;
pub mod plan;
pub mod render;
pub mod script;
pub mod source;

use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;

pub use compile::{CompileError, ExtraColumns, Program, Registry};
pub use history::History;
pub use model::{IndexedPortfolio, Portfolio, PortfolioRef};
pub use plan::Plan;
pub use source::PortfolioSource;

/// Errors from building an [`Engine`]: every diagnostic of every file.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum EngineError {
    /// Syntax or semantic errors in the scenario files.
    #[error("the scenario files have {} error(s)", .0.iter().filter(|d| d.is_error()).count())]
    Language(#[related] Vec<relance_dsl::Diagnostic>),
    /// The files are valid but name something the registry does not provide, or a rhai
    /// script does not compile.
    #[error("the scenario files cannot be compiled ({} error(s))", .0.len())]
    Compile(#[related] Vec<relance_dsl::Diagnostic>),
}

impl EngineError {
    /// The diagnostics, to print with [`relance_dsl::render_human`] or `render_json`.
    pub fn diagnostics(&self) -> &[relance_dsl::Diagnostic] {
        match self {
            EngineError::Language(d) | EngineError::Compile(d) => d,
        }
    }
}

/// A compiled policy, ready to evaluate portfolios. Cheap to clone and share across threads.
#[derive(Clone, Debug)]
pub struct Engine {
    program: Arc<Program>,
    set: Arc<relance_dsl::ScenarioSet>,
}

impl Engine {
    /// Parses, checks and compiles scenario sources. `functions "x.rhai"` files are read
    /// relative to the scenario file that names them, and must stay inside its folder.
    pub fn from_sources(sources: Vec<relance_dsl::Source>, registry: &Registry) -> Result<Engine, EngineError> {
        let known = known_names(registry);
        let set = relance_dsl::load(sources, &known).map_err(EngineError::Language)?;
        Self::new(set, registry)
    }

    /// Compiles an already checked [`relance_dsl::ScenarioSet`].
    pub fn new(set: relance_dsl::ScenarioSet, registry: &Registry) -> Result<Engine, EngineError> {
        let files: Vec<(&str, &str, &relance_dsl::ast::File)> =
            set.files.iter().map(|(src, ast)| (src.name.as_str(), src.text.as_str(), ast)).collect();
        let read = |scenario_file: &str, written: &str| -> Result<String, String> {
            let path = script::resolve_functions_path(Path::new(scenario_file), written).map_err(|e| e.message)?;
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read functions file `{}`: {e}", path.display()))
        };
        let program = Program::compile(&files, &set.hash, registry, &read).map_err(|errors| {
            let diags = errors
                .into_iter()
                .map(|e| {
                    let text: Arc<str> = set
                        .files
                        .iter()
                        .find(|(src, _)| src.name == e.file)
                        .map_or_else(|| Arc::from(""), |(src, _)| Arc::from(src.text.as_str()));
                    let d = relance_dsl::Diagnostic::error("relance::compile", e.message, &e.file, &text)
                        .with_label(e.span, "here");
                    match e.help {
                        Some(h) => d.with_help(h),
                        None => d,
                    }
                })
                .collect();
            EngineError::Compile(diags)
        })?;
        Ok(Engine { program: Arc::new(program), set: Arc::new(set) })
    }

    /// Evaluates `portfolio` as of `as_of`, given what `history` says was already done.
    /// Never fails as a whole: per-customer errors are in [`Plan::errors`].
    pub fn evaluate<'p>(
        &self,
        portfolio: impl Into<PortfolioRef<'p>>,
        as_of: NaiveDate,
        history: &dyn History,
    ) -> Plan {
        eval::evaluate(&self.program, portfolio, as_of, history)
    }

    /// The figures of the plan [`Engine::evaluate`] would return (actions per channel,
    /// skipped steps per status, amounts per currency), without building its texts: for a
    /// dashboard or a dry run over millions of invoices, in bounded memory.
    pub fn summarize<'p>(
        &self,
        portfolio: impl Into<PortfolioRef<'p>>,
        as_of: NaiveDate,
        history: &dyn History,
    ) -> plan::PlanSummary {
        eval::summarize(&self.program, portfolio, as_of, history)
    }

    /// The compiled program.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// The checked scenario files (with their warnings).
    pub fn scenarios(&self) -> &relance_dsl::ScenarioSet {
        &self.set
    }
}

/// The names a registry provides, for the language checker.
pub fn known_names(registry: &Registry) -> relance_dsl::KnownNames {
    let mut known = relance_dsl::KnownNames::default();
    known.calendars.extend(registry.calendars.keys().cloned());
    known.laws.extend(registry.laws.keys().cloned());
    known.reference_rates.extend(registry.reference_rates.keys().cloned());
    known.channels.extend(registry.channels.iter().cloned());
    known
}

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
