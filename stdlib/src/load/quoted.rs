//! Quoted CSV at the speed of plain CSV: exports that quote their fields (every field, as
//! many CRMs and ERPs write them, or only those with a delimiter, a quote or a line break,
//! as Excel does) are cut into chunks and split 64 bytes at a time, with the quoted regions
//! found by a running parity of the quotes, instead of by the `csv` crate's byte-by-byte
//! state machine (3.7× slower at 10^6 invoices: docs/performance-history.md, round 22).
//!
//! The parity gives the `csv` crate's reading exactly when every quote is *structural*: it
//! opens a field (it follows a delimiter, a line break, the start of the data or, as the
//! second quote of a `""` pair, a quote) or closes one (a delimiter, a line break, the end
//! of the data or a quote follows it). Any other quote (`ab"c`, `"ab"c`) is a character for
//! the `csv` crate but would flip the parity: [`cut_points`] says so, and the chunks of such
//! a block are read by the `csv` crate, as before.

use super::table::{Cell, Row, RowSink};

/// Bits of one 64-byte block of a text: bit `k` is byte `at + k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Masks {
    /// `"`.
    quote: u64,
    /// The delimiter, `\n` and `\r`.
    sep: u64,
    /// `\n`.
    nl: u64,
}

/// The masks of the 64 bytes of `bytes` at `at` (fewer at the end: the bits past the end
/// are clear).
#[inline(always)]
fn masks(bytes: &[u8], at: usize, delimiter: u8) -> Masks {
    let rest = bytes.get(at..).unwrap_or_default();
    match rest.first_chunk::<64>() {
        Some(block) => block_masks(block, delimiter),
        None => {
            let mut block = [0u8; 64];
            for (to, from) in block.iter_mut().zip(rest) {
                *to = *from;
            }
            let m = block_masks(&block, delimiter);
            let valid = (1u64 << rest.len()) - 1;
            Masks { quote: m.quote & valid, sep: m.sep & valid, nl: m.nl & valid }
        }
    }
}

/// The masks of 64 bytes: the processor's SSE2 comparisons, 16 bytes at a time, on x86-64.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
#[expect(unsafe_code, reason = "SSE2 intrinsics, which this target always has (cfg above)")]
fn block_masks(block: &[u8; 64], delimiter: u8) -> Masks {
    use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8};
    let mut m = Masks { quote: 0, sep: 0, nl: 0 };
    for (k, piece) in block.as_chunks::<16>().0.iter().enumerate() {
        // SAFETY: these intrinsics only need SSE2, enabled for this build (see the cfg); the
        // load reads the 16 bytes of `piece`, with no alignment required.
        let (q, s, n) = unsafe {
            let v = _mm_loadu_si128(piece.as_ptr().cast::<__m128i>());
            let eq = |byte: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(byte as i8));
            let nl = eq(b'\n');
            let sep = _mm_or_si128(_mm_or_si128(eq(delimiter), nl), eq(b'\r'));
            (_mm_movemask_epi8(eq(b'"')), _mm_movemask_epi8(sep), _mm_movemask_epi8(nl))
        };
        let shift = 16 * k as u32;
        m.quote |= u64::from(q as u16) << shift;
        m.sep |= u64::from(s as u16) << shift;
        m.nl |= u64::from(n as u16) << shift;
    }
    m
}

/// The masks of 64 bytes, eight bytes at a time as words (off x86-64).
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2", not(test)),
    expect(dead_code, reason = "the masks off x86-64; tests compare them with the SSE2 ones")
)]
#[inline(always)]
fn word_block_masks(block: &[u8; 64], delimiter: u8) -> Masks {
    let bits = word_bits;
    let mut m = Masks { quote: 0, sep: 0, nl: 0 };
    for (k, w) in block.as_chunks::<8>().0.iter().enumerate() {
        let x = u64::from_le_bytes(*w);
        let shift = 8 * k as u32;
        let nl = bits(x, b'\n');
        m.quote |= bits(x, b'"') << shift;
        m.sep |= (bits(x, delimiter) | nl | bits(x, b'\r')) << shift;
        m.nl |= nl << shift;
    }
    m
}

