//! Excel (.xlsx) reader: sheets `customers`, `invoices` and optionally `payments`.
//! Amounts come as floats: they go through their shortest text and are rounded to the
//! currency's minor unit, so no float is kept.

use std::path::Path;

use calamine::{CellErrorType, Data, Range, Reader, Xlsx, open_workbook};

use super::error::{LoadError, LoadErrorKind};
use super::table::{Builder, Cell, Loaded, Row, Source, Table};
use super::{LoadErrors, LoadOptions, MAPPING_HELP, display_name};

struct XlsxRow<'a> {
    cells: &'a [Data],
    line: usize,
}

fn error_text(e: &CellErrorType) -> &'static str {
    match e {
        CellErrorType::Div0 => "#DIV/0!",
        CellErrorType::NA => "#N/A",
        CellErrorType::Name => "#NAME?",
        CellErrorType::Null => "#NULL!",
        CellErrorType::Num => "#NUM!",
        CellErrorType::Ref => "#REF!",
        CellErrorType::Value => "#VALUE!",
        CellErrorType::GettingData => "#DATA!",
    }
}

impl Row for XlsxRow<'_> {
    fn cell(&self, idx: usize) -> Cell<'_> {
        match self.cells.get(idx) {
            None | Some(Data::Empty) => Cell::Empty,
            Some(Data::String(s)) => Cell::Text(s),
            Some(Data::Float(f)) => Cell::Number(*f),
            Some(Data::Int(i)) => Cell::Number(*i as f64),
            Some(Data::Bool(b)) => Cell::Bool(*b),
            Some(Data::DateTime(dt)) => match dt.as_datetime() {
                Some(d) if !dt.is_duration() => Cell::Date(d.date()),
                _ => Cell::Number(dt.as_f64()),
            },
            Some(Data::DateTimeIso(s)) | Some(Data::DurationIso(s)) => Cell::Text(s),
            Some(Data::Error(e)) => Cell::Error(error_text(e)),
        }
    }

    fn line(&self) -> usize {
        self.line
    }
}

pub(crate) fn load(path: &Path, opts: &LoadOptions) -> Result<Loaded, LoadErrors> {
    let file = display_name(path);
    let mut workbook: Xlsx<_> = open_workbook(path).map_err(|e| {
        LoadError::file(
            LoadErrorKind::Syntax,
            file.clone(),
            format!("cannot open the workbook: {e}"),
            Some("save it as an Excel workbook (.xlsx)".to_string()),
        )
    })?;
    let names = workbook.sheet_names();
    let mut b = Builder::new(opts, MAPPING_HELP);
    for (table, required) in [(Table::Customers, true), (Table::Invoices, true), (Table::Payments, false)] {
        let Some(sheet) = names.iter().find(|n| n.trim().eq_ignore_ascii_case(table.name())) else {
            if required {
                let mut err = LoadError::file(
                    LoadErrorKind::MissingSheet,
                    file.clone(),
                    format!("the workbook has no sheet `{}`", table.name()),
                    Some(format!(
                        "the sheets are {}; name the sheets `customers`, `invoices` and (optionally) `payments`",
                        names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                    )),
                );
                err.sheet = None;
                b.errors.push(err);
            }
            continue;
        };
        match workbook.worksheet_range(sheet) {
            Ok(range) => read_sheet(&range, &file, sheet, table, &mut b),
            Err(e) => {
                let mut err = LoadError::file(
                    LoadErrorKind::Syntax,
                    file.clone(),
                    format!("cannot read the sheet: {e}"),
                    Some("save the workbook again from Excel or LibreOffice".to_string()),
                );
                err.sheet = Some(sheet.clone());
                b.errors.push(err);
            }
        }
    }
    b.finish()
}

fn read_sheet(range: &Range<Data>, file: &str, sheet: &str, table: Table, b: &mut Builder<'_>) {
    let (first_row, first_col) = range.start().unwrap_or((0, 0));
    let mut rows = range.rows();
    let Some(header) = rows.next() else {
        let mut err = LoadError::file(
            LoadErrorKind::MissingColumn,
            file,
            "the sheet is empty".to_string(),
            Some(format!("the first row must name the columns of the {} table", table.name())),
        );
        err.sheet = Some(sheet.to_string());
        b.errors.push(err);
        return;
    };
    let headers = header
        .iter()
        .map(|c| match c {
            Data::String(s) => s.trim().to_string(),
            Data::Empty => String::new(),
            other => other.to_string(),
        })
        .collect();
    let src = Source { file: file.to_string(), sheet: Some(sheet.to_string()), headers, first_column: Some(first_col) };
    let Some(handle) = b.table(table, src) else { return };
    let Some(mut sink) = b.sink(handle) else { return };
    for (i, cells) in rows.enumerate() {
        if cells.iter().all(|c| matches!(c, Data::Empty) || matches!(c, Data::String(s) if s.trim().is_empty())) {
            continue;
        }
        let line = first_row as usize + 2 + i;
        sink.row(&XlsxRow { cells, line });
    }
    let part = sink.finish();
    b.merge(part, 0);
}
