//! CSV folder reader, parallel: each file is read in blocks of a few MiB; a block is cut at
//! record boundaries into chunks that are parsed and converted on all cores (one record
//! buffer per chunk, header resolved once), and the chunks are merged in file order. The
//! result, errors included, is the same as reading the file in one piece.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use memchr::{memchr, memchr_iter, memrchr};
use rayon::prelude::*;

use super::error::{LoadError, LoadErrorKind};
use super::parse::trim;
use super::quoted;
use super::table::{Builder, Cell, Loaded, Part, Row, RowSink, Source, Table};
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

/// A record of a chunk without quotes: its fields, borrowed from the chunk.
struct PlainRow<'a> {
    fields: &'a [&'a str],
    line: usize,
}

impl Row for PlainRow<'_> {
    fn cell(&self, idx: usize) -> Cell<'_> {
        match self.fields.get(idx) {
            Some(s) => Cell::Text(s),
            None => Cell::Empty,
        }
    }

    fn line(&self) -> usize {
        self.line
    }
}

/// How a file is cut: bytes read at a time, and the size of a chunk parsed by one task.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes {
    pub(crate) block: usize,
    pub(crate) chunk: usize,
}

impl Default for Sizes {
    fn default() -> Self {
        // Per block, one chunk per core and then some (for balance); a block is small next
        // to the portfolio it becomes.
        let threads = rayon::current_num_threads().max(1);
        Self { block: threads << 20, chunk: 1 << 18 }
    }
}

pub(crate) fn load(dir: &Path, opts: &LoadOptions) -> Result<Loaded, LoadErrors> {
    load_with(dir, opts, Sizes::default())
}

pub(crate) fn load_with(dir: &Path, opts: &LoadOptions, sizes: Sizes) -> Result<Loaded, LoadErrors> {
    let mut b = Builder::new(opts, MAPPING_HELP);
    read(&dir.join("customers.csv"), Table::Customers, true, opts, &mut b, sizes);
    read(&dir.join("invoices.csv"), Table::Invoices, true, opts, &mut b, sizes);
    read(&dir.join("payments.csv"), Table::Payments, false, opts, &mut b, sizes);
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

const BOM: &[u8] = b"\xef\xbb\xbf";

/// Where to cut `data`, which starts at the start of a record, into chunks of about `chunk`
/// bytes: the cut points (each just after a line feed that ends a record), and the end of
/// the last record that is known to be complete (`None` when there is none).
///
/// Quotes are followed as the `csv` crate reads them: a quote opens a quoted field only at
/// the start of a field, `""` inside one is a quote, and elsewhere a quote is a character.
/// A cut is never placed before a byte-order mark (a fresh reader would drop it).
/// `first_quote` is where the first quote of `data` is (found by [`cuts_of`] already).
fn cut_points_from(
    data: &[u8],
    delimiter: u8,
    chunk: usize,
    first_quote: Option<usize>,
) -> (Vec<usize>, Option<usize>) {
    let len = data.len();
    let chunk = chunk.max(1);
    let mut cuts = Vec::new();
    let mut last_end = None;
    let mut next = chunk;
    let mut pos = 0;
    while pos <= len {
        // Outside quotes: every line feed before the next quote ends a record.
        let q = match pos {
            0 => first_quote,
            _ => data.get(pos..).and_then(|rest| memchr(b'"', rest)).map(|i| pos + i),
        }
        .unwrap_or(len);
        let outside = data.get(pos..q).unwrap_or_default();
        if let Some(n) = memrchr(b'\n', outside) {
            last_end = Some(pos + n + 1);
        }
        while next < q {
            let from = next.max(pos);
            match data.get(from..q).and_then(|s| memchr(b'\n', s)) {
                Some(n) => {
                    let cut = from + n + 1;
                    if data.get(cut..).is_some_and(|rest| rest.starts_with(BOM)) {
                        next = cut + 1;
                    } else {
                        cuts.push(cut);
                        next = cut + chunk;
                    }
                }
                None => break,
            }
        }
        if q >= len {
            break;
        }
        let field_start =
            q == 0 || matches!(data.get(q - 1), Some(b'\n' | b'\r')) || data.get(q - 1) == Some(&delimiter);
        pos = q + 1;
        if !field_start {
            continue;
        }
        // Inside a quoted field: skip to its closing quote.
        loop {
            let Some(i) = data.get(pos..).and_then(|rest| memchr(b'"', rest)) else { return (cuts, last_end) };
            let close = pos + i;
            match data.get(close + 1) {
                Some(b'"') => pos = close + 2,
                Some(_) => {
                    pos = close + 1;
                    break;
                }
                None => return (cuts, last_end),
            }
        }
    }
    (cuts, last_end)
}

/// The line of a record whose reading started at `pos`: the `csv` crate counts from where
/// the previous record stopped, before the line feed of a `\r\n` and before blank lines.
fn record_line(data: &[u8], pos: &csv::Position) -> usize {
    let mut line = pos.line() as usize;
    for &c in data.get(pos.byte() as usize..).unwrap_or_default() {
        match c {
            b'\n' => line += 1,
            b'\r' => {}
            _ => break,
        }
    }
    line
}

/// [`cut_points_from`], finding the first quote itself.
#[cfg(test)]
fn cut_points(data: &[u8], delimiter: u8, chunk: usize) -> (Vec<usize>, Option<usize>) {
    cut_points_from(data, delimiter, chunk, memchr(b'"', data))
}

fn syntax_error(file: &str, e: &csv::Error, data: &[u8]) -> LoadError {
    let (message, help) = match e.kind() {
        csv::ErrorKind::Utf8 { .. } => {
            ("the line is not valid UTF-8 text".to_string(), "save the file as UTF-8 (in Excel: CSV UTF-8)".to_string())
        }
        _ => (format!("cannot read the CSV: {e}"), "check that the file is a CSV export".to_string()),
    };
    let mut err = LoadError::file(LoadErrorKind::Syntax, file.to_string(), message, Some(help));
    err.line = e.position().map(|p| record_line(data, p));
    err
}

fn csv_reader(data: &[u8], delimiter: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).flexible(true).from_reader(data)
}

/// Reads until `buf` holds `want` bytes or the file ends; whether it ended.
fn fill(file: &mut File, buf: &mut Vec<u8>, want: usize) -> std::io::Result<bool> {
    if buf.len() >= want {
        return Ok(false);
    }
    let missing = want - buf.len();
    buf.reserve(missing.min(64 << 20));
    let read = file.by_ref().take(missing as u64).read_to_end(buf)?;
    Ok(read < missing)
}

/// Reads up to `block` more bytes into `buf`; whether the file ended.
fn fill_more(file: &mut File, buf: &mut Vec<u8>, block: usize) -> std::io::Result<bool> {
    let want = buf.len() + block;
    fill(file, buf, want)
}

/// Parses one chunk (a run of whole records); lines are counted from the chunk's start.
/// Also returns the number of line feeds in the chunk.
/// `structural`: every quote of the chunk opens or closes a field (see [`quoted`]), so that
/// a chunk with quotes is split by [`quoted::parse`] rather than by the `csv` crate.
fn parse_chunk(
    data: &[u8],
    delimiter: u8,
    width: usize,
    file: &str,
    structural: bool,
    mut sink: RowSink<'_>,
) -> (Part, usize) {
    // A record ends at a line feed (or at the end of the data): room for that many rows up
    // front, so that the rows are never moved to a larger buffer.
    let lines = memchr_iter(b'\n', data).count();
    sink.reserve(lines + usize::from(data.last().is_some_and(|&c| c != b'\n')));
    match plain_text(data, delimiter) {
        Some(text) => parse_plain(text, delimiter, width, &mut sink),
        None => match quoted_text(data, delimiter).filter(|_| structural) {
            Some(text) => quoted::parse(text, delimiter, width, &mut sink),
            None => parse_csv(data, delimiter, width, file, &mut sink),
        },
    }
    (sink.finish(), lines)
}

