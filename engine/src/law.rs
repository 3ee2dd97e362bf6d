//! The engine's view of late-payment law: fixed recovery fees and interest rates over time.
//! Implementations (FR, EU, UK, DE, and reference rates such as ECB) live in `relance-stdlib`.

use chrono::NaiveDate;
use iso_currency::Currency;
use rust_decimal::Decimal;
use serde::Serialize;

/// An annual interest rate in percent, constant over `from..=to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RatePeriod {
    /// First day (inclusive).
    pub from: NaiveDate,
    /// Last day (inclusive).
    pub to: NaiveDate,
    /// Annual rate in percent (`12.15` means 12.15 % a year).
    pub percent: Decimal,
    /// Set when the rate was not known for this period and the last known one was reused
    /// (`rates assume unchanged`): a warning for every action it touches.
    pub assumed: Option<String>,
}

/// Why a rate could not be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum RateError {
    /// The table stops before the date asked.
    #[error("no `{table}` rate is known for {date}: the table covers {covered}")]
    #[diagnostic(
        code(relance::rate::unknown),
        help(
            "add the rate in force on that date to a rate override file and pass it with `--rates FILE` (format in the README, section rates), or write `rates assume unchanged` in settings to reuse the last known rate with a warning"
        )
    )]
    Unknown {
        /// The table's name (`ECB`).
        table: String,
        /// The date asked.
        date: NaiveDate,
        /// What the table covers, as text.
        covered: String,
    },
}

/// A schedule of annual rates over time (a reference rate such as ECB, or a law's rate).
pub trait RateSchedule: Send + Sync + std::fmt::Debug {
    /// The name used in scenario files (`ECB`).
    fn name(&self) -> &str;
    /// The rates covering `first..=last` for a debt whose interest starts on `first`, in
    /// order and without gaps. `assume_unchanged` allows reusing the last known rate.
    fn periods(&self, first: NaiveDate, last: NaiveDate, assume_unchanged: bool) -> Result<Vec<RatePeriod>, RateError>;
}

/// A late-payment law (`law FR` in settings).
pub trait Law: Send + Sync + std::fmt::Debug {
    /// The name used in scenario files (`FR`, `EU`, `UK`, `DE`).
    fn name(&self) -> &str;
    /// The currency of the law's fixed sums.
    fn currency(&self) -> Currency;
    /// The fixed recovery compensation owed for one invoice of `invoice_amount`
    /// (in the law's currency).
    fn recovery_fee(&self, invoice_amount: Decimal) -> Decimal;
    /// The statutory interest rates (reference + margin), see [`RateSchedule::periods`].
    fn interest(&self) -> &dyn RateSchedule;
}

/// A constant rate, for `with interest 8% per year`.
#[derive(Debug, Clone)]
pub struct FixedRate {
    /// Annual rate in percent.
    pub percent: Decimal,
}

impl RateSchedule for FixedRate {
    fn name(&self) -> &str {
        "fixed"
    }
    fn periods(&self, first: NaiveDate, last: NaiveDate, _: bool) -> Result<Vec<RatePeriod>, RateError> {
        Ok(vec![RatePeriod { from: first, to: last, percent: self.percent, assumed: None }])
    }
}
