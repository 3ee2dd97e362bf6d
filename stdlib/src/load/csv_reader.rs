//! CSV folder reader: one record buffer reused per file, header resolved once.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use relance_engine::model::Portfolio;

use super::error::LoadErrorKind;
use super::table::{Builder, Cell, Row, Source, Table};
use super::{LoadErrors, LoadOptions, MAPPING_HELP, display_name, io_error};

struct CsvRow<'a> {
    record: &'a csv::StringRecord,
    line: usize,
}

impl Row for CsvRow<'_> {
    fn cell(&self, idx: usize) -> Cell<'_> {
        match self.record.get(idx) {
            Some(s) => Cell::Text(s),
            None => Cell::Empty,
        }
    }

    fn line(&self) -> usize {
        self.line
    }
}

pub(crate) fn load(dir: &Path, opts: &LoadOptions) -> Result<Portfolio, LoadErrors> {
    let mut b = Builder::new(opts, MAPPING_HELP);
    read(&dir.join("customers.csv"), Table::Customers, true, opts, &mut b);
    read(&dir.join("invoices.csv"), Table::Invoices, true, opts, &mut b);
    read(&dir.join("payments.csv"), Table::Payments, false, opts, &mut b);
    b.finish()
}

/// The delimiter among `,`, `;`, tab and `|` that occurs most in the first line, outside quotes.
pub(crate) fn detect_delimiter(head: &[u8]) -> u8 {
    let line = head.split(|&c| c == b'\n').next().unwrap_or(head);
    let mut counts = [0usize; 4];
    let cands = [b',', b';', b'\t', b'|'];
    let mut in_quotes = false;
    for &c in line {
        if c == b'"' {
            in_quotes = !in_quotes;
        } else if let Some(i) = cands.iter().position(|&d| d == c).filter(|_| !in_quotes) {
            counts[i] += 1;
        }
    }
    let mut best = 0;
    for i in 1..cands.len() {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    cands[best]
}

fn read(path: &Path, table: Table, required: bool, opts: &LoadOptions, b: &mut Builder<'_>) {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return,
        Err(e) => {
            let mut err = io_error(path, &e);
            if e.kind() == std::io::ErrorKind::NotFound {
                err.kind = LoadErrorKind::NoPortfolio;
                err.message = format!("the file `{}` is missing", display_name(path));
                err.help = Some(format!(
                    "a CSV portfolio needs customers.csv and invoices.csv (payments.csv is optional); add {}",
                    display_name(path)
                ));
            }
            b.errors.push(err);
            return;
        }
    };
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let delimiter = match opts.delimiter {
        Some(d) => d,
        None => match reader.fill_buf() {
            Ok(head) => detect_delimiter(head),
            Err(e) => {
                b.errors.push(io_error(path, &e));
                return;
            }
        },
    };
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let file_name = display_name(path);
    let mut record = csv::StringRecord::new();
    let syntax = |e: &csv::Error| {
        let line = e.position().map(|p| p.line() as usize);
        let (message, help) = match e.kind() {
            csv::ErrorKind::Utf8 { .. } => (
                "the line is not valid UTF-8 text".to_string(),
                "save the file as UTF-8 (in Excel: CSV UTF-8)".to_string(),
            ),
            _ => (format!("cannot read the CSV: {e}"), "check that the file is a CSV export".to_string()),
        };
        let mut err = super::LoadError::file(LoadErrorKind::Syntax, file_name.clone(), message, Some(help));
        err.line = line;
        err
    };
    // Header.
    match rdr.read_record(&mut record) {
        Ok(true) => {}
        Ok(false) => {
            b.errors.push(super::LoadError::file(
                LoadErrorKind::MissingColumn,
                file_name.clone(),
                "the file is empty".to_string(),
                Some(format!("the first line must name the columns of the {} table", table.name())),
            ));
            return;
        }
        Err(e) => {
            b.errors.push(syntax(&e));
            return;
        }
    }
    let headers: Vec<String> = record.iter().map(|h| h.trim_start_matches('\u{feff}').trim().to_string()).collect();
    let width = headers.len();
    let src = Source { file: file_name.clone(), sheet: None, headers, first_column: None };
    let Some(handle) = b.table(table, src) else { return };
    loop {
        match rdr.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let fatal = matches!(e.kind(), csv::ErrorKind::Io(_));
                b.errors.push(syntax(&e));
                if fatal {
                    break;
                }
                continue;
            }
        }
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if record.len() != width {
            b.field_count(handle, line, record.len());
            continue;
        }
        b.row(handle, &CsvRow { record: &record, line });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_delimiter_outside_quotes() {
        assert_eq!(detect_delimiter(b"id;name;\"a,b,c\"\n1;2;3"), b';');
        assert_eq!(detect_delimiter(b"id,name,segment"), b',');
        assert_eq!(detect_delimiter(b"id\tname\tsegment"), b'\t');
        assert_eq!(detect_delimiter(b"id"), b',');
    }
}
