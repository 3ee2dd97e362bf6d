//! JSON reader. Numbers are read from their source text (never through a float), and each
//! record's line is found from its position in the file.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::error::{LoadError, LoadErrorKind};
use super::table::{Builder, Cell, Loaded, Row, Source, Table};
use super::{LoadErrors, LoadOptions, MAPPING_HELP, display_name, io_error};

enum JsonCell {
    Empty,
    Text(String),
    Number(String),
    Bool(bool),
    Invalid(String),
}

struct JsonRow {
    cells: Vec<JsonCell>,
    line: usize,
}

impl Row for JsonRow {
    fn cell(&self, idx: usize) -> Cell<'_> {
        match self.cells.get(idx) {
            None | Some(JsonCell::Empty) => Cell::Empty,
            Some(JsonCell::Text(s)) => Cell::Text(s),
            Some(JsonCell::Number(s)) => Cell::Numeric(s),
            Some(JsonCell::Bool(b)) => Cell::Bool(*b),
            Some(JsonCell::Invalid(s)) => Cell::Text(s),
        }
    }

    fn line(&self) -> usize {
        self.line
    }
}

fn syntax(file: &str, e: &serde_json::Error, what: &str) -> LoadError {
    let mut err = LoadError::file(
        LoadErrorKind::Syntax,
        file,
        format!("the file is not valid JSON: {e}"),
        Some(what.to_string()),
    );
    err.line = Some(e.line()).filter(|l| *l > 0);
    err
}

fn read_text(path: &Path, b: &mut Builder<'_>, required: bool) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => None,
        Err(e) => {
            let mut err = io_error(path, &e);
            if e.kind() == std::io::ErrorKind::NotFound {
                err.kind = LoadErrorKind::NoPortfolio;
                err.message = format!("the file `{}` is missing", display_name(path));
                err.help = Some(
                    "a JSON portfolio needs customers.json and invoices.json (payments.json is optional), or one portfolio.json"
                        .to_string(),
                );
            }
            b.errors.push(err);
            None
        }
    }
}

pub(crate) fn load_dir(dir: &Path, opts: &LoadOptions) -> Result<Loaded, LoadErrors> {
    let mut b = Builder::new(opts, MAPPING_HELP);
    for (name, table, required) in [
        ("customers.json", Table::Customers, true),
        ("invoices.json", Table::Invoices, true),
        ("payments.json", Table::Payments, false),
    ] {
        let path = dir.join(name);
        let Some(text) = read_text(&path, &mut b, required) else { continue };
        match serde_json::from_str::<Vec<&RawValue>>(&text) {
            Ok(records) => read_records(&text, &records, name, table, &mut b),
            Err(e) => b.errors.push(syntax(name, &e, "the file must be an array of objects: `[{\"id\": \"…\"}, …]`")),
        }
    }
    b.finish()
}

#[derive(Deserialize)]
struct OneFile<'a> {
    #[serde(borrow)]
    customers: Option<Vec<&'a RawValue>>,
    #[serde(borrow)]
    invoices: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    payments: Option<Vec<&'a RawValue>>,
}

pub(crate) fn load_portfolio_json(path: &Path, opts: &LoadOptions) -> Result<Loaded, LoadErrors> {
    let mut b = Builder::new(opts, MAPPING_HELP);
    let name = display_name(path);
    let Some(text) = read_text(path, &mut b, true) else { return b.finish() };
    match serde_json::from_str::<OneFile<'_>>(&text) {
        Ok(one) => {
            for (records, table) in
                [(one.customers, Table::Customers), (one.invoices, Table::Invoices), (one.payments, Table::Payments)]
            {
                match records {
                    Some(r) => read_records(&text, &r, &name, table, &mut b),
                    None if table == Table::Payments => {}
                    None => b.errors.push(LoadError::file(
                        LoadErrorKind::MissingColumn,
                        name.clone(),
                        format!("the array `{}` is missing", table.name()),
                        Some("portfolio.json is an object with the arrays `customers`, `invoices` and optionally `payments`".to_string()),
                    )),
                }
            }
        }
        Err(e) => b.errors.push(syntax(
            &name,
            &e,
            "portfolio.json is an object with the arrays `customers`, `invoices` and optionally `payments`",
        )),
    }
    b.finish()
}

fn read_records(text: &str, records: &[&RawValue], file: &str, table: Table, b: &mut Builder<'_>) {
    // Parse each record into (key → raw value), keeping its line.
    let base = text.as_ptr() as usize;
    let mut line = 1usize;
    let mut pos = 0usize;
    let mut parsed: Vec<(usize, BTreeMap<String, &RawValue>)> = Vec::with_capacity(records.len());
    let mut headers: Vec<String> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for raw in records {
        let offset = (raw.get().as_ptr() as usize).saturating_sub(base).min(text.len());
        if offset >= pos {
            line += text.as_bytes()[pos..offset].iter().filter(|&&c| c == b'\n').count();
            pos = offset;
        }
        match serde_json::from_str::<BTreeMap<String, &RawValue>>(raw.get()) {
            Ok(map) => {
                for k in map.keys() {
                    if !index.contains_key(k) {
                        index.insert(k.clone(), headers.len());
                        headers.push(k.clone());
                    }
                }
                parsed.push((line, map));
            }
            Err(_) => {
                let mut err = LoadError::file(
                    LoadErrorKind::Syntax,
                    file,
                    format!("the {} record is not an object", table.name()),
                    Some("each element of the array must be an object: `{\"id\": \"…\", …}`".to_string()),
                );
                err.line = Some(line);
                err.value = Some(raw.get().chars().take(40).collect());
                b.errors.push(err);
            }
        }
    }
    let src = Source { file: file.to_string(), sheet: None, headers, first_column: None };
    let width = src.headers.len();
    let Some(handle) = b.table(table, src) else { return };
    let Some(mut sink) = b.sink(handle) else { return };
    for (line, map) in parsed {
        let mut cells: Vec<JsonCell> = (0..width).map(|_| JsonCell::Empty).collect();
        for (k, raw) in map {
            if let Some(&i) = index.get(&k) {
                cells[i] = convert(raw);
            }
        }
        sink.row(&JsonRow { cells, line });
    }
    let part = sink.finish();
    b.merge(part, 0);
}

fn convert(raw: &RawValue) -> JsonCell {
    let s = raw.get().trim();
    match s.as_bytes().first() {
        Some(b'"') => match serde_json::from_str::<String>(s) {
            Ok(t) => JsonCell::Text(t),
            Err(_) => JsonCell::Invalid(s.to_string()),
        },
        Some(b'n') => JsonCell::Empty,
        Some(b't') => JsonCell::Bool(true),
        Some(b'f') => JsonCell::Bool(false),
        Some(b'[') => match serde_json::from_str::<Vec<String>>(s) {
            // A list of texts (tags) becomes `a|b|c`.
            Ok(items) => JsonCell::Text(items.join("|")),
            Err(_) => JsonCell::Invalid(s.to_string()),
        },
        Some(b'{') => JsonCell::Invalid(s.to_string()),
        // A number: its source text, so that `1234.56` stays exact.
        _ => JsonCell::Number(s.to_string()),
    }
}
