//! # Embedding relance in your own program
//!
//! This crate is an example, meant to be read. It shows the four things an embedding program
//! does, each in one function below:
//!
//! 1. [`registry`]: start from the standard batteries (`relance_stdlib::registry()`) and add
//!    your own names: here a business-day calendar `FR-ACME` (the French calendar plus the
//!    company's closing week) and a custom channel `teams`.
//! 2. [`engine`]: compile a scenario policy once. The policy ([`POLICY`]) is inline text here;
//!    it may as well come from files your finance team edits.
//! 3. [`fec_source`]: a data source of your own. [`fec::FecSource`] implements
//!    [`relance_engine::PortfolioSource`] for a French FEC (general-ledger export): it turns
//!    customer-account lines and their lettering into customers, invoices and payments.
//! 4. [`plan`]: evaluate the portfolio as of a date, and get the explained action plan.
//!
//! `src/main.rs` is the command-line program that runs these steps and prints the plan.

pub mod fec;

use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use relance_engine::history::NoHistory;
use relance_engine::{Engine, EngineError, Plan, Registry};
use relance_stdlib::calendar::WithClosures;
use rust_decimal::Decimal;

use crate::fec::{FecError, FecOptions, FecSource, FecSummary, SegmentRule};

/// The name of the company calendar this program registers.
pub const ACME_CALENDAR: &str = "FR-ACME";

/// The name of the custom channel this program provides.
pub const TEAMS_CHANNEL: &str = "teams";

/// The file name under which the inline policy is compiled (it appears in diagnostics).
pub const POLICY_NAME: &str = "acme-policy.relance";

/// The dunning policy, in the relance language. It uses the two names that only this program
/// provides: `calendar FR-ACME` and the `teams` channel.
pub const POLICY: &str = r#"# ACME SAS dunning policy, compiled by the embedding example.
settings {
  currency EUR
  calendar FR-ACME          # French holidays + ACME's closing week (registered by the program)
  law FR                    # fixed 40 EUR recovery fee, ECB + 10 points interest
  cooldown 5 days
  minimum balance 15 EUR
}

scenario "Key accounts" {
  for segment "key-account"
  D-10  email "statement"
  D+3   call "payment-follow-up" assign "account-manager"
  D+20  teams "ping-sales"                  # ask the sales rep to call their contact
  D+45  registered_letter "formal-notice" when balance >= 1000 EUR
        with fee legal
        with interest legal
  pause when disputed
}

scenario "Everyone else" {
  for others
  D-5   email "statement"
  D+15  email "reminder-1"
  D+20  teams "ping-sales"
  D+40  letter "reminder-2"
        with fee legal
        with interest legal
}
"#;

/// ACME's closing week: the company closes for its annual inventory from Monday 19 to Friday
/// 23 September 2022. No reminder goes out on those days; a step that falls on one of them
/// moves to the next business day (Monday 26 September).
pub fn acme_closing_days() -> Vec<NaiveDate> {
    (19..=23).filter_map(|d| NaiveDate::from_ymd_opt(2022, 9, d)).collect()
}

/// Step 1: the registry, i.e. every name a policy may use.
///
/// `relance_stdlib::registry()` knows the standard calendars (FR, FR-ALSACE, UK, DE, none),
/// laws (FR, EU, UK, DE), reference rates (ECB, BOE, BASE) and built-in channels (email,
/// letter, call…). A policy that names anything else is rejected when it is compiled, so the
/// program adds its own names here, before compiling.
pub fn registry() -> Registry {
    let mut registry = relance_stdlib::registry();

    // A calendar is any `relance_engine::calendar::Calendar`. Here we wrap the French one with
    // the company's closing days; the stdlib's `WithClosures` does exactly that.
    if let Some(fr) = registry.calendars.get("FR").cloned() {
        let acme = WithClosures::new(fr, acme_closing_days());
        registry.calendars.insert(ACME_CALENDAR.to_owned(), Arc::new(acme));
    }

    // A channel name tells the checker that something will execute `teams` actions: the plan
    // will contain them, and this program delivers them (see `teams_message`).
    registry.channels.insert(TEAMS_CHANNEL.to_owned());
    registry
}

/// Step 2: compile the policy once. The engine is cheap to clone and can be shared between
/// threads; compile it at start-up, not per portfolio.
pub fn engine(registry: &Registry) -> Result<Engine, EngineError> {
    let sources = vec![relance_dsl::Source::new(POLICY_NAME, POLICY)];
    Engine::from_sources(sources, registry)
}

/// Step 3: the data source. Customers who were invoiced more than 50,000 EUR in the fiscal
/// year are key accounts (handled by the "Key accounts" scenario); everyone else is `sme`.
/// Invoices are due 30 days after their date.
pub fn fec_source(path: &Path) -> FecSource {
    let options = FecOptions {
        terms: "30 days net".to_owned(),
        segment: SegmentRule::ByTotalDebit {
            threshold: Decimal::new(50_000, 0),
            above: "key-account".to_owned(),
            otherwise: "sme".to_owned(),
        },
        ..FecOptions::default()
    };
    FecSource::with_options(path, options)
}

/// What can go wrong when planning.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum EmbedError {
    /// The policy does not compile.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Policy(#[from] EngineError),
    /// The FEC cannot be read.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Fec(#[from] FecError),
}

/// Step 4: everything together: the plan for the FEC at `path` as of `as_of`, and the
/// loader's summary.
///
/// There is no journal here (`NoHistory`): every step is evaluated as if nothing had been
/// sent yet. A program that executes plans passes its journal instead, so that a reminder
/// is never sent twice.
pub fn plan(path: &Path, as_of: NaiveDate) -> Result<(Plan, FecSummary), EmbedError> {
    let registry = registry();
    let engine = engine(&registry)?;
    let source = fec_source(path);
    // `PortfolioSource::load` gives the portfolio alone (all or nothing);
    // `FecSource::read` also gives the loader's counts and totals.
    let load = source.read()?;
    let plan = engine.evaluate(&load.portfolio, as_of, &NoHistory);
    Ok((plan, load.summary))
}

/// How this program delivers a `teams` action: the text it would post in the sales channel.
/// A real program would send it to a Microsoft Teams incoming webhook, then record it in its
/// journal.
pub fn teams_message(action: &relance_engine::plan::Action) -> String {
    format!(
        "[{}] {} ({}) owes {} {} on {} — please call your contact. ({})",
        action.template,
        action.customer_name,
        action.customer,
        action.outstanding,
        action.currency.code(),
        action.invoices.join(", "),
        action.step
    )
}
