//! France: Code de commerce, articles L441-10 and D441-5.
//!
//! - **Rate** (L441-10 II): "le taux d'intérêt appliqué par la Banque centrale européenne à son
//!   opération de refinancement la plus récente majoré de 10 points de pourcentage. Dans ce
//!   cas, le taux applicable pendant le premier semestre de l'année concernée est le taux en
//!   vigueur au 1er janvier de l'année en question. Pour le second semestre de l'année
//!   concernée, il est le taux en vigueur au 1er juillet de l'année en question." — the ECB MRO
//!   rate in force on 1 January (1 July) plus 10 points for the days of the first (second)
//!   half-year. This is the rate when the contract sets none (parties may agree a rate, not
//!   below three times the legal interest rate).
//! - **Application over time**: by default the interest is **split by half-year**, each day
//!   bearing the rate of its half-year, as the text reads. [`LawOptions::fr_single_rate`]
//!   applies one rate — the one of the half-year in which interest starts — to the whole debt.
//! - **Fixed sum** (L441-10 II and D441-5): "indemnité forfaitaire pour frais de recouvrement"
//!   of 40 EUR per invoice paid late.
//! - **Payment terms cap** (L441-10 I): 60 days from the invoice date, or by agreement 45 days
//!   end of month; see [`crate::terms::Terms::exceeds_fr_cap`].

use std::sync::Arc;

use rust_decimal::Decimal;

use super::{EuroLaw, LawOptions};
use crate::rates::{Application, RateTables, Reference, ReferenceSchedule};

/// French late-payment law (`law FR`): ECB rate + 10 points, split by half-year unless
/// `options.fr_single_rate`; 40 EUR per invoice.
pub fn law(tables: Arc<RateTables>, options: LawOptions) -> EuroLaw {
    let application = if options.fr_single_rate { Application::FixedAtStart } else { Application::PerHalfYear };
    EuroLaw {
        name: "FR",
        schedule: ReferenceSchedule::new("FR", tables, Reference::Ecb, Decimal::from(10), application),
    }
}
