//! A fast reader of the workbooks Excel, LibreOffice and most exporters write. The XML of
//! the sheets and of the shared strings is scanned byte by byte, not parsed event by event;
//! the common shapes of a cell are read in one pass. A sheet is never held whole: one thread
//! inflates it from the archive and cuts it into blocks after a row's end, parser threads
//! (one per processor) parse the blocks into batches of cells, and the loader takes their
//! rows in order ([`SheetRows`]), converting them while the next blocks are read and parsed.
//!
//! It reads only what it is sure to read as calamine does, and gives up ([`Fallback`]) on
//! anything else: an element or an attribute it does not expect, a prefixed element in a
//! sheet, a comment, CDATA, a text that calamine would change (a carriage return, an `_x…_`
//! escape), a value calamine reports as an error, an archive it cannot read. The caller then
//! reads the whole workbook again with calamine, which gives its result or its error, so a
//! workbook loads to the same portfolio, or to the same errors, whichever reader reads it
//! (tests compare the two on written workbooks of every shape, cut into many blocks).
//!
//! The workbook's own parts (relationships, `workbook.xml`, `styles.xml`) are small and read
//! whole with the same scanner, by local name as calamine does.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use calamine::{CellErrorType, ExcelDateTime, ExcelDateTimeType};
use chrono::NaiveDate;
use memchr::memmem;
use zip::ZipArchive;

use super::xlsx_reader::SheetRow;
use crate::recent::same_bytes;

/// This reader does not read the workbook as calamine would for sure: read it with calamine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fallback;

type Fast<T> = Result<T, Fallback>;

/// How a style shows numbers, as calamine sorts formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Other,
    DateTime,
    TimeDelta,
}

/// A cell's value. Texts are ranges of its batch's texts (shared strings are copied there
/// too), so a cell holds no allocation of its own.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    /// An inline, shared or formula text (`t="inlineStr"`, `"s"`, `"str"`).
    Text(u32, u32),
    /// An ISO date or time written as text (`t="d"`).
    IsoDate(u32, u32),
    Number(f64),
    /// A number in a date, time or duration format.
    Date(ExcelDateTime),
    /// A whole number of days in a date format: the number and its date (worked out by
    /// the parser, on its thread, as [`serial_day`]).
    Day(f64, NaiveDate),
    Bool(bool),
    Error(CellErrorType),
}

/// The shared strings, end to end in one text (of at most 4 GiB: each string's end is a
/// `u32`, half the memory of a `usize` for the million strings of a large export).
#[derive(Default)]
struct Strings {
    text: String,
    ends: Vec<u32>,
}

impl Strings {
    /// Where the string `k` is in the text.
    fn span(&self, k: usize) -> Option<(usize, usize)> {
        let end = *self.ends.get(k)? as usize;
        let start = match k.checked_sub(1) {
            Some(before) => *self.ends.get(before)? as usize,
            None => 0,
        };
        Some((start, end))
    }
}

/// An open workbook: its sheets, number formats and shared strings.
pub(super) struct Workbook {
    zip: ZipArchive<File>,
    /// Each sheet's name and the path of its XML in the archive (`None`: a sheet this reader
    /// leaves to calamine), in the workbook's order.
    sheets: Vec<(String, Option<String>)>,
    formats: Vec<Format>,
    is_1904: bool,
    strings: Strings,
}

impl Workbook {
    /// Opens the workbook at `path` and reads its parts, or gives up.
    pub(super) fn open(path: &Path) -> Fast<Workbook> {
        let file = File::open(path).map_err(|_| Fallback)?;
        let mut zip = ZipArchive::new(file).map_err(|_| Fallback)?;
        // The package names its workbook; calamine reads any name, this reader the usual one.
        let package = read_entry(&mut zip, "_rels/.rels")?.ok_or(Fallback)?;
        let mut target = None;
        each_tag(&package, |tag| {
            if !tag.close && tag.local() == b"Relationship" {
                let (typ, to) = (tag.attr(b"Type")?, tag.attr(b"Target")?);
                if let (Some(typ), Some(to)) = (typ, to)
                    && typ.ends_with(b"/relationships/officeDocument")
                {
                    target = Some(to.to_vec());
                }
            }
            Ok(())
        })?;
        if !matches!(target.as_deref(), Some(b"xl/workbook.xml" | b"/xl/workbook.xml")) {
            return Err(Fallback);
        }
        let strings = match zip.by_name("xl/sharedStrings.xml") {
            Ok(mut entry) => read_shared_strings(&mut entry)?,
            Err(zip::result::ZipError::FileNotFound) => Strings::default(),
            Err(_) => return Err(Fallback),
        };
        let formats = match read_entry(&mut zip, "xl/styles.xml")? {
            Some(xml) => read_formats(&xml)?,
            None => Vec::new(),
        };
        let rels = read_entry(&mut zip, "xl/_rels/workbook.xml.rels")?.ok_or(Fallback)?;
        let mut relationships: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = Vec::new();
        each_tag(&rels, |tag| {
            if !tag.close
                && tag.local() == b"Relationship"
                && let Some(id) = tag.attr(b"Id")?
            {
                let typ = tag.attr(b"Type")?.unwrap_or_default();
                let to = tag.attr(b"Target")?.unwrap_or_default();
                // calamine keeps these three as written: entities would differ.
                if [id, typ, to].iter().any(|v| v.contains(&b'&')) {
                    return Err(Fallback);
                }
                relationships.push((id.to_vec(), typ.to_vec(), to.to_vec()));
            }
            Ok(())
        })?;
        let book = read_entry(&mut zip, "xl/workbook.xml")?.ok_or(Fallback)?;
        let (mut sheets, mut is_1904) = (Vec::new(), false);
        each_tag(&book, |tag| {
            if tag.close {
                return Ok(());
            }
            match tag.local() {
                b"sheet" => {
                    let (mut raw_name, mut rel, mut state) = (None, &b""[..], &b"visible"[..]);
                    tag.each_attr(|k, v| match k {
                        b"name" => raw_name = Some(v),
                        b"state" => state = v,
                        k if local(k) == b"id" => rel = v,
                        _ => {}
                    })?;
                    if !matches!(state, b"visible" | b"hidden" | b"veryHidden") {
                        return Err(Fallback);
                    }
                    let mut name = String::new();
                    decode(raw_name.unwrap_or_default(), &mut name)?;
                    let (_, typ, to) = relationships.iter().rev().find(|(id, _, _)| id == rel).ok_or(Fallback)?;
                    // A sheet of a type calamine does not know is its error to report.
                    if ![&b"/worksheet"[..], b"/chartsheet", b"/dialogsheet"].iter().any(|t| typ.ends_with(t)) {
                        return Err(Fallback);
                    }
                    // Only worksheets have cells; a chart, or a path calamine would look up
                    // otherwise (`..`, another case), is left to calamine if it is read.
                    let path = match std::str::from_utf8(to) {
                        Ok(to) if typ.ends_with(b"/worksheet") && !to.contains('\\') && !to.contains("..") => {
                            Some(match to.strip_prefix('/') {
                                Some(absolute) => absolute.to_string(),
                                None => format!("xl/{to}"),
                            })
                        }
                        _ => None,
                    };
                    sheets.push((name, path));
                }
                b"workbookPr" => {
                    if let Some(v) = tag.attr(b"date1904")? {
                        is_1904 = v == b"1" || v == b"true";
                    }
                }
                _ => {}
            }
            Ok(())
        })?;
        Ok(Workbook { zip, sheets, formats, is_1904, strings })
    }

    /// The names of the sheets, in the workbook's order.
    pub(super) fn sheet_names(&self) -> Vec<String> {
        self.sheets.iter().map(|(name, _)| name.clone()).collect()
    }
}

/// The most bytes a part read whole (relationships, `workbook.xml`, `styles.xml`) may have
/// before this reader leaves the workbook to calamine: such parts are a few KB.
const LARGEST_PART: u64 = 64 << 20;

