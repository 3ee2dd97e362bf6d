//! Format-independent row handling: header resolution, cell conversion and building of
//! customers, invoices and payments. The CSV, JSON and Excel readers feed rows into a
//! [`Builder`]; [`Builder::finish`] checks ids and references and returns the portfolio.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use chrono::NaiveDate;
use iso_currency::Currency;
use rayon::prelude::*;
use relance_engine::IndexedPortfolio;
use relance_engine::model::{CompactString, Customer, Extra, Invoice, Payment, PaymentKind, Portfolio, cmp_text};
use relance_engine::money;
use rust_decimal::Decimal;

use super::error::{Collector, LoadError, LoadErrorKind};
use super::parse::{parse_bool, parse_currency, parse_date, parse_decimal, trim};
use super::{DateFormat, LoadErrors, LoadOptions};
use crate::recent::Recent;
use crate::terms::{FrCapCheck, due_date_from_terms};
use relance_engine::fxhash::Fx;

/// The three tables of a portfolio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Customers,
    Invoices,
    Payments,
}

impl Table {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Customers => "customers",
            Self::Invoices => "invoices",
            Self::Payments => "payments",
        }
    }

    fn fields(self) -> &'static [&'static str] {
        match self {
            Self::Customers => &C_FIELDS,
            Self::Invoices => &I_FIELDS,
            Self::Payments => &P_FIELDS,
        }
    }

    fn row_name(self) -> &'static str {
        match self {
            Self::Customers => "customer",
            Self::Invoices => "invoice",
            Self::Payments => "payment",
        }
    }
}

/// The fields of this table, in column-index order (also the names `portfolio.toml` maps).
pub(crate) const C_FIELDS: [&str; 8] = ["id", "name", "segment", "email", "phone", "language", "tags", "avg_days_late"];
const C_ID: usize = 0;
const C_NAME: usize = 1;
const C_SEGMENT: usize = 2;
const C_EMAIL: usize = 3;
const C_PHONE: usize = 4;
const C_LANGUAGE: usize = 5;
const C_TAGS: usize = 6;
const C_AVG: usize = 7;

/// The fields of this table, in column-index order (also the names `portfolio.toml` maps).
pub(crate) const I_FIELDS: [&str; 12] = [
    "id",
    "customer_id",
    "issue_date",
    "due_date",
    "amount",
    "currency",
    "outstanding",
    "disputed",
    "promise_date",
    "promise_amount",
    "terms",
    "payment_plan",
];
const I_ID: usize = 0;
const I_CUSTOMER: usize = 1;
const I_ISSUE: usize = 2;
const I_DUE: usize = 3;
const I_AMOUNT: usize = 4;
const I_CURRENCY: usize = 5;
const I_OUTSTANDING: usize = 6;
const I_DISPUTED: usize = 7;
const I_PROMISE_DATE: usize = 8;
const I_PROMISE_AMOUNT: usize = 9;
const I_TERMS: usize = 10;
const I_PLAN: usize = 11;

/// The fields of this table, in column-index order (also the names `portfolio.toml` maps).
pub(crate) const P_FIELDS: [&str; 6] = ["id", "invoice_id", "date", "amount", "kind", "currency"];
const P_ID: usize = 0;
const P_INVOICE: usize = 1;
const P_DATE: usize = 2;
const P_AMOUNT: usize = 3;
const P_KIND: usize = 4;
const P_CURRENCY: usize = 5;

/// A cell as a reader sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cell<'a> {
    Empty,
    Text(&'a str),
    /// A float from a spreadsheet.
    Number(f64),
    /// A number as written in JSON (always with a decimal point).
    Numeric(&'a str),
    /// A date from a spreadsheet.
    Date(NaiveDate),
    Bool(bool),
    /// A spreadsheet error value (`#DIV/0!`).
    Error(&'a str),
}

/// One data row of a table.
pub(crate) trait Row {
    /// The cell in column `idx` of the header (missing trailing cells are empty).
    fn cell(&self, idx: usize) -> Cell<'_>;
    /// The 1-based line (or spreadsheet row) of the row.
    fn line(&self) -> usize;
}

/// Where a table comes from, for error messages.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) file: String,
    pub(crate) sheet: Option<String>,
    /// The header, as written.
    pub(crate) headers: Vec<String>,
    /// The 0-based spreadsheet column of header 0, for Excel letters.
    pub(crate) first_column: Option<u32>,
}

impl Source {
    pub(crate) fn error(
        &self,
        kind: LoadErrorKind,
        line: Option<usize>,
        col: Option<usize>,
        value: Option<String>,
        message: String,
        help: Option<String>,
    ) -> LoadError {
        let col = col.filter(|c| *c < self.headers.len());
        LoadError {
            kind,
            file: self.file.clone(),
            sheet: self.sheet.clone(),
            line,
            column: col.and_then(|c| self.headers.get(c).cloned()),
            column_letter: match (col, self.first_column) {
                (Some(c), Some(first)) => Some(column_letter(first as usize + c)),
                _ => None,
            },
            value,
            message,
            help,
        }
    }

    pub(crate) fn file_error(&self, kind: LoadErrorKind, message: String, help: Option<String>) -> LoadError {
        self.error(kind, None, None, None, message, help)
    }
}

/// `0` → `A`, `25` → `Z`, `26` → `AA`.
pub(crate) fn column_letter(mut idx: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (idx % 26) as u8);
        if idx < 26 {
            break;
        }
        idx = idx / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// A header name made comparable: trimmed, lowercase, spaces and dashes as `_`.
pub(crate) fn normalize_header(h: &str) -> String {
    h.trim()
        .trim_start_matches('\u{feff}')
        .trim()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .flat_map(char::to_lowercase)
        .collect()
}

/// The header resolved against the fields of a table.
#[derive(Debug, Clone)]
pub(crate) struct Columns {
    /// For each field of the table, the header index.
    field: Vec<Option<usize>>,
    /// Columns that are not fields: (key, header index), sorted by key. Each sink copies
    /// the keys once, and its rows' [`Extra`]s share its copies.
    extras: Vec<(Arc<str>, usize)>,
    width: usize,
}

impl Columns {
    fn get(&self, f: usize) -> Option<usize> {
        self.field.get(f).copied().flatten()
    }
}

/// A column holding text and whether the conversion came from a float.
struct Conv<'r> {
    src: &'r Source,
    line: usize,
    opts: &'r LoadOptions,
    /// The months of the chunk's dates.
    dates: &'r DateCache,
    /// The names of the extra columns (see [`RowSink::extra_keys`]).
    extra_keys: &'r [Arc<str>],
}

/// The days of the months whose dates a chunk has read, so that a `YYYY-MM-DD` text is
/// turned into a date by reading its digits and one array, instead of ≈ 190 instructions of
/// parsing and calendar checks each time: an export's dates fall in a few dozen months.
/// A month is looked up by its number modulo [`DateCache::MONTHS`]; the first date read of
/// a month not in the cache fills the month's slot with all its days.
struct DateCache {
    months: Box<[CachedMonth]>,
}

/// The days of one month: `key` is `year * 16 + month` (0 while the slot is empty).
struct CachedMonth {
    key: std::cell::Cell<u32>,
    len: std::cell::Cell<u8>,
    days: [std::cell::Cell<NaiveDate>; 31],
}

impl DateCache {
    /// Slots: 64 consecutive months (five years) without two in one slot.
    const MONTHS: usize = 64;

    fn new() -> Self {
        let empty = || CachedMonth {
            key: std::cell::Cell::new(0),
            len: std::cell::Cell::new(0),
            days: std::array::from_fn(|_| std::cell::Cell::new(NaiveDate::MIN)),
        };
        Self { months: (0..Self::MONTHS).map(|_| empty()).collect() }
    }

    /// The date written `text` when it is `YYYY-MM-DD` and a valid date: the same date as
    /// [`parse_date`] gives, whatever the date format; `None` otherwise (and for an invalid
    /// date, whose error [`parse_date`] then reports).
    #[inline]
    fn get(&self, text: &[u8; 10]) -> Option<NaiveDate> {
        let (year, month, day) = ymd_digits(text)?;
        if !(1..=12).contains(&month) || day == 0 {
            return None;
        }
        let key = year * 16 + month;
        let slot = self.months.get((year as usize * 12 + month as usize) % Self::MONTHS)?;
        if slot.key.get() != key {
            let mut len = 0;
            for (d, cell) in (1..).zip(&slot.days) {
                match NaiveDate::from_ymd_opt(year as i32, month, d) {
                    Some(date) => {
                        cell.set(date);
                        len += 1;
                    }
                    None => break,
                }
            }
            if len == 0 {
                return None;
            }
            slot.key.set(key);
            slot.len.set(len);
        }
        if day > u32::from(slot.len.get()) {
            return None;
        }
        slot.days.get(day as usize - 1).map(std::cell::Cell::get)
    }
}

/// The year, month and day of a `YYYY-MM-DD` text (any digits: the ranges are the
/// caller's), its first eight bytes read as one word instead of byte by byte.
#[inline(always)]
fn ymd_digits(text: &[u8; 10]) -> Option<(u32, u32, u32)> {
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    const HIGH: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    // Bytes 4 and 7 of `YYYY-MM-` (little-endian), which must be dashes.
    const DASH_BYTES: u64 = 0xff00_00ff_0000_0000;
    const DASHES: u64 = 0x2d00_002d_0000_0000;
    let [head @ .., d0, d1] = *text;
    let head = u64::from_le_bytes(head);
    if head & DASH_BYTES != DASHES || !d0.is_ascii_digit() || !d1.is_ascii_digit() {
        return None;
    }
    // The dashes as zeros; then every byte a digit: its high nibble is 3, and still 3 once
    // 6 is added (no byte is above `9`; no carry crosses bytes, all being below 0x40).
    let head = (head & !DASH_BYTES) | (ZEROS & DASH_BYTES);
    if head & HIGH != ZEROS || head.wrapping_add(0x0606_0606_0606_0606) & HIGH != ZEROS {
        return None;
    }
    let v = head - ZEROS;
    let digit = |i: u32| ((v >> (8 * i)) & 0xff) as u32;
    let year = digit(0) * 1000 + digit(1) * 100 + digit(2) * 10 + digit(3);
    let month = digit(5) * 10 + digit(6);
    let day = u32::from(d0 - b'0') * 10 + u32::from(d1 - b'0');
    Some((year, month, day))
}

fn show(cell: Cell<'_>) -> String {
    match cell {
        Cell::Empty => String::new(),
        Cell::Text(s) | Cell::Error(s) | Cell::Numeric(s) => trim(s).to_string(),
        Cell::Number(f) => f.to_string(),
        Cell::Date(d) => d.to_string(),
        Cell::Bool(b) => b.to_string(),
    }
}

