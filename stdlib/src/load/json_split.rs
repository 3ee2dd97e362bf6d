//! The elements of a JSON array, found 64 bytes at a time: the records of a JSON portfolio
//! file are cut apart in one pass over its text (2.6–3.4 GB/s here: 47–60 ms for the 158 MB
//! of 10^6 invoices, where serde_json's parse of the whole file took 130–210 ms), so that
//! they can be parsed on all threads.
//!
//! The strings are followed by a running parity of their quotes, the quotes escaped by an
//! odd run of backslashes left out (the method of simdjson's first stage); outside strings,
//! the brackets give the depth, and the commas at depth 1 separate the elements.
//!
//! [`ObjectScan`] finds the members of an object the same way (the arrays of a
//! `portfolio.json`).
//!
//! The text is cut as bytes, into the places of the elements: a piece of a file read in
//! blocks may end inside a character, and the caller checks the UTF-8 of the bytes its
//! elements take once, when it makes them texts ([`Place::of`]). The elements themselves
//! are not checked here: the caller parses each one completely. The
//! split is exact for any valid JSON text, and when every element parses and the text around
//! them is what an array needs (checked here: one `[`, one `]`, commas, whitespace), the text
//! is valid JSON. Anything else gives `None`, and the caller reads the file with
//! `serde_json` for its exact error.

use super::quoted::prefix_xor;

/// One element of the array: its text (without the whitespace around it) and its line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Element<'a> {
    pub(crate) text: &'a str,
    /// 1-based line of the element's first byte.
    pub(crate) line: usize,
}

/// Where an element of the array is in the piece of text it was found in: its bytes
/// `start..end` (without the whitespace around it) and its line. Its ends are ASCII bytes
/// (or the piece's ends), so in a piece that is UTF-8 they are character boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Place {
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// 1-based line of the element's first byte.
    pub(crate) line: usize,
}

impl Place {
    /// The element at this place of `text`, the piece it was found in.
    pub(crate) fn of<'a>(&self, text: &'a str) -> Option<Element<'a>> {
        Some(Element { text: text.get(self.start..self.end)?, line: self.line })
    }
}

/// Bits of one 64-byte block: bit `k` is byte `at + k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Masks {
    quote: u64,
    backslash: u64,
    /// `{` and `[`.
    open: u64,
    /// `}` and `]`.
    close: u64,
    comma: u64,
    newline: u64,
}

/// The masks of the 64 bytes of `bytes` at `at` (fewer at the end: bits past the end clear).
#[inline(always)]
fn masks(bytes: &[u8], at: usize) -> Masks {
    let rest = bytes.get(at..).unwrap_or_default();
    match rest.first_chunk::<64>() {
        Some(block) => block_masks(block),
        None => {
            let mut block = [b' '; 64];
            for (to, from) in block.iter_mut().zip(rest) {
                *to = *from;
            }
            block_masks(&block)
        }
    }
}

/// The masks of 64 bytes: SSE2 comparisons, 16 bytes at a time, on x86-64. `{` and `[`
/// (`}` and `]`) differ only by bit 5: one comparison of the bytes with bit 5 set finds both.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
#[expect(unsafe_code, reason = "SSE2 intrinsics, which this target always has (cfg above)")]
fn block_masks(block: &[u8; 64]) -> Masks {
    use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8};
    let mut m = Masks { quote: 0, backslash: 0, open: 0, close: 0, comma: 0, newline: 0 };
    for (k, piece) in block.as_chunks::<16>().0.iter().enumerate() {
        // SAFETY: these intrinsics only need SSE2, enabled for this build (see the cfg); the
        // load reads the 16 bytes of `piece`, with no alignment required.
        let bits = unsafe {
            let v = _mm_loadu_si128(piece.as_ptr().cast::<__m128i>());
            let folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
            let eq = |x: __m128i, byte: u8| _mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(byte as i8))) as u16;
            [eq(v, b'"'), eq(v, b'\\'), eq(folded, b'{'), eq(folded, b'}'), eq(v, b','), eq(v, b'\n')]
        };
        let shift = 16 * k as u32;
        let [quote, backslash, open, close, comma, newline] = bits.map(|b| u64::from(b) << shift);
        m.quote |= quote;
        m.backslash |= backslash;
        m.open |= open;
        m.close |= close;
        m.comma |= comma;
        m.newline |= newline;
    }
    m
}

