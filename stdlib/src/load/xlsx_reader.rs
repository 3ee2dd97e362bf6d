//! Excel (.xlsx) reader: sheets `customers`, `invoices` and optionally `payments`.
//! Amounts come as floats: they go through their shortest text and are rounded to the
//! currency's minor unit, so no float is kept.
//!
//! A sheet is read cell by cell as calamine parses its XML, and each row is converted as
//! soon as it ends: the sheet is never held whole (a workbook of 10^6 invoices took 1.1 GB
//! as calamine's `Range`). The header is the first row with a cell, and its first cell
//! gives the first column. A sheet whose rows are not in ascending order (which Excel
//! itself refuses to open) is an error that says so.

use std::io::{Read, Seek};
use std::path::Path;

use calamine::{Cell as SheetCell, CellErrorType, Data, DataRef, Reader, Xlsx, XlsxError, open_workbook};

use super::error::{LoadError, LoadErrorKind};
use super::table::{Builder, Cell, Loaded, Row, Source, Table};
use super::{LoadErrors, LoadOptions, MAPPING_HELP, display_name};

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

/// A row of cells as the cell reader gives them: its cells in the order read, and for each
/// column of the header the place of its cell.
struct XlsxRow<'r, 'a> {
    cells: &'r [SheetCell<DataRef<'a>>],
    slots: &'r [u32],
    line: usize,
}

/// No cell in this column of the row.
const NO_CELL: u32 = u32::MAX;

