//! Payment terms: parse `"30 days net"`, `"45 jours fin de mois"`, `"fin de mois le 10"`… and
//! compute the due date from the issue date.
//!
//! # Accepted forms (case-insensitive, spaces free)
//!
//! | form | examples | due date |
//! |------|----------|----------|
//! | N days (net) | `30 days net`, `60 days`, `net 30`, `30 jours net`, `30 jours`, `30j`, `30` | issue + N days |
//! | N days end of month | `45 days end of month`, `45 jours fin de mois`, `45j fdm`, `45 days eom` | see [`EomReading`] |
//! | end of month + N | `end of month + 10`, `fin de mois + 10`, `end of month`, `fin de mois` | last day of the issue month + N days |
//! | end of month, on day N | `fin de mois le 10`, `end of month the 10th` | day N of the month after the issue month (the month's last day when shorter) |
//!
//! # The two readings of "45 days end of month"
//!
//! French practice knows two computations of *45 jours fin de mois*:
//! - [`EomReading::DaysThenEndOfMonth`] (the **default**): add 45 days to the issue date, then go
//!   to the end of that month. 2 January 2014 + 45 days = 16 February, end of month:
//!   **28 February 2014**.
//! - [`EomReading::EndOfMonthThenDays`]: go to the end of the issue month, then add 45 days.
//!   31 January 2014 + 45 days = **17 March 2014**.
//!
//! The default is the first because it is the more common reading: the DGCCRF and the
//! Commission d'examen des pratiques commerciales (CEPC) describe "+45 days, then end of month"
//! as the computation most commonly used, while accepting the other when the parties agreed it.
//! Choose the other by configuration when your contracts say so.
//!
//! # French legal cap
//!
//! Code de commerce art. L441-10 I caps agreed payment terms at 60 days from the invoice date,
//! or, when expressly agreed, 45 days end of month from the invoice date.
//! [`Terms::exceeds_fr_cap`] warns when the due date of the terms is later than both. Sector
//! exceptions (transport, perishable goods, export…) are not modelled.

use std::collections::HashMap;
use std::fmt;

use crate::recent::Recent;
use chrono::{Datelike, Days, NaiveDate};

/// How to compute "N days end of month" (see the [module documentation](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EomReading {
    /// Last day of the issue month, then + N days.
    EndOfMonthThenDays,
    /// Issue date + N days, then the last day of that month (the default: the more common
    /// reading in French practice).
    #[default]
    DaysThenEndOfMonth,
}

/// Parsed payment terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Terms {
    /// `30 days net`: issue + N days.
    Net {
        /// Days after the issue date.
        days: u32,
    },
    /// `45 days end of month`: depends on the [`EomReading`].
    DaysEndOfMonth {
        /// Days.
        days: u32,
    },
    /// `end of month + 10`: last day of the issue month + N days.
    EndOfMonthPlus {
        /// Days after the end of the month.
        days: u32,
    },
    /// `fin de mois le 10`: day N of the month after the issue month.
    EndOfMonthOnDay {
        /// Day of the following month (1–31; a shorter month gives its last day).
        day: u32,
    },
}

/// Terms that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum TermsError {
    /// Not a recognised form.
    #[error("cannot read the payment terms `{input}`")]
    #[diagnostic(
        code(relance::terms::unknown),
        help(
            "write the terms as `30 days net`, `60 days`, `45 days end of month`, `end of month + 10`, or in French `30 jours net`, `45 jours fin de mois`, `fin de mois le 10`"
        )
    )]
    Unrecognised {
        /// The terms as given.
        input: String,
    },
    /// A number of days or a day of the month out of range.
    #[error("the payment terms `{input}` give {value} days: at most {max} are accepted")]
    #[diagnostic(code(relance::terms::range), help("check the number in the payment terms"))]
    OutOfRange {
        /// The terms as given.
        input: String,
        /// The number found.
        value: u64,
        /// The largest accepted.
        max: u32,
    },
    /// A day of the month that does not exist.
    #[error("the payment terms `{input}` name day {value} of the month")]
    #[diagnostic(code(relance::terms::day), help("the day of the month is between 1 and 31"))]
    BadDay {
        /// The terms as given.
        input: String,
        /// The day found.
        value: u64,
    },
}

