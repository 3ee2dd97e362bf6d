//! European Union: Directive 2011/7/EU on combating late payment in commercial transactions.
//!
//! - **Rate** (art. 2 points 6 and 7, art. 3): statutory interest at the reference rate plus
//!   at least 8 percentage points. For euro-area Member States the reference rate is the ECB
//!   rate on its most recent main refinancing operations; the rate in force on 1 January
//!   applies to the first half-year and the rate in force on 1 July to the second. relance
//!   applies the minimum: ECB MRO in force on 1 January / 1 July + 8 points, **split by
//!   half-year**.
//! - **Fixed sum** (art. 6(1)): "a minimum fixed sum of EUR 40" per late payment (per invoice).
//!
//! The Directive binds Member States, not parties: use this law for a country whose
//! transposition matches the minimum, or as a neutral baseline.

use std::sync::Arc;

use rust_decimal::Decimal;

use super::EuroLaw;
use crate::rates::{Application, RateTables, Reference, ReferenceSchedule};

/// The Directive's minimum (`law EU`): ECB reference rate + 8 points, split by half-year;
/// 40 EUR per invoice.
pub fn law(tables: Arc<RateTables>) -> EuroLaw {
    EuroLaw {
        name: "EU",
        schedule: ReferenceSchedule::new("EU", tables, Reference::Ecb, Decimal::from(8), Application::PerHalfYear),
    }
}