/// Bit `k` is set where byte `k` of the little-endian word `x` is `byte`.
#[inline(always)]
pub(crate) fn word_bits(x: u64, byte: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const ONES: u64 = 0x0101_0101_0101_0101;
    // Bit 7 of each byte equal to `byte` (exactly: no carry crosses bytes), then those
    // eight bits gathered into one byte.
    let v = x ^ (ONES * u64::from(byte));
    let high = !(((v & LOW7) + LOW7) | v | LOW7);
    ((high >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn block_masks(block: &[u8; 64], delimiter: u8) -> Masks {
    word_block_masks(block, delimiter)
}

/// Bit `k` is the parity of the bits `0..=k` of `x`.
#[inline(always)]
pub(crate) fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// The quoted regions of a text, block by block: the state carried from one 64-byte block
/// to the next.
#[derive(Default)]
struct Parity {
    /// Inside a quoted field at the end of the previous block.
    inside: bool,
    /// The last byte of the previous block was a quote or a separator.
    last_opens: bool,
    /// The last byte of the previous block was a closing quote.
    last_closes: bool,
}

impl Parity {
    /// The bits of the block inside quotes (a quote that opens is inside, one that closes
    /// is not), and the bits of the quotes that are not structural (see the module's
    /// documentation). `first`: the block starts the text (a quote may open there); `len`:
    /// the bytes of the block that are text (a closing quote on the last one is checked
    /// with the byte after the text, which is not known here: it is taken as valid).
    #[inline(always)]
    fn block(&mut self, m: &Masks, first: bool, len: usize) -> (u64, u64) {
        let inside = prefix_xor(m.quote) ^ if self.inside { u64::MAX } else { 0 };
        let opening = m.quote & inside;
        let closing = m.quote & !inside;
        let may_follow = m.sep | m.quote;
        let after = (may_follow << 1) | u64::from(self.last_opens || first);
        let bad_open = opening & !after;
        // The byte after each closing quote (the one after the block's last byte is
        // checked with the next block).
        let next_of_closing = (closing << 1) | u64::from(self.last_closes);
        let bad_close = next_of_closing & !may_follow;
        self.inside = inside >> 63 == 1;
        self.last_opens = may_follow >> 63 == 1;
        self.last_closes = closing >> 63 == 1;
        let bad = bad_open | bad_close;
        (inside, if len < 64 { bad & ((1u64 << len) - 1) } else { bad })
    }
}

/// Where to cut `data` (which starts at a record) into chunks of about `chunk` bytes, as
/// `csv_reader::cut_points_from` does, when every quote of `data` is structural;
/// `None` otherwise. A byte after the end of `data` is taken as valid for a closing quote
/// (the rest of an unfinished record is read again with the next block).
pub(crate) fn cut_points(data: &[u8], delimiter: u8, chunk: usize, bom: &[u8]) -> Option<(Vec<usize>, Option<usize>)> {
    let chunk = chunk.max(1);
    let mut cuts = Vec::new();
    let mut last_end = None;
    let mut next = chunk;
    let mut parity = Parity::default();
    let mut at = 0;
    while at < data.len() {
        let m = masks(data, at, delimiter);
        let (inside, bad) = parity.block(&m, at == 0, data.len() - at);
        if bad != 0 {
            return None;
        }
        let mut ends = m.nl & !inside;
        if ends != 0 {
            last_end = Some(at + 64 - ends.leading_zeros() as usize);
        }
        // Only the line feeds from `next` on can be cuts.
        if next >= at + 64 {
            ends = 0;
        } else if next > at {
            ends &= u64::MAX << (next - at);
        }
        while ends != 0 {
            let nl = at + ends.trailing_zeros() as usize;
            ends &= ends - 1;
            if nl < next {
                continue;
            }
            let cut = nl + 1;
            if data.get(cut..).is_some_and(|rest| rest.starts_with(bom)) {
                next = cut + 1;
            } else {
                cuts.push(cut);
                next = cut + chunk;
            }
        }
        at += 64;
    }
    Some((cuts, last_end))
}

/// One field of a quoted record: bytes of the chunk, or of the record's unescaped text.
#[derive(Debug, Clone, Copy)]
enum Span {
    Text(usize, usize),
    Unescaped(usize, usize),
}

/// A record read by [`parse`].
struct QuotedRow<'a> {
    text: &'a str,
    unescaped: &'a str,
    spans: &'a [Span],
    line: usize,
}

impl Row for QuotedRow<'_> {
    fn cell(&self, idx: usize) -> Cell<'_> {
        match self.spans.get(idx) {
            Some(&Span::Text(a, b)) => Cell::Text(super::csv_reader::field(self.text, a, b)),
            Some(&Span::Unescaped(a, b)) => Cell::Text(self.unescaped.get(a..b).unwrap_or_default()),
            None => Cell::Empty,
        }
    }

    fn line(&self) -> usize {
        self.line
    }
}

