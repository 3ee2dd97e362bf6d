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

use std::convert::Infallible;

use calamine::{
    Cell as SheetCell, CellErrorType, Data, DataRef, ExcelDateTime, ExcelDateTimeType, Reader, Xlsx, XlsxCellReader,
    XlsxError, open_workbook,
};

use super::error::{LoadError, LoadErrorKind};
use super::sheet_xml::{Fallback, SheetRows as SheetXmlRows, Value, Workbook};
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

/// A cell's value as one of the two sheet readers gives it; texts may point into the
/// row's `texts`.
pub(super) trait SheetValue {
    /// Whether the cell holds nothing but spaces.
    fn blank(&self, texts: &str) -> bool;
    /// The cell's text as a column name.
    fn header_text(&self, texts: &str) -> String;
    /// The cell for the table.
    fn cell<'s>(&'s self, texts: &'s str) -> Cell<'s>;
}

/// The cells of one row of a sheet that has any: its 0-based number, each cell's 0-based
/// column and value, and the texts the values point into.
pub(super) struct SheetRow<'r, V> {
    pub(super) row: u32,
    pub(super) cells: &'r [(u32, V)],
    pub(super) texts: &'r str,
}

/// A sheet read row by row, in the order its XML lists the cells (a row that lists a cell
/// again after another row is a row of its own).
trait SheetRows {
    type Value: SheetValue;
    type Error;
    fn next_row(&mut self) -> Result<Option<SheetRow<'_, Self::Value>>, Self::Error>;
    /// How many rows follow the first, as the sheet says (room is made for them).
    fn rows_hint(&self) -> Option<usize>;
}

impl SheetValue for SheetCell<DataRef<'_>> {
    fn blank(&self, _: &str) -> bool {
        match self.get_value() {
            DataRef::Empty => true,
            DataRef::String(s) => s.trim().is_empty(),
            DataRef::SharedString(s) => s.trim().is_empty(),
            _ => false,
        }
    }

    fn header_text(&self, _: &str) -> String {
        match self.get_value() {
            DataRef::String(s) => s.trim().to_string(),
            DataRef::SharedString(s) => s.trim().to_string(),
            DataRef::Empty => String::new(),
            other => Data::from(other.clone()).to_string(),
        }
    }

    fn cell<'s>(&'s self, _: &'s str) -> Cell<'s> {
        match self.get_value() {
            DataRef::Empty => Cell::Empty,
            DataRef::String(s) => Cell::Text(s),
            DataRef::SharedString(s) => Cell::Text(s),
            DataRef::Float(f) => Cell::Number(*f),
            DataRef::Int(i) => Cell::Number(*i as f64),
            DataRef::Bool(b) => Cell::Bool(*b),
            DataRef::DateTime(dt) => date_cell(dt),
            DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => Cell::Text(s),
            DataRef::Error(e) => Cell::Error(error_text(e)),
        }
    }
}

/// A number in a date format is a date (a duration, or a serial out of range, a number).
fn date_cell(dt: &ExcelDateTime) -> Cell<'static> {
    match dt.as_datetime() {
        Some(d) if !dt.is_duration() => Cell::Date(d.date()),
        _ => Cell::Number(dt.as_f64()),
    }
}

impl SheetValue for Value {
    fn blank(&self, texts: &str) -> bool {
        match *self {
            Value::Text(start, end) => texts.get(start as usize..end as usize).is_none_or(|s| s.trim().is_empty()),
            _ => false,
        }
    }

    fn header_text(&self, texts: &str) -> String {
        let text = |start: u32, end: u32| texts.get(start as usize..end as usize).unwrap_or_default();
        match self {
            Value::Text(start, end) => text(*start, *end).trim().to_string(),
            Value::IsoDate(start, end) => Data::DateTimeIso(text(*start, *end).to_string()).to_string(),
            Value::Number(f) => Data::Float(*f).to_string(),
            Value::Date(dt) => Data::DateTime(*dt).to_string(),
            // As the date's number (calamine's text of a date cell, whatever its system).
            Value::Day(n, _) => Data::DateTime(ExcelDateTime::new(*n, ExcelDateTimeType::DateTime, false)).to_string(),
            Value::Bool(b) => Data::Bool(*b).to_string(),
            Value::Error(e) => Data::Error(e.clone()).to_string(),
        }
    }

