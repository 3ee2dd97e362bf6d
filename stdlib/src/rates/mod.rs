//! Reference interest-rate tables (ECB, Bank of England, Bundesbank) and the schedules built on
//! them.
//!
//! # Built-in tables
//!
//! Three tables ship with relance, embedded from `stdlib/data/*.csv` (each file starts with
//! comment lines naming its source and the date it was collected):
//!
//! | table  | file                    | content                                               |
//! |--------|-------------------------|-------------------------------------------------------|
//! | `ECB`  | `ecb_mro.csv`           | ECB main refinancing operations rate, by date of effect |
//! | `BOE`  | `boe_bank_rate.csv`     | Bank of England Bank Rate, by date of effect          |
//! | `BASE` | `de_basiszinssatz.csv`  | Bundesbank Basiszinssatz (BGB §247), per half-year    |
//!
//! Each table knows how far it is **confirmed**: a change table (ECB, BOE) through the date of
//! its latest row, a half-year table (BASE) through the end of its latest half-year. A rate
//! asked for a date past that is an error ([`RateError::Unknown`]) that says how to add the
//! rate; it is never guessed, unless the user opts in with `rates assume unchanged`, in which
//! case the last known rate is reused and every period that uses it carries a warning
//! ([`RatePeriod::assumed`]).
//!
//! # Updating the rates without rebuilding: the override file
//!
//! [`RateTables::load_overrides`] reads a CSV file that adds or corrects rows of the built-in
//! tables. The format:
//!
//! ```text
//! # Lines starting with `#` are comments; blank lines are ignored.
//! # The first other line is the header, exactly these three columns.
//! # (Illustrative values below, not facts.)
//! table,effective,percent
//! ECB,2026-06-17,2.40
//! ECB,2026-09-30,2.40
//! BOE,2026-06-30,3.75
//! BASE,2026H2,1.27
//! ```
//!
//! - `table`: `ECB`, `BOE` or `BASE` (any case).
//! - `effective`: for `ECB` and `BOE`, the date (`YYYY-MM-DD`) from which the rate is in force.
//!   A row may repeat the rate already in force: it records that the rate was checked to be
//!   still in force on that date, which extends the table's confirmed coverage to that date
//!   (e.g. `ECB,2026-09-30,2.40` above). For `BASE`, the half-year (`2026H2`) or its first day
//!   (`2026-07-01`).
//! - `percent`: the annual rate in percent with a decimal point (`2.15`, `-0.88`); a trailing
//!   `%` is accepted.
//!
//! A row for a date already in a table replaces that table's rate on that date. The file is
//! checked completely before anything is applied: an error names the file, the line, the column
//! and the value, and leaves the tables unchanged.
//!
//! # How a rate applies over time
//!
//! [`reference()`] gives the schedules for `with interest ECB + N points` (and `BOE`, `BASE`):
//! the rate changes at each half-year boundary, and each half-year bears the reference rate of
//! its reference date — the rate in force on 1 January / 1 July for `ECB` (the French and EU
//! convention, Code de commerce L441-10 and Directive 2011/7/EU art. 2 and 3), the rate at close
//! of business on 31 December / 30 June for `BOE` (the UK Late Payment Act convention), and the
//! published half-year value for `BASE`. The laws in [`crate::law`] reuse these schedules with
//! their own margin and their own rule (split by half-year or fixed at the start).

mod schedule;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

pub use relance_engine::law::{RateError, RatePeriod, RateSchedule};
pub use schedule::{ReferenceSchedule, reference, reference_names};

pub(crate) use schedule::{Application, Reference};

/// A calendar half-year: `2026H1` is 1 January to 30 June 2026, `2026H2` 1 July to 31 December.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HalfYear {
    /// The year.
    pub year: i32,
    /// `false` for H1 (January–June), `true` for H2 (July–December).
    pub second: bool,
}

impl HalfYear {
    /// The half-year containing `date`.
    pub fn containing(date: NaiveDate) -> HalfYear {
        HalfYear { year: date.year(), second: date.month() >= 7 }
    }

