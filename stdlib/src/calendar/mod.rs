//! Business-day calendars: `FR`, `FR-ALSACE`, `UK`, `DE`, `none`, and company closing days.
//!
//! A business day is a Monday to Friday that is not a public holiday of the calendar (and, with
//! [`WithClosures`], not a company closing day). Easter is computed ([`easter_sunday`]), so the
//! calendars work for any year; the fixed rules are those in force today, applied from the year
//! each holiday was created where that matters (noted below).
//!
//! - `FR` (Code du travail art. L3133-1): 1 January, Easter Monday, 1 May, 8 May (since 1982),
//!   Ascension Thursday, Whit Monday, 14 July, 15 August, 1 November, 11 November, 25 December.
//!   Whit Monday is kept as a holiday even though many firms work it as the "journée de
//!   solidarité": banks and courts are closed.
//! - `FR-ALSACE` (Alsace-Moselle, Code du travail art. L3134-13): `FR` plus Good Friday and
//!   26 December (the law makes Good Friday a holiday in communes with a Protestant or mixed
//!   church; it is applied region-wide here — use `FR` with closing days for a finer choice).
//! - `UK` (England and Wales, Banking and Financial Dealings Act 1971 and royal
//!   proclamations): New Year's Day, Good Friday, Easter Monday, early May bank holiday (first
//!   Monday of May, since 1978; 8 May in 1995 and 2020 for VE Day), spring bank holiday (last
//!   Monday of May; 4 June 2002, 4 June 2012, 2 June 2022), summer bank holiday (last Monday of
//!   August), Christmas Day, Boxing Day; a holiday falling on a weekend is replaced by the next
//!   weekday that is not already a holiday (substitute day). One-off holidays: 29 July 1981,
//!   31 December 1999, 29 April 2011, 3 June 2002 and 5 June 2012 and 3 June 2022 (jubilees),
//!   19 September 2022 (state funeral), 8 May 2023 (coronation).
//! - `DE` (national holidays, for all Länder): 1 January, Good Friday, Easter Monday, 1 May,
//!   Ascension Thursday, Whit Monday, 3 October (since 1990), 25 and 26 December; 31 October
//!   2017 (500th anniversary of the Reformation, a national holiday that year only). Holidays of
//!   single Länder are not included: add them as closing days.
//! - `none`: every day is a business day.
//!
//! # Closing days file
//!
//! [`load_closing_days`] reads one date `YYYY-MM-DD` per line; `#` starts a comment (a whole
//! line or the end of a line); blank lines are ignored. [`WithClosures`] adds them to a
//! calendar.

mod easter;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use chrono::{Datelike, Days, NaiveDate, Weekday};

pub use easter::easter_sunday;
pub use relance_engine::calendar::{Calendar, NoCalendar, add_business_days, next_business_day};

/// The names accepted by [`by_name`].
pub fn names() -> &'static [&'static str] {
    &["FR", "FR-ALSACE", "UK", "DE", "none"]
}

/// The calendar named `name` (any case): `FR`, `FR-ALSACE`, `UK`, `DE`, `none`.
pub fn by_name(name: &str) -> Option<Arc<dyn Calendar>> {
    match name.trim().to_ascii_uppercase().as_str() {
        "FR" => Some(Arc::new(Holidays::new(Region::France))),
        "FR-ALSACE" => Some(Arc::new(Holidays::new(Region::FranceAlsace))),
        "UK" => Some(Arc::new(Holidays::new(Region::EnglandWales))),
        "DE" => Some(Arc::new(Holidays::new(Region::Germany))),
        "NONE" => Some(Arc::new(NoCalendar)),
        _ => None,
    }
}

/// The regions with a holiday calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Region {
    /// France (`FR`).
    France,
    /// Alsace-Moselle (`FR-ALSACE`).
    FranceAlsace,
    /// England and Wales (`UK`).
    EnglandWales,
    /// Germany, national holidays (`DE`).
    Germany,
}

/// A public-holiday calendar: weekends and the region's holidays are not business days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holidays {
    region: Region,
}

fn ymd(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(year, month, day)
}

fn shift(date: NaiveDate, days: i64) -> Option<NaiveDate> {
    if days >= 0 {
        date.checked_add_days(Days::new(days.unsigned_abs()))
    } else {
        date.checked_sub_days(Days::new(days.unsigned_abs()))
    }
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The first `weekday` of `month` on or after day 1.
fn first_weekday(year: i32, month: u32, weekday: Weekday) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, 1)
}

/// The last `weekday` of `month`.
fn last_weekday(year: i32, month: u32, weekday: Weekday) -> Option<NaiveDate> {
    let first_next = if month == 12 { ymd(year + 1, 1, 1)? } else { ymd(year, month + 1, 1)? };
    let mut d = first_next.pred_opt()?;
    while d.weekday() != weekday {
        d = d.pred_opt()?;
    }
    Some(d)
}

