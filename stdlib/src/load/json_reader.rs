//! JSON reader. Numbers are read from their source text (never through a float), and each
//! record's line is found from its position in the file.
//!
//! A file (`customers.json`, …) is read in blocks, once: the columns are the names of the
//! fields of the first block's records (in the order they first appear), and every record is
//! read with them. Should a later record have another name, the portfolio is read again in
//! one pass with the names found up to its block; should it have a second one (or a record
//! not be an object, or not be valid JSON), in two passes: the names of all the records,
//! then the values. Each block's array is cut into records by [`json_split`], and its records
//! are parsed (by [`flat_record`] and [`flat_values`] when flat, else by serde_json) on all threads, in chunks,
//! each chunk into its own part of the table, merged in order before the next block is read:
//! the file is never held whole. Texts without escapes are borrowed
//! from the block. A file that cannot be read so (missing, not UTF-8, not an array of valid
//! JSON) is read whole, and serde_json gives its error. In a `portfolio.json` (one object
//! with the three arrays) a first scan ([`json_split::ObjectScan`]) finds where each array
//! is, and each is then read in blocks as a file of its own; a `portfolio.json` with other
//! members, a member twice or a value that is not an array is read whole.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io::{Read, Seek};
use std::path::Path;

use memchr::memchr_iter;
use rayon::prelude::*;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::error::{LoadError, LoadErrorKind};
use super::json_split::{self, Element, Place};
use super::table::{Builder, Cell, Loaded, Part, Row, Sinks, Source, Table};
use super::{LoadErrors, LoadOptions, MAPPING_HELP, display_name, io_error};
use crate::recent::{same_bytes, same_text};

enum JsonCell<'a> {
    Empty,
    Text(Cow<'a, str>),
    Number(&'a str),
    Bool(bool),
    Invalid(&'a str),
}

struct JsonRow<'r, 'a> {
    cells: &'r [JsonCell<'a>],
    line: usize,
}

/// A field name, borrowed when it can be.
#[derive(Deserialize)]
struct Name<'a>(#[serde(borrow)] Cow<'a, str>);

impl Row for JsonRow<'_, '_> {
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
    load_dir_with(dir, opts, block_size())
}

/// [`load_dir`], the files read `block` bytes at a time.
fn load_dir_with(dir: &Path, opts: &LoadOptions, block: usize) -> Result<Loaded, LoadErrors> {
    let mut readings = Readings::default();
    'load: loop {
        let mut b = Builder::new(opts, MAPPING_HELP);
        for (name, table, required) in [
            ("customers.json", Table::Customers, true),
            ("invoices.json", Table::Invoices, true),
            ("payments.json", Table::Payments, false),
        ] {
            let path = dir.join(name);
            // Read in blocks: the file is never held whole.
            match read_in_blocks(&path, Span::FILE, name, table, block, readings.passes(table), &mut b) {
                Reading::Done => continue,
                // What was loaded is dropped, and every file read again.
                Reading::Again(seed) => {
                    if readings.again(table, seed) {
                        continue 'load;
                    }
                }
                Reading::Refused => {}
            }
            // A missing or unreadable file, or text that is not an array of valid JSON: read
            // whole, for the error (serde_json's for the text; the records, should serde_json
            // read an array that the blocks' reading refused).
            let Some(text) = read_text(&path, &mut b, required) else { continue };
            match serde_json::from_str::<Vec<&RawValue>>(&text) {
                Ok(records) => {
                    let _ = read_records(&elements(&text, &records), name, table, &mut b);
                }
                Err(e) => {
                    b.errors.push(syntax(name, &e, "the file must be an array of objects: `[{\"id\": \"…\"}, …]`"))
                }
            }
        }
        return b.finish();
    }
}

/// Bytes read at a time: 2 MiB per processor (about 27,000 invoices for two; the CSV reader's
/// blocks hold as many rows). A block is parsed while the next one is read and cut apart.
fn block_size() -> usize {
    rayon::current_num_threads().max(1) << 21
}

/// An array being read in blocks, its first block read and cut apart.
struct Blocks {
    file: std::io::Take<std::fs::File>,
    split: json_split::ArraySplit,
    block: usize,
    current: Vec<u8>,
    cut: Cut,
}

impl Blocks {
    /// Opens the array of the file at `path` and reads its first block.
    fn open(path: &Path, span: Span, block: usize) -> Option<Blocks> {
        let mut file = std::fs::File::open(path).ok()?;
        file.seek(std::io::SeekFrom::Start(span.start)).ok()?;
        let mut file = file.take(span.len.unwrap_or(u64::MAX));
        let mut split = json_split::ArraySplit::at_line(span.lines);
        let mut current = Vec::new();
        let cut = read_and_cut(&mut file, &mut current, &mut split, block)?;
        Some(Blocks { file, split, block, current, cut })
    }

    /// The records of the first block (`None` when they are not UTF-8).
    fn first(&self) -> Option<Vec<Element<'_>>> {
        self.cut.records(&self.current)
    }

    /// Gives the records of each block, from the first, to `each`, while the next block is
    /// read and cut apart; `None` when the array cannot be read this way (not UTF-8, not an
    /// array, a record that is not valid JSON: `each` says so with `NotJson`).
    fn each(self, mut each: impl FnMut(&[Element<'_>]) -> Result<(), NotJson> + Send) -> Option<()> {
        let Blocks { mut file, mut split, block, mut current, mut cut } = self;
        let mut next = Vec::new();
        loop {
            // The bytes after the block's last record start the next block.
            next.clear();
            next.extend_from_slice(current.get(cut.consumed..).unwrap_or_default());
            // (A block whose records cannot be found again sends the file to the whole reading.)
            let mut give = |cut: &Cut, buf: &[u8]| cut.records(buf).ok_or(NotJson).and_then(|records| each(&records));
            if cut.last {
                return give(&cut, &current).ok();
            }
            let (done, following) =
                rayon::join(|| give(&cut, &current), || read_and_cut(&mut file, &mut next, &mut split, block));
            done.ok()?;
            cut = following?;
            std::mem::swap(&mut current, &mut next);
        }
    }
}

/// Where an array is in its file: from `start`, `len` bytes (to the end when `None`), after
/// `lines` line breaks.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u64,
    len: Option<u64>,
    lines: usize,
}

impl Span {
    /// A whole file.
    const FILE: Span = Span { start: 0, len: None, lines: 0 };
}

/// A block cut apart: where its records are, and how many of its bytes they took.
struct Cut {
    places: Vec<Place>,
    consumed: usize,
    /// The block ends the file.
    last: bool,
}

impl Cut {
    /// The records, in `buf` (the block cut); `None` when the bytes they take are not UTF-8
    /// (checked here, once).
    fn records<'a>(&self, buf: &'a [u8]) -> Option<Vec<Element<'a>>> {
        let text = std::str::from_utf8(buf.get(..self.consumed)?).ok()?;
        self.places.iter().map(|p| p.of(text)).collect()
    }
}

