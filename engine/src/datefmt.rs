//! Fast `YYYY-MM-DD` formatting of dates. Plans print millions of dates (reasons, JSON
//! fields); chrono's general-purpose formatter was ~12 % of `relance plan` at 10^6 invoices.
//! The output is the same as chrono's for every date.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::Serializer;

use crate::json::two_digits;

/// A date that displays as `YYYY-MM-DD`, exactly as [`NaiveDate`]'s `Display`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ymd(pub NaiveDate);

/// `-MM-DD` for each day of the year, as the little-endian integer of its six bytes: days 1
/// to 366 of a common year (the 366th unused), then of a leap year.
const MONTH_DAY: [u64; 732] = {
    let mut t = [0u64; 732];
    let mut leap = 0;
    while leap < 2 {
        let lengths = [31, 28 + leap, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let mut i = leap * 366;
        let mut m = 0;
        while m < 12 {
            let mut d = 1;
            while d <= lengths[m] {
                let month = m + 1;
                let bytes = [
                    b'-',
                    b'0' + (month / 10) as u8,
                    b'0' + (month % 10) as u8,
                    b'-',
                    b'0' + (d / 10) as u8,
                    b'0' + (d % 10) as u8,
                    0,
                    0,
                ];
                t[i] = u64::from_le_bytes(bytes);
                i += 1;
                d += 1;
            }
            m += 1;
        }
        leap += 1;
    }
    t
};

impl Ymd {
    /// The ten bytes `YYYY-MM-DD`, for years 0 to 9999 (`None` for others: chrono's own
    /// format then). Made in two integers (bytes 0–7 and 8–9) rather than byte by byte, so
    /// that the copy that follows reads them back as they were written.
    #[inline]
    pub(crate) fn ascii(self) -> Option<[u8; 10]> {
        let y = self.0.year();
        if !(0..=9999).contains(&y) {
            return None;
        }
        let y = y as u32;
        // The day of the year (from 1) and chrono's leap-year flag read the date's bits.
        let day = self.0.ordinal() as usize - 1 + if self.0.leap_year() { 366 } else { 0 };
        let month_day = *MONTH_DAY.get(day)?;
        let year = u32::from(u16::from_le_bytes(two_digits(y / 100)))
            | u32::from(u16::from_le_bytes(two_digits(y % 100))) << 16;
        let head = u64::from(year) | month_day << 32;
        let tail = (month_day >> 32) as u16;
        let mut b = [0u8; 10];
        b[..8].copy_from_slice(&head.to_le_bytes());
        b[8..].copy_from_slice(&tail.to_le_bytes());
        Some(b)
    }
}

impl fmt::Display for Ymd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ascii() {
            // The bytes are ASCII digits and dashes.
            Some(b) => f.write_str(std::str::from_utf8(&b).map_err(|_| fmt::Error)?),
            None => write!(f, "{}", self.0),
        }
    }
}

/// `serialize_with` for a date field: the same JSON string as chrono's serde support.
pub(crate) fn ser_date<S: Serializer>(date: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&Ymd(*date))
}

/// `serialize_with` for an optional date field (`null` when absent).
pub(crate) fn ser_opt_date<S: Serializer>(date: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
    match date {
        Some(d) => s.collect_str(&Ymd(*d)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn same_text_as_chrono(days in -1_000_000i32..4_000_000) {
            let d = NaiveDate::from_num_days_from_ce_opt(days).unwrap();
            prop_assert_eq!(Ymd(d).to_string(), d.to_string());
            prop_assert_eq!(serde_json::to_string(&SerDate(d)).unwrap(), serde_json::to_string(&d).unwrap());
            // The JSON writers' path (written in place; other years through chrono).
            let mut out = Vec::new();
            crate::json::JsonText(&mut out).quoted_date(d);
            prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&d).unwrap());
        }
    }

    #[derive(serde::Serialize)]
    struct SerDate(#[serde(serialize_with = "ser_date")] NaiveDate);
}