impl Holidays {
    /// The calendar of `region`.
    pub fn new(region: Region) -> Holidays {
        Holidays { region }
    }

    /// The region.
    pub fn region(&self) -> Region {
        self.region
    }

    /// The public holidays of `year` that close businesses (substitute days included), in date
    /// order, each with its English name.
    pub fn holidays_in(&self, year: i32) -> Vec<(NaiveDate, &'static str)> {
        let mut out: Vec<(NaiveDate, &'static str)> = Vec::new();
        let mut add = |d: Option<NaiveDate>, name: &'static str| {
            if let Some(d) = d {
                out.push((d, name));
            }
        };
        let easter = easter_sunday(year);
        let from_easter = |n: i64| easter.and_then(|e| shift(e, n));
        match self.region {
            Region::France | Region::FranceAlsace => {
                add(ymd(year, 1, 1), "New Year's Day");
                if self.region == Region::FranceAlsace {
                    add(from_easter(-2), "Good Friday");
                }
                add(from_easter(1), "Easter Monday");
                add(ymd(year, 5, 1), "Labour Day");
                if year >= 1982 {
                    add(ymd(year, 5, 8), "Victory in Europe Day");
                }
                add(from_easter(39), "Ascension Day");
                add(from_easter(50), "Whit Monday");
                add(ymd(year, 7, 14), "Bastille Day");
                add(ymd(year, 8, 15), "Assumption of Mary");
                add(ymd(year, 11, 1), "All Saints' Day");
                add(ymd(year, 11, 11), "Armistice Day");
                add(ymd(year, 12, 25), "Christmas Day");
                if self.region == Region::FranceAlsace {
                    add(ymd(year, 12, 26), "St Stephen's Day");
                }
            }
            Region::Germany => {
                add(ymd(year, 1, 1), "Neujahr");
                add(from_easter(-2), "Karfreitag");
                add(from_easter(1), "Ostermontag");
                add(ymd(year, 5, 1), "Tag der Arbeit");
                add(from_easter(39), "Christi Himmelfahrt");
                add(from_easter(50), "Pfingstmontag");
                if year >= 1990 {
                    add(ymd(year, 10, 3), "Tag der Deutschen Einheit");
                }
                if year == 2017 {
                    add(ymd(2017, 10, 31), "Reformationstag (500 Jahre)");
                }
                add(ymd(year, 12, 25), "1. Weihnachtstag");
                add(ymd(year, 12, 26), "2. Weihnachtstag");
            }
            Region::EnglandWales => {
                // New Year's Day, or the Monday after when it falls on a weekend.
                add(ymd(year, 1, 1).map(next_weekday), "New Year's Day");
                add(from_easter(-2), "Good Friday");
                add(from_easter(1), "Easter Monday");
                if year >= 1978 {
                    let early_may = match year {
                        1995 | 2020 => ymd(year, 5, 8),
                        _ => first_weekday(year, 5, Weekday::Mon),
                    };
                    add(early_may, "Early May bank holiday");
                }
                let spring = match year {
                    2002 | 2012 => ymd(year, 6, 4),
                    2022 => ymd(year, 6, 2),
                    _ => last_weekday(year, 5, Weekday::Mon),
                };
                add(spring, "Spring bank holiday");
                match year {
                    2002 => add(ymd(2002, 6, 3), "Golden Jubilee"),
                    2012 => add(ymd(2012, 6, 5), "Diamond Jubilee"),
                    2022 => add(ymd(2022, 6, 3), "Platinum Jubilee"),
                    1981 => add(ymd(1981, 7, 29), "Royal wedding"),
                    2011 => add(ymd(2011, 4, 29), "Royal wedding"),
                    1999 => add(ymd(1999, 12, 31), "Millennium"),
                    2023 => add(ymd(2023, 5, 8), "Coronation of King Charles III"),
                    _ => {}
                }
                if year == 2022 {
                    add(ymd(2022, 9, 19), "State funeral of Queen Elizabeth II");
                }
                add(last_weekday(year, 8, Weekday::Mon), "Summer bank holiday");
                // Christmas and Boxing Day with substitutes: each weekend one moves to the next
                // weekday not already taken.
                if let (Some(christmas), Some(boxing)) = (ymd(year, 12, 25), ymd(year, 12, 26)) {
                    let christmas_day = next_weekday(christmas);
                    let mut boxing_day = next_weekday(boxing);
                    if boxing_day == christmas_day {
                        boxing_day = next_weekday(boxing_day.succ_opt().unwrap_or(boxing_day));
                    }
                    add(Some(christmas_day), "Christmas Day");
                    add(Some(boxing_day), "Boxing Day");
                }
            }
        }
        out.sort();
        out
    }

