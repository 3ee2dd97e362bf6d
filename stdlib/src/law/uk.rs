//! United Kingdom: Late Payment of Commercial Debts (Interest) Act 1998.
//!
//! - **Rate** (s. 6 and the Late Payment of Commercial Debts (Rate of Interest) (No. 3) Order
//!   2002): statutory interest at 8 percentage points over the reference rate, the official
//!   dealing rate of the Bank of England (Bank Rate) in force at close of business on
//!   31 December (for interest that starts to run between 1 January and 30 June) or 30 June
//!   (for interest that starts to run between 1 July and 31 December). The rate so found is
//!   **fixed for the whole debt**: later changes of Bank Rate do not affect it. relance asks
//!   the rate of the half-year in which interest starts (the day after the due date) and
//!   applies it to every day.
//! - **Fixed sum** (s. 5A, inserted by the Late Payment of Commercial Debts Regulations 2002):
//!   £40 for a debt less than £1,000; £70 for £1,000 or more but less than £10,000; £100 for
//!   £10,000 or more — per invoice (each qualifying debt).
//!
//! This is the law of England, Wales, Scotland and Northern Ireland alike; the business-day
//! calendar `UK` is the one of England and Wales.

use std::sync::Arc;

use iso_currency::Currency;
use rust_decimal::Decimal;

use super::{Law, RateSchedule};
use crate::rates::{Application, RateTables, Reference, ReferenceSchedule};

/// UK late-payment law (`law UK`).
#[derive(Debug, Clone)]
pub struct UnitedKingdom {
    schedule: ReferenceSchedule,
}

impl UnitedKingdom {
    /// The law with the given rate tables.
    pub fn new(tables: Arc<RateTables>) -> UnitedKingdom {
        UnitedKingdom {
            schedule: ReferenceSchedule::new("UK", tables, Reference::Boe, Decimal::from(8), Application::FixedAtStart),
        }
    }
}

impl Law for UnitedKingdom {
    fn name(&self) -> &str {
        "UK"
    }
    fn currency(&self) -> Currency {
        Currency::GBP
    }
    /// s. 5A: £40 below £1,000, £70 below £10,000, £100 from £10,000; nothing for a
    /// non-positive amount.
    fn recovery_fee(&self, invoice_amount: Decimal) -> Decimal {
        if invoice_amount <= Decimal::ZERO {
            Decimal::ZERO
        } else if invoice_amount < Decimal::from(1_000) {
            Decimal::from(40)
        } else if invoice_amount < Decimal::from(10_000) {
            Decimal::from(70)
        } else {
            Decimal::from(100)
        }
    }
    fn interest(&self) -> &dyn RateSchedule {
        &self.schedule
    }
}
