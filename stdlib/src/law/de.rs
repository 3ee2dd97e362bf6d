//! Germany: Bürgerliches Gesetzbuch (BGB) §288, with §247 for the base rate.
//!
//! - **Rate** (§288 Abs. 2): "Bei Rechtsgeschäften, an denen ein Verbraucher nicht beteiligt
//!   ist, beträgt der Zinssatz für Entgeltforderungen neun Prozentpunkte über dem
//!   Basiszinssatz." The Basiszinssatz (§247) changes on 1 January and 1 July of each year and
//!   is published by the Deutsche Bundesbank; the interest is therefore **split by half-year**,
//!   each day at the Basiszinssatz of its half-year + 9 points.
//! - **Fixed sum** (§288 Abs. 5): "eine Pauschale in Höhe von 40 Euro" when the debtor is not a
//!   consumer, per claim (per invoice).
//!
//! Consumer debts (§288 Abs. 1: 5 points) are not covered: relance handles B2B dunning.

use std::sync::Arc;

use iso_currency::Currency;
use rust_decimal::Decimal;

use super::{Law, RateSchedule};
use crate::rates::{Application, RateTables, Reference, ReferenceSchedule};

/// German late-payment law between businesses (`law DE`).
#[derive(Debug, Clone)]
pub struct Germany {
    schedule: ReferenceSchedule,
}

impl Germany {
    /// The law with the given rate tables.
    pub fn new(tables: Arc<RateTables>) -> Germany {
        Germany {
            schedule: ReferenceSchedule::new("DE", tables, Reference::Base, Decimal::from(9), Application::PerHalfYear),
        }
    }
}

impl Law for Germany {
    fn name(&self) -> &str {
        "DE"
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
