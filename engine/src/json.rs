//! Writing JSON straight into a byte buffer, with the same escaping as `serde_json` (so a
//! value written here and the same value serialised by serde give the same bytes). Plans of
//! millions of invoices are written this way: no intermediate `String` per field or reason.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::datefmt::Ymd;
use crate::money::POW10_U64;

/// How each byte is escaped: 0 = as is, `u` = `\u00XX`, otherwise `\` + that byte.
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Appends the contents of a JSON string (without the quotes) for `s`. Most texts of a plan
/// have nothing to escape: they are checked sixteen bytes at a time (see
/// [`pair_escape_mask`]) and copied at once; texts of 8 to 32 bytes (ids, names, labels) are
/// copied in words while they are checked, into room appended whole (a copy of known size)
/// and then cut.
#[inline]
pub(crate) fn escape_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let n = bytes.len();
    if (8..=SHORT).contains(&n) {
        let clean = append_with::<SHORT>(out, |dst| if copy_clean(bytes, dst, 0) { n } else { 0 });
        if clean {
            return;
        }
    } else if n < 8 && is_clean(bytes) {
        append_with::<8>(out, |dst| {
            if n >= 4 {
                dst[..4].copy_from_slice(&bytes[..4]);
                dst[n - 4..n].copy_from_slice(&bytes[n - 4..]);
            } else if n > 0 {
                dst[0] = bytes[0];
                dst[n / 2] = bytes[n / 2];
                dst[n - 1] = bytes[n - 1];
            }
            n
        });
        return;
    }
    if is_clean(bytes) {
        out.extend_from_slice(bytes);
    } else {
        escape_slow(out, bytes);
    }
}

/// The longest text copied a word at a time by [`escape_into`].
const SHORT: usize = 32;

/// Appends `N` zero bytes, lets `fill` write the first of them and keeps as many as it
/// says it wrote (`true` unless none). Appending a copy of known size and cutting it is
/// cheaper than a copy of the exact length. The bytes are written where they stay:
/// building them in a buffer first and then copying the buffer whole reads back, in wide
/// reads, bytes just written in narrow ones, and the processor waits for those writes (a
/// failed store forwarding, which the profiles showed on the buffers' copies).
#[inline(always)]
fn append_with<const N: usize>(out: &mut Vec<u8>, fill: impl FnOnce(&mut [u8; N]) -> usize) -> bool {
    let at = out.len();
    out.extend_from_slice(&[0u8; N]);
    let len = match out.get_mut(at..).and_then(|rest| rest.first_chunk_mut::<N>()) {
        Some(dst) => fill(dst).min(N),
        None => 0,
    };
    out.truncate(at + len);
    len > 0
}

/// Whether `bytes` can be copied into a JSON string as they are. Checked sixteen bytes at a
/// time, the last sixteen overlapping those before; texts of 8 to 15 bytes as two
/// overlapping words, shorter ones as two overlapping halves (or three single bytes).
#[inline]
fn is_clean(bytes: &[u8]) -> bool {
    let n = bytes.len();
    if n >= 16 {
        let mut chunks = bytes.chunks_exact(16);
        for c in &mut chunks {
            if pair_escape_mask(word(c), word(&c[8..])) != 0 {
                return false;
            }
        }
        chunks.remainder().is_empty() || pair_escape_mask(word(&bytes[n - 16..]), word(&bytes[n - 8..])) == 0
    } else if n >= 8 {
        pair_escape_mask(word(bytes), word(&bytes[n - 8..])) == 0
    } else if n >= 4 {
        let half = |b: &[u8]| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        !needs_escape(half(bytes) | half(&bytes[n - 4..]) << 32)
    } else if n > 0 {
        (ESCAPE[bytes[0] as usize] | ESCAPE[bytes[n / 2] as usize] | ESCAPE[bytes[n - 1] as usize]) == 0
    } else {
        true
    }
}