/// Reads `block` more bytes into `buf` (which holds the bytes left from the block before),
/// more until a record ends in it, and cuts it apart.
fn read_and_cut(
    file: &mut impl Read,
    buf: &mut Vec<u8>,
    split: &mut json_split::ArraySplit,
    block: usize,
) -> Option<Cut> {
    loop {
        buf.reserve(block.min(64 << 20));
        let read = file.by_ref().take(block as u64).read_to_end(buf).ok()?;
        // The bytes are cut apart as bytes (a block may end inside a character, which the
        // next block then starts with); their UTF-8 is checked once, by `Cut::records`.
        let last = read < block;
        let (places, consumed) = split.next_elements(buf, last)?;
        // No record ends in the bytes read: a record longer than a block, read on.
        if consumed == 0 && !last {
            continue;
        }
        return Some(Cut { places, consumed, last });
    }
}

/// What the first reading of a file found: its columns, the records that are not objects
/// (line and start of each), and the number of records.
struct Found {
    columns: Columns,
    not_objects: Vec<(usize, String)>,
    records: usize,
    /// The names are those of every record (not of the first block's only).
    every_record: bool,
}

impl Found {
    /// Nothing found yet.
    fn new() -> Self {
        Found { columns: Columns::new(), not_objects: Vec::new(), records: 0, every_record: true }
    }
}

/// How the array of a table is read in blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Passes<'s> {
    /// Once: the columns are the names of the first block's records (after the names given,
    /// those a reading before found), and every record is read with them. Exports write the
    /// same fields in every record, so this is the common case; a record with a name the
    /// columns lack, a record that is not an object and a text that is not an array of
    /// valid JSON stop it ([`Reading::Again`]).
    One(Option<&'s Columns>),
    /// Twice: the names of all the records, then their values.
    Two,
}

/// How many times a portfolio is read again in one pass, with the names a reading before
/// found in a block after the first (a field that only later records have): once, then in
/// two passes (each new reading costs the part read before).
const READINGS_AGAIN_IN_ONE_PASS: usize = 1;

/// The readings of a portfolio so far: the names found for each table, how many times it
/// was read again, and whether it is now read in two passes.
#[derive(Default)]
struct Readings {
    seeds: [Option<Columns>; 3],
    again: usize,
    two: bool,
}

impl Readings {
    /// How to read the array of `table` now.
    fn passes(&self, table: Table) -> Passes<'_> {
        match self.seeds.get(Self::slot(table)) {
            Some(seed) if !self.two => Passes::One(seed.as_ref()),
            _ => Passes::Two,
        }
    }

    /// After [`Reading::Again`] for `table` with `seed`: whether to read the portfolio
    /// again (in one pass with the seed, or in two passes); `false` in two passes, where
    /// a reading is never given up.
    fn again(&mut self, table: Table, seed: Option<Columns>) -> bool {
        if self.two {
            return false;
        }
        match (seed.filter(|_| self.again < READINGS_AGAIN_IN_ONE_PASS), self.seeds.get_mut(Self::slot(table))) {
            (Some(seed), Some(slot)) => *slot = Some(seed),
            _ => self.two = true,
        }
        self.again += 1;
        true
    }

    fn slot(table: Table) -> usize {
        match table {
            Table::Customers => 0,
            Table::Invoices => 1,
            Table::Payments => 2,
        }
    }
}

/// How the reading of an array in blocks ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reading {
    /// The table is in the builder (or its errors are).
    Done,
    /// Not read in one pass: what the builder holds is to be dropped and the portfolio read
    /// again, in one pass with these columns for the table (the names found up to the
    /// block with a new name, in the order they first appear), or else in [`Passes::Two`]
    /// (never returned in that mode).
    Again(Option<Columns>),
    /// Not read in blocks (a file that cannot be opened; in two passes, text that is not an
    /// array of valid JSON): nothing was added to the builder.
    Refused,
}

/// Reads the array of `path` at `span` into the table `table` of `b`, in blocks, in `passes`.
fn read_in_blocks(
    path: &Path,
    span: Span,
    file: &str,
    table: Table,
    block: usize,
    passes: Passes<'_>,
    b: &mut Builder<'_>,
) -> Reading {
    match passes {
        Passes::Two => match names_in_blocks(path, span, block) {
            Some(found) => read_values_in_blocks(Blocks::open(path, span, block), file, table, found, passes, b),
            None => Reading::Refused,
        },
        Passes::One(seed) => {
            // A missing file is reported (or, for payments, skipped) by the whole reading.
            let Ok(meta) = std::fs::metadata(path) else { return Reading::Refused };
            let len = span.len.unwrap_or_else(|| meta.len().saturating_sub(span.start));
            let Some(blocks) = Blocks::open(path, span, block) else { return Reading::Again(None) };
            match first_block_names(&blocks, len, seed) {
                Some(found) if found.not_objects.is_empty() => {
                    read_values_in_blocks(Some(blocks), file, table, found, passes, b)
                }
                _ => Reading::Again(None),
            }
        }
    }
}

/// The first reading of a file in blocks: the names of its fields.
fn names_in_blocks(path: &Path, span: Span, block: usize) -> Option<Found> {
    let mut found = Found::new();
    Blocks::open(path, span, block)?.each(|records| names_of(records, &mut found))?;
    Some(found)
}

/// The names of the fields of the records of the first block of an array of `len` bytes
/// (after the names of `seed`), and an estimate of the records of the array from the bytes
/// they take (exact when the block is the whole array).
fn first_block_names(blocks: &Blocks, len: u64, seed: Option<&Columns>) -> Option<Found> {
    let records = blocks.first()?;
    let mut found = Found::new();
    if let Some(seed) = seed {
        found.columns = seed.clone();
    }
    names_of(&records, &mut found).ok()?;
    let cut = &blocks.cut;
    found.every_record = cut.last;
    if !cut.last {
        // Room for a sixteenth more than the estimate: room never used costs no memory,
        // and a vector that grows copies itself.
        let estimate = (len as f64 * records.len() as f64 / cut.consumed.max(1) as f64) as usize;
        found.records = estimate.saturating_add(estimate / 16);
    }
    Some(found)
}

/// The reading of the values of the array in `blocks` (`None`: it could not be opened again)
/// into the table: the second in [`Passes::Two`], the only one in [`Passes::One`] (then
/// `found` holds the names of the first block, and `blocks` is the reading that found them).
fn read_values_in_blocks(
    blocks: Option<Blocks>,
    file: &str,
    table: Table,
    found: Found,
    passes: Passes<'_>,
    b: &mut Builder<'_>,
) -> Reading {
    let Found { columns, not_objects, records, every_record } = found;
    let Some(handle) = register(file, table, &columns, not_objects, records, b) else {
        // Columns missing from the first block may be in the others.
        return if every_record { Reading::Done } else { Reading::Again(None) };
    };
    let Some((sinks, mut merger)) = b.split(handle) else { return Reading::Done };
    let mut seen = 0;
    // In one pass, the columns and the names of the block where a new one appeared.
    let mut more: Option<Columns> = None;
    let read = blocks.and_then(|blocks| {
        blocks.each(|records| {
            seen += records.len();
            let (parts, unexpected) = values_of(records, &columns, &sinks);
            if unexpected && matches!(passes, Passes::One(_)) {
                // Only new names (no record that is not an object, nor not JSON) are worth
                // a reading again in one pass.
                let mut found = Found::new();
                found.columns = columns.clone();
                if names_of(records, &mut found).is_ok()
                    && found.not_objects.is_empty()
                    && found.columns.names.len() > columns.names.len()
                {
                    more = Some(found.columns);
                }
                return Err(NotJson);
            }
            for part in parts {
                merger.merge(part, 0);
            }
            Ok(())
        })
    });
    match passes {
        Passes::One(_) if read.is_none() => Reading::Again(more),
        Passes::One(_) => Reading::Done,
        Passes::Two => {
            if read.is_none() || seen != records {
                b.errors.push(LoadError::file(
                    LoadErrorKind::Io,
                    file,
                    format!("`{file}` changed while it was read"),
                    Some("run again once the export is written".to_string()),
                ));
            }
            Reading::Done
        }
    }
}