/// Whether a delimiter can be split on without the `csv` crate: an ASCII character other
/// than a quote or a line break.
fn usable(delimiter: u8) -> bool {
    delimiter.is_ascii() && !matches!(delimiter, b'"' | b'\r' | b'\n')
}

/// `data` as text for [`quoted::parse`]: valid UTF-8 without a byte-order mark at the start,
/// and a usable delimiter.
fn quoted_text(data: &[u8], delimiter: u8) -> Option<&str> {
    if !usable(delimiter) || data.starts_with(BOM) {
        return None;
    }
    std::str::from_utf8(data).ok()
}

/// [`cut_points_from`], and whether every quote of `data` is structural (see [`quoted`]): when
/// there are quotes, they are followed 64 bytes at a time by [`quoted::cut_points`], and
/// quote by quote only when one of them is not structural.
fn cuts_of(data: &[u8], delimiter: u8, chunk: usize) -> (Vec<usize>, Option<usize>, bool) {
    let first_quote = memchr(b'"', data);
    if usable(delimiter)
        && first_quote.is_some()
        && let Some((cuts, last_end)) = quoted::cut_points(data, delimiter, chunk, BOM)
    {
        return (cuts, last_end, true);
    }
    let (cuts, last_end) = cut_points_from(data, delimiter, chunk, first_quote);
    (cuts, last_end, false)
}

/// `data` as text when the `csv` crate would read it as plain lines split at the delimiter:
/// valid UTF-8 with no quote and no byte-order mark at the start, and a delimiter that is an
/// ASCII character other than a quote or a line break.
fn plain_text(data: &[u8], delimiter: u8) -> Option<&str> {
    if !usable(delimiter) || data.starts_with(BOM) || memchr(b'"', data).is_some() {
        return None;
    }
    std::str::from_utf8(data).ok()
}

/// Reads a chunk without quotes as the `csv` crate does, without its state machine: `\r`,
/// `\n` and `\r\n` end a record, empty lines are skipped, a record is its bytes split at
/// the delimiter. The line of a record is one more than the line feeds before it.
fn parse_plain(text: &str, delimiter: u8, width: usize, sink: &mut RowSink<'_>) {
    let bytes = text.as_bytes();
    let mut fields: Vec<&str> = Vec::with_capacity(width + 1);
    let mut field_start = 0;
    let mut line_feeds = 0;
    for i in Separators::new(bytes, delimiter) {
        let c = bytes.get(i).copied().unwrap_or(b'\n');
        if c == delimiter {
            fields.push(field(text, field_start, i));
        } else {
            // A line break: ends the record, unless nothing came since the last one.
            if !fields.is_empty() || i > field_start {
                fields.push(field(text, field_start, i));
                record(&fields, line_feeds + 1, width, sink);
                fields.clear();
            }
            if c == b'\n' {
                line_feeds += 1;
            }
        }
        field_start = i + 1;
    }
    if !fields.is_empty() || field_start < bytes.len() {
        fields.push(field(text, field_start, bytes.len()));
        record(&fields, line_feeds + 1, width, sink);
    }
}

/// `text[start..end]`, where `start` and `end` are each 0, the text's length or next to an
/// ASCII separator: without the two character-boundary checks of `str::get` (with them,
/// ≈ 5 % of the loader's instructions: 1.5 M fields at 10^5 invoices).
#[inline(always)]
#[expect(unsafe_code, reason = "the field's ends are character boundaries by construction")]
pub(super) fn field(text: &str, start: usize, end: usize) -> &str {
    debug_assert!(text.is_char_boundary(start) && text.is_char_boundary(end));
    match text.as_bytes().get(start..end) {
        // SAFETY: `start` and `end` are 0, `text.len()`, the position of an ASCII byte or
        // the one after it. An ASCII byte is a whole character in UTF-8 (no byte of a
        // multi-byte character is below 0x80), so both are character boundaries of the
        // valid UTF-8 `text`, and the bytes between them are valid UTF-8.
        Some(b) => unsafe { std::str::from_utf8_unchecked(b) },
        None => "",
    }
}

/// The positions of the delimiter, `\n` and `\r` in a text, in order, found a block of
/// bytes at a time (cells are short: a call to `memchr` per cell costs more than this):
/// sixteen bytes with the processor's SSE2 comparisons on x86-64, eight bytes as one word
/// elsewhere.
struct Separators<'a> {
    bytes: &'a [u8],
    delimiter: u8,
    /// Where the block `bits` was read from.
    at: usize,
    /// The separators of that block not yet given (see [`Separators::block`]).
    bits: u64,
}

impl<'a> Separators<'a> {
    /// Bytes read at a time.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    const STEP: usize = 16;
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    const STEP: usize = 8;
    /// Bits of [`Separators::block`] per byte.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    const BITS: u32 = 1;
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    const BITS: u32 = 8;

    fn new(bytes: &'a [u8], delimiter: u8) -> Self {
        let mut s = Self { bytes, delimiter, at: 0, bits: 0 };
        s.bits = s.block(0);
        s
    }

    /// The separators among the [`Separators::STEP`] bytes at `at`: bit `k` set when byte
    /// `at + k` is one. Past the end the block is padded with zeros, which are not
    /// separators unless the delimiter is zero, so padding bytes are masked out.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    #[inline(always)]
    #[expect(unsafe_code, reason = "SSE2 intrinsics, which this target always has (cfg above)")]
    fn block(&self, at: usize) -> u64 {
        use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set_epi64x, _mm_set1_epi8};
        let rest = self.bytes.get(at..).unwrap_or_default();
        let halves = |w: &[u8; 16]| {
            let half = |h: Option<&[u8; 8]>| h.map_or(0, |h| i64::from_le_bytes(*h));
            (half(w.first_chunk()), half(w.last_chunk()))
        };
        let ((lo, hi), mask) = match rest.first_chunk::<16>() {
            Some(w) => (halves(w), u64::MAX),
            None => (halves(&zero_padded(rest)), (1u64 << rest.len()) - 1),
        };
        // SAFETY: these intrinsics only need SSE2, enabled for this build (see the cfg);
        // they read and write registers only.
        let found = unsafe {
            let v = _mm_set_epi64x(hi, lo);
            let eq = |byte: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(byte as i8));
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(eq(self.delimiter), eq(b'\n')), eq(b'\r')))
        };
        u64::from(found as u16) & mask
    }

    /// The separators among the eight bytes at `at`: bit 7 of each byte that is one.
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    #[inline(always)]
    fn block(&self, at: usize) -> u64 {
        word_separators(self.bytes, at, self.delimiter)
    }
}

/// The last bytes of a text (fewer than `N`), followed by zeros: the final block read by
/// [`Separators::block`] and [`word_separators`].
fn zero_padded<const N: usize>(rest: &[u8]) -> [u8; N] {
    let mut w = [0u8; N];
    for (to, from) in w.iter_mut().zip(rest) {
        *to = *from;
    }
    w
}

