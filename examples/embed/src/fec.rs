//! A [`PortfolioSource`] that reads a French FEC file (*Fichier des Écritures Comptables*, the
//! general-ledger export every French company must be able to hand to the tax administration,
//! Livre des procédures fiscales art. L47 A and A47 A-1).
//!
//! # What is read
//!
//! The file is UTF-8 (an optional byte-order mark is skipped), one entry line per line, fields
//! separated by a tab (or `|`, which the regulation also allows), with a header line naming the
//! columns. Columns are found by name, so their order and any extra column (`DateRglt`,
//! `ModeRglt`, `NatOp`, `IdClient`…) do not matter. Amounts use a decimal comma (`1234,56`),
//! dates are `YYYYMMDD`.
//!
//! Only lines on customer accounts (`CompteNum` starting with `411`, configurable) that carry an
//! auxiliary account (`CompAuxNum`) are receivables; other lines are only checked for their
//! number of fields. Customer lines without an auxiliary account cannot be given to a customer:
//! they are counted and reported as a warning.
//!
//! # The model
//!
//! - One customer per `CompAuxNum`, named by `CompAuxLib`; its segment comes from a
//!   [`SegmentRule`] (default: everyone is `sme`).
//! - A line whose `Debit − Credit` is positive is an **invoice**: id `PieceRef` (or
//!   `JournalCode-EcritureNum` when empty; a repeated id gets a `-2`, `-3`… suffix in file
//!   order), issued on `PieceDate` (or `EcritureDate`), due by the configured payment terms
//!   (default `30 days net`, see [`relance_stdlib::terms`]). A line whose `Debit − Credit` is
//!   negative is a **payment** (or a credit note when its journal is a sales journal), dated
//!   `EcritureDate`.
//! - **Lettering** (`EcritureLet`): the lines of one auxiliary account that share a lettering
//!   code were matched by the accountant. Inside a lettered group, the credits settle the
//!   debits oldest first, and each settlement becomes a dated [`Payment`].
//! - A FEC covers one fiscal year, and lettering is often done later (`ValidDate`), so a
//!   lettered group may not balance inside the file:
//!   - more **debit** than credit: the rest was matched by entries *after* the file's closing
//!     date (the invoice was paid later). As of the closing date it is still owed: the
//!     invoice stays **open** for that rest, which is what the ledger balance says.
//!   - more **credit** than debit: the rest settled invoices of an *earlier* year, which this
//!     file only carries as an opening balance (`A nouveaux`, usually unlettered). That rest is
//!     applied like an unlettered payment.
//!
//!   Both cases are reported in [`Portfolio::warnings`].
//! - Unlettered credits (and the credit rests above) are applied to the customer's oldest
//!   open invoices (FIFO), and the plan's warnings say so. What is left is an **unapplied
//!   credit** of the customer (an overpayment), reported as a warning and in [`FecSummary`].
//!
//! So, per customer and in the book currency: `Σ Debit − Σ Credit` of its lines
//! = `Σ outstanding of its invoices` − `its unapplied credit`. The tests check this on the
//! bundled FEC.
//!
//! # Currencies
//!
//! Amounts are in the book currency (default EUR). A debit line with a valid ISO code in
//! `Idevise` other than the book currency and an amount in `Montantdevise` becomes an invoice
//! in that currency; its payments are converted at the invoice's own rate (`Montantdevise /
//! Debit`), rounded to the currency's minor unit, the last one taking the rounding rest. An
//! unknown code is a warning, and the invoice stays in the book currency.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use iso_currency::Currency;
use relance_engine::PortfolioSource;
use relance_engine::model::{Customer, Invoice, Payment, PaymentKind, Portfolio};
use relance_stdlib::terms::{EomReading, TermsError, due_date_from_terms};
use rust_decimal::{Decimal, RoundingStrategy};

/// How customers get their segment (used by `for segment "…"` in scenarios).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentRule {
    /// Every customer gets this segment.
    Fixed(String),
    /// Customers whose total debit in the file (invoiced amount, book currency) is strictly
    /// over `threshold` get `above`, the others `otherwise`.
    ByTotalDebit {
        /// The threshold, in the book currency.
        threshold: Decimal,
        /// Segment of the customers over the threshold (e.g. `key-account`).
        above: String,
        /// Segment of the others (e.g. `sme`).
        otherwise: String,
    },
}

impl Default for SegmentRule {
    fn default() -> Self {
        SegmentRule::Fixed("sme".to_owned())
    }
}

impl SegmentRule {
    /// The segment of a customer with this total debit.
    pub fn segment_for(&self, total_debit: Decimal) -> &str {
        match self {
            SegmentRule::Fixed(s) => s,
            SegmentRule::ByTotalDebit { threshold, above, otherwise } => {
                if total_debit > *threshold {
                    above
                } else {
                    otherwise
                }
            }
        }
    }
}

/// Options of [`FecSource`]. `FecOptions::default()` suits a French company's FEC.
#[derive(Debug, Clone, PartialEq)]
pub struct FecOptions {
    /// Account number prefix of customer accounts (`411`).
    pub customer_account_prefix: String,
    /// Payment terms of every invoice, as text (`30 days net`, `45 jours fin de mois`).
    pub terms: String,
    /// How `N days end of month` terms are computed.
    pub eom_reading: EomReading,
    /// How customers get their segment.
    pub segment: SegmentRule,
    /// The currency of the ledger's `Debit` and `Credit` columns.
    pub book_currency: Currency,
    /// Journal codes whose credit lines are credit notes rather than payments (sales
    /// journals). Compared without case.
    pub credit_note_journals: Vec<String>,
}