/// The largest number of days accepted in terms (ten years).
pub const MAX_DAYS: u32 = 3660;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Num(u64),
    Word(String),
    Plus,
}

fn tokenize(input: &str) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_ascii_digit() {
            let mut n: u64 = 0;
            while let Some(&c) = chars.peek() {
                match c.to_digit(10) {
                    Some(v) => {
                        n = n.saturating_mul(10).saturating_add(u64::from(v));
                        chars.next();
                    }
                    None => break,
                }
            }
            toks.push(Tok::Num(n));
        } else if c.is_alphabetic() {
            let mut w = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_alphabetic() {
                    w.extend(c.to_lowercase());
                    chars.next();
                } else {
                    break;
                }
            }
            toks.push(Tok::Word(w));
        } else {
            if c == '+' {
                toks.push(Tok::Plus);
            }
            // Spaces, commas, dots, hyphens and other punctuation separate words.
            chars.next();
        }
    }
    toks
}

fn is_days_word(w: &str) -> bool {
    matches!(w, "day" | "days" | "d" | "jour" | "jours" | "j" | "calendar")
}

fn is_net_word(w: &str) -> bool {
    matches!(w, "net" | "nets" | "nette" | "nettes")
}

/// Consumes an end-of-month phrase at `toks[i..]`, returning the index after it.
fn end_of_month(toks: &[Tok], i: usize) -> Option<usize> {
    let words: Vec<&str> = toks[i..]
        .iter()
        .map_while(|t| match t {
            Tok::Word(w) => Some(w.as_str()),
            _ => None,
        })
        .collect();
    let phrases: [&[&str]; 7] = [
        &["end", "of", "the", "month"],
        &["end", "of", "month"],
        &["fin", "de", "mois"],
        &["fin", "du", "mois"],
        &["eom"],
        &["fdm"],
        &["fm"],
    ];
    phrases.iter().find(|p| words.starts_with(p)).map(|p| i + p.len())
}

impl Terms {
    /// Parses payment terms (forms in the [module documentation](self)).
    pub fn parse(input: &str) -> Result<Terms, TermsError> {
        let toks = tokenize(input);
        let unrecognised = || TermsError::Unrecognised { input: input.trim().to_string() };
        let days = |n: u64| -> Result<u32, TermsError> {
            u32::try_from(n).ok().filter(|d| *d <= MAX_DAYS).ok_or(TermsError::OutOfRange {
                input: input.trim().to_string(),
                value: n,
                max: MAX_DAYS,
            })
        };
        let word = |i: usize| match toks.get(i) {
            Some(Tok::Word(w)) => Some(w.as_str()),
            _ => None,
        };
        // `net 30 [days]`
        if let (Some(w), Some(Tok::Num(n))) = (word(0), toks.get(1)) {
            if !is_net_word(w) {
                return Err(unrecognised());
            }
            let rest = if word(2).is_some_and(is_days_word) { 3 } else { 2 };
            return if rest == toks.len() { Ok(Terms::Net { days: days(*n)? }) } else { Err(unrecognised()) };
        }
        // `N days [net]` / `N days end of month`
        if let Some(Tok::Num(n)) = toks.first() {
            let mut i = 1;
            if word(i).is_some_and(is_days_word) {
                i += 1;
            }
            if i == toks.len() {
                return Ok(Terms::Net { days: days(*n)? });
            }
            if word(i).is_some_and(is_net_word) && i + 1 == toks.len() {
                return Ok(Terms::Net { days: days(*n)? });
            }
            if end_of_month(&toks, i) == Some(toks.len()) {
                return Ok(Terms::DaysEndOfMonth { days: days(*n)? });
            }
            return Err(unrecognised());
        }
        // `end of month [+ N [days]]` / `end of month le N` / `end of month the Nth`
        if let Some(i) = end_of_month(&toks, 0) {
            if i == toks.len() {
                return Ok(Terms::EndOfMonthPlus { days: 0 });
            }
            // `le 10`, `the 10th`, `on day 10`
            let on_day = matches!(word(i), Some("le" | "the" | "on"));
            let num_at = if on_day && word(i + 1) == Some("day") { i + 2 } else { i + 1 };
            match (toks.get(i), toks.get(num_at)) {
                (Some(Tok::Plus), Some(Tok::Num(n))) => {
                    let end = if word(i + 2).is_some_and(is_days_word) { i + 3 } else { i + 2 };
                    if end == toks.len() {
                        return Ok(Terms::EndOfMonthPlus { days: days(*n)? });
                    }
                }
                (Some(Tok::Word(_)), Some(Tok::Num(n))) if on_day => {
                    let end = if matches!(word(num_at + 1), Some("th" | "st" | "nd" | "rd")) {
                        num_at + 2
                    } else {
                        num_at + 1
                    };
                    if end == toks.len() {
                        if !(1..=31).contains(n) {
                            return Err(TermsError::BadDay { input: input.trim().to_string(), value: *n });
                        }
                        return Ok(Terms::EndOfMonthOnDay { day: u32::try_from(*n).unwrap_or(31) });
                    }
                }
                _ => {}
            }
        }
        Err(unrecognised())
    }