    fn cell<'s>(&'s self, texts: &'s str) -> Cell<'s> {
        match self {
            Value::Text(start, end) | Value::IsoDate(start, end) => {
                Cell::Text(texts.get(*start as usize..*end as usize).unwrap_or_default())
            }
            Value::Number(f) => Cell::Number(*f),
            Value::Date(dt) => date_cell(dt),
            Value::Day(_, day) => Cell::Date(*day),
            Value::Bool(b) => Cell::Bool(*b),
            Value::Error(e) => Cell::Error(error_text(e)),
        }
    }
}

/// calamine's cells, gathered by row.
struct CalamineRows<'a, RS: Read + Seek> {
    reader: XlsxCellReader<'a, RS>,
    /// The first cell of the next row, read to find where the row before ends.
    next: Option<SheetCell<DataRef<'a>>>,
    cells: Vec<(u32, SheetCell<DataRef<'a>>)>,
    /// The reader gave its last cell (it must not be asked again).
    done: bool,
}

impl<'a, RS: Read + Seek> CalamineRows<'a, RS> {
    fn new(reader: XlsxCellReader<'a, RS>) -> Self {
        CalamineRows { reader, next: None, cells: Vec::new(), done: false }
    }
}

impl<'a, RS: Read + Seek> SheetRows for CalamineRows<'a, RS> {
    type Value = SheetCell<DataRef<'a>>;
    type Error = XlsxError;

    fn next_row(&mut self) -> Result<Option<SheetRow<'_, Self::Value>>, XlsxError> {
        self.cells.clear();
        let mut row = None;
        loop {
            let cell = match self.next.take() {
                Some(cell) => cell,
                None if self.done => break,
                None => match self.reader.next_cell()? {
                    Some(cell) => cell,
                    None => {
                        self.done = true;
                        break;
                    }
                },
            };
            // A cell whose value is `Empty` counts for nothing, as in a `Range`.
            if matches!(cell.get_value(), DataRef::Empty) {
                continue;
            }
            let (r, c) = cell.get_position();
            match row {
                Some(current) if current != r => {
                    self.next = Some(cell);
                    break;
                }
                _ => {
                    row = Some(r);
                    self.cells.push((c, cell));
                }
            }
        }
        Ok(row.map(|row| SheetRow { row, cells: &self.cells, texts: "" }))
    }

    fn rows_hint(&self) -> Option<usize> {
        let dim = self.reader.dimensions();
        Some((dim.end.0.saturating_sub(dim.start.0) as usize).min(1 << 20))
    }
}

impl SheetRows for SheetXmlRows {
    type Value = Value;
    type Error = Fallback;

    fn next_row(&mut self) -> Result<Option<SheetRow<'_, Value>>, Fallback> {
        SheetXmlRows::next_row(self)
    }

    fn rows_hint(&self) -> Option<usize> {
        SheetXmlRows::rows_hint(self)
    }
}

/// Reads the workbook at `path`: with the fast reader of `sheet_xml` when it reads it, else
/// (an unusual shape, or an error to report) with calamine.
pub(crate) fn load(path: &Path, opts: &LoadOptions) -> Result<Loaded, LoadErrors> {
    let file = display_name(path);
    if let Ok(mut book) = Workbook::open(path) {
        let names = book.sheet_names();
        let fast = load_sheets(&file, opts, &names, |sheet, table, b| {
            book.with_rows(sheet, |rows| stream_sheet(rows, &file, sheet, table, b))?
        });
        if let Ok(b) = fast {
            // The shared strings go before the portfolio is checked and sorted.
            drop(book);
            return b.finish();
        }
    }
    let mut workbook: Xlsx<_> = open_workbook(path).map_err(|e| {
        LoadError::file(
            LoadErrorKind::Syntax,
            file.clone(),
            format!("cannot open the workbook: {e}"),
            Some("save it as an Excel workbook (.xlsx)".to_string()),
        )
    })?;
    let names = workbook.sheet_names();
    let read = load_sheets(&file, opts, &names, |sheet, table, b| {
        let streamed = workbook.worksheet_cells_reader(sheet).and_then(|reader| {
            let mut rows = CalamineRows::new(reader);
            stream_sheet(&mut rows, &file, sheet, table, b)
        });
        if let Err(e) = streamed {
            let mut err = LoadError::file(
                LoadErrorKind::Syntax,
                file.clone(),
                format!("cannot read the sheet: {e}"),
                Some("save the workbook again from Excel or LibreOffice".to_string()),
            );
            err.sheet = Some(sheet.to_string());
            b.errors.push(err);
        }
        Ok::<(), Infallible>(())
    });
    match read {
        Ok(b) => b.finish(),
        Err(never) => match never {},
    }
}