impl Default for FecOptions {
    fn default() -> Self {
        FecOptions {
            customer_account_prefix: "411".to_owned(),
            terms: "30 days net".to_owned(),
            eom_reading: EomReading::default(),
            segment: SegmentRule::default(),
            book_currency: Currency::EUR,
            credit_note_journals: ["VE", "VEN", "VT", "VTE"].iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// An error reading a FEC file. Nothing is loaded when one occurs.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum FecError {
    /// The file cannot be read.
    #[error("cannot read the FEC file `{file}`")]
    #[diagnostic(code(fec::read), help("check the path given with `--fec` and that the file is readable"))]
    Read {
        /// The file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not UTF-8.
    #[error("`{file}` line {line}: the text is not UTF-8")]
    #[diagnostic(
        code(fec::encoding),
        help("a FEC file must be UTF-8 (or plain ASCII); convert it, e.g. with `iconv -f ISO-8859-15 -t UTF-8`")
    )]
    NotUtf8 {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
    },
    /// No header line.
    #[error("`{file}` is empty")]
    #[diagnostic(
        code(fec::empty),
        help("a FEC file starts with a header line naming its columns (`JournalCode`, `JournalLib`, …)")
    )]
    Empty {
        /// The file.
        file: String,
    },
    /// A column the loader needs is missing from the header.
    #[error("`{file}` line 1: the header has no column `{column}`")]
    #[diagnostic(
        code(fec::missing_column),
        help(
            "the header must name the standard FEC columns (`JournalCode`, `EcritureNum`, `EcritureDate`, `CompteNum`, `CompAuxNum`, `CompAuxLib`, `PieceRef`, `PieceDate`, `EcritureLib`, `Debit`, `Credit`, `EcritureLet`); files with `Montant` and `Sens` columns are not supported"
        )
    )]
    MissingColumn {
        /// The file.
        file: String,
        /// The missing column.
        column: &'static str,
    },
    /// A line has another number of fields than the header.
    #[error("`{file}` line {line}: {found} field(s), but the header has {expected}")]
    #[diagnostic(
        code(fec::field_count),
        help(
            "every line must have one field per header column, separated by tabs (or `|`); check for a separator inside a label"
        )
    )]
    FieldCount {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// Fields in the header.
        expected: usize,
        /// Fields on the line.
        found: usize,
    },
    /// An amount cannot be read.
    #[error("`{file}` line {line}, column `{column}`: `{value}` is not an amount")]
    #[diagnostic(
        code(fec::amount),
        help("FEC amounts are written with a decimal comma and no thousands separator, like `1234,56`")
    )]
    BadAmount {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// The column.
        column: &'static str,
        /// The text found.
        value: String,
    },
    /// A date cannot be read.
    #[error("`{file}` line {line}, column `{column}`: `{value}` is not a date")]
    #[diagnostic(code(fec::date), help("FEC dates are written `YYYYMMDD`, like `20220831`"))]
    BadDate {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// The column.
        column: &'static str,
        /// The text found.
        value: String,
    },
    /// The configured payment terms cannot be read.
    #[error("cannot use the payment terms `{terms}`")]
    #[diagnostic(code(fec::terms), help("write terms like `30 days net`, `60 days` or `45 days end of month`"))]
    Terms {
        /// The terms as configured.
        terms: String,
        /// Why.
        source: TermsError,
    },
    /// The due date of an invoice is out of the calendar.
    #[error("`{file}` line {line}: the due date of `{invoice}` is out of range")]
    #[diagnostic(code(fec::due_date), help("check the dates of the line and the payment terms"))]
    DueDate {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// The invoice id.
        invoice: String,
    },
}

/// Counts and totals of one read, for reports and reconciliation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FecSummary {
    /// Entry lines in the file (the header and blank lines excluded).
    pub lines: usize,
    /// Lines on customer accounts with an auxiliary account.
    pub customer_lines: usize,
    /// Customers (auxiliary accounts) loaded.
    pub customers: usize,
    /// Lines on customer accounts without an auxiliary account (not loaded).
    pub lines_without_aux: usize,
    /// Customer lines whose debit equals their credit (nothing to load).
    pub zero_lines: usize,
    /// Σ `Debit` of the customer lines (book currency).
    pub total_debit: Decimal,
    /// Σ `Credit` of the customer lines (book currency).
    pub total_credit: Decimal,
    /// Lettering groups (code and auxiliary account).
    pub lettering_groups: usize,
    /// Lettering groups that do not balance inside the file.
    pub unbalanced_groups: usize,
    /// Credit left after every open invoice of the customer was settled, per customer
    /// (book currency). Only customers with some are listed.
    pub unapplied_credit: BTreeMap<String, Decimal>,
    /// Σ of what is still owed on the invoices after lettering and FIFO (book currency).
    pub open_amount: Decimal,
}

/// A portfolio read from a FEC, with its summary.
#[derive(Debug, Clone, PartialEq)]
pub struct FecLoad {
    /// The portfolio.
    pub portfolio: Portfolio,
    /// Counts and totals.
    pub summary: FecSummary,
}

/// Reads a FEC file as a portfolio (see the [module documentation](self)).
#[derive(Debug, Clone)]
pub struct FecSource {
    path: PathBuf,
    options: FecOptions,
}

impl FecSource {
    /// A source for the FEC at `path` with the default options.
    pub fn new(path: impl Into<PathBuf>) -> FecSource {
        FecSource { path: path.into(), options: FecOptions::default() }
    }

    /// A source for the FEC at `path` with `options`.
    pub fn with_options(path: impl Into<PathBuf>, options: FecOptions) -> FecSource {
        FecSource { path: path.into(), options }
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file: the portfolio and its summary.
    pub fn read(&self) -> Result<FecLoad, FecError> {
        let file = self.path.display().to_string();
        let bytes = std::fs::read(&self.path).map_err(|source| FecError::Read { file: file.clone(), source })?;
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let line = 1 + e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count();
                return Err(FecError::NotUtf8 { file, line });
            }
        };
        parse_fec(&text, &file, &self.options)
    }
}

impl PortfolioSource for FecSource {
    type Error = FecError;

    fn describe(&self) -> String {
        format!("FEC file {}", self.path.display())
    }

    fn load(&self) -> Result<Portfolio, FecError> {
        Ok(self.read()?.portfolio)
    }
}

/// Reads a FEC amount: decimal comma (a decimal point is accepted too), optional sign, no
/// thousands separator. An empty field is zero.
pub fn parse_amount(text: &str) -> Option<Decimal> {
    let t = text.trim();
    if t.is_empty() {
        return Some(Decimal::ZERO);
    }
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let mut parts = digits.splitn(2, [',', '.']);
    let int = parts.next().unwrap_or("");
    let frac = parts.next();
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !all_digits(int) || frac.is_some_and(|f| f.is_empty() || !all_digits(f)) {
        return None;
    }
    let joined = match frac {
        Some(f) => format!("{int}.{f}"),
        None => int.to_owned(),
    };
    let value: Decimal = joined.parse().ok()?;
    Some(if negative { -value } else { value })
}

/// Reads a FEC date, `YYYYMMDD`.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let t = text.trim();
    if t.len() != 8 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::parse_from_str(t, "%Y%m%d").ok()
}

/// Column positions found in the header.
struct Columns {
    count: usize,
    journal: usize,
    entry_num: usize,
    entry_date: usize,
    account: usize,
    aux: usize,
    aux_label: usize,
    piece_ref: usize,
    piece_date: usize,
    label: usize,
    debit: usize,
    credit: usize,
    letter: usize,
    date_let: Option<usize>,
    fx_amount: Option<usize>,
    fx_code: Option<usize>,
}