/// Copies `bytes` (8 to 32 of them) to `dst[at..]` in words, the last ones overlapping
/// those before, and says whether they need no escaping.
#[inline(always)]
fn copy_clean(bytes: &[u8], dst: &mut [u8], at: usize) -> bool {
    let n = bytes.len();
    debug_assert!((8..=SHORT).contains(&n) && dst.len() >= at + n);
    let mut put = |i: usize, w: u64| dst[at + i..at + i + 8].copy_from_slice(&w.to_le_bytes());
    if n > 16 {
        let (a, b, c, d) = (word(bytes), word(&bytes[8..]), word(&bytes[n - 16..]), word(&bytes[n - 8..]));
        put(0, a);
        put(8, b);
        put(n - 16, c);
        put(n - 8, d);
        pair_escape_mask(a, b) | pair_escape_mask(c, d) == 0
    } else {
        let (a, b) = (word(bytes), word(&bytes[n - 8..]));
        put(0, a);
        put(n - 8, b);
        pair_escape_mask(a, b) == 0
    }
}

/// Not zero if any of the sixteen bytes of `lo` and `hi` is a control character, `"` or
/// `\\`: one comparison of all sixteen with the processor's SSE2 instructions.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
#[expect(unsafe_code, reason = "SSE2 intrinsics, which this target always has (cfg above)")]
fn pair_escape_mask(lo: u64, hi: u64) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set_epi64x, _mm_set1_epi8,
    };
    // SAFETY: these intrinsics only need SSE2, enabled for this build (see the cfg); they
    // read and write registers only.
    unsafe {
        let v = _mm_set_epi64x(hi as i64, lo as i64);
        // A byte below 0x20 is its own minimum with 0x1f.
        let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(control, quote), backslash)) as u32
    }
}

/// Not zero if any of the sixteen bytes of `lo` and `hi` is a control character, `"` or
/// `\\`.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn pair_escape_mask(lo: u64, hi: u64) -> u32 {
    u32::from(escape_mask(lo) | escape_mask(hi) != 0)
}

