//! Writing JSON straight into a byte buffer, with the same escaping as `serde_json` (so a
//! value written here and the same value serialised by serde give the same bytes). Plans of
//! millions of invoices are written this way: no intermediate `String` per field or reason.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::datefmt::Ymd;

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
/// have nothing to escape: they are checked eight bytes at a time and copied at once.
#[inline]
pub(crate) fn escape_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    if is_clean(bytes) {
        out.extend_from_slice(bytes);
    } else {
        escape_slow(out, bytes);
    }
}

#[inline]
fn is_clean(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(c);
        if needs_escape(u64::from_le_bytes(word)) {
            return false;
        }
    }
    chunks.remainder().iter().all(|&b| ESCAPE[b as usize] == 0)
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
fn needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    (below_space | has_zero(w ^ (ONES * u64::from(b'"'))) | has_zero(w ^ (ONES * u64::from(b'\\')))) != 0
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

    fn date(&mut self, d: NaiveDate) {
        match Ymd(d).ascii() {
            Some(b) => self.ascii(&b),
            None => self.text(&d.to_string()),
        }
    }

    fn int(&mut self, n: i64) {
        let mut buf = [0u8; 20];
        self.ascii(int_ascii(n, &mut buf));
    }

    /// The same text as `Decimal`'s `Display`.
    fn decimal(&mut self, d: Decimal) {
        let mut buf = [0u8; 64];
        match decimal_ascii(d, &mut buf) {
            Some(b) => self.ascii(b),
            None => self.text(&d.to_string()),
        }
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
        self.extend(b.iter().map(|&c| char::from(c)));
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
    fn ascii(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
}

/// `n` in decimal, at the end of `buf`.
fn int_ascii(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut v = n.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// `d` as its `Display` writes it, or `None` for mantissas beyond 64 bits (rare: the caller
/// falls back to `Display`).
fn decimal_ascii(d: Decimal, buf: &mut [u8; 64]) -> Option<&[u8]> {
    let mut m = u64::try_from(d.mantissa().unsigned_abs()).ok()?;
    let scale = d.scale() as usize;
    // Digits, least significant first, padded with zeros to the scale.
    let mut digits = [0u8; 40];
    let mut n = 0;
    while m != 0 {
        digits[n] = b'0' + (m % 10) as u8;
        m /= 10;
        n += 1;
    }
    if scale > 28 {
        return None;
    }
    while n < scale {
        digits[n] = b'0';
        n += 1;
    }
    let mut len = 0;
    if d.is_sign_negative() {
        buf[len] = b'-';
        len += 1;
    }
    let whole = n - scale;
    if whole == 0 {
        buf[len] = b'0';
        len += 1;
    }
    for k in 0..n {
        if k == whole && scale > 0 {
            buf[len] = b'.';
            len += 1;
        }
        buf[len] = digits[n - 1 - k];
        len += 1;
    }
    Some(&buf[..len])
}

/// Appends `s` as a quoted JSON string.
pub(crate) fn string(out: &mut Vec<u8>, s: &str) {
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
        #[test]
        fn decimals_as_display(m in any::<i64>(), scale in 0u32..=28, negative in any::<bool>()) {
            let mut d = Decimal::new(m, scale);
            d.set_sign_negative(negative);
            let mut s = String::new();
            s.decimal(d);
            prop_assert_eq!(s, d.to_string());
        }

        #[test]
        fn integers_as_display(n in any::<i64>()) {
            let mut s = String::new();
            s.int(n);
            prop_assert_eq!(s, n.to_string());
        }
    }

    #[test]
    fn wide_decimals_fall_back_to_display() {
        for d in [Decimal::MAX, Decimal::MIN, Decimal::new(0, 0), Decimal::new(-5, 3), Decimal::new(12345, 2)] {
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