impl Columns {
    fn find(header: &[&str], file: &str) -> Result<Columns, FecError> {
        let position = |name: &str| header.iter().position(|h| h.trim().eq_ignore_ascii_case(name));
        let need =
            |name: &'static str| position(name).ok_or(FecError::MissingColumn { file: file.to_owned(), column: name });
        Ok(Columns {
            count: header.len(),
            journal: need("JournalCode")?,
            entry_num: need("EcritureNum")?,
            entry_date: need("EcritureDate")?,
            account: need("CompteNum")?,
            aux: need("CompAuxNum")?,
            aux_label: need("CompAuxLib")?,
            piece_ref: need("PieceRef")?,
            piece_date: need("PieceDate")?,
            label: need("EcritureLib")?,
            debit: need("Debit")?,
            credit: need("Credit")?,
            letter: need("EcritureLet")?,
            date_let: position("DateLet"),
            fx_amount: position("Montantdevise"),
            fx_code: position("Idevise"),
        })
    }
}

/// One customer line, read.
#[derive(Debug, Clone)]
struct Line {
    line: usize,
    journal: String,
    entry_num: String,
    entry_date: NaiveDate,
    aux_label: String,
    account: String,
    piece_ref: String,
    piece_date: Option<NaiveDate>,
    label: String,
    /// Debit − Credit.
    net: Decimal,
    letter: String,
    date_let: Option<NaiveDate>,
    fx: Option<(Currency, Decimal)>,
}

/// An invoice being settled.
struct Debit {
    line: Line,
    id: String,
    issue: NaiveDate,
    amount: Decimal,
    remaining: Decimal,
    /// `(credit index, book amount)` settlements, in order.
    settled_by: Vec<(usize, Decimal)>,
}

/// A payment or credit note being applied.
struct Credit {
    line: Line,
    id: String,
    amount: Decimal,
    remaining: Decimal,
}

/// Settles `debits` (indices, oldest first) with `credits` (indices, oldest first).
fn settle(
    debits: &mut [Debit],
    credits: &mut [Credit],
    debit_order: &[usize],
    credit_order: &[usize],
) -> Vec<(usize, usize, Decimal)> {
    let mut applied = Vec::new();
    let mut d = debit_order.iter().copied().peekable();
    for &c in credit_order {
        while credits[c].remaining > Decimal::ZERO {
            let Some(&i) = d.peek() else { return applied };
            let x = debits[i].remaining.min(credits[c].remaining);
            if x > Decimal::ZERO {
                debits[i].remaining -= x;
                credits[c].remaining -= x;
                debits[i].settled_by.push((c, x));
                applied.push((i, c, x));
            }
            if debits[i].remaining <= Decimal::ZERO {
                d.next();
            }
        }
    }
    applied
}

fn round_to(amount: Decimal, currency: Currency) -> Decimal {
    let dp = u32::from(currency.exponent().unwrap_or(2));
    amount.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero)
}

