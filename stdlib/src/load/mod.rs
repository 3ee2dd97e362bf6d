//! Portfolio loaders: CSV, JSON and Excel into a [`Portfolio`] (SPEC 4).
//!
//! A portfolio folder holds one of:
//! - `customers.csv`, `invoices.csv` and optionally `payments.csv`;
//! - `customers.json`, `invoices.json` and optionally `payments.json` (arrays of objects), or
//!   one `portfolio.json` object with the arrays `customers`, `invoices`, `payments`;
//! - one `.xlsx` workbook with the sheets `customers`, `invoices` and optionally `payments`.
//!
//! Columns (any order, header names compared without case, spaces and dashes read as `_`):
//! - customers: `id`, `name`, `segment`, `email`, `phone`, `language`, `tags` (separated by
//!   `;` or `|`), `avg_days_late`, plus any extra column;
//! - invoices: `id`, `customer_id`, `issue_date`, `due_date`, `amount`, `currency`,
//!   `outstanding`, `disputed`, `promise_date`, `promise_amount`, `terms`, `payment_plan`,
//!   plus any extra column;
//! - payments: `id`, `invoice_id`, `date`, `amount`, `kind` (`payment` or `credit_note`).
//!
//! Extra columns are kept under their header lowercased, with spaces and dashes as `_`
//! (`PO Number` → `po_number`). When `due_date` is empty it is computed from `issue_date` and
//! `terms`; the terms are then kept as the extra column `terms` (the model has no field for
//! them: the engine reads only the due date). Every bad row is reported ([`LoadErrors`], file, line, column, value and a fix);
//! when there is any error nothing is returned.
//!
//! [`load_dir`] also reads an optional `portfolio.toml` in the folder (see [`mapping`]).

mod csv_reader;
mod error;
mod json_reader;
mod json_split;
pub mod mapping;
pub mod parse;
mod quoted;
mod sheet_xml;
mod table;
mod xlsx_reader;

use std::collections::HashMap;
use std::path::Path;

use iso_currency::Currency;
use relance_engine::IndexedPortfolio;
use relance_engine::model::Portfolio;
use table::Loaded;

pub use error::{LoadError, LoadErrorKind, LoadErrors};

use crate::terms::EomReading;

/// How dates are written in the input. ISO dates (`2026-03-31`) are always accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DateFormat {
    /// `YYYY-MM-DD` only.
    #[default]
    Iso,
    /// `dd/mm/yyyy` (also `dd.mm.yyyy`, `dd-mm-yyyy`), as in French exports.
    DayMonthYear,
}

/// Column names per table: our field name → the header in the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnMapping {
    /// For the customers table (`"id"` → `"Code client"`).
    pub customers: HashMap<String, String>,
    /// For the invoices table (`"amount"` → `"Montant TTC"`).
    pub invoices: HashMap<String, String>,
    /// For the payments table.
    pub payments: HashMap<String, String>,
}

impl ColumnMapping {
    pub(crate) fn table(&self, table: table::Table) -> &HashMap<String, String> {
        match table {
            table::Table::Customers => &self.customers,
            table::Table::Invoices => &self.invoices,
            table::Table::Payments => &self.payments,
        }
    }
}

