//! Late-payment laws: the fixed recovery compensation and the statutory interest rate.
//!
//! | name | module  | legal source                                             | rate                         | fixed sum              |
//! |------|---------|----------------------------------------------------------|------------------------------|------------------------|
//! | `FR` | [`fr`]  | Code de commerce art. L441-10 and D441-5                  | ECB MRO + 10 points, per half-year | 40 EUR per invoice |
//! | `EU` | [`eu`]  | Directive 2011/7/EU (art. 2, 3, 6)                        | ECB MRO + 8 points, per half-year  | 40 EUR per invoice |
//! | `UK` | [`uk`]  | Late Payment of Commercial Debts (Interest) Act 1998      | BoE Bank Rate + 8 points, fixed when interest starts | £40 / £70 / £100 |
//! | `DE` | [`de`]  | BGB §288 (with §247 for the Basiszinssatz)                | Basiszinssatz + 9 points, per half-year | 40 EUR per invoice |
//!
//! The rates come from [`RateTables`]; a date the tables do not cover is an error unless
//! `rates assume unchanged` is set (see [`crate::rates`]). Interest itself is computed by the
//! engine (`relance_engine::money::simple_interest`, actual/365, rounded once per invoice).

pub mod de;
pub mod eu;
pub mod fr;
pub mod uk;

use std::sync::Arc;

use rust_decimal::Decimal;

pub use relance_engine::law::{Law, RateSchedule};

use crate::rates::RateTables;

/// Options that change how a law applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LawOptions {
    /// FR only: one rate for the whole debt — the rate of the half-year in which interest
    /// starts — instead of the default split by half-year. The text of L441-10 supports the
    /// split (each half-year has its own rate); some contracts and practitioners apply a single
    /// rate, hence the option.
    pub fr_single_rate: bool,
}

/// The names accepted by [`by_name`].
pub fn names() -> &'static [&'static str] {
    &["FR", "EU", "UK", "DE"]
}

/// The law named `name` (`FR`, `EU`, `UK`, `DE`, any case).
pub fn by_name(name: &str, tables: Arc<RateTables>, options: LawOptions) -> Option<Arc<dyn Law>> {
    match name.trim().to_ascii_uppercase().as_str() {
        "FR" => Some(Arc::new(fr::law(tables, options))),
        "EU" => Some(Arc::new(eu::law(tables))),
        "UK" => Some(Arc::new(uk::UnitedKingdom::new(tables))),
        "DE" => Some(Arc::new(de::law(tables))),
        _ => None,
    }
}

/// A law whose fixed compensation is 40 EUR per invoice (FR, EU, DE: Directive 2011/7/EU
/// art. 6 and its transpositions) and whose interest follows a reference schedule. The
/// modules [`fr`], [`eu`] and [`de`] build it with their own rate rule and cite their source.
#[derive(Debug, Clone)]
pub struct EuroLaw {
    name: &'static str,
    schedule: crate::rates::ReferenceSchedule,
}

impl Law for EuroLaw {
    fn name(&self) -> &str {
        self.name
    }
    fn currency(&self) -> iso_currency::Currency {
        iso_currency::Currency::EUR
    }
    /// 40 EUR; nothing for an invoice whose amount is not positive (a credit note owes no
    /// recovery compensation).
    fn recovery_fee(&self, invoice_amount: Decimal) -> Decimal {
        if invoice_amount > Decimal::ZERO { Decimal::from(40) } else { Decimal::ZERO }
    }
    fn interest(&self) -> &dyn RateSchedule {
        &self.schedule
    }
}
