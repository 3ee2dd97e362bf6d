//! relance batteries.
//!
//! - [`law`]: late-payment laws (FR, EU, UK, DE): fixed recovery fees and statutory interest.
//! - [`rates`]: reference-rate tables (ECB, BoE, Bundesbank) and their CSV override format.
//! - [`calendar`]: business-day calendars (FR, FR-ALSACE, UK, DE, none) and closing days.
//! - [`terms`]: payment terms and due dates.

pub mod calendar;
pub mod law;
pub mod rates;
pub mod terms;