/// The records of an array read by serde_json, with the line of each, from its position in
/// `text` (one pass, in order).
fn elements<'a>(text: &str, records: &[&'a RawValue]) -> Vec<Element<'a>> {
    let base = text.as_ptr() as usize;
    let (mut line, mut pos) = (1usize, 0usize);
    records
        .iter()
        .map(|raw| {
            let offset = (raw.get().as_ptr() as usize).saturating_sub(base).min(text.len());
            if offset >= pos {
                line += memchr_iter(b'\n', text.as_bytes().get(pos..offset).unwrap_or_default()).count();
                pos = offset;
            }
            Element { text: raw.get(), line }
        })
        .collect()
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
    load_portfolio_json_with(path, opts, block_size())
}

/// [`load_portfolio_json`], the arrays read `block` bytes at a time.
fn load_portfolio_json_with(path: &Path, opts: &LoadOptions, block: usize) -> Result<Loaded, LoadErrors> {
    // The arrays found in a first scan, then each read in blocks as a file of its own; a
    // file that is not so simple (another member, a member twice, a value that is not an
    // array, a record that is not valid JSON…) is read whole, for serde_json's reading.
    if let Some(spans) = arrays_of_one_file(path, block) {
        let name = display_name(path);
        let mut readings = Readings::default();
        'load: loop {
            let mut b = Builder::new(opts, MAPPING_HELP);
            for (span, table) in spans.into_iter().zip([Table::Customers, Table::Invoices, Table::Payments]) {
                let Some(span) = span else { continue };
                match read_in_blocks(path, span, &name, table, block, readings.passes(table), &mut b) {
                    Reading::Done => {}
                    Reading::Again(seed) => {
                        if readings.again(table, seed) {
                            continue 'load;
                        }
                        break 'load;
                    }
                    Reading::Refused => break 'load,
                }
            }
            return b.finish();
        }
    }
    one_file_whole(path, opts)
}

/// `portfolio.json` read whole by serde_json.
fn one_file_whole(path: &Path, opts: &LoadOptions) -> Result<Loaded, LoadErrors> {
    let mut b = Builder::new(opts, MAPPING_HELP);
    let name = display_name(path);
    let Some(text) = read_text(path, &mut b, true) else { return b.finish() };
    match serde_json::from_str::<OneFile<'_>>(&text) {
        Ok(one) => {
            for (records, table) in
                [(one.customers, Table::Customers), (one.invoices, Table::Invoices), (one.payments, Table::Payments)]
            {
                match records {
                    Some(r) => {
                        // serde_json has read the whole text: every record is valid JSON.
                        let _ = read_records(&elements(&text, &r), &name, table, &mut b);
                    }
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

/// Where the arrays `customers`, `invoices` and `payments` (if any) are in a `portfolio.json`
/// whose object has these members only, each once, each an array; `None` otherwise.
fn arrays_of_one_file(path: &Path, block: usize) -> Option<[Option<Span>; 3]> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut scan = json_split::ObjectScan::default();
    // Blocks of a multiple of 64 bytes (the scan's unit), but the last.
    let mut buf = vec![0u8; block.div_ceil(64).max(1) * 64];
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match file.read(buf.get_mut(filled..)?).ok()? {
                0 => break,
                n => filled += n,
            }
        }
        scan.block(buf.get(..filled)?);
        if filled < buf.len() {
            break;
        }
    }
    let mut spans = [None; 3];
    for member in scan.members()? {
        // The name and the colon, at the start of the member.
        let mut head = vec![0u8; (member.end - member.start).min(4096)];
        file.seek(std::io::SeekFrom::Start(member.start as u64)).ok()?;
        file.read_exact(&mut head).ok()?;
        let text = match std::str::from_utf8(&head) {
            Ok(text) => text,
            Err(e) => std::str::from_utf8(head.get(..e.valid_up_to())?).ok()?,
        };
        let name_at = text.len() - text.trim_start_matches([' ', '\t', '\n', '\r']).len();
        let mut names = serde_json::Deserializer::from_str(text.get(name_at..)?).into_iter::<String>();
        let name = names.next()?.ok()?;
        let after_name = name_at + names.byte_offset();
        let rest = text.get(after_name..)?.trim_start_matches([' ', '\t', '\n', '\r']).strip_prefix(':')?;
        let value = rest.trim_start_matches([' ', '\t', '\n', '\r']);
        if !value.starts_with('[') {
            return None;
        }
        let value_at = text.len() - value.len();
        let slot = match name.as_str() {
            "customers" => 0,
            "invoices" => 1,
            "payments" => 2,
            _ => return None,
        };
        let lines = member.lines + text.get(..value_at)?.bytes().filter(|&b| b == b'\n').count();
        let start = member.start + value_at;
        let span = Span { start: start as u64, len: Some((member.end - start) as u64), lines };
        if spans.get_mut(slot)?.replace(span).is_some() {
            return None;
        }
    }
    (spans.first()?.is_some() && spans.get(1)?.is_some()).then_some(spans)
}

/// Records read per task.
const CHUNK: usize = 4096;

/// Tasks whose parts are merged before the next ones are read: the converted rows of a
/// whole file are never held beside the table they are merged into.
const CHUNKS_PER_MERGE: usize = 32;

/// The columns of a table: the field names in the order they first appear.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Columns {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Columns {
    fn new() -> Self {
        Columns { names: Vec::new(), index: HashMap::new() }
    }

    /// Adds `name` unless it is known.
    fn add(&mut self, name: &str) {
        if !self.index.contains_key(name) {
            self.index.insert(name.to_string(), self.names.len());
            self.names.push(name.to_string());
        }
    }
}

/// Finds the column of each field of a record: first the column of the field at the same
/// place in the record before (exports write every record's fields in one order), then by
/// name.
struct Lookup<'c> {
    columns: &'c Columns,
    /// The column of the field at each place of the last record (`usize::MAX`: none).
    last: Vec<usize>,
    /// A name was not among the columns.
    unknown: bool,
    /// The bytes before each value of the last flat record read, end to end (see
    /// [`flat_values`]).
    key_bytes: Vec<u8>,
    /// Where each place's bytes end in `key_bytes`, and the column they name.
    keys: Vec<(usize, Option<usize>)>,
}

impl<'c> Lookup<'c> {
    fn new(columns: &'c Columns) -> Self {
        Lookup { columns, last: Vec::new(), unknown: false, key_bytes: Vec::new(), keys: Vec::new() }
    }

