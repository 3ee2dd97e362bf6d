//! Parsing of cell text: dates, amounts, booleans, currencies. No allocation on the happy path.

use std::str::FromStr;

use chrono::NaiveDate;
use iso_currency::Currency;
use rust_decimal::Decimal;

use super::DateFormat;

/// Parses a date: always `YYYY-MM-DD` (a time part after `T` or a space is ignored); with
/// [`DateFormat::DayMonthYear`] also `dd/mm/yyyy` (or with `.` or `-`, one-digit day and month).
pub fn parse_date(s: &str, format: DateFormat) -> Option<NaiveDate> {
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
    let s = s.trim();
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

/// Parses a yes/no value: `true`/`false`, `yes`/`no`, `y`/`n`, `1`/`0`, `oui`/`non`, `vrai`/`faux`,
/// `x` (yes) and empty (no), any case.
pub fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim();
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
    let b = s.trim().as_bytes();
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
