//! Rate schedules built on the reference tables: a reference rate, plus a margin, applied per
//! half-year or fixed when interest starts.

use std::sync::Arc;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::{HalfYear, RateError, RatePeriod, RateSchedule, RateTables};

/// Which reference rate, and on which date of each half-year it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reference {
    /// ECB MRO in force on 1 January / 1 July (Code de commerce L441-10, Directive 2011/7/EU).
    Ecb,
    /// BoE Bank Rate at close of business on 31 December / 30 June (UK Late Payment of
    /// Commercial Debts (Rate of Interest) (No 3) Order 2002).
    Boe,
    /// Bundesbank Basiszinssatz of the half-year (BGB §247).
    Base,
}

/// How the rate applies over the life of a debt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Application {
    /// A new rate at each half-year boundary: the days of each half-year bear that half-year's
    /// rate.
    PerHalfYear,
    /// One rate for the whole debt: the rate of the half-year in which interest starts.
    FixedAtStart,
}

/// A schedule: a reference rate (+ margin) applied per half-year or fixed at the start.
#[derive(Debug, Clone)]
pub struct ReferenceSchedule {
    name: String,
    tables: Arc<RateTables>,
    reference: Reference,
    margin: Decimal,
    application: Application,
}

/// The names accepted by [`reference()`].
pub fn reference_names() -> &'static [&'static str] {
    &["ECB", "BOE", "BASE"]
}

/// The reference-rate schedule named `name` (`ECB`, `BOE`, `BASE`, any case), without margin
/// (the engine adds the points of `with interest ECB + N points`). The rate changes at each
/// half-year boundary; see the [module documentation](super) for the reference dates.
pub fn reference(name: &str, tables: &Arc<RateTables>) -> Option<Arc<dyn RateSchedule>> {
    let reference = match name.trim().to_ascii_uppercase().as_str() {
        "ECB" => Reference::Ecb,
        "BOE" => Reference::Boe,
        "BASE" => Reference::Base,
        _ => return None,
    };
    let canonical = match reference {
        Reference::Ecb => "ECB",
        Reference::Boe => "BOE",
        Reference::Base => "BASE",
    };
    Some(Arc::new(ReferenceSchedule::new(
        canonical,
        Arc::clone(tables),
        reference,
        Decimal::ZERO,
        Application::PerHalfYear,
    )))
}

impl ReferenceSchedule {
    pub(crate) fn new(
        name: &str,
        tables: Arc<RateTables>,
        reference: Reference,
        margin: Decimal,
        application: Application,
    ) -> ReferenceSchedule {
        ReferenceSchedule { name: name.to_string(), tables, reference, margin, application }
    }

    /// The margin added to the reference rate, in percentage points.
    pub fn margin(&self) -> Decimal {
        self.margin
    }

    fn table_name(&self) -> &'static str {
        match self.reference {
            Reference::Ecb => "ECB",
            Reference::Boe => "BOE",
            Reference::Base => "BASE",
        }
    }

    /// The date on which the reference rate of `half` is read.
    fn reference_date(&self, half: HalfYear) -> NaiveDate {
        match self.reference {
            Reference::Ecb | Reference::Base => half.start(),
            Reference::Boe => half.start().pred_opt().unwrap_or(half.start()),
        }
    }

    /// The reference rate of `half`, when the table covers it.
    fn reference_rate(&self, half: HalfYear) -> Option<Decimal> {
        match self.reference {
            Reference::Ecb => self.tables.ecb().rate_on(self.reference_date(half)),
            Reference::Boe => self.tables.boe().rate_on(self.reference_date(half)),
            Reference::Base => self.tables.basiszinssatz().rate(half),
        }
    }

    /// The first and last half-years whose rate is known.
    fn known_half_years(&self) -> Option<(HalfYear, HalfYear)> {
        match self.reference {
            Reference::Base => {
                let t = self.tables.basiszinssatz();
                Some((t.first()?, t.last()?))
            }
            Reference::Ecb | Reference::Boe => {
                let t = match self.reference {
                    Reference::Ecb => self.tables.ecb(),
                    _ => self.tables.boe(),
                };
                let (first, last) = (t.first_date()?, t.confirmed_through()?);
                // The first half-year whose reference date is on or after the first row.
                let mut lo = HalfYear::containing(first);
                while self.reference_date(lo) < first {
                    lo = lo.next();
                }
                let mut hi = HalfYear::containing(last).next();
                while self.reference_date(hi) > last {
                    hi = hi.prev();
                }
                (lo <= hi).then_some((lo, hi))
            }
        }
    }

    /// The latest known reference rate (reused by `rates assume unchanged`).
    fn last_known_rate(&self) -> Option<Decimal> {
        match self.reference {
            Reference::Ecb => self.tables.ecb().last_rate(),
            Reference::Boe => self.tables.boe().last_rate(),
            Reference::Base => self.tables.basiszinssatz().last_rate(),
        }
    }

    fn convention(&self) -> &'static str {
        match self.reference {
            Reference::Ecb => "the rate in force on 1 January / 1 July",
            Reference::Boe => "the rate on 31 December / 30 June",
            Reference::Base => "the rate published for each half-year",
        }
    }

    fn covered_text(&self) -> String {
        let confirmed = match self.reference {
            Reference::Ecb => self.tables.ecb().confirmed_through().map(|d| d.to_string()),
            Reference::Boe => self.tables.boe().confirmed_through().map(|d| d.to_string()),
            Reference::Base => self.tables.basiszinssatz().last().map(|h| h.to_string()),
        };
        match (self.known_half_years(), confirmed) {
            (Some((lo, hi)), Some(confirmed)) => format!(
                "{} to {} ({}; the `{}` table is confirmed through {})",
                lo.start(),
                hi.end(),
                self.convention(),
                self.table_name(),
                confirmed
            ),
            _ => "no date (the table is empty)".to_string(),
        }
    }

    /// The rate (reference + margin) for the days of `half`, from `from` on.
    fn rate_for(
        &self,
        half: HalfYear,
        from: NaiveDate,
        assume_unchanged: bool,
    ) -> Result<(Decimal, Option<String>), RateError> {
        if let Some(rate) = self.reference_rate(half) {
            return Ok((rate + self.margin, None));
        }
        let unknown =
            || RateError::Unknown { table: self.table_name().to_string(), date: from, covered: self.covered_text() };
        let known = self.known_half_years();
        let after_coverage = matches!(known, Some((_, hi)) if half > hi);
        if !(assume_unchanged && after_coverage) {
            return Err(unknown());
        }
        let last = self.last_known_rate().ok_or_else(unknown)?;
        let warning = format!(
            "the `{}` rate for {} ({} on {}) is not in the rate table, which covers {}: the last known rate, {}%, is assumed unchanged because `rates assume unchanged` is set; add the real rate to the rate file",
            self.table_name(),
            half,
            match self.reference {
                Reference::Base => "published".to_string(),
                _ => "in force".to_string(),
            },
            self.reference_date(half),
            self.covered_text(),
            last.normalize()
        );
        Ok((last + self.margin, Some(warning)))
    }
}

