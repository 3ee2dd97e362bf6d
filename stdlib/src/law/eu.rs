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

use iso_currency::Currency;
use rust_decimal::Decimal;

use super::{Law, RateSchedule};
use crate::rates::{Application, RateTables, Reference, ReferenceSchedule};

/// The Directive's minimum (`law EU`).
#[derive(Debug, Clone)]
pub struct EuDirective {
    schedule: ReferenceSchedule,
}

impl EuDirective {
    /// The law with the given rate tables.
    pub fn new(tables: Arc<RateTables>) -> EuDirective {
        EuDirective {
            schedule: ReferenceSchedule::new("EU", tables, Reference::Ecb, Decimal::from(8), Application::PerHalfYear),
        }
    }
}

impl Law for EuDirective {
    fn name(&self) -> &str {
        "EU"
    }
    fn currency(&self) -> Currency {
        Currency::EUR
    }
    fn recovery_fee(&self, invoice_amount: Decimal) -> Decimal {
        super::forty_euros(invoice_amount)
    }
    fn interest(&self) -> &dyn RateSchedule {
        &self.schedule
    }
}