/// The bytes of the archive's part `name`, if it has one.
fn read_entry(zip: &mut ZipArchive<File>, name: &str) -> Fast<Option<Vec<u8>>> {
    let entry = match zip.by_name(name) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(_) => return Err(Fallback),
    };
    // The size the archive gives is the file's word: room is made for no more than the bound.
    let mut bytes = Vec::new();
    bytes.try_reserve(usize::try_from(entry.size().min(LARGEST_PART)).unwrap_or(0)).map_err(|_| Fallback)?;
    let read = entry.take(LARGEST_PART + 1).read_to_end(&mut bytes).map_err(|_| Fallback)?;
    if read as u64 > LARGEST_PART {
        return Err(Fallback);
    }
    Ok(Some(bytes))
}

/// Where a document's elements start: after a UTF-8 byte order mark and an XML declaration
/// (which must not name another encoding).
fn prolog(xml: &[u8]) -> Fast<usize> {
    let mut at = if xml.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    if xml.starts_with(b"\xFE\xFF") || xml.starts_with(b"\xFF\xFE") {
        return Err(Fallback);
    }
    let rest = xml.get(at..).unwrap_or_default();
    if rest.starts_with(b"<?xml") {
        let end = memmem::find(rest, b"?>").ok_or(Fallback)?;
        let decl = rest.get(..end).unwrap_or_default();
        if let Some(k) = memmem::find(decl, b"encoding") {
            let value = decl.get(k..).unwrap_or_default();
            let utf8 = value.windows(5).any(|w| w.eq_ignore_ascii_case(b"utf-8"))
                || value.windows(4).any(|w| w.eq_ignore_ascii_case(b"utf8"));
            if !utf8 {
                return Err(Fallback);
            }
        }
        at += end + 2;
    }
    Ok(at)
}

/// A start, end or empty-element tag.
#[derive(Debug, Clone, Copy)]
struct Tag<'a> {
    name: &'a [u8],
    attrs: &'a [u8],
    /// `</name>`.
    close: bool,
    /// `<name/>`.
    empty: bool,
}

/// The first `<` of `s`: a byte loop, as the distances in a sheet are a few bytes.
fn find_lt(s: &[u8]) -> Option<usize> {
    s.iter().position(|&c| c == b'<')
}

/// The first `pattern` (which starts with `<`) in `s`.
fn find_close(s: &[u8], pattern: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let k = at + find_lt(s.get(at..)?)?;
        if s.get(k..)?.starts_with(pattern) {
            return Some(k);
        }
        at = k + 1;
    }
}

fn local(name: &[u8]) -> &[u8] {
    match memchr::memrchr(b':', name) {
        Some(k) => name.get(k + 1..).unwrap_or_default(),
        None => name,
    }
}

impl<'a> Tag<'a> {
    fn local(&self) -> &'a [u8] {
        local(self.name)
    }

    /// Calls `f` with each attribute's name and raw value.
    fn each_attr(&self, mut f: impl FnMut(&'a [u8], &'a [u8])) -> Fast<()> {
        let mut rest = self.attrs;
        loop {
            rest = rest.trim_ascii_start();
            if rest.is_empty() {
                return Ok(());
            }
            let eq = rest.iter().position(|&c| c == b'=').ok_or(Fallback)?;
            let key = rest.get(..eq).unwrap_or_default().trim_ascii_end();
            let after = rest.get(eq + 1..).unwrap_or_default().trim_ascii_start();
            let quote = *after.first().ok_or(Fallback)?;
            if key.is_empty() || !(quote == b'"' || quote == b'\'') || key.iter().any(|c| c.is_ascii_whitespace()) {
                return Err(Fallback);
            }
            let body = after.get(1..).unwrap_or_default();
            let close = body.iter().position(|&c| c == quote).ok_or(Fallback)?;
            let value = body.get(..close).unwrap_or_default();
            if value.contains(&b'<') {
                return Err(Fallback);
            }
            f(key, value);
            rest = body.get(close + 1..).unwrap_or_default();
            if rest.first().is_some_and(|c| !c.is_ascii_whitespace()) {
                return Err(Fallback);
            }
        }
    }

    /// The raw value of the attribute `key`, if the tag has it.
    fn attr(&self, key: &[u8]) -> Fast<Option<&'a [u8]>> {
        let mut found = None;
        self.each_attr(|k, v| {
            if k == key && found.is_none() {
                found = Some(v);
            }
        })?;
        Ok(found)
    }
}

/// The tag at the start of `s` (which starts with `<`) and its length, or `None` when `s`
/// ends before the tag does.
fn parse_tag(s: &[u8]) -> Fast<Option<(Tag<'_>, usize)>> {
    let close = match s.get(1) {
        None => return Ok(None),
        Some(b'!' | b'?') => return Err(Fallback),
        Some(b'/') => true,
        Some(_) => false,
    };
    let from = if close { 2 } else { 1 };
    let body = s.get(from..).unwrap_or_default();
    let name_len = body.iter().position(|&c| c.is_ascii_whitespace() || c == b'/' || c == b'>').unwrap_or(body.len());
    if name_len == body.len() {
        return Ok(None);
    }
    if name_len == 0 {
        return Err(Fallback);
    }
    // The end of the tag, quotes skipped (a byte loop: tags are short, and a search call
    // costs more than it saves on a few bytes).
    let mut quote = 0u8;
    let mut end = None;
    for (k, &c) in s.iter().enumerate().skip(from + name_len) {
        if quote != 0 {
            if c == quote {
                quote = 0;
            }
        } else if c == b'"' || c == b'\'' {
            quote = c;
        } else if c == b'>' {
            end = Some(k);
            break;
        }
    }
    let Some(at) = end else { return Ok(None) };
    let empty = !close && at > 0 && s.get(at - 1) == Some(&b'/');
    let attrs_end = if empty { at - 1 } else { at };
    let tag = Tag {
        name: s.get(from..from + name_len).unwrap_or_default(),
        attrs: s.get(from + name_len..attrs_end.max(from + name_len)).unwrap_or_default(),
        close,
        empty,
    };
    if close && !tag.attrs.trim_ascii().is_empty() {
        return Err(Fallback);
    }
    Ok(Some((tag, at + 1)))
}

/// The tags of a whole document in order, each with the text before it.
struct Tags<'a> {
    xml: &'a [u8],
    pos: usize,
}

impl<'a> Tags<'a> {
    fn new(xml: &'a [u8]) -> Fast<Self> {
        Ok(Tags { xml, pos: prolog(xml)? })
    }

    fn next(&mut self) -> Fast<Option<(&'a [u8], Tag<'a>)>> {
        let rest = self.xml.get(self.pos..).unwrap_or_default();
        let Some(lt) = find_lt(rest) else { return Ok(None) };
        let (tag, len) = parse_tag(rest.get(lt..).unwrap_or_default())?.ok_or(Fallback)?;
        self.pos += lt + len;
        Ok(Some((rest.get(..lt).unwrap_or_default(), tag)))
    }
}

/// Calls `f` with each tag of a whole document.
fn each_tag<'a>(xml: &'a [u8], mut f: impl FnMut(Tag<'a>) -> Fast<()>) -> Fast<()> {
    let mut tags = Tags::new(xml)?;
    while let Some((_, tag)) = tags.next()? {
        f(tag)?;
    }
    Ok(())
}