impl Conv<'_> {
    fn err(
        &self,
        kind: LoadErrorKind,
        col: usize,
        cell: Cell<'_>,
        message: String,
        help: impl Into<String>,
    ) -> Box<LoadError> {
        Box::new(self.src.error(kind, Some(self.line), Some(col), Some(show(cell)), message, Some(help.into())))
    }

    fn cell_error(&self, col: usize, cell: Cell<'_>) -> Box<LoadError> {
        self.err(
            LoadErrorKind::CellError,
            col,
            cell,
            format!("the cell holds the error `{}`", show(cell)),
            "fix the formula in the workbook, or type the value",
        )
    }

    /// The cell's text, trimmed; `None` when empty. An empty cell and a text without
    /// spaces at its ends (most cells) are answered inline, every other cell by
    /// [`Conv::other_text`].
    #[inline]
    fn text<'c>(&self, cell: Cell<'c>, col: usize) -> Result<Option<Cow<'c, str>>, Box<LoadError>> {
        match cell {
            Cell::Empty | Cell::Text("") => Ok(None),
            Cell::Text(s)
                if s.as_bytes().first().is_some_and(u8::is_ascii_graphic)
                    && s.as_bytes().last().is_some_and(u8::is_ascii_graphic) =>
            {
                Ok(Some(Cow::Borrowed(s)))
            }
            _ => self.other_text(cell, col),
        }
    }

    /// [`Conv::text`] of any other cell.
    #[inline(never)]
    fn other_text<'c>(&self, cell: Cell<'c>, col: usize) -> Result<Option<Cow<'c, str>>, Box<LoadError>> {
        Ok(match cell {
            Cell::Empty => None,
            Cell::Text(s) => {
                let s = trim(s);
                if s.is_empty() { None } else { Some(Cow::Borrowed(s)) }
            }
            Cell::Numeric(s) => Some(Cow::Borrowed(trim(s))),
            Cell::Error(_) => return Err(self.cell_error(col, cell)),
            other => Some(Cow::Owned(show(other))),
        })
    }

    fn required_text<'c>(&self, cell: Cell<'c>, col: usize, table: Table) -> Result<Cow<'c, str>, Box<LoadError>> {
        match self.text(cell, col)? {
            Some(t) => Ok(t),
            None => Err(self.missing(col, table)),
        }
    }

    fn missing(&self, col: usize, table: Table) -> Box<LoadError> {
        let name = self.src.headers.get(col).map(String::as_str).unwrap_or("");
        Box::new(self.src.error(
            LoadErrorKind::MissingValue,
            Some(self.line),
            Some(col),
            Some(String::new()),
            format!("`{name}` is empty"),
            Some(format!("every {} needs a `{name}`", table.row_name())),
        ))
    }

    #[inline]
    fn date(&self, cell: Cell<'_>, col: usize) -> Result<Option<NaiveDate>, Box<LoadError>> {
        match cell {
            Cell::Empty | Cell::Text("") => Ok(None),
            Cell::Text(s) if let Some(d) = s.as_bytes().as_array().and_then(|t| self.dates.get(t)) => Ok(Some(d)),
            _ => self.other_date(cell, col),
        }
    }

    /// [`Conv::date`] of a cell that is not a `YYYY-MM-DD` text.
    #[inline(never)]
    fn other_date(&self, cell: Cell<'_>, col: usize) -> Result<Option<NaiveDate>, Box<LoadError>> {
        // The help is worked out only for a cell that is not a date.
        let help = || match (self.opts.date_format, cell) {
            (DateFormat::Iso, Cell::Text(s)) if parse_date(s, DateFormat::DayMonthYear).is_some() => {
                "expected a date like `2026-03-31` (or set date format dd/mm/yyyy)"
            }
            (DateFormat::Iso, _) => "expected a date like `2026-03-31`",
            (DateFormat::DayMonthYear, _) => "expected a date like `31/03/2026` (day/month/year) or `2026-03-31`",
        };
        match cell {
            Cell::Empty => Ok(None),
            Cell::Date(d) => Ok(Some(d)),
            Cell::Text(s) if trim(s).is_empty() => Ok(None),
            Cell::Text(s) => match parse_date(s, self.opts.date_format) {
                Some(d) => Ok(Some(d)),
                None => {
                    Err(self.err(LoadErrorKind::BadDate, col, cell, format!("`{}` is not a date", trim(s)), help()))
                }
            },
            Cell::Error(_) => Err(self.cell_error(col, cell)),
            other => Err(self.err(
                LoadErrorKind::BadDate,
                col,
                other,
                format!("`{}` is not a date", show(other)),
                format!("{}; in a workbook, format the cell as a date", help()),
            )),
        }
    }

    /// An amount; floats from spreadsheets go through their shortest text form and are
    /// rounded to `currency`'s minor unit when it is known.
    #[inline]
    fn amount(
        &self,
        cell: Cell<'_>,
        col: usize,
        currency: Option<Currency>,
    ) -> Result<Option<Decimal>, Box<LoadError>> {
        match cell {
            Cell::Empty | Cell::Text("") => Ok(None),
            Cell::Text(s)
                if let Some(v) = parse_decimal(s, self.opts.decimal_comma)
                    && !v.is_sign_negative() =>
            {
                Ok(Some(v))
            }
            _ => self.other_amount(cell, col, currency),
        }
    }

    /// [`Conv::amount`] of a cell that is neither empty nor a positive amount in text.
    #[inline(never)]
    fn other_amount(
        &self,
        cell: Cell<'_>,
        col: usize,
        currency: Option<Currency>,
    ) -> Result<Option<Decimal>, Box<LoadError>> {
        // The help is worked out only for a cell that is not an amount.
        let help = || match (self.opts.decimal_comma, cell) {
            (true, _) => "expected an amount like `1 234,56` or `1234,56` (decimal comma is set)",
            (false, Cell::Text(s)) if parse_decimal(s, true).is_some() => {
                "expected an amount like `1234.56` (or set decimal comma for `1 234,56`)"
            }
            (false, _) => "expected an amount like `1234.56`",
        };
        let value = match cell {
            Cell::Empty => return Ok(None),
            Cell::Text(s) if trim(s).is_empty() => return Ok(None),
            Cell::Text(s) => parse_decimal(s, self.opts.decimal_comma),
            Cell::Numeric(s) => s.parse::<Decimal>().ok().or_else(|| Decimal::from_scientific(s).ok()),
            Cell::Number(f) => float_to_decimal(f).map(|d| match currency {
                Some(c) => money::round(d, c),
                None => d,
            }),
            Cell::Error(_) => return Err(self.cell_error(col, cell)),
            Cell::Date(_) | Cell::Bool(_) => None,
        };
        match value {
            Some(v) if v.is_sign_negative() && !v.is_zero() => Err(self.err(
                LoadErrorKind::NegativeAmount,
                col,
                cell,
                format!("`{}` is negative", show(cell)),
                "amounts are positive; record a credit note in payments with kind `credit_note`",
            )),
            Some(v) => Ok(Some(v)),
            None => {
                Err(self.err(LoadErrorKind::BadAmount, col, cell, format!("`{}` is not an amount", show(cell)), help()))
            }
        }
    }

    fn number(&self, cell: Cell<'_>, col: usize) -> Result<Option<Decimal>, Box<LoadError>> {
        let value = match cell {
            Cell::Empty => return Ok(None),
            Cell::Text(s) if trim(s).is_empty() => return Ok(None),
            Cell::Text(s) => parse_decimal(s, self.opts.decimal_comma),
            Cell::Numeric(s) => s.parse::<Decimal>().ok().or_else(|| Decimal::from_scientific(s).ok()),
            Cell::Number(f) => float_to_decimal(f),
            Cell::Error(_) => return Err(self.cell_error(col, cell)),
            Cell::Date(_) | Cell::Bool(_) => None,
        };
        value.map(Some).ok_or_else(|| {
            self.err(
                LoadErrorKind::BadNumber,
                col,
                cell,
                format!("`{}` is not a number", show(cell)),
                if self.opts.decimal_comma { "expected a number like `12,5`" } else { "expected a number like `12.5`" },
            )
        })
    }

    #[inline]
    fn boolean(&self, cell: Cell<'_>, col: usize) -> Result<bool, Box<LoadError>> {
        match cell {
            Cell::Empty | Cell::Text("") => Ok(false),
            _ => self.other_boolean(cell, col),
        }
    }

    /// [`Conv::boolean`] of a cell that is not empty.
    #[inline(never)]
    fn other_boolean(&self, cell: Cell<'_>, col: usize) -> Result<bool, Box<LoadError>> {
        let v = match cell {
            Cell::Empty => Some(false),
            Cell::Bool(b) => Some(b),
            Cell::Text(s) => parse_bool(s),
            Cell::Number(0.0) => Some(false),
            Cell::Number(1.0) => Some(true),
            Cell::Numeric(s) => parse_bool(s),
            Cell::Error(_) => return Err(self.cell_error(col, cell)),
            _ => None,
        };
        v.ok_or_else(|| {
            self.err(
                LoadErrorKind::BadBoolean,
                col,
                cell,
                format!("`{}` is not a yes/no value", show(cell)),
                "use yes/no, true/false, oui/non, 1/0, `x` for yes, or leave the cell empty for no",
            )
        })
    }

    fn currency(&self, cell: Cell<'_>, col: usize) -> Result<Option<Currency>, Box<LoadError>> {
        match self.text(cell, col)? {
            None => Ok(None),
            Some(t) => parse_currency(&t).map(Some).ok_or_else(|| {
                self.err(
                    LoadErrorKind::BadCurrency,
                    col,
                    cell,
                    format!("`{t}` is not an ISO 4217 currency code"),
                    "use a three-letter code like `EUR`, `GBP` or `USD`",
                )
            }),
        }
    }
}

/// A float from a spreadsheet as a decimal, through its shortest round-trip text.
pub(crate) fn float_to_decimal(f: f64) -> Option<Decimal> {
    if let Some(d) = short_decimal(f) {
        return Some(d);
    }
    if !f.is_finite() {
        return None;
    }
    let s = f.to_string();
    s.parse::<Decimal>().ok().or_else(|| Decimal::from_scientific(&format!("{f:e}")).ok())
}

/// [`float_to_decimal`] without a text, for a float whose shortest text has up to 15
/// digits after the point and whose digits, as a whole number, are below 2^50 (an amount):
/// the same digits and scale (a property test compares them); `None` for any other float.
///
/// The shortest text is the fewest digits after the point whose decimal reads back as `f`,
/// found scale by scale: at scale `s` a decimal `m / 10^s` reads back as `f` exactly when
/// the division `m / 10^s` of two exact floats gives `f` (both are correctly rounded
/// values of the same number). Below 2^50 the decimals that read back as `f` at one scale
/// lie in an interval narrower than half a unit, so there is at most one, and it is within
/// one of `f × 10^s` rounded.
fn short_decimal(f: f64) -> Option<Decimal> {
    const LIMIT: f64 = (1u64 << 50) as f64;
    if f == 0.0 || !f.is_finite() {
        return None;
    }
    let mut power = 1.0;
    for scale in 0..=15 {
        let near = (f * power).round();
        if near.abs() >= LIMIT {
            return None;
        }
        if let Some(m) = [near, near - 1.0, near + 1.0].into_iter().find(|m| m / power == f) {
            return Decimal::try_new(m as i64, scale).ok();
        }
        power *= 10.0;
    }
    None
}