/// The masks of 64 bytes, eight bytes at a time as words (off x86-64).
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2", not(test)),
    expect(dead_code, reason = "the masks off x86-64; tests compare them with the SSE2 ones")
)]
#[inline(always)]
fn word_block_masks(block: &[u8; 64]) -> Masks {
    use super::quoted::word_bits as bits;
    let mut m = Masks { quote: 0, backslash: 0, open: 0, close: 0, comma: 0, newline: 0 };
    for (k, w) in block.as_chunks::<8>().0.iter().enumerate() {
        let x = u64::from_le_bytes(*w);
        let folded = x | 0x2020_2020_2020_2020;
        let shift = 8 * k as u32;
        m.quote |= bits(x, b'"') << shift;
        m.backslash |= bits(x, b'\\') << shift;
        m.open |= bits(folded, b'{') << shift;
        m.close |= bits(folded, b'}') << shift;
        m.comma |= bits(x, b',') << shift;
        m.newline |= bits(x, b'\n') << shift;
    }
    m
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn block_masks(block: &[u8; 64]) -> Masks {
    word_block_masks(block)
}

/// The characters escaped by a backslash, block by block (simdjson's escape scanner): a
/// backslash escapes the next character unless it is itself escaped, so in a run of
/// backslashes every other one escapes, starting with the first.
#[derive(Debug, Default)]
struct Escapes {
    /// The first character of the next block is escaped.
    next_is_escaped: u64,
}

impl Escapes {
    /// The bits of the escaped characters of a block whose backslashes are `backslash`.
    #[inline(always)]
    fn escaped(&mut self, backslash: u64) -> u64 {
        const ODD_BITS: u64 = 0xAAAA_AAAA_AAAA_AAAA;
        if backslash == 0 {
            return std::mem::take(&mut self.next_is_escaped);
        }
        // The backslashes that start an escape: odd places of each run, counted from its start.
        let potential = backslash & !self.next_is_escaped;
        let maybe_escaped = potential << 1;
        let code = ((maybe_escaped | ODD_BITS).wrapping_sub(potential)) ^ ODD_BITS;
        let escaped = code ^ (backslash | self.next_is_escaped);
        let escape = code & backslash;
        self.next_is_escaped = escape >> 63;
        escaped
    }
}

/// The bits below bit `n` (all of them from 64 on).
#[inline(always)]
fn below(n: u32) -> u64 {
    if n >= 64 { u64::MAX } else { (1u64 << n) - 1 }
}

/// Whether `b` is whitespace in JSON.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The elements of the array that `text` holds (with only whitespace around it), or `None`
/// when its structure is not that of an array (see the module's documentation): the text
/// as one last piece.
#[cfg(test)]
fn array_elements(text: &str) -> Option<Vec<Element<'_>>> {
    let (places, _) = ArraySplit::default().next_elements(text.as_bytes(), true)?;
    places.iter().map(|p| p.of(text)).collect()
}

/// An array cut apart a piece of its text at a time, for a file read in blocks: each piece
/// starts where the one before was consumed, after a comma of depth 1, where no string or
/// escape is open.
#[derive(Debug, Default)]
pub(crate) struct ArraySplit {
    /// The array's `[` is behind (in a consumed piece).
    opened: bool,
    /// Its `]` too.
    closed: bool,
    /// Elements found so far.
    elements: usize,
    /// Line breaks before the next piece.
    lines: usize,
}

