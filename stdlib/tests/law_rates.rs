//! Laws and rates: statutory rates per half-year, interest worked examples, fixed sums,
//! unknown rates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::str::FromStr;
use std::sync::Arc;

use chrono::NaiveDate;
use iso_currency::Currency;
use relance_engine::money::{round, simple_interest};
use relance_stdlib::law::{self, Law, LawOptions};
use relance_stdlib::rates::{self, HalfYear, RateError, RateTables};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::Value;

/// The project's legal rate facts (a copy of `shared/data/legal/rates.json`: Banque de France
/// and ECB tables, arrêtés in the Journal officiel, Bank of England, Bundesbank).
const RATES_JSON: &str = include_str!("law_data/rates.json");

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn tables() -> Arc<RateTables> {
    Arc::new(RateTables::builtin())
}

fn get(name: &str) -> Arc<dyn Law> {
    law::by_name(name, tables(), LawOptions::default()).unwrap()
}

fn dec_of(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap()).unwrap()
}

/// The single rate a schedule gives for the whole of `half`.
fn rate_of(schedule: &dyn rates::RateSchedule, half: HalfYear) -> Decimal {
    let p = schedule.periods(half.start(), half.end(), false).unwrap();
    assert_eq!(p.len(), 1, "{half}: {p:?}");
    assert_eq!((p[0].from, p[0].to), (half.start(), half.end()));
    assert_eq!(p[0].assumed, None);
    p[0].percent
}

fn facts() -> Value {
    serde_json::from_str(RATES_JSON).unwrap()
}

/// Source: rates.json `france_per_half_year` (Banque de France, "taux de l'intérêt légal" and
/// "taux de refinancement de la BCE" notices, 2020H1–2026H1).
#[test]
fn fr_and_eu_rates_per_half_year_match_the_published_values() {
    let t = tables();
    let fr = get("FR");
    let eu = get("EU");
    let ecb = rates::reference("ECB", &t).unwrap();
    let mut checked = 0;
    for row in facts()["france_per_half_year"].as_array().unwrap() {
        let half = HalfYear::parse(row["period"].as_str().unwrap()).unwrap();
        if row["fr_b2b_default_rate"].is_null() {
            // 2026H2 is not confirmed: the laws refuse to guess.
            assert_eq!(half.to_string(), "2026H2");
            assert!(fr.interest().periods(half.start(), half.end(), false).is_err());
            continue;
        }
        assert_eq!(rate_of(fr.interest(), half), dec_of(&row["fr_b2b_default_rate"]), "FR {half}");
        assert_eq!(rate_of(eu.interest(), half), dec_of(&row["eu_directive_min_rate"]), "EU {half}");
        assert_eq!(rate_of(ecb.as_ref(), half), dec_of(&row["ecb_mro_ref"]), "ECB {half}");
        checked += 1;
    }
    assert_eq!(checked, 13, "2020H1..2026H1");
}

/// Source: rates.json `uk_per_half_year` (Bank of England Bank Rate on 31 December / 30 June,
/// statutory rate = reference + 8, 2020H1–2026H1).
#[test]
fn uk_rates_per_half_year_match_the_published_values() {
    let uk = get("UK");
    let mut checked = 0;
    for row in facts()["uk_per_half_year"].as_array().unwrap() {
        let half = HalfYear::parse(row["period"].as_str().unwrap()).unwrap();
        if row.get("statutory_rate").is_none() {
            assert_eq!(half.to_string(), "2026H2");
            assert!(uk.interest().periods(half.start(), half.end(), false).is_err());
            continue;
        }
        assert_eq!(rate_of(uk.interest(), half), dec_of(&row["statutory_rate"]), "UK {half}");
        checked += 1;
    }
    assert_eq!(checked, 13);
}