/// Resolves a header against a table's fields and the mapping; reports missing columns.
pub(crate) fn resolve(
    table: Table,
    src: &Source,
    opts: &LoadOptions,
    errors: &mut Collector,
    mapping_help: &str,
) -> Option<Columns> {
    let normalized: Vec<String> = src.headers.iter().map(|h| normalize_header(h)).collect();
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(normalized.len());
    let mut ok = true;
    for (i, h) in normalized.iter().enumerate() {
        if h.is_empty() {
            continue;
        }
        if index.insert(h.as_str(), i).is_some() {
            errors.push(src.error(
                LoadErrorKind::DuplicateColumn,
                Some(1),
                Some(i),
                None,
                format!("the column `{}` appears twice in the header", src.headers[i].trim()),
                Some("rename or remove one of the two columns".to_string()),
            ));
            ok = false;
        }
    }
    let map = opts.mapping.table(table);
    let fields = table.fields();
    let mut field = vec![None; fields.len()];
    let mut used = vec![false; normalized.len()];
    for (f, name) in fields.iter().enumerate() {
        let wanted = map.get(*name).map(|h| normalize_header(h));
        let found = index.get(wanted.as_deref().unwrap_or(name)).copied();
        if let (Some(theirs), None) = (map.get(*name), found) {
            errors.push(src.file_error(
                LoadErrorKind::MissingColumn,
                format!("the mapping sends `{}` to the column `{theirs}`, which is not in the header", name),
                Some(format!("the header has {}; fix `{}.{name}` in {mapping_help}", list(&src.headers), table.name())),
            ));
            ok = false;
            continue;
        }
        if let Some(i) = found {
            field[f] = Some(i);
            used[i] = true;
        }
    }
    // Required columns.
    let require = |f: usize, extra_help: &str, errors: &mut Collector| {
        if field[f].is_none() && !map.contains_key(fields[f]) {
            errors.push(src.file_error(
                LoadErrorKind::MissingColumn,
                format!("the column `{}` is missing", fields[f]),
                Some(format!(
                    "the header has {}; name a column `{}`{extra_help}, or map yours with `{}.{} = \"Your header\"` in {mapping_help}",
                    list(&src.headers),
                    fields[f],
                    table.name(),
                    fields[f]
                )),
            ));
            false
        } else {
            true
        }
    };
    match table {
        Table::Customers => {
            for f in [C_ID, C_NAME, C_SEGMENT] {
                ok &= require(f, "", errors);
            }
        }
        Table::Invoices => {
            for f in [I_ID, I_CUSTOMER, I_AMOUNT] {
                ok &= require(f, "", errors);
            }
            if opts.default_currency.is_none() {
                ok &= require(I_CURRENCY, " (or set a default currency)", errors);
            }
            let can_compute = field[I_ISSUE].is_some() && field[I_TERMS].is_some();
            if !can_compute {
                ok &= require(I_DUE, " (or give `issue_date` and `terms` to compute it)", errors);
            }
        }
        Table::Payments => {
            for f in [P_INVOICE, P_DATE, P_AMOUNT] {
                ok &= require(f, "", errors);
            }
        }
    }
    // The extra columns, unless the options keep only those a plan reads.
    let kept = |h: &str| match (&opts.extra_columns, table) {
        (Some(keep), Table::Customers) => keep.customer.contains(h),
        (Some(keep), Table::Invoices) => keep.invoice.contains(h),
        _ => true,
    };
    let mut extras: Vec<(Arc<str>, usize)> = normalized
        .iter()
        .enumerate()
        .filter(|(i, h)| !used[*i] && !h.is_empty() && kept(h))
        .map(|(i, h)| (Arc::from(h.as_str()), i))
        .collect();
    // The payment terms are a field (for due dates and the French cap) and, when wanted,
    // the extra column `terms` of the model too (`invoice.terms`): the column the field
    // reads, rather than another one headed `terms` when the mapping sends the field
    // elsewhere.
    if table == Table::Invoices
        && let Some(i) = field[I_TERMS]
        && kept(I_FIELDS[I_TERMS])
    {
        extras.retain(|(key, _)| **key != *I_FIELDS[I_TERMS]);
        extras.push((Arc::from(I_FIELDS[I_TERMS]), i));
    }
    extras.sort();
    ok.then_some(Columns { field, extras, width: src.headers.len() })
}

fn list(headers: &[String]) -> String {
    if headers.is_empty() {
        return "no columns".to_string();
    }
    headers.iter().map(|h| format!("`{}`", h.trim())).collect::<Vec<_>>().join(", ")
}

/// Where a row's ids live, to check references after all rows are read.
#[derive(Debug, Clone, Copy)]
struct RowRef {
    table: u32,
    line: u32,
}

/// Where the rows of one table live, as runs: a table's rows usually sit on consecutive
/// lines of one source, so a run per source (plus one after each blank line, multi-line
/// record or refused row) replaces a `(source, line)` per row: at most 8 bytes a row, plus 8
/// a source.
#[derive(Debug, Default)]
struct RowLines {
    /// `(first row, its line)`: the rows of a run are on consecutive lines.
    runs: Vec<(u32, u32)>,
    /// `(first row, source)`: the source changes at these rows (each also starts a run).
    sources: Vec<(u32, u32)>,
    len: usize,
}

impl RowLines {
    fn push(&mut self, table: usize, line: usize) {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let (row, table, line) = (clamp(self.len), clamp(table), clamp(line));
        if self.sources.last().is_none_or(|&(_, t)| t != table) {
            self.sources.push((row, table));
            self.runs.push((row, line));
        } else if self.runs.last().is_none_or(|&(r, l)| u64::from(l) + u64::from(row - r) != u64::from(line)) {
            self.runs.push((row, line));
        }
        self.len += 1;
    }

    /// The source and line of row `i` (of a row that was pushed).
    fn get(&self, i: usize) -> RowRef {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        let at = |v: &[(u32, u32)]| v.partition_point(|&(r, _)| r <= i).checked_sub(1).and_then(|k| v.get(k).copied());
        RowRef {
            table: at(&self.sources).map_or(u32::MAX, |(_, t)| t),
            line: at(&self.runs).map_or(0, |(r, l)| l.saturating_add(i - r)),
        }
    }
}

/// Accumulates rows of all tables, then checks references.
///
/// Rows are converted by [`RowSink`]s (one per chunk of a file, on any thread) and merged
/// in file order with [`Builder::merge`].
pub(crate) struct Builder<'o> {
    opts: &'o LoadOptions,
    pub(crate) errors: Collector,
    portfolio: Portfolio,
    sources: Vec<(Source, Table, Columns)>,
    customer_rows: RowLines,
    invoice_rows: RowLines,
    payment_rows: RowLines,
    /// Payments whose amount came from a float, rounded once the invoice currency is known.
    float_payments: Vec<usize>,
    /// Ids of rows that failed to load (references to them are not reported again).
    failed_customers: HashSet<CompactString, Fx>,
    failed_invoices: HashSet<CompactString, Fx>,
    /// See [`LoadOptions::fr_cap_warnings`]: added after the other warnings.
    fr_cap_warnings: Vec<String>,
    mapping_help: String,
}

/// The rows of one chunk of one table, converted; merged into a [`Builder`] in file order.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Part {
    handle: usize,
    customers: Vec<Customer>,
    invoices: Vec<Invoice>,
    payments: Vec<Payment>,
    /// The line of each accepted row, relative to the chunk (see [`Builder::merge`]).
    lines: Vec<usize>,
    /// Indices in `payments` of amounts that came from a float.
    float_payments: Vec<usize>,
    /// Ids of rows that failed.
    failed: Vec<CompactString>,
    /// The first [`LoadErrors::CAP`] errors of the chunk, in line order.
    errors: Vec<LoadError>,
    /// Errors not kept.
    not_shown: usize,
    /// Warnings of invoices beyond the French legal cap, in row order (see
    /// [`LoadOptions::fr_cap_warnings`]).
    fr_cap_warnings: Vec<String>,
}

impl Part {
    /// Rows accepted so far.
    pub(crate) fn len(&self) -> usize {
        self.lines.len()
    }
}

/// Converts the rows of one table into a [`Part`]. Borrows the table's header resolution
/// only, so several sinks of one table can run on several threads.
pub(crate) struct RowSink<'b> {
    opts: &'b LoadOptions,
    src: &'b Source,
    table: Table,
    cols: &'b Columns,
    part: Part,
    /// The currency codes of the last rows, as written, with what they read as.
    recent_currencies: Recent<Currency, 4>,
    /// Checks invoices against the French legal cap, when asked.
    fr_cap: Option<FrCapCheck>,
    /// The months of this chunk's dates (see [`DateCache`]).
    dates: DateCache,
    /// The names of the extra columns, in [`Columns::extras`] order, copied for this sink:
    /// each row's [`Extra`] shares them, and the reference counts that this changes are
    /// then this thread's alone. Sharing the table's own names from every thread made
    /// their counts' cache line go back and forth between the processors (at 10^6
    /// invoices, ≈ 1 % of `relance plan`'s time in that one instruction).
    extra_keys: Vec<Arc<str>>,
}

impl RowSink<'_> {
    /// Reads one data row.
    pub(crate) fn row(&mut self, row: &impl Row) {
        let conv =
            Conv { src: self.src, line: row.line(), opts: self.opts, dates: &self.dates, extra_keys: &self.extra_keys };
        let part = &mut self.part;
        let failed = match self.table {
            Table::Customers => match build_customer(&conv, self.cols, row) {
                Ok(c) => {
                    part.customers.push(c);
                    None
                }
                Err(e) => Some(e),
            },
            Table::Invoices => match build_invoice(&conv, self.cols, row, &mut self.recent_currencies) {
                Ok((i, terms)) => {
                    if let Some(w) = self.fr_cap.as_mut().and_then(|c| c.warning(&i.id, terms.as_deref(), i.issue_date))
                    {
                        part.fr_cap_warnings.push(w);
                    }
                    part.invoices.push(i);
                    None
                }
                Err(e) => Some(e),
            },
            Table::Payments => match build_payment(&conv, self.cols, row) {
                Ok((p, from_float)) => {
                    if from_float {
                        part.float_payments.push(part.payments.len());
                    }
                    part.payments.push(p);
                    None
                }
                Err(e) => Some((None, e)),
            },
        };
        match failed {
            None => part.lines.push(row.line()),
            Some((id, e)) => {
                part.failed.extend(id);
                self.error(*e);
            }
        }
    }

    /// Makes room for `rows` rows (an upper bound of the rows of the chunk).
    pub(crate) fn reserve(&mut self, rows: usize) {
        let part = &mut self.part;
        match self.table {
            Table::Customers => part.customers.reserve_exact(rows),
            Table::Invoices => part.invoices.reserve_exact(rows),
            Table::Payments => part.payments.reserve_exact(rows),
        }
        part.lines.reserve_exact(rows);
    }

    /// Records an error of this chunk.
    pub(crate) fn error(&mut self, e: LoadError) {
        if self.part.errors.len() < LoadErrors::CAP {
            self.part.errors.push(e);
        } else {
            self.part.not_shown += 1;
        }
    }

    /// Reports a row with a wrong number of fields.
    pub(crate) fn field_count(&mut self, line: usize, got: usize) {
        let e = self.src.error(
            LoadErrorKind::FieldCount,
            Some(line),
            None,
            None,
            format!("the line has {got} fields but the header has {}", self.cols.width),
            Some("check the delimiter (`,` or `;`) and that text with the delimiter is in double quotes".to_string()),
        );
        self.error(e);
    }

    /// The converted rows.
    pub(crate) fn finish(self) -> Part {
        self.part
    }
}

/// Makes [`RowSink`]s for one table (see [`Builder::split`]).
pub(crate) struct Sinks<'b> {
    opts: &'b LoadOptions,
    src: &'b Source,
    table: Table,
    cols: &'b Columns,
    handle: usize,
}

impl<'b> Sinks<'b> {
    /// Where the rows of one chunk go.
    pub(crate) fn sink(&self) -> RowSink<'b> {
        RowSink {
            opts: self.opts,
            src: self.src,
            table: self.table,
            cols: self.cols,
            part: Part { handle: self.handle, ..Part::default() },
            recent_currencies: Recent::new(),
            fr_cap: (self.opts.fr_cap_warnings && self.table == Table::Invoices)
                .then(|| FrCapCheck::new(self.opts.eom_reading)),
            dates: DateCache::new(),
            extra_keys: self.cols.extras.iter().map(|(key, _)| Arc::from(&**key)).collect(),
        }
    }
}

/// Appends the parts of one table to a [`Builder`] (see [`Builder::split`]).
pub(crate) struct Merger<'b> {
    handle: usize,
    table: Table,
    portfolio: &'b mut Portfolio,
    errors: &'b mut Collector,
    rows: &'b mut RowLines,
    float_payments: &'b mut Vec<usize>,
    failed_customers: &'b mut HashSet<CompactString, Fx>,
    failed_invoices: &'b mut HashSet<CompactString, Fx>,
    fr_cap_warnings: &'b mut Vec<String>,
}

impl Merger<'_> {
    /// Appends the rows and errors of a chunk of the table, whose lines are counted from
    /// `line_offset` (each line `l` of the part is line `l + line_offset` of the file).
    /// Parts must be merged in file order.
    pub(crate) fn merge(&mut self, part: Part, line_offset: usize) {
        let Part {
            handle,
            mut customers,
            mut invoices,
            mut payments,
            lines,
            float_payments,
            failed,
            errors,
            not_shown,
            mut fr_cap_warnings,
        } = part;
        if handle != self.handle {
            return;
        }
        for l in lines {
            self.rows.push(handle, l + line_offset);
        }
        let p = &mut *self.portfolio;
        // The rows are moved on all threads: the portfolio's vectors are fresh memory, and
        // most of a merge is the system's first touch of their pages (≈ 2.4 ms a block of
        // invoices at 10^6, on the thread that merges while the others parse the next block).
        match self.table {
            Table::Customers => {
                p.customers.par_extend(customers.par_drain(..));
                self.failed_customers.extend(failed);
            }
            Table::Invoices => {
                p.invoices.par_extend(invoices.par_drain(..));
                self.failed_invoices.extend(failed);
                self.fr_cap_warnings.append(&mut fr_cap_warnings);
            }
            Table::Payments => {
                let base = p.payments.len();
                self.float_payments.extend(float_payments.into_iter().map(|i| base + i));
                p.payments.par_extend(payments.par_drain(..));
            }
        }
        for mut e in errors {
            e.line = e.line.map(|l| l + line_offset);
            self.errors.push(e);
        }
        self.errors.skip(not_shown);
    }
}