/// The separators among the eight bytes of `bytes` at `at`: bit 7 of each byte that is the
/// delimiter, `\n` or `\r` (exactly: no carry crosses bytes). Past the end the word is
/// padded with zeros, which are masked out.
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2", not(test)),
    expect(dead_code, reason = "the splitter off x86-64; tests compare it with the SSE2 one")
)]
#[inline(always)]
fn word_separators(bytes: &[u8], at: usize, delimiter: u8) -> u64 {
    let rest = bytes.get(at..).unwrap_or_default();
    let (x, mask) = match rest.first_chunk::<8>() {
        Some(w) => (u64::from_le_bytes(*w), u64::MAX),
        None => (u64::from_le_bytes(zero_padded(rest)), (1u64 << (8 * rest.len())) - 1),
    };
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const ONES: u64 = 0x0101_0101_0101_0101;
    let zero = |v: u64| !(((v & LOW7) + LOW7) | v | LOW7);
    let found = zero(x ^ (ONES * u64::from(delimiter))) | zero(x ^ (ONES * 0x0a)) | zero(x ^ (ONES * 0x0d));
    found & mask
}

impl Iterator for Separators<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.bits == 0 {
            self.at += Self::STEP;
            if self.at >= self.bytes.len() {
                return None;
            }
            self.bits = self.block(self.at);
        }
        let i = self.at + (self.bits.trailing_zeros() / Self::BITS) as usize;
        self.bits &= self.bits - 1;
        Some(i)
    }
}

/// Hands a record to the sink: skipped when blank, refused when its width is not the header's.
fn record(fields: &[&str], line: usize, width: usize, sink: &mut RowSink<'_>) {
    if fields.iter().all(|f| trim(f).is_empty()) {
        return;
    }
    if fields.len() != width {
        sink.field_count(line, fields.len());
        return;
    }
    sink.row(&PlainRow { fields, line });
}

/// Reads a chunk with the `csv` crate (quotes, byte-order mark, invalid UTF-8).
fn parse_csv(data: &[u8], delimiter: u8, width: usize, file: &str, sink: &mut RowSink<'_>) {
    let mut rdr = csv_reader(data, delimiter);
    let mut record = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let fatal = matches!(e.kind(), csv::ErrorKind::Io(_));
                sink.error(syntax_error(file, &e, data));
                if fatal {
                    break;
                }
                continue;
            }
        }
        let line = record.position().map_or(0, |p| record_line(data, p));
        if record.iter().all(|f| trim(f).is_empty()) {
            continue;
        }
        if record.len() != width {
            sink.field_count(line, record.len());
            continue;
        }
        sink.row(&CsvRow { record: &record, line });
    }
}