    /// The bytes before the value at `place` in the last flat record read, and their column.
    #[inline]
    fn key(&self, place: usize) -> Option<(&[u8], Option<usize>)> {
        let &(end, column) = self.keys.get(place)?;
        let start = match place.checked_sub(1) {
            Some(before) => self.keys.get(before)?.0,
            None => 0,
        };
        Some((self.key_bytes.get(start..end)?, column))
    }

    /// Keeps `key`, naming `column`, as the bytes before the value at `place` (those of the
    /// places after it are dropped).
    fn set_key(&mut self, place: usize, key: &[u8], column: Option<usize>) {
        self.keys.truncate(place);
        self.key_bytes.truncate(self.keys.last().map_or(0, |k| k.0));
        self.key_bytes.extend_from_slice(key);
        self.keys.push((self.key_bytes.len(), column));
    }

    fn find(&mut self, place: usize, name: &str) -> Option<usize> {
        if let Some(&c) = self.last.get(place)
            && self.columns.names.get(c).is_some_and(|n| same_text(n, name))
        {
            return Some(c);
        }
        let Some(&c) = self.columns.index.get(name) else {
            self.unknown = true;
            return None;
        };
        if place >= self.last.len() {
            self.last.resize(place + 1, usize::MAX);
        }
        if let Some(slot) = self.last.get_mut(place) {
            *slot = c;
        }
        Some(c)
    }
}

/// Lists the field names of a record that are new to its chunk: not among `known`, nor
/// already listed (a record that is not an object is an error of the deserializer). `last`:
/// the names of the record before, by place, which most names are found among.
struct NamesOf<'a, 'de> {
    last: &'a mut Vec<Cow<'de, str>>,
    known: &'a Columns,
    new: &'a mut Vec<String>,
}

impl<'de> serde::de::DeserializeSeed<'de> for NamesOf<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for NamesOf<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<M: MapAccess<'de>>(mut self, mut map: M) -> Result<(), M::Error> {
        let mut place = 0;
        while let Some(Name(k)) = map.next_key::<Name<'de>>()? {
            self.note(place, k);
            map.next_value::<serde::de::IgnoredAny>()?;
            place += 1;
        }
        self.last.truncate(place);
        Ok(())
    }
}

impl<'de> NamesOf<'_, 'de> {
    /// The name at `place` of the record.
    fn note(&mut self, place: usize, k: Cow<'de, str>) {
        if self.last.get(place) != Some(&k) {
            if !self.known.index.contains_key(k.as_ref()) && !self.new.iter().any(|n| *n == k) {
                self.new.push(k.to_string());
            }
            match self.last.get_mut(place) {
                Some(slot) => *slot = k,
                None => self.last.push(k),
            }
        }
    }

    /// Reads the names of a flat record (see [`flat_record`]), else with serde_json.
    fn read(mut self, text: &'de str, fields: &mut Vec<(&'de str, Flat<'de>)>) -> bool {
        if flat_record(text, fields).is_none() {
            return read_record(text, self);
        }
        for (place, (k, _)) in fields.iter().enumerate() {
            self.note(place, Cow::Borrowed(k));
        }
        self.last.truncate(fields.len());
        true
    }
}

/// Reads the values of a record into its cells, by column (a name written twice: the last
/// wins, as in a map).
struct ValuesOf<'a, 'c, 'de>(&'a mut Lookup<'c>, &'a mut [JsonCell<'de>]);

impl<'de> serde::de::DeserializeSeed<'de> for ValuesOf<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ValuesOf<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        let ValuesOf(lookup, cells) = self;
        let mut place = 0;
        while let Some(Name(k)) = map.next_key::<Name<'de>>()? {
            match lookup.find(place, &k).and_then(|c| cells.get_mut(c)) {
                Some(cell) => *cell = convert(map.next_value::<&'de RawValue>()?),
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
            place += 1;
        }
        Ok(())
    }
}

impl<'de> ValuesOf<'_, '_, 'de> {
    /// Reads the values of a flat record (see [`flat_values`]), else with serde_json.
    fn read(self, text: &'de str) -> bool {
        let ValuesOf(lookup, cells) = self;
        if flat_values(text, lookup, cells).is_some() {
            return true;
        }
        // The cells the flat reading wrote before it stopped are written again, or not.
        for cell in cells.iter_mut() {
            *cell = JsonCell::Empty;
        }
        read_record(text, ValuesOf(lookup, cells))
    }
}

/// A value of a flat record.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Flat<'a> {
    /// A text without escapes: its bytes between the quotes.
    Text(&'a str),
    /// A number as written.
    Number(&'a str),
    Bool(bool),
    Null,
}

impl<'a> Flat<'a> {
    /// The cell of the value, as [`convert`] gives it for the same text.
    fn cell(self) -> JsonCell<'a> {
        match self {
            Flat::Text(t) => JsonCell::Text(Cow::Borrowed(t)),
            Flat::Number(n) => JsonCell::Number(n),
            Flat::Bool(b) => JsonCell::Bool(b),
            Flat::Null => JsonCell::Empty,
        }
    }
}