impl RateSchedule for ReferenceSchedule {
    fn name(&self) -> &str {
        &self.name
    }

    fn periods(&self, first: NaiveDate, last: NaiveDate, assume_unchanged: bool) -> Result<Vec<RatePeriod>, RateError> {
        if last < first {
            return Ok(Vec::new());
        }
        match self.application {
            Application::FixedAtStart => {
                let (percent, assumed) = self.rate_for(HalfYear::containing(first), first, assume_unchanged)?;
                Ok(vec![RatePeriod { from: first, to: last, percent, assumed }])
            }
            Application::PerHalfYear => {
                let mut out = Vec::new();
                let mut half = HalfYear::containing(first);
                let end = HalfYear::containing(last);
                while half <= end {
                    let from = half.start().max(first);
                    let to = half.end().min(last);
                    let (percent, assumed) = self.rate_for(half, from, assume_unchanged)?;
                    out.push(RatePeriod { from, to, percent, assumed });
                    half = half.next();
                }
                Ok(out)
            }
        }
    }
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
    fn ecb_reference_is_read_on_1_january_and_1_july() {
        let tables = Arc::new(RateTables::builtin());
        let ecb = reference("ecb", &tables).unwrap();
        assert_eq!(ecb.name(), "ECB");
        // 2012H2: the 0.75 cut took effect on 2012-07-11, so 1 July 2012 still had 1.00.
        let p = ecb.periods(d(2012, 6, 20), d(2013, 1, 5), false).unwrap();
        assert_eq!(
            p.iter().map(|p| (p.from, p.to, p.percent)).collect::<Vec<_>>(),
            vec![
                (d(2012, 6, 20), d(2012, 6, 30), dec!(1.00)),
                (d(2012, 7, 1), d(2012, 12, 31), dec!(1.00)),
                (d(2013, 1, 1), d(2013, 1, 5), dec!(0.75)),
            ]
        );
    }

    #[test]
    fn boe_reference_is_read_on_31_december_and_30_june() {
        let tables = Arc::new(RateTables::builtin());
        let boe = reference("BOE", &tables).unwrap();
        // rates.json uk_per_half_year: 2022H2 reference 2022-06-30 → 1.25; 2023H1 → 3.50.
        let p = boe.periods(d(2022, 12, 30), d(2023, 1, 2), false).unwrap();
        assert_eq!(p[0].percent, dec!(1.25));
        assert_eq!(p[1].percent, dec!(3.50));
    }

    #[test]
    fn coverage_text_names_dates() {
        let tables = Arc::new(RateTables::builtin());
        let ecb = reference("ECB", &tables).unwrap();
        let err = ecb.periods(d(2026, 7, 1), d(2026, 7, 2), false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no `ECB` rate is known for 2026-07-01: the table covers 2009-01-01 to 2026-06-30 (the rate in force on 1 January / 1 July; the `ECB` table is confirmed through 2026-02-05)"
        );
        let base = reference("BASE", &tables).unwrap();
        let err = base.periods(d(2009, 12, 1), d(2010, 1, 2), true).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("no `BASE` rate is known for 2009-12-01: the table covers 2010-01-01 to 2026-06-30"),
            "{err}"
        );
        assert!(reference("FED", &tables).is_none());
    }
}