/// Parses the text of a FEC file named `file` (see the [module documentation](self)).
pub fn parse_fec(text: &str, file: &str, options: &FecOptions) -> Result<FecLoad, FecError> {
    // Validate the terms once, so that a wrong configuration is one clear error.
    let probe = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default();
    due_date_from_terms(&options.terms, probe, options.eom_reading)
        .map_err(|source| FecError::Terms { terms: options.terms.clone(), source })?;

    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split('\n').enumerate().map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    let Some((_, header)) = lines.find(|(_, l)| !l.trim().is_empty()) else {
        return Err(FecError::Empty { file: file.to_owned() });
    };
    let separator = if header.contains('\t') { '\t' } else { '|' };
    let header_fields: Vec<&str> = header.split(separator).collect();
    let cols = Columns::find(&header_fields, file)?;

    let mut summary = FecSummary::default();
    let mut warnings = Vec::new();
    let mut without_aux_amount = Decimal::ZERO;
    // Customer lines by auxiliary account, in file order.
    let mut by_customer: BTreeMap<String, Vec<Line>> = BTreeMap::new();
    let amount = |line: usize, column: &'static str, value: &str| {
        parse_amount(value).ok_or_else(|| FecError::BadAmount {
            file: file.to_owned(),
            line,
            column,
            value: value.to_owned(),
        })
    };
    let date = |line: usize, column: &'static str, value: &str| {
        parse_date(value).ok_or_else(|| FecError::BadDate {
            file: file.to_owned(),
            line,
            column,
            value: value.to_owned(),
        })
    };
    let optional_date = |line: usize, column: &'static str, value: &str| {
        if value.trim().is_empty() { Ok(None) } else { date(line, column, value).map(Some) }
    };

    for (n, raw) in lines {
        if raw.trim().is_empty() {
            continue;
        }
        summary.lines += 1;
        let f: Vec<&str> = raw.split(separator).collect();
        if f.len() != cols.count {
            return Err(FecError::FieldCount { file: file.to_owned(), line: n, expected: cols.count, found: f.len() });
        }
        let account = f[cols.account].trim();
        if !account.starts_with(options.customer_account_prefix.as_str()) {
            continue;
        }
        let debit = amount(n, "Debit", f[cols.debit])?;
        let credit = amount(n, "Credit", f[cols.credit])?;
        let entry_date = date(n, "EcritureDate", f[cols.entry_date])?;
        let piece_date = optional_date(n, "PieceDate", f[cols.piece_date])?;
        let date_let = match cols.date_let {
            Some(i) => optional_date(n, "DateLet", f[i])?,
            None => None,
        };
        let aux = f[cols.aux].trim();
        if aux.is_empty() {
            summary.lines_without_aux += 1;
            without_aux_amount += debit - credit;
            continue;
        }
        summary.customer_lines += 1;
        summary.total_debit += debit;
        summary.total_credit += credit;
        let net = debit - credit;
        if net.is_zero() {
            summary.zero_lines += 1;
            continue;
        }
        let fx = match (cols.fx_code, cols.fx_amount) {
            (Some(ci), Some(ai)) if !f[ci].trim().is_empty() => {
                let code = f[ci].trim();
                match Currency::from_code(&code.to_ascii_uppercase()) {
                    Some(c) if c == options.book_currency => None,
                    Some(c) => {
                        let fx_amount = amount(n, "Montantdevise", f[ai])?.abs();
                        if fx_amount.is_zero() {
                            warnings.push(format!(
                                "`{file}` line {n}: currency `{code}` without an amount in `Montantdevise`; the line is kept in {}",
                                options.book_currency.code()
                            ));
                            None
                        } else {
                            Some((c, fx_amount))
                        }
                    }
                    None => {
                        warnings.push(format!(
                            "`{file}` line {n}: `{code}` in `Idevise` is not a currency code; the line is kept in {}",
                            options.book_currency.code()
                        ));
                        None
                    }
                }
            }
            _ => None,
        };
        by_customer.entry(aux.to_owned()).or_default().push(Line {
            line: n,
            journal: f[cols.journal].trim().to_owned(),
            entry_num: f[cols.entry_num].trim().to_owned(),
            entry_date,
            aux_label: f[cols.aux_label].trim().to_owned(),
            account: account.to_owned(),
            piece_ref: f[cols.piece_ref].trim().to_owned(),
            piece_date,
            label: f[cols.label].trim().to_owned(),
            net,
            letter: f[cols.letter].trim().to_owned(),
            date_let,
            fx,
        });
    }
    if summary.lines_without_aux > 0 {
        warnings.push(format!(
            "`{file}`: {} line(s) on customer accounts have no auxiliary account (`CompAuxNum`) and were not loaded (net {} {})",
            summary.lines_without_aux,
            without_aux_amount,
            options.book_currency.code()
        ));
    }

    let mut portfolio = Portfolio::default();
    let mut used_invoice_ids: HashSet<String> = HashSet::new();
    let mut used_credit_ids: HashSet<String> = HashSet::new();
    let unique = |used: &mut HashSet<String>, base: String| -> String {
        let mut id = base.clone();
        let mut k = 2;
        while used.contains(&id) {
            id = format!("{base}-{k}");
            k += 1;
        }
        used.insert(id.clone());
        id
    };
    let book = options.book_currency;
    let code = book.code();
    // Invoice ids are given in file order across customers, so collect them first.
    let mut debit_ids: BTreeMap<usize, String> = BTreeMap::new();
    {
        let mut all: Vec<&Line> = by_customer.values().flatten().filter(|l| l.net > Decimal::ZERO).collect();
        all.sort_by_key(|l| l.line);
        for l in all {
            let base =
                if l.piece_ref.is_empty() { format!("{}-{}", l.journal, l.entry_num) } else { l.piece_ref.clone() };
            debit_ids.insert(l.line, unique(&mut used_invoice_ids, base));
        }
    }

    for (aux, lines) in by_customer {
        let mut debits: Vec<Debit> = Vec::new();
        let mut credits: Vec<Credit> = Vec::new();
        for l in lines {
            if l.net > Decimal::ZERO {
                let id = debit_ids.get(&l.line).cloned().unwrap_or_default();
                debits.push(Debit {
                    id,
                    issue: l.piece_date.unwrap_or(l.entry_date),
                    amount: l.net,
                    remaining: l.net,
                    settled_by: Vec::new(),
                    line: l,
                });
            } else {
                let id = unique(&mut used_credit_ids, format!("{}-{}", l.journal, l.entry_num));
                credits.push(Credit { id, amount: -l.net, remaining: -l.net, line: l });
            }
        }
        let mut debit_order: Vec<usize> = (0..debits.len()).collect();
        debit_order.sort_by_key(|&i| (debits[i].issue, debits[i].line.line));
        let mut credit_order: Vec<usize> = (0..credits.len()).collect();
        credit_order.sort_by_key(|&i| (credits[i].line.entry_date, credits[i].line.line));

        // 1. Lettering groups: credits settle the group's debits, oldest first.
        let mut letters: BTreeMap<&str, ()> = BTreeMap::new();
        for d in &debits {
            letters.insert(d.line.letter.as_str(), ());
        }
        for c in &credits {
            letters.insert(c.line.letter.as_str(), ());
        }
        let letters: Vec<String> = letters.into_keys().filter(|l| !l.is_empty()).map(str::to_owned).collect();
        for letter in &letters {
            summary.lettering_groups += 1;
            let group_debits: Vec<usize> =
                debit_order.iter().copied().filter(|&i| debits[i].line.letter == *letter).collect();
            let group_credits: Vec<usize> =
                credit_order.iter().copied().filter(|&i| credits[i].line.letter == *letter).collect();
            settle(&mut debits, &mut credits, &group_debits, &group_credits);
            let debit_rest: Decimal = group_debits.iter().map(|&i| debits[i].remaining).sum();
            let credit_rest: Decimal = group_credits.iter().map(|&i| credits[i].remaining).sum();
            if debit_rest > Decimal::ZERO {
                summary.unbalanced_groups += 1;
                let ids: Vec<&str> = group_debits
                    .iter()
                    .filter(|&&i| debits[i].remaining > Decimal::ZERO)
                    .map(|&i| debits[i].id.as_str())
                    .collect();
                warnings.push(format!(
                    "customer `{aux}`: lettering `{letter}` has {debit_rest} {code} more debit than credit in this file (matched after its closing date); kept open on {}",
                    ids.join(", ")
                ));
            } else if credit_rest > Decimal::ZERO {
                summary.unbalanced_groups += 1;
                warnings.push(format!(
                    "customer `{aux}`: lettering `{letter}` has {credit_rest} {code} more credit than debit in this file (it settled earlier entries); applied to the oldest open invoices"
                ));
            }
        }

        // 2. Unlettered credits and the rests of lettering groups: oldest open invoices first.
        let open: Vec<usize> = debit_order.iter().copied().filter(|&i| debits[i].remaining > Decimal::ZERO).collect();
        let pool: Vec<usize> = credit_order.iter().copied().filter(|&i| credits[i].remaining > Decimal::ZERO).collect();
        let applied = settle(&mut debits, &mut credits, &open, &pool);
        for &c in &pool {
            if !credits[c].line.letter.is_empty() {
                continue;
            }
            let on: Vec<String> = applied
                .iter()
                .filter(|(_, ci, _)| *ci == c)
                .map(|(di, _, x)| format!("{x} {code} on `{}`", debits[*di].id))
                .collect();
            let credit = &credits[c];
            if !on.is_empty() {
                warnings.push(format!(
                    "customer `{aux}`: unlettered {} `{}` of {} {code} (line {}) applied to the oldest open invoices: {}",
                    if is_credit_note(options, &credit.line.journal) { "credit note" } else { "payment" },
                    credit.id,
                    credit.amount,
                    credit.line.line,
                    on.join(", ")
                ));
            }
        }
        let unapplied: Decimal = credits.iter().map(|c| c.remaining).sum();
        if unapplied > Decimal::ZERO {
            summary.unapplied_credit.insert(aux.clone(), unapplied);
            warnings.push(format!(
                "customer `{aux}`: {unapplied} {code} of credit is not applied to any invoice (overpayment or payment of entries outside this file)"
            ));
        }

        // 3. The customer, its invoices and their payments.
        let total_debit: Decimal = debits.iter().map(|d| d.amount).sum();
        let first = debits.first().map(|d| &d.line).or(credits.first().map(|c| &c.line));
        let name = debits
            .iter()
            .map(|d| &d.line)
            .chain(credits.iter().map(|c| &c.line))
            .find(|l| !l.aux_label.is_empty())
            .map(|l| l.aux_label.clone());
        let mut customer =
            Customer::new(aux.clone(), name.unwrap_or_else(|| aux.clone()), options.segment.segment_for(total_debit));
        if let Some(l) = first {
            customer.extra.insert("account".to_owned(), l.account.clone());
        }
        customer.extra.insert("total_debit".to_owned(), total_debit.to_string());
        portfolio.customers.push(customer);

        for &i in &debit_order {
            let d = &debits[i];
            summary.open_amount += d.remaining;
            let due = due_date_from_terms(&options.terms, d.issue, options.eom_reading)
                .map_err(|source| FecError::Terms { terms: options.terms.clone(), source })?;
            if due == NaiveDate::MAX {
                return Err(FecError::DueDate { file: file.to_owned(), line: d.line.line, invoice: d.id.clone() });
            }
            let (currency, amount) = d.line.fx.unwrap_or((book, d.amount));
            let mut inv = Invoice::new(d.id.clone(), aux.clone(), due, amount, currency);
            inv.issue_date = Some(d.issue);
            inv.extra.insert("terms".to_owned(), options.terms.clone());
            inv.extra.insert("journal".to_owned(), d.line.journal.clone());
            inv.extra.insert("entry".to_owned(), d.line.entry_num.clone());
            inv.extra.insert("label".to_owned(), d.line.label.clone());
            inv.extra.insert("fec_line".to_owned(), d.line.line.to_string());
            if !d.line.letter.is_empty() {
                inv.extra.insert("lettering".to_owned(), d.line.letter.clone());
            }
            if let Some(dl) = d.line.date_let {
                inv.extra.insert("lettered_on".to_owned(), dl.to_string());
            }
            if currency != book {
                inv.extra.insert("book_amount".to_owned(), d.amount.to_string());
            }
            let mut paid_fx = Decimal::ZERO;
            let mut paid_book = Decimal::ZERO;
            for &(c, x) in &d.settled_by {
                let credit = &credits[c];
                paid_book += x;
                // In the invoice's currency: at its own rate, the full settlement exact.
                let x_cur = if currency == book {
                    x
                } else if paid_book == d.amount {
                    amount - paid_fx
                } else {
                    round_to(x * amount / d.amount, currency)
                };
                paid_fx += x_cur;
                let kind = if is_credit_note(options, &credit.line.journal) {
                    PaymentKind::CreditNote
                } else {
                    PaymentKind::Payment
                };
                // A credit split over several invoices gets one payment id per invoice.
                let id = if credit.amount == x { credit.id.clone() } else { format!("{}/{}", credit.id, d.id) };
                portfolio.payments.push(Payment {
                    id: Some(id.into()),
                    invoice_id: d.id.as_str().into(),
                    date: credit.line.entry_date,
                    amount: x_cur,
                    kind,
                });
            }
            portfolio.invoices.push(inv);
        }
    }
    portfolio.warnings = warnings;
    summary.customers = portfolio.customers.len();
    Ok(FecLoad { portfolio, summary })
}