    /// The due date of an invoice issued on `issue` with these terms. Saturates at the largest
    /// date chrono represents (only reachable with dates near year 262000).
    pub fn due_date(&self, issue: NaiveDate, reading: EomReading) -> NaiveDate {
        match *self {
            Terms::Net { days } => add_days(issue, days),
            Terms::DaysEndOfMonth { days } => match reading {
                EomReading::DaysThenEndOfMonth => end_of_month_of(add_days(issue, days)),
                EomReading::EndOfMonthThenDays => add_days(end_of_month_of(issue), days),
            },
            Terms::EndOfMonthPlus { days } => add_days(end_of_month_of(issue), days),
            Terms::EndOfMonthOnDay { day } => {
                let next_month_start = end_of_month_of(issue).succ_opt().unwrap_or(NaiveDate::MAX);
                let last = end_of_month_of(next_month_start).day();
                next_month_start.with_day(day.min(last)).unwrap_or(next_month_start)
            }
        }
    }

    /// Whether these terms can put a due date beyond the French legal cap at all (see
    /// [`Terms::exceeds_fr_cap`]): not when, whatever the issue date and reading, the due
    /// date is at most 60 days after the issue date (`60 days net`, `end of month + 30`: a
    /// month ends at most 30 days after any of its days) or at most 45 days end of month
    /// (`45 days end of month` read either way, and `end of month, on day N`, which stays
    /// in the month after the issue month).
    pub fn may_exceed_fr_cap(&self) -> bool {
        match *self {
            Terms::Net { days } => days > 60,
            Terms::DaysEndOfMonth { days } => days > 45,
            Terms::EndOfMonthPlus { days } => days > 30,
            Terms::EndOfMonthOnDay { .. } => false,
        }
    }

    /// A warning when these terms, for an invoice issued on `issue`, give a due date beyond the
    /// French legal cap (Code de commerce L441-10 I): later than both 60 days from the issue
    /// date and 45 days end of month (computed with the same `reading`).
    pub fn exceeds_fr_cap(&self, issue: NaiveDate, reading: EomReading) -> Option<String> {
        let due = self.due_date(issue, reading);
        let sixty = add_days(issue, 60);
        let forty_five_eom = Terms::DaysEndOfMonth { days: 45 }.due_date(issue, reading);
        if due > sixty && due > forty_five_eom {
            Some(format!(
                "payment terms `{self}` put the due date of an invoice issued on {issue} on {due}, beyond the French legal cap (Code de commerce L441-10: 60 days from the invoice date, {sixty}, or 45 days end of month, {forty_five_eom})"
            ))
        } else {
            None
        }
    }
}

impl fmt::Display for Terms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Terms::Net { days } => write!(f, "{days} days net"),
            Terms::DaysEndOfMonth { days } => write!(f, "{days} days end of month"),
            Terms::EndOfMonthPlus { days: 0 } => write!(f, "end of month"),
            Terms::EndOfMonthPlus { days } => write!(f, "end of month + {days}"),
            Terms::EndOfMonthOnDay { day } => write!(f, "end of month, on day {day}"),
        }
    }
}