impl ArraySplit {
    /// A split of an array that starts after `lines` line breaks of its file.
    pub(crate) fn at_line(lines: usize) -> Self {
        ArraySplit { lines, ..ArraySplit::default() }
    }

    /// The places of the elements of the next piece of the text, and how many of its bytes
    /// are consumed: up to its last comma of depth 1 (0 when it has none: the caller reads on
    /// and comes back with a longer piece), or the whole piece when it is the `last` one,
    /// which ends the text. `None` when the text is not an array (see the module's
    /// documentation). The piece is bytes: it may end inside a character (which is then
    /// not consumed), and the caller checks that the elements are UTF-8.
    pub(crate) fn next_elements(&mut self, bytes: &[u8], last: bool) -> Option<(Vec<Place>, usize)> {
        if self.closed {
            // Only whitespace may follow the array.
            return bytes.iter().all(|&b| is_space(b)).then(|| (Vec::new(), bytes.len()));
        }
        let mut split = Split {
            bytes,
            elements: Vec::with_capacity(bytes.len() / 128),
            region: self.opened.then_some((0, self.lines)),
            ended: None,
            any: self.elements > 0,
            cut: None,
        };
        let (mut escapes, mut inside, mut lines) = (Escapes::default(), 0u64, self.lines);
        let mut depth = usize::from(self.opened);
        let mut at = 0;
        while at < bytes.len() && split.ended.is_none() {
            let m = masks(bytes, at);
            let quotes = m.quote & !escapes.escaped(m.backslash);
            // Inside a string: an opening quote and what follows it, up to its closing quote.
            let in_string = prefix_xor(quotes) ^ inside;
            inside = 0u64.wrapping_sub(in_string >> 63);
            let mut brackets = (m.open | m.close) & !in_string;
            let commas = m.comma & !in_string;
            let mut from = 0u32;
            loop {
                let next = brackets.trailing_zeros();
                if depth == 1 {
                    let mut c = commas & below(next) & !below(from);
                    while c != 0 {
                        let k = c.trailing_zeros();
                        split.separator(at + k as usize, lines + (m.newline & below(k)).count_ones() as usize)?;
                        c &= c - 1;
                    }
                }
                if next >= 64 {
                    break;
                }
                let pos = at + next as usize;
                if m.open & (1u64 << next) != 0 {
                    if depth == 0 {
                        let line = lines + (m.newline & below(next)).count_ones() as usize;
                        split.open(pos, bytes.get(pos) == Some(&b'['), line)?;
                    }
                    depth += 1;
                } else {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        split.close(pos, bytes.get(pos) == Some(&b']'))?;
                        break;
                    }
                }
                from = next + 1;
                brackets &= brackets - 1;
            }
            lines += m.newline.count_ones() as usize;
            at += 64;
        }
        match split.ended {
            Some(end) => {
                if !bytes.get(end + 1..).unwrap_or_default().iter().all(|&b| is_space(b)) {
                    return None;
                }
                self.closed = true;
                self.opened = true;
                self.elements += split.elements.len();
                Some((split.elements, bytes.len()))
            }
            None if last => None,
            // Up to the last separator: the next piece starts with the element after it.
            None => match split.cut {
                Some((pos, line)) => {
                    (self.opened, self.lines) = (true, line);
                    self.elements += split.elements.len();
                    Some((split.elements, pos))
                }
                // No separator yet: nothing is consumed, and the state stays for a longer piece.
                None => Some((Vec::new(), 0)),
            },
        }
    }
}

/// One member of a JSON object, as [`ObjectScan`] finds it: the bytes between the `{` or the
/// comma before it and the comma or `}` after it (`"name": value` with whitespace around),
/// as offsets in the text, and the line breaks before its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) lines: usize,
}

