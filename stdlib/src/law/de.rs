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

use rust_decimal::Decimal;

use super::EuroLaw;
use crate::rates::{Application, RateTables, Reference, ReferenceSchedule};

/// German late-payment law between businesses (`law DE`): Basiszinssatz + 9 points, split by
/// half-year; 40 EUR per invoice.
pub fn law(tables: Arc<RateTables>) -> EuroLaw {
    EuroLaw {
        name: "DE",
        schedule: ReferenceSchedule::new("DE", tables, Reference::Base, Decimal::from(9), Application::PerHalfYear),
    }
}