/// Source: rates.json `germany_per_half_year` (Bundesbank Basiszinssatz, B2B rate = + 9).
#[test]
fn de_rates_per_half_year_match_the_published_values() {
    let de = get("DE");
    let base = rates::reference("BASE", &tables()).unwrap();
    let rows = facts()["germany_per_half_year"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 7);
    for row in rows {
        let half = HalfYear::parse(row["period"].as_str().unwrap()).unwrap();
        assert_eq!(rate_of(de.interest(), half), dec_of(&row["b2b_rate"]), "DE {half}");
        assert_eq!(rate_of(base.as_ref(), half), dec_of(&row["basiszinssatz"]), "BASE {half}");
    }
    // Before 2023 (Bundesbank table): 2014H2 -0.73 → 8.27; 2017H1..2022H2 -0.88 → 8.12.
    assert_eq!(rate_of(de.interest(), HalfYear { year: 2014, second: true }), dec!(8.27));
    assert_eq!(rate_of(de.interest(), HalfYear { year: 2019, second: false }), dec!(8.12));
}

/// The built-in ECB and BoE change tables agree with rates.json's lists of changes.
#[test]
fn builtin_change_tables_contain_the_facts() {
    let t = tables();
    let f = facts();
    for row in f["ecb_mro_changes"].as_array().unwrap() {
        let date = NaiveDate::parse_from_str(row["effective"].as_str().unwrap(), "%Y-%m-%d").unwrap();
        assert_eq!(t.ecb().rate_on(date), Some(dec_of(&row["mro"])), "ECB {date}");
    }
    for row in f["boe_bank_rate_changes"].as_array().unwrap() {
        let date = NaiveDate::parse_from_str(row["effective"].as_str().unwrap(), "%Y-%m-%d").unwrap();
        assert_eq!(t.boe().rate_on(date), Some(dec_of(&row["rate"])), "BOE {date}");
        assert_ne!(t.boe().rate_on(date.pred_opt().unwrap()), Some(dec_of(&row["rate"])), "a change on {date}");
    }
    // Pre-2020 BoE (Bank of England Bank Rate history).
    assert_eq!(t.boe().rate_on(d(2009, 3, 5)), Some(dec!(0.50)));
    assert_eq!(t.boe().rate_on(d(2016, 8, 4)), Some(dec!(0.25)));
    assert_eq!(t.boe().rate_on(d(2017, 11, 2)), Some(dec!(0.50)));
    assert_eq!(t.boe().rate_on(d(2018, 8, 2)), Some(dec!(0.75)));
}

/// FR, interest across a half-year boundary (Code de commerce L441-10: 1 January rate for the
/// first half-year, 1 July rate for the second). Hand-computed:
/// 10,000.00 EUR due 2023-06-15, unpaid on 2023-07-10. Interest runs 2023-06-16..=2023-07-10.
/// - 2023H1 rate 2.50 + 10 = 12.50 %, 16–30 June = 15 days
/// - 2023H2 rate 4.00 + 10 = 14.00 %, 1–10 July = 10 days
///
/// 10000 × (12.50 × 15 + 14.00 × 10) / 36500 = 10000 × 327.5 / 36500 = 89.7260… → 89.73 EUR.
/// With the single-rate option: 10000 × 12.50 × 25 / 36500 = 85.6164… → 85.62 EUR.
#[test]
fn fr_interest_is_split_at_the_half_year_boundary() {
    let fr = get("FR");
    let (first, last) = (d(2023, 6, 16), d(2023, 7, 10));
    let periods = fr.interest().periods(first, last, false).unwrap();
    assert_eq!(periods.len(), 2);
    assert_eq!((periods[0].from, periods[0].to, periods[0].percent), (first, d(2023, 6, 30), dec!(12.50)));
    assert_eq!((periods[1].from, periods[1].to, periods[1].percent), (d(2023, 7, 1), last, dec!(14.00)));
    let balance = [(d(2023, 6, 15), dec!(10000.00))];
    let interest = round(simple_interest(first, last, &balance, &periods), fr.currency());
    assert_eq!(interest, dec!(89.73));

    let single = law::by_name("FR", tables(), LawOptions { fr_single_rate: true }).unwrap();
    let periods = single.interest().periods(first, last, false).unwrap();
    assert_eq!(periods.len(), 1);
    assert_eq!((periods[0].from, periods[0].to, periods[0].percent), (first, last, dec!(12.50)));
    assert_eq!(round(simple_interest(first, last, &balance, &periods), Currency::EUR), dec!(85.62));
}

