//! JSON reader. Numbers are read from their source text (never through a float), and each
//! record's line is found from its position in the file.
//!
//! The records of an array are read in chunks on all threads, twice: once for the names of
//! their fields (the columns, in the order they first appear), then for their values, each
//! chunk into its own part of the table, merged in order. Texts without escapes are
//! borrowed from the file.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;

use memchr::memchr_iter;
use rayon::prelude::*;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::error::{LoadError, LoadErrorKind};
use super::table::{Builder, Cell, Loaded, Row, Source, Table};
use super::{LoadErrors, LoadOptions, MAPPING_HELP, display_name, io_error};

enum JsonCell<'a> {
    Empty,
    Text(Cow<'a, str>),
    Number(&'a str),
    Bool(bool),
    Invalid(&'a str),
}

struct JsonRow<'a> {
    cells: Vec<JsonCell<'a>>,
    line: usize,
}

/// The fields of one record, in the order written (a name written twice: the last wins, as
/// in a map), names borrowed from the file unless they hold an escape.
struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

/// A field name, borrowed when it can be.
#[derive(Deserialize)]
struct Name<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Fields<'de>, M::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some((Name(k), v)) = map.next_entry::<Name<'de>, &'de RawValue>()? {
                    fields.push((k, v));
                }
                Ok(Fields(fields))
            }
        }
        d.deserialize_map(V)
    }
}

impl Row for JsonRow<'_> {
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

/// Records read per task.
const CHUNK: usize = 4096;

fn read_records(text: &str, records: &[&RawValue], file: &str, table: Table, b: &mut Builder<'_>) {
    // Each record's line, from its position in the file (one pass, in order).
    let base = text.as_ptr() as usize;
    let mut lines = Vec::with_capacity(records.len());
    let (mut line, mut pos) = (1usize, 0usize);
    for raw in records {
        let offset = (raw.get().as_ptr() as usize).saturating_sub(base).min(text.len());
        if offset >= pos {
            line += memchr_iter(b'\n', text.as_bytes().get(pos..offset).unwrap_or_default()).count();
            pos = offset;
        }
        lines.push(line);
    }
    // The columns: the field names in the order they first appear, and the records that are
    // not objects (each an error, in order).
    let found: Vec<(Vec<String>, Vec<usize>)> = records
        .par_chunks(CHUNK)
        .enumerate()
        .map(|(c, chunk)| {
            let (mut names, mut bad): (Vec<String>, Vec<usize>) = (Vec::new(), Vec::new());
            let mut seen: HashSet<Cow<'_, str>> = HashSet::new();
            for (i, raw) in chunk.iter().enumerate() {
                match serde_json::from_str::<Fields<'_>>(raw.get()) {
                    Ok(Fields(fields)) => {
                        for (k, _) in fields {
                            if !seen.contains(&k) {
                                names.push(k.to_string());
                                seen.insert(k);
                            }
                        }
                    }
                    Err(_) => bad.push(c * CHUNK + i),
                }
            }
            (names, bad)
        })
        .collect();
    let mut headers: Vec<String> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (names, bad) in found {
        for k in names {
            if !index.contains_key(&k) {
                index.insert(k.clone(), headers.len());
                headers.push(k);
            }
        }
        for r in bad {
            let mut err = LoadError::file(
                LoadErrorKind::Syntax,
                file,
                format!("the {} record is not an object", table.name()),
                Some("each element of the array must be an object: `{\"id\": \"…\", …}`".to_string()),
            );
            err.line = lines.get(r).copied();
            err.value = records.get(r).map(|raw| raw.get().chars().take(40).collect());
            b.errors.push(err);
        }
    }
    let src = Source { file: file.to_string(), sheet: None, headers, first_column: None };
    let width = src.headers.len();
    let Some(handle) = b.table(table, src) else { return };
    let Some((sinks, mut merger)) = b.split(handle) else { return };
    // The values, chunk by chunk into parts (lines are the file's: merged at offset 0).
    let parts: Vec<_> = records
        .par_chunks(CHUNK)
        .zip(lines.par_chunks(CHUNK))
        .map(|(chunk, lines)| {
            let mut sink = sinks.sink();
            for (raw, &line) in chunk.iter().zip(lines) {
                let Ok(Fields(fields)) = serde_json::from_str::<Fields<'_>>(raw.get()) else { continue };
                let mut cells: Vec<JsonCell<'_>> = (0..width).map(|_| JsonCell::Empty).collect();
                for (k, raw) in fields {
                    if let Some(cell) = index.get(k.as_ref()).and_then(|&i| cells.get_mut(i)) {
                        *cell = convert(raw);
                    }
                }
                sink.row(&JsonRow { cells, line });
            }
            sink.finish()
        })
        .collect();
    for part in parts {
        merger.merge(part, 0);
    }
}

fn convert(raw: &RawValue) -> JsonCell<'_> {
    let s = raw.get().trim();
    match s.as_bytes().first() {
        // A text without escapes is its bytes between the quotes.
        Some(b'"') if !s.contains('\\') && s.len() >= 2 && s.ends_with('"') => {
            JsonCell::Text(Cow::Borrowed(s.get(1..s.len() - 1).unwrap_or_default()))
        }
        Some(b'"') => match serde_json::from_str::<String>(s) {
            Ok(t) => JsonCell::Text(Cow::Owned(t)),
            Err(_) => JsonCell::Invalid(s),
        },
        Some(b'n') => JsonCell::Empty,
        Some(b't') => JsonCell::Bool(true),
        Some(b'f') => JsonCell::Bool(false),
        Some(b'[') => match serde_json::from_str::<Vec<String>>(s) {
            // A list of texts (tags) becomes `a|b|c`.
            Ok(items) => JsonCell::Text(Cow::Owned(items.join("|"))),
            Err(_) => JsonCell::Invalid(s),
        },
        Some(b'{') => JsonCell::Invalid(s),
        // A number: its source text, so that `1234.56` stays exact.
        _ => JsonCell::Number(s),
    }
}