/// How to read a portfolio export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Column names that differ from ours.
    pub mapping: ColumnMapping,
    /// Amounts use a decimal comma (`1 234,56`, `1.234,56`); spaces, no-break spaces and
    /// dots group thousands.
    pub decimal_comma: bool,
    /// How dates are written.
    pub date_format: DateFormat,
    /// The CSV delimiter; `None` detects `,`, `;` or tab from the header line.
    pub delimiter: Option<u8>,
    /// The currency of invoices with no `currency` column or an empty cell.
    pub default_currency: Option<Currency>,
    /// How `N days end of month` terms are read when a due date is computed.
    pub eom_reading: EomReading,
    /// Warn, in [`Portfolio::warnings`](relance_engine::Portfolio::warnings), about each
    /// invoice whose payment terms exceed the French legal cap, as
    /// [`terms::fr_cap_warnings`](crate::terms::fr_cap_warnings) does (with the
    /// `eom_reading` that computes due dates), after the loader's other warnings. The rows are
    /// checked while they are read, instead of in a pass over the portfolio afterwards.
    /// `relance plan` asks for it when the scenarios say `law FR`.
    pub fr_cap_warnings: bool,
    /// Return the portfolio sorted as
    /// [`Portfolio::sort_for_evaluation`](relance_engine::Portfolio::sort_for_evaluation)
    /// sorts it, by the faster
    /// [`sort_for_evaluation_by_customer`](relance_engine::Portfolio::sort_for_evaluation_by_customer):
    /// the loader knows each invoice's customer once it has checked the references.
    /// `relance plan` asks for it.
    pub sort_for_evaluation: bool,
    /// Keep only these extra columns of customers and invoices (any other column that is
    /// not a field of the model is left out); `None` keeps them all. `relance plan` gives
    /// [`Program::extra_columns`](relance_engine::Program::extra_columns): a plan reads
    /// no other, and an export's unused columns then cost neither time nor memory. The
    /// `terms` column is read for due dates and the French cap whatever this says, and kept
    /// (as the extra column `terms`) only when this keeps it.
    pub extra_columns: Option<relance_engine::ExtraColumns>,
}

impl LoadOptions {
    /// Options for French exports: `;`, decimal comma, `dd/mm/yyyy`, EUR by default.
    pub fn french() -> Self {
        Self {
            decimal_comma: true,
            date_format: DateFormat::DayMonthYear,
            delimiter: Some(b';'),
            default_currency: Some(Currency::EUR),
            ..Self::default()
        }
    }
}

/// The name of the optional settings file in a portfolio folder.
pub const MAPPING_FILE: &str = "portfolio.toml";

/// Loads the portfolio in `dir`, whichever the format (CSV, JSON or Excel; see the module
/// documentation). When `dir/portfolio.toml` exists, its settings are applied on top of
/// `options`. `dir` may also be an `.xlsx` or `.json` file.
pub fn load_dir(dir: &Path, options: &LoadOptions) -> Result<Portfolio, LoadErrors> {
    load_any(dir, options).map(Loaded::into_portfolio)
}

/// [`load_dir`], and the portfolio sorted and indexed for evaluation
/// ([`IndexedPortfolio`]) with the customer the loader found for each invoice when it
/// checked the references: the index is then built in the sort's pass instead of in one of
/// its own at each evaluation. `options.sort_for_evaluation` makes no difference here.
/// `relance plan` loads with it.
///
/// ```no_run
/// use relance_stdlib::load::{LoadOptions, load_dir_indexed};
///
/// let portfolio = load_dir_indexed("examples/portfolio".as_ref(), &LoadOptions::default())?;
/// println!("{} invoices", portfolio.invoices.len());
/// # Ok::<(), relance_stdlib::load::LoadErrors>(())
/// ```
pub fn load_dir_indexed(dir: &Path, options: &LoadOptions) -> Result<IndexedPortfolio, LoadErrors> {
    let options = LoadOptions { sort_for_evaluation: true, ..options.clone() };
    load_any(dir, &options).map(Loaded::into_indexed)
}