    /// First day (1 January or 1 July).
    pub fn start(self) -> NaiveDate {
        let month = if self.second { 7 } else { 1 };
        NaiveDate::from_ymd_opt(self.year, month, 1).unwrap_or(NaiveDate::MAX)
    }

    /// Last day (30 June or 31 December).
    pub fn end(self) -> NaiveDate {
        let (month, day) = if self.second { (12, 31) } else { (6, 30) };
        NaiveDate::from_ymd_opt(self.year, month, day).unwrap_or(NaiveDate::MAX)
    }

    /// The following half-year.
    pub fn next(self) -> HalfYear {
        if self.second {
            HalfYear { year: self.year + 1, second: false }
        } else {
            HalfYear { year: self.year, second: true }
        }
    }

    /// The preceding half-year.
    pub fn prev(self) -> HalfYear {
        if self.second {
            HalfYear { year: self.year, second: false }
        } else {
            HalfYear { year: self.year - 1, second: true }
        }
    }

    /// Parses `2026H1` / `2026h2`.
    pub fn parse(text: &str) -> Option<HalfYear> {
        let text = text.trim();
        let (year, half) = text.split_once(['H', 'h'])?;
        if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let year: i32 = year.parse().ok()?;
        match half {
            "1" => Some(HalfYear { year, second: false }),
            "2" => Some(HalfYear { year, second: true }),
            _ => None,
        }
    }
}

impl fmt::Display for HalfYear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}H{}", self.year, if self.second { 2 } else { 1 })
    }
}

/// A rate that changes on given dates (ECB MRO, BoE Bank Rate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeTable {
    name: &'static str,
    changes: BTreeMap<NaiveDate, Decimal>,
}

impl ChangeTable {
    /// The table's name (`ECB`, `BOE`).
    pub fn name(&self) -> &str {
        self.name
    }

    /// The rows: the rate in force from each date, in date order.
    pub fn changes(&self) -> impl Iterator<Item = (NaiveDate, Decimal)> + '_ {
        self.changes.iter().map(|(d, r)| (*d, *r))
    }

    /// The first date the table knows.
    pub fn first_date(&self) -> Option<NaiveDate> {
        self.changes.keys().next().copied()
    }

    /// The last date on which the rate is confirmed (the table's latest row).
    pub fn confirmed_through(&self) -> Option<NaiveDate> {
        self.changes.keys().next_back().copied()
    }

    /// The latest known rate.
    pub fn last_rate(&self) -> Option<Decimal> {
        self.changes.values().next_back().copied()
    }

    /// The rate in force on `date`, or `None` when `date` is before the first row or after the
    /// confirmed coverage.
    pub fn rate_on(&self, date: NaiveDate) -> Option<Decimal> {
        if date > self.confirmed_through()? {
            return None;
        }
        self.changes.range(..=date).next_back().map(|(_, r)| *r)
    }
}

/// A rate published per half-year (Bundesbank Basiszinssatz).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HalfYearTable {
    name: &'static str,
    values: BTreeMap<HalfYear, Decimal>,
}

impl HalfYearTable {
    /// The table's name (`BASE`).
    pub fn name(&self) -> &str {
        self.name
    }

    /// The rows, in order.
    pub fn values(&self) -> impl Iterator<Item = (HalfYear, Decimal)> + '_ {
        self.values.iter().map(|(h, r)| (*h, *r))
    }

    /// The first half-year the table knows.
    pub fn first(&self) -> Option<HalfYear> {
        self.values.keys().next().copied()
    }

    /// The latest half-year the table knows (its confirmed coverage ends with it).
    pub fn last(&self) -> Option<HalfYear> {
        self.values.keys().next_back().copied()
    }

    /// The latest known rate.
    pub fn last_rate(&self) -> Option<Decimal> {
        self.values.values().next_back().copied()
    }

    /// The rate of `half`, when published.
    pub fn rate(&self, half: HalfYear) -> Option<Decimal> {
        self.values.get(&half).copied()
    }
}

/// The reference-rate tables: ECB MRO, BoE Bank Rate and Bundesbank Basiszinssatz.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateTables {
    ecb: ChangeTable,
    boe: ChangeTable,
    base: HalfYearTable,
}