/// Leap year: actual/365 even in 2024 (SPEC 3 rule 6), so a full year 2024 bears 366/365 of a
/// year's interest. Hand-computed, FR, 1,000.00 EUR over 2024-01-01..=2024-12-31:
/// 2024H1 14.50 % × 182 days + 2024H2 14.25 % × 184 days = 2639 + 2622 = 5261;
/// 1000 × 5261 / 36500 = 144.1369… → 144.14 EUR (a 365-day year would give 143.75).
#[test]
fn leap_year_is_actual_over_365() {
    let fr = get("FR");
    let (first, last) = (d(2024, 1, 1), d(2024, 12, 31));
    let periods = fr.interest().periods(first, last, false).unwrap();
    let balance = [(first, dec!(1000.00))];
    assert_eq!(round(simple_interest(first, last, &balance, &periods), Currency::EUR), dec!(144.14));
    // 28 Feb – 1 Mar 2024 is three days, 29 February included: 1000 × 14.50 × 3 / 36500.
    let (first, last) = (d(2024, 2, 28), d(2024, 3, 1));
    let periods = fr.interest().periods(first, last, false).unwrap();
    assert_eq!(simple_interest(first, last, &balance, &periods), dec!(1000) * dec!(14.50) * dec!(3) / dec!(36500));
}

/// DE (BGB §288 Abs. 2, Basiszinssatz + 9, changing on 1 July) with a partial payment.
/// Hand-computed: 5,000.00 EUR due 2024-06-20, 2,000.00 paid on 2024-07-05, as of 2024-07-31.
/// - 21–30 June: 10 days × 5000 × 12.62 = 631,000
/// - 1–4 July: 4 days × 5000 × 12.37 = 247,400
/// - 5–31 July: 27 days × 3000 × 12.37 = 1,001,970
///
/// (631,000 + 247,400 + 1,001,970) / 36500 = 1,880,370 / 36500 = 51.5170… → 51.52 EUR.
#[test]
fn de_interest_with_partial_payment_across_the_boundary() {
    let de = get("DE");
    let (first, last) = (d(2024, 6, 21), d(2024, 7, 31));
    let periods = de.interest().periods(first, last, false).unwrap();
    let balance = [(d(2024, 6, 20), dec!(5000.00)), (d(2024, 7, 5), dec!(3000.00))];
    assert_eq!(round(simple_interest(first, last, &balance, &periods), Currency::EUR), dec!(51.52));
}

/// UK: the rate is fixed for the whole debt at the reference date before interest starts
/// (Late Payment of Commercial Debts (Rate of Interest) (No. 3) Order 2002). Interest starting
/// 2022-12-20 uses Bank Rate on 2022-06-30 (1.25) + 8 = 9.25 % for every day, even through 2023
/// when Bank Rate rose to 5.25. Hand-computed: £10,000 from 2022-12-20 to 2023-03-19
/// (90 days): 10000 × 9.25 × 90 / 36500 = 228.0821… → £228.08.
#[test]
fn uk_rate_is_fixed_when_interest_starts() {
    let uk = get("UK");
    let (first, last) = (d(2022, 12, 20), d(2023, 3, 19));
    let periods = uk.interest().periods(first, last, false).unwrap();
    assert_eq!(periods.len(), 1);
    assert_eq!((periods[0].from, periods[0].to, periods[0].percent), (first, last, dec!(9.25)));
    let balance = [(d(2022, 12, 19), dec!(10000.00))];
    assert_eq!(round(simple_interest(first, last, &balance, &periods), uk.currency()), dec!(228.08));
    // Interest starting on 1 January 2023 uses the rate of 31 December 2022: 3.50 + 8.
    let p = uk.interest().periods(d(2023, 1, 1), d(2024, 12, 31), false).unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].percent, dec!(11.50));
    // Interest starting 1 July 2025 uses 30 June 2025: 4.25 + 8, even after the 2025-08-07 cut.
    let p = uk.interest().periods(d(2025, 7, 1), d(2026, 9, 30), false).unwrap();
    assert_eq!(p[0].percent, dec!(12.25));
}

