//! Payment terms (`30 days net`, `45 days end of month`).
//!
//! TEMPORARY minimal version written by the loader helper so that `load` compiles on its own
//! branch: it only understands `N days` and `N days net`. It is replaced at merge by the full
//! implementation (same public signatures).

use chrono::{Days, NaiveDate};

/// How `N days end of month` is read (the two readings used in France).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EomReading {
    /// Go to the end of the issue month, then add N days.
    #[default]
    EndOfMonthThenDays,
    /// Add N days, then go to the end of that month.
    DaysThenEndOfMonth,
}

/// Terms that cannot be turned into a due date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TermsError {
    /// The text is not a form of payment terms this module knows.
    #[error("`{0}` is not a known form of payment terms")]
    Unknown(String),
    /// The due date falls outside the calendar.
    #[error("the due date of `{0}` is out of range")]
    OutOfRange(String),
}

/// The due date for `terms` on an invoice issued on `issue`.
pub fn due_date_from_terms(
    terms: &str,
    issue: NaiveDate,
    reading: EomReading,
) -> Result<NaiveDate, TermsError> {
    let _ = reading;
    let t = terms.trim().to_ascii_lowercase();
    let t = t.strip_suffix(" net").unwrap_or(&t);
    let n = t
        .strip_suffix(" days")
        .and_then(|n| n.trim().parse::<u64>().ok())
        .ok_or_else(|| TermsError::Unknown(terms.to_string()))?;
    issue.checked_add_days(Days::new(n)).ok_or_else(|| TermsError::OutOfRange(terms.to_string()))
}