/// Appends `raw` to `out` with its entities replaced. A carriage return (which an XML reader
/// turns into a line feed) or an unknown entity gives up.
fn decode(raw: &[u8], out: &mut String) -> Fast<()> {
    let mut rest = raw;
    while let Some(k) = rest.iter().position(|&c| c == b'&' || c == b'\r') {
        out.push_str(std::str::from_utf8(rest.get(..k).unwrap_or_default()).map_err(|_| Fallback)?);
        if rest.get(k) == Some(&b'\r') {
            return Err(Fallback);
        }
        let after = rest.get(k + 1..).unwrap_or_default();
        let semi = after.iter().take(12).position(|&c| c == b';').ok_or(Fallback)?;
        let c = match after.get(..semi).unwrap_or_default() {
            b"lt" => '<',
            b"gt" => '>',
            b"amp" => '&',
            b"quot" => '"',
            b"apos" => '\'',
            num => {
                let code = match num {
                    [b'#', b'x', hex @ ..] => u32::from_str_radix(std::str::from_utf8(hex).map_err(|_| Fallback)?, 16),
                    [b'#', dec @ ..] => std::str::from_utf8(dec).map_err(|_| Fallback)?.parse(),
                    _ => return Err(Fallback),
                }
                .map_err(|_| Fallback)?;
                match char::from_u32(code) {
                    Some(c) if !c.is_control() || c == '\t' || c == '\n' => c,
                    _ => return Err(Fallback),
                }
            }
        };
        out.push(c);
        rest = after.get(semi + 1..).unwrap_or_default();
    }
    out.push_str(std::str::from_utf8(rest).map_err(|_| Fallback)?);
    Ok(())
}

/// Appends to `out` the text of a string element (`<si>` or `<is>`, whose start was just
/// read), as calamine reads it: the texts of its `<t>` elements (those of a phonetic run
/// `<rPh>` left out) end to end, each trimmed of ASCII spaces unless `xml:space="preserve"`.
fn read_string(tags: &mut Tags<'_>, closing: &[u8], out: &mut String) -> Fast<()> {
    let mut phonetic = false;
    loop {
        let (_, tag) = tags.next()?.ok_or(Fallback)?;
        if tag.close {
            if tag.name == closing {
                return Ok(());
            }
            if tag.local() == b"rPh" {
                phonetic = false;
            }
            continue;
        }
        match tag.local() {
            b"rPh" if !tag.empty => phonetic = true,
            b"t" if !phonetic => {
                let preserve = tag.attr(b"xml:space")? == Some(b"preserve");
                if tag.empty {
                    continue;
                }
                let (raw, end) = tags.next()?.ok_or(Fallback)?;
                if !end.close || end.name != tag.name {
                    return Err(Fallback);
                }
                push_text(raw, !preserve, out)?;
            }
            _ => {}
        }
    }
}

/// Appends a `<t>` text: decoded, trimmed of ASCII spaces when asked, without `_x…_` escapes.
fn push_text(raw: &[u8], trim: bool, out: &mut String) -> Fast<()> {
    let from = out.len();
    decode(raw, out)?;
    if out.as_bytes().get(from..).unwrap_or_default().windows(2).any(|w| w == b"_x") {
        return Err(Fallback);
    }
    if trim {
        const SPACES: [char; 4] = [' ', '\t', '\r', '\n'];
        let text = out.get(from..).unwrap_or_default();
        let lead = text.len() - text.trim_start_matches(SPACES).len();
        let keep = text.trim_matches(SPACES).len();
        out.replace_range(from..from + lead, "");
        out.truncate(from + keep);
    }
    Ok(())
}

/// Reads the shared strings part in blocks cut after a string's end (a large export's part
/// is tens of MB: it is never held whole, only its strings).
fn read_shared_strings(entry: &mut zip::read::ZipFile<'_, File>) -> Fast<Strings> {
    let mut strings = Strings::default();
    // Room for the texts: half the part's size (the archive's word, so bounded), untouched
    // room costs nothing.
    strings.text.try_reserve(usize::try_from(entry.size() / 2).unwrap_or(0).min(256 << 20)).map_err(|_| Fallback)?;
    let finder = memmem::FinderRev::new(b"</si>");
    let (mut buf, mut started, mut eof) = (Vec::new(), false, false);
    loop {
        if !eof {
            eof = !read_more(entry, &mut buf, BLOCK).ok_or(Fallback)?;
        }
        let cut = match finder.rfind(&buf) {
            _ if eof => buf.len(),
            Some(k) => k + b"</si>".len(),
            None => continue,
        };
        let part = buf.get(..cut).unwrap_or_default();
        let mut tags = if started { Tags { xml: part, pos: 0 } } else { Tags::new(part)? };
        while let Some((_, tag)) = tags.next()? {
            if !started {
                if !tag.close && tag.local() == b"sst" {
                    if let Some(n) = tag.attr(b"uniqueCount")?.and_then(parse_index) {
                        let _ = strings.ends.try_reserve(n.min(1 << 24));
                    }
                    if tag.empty {
                        return Ok(strings);
                    }
                    started = true;
                }
            } else if tag.close {
                if tag.local() == b"sst" {
                    return Ok(strings);
                }
            } else if tag.local() == b"si" {
                if !tag.empty {
                    read_string(&mut tags, tag.name, &mut strings.text)?;
                }
                strings.ends.push(u32::try_from(strings.text.len()).map_err(|_| Fallback)?);
            }
        }
        if eof {
            // No `</sst>`: calamine reports the part as cut.
            return Err(Fallback);
        }
        buf.drain(..cut);
    }
}

