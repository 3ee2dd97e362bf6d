//! Load errors: each names the file (and sheet), the line, the column, the value, and says
//! how to fix it.

use std::fmt;

use miette::Diagnostic;

/// What went wrong with a portfolio file, for programs that react to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoadErrorKind {
    /// A file or folder could not be read.
    Io,
    /// No portfolio files were found where one was expected.
    NoPortfolio,
    /// A workbook has no sheet of the expected name.
    MissingSheet,
    /// The file is not well-formed CSV, JSON or Excel.
    Syntax,
    /// The mapping file `portfolio.toml` has a bad line.
    Mapping,
    /// A required column is absent from the header.
    MissingColumn,
    /// A column name appears twice in the header.
    DuplicateColumn,
    /// A row has a different number of fields than the header.
    FieldCount,
    /// A required value is empty.
    MissingValue,
    /// A value is not a date.
    BadDate,
    /// A value is not an amount.
    BadAmount,
    /// An amount is negative.
    NegativeAmount,
    /// A value is not a number.
    BadNumber,
    /// A value is not a yes/no value.
    BadBoolean,
    /// A value is not an ISO 4217 currency code.
    BadCurrency,
    /// A payment kind is neither `payment` nor `credit_note`.
    BadPaymentKind,
    /// An Excel cell holds an error (`#DIV/0!`).
    CellError,
    /// Payment terms cannot be turned into a due date.
    BadTerms,
    /// An invoice has neither a due date nor issue date and terms.
    MissingDueDate,
    /// Two rows share one id.
    DuplicateId,
    /// An invoice names a customer that is not in the customers file.
    UnknownCustomer,
    /// A payment names an invoice that is not in the invoices file.
    UnknownInvoice,
}

impl LoadErrorKind {
    /// A stable, machine-readable code (`load::bad-date`).
    pub fn code(self) -> &'static str {
        match self {
            Self::Io => "load::io",
            Self::NoPortfolio => "load::no-portfolio",
            Self::MissingSheet => "load::missing-sheet",
            Self::Syntax => "load::syntax",
            Self::Mapping => "load::mapping",
            Self::MissingColumn => "load::missing-column",
            Self::DuplicateColumn => "load::duplicate-column",
            Self::FieldCount => "load::field-count",
            Self::MissingValue => "load::missing-value",
            Self::BadDate => "load::bad-date",
            Self::BadAmount => "load::bad-amount",
            Self::NegativeAmount => "load::negative-amount",
            Self::BadNumber => "load::bad-number",
            Self::BadBoolean => "load::bad-boolean",
            Self::BadCurrency => "load::bad-currency",
            Self::BadPaymentKind => "load::bad-payment-kind",
            Self::CellError => "load::cell-error",
            Self::BadTerms => "load::bad-terms",
            Self::MissingDueDate => "load::missing-due-date",
            Self::DuplicateId => "load::duplicate-id",
            Self::UnknownCustomer => "load::unknown-customer",
            Self::UnknownInvoice => "load::unknown-invoice",
        }
    }
}

/// One problem in the portfolio input, with where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// What went wrong.
    pub kind: LoadErrorKind,
    /// The file name (`invoices.csv`, `portfolio.xlsx`), or the folder for folder-level errors.
    pub file: String,
    /// The sheet, for Excel workbooks.
    pub sheet: Option<String>,
    /// The line (CSV, JSON) or row (Excel), 1-based; the header is line 1.
    pub line: Option<usize>,
    /// The column name, as written in the file's header.
    pub column: Option<String>,
    /// The column letter (`D`), for Excel workbooks.
    pub column_letter: Option<String>,
    /// The offending value, as read.
    pub value: Option<String>,
    /// What is wrong, in one sentence.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl LoadError {
    /// A file-level error (no line, no column).
    pub(crate) fn file(
        kind: LoadErrorKind,
        file: impl Into<String>,
        message: impl Into<String>,
        help: Option<String>,
    ) -> Self {
        Self {
            kind,
            file: file.into(),
            sheet: None,
            line: None,
            column: None,
            column_letter: None,
            value: None,
            message: message.into(),
            help,
        }
    }

    /// The location part of the message: `invoices.csv line 5, column `due_date``.
    pub fn location(&self) -> String {
        let mut s = self.file.clone();
        if let Some(sheet) = &self.sheet {
            s.push_str(&format!(", sheet `{sheet}`"));
        }
        if let Some(line) = self.line {
            if self.sheet.is_some() {
                s.push_str(&format!(", row {line}"));
            } else {
                s.push_str(&format!(" line {line}"));
            }
        }
        match (&self.column_letter, &self.column) {
            (Some(letter), Some(col)) => s.push_str(&format!(", column {letter} (`{col}`)")),
            (Some(letter), None) => s.push_str(&format!(", column {letter}")),
            (None, Some(col)) => s.push_str(&format!(", column `{col}`")),
            (None, None) => {}
        }
        s
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location(), self.message)
    }
}

impl std::error::Error for LoadError {}

impl Diagnostic for LoadError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.kind.code()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
}

/// All the problems found in a portfolio. When there is any, nothing is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadErrors {
    /// The errors kept, in file and line order (at most [`LoadErrors::CAP`]).
    pub errors: Vec<LoadError>,
    /// How many more errors were found but not kept.
    pub not_shown: usize,
}

impl LoadErrors {
    /// The most errors kept; the rest are only counted.
    pub const CAP: usize = 100;

    /// The total number of errors found.
    pub fn total(&self) -> usize {
        self.errors.len() + self.not_shown
    }
}

impl From<LoadError> for LoadErrors {
    fn from(e: LoadError) -> Self {
        Self { errors: vec![e], not_shown: 0 }
    }
}

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.total(), self.errors.first()) {
            (1, Some(e)) => write!(f, "{e}"),
            (n, _) => write!(f, "the portfolio has {n} errors; nothing was loaded"),
        }
    }
}

impl std::error::Error for LoadErrors {}

impl Diagnostic for LoadErrors {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match (self.total(), self.errors.first()) {
            (1, Some(e)) => e.code(),
            _ => Some(Box::new("load::errors")),
        }
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match (self.total(), self.errors.first()) {
            (1, Some(e)) => e.help(),
            _ if self.not_shown > 0 => Some(Box::new(format!(
                "the first {} are listed; {} more are not shown",
                self.errors.len(),
                self.not_shown
            ))),
            _ => None,
        }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.total() == 1 {
            return None;
        }
        Some(Box::new(self.errors.iter().map(|e| e as &dyn Diagnostic)))
    }
}

/// Collects errors up to the cap, counting the rest.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    errors: Vec<LoadError>,
    not_shown: usize,
}

impl Collector {
    pub(crate) fn push(&mut self, e: LoadError) {
        if self.errors.len() < LoadErrors::CAP {
            self.errors.push(e);
        } else {
            self.not_shown += 1;
        }
    }

    /// Counts `n` errors that were found but not kept.
    pub(crate) fn skip(&mut self, n: usize) {
        self.not_shown += n;
    }

    /// `Ok(())` when nothing was collected; the errors sorted by file, sheet and line otherwise.
    pub(crate) fn finish(mut self) -> Result<(), LoadErrors> {
        if self.errors.is_empty() {
            return Ok(());
        }
        self.errors
            .sort_by(|a, b| (&a.file, &a.sheet, a.line.unwrap_or(0)).cmp(&(&b.file, &b.sheet, b.line.unwrap_or(0))));
        Err(LoadErrors { errors: self.errors, not_shown: self.not_shown })
    }
}