/// Reads a record that is a flat object, the shape of nearly every record of an export:
/// names and texts without escapes, numbers, `true`, `false`, `null`; its members in order
/// into `fields`. `None` for anything else (a nested value, an escape, a control character,
/// anything that is not JSON): serde_json then reads the record, as it reads every record
/// it gives the same names and cells for (a property test), so the fast path changes no
/// result and no error. One pass over the bytes, where serde_json took two (the names, then
/// the values) of its general parse.
fn flat_record<'a>(text: &'a str, fields: &mut Vec<(&'a str, Flat<'a>)>) -> Option<()> {
    fields.clear();
    let b = text.as_bytes();
    let mut i = skip_space(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_space(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return (skip_space(b, i + 1) == b.len()).then_some(());
    }
    loop {
        let (name, at) = member_name(text, i)?;
        let (value, after) = flat_value(text, at)?;
        fields.push((name, value));
        i = skip_space(b, after);
        match *b.get(i)? {
            b',' => i = skip_space(b, i + 1),
            b'}' => return (skip_space(b, i + 1) == b.len()).then_some(()),
            _ => return None,
        }
    }
}

/// The first byte at or after `i` that is not JSON whitespace.
#[inline]
fn skip_space(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The text without escapes or control characters whose opening quote is at `i`, and the
/// byte after its closing quote.
#[inline]
fn plain_text(text: &str, i: usize) -> Option<(&str, usize)> {
    let body = text.as_bytes().get(i + 1..)?;
    let k = text_end(body)?;
    if body.get(k) != Some(&b'"') {
        return None;
    }
    Some((text.get(i + 1..i + 1 + k)?, i + 2 + k))
}

/// The name of the member that starts at `i` (`"name"`, whitespace, `:`, whitespace) and
/// where its value starts.
#[inline]
fn member_name(text: &str, i: usize) -> Option<(&str, usize)> {
    let b = text.as_bytes();
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let (name, after) = plain_text(text, i)?;
    let i = skip_space(b, after);
    if b.get(i) != Some(&b':') {
        return None;
    }
    Some((name, skip_space(b, i + 1)))
}

/// The flat value that starts at `i` (a text without escapes, a number, a literal) and the
/// byte after it.
#[inline]
fn flat_value(text: &str, i: usize) -> Option<(Flat<'_>, usize)> {
    let b = text.as_bytes();
    Some(match *b.get(i)? {
        b'"' => {
            let (t, after) = plain_text(text, i)?;
            (Flat::Text(t), after)
        }
        b't' if b.get(i..i + 4) == Some(b"true") => (Flat::Bool(true), i + 4),
        b'f' if b.get(i..i + 5) == Some(b"false") => (Flat::Bool(false), i + 5),
        b'n' if b.get(i..i + 4) == Some(b"null") => (Flat::Null, i + 4),
        b'-' | b'0'..=b'9' => {
            let end = number_end(b, i)?;
            (Flat::Number(text.get(i..end)?), end)
        }
        _ => return None,
    })
}

/// Reads the values of a flat record (see [`flat_record`]: the same records, the same
/// cells) into `cells`, by the columns of `lookup`. Records of an export repeat the same
/// names, in the same order, with the same spacing: the bytes from the end of one value to
/// the start of the next (`,"customer_id":`) are kept by place (in `lookup`), with the
/// column they name, and a record whose bytes at that place are the same is not parsed
/// there again (the same bytes at the same place of the grammar are the same tokens).
/// Anything else is parsed as [`flat_record`] parses it. `None` when the record is not flat
/// (some cells may then be written).
fn flat_values<'a>(text: &'a str, lookup: &mut Lookup<'_>, cells: &mut [JsonCell<'a>]) -> Option<()> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut place = 0;
    loop {
        let column = match lookup.key(place) {
            Some((key, column)) if b.get(i..i + key.len()).is_some_and(|here| same_bytes(here, key)) => {
                // (A record may have more space before this value than the one before.)
                i = skip_space(b, i + key.len());
                if column.is_none() {
                    lookup.unknown = true;
                }
                column
            }
            _ => {
                let start = i;
                i = skip_space(b, i);
                match (place, b.get(i)) {
                    (0, Some(b'{')) | (1.., Some(b',')) => i = skip_space(b, i + 1),
                    (1.., Some(b'}')) => return (skip_space(b, i + 1) == b.len()).then_some(()),
                    _ => return None,
                }
                if place == 0 && b.get(i) == Some(&b'}') {
                    return (skip_space(b, i + 1) == b.len()).then_some(());
                }
                let (name, at) = member_name(text, i)?;
                i = at;
                let column = lookup.find(place, name);
                lookup.set_key(place, b.get(start..i)?, column);
                column
            }
        };
        let (value, after) = flat_value(text, i)?;
        if let Some(cell) = column.and_then(|c| cells.get_mut(c)) {
            *cell = value.cell();
        }
        i = after;
        place += 1;
    }
}

/// The first byte of `s` that ends a text without escapes: a quote, a backslash or a control
/// character. Eight bytes at a time: each test finds the bytes it looks for by the high bit
/// of a subtraction, exact for the first one found (a borrow only reaches the bytes after
/// it), so the lowest bit of the three tests is the byte.
fn text_end(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v;
    let mut chunks = s.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let x = u64::from_le_bytes(chunk.try_into().ok()?);
        let found = (zero(x ^ (ONES * u64::from(b'"')))
            | zero(x ^ (ONES * u64::from(b'\\')))
            | (x.wrapping_sub(ONES * 0x20) & !x))
            & HIGHS;
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks.remainder().iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).map(|k| at + k)
}

/// The end of the JSON number that starts at `i`, by its grammar
/// (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`), or `None`.
fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |mut i: usize| {
        let from = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > from).then_some(i)
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    i = match b.get(i)? {
        b'0' => i + 1,
        b'1'..=b'9' => digits(i)?,
        _ => return None,
    };
    if b.get(i) == Some(&b'.') {
        i = digits(i + 1)?;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = digits(i)?;
    }
    Some(i)
}

/// Reads one record with `seed`.
fn read_record<'de, S: serde::de::DeserializeSeed<'de, Value = ()>>(text: &'de str, seed: S) -> bool {
    let mut de = serde_json::Deserializer::from_str(text);
    seed.deserialize(&mut de).is_ok() && de.end().is_ok()
}

/// A record that is not valid JSON: the file is read again by serde_json, for its error.
#[derive(Debug, PartialEq, Eq)]
struct NotJson;