impl<'o> Builder<'o> {
    pub(crate) fn new(opts: &'o LoadOptions, mapping_help: impl Into<String>) -> Self {
        Self {
            opts,
            errors: Collector::default(),
            portfolio: Portfolio::default(),
            sources: Vec::new(),
            customer_rows: RowLines::default(),
            invoice_rows: RowLines::default(),
            payment_rows: RowLines::default(),
            float_payments: Vec::new(),
            failed_customers: HashSet::default(),
            failed_invoices: HashSet::default(),
            fr_cap_warnings: Vec::new(),
            mapping_help: mapping_help.into(),
        }
    }

    /// Registers a table's header. Returns a handle for [`Builder::split`], or `None` when
    /// the header is unusable (errors are recorded).
    pub(crate) fn table(&mut self, table: Table, src: Source) -> Option<usize> {
        let cols = resolve(table, &src, self.opts, &mut self.errors, &self.mapping_help)?;
        if table == Table::Payments {
            for (key, i) in &cols.extras {
                self.portfolio.warnings.push(format!(
                    "{}: the column `{}` is not used (payments have no extra columns; `{key}` is ignored)",
                    src.file,
                    src.headers[*i].trim()
                ));
            }
        }
        self.sources.push((src, table, cols));
        Some(self.sources.len() - 1)
    }

    /// Makes room for `rows` more rows of the table `handle` (an estimate; unused capacity
    /// is never touched, so costs no memory).
    pub(crate) fn reserve(&mut self, handle: usize, rows: usize) {
        // `try_reserve`: an estimate too large for the machine is not worth an abort.
        let p = &mut self.portfolio;
        let _ = match self.sources.get(handle).map(|s| s.1) {
            Some(Table::Customers) => p.customers.try_reserve(rows),
            Some(Table::Invoices) => p.invoices.try_reserve(rows),
            Some(Table::Payments) => p.payments.try_reserve(rows),
            None => Ok(()),
        };
    }

    /// Appends the rows and errors of a chunk, whose lines are counted from `line_offset`
    /// (each line `l` of the part is line `l + line_offset` of the file). Parts must be
    /// merged in file order.
    pub(crate) fn merge(&mut self, part: Part, line_offset: usize) {
        if let Some((_, mut merger)) = self.split(part.handle) {
            merger.merge(part, line_offset);
        }
    }

    /// The sinks of the table `handle` and what merges its parts, usable at the same time:
    /// a reader can convert the next chunks while the parts before them are appended.
    pub(crate) fn split(&mut self, handle: usize) -> Option<(Sinks<'_>, Merger<'_>)> {
        let (src, table, cols) = self.sources.get(handle)?;
        let rows = match table {
            Table::Customers => &mut self.customer_rows,
            Table::Invoices => &mut self.invoice_rows,
            Table::Payments => &mut self.payment_rows,
        };
        Some((
            Sinks { opts: self.opts, src, table: *table, cols, handle },
            Merger {
                handle,
                table: *table,
                portfolio: &mut self.portfolio,
                errors: &mut self.errors,
                rows,
                float_payments: &mut self.float_payments,
                failed_customers: &mut self.failed_customers,
                failed_invoices: &mut self.failed_invoices,
                fr_cap_warnings: &mut self.fr_cap_warnings,
            },
        ))
    }

    fn ref_error(
        &self,
        at: RowRef,
        field: usize,
        kind: LoadErrorKind,
        value: &str,
        message: String,
        help: String,
    ) -> LoadError {
        match self.sources.get(at.table as usize) {
            Some((src, _, cols)) => {
                src.error(kind, Some(at.line as usize), cols.get(field), Some(value.to_string()), message, Some(help))
            }
            None => LoadError::file(kind, "", message, Some(help)),
        }
    }

    /// Checks ids and references; the portfolio, or every error found.
    pub(crate) fn finish(mut self) -> Result<Loaded, LoadErrors> {
        let p = &self.portfolio;
        let mut errs = std::mem::take(&mut self.errors);
        // Customer ids are looked up once per invoice (see `CustomerIds`). Invoice ids are
        // only compared when 32 bits of their hashes match.
        let (customers, repeated) = CustomerIds::new(&p.customers);
        let invoice_id = |i: usize| p.invoices[i].id.as_bytes();
        let is_invoice = |i: usize, key: &[u8]| p.invoices[i].id.as_bytes() == key;

        // Customers: repeated ids (each reported against the first row with that id).
        for i in repeated {
            let c = &p.customers[i];
            let first = customers.get(c.id.as_bytes()).unwrap_or(i);
            let first_line = self.customer_rows.get(first).line;
            errs.push(self.ref_error(
                self.customer_rows.get(i),
                C_ID,
                LoadErrorKind::DuplicateId,
                &c.id,
                format!("the customer id `{}` is already used on line {first_line}", c.id),
                "give each customer its own id, or remove the repeated row".to_string(),
            ));
        }

        // Invoices: repeated ids, unknown customers; one pass that also fills the index.
        let failed_customers = &self.failed_customers;
        // Each run of invoices is read once (at 10^6 invoices a pass over them costs ≈ 40 ms
        // on a busy day, memory-bound): their customers are looked up, by batches (see
        // `get_all`), the order of their ids checked, and their ids hashed for the invoice index
        // when it is needed (see below).
        const RUN: usize = 4096;
        // The entries are written in place (a copy through per-run buffers would hold both).
        let mut entries: Vec<u64> = vec![0; p.invoices.len().min(IdIndex::ROWS)];
        // The row of each invoice's customer, for the sort (see `LoadOptions::sort_for_evaluation`).
        let mut customer_of: Vec<u32> = if self.opts.sort_for_evaluation { vec![0; entries.len()] } else { Vec::new() };
        let mut customer_of_runs: Vec<&mut [u32]> = customer_of.chunks_mut(RUN).collect();
        customer_of_runs.resize_with(entries.len().div_ceil(RUN), Default::default);
        // Exports list invoices by number (in France, numbers follow each other in time by
        // law), and payments by invoice: then no id is repeated and each payment's invoice is
        // found by walking the invoices in step with the payments, without the index of the
        // invoice ids (at 10^6 invoices, hashing the ids and sorting the entries took
        // ≈ 30 ms). A run of invoices whose ids go up is hashed only if another one does not.
        let payments_in_order = p.payments.par_windows(2).all(|w| cmp_text(&w[0].invoice_id, &w[1].invoice_id).is_le());
        let fill = |r: usize, entries: &mut [u64], run: &[Invoice]| {
            for ((i, inv), e) in (r * RUN..).zip(run).zip(entries) {
                *e = IdIndex::entry(inv.id.as_bytes(), i);
            }
        };
        let runs: Vec<(Vec<usize>, bool, RunPayments)> = entries
            .par_chunks_mut(RUN)
            .zip(customer_of_runs)
            .zip(p.invoices.par_chunks(RUN))
            .enumerate()
            .map(|(r, ((entries, rows), run))| {
                let mut found = vec![None; run.len()];
                customers.get_all(run, &mut found);
                for (row, f) in rows.iter_mut().zip(&found) {
                    *row = f.map_or(u32::MAX, |r| r as u32);
                }
                // Whether the ids of the run (from the last one of the run before) go up.
                let from = (r * RUN).saturating_sub(1);
                let increasing = p.invoices.get(from..r * RUN + run.len()).unwrap_or_default().windows(2).all(|w| {
                    let [a, b] = w else { return true };
                    cmp_text(&a.id, &b.id).is_lt()
                });
                // The run's payments are found while its rows are in the cache; without the
                // index if every run's ids go up (else these are dropped).
                let paid = if increasing && payments_in_order {
                    payments_of_run(run, r * RUN, &p.payments)
                } else {
                    fill(r, entries, run);
                    RunPayments::default()
                };
                let unknown = found.iter().zip(run).enumerate();
                let unknown =
                    unknown.filter(|(_, (f, inv))| f.is_none() && !failed_customers.contains(&inv.customer_id));
                (unknown.map(|(k, _)| r * RUN + k).collect(), increasing, paid)
            })
            .collect();
        let in_step =
            payments_in_order && entries.len() == p.invoices.len() && runs.iter().all(|(_, increasing, _)| *increasing);
        let skipped: Vec<bool> = runs.iter().map(|(_, increasing, _)| *increasing && payments_in_order).collect();
        let mut targets: Vec<Option<usize>> = vec![None; p.payments.len()];
        let mut overpaid_in_step = Vec::new();
        let mut unknown = Vec::new();
        for (u, _, paid) in runs {
            unknown.extend(u);
            if in_step && let Some(out) = targets.get_mut(paid.from..paid.from + paid.rows.len()) {
                out.copy_from_slice(&paid.rows);
                overpaid_in_step.extend(paid.overpaid);
            }
        }
        // The customer index is no longer needed: give its memory back before the invoice
        // index is built.
        drop(customers);
        let (invoices, repeated) = if in_step {
            drop(entries);
            (None, Vec::new())
        } else {
            // The runs not hashed above, whose ids went up while others did not.
            entries.par_chunks_mut(RUN).zip(p.invoices.par_chunks(RUN)).zip(skipped).enumerate().for_each(
                |(r, ((entries, run), skipped))| {
                    if skipped {
                        fill(r, entries, run);
                    }
                },
            );
            let (index, repeated) = IdIndex::from_entries(entries, invoice_id);
            (Some(index), repeated)
        };
        let mut repeated = repeated.into_iter().peekable();
        let mut unknown = unknown.into_iter().peekable();
        loop {
            let i = match (repeated.peek(), unknown.peek()) {
                (Some(&r), Some(&u)) => r.min(u),
                (Some(&r), None) => r,
                (None, Some(&u)) => u,
                (None, None) => break,
            };
            let inv = &p.invoices[i];
            if repeated.next_if_eq(&i).is_some() {
                let first = invoices.as_ref().and_then(|x| x.get(inv.id.as_bytes(), is_invoice)).unwrap_or(i);
                let first_line = self.invoice_rows.get(first).line;
                errs.push(self.ref_error(
                    self.invoice_rows.get(i),
                    I_ID,
                    LoadErrorKind::DuplicateId,
                    &inv.id,
                    format!("the invoice id `{}` is already used on line {first_line}", inv.id),
                    "give each invoice its own id, or remove the repeated row".to_string(),
                ));
            }
            if unknown.next_if_eq(&i).is_some() {
                errs.push(self.ref_error(
                    self.invoice_rows.get(i),
                    I_CUSTOMER,
                    LoadErrorKind::UnknownCustomer,
                    &inv.customer_id,
                    format!("no customer has the id `{}`", inv.customer_id),
                    "add the customer to the customers table, or fix the id".to_string(),
                ));
            }
        }

        // Payments: repeated ids, unknown invoices, totals.
        // Their invoices were found in the pass above when their ids go up; else in the
        // index. Invoices are far apart in memory: their lookups go by batches (see `get_all`).
        if let Some(index) = &invoices {
            targets.par_chunks_mut(4096).zip(p.payments.par_chunks(4096)).for_each(|(out, run)| {
                index.get_all(run, |pay| pay.invoice_id.as_bytes(), is_invoice, out);
            });
        }
        drop(invoices);
        // Payment ids are optional: index those given.
        let with_id: Vec<usize> =
            p.payments.iter().enumerate().filter(|(_, x)| x.id.is_some()).map(|(i, _)| i).collect();
        let payment_id = |k: usize| p.payments[with_id[k]].id.as_deref().unwrap_or_default().as_bytes();
        // Ids that go up (exports list payments by number) repeat none: no index then.
        let ascending = (1..with_id.len()).into_par_iter().all(|k| payment_id(k - 1) < payment_id(k));
        let (payment_ids, repeated) = if ascending {
            (None, Vec::new())
        } else {
            let (index, repeated) = IdIndex::build(with_id.len(), payment_id);
            (Some(index), repeated)
        };
        let mut repeated = repeated.into_iter().map(|k| with_id[k]).peekable();
        let mut paid: Vec<(usize, Decimal)> = Vec::with_capacity(if in_step { 0 } else { p.payments.len() });
        let mut rounding = Vec::new();
        for (i, (pay, target)) in p.payments.iter().zip(targets).enumerate() {
            if repeated.next_if_eq(&i).is_some()
                && let Some(id) = &pay.id
            {
                let first = payment_ids
                    .as_ref()
                    .and_then(|x| x.get(id.as_bytes(), |k, key| payment_id(k) == key))
                    .and_then(|k| with_id.get(k).copied())
                    .unwrap_or(i);
                let first_line = self.payment_rows.get(first).line;
                errs.push(self.ref_error(
                    self.payment_rows.get(i),
                    P_ID,
                    LoadErrorKind::DuplicateId,
                    id,
                    format!("the payment id `{id}` is already used on line {first_line}"),
                    "give each payment its own id, or remove the repeated row".to_string(),
                ));
            }
            match target {
                Some(inv) => {
                    if !in_step {
                        paid.push((inv, pay.amount));
                    }
                    if self.float_payments.binary_search(&i).is_ok() {
                        rounding.push((i, p.invoices[inv].currency));
                    }
                }
                None if self.failed_invoices.contains(&pay.invoice_id) => {}
                None => errs.push(self.ref_error(
                    self.payment_rows.get(i),
                    P_INVOICE,
                    LoadErrorKind::UnknownInvoice,
                    &pay.invoice_id,
                    format!("no invoice has the id `{}`", pay.invoice_id),
                    "add the invoice to the invoices table (paid invoices may stay there), or fix the id".to_string(),
                )),
            }
        }
        // Totals per invoice, added in payment order (a stable sort), on all threads; added
        // in the pass over the invoices when their payments were found there.
        let warnings: Vec<String> = if in_step {
            overpaid_in_step
        } else {
            paid.par_sort_by_key(|(inv, _)| *inv);
            paid.par_chunk_by(|a, b| a.0 == b.0)
                .filter_map(|run| overpaid(&p.invoices[run[0].0], run.iter().map(|(_, amount)| *amount).sum()))
                .collect()
        };
        errs.finish()?;
        for (i, currency) in rounding {
            if let Some(pay) = self.portfolio.payments.get_mut(i) {
                pay.amount = money::round(pay.amount, currency);
            }
        }
        self.portfolio.warnings.extend(warnings);
        self.portfolio.warnings.append(&mut self.fr_cap_warnings);
        // Give back capacity reserved from an estimate that was too high.
        let p = &mut self.portfolio;
        if p.customers.capacity() > p.customers.len() + p.customers.len() / 8 {
            p.customers.shrink_to_fit();
        }
        if p.invoices.capacity() > p.invoices.len() + p.invoices.len() / 8 {
            p.invoices.shrink_to_fit();
        }
        if p.payments.capacity() > p.payments.len() + p.payments.len() / 8 {
            p.payments.shrink_to_fit();
        }
        // Sorted once the indexes above are freed (see `Loaded`), with the customers found
        // for them.
        Ok(Loaded { portfolio: std::mem::take(&mut self.portfolio), customer_of, sort: self.opts.sort_for_evaluation })
    }
}