fn is_credit_note(options: &FecOptions, journal: &str) -> bool {
    options.credit_note_journals.iter().any(|j| j.eq_ignore_ascii_case(journal))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    /// The bundled FEC (MIT, see `examples/fec/LICENSE.neolegal-fec-reader`).
    const BUNDLED: &str = include_str!("../../fec/0000000001FEC20220831.txt");

    const HEADER: &str = "JournalCode\tJournalLib\tEcritureNum\tEcritureDate\tCompteNum\tCompteLib\tCompAuxNum\tCompAuxLib\tPieceRef\tPieceDate\tEcritureLib\tDebit\tCredit\tEcritureLet\tDateLet\tValidDate\tMontantdevise\tIdevise";

    /// One FEC line on account 411000: journal, number, date, aux, piece, debit, credit, letter.
    #[allow(clippy::too_many_arguments)]
    fn row(
        journal: &str,
        num: u32,
        date: &str,
        aux: &str,
        piece: &str,
        debit: &str,
        credit: &str,
        letter: &str,
    ) -> String {
        format!(
            "{journal}\tJ\t{num}\t{date}\t411000\tClients\t{aux}\tName of {aux}\t{piece}\t{date}\tlabel\t{debit}\t{credit}\t{letter}\t\t20230101\t\t"
        )
    }

    fn fec(rows: &[String]) -> String {
        let mut s = String::from(HEADER);
        for r in rows {
            s.push('\n');
            s.push_str(r);
        }
        s.push('\n');
        s
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn load(text: &str) -> FecLoad {
        parse_fec(text, "test.txt", &FecOptions::default()).unwrap()
    }

    /// Outstanding of each invoice once every payment of the file is known.
    fn outstanding(p: &Portfolio) -> BTreeMap<String, Decimal> {
        p.invoices
            .iter()
            .map(|i| {
                let paid: Decimal = p.payments.iter().filter(|x| x.invoice_id == i.id).map(|x| x.amount).sum();
                (i.id.to_string(), i.amount - paid)
            })
            .collect()
    }

    #[test]
    fn amounts_use_a_decimal_comma() {
        assert_eq!(parse_amount("1234,56"), Some(dec!(1234.56)));
        assert_eq!(parse_amount("0,00"), Some(dec!(0)));
        assert_eq!(parse_amount(""), Some(dec!(0)));
        assert_eq!(parse_amount("-12,5"), Some(dec!(-12.5)));
        assert_eq!(parse_amount("12.5"), Some(dec!(12.5)));
        assert_eq!(parse_amount("7"), Some(dec!(7)));
        for bad in ["1 234,56", "12,", ",5", "abc", "1,2,3", "--1", "1e3"] {
            assert_eq!(parse_amount(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates_are_yyyymmdd() {
        assert_eq!(parse_date("20220831"), Some(day(2022, 8, 31)));
        assert_eq!(parse_date("2022-08-31"), None);
        assert_eq!(parse_date("20220231"), None);
        assert_eq!(parse_date("31082022"), None);
    }

    #[test]
    fn a_balanced_lettering_pays_the_invoices_with_the_credits_dates() {
        let text = fec(&[
            row("VEN", 1, "20220105", "C1", "F1", "100,00", "0,00", "AA"),
            row("VEN", 2, "20220110", "C1", "F2", "50,00", "0,00", "AA"),
            row("BQ", 3, "20220201", "C1", "", "0,00", "120,00", "AA"),
            row("BQ", 4, "20220215", "C1", "", "0,00", "30,00", "AA"),
        ]);
        let l = load(&text);
        assert_eq!(l.portfolio.customers.len(), 1);
        assert_eq!(l.portfolio.customers[0].name, "Name of C1");
        assert_eq!(l.portfolio.customers[0].segment, "sme");
        let f1 = &l.portfolio.invoices[0];
        assert_eq!((f1.id.as_str(), f1.issue_date, f1.due_date), ("F1", Some(day(2022, 1, 5)), day(2022, 2, 4)));
        let pays: Vec<(&str, &str, NaiveDate, Decimal)> = l
            .portfolio
            .payments
            .iter()
            .map(|p| (p.id.as_deref().unwrap(), p.invoice_id.as_str(), p.date, p.amount))
            .collect();
        assert_eq!(
            pays,
            vec![
                ("BQ-3/F1", "F1", day(2022, 2, 1), dec!(100)),
                ("BQ-3/F2", "F2", day(2022, 2, 1), dec!(20)),
                ("BQ-4", "F2", day(2022, 2, 15), dec!(30)),
            ]
        );
        assert!(outstanding(&l.portfolio).values().all(|o| o.is_zero()));
        assert!(l.portfolio.warnings.is_empty(), "{:?}", l.portfolio.warnings);
        assert_eq!((l.summary.lettering_groups, l.summary.unbalanced_groups), (1, 0));
    }

    #[test]
    fn unbalanced_letterings_keep_debits_open_and_apply_credit_rests_fifo() {
        let text = fec(&[
            // Opening balance of an earlier year, unlettered.
            row("ANO", 1, "20210901", "C1", "RAN", "300,00", "0,00", ""),
            // A payment lettered with the earlier year's invoices: 250 for them, none here.
            row("BQ", 2, "20211004", "C1", "", "0,00", "250,00", "AB"),
            // An invoice lettered after the closing date: still owed.
            row("VEN", 3, "20220820", "C1", "F9", "80,00", "0,00", "AC"),
        ]);
        let l = load(&text);
        let o = outstanding(&l.portfolio);
        assert_eq!(o["RAN"], dec!(50));
        assert_eq!(o["F9"], dec!(80));
        assert_eq!(l.portfolio.payments.len(), 1);
        assert_eq!(l.portfolio.payments[0].date, day(2021, 10, 4));
        assert_eq!(l.summary.unbalanced_groups, 2);
        assert_eq!(l.summary.open_amount, dec!(130));
        let w = l.portfolio.warnings.join("\n");
        assert!(w.contains("lettering `AB` has 250.00 EUR more credit"), "{w}");
        assert!(w.contains("lettering `AC` has 80.00 EUR more debit"), "{w}");
        assert!(w.contains("kept open on F9"), "{w}");
    }

    #[test]
    fn unlettered_credits_go_to_the_oldest_invoices_and_the_rest_is_unapplied() {
        let text = fec(&[
            row("VEN", 2, "20220301", "C1", "F2", "40,00", "0,00", ""),
            row("VEN", 1, "20220201", "C1", "F1", "60,00", "0,00", ""),
            row("RCH", 3, "20220310", "C1", "CHQ", "0,00", "110,00", ""),
        ]);
        let l = load(&text);
        let o = outstanding(&l.portfolio);
        assert_eq!((o["F1"], o["F2"]), (dec!(0), dec!(0)));
        assert_eq!(l.summary.unapplied_credit.get("C1"), Some(&dec!(10)));
        let w = l.portfolio.warnings.join("\n");
        assert!(w.contains("unlettered payment `RCH-3` of 110.00 EUR (line 4) applied to the oldest open invoices: 60.00 EUR on `F1`, 40.00 EUR on `F2`"), "{w}");
        assert!(w.contains("customer `C1`: 10.00 EUR of credit is not applied"), "{w}");
    }

    #[test]
    fn credit_lines_of_sales_journals_are_credit_notes() {
        let text = fec(&[
            row("VEN", 1, "20220201", "C1", "F1", "60,00", "0,00", "A"),
            row("VEN", 2, "20220210", "C1", "AV1", "0,00", "60,00", "A"),
        ]);
        let l = load(&text);
        assert_eq!(l.portfolio.payments[0].kind, PaymentKind::CreditNote);
    }

    #[test]
    fn ids_are_unique_and_fall_back_to_journal_and_number() {
        let text = fec(&[
            row("ANO", 1, "20210901", "C1", "RAN", "1,00", "0,00", ""),
            row("ANO", 1, "20210901", "C2", "RAN", "2,00", "0,00", ""),
            row("ANO", 1, "20210901", "C3", "RAN", "3,00", "0,00", ""),
            row("VEN", 7, "20220101", "C1", "", "4,00", "0,00", ""),
            row("VEN", 8, "20220101", "C1", "RAN-2", "5,00", "0,00", ""),
        ]);
        let l = load(&text);
        let mut ids: Vec<(&str, &str)> =
            l.portfolio.invoices.iter().map(|i| (i.customer_id.as_str(), i.id.as_str())).collect();
        ids.sort();
        assert_eq!(ids, vec![("C1", "RAN"), ("C1", "RAN-2-2"), ("C1", "VEN-7"), ("C2", "RAN-2"), ("C3", "RAN-3")]);
    }

    #[test]
    fn bom_crlf_pipes_and_lines_without_aux_account() {
        let text = format!(
            "\u{feff}{}\r\n{}\r\n{}\r\n{}\r\n",
            HEADER.replace('\t', "|"),
            row("VEN", 1, "20220201", "C1", "F1", "60,00", "0,00", "").replace('\t', "|"),
            row("VEN", 2, "20220201", "", "F2", "70,00", "0,00", "").replace('\t', "|"),
            "VEN|J|3|20220201|706000|Ventes|||F1|20220201|label|0,00|60,00|||||"
        );
        let l = load(&text);
        assert_eq!(l.summary.lines, 3);
        assert_eq!((l.summary.customer_lines, l.summary.lines_without_aux), (1, 1));
        assert_eq!(l.portfolio.invoices.len(), 1);
        assert!(
            l.portfolio.warnings[0].contains("1 line(s) on customer accounts have no auxiliary account"),
            "{:?}",
            l.portfolio.warnings
        );
    }

    #[test]
    fn foreign_currency_invoices_convert_their_payments_at_their_own_rate() {
        let mut inv = row("VEN", 1, "20220201", "C1", "F1", "100,00", "0,00", "A");
        inv = inv.replace("\t\t20230101\t\t", "\t\t20230101\t110,00\tUSD");
        let text = fec(&[
            inv,
            row("BQ", 2, "20220301", "C1", "", "0,00", "33,33", "A"),
            row("BQ", 3, "20220401", "C1", "", "0,00", "66,67", "A"),
        ]);
        let l = load(&text);
        let i = &l.portfolio.invoices[0];
        assert_eq!((i.currency, i.amount), (Currency::USD, dec!(110.00)));
        let paid: Vec<Decimal> = l.portfolio.payments.iter().map(|p| p.amount).collect();
        assert_eq!(paid, vec![dec!(36.66), dec!(73.34)]);
    }

    #[test]
    fn an_unknown_currency_code_is_a_warning() {
        let inv = row("VEN", 1, "20220201", "C1", "F1", "100,00", "0,00", "")
            .replace("\t\t20230101\t\t", "\t\t20230101\t110,00\tXYZ");
        let l = load(&fec(&[inv]));
        assert_eq!(l.portfolio.invoices[0].currency, Currency::EUR);
        assert!(l.portfolio.warnings[0].contains("`XYZ` in `Idevise` is not a currency code"));
    }

    #[test]
    fn errors_name_file_line_column_and_value() {
        let bad = fec(&[
            row("VEN", 1, "20220201", "C1", "F1", "60,00", "0,00", ""),
            row("VEN", 2, "20220201", "C1", "F2", "1.234,00", "0,00", ""),
        ]);
        let e = parse_fec(&bad, "x.txt", &FecOptions::default()).unwrap_err();
        assert_eq!(e.to_string(), "`x.txt` line 3, column `Debit`: `1.234,00` is not an amount");

        let bad = fec(&[row("VEN", 1, "2022-02-01", "C1", "F1", "60,00", "0,00", "")]);
        let e = parse_fec(&bad, "x.txt", &FecOptions::default()).unwrap_err();
        assert_eq!(e.to_string(), "`x.txt` line 2, column `EcritureDate`: `2022-02-01` is not a date");

        let bad = format!("{HEADER}\nVEN\tJ\t1\n");
        let e = parse_fec(&bad, "x.txt", &FecOptions::default()).unwrap_err();
        assert_eq!(e.to_string(), "`x.txt` line 2: 3 field(s), but the header has 18");

        let bad = HEADER.replace("\tEcritureLet", "\tLettrage");
        let e = parse_fec(&bad, "x.txt", &FecOptions::default()).unwrap_err();
        assert_eq!(e.to_string(), "`x.txt` line 1: the header has no column `EcritureLet`");

        let e = parse_fec("\n\n", "x.txt", &FecOptions::default()).unwrap_err();
        assert_eq!(e.to_string(), "`x.txt` is empty");

        let options = FecOptions { terms: "whenever".to_owned(), ..FecOptions::default() };
        let e = parse_fec(&fec(&[]), "x.txt", &options).unwrap_err();
        assert_eq!(e.to_string(), "cannot use the payment terms `whenever`");
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn a_bad_amount_on_another_account_is_not_read() {
        let other = "VEN\tJ\t3\t20220201\t706000\tVentes\t\t\tF1\t20220201\tlabel\tn/a\t60,00\t\t\t\t\t";
        let l = load(&fec(&[other.to_owned()]));
        assert_eq!((l.summary.lines, l.summary.customer_lines), (1, 0));
    }

    #[test]
    fn segments_by_total_debit() {
        let rule =
            SegmentRule::ByTotalDebit { threshold: dec!(50000), above: "key-account".into(), otherwise: "sme".into() };
        assert_eq!(rule.segment_for(dec!(50000)), "sme");
        assert_eq!(rule.segment_for(dec!(50000.01)), "key-account");
        assert_eq!(SegmentRule::default().segment_for(dec!(1e9)), "sme");
    }

    #[test]
    fn terms_give_the_due_date() {
        let options = FecOptions { terms: "45 days end of month".to_owned(), ..FecOptions::default() };
        let l = parse_fec(&fec(&[row("VEN", 1, "20220105", "C1", "F1", "60,00", "0,00", "")]), "t", &options).unwrap();
        // 5 January + 45 days = 19 February, end of month.
        assert_eq!(l.portfolio.invoices[0].due_date, day(2022, 2, 28));
    }

    // ---- The bundled FEC -------------------------------------------------------------------

    fn bundled(segment: SegmentRule) -> FecLoad {
        let options = FecOptions { segment, ..FecOptions::default() };
        parse_fec(BUNDLED, "0000000001FEC20220831.txt", &options).unwrap()
    }

    #[test]
    fn bundled_fec_counts() {
        let l = bundled(SegmentRule::default());
        let s = &l.summary;
        assert_eq!(s.lines, 5422);
        assert_eq!(s.customer_lines, 538);
        assert_eq!((s.lines_without_aux, s.zero_lines), (0, 0));
        assert_eq!((l.portfolio.customers.len(), s.customers), (17, 17));
        // 391 sales (VEN), 7 opening balances (ANO) and 2 debits in the bank journal (CRC);
        // the other 138 lines are credits (8 of them credit notes in VEN).
        let debits = BUNDLED.lines().filter(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            f.len() > 12 && f[4].starts_with("411") && f[11] != "0,00"
        });
        assert_eq!(l.portfolio.invoices.len(), debits.count());
        assert_eq!(l.portfolio.invoices.len(), 400);
        let notes = l
            .portfolio
            .payments
            .iter()
            .filter(|p| p.kind == PaymentKind::CreditNote)
            .map(|p| p.id.as_deref().unwrap_or("").split('/').next().unwrap_or(""))
            .collect::<HashSet<_>>();
        assert_eq!(notes.len(), 8);
    }

    #[test]
    fn bundled_fec_reconciles_with_the_ledger() {
        let l = bundled(SegmentRule::default());
        // Σ Debit − Σ Credit of the 411 lines, read here independently of the loader.
        let (mut d, mut c) = (Decimal::ZERO, Decimal::ZERO);
        for line in BUNDLED.lines().skip(1) {
            let f: Vec<&str> = line.split('\t').collect();
            if f[4].starts_with("411") {
                d += f[11].replace(',', ".").parse::<Decimal>().unwrap();
                c += f[12].replace(',', ".").parse::<Decimal>().unwrap();
            }
        }
        assert_eq!((d, c), (dec!(1185535.04), dec!(1133017.80)));
        assert_eq!((l.summary.total_debit, l.summary.total_credit), (d, c));
        let open: Decimal = outstanding(&l.portfolio).values().sum();
        let unapplied: Decimal = l.summary.unapplied_credit.values().sum();
        assert_eq!(open, dec!(52596.37));
        let open_invoices = outstanding(&l.portfolio).values().filter(|o| **o > Decimal::ZERO).count();
        assert_eq!(open_invoices, 23);
        assert_eq!(unapplied, dec!(79.13));
        assert_eq!(d - c, open - unapplied);
        assert_eq!(l.summary.open_amount, open);
        // No invoice is overpaid, no payment is negative or outside the file's year.
        assert!(outstanding(&l.portfolio).values().all(|o| *o >= Decimal::ZERO));
        assert!(
            l.portfolio
                .payments
                .iter()
                .all(|p| p.amount > Decimal::ZERO && p.date >= day(2021, 9, 1) && p.date <= day(2022, 8, 31))
        );
    }

    #[test]
    fn bundled_fec_open_balance_per_customer_is_the_ledger_balance() {
        let l = bundled(SegmentRule::default());
        let o = outstanding(&l.portfolio);
        let mut per_customer: BTreeMap<&str, Decimal> = BTreeMap::new();
        for i in &l.portfolio.invoices {
            *per_customer.entry(i.customer_id.as_str()).or_default() += o[i.id.as_str()];
        }
        let owing: Vec<(&str, Decimal)> = per_customer.into_iter().filter(|(_, v)| !v.is_zero()).collect();
        // Balances of the auxiliary accounts, computed with awk from the file (CNOURR is a credit
        // balance of 79.13: an overpayment, not an invoice).
        assert_eq!(
            owing,
            vec![
                ("CLAURE", dec!(6661.27)),
                ("CMOURL", dec!(438.88)),
                ("CPMTN0", dec!(18070.04)),
                ("CPRO00", dec!(27123.29)),
                ("CRETAY", dec!(302.89))
            ]
        );
    }

    #[test]
    fn bundled_fec_hand_checked_customers() {
        let l = bundled(SegmentRule::ByTotalDebit {
            threshold: dec!(50000),
            above: "key-account".into(),
            otherwise: "sme".into(),
        });
        let p = &l.portfolio;
        let o = outstanding(p);
        let key: Vec<&str> = p.customers.iter().filter(|c| c.segment == "key-account").map(|c| c.id.as_str()).collect();
        assert_eq!(key, vec!["CCUIPO", "CMOURL", "CPMTN0", "CPRO00"]);

        // PROSOL GESTION: its opening balance (35724.95) is settled by three payments lettered
        // with last year's invoices; its 18 invoices of August 2022 are lettered later: open.
        let prosol: Vec<&Invoice> =
            p.invoices.iter().filter(|i| i.customer_id == "CPRO00" && o[i.id.as_str()] > Decimal::ZERO).collect();
        assert_eq!(prosol.len(), 18);
        assert!(prosol.iter().all(|i| i.issue_date >= Some(day(2022, 8, 11)) && o[i.id.as_str()] == i.amount));
        let ran: Vec<&Payment> = p.payments.iter().filter(|x| x.invoice_id == "RAN-6").collect();
        let ran: Vec<(NaiveDate, Decimal)> = ran.iter().map(|x| (x.date, x.amount)).collect();
        assert_eq!(
            ran,
            vec![
                (day(2021, 9, 6), dec!(7178.24)),
                (day(2021, 9, 13), dec!(7861.33)),
                (day(2021, 10, 4), dec!(20685.38))
            ]
        );

        // CUISINE ET POTAGER: every invoice paid by its own transfer.
        let f = p.invoices.iter().find(|i| i.id == "FA  220243").unwrap();
        assert_eq!((f.customer_id.as_str(), f.amount, f.due_date), ("CCUIPO", dec!(40737.06), day(2022, 4, 25)));
        let pay: Vec<&Payment> = p.payments.iter().filter(|x| x.invoice_id == "FA  220243").collect();
        assert_eq!(pay.len(), 1);
        assert_eq!(
            (pay[0].id.as_deref(), pay[0].date, pay[0].amount),
            (Some("CRC-583"), day(2022, 4, 20), dec!(40737.06))
        );

        // JULES NOURRIT: an unlettered cheque of 8194.19 pays the 8115.06 invoice; 79.13 over.
        assert_eq!(o["FA  220272"], dec!(0));
        assert_eq!(l.summary.unapplied_credit, BTreeMap::from([("CNOURR".to_owned(), dec!(79.13))]));

        // LE VERGER DE RETAYON: two May invoices, lettered later, open and late on 31 August.
        let retay: Vec<(&str, Decimal, NaiveDate)> = p
            .invoices
            .iter()
            .filter(|i| i.customer_id == "CRETAY" && o[i.id.as_str()] > Decimal::ZERO)
            .map(|i| (i.id.as_str(), i.amount, i.due_date))
            .collect();
        assert_eq!(
            retay,
            vec![("FA  220301", dec!(100.33), day(2022, 6, 23)), ("FA  220302", dec!(202.56), day(2022, 6, 24))]
        );
    }

    #[test]
    fn bundled_fec_warnings() {
        let l = bundled(SegmentRule::default());
        // 9 lettering groups with a credit rest, 6 with a debit rest; 2 unlettered credits
        // applied (CNOURR's cheque, CPERR0's write-off); 1 unapplied credit.
        assert_eq!(l.summary.unbalanced_groups, 15);
        assert_eq!(l.portfolio.warnings.len(), 15 + 2 + 1, "{:#?}", l.portfolio.warnings);
        assert!(l.portfolio.warnings.iter().any(|w| w.contains("unlettered payment `OD-39` of 94.95 EUR (line 3797) applied to the oldest open invoices: 94.95 EUR on `RAN-3`")), "{:#?}", l.portfolio.warnings);
    }

    #[test]
    fn bundled_fec_is_read_the_same_twice() {
        assert_eq!(bundled(SegmentRule::default()), bundled(SegmentRule::default()));
    }
}
