//! The engine's view of business-day calendars. Implementations (FR, UK, DE, …) live in
//! `relance-stdlib`; the engine only asks whether a day is a business day.

use chrono::{Datelike, Days, NaiveDate, Weekday};

/// A business-day calendar.
pub trait Calendar: Send + Sync + std::fmt::Debug {
    /// The name used in scenario files (`FR`, `FR-ALSACE`, `none`).
    fn name(&self) -> &str;
    /// True when `date` is a working day.
    fn is_business_day(&self, date: NaiveDate) -> bool;
}

/// `date` itself when it is a business day, else the next business day.
pub fn next_business_day(calendar: &dyn Calendar, date: NaiveDate) -> NaiveDate {
    let mut d = date;
    // A calendar with no business day at all would loop: bound the search to ten years.
    for _ in 0..3660 {
        if calendar.is_business_day(d) {
            return d;
        }
        match d.checked_add_days(Days::new(1)) {
            Some(n) => d = n,
            None => return d,
        }
    }
    date
}

/// `date` moved by `n` business days (n may be negative; `0` gives `date` itself).
pub fn add_business_days(calendar: &dyn Calendar, date: NaiveDate, n: i32) -> NaiveDate {
    let mut d = date;
    let mut left = n.unsigned_abs();
    let forward = n >= 0;
    let mut guard = 0u32;
    while left > 0 && guard < 100_000 {
        guard += 1;
        let next = if forward { d.succ_opt() } else { d.pred_opt() };
        match next {
            Some(n) => d = n,
            None => return d,
        }
        if calendar.is_business_day(d) {
            left -= 1;
        }
    }
    d
}

/// Every day is a business day (`calendar none`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCalendar;

impl Calendar for NoCalendar {
    fn name(&self) -> &str {
        "none"
    }
    fn is_business_day(&self, _date: NaiveDate) -> bool {
        true
    }
}

/// Monday to Friday, no holidays. Useful in tests and as a base for real calendars.
#[derive(Debug, Clone, Copy, Default)]
pub struct WeekendsOnly;

impl Calendar for WeekendsOnly {
    fn name(&self) -> &str {
        "weekends"
    }
    fn is_business_day(&self, date: NaiveDate) -> bool {
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
    }
}