/// The members of the object that a text holds (with only whitespace around it), found
/// block by block, the same way as the elements of an array: strings by the parity of
/// unescaped quotes, the depth by brackets, the members between the commas of depth 1. For
/// a file read a block at a time (each a multiple of 64 bytes, but the last), whose blocks
/// need not be kept. Nothing of the members is checked here.
#[derive(Debug, Default)]
pub(crate) struct ObjectScan {
    escapes: Escapes,
    inside: u64,
    depth: usize,
    lines: usize,
    /// Bytes scanned before the next block.
    at: usize,
    /// Where the current member starts, and the line breaks before it.
    region: Option<(usize, usize)>,
    members: Vec<Member>,
    /// The object's `}` is behind: only whitespace may follow.
    closed: bool,
    /// Something that an object cannot be was found.
    refused: bool,
}

impl ObjectScan {
    /// Scans the next block of the text (a multiple of 64 bytes long, except the last).
    pub(crate) fn block(&mut self, bytes: &[u8]) {
        let mut at = 0;
        while at < bytes.len() && !self.refused {
            let m = masks(bytes, at);
            let quotes = m.quote & !self.escapes.escaped(m.backslash);
            let in_string = prefix_xor(quotes) ^ self.inside;
            self.inside = 0u64.wrapping_sub(in_string >> 63);
            let len = (bytes.len() - at).min(64);
            let mut structural = (m.open | m.close | m.comma) & !in_string & below(len as u32);
            // The bytes from `from` up to the next bracket or comma are at `self.depth`.
            let mut from = 0;
            loop {
                let next = (structural.trailing_zeros() as usize).min(len);
                // Around the object: whitespace only.
                if self.depth == 0 && !bytes.get(at + from..at + next).unwrap_or_default().iter().all(|&b| is_space(b))
                {
                    self.refused = true;
                    return;
                }
                if next >= len {
                    break;
                }
                let pos = self.at + at + next;
                let lines = self.lines + (m.newline & below(next as u32)).count_ones() as usize;
                match (bytes.get(at + next).copied().unwrap_or(b' '), self.depth) {
                    (b',', 0) => self.refused = true,
                    (b',', 1) => self.separator(pos, lines),
                    (b',', _) => {}
                    (b'{', 0) if !self.closed => {
                        self.region = Some((pos + 1, lines));
                        self.depth = 1;
                    }
                    (b'{' | b'[', 0) => self.refused = true,
                    (b'{' | b'[', _) => self.depth += 1,
                    (_, 0) => self.refused = true,
                    (b'}', 1) => {
                        self.separator(pos, lines);
                        (self.region, self.closed, self.depth) = (None, true, 0);
                    }
                    (_, 1) => self.refused = true,
                    (_, _) => self.depth -= 1,
                }
                if self.refused {
                    return;
                }
                from = next + 1;
                structural &= structural - 1;
            }
            self.lines += m.newline.count_ones() as usize;
            at += 64;
        }
        self.at += bytes.len();
    }

    /// The end of a member (a comma of depth 1, or the object's `}`).
    fn separator(&mut self, pos: usize, lines: usize) {
        if let Some((start, start_lines)) = self.region {
            self.members.push(Member { start, end: pos, lines: start_lines });
        }
        self.region = Some((pos + 1, lines));
    }

    /// The members, once the whole text is scanned; `None` when it is not one object with
    /// only whitespace around it (as far as its structure shows).
    pub(crate) fn members(self) -> Option<Vec<Member>> {
        (!self.refused && self.closed && self.depth == 0 && self.inside == 0).then_some(self.members)
    }
}

/// The elements found in a piece so far, and where the current one started.
struct Split<'a> {
    bytes: &'a [u8],
    elements: Vec<Place>,
    /// The byte after the `[` or the comma before the current element, and its line (0-based).
    region: Option<(usize, usize)>,
    /// Where the array's `]` is, once found.
    ended: Option<usize>,
    /// The array has an element (in this piece or one before).
    any: bool,
    /// The byte after the last comma of depth 1, and its line (0-based).
    cut: Option<(usize, usize)>,
}

