//! Parsing of cell text: dates, amounts, booleans, currencies. No allocation on the happy path.

use std::str::FromStr;

use chrono::NaiveDate;
use iso_currency::Currency;
use rust_decimal::Decimal;

use super::DateFormat;

/// `s.trim()`, without scanning when both ends are visible ASCII (the usual cell).
#[inline]
pub(crate) fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) if !(first.is_ascii_graphic() && last.is_ascii_graphic()) => s.trim(),
        _ => s,
    }
}

/// Parses a date: always `YYYY-MM-DD` (a time part after `T` or a space is ignored); with
/// [`DateFormat::DayMonthYear`] also `dd/mm/yyyy` (or with `.` or `-`, one-digit day and month).
pub fn parse_date(s: &str, format: DateFormat) -> Option<NaiveDate> {
    let s = trim(s);
    let b = s.as_bytes();
    if let Some((&[y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1], rest)) = b.split_first_chunk::<10>()
        && matches!(rest.first(), None | Some(b'T' | b' '))
    {
        let y = two_digits(y0, y1)? * 100 + two_digits(y2, y3)?;
        return NaiveDate::from_ymd_opt(y as i32, two_digits(m0, m1)?, two_digits(d0, d1)?);
    }
    if format == DateFormat::DayMonthYear {
        let date = s.split([' ', 'T']).next().unwrap_or(s);
        let mut parts = date.splitn(3, ['/', '.', '-']);
        let d = parts.next().filter(|p| (1..=2).contains(&p.len())).and_then(|p| digits(p.as_bytes()))?;
        let m = parts.next().filter(|p| (1..=2).contains(&p.len())).and_then(|p| digits(p.as_bytes()))?;
        let y = parts.next().filter(|p| p.len() == 4).and_then(|p| digits(p.as_bytes()))?;
        return NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d);
    }
    None
}

pub(crate) fn two_digits(a: u8, b: u8) -> Option<u32> {
    let (a, b) = (a.wrapping_sub(b'0'), b.wrapping_sub(b'0'));
    (a < 10 && b < 10).then(|| u32::from(a) * 10 + u32::from(b))
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() {
        return None;
    }
    let mut n: u32 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(c - b'0');
    }
    Some(n)
}

/// Parses an amount. Spaces, no-break spaces (U+00A0, U+202F) and `'` group thousands; with
/// `decimal_comma` the decimal mark is `,` and `.` also groups thousands (`1.234,56`),
/// otherwise the mark is `.` and a comma is refused (it would be ambiguous). Groups after the
/// first must have exactly three digits, so `1234.56` is refused with a decimal comma.
pub fn parse_decimal(s: &str, decimal_comma: bool) -> Option<Decimal> {
    let s = trim(s);
    match plain_decimal(s.as_bytes(), if decimal_comma { b',' } else { b'.' }) {
        Some(d) => Some(d),
        None => grouped_decimal(s, decimal_comma),
    }
}

/// [`parse_decimal`] of a trimmed text, character by character.
fn grouped_decimal(s: &str, decimal_comma: bool) -> Option<Decimal> {
    let (mark, dot_groups) = if decimal_comma { (',', true) } else { ('.', false) };
    let mut buf = [0u8; 48];
    let mut len = 0usize;
    let mut chars = s.chars().peekable();
    match chars.peek() {
        Some('-') => {
            buf[0] = b'-';
            len = 1;
            chars.next();
        }
        Some('+') => {
            chars.next();
        }
        _ => {}
    }
    let mut seen_mark = false;
    let mut seen_sep = false;
    let mut group = 0usize; // digits since the last separator (or since the start)
    let mut int_digits = 0usize;
    let mut frac_digits = 0usize;
    for c in chars {
        if c.is_ascii_digit() {
            if len >= buf.len() {
                return None;
            }
            buf[len] = c as u8;
            len += 1;
            if seen_mark {
                frac_digits += 1;
            } else {
                int_digits += 1;
                group += 1;
            }
        } else if c == mark && !seen_mark {
            if seen_sep && group != 3 {
                return None;
            }
            if len >= buf.len() {
                return None;
            }
            buf[len] = b'.';
            len += 1;
            seen_mark = true;
        } else if !seen_mark && (c == ' ' || c == '\u{a0}' || c == '\u{202f}' || c == '\'' || (dot_groups && c == '.'))
        {
            // a separator must follow 1–3 digits (first group) or exactly 3
            if group == 0 || group > 3 || (seen_sep && group != 3) {
                return None;
            }
            seen_sep = true;
            group = 0;
        } else {
            return None;
        }
    }
    if int_digits == 0 || (seen_sep && group != 3) || (seen_mark && frac_digits == 0) {
        return None;
    }
    let text = std::str::from_utf8(&buf[..len]).ok()?;
    Decimal::from_str(text).ok()
}