/// Reads the sheets `customers`, `invoices` and `payments` (found by name among `names`)
/// with `read` into the tables; an error of `read` stops it.
fn load_sheets<'o, E>(
    file: &str,
    opts: &'o LoadOptions,
    names: &[String],
    mut read: impl FnMut(&str, Table, &mut Builder<'o>) -> Result<(), E>,
) -> Result<Builder<'o>, E> {
    let mut b = Builder::new(opts, MAPPING_HELP);
    for (table, required) in [(Table::Customers, true), (Table::Invoices, true), (Table::Payments, false)] {
        let Some(sheet) = names.iter().find(|n| n.trim().eq_ignore_ascii_case(table.name())) else {
            if required {
                let mut err = LoadError::file(
                    LoadErrorKind::MissingSheet,
                    file,
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
        read(sheet, table, &mut b)?;
    }
    Ok(b)
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

/// A row of a sheet for the table: its cells, and for each column of the header the place
/// of its cell.
struct XlsxRow<'r, V> {
    cells: &'r [(u32, V)],
    slots: &'r [u32],
    texts: &'r str,
    line: usize,
}

/// No cell in this column of the row.
const NO_CELL: u32 = u32::MAX;

impl<V: SheetValue> Row for XlsxRow<'_, V> {
    fn cell(&self, idx: usize) -> Cell<'_> {
        match self.slots.get(idx).and_then(|&k| self.cells.get(k as usize)) {
            Some((_, value)) => value.cell(self.texts),
            None => Cell::Empty,
        }
    }

    fn line(&self) -> usize {
        self.line
    }
}