    /// True when `date` is a public holiday of the calendar (weekends are not holidays here).
    pub fn is_holiday(&self, date: NaiveDate) -> bool {
        self.holidays_in(date.year()).iter().any(|(d, _)| *d == date)
    }
}

/// `date`, or the Monday after when it falls on a weekend.
fn next_weekday(date: NaiveDate) -> NaiveDate {
    let mut d = date;
    while is_weekend(d) {
        match d.succ_opt() {
            Some(n) => d = n,
            None => return d,
        }
    }
    d
}

impl Calendar for Holidays {
    fn name(&self) -> &str {
        match self.region {
            Region::France => "FR",
            Region::FranceAlsace => "FR-ALSACE",
            Region::EnglandWales => "UK",
            Region::Germany => "DE",
        }
    }

    fn is_business_day(&self, date: NaiveDate) -> bool {
        !is_weekend(date) && !self.is_holiday(date)
    }
}

/// A calendar plus company closing days (e.g. the August closure).
#[derive(Debug, Clone)]
pub struct WithClosures {
    base: Arc<dyn Calendar>,
    closed: BTreeSet<NaiveDate>,
}

impl WithClosures {
    /// `base` with `closing_days` also not business days.
    pub fn new(base: Arc<dyn Calendar>, closing_days: impl IntoIterator<Item = NaiveDate>) -> WithClosures {
        WithClosures { base, closed: closing_days.into_iter().collect() }
    }

    /// The closing days, in order.
    pub fn closing_days(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.closed.iter().copied()
    }
}

impl Calendar for WithClosures {
    fn name(&self) -> &str {
        self.base.name()
    }

    fn is_business_day(&self, date: NaiveDate) -> bool {
        !self.closed.contains(&date) && self.base.is_business_day(date)
    }
}

/// An error in a closing days file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum CalendarFileError {
    /// The file could not be read.
    #[error("cannot read the closing days file `{file}`: {message}")]
    #[diagnostic(code(relance::calendar::read), help("check the path given for the closing days file"))]
    Read {
        /// The file.
        file: String,
        /// The system's message.
        message: String,
    },
    /// A line is not a date.
    #[error("{file}:{line}: `{value}` is not a date")]
    #[diagnostic(
        code(relance::calendar::date),
        help("write one date per line as `YYYY-MM-DD` (e.g. `2026-08-14`); `#` starts a comment")
    )]
    Date {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// The value.
        value: String,
    },
}

/// Reads a closing days file (one `YYYY-MM-DD` per line, `#` comments, blank lines ignored).
pub fn load_closing_days(path: &Path) -> Result<Vec<NaiveDate>, CalendarFileError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| CalendarFileError::Read { file: file.clone(), message: e.to_string() })?;
    parse_closing_days(&text, &file)
}

/// Like [`load_closing_days`], from text; `file` names it in errors.
pub fn parse_closing_days(text: &str, file: &str) -> Result<Vec<NaiveDate>, CalendarFileError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
        let value = raw.split('#').next().unwrap_or("").trim();
        if value.is_empty() {
            continue;
        }
        let date = NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| CalendarFileError::Date {
            file: file.to_string(),
            line: i + 1,
            value: value.to_string(),
        })?;
        out.push(date);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn by_name_and_names_agree() {
        for name in names() {
            let cal = by_name(name).unwrap();
            assert_eq!(cal.name(), *name);
        }
        assert_eq!(by_name("fr-alsace").unwrap().name(), "FR-ALSACE");
        assert!(by_name("US").is_none());
    }

    #[test]
    fn closing_days_file() {
        let text = "# August closure\n2026-08-10\n2026-08-11 # Tuesday\n\n2026-08-10\n";
        assert_eq!(parse_closing_days(text, "c.txt").unwrap(), vec![d(2026, 8, 10), d(2026, 8, 11)]);
        let err = parse_closing_days("2026-08-10\n10/08/2026\n", "c.txt").unwrap_err();
        assert_eq!(err.to_string(), "c.txt:2: `10/08/2026` is not a date");
        let err = load_closing_days(Path::new("/nonexistent/closing.txt")).unwrap_err();
        assert!(err.to_string().starts_with("cannot read the closing days file"));
    }

    #[test]
    fn closures_add_to_the_base_calendar() {
        let cal = WithClosures::new(by_name("FR").unwrap(), [d(2026, 8, 14)]);
        assert_eq!(cal.name(), "FR");
        assert!(!cal.is_business_day(d(2026, 8, 14))); // Friday, closed
        assert!(!cal.is_business_day(d(2026, 8, 15))); // Saturday (and Assumption)
        assert!(cal.is_business_day(d(2026, 8, 13)));
        assert_eq!(next_business_day(&cal, d(2026, 8, 14)), d(2026, 8, 17));
    }
}