/// The usual amount, `-?[0-9]+(mark[0-9]+)?` with at most 18 digits, read without going
/// through text: the same value and scale as [`parse_decimal`] gives. `None` for anything
/// else (which [`parse_decimal`] then reads the long way).
fn plain_decimal(b: &[u8], mark: u8) -> Option<Decimal> {
    let (negative, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut mantissa: u64 = 0;
    let mut scale = None;
    for (i, &c) in digits.iter().enumerate() {
        if c.is_ascii_digit() {
            mantissa = mantissa * 10 + u64::from(c - b'0');
        } else if c == mark && scale.is_none() && i > 0 && i + 1 < digits.len() {
            scale = Some(digits.len() - i - 1);
        } else {
            return None;
        }
    }
    // At most 18 digits: no overflow, and the scale is at most 17.
    if scale.is_none() && digits.len() > 18 {
        return None;
    }
    let scale = u32::try_from(scale.unwrap_or(0)).ok()?;
    Some(Decimal::from_parts(mantissa as u32, (mantissa >> 32) as u32, 0, negative, scale))
}

/// Parses a yes/no value: `true`/`false`, `yes`/`no`, `y`/`n`, `1`/`0`, `oui`/`non`, `vrai`/`faux`,
/// `x` (yes) and empty (no), any case.
pub fn parse_bool(s: &str) -> Option<bool> {
    let s = trim(s);
    const YES: [&str; 7] = ["true", "yes", "y", "1", "oui", "vrai", "x"];
    const NO: [&str; 6] = ["false", "no", "n", "0", "non", "faux"];
    if s.is_empty() {
        return Some(false);
    }
    if YES.iter().any(|y| s.eq_ignore_ascii_case(y)) {
        return Some(true);
    }
    if NO.iter().any(|n| s.eq_ignore_ascii_case(n)) {
        return Some(false);
    }
    None
}

/// Parses an ISO 4217 code, any case (`eur` → EUR).
pub fn parse_currency(s: &str) -> Option<Currency> {
    let b = trim(s).as_bytes();
    if b.len() != 3 {
        return None;
    }
    let up = [b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase(), b[2].to_ascii_uppercase()];
    Currency::from_code(std::str::from_utf8(&up).ok()?)
}

/// Formats a decimal the French way: thousands grouped with `sep`, decimal comma.
#[cfg(test)]
pub(crate) fn format_french(d: Decimal, sep: char) -> String {
    let plain = d.abs().to_string();
    let (int, frac) = match plain.split_once('.') {
        Some((i, f)) => (i.to_string(), Some(f.to_string())),
        None => (plain.clone(), None),
    };
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(sep);
        }
        grouped.push(c);
    }
    let mut out = String::new();
    if d.is_sign_negative() && !d.is_zero() {
        out.push('-');
    }
    out.push_str(&grouped);
    if let Some(f) = frac {
        out.push(',');
        out.push_str(&f);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("2026-03-31", DateFormat::Iso), Some(d(2026, 3, 31)));
        assert_eq!(parse_date(" 2026-03-31T00:00:00 ", DateFormat::Iso), Some(d(2026, 3, 31)));
        assert_eq!(parse_date("31/03/2026", DateFormat::Iso), None);
        assert_eq!(parse_date("31/03/2026", DateFormat::DayMonthYear), Some(d(2026, 3, 31)));
        assert_eq!(parse_date("1.3.2026", DateFormat::DayMonthYear), Some(d(2026, 3, 1)));
        assert_eq!(parse_date("2026-03-31", DateFormat::DayMonthYear), Some(d(2026, 3, 31)));
        assert_eq!(parse_date("31/02/2026", DateFormat::DayMonthYear), None);
        assert_eq!(parse_date("31/03/26", DateFormat::DayMonthYear), None);
        assert_eq!(parse_date("2026-13-01", DateFormat::Iso), None);
        assert_eq!(parse_date("", DateFormat::Iso), None);
    }

    /// `parse_date` as it was written before its ISO fast path, as an oracle.
    fn parse_date_oracle(s: &str, format: DateFormat) -> Option<NaiveDate> {
        let s = s.trim();
        let b = s.as_bytes();
        if b.len() >= 10 && b[4] == b'-' && b[7] == b'-' && (b.len() == 10 || b[10] == b'T' || b[10] == b' ') {
            let y = digits(&b[0..4])?;
            let m = digits(&b[5..7])?;
            let d = digits(&b[8..10])?;
            return NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d);
        }
        if format == DateFormat::DayMonthYear {
            let date = s.split([' ', 'T']).next().unwrap_or(s);
            let mut parts = date.splitn(3, ['/', '.', '-']);
            let d = parts.next().filter(|p| (1..=2).contains(&p.len())).and_then(|p| digits(p.as_bytes()))?;
            let m = parts.next().filter(|p| (1..=2).contains(&p.len())).and_then(|p| digits(p.as_bytes()))?;
            let y = parts.next().filter(|p| p.len() == 4).and_then(|p| digits(p.as_bytes()))?;
            return NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d);
        }
        None
    }

    /// Date-like text: valid and invalid days (Feb 29 of common and leap years, day 0, month
    /// 13), signs, spaces, time parts, other separators, day-first forms.
    fn date_text() -> impl Strategy<Value = String> {
        prop_oneof![
            (0u32..10_000, 0u32..14, 0u32..33, "(|T12:00|T| 08:00|x|0)", "[ \u{a0}]{0,2}")
                .prop_map(|(y, m, d, tail, pad)| format!("{pad}{y:04}-{m:02}-{d:02}{tail}{pad}")),
            (0u32..33, 0u32..14, 0u32..10_000, prop_oneof![Just('/'), Just('.'), Just('-')])
                .prop_map(|(d, m, y, sep)| format!("{d}{sep}{m}{sep}{y:04}")),
            "[0-9+-/T .]{0,12}",
            "[0-9]{4}-[0-9+ -]{2}-[0-9+ -]{2}",
        ]
    }

    proptest! {
        #[test]
        fn the_iso_fast_path_agrees_with_the_oracle(s in date_text(), day_first in any::<bool>()) {
            let format = if day_first { DateFormat::DayMonthYear } else { DateFormat::Iso };
            prop_assert_eq!(parse_date(&s, format), parse_date_oracle(&s, format), "{:?}", s);
        }
    }

    #[test]
    fn leap_days() {
        assert_eq!(parse_date("2024-02-29", DateFormat::Iso), Some(d(2024, 2, 29)));
        assert_eq!(parse_date("2026-02-29", DateFormat::Iso), None);
        assert_eq!(parse_date("1900-02-29", DateFormat::Iso), None);
        assert_eq!(parse_date("2000-02-29", DateFormat::Iso), Some(d(2000, 2, 29)));
        assert_eq!(parse_date("2026-00-10", DateFormat::Iso), None);
        assert_eq!(parse_date("2026-01-00", DateFormat::Iso), None);
        assert_eq!(parse_date("2026-+1-10", DateFormat::Iso), None);
        assert_eq!(parse_date("2026-01-10x", DateFormat::Iso), None);
    }

    #[test]
    fn amounts_with_a_decimal_point() {
        assert_eq!(parse_decimal("1234.56", false), Some(dec!(1234.56)));
        assert_eq!(parse_decimal("-12", false), Some(dec!(-12)));
        assert_eq!(parse_decimal("1 234.56", false), Some(dec!(1234.56)));
        assert_eq!(parse_decimal("1234,56", false), None);
        assert_eq!(parse_decimal("12a", false), None);
        assert_eq!(parse_decimal("", false), None);
        assert_eq!(parse_decimal(".5", false), None);
        assert_eq!(parse_decimal("5.", false), None);
    }

    #[test]
    fn amounts_with_a_decimal_comma() {
        assert_eq!(parse_decimal("1 234,56", true), Some(dec!(1234.56)));
        assert_eq!(parse_decimal("1\u{a0}234,56", true), Some(dec!(1234.56)));
        assert_eq!(parse_decimal("1\u{202f}234\u{202f}567,5", true), Some(dec!(1234567.5)));
        assert_eq!(parse_decimal("1.234,56", true), Some(dec!(1234.56)));
        assert_eq!(parse_decimal("1234,56", true), Some(dec!(1234.56)));
        assert_eq!(parse_decimal("80", true), Some(dec!(80)));
        assert_eq!(parse_decimal("1234.56", true), None);
        assert_eq!(parse_decimal("12 34,5", true), None);
        assert_eq!(parse_decimal("1,2,3", true), None);
    }

    #[test]
    fn booleans_and_currencies() {
        for y in ["true", "YES", "Oui", "1", "x", "X"] {
            assert_eq!(parse_bool(y), Some(true), "{y}");
        }
        for n in ["false", "No", "non", "0", ""] {
            assert_eq!(parse_bool(n), Some(false), "{n}");
        }
        assert_eq!(parse_bool("maybe"), None);
        assert_eq!(parse_currency("eur"), Some(Currency::EUR));
        assert_eq!(parse_currency("EURO"), None);
        assert_eq!(parse_currency("XYZ"), None);
    }

    #[test]
    fn plain_amounts_keep_their_scale_and_sign() {
        let exact = |s: &str, comma: bool| parse_decimal(s, comma).map(|d| d.serialize());
        assert_eq!(exact("1.50", false), Some(dec!(1.50).serialize()));
        assert_eq!(exact("007.50", false), Some(dec!(7.50).serialize()));
        assert_eq!(exact("-0.00", false), Some(dec!(0.00).serialize()));
        assert_eq!(exact("+12", false), Some(dec!(12).serialize()));
        assert_eq!(exact("999999999999999999", false), Some(dec!(999999999999999999).serialize()));
        assert_eq!(exact("99999999999999999999.5", false), Some(dec!(99999999999999999999.5).serialize()));
        assert_eq!(exact("12,5", true), Some(dec!(12.5).serialize()));
        assert_eq!(exact("-", false), None);
        assert_eq!(exact("1.2.3", false), None);
        assert_eq!(exact("+-1", false), None);
    }

    /// The text of amounts, valid or nearly: signs, leading zeros, marks, group separators,
    /// many digits, spaces around.
    fn amount_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[ ]?[+-]{0,2}[0-9]{0,22}([.,][0-9]{0,22})?[ ]?",
            "[+-]?[0-9 .,'\u{a0}\u{202f}a]{0,12}",
            (-10_000_000_000i64..10_000_000_000i64, 0u32..6).prop_map(|(m, s)| Decimal::new(m, s).to_string()),
        ]
    }

    proptest! {
        #[test]
        fn the_plain_amount_path_agrees_with_the_character_path(s in amount_text(), comma in any::<bool>()) {
            let fast = parse_decimal(&s, comma).map(|d| d.serialize());
            let slow = grouped_decimal(s.trim(), comma).map(|d| d.serialize());
            prop_assert_eq!(fast, slow, "{:?}", s);
        }

        #[test]
        fn trim_is_str_trim(s in "[ \t\r\n\u{b}\u{c}\u{1}\u{a0}\u{202f}\u{3000}\u{85}aé,-]{0,6}") {
            prop_assert_eq!(trim(&s), s.trim());
        }
    }

    proptest! {
        #[test]
        fn french_amounts_round_trip(mantissa in -10_000_000_000i64..10_000_000_000i64, scale in 0u32..4, sep in 0usize..5) {
            let value = Decimal::new(mantissa, scale);
            let sep = [' ', '\u{a0}', '\u{202f}', '.', '\''][sep];
            let text = format_french(value, sep);
            prop_assert_eq!(parse_decimal(&text, true), Some(value), "{}", text);
        }
    }
}