fn read_formats(xml: &[u8]) -> Fast<Vec<Format>> {
    let mut custom: Vec<(Vec<u8>, String)> = Vec::new();
    let mut formats = Vec::new();
    let (mut in_fmts, mut in_xfs) = (false, false);
    each_tag(xml, |tag| {
        match (tag.local(), tag.close) {
            (b"numFmts", close) => in_fmts = !close && !tag.empty,
            (b"cellXfs", close) => in_xfs = !close && !tag.empty,
            (b"numFmt", false) if in_fmts => {
                if let (Some(id), Some(code)) = (tag.attr(b"numFmtId")?, tag.attr(b"formatCode")?) {
                    let mut text = String::new();
                    decode(code, &mut text)?;
                    custom.retain(|(k, _)| k != id);
                    custom.push((id.to_vec(), text));
                }
            }
            (b"xf", false) if in_xfs => {
                formats.push(match tag.attr(b"numFmtId")? {
                    None => Format::Other,
                    Some(id) => match custom.iter().find(|(k, _)| k == id) {
                        Some((_, code)) => custom_format(code),
                        None => builtin_format(id),
                    },
                });
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(formats)
}

/// A run of ASCII digits as an index.
fn parse_index(v: &[u8]) -> Option<usize> {
    if v.is_empty() || v.len() > 9 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0usize, |n, &d| n.checked_mul(10)?.checked_add(usize::from(d - b'0')))
}

/// Whether a custom number format shows a date, a time or a duration (calamine's
/// `detect_custom_number_format`, MIT licence, Johann Tuffe: the same answer for every
/// format, so both readers see the same dates).
fn custom_format(format: &str) -> Format {
    let mut escaped = false;
    let mut is_quote = false;
    let mut brackets = 0u8;
    let mut prev = ' ';
    let mut hms = false;
    let mut ap = false;
    for s in format.chars() {
        match (s, escaped, is_quote, ap, brackets) {
            (_, true, ..) => escaped = false,
            ('_' | '\\' | '*', ..) => escaped = true,
            ('"', _, true, _, _) => is_quote = false,
            (_, _, true, _, _) => (),
            ('"', _, _, _, _) => is_quote = true,
            (';', ..) => return Format::Other,
            ('[', ..) => brackets += 1,
            (']', .., 1) if hms => return Format::TimeDelta,
            (']', ..) => brackets = brackets.saturating_sub(1),
            ('a' | 'A', _, _, false, 0) => ap = true,
            ('p' | 'm' | '/' | 'P' | 'M', _, _, true, 0) => return Format::DateTime,
            ('d' | 'm' | 'h' | 'y' | 's' | 'D' | 'M' | 'H' | 'Y' | 'S', _, _, false, 0) => return Format::DateTime,
            _ => {
                if !(hms && s.eq_ignore_ascii_case(&prev)) {
                    hms = prev == '[' && matches!(s, 'm' | 'h' | 's' | 'M' | 'H' | 'S');
                }
            }
        }
        prev = s;
    }
    Format::Other
}

/// The built-in number formats that show dates, times and durations (calamine's
/// `builtin_format_by_id`: the id as written).
fn builtin_format(id: &[u8]) -> Format {
    match id {
        b"14" | b"15" | b"16" | b"17" | b"18" | b"19" | b"20" | b"21" | b"22" | b"45" | b"47" => Format::DateTime,
        b"27" | b"28" | b"29" | b"30" | b"31" | b"32" | b"33" | b"34" | b"35" | b"36" | b"50" | b"51" | b"52"
        | b"53" | b"54" | b"55" | b"56" | b"57" | b"58" => Format::DateTime,
        b"46" => Format::TimeDelta,
        _ => Format::Other,
    }
}

/// `A1`-style cell reference → (row, column), 0-based.
fn cell_ref(r: &[u8]) -> Fast<(u32, u32)> {
    let letters = r.iter().take_while(|c| c.is_ascii_uppercase()).count();
    let digits = r.get(letters..).unwrap_or_default();
    if letters == 0 || letters > 3 || digits.is_empty() || digits.first() == Some(&b'0') {
        return Err(Fallback);
    }
    let col = r.iter().take(letters).fold(0u32, |n, &c| n * 26 + u32::from(c - b'A') + 1) - 1;
    Ok((row_number(digits)?, col))
}

/// The date of the serial number `n` in a date format when it is a whole number of days
/// and its date, in either date system, is from 1899-12-31 to 9999-12-31: the date
/// calamine's `ExcelDateTime::as_datetime` gives, without its milliseconds (a property test
/// compares them). `None` for any other number, which calamine converts.
fn serial_day(n: f64, is_1904: bool) -> Option<NaiveDate> {
    // calamine's steps: days from 1899-12-30, the 1904 system 1,462 days later, and one
    // day more before 1900-03-01 (Excel counts a 29 February 1900).
    let days = if is_1904 { n + 1462.0 } else { n };
    let days = if days >= 60.0 { days } else { days + 1.0 };
    if days.fract() != 0.0 || !(1.0..=2_958_465.0).contains(&days) {
        return None;
    }
    NaiveDate::from_ymd_opt(1899, 12, 30)?.checked_add_days(chrono::Days::new(days as u64))
}

/// A row number as written (`1`-based) → 0-based.
fn row_number(digits: &[u8]) -> Fast<u32> {
    let n = parse_index(digits).ok_or(Fallback)?;
    u32::try_from(n).ok().and_then(|n| n.checked_sub(1)).ok_or(Fallback)
}

/// Bytes of XML a parser takes at a time (cut after a row's end); in unit tests, small
/// blocks, so that their sheets are cut into many. Half a MiB: the same time as 1 MiB, for
/// a peak 10–20 MB lower with shared strings (blocks and batches are in flight beside the
/// table); a quarter was no lower and slower (round 25).
const BLOCK: usize = if cfg!(test) { 300 } else { 1 << 19 };

/// The most bytes of XML one row may take before this reader gives the sheet up.
const LONGEST_ROW: usize = 256 << 20;

/// Blocks and parsed blocks waiting between two stages, per parser.
const QUEUE: usize = 2;

/// Cells of one block of a sheet: each cell's row, then its column and value (empty cells
/// left out), and the texts the values point into.
#[derive(Debug, Default)]
struct Batch {
    rows: Vec<u32>,
    cells: Vec<(u32, Value)>,
    texts: String,
    /// The block held the end of the sheet data.
    end: bool,
    /// The bytes of the block.
    bytes: usize,
    /// The cells whose value is a shared string, and its number (kept for the next block).
    shared: Vec<(usize, u32)>,
    /// The first cells whose rows count from the block's start (cells before the block's
    /// first numbered row: their rows depend on the blocks before), and calamine's row
    /// position at the block's end (from its start too, unless `end_known`).
    relative: usize,
    end_row: u32,
    end_known: bool,
}

/// The rows of one sheet. The sheet is read from the archive on a thread of its own and cut
/// into blocks after a row's end; parser threads parse the blocks, each into a batch of
/// cells; [`SheetRows::next_row`] gives their rows in order, each row's cells as calamine's
/// `next_cell` gives them (consecutive cells of one row).
pub(super) struct SheetRows {
    /// Each parser's batches, taken in turn, and where each gets its batches back to fill
    /// again (the memory of a sheet is a few blocks and batches, reused, never fresh pages).
    parsed: Vec<Receiver<Fast<Batch>>>,
    used: Vec<Sender<Batch>>,
    turn: usize,
    batch: Batch,
    /// The next cell of the batch to give.
    at: usize,
    /// The sheet data ended, or the blocks did.
    done: bool,
    /// The bytes of the sheet's XML, and its rows after the first as its dimension says.
    size: usize,
    dimension: Option<usize>,
    /// calamine's row position after the blocks taken.
    row_base: u32,
    /// A row whose cells are in two blocks, gathered: its cells and their texts.
    joined: (Vec<(u32, Value)>, String),
}

/// What [`Parser::parse_one`] found.
enum Step {
    Cell((u32, u32), Option<Value>),
    End,
}

impl Workbook {
    /// Calls `f` with the rows of the sheet `name`, read and parsed on threads of their own.
    pub(super) fn with_rows<R>(&mut self, name: &str, f: impl FnOnce(&mut SheetRows) -> R) -> Fast<R> {
        let Workbook { zip, sheets, formats, is_1904, strings } = self;
        let (_, path) = sheets.iter().find(|(n, _)| n == name).ok_or(Fallback)?;
        let mut entry = zip.by_name(path.as_deref().ok_or(Fallback)?).map_err(|_| Fallback)?;
        let Head { rest: head, empty, rows: dimension } = start(&mut entry)?;
        let size = usize::try_from(entry.size()).unwrap_or(usize::MAX);
        let parsers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
        let (strings, formats, is_1904) = (&*strings, &formats[..], *is_1904);
        // A thread the system refuses leaves the workbook to calamine.
        std::thread::scope(|scope| {
            let thread = || std::thread::Builder::new().name("relance-xlsx".to_string());
            let (mut blocks, mut parsed, mut used) = (Vec::new(), Vec::new(), Vec::new());
            // Blocks parsed go back to the reader to be filled again.
            let (free_tx, free_rx) = channel::<Vec<u8>>();
            for k in 0..parsers {
                let (block_tx, block_rx) = sync_channel::<Vec<u8>>(QUEUE);
                let (batch_tx, batch_rx) = sync_channel::<Fast<Batch>>(QUEUE);
                let (used_tx, used_rx) = channel::<Batch>();
                blocks.push(block_tx);
                parsed.push(batch_rx);
                used.push(used_tx);
                let free_tx = free_tx.clone();
                let parse = move || {
                    let mut parser = Parser::new(strings, formats, is_1904);
                    let mut first = k == 0;
                    for block in block_rx {
                        let batch = parser.parse_block(&block, first, used_rx.try_recv().unwrap_or_default());
                        first = false;
                        let _ = free_tx.send(block);
                        let failed = batch.is_err();
                        if batch_tx.send(batch).is_err() || failed {
                            return;
                        }
                    }
                };
                thread().spawn_scoped(scope, parse).map_err(|_| Fallback)?;
            }
            drop(free_tx);
            if !empty {
                thread().spawn_scoped(scope, move || inflate(entry, head, &blocks, &free_rx)).map_err(|_| Fallback)?;
            }
            let mut rows = SheetRows {
                parsed,
                used,
                turn: 0,
                batch: Batch::default(),
                at: 0,
                done: empty,
                size,
                dimension,
                row_base: 0,
                joined: Default::default(),
            };
            let out = f(&mut rows);
            // The threads stop as their receivers go.
            drop(rows);
            Ok(out)
        })
    }
}

/// Reads the sheet from the archive and sends it in blocks that end after a row's end, to
/// each parser in turn; `head` is what was read after `<sheetData>`.
fn inflate(
    mut entry: zip::read::ZipFile<'_, File>,
    head: Vec<u8>,
    parsers: &[SyncSender<Vec<u8>>],
    free: &Receiver<Vec<u8>>,
) {
    let finder = memmem::FinderRev::new(b"</row>");
    let mut buf = head;
    let mut turn = 0;
    let mut eof = false;
    while !eof || !buf.is_empty() {
        // Fill the buffer to a block, then cut after the last row end (all of it at the end).
        if !eof && buf.len() < BLOCK {
            let want = BLOCK - buf.len();
            match read_more(&mut entry, &mut buf, want) {
                Some(more) => eof = !more,
                None => return,
            }
        }
        // The last row end in the block's bytes, else the first one after them.
        let within = buf.get(..buf.len().min(BLOCK)).unwrap_or_default();
        let row_end = finder
            .rfind(within)
            .or_else(|| memmem::find(buf.get(within.len()..)?, b"</row>").map(|k| k + within.len()));
        let cut = match row_end {
            Some(k) => Some(k + b"</row>".len()),
            None if eof => Some(buf.len()),
            None => None,
        };
        let Some(cut) = cut else {
            // One row longer than a block: read on, up to a bound (a row of hundreds of MB is
            // no export's; calamine reads what this reader leaves).
            if buf.len() > LONGEST_ROW {
                return;
            }
            let want = buf.len().max(BLOCK);
            match read_more(&mut entry, &mut buf, want) {
                Some(more) => eof = !more,
                None => return,
            }
            continue;
        };
        let mut rest = free.try_recv().unwrap_or_else(|_| Vec::with_capacity(BLOCK + BLOCK / 4));
        rest.clear();
        rest.extend_from_slice(buf.get(cut..).unwrap_or_default());
        buf.truncate(cut);
        let Some(parser) = parsers.get(turn % parsers.len()) else { return };
        if parser.send(std::mem::replace(&mut buf, rest)).is_err() {
            return;
        }
        turn += 1;
    }
}

/// Appends up to `want` bytes of `entry` to `buf`: whether there may be more (`false` at the
/// end), or `None` when the archive cannot be read.
fn read_more(entry: &mut zip::read::ZipFile<'_, File>, buf: &mut Vec<u8>, want: usize) -> Option<bool> {
    let n = entry.take(want as u64).read_to_end(buf).ok()?;
    Some(n == want)
}

/// What comes before a sheet's rows.
struct Head {
    /// What was read after `<sheetData>`.
    rest: Vec<u8>,
    /// The sheet data is empty (`<sheetData/>`).
    empty: bool,
    /// The rows after the first, as its `<dimension>` says.
    rows: Option<usize>,
}

/// Reads the sheet up to `<sheetData>`, checking the elements before it as calamine does.
fn start(entry: &mut zip::read::ZipFile<'_, File>) -> Fast<Head> {
    let finder = memmem::Finder::new(b"<sheetData");
    let mut buf = Vec::new();
    let mut rows = None;
    loop {
        if let Some(k) = finder.find(&buf) {
            // The head of the sheet: only `dimension` is read there.
            let mut tags = Tags::new(buf.get(..k).unwrap_or_default())?;
            while let Some((_, tag)) = tags.next()? {
                if !tag.close && tag.local() == b"dimension" {
                    let dim = tag.attr(b"ref")?.ok_or(Fallback)?;
                    let mut first = None;
                    for part in dim.split(|&c| c == b':') {
                        let (row, _) = cell_ref(part)?;
                        rows = first.map(|first: u32| row.saturating_sub(first) as usize);
                        first = Some(row);
                    }
                }
            }
            let Some((tag, len)) = parse_tag(buf.get(k..).unwrap_or_default())? else {
                // The tag is cut: read on.
                let from = buf.len();
                buf.resize(from + 4096, 0);
                let n = entry.read(buf.get_mut(from..).unwrap_or_default()).map_err(|_| Fallback)?;
                buf.truncate(from + n);
                if n == 0 {
                    return Err(Fallback);
                }
                continue;
            };
            if tag.name != b"sheetData" {
                return Err(Fallback);
            }
            return Ok(Head { rest: buf.get(k + len..).unwrap_or_default().to_vec(), empty: tag.empty, rows });
        }
        if buf.len() > (64 << 20) {
            return Err(Fallback);
        }
        if !read_more(entry, &mut buf, BLOCK.min(64 << 10)).ok_or(Fallback)? && finder.find(&buf).is_none() {
            return Err(Fallback);
        }
    }
}

/// Parses blocks of a sheet's XML into cells: calamine's position for cells without a
/// reference, and the texts of the block.
struct Parser<'w> {
    strings: &'w Strings,
    formats: &'w [Format],
    is_1904: bool,
    row_index: u32,
    col_index: u32,
    /// Whether `row_index` is known: in the first block, or after a row with a number.
    /// Before, it counts from the block's start, and the rows are placed once the blocks
    /// before are read.
    row_known: bool,
    texts: String,
    /// The shared string of the value just read (its text is looked up with the block's).
    shared: Option<u32>,
}

impl<'w> Parser<'w> {
    fn new(strings: &'w Strings, formats: &'w [Format], is_1904: bool) -> Self {
        Parser {
            strings,
            formats,
            is_1904,
            row_index: 0,
            col_index: 0,
            row_known: true,
            texts: String::new(),
            shared: None,
        }
    }

    /// The cells of a block of whole rows (the last block: up to the end of the sheet data).
    fn parse_block(&mut self, block: &[u8], first: bool, mut batch: Batch) -> Fast<Batch> {
        batch.rows.clear();
        batch.cells.clear();
        batch.end = false;
        batch.bytes = block.len();
        batch.relative = 0;
        // A block starts after a row's end: calamine's column position is 0, its row
        // position known only in the first block.
        (self.row_index, self.col_index, self.row_known) = (0, 0, first);
        let mut pos = 0;
        self.texts = std::mem::take(&mut batch.texts);
        self.texts.clear();
        let mut shared = std::mem::take(&mut batch.shared);
        shared.clear();
        while let Some((len, step)) = self.parse_one(block.get(pos..).unwrap_or_default())? {
            pos += len;
            match step {
                Some(Step::Cell((row, col), Some(value))) => {
                    if !self.row_known && batch.relative == batch.cells.len() {
                        batch.relative += 1;
                    }
                    if let Some(k) = self.shared.take() {
                        shared.push((batch.cells.len(), k));
                    }
                    batch.rows.push(row);
                    batch.cells.push((col, value));
                }
                Some(Step::End) => {
                    batch.end = true;
                    break;
                }
                Some(Step::Cell(_, None)) => self.shared = None,
                None => {}
            }
        }
        // A block ends after a row's end: only spaces may be left (or the rest of the sheet
        // after its data, in the last block).
        if !batch.end && block.get(pos..).is_some_and(|rest| !rest.trim_ascii().is_empty()) {
            return Err(Fallback);
        }
        self.resolve_shared(&shared, &mut batch.cells)?;
        batch.shared = shared;
        batch.texts = std::mem::take(&mut self.texts);
        (batch.end_row, batch.end_known) = (self.row_index, self.row_known);
        Ok(batch)
    }

    /// Copies the shared strings of the block's cells into its texts. Done apart from the
    /// parse, a few dozen at a time: the strings sit anywhere in a table of tens of MB, and
    /// looking up a group's places first, then touching their texts, then copying them, lets
    /// the processor wait for their memory all at once instead of one after the other.
    fn resolve_shared(&mut self, shared: &[(usize, u32)], batch: &mut [(u32, Value)]) -> Fast<()> {
        const GROUP: usize = 32;
        let text = self.strings.text.as_bytes();
        for group in shared.chunks(GROUP) {
            let mut spans = [(0usize, 0usize); GROUP];
            for (span, &(_, k)) in spans.iter_mut().zip(group) {
                *span = self.strings.span(k as usize).ok_or(Fallback)?;
            }
            let touched =
                spans.iter().take(group.len()).fold(0u8, |x, &(start, _)| x ^ text.get(start).copied().unwrap_or(0));
            std::hint::black_box(touched);
            for (&(cell, _), &(start, end)) in group.iter().zip(&spans) {
                let from = offset(self.texts.len())?;
                self.texts.push_str(self.strings.text.get(start..end).ok_or(Fallback)?);
                if let Some((_, value)) = batch.get_mut(cell) {
                    *value = Value::Text(from, offset(self.texts.len())?);
                }
            }
        }
        Ok(())
    }

    /// Parses what starts at `pos`: a row's start or end, a cell, the end of the sheet data.
    /// `None` when the buffer ends before it does.
    fn parse_one(&mut self, s: &[u8]) -> Fast<Option<(usize, Option<Step>)>> {
        let Some(lt) = find_lt(s) else { return Ok(None) };
        let s = s.get(lt..).unwrap_or_default();
        if let Some(cell) = simple_cell(s) {
            let (pos, value) = self.simple_value(&cell)?;
            return Ok(Some((lt + cell.len, Some(Step::Cell(pos, value)))));
        }
        let Some((tag, len)) = parse_tag(s)? else { return Ok(None) };
        if tag.name.contains(&b':') {
            return Err(Fallback);
        }
        match (tag.name, tag.close) {
            (b"row", false) => {
                if let Some(r) = tag.attr(b"r")? {
                    self.row_index = row_number(r)?;
                    self.row_known = true;
                }
                if tag.empty {
                    self.end_row();
                }
                Ok(Some((lt + len, None)))
            }
            (b"row", true) => {
                self.end_row();
                Ok(Some((lt + len, None)))
            }
            (b"sheetData", true) => Ok(Some((lt + len, Some(Step::End)))),
            (b"c", false) => {
                let Some((cell_len, pos, value)) = self.parse_cell(s, tag, len)? else { return Ok(None) };
                Ok(Some((lt + cell_len, Some(Step::Cell(pos, value)))))
            }
            _ => Err(Fallback),
        }
    }

    /// The position and value of a cell of a common shape.
    fn simple_value(&mut self, cell: &SimpleCell<'_>) -> Fast<((u32, u32), Option<Value>)> {
        let pos = self.position(cell.r)?;
        self.shared = None;
        let value = match cell.body {
            Body::Empty => None,
            Body::V(raw) => self.value(raw, cell.style, cell.typ)?,
            Body::InlineT(raw) => {
                let (from, to) = self.push(raw, true)?;
                Some(Value::Text(from, to))
            }
        };
        Ok((pos, value))
    }

    /// A cell's position, from its reference `r` or calamine's count, which moves on.
    fn position(&mut self, r: Option<&[u8]>) -> Fast<(u32, u32)> {
        let pos = match r {
            // A numbered cell in a row whose number depends on the blocks before: left to
            // calamine (no writer seen writes cells so).
            Some(_) if !self.row_known => return Err(Fallback),
            Some(r) => {
                let (row, col) = cell_ref(r)?;
                self.col_index = col;
                (row, col)
            }
            None => (self.row_index, self.col_index),
        };
        self.col_index = self.col_index.saturating_add(1);
        Ok(pos)
    }

    fn end_row(&mut self) {
        self.row_index = self.row_index.saturating_add(1);
        self.col_index = 0;
    }

    /// A cell whose start tag `tag` (of `len` bytes) begins `s`: its length, position and value.
    fn parse_cell(&mut self, s: &[u8], tag: Tag<'_>, len: usize) -> Fast<Option<ParsedCell>> {
        let (mut r, mut style, mut typ) = (None, None, None);
        tag.each_attr(|k, v| match k {
            b"r" => r = Some(v),
            b"s" => style = Some(v),
            b"t" => typ = Some(v),
            _ => {}
        })?;
        let pos = self.position(r)?;
        if tag.empty {
            return Ok(Some((len, pos, None)));
        }
        let mut at = len;
        let mut value = None;
        loop {
            let rest = s.get(at..).unwrap_or_default();
            let Some(lt) = find_lt(rest) else { return Ok(None) };
            let Some((child, child_len)) = parse_tag(rest.get(lt..).unwrap_or_default())? else { return Ok(None) };
            if child.name.contains(&b':') {
                return Err(Fallback);
            }
            at += lt + child_len;
            if child.close {
                if child.name == b"c" {
                    return Ok(Some((at, pos, value)));
                }
                return Err(Fallback);
            }
            match child.name {
                b"v" | b"f" => {
                    let raw = if child.empty {
                        &b""[..]
                    } else {
                        let rest = s.get(at..).unwrap_or_default();
                        let Some(lt) = find_lt(rest) else { return Ok(None) };
                        let Some((end, end_len)) = parse_tag(rest.get(lt..).unwrap_or_default())? else {
                            return Ok(None);
                        };
                        if !end.close || end.name != child.name {
                            return Err(Fallback);
                        }
                        at += lt + end_len;
                        rest.get(..lt).unwrap_or_default()
                    };
                    // The last child gives the cell its value, as in calamine.
                    self.shared = None;
                    value = if child.name == b"f" { None } else { self.value(raw, style, typ)? };
                }
                b"is" => {
                    // An inline string: its `<t>` and runs, parsed as a document of their own.
                    let from = self.texts.len();
                    if !child.empty {
                        let rest = s.get(at..).unwrap_or_default();
                        let Some(end) = find_close(rest, b"</is>") else { return Ok(None) };
                        let mut tags = Tags { xml: rest.get(..end + 5).unwrap_or_default(), pos: 0 };
                        read_string(&mut tags, b"is", &mut self.texts)?;
                        at += end + 5;
                    }
                    self.shared = None;
                    value = Some(Value::Text(offset(from)?, offset(self.texts.len())?));
                }
                _ => return Err(Fallback),
            }
        }
    }

    /// Appends a text to the block's texts (see [`push_text`]): where it is.
    fn push(&mut self, raw: &[u8], trim: bool) -> Fast<(u32, u32)> {
        let from = offset(self.texts.len())?;
        push_text(raw, trim, &mut self.texts)?;
        Ok((from, offset(self.texts.len())?))
    }

    /// The value of a `<v>` (empty for `<v/>`) as calamine reads it for the cell's style and
    /// type.
    fn value(&mut self, raw: &[u8], style: Option<&[u8]>, typ: Option<&[u8]>) -> Fast<Option<Value>> {
        match typ {
            Some(b"inlineStr" | b"is") => Ok(None),
            None | Some(b"n" | b"s" | b"b" | b"e") => {
                if raw.is_empty() {
                    return Ok(None);
                }
                // One loop over a value of a few bytes (two `contains`, each a `memchr`
                // with its set-up, cost more).
                if raw.iter().any(|&c| c == b'&' || c == b'\r') {
                    return Err(Fallback);
                }
                match typ {
                    Some(b"s") => {
                        // Looked up once the block is parsed (see `resolve_shared`).
                        let k = parse_index(raw).ok_or(Fallback)?;
                        if k >= self.strings.ends.len() {
                            return Err(Fallback);
                        }
                        self.shared = Some(offset(k)?);
                        Ok(Some(Value::Text(0, 0)))
                    }
                    Some(b"b") => match raw.trim_ascii() {
                        b"0" => Ok(Some(Value::Bool(false))),
                        b"1" => Ok(Some(Value::Bool(true))),
                        t if t.eq_ignore_ascii_case(b"false") => Ok(Some(Value::Bool(false))),
                        t if t.eq_ignore_ascii_case(b"true") => Ok(Some(Value::Bool(true))),
                        b"" => Ok(None),
                        _ => Err(Fallback),
                    },
                    Some(b"e") => {
                        let text = std::str::from_utf8(raw).map_err(|_| Fallback)?;
                        Ok(Some(Value::Error(text.parse::<CellErrorType>().map_err(|_| Fallback)?)))
                    }
                    _ => {
                        if !raw.iter().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'+' | b'e' | b'E')) {
                            return Err(Fallback);
                        }
                        let n = parse_number(raw)?;
                        let format = match style {
                            None => Some(Format::Other),
                            Some(s) => self.formats.get(parse_index(s).ok_or(Fallback)?).copied(),
                        };
                        Ok(Some(match format {
                            Some(Format::DateTime) => match serial_day(n, self.is_1904) {
                                Some(day) => Value::Day(n, day),
                                None => Value::Date(ExcelDateTime::new(n, ExcelDateTimeType::DateTime, self.is_1904)),
                            },
                            Some(Format::TimeDelta) => {
                                Value::Date(ExcelDateTime::new(n, ExcelDateTimeType::TimeDelta, self.is_1904))
                            }
                            _ => Value::Number(n),
                        }))
                    }
                }
            }
            Some(b"str") => {
                let (from, to) = self.push(raw, false)?;
                Ok(Some(Value::Text(from, to)))
            }
            Some(b"d") => {
                let (from, to) = self.push(raw, false)?;
                Ok(Some(Value::IsoDate(from, to)))
            }
            Some(_) => Err(Fallback),
        }
    }
}