/// Reads a chunk whose quotes are all structural (see [`cut_points`]) as the `csv` crate
/// does: `\r`, `\n` and `\r\n` end a record outside quotes, empty lines are skipped, a
/// quoted field loses its quotes and each `""` in it becomes `"`, a quote left open runs to
/// the end. The line of a record is one more than the line feeds before it (those inside
/// quoted fields too).
pub(crate) fn parse(text: &str, delimiter: u8, width: usize, sink: &mut RowSink<'_>) {
    let bytes = text.as_bytes();
    let mut spans: Vec<Span> = Vec::with_capacity(width + 1);
    let mut unescaped = String::new();
    let mut parity = Parity::default();
    let mut field_start = 0;
    // Quotes before the current field's start, and line feeds before the record's start.
    let mut quotes_before_field = 0usize;
    let mut line = 1;
    // Before the block at `at`: quotes and line feeds.
    let (mut quotes, mut line_feeds) = (0usize, 0usize);
    let mut at = 0;
    while at < bytes.len() {
        let m = masks(bytes, at, delimiter);
        let (inside, bad) = parity.block(&m, at == 0, bytes.len() - at);
        debug_assert!(bad == 0, "a quote that is not structural in the block at {at}");
        let mut seps = m.sep & !inside;
        while seps != 0 {
            let k = seps.trailing_zeros();
            seps &= seps - 1;
            let i = at + k as usize;
            let below = (1u64 << k) - 1;
            let quotes_here = quotes + (m.quote & below).count_ones() as usize;
            push_field(bytes, field_start, i, quotes_here - quotes_before_field, &mut spans, &mut unescaped);
            quotes_before_field = quotes_here;
            let c = bytes.get(i).copied().unwrap_or(b'\n');
            if c != delimiter {
                // A line break: ends the record, unless nothing came since the last one.
                let only = spans.len() == 1 && matches!(spans.first(), Some(Span::Text(a, b)) if a == b);
                if !only {
                    record(text, &unescaped, &spans, line, width, sink);
                }
                spans.clear();
                unescaped.clear();
                line = 1 + line_feeds + (m.nl & below).count_ones() as usize + usize::from(c == b'\n');
            }
            field_start = i + 1;
        }
        quotes += m.quote.count_ones() as usize;
        line_feeds += m.nl.count_ones() as usize;
        at += 64;
    }
    if !spans.is_empty() || field_start < bytes.len() {
        let end = bytes.len();
        if parity.inside {
            // A quote left open: the field runs to the end, without its opening quote.
            let n = quotes - quotes_before_field;
            let mut s = Span::Text(field_start + 1, end);
            if n > 1 {
                s = unescape(bytes, field_start + 1, end, &mut unescaped);
            }
            spans.push(s);
        } else {
            push_field(bytes, field_start, end, quotes - quotes_before_field, &mut spans, &mut unescaped);
        }
        record(text, &unescaped, &spans, line, width, sink);
    }
}

/// The field `bytes[start..end]`, which holds `quotes` quotes: none (bare), two (quoted,
/// nothing to unescape) or more (quoted, with `""` pairs).
#[inline(always)]
fn push_field(bytes: &[u8], start: usize, end: usize, quotes: usize, spans: &mut Vec<Span>, unescaped: &mut String) {
    let span = match quotes {
        0 => Span::Text(start, end),
        2 => Span::Text(start + 1, end - 1),
        _ => unescape(bytes, start + 1, end - 1, unescaped),
    };
    spans.push(span);
}

/// `bytes[start..end]` (the inside of a quoted field: its quotes come in `""` pairs, but
/// for a last quote of a field left open) with each `""` made one `"`, appended to `out`.
#[cold]
fn unescape(bytes: &[u8], start: usize, end: usize, out: &mut String) -> Span {
    let from = out.len();
    let mut rest = std::str::from_utf8(bytes.get(start..end).unwrap_or_default()).unwrap_or_default();
    while let Some(q) = rest.find('"') {
        // Up to and with the first quote of the pair; the second one is dropped.
        out.push_str(rest.get(..=q).unwrap_or_default());
        rest = rest.get(q + 2..).unwrap_or_default();
    }
    out.push_str(rest);
    Span::Unescaped(from, out.len())
}