/// UK fixed sums (Late Payment of Commercial Debts (Interest) Act 1998 s. 5A): £40 for a debt
/// less than £1,000, £70 for less than £10,000, £100 from £10,000.
#[test]
fn uk_fixed_sum_thresholds() {
    let uk = get("UK");
    assert_eq!(uk.currency(), Currency::GBP);
    assert_eq!(uk.recovery_fee(dec!(0.01)), dec!(40));
    assert_eq!(uk.recovery_fee(dec!(999.99)), dec!(40));
    assert_eq!(uk.recovery_fee(dec!(1000)), dec!(70));
    assert_eq!(uk.recovery_fee(dec!(1000.00)), dec!(70));
    assert_eq!(uk.recovery_fee(dec!(9999.99)), dec!(70));
    assert_eq!(uk.recovery_fee(dec!(10000)), dec!(100));
    assert_eq!(uk.recovery_fee(dec!(1000000)), dec!(100));
    assert_eq!(uk.recovery_fee(dec!(-50)), dec!(0));
}

/// 40 EUR per invoice: Code de commerce D441-5 (FR), Directive 2011/7/EU art. 6 (EU),
/// BGB §288 Abs. 5 (DE) — whatever the invoice amount.
#[test]
fn forty_euros_per_invoice() {
    for name in ["FR", "EU", "DE"] {
        let l = get(name);
        assert_eq!(l.name(), name);
        assert_eq!(l.currency(), Currency::EUR);
        for amount in [dec!(0.01), dec!(39.99), dec!(1000), dec!(250000)] {
            assert_eq!(l.recovery_fee(amount), dec!(40), "{name} {amount}");
        }
        assert_eq!(l.recovery_fee(dec!(0)), dec!(0), "a zero or credit amount owes no fee");
    }
    assert_eq!(law::names(), &["FR", "EU", "UK", "DE"]);
    for name in law::names() {
        assert_eq!(law::by_name(&name.to_lowercase(), tables(), LawOptions::default()).unwrap().name(), *name);
    }
    assert!(law::by_name("US", tables(), LawOptions::default()).is_none());
}