impl SheetRows {
    /// How many rows the sheet has after the first, estimated once the first block is read:
    /// its rows per byte over the whole sheet (an exporter may write any dimension, so the
    /// dimension, when it says fewer, is taken only as that smaller figure).
    pub(super) fn rows_hint(&self) -> Option<usize> {
        let batch = &self.batch;
        let rows = 1 + batch.rows.windows(2).filter(|w| w.first() != w.get(1)).count();
        if batch.bytes == 0 || batch.rows.is_empty() {
            return None;
        }
        let estimate = (self.size / batch.bytes).saturating_mul(rows)
            + (self.size % batch.bytes) * rows / batch.bytes
            + rows / 16
            + 16;
        Some(self.dimension.map_or(estimate, |d| d.min(estimate)))
    }

    /// The cells of the next row that has any, or `None` at the end of the sheet.
    pub(super) fn next_row(&mut self) -> Fast<Option<SheetRow<'_, Value>>> {
        while self.at == self.batch.cells.len() {
            if self.done {
                return Ok(None);
            }
            self.fetch()?;
        }
        let start = self.at;
        let (row, len) = self.run(start);
        self.at = start + len;
        if self.at < self.batch.cells.len() || self.done {
            let cells = self.batch.cells.get(start..self.at).unwrap_or_default();
            return Ok(Some(SheetRow { row, cells, texts: &self.batch.texts }));
        }
        // The row reaches the end of its block: the next blocks may hold more of its cells
        // (two `<row>` elements of one number). Its cells are gathered apart.
        self.joined.0.clear();
        self.joined.1.clear();
        let mut from = start;
        loop {
            for (col, value) in self.batch.cells.get(from..self.at).unwrap_or_default() {
                let value = match *value {
                    Value::Text(a, b) | Value::IsoDate(a, b) => {
                        let at = offset(self.joined.1.len())?;
                        self.joined.1.push_str(self.batch.texts.get(a as usize..b as usize).unwrap_or_default());
                        let end = offset(self.joined.1.len())?;
                        if matches!(value, Value::Text(..)) { Value::Text(at, end) } else { Value::IsoDate(at, end) }
                    }
                    ref other => other.clone(),
                };
                self.joined.0.push((*col, value));
            }
            if self.at < self.batch.cells.len() || self.done {
                break;
            }
            self.fetch()?;
            while self.batch.cells.is_empty() && !self.done {
                self.fetch()?;
            }
            let (next, more) = self.run(0);
            if next != row {
                break;
            }
            (from, self.at) = (0, more);
        }
        Ok(Some(SheetRow { row, cells: &self.joined.0, texts: &self.joined.1 }))
    }

    /// The row of the cell `start` of the batch, and how many cells from there are in it.
    fn run(&self, start: usize) -> (u32, usize) {
        let rows = self.batch.rows.get(start..).unwrap_or_default();
        let row = rows.first().copied().unwrap_or(u32::MAX);
        (row, rows.iter().take_while(|&&r| r == row).count())
    }

    /// Takes the next batch, in block order, and gives the one before back to its parser.
    fn fetch(&mut self) -> Fast<()> {
        let parsers = self.parsed.len().max(1);
        let parsed = self.parsed.get(self.turn % parsers).ok_or(Fallback)?;
        // A parser that stopped before the end of the sheet data: the sheet is cut.
        let mut batch = parsed.recv().map_err(|_| Fallback)??;
        // Rows counted from the block's start are placed after the rows before it.
        let base = self.row_base;
        for row in batch.rows.iter_mut().take(batch.relative) {
            *row = row.saturating_add(base);
        }
        self.row_base = if batch.end_known { batch.end_row } else { base.saturating_add(batch.end_row) };
        self.done = batch.end;
        let used = std::mem::replace(&mut self.batch, batch);
        if let Some(parser) = self.turn.checked_sub(1).and_then(|k| self.used.get(k % parsers)) {
            let _ = parser.send(used);
        }
        self.turn += 1;
        self.at = 0;
        Ok(())
    }
}