impl std::str::FromStr for Terms {
    type Err = TermsError;
    fn from_str(s: &str) -> Result<Terms, TermsError> {
        Terms::parse(s)
    }
}

/// The due date for `terms` (text) on an invoice issued on `issue`.
pub fn due_date_from_terms(terms: &str, issue: NaiveDate, reading: EomReading) -> Result<NaiveDate, TermsError> {
    Ok(Terms::parse(terms)?.due_date(issue, reading))
}

fn add_days(date: NaiveDate, days: u32) -> NaiveDate {
    date.checked_add_days(Days::new(u64::from(days))).unwrap_or(NaiveDate::MAX)
}

/// The last day of `date`'s month.
pub fn end_of_month_of(date: NaiveDate) -> NaiveDate {
    let (y, m) = (date.year(), date.month());
    let first_next = if m == 12 { NaiveDate::from_ymd_opt(y + 1, 1, 1) } else { NaiveDate::from_ymd_opt(y, m + 1, 1) };
    first_next.and_then(|d| d.pred_opt()).unwrap_or(NaiveDate::MAX)
}

/// One warning per invoice of `portfolio` whose payment terms (its extra column `terms`,
/// where the loader keeps them) exceed the French legal cap (see [`Terms::exceeds_fr_cap`]);
/// invoices without terms or issue date, or with terms that do not parse, are not
/// concerned. The loader gives the same warnings while it reads the rows when asked
/// ([`LoadOptions::fr_cap_warnings`](crate::load::LoadOptions::fr_cap_warnings)), which is
/// what `relance plan` does when the scenarios say `law FR`, whether it keeps the terms or
/// not.
pub fn fr_cap_warnings(portfolio: &relance_engine::Portfolio, reading: EomReading) -> Vec<String> {
    use rayon::prelude::*;
    // Invoices are read in parallel, in order: the warnings come out in invoice order.
    portfolio
        .invoices
        .par_iter()
        .with_min_len(4096)
        .map_init(
            || FrCapCheck::new(reading),
            |check, inv| check.warning(&inv.id, inv.extra.get("terms"), inv.issue_date),
        )
        .flatten()
        .collect()
}

/// Checks invoices one by one against the French legal cap, as [`fr_cap_warnings`] does.
/// Exports repeat a handful of terms texts and issue dates: each text is parsed once (terms
/// that cannot exceed the cap are then not looked at again) and each (terms, issue date)
/// checked once.
pub(crate) struct FrCapCheck {
    reading: EomReading,
    /// The last few texts looked up and their terms: exports use a handful of texts, found
    /// here by comparing a few bytes, without hashing.
    recent: Recent<Option<Terms>, 4>,
    parsed: HashMap<relance_engine::model::CompactString, Option<Terms>, relance_engine::fxhash::Fx>,
    checked: HashMap<(Terms, NaiveDate), bool, relance_engine::fxhash::Fx>,
}

impl FrCapCheck {
    pub(crate) fn new(reading: EomReading) -> Self {
        FrCapCheck { reading, recent: Recent::new(), parsed: HashMap::default(), checked: HashMap::default() }
    }

