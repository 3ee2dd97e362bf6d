//! relance batteries.
//!
//! - [`law`]: late-payment laws (FR, EU, UK, DE): fixed recovery fees and statutory interest.
//! - [`rates`]: reference-rate tables (ECB, BoE, Bundesbank) and their CSV override format.
//! - [`calendar`]: business-day calendars (FR, FR-ALSACE, UK, DE, none) and closing days.
//! - [`terms`]: payment terms and due dates.
//! - [`load`]: portfolios from CSV, JSON and Excel files.

pub mod calendar;
pub mod law;
pub mod load;
pub mod rates;
mod recent;
pub mod terms;

use std::sync::Arc;

use relance_engine::Registry;

/// The standard registry: every calendar, law and reference rate of this crate with the
/// built-in rate tables, and the built-in channel names.
pub fn registry() -> Registry {
    registry_with(Arc::new(rates::RateTables::builtin()), law::LawOptions::default())
}

/// The standard registry with the given rate tables (for example the built-in ones updated
/// with [`rates::RateTables::load_overrides`]) and law options.
pub fn registry_with(tables: Arc<rates::RateTables>, options: law::LawOptions) -> Registry {
    let mut r = Registry::new();
    for name in calendar::names() {
        if let Some(c) = calendar::by_name(name) {
            r.calendars.insert((*name).to_owned(), c);
        }
    }
    for name in law::names() {
        if let Some(l) = law::by_name(name, tables.clone(), options) {
            r.laws.insert((*name).to_owned(), l);
        }
    }
    for name in rates::reference_names() {
        if let Some(s) = rates::reference(name, &tables) {
            r.reference_rates.insert((*name).to_owned(), s);
        }
    }
    r
}