/// What a cell of a common shape holds.
enum Body<'a> {
    /// `<c …/>`.
    Empty,
    /// `<c …><v>raw</v></c>`.
    V(&'a [u8]),
    /// `<c …><is><t>raw</t></is></c>`.
    InlineT(&'a [u8]),
}

/// A cell of a common shape, read in one pass.
struct SimpleCell<'a> {
    len: usize,
    r: Option<&'a [u8]>,
    style: Option<&'a [u8]>,
    typ: Option<&'a [u8]>,
    body: Body<'a>,
}

/// Reads the cell at the start of `s` when it has one of the shapes most writers give
/// every cell (attributes in double quotes, then `<v>…</v>`, `<is><t>…</t></is>` or
/// nothing): one pass over its bytes. `None` for any other shape, or when `s` ends first:
/// the general parser then reads it.
fn simple_cell(s: &[u8]) -> Option<SimpleCell<'_>> {
    if !s.starts_with(b"<c ") {
        return None;
    }
    let (mut r, mut style, mut typ) = (None, None, None);
    let mut i = 3;
    let body = loop {
        match *s.get(i)? {
            b' ' => i += 1,
            b'>' => {
                i += 1;
                break None;
            }
            b'/' => {
                if s.get(i + 1) != Some(&b'>') {
                    return None;
                }
                i += 2;
                break Some(Body::Empty);
            }
            _ => {
                let start = i;
                let eq = start + s.get(start..)?.iter().take(16).position(|&c| c == b'=')?;
                let name = s.get(start..eq)?;
                if s.get(eq + 1) != Some(&b'"') || !name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b':') {
                    return None;
                }
                let from = eq + 2;
                let end = from + s.get(from..)?.iter().position(|&c| c == b'"' || c == b'<')?;
                if s.get(end) != Some(&b'"') || !matches!(s.get(end + 1), Some(b' ' | b'>' | b'/')) {
                    return None;
                }
                let value = s.get(from..end)?;
                match name {
                    b"r" => r = Some(value),
                    b"s" => style = Some(value),
                    b"t" => typ = Some(value),
                    _ => {}
                }
                i = end + 1;
            }
        }
    };
    let body = match body {
        Some(body) => body,
        None => {
            let rest = s.get(i..)?;
            let (open, close, inline) = if rest.starts_with(b"<v>") {
                (3, &b"</v></c>"[..], false)
            } else if rest.starts_with(b"<is><t>") {
                (7, &b"</t></is></c>"[..], true)
            } else {
                return None;
            };
            let text = rest.get(open..)?;
            let k = find_lt(text)?;
            // (Compared as words: a call to `memcmp` for each cell cost more.)
            if !same_bytes(text.get(k..k + close.len())?, close) {
                return None;
            }
            i += open + k + close.len();
            let raw = text.get(..k)?;
            if inline { Body::InlineT(raw) } else { Body::V(raw) }
        }
    };
    Some(SimpleCell { len: i, r, style, typ, body })
}