impl Row for XlsxRow<'_, '_> {
    fn cell(&self, idx: usize) -> Cell<'_> {
        let Some(cell) = self.slots.get(idx).and_then(|&k| self.cells.get(k as usize)) else { return Cell::Empty };
        match cell.get_value() {
            DataRef::Empty => Cell::Empty,
            DataRef::String(s) => Cell::Text(s),
            DataRef::SharedString(s) => Cell::Text(s),
            DataRef::Float(f) => Cell::Number(*f),
            DataRef::Int(i) => Cell::Number(*i as f64),
            DataRef::Bool(b) => Cell::Bool(*b),
            DataRef::DateTime(dt) => match dt.as_datetime() {
                Some(d) if !dt.is_duration() => Cell::Date(d.date()),
                _ => Cell::Number(dt.as_f64()),
            },
            DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => Cell::Text(s),
            DataRef::Error(e) => Cell::Error(error_text(e)),
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
        let streamed = stream_sheet(&mut workbook, &file, sheet, table, &mut b);
        if let Err(e) = streamed {
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
    b.finish()
}

/// The text of a header cell.
fn header_text(value: &DataRef<'_>) -> String {
    match value {
        DataRef::String(s) => s.trim().to_string(),
        DataRef::SharedString(s) => s.trim().to_string(),
        DataRef::Empty => String::new(),
        other => Data::from(other.clone()).to_string(),
    }
}

/// Whether a cell holds nothing: empty, or a text of spaces.
fn blank(value: &DataRef<'_>) -> bool {
    match value {
        DataRef::Empty => true,
        DataRef::String(s) => s.trim().is_empty(),
        DataRef::SharedString(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn empty_sheet(file: &str, sheet: &str, table: Table, b: &mut Builder<'_>) {
    let mut err = LoadError::file(
        LoadErrorKind::MissingColumn,
        file,
        "the sheet is empty".to_string(),
        Some(format!("the first row must name the columns of the {} table", table.name())),
    );
    err.sheet = Some(sheet.to_string());
    b.errors.push(err);
}

/// Reads a sheet cell by cell: the first row with a cell is the header, and each row after
/// it goes to the table's sink when it ends.
fn stream_sheet<RS: Read + Seek>(
    workbook: &mut Xlsx<RS>,
    file: &str,
    sheet: &str,
    table: Table,
    b: &mut Builder<'_>,
) -> Result<(), XlsxError> {
    let mut reader = workbook.worksheet_cells_reader(sheet)?;
    // The header: the cells of the first row that has one (a cell whose value is `Empty`
    // counts for nothing, as in a `Range`).
    let mut header: Vec<SheetCell<DataRef<'_>>> = Vec::new();
    let mut next = None;
    while let Some(cell) = reader.next_cell()? {
        if matches!(cell.get_value(), DataRef::Empty) {
            continue;
        }
        match header.first() {
            Some(first) if first.get_position().0 != cell.get_position().0 => {
                next = Some(cell);
                break;
            }
            _ => header.push(cell),
        }
    }
    let Some(first_col) = header.iter().map(|c| c.get_position().1).min() else {
        empty_sheet(file, sheet, table, b);
        return Ok(());
    };
    let header_row = header.first().map_or(0, |c| c.get_position().0);
    let last_col = header.iter().map(|c| c.get_position().1).max().unwrap_or(first_col);
    let width = (last_col - first_col) as usize + 1;
    let mut headers = vec![String::new(); width];
    for cell in &header {
        if let Some(h) = headers.get_mut((cell.get_position().1 - first_col) as usize) {
            *h = header_text(cell.get_value());
        }
    }
    let src = Source { file: file.to_string(), sheet: Some(sheet.to_string()), headers, first_column: Some(first_col) };
    let Some(handle) = b.table(table, src) else {
        // A header read on the wrong row, when rows are out of order, explains its errors.
        while let Some(cell) = next.take().map_or_else(|| reader.next_cell(), |c| Ok(Some(c)))? {
            if cell.get_position().0 < header_row && !matches!(cell.get_value(), DataRef::Empty) {
                out_of_order(file, sheet, cell.get_position().0, header_row, b);
                break;
            }
        }
        return Ok(());
    };
    let Some((sinks, mut merger)) = b.split(handle) else { return Ok(()) };
    let mut sink = sinks.sink();
    // The rows: their cells gathered until the row changes; every `ROWS_PER_PART` rows the
    // rows converted go into the table (never the whole sheet's rows beside it).
    let (mut cells, mut slots) = (Vec::with_capacity(width), vec![NO_CELL; width]);
    let (mut row, mut filled, mut rows) = (header_row, false, 0usize);
    let mut disorder = None;
    loop {
        let cell = match next.take() {
            Some(cell) => cell,
            None => match reader.next_cell()? {
                Some(cell) => cell,
                None => break,
            },
        };
        if matches!(cell.get_value(), DataRef::Empty) {
            continue;
        }
        let (r, c) = cell.get_position();
        if r != row {
            if r < row {
                disorder = Some((r, row));
                break;
            }
            if filled {
                sink.row(&XlsxRow { cells: &cells, slots: &slots, line: row as usize + 1 });
                rows += 1;
                if rows % ROWS_PER_PART == 0 {
                    merger.merge(std::mem::replace(&mut sink, sinks.sink()).finish(), 0);
                }
            }
            cells.clear();
            slots.fill(NO_CELL);
            (row, filled) = (r, false);
        }
        filled |= !blank(cell.get_value());
        // Cells outside the header's columns are under no name: read by nothing.
        if let Some(slot) = c.checked_sub(first_col).and_then(|k| slots.get_mut(k as usize)) {
            *slot = cells.len() as u32;
            cells.push(cell);
        }
    }
    if disorder.is_none() && filled {
        sink.row(&XlsxRow { cells: &cells, slots: &slots, line: row as usize + 1 });
    }
    merger.merge(sink.finish(), 0);
    // The error fails the whole load: nothing of the portfolio is returned.
    if let Some((r, after)) = disorder {
        out_of_order(file, sheet, r, after, b);
    }
    Ok(())
}

/// Rows converted before they go into the table.
const ROWS_PER_PART: usize = 16_384;

/// The error of a sheet that lists the row `row` (0-based) after the row `after`.
fn out_of_order(file: &str, sheet: &str, row: u32, after: u32, b: &mut Builder<'_>) {
    let mut err = LoadError::file(
        LoadErrorKind::Syntax,
        file,
        format!("the sheet lists row {} after row {}", row + 1, after + 1),
        Some("save the workbook again from Excel or LibreOffice, which write rows in order".to_string()),
    );
    err.sheet = Some(sheet.to_string());
    b.errors.push(err);
}