#[cfg(test)]
impl Builder<'_> {
    /// The rows of all tables so far.
    pub(crate) fn portfolio_len(&self) -> usize {
        let p = &self.portfolio;
        p.customers.len() + p.invoices.len() + p.payments.len()
    }
}

/// A portfolio loaded, before the sort that the options may ask for
/// ([`LoadOptions::sort_for_evaluation`]).
pub(crate) struct Loaded {
    portfolio: Portfolio,
    /// The row of each invoice's customer, found when the references were checked, when the
    /// sort was asked for (all of them up to `IdIndex::ROWS` invoices).
    customer_of: Vec<u32>,
    /// The sort was asked for.
    sort: bool,
}

impl Loaded {
    /// The portfolio, sorted when the options asked for it.
    pub(crate) fn into_portfolio(self) -> Portfolio {
        let Loaded { mut portfolio, customer_of, sort } = self;
        if sort {
            let matched = portfolio.sort_for_evaluation_by_customer(&customer_of);
            // (Beyond `IdIndex::ROWS` invoices the rows are not all known: the comparison sort.)
            debug_assert!(
                matched || customer_of.len() != portfolio.invoices.len(),
                "the loader's customer rows are the invoices'"
            );
        }
        portfolio
    }

    /// The portfolio sorted and indexed for evaluation, with the customers found for its
    /// invoices when the options asked for the sort.
    pub(crate) fn into_indexed(self) -> IndexedPortfolio {
        IndexedPortfolio::with_customers(self.portfolio, &self.customer_of)
    }
}

/// The payments of a run of invoices (see [`payments_of_run`]).
#[derive(Default)]
struct RunPayments {
    /// Where they start in the portfolio's payments.
    from: usize,
    /// The row of each one's invoice (`None` for an id between two of the run's).
    rows: Vec<Option<usize>>,
    /// The warnings of the run's invoices whose payments exceed their amount, in row order
    /// (see [`overpaid`]).
    overpaid: Vec<String>,
}

/// The payments whose invoice is among `run`, the invoices of rows `base..` (ids going up
/// strictly), when `payments` are listed by invoice id. They are found by two bisections,
/// then walked in step with the run, whose rows are in the processor's cache: each
/// invoice's total is added there too.
fn payments_of_run(run: &[Invoice], base: usize, payments: &[Payment]) -> RunPayments {
    let (Some(first), Some(last)) = (run.first(), run.last()) else { return RunPayments::default() };
    let from = payments.partition_point(|pay| cmp_text(&pay.invoice_id, &first.id).is_lt());
    let to = payments.partition_point(|pay| cmp_text(&pay.invoice_id, &last.id).is_le());
    let ours = payments.get(from..to).unwrap_or_default();
    let mut out = RunPayments { from, rows: Vec::with_capacity(ours.len()), overpaid: Vec::new() };
    // The invoice being added up (its position in the run) and its total so far.
    let mut total: Option<(usize, Decimal)> = None;
    let mut close = |total: Option<(usize, Decimal)>| {
        if let Some((k, sum)) = total
            && let Some(warning) = run.get(k).and_then(|inv| overpaid(inv, sum))
        {
            out.overpaid.push(warning);
        }
    };
    let mut at = 0;
    for pay in ours {
        // Every payment here names an id up to the run's last: the walk stays in the run.
        while run.get(at).is_some_and(|inv| cmp_text(&inv.id, &pay.invoice_id).is_lt()) {
            at += 1;
        }
        let found = run.get(at).is_some_and(|inv| inv.id == pay.invoice_id);
        if found {
            match &mut total {
                Some((k, sum)) if *k == at => *sum += pay.amount,
                _ => close(total.replace((at, pay.amount))),
            }
        }
        out.rows.push(found.then_some(base + at));
    }
    close(total);
    out
}

/// The warning of an invoice whose payments and credit notes add up to `total`, if that
/// is more than its amount.
fn overpaid(inv: &Invoice, total: Decimal) -> Option<String> {
    (total > inv.amount).then(|| {
        format!("invoice `{}`: payments and credit notes ({total}) exceed its amount ({})", inv.id, inv.amount)
    })
}

/// The customers' ids, to find each invoice's customer: by number when the ids are account
/// numbers of one shape ([`DenseIds`]), else by hash ([`IdIndex`] over an [`Arena`]).
enum CustomerIds<'p> {
    Dense(DenseIds),
    Hashed { index: IdIndex, arena: Option<Arena>, customers: &'p [Customer] },
}

impl<'p> CustomerIds<'p> {
    /// The lookup of `customers`' ids, and the rows whose id an earlier row has, in order
    /// (a lookup gives the first row of an id).
    fn new(customers: &'p [Customer]) -> (Self, Vec<usize>) {
        match DenseIds::new(customers) {
            Some((dense, repeated)) => (CustomerIds::Dense(dense), repeated),
            None => Self::hashed(customers),
        }
    }

    /// [`CustomerIds::new`] by hash, whatever the ids' shape.
    fn hashed(customers: &'p [Customer]) -> (Self, Vec<usize>) {
        let arena = Arena::new(customers.iter().map(|c| c.id.as_str()));
        let id = |i: usize| match &arena {
            Some(a) => a.id(i),
            None => customers[i].id.as_bytes(),
        };
        let (mut index, repeated) = IdIndex::build(customers.len(), id);
        if let Some(a) = &arena {
            index.rehandle(|row| a.starts.get(row).copied().unwrap_or(u32::MAX));
        }
        (CustomerIds::Hashed { index, arena, customers }, repeated)
    }

    /// The first row whose id is `key`.
    fn get(&self, key: &[u8]) -> Option<usize> {
        match self {
            CustomerIds::Dense(d) => d.get(key),
            CustomerIds::Hashed { index, arena, customers } => {
                let h = index.get(key, |h, key| Self::is_at(arena, customers, h, key))?;
                Self::row(arena, h)
            }
        }
    }

    /// [`CustomerIds::get`] of each invoice's customer id, into `out` (as long as `invoices`).
    fn get_all(&self, invoices: &[Invoice], out: &mut [Option<usize>]) {
        match self {
            CustomerIds::Dense(d) => {
                for (inv, out) in invoices.iter().zip(out) {
                    *out = d.get(inv.customer_id.as_bytes());
                }
            }
            CustomerIds::Hashed { index, arena, customers } => {
                let is = |h: usize, key: &[u8]| Self::is_at(arena, customers, h, key);
                index.get_all(invoices, |inv| inv.customer_id.as_bytes(), is, out);
                for found in out.iter_mut() {
                    *found = found.and_then(|h| Self::row(arena, h));
                }
            }
        }
    }

    /// Whether the id of handle `h` (an offset in the arena, else a row) is `key`.
    fn is_at(arena: &Option<Arena>, customers: &[Customer], h: usize, key: &[u8]) -> bool {
        match arena {
            Some(a) => a.is_at(h, key),
            None => customers.get(h).is_some_and(|c| c.id.as_bytes() == key),
        }
    }

    /// The row of handle `h`.
    fn row(arena: &Option<Arena>, h: usize) -> Option<usize> {
        match arena {
            Some(a) => a.row_at(h),
            None => Some(h),
        }
    }
}

/// Customer ids that are account numbers of one shape: one prefix, then as many digits in
/// every id (`C0000042`, `411000123`), numbers not too far apart. Two ids of that shape are
/// equal exactly when their numbers are, so an invoice's customer is found by reading its
/// number and one slot of a table of rows: no hash, no comparison of texts (the hashed
/// lookup was most of the reference check: at 10^6 invoices ≈ 50 of its ≈ 90 ms of
/// processor time).
struct DenseIds {
    /// The common prefix, and the ids' length.
    prefix: CompactString,
    len: usize,
    /// The smallest number, and for each number from it the first row with it
    /// (`u32::MAX`: none).
    min: u32,
    rows: Vec<u32>,
}

impl DenseIds {
    /// At most nine digits are read as the number (below 10^9: a `u32`); longer runs of
    /// digits leave the first ones in the prefix.
    const MAX_DIGITS: usize = 9;