/// A cell parsed: its length in bytes, its position and its value (`None`: empty).
type ParsedCell = (usize, (u32, u32), Option<Value>);

/// A number as written in a `<v>`, correctly rounded (as `str::parse`): a decimal of at most
/// 15 digits is its digits as an integer divided by a power of ten, both exact in a float,
/// so the division rounds once, as the parse would.
fn parse_number(raw: &[u8]) -> Fast<f64> {
    let (negative, digits) = match raw.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, raw),
    };
    let (int, frac) = match digits.iter().position(|&c| c == b'.') {
        Some(k) => (digits.get(..k).unwrap_or_default(), digits.get(k + 1..).unwrap_or_default()),
        None => (digits, &b""[..]),
    };
    if !int.is_empty() && int.len() + frac.len() <= 15 && int.iter().chain(frac).all(u8::is_ascii_digit) {
        let n = int.iter().chain(frac).fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
        let scaled = n as f64 / POWERS_OF_TEN.get(frac.len()).copied().unwrap_or(1.0);
        return Ok(if negative { -scaled } else { scaled });
    }
    std::str::from_utf8(raw).map_err(|_| Fallback)?.parse().map_err(|_| Fallback)
}

/// 10^0 … 10^15, each exact in a float.
const POWERS_OF_TEN: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