/// Reads a sheet row by row: the first row with a cell is the header, and each row after
/// it goes to the table's sink as it is read.
fn stream_sheet<R: SheetRows>(
    rows: &mut R,
    file: &str,
    sheet: &str,
    table: Table,
    b: &mut Builder<'_>,
) -> Result<(), R::Error> {
    let Some(header) = rows.next_row()? else {
        empty_sheet(file, sheet, table, b);
        return Ok(());
    };
    let header_row = header.row;
    let first_col = header.cells.iter().map(|(c, _)| *c).min().unwrap_or(0);
    let last_col = header.cells.iter().map(|(c, _)| *c).max().unwrap_or(first_col);
    let width = (last_col - first_col) as usize + 1;
    let mut headers = vec![String::new(); width];
    for (c, value) in header.cells {
        if let Some(h) = headers.get_mut((c - first_col) as usize) {
            *h = value.header_text(header.texts);
        }
    }
    let src = Source { file: file.to_string(), sheet: Some(sheet.to_string()), headers, first_column: Some(first_col) };
    let Some(handle) = b.table(table, src) else {
        // A header read on the wrong row, when rows are out of order, explains its errors.
        while let Some(row) = rows.next_row()? {
            if row.row < header_row {
                out_of_order(file, sheet, row.row, header_row, b);
                break;
            }
        }
        return Ok(());
    };
    if let Some(rows) = rows.rows_hint() {
        b.reserve(handle, rows);
    }
    let Some((sinks, mut merger)) = b.split(handle) else { return Ok(()) };
    let mut sink = sinks.sink();
    // Every `ROWS_PER_PART` rows the rows converted go into the table (never the whole
    // sheet's rows beside it).
    let mut slots = vec![NO_CELL; width];
    let (mut last, mut done) = (header_row, 0usize);
    let mut disorder = None;
    while let Some(row) = rows.next_row()? {
        if row.row < last {
            disorder = Some((row.row, last));
            break;
        }
        last = row.row;
        slots.fill(NO_CELL);
        let mut filled = false;
        for (k, (c, value)) in row.cells.iter().enumerate() {
            filled |= !value.blank(row.texts);
            // Cells outside the header's columns are under no name: read by nothing.
            if let Some(slot) = c.checked_sub(first_col).and_then(|j| slots.get_mut(j as usize)) {
                *slot = k as u32;
            }
        }
        if filled {
            sink.row(&XlsxRow { cells: row.cells, slots: &slots, texts: row.texts, line: row.row as usize + 1 });
            done += 1;
            if done % ROWS_PER_PART == 0 {
                merger.merge(std::mem::replace(&mut sink, sinks.sink()).finish(), 0);
            }
        }
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::io::Write;
    use std::path::{Path, PathBuf};

    use proptest::prelude::*;

    use super::*;

    /// A sheet's rows as a reader gives them: row, and each cell's column, value for the
    /// table and text as a column name.
    type Seen = Vec<(u32, Vec<(u32, String, String)>)>;

    fn seen<R: SheetRows>(rows: &mut R) -> Result<Seen, R::Error> {
        let mut out = Vec::new();
        while let Some(row) = rows.next_row()? {
            let cells = row
                .cells
                .iter()
                .map(|(c, v)| {
                    (
                        *c,
                        format!("{:?}", v.cell(row.texts)),
                        format!("{}|{}", v.header_text(row.texts), v.blank(row.texts)),
                    )
                })
                .collect();
            out.push((row.row, cells));
        }
        Ok(out)
    }

    /// Every sheet of the workbook as calamine reads it (or its error).
    fn by_calamine(path: &Path) -> Vec<(String, Result<Seen, String>)> {
        let mut book: Xlsx<_> = match open_workbook(path) {
            Ok(book) => book,
            Err(e) => return vec![(String::new(), Err(format!("{e}")))],
        };
        let names = book.sheet_names();
        names
            .into_iter()
            .map(|name| {
                if name == CHART {
                    return (name, Err("not read".to_string()));
                }
                let read = book.worksheet_cells_reader(&name).and_then(|reader| seen(&mut CalamineRows::new(reader)));
                (name, read.map_err(|e| format!("{e}")))
            })
            .collect()
    }

    /// The chart sheet `write` adds to every workbook: listed by both readers, read by none.
    const CHART: &str = "chart";

    /// Every sheet as the fast reader reads it, or `None` when it leaves the workbook to
    /// calamine.
    fn by_sheet_xml(path: &Path) -> Option<Vec<(String, Result<Seen, String>)>> {
        let mut book = Workbook::open(path).ok()?;
        let mut out = Vec::new();
        for name in book.sheet_names() {
            if name == CHART {
                // A sheet without cells: the fast reader leaves it to calamine.
                assert!(book.with_rows(&name, seen).is_err());
                out.push((name, Err("not read".to_string())));
                continue;
            }
            let rows = book.with_rows(&name, seen).ok()?;
            out.push((name, Ok(rows.ok()?)));
        }
        Some(out)
    }

    /// Checks that both readers agree, and returns whether the fast one read it.
    fn agree(path: &Path) -> bool {
        let slow = by_calamine(path);
        match by_sheet_xml(path) {
            Some(fast) => {
                assert_eq!(fast, slow, "{}", path.display());
                true
            }
            None => false,
        }
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
    }

    #[test]
    fn the_fixtures_written_by_openpyxl_are_read_by_the_fast_reader_as_by_calamine() {
        assert!(agree(&fixture("xlsx/portfolio.xlsx")));
        assert!(agree(&fixture("xlsx_bad/portfolio.xlsx")));
    }

    /// Writes a workbook of `sheets` (name, sheet XML) with `styles` and `shared` strings
    /// (XML of the parts, `None`: no part), in a fresh folder.
    fn write(
        sheets: &[(&str, String)],
        styles: Option<&str>,
        shared: Option<&str>,
        date1904: bool,
    ) -> (tempfile::TempDir, PathBuf) {
        use zip::write::SimpleFileOptions;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("book.xlsx");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        let mut put = |name: &str, text: &str| {
            zip.start_file(name, options).unwrap();
            zip.write_all(text.as_bytes()).unwrap();
        };
        put(
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>"#,
        );
        put(
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
        );
        let mut list: String = sheets
            .iter()
            .enumerate()
            .map(|(k, (name, _))| format!(r#"<sheet name="{name}" sheetId="{}" r:id="rId{}"/>"#, k + 1, k + 1))
            .collect();
        // A chart sheet, which has no cells: listed, and read by neither reader.
        list.push_str(r#"<sheet name="chart" sheetId="99" r:id="rIdChart"/>"#);
        let pr = if date1904 { r#"<workbookPr date1904="1"/>"# } else { "" };
        put(
            "xl/workbook.xml",
            &format!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"><fileVersion appName="xl"/>{pr}<sheets>{list}</sheets><definedNames><definedName name="x">customers!$A$1</definedName></definedNames></workbook>"#
            ),
        );
        let rels: String = sheets.iter().enumerate().map(|(k, _)| format!(r#"<Relationship Id="rId{}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{}.xml"/>"#, k + 1, k + 1)).collect();
        put(
            "xl/_rels/workbook.xml.rels",
            &format!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}<Relationship Id="rIdChart" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/chartsheet" Target="chartsheets/sheet1.xml"/></Relationships>"#
            ),
        );
        if let Some(styles) = styles {
            put("xl/styles.xml", styles);
        }
        if let Some(shared) = shared {
            put("xl/sharedStrings.xml", shared);
        }
        for (k, (_, xml)) in sheets.iter().enumerate() {
            put(&format!("xl/worksheets/sheet{}.xml", k + 1), xml);
        }
        zip.finish().unwrap();
        (dir, path)
    }

    /// Styles as Excel writes them: 0 general, 1 the built-in date 14, 2 a custom date,
    /// 3 a custom number, 4 a duration, 5 a custom time with an escaped letter.
    const STYLES: &str = r##"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" xmlns:x14ac="http://schemas.microsoft.com/office/spreadsheetml/2009/9/ac" mc:Ignorable="x14ac"><numFmts count="4"><numFmt numFmtId="164" formatCode="dd/mm/yyyy"/><numFmt numFmtId="165" formatCode="#,##0.00\ &quot;€&quot;"/><numFmt numFmtId="166" formatCode="[h]:mm:ss"/><numFmt numFmtId="167" formatCode="0&quot;d&quot;"/></numFmts><fonts count="1" x14ac:knownFonts="1"><font><sz val="11"/><color theme="1"/><name val="Calibri"/><family val="2"/><scheme val="minor"/></font></fonts><fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders><cellStyleXfs count="1"><xf numFmtId="14" fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="6"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"><alignment horizontal="left"/></xf><xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="166" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="167" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles><dxfs count="0"/></styleSheet>"##;

    fn sheet(rows: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" xmlns:x14ac="http://schemas.microsoft.com/office/spreadsheetml/2009/9/ac"><dimension ref="A1:E9"/><sheetViews><sheetView workbookViewId="0"/></sheetViews><sheetFormatPr defaultRowHeight="15" x14ac:dyDescent="0.25"/><cols><col min="1" max="1" width="12"/></cols><sheetData>{rows}</sheetData><pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/></worksheet>"#
        )
    }

    const SHARED: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="6" uniqueCount="6"><si><t>id</t></si><si><t xml:space="preserve"> Amount </t></si><si><r><rPr><b/><sz val="11"/></rPr><t>Rich</t></r><r><t xml:space="preserve"> text</t></r></si><si><t>東京</t><rPh sb="0" eb="2"><t>トウキョウ</t></rPh><phoneticPr fontId="1"/></si><si><t>A &amp; B &lt;c&gt; &#233;&#x263A;</t></si><si/><si><t>
  trimmed	</t></si></sst>"#;

    #[test]
    fn workbooks_written_as_excel_writes_them_are_read_as_calamine_reads_them() {
        let rows = r#"<row r="1" spans="1:5" x14ac:dyDescent="0.25"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>2</v></c><c r="D1" t="s"><v>3</v></c><c r="E1" t="s"><v>4</v></c></row>
<row r="2"><c r="A2" t="s"><v>5</v></c><c r="B2" s="3"><v>1234.5</v></c><c r="C2" s="1"><v>46037</v></c><c r="D2" s="2"><v>46037.75</v></c><c r="E2" s="4"><v>1.5</v></c></row>
<row r="3"><c r="A3" t="str"><f>CONCAT("a","&amp;")</f><v>a&amp;</v></c><c r="B3" t="b"><v>1</v></c><c r="C3" t="e"><f>1/0</f><v>#DIV/0!</v></c><c r="D3" s="5"><v>3</v></c><c r="E3" t="s"><v>6</v></c></row>
<row r="5"><c r="A5" t="inlineStr"><is><t xml:space="preserve">  x  </t></is></c><c r="B5" t="inlineStr"><is><r><t>y</t></r><r><rPr><i/></rPr><t>z</t></r></is></c><c r="C5"/><c r="D5" t="d"><v>2026-03-01T00:00:00</v></c><c r="E5"><v>-1.25E-3</v></c></row>
<row r="6"><c r="A6" t="inlineStr"><is><t/></is></c><c r="B6" s="1"><v>2958466</v></c><c r="C6" s="99"><v>7</v></c><c r="D6" t="n"><v></v></c><c r="E6" t="b"><v>false</v></c></row>
<row r="7"><c t="s"><v>0</v></c><c><v>2</v></c><c r="E7" t="inlineStr"><is><t>after a gap</t></is></c></row>
<row><c><v>8</v></c><c t="inlineStr"><v>ignored</v><is><t>kept?</t></is></c></row>
<row r="9" customHeight="1" ht="30"/>"#;
        for date1904 in [false, true] {
            let (_dir, path) = write(
                &[
                    ("customers", sheet(rows)),
                    ("invoices", sheet(r#"<row r="2"><c r="B2" t="s"><v>0</v></c></row>"#)),
                    ("empty", sheet("")),
                ],
                Some(STYLES),
                Some(SHARED),
                date1904,
            );
            assert!(agree(&path), "the fast reader gave this workbook to calamine");
        }
    }

    #[test]
    fn a_workbook_the_fast_reader_does_not_read_goes_to_calamine_with_the_same_result() {
        // Each of these makes the fast reader give up; the load is then calamine's.
        let shapes = [
            // A prefixed element, a comment, CDATA, an `_x…_` escape, a carriage return,
            // a cell type calamine refuses, a shared string out of range, an odd reference.
            r#"<x:row r="1"><x:c r="A1"><x:v>1</x:v></x:c></x:row>"#,
            r#"<row r="1"><!-- note --><c r="A1"><v>1</v></c></row>"#,
            r#"<row r="1"><c r="A1" t="inlineStr"><is><t><![CDATA[a<b]]></t></is></c></row>"#,
            r#"<row r="1"><c r="A1" t="inlineStr"><is><t>a_x000D_b</t></is></c></row>"#,
            "<row r=\"1\"><c r=\"A1\" t=\"inlineStr\"><is><t>a\r\nb</t></is></c></row>",
            r#"<row r="1"><c r="A1" t="zz"><v>1</v></c></row>"#,
            r#"<row r="1"><c r="A1" t="s"><v>99</v></c></row>"#,
            r#"<row r="1"><c r="a1"><v>1</v></c></row>"#,
            r#"<row r="1"><c r="A1"><v>1</v><extLst/></c></row>"#,
        ];
        for rows in shapes {
            let (_dir, path) = write(&[("customers", sheet(rows))], Some(STYLES), Some(SHARED), false);
            assert!(!agree(&path), "{rows}");
            // Through `load`, the result is calamine's: the same errors as its own reading.
            let got = load(&path, &LoadOptions::default()).err().map(|e| e.to_string());
            assert!(got.is_some(), "{rows}");
        }
    }

    /// A cell written one of the ways workbooks write it.
    #[derive(Debug, Clone)]
    enum Written {
        Inline(String, bool),
        Rich(Vec<String>),
        Shared(usize),
        Number(String, Option<u8>),
        Bool(bool),
        Error(&'static str),
        Formula(String),
        Empty,
    }

    fn text() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[ a-zA-Z0-9&<>\"'éü東\t\n;.,-]{0,12}").unwrap()
    }

    fn written() -> impl Strategy<Value = Written> {
        prop_oneof![
            (text(), any::<bool>()).prop_map(|(t, p)| Written::Inline(t, p)),
            proptest::collection::vec(text(), 1..3).prop_map(Written::Rich),
            (0usize..7).prop_map(Written::Shared),
            (-100_000i64..3_000_000, 0u32..1000, proptest::option::of(0u8..7))
                .prop_map(|(n, f, s)| Written::Number(format!("{n}.{f:03}"), s)),
            any::<bool>().prop_map(Written::Bool),
            prop_oneof![Just("#N/A"), Just("#REF!"), Just("#VALUE!")].prop_map(Written::Error),
            text().prop_map(Written::Formula),
            Just(Written::Empty),
        ]
    }

    fn escape(t: &str) -> String {
        t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
    }

    fn cell_xml(at: Option<String>, cell: &Written) -> String {
        let r = at.map(|a| format!(r#" r="{a}""#)).unwrap_or_default();
        match cell {
            Written::Inline(t, true) => {
                format!(r#"<c{r} t="inlineStr"><is><t xml:space="preserve">{}</t></is></c>"#, escape(t))
            }
            Written::Inline(t, false) => format!(r#"<c{r} t="inlineStr"><is><t>{}</t></is></c>"#, escape(t)),
            Written::Rich(runs) => format!(
                r#"<c{r} t="inlineStr"><is>{}</is></c>"#,
                runs.iter()
                    .map(|t| format!(r#"<r><rPr><b/></rPr><t xml:space="preserve">{}</t></r>"#, escape(t)))
                    .collect::<String>()
            ),
            Written::Shared(k) => format!(r#"<c{r} t="s"><v>{k}</v></c>"#),
            Written::Number(n, Some(s)) => format!(r#"<c{r} s="{s}"><v>{n}</v></c>"#),
            Written::Number(n, None) => format!(r#"<c{r}><v>{n}</v></c>"#),
            Written::Bool(b) => format!(r#"<c{r} t="b"><v>{}</v></c>"#, u8::from(*b)),
            Written::Error(e) => format!(r#"<c{r} t="e"><v>{e}</v></c>"#),
            Written::Formula(t) => format!(r#"<c{r} t="str"><f>A1&amp;"x"</f><v>{}</v></c>"#, escape(t)),
            Written::Empty => format!(r#"<c{r} s="1"/>"#),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Any grid of cells, written with or without references, rows in any order and
        /// rows repeated, reads the same with both readers, and the fast reader reads it,
        /// cut into many blocks (300 bytes in unit tests): rows without a number are placed
        /// after the blocks before theirs, a row in two blocks is one row.
        #[test]
        fn any_grid_reads_the_same_with_both_readers(
            grid in proptest::collection::vec((1u32..40, proptest::collection::vec(written(), 0..6)), 0..12),
            refs in any::<bool>(),
        ) {
            let rows: String = grid
                .iter()
                .map(|(r, cells)| {
                    let cells: String = cells
                        .iter()
                        .enumerate()
                        .map(|(k, c)| cell_xml(refs.then(|| format!("{}{r}", (b'A' + k as u8) as char)), c))
                        .collect();
                    if refs { format!(r#"<row r="{r}">{cells}</row>"#) } else { format!("<row>{cells}</row>") }
                })
                .collect();
            let (_dir, path) = write(&[("customers", sheet(&rows))], Some(STYLES), Some(SHARED), false);
            prop_assert!(agree(&path), "the fast reader gave up on {rows}");
        }
    }
}
