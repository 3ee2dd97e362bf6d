//! Calendars: Easter and public holidays against published tables.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{Datelike, Days, NaiveDate, Weekday};
use proptest::prelude::*;
use relance_stdlib::calendar::{self, Holidays, Region, add_business_days, easter_sunday, next_business_day};

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Easter Sunday (Gregorian), 2000–2100: the well-known list of Western Easter dates (as
/// published, e.g., in the Astronomical Society of South Australia's Easter date tables).
/// This copy was generated with Gauss's algorithm (with the Lichtenberg corrections) and
/// Knuth's epact algorithm (TAOCP 1.3.2 ex. 14), which agree on every year, and spot-checked
/// by hand against dates known independently (2000-04-23, 2011-04-24, 2024-03-31, 2025-04-20,
/// 2038-04-25 — the latest possible date — and 2100-03-28). The crate computes Easter with a
/// third method (Meeus/Jones/Butcher).
const EASTER_2000_2100: [&str; 101] = [
    "2000-04-23",
    "2001-04-15",
    "2002-03-31",
    "2003-04-20",
    "2004-04-11",
    "2005-03-27",
    "2006-04-16",
    "2007-04-08",
    "2008-03-23",
    "2009-04-12",
    "2010-04-04",
    "2011-04-24",
    "2012-04-08",
    "2013-03-31",
    "2014-04-20",
    "2015-04-05",
    "2016-03-27",
    "2017-04-16",
    "2018-04-01",
    "2019-04-21",
    "2020-04-12",
    "2021-04-04",
    "2022-04-17",
    "2023-04-09",
    "2024-03-31",
    "2025-04-20",
    "2026-04-05",
    "2027-03-28",
    "2028-04-16",
    "2029-04-01",
    "2030-04-21",
    "2031-04-13",
    "2032-03-28",
    "2033-04-17",
    "2034-04-09",
    "2035-03-25",
    "2036-04-13",
    "2037-04-05",
    "2038-04-25",
    "2039-04-10",
    "2040-04-01",
    "2041-04-21",
    "2042-04-06",
    "2043-03-29",
    "2044-04-17",
    "2045-04-09",
    "2046-03-25",
    "2047-04-14",
    "2048-04-05",
    "2049-04-18",
    "2050-04-10",
    "2051-04-02",
    "2052-04-21",
    "2053-04-06",
    "2054-03-29",
    "2055-04-18",
    "2056-04-02",
    "2057-04-22",
    "2058-04-14",
    "2059-03-30",
    "2060-04-18",
    "2061-04-10",
    "2062-03-26",
    "2063-04-15",
    "2064-04-06",
    "2065-03-29",
    "2066-04-11",
    "2067-04-03",
    "2068-04-22",
    "2069-04-14",
    "2070-03-30",
    "2071-04-19",
    "2072-04-10",
    "2073-03-26",
    "2074-04-15",
    "2075-04-07",
    "2076-04-19",
    "2077-04-11",
    "2078-04-03",
    "2079-04-23",
    "2080-04-07",
    "2081-03-30",
    "2082-04-19",
    "2083-04-04",
    "2084-03-26",
    "2085-04-15",
    "2086-03-31",
    "2087-04-20",
    "2088-04-11",
    "2089-04-03",
    "2090-04-16",
    "2091-04-08",
    "2092-03-30",
    "2093-04-12",
    "2094-04-04",
    "2095-04-24",
    "2096-04-15",
    "2097-03-31",
    "2098-04-20",
    "2099-04-12",
    "2100-03-28",
];

/// A second, independent method: Knuth's Algorithm E (Lilius and Clavius epacts).
fn easter_knuth(y: i32) -> NaiveDate {
    let g = y % 19 + 1;
    let c = y / 100 + 1;
    let x = (3 * c) / 4 - 12;
    let z = (8 * c + 5) / 25 - 5;
    let dd = (5 * y) / 4 - x - 10;
    let mut e = (11 * g + 20 + z - x) % 30;
    if (e == 25 && g > 11) || e == 24 {
        e += 1;
    }
    let mut n = 44 - e;
    if n < 21 {
        n += 30;
    }
    n = n + 7 - ((dd + n) % 7);
    if n <= 31 { d(y, 3, n as u32) } else { d(y, 4, (n - 31) as u32) }
}

#[test]
fn easter_matches_the_published_table_and_a_second_method() {
    for (i, s) in EASTER_2000_2100.iter().enumerate() {
        let year = 2000 + i as i32;
        let want = date(s);
        assert_eq!(want.year(), year);
        assert_eq!(want.weekday(), Weekday::Sun, "{s}");
        assert_eq!(easter_sunday(year), Some(want), "Meeus/Jones/Butcher, {year}");
        assert_eq!(easter_knuth(year), want, "Knuth, {year}");
    }
    // The two methods also agree far outside the table.
    for year in 1583..=4099 {
        assert_eq!(easter_sunday(year), Some(easter_knuth(year)), "{year}");
    }
}

fn holidays(region: Region, year: i32) -> Vec<NaiveDate> {
    Holidays::new(region).holidays_in(year).into_iter().map(|(d, _)| d).collect()
}

fn dates(list: &[&str]) -> Vec<NaiveDate> {
    list.iter().map(|s| date(s)).collect()
}

/// Source: service-public.fr "Jours fériés" (Code du travail L3133-1), 2024 and 2026.
#[test]
fn france_public_holidays() {
    assert_eq!(
        holidays(Region::France, 2024),
        dates(&[
            "2024-01-01",
            "2024-04-01",
            "2024-05-01",
            "2024-05-08",
            "2024-05-09",
            "2024-05-20",
            "2024-07-14",
            "2024-08-15",
            "2024-11-01",
            "2024-11-11",
            "2024-12-25",
        ])
    );
    assert_eq!(
        holidays(Region::France, 2026),
        dates(&[
            "2026-01-01",
            "2026-04-06",
            "2026-05-01",
            "2026-05-08",
            "2026-05-14",
            "2026-05-25",
            "2026-07-14",
            "2026-08-15",
            "2026-11-01",
            "2026-11-11",
            "2026-12-25",
        ])
    );
    // Alsace-Moselle (Code du travail L3134-13) adds Good Friday and 26 December.
    assert_eq!(
        holidays(Region::FranceAlsace, 2026),
        dates(&[
            "2026-01-01",
            "2026-04-03",
            "2026-04-06",
            "2026-05-01",
            "2026-05-08",
            "2026-05-14",
            "2026-05-25",
            "2026-07-14",
            "2026-08-15",
            "2026-11-01",
            "2026-11-11",
            "2026-12-25",
            "2026-12-26",
        ])
    );
    let fr = calendar::by_name("FR").unwrap();
    let alsace = calendar::by_name("FR-ALSACE").unwrap();
    assert!(fr.is_business_day(d(2026, 4, 3)), "Good Friday is worked in France");
    assert!(!alsace.is_business_day(d(2026, 4, 3)));
    assert!(!fr.is_business_day(d(2026, 5, 14)), "Ascension");
    assert!(fr.is_business_day(d(2026, 5, 15)));
}

/// The moving feasts follow Easter in every year of the table, for every calendar.
#[test]
fn moving_feasts_follow_easter_2000_2100() {
    let fr = calendar::by_name("FR").unwrap();
    let alsace = calendar::by_name("FR-ALSACE").unwrap();
    let uk = calendar::by_name("UK").unwrap();
    let de = calendar::by_name("DE").unwrap();
    for s in EASTER_2000_2100 {
        let easter = date(s);
        let plus = |n: i64| {
            if n >= 0 {
                easter.checked_add_days(Days::new(n as u64)).unwrap()
            } else {
                easter.checked_sub_days(Days::new((-n) as u64)).unwrap()
            }
        };
        let (good_friday, easter_monday, ascension, whit_monday) = (plus(-2), plus(1), plus(39), plus(50));
        assert_eq!(ascension.weekday(), Weekday::Thu);
        assert_eq!(whit_monday.weekday(), Weekday::Mon);
        for cal in [&fr, &alsace, &uk, &de] {
            assert!(!cal.is_business_day(easter_monday), "{} {easter_monday}", cal.name());
        }
        for cal in [&fr, &alsace, &de] {
            assert!(!cal.is_business_day(ascension), "{} {ascension}", cal.name());
            assert!(!cal.is_business_day(whit_monday), "{} {whit_monday}", cal.name());
        }
        assert!(fr.is_business_day(good_friday), "{good_friday}");
        for cal in [&alsace, &uk, &de] {
            assert!(!cal.is_business_day(good_friday), "{} {good_friday}", cal.name());
        }
        // UK keeps Ascension and Whit Monday as working days (unless a bank holiday falls then).
        let uk_year = Holidays::new(Region::EnglandWales).holidays_in(easter.year());
        assert!(!uk_year.iter().any(|(d, _)| *d == ascension));
        let year = easter.year();
        assert_eq!(holidays(Region::France, year).len(), 11);
        assert_eq!(holidays(Region::FranceAlsace, year).len(), 13);
        assert_eq!(holidays(Region::Germany, year).len(), if year == 2017 { 10 } else { 9 });
    }
}

/// Source: gov.uk "UK bank holidays" (England and Wales), and the royal proclamations for the
/// one-off days (1995 and 2020 VE Day, jubilees, 1999 millennium, 2011 royal wedding, 2022
/// state funeral, 2023 coronation).
#[test]
fn england_and_wales_bank_holidays_with_substitute_days() {
    let cases: &[(i32, &[&str])] = &[
        (
            1995,
            &[
                "1995-01-02",
                "1995-04-14",
                "1995-04-17",
                "1995-05-08",
                "1995-05-29",
                "1995-08-28",
                "1995-12-25",
                "1995-12-26",
            ],
        ),
        (
            1999,
            &[
                "1999-01-01",
                "1999-04-02",
                "1999-04-05",
                "1999-05-03",
                "1999-05-31",
                "1999-08-30",
                "1999-12-27",
                "1999-12-28",
                "1999-12-31",
            ],
        ),
        (
            2002,
            &[
                "2002-01-01",
                "2002-03-29",
                "2002-04-01",
                "2002-05-06",
                "2002-06-03",
                "2002-06-04",
                "2002-08-26",
                "2002-12-25",
                "2002-12-26",
            ],
        ),
        (
            2010,
            &[
                "2010-01-01",
                "2010-04-02",
                "2010-04-05",
                "2010-05-03",
                "2010-05-31",
                "2010-08-30",
                "2010-12-27",
                "2010-12-28",
            ],
        ),
        (
            2011,
            &[
                "2011-01-03",
                "2011-04-22",
                "2011-04-25",
                "2011-04-29",
                "2011-05-02",
                "2011-05-30",
                "2011-08-29",
                "2011-12-26",
                "2011-12-27",
            ],
        ),
        (
            2012,
            &[
                "2012-01-02",
                "2012-04-06",
                "2012-04-09",
                "2012-05-07",
                "2012-06-04",
                "2012-06-05",
                "2012-08-27",
                "2012-12-25",
                "2012-12-26",
            ],
        ),
        (
            2016,
            &[
                "2016-01-01",
                "2016-03-25",
                "2016-03-28",
                "2016-05-02",
                "2016-05-30",
                "2016-08-29",
                "2016-12-26",
                "2016-12-27",
            ],
        ),
        (
            2020,
            &[
                "2020-01-01",
                "2020-04-10",
                "2020-04-13",
                "2020-05-08",
                "2020-05-25",
                "2020-08-31",
                "2020-12-25",
                "2020-12-28",
            ],
        ),
        (
            2021,
            &[
                "2021-01-01",
                "2021-04-02",
                "2021-04-05",
                "2021-05-03",
                "2021-05-31",
                "2021-08-30",
                "2021-12-27",
                "2021-12-28",
            ],
        ),
        (
            2022,
            &[
                "2022-01-03",
                "2022-04-15",
                "2022-04-18",
                "2022-05-02",
                "2022-06-02",
                "2022-06-03",
                "2022-08-29",
                "2022-09-19",
                "2022-12-26",
                "2022-12-27",
            ],
        ),
        (
            2023,
            &[
                "2023-01-02",
                "2023-04-07",
                "2023-04-10",
                "2023-05-01",
                "2023-05-08",
                "2023-05-29",
                "2023-08-28",
                "2023-12-25",
                "2023-12-26",
            ],
        ),
        (
            2024,
            &[
                "2024-01-01",
                "2024-03-29",
                "2024-04-01",
                "2024-05-06",
                "2024-05-27",
                "2024-08-26",
                "2024-12-25",
                "2024-12-26",
            ],
        ),
        (
            2025,
            &[
                "2025-01-01",
                "2025-04-18",
                "2025-04-21",
                "2025-05-05",
                "2025-05-26",
                "2025-08-25",
                "2025-12-25",
                "2025-12-26",
            ],
        ),
        (
            2026,
            &[
                "2026-01-01",
                "2026-04-03",
                "2026-04-06",
                "2026-05-04",
                "2026-05-25",
                "2026-08-31",
                "2026-12-25",
                "2026-12-28",
            ],
        ),
    ];
    for (year, want) in cases {
        assert_eq!(holidays(Region::EnglandWales, *year), dates(want), "{year}");
    }
    let uk = calendar::by_name("UK").unwrap();
    // Boxing Day 2026 is a Saturday: the substitute is Monday 28 December.
    assert_eq!(next_business_day(uk.as_ref(), d(2026, 12, 24)), d(2026, 12, 24));
    assert_eq!(next_business_day(uk.as_ref(), d(2026, 12, 25)), d(2026, 12, 29));
}

/// Source: German national holidays (Feiertagsgesetze of the Länder, all of which include
/// these; Tag der Deutschen Einheit by the Einigungsvertrag), and the one-time national
/// Reformationstag of 31 October 2017.
#[test]
fn germany_national_holidays() {
    assert_eq!(
        holidays(Region::Germany, 2017),
        dates(&[
            "2017-01-01",
            "2017-04-14",
            "2017-04-17",
            "2017-05-01",
            "2017-05-25",
            "2017-06-05",
            "2017-10-03",
            "2017-10-31",
            "2017-12-25",
            "2017-12-26",
        ])
    );
    assert_eq!(
        holidays(Region::Germany, 2026),
        dates(&[
            "2026-01-01",
            "2026-04-03",
            "2026-04-06",
            "2026-05-01",
            "2026-05-14",
            "2026-05-25",
            "2026-10-03",
            "2026-12-25",
            "2026-12-26",
        ])
    );
    let de = calendar::by_name("DE").unwrap();
    assert!(!de.is_business_day(d(2017, 10, 31)));
    assert!(de.is_business_day(d(2018, 10, 31)));
}

#[test]
fn none_calendar_has_only_business_days() {
    let none = calendar::by_name("none").unwrap();
    assert!(none.is_business_day(d(2026, 12, 25)));
    assert!(none.is_business_day(d(2026, 11, 22))); // a Sunday
}

#[test]
fn add_business_days_skips_holidays() {
    let fr = calendar::by_name("FR").unwrap();
    // Thursday 30 April 2026 + 1 business day: 1 May (Fri) is a holiday, then the weekend,
    // Monday 4 May.
    assert_eq!(add_business_days(fr.as_ref(), d(2026, 4, 30), 1), d(2026, 5, 4));
    assert_eq!(add_business_days(fr.as_ref(), d(2026, 5, 4), -1), d(2026, 4, 30));
}

proptest! {
    /// The next business day is never a weekend day or a holiday, is on or after the date
    /// asked, and no business day is skipped on the way.
    #[test]
    fn next_business_day_is_never_a_holiday_or_weekend(days in 0u64..(365 * 120), which in 0usize..5) {
        let name = calendar::names()[which];
        let cal = calendar::by_name(name).unwrap();
        let start = d(1990, 1, 1).checked_add_days(Days::new(days)).unwrap();
        let next = next_business_day(cal.as_ref(), start);
        prop_assert!(next >= start);
        prop_assert!(cal.is_business_day(next));
        if name != "none" {
            prop_assert!(!matches!(next.weekday(), Weekday::Sat | Weekday::Sun));
            if let Some(region) = match name {
                "FR" => Some(Region::France),
                "FR-ALSACE" => Some(Region::FranceAlsace),
                "UK" => Some(Region::EnglandWales),
                "DE" => Some(Region::Germany),
                _ => None,
            } {
                prop_assert!(!Holidays::new(region).is_holiday(next));
            }
        }
        let mut day = start;
        while day < next {
            prop_assert!(!cal.is_business_day(day));
            day = day.succ_opt().unwrap();
        }
        prop_assert!((next - start).num_days() <= 5, "at most a long weekend plus holidays");
    }
}