fn offset(n: usize) -> Fast<u32> {
    u32::try_from(n).map_err(|_| Fallback)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The quick path of `parse_number` gives the parse's float, bit for bit.
        #[test]
        fn numbers_read_as_the_parse_reads_them(int in 0u64..10_000_000_000, frac in "[0-9]{0,9}", negative in any::<bool>()) {
            let text = format!("{}{int}{}{frac}", if negative { "-" } else { "" }, if frac.is_empty() { "" } else { "." });
            let want: f64 = text.parse().unwrap();
            prop_assert_eq!(parse_number(text.as_bytes()).unwrap().to_bits(), want.to_bits(), "{}", text);
        }

        /// A whole serial is the day calamine gives, in both date systems, from before the
        /// first day to after the last; any other serial is left to calamine.
        #[test]
        fn serial_days_are_calamine_s_dates(
            whole in -1_600i64..2_960_000,
            part in prop_oneof![Just(0.0), Just(0.5), Just(1e-9), 0.0f64..1.0],
            is_1904 in any::<bool>(),
        ) {
            let n = whole as f64 + part;
            let calamine = ExcelDateTime::new(n, ExcelDateTimeType::DateTime, is_1904).as_datetime();
            match serial_day(n, is_1904) {
                Some(day) => {
                    prop_assert_eq!(Some(day), calamine.map(|d| d.date()), "{}", n);
                    prop_assert_eq!(calamine.map(|d| d.time()), Some(chrono::NaiveTime::MIN));
                }
                // A whole serial left to calamine is a day out of the range.
                None => {
                    let range = NaiveDate::from_ymd_opt(1899, 12, 31).unwrap()..=NaiveDate::from_ymd_opt(9999, 12, 31).unwrap();
                    prop_assert!(part != 0.0 || calamine.is_none_or(|d| !range.contains(&d.date())), "{} {:?}", n, calamine);
                }
            }
        }
    }

    /// Whole serials at the edges: the first day of each date system, Excel's 29 February
    /// 1900 and the day after it, the last day.
    #[test]
    fn serial_days_at_the_edges() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
        assert_eq!(serial_day(1.0, false), day(1900, 1, 1));
        assert_eq!(serial_day(59.0, false), day(1900, 2, 28));
        // Excel's 29 February 1900 (60) is calamine's 28 February, as is 59.
        assert_eq!(serial_day(60.0, false), day(1900, 2, 28));
        assert_eq!(serial_day(61.0, false), day(1900, 3, 1));
        assert_eq!(serial_day(0.0, true), day(1904, 1, 1));
        assert_eq!(serial_day(2_958_465.0, false), day(9999, 12, 31));
        assert_eq!(serial_day(2_958_466.0, false), None);
        assert_eq!(serial_day(45_000.5, false), None);
    }

    #[test]
    fn numbers_of_other_shapes_go_through_the_parse() {
        for text in ["1e5", "-2.5E-3", ".5", "5.", "123456789012345678", "0.1234567890123456789"] {
            assert_eq!(parse_number(text.as_bytes()).unwrap(), text.parse::<f64>().unwrap(), "{text}");
        }
        for text in ["", "-", "1..2", "abc"] {
            assert_eq!(parse_number(text.as_bytes()), Err(Fallback), "{text}");
        }
    }

    #[test]
    fn entities_are_replaced_and_a_carriage_return_gives_up() {
        let mut out = String::new();
        decode(b"a &amp; b &lt;c&gt; &quot;&apos; &#233;&#x263A;", &mut out).unwrap();
        assert_eq!(out, "a & b <c> \"' é☺");
        assert_eq!(decode(b"a\r\nb", &mut String::new()), Err(Fallback));
        assert_eq!(decode(b"&nbsp;", &mut String::new()), Err(Fallback));
        assert_eq!(decode(b"&#0;", &mut String::new()), Err(Fallback));
    }

    #[test]
    fn cell_references_are_read_as_positions() {
        assert_eq!(cell_ref(b"A1"), Ok((0, 0)));
        assert_eq!(cell_ref(b"AB12"), Ok((11, 27)));
        assert_eq!(cell_ref(b"XFD1048576"), Ok((1_048_575, 16_383)));
        for bad in [&b"a1"[..], b"A0", b"A01", b"1", b"A", b"ABCD1"] {
            assert_eq!(cell_ref(bad), Err(Fallback));
        }
    }

    #[test]
    fn date_formats_are_found_as_calamine_finds_them() {
        assert_eq!(custom_format("dd/mm/yyyy"), Format::DateTime);
        assert_eq!(custom_format("[h]:mm:ss"), Format::TimeDelta);
        assert_eq!(custom_format("#,##0.00\\ \"€\""), Format::Other);
        assert_eq!(custom_format("0\"d\""), Format::Other);
        assert_eq!(custom_format("#,##0*y"), Format::Other);
        assert_eq!(builtin_format(b"14"), Format::DateTime);
        assert_eq!(builtin_format(b"46"), Format::TimeDelta);
        assert_eq!(builtin_format(b"014"), Format::Other);
    }

    #[test]
    fn cells_of_common_shapes_are_read_in_one_pass() {
        let cell = simple_cell(br#"<c r="B2" s="1" t="n"><v>46037</v></c><c"#).unwrap();
        assert_eq!((cell.len, cell.r, cell.style, cell.typ), (38, Some(&b"B2"[..]), Some(&b"1"[..]), Some(&b"n"[..])));
        assert!(matches!(cell.body, Body::V(b"46037")));
        let cell = simple_cell(br#"<c r="A1" t="inlineStr"><is><t>x &amp; y</t></is></c>"#).unwrap();
        assert!(matches!(cell.body, Body::InlineT(b"x &amp; y")));
        assert!(matches!(simple_cell(br#"<c r="C3" s="2"/>"#).unwrap().body, Body::Empty));
        // Other shapes, and a cell cut by the end of the buffer, go to the general parser.
        for other in [
            &br#"<c r="A1"><f>1+1</f><v>2</v></c>"#[..],
            br#"<c r='A1'><v>2</v></c>"#,
            br#"<c r="A1"><v>2</v></c"#,
            br#"<c r="A1" t="inlineStr"><is><t xml:space="preserve"> x</t></is></c>"#,
            br#"<c r="A1"><v>2"#,
        ] {
            assert!(simple_cell(other).is_none(), "{}", String::from_utf8_lossy(other));
        }
    }
}