/// A date past the confirmed tables is an error saying how to add the rate; with
/// `rates assume unchanged`, the last rate is reused and each such period carries a warning.
#[test]
fn unknown_rate_is_an_error_unless_assumed_unchanged() {
    let fr = get("FR");
    let (first, last) = (d(2026, 6, 20), d(2026, 7, 10));
    let err = fr.interest().periods(first, last, false).unwrap_err();
    let RateError::Unknown { table, date, covered } = &err;
    assert_eq!((table.as_str(), *date), ("ECB", d(2026, 7, 1)));
    assert!(covered.contains("2026-06-30"), "{covered}");
    let help = miette::Diagnostic::help(&err).unwrap().to_string();
    assert!(help.contains("add the rate") && help.contains("rates assume unchanged"), "{help}");

    let p = fr.interest().periods(first, last, true).unwrap();
    assert_eq!(p.len(), 2);
    assert_eq!((p[0].percent, p[0].assumed.as_deref()), (dec!(12.15), None));
    assert_eq!(p[1].percent, dec!(12.15));
    let warning = p[1].assumed.as_deref().unwrap();
    assert!(
        warning.contains("2026H2") && warning.contains("assumed unchanged") && warning.contains("2.15%"),
        "{warning}"
    );

    // UK: interest starting in 2026H2 needs Bank Rate on 2026-06-30.
    let uk = get("UK");
    let err = uk.interest().periods(d(2026, 7, 1), d(2026, 8, 1), false).unwrap_err();
    assert!(err.to_string().starts_with("no `BOE` rate is known for 2026-07-01"), "{err}");
    let p = uk.interest().periods(d(2026, 7, 1), d(2026, 8, 1), true).unwrap();
    assert_eq!((p.len(), p[0].percent), (1, dec!(11.75)));
    assert!(p[0].assumed.is_some());
    // ... but a debt whose interest started in 2026H1 keeps its known rate for ever.
    let p = uk.interest().periods(d(2026, 6, 30), d(2027, 3, 1), false).unwrap();
    assert_eq!((p.len(), p[0].percent, p[0].assumed.clone()), (1, dec!(11.75), None));

    // DE: Basiszinssatz 2026H2 not yet in the table.
    let de = get("DE");
    assert!(de.interest().periods(d(2026, 7, 1), d(2026, 7, 2), false).is_err());
    let p = de.interest().periods(d(2026, 7, 1), d(2026, 7, 2), true).unwrap();
    assert_eq!(p[0].percent, dec!(10.27));
    assert!(p[0].assumed.is_some());

    // Before the tables start, assuming does not help: it is always an error.
    assert!(fr.interest().periods(d(2008, 1, 1), d(2008, 1, 2), true).is_err());
}

/// An override file makes a new half-year known; a change before 1 July alone does not
/// confirm the rate on 1 July (no silent guess).
#[test]
fn overrides_make_new_rates_known() {
    let mut t = RateTables::builtin();
    t.apply_overrides("table,effective,percent\nECB,2026-06-17,2.30\n", "update.csv").unwrap();
    let fr = law::by_name("FR", Arc::new(t.clone()), LawOptions::default()).unwrap();
    assert!(fr.interest().periods(d(2026, 7, 1), d(2026, 7, 31), false).is_err());
    t.apply_overrides("table,effective,percent\nECB,2026-07-01,2.30\nBASE,2026H2,1.00\n", "update.csv").unwrap();
    let t = Arc::new(t);
    let fr = law::by_name("FR", Arc::clone(&t), LawOptions::default()).unwrap();
    let p = fr.interest().periods(d(2026, 7, 1), d(2026, 7, 31), false).unwrap();
    assert_eq!((p[0].percent, p[0].assumed.clone()), (dec!(12.30), None));
    let de = law::by_name("DE", t, LawOptions::default()).unwrap();
    assert_eq!(de.interest().periods(d(2026, 7, 1), d(2026, 7, 31), false).unwrap()[0].percent, dec!(10.00));
}

/// Rates exist for every half-year from 2010 to the latest confirmed one, for every law.
#[test]
fn coverage_from_2010_to_2026h1() {
    for name in law::names() {
        let l = get(name);
        let mut half = HalfYear { year: 2010, second: false };
        while half <= (HalfYear { year: 2026, second: false }) {
            let p = l.interest().periods(half.start(), half.end(), false);
            assert!(p.is_ok(), "{name} {half}: {p:?}");
            half = half.next();
        }
    }
}

/// An empty range gives no period; periods are contiguous and cover the range.
#[test]
fn periods_are_contiguous() {
    let fr = get("FR");
    assert!(fr.interest().periods(d(2024, 5, 2), d(2024, 5, 1), false).unwrap().is_empty());
    let p = fr.interest().periods(d(2012, 3, 3), d(2025, 11, 30), false).unwrap();
    assert_eq!(p.first().unwrap().from, d(2012, 3, 3));
    assert_eq!(p.last().unwrap().to, d(2025, 11, 30));
    for w in p.windows(2) {
        assert_eq!(w[0].to.succ_opt().unwrap(), w[1].from);
    }
    assert_eq!(p.len(), 28);
}