/// Hands a record to the sink: skipped when blank, refused when its width is not the header's.
fn record(text: &str, unescaped: &str, spans: &[Span], line: usize, width: usize, sink: &mut RowSink<'_>) {
    let row = QuotedRow { text, unescaped, spans, line };
    if (0..spans.len()).all(|i| matches!(row.cell(i), Cell::Text(s) if super::parse::trim(s).is_empty())) {
        return;
    }
    if spans.len() != width {
        sink.field_count(line, spans.len());
        return;
    }
    sink.row(&row);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The masks byte by byte.
    fn naive_masks(bytes: &[u8], delimiter: u8) -> Masks {
        let mut m = Masks { quote: 0, sep: 0, nl: 0 };
        for (k, &c) in bytes.iter().enumerate().take(64) {
            m.quote |= u64::from(c == b'"') << k;
            m.sep |= u64::from(c == delimiter || c == b'\n' || c == b'\r') << k;
            m.nl |= u64::from(c == b'\n') << k;
        }
        m
    }

    fn alphabet() -> impl Strategy<Value = u8> {
        prop_oneof![
            Just(b'"'),
            Just(b','),
            Just(b';'),
            Just(b'\n'),
            Just(b'\r'),
            Just(0u8),
            Just(b'a'),
            Just(0xa2),
            any::<u8>()
        ]
    }

    proptest! {
        #[test]
        fn masks_are_the_bytes_found_one_by_one(
            bytes in proptest::collection::vec(alphabet(), 0..140),
            at in 0usize..140,
            delimiter in prop_oneof![Just(b','), Just(b';'), Just(b'\t'), Just(0u8)],
        ) {
            let rest = bytes.get(at..).unwrap_or_default();
            prop_assert_eq!(masks(&bytes, at, delimiter), naive_masks(rest, delimiter));
            if let Some(block) = rest.first_chunk::<64>() {
                prop_assert_eq!(word_block_masks(block, delimiter), naive_masks(rest, delimiter));
            }
        }

        #[test]
        fn prefix_xor_is_the_parity_of_the_bits_up_to_each(x in any::<u64>()) {
            let p = prefix_xor(x);
            for k in 0..64 {
                let below = if k == 63 { x } else { x & ((1u64 << (k + 1)) - 1) };
                prop_assert_eq!(p >> k & 1, u64::from(below.count_ones() % 2 == 1));
            }
        }
    }

    #[test]
    fn quotes_that_are_characters_are_found() {
        let structural = |text: &str| cut_points(text.as_bytes(), b',', 1 << 20, b"\xef\xbb\xbf").is_some();
        // Quotes that open and close fields, `""` pairs, quoted line breaks and delimiters.
        assert!(structural("a,\"b\"\n\"c,\nd\",\"e\"\"f\"\r\n\"\",x\n\"\"\"\""));
        // A quote left open runs to the end.
        assert!(structural("a,\"b\nc,d"));
        // A quote inside a bare field, after a closing quote, between two quoted parts.
        assert!(!structural("a,b\"c\n"));
        assert!(!structural("a,\"b\"c\n"));
        assert!(!structural("a,\"b\" \"c\"\n"));
        // Found across the 64-byte blocks too.
        let far = format!("{}\"b\"c\n", "x,".repeat(31));
        assert!(!structural(&far));
        let far = format!("{}x\"b\n", "x,".repeat(31));
        assert!(!structural(&far));
        // A quote on either side of the boundary between two blocks: byte 63 then byte 64.
        assert!(!structural(&format!("{}ab\"c\n", "x,".repeat(31))));
        assert!(!structural(&format!("{}\"ab\"c\n", "x,".repeat(30))));
        assert!(structural(&format!("{}\"c\"\n", "x,".repeat(32))));
        assert!(structural(&format!("{}\"ab\",y\n", "x,".repeat(30))));
        // A closing quote at the end of the data: the byte after it is not known yet.
        assert!(structural("a,\"b\""));
    }

    #[test]
    fn quoted_fields_lose_their_quotes_and_pairs_become_one() {
        let mut out = String::new();
        let text = b"\"a\"\"b\"\"\"\"c\"";
        let span = unescape(text, 1, text.len() - 1, &mut out);
        assert!(matches!(span, Span::Unescaped(0, 6)));
        assert_eq!(out, "a\"b\"\"c");
    }
}