/// [`load_dir`] before the sort.
fn load_any(dir: &Path, options: &LoadOptions) -> Result<Loaded, LoadErrors> {
    if dir.is_file() {
        let ext = dir.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        return match ext.as_deref() {
            Some("xlsx") | Some("xlsm") => xlsx_reader::load(dir, options),
            Some("json") => json_reader::load_portfolio_json(dir, options),
            _ => Err(LoadError::file(
                LoadErrorKind::NoPortfolio,
                display_name(dir),
                format!("`{}` is not a portfolio folder, workbook or JSON file", dir.display()),
                Some("give the folder that holds customers.csv and invoices.csv".to_string()),
            )
            .into()),
        };
    }
    let mut opts = options.clone();
    let mapping_path = dir.join(MAPPING_FILE);
    if mapping_path.is_file() {
        mapping::apply_file(&mapping_path, &mut opts)?;
    }
    let has = |name: &str| dir.join(name).is_file();
    if has("customers.csv") || has("invoices.csv") {
        return csv_reader::load(dir, &opts);
    }
    if has("customers.json") || has("invoices.json") || has("portfolio.json") {
        return json_any(dir, &opts);
    }
    let entries = std::fs::read_dir(dir).map_err(|e| {
        LoadError::file(
            LoadErrorKind::Io,
            dir.display().to_string(),
            format!("cannot read the folder `{}`: {e}", dir.display()),
            Some("check the portfolio path".to_string()),
        )
    })?;
    let mut workbooks: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("xlsx"))
                && !p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("~$"))
        })
        .collect();
    workbooks.sort();
    match workbooks.as_slice() {
        [one] => xlsx_reader::load(one, &opts),
        [] => Err(LoadError::file(
            LoadErrorKind::NoPortfolio,
            dir.display().to_string(),
            format!("no portfolio found in `{}`", dir.display()),
            Some(
                "put customers.csv and invoices.csv (or customers.json and invoices.json, or one .xlsx workbook with sheets `customers` and `invoices`) in the folder"
                    .to_string(),
            ),
        )
        .into()),
        many => match many.iter().find(|p| p.file_name().is_some_and(|n| n == "portfolio.xlsx")) {
            Some(p) => xlsx_reader::load(p, &opts),
            None => Err(LoadError::file(
                LoadErrorKind::NoPortfolio,
                dir.display().to_string(),
                format!("the folder `{}` holds {} workbooks", dir.display(), many.len()),
                Some("keep one .xlsx in the folder, or name the one to load `portfolio.xlsx`".to_string()),
            )
            .into()),
        },
    }
}

/// Loads `customers.csv`, `invoices.csv` and, when present, `payments.csv` from `dir`.
pub fn load_csv_dir(dir: &Path, options: &LoadOptions) -> Result<Portfolio, LoadErrors> {
    csv_reader::load(dir, options).map(Loaded::into_portfolio)
}

/// Loads `customers.json`, `invoices.json` and, when present, `payments.json` from `dir`, or
/// `dir/portfolio.json` when it exists.
pub fn load_json_dir(dir: &Path, options: &LoadOptions) -> Result<Portfolio, LoadErrors> {
    json_any(dir, options).map(Loaded::into_portfolio)
}

fn json_any(dir: &Path, options: &LoadOptions) -> Result<Loaded, LoadErrors> {
    let one = dir.join("portfolio.json");
    if one.is_file() {
        return json_reader::load_portfolio_json(&one, options);
    }
    json_reader::load_dir(dir, options)
}

/// Loads a workbook with the sheets `customers`, `invoices` and optionally `payments`.
pub fn load_xlsx(path: &Path, options: &LoadOptions) -> Result<Portfolio, LoadErrors> {
    xlsx_reader::load(path, options).map(Loaded::into_portfolio)
}

pub(crate) fn display_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

pub(crate) fn io_error(path: &Path, e: &std::io::Error) -> LoadError {
    LoadError::file(
        LoadErrorKind::Io,
        display_name(path),
        format!("cannot read `{}`: {e}", path.display()),
        Some("check that the file exists and is readable".to_string()),
    )
}

/// The mapping help text used in error messages.
pub(crate) const MAPPING_HELP: &str = "portfolio.toml (or the loader's column mapping)";

/// A portfolio folder (or `.xlsx` file) read with [`load_dir`], as a
/// [`relance_engine::PortfolioSource`].
#[derive(Debug, Clone)]
pub struct PortfolioDir {
    /// The folder (or `.xlsx` file).
    pub path: std::path::PathBuf,
    /// How to read it.
    pub options: LoadOptions,
}

impl relance_engine::PortfolioSource for PortfolioDir {
    type Error = LoadErrors;
    fn describe(&self) -> String {
        format!("portfolio `{}`", self.path.display())
    }
    fn load(&self) -> Result<Portfolio, LoadErrors> {
        load_dir(&self.path, &self.options)
    }
}