    /// The table of `customers`' ids and the rows whose id an earlier row has, in order;
    /// `None` when the ids are not of one shape, or their numbers are spread over more than
    /// four slots a customer.
    fn new(customers: &[Customer]) -> Option<(Self, Vec<usize>)> {
        if customers.len() >= u32::MAX as usize {
            return None;
        }
        let first = customers.first()?.id.as_bytes();
        let digits = first.iter().rev().take_while(|b| b.is_ascii_digit()).count().min(Self::MAX_DIGITS);
        if digits == 0 {
            return None;
        }
        let prefix = std::str::from_utf8(first.get(..first.len() - digits)?).ok()?;
        let mut d = DenseIds { prefix: CompactString::new(prefix), len: first.len(), min: 0, rows: Vec::new() };
        let numbers: Vec<u32> = customers.par_iter().map(|c| d.number(c.id.as_bytes())).collect::<Option<_>>()?;
        let min = numbers.par_iter().copied().min()?;
        let max = numbers.par_iter().copied().max()?;
        let span = (max - min) as usize + 1;
        if span > customers.len().saturating_mul(4).max(1024) {
            return None;
        }
        d.min = min;
        d.rows = vec![u32::MAX; span];
        let mut repeated = Vec::new();
        for (row, n) in numbers.into_iter().enumerate() {
            let slot = d.rows.get_mut((n - min) as usize)?;
            if *slot == u32::MAX {
                *slot = row as u32;
            } else {
                repeated.push(row);
            }
        }
        Some((d, repeated))
    }

    /// The number of `id` if it has the shape.
    #[inline]
    fn number(&self, id: &[u8]) -> Option<u32> {
        if id.len() != self.len {
            return None;
        }
        let (prefix, digits) = id.split_at_checked(self.prefix.len())?;
        // Byte by byte: prefixes are short, and a call to compare them would cost more.
        if prefix.iter().zip(self.prefix.as_bytes()).any(|(a, b)| a != b) {
            return None;
        }
        let mut n = 0u32;
        for &b in digits {
            let v = b.wrapping_sub(b'0');
            if v > 9 {
                return None;
            }
            n = n * 10 + u32::from(v);
        }
        Some(n)
    }

    /// The first row whose id is `key`.
    #[inline]
    fn get(&self, key: &[u8]) -> Option<usize> {
        let n = self.number(key)?;
        let row = *self.rows.get(n.checked_sub(self.min)? as usize)?;
        (row != u32::MAX).then_some(row as usize)
    }
}

/// Customer ids copied into one buffer, each followed by `0xff` (a byte UTF-8 never uses)
/// and by its row (4 bytes, little-endian), so that a lookup compares the key against the
/// buffer at the offset the index gives: one read of compact memory, instead of reading a
/// table of ends and then the text, or reading across the rows. The row after the id gives
/// each invoice's customer row at no extra read.
struct Arena {
    text: Vec<u8>,
    /// Where each row's id starts.
    starts: Vec<u32>,
}

impl Arena {
    const END: u8 = 0xff;

    /// `None` when the ids do not fit in 4 GiB.
    fn new<'a>(ids: impl ExactSizeIterator<Item = &'a str> + Clone) -> Option<Self> {
        let len = ids.clone().map(|id| id.len() + 1 + 4).sum::<usize>();
        u32::try_from(len).ok()?;
        let mut text = Vec::with_capacity(len);
        let mut starts = Vec::with_capacity(ids.len());
        for (row, id) in ids.enumerate() {
            starts.push(text.len() as u32);
            text.extend_from_slice(id.as_bytes());
            text.push(Self::END);
            text.extend_from_slice(&(row as u32).to_le_bytes());
        }
        Some(Self { text, starts })
    }

    /// The id of row `i`.
    fn id(&self, i: usize) -> &[u8] {
        let start = self.starts.get(i).map_or(self.text.len(), |&s| s as usize);
        let end = self.starts.get(i + 1).map_or(self.text.len(), |&s| s as usize);
        self.text.get(start..end.saturating_sub(1 + 4).max(start)).unwrap_or_default()
    }

    /// Whether the id at offset `at` is `key`.
    fn is_at(&self, at: usize, key: &[u8]) -> bool {
        self.text.get(at..at + key.len()) == Some(key) && self.text.get(at + key.len()) == Some(&Self::END)
    }

    /// The row whose id is at offset `at`: the four bytes after the id's end (the first
    /// [`Arena::END`] from `at`, a byte that ids never hold).
    fn row_at(&self, at: usize) -> Option<usize> {
        let rest = self.text.get(at..)?;
        let end = memchr::memchr(Self::END, rest)?;
        let row = rest.get(end + 1..end + 5)?.first_chunk::<4>()?;
        Some(u32::from_le_bytes(*row) as usize)
    }
}

/// An id → first row index: the rows as `(32 bits of the id's hash, row)` in one sorted
/// array (8 bytes a row), and a directory of where each value of the top bits of the hash
/// starts (half a byte a row). A lookup reads the few entries of one directory slot; ids
/// are compared only when 32 bits of their hashes match, and never copied. Built by one
/// parallel pass over the ids and one parallel sort, with no second copy of the entries.
struct IdIndex {
    /// How many top bits of the hash pick a directory slot.
    bits: u32,
    /// Where each slot's entries start in `entries` (one more than the slots).
    starts: Vec<u32>,
    /// `hash >> 32 << 32 | row`, sorted (so by hash, then row).
    entries: Vec<u64>,
}

impl IdIndex {
    fn hash(id: &[u8]) -> u64 {
        let mut h = Fx.build_hasher();
        h.write(id);
        h.finish()
    }

    fn slot(&self, entry: u64) -> usize {
        if self.bits == 0 { 0 } else { (entry >> (64 - self.bits)) as usize }
    }

    /// The index of the rows `0..n` (at most `u32::MAX - 1`), whose ids `id(i)` gives, and
    /// the rows whose id an earlier row has, in order. The index gives the first row of an id.
    fn build<'a>(n: usize, id: impl Fn(usize) -> &'a [u8] + Sync) -> (Self, Vec<usize>) {
        let n = n.min(Self::ROWS);
        let entries: Vec<u64> = (0..n).into_par_iter().with_min_len(4096).map(|i| Self::entry(id(i), i)).collect();
        Self::from_entries(entries, id)
    }

    /// The rows an index holds at most (`0..ROWS`).
    const ROWS: usize = u32::MAX as usize - 1;

    /// The entry of row `row` (below [`IdIndex::ROWS`]), whose id is `id`.
    fn entry(id: &[u8], row: usize) -> u64 {
        Self::hash(id) >> 32 << 32 | row as u64
    }

    /// [`IdIndex::build`] from the [`IdIndex::entry`] of each row, in any order.
    fn from_entries<'a>(mut entries: Vec<u64>, id: impl Fn(usize) -> &'a [u8]) -> (Self, Vec<usize>) {
        let n = entries.len();
        entries.par_sort_unstable();
        // About eight entries a slot.
        let slots = (n / 8).max(1).next_power_of_two();
        let mut index = Self { bits: slots.trailing_zeros(), starts: vec![0u32; slots + 1], entries: Vec::new() };
        for &e in &entries {
            let s = index.slot(e);
            index.starts[s + 1] += 1;
        }
        for s in 0..slots {
            index.starts[s + 1] += index.starts[s];
        }
        // Equal ids have equal hashes: they are side by side, in row order. The entries whose
        // hash is the one before them are found on all threads (at 10^6 invoices, one
        // thread took 7–8 ms); few are, and each is compared with the earlier entries of its
        // run of equal hashes (almost always the same id).
        let same_hash: Vec<usize> = entries
            .par_windows(2)
            .enumerate()
            .with_min_len(1 << 14)
            .filter(|(_, w)| w[0] >> 32 == w[1] >> 32)
            .map(|(k, _)| k + 1)
            .collect();
        let mut repeated = Vec::new();
        for j in same_hash {
            let h = entries[j] >> 32;
            let mut run = j;
            while run > 0 && entries[run - 1] >> 32 == h {
                run -= 1;
            }
            let row = (entries[j] & 0xffff_ffff) as usize;
            if entries[run..j].iter().any(|e| id((e & 0xffff_ffff) as usize) == id(row)) {
                repeated.push(row);
            }
        }
        repeated.sort_unstable();
        index.entries = entries;
        (index, repeated)
    }

    /// Replaces each row by `handle(row)`, which must grow with the row (so the order of
    /// the entries stays the same).
    fn rehandle(&mut self, handle: impl Fn(usize) -> u32 + Sync) {
        self.entries
            .par_iter_mut()
            .with_min_len(4096)
            .for_each(|e| *e = *e >> 32 << 32 | u64::from(handle((*e & 0xffff_ffff) as usize)));
    }

    /// [`IdIndex::get`] of the key of each item, into `out` (as long as `items`). The lookups of a batch of keys go step by
    /// step (hash and slot of each key, then the first entry with each key's hash bits, then
    /// each id), so that the memory reads of different keys overlap instead of each waiting
    /// for the previous key's. A candidate that is not the key (a hash collision) gets a
    /// full lookup.
    fn get_all<T>(
        &self,
        items: &[T],
        key: impl Fn(&T) -> &[u8],
        is: impl Fn(usize, &[u8]) -> bool,
        out: &mut [Option<usize>],
    ) {
        const BATCH: usize = 16;
        for (batch, out) in items.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            let mut hashes = [0u64; BATCH];
            let mut ranges = [(0usize, 0usize); BATCH];
            for (k, item) in batch.iter().enumerate() {
                let h = Self::hash(key(item)) >> 32;
                let s = self.slot(h << 32);
                hashes[k] = h;
                ranges[k] =
                    (self.starts.get(s).map_or(0, |&x| x as usize), self.starts.get(s + 1).map_or(0, |&x| x as usize));
            }
            // The first entry of each key's slot, read with nothing depending on it: the
            // reads of the batch go to memory together. The search below then finds them in
            // the cache; without this, each search's branch on a value still in memory
            // stopped the reads of the next keys (10^6 invoices, the pass of the customer
            // lookups: 74–216 ms, median ≈ 120, before; 58–134 ms, median ≈ 88, with it).
            let mut first_entries = 0u64;
            for &(from, _) in ranges.get(..batch.len()).unwrap_or_default() {
                first_entries ^= self.entries.get(from).copied().unwrap_or_default();
            }
            std::hint::black_box(first_entries);
            let mut candidates = [None; BATCH];
            for k in 0..batch.len() {
                let (h, (from, to)) = (hashes[k], ranges[k]);
                let first = self.entries.get(from..to).unwrap_or_default().iter().find(|&&e| e >> 32 >= h);
                candidates[k] = first.filter(|&&e| e >> 32 == h).map(|&e| (e & 0xffff_ffff) as usize);
            }
            for ((item, candidate), out) in batch.iter().zip(candidates).zip(out) {
                let key = key(item);
                *out = match candidate {
                    None => None,
                    Some(row) if is(row, key) => Some(row),
                    Some(_) => self.get(key, &is),
                };
            }
        }
    }

    /// The first row (or its handle, see [`IdIndex::rehandle`]) whose id is `key`; `is(h, key)`
    /// says whether the id of the row with handle `h` is `key`.
    fn get(&self, key: &[u8], is: impl Fn(usize, &[u8]) -> bool) -> Option<usize> {
        let h = Self::hash(key) >> 32;
        let s = self.slot(h << 32);
        let (from, to) = (*self.starts.get(s)? as usize, *self.starts.get(s + 1)? as usize);
        for &e in self.entries.get(from..to)? {
            match (e >> 32).cmp(&h) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => {
                    let row = (e & 0xffff_ffff) as usize;
                    if is(row, key) {
                        return Some(row);
                    }
                }
                std::cmp::Ordering::Greater => break,
            }
        }
        None
    }
}

type RowResult<T> = Result<T, (Option<CompactString>, Box<LoadError>)>;

/// A cell's text as a `CompactString`, built in place (most texts are borrowed from the
/// file: `From<Cow<str>>` is a call for each of the four or five texts of a row).
#[inline(always)]
fn compact(text: Cow<'_, str>) -> CompactString {
    match text {
        Cow::Borrowed(s) => CompactString::new(s),
        Cow::Owned(s) => CompactString::from(s),
    }
}

fn cell_at<'r>(row: &'r impl Row, cols: &Columns, f: usize) -> (Cell<'r>, usize) {
    match cols.get(f) {
        Some(i) => (row.cell(i), i),
        None => (Cell::Empty, usize::MAX),
    }
}