const ECB_CSV: &str = include_str!("../../data/ecb_mro.csv");
const BOE_CSV: &str = include_str!("../../data/boe_bank_rate.csv");
const BASE_CSV: &str = include_str!("../../data/de_basiszinssatz.csv");

/// Which table an override row is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TableId {
    Ecb,
    Boe,
    Base,
}

impl RateTables {
    /// The tables shipped with relance (see the module documentation for sources and dates).
    #[expect(
        clippy::expect_used,
        reason = "the tables are files compiled into the binary, parsed by the test `builtin_tables_parse`: they cannot fail at run time"
    )]
    pub fn builtin() -> RateTables {
        RateTables::try_builtin().expect("the embedded rate tables are valid (tested)")
    }

    fn try_builtin() -> Result<RateTables, RateFileError> {
        let ecb = parse_change_csv(ECB_CSV, "ecb_mro.csv (built in)")?;
        let boe = parse_change_csv(BOE_CSV, "boe_bank_rate.csv (built in)")?;
        let base = parse_half_year_csv(BASE_CSV, "de_basiszinssatz.csv (built in)")?;
        Ok(RateTables {
            ecb: ChangeTable { name: "ECB", changes: ecb },
            boe: ChangeTable { name: "BOE", changes: boe },
            base: HalfYearTable { name: "BASE", values: base },
        })
    }

    /// The ECB main refinancing operations rate.
    pub fn ecb(&self) -> &ChangeTable {
        &self.ecb
    }

    /// The Bank of England Bank Rate.
    pub fn boe(&self) -> &ChangeTable {
        &self.boe
    }

    /// The Bundesbank Basiszinssatz.
    pub fn basiszinssatz(&self) -> &HalfYearTable {
        &self.base
    }

    /// Adds or corrects rates from an override file (format in the module documentation).
    /// Nothing is applied when the file has an error.
    pub fn load_overrides(&mut self, path: &Path) -> Result<(), RateFileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| RateFileError::Read { file: path.display().to_string(), message: e.to_string() })?;
        self.apply_overrides(&text, &path.display().to_string())
    }

    /// Like [`RateTables::load_overrides`], from text; `file` names it in errors.
    pub fn apply_overrides(&mut self, text: &str, file: &str) -> Result<(), RateFileError> {
        let rows = parse_override_csv(text, file)?;
        for (table, date, percent) in rows {
            match table {
                TableId::Ecb => {
                    self.ecb.changes.insert(date, percent);
                }
                TableId::Boe => {
                    self.boe.changes.insert(date, percent);
                }
                TableId::Base => {
                    self.base.values.insert(HalfYear::containing(date), percent);
                }
            }
        }
        Ok(())
    }
}

/// An error in a rate file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum RateFileError {
    /// The file could not be read.
    #[error("cannot read the rate file `{file}`: {message}")]
    #[diagnostic(code(relance::rates::read), help("check the path given for the rate override file"))]
    Read {
        /// The file.
        file: String,
        /// The system's message.
        message: String,
    },
    /// The header line is missing or wrong.
    #[error("{file}:{line}: the header is `{found}`, expected `{expected}`")]
    #[diagnostic(
        code(relance::rates::header),
        help("the first line that is not a comment must be exactly `{expected}`")
    )]
    Header {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// What the line holds.
        found: String,
        /// The header expected.
        expected: String,
    },
    /// A line does not have the right number of columns.
    #[error("{file}:{line}: expected {expected} columns, found {found} in `{value}`")]
    #[diagnostic(code(relance::rates::columns), help("write one rate per line as `{header}`, separated by commas"))]
    Columns {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// Columns expected.
        expected: usize,
        /// Columns found.
        found: usize,
        /// The line.
        value: String,
        /// The header, as a reminder of the format.
        header: String,
    },
    /// A value could not be read.
    #[error("{file}:{line}:{column}: {problem} `{value}` in column `{column_name}`")]
    #[diagnostic(code(relance::rates::value), help("{help}"))]
    Value {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (character position where the value starts).
        column: usize,
        /// The column's header name.
        column_name: &'static str,
        /// The value.
        value: String,
        /// What is wrong.
        problem: &'static str,
        /// How to fix it.
        help: &'static str,
    },
}

