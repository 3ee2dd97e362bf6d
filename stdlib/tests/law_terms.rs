//! Payment terms: due dates, month ends, February, leap years, both end-of-month readings,
//! and the French cap.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::NaiveDate;
use proptest::prelude::*;
use relance_stdlib::terms::{EomReading, Terms, due_date_from_terms, end_of_month_of};

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

const DAYS_THEN_EOM: EomReading = EomReading::DaysThenEndOfMonth;
const EOM_THEN_DAYS: EomReading = EomReading::EndOfMonthThenDays;

/// Worked example (DGCCRF note on payment terms, "45 jours fin de mois"): an invoice of
/// 2 January 2014 is due on 28 February 2014 (+45 days = 16 February, then end of month) or on
/// 17 March 2014 (end of January, then +45 days).
#[test]
fn forty_five_days_end_of_month_worked_example() {
    let issue = d(2014, 1, 2);
    assert_eq!(due_date_from_terms("45 jours fin de mois", issue, DAYS_THEN_EOM), Ok(d(2014, 2, 28)));
    assert_eq!(due_date_from_terms("45 jours fin de mois", issue, EOM_THEN_DAYS), Ok(d(2014, 3, 17)));
    assert_eq!(due_date_from_terms("45 days end of month", issue, EomReading::default()), Ok(d(2014, 2, 28)));
    assert_eq!(EomReading::default(), DAYS_THEN_EOM);
}

#[test]
fn net_terms() {
    assert_eq!(due_date_from_terms("30 days net", d(2026, 1, 31), DAYS_THEN_EOM), Ok(d(2026, 3, 2)));
    assert_eq!(due_date_from_terms("30 jours net", d(2024, 1, 31), DAYS_THEN_EOM), Ok(d(2024, 3, 1)));
    assert_eq!(due_date_from_terms("60 days", d(2025, 12, 15), DAYS_THEN_EOM), Ok(d(2026, 2, 13)));
    assert_eq!(due_date_from_terms("0 days", d(2025, 12, 15), DAYS_THEN_EOM), Ok(d(2025, 12, 15)));
    // Net terms do not depend on the reading.
    assert_eq!(due_date_from_terms("60 days", d(2025, 12, 15), EOM_THEN_DAYS), Ok(d(2026, 2, 13)));
}

#[test]
fn end_of_month_in_february_and_leap_years() {
    // +30 days then end of month: 30 January 2024 + 30 = 29 February 2024 (leap), end of month 29 Feb.
    assert_eq!(due_date_from_terms("30 days end of month", d(2024, 1, 30), DAYS_THEN_EOM), Ok(d(2024, 2, 29)));
    assert_eq!(due_date_from_terms("30 days end of month", d(2023, 1, 30), DAYS_THEN_EOM), Ok(d(2023, 3, 31)));
    // End of month then +30: end of February 2024 (29th) + 30 = 30 March; 2023: 28 Feb + 30 = 30 March.
    assert_eq!(due_date_from_terms("30 days end of month", d(2024, 2, 10), EOM_THEN_DAYS), Ok(d(2024, 3, 30)));
    assert_eq!(due_date_from_terms("30 days end of month", d(2023, 2, 10), EOM_THEN_DAYS), Ok(d(2023, 3, 30)));
    // End of December crosses the year.
    assert_eq!(due_date_from_terms("45 jours fin de mois", d(2025, 12, 20), DAYS_THEN_EOM), Ok(d(2026, 2, 28)));
    assert_eq!(due_date_from_terms("45 jours fin de mois", d(2025, 12, 20), EOM_THEN_DAYS), Ok(d(2026, 2, 14)));
    // 1900 is not a leap year, 2000 is.
    assert_eq!(end_of_month_of(d(1900, 2, 1)), d(1900, 2, 28));
    assert_eq!(end_of_month_of(d(2000, 2, 1)), d(2000, 2, 29));
}

#[test]
fn end_of_month_then_a_day() {
    // "fin de mois le 10" and "fin de mois + 10": the 10th of the following month.
    for text in ["fin de mois le 10", "fin de mois + 10", "end of month + 10", "END OF MONTH  +10"] {
        assert_eq!(due_date_from_terms(text, d(2026, 1, 31), DAYS_THEN_EOM), Ok(d(2026, 2, 10)), "{text}");
        assert_eq!(due_date_from_terms(text, d(2026, 12, 1), EOM_THEN_DAYS), Ok(d(2027, 1, 10)), "{text}");
    }
    // "le 30" in a February: the month's last day.
    assert_eq!(due_date_from_terms("fin de mois le 30", d(2024, 1, 15), DAYS_THEN_EOM), Ok(d(2024, 2, 29)));
    assert_eq!(due_date_from_terms("fin de mois le 30", d(2025, 1, 15), DAYS_THEN_EOM), Ok(d(2025, 2, 28)));
    // "fin de mois" alone: the last day of the issue month.
    assert_eq!(due_date_from_terms("fin de mois", d(2025, 4, 3), DAYS_THEN_EOM), Ok(d(2025, 4, 30)));
}