fn read(path: &Path, table: Table, required: bool, opts: &LoadOptions, b: &mut Builder<'_>, sizes: Sizes) {
    let mut file = match File::open(path) {
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
    let file_len = file.metadata().map_or(0, |m| m.len() as usize);
    let block = sizes.block.max(1);
    let mut buf = Vec::new();
    let mut eof = match fill(&mut file, &mut buf, block) {
        Ok(eof) => eof,
        Err(e) => {
            b.errors.push(io_error(path, &e));
            return;
        }
    };
    let file_name = display_name(path);
    // The first line whole, to detect the delimiter.
    while !eof && memchr(b'\n', &buf).is_none() {
        match fill_more(&mut file, &mut buf, block) {
            Ok(e) => eof = e,
            Err(e) => {
                b.errors.push(io_error(path, &e));
                return;
            }
        }
    }
    let delimiter = opts.delimiter.unwrap_or_else(|| detect_delimiter(&buf));

    // Header (read again with more bytes when it may not be whole).
    let mut record = csv::StringRecord::new();
    let data_start = loop {
        let mut rdr = csv_reader(&buf, delimiter);
        let read = rdr.read_record(&mut record);
        let end = rdr.position().byte() as usize;
        let whole = eof || matches!(read, Ok(true)) && end < buf.len();
        if !whole {
            match fill_more(&mut file, &mut buf, block) {
                Ok(e) => eof = e,
                Err(e) => {
                    b.errors.push(io_error(path, &e));
                    return;
                }
            }
            continue;
        }
        match read {
            Ok(true) => break end,
            Ok(false) => {
                b.errors.push(LoadError::file(
                    LoadErrorKind::MissingColumn,
                    file_name.clone(),
                    "the file is empty".to_string(),
                    Some(format!("the first line must name the columns of the {} table", table.name())),
                ));
                return;
            }
            Err(e) => {
                b.errors.push(syntax_error(&file_name, &e, &buf));
                return;
            }
        }
    };
    let headers: Vec<String> = record.iter().map(|h| h.trim_start_matches('\u{feff}').trim().to_string()).collect();
    let width = headers.len();
    let src = Source { file: file_name.clone(), sheet: None, headers, first_column: None };
    let Some(handle) = b.table(table, src) else { return };

    // Rows, block by block; `buf[start..]` starts at a record. The parts of a block are
    // merged while the chunks of the next one are converted, and the file's next block is
    // read meanwhile too (into `next`, starting with the current block's unread rest).
    let mut start = data_start;
    let mut lines_before = memchr_iter(b'\n', buf.get(..data_start).unwrap_or_default()).count();
    let mut consumed = 0;
    let mut reserved = false;
    let mut pending: Vec<(Part, usize)> = Vec::new();
    let mut next: Vec<u8> = Vec::new();
    // The cut points of the next block, found while this one is parsed.
    let mut next_cuts = None;
    loop {
        let region = buf.get(start..).unwrap_or_default();
        let (cuts, last_end, structural) = next_cuts.take().unwrap_or_else(|| cuts_of(region, delimiter, sizes.chunk));
        let end = match (eof, last_end) {
            (true, _) => region.len(),
            (false, Some(end)) => end,
            (false, None) => {
                // No whole record yet (a very long one): read more.
                match fill_more(&mut file, &mut buf, block) {
                    Ok(e) => eof = e,
                    Err(e) => {
                        b.errors.push(io_error(path, &e));
                        return;
                    }
                }
                continue;
            }
        };
        let mut bounds = Vec::with_capacity(cuts.len() + 2);
        bounds.push(0);
        bounds.extend(cuts.into_iter().filter(|&c| c < end));
        bounds.push(end);
        let chunks: Vec<&[u8]> = bounds.windows(2).filter_map(|w| region.get(w[0]..w[1])).collect();
        let Some((sinks, mut merger)) = b.split(handle) else { return };
        let rest = region.get(end..).unwrap_or_default();
        let (parts, read) = rayon::join(
            || {
                chunks
                    .par_iter()
                    .map(|data| parse_chunk(data, delimiter, width, &file_name, structural, sinks.sink()))
                    .collect()
            },
            || {
                for (part, lines) in pending.drain(..) {
                    merger.merge(part, lines_before);
                    lines_before += lines;
                }
                if eof {
                    return (Ok(true), None);
                }
                next.clear();
                next.extend_from_slice(rest);
                let read = fill(&mut file, &mut next, block);
                // The next region is `next` whole (see the end of the loop).
                let cuts = read.is_ok().then(|| cuts_of(&next, delimiter, sizes.chunk));
                (read, cuts)
            },
        );
        let (read, cuts) = read;
        next_cuts = cuts;
        pending = parts;
        consumed += start + end;
        if !reserved && end > 0 {
            // The capacity the whole file needs, estimated from this block; capacity that
            // ends up unused is never touched, so it costs address space only.
            reserved = true;
            let rows: usize = pending.iter().map(|(p, _)| p.len()).sum();
            let rest = file_len.saturating_sub(consumed);
            b.reserve(handle, rows + rest / end * rows + rest % end * rows / end + rows / 16 + 16);
        }
        if eof {
            break;
        }
        match read {
            Ok(e) => eof = e,
            Err(e) => {
                b.errors.push(io_error(path, &e));
                return;
            }
        }
        std::mem::swap(&mut buf, &mut next);
        start = 0;
    }
    for (part, lines) in pending {
        b.merge(part, lines_before);
        lines_before += lines;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use relance_engine::model::Portfolio;

    /// The reader's portfolio, sorted when the options ask for it.
    fn load_with(dir: &Path, opts: &LoadOptions, sizes: Sizes) -> Result<Portfolio, LoadErrors> {
        super::load_with(dir, opts, sizes).map(Loaded::into_portfolio)
    }

    /// One chunk for the whole file.
    const WHOLE: Sizes = Sizes { block: 1 << 24, chunk: 1 << 24 };

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn load_in(dir: &tempfile::TempDir, block: usize, chunk: usize) -> Result<Portfolio, LoadErrors> {
        load_with(dir.path(), &LoadOptions::default(), Sizes { block, chunk })
    }

    /// Where `csv` starts reading each record after the first, plus the end.
    fn record_starts(data: &[u8]) -> Vec<usize> {
        let mut rdr = csv_reader(data, b',');
        let mut rec = csv::ByteRecord::new();
        let mut out = Vec::new();
        while rdr.read_byte_record(&mut rec).unwrap() {
            out.push(rec.position().unwrap().byte() as usize);
        }
        out.remove(0);
        out.push(data.len());
        out
    }

    #[test]
    fn detects_the_delimiter_outside_quotes() {
        assert_eq!(detect_delimiter(b"id;name;\"a,b,c\"\n1;2;3"), b';');
        assert_eq!(detect_delimiter(b"id,name,segment"), b',');
        assert_eq!(detect_delimiter(b"id\tname\tsegment"), b'\t');
        assert_eq!(detect_delimiter(b"id"), b',');
    }

    #[test]
    fn cuts_only_between_records() {
        // A quoted field with line feeds and `""`, a quote inside an unquoted field, a quote
        // right after a closing one.
        let data = b"id,name\n1,\"a\nb \"\"c\"\"\n,d\"\n2,x\"y\n3,\"\"\"\n\"\"\"\n4,\"q\"z\n";
        let (cuts, last) = cut_points(data, b',', 1);
        assert_eq!(cuts, record_starts(data));
        assert_eq!(last, Some(data.len()));
        // A chunk is at least `chunk` bytes long.
        let (cuts, _) = cut_points(data, b',', 12);
        assert_eq!(cuts, [25, 41]);
        // Unterminated quoted field: the last complete record ends before it.
        let (cuts, last) = cut_points(b"a\n\"b\nc\nd", b',', 1);
        assert_eq!((cuts, last), (vec![2], Some(2)));
        // Never before a byte-order mark.
        let (cuts, _) = cut_points(b"a\n\xef\xbb\xbfb\nc\n", b',', 1);
        assert_eq!(cuts, [7, 9]);
        // The same with quotes, 64 bytes at a time.
        for (data, chunk) in [(&b"\"a\nb\",x\n\xef\xbb\xbfy\n\"\"\n"[..], 2), (b"\"a\",\"b\"\r\n\"c\"", 3)] {
            assert_eq!(quoted::cut_points(data, b',', chunk, BOM), Some(cut_points(data, b',', chunk)), "{data:?}");
        }
        // A quote after a byte-order mark is a character for the `csv` crate: quote by quote.
        assert_eq!(quoted::cut_points(b"\"a\"\n\xef\xbb\xbf\"b\"\n", b',', 1, BOM), None);
    }

    #[test]
    fn only_the_extra_columns_asked_for_are_kept() {
        let customers = "id,name,segment,Region,group\nC1,A,sme,north,g1\nC2,B,sme,south,\n";
        let invoices = "id,customer_id,due_date,amount,currency,Chorus Status,project\nF1,C1,2026-01-10,10,EUR,x,p1\n";
        let dir = dir_with(&[("customers.csv", customers), ("invoices.csv", invoices)]);
        let keep = relance_engine::ExtraColumns {
            customer: ["region".to_string()].into(),
            invoice: ["chorus_status".to_string(), "po_number".to_string()].into(),
        };
        let opts = LoadOptions { extra_columns: Some(keep), ..LoadOptions::default() };
        let p = load_with(dir.path(), &opts, WHOLE).unwrap();
        let pairs = |e: &relance_engine::model::Extra| e.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>();
        assert_eq!(pairs(&p.customers[0].extra), ["region=north"]);
        assert_eq!(pairs(&p.customers[1].extra), ["region=south"]);
        assert_eq!(pairs(&p.invoices[0].extra), ["chorus_status=x"]);
        // Without the option, every column.
        let p = load_with(dir.path(), &LoadOptions::default(), WHOLE).unwrap();
        assert_eq!(pairs(&p.customers[0].extra), ["group=g1", "region=north"]);
        assert_eq!(pairs(&p.invoices[0].extra), ["chorus_status=x", "project=p1"]);
    }

    #[test]
    fn the_terms_are_kept_as_an_extra_column_only_when_asked_for() {
        let customers = "id,name,segment\nC1,A,sme\n";
        // A column headed `terms` that the mapping does not read: not the terms.
        let invoices = "id,customer_id,issue_date,due_date,amount,currency,Payment Terms,terms\n\
                        F1,C1,2026-01-10,,10,EUR,30 days net,x\n\
                        F2,C1,2026-01-10,2026-05-01,10,EUR,90 days net,y\n\
                        F3,C1,2026-01-10,2026-02-01,10,EUR,,z\n";
        let dir = dir_with(&[("customers.csv", customers), ("invoices.csv", invoices)]);
        let mut mapping = super::super::ColumnMapping::default();
        mapping.invoices.insert("terms".into(), "Payment Terms".into());
        let d = |m, day| chrono::NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        for (keep, kept) in [(Some(false), false), (Some(true), true), (None, true)] {
            let extra_columns = keep.map(|terms| relance_engine::ExtraColumns {
                customer: Default::default(),
                invoice: if terms { ["terms".to_string()].into() } else { Default::default() },
            });
            let opts = LoadOptions {
                mapping: mapping.clone(),
                extra_columns,
                fr_cap_warnings: true,
                ..LoadOptions::default()
            };
            let p = load_with(dir.path(), &opts, WHOLE).unwrap();
            // The due date computed from the terms, and the warning of terms beyond the cap,
            // whether the terms are kept or not.
            let dues: Vec<_> = p.invoices.iter().map(|i| i.due_date).collect();
            assert_eq!(dues, [d(2, 9), d(5, 1), d(2, 1)], "{keep:?}");
            assert_eq!(p.warnings.len(), 1, "{keep:?}: {:?}", p.warnings);
            assert!(p.warnings[0].contains("`F2`"), "{:?}", p.warnings);
            let terms: Vec<_> = p.invoices.iter().map(|i| i.extra.get("terms")).collect();
            let want = if kept { [Some("30 days net"), Some("90 days net"), None] } else { [None; 3] };
            assert_eq!(terms, want, "{keep:?}");
            // No other column: the mapped header is the field's, not an extra column.
            assert!(p.invoices.iter().all(|i| i.extra.iter().all(|(k, _)| k == "terms")), "{keep:?}");
        }
    }

    const CUSTOMERS: &str =
        "id,name,segment\nC1,\"Dupont, \"\"le grand\"\"\nsecond line\",smb\nC2,Martin,key\nC3,\"x\n\ny\",smb\n";

    #[test]
    fn a_quoted_field_across_chunks_loads_as_in_one_piece() {
        let invoices = "id,customer_id,due_date,amount,currency,po\nF1,C1,2026-01-10,10.00,EUR,\"P\nO\"\nF2,C3,2026-01-11,20.00,EUR,\n";
        let dir = dir_with(&[("customers.csv", CUSTOMERS), ("invoices.csv", invoices)]);
        let whole = load_in(&dir, WHOLE.block, WHOLE.chunk).unwrap();
        assert_eq!(whole.customers[0].name, "Dupont, \"le grand\"\nsecond line");
        assert_eq!(whole.customers[2].name, "x\n\ny");
        assert_eq!(whole.invoices[0].extra.get("po"), Some("P\nO"));
        for (block, chunk) in [(1, 1), (3, 2), (7, 5), (16, 1), (64, 8)] {
            assert_eq!(load_in(&dir, block, chunk).unwrap(), whole, "block {block}, chunk {chunk}");
        }
    }

    proptest! {
        /// Extra columns in any header order, each cell filled, empty or blank, with or
        /// without spaces around its text: every invoice has the filled ones, trimmed, by
        /// name, and a repeated currency reads the same from the loader's recent codes as
        /// the first time.
        #[test]
        fn extra_columns_and_currencies_load_as_written(
            rows in proptest::collection::vec(
                (proptest::collection::vec(proptest::option::of("[a-z]{1,3}"), 3), prop_oneof![Just("EUR"), Just("usd"), Just("GBP"), Just("CHF"), Just("JPY"), Just("SEK")]),
                1..40,
            ),
            pads in proptest::collection::vec(prop_oneof![Just(""), Just(" "), Just("\t"), Just("  ")], 8),
        ) {
            let mut invoices = String::from("id,customer_id,zone,due_date,amount,currency,po,agent\n");
            for (i, (extra, currency)) in rows.iter().enumerate() {
                let pad = |k: usize| pads[(i + k) % pads.len()];
                let cell = |k: usize| format!("{}{}{}", pad(k), extra[k].clone().unwrap_or_default(), pad(k + 1));
                invoices.push_str(&format!("F{i},{}C2{},{},2026-01-10,10,{currency},{},{}\n", pad(3), pad(4), cell(0), cell(1), cell(2)));
            }
            let dir = dir_with(&[("customers.csv", CUSTOMERS), ("invoices.csv", &invoices)]);
            let p = load_in(&dir, WHOLE.block, WHOLE.chunk).unwrap();
            for (inv, (extra, currency)) in p.invoices.iter().zip(&rows) {
                let want: std::collections::BTreeMap<&str, &str> = ["zone", "po", "agent"]
                    .iter()
                    .zip(extra)
                    .filter_map(|(k, v)| Some((*k, v.as_deref()?)))
                    .collect();
                let got: std::collections::BTreeMap<&str, &str> = inv.extra.iter().collect();
                prop_assert_eq!(got, want);
                prop_assert!(inv.extra.keys().is_sorted());
                prop_assert_eq!(inv.customer_id.as_str(), "C2");
                prop_assert_eq!(inv.currency.code(), currency.to_ascii_uppercase());
            }
        }
    }

    #[test]
    fn errors_in_several_chunks_keep_their_lines() {
        let invoices = "id,customer_id,due_date,amount,currency\n\
                        F1,C1,2026-01-10,10.00,EUR\n\
                        F2,C1,not a date,10.00,EUR\n\
                        F3,C2,2026-01-10,10.00,EUR\n\
                        F4,C2,2026-01-10,10.00,EUR\n\
                        F5,\"C\n2\",2026-01-10,10.00,EUR\n\
                        F6,C2,2026-01-10,ten,EUR\n\
                        F7,C2,2026-01-10\n\
                        F3,C3,2026-01-10,10.00,EUR\n";
        let dir = dir_with(&[("customers.csv", CUSTOMERS), ("invoices.csv", invoices)]);
        let whole = load_in(&dir, WHOLE.block, WHOLE.chunk).unwrap_err();
        let found: Vec<(Option<usize>, LoadErrorKind)> = whole.errors.iter().map(|e| (e.line, e.kind)).collect();
        assert_eq!(
            found,
            [
                (Some(3), LoadErrorKind::BadDate),
                (Some(6), LoadErrorKind::UnknownCustomer),
                (Some(8), LoadErrorKind::BadAmount),
                (Some(9), LoadErrorKind::FieldCount),
                (Some(10), LoadErrorKind::DuplicateId),
            ]
        );
        assert_eq!(whole.errors[4].message, "the invoice id `F3` is already used on line 4");
        for (block, chunk) in [(1, 1), (5, 3), (40, 30), (100, 1)] {
            assert_eq!(load_in(&dir, block, chunk).unwrap_err(), whole, "block {block}, chunk {chunk}");
        }
    }

    #[test]
    fn repeated_payment_ids_and_unknown_invoices_are_reported_against_the_first_row() {
        let invoices = "id,customer_id,due_date,amount,currency\nF1,C1,2026-01-10,10.00,EUR\n";
        let payments = "id,invoice_id,date,amount\nP1,F1,2026-02-01,1.00\n,F1,2026-02-02,1.00\nP2,F9,2026-02-02,1.00\n,F1,2026-02-03,1.00\nP1,F1,2026-02-04,1.00\n";
        let dir = dir_with(&[("customers.csv", CUSTOMERS), ("invoices.csv", invoices), ("payments.csv", payments)]);
        let whole = load_in(&dir, WHOLE.block, WHOLE.chunk).unwrap_err();
        let found: Vec<(Option<usize>, LoadErrorKind, &str)> =
            whole.errors.iter().map(|e| (e.line, e.kind, e.message.as_str())).collect();
        assert_eq!(
            found,
            [
                (Some(4), LoadErrorKind::UnknownInvoice, "no invoice has the id `F9`"),
                (Some(6), LoadErrorKind::DuplicateId, "the payment id `P1` is already used on line 2"),
            ]
        );
        assert_eq!(load_in(&dir, 3, 2).unwrap_err(), whole);
    }

    #[test]
    fn payment_ids_that_go_up_are_not_indexed_and_one_repeat_after_them_is_found() {
        // Ids going up strictly cannot repeat: no index is built for them. A repeat of the
        // last id breaks the order, and the index finds its first row.
        let invoices = "id,customer_id,due_date,amount,currency
F1,C1,2026-01-10,10.00,EUR
";
        let rows: String = (1..=40).map(|k| format!("P{k:03},F1,2026-02-01,0.10\n")).collect();
        let going_up = format!("id,invoice_id,date,amount\n{rows}");
        let dir = dir_with(&[("customers.csv", CUSTOMERS), ("invoices.csv", invoices), ("payments.csv", &going_up)]);
        assert_eq!(load_in(&dir, WHOLE.block, WHOLE.chunk).unwrap().payments.len(), 40);
        let repeated = format!("{going_up}P040,F1,2026-02-02,0.10\n");
        let dir = dir_with(&[("customers.csv", CUSTOMERS), ("invoices.csv", invoices), ("payments.csv", &repeated)]);
        let err = load_in(&dir, WHOLE.block, WHOLE.chunk).unwrap_err();
        let found: Vec<(Option<usize>, &str)> = err.errors.iter().map(|e| (e.line, e.message.as_str())).collect();
        assert_eq!(found, [(Some(42), "the payment id `P040` is already used on line 41")]);
    }

    #[test]
    fn payments_listed_by_invoice_find_their_invoices_as_payments_in_any_order() {
        // Invoice ids going up and payments listed by invoice: the loader walks the invoices
        // in step with the payments instead of indexing their ids. Listed in reverse, the
        // same payments go through the index: the same invoices, warnings and errors.
        let mut invoices = String::from("id,customer_id,due_date,amount,currency\n");
        for k in 0..9_000 {
            invoices.push_str(&format!("F{:05},C1,2026-01-10,10.00,EUR\n", 3 * k));
        }
        // One payment in 200 names an invoice that does not exist (a number not a multiple
        // of 3), from the first id on; and the last ones name numbers past the last invoice.
        let number = |k: u32| if k.is_multiple_of(200) { 3 * k + 1 } else { 3 * k };
        let paid: Vec<String> = (0..9_005).map(|k| format!("F{:05},2026-02-01,{}\n", number(k), 4 + k % 9)).collect();
        let load = |rows: &[String]| {
            let payments = format!("invoice_id,date,amount\n{}", rows.concat());
            let dir =
                dir_with(&[("customers.csv", CUSTOMERS), ("invoices.csv", &invoices), ("payments.csv", &payments)]);
            load_in(&dir, WHOLE.block, WHOLE.chunk)
        };
        let err = load(&paid).unwrap_err();
        let reversed: Vec<String> = paid.iter().rev().cloned().collect();
        let err_reversed = load(&reversed).unwrap_err();
        let messages = |e: &LoadErrors| {
            let mut m: Vec<String> = e.errors.iter().map(|e| format!("{:?} {}", e.kind, e.message)).collect();
            m.sort();
            m
        };
        assert_eq!(messages(&err), messages(&err_reversed));
        assert_eq!(err.errors.len(), 46 + 4);
        assert!(err.errors.iter().all(|e| e.kind == LoadErrorKind::UnknownInvoice));
        assert_eq!(err.errors[0].line, Some(2), "{:?}", err.errors[0]);
        assert_eq!(err.errors[0].message, "no invoice has the id `F00001`");
        assert_eq!(err.errors[49].message, "no invoice has the id `F27012`", "{:?}", err.errors[49]);
        // Only the payments of existing invoices: both orders load the same.
        let known: Vec<String> = paid
            .iter()
            .filter(|p| p[1..6].parse::<u32>().is_ok_and(|n| n.is_multiple_of(3) && n < 27_000))
            .cloned()
            .collect();
        let sorted = load(&known).unwrap();
        let reversed: Vec<String> = known.iter().rev().cloned().collect();
        let mut other = load(&reversed).unwrap();
        assert_eq!(sorted.invoices, other.invoices);
        other.payments.reverse();
        assert_eq!(sorted.payments, other.payments);
        // The overpayment warnings in invoice order either way: added up in the pass over
        // the invoices (three runs of them here), or from the index.
        assert_eq!(sorted.warnings, other.warnings);
        assert!(sorted.warnings.len() > 2, "payments above 10.00 give warnings");
    }

    #[test]
    fn unknown_customers_and_repeated_invoice_ids_are_found_across_many_rows() {
        // More invoices than one run of the reference checks (4096), errors in several runs.
        let mut invoices = String::from("id,customer_id,due_date,amount,currency\n");
        for k in 0..10_000 {
            let customer = if k == 4095 || k == 4096 || k == 9_999 { "C404" } else { "C1" };
            let id = if k == 8_000 { "F00005".to_string() } else { format!("F{k:05}") };
            invoices.push_str(&format!("{id},{customer},2026-01-10,10.00,EUR\n"));
        }
        let dir = dir_with(&[("customers.csv", CUSTOMERS), ("invoices.csv", &invoices)]);
        let err = load_in(&dir, WHOLE.block, WHOLE.chunk).unwrap_err();
        let found: Vec<(Option<usize>, LoadErrorKind, &str)> =
            err.errors.iter().map(|e| (e.line, e.kind, e.message.as_str())).collect();
        let unknown = (LoadErrorKind::UnknownCustomer, "no customer has the id `C404`");
        assert_eq!(
            found,
            [
                (Some(4097), unknown.0, unknown.1),
                (Some(4098), unknown.0, unknown.1),
                (Some(8002), LoadErrorKind::DuplicateId, "the invoice id `F00005` is already used on line 7"),
                (Some(10_001), unknown.0, unknown.1),
            ]
        );
    }

    #[test]
    fn repeated_and_unknown_customers_are_reported_the_same_whatever_the_ids_shape() {
        // Account numbers of one shape (found by number) and ids of mixed shapes (by hash).
        for (a, b, c, unknown) in [("C01", "C02", "C03", "C04"), ("C01", "CX2", "C003", "C4")] {
            let customers = format!("id,name,segment\n{a},A,sme\n{b},B,sme\n{a},A again,sme\n{c},C,sme\n");
            let invoices = format!(
                "id,customer_id,due_date,amount,currency\nF1,{a},2026-01-10,10.00,EUR\nF2,{unknown},2026-01-10,10.00,EUR\nF3,{c},2026-01-10,10.00,EUR\n"
            );
            let dir = dir_with(&[("customers.csv", &customers), ("invoices.csv", &invoices)]);
            let err = load_in(&dir, WHOLE.block, WHOLE.chunk).unwrap_err();
            let found: Vec<(&str, Option<usize>, LoadErrorKind, String)> =
                err.errors.iter().map(|e| (e.file.as_str(), e.line, e.kind, e.message.clone())).collect();
            assert_eq!(
                found,
                [
                    (
                        "customers.csv",
                        Some(4),
                        LoadErrorKind::DuplicateId,
                        format!("the customer id `{a}` is already used on line 2")
                    ),
                    (
                        "invoices.csv",
                        Some(3),
                        LoadErrorKind::UnknownCustomer,
                        format!("no customer has the id `{unknown}`")
                    ),
                ]
            );
        }
    }

    #[test]
    fn payment_kinds_in_any_spelling() {
        use relance_engine::model::PaymentKind;
        let invoices = "id,customer_id,due_date,amount,currency\nF1,C1,2026-01-10,100.00,EUR\n";
        let kinds = [
            "payment",
            "PAYMENT",
            "Paiement",
            "règlement",
            "",
            "credit_note",
            "Credit-Note",
            " CREDIT_NOTE ",
            "avoir",
            "creditnote",
        ];
        let mut payments = String::from("invoice_id,date,amount,kind\n");
        for k in kinds {
            payments.push_str(&format!("F1,2026-02-01,1.00,{k}\n"));
        }
        let dir = dir_with(&[("customers.csv", CUSTOMERS), ("invoices.csv", invoices), ("payments.csv", &payments)]);
        let p = load_in(&dir, WHOLE.block, WHOLE.chunk).unwrap();
        let found: Vec<PaymentKind> = p.payments.iter().map(|x| x.kind).collect();
        let (pay, credit) = (PaymentKind::Payment, PaymentKind::CreditNote);
        assert_eq!(found, [pay, pay, pay, pay, pay, credit, credit, credit, credit, credit]);
        let bad = "invoice_id,date,amount,kind\nF1,2026-02-01,1.00,payments\n";
        let dir = dir_with(&[("customers.csv", CUSTOMERS), ("invoices.csv", invoices), ("payments.csv", bad)]);
        let err = load_in(&dir, WHOLE.block, WHOLE.chunk).unwrap_err();
        assert_eq!(err.errors[0].kind, LoadErrorKind::BadPaymentKind);
    }

    #[test]
    fn crlf_and_blank_lines_count_as_lines() {
        let invoices = "id,customer_id,due_date,amount,currency\r\n\
                        F1,C1,2026-01-10,10.00,EUR\r\n\
                        \r\n\
                        \r\n\
                        F2,C1,2026-13-10,10.00,EUR\r\n\
                        F3,C1,2026-01-10,-1,EUR\r\n";
        let dir = dir_with(&[("customers.csv", CUSTOMERS), ("invoices.csv", invoices)]);
        let whole = load_in(&dir, WHOLE.block, WHOLE.chunk).unwrap_err();
        let lines: Vec<Option<usize>> = whole.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [Some(5), Some(6)]);
        for (block, chunk) in [(1, 1), (9, 4), (50, 20)] {
            assert_eq!(load_in(&dir, block, chunk).unwrap_err(), whole, "block {block}, chunk {chunk}");
        }
    }

    #[test]
    fn french_exports_with_a_mapping_load_the_same_in_tiny_chunks() {
        // `;`, decimal comma, dd/mm/yyyy, mapped headers, CRLF in payments.csv.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/csv_fr");
        let mut options = LoadOptions::default();
        super::super::mapping::apply_file(&dir.join("portfolio.toml"), &mut options).unwrap();
        let whole = load_with(&dir, &options, WHOLE).unwrap();
        assert!(!whole.invoices.is_empty() && !whole.payments.is_empty());
        for (block, chunk) in [(1, 1), (13, 7), (200, 64)] {
            assert_eq!(
                load_with(&dir, &options, Sizes { block, chunk }).unwrap(),
                whole,
                "block {block}, chunk {chunk}"
            );
        }
        // Detected delimiter, same result.
        options.delimiter = None;
        assert_eq!(load_with(&dir, &options, Sizes { block: 5, chunk: 3 }).unwrap(), whole);
    }

    /// Invoices beyond the French legal cap get their warning while the rows are read: the
    /// warnings `terms::fr_cap_warnings` gives on the loaded portfolio, in row order, after
    /// the loader's other warnings, in chunks of any size; none unless asked.
    #[test]
    fn fr_cap_warnings_are_given_while_reading_in_row_order() {
        let terms = ["30 days net", "90 days net", "45 jours fin de mois", "end of month + 75", "nonsense", ""];
        let mut invoices = String::from("id,customer_id,issue_date,due_date,amount,currency,terms\n");
        for k in 0..300 {
            let issue = if k % 11 == 0 { String::new() } else { format!("2026-01-{:02}", k % 28 + 1) };
            invoices.push_str(&format!("F{k:04},C1,{issue},2026-03-01,100.00,EUR,{}\n", terms[k % 6]));
        }
        let dir = dir_with(&[
            ("customers.csv", "id,name,segment\nC1,Acme,sme\n"),
            ("invoices.csv", &invoices),
            // Paid beyond the amount: a warning of the loader's own.
            ("payments.csv", "invoice_id,date,amount\nF0001,2026-01-10,150.00\n"),
        ]);
        let plain = load_with(dir.path(), &LoadOptions::default(), WHOLE).unwrap();
        let mut want = plain.warnings.clone();
        want.extend(crate::terms::fr_cap_warnings(&plain, crate::terms::EomReading::default()));
        assert_eq!(plain.warnings.len(), 1, "{:?}", plain.warnings);
        assert!(want.len() > 60, "{want:?}");
        let opts = LoadOptions { fr_cap_warnings: true, ..LoadOptions::default() };
        for (block, chunk) in [(1 << 24, 1 << 24), (1, 1), (13, 7), (200, 64)] {
            let p = load_with(dir.path(), &opts, Sizes { block, chunk }).unwrap();
            assert_eq!(p.warnings, want, "block {block}, chunk {chunk}");
            assert_eq!(p.invoices, plain.invoices);
        }
    }

    /// A field: a plausible value or text with delimiters, quotes and line breaks, written
    /// bare or quoted.
    fn field(values: &'static [&'static str]) -> impl Strategy<Value = String> {
        let text = prop_oneof![proptest::sample::select(values).prop_map(str::to_string), "[a1 ,\"\n\r;é]{0,6}",];
        (text, any::<bool>()).prop_map(|(t, quoted)| if quoted { format!("\"{}\"", t.replace('"', "\"\"")) } else { t })
    }

    fn table(header: &'static str, columns: Vec<&'static [&'static str]>) -> impl Strategy<Value = String> {
        let row = columns.into_iter().map(field).collect::<Vec<_>>();
        let line = (row, prop_oneof![Just("\n"), Just("\r\n"), Just("\n\n")]);
        proptest::collection::vec(line, 0..12).prop_map(move |rows| {
            let mut out = format!("{header}\n");
            for (fields, end) in rows {
                out.push_str(&fields.join(","));
                out.push_str(end);
            }
            out
        })
    }

    /// The part `parse` makes of `data` for an invoices table with the header `header`.
    fn part_of(header: &[&str], data: &[u8], delimiter: u8, parse: fn(&[u8], u8, usize, &mut RowSink<'_>)) -> Part {
        let opts = LoadOptions { default_currency: Some(iso_currency::Currency::EUR), ..LoadOptions::default() };
        let mut b = Builder::new(&opts, "");
        let headers: Vec<String> = header.iter().map(|h| h.to_string()).collect();
        let src = Source { file: "invoices.csv".to_string(), sheet: None, headers, first_column: None };
        let handle = b.table(Table::Invoices, src).unwrap();
        let (sinks, _) = b.split(handle).unwrap();
        let mut sink = sinks.sink();
        parse(data, delimiter, header.len(), &mut sink);
        sink.finish()
    }

    fn by_csv(data: &[u8], delimiter: u8, width: usize, sink: &mut RowSink<'_>) {
        parse_csv(data, delimiter, width, "invoices.csv", sink);
    }

    fn by_plain(data: &[u8], delimiter: u8, width: usize, sink: &mut RowSink<'_>) {
        let text = plain_text(data, delimiter).unwrap();
        parse_plain(text, delimiter, width, sink);
    }

    fn by_quoted(data: &[u8], delimiter: u8, width: usize, sink: &mut RowSink<'_>) {
        let text = quoted_text(data, delimiter).unwrap();
        quoted::parse(text, delimiter, width, sink);
    }

    /// Rows of fields that are bare (`bare`: never with a quote) or quoted as a writer
    /// quotes them, or any text at all (`loose`), and line ends of every kind.
    fn quoted_rows(loose: bool) -> impl Strategy<Value = (String, bool, bool)> {
        let (bare, odd): (&str, &[&str]) = if loose {
            ("[a1 ,;\"\t\r\n\u{a0}é-]{0,5}", &["a\"b", "\"a\"b", "\"a\" \"b\"", "\"\"x", "x\"", "\"a\"\"\"b"])
        } else {
            ("[a1 ,;\t\r\n\u{a0}é-]{0,5}", &["F3"])
        };
        let value = prop_oneof![
            proptest::sample::select(&["F1", "F2", "C1", "2026-01-10", "2026-02-29", "12.50", "-3", "1 234,5", ""][..])
                .prop_map(str::to_string),
            bare,
            // Quotes that the `csv` crate reads as characters.
            proptest::sample::select(odd).prop_map(str::to_string),
        ];
        let quoted = "[a1 ,;\"\t\r\n\u{a0}é-]{0,6}".prop_map(|t| format!("\"{}\"", t.replace('"', "\"\"")));
        let field = prop_oneof![value, quoted];
        // Mostly as wide as `HEADER`, so that the fields are read, not only counted.
        let row = (
            prop_oneof![3 => proptest::collection::vec(field.clone(), 5..=5), 1 => proptest::collection::vec(field, 0..7)],
            // Without a line end, a row runs into the next one (loose text only).
            proptest::sample::select(if loose {
                &["", "\n", "\r\n", "\r", "\n\n", "\r\r\n"][..]
            } else {
                &["\n", "\r\n", "\r", "\n\n", "\r\r\n"][..]
            }),
        );
        (proptest::collection::vec(row, 0..10), any::<bool>()).prop_map(move |(rows, semicolon)| {
            let sep = if semicolon { ";" } else { "," };
            (rows.iter().map(|(fields, end)| format!("{}{end}", fields.join(sep))).collect(), semicolon, loose)
        })
    }

    proptest! {
        /// Quoted CSV split 64 bytes at a time gives the part the `csv` crate gives, cut at
        /// the same points, whenever its quotes are all structural, as they are in what CSV
        /// writers write.
        #[test]
        fn quoted_fields_give_the_part_the_csv_crate_gives(
            (data, semicolon, loose) in prop_oneof![quoted_rows(false), quoted_rows(true)],
            chunk in 1usize..40,
            padding in 0usize..70,
        ) {
            let delimiter = if semicolon { b';' } else { b',' };
            // Fields moved across the 64-byte blocks.
            let data = format!("{}{data}", "\n".repeat(padding));
            let bytes = data.as_bytes();
            let exact = cut_points(bytes, delimiter, chunk);
            match quoted::cut_points(bytes, delimiter, chunk, BOM) {
                Some(fast) => {
                    prop_assert_eq!(&fast, &exact);
                    let quoted = part_of(&HEADER, bytes, delimiter, by_quoted);
                    let csv = part_of(&HEADER, bytes, delimiter, by_csv);
                    prop_assert_eq!(quoted, csv, "{:?}", data);
                }
                // What writers write is never read quote by quote.
                None => prop_assert!(loose, "{:?}", data),
            }
        }

        #[test]
        fn separators_are_found_where_memchr_finds_them(text in proptest::collection::vec(prop_oneof![Just(b','), Just(b';'), Just(b'\n'), Just(b'\r'), Just(0u8), Just(b'a'), Just(0x8a), Just(0xac), any::<u8>()], 0..40), delimiter in prop_oneof![Just(b','), Just(b';'), Just(b'\t'), Just(0u8)]) {
            let found: Vec<usize> = Separators::new(&text, delimiter).collect();
            let expected: Vec<usize> = memchr::memchr3_iter(delimiter, b'\n', b'\r', &text).collect();
            prop_assert_eq!(found, expected);
        }

        /// The word-at-a-time splitter (used off x86-64) finds the same separators.
        #[test]
        fn word_separators_are_found_where_memchr_finds_them(text in proptest::collection::vec(prop_oneof![Just(b','), Just(b';'), Just(b'\n'), Just(b'\r'), Just(0u8), Just(b'a'), Just(0x8a), Just(0xac), any::<u8>()], 0..40), delimiter in prop_oneof![Just(b','), Just(b';'), Just(b'\t'), Just(0u8)]) {
            let mut found = Vec::new();
            for at in (0..text.len()).step_by(8) {
                let mut bits = word_separators(&text, at, delimiter);
                while bits != 0 {
                    found.push(at + (bits.trailing_zeros() / 8) as usize);
                    bits &= bits - 1;
                }
            }
            let expected: Vec<usize> = memchr::memchr3_iter(delimiter, b'\n', b'\r', &text).collect();
            prop_assert_eq!(found, expected);
        }
    }

    const HEADER: [&str; 5] = ["id", "customer_id", "due_date", "amount", "po"];

    #[test]
    fn plain_lines_read_as_the_csv_crate_reads_them() {
        let cases: [&[u8]; 8] = [
            b"F1,C1,2026-01-10,10.00,x\nF2,C1,2026-01-11,1,\n",
            b"\r\n\nF1,C1,2026-01-10,10.00,x\r\n\r\nF2,C1,bad,1,\rF3,C1,2026-01-10,1\n",
            b"F1,C1,2026-01-10,10.00,x",
            b"F1,C1,2026-01-10,10.00,",
            b" , , , , \n,,,,\n\t\nF1, C1 ,2026-01-10 , 10.00,\xc2\xa0\n",
            b"F1;C1,2026-01-10,10.00,x\nF\xc3\xa9,C1,2026-01-10,-1,x\r\r\n",
            b"",
            b"\n\r\n",
        ];
        for data in cases {
            assert_eq!(part_of(&HEADER, data, b',', by_plain), part_of(&HEADER, data, b',', by_csv), "{data:?}");
        }
        // Text the plain reader leaves to the csv crate.
        assert!(plain_text(b"F1,\"C1\"\n", b',').is_none());
        assert!(plain_text(b"\xef\xbb\xbfF1\n", b',').is_none());
        assert!(plain_text(b"F1,\xff\n", b',').is_none());
        assert!(plain_text(b"F1\n", b'"').is_none());
        assert!(plain_text(b"F1\n", 0xe9).is_none());
        assert!(plain_text(b"F1,C1\n", b',').is_some());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        #[test]
        fn chunked_parsing_gives_the_same_result_as_one_chunk(
            customers in table("id,name,segment,region", vec![&["C1", "C2", "C3"], &["Name", "A, B"], &["smb", ""], &["north", ""]]),
            invoices in table("id,customer_id,due_date,amount,currency,po_number", vec![
                &["F1", "F2", "F3", "F4"], &["C1", "C2", "C4"], &["2026-01-10", "10/01/2026"], &["12.50", "7"], &["EUR", "XXX"], &["PO-1", ""],
            ]),
            payments in table("invoice_id,date,amount", vec![&["F1", "F2", "F9"], &["2026-02-01"], &["1.00", "x"]]),
            block in 1usize..80,
            chunk in 1usize..40,
        ) {
            let dir = dir_with(&[("customers.csv", &customers), ("invoices.csv", &invoices), ("payments.csv", &payments)]);
            let whole = load_in(&dir, WHOLE.block, WHOLE.chunk);
            let chunked = load_in(&dir, block, chunk);
            prop_assert_eq!(chunked, whole);
        }

        #[test]
        fn plain_lines_give_the_part_the_csv_crate_gives(
            rows in proptest::collection::vec(
                (
                    proptest::collection::vec(
                        prop_oneof![
                            proptest::sample::select(&["F1", "F2", "C1", "2026-01-10", "2026-02-29", "12.50", "-3", "1 234,5", ""][..]).prop_map(str::to_string),
                            "[a1 ,;\t\r\n\u{a0}é-]{0,5}",
                        ],
                        0..7,
                    ),
                    prop_oneof![Just(""), Just("\n"), Just("\r\n"), Just("\r"), Just("\n\n"), Just("\r\r\n")],
                ),
                0..10,
            ),
            semicolon in any::<bool>(),
        ) {
            let delimiter = if semicolon { b';' } else { b',' };
            let sep = if semicolon { ";" } else { "," };
            let data: String = rows.iter().map(|(fields, end)| format!("{}{end}", fields.join(sep))).collect();
            let plain = part_of(&HEADER, data.as_bytes(), delimiter, by_plain);
            let csv = part_of(&HEADER, data.as_bytes(), delimiter, by_csv);
            prop_assert_eq!(plain, csv, "{:?}", data);
        }
    }
}