/// One data line split into trimmed fields with their 1-based character columns.
struct Line<'a> {
    number: usize,
    raw: &'a str,
    fields: Vec<(usize, &'a str)>,
}

/// Splits `text` into its header line number and data lines (comments and blanks removed).
fn data_lines<'a>(text: &'a str, file: &str, expected_header: &str) -> Result<Vec<Line<'a>>, RateFileError> {
    let mut out = Vec::new();
    let mut seen_header = false;
    for (i, raw) in text.lines().enumerate() {
        let number = i + 1;
        let raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if !seen_header {
            let normalised: Vec<String> = trimmed.split(',').map(|f| f.trim().to_ascii_lowercase()).collect();
            if normalised.join(",") != expected_header {
                return Err(RateFileError::Header {
                    file: file.to_string(),
                    line: number,
                    found: trimmed.to_string(),
                    expected: expected_header.to_string(),
                });
            }
            seen_header = true;
            continue;
        }
        let mut fields = Vec::new();
        let mut start = 0usize;
        for part in raw.split(',') {
            let lead = part.len() - part.trim_start().len();
            let column = raw[..start + lead].chars().count() + 1;
            fields.push((column, part.trim()));
            start += part.len() + 1;
        }
        let expected = expected_header.split(',').count();
        if fields.len() != expected {
            return Err(RateFileError::Columns {
                file: file.to_string(),
                line: number,
                expected,
                found: fields.len(),
                value: trimmed.to_string(),
                header: expected_header.to_string(),
            });
        }
        out.push(Line { number, raw, fields });
    }
    if !seen_header {
        return Err(RateFileError::Header {
            file: file.to_string(),
            line: text.lines().count().max(1),
            found: String::new(),
            expected: expected_header.to_string(),
        });
    }
    Ok(out)
}

fn value_error(
    file: &str,
    line: &Line<'_>,
    index: usize,
    column_name: &'static str,
    problem: &'static str,
    help: &'static str,
) -> RateFileError {
    let (column, value) = line.fields.get(index).copied().unwrap_or((1, line.raw));
    RateFileError::Value {
        file: file.to_string(),
        line: line.number,
        column,
        column_name,
        value: value.to_string(),
        problem,
        help,
    }
}

fn field<'a>(line: &Line<'a>, index: usize) -> &'a str {
    line.fields.get(index).map(|(_, v)| *v).unwrap_or("")
}

fn parse_percent(file: &str, line: &Line<'_>, index: usize) -> Result<Decimal, RateFileError> {
    let text = field(line, index);
    let number = text.strip_suffix('%').unwrap_or(text).trim();
    let parsed = number.parse::<Decimal>().ok().filter(|p| p.abs() < Decimal::from(100));
    parsed.ok_or_else(|| {
        value_error(
            file,
            line,
            index,
            "percent",
            "invalid rate",
            "write the annual rate in percent with a decimal point, e.g. `2.15` or `-0.88`",
        )
    })
}

fn parse_date(file: &str, line: &Line<'_>, index: usize, name: &'static str) -> Result<NaiveDate, RateFileError> {
    NaiveDate::parse_from_str(field(line, index), "%Y-%m-%d").map_err(|_| {
        value_error(file, line, index, name, "invalid date", "write the date as `YYYY-MM-DD`, e.g. `2026-07-01`")
    })
}

fn parse_change_csv(text: &str, file: &str) -> Result<BTreeMap<NaiveDate, Decimal>, RateFileError> {
    let mut map = BTreeMap::new();
    for line in data_lines(text, file, "effective,percent")? {
        let date = parse_date(file, &line, 0, "effective")?;
        let percent = parse_percent(file, &line, 1)?;
        if map.insert(date, percent).is_some() {
            return Err(value_error(file, &line, 0, "effective", "duplicate date", "give each date once"));
        }
    }
    Ok(map)
}