/// The first eight bytes of `b` (at least eight long) as a little-endian word.
#[inline(always)]
fn word(b: &[u8]) -> u64 {
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

fn escape_slow(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc = ESCAPE[b as usize];
        if esc == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if esc == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]]);
        } else {
            out.extend_from_slice(&[b'\\', esc]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Whether any of the eight bytes of `w` is a control character, `"` or `\`.
#[inline(always)]
fn needs_escape(w: u64) -> bool {
    escape_mask(w) != 0
}

/// Not zero if any of the eight bytes of `w` is a control character, `"` or `\`.
#[inline(always)]
fn escape_mask(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    below_space | has_zero(w ^ (ONES * u64::from(b'"'))) | has_zero(w ^ (ONES * u64::from(b'\\')))
}

/// Where the text of a reason goes: a `String` (the plan's values) or the contents of a JSON
/// string (escaped). Reasons are written once, through this trait, for both.
pub(crate) trait TextOut {
    /// Any text.
    fn text(&mut self, s: &str);
    /// A literal of the program that needs no escaping (no quote, backslash or control
    /// character: checked in debug builds).
    fn lit(&mut self, s: &'static str);
    /// A double quote.
    fn quote(&mut self);
    /// ASCII digits and punctuation that never need escaping.
    fn ascii(&mut self, b: &[u8]);
    /// A text the program made from its own words, digits and dates, which never needs
    /// escaping: a step's label (`D+30`, `after payment`), an interest's periods, the
    /// scenarios hash (checked in debug builds).
    fn clean(&mut self, s: &str);

    fn date(&mut self, d: NaiveDate) {
        match Ymd(d).ascii() {
            Some(b) => self.ascii(&b),
            None => self.text(&d.to_string()),
        }
    }

    fn int(&mut self, n: i64) {
        let mut buf = [0u8; NUM];
        let len = int_ascii(n, &mut buf);
        self.ascii(&buf[..len]);
    }

    /// The same text as `Decimal`'s `Display`.
    fn decimal(&mut self, d: Decimal) {
        let mut buf = [0u8; NUM];
        match decimal_ascii(d, &mut buf) {
            Some(len) => self.ascii(&buf[..len]),
            None => self.text(&d.to_string()),
        }
    }

    /// Text prepared once in both forms (see [`Pre`]).
    fn pre(&mut self, p: &Pre);
}

/// A text of the program prepared once per render, as is and as the contents of a JSON
/// string, so that texts repeated on every action are not checked and escaped each time.
#[derive(Debug, Default, Clone)]
pub(crate) struct Pre {
    text: String,
    json: Vec<u8>,
}

impl Pre {
    /// The text that `write` writes, in both forms.
    pub(crate) fn of(write: impl Fn(&mut dyn TextOut)) -> Pre {
        let mut text = String::new();
        write(&mut text);
        let mut json = Vec::new();
        write(&mut JsonText(&mut json));
        Pre { text, json }
    }

    /// The text as the contents of a JSON string.
    pub(crate) fn json(&self) -> &[u8] {
        &self.json
    }
}

impl TextOut for String {
    fn text(&mut self, s: &str) {
        self.push_str(s);
    }
    fn lit(&mut self, s: &'static str) {
        self.push_str(s);
    }
    fn quote(&mut self) {
        self.push('"');
    }
    fn ascii(&mut self, b: &[u8]) {
        // ASCII is UTF-8: checked in one pass (a word at a time) rather than pushed as
        // characters one by one.
        match std::str::from_utf8(b) {
            Ok(s) => self.push_str(s),
            Err(_) => self.extend(b.iter().map(|&c| char::from(c))),
        }
    }
    fn clean(&mut self, s: &str) {
        self.push_str(s);
    }
    fn pre(&mut self, p: &Pre) {
        self.push_str(&p.text);
    }
}

/// The place in an output buffer of the fields last written for a key (the addresses of
/// the values they came from), to copy them again for the next record with the same key:
/// the skipped steps of one invoice follow each other. One per output buffer.
#[derive(Default)]
pub(crate) struct Repeat {
    key: (usize, usize),
    at: std::ops::Range<usize>,
}

impl Repeat {
    /// Copies the bytes written last time for `key`, or writes them with `write`.
    #[inline]
    pub(crate) fn write(&mut self, out: &mut Vec<u8>, key: (usize, usize), write: impl FnOnce(&mut Vec<u8>)) {
        if key == self.key && !self.at.is_empty() && self.at.end <= out.len() {
            out.extend_from_within(self.at.clone());
        } else {
            let start = out.len();
            write(out);
            *self = Repeat { key, at: start..out.len() };
        }
    }
}

/// Writes escaped text into JSON bytes; also writes the JSON around it.
pub(crate) struct JsonText<'v>(pub(crate) &'v mut Vec<u8>);

impl JsonText<'_> {
    /// JSON syntax or text known to need no escaping.
    #[inline(always)]
    pub(crate) fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }

    /// A quoted string.
    pub(crate) fn string(&mut self, s: &str) {
        string(self.0, s);
    }

    /// A date as a quoted `YYYY-MM-DD` string.
    pub(crate) fn quoted_date(&mut self, d: NaiveDate) {
        self.0.push(b'"');
        self.date(d);
        self.0.push(b'"');
    }

    /// A decimal as a quoted string (as `rust_decimal`'s serde support writes it).
    pub(crate) fn quoted_decimal(&mut self, d: Decimal) {
        self.0.push(b'"');
        self.decimal(d);
        self.0.push(b'"');
    }

    /// A list of quoted strings.
    pub(crate) fn string_list<'s>(&mut self, values: impl IntoIterator<Item = &'s str>) {
        self.0.push(b'[');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.0.push(b',');
            }
            string(self.0, v);
        }
        self.0.push(b']');
    }
}

impl TextOut for JsonText<'_> {
    #[inline]
    fn text(&mut self, s: &str) {
        escape_into(self.0, s);
    }
    #[inline(always)]
    fn lit(&mut self, s: &'static str) {
        debug_assert!(is_clean(s.as_bytes()), "literal `{s}` needs escaping");
        self.0.extend_from_slice(s.as_bytes());
    }
    fn quote(&mut self) {
        self.0.extend_from_slice(b"\\\"");
    }
    #[inline]
    fn ascii(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    #[inline]
    fn clean(&mut self, s: &str) {
        debug_assert!(is_clean(s.as_bytes()), "`{s}` needs escaping");
        self.0.extend_from_slice(s.as_bytes());
    }
    #[inline]
    fn date(&mut self, d: NaiveDate) {
        match Ymd(d).ascii() {
            Some(b) => self.0.extend_from_slice(&b),
            None => self.text(&d.to_string()),
        }
    }
    #[inline]
    fn int(&mut self, n: i64) {
        append_with::<NUM>(self.0, |buf| int_ascii(n, buf));
    }
    #[inline]
    fn decimal(&mut self, d: Decimal) {
        if !append_with::<NUM>(self.0, |buf| decimal_ascii(d, buf).unwrap_or(0)) {
            self.text(&d.to_string());
        }
    }
    #[inline]
    fn pre(&mut self, p: &Pre) {
        self.0.extend_from_slice(&p.json);
    }
}