/// Reads the records of a table into `b` (nothing when one of them is not valid JSON).
fn read_records(records: &[Element<'_>], file: &str, table: Table, b: &mut Builder<'_>) -> Result<(), NotJson> {
    let mut found = Found::new();
    names_of(records, &mut found)?;
    let Found { columns, not_objects, records: count, .. } = found;
    let Some(handle) = register(file, table, &columns, not_objects, count, b) else { return Ok(()) };
    let Some((sinks, mut merger)) = b.split(handle) else { return Ok(()) };
    for group in records.chunks(CHUNK * CHUNKS_PER_MERGE) {
        // The records that are not objects were reported with the names.
        for part in values_of(group, &columns, &sinks).0 {
            merger.merge(part, 0);
        }
    }
    Ok(())
}

/// Adds the field names of `records` to `found` (in the order they first appear: each chunk
/// lists the names the chunks before it may not know), with the records that are not
/// objects; `NotJson` when one of them is not valid JSON.
fn names_of(records: &[Element<'_>], found: &mut Found) -> Result<(), NotJson> {
    let chunks: Vec<(Vec<String>, Vec<usize>, bool)> = records
        .par_chunks(CHUNK)
        .enumerate()
        .map(|(c, chunk)| {
            let mut local = Columns::new();
            let (mut bad, mut not_json) = (Vec::new(), false);
            let (mut new, mut last, mut fields) = (Vec::new(), Vec::new(), Vec::new());
            for (i, record) in chunk.iter().enumerate() {
                if !(NamesOf { last: &mut last, known: &local, new: &mut new }).read(record.text, &mut fields) {
                    bad.push(c * CHUNK + i);
                    not_json |= serde_json::from_str::<serde::de::IgnoredAny>(record.text).is_err();
                    last.clear();
                }
                for name in new.drain(..) {
                    local.add(&name);
                }
            }
            (local.names, bad, not_json)
        })
        .collect();
    if chunks.iter().any(|(_, _, not_json)| *not_json) {
        return Err(NotJson);
    }
    for (names, bad, _) in chunks {
        for k in &names {
            found.columns.add(k);
        }
        for r in bad {
            if let Some(e) = records.get(r) {
                found.not_objects.push((e.line, e.text.chars().take(40).collect()));
            }
        }
    }
    found.records += records.len();
    Ok(())
}

/// The errors of the records that are not objects, and the table, of `records` rows.
fn register(
    file: &str,
    table: Table,
    columns: &Columns,
    not_objects: Vec<(usize, String)>,
    records: usize,
    b: &mut Builder<'_>,
) -> Option<usize> {
    for (line, value) in not_objects {
        let mut err = LoadError::file(
            LoadErrorKind::Syntax,
            file,
            format!("the {} record is not an object", table.name()),
            Some("each element of the array must be an object: `{\"id\": \"…\", …}`".to_string()),
        );
        err.line = Some(line);
        err.value = Some(value);
        b.errors.push(err);
    }
    let src = Source { file: file.to_string(), sheet: None, headers: columns.names.clone(), first_column: None };
    let handle = b.table(table, src)?;
    b.reserve(handle, records);
    Some(handle)
}

/// The values of `records`, converted on all threads, one part per chunk (lines are the
/// file's: merged at offset 0); and whether a record was unexpected: not read (not an
/// object, or not valid JSON) or with a name not among `columns`.
fn values_of(records: &[Element<'_>], columns: &Columns, sinks: &Sinks<'_>) -> (Vec<Part>, bool) {
    let width = columns.names.len();
    let parts: Vec<(Part, bool)> = records
        .par_chunks(CHUNK)
        .map(|chunk| {
            let mut sink = sinks.sink();
            let mut lookup = Lookup::new(columns);
            let mut cells: Vec<JsonCell<'_>> = Vec::with_capacity(width);
            let mut unread = false;
            for record in chunk {
                cells.clear();
                cells.resize_with(width, || JsonCell::Empty);
                if ValuesOf(&mut lookup, &mut cells).read(record.text) {
                    sink.row(&JsonRow { cells: &cells, line: record.line });
                } else {
                    unread = true;
                }
            }
            (sink.finish(), unread || lookup.unknown)
        })
        .collect();
    let unexpected = parts.iter().any(|(_, unexpected)| *unexpected);
    (parts.into_iter().map(|(part, _)| part).collect(), unexpected)
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Files read in blocks of a few dozen bytes to a few KB (records across blocks, blocks
    /// ending inside a character, records longer than a block) load as when read whole:
    /// the same portfolio, or the same errors (records that are not objects, a bad value on
    /// its line, a syntax error), as serde_json reading the whole file gives them.
    #[test]
    fn files_read_in_small_blocks_load_as_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let customers = "[\n{\"id\": \"C1\", \"name\": \"Société \\\"Œuvre\\\" — été\", \"segment\": \"sme\"},\n{\"id\": \"C2\", \"name\": \"B\", \"segment\": \"micro\"}\n]\n";
        let mut invoices = String::from("[\n");
        for k in 0..300 {
            if k > 0 {
                invoices.push_str(",\n");
            }
            let name = "é".repeat(k % 7);
            invoices.push_str(&format!(
                "{{\"id\": \"F{k}\", \"customer_id\": \"C{}\", \"due_date\": \"2026-02-14\", \"amount\": {k}.5, \"currency\": \"EUR\", \"note\": \"{name}, ]}}\"}}",
                1 + k % 2
            ));
        }
        invoices.push_str("\n]\n");
        let whole = |dir: &Path| match load_dir_with(dir, &LoadOptions::default(), 1 << 30) {
            Ok(loaded) => Ok(loaded.into_portfolio()),
            Err(e) => Err(e.to_string()),
        };
        let cases = [
            invoices.clone(),
            // Names that only later records have: read again in two passes.
            invoices
                .replace("\"F280\"", "\"F280\", \"promise_date\": \"2026-03-01\"")
                .replace("\"F290\"", "\"F290\", \"region\": \"Nord\""),
            invoices
                .replace("{\"id\": \"F17\"", "42, {\"id\": \"F17\"")
                .replace("\"F250\"", "\"F250\", \"x\": [1, {}]"),
            invoices.replace("\"amount\": 99.5", "\"amount\": \"ninety\""),
            invoices.replace("\"amount\": 123.5", "\"amount\": 12 3.5"),
            invoices.replace("\n]\n", "\n]\n]"),
        ];
        for (c, text) in cases.iter().enumerate() {
            std::fs::write(dir.path().join("customers.json"), customers).unwrap();
            std::fs::write(dir.path().join("invoices.json"), text).unwrap();
            let want = whole(dir.path());
            if c < 2 {
                assert_eq!(want.as_ref().unwrap().invoices.len(), 300);
            } else {
                assert!(want.is_err(), "case {c}");
            }
            for block in [1, 7, 64, 100, 333, 4096] {
                let got = match load_dir_with(dir.path(), &LoadOptions::default(), block) {
                    Ok(loaded) => Ok(loaded.into_portfolio()),
                    Err(e) => Err(e.to_string()),
                };
                assert_eq!(got, want, "case {c}, blocks of {block} bytes");
            }
        }
    }

    /// Records that all have the names of the first block's are read in one pass; a name
    /// that only a later block has, or a record that is not an object, stops that pass (and
    /// the portfolio is read again in two).
    #[test]
    fn one_pass_reads_records_named_as_the_first_block_and_gives_up_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("invoices.json");
        let records: Vec<String> = (0..100)
            .map(|k| format!(r#"{{"id": "F{k}", "customer_id": "C1", "due_date": "2026-02-14", "amount": {k}.5, "currency": "EUR"}}"#))
            .collect();
        let text = format!("[\n{}\n]\n", records.join(",\n"));
        let opts = LoadOptions::default();
        let reading = |text: &str, passes: Passes<'_>| {
            std::fs::write(&path, text).unwrap();
            let mut b = Builder::new(&opts, MAPPING_HELP);
            let read = read_in_blocks(&path, Span::FILE, "invoices.json", Table::Invoices, 512, passes, &mut b);
            (read, b.portfolio_len())
        };
        let one = Passes::One(None);
        assert_eq!(reading(&text, one), (Reading::Done, 100));
        assert_eq!(reading(&text, Passes::Two), (Reading::Done, 100));
        // A name that only a later record has: read again in one pass with the names found
        // up to its block, in the order they first appear.
        let late_name = text
            .replace(r#""id": "F90""#, r#""id": "F90", "promise_date": "2026-03-01", "region": "Nord""#)
            .replace(r#""id": "F91""#, r#""id": "F91", "po": "7", "region": "Sud""#);
        let (Reading::Again(Some(seed)), _) = reading(&late_name, one) else { panic!("not read again with names") };
        let names = ["id", "customer_id", "due_date", "amount", "currency", "promise_date", "region", "po"];
        assert_eq!(seed.names, names);
        assert_eq!(reading(&late_name, Passes::One(Some(&seed))), (Reading::Done, 100));
        assert_eq!(reading(&late_name, Passes::Two), (Reading::Done, 100));
        let two_passes = names_in_blocks(&path, Span::FILE, 512).unwrap();
        assert_eq!(two_passes.columns, seed, "the names of two passes, in their order");
        // In the first block, a name that a later record lacks is only an empty cell.
        let early_name = text.replace(r#""id": "F1""#, r#""id": "F1", "promise_date": "2026-03-01""#);
        assert_eq!(reading(&early_name, one), (Reading::Done, 100));
        // A record that is not an object, or text that is not JSON: in two passes.
        let not_object = text.replace(r#"{"id": "F90""#, r#"7, {"id": "F90""#);
        assert_eq!(reading(&not_object, one).0, Reading::Again(None));
        let not_json = text.replace(r#""amount": 95.5"#, r#""amount": 95 .5"#);
        assert_eq!(reading(&not_json, one).0, Reading::Again(None));
        assert_eq!(reading(&not_json, Passes::Two).0, Reading::Refused);
        assert_eq!(reading("[]", one), (Reading::Done, 0));
        let missing = dir.path().join("nothing.json");
        let mut b = Builder::new(&opts, MAPPING_HELP);
        assert_eq!(read_in_blocks(&missing, Span::FILE, "x", Table::Invoices, 512, one, &mut b), Reading::Refused);
    }

    /// A portfolio is read again once in one pass with the names found, then in two passes,
    /// and a reading in two passes is never given up.
    #[test]
    fn readings_again_in_one_pass_then_in_two() {
        let mut seed = Columns::new();
        seed.add("id");
        let mut readings = Readings::default();
        assert_eq!(readings.passes(Table::Invoices), Passes::One(None));
        assert!(readings.again(Table::Invoices, Some(seed.clone())));
        assert_eq!(readings.passes(Table::Invoices), Passes::One(Some(&seed)));
        assert_eq!(readings.passes(Table::Customers), Passes::One(None));
        assert!(readings.again(Table::Invoices, Some(seed.clone())));
        assert_eq!(readings.passes(Table::Invoices), Passes::Two);
        assert!(!readings.again(Table::Invoices, None));
        let mut readings = Readings::default();
        assert!(readings.again(Table::Payments, None));
        assert_eq!(readings.passes(Table::Customers), Passes::Two);
    }

    /// A `portfolio.json` whose arrays are found by the scan and read in blocks loads as
    /// serde_json's reading of the whole file does; other files (another member, a member
    /// twice, `null`, a record that is not valid JSON, text after the object) are read whole,
    /// with the same result.
    #[test]
    fn one_file_read_in_blocks_loads_as_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let customers = r#"[{"id": "C1", "name": "Société \"Œuvre\"", "segment": "sme"}, {"id": "C2", "name": "B, ]}", "segment": "micro"}]"#;
        let invoices: Vec<String> = (0..200)
            .map(|k| {
                format!(
                    r#"{{"id": "F{k}", "customer_id": "C{}", "due_date": "2026-02-14", "amount": {k}.5, "currency": "EUR", "note": "{}, }}"}}"#,
                    1 + k % 2,
                    "é".repeat(k % 5)
                )
            })
            .collect();
        let invoices = format!("[\n{}\n]", invoices.join(",\n"));
        let payments = r#"[{"invoice_id": "F3", "date": "2026-02-20", "amount": 1}]"#;
        // Arrays the scan finds (the third with a bad value, the fourth with a record that is
        // not valid JSON, which sends the file to the whole reading after the scan).
        let scanned = [
            format!("{{\"customers\": {customers},\n \"invoices\": {invoices}, \"payments\": {payments}}}\n"),
            format!("\n{{ \"invoices\" :\n{invoices} ,\"customers\":{customers} }}"),
            format!(
                "{{\"customers\": {customers}, \"invoices\": {}}}",
                invoices.replace("\"amount\": 17.5", "\"amount\": \"x\"")
            ),
            format!(
                "{{\"customers\": {customers}, \"invoices\": {}}}",
                invoices.replace("\"amount\": 9.5", "\"amount\": 9 .5")
            ),
            // A name that only the last records have (read again in two passes).
            format!(
                "{{\"customers\": {customers}, \"invoices\": {}}}",
                invoices.replace("\"id\": \"F190\"", "\"id\": \"F190\", \"region\": \"Nord\"")
            ),
        ];
        let whole = [
            format!("{{\"customers\": {customers}, \"invoices\": {invoices}, \"payments\": null}}"),
            format!("{{\"customers\": {customers}, \"invoices\": {invoices}, \"note\": \"a\"}}"),
            format!("{{\"customers\": {customers}, \"customers\": {customers}, \"invoices\": {invoices}}}"),
            format!("{{\"customers\": {customers}, \"invoices\": {invoices}}} x"),
            format!("{{\"customers\": {customers}}}"),
            format!("[{customers}]"),
        ];
        let path = dir.path().join("portfolio.json");
        let result = |r: Result<Loaded, LoadErrors>| match r {
            Ok(loaded) => Ok(loaded.into_portfolio()),
            Err(e) => Err(e.to_string()),
        };
        for (c, text) in scanned.iter().chain(&whole).enumerate() {
            std::fs::write(&path, text).unwrap();
            let want = result(one_file_whole(&path, &LoadOptions::default()));
            assert_eq!(arrays_of_one_file(&path, 64).is_some(), c < scanned.len(), "case {c}");
            if c < 2 {
                assert_eq!(want.as_ref().map(|p| p.invoices.len()), Ok(200), "case {c}");
            }
            for block in [1, 7, 64, 333, 4096, 1 << 20] {
                let got = result(load_portfolio_json_with(&path, &LoadOptions::default(), block));
                assert_eq!(got, want, "case {c}, blocks of {block} bytes");
            }
        }
    }

    /// The names and values of a record as serde_json reads them: each name with its cell.
    struct Pairs<'a>(&'a mut Vec<(String, String)>);

    impl<'de> serde::de::DeserializeSeed<'de> for Pairs<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for Pairs<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
            while let Some(Name(k)) = map.next_key::<Name<'de>>()? {
                let cell = convert(map.next_value::<&'de RawValue>()?);
                self.0.push((k.to_string(), cell_text(&cell)));
            }
            Ok(())
        }
    }

    fn cell_text(cell: &JsonCell<'_>) -> String {
        match cell {
            JsonCell::Empty => "empty".to_string(),
            JsonCell::Text(t) => format!("text {t}"),
            JsonCell::Number(n) => format!("number {n}"),
            JsonCell::Bool(b) => format!("bool {b}"),
            JsonCell::Invalid(t) => format!("invalid {t}"),
        }
    }

    fn member() -> impl Strategy<Value = String> {
        let name = prop_oneof![
            12 => "[a-z_]{1,8}".prop_map(|n| format!("\"{n}\"")),
            1 => Just("\"a\\\"b\"".to_string()),
            1 => Just("\"é \\u00e9\"".to_string()),
            1 => Just("x".to_string()),
        ];
        let value = prop_oneof![
            4 => "[ a-zA-Z0-9éü東;.,-]{0,8}".prop_map(|t| format!("\"{t}\"")),
            2 => prop_oneof![
                Just("0"), Just("-0"), Just("12"), Just("1234.56"), Just("-7.25"), Just("1e5"), Just("2.5E-3"),
                Just("0.0e+0"), Just("01"), Just("1."), Just(".5"), Just("-"), Just("+1"), Just("1e"), Just("NaN"),
                Just("Infinity"), Just("0x10"), Just("1_000"),
            ]
            .prop_map(String::from),
            1 => prop_oneof![Just("true"), Just("false"), Just("null"), Just("tru"), Just("nulll"), Just("True")].prop_map(String::from),
            1 => prop_oneof![
                Just("\"a\\nb\""), Just("\"tab\there\""), Just("\"q\\\"\""), Just("\"\\u00e9\""), Just("\"bad\\x\""),
                Just("[\"vip\", \"new\"]"), Just("[]"), Just("{\"a\": 1}"), Just("\"open"),
            ]
            .prop_map(String::from),
        ];
        (name, prop_oneof![6 => Just(":"), 2 => Just(" : "), 2 => Just(":\r\n\t"), 1 => Just("=")], value)
            .prop_map(|(n, colon, v)| format!("{n}{colon}{v}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// A record that the flat reader reads is valid JSON, and it gives serde_json's
        /// names and cells, in order (names written twice included); a record serde_json
        /// refuses, the flat reader refuses too; one serde_json reads without escapes or
        /// nested values, the flat reader reads.
        #[test]
        fn flat_records_read_as_serde_json_reads_them(
            members in proptest::collection::vec(member(), 0..6),
            seps in proptest::collection::vec(prop_oneof![8 => Just(","), 4 => Just(", "), 4 => Just(" ,\n"), 1 => Just(",,"), 1 => Just(" ")], 6),
            open in prop_oneof![8 => Just("{"), 2 => Just(" {"), 2 => Just("\n{ "), 1 => Just("[")],
            close in prop_oneof![8 => Just("}"), 2 => Just(" }"), 2 => Just("}\r\n"), 1 => Just("},"), 1 => Just("}}")],
        ) {
            let mut text = open.to_string();
            for (k, m) in members.iter().enumerate() {
                if k > 0 {
                    text.push_str(seps[k]);
                }
                text.push_str(m);
            }
            text.push_str(close);
            let mut by_serde = Vec::new();
            let serde_ok = read_record(&text, Pairs(&mut by_serde));
            let mut fields = Vec::new();
            match flat_record(&text, &mut fields) {
                Some(()) => {
                    prop_assert!(serde_ok, "{}", text);
                    let flat: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.to_string(), cell_text(&v.cell()))).collect();
                    prop_assert_eq!(flat, by_serde, "{}", text);
                }
                None => {
                    // A record serde_json reads that has no escape and no nested value is
                    // read by the flat reader too: only other shapes are left to serde_json.
                    let flat_shape = !text.contains('\\') && !text.contains('[') && text.matches('{').count() == 1;
                    prop_assert!(!(serde_ok && flat_shape), "{}", text);
                }
            }
        }
    }

    /// A record of a few names and separators, so that records in a row share the bytes
    /// between their values, with some that are not flat or not JSON.
    fn layout_record() -> impl Strategy<Value = String> {
        let name = prop_oneof![Just("id"), Just("customer_id"), Just("amount"), Just("ab"), Just("zz"), Just("a\\\"b")];
        let colon = prop_oneof![4 => Just(":"), 1 => Just(" : "), 1 => Just(":  ")];
        let value = prop_oneof![
            3 => "[a-z0-9 ]{0,4}".prop_map(|t| format!("\"{t}\"")),
            2 => prop_oneof![Just("12"), Just("-7.25"), Just("1e5"), Just("01"), Just("1.")].prop_map(String::from),
            1 => prop_oneof![Just("true"), Just("null"), Just("nul"), Just(" 5"), Just("\"a\\nb\""), Just("[1]")].prop_map(String::from),
        ];
        let sep = prop_oneof![6 => Just(","), 2 => Just(", "), 1 => Just(" ,"), 1 => Just(",,")];
        (
            prop_oneof![6 => Just("{"), 1 => Just("{ "), 1 => Just(" {")],
            proptest::collection::vec((name, colon, value, sep), 0..5),
            prop_oneof![6 => Just("}"), 1 => Just(" }"), 1 => Just("} x"), 1 => Just("")],
        )
            .prop_map(|(open, members, close)| {
                let mut text = open.to_string();
                for (k, (name, colon, value, sep)) in members.iter().enumerate() {
                    if k > 0 {
                        text.push_str(sep);
                    }
                    text.push_str(&format!("\"{name}\"{colon}{value}"));
                }
                text.push_str(close);
                text
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Records read one after another with the bytes kept between their values read as
        /// the flat reader reads each alone: the same records refused, the same cells by
        /// column (a name written twice: the last), names not among the columns noticed.
        #[test]
        fn records_read_with_the_bytes_kept_are_the_flat_records(
            records in proptest::collection::vec(prop_oneof![1 => layout_record(), 3 => Just(String::new())], 1..48),
        ) {
            let mut columns = Columns::new();
            for name in ["customer_id", "id", "ab", "amount"] {
                columns.add(name);
            }
            let mut lookup = Lookup::new(&columns);
            // An empty string repeats the record before (a run of records of one layout).
            let mut texts: Vec<String> = Vec::new();
            for r in &records {
                let text = if r.is_empty() { texts.last().cloned().unwrap_or_else(|| "{}".to_string()) } else { r.clone() };
                texts.push(text);
            }
            for text in &texts {
                let mut fields = Vec::new();
                let want_ok = flat_record(text, &mut fields).is_some();
                let mut want = vec!["empty".to_string(); 4];
                let mut want_unknown = false;
                for (k, v) in &fields {
                    match columns.index.get(*k) {
                        Some(&c) => want[c] = cell_text(&v.cell()),
                        None => want_unknown = true,
                    }
                }
                let mut cells: Vec<JsonCell<'_>> = (0..4).map(|_| JsonCell::Empty).collect();
                lookup.unknown = false;
                let got_ok = flat_values(text, &mut lookup, &mut cells).is_some();
                prop_assert_eq!(got_ok, want_ok, "{}", text);
                if got_ok {
                    let got: Vec<String> = cells.iter().map(cell_text).collect();
                    prop_assert_eq!(got, want, "{}", text);
                    prop_assert_eq!(lookup.unknown, want_unknown, "{}", text);
                }
            }
        }
    }

    proptest! {
        /// Eight bytes at a time, the end of a text is the byte loop's.
        #[test]
        fn text_ends_are_found_eight_bytes_at_a_time(bytes in proptest::collection::vec(prop_oneof![
            8 => 0x20u8..0x7f, 1 => Just(b'"'), 1 => Just(b'\\'), 1 => 0u8..0x20, 2 => 0x80u8..=0xff,
        ], 0..40)) {
            let want = bytes.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
            prop_assert_eq!(text_end(&bytes), want);
        }
    }

    #[test]
    fn flat_records_of_an_export_are_read_in_one_pass() {
        let mut fields = Vec::new();
        let text = r#"{"id":"F1","amount":1234.56, "disputed":false,"promise_date":null , "n": -0.5e-3}"#;
        assert_eq!(flat_record(text, &mut fields), Some(()));
        assert_eq!(
            fields,
            [
                ("id", Flat::Text("F1")),
                ("amount", Flat::Number("1234.56")),
                ("disputed", Flat::Bool(false)),
                ("promise_date", Flat::Null),
                ("n", Flat::Number("-0.5e-3")),
            ]
        );
        assert_eq!(flat_record("{}", &mut fields), Some(()));
        assert!(fields.is_empty());
        for other in [r#"{"a":"x\ny"}"#, r#"{"a":[1]}"#, r#"{"a":01}"#, r#"{"a":1,}"#, r#"{"a":1} x"#, "[1]"] {
            assert_eq!(flat_record(other, &mut fields), None, "{other}");
        }
    }
}