fn parse_half_year_csv(text: &str, file: &str) -> Result<BTreeMap<HalfYear, Decimal>, RateFileError> {
    let mut map = BTreeMap::new();
    for line in data_lines(text, file, "period,percent")? {
        let half = HalfYear::parse(field(&line, 0)).ok_or_else(|| {
            value_error(file, &line, 0, "period", "invalid half-year", "write the half-year as `2026H1` or `2026H2`")
        })?;
        let percent = parse_percent(file, &line, 1)?;
        if map.insert(half, percent).is_some() {
            return Err(value_error(file, &line, 0, "period", "duplicate half-year", "give each half-year once"));
        }
    }
    Ok(map)
}

fn parse_override_csv(text: &str, file: &str) -> Result<Vec<(TableId, NaiveDate, Decimal)>, RateFileError> {
    let mut rows: Vec<(TableId, NaiveDate, Decimal)> = Vec::new();
    for line in data_lines(text, file, "table,effective,percent")? {
        let table = match field(&line, 0).to_ascii_uppercase().as_str() {
            "ECB" => TableId::Ecb,
            "BOE" => TableId::Boe,
            "BASE" => TableId::Base,
            _ => {
                return Err(value_error(
                    file,
                    &line,
                    0,
                    "table",
                    "unknown table",
                    "the table is one of `ECB`, `BOE`, `BASE`",
                ));
            }
        };
        let date = if table == TableId::Base {
            let text = field(&line, 1);
            match HalfYear::parse(text) {
                Some(h) => h.start(),
                None => {
                    let d = NaiveDate::parse_from_str(text, "%Y-%m-%d")
                        .ok()
                        .filter(|d| d.day() == 1 && (d.month() == 1 || d.month() == 7));
                    d.ok_or_else(|| {
                        value_error(
                            file,
                            &line,
                            1,
                            "effective",
                            "invalid half-year",
                            "for `BASE`, write the half-year as `2026H2` or its first day `2026-07-01`",
                        )
                    })?
                }
            }
        } else {
            parse_date(file, &line, 1, "effective")?
        };
        let percent = parse_percent(file, &line, 2)?;
        if rows.iter().any(|(t, d, _)| *t == table && *d == date) {
            return Err(value_error(
                file,
                &line,
                1,
                "effective",
                "a second rate for the same table and date",
                "give each table and date once",
            ));
        }
        rows.push((table, date, percent));
    }
    Ok(rows)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn builtin_tables_parse() {
        let t = RateTables::try_builtin().unwrap();
        assert_eq!(t.ecb().confirmed_through(), Some(d(2026, 2, 5)));
        assert_eq!(t.boe().confirmed_through(), Some(d(2025, 12, 31)));
        assert_eq!(t.basiszinssatz().last(), Some(HalfYear { year: 2026, second: false }));
        // Coverage starts before 2010 in all three tables.
        assert!(t.ecb().first_date().unwrap() <= d(2010, 1, 1));
        assert!(t.boe().first_date().unwrap() <= d(2009, 12, 31));
        assert_eq!(t.basiszinssatz().first(), Some(HalfYear { year: 2010, second: false }));
        // Every half-year from 2010H1 to 2026H1 is present, without holes.
        let mut h = HalfYear { year: 2010, second: false };
        while h <= (HalfYear { year: 2026, second: false }) {
            assert!(t.basiszinssatz().rate(h).is_some(), "{h}");
            h = h.next();
        }
    }

    #[test]
    fn change_table_lookup() {
        let t = RateTables::builtin();
        // ECB history (Banque de France policy-rates table): 1.00 from 2009-05-13,
        // 1.25 from 2011-04-13, 1.50 from 2011-07-13.
        assert_eq!(t.ecb().rate_on(d(2011, 4, 12)), Some(dec!(1.00)));
        assert_eq!(t.ecb().rate_on(d(2011, 4, 13)), Some(dec!(1.25)));
        assert_eq!(t.ecb().rate_on(d(2011, 7, 1)), Some(dec!(1.25)));
        assert_eq!(t.ecb().rate_on(d(2026, 2, 5)), Some(dec!(2.15)));
        assert_eq!(t.ecb().rate_on(d(2026, 2, 6)), None);
        assert_eq!(t.ecb().rate_on(d(2008, 7, 8)), None);
        // BoE: 0.75 from 2018-08-02 until 2020-03-11.
        assert_eq!(t.boe().rate_on(d(2019, 12, 31)), Some(dec!(0.75)));
        assert_eq!(t.boe().rate_on(d(2020, 3, 11)), Some(dec!(0.25)));
    }

    #[test]
    fn half_year_parse_and_bounds() {
        let h = HalfYear::parse("2024h2").unwrap();
        assert_eq!(h.start(), d(2024, 7, 1));
        assert_eq!(h.end(), d(2024, 12, 31));
        assert_eq!(h.next().to_string(), "2025H1");
        assert_eq!(h.prev().to_string(), "2024H1");
        assert_eq!(HalfYear::containing(d(2024, 6, 30)).to_string(), "2024H1");
        assert_eq!(HalfYear::parse("2024H3"), None);
        assert_eq!(HalfYear::parse("24H1"), None);
    }

    #[test]
    fn overrides_extend_and_correct() {
        let mut t = RateTables::builtin();
        let text = "# my update\n\ntable,effective,percent\necb,2026-06-17,2.40%\nBOE,2026-06-30,3.75\nBASE,2026H2,1.27\nBASE,2027-01-01,1.5\n";
        t.apply_overrides(text, "rates.csv").unwrap();
        assert_eq!(t.ecb().confirmed_through(), Some(d(2026, 6, 17)));
        assert_eq!(t.ecb().rate_on(d(2026, 6, 17)), Some(dec!(2.40)));
        assert_eq!(t.ecb().rate_on(d(2026, 6, 16)), Some(dec!(2.15)));
        assert_eq!(t.boe().rate_on(d(2026, 6, 30)), Some(dec!(3.75)));
        assert_eq!(t.basiszinssatz().rate(HalfYear { year: 2026, second: true }), Some(dec!(1.27)));
        assert_eq!(t.basiszinssatz().rate(HalfYear { year: 2027, second: false }), Some(dec!(1.5)));
    }

    #[test]
    fn override_errors_name_file_line_column_and_value_and_apply_nothing() {
        let mut t = RateTables::builtin();
        let before = t.clone();
        let err = t
            .apply_overrides("table,effective,percent\nECB,2026-07-01,2.15\nECB, 2026-13-01,2.15\n", "up.csv")
            .unwrap_err();
        assert_eq!(err.to_string(), "up.csv:3:6: invalid date `2026-13-01` in column `effective`");
        assert_eq!(t, before, "nothing half-applied");

        let err = t.apply_overrides("table,effective,percent\nFED,2026-07-01,2.15\n", "up.csv").unwrap_err();
        assert_eq!(err.to_string(), "up.csv:2:1: unknown table `FED` in column `table`");
        let err = t.apply_overrides("table,effective,percent\nECB,2026-07-01,2,15\n", "up.csv").unwrap_err();
        assert_eq!(err.to_string(), "up.csv:2: expected 3 columns, found 4 in `ECB,2026-07-01,2,15`");
        let err = t.apply_overrides("table,effective,percent\nBOE,2026-07-01,abc\n", "up.csv").unwrap_err();
        assert_eq!(err.to_string(), "up.csv:2:16: invalid rate `abc` in column `percent`");
        let err = t.apply_overrides("# c\ndate,rate\n", "up.csv").unwrap_err();
        assert_eq!(err.to_string(), "up.csv:2: the header is `date,rate`, expected `table,effective,percent`");
        let err = t.apply_overrides("table,effective,percent\nBASE,2026-08-01,1\n", "up.csv").unwrap_err();
        assert_eq!(err.to_string(), "up.csv:2:6: invalid half-year `2026-08-01` in column `effective`");
        let err =
            t.apply_overrides("table,effective,percent\nBASE,2026H2,1\nbase,2026-07-01,2\n", "up.csv").unwrap_err();
        assert!(err.to_string().starts_with("up.csv:3:6: a second rate"), "{err}");
        let err = t.load_overrides(Path::new("/nonexistent/rates.csv")).unwrap_err();
        assert!(err.to_string().starts_with("cannot read the rate file `/nonexistent/rates.csv`"), "{err}");
        assert_eq!(t, before);
    }
}