/// The two ASCII digits of each number below 100.
pub(crate) const DIGITS2: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// The two digits of `n` (below 100).
#[inline(always)]
pub(crate) fn two_digits(n: u32) -> [u8; 2] {
    debug_assert!(n < 100);
    let i = (n as usize) * 2;
    [DIGITS2[i], DIGITS2[i + 1]]
}

/// The number of decimal digits of `v` (1 for 0).
#[inline(always)]
fn digit_count(v: u64) -> usize {
    v.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// Writes the digits of `v` (two at a time) so that they end just before `buf[end]`;
/// returns where they start.
#[inline(always)]
fn digits_before(mut v: u64, buf: &mut [u8], mut end: usize) -> usize {
    while v >= 100 {
        let r = (v % 100) as u32;
        v /= 100;
        end -= 2;
        buf[end..end + 2].copy_from_slice(&two_digits(r));
    }
    if v >= 10 {
        end -= 2;
        buf[end..end + 2].copy_from_slice(&two_digits(v as u32));
    } else {
        end -= 1;
        buf[end] = b'0' + v as u8;
    }
    end
}

/// Room for any number written by [`int_ascii`] or [`decimal_ascii`], and more: appending
/// the whole buffer (a copy of known size) then cutting it is cheaper than a copy of the
/// exact length.
const NUM: usize = 32;

/// `n` in decimal at the start of `buf`; returns its length.
#[inline]
fn int_ascii(n: i64, buf: &mut [u8; NUM]) -> usize {
    let v = n.unsigned_abs();
    let neg = usize::from(n < 0);
    let len = neg + digit_count(v);
    buf[0] = b'-';
    digits_before(v, buf, len);
    len
}

/// `m` divided by 10^`scale`, and the remainder (a hardware division: kept out of line, so
/// that the compiler does not merge the constant division of [`decimal_ascii`]'s usual
/// scale into it).
#[inline(never)]
fn split_at_scale(m: u64, scale: usize) -> Option<(u64, u64)> {
    match POW10_U64.get(scale) {
        Some(p) => Some((m / p, m % p)),
        // 10^20 and more: the whole part is 0.
        None if scale <= 28 => Some((0, m)),
        None => None,
    }
}

/// `d` at the start of `buf` as its `Display` writes it (returns the length), or `None` for
/// mantissas beyond 64 bits (rare: the caller falls back to `Display`).
#[inline]
fn decimal_ascii(d: Decimal, buf: &mut [u8; NUM]) -> Option<usize> {
    // The mantissa's words as stored (no 128-bit value to build, negate and narrow).
    let u = d.unpack();
    if u.hi != 0 {
        return None;
    }
    let m = (u64::from(u.mid) << 32) | u64::from(u.lo);
    let neg = usize::from(u.negative);
    buf[0] = b'-';
    // Amounts (scale 2): the whole part, a point and two digits, with the constant division
    // (a multiplication) and no loop for the fraction.
    if u.scale == 2 {
        let (whole, frac) = (m / 100, (m % 100) as u32);
        let len = neg + digit_count(whole) + 3;
        buf[len - 2..len].copy_from_slice(&two_digits(frac));
        buf[len - 3] = b'.';
        digits_before(whole, buf, len - 3);
        return Some(len);
    }
    let scale = u.scale as usize;
    // Whole part and fraction. When the usual scales were arms of one `match`, the compiler
    // made their constants a table and one hardware division for all of them (tens of
    // cycles a decimal).
    let (whole, frac) = match scale {
        0 => (m, 0),
        _ => split_at_scale(m, scale)?,
    };
    let len = neg + digit_count(whole) + if scale > 0 { 1 + scale } else { 0 };
    let mut i = len;
    if scale > 0 {
        // Exactly `scale` digits, zeros first.
        let (mut f, mut k) = (frac, scale);
        while k >= 2 {
            i -= 2;
            buf[i..i + 2].copy_from_slice(&two_digits((f % 100) as u32));
            f /= 100;
            k -= 2;
        }
        if k == 1 {
            i -= 1;
            buf[i] = b'0' + f as u8;
        }
        i -= 1;
        buf[i] = b'.';
    }
    digits_before(whole, buf, i);
    Some(len)
}

/// Appends `s` as a quoted JSON string. Like [`escape_into`], with the quotes in the same
/// copy for texts of 8 to 32 bytes.
#[inline]
pub(crate) fn string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let n = bytes.len();
    if (8..=SHORT).contains(&n) {
        let clean = append_with::<{ SHORT + 2 }>(out, |dst| {
            dst[0] = b'"';
            dst[n + 1] = b'"';
            if copy_clean(bytes, dst, 1) { n + 2 } else { 0 }
        });
        if clean {
            return;
        }
    }
    out.push(b'"');
    escape_into(out, s);
    out.push(b'"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn same_escaping_as_serde_json(s in any::<String>()) {
            let mut out = Vec::new();
            string(&mut out, &s);
            prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&s).unwrap());
        }
    }

    proptest! {
        /// Short texts of mostly clean characters, one to escape anywhere (every length and
        /// position of the word-at-a-time check).
        #[test]
        fn same_escaping_as_serde_json_short_texts(s in "[a-z0-9 é€]{0,40}", at in 0usize..41, c in prop::sample::select(vec!['"', '\\', '\n', '\u{1}', '\u{1f}', '\u{7f}', 'a'])) {
            let mut s: Vec<char> = s.chars().collect();
            s.insert(at.min(s.len()), c);
            let s: String = s.into_iter().collect();
            let mut out = Vec::new();
            string(&mut out, &s);
            prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&s).unwrap());
            // The same text inside a string being written, after any number of bytes.
            let mut out = b"\"".to_vec();
            out.extend(std::iter::repeat_n(b'x', at % 7));
            JsonText(&mut out).text(&s);
            out.push(b'"');
            let mut want = "x".repeat(at % 7);
            want.push_str(&s);
            prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&want).unwrap());
        }

        #[test]
        fn decimals_as_display(m in any::<i64>(), scale in 0u32..=28, negative in any::<bool>()) {
            let mut d = Decimal::new(m, scale);
            d.set_sign_negative(negative);
            let mut s = String::new();
            s.decimal(d);
            prop_assert_eq!(s, d.to_string());
        }

        #[test]
        fn small_decimals_as_display(m in -10_000_000i64..10_000_000, scale in 0u32..=8) {
            let d = Decimal::new(m, scale);
            let mut s = String::new();
            s.decimal(d);
            prop_assert_eq!(&s, &d.to_string());
            let mut out = Vec::new();
            JsonText(&mut out).quoted_decimal(d);
            prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&d.to_string()).unwrap());
        }

        #[test]
        fn integers_as_display(n in any::<i64>()) {
            let mut s = String::new();
            s.int(n);
            prop_assert_eq!(&s, &n.to_string());
            let mut out = b"x".to_vec();
            JsonText(&mut out).int(n);
            prop_assert_eq!(String::from_utf8(out).unwrap(), format!("x{n}"));
        }
    }

    #[test]
    fn wide_decimals_fall_back_to_display() {
        let mut negative_zero = Decimal::new(0, 2);
        negative_zero.set_sign_negative(true);
        for d in [
            Decimal::MAX,
            Decimal::MIN,
            Decimal::new(0, 0),
            Decimal::new(-5, 3),
            Decimal::new(12345, 2),
            negative_zero,
            Decimal::from_i128_with_scale(u64::MAX as i128, 28),
            Decimal::from_i128_with_scale(u64::MAX as i128 + 1, 3),
            Decimal::new(i64::MIN, 0),
        ] {
            let mut s = String::new();
            s.decimal(d);
            assert_eq!(s, d.to_string());
        }
    }

    #[test]
    fn control_characters_quotes_and_backslashes() {
        let s = "a\"b\\c\n\t\r\u{8}\u{c}\u{1}\u{1f}é€";
        let mut out = Vec::new();
        string(&mut out, s);
        assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(s).unwrap());
    }
}