/// The extra cells of a row; no allocation when they are all empty, one exactly sized one
/// otherwise (the keys are shared, sorted).
fn extras(conv: &Conv<'_>, cols: &Columns, row: &impl Row) -> Result<Extra, Box<LoadError>> {
    // The first value found is kept aside: most rows have at most one, and need no vector.
    let mut first = None;
    let mut more = Vec::new();
    for (n, ((_, i), key)) in cols.extras.iter().zip(conv.extra_keys).enumerate() {
        if let Some(t) = conv.text(row.cell(*i), *i)? {
            let pair = (Arc::clone(key), compact(t));
            match first.take() {
                None if more.is_empty() => first = Some(pair),
                None => more.push(pair),
                Some(f) => {
                    more.reserve_exact(cols.extras.len() - n + 1);
                    more.push(f);
                    more.push(pair);
                }
            }
        }
    }
    Ok(match first {
        Some((name, value)) => Extra::one(name, value),
        None if more.is_empty() => Extra::default(),
        None => Extra::from_vec(more),
    })
}

fn build_customer(conv: &Conv<'_>, cols: &Columns, row: &impl Row) -> RowResult<Customer> {
    let (cell, col) = cell_at(row, cols, C_ID);
    let id = compact(conv.required_text(cell, col, Table::Customers).map_err(|e| (None, e))?);
    let fail = |e: Box<LoadError>| (Some(id.clone()), e);
    let text = |f: usize| -> Result<Option<CompactString>, Box<LoadError>> {
        let (cell, col) = cell_at(row, cols, f);
        Ok(conv.text(cell, col)?.map(compact))
    };
    let name = text(C_NAME).map_err(fail)?.unwrap_or_else(|| id.clone());
    let segment = text(C_SEGMENT).map_err(fail)?.unwrap_or_default();
    let tags = text(C_TAGS)
        .map_err(fail)?
        .map(|t| t.split([';', '|']).map(str::trim).filter(|t| !t.is_empty()).map(CompactString::from).collect())
        .unwrap_or_default();
    let (cell, col) = cell_at(row, cols, C_AVG);
    let avg_days_late = conv.number(cell, col).map_err(fail)?;
    Ok(Customer {
        name,
        segment,
        email: text(C_EMAIL).map_err(fail)?,
        phone: text(C_PHONE).map_err(fail)?,
        language: text(C_LANGUAGE).map_err(fail)?,
        tags,
        avg_days_late,
        extra: extras(conv, cols, row).map_err(fail)?,
        id,
    })
}

fn build_invoice<'r>(
    conv: &Conv<'_>,
    cols: &Columns,
    row: &'r impl Row,
    recent_currencies: &mut Recent<Currency, 4>,
) -> RowResult<(Invoice, Option<Cow<'r, str>>)> {
    let (cell, col) = cell_at(row, cols, I_ID);
    let id = compact(conv.required_text(cell, col, Table::Invoices).map_err(|e| (None, e))?);
    let fail = |e: Box<LoadError>| (Some(id.clone()), e);
    let (cell, col) = cell_at(row, cols, I_CUSTOMER);
    let customer_id = compact(conv.required_text(cell, col, Table::Invoices).map_err(fail)?);

    let (cell, col) = cell_at(row, cols, I_CURRENCY);
    let currency = match cell {
        // Fast path: a code among the last ones read.
        Cell::Text(t) if let Some(c) = recent_currencies.get(t) => Some(c),
        _ => {
            let c = conv.currency(cell, col).map_err(fail)?;
            if let (Cell::Text(t), Some(c)) = (cell, c) {
                recent_currencies.put(t, c);
            }
            c
        }
    };
    let currency = match currency.or(conv.opts.default_currency) {
        Some(c) => c,
        None => return Err(fail(conv.missing(col, Table::Invoices))),
    };

    let (cell, col) = cell_at(row, cols, I_AMOUNT);
    let amount = match conv.amount(cell, col, Some(currency)).map_err(fail)? {
        Some(a) => a,
        None => return Err(fail(conv.missing(col, Table::Invoices))),
    };
    let date = |f: usize| {
        let (cell, col) = cell_at(row, cols, f);
        conv.date(cell, col)
    };
    let amount_of = |f: usize| {
        let (cell, col) = cell_at(row, cols, f);
        conv.amount(cell, col, Some(currency))
    };
    let flag = |f: usize| {
        let (cell, col) = cell_at(row, cols, f);
        conv.boolean(cell, col)
    };
    let issue_date = date(I_ISSUE).map_err(fail)?;
    let (terms_cell, terms_col) = cell_at(row, cols, I_TERMS);
    let terms = conv.text(terms_cell, terms_col).map_err(fail)?;
    let due_date = match (date(I_DUE).map_err(fail)?, issue_date, &terms) {
        (Some(d), _, _) => d,
        (None, Some(issue), Some(t)) => due_date_from_terms(t, issue, conv.opts.eom_reading).map_err(|e| {
            fail(conv.err(
                LoadErrorKind::BadTerms,
                terms_col,
                terms_cell,
                format!("cannot compute the due date from the terms `{t}`: {e}"),
                "write terms like `30 days net`, `45 days end of month` or `60 days`, or give the due date",
            ))
        })?,
        (None, _, _) => {
            let (_, due_col) = cell_at(row, cols, I_DUE);
            return Err(fail(Box::new(conv.src.error(
                LoadErrorKind::MissingDueDate,
                Some(conv.line),
                (due_col != usize::MAX).then_some(due_col),
                None,
                format!("the invoice `{id}` has no due date, and no issue date and terms to compute it"),
                Some("give `due_date`, or `issue_date` and `terms` like `30 days net`".to_string()),
            ))));
        }
    };
    let invoice = Invoice {
        customer_id,
        issue_date,
        due_date,
        amount,
        currency,
        outstanding: amount_of(I_OUTSTANDING).map_err(fail)?,
        disputed: flag(I_DISPUTED).map_err(fail)?,
        promise_date: date(I_PROMISE_DATE).map_err(fail)?,
        promise_amount: amount_of(I_PROMISE_AMOUNT).map_err(fail)?,
        payment_plan: flag(I_PLAN).map_err(fail)?,
        extra: extras(conv, cols, row).map_err(fail)?,
        id,
    };
    Ok((invoice, terms))
}