    /// The warning for the invoice `id` with these terms and issue date, if they exceed the
    /// cap; none without terms or issue date, or when the terms do not parse.
    pub(crate) fn warning(&mut self, id: &str, terms: Option<&str>, issue: Option<NaiveDate>) -> Option<String> {
        let (text, issue) = (terms?, issue?);
        let terms = match self.recent.get(text) {
            Some(terms) => terms?,
            None => {
                let terms = match self.parsed.get(text) {
                    Some(t) => *t,
                    None => {
                        let terms = Terms::parse(text).ok().filter(Terms::may_exceed_fr_cap);
                        *self.parsed.entry(text.into()).or_insert(terms)
                    }
                };
                self.recent.put(text, terms);
                terms?
            }
        };
        let reading = self.reading;
        let exceeds =
            *self.checked.entry((terms, issue)).or_insert_with(|| terms.exceeds_fr_cap(issue, reading).is_some());
        if !exceeds {
            return None;
        }
        terms.exceeds_fr_cap(issue, reading).map(|w| format!("invoice `{id}`: {w}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// The warnings of a large portfolio (read in parallel) come out in invoice order, one
    /// per invoice beyond the cap, as the invoices are checked one by one.
    #[test]
    fn fr_cap_warnings_follow_invoice_order() {
        use relance_engine::model::{Invoice, Portfolio};
        let base = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let texts = ["30 days net", "90 days net", "45 jours fin de mois", "end of month + 75", "nonsense", ""];
        let mut p = Portfolio::default();
        for k in 0..20_000u64 {
            let issue = base.checked_add_days(Days::new(k % 97)).unwrap();
            let mut inv =
                Invoice::new(format!("F{k:06}"), "C1", issue, rust_decimal::Decimal::ONE, iso_currency::Currency::EUR);
            inv.issue_date = (k % 11 != 0).then_some(issue);
            let t = texts[(k % 6) as usize];
            if !t.is_empty() {
                inv.extra.insert("terms", t);
            }
            p.invoices.push(inv);
        }
        let want: Vec<String> = p
            .invoices
            .iter()
            .filter_map(|inv| {
                let terms = Terms::parse(inv.extra.get("terms")?).ok()?;
                terms
                    .exceeds_fr_cap(inv.issue_date?, EomReading::default())
                    .map(|w| format!("invoice `{}`: {w}", inv.id))
            })
            .collect();
        assert!(want.len() > 4000, "{}", want.len());
        assert_eq!(fr_cap_warnings(&p, EomReading::default()), want);
    }

    #[test]
    fn parses_the_documented_forms() {
        let cases = [
            ("30 days net", Terms::Net { days: 30 }),
            ("60 days", Terms::Net { days: 60 }),
            ("  60   DAYS ", Terms::Net { days: 60 }),
            ("net 30", Terms::Net { days: 30 }),
            ("30 jours net", Terms::Net { days: 30 }),
            ("30 jours nets", Terms::Net { days: 30 }),
            ("30j", Terms::Net { days: 30 }),
            ("45 days end of month", Terms::DaysEndOfMonth { days: 45 }),
            ("45 jours fin de mois", Terms::DaysEndOfMonth { days: 45 }),
            ("45 Jours Fin De Mois", Terms::DaysEndOfMonth { days: 45 }),
            ("45j fdm", Terms::DaysEndOfMonth { days: 45 }),
            ("end of month + 10", Terms::EndOfMonthPlus { days: 10 }),
            ("end of month +10 days", Terms::EndOfMonthPlus { days: 10 }),
            ("fin de mois + 10", Terms::EndOfMonthPlus { days: 10 }),
            ("fin de mois", Terms::EndOfMonthPlus { days: 0 }),
            ("fin de mois le 10", Terms::EndOfMonthOnDay { day: 10 }),
            ("end of month the 10th", Terms::EndOfMonthOnDay { day: 10 }),
        ];
        for (text, want) in cases {
            assert_eq!(Terms::parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        for text in ["", "soon", "30 days fin", "net", "end of month + ", "fin de mois le 0", "30 days net please"] {
            assert!(Terms::parse(text).is_err(), "{text}");
        }
        assert_eq!(
            Terms::parse("99999 days").unwrap_err().to_string(),
            "the payment terms `99999 days` give 99999 days: at most 3660 are accepted"
        );
        assert_eq!(Terms::parse("soon").unwrap_err().to_string(), "cannot read the payment terms `soon`");
        assert_eq!(
            Terms::parse("fin de mois le 32").unwrap_err().to_string(),
            "the payment terms `fin de mois le 32` name day 32 of the month"
        );
    }

    #[test]
    fn display_round_trips() {
        for text in
            ["30 days net", "45 days end of month", "end of month + 10", "end of month", "end of month, on day 10"]
        {
            assert_eq!(Terms::parse(text).unwrap().to_string(), text);
        }
    }
}