impl Split<'_> {
    /// A bracket at depth 0: the array's `[`, after whitespace only.
    fn open(&mut self, pos: usize, is_array: bool, line: usize) -> Option<()> {
        let before = self.bytes.get(..pos)?;
        if !is_array || self.ended.is_some() || !before.iter().all(|&b| is_space(b)) {
            return None;
        }
        self.region = Some((pos + 1, line));
        Some(())
    }

    /// A comma at depth 1: the end of an element.
    fn separator(&mut self, pos: usize, line: usize) -> Option<()> {
        let (start, start_line) = self.region?;
        self.push(start, pos, start_line)?;
        self.region = Some((pos + 1, line));
        self.cut = Some((pos + 1, line));
        Some(())
    }

    /// A bracket that closes depth 1: the array's `]` (not a `}`), the end of its last
    /// element, if it has any.
    fn close(&mut self, pos: usize, is_array: bool) -> Option<()> {
        let (start, start_line) = self.region.filter(|_| is_array)?;
        match self.push(start, pos, start_line) {
            Some(()) => {}
            // `[]` (with whitespace) is an empty array; `[1,]` is not valid.
            None if !self.any && self.bytes.get(start..pos)?.iter().all(|&b| is_space(b)) => {}
            None => return None,
        }
        self.ended = Some(pos);
        Some(())
    }

    /// The element between `start` and `end`, whitespace around it left out (`None` when
    /// there is nothing else). `line`: the 0-based line of `start`.
    fn push(&mut self, start: usize, end: usize, line: usize) -> Option<()> {
        let region = self.bytes.get(start..end)?;
        let first = region.iter().position(|&b| !is_space(b))?;
        let last = region.iter().rposition(|&b| !is_space(b))?;
        let newlines = region.get(..first)?.iter().filter(|&&b| b == b'\n').count();
        self.elements.push(Place { start: start + first, end: start + last + 1, line: line + newlines + 1 });
        self.any = true;
        Some(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use proptest::prelude::*;
    use serde_json::value::RawValue;

    use super::*;

    /// The elements as serde_json finds them, with their lines counted byte by byte.
    fn by_serde(text: &str) -> Option<Vec<Element<'_>>> {
        let records: Vec<&RawValue> = serde_json::from_str(text).ok()?;
        let base = text.as_ptr() as usize;
        Some(
            records
                .into_iter()
                .map(|r| {
                    let offset = r.get().as_ptr() as usize - base;
                    let line = 1 + text.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count();
                    Element { text: r.get(), line }
                })
                .collect(),
        )
    }

    /// Splits `text` and checks that, whenever every element is valid JSON, the elements are
    /// serde's, and that a text serde reads is always split.
    fn check(text: &str) -> Result<(), TestCaseError> {
        let serde = by_serde(text);
        match array_elements(text) {
            Some(elements) => {
                let all_valid = elements.iter().all(|e| serde_json::from_str::<serde::de::IgnoredAny>(e.text).is_ok());
                if all_valid {
                    prop_assert_eq!(Some(elements), serde, "{:?}", text);
                }
            }
            None => prop_assert!(serde.is_none(), "valid JSON not split: {:?}", text),
        }
        Ok(())
    }

    #[test]
    fn arrays_of_records() {
        let text = "\n [ {\"a\": \"x,y\", \"b\": [1, {\"c\": \"]\"}]},\n\t{\"a\": \"q\\\"},\"}\r\n, 3 ,\"s\\\\\" ]\n";
        let e = array_elements(text).unwrap();
        let texts: Vec<_> = e.iter().map(|e| (e.text, e.line)).collect();
        assert_eq!(
            texts,
            [
                ("{\"a\": \"x,y\", \"b\": [1, {\"c\": \"]\"}]}", 2),
                ("{\"a\": \"q\\\"},\"}", 3),
                ("3", 4),
                ("\"s\\\\\"", 4),
            ]
        );
        for text in [text, "[]", " [ \n ] ", "[1]", "[{}]", "[[],[[]]]"] {
            check(text).unwrap();
        }
    }

    #[test]
    fn texts_that_are_not_an_array_of_elements_are_refused() {
        for text in [
            "",
            " ",
            "{}",
            "[",
            "]",
            "[1,]",
            "[,1]",
            "[1,,2]",
            "[1] 2",
            "x[1]",
            "[1]]",
            "[[1]",
            "[\"a]",
            "[\"a\\\"]",
            "[1][2]",
            "\u{feff}[1]",
            "[}",
            "[1}",
        ] {
            assert_eq!(array_elements(text), None, "{text:?}");
        }
    }

    #[test]
    fn elements_across_blocks_and_long_runs_of_backslashes() {
        // Strings that end at, and backslash runs that cross, each 64-byte boundary.
        for pad in 0..70 {
            for run in 0..5 {
                let s = format!("{}{}", "x".repeat(pad), "\\\\".repeat(run));
                let text = format!("[\"{s}\", {{\"k\": \"{s}\\\"\"}},\n\"{s}]\"]");
                check(&text).unwrap();
                assert_eq!(array_elements(&text).unwrap().len(), 3, "{text}");
            }
        }
    }

    #[test]
    fn masks_of_words_are_the_masks_of_sse2() {
        let block: [u8; 64] = std::array::from_fn(|k| b"{[}]\",\\\n x"[k % 10]);
        let m = block_masks(&block);
        assert_eq!(word_block_masks(&block), m);
        assert_eq!(m.open & 0b11, 0b11);
        assert_eq!(m.close & 0b1100, 0b1100);
        assert_eq!(m.quote.count_ones() + m.backslash.count_ones() + m.newline.count_ones(), 18);
    }

    /// The elements of `text` read as a reader reads a file: its buffer holds the bytes from
    /// the first not consumed to the last read, `reads[k]` more read each time (cut
    /// anywhere, inside a character too); `None` when a piece is refused.
    fn in_pieces(text: &str, reads: &[usize]) -> Option<Vec<(String, usize)>> {
        let mut split = ArraySplit::default();
        let (mut start, mut end, mut elements) = (0, 0, Vec::new());
        for k in 0.. {
            end = (end + reads[k % reads.len()]).min(text.len());
            let last = end == text.len();
            let (got, consumed) = split.next_elements(&text.as_bytes()[start..end], last)?;
            assert!(text.is_char_boundary(start + consumed), "a piece is consumed up to a character");
            elements.extend(got.into_iter().map(|p| (text[start + p.start..start + p.end].to_string(), p.line)));
            start += consumed;
            if last {
                assert_eq!(start, end, "the last piece is consumed whole");
                break;
            }
        }
        Some(elements)
    }

    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("{".to_string()),
            Just("}".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just(",".to_string()),
            Just(":".to_string()),
            Just("\"".to_string()),
            Just("\\".to_string()),
            Just("\\\"".to_string()),
            Just("\n".to_string()),
            Just(" ".to_string()),
            Just("1".to_string()),
            Just("\"k\":".to_string()),
            Just("null".to_string()),
            "[a-z ]{0,70}",
        ]
    }

    /// A valid array of records whose strings hold brackets, commas, quotes and backslashes.
    fn valid_array() -> impl Strategy<Value = String> {
        let string = "[a-z,\\[\\]{}\" \\\\\n]{0,90}";
        let value = prop_oneof![
            string.prop_map(serde_json::Value::String),
            any::<i32>().prop_map(serde_json::Value::from),
            prop::collection::vec(string, 0..3).prop_map(|v| serde_json::json!(v)),
        ];
        let record = prop::collection::btree_map("[a-z\"\\\\]{1,5}", value, 0..6)
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect()));
        (prop::collection::vec(record, 0..20), any::<bool>()).prop_map(|(records, pretty)| {
            let v = serde_json::Value::Array(records);
            if pretty { serde_json::to_string_pretty(&v).unwrap() } else { serde_json::to_string(&v).unwrap() }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn valid_arrays_are_split_as_serde_reads_them(text in valid_array()) {
            let e = array_elements(&text);
            prop_assert!(e.is_some(), "{:?}", text);
            prop_assert_eq!(e, by_serde(&text));
        }

        #[test]
        fn arrays_read_in_pieces_are_split_as_in_one(
            text in valid_array(),
            reads in prop::collection::vec(1usize..200, 1..40),
        ) {
            let whole = array_elements(&text).map(|e| e.into_iter().map(|e| (e.text.to_string(), e.line)).collect());
            prop_assert!(whole.is_some());
            prop_assert_eq!(in_pieces(&text, &reads), whole);
        }

        #[test]
        fn the_members_of_an_object_are_found_in_blocks_of_any_multiple_of_64_bytes(
            members in prop::collection::vec(("[a-z\"\\\\,{}]{1,6}", valid_array()), 0..5),
            pretty in any::<bool>(),
            units in 1usize..4,
        ) {
            let map: serde_json::Map<String, serde_json::Value> = members
                .into_iter()
                .map(|(k, v)| (k, serde_json::from_str(&v).unwrap()))
                .collect();
            let object = serde_json::Value::Object(map.clone());
            let text = if pretty { serde_json::to_string_pretty(&object).unwrap() } else { object.to_string() };
            let mut scan = ObjectScan::default();
            for block in text.as_bytes().chunks(64 * units) {
                scan.block(block);
            }
            let found = scan.members().unwrap();
            if map.is_empty() {
                // `{}`: one region of nothing.
                prop_assert!(found.len() <= 1);
            } else {
                prop_assert_eq!(found.len(), map.len());
                for (m, (k, v)) in found.iter().zip(&map) {
                    let member = text[m.start..m.end].trim();
                    let (name, value) = member.split_at(serde_json::to_string(k).unwrap().len());
                    prop_assert_eq!(serde_json::from_str::<String>(name).unwrap(), k.clone());
                    let value: serde_json::Value = serde_json::from_str(value.trim_start().strip_prefix(':').unwrap()).unwrap();
                    prop_assert_eq!(&value, v);
                    prop_assert_eq!(m.lines, text[..m.start].matches('\n').count());
                }
            }
        }

        #[test]
        fn any_text_read_in_pieces_is_split_as_in_one(
            pieces in prop::collection::vec(piece(), 0..40),
            reads in prop::collection::vec(1usize..50, 1..20),
        ) {
            for text in [format!("[{}]", pieces.concat()), pieces.concat()] {
                let whole = array_elements(&text).map(|e| e.into_iter().map(|e| (e.text.to_string(), e.line)).collect());
                prop_assert_eq!(in_pieces(&text, &reads), whole, "{:?}", text);
            }
        }

        #[test]
        fn any_text_is_split_as_serde_reads_it_or_refused(
            pieces in prop::collection::vec(piece(), 0..40),
        ) {
            check(&format!("[{}]", pieces.concat()))?;
            check(&pieces.concat())?;
        }

        #[test]
        fn masks_are_the_bytes_found_one_by_one(bytes in prop::collection::vec(any::<u8>(), 64)) {
            let block: [u8; 64] = bytes.clone().try_into().unwrap();
            let naive = |f: &dyn Fn(u8) -> bool| {
                bytes.iter().enumerate().fold(0u64, |m, (k, &b)| if f(b) { m | 1 << k } else { m })
            };
            let want = Masks {
                quote: naive(&|b| b == b'"'),
                backslash: naive(&|b| b == b'\\'),
                open: naive(&|b| b == b'{' || b == b'['),
                close: naive(&|b| b == b'}' || b == b']'),
                comma: naive(&|b| b == b','),
                newline: naive(&|b| b == b'\n'),
            };
            prop_assert_eq!(block_masks(&block), want);
            prop_assert_eq!(word_block_masks(&block), want);
        }
    }
}