fn build_payment(conv: &Conv<'_>, cols: &Columns, row: &impl Row) -> Result<(Payment, bool), Box<LoadError>> {
    let text = |f: usize| {
        let (cell, col) = cell_at(row, cols, f);
        conv.text(cell, col).map(|t| t.map(compact))
    };
    let id = text(P_ID)?;
    let (cell, col) = cell_at(row, cols, P_INVOICE);
    let invoice_id = compact(conv.required_text(cell, col, Table::Payments)?);
    let (cell, col) = cell_at(row, cols, P_DATE);
    let Some(date) = conv.date(cell, col)? else { return Err(conv.missing(col, Table::Payments)) };
    let (amount_cell, col) = cell_at(row, cols, P_AMOUNT);
    let Some(amount) = conv.amount(amount_cell, col, None)? else { return Err(conv.missing(col, Table::Payments)) };
    let (cell, col) = cell_at(row, cols, P_KIND);
    let kind = match conv.text(cell, col)? {
        None => PaymentKind::Payment,
        // The usual spellings first, without building the normalized text (an ASCII word
        // equal to one of them ignoring case normalizes to it).
        Some(k) if k.eq_ignore_ascii_case("payment") => PaymentKind::Payment,
        Some(k) if k.eq_ignore_ascii_case("credit_note") => PaymentKind::CreditNote,
        Some(k) => match normalize_header(&k).as_str() {
            "payment" | "paiement" | "reglement" | "règlement" => PaymentKind::Payment,
            "credit_note" | "creditnote" | "credit" | "avoir" => PaymentKind::CreditNote,
            _ => {
                return Err(conv.err(
                    LoadErrorKind::BadPaymentKind,
                    col,
                    cell,
                    format!("`{k}` is not a kind of payment"),
                    "use `payment` or `credit_note` (or leave empty for a payment)",
                ));
            }
        },
    };
    // A `currency` column on payments is read only to catch garbage; amounts are in the
    // invoice's currency.
    let (cell, col) = cell_at(row, cols, P_CURRENCY);
    conv.currency(cell, col)?;
    Ok((Payment { id, invoice_id, date, amount, kind }, matches!(amount_cell, Cell::Number(_))))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::{Just, Strategy, prop_oneof};

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// A float read without its text gives the digits and the scale of its shortest
        /// text: amounts with cents, whole numbers, small and large floats, any bits.
        #[test]
        fn floats_read_without_text_are_their_shortest_text(
            f in prop_oneof![
                (-10_000_000_000i64..10_000_000_000, 0u32..4).prop_map(|(m, s)| m as f64 / 10f64.powi(s as i32)),
                (-1_000_000i64..1_000_000, 0u32..16).prop_map(|(m, s)| format!("{m}e-{s}").parse::<f64>().unwrap()),
                proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL,
                -1e16f64..1e16,
            ],
        ) {
            let by_text = f.to_string().parse::<Decimal>().ok();
            if let Some(d) = short_decimal(f) {
                let by_text = by_text.unwrap();
                proptest::prop_assert_eq!((d.mantissa(), d.scale()), (by_text.mantissa(), by_text.scale()), "{}", f);
            }
        }
    }

    /// Amounts as a spreadsheet holds them are read without their text; zero, floats with
    /// more digits and floats too large are left to it.
    #[test]
    fn short_decimals() {
        let text = |f: f64| short_decimal(f).map(|d| d.to_string());
        assert_eq!(text(630.86), Some("630.86".to_string()));
        assert_eq!(text(-1338.4), Some("-1338.4".to_string()));
        assert_eq!(text(100.0), Some("100".to_string()));
        assert_eq!(text(0.001), Some("0.001".to_string()));
        assert_eq!(text(0.1 + 0.2), None);
        assert_eq!(text(0.0), None);
        assert_eq!(text(1e16), None);
        assert_eq!(text(f64::NAN), None);
        assert_eq!(float_to_decimal(0.1 + 0.2).map(|d| d.to_string()), Some("0.30000000000000004".to_string()));
    }

    proptest::proptest! {
        /// Any ten bytes of the `YYYY-MM-DD` shape (valid dates or not, months and days out
        /// of range, leap years), read in any order through one cache, give what
        /// `parse_date` gives (the cache gives `None` only when `parse_date` does).
        #[test]
        fn cached_dates_are_the_parsed_dates(
            texts in proptest::collection::vec(
                (prop_oneof![Just(1900u32), Just(2000), Just(2024), Just(2025), Just(2100), 0u32..10000], 0u32..14, 0u32..33),
                1..300,
            ),
            separator in prop_oneof![Just('-'), Just('/')],
        ) {
            let cache = DateCache::new();
            for (y, m, d) in texts {
                let text = format!("{y:04}{separator}{m:02}{separator}{d:02}");
                let bytes: &[u8; 10] = text.as_bytes().try_into().unwrap();
                for format in [DateFormat::Iso, DateFormat::DayMonthYear] {
                    match cache.get(bytes) {
                        Some(date) => proptest::prop_assert_eq!(Some(date), parse_date(&text, format)),
                        None => proptest::prop_assert!(separator != '-' || parse_date(&text, format).is_none()),
                    }
                }
            }
        }

        /// Any ten bytes among digits, separators and the bytes next to the digits give
        /// what `parse_date` gives (a cached date only for a valid `YYYY-MM-DD`).
        #[test]
        fn cached_dates_of_any_bytes_are_the_parsed_dates(
            texts in proptest::collection::vec(
                proptest::collection::vec(prop_oneof![4 => proptest::char::range('0', '9'), 1 => Just('-'), 1 => Just('/'), 1 => Just(':'), 1 => Just(' '), 1 => Just('a'), 1 => Just('\u{7f}')], 10),
                1..200,
            ),
            dashed in proptest::bool::weighted(0.7),
        ) {
            let cache = DateCache::new();
            for chars in texts {
                let mut text: Vec<u8> = chars.iter().map(|&c| c as u8).collect();
                if dashed {
                    text[4] = b'-';
                    text[7] = b'-';
                }
                let bytes: &[u8; 10] = text.as_slice().try_into().unwrap();
                let s = std::str::from_utf8(bytes).unwrap();
                let valid = bytes[4] == b'-' && bytes[7] == b'-' && bytes.iter().enumerate().all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
                let expected = if valid { parse_date(s, DateFormat::Iso) } else { None };
                proptest::prop_assert_eq!(cache.get(bytes), expected, "{}", s);
            }
        }

        #[test]
        fn row_lines_give_back_each_row_source_and_line(
            steps in proptest::collection::vec((0usize..3, 0usize..4, proptest::bool::weighted(0.1)), 0..200),
            start in 0usize..5,
        ) {
            let mut rows = RowLines::default();
            let mut naive = Vec::new();
            let (mut table, mut line) = (0, start);
            for (t, gap, switch) in steps {
                if switch {
                    table = t;
                }
                line += gap;
                rows.push(table, line);
                naive.push((table as u32, line as u32));
            }
            let got: Vec<(u32, u32)> = (0..naive.len()).map(|i| rows.get(i)).map(|r| (r.table, r.line)).collect();
            proptest::prop_assert_eq!(got, naive);
        }
    }

    proptest::proptest! {
        /// Invoices with ids going up, cut in runs anywhere, and payments in invoice id
        /// order, some naming no invoice (before, between and after the invoices' ids): each
        /// payment gets the row a map of the ids gives, from the one run that has its invoice.
        #[test]
        fn payments_found_in_step_are_those_a_map_finds(
            numbers in proptest::collection::btree_set(0u32..5000, 0..300),
            keys in proptest::collection::vec(0u32..5200, 0..400),
            cut in 1usize..50,
        ) {
            let invoices: Vec<Invoice> = numbers
                .iter()
                .map(|&n| Invoice::new(format!("F{n:05}"), "C1", NaiveDate::MIN, Decimal::from(n % 3 + 1), Currency::EUR))
                .collect();
            let mut keys = keys;
            keys.sort_unstable();
            let payments: Vec<Payment> = keys
                .iter()
                .map(|&k| Payment {
                    id: None,
                    invoice_id: CompactString::from(format!("F{k:05}")),
                    date: NaiveDate::MIN,
                    amount: Decimal::ONE,
                    kind: PaymentKind::Payment,
                })
                .collect();
            let rows: HashMap<&str, usize> = invoices.iter().enumerate().map(|(i, inv)| (inv.id.as_str(), i)).collect();
            let mut got = vec![None; payments.len()];
            let mut overpaid_got = Vec::new();
            for (r, run) in invoices.chunks(cut).enumerate() {
                let paid = payments_of_run(run, r * cut, &payments);
                got[paid.from..paid.from + paid.rows.len()].copy_from_slice(&paid.rows);
                overpaid_got.extend(paid.overpaid);
            }
            let expected: Vec<Option<usize>> = payments.iter().map(|p| rows.get(p.invoice_id.as_str()).copied()).collect();
            proptest::prop_assert_eq!(got, expected);
            // Each invoice paid more than its amount (1 per payment) is warned about once,
            // in row order, whichever runs its payments fall in.
            let overpaid_expected: Vec<String> = invoices
                .iter()
                .filter_map(|inv| {
                    let n = keys.iter().filter(|&&k| format!("F{k:05}") == inv.id).count();
                    overpaid(inv, Decimal::from(n))
                })
                .collect();
            proptest::prop_assert_eq!(overpaid_got, overpaid_expected);
        }
    }

    #[test]
    fn consecutive_lines_of_one_source_take_one_run() {
        let mut rows = RowLines::default();
        for line in 2..10_002 {
            rows.push(1, line);
        }
        rows.push(1, 10_005);
        assert_eq!((rows.runs.len(), rows.sources.len()), (2, 1));
        assert_eq!((rows.get(0).line, rows.get(9_999).line, rows.get(10_000).line), (2, 10_001, 10_005));
    }

    proptest::proptest! {
        /// Account numbers of one shape (a prefix, then a fixed number of digits), repeated
        /// or not, are found by number as the hashed lookup finds them, with the same repeats;
        /// so are keys of other shapes (another length, prefix, a letter among the digits)
        /// and numbers outside the table.
        #[test]
        fn customers_found_by_number_are_those_a_hash_finds(
            prefix in prop_oneof![Just(""), Just("C"), Just("411"), Just("Clé-"), Just("C0")],
            width in 1usize..=9,
            numbers in proptest::collection::vec(0u32..60, 1..80),
            keys in proptest::collection::vec((0u32..80, 0usize..4), 0..80),
        ) {
            let limit = 10u32.pow(width as u32);
            let id = |n: u32| format!("{prefix}{:0width$}", n % limit);
            let customers: Vec<Customer> = numbers.iter().map(|&n| Customer::new(id(n), "n", "s")).collect();
            let (by_number, repeated) = CustomerIds::new(&customers);
            proptest::prop_assert!(matches!(by_number, CustomerIds::Dense(_)));
            let (by_hash, hashed_repeated) = CustomerIds::hashed(&customers);
            proptest::prop_assert_eq!(repeated, hashed_repeated);
            let mut texts: Vec<String> = keys
                .iter()
                .map(|&(n, how)| match how {
                    0 => id(n),
                    1 => format!("{}0", id(n)),
                    2 => format!("X{}", id(n)),
                    _ => id(n).replacen('0', "O", 1),
                })
                .collect();
            texts.extend(customers.iter().map(|c| c.id.to_string()));
            let invoices: Vec<Invoice> = texts
                .iter()
                .map(|t| Invoice::new("F", t.as_str(), NaiveDate::MIN, Decimal::ONE, Currency::EUR))
                .collect();
            for t in &texts {
                proptest::prop_assert_eq!(by_number.get(t.as_bytes()), by_hash.get(t.as_bytes()), "{}", t);
            }
            let (mut a, mut b) = (vec![Some(usize::MAX); invoices.len()], vec![None; invoices.len()]);
            by_number.get_all(&invoices, &mut a);
            by_hash.get_all(&invoices, &mut b);
            proptest::prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn ids_of_no_one_shape_or_far_apart_are_found_by_hash() {
        let shapes: [&[&str]; 5] = [
            &["C1", "C10"],                   // lengths differ
            &["C01", "D02"],                  // prefixes differ
            &["ABC", "ABD"],                  // no digits
            &["C0000001", "C0009999"],        // numbers far apart for two customers
            &["C1", "C2", "C3", "C4", "C5x"], // a letter among the digits
        ];
        for ids in shapes {
            let customers: Vec<Customer> = ids.iter().map(|id| Customer::new(*id, "n", "s")).collect();
            let (found, repeated) = CustomerIds::new(&customers);
            assert!(matches!(found, CustomerIds::Hashed { .. }), "{ids:?}");
            assert!(repeated.is_empty());
            for (row, id) in ids.iter().enumerate() {
                assert_eq!(found.get(id.as_bytes()), Some(row));
            }
        }
        // Ten digits: the first one stays in the prefix, and the lookup is still by number.
        let customers: Vec<Customer> =
            ["4110000001", "4110000002", "4110000001"].iter().map(|id| Customer::new(*id, "n", "s")).collect();
        let (found, repeated) = CustomerIds::new(&customers);
        assert!(matches!(found, CustomerIds::Dense(_)));
        assert_eq!(repeated, [2]);
        assert_eq!(found.get(b"4110000001"), Some(0));
        assert_eq!(found.get(b"5110000001"), None);
    }

    #[test]
    fn the_id_index_keeps_the_first_row_and_lists_the_repeats() {
        // 12,000 rows over several buckets; ids repeat every 5,000 rows.
        let ids: Vec<String> = (0..12_000).map(|i| format!("INV-{:07}", i % 5_000)).collect();
        let id = |i: usize| ids[i].as_bytes();
        let is = |i: usize, key: &[u8]| ids[i].as_bytes() == key;
        let (index, repeated) = IdIndex::build(ids.len(), id);
        assert!(index.starts.len() > 2);
        assert_eq!(repeated, (5_000..12_000).collect::<Vec<_>>());
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(index.get(id.as_bytes(), is), Some(i % 5_000));
        }
        assert_eq!(index.get(b"INV-0005000", is), None);
        let (empty, repeated) = IdIndex::build(0, id);
        assert_eq!((empty.get(b"x", is), repeated.len()), (None, 0));
    }

    #[test]
    fn ids_whose_hashes_share_32_bits_are_told_apart() {
        // Two ids with the same top 32 bits of hash (the birthday bound makes one likely
        // among 300,000), interleaved and repeated.
        let mut hashed: Vec<(u64, String)> =
            (0..300_000).map(|i| format!("X{i}")).map(|id| (IdIndex::hash(id.as_bytes()) >> 32, id)).collect();
        hashed.sort();
        let pair = hashed.windows(2).find(|w| w[0].0 == w[1].0).expect("a 32-bit collision");
        let (a, b) = (pair[0].1.clone(), pair[1].1.clone());
        let ids = [b.clone(), a.clone(), b.clone(), "other".to_string(), a.clone()];
        let is = |i: usize, key: &[u8]| ids[i].as_bytes() == key;
        let (index, repeated) = IdIndex::build(ids.len(), |i| ids[i].as_bytes());
        assert_eq!(repeated, [2, 4]);
        assert_eq!(index.get(a.as_bytes(), is), Some(1));
        assert_eq!(index.get(b.as_bytes(), is), Some(0));
        assert_eq!(index.get(b"other", is), Some(3));
        assert_eq!(index.get(b"X-none", is), None);
    }

    #[test]
    fn batched_lookups_give_what_single_lookups_give() {
        // Ids whose hashes share 32 bits (found as in the test above), present and absent
        // keys, repeats, more keys than a batch.
        let mut hashed: Vec<(u64, String)> =
            (0..300_000).map(|i| format!("X{i}")).map(|id| (IdIndex::hash(id.as_bytes()) >> 32, id)).collect();
        hashed.sort();
        let pair = hashed.windows(2).find(|w| w[0].0 == w[1].0).expect("a 32-bit collision");
        let (a, b) = (pair[0].1.clone(), pair[1].1.clone());
        let mut ids: Vec<String> = (0..100).map(|i| format!("ID{i}")).collect();
        ids.extend([b.clone(), "ID7".to_string(), a.clone()]);
        let is = |i: usize, key: &[u8]| ids[i].as_bytes() == key;
        let (index, _) = IdIndex::build(ids.len(), |i| ids[i].as_bytes());
        let mut keys: Vec<String> = (0..120).map(|i| format!("ID{}", (i * 7) % 130)).collect();
        keys.extend([a.clone(), b.clone(), "ID7".to_string(), "none".to_string()]);
        let mut out = vec![Some(usize::MAX); keys.len()];
        index.get_all(&keys, |k| k.as_bytes(), is, &mut out);
        let single: Vec<Option<usize>> = keys.iter().map(|k| index.get(k.as_bytes(), is)).collect();
        assert_eq!(out, single);
        assert_eq!(out[out.len() - 4..], [Some(102), Some(100), Some(7), None]);
        // Only `b` in the index: a lookup of `a` meets `b` as a candidate and finds nothing.
        let only_b = [b.clone()];
        let (index, _) = IdIndex::build(1, |i| only_b[i].as_bytes());
        let mut out = [Some(0)];
        index.get_all(std::slice::from_ref(&a), |k| k.as_bytes(), |i, key| only_b[i].as_bytes() == key, &mut out);
        assert_eq!(out, [None]);
    }

    #[test]
    fn the_arena_index_finds_ids_by_offset() {
        // Ids that are prefixes of one another, an empty one, non-ASCII, repeats.
        let ids = ["C1", "C10", "", "C1", "é", "C", "C10"];
        let arena = Arena::new(ids.iter().copied()).unwrap();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(arena.id(i), id.as_bytes());
        }
        let (mut index, repeated) = IdIndex::build(ids.len(), |i| arena.id(i));
        assert_eq!(repeated, [3, 6]);
        index.rehandle(|row| arena.starts[row]);
        let find = |key: &str| index.get(key.as_bytes(), |h, k| arena.is_at(h, k)).and_then(|h| arena.row_at(h));
        assert_eq!(
            ["C1", "C10", "", "é", "C", "C100", "C0", "x"].map(find),
            [Some(0), Some(1), Some(2), Some(4), Some(5), None, None, None]
        );
    }
}