/// Code de commerce L441-10 I: at most 60 days from the invoice date, or 45 days end of month.
#[test]
fn french_cap_warning() {
    let issue = d(2014, 1, 2);
    assert_eq!(Terms::parse("60 days").unwrap().exceeds_fr_cap(issue, DAYS_THEN_EOM), None);
    assert_eq!(Terms::parse("45 jours fin de mois").unwrap().exceeds_fr_cap(issue, DAYS_THEN_EOM), None);
    assert_eq!(Terms::parse("45 jours fin de mois").unwrap().exceeds_fr_cap(issue, EOM_THEN_DAYS), None);
    // 61 days net: beyond 60 days (3 March) and beyond 45 days end of month (28 February).
    let w = Terms::parse("61 days net").unwrap().exceeds_fr_cap(issue, DAYS_THEN_EOM).unwrap();
    assert_eq!(
        w,
        "payment terms `61 days net` put the due date of an invoice issued on 2014-01-02 on 2014-03-04, beyond the French legal cap (Code de commerce L441-10: 60 days from the invoice date, 2014-03-03, or 45 days end of month, 2014-02-28)"
    );
    // With the other reading, 45 days end of month reaches 17 March: 61 days is within it.
    assert_eq!(Terms::parse("61 days net").unwrap().exceeds_fr_cap(issue, EOM_THEN_DAYS), None);
    assert!(Terms::parse("60 jours fin de mois").unwrap().exceeds_fr_cap(issue, DAYS_THEN_EOM).is_some());
    assert!(Terms::parse("90 days").unwrap().exceeds_fr_cap(d(2026, 3, 1), EOM_THEN_DAYS).is_some());
    assert_eq!(Terms::parse("fin de mois + 10").unwrap().exceeds_fr_cap(issue, DAYS_THEN_EOM), None);
    // Just beyond the bounds of `may_exceed_fr_cap`, some issue date exceeds the cap.
    let year = |t: Terms| {
        (0..366).map(|k| d(2025, 1, 1) + chrono::Days::new(k)).any(|i| t.exceeds_fr_cap(i, DAYS_THEN_EOM).is_some())
    };
    for t in [Terms::Net { days: 61 }, Terms::DaysEndOfMonth { days: 46 }, Terms::EndOfMonthPlus { days: 31 }] {
        assert!(t.may_exceed_fr_cap() && year(t), "{t}");
    }
    for t in [
        Terms::Net { days: 60 },
        Terms::DaysEndOfMonth { days: 45 },
        Terms::EndOfMonthPlus { days: 30 },
        Terms::EndOfMonthOnDay { day: 31 },
    ] {
        assert!(!t.may_exceed_fr_cap(), "{t}");
    }
}

#[test]
fn unreadable_terms_are_errors() {
    let err = due_date_from_terms("payable à réception", d(2026, 1, 1), DAYS_THEN_EOM).unwrap_err();
    assert_eq!(err.to_string(), "cannot read the payment terms `payable à réception`");
    let help = miette::Diagnostic::help(&err).unwrap().to_string();
    assert!(help.contains("45 days end of month"));
}

proptest! {
    /// Terms said unable to exceed the French cap never do, whatever the issue date and the
    /// reading; and the first terms beyond each bound do exceed it on some issue date.
    #[test]
    fn terms_that_cannot_exceed_the_fr_cap_never_do(n in 0u32..120, kind in 0usize..4, offset in 0u64..(365 * 200)) {
        let issue = d(1950, 1, 1).checked_add_days(chrono::Days::new(offset)).unwrap();
        let terms = match kind {
            0 => Terms::Net { days: n },
            1 => Terms::DaysEndOfMonth { days: n },
            2 => Terms::EndOfMonthPlus { days: n },
            _ => Terms::EndOfMonthOnDay { day: n % 31 + 1 },
        };
        if !terms.may_exceed_fr_cap() {
            prop_assert_eq!(terms.exceeds_fr_cap(issue, DAYS_THEN_EOM), None);
            prop_assert_eq!(terms.exceeds_fr_cap(issue, EOM_THEN_DAYS), None);
        }
    }

    /// Every reading gives a date on or after the issue date; "N days end of month" always
    /// lands on a month end with the default reading, and both readings are within a month of
    /// each other.
    #[test]
    fn readings_are_consistent(days in 0u32..400, offset in 0u64..(365 * 200)) {
        let issue = d(1950, 1, 1).checked_add_days(chrono::Days::new(offset)).unwrap();
        let terms = Terms::DaysEndOfMonth { days };
        let a = terms.due_date(issue, DAYS_THEN_EOM);
        let b = terms.due_date(issue, EOM_THEN_DAYS);
        prop_assert!(a >= issue && b >= issue);
        prop_assert_eq!(a, end_of_month_of(a));
        prop_assert!((a - b).num_days().abs() <= 31);
        let net = Terms::Net { days }.due_date(issue, DAYS_THEN_EOM);
        prop_assert_eq!((net - issue).num_days(), i64::from(days));
        prop_assert!(a >= net);
    }
}

/// Code de commerce L441-10 I: 60 days from the invoice date (or 45 days end of month).
#[test]
fn portfolio_invoices_beyond_the_fr_cap_get_a_warning() {
    use relance_engine::model::{Invoice, Portfolio};
    let issue = chrono::NaiveDate::from_ymd_opt(2026, 1, 15).unwrap();
    let mk = |id: &str, terms: &str| {
        let mut i = Invoice::new(id, "C1", issue, rust_decimal::Decimal::ONE, iso_currency::Currency::EUR);
        i.issue_date = Some(issue);
        i.extra.insert("terms", terms);
        i
    };
    let p = Portfolio {
        invoices: vec![
            mk("OK", "60 days"),
            mk("LONG", "90 days net"),
            mk("EOM", "45 jours fin de mois"),
            mk("BAD", "whenever"),
        ],
        ..Portfolio::default()
    };
    let w = relance_stdlib::terms::fr_cap_warnings(&p, relance_stdlib::terms::EomReading::default());
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("invoice `LONG`: payment terms `90 days net`"), "{}", w[0]);
}
