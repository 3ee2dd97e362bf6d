//! The optional `portfolio.toml` of a portfolio folder: how its export is written.
//!
//! It is a small subset of TOML, read without a TOML library:
//!
//! ```toml
//! # How our ERP writes its export.
//! decimal_comma = true             # 1 234,56
//! date_format = "dd/mm/yyyy"       # or "yyyy-mm-dd" (the default)
//! delimiter = ";"                  # "," ";" "tab"; detected from the header when absent
//! default_currency = "EUR"         # for invoices without a currency
//! eom_reading = "end-of-month-then-days"   # or "days-then-end-of-month"
//!
//! [invoices]                       # our field = "their header"
//! id = "N° facture"
//! customer_id = "Code client"
//! amount = "Montant TTC"
//!
//! [customers]
//! id = "Code client"
//! name = "Raison sociale"
//! ```
//!
//! Dotted keys work too: `invoices.amount = "Montant TTC"`. Values are `"double-quoted"`
//! strings (with `\"` and `\\`), `true` or `false`. `#` starts a comment outside strings.

use std::path::Path;

use super::error::{LoadError, LoadErrorKind, LoadErrors};
use super::parse::parse_currency;
use super::table::{C_FIELDS, I_FIELDS, P_FIELDS};
use super::{DateFormat, LoadOptions};
use crate::terms::EomReading;

/// Reads a mapping file and applies its settings on top of `options`.
pub fn apply_file(path: &Path, options: &mut LoadOptions) -> Result<(), LoadErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| super::io_error(path, &e))?;
    apply_str(&text, &super::display_name(path), options)
}

#[derive(Debug)]
enum Value {
    Str(String),
    Bool(bool),
}

/// Applies the settings written in `text` (the content of a file named `file`).
pub fn apply_str(text: &str, file: &str, options: &mut LoadOptions) -> Result<(), LoadErrors> {
    apply_lines(text, file, options).map_err(|e| LoadErrors::from(*e))
}

fn apply_lines(text: &str, file: &str, options: &mut LoadOptions) -> Result<(), Box<LoadError>> {
    let mut section: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let err = |message: String, help: &str| {
            Box::new(LoadError {
                kind: LoadErrorKind::Mapping,
                file: file.to_string(),
                sheet: None,
                line: Some(line_no),
                column: None,
                column_letter: None,
                value: Some(raw.trim().to_string()),
                message,
                help: Some(help.to_string()),
            })
        };
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .map(str::trim)
                .ok_or_else(|| err(format!("`{line}` is not a section header"), "write a section as `[invoices]`"))?;
            if !["customers", "invoices", "payments"].contains(&name) {
                return Err(err(
                    format!("`{name}` is not a table"),
                    "sections are `[customers]`, `[invoices]` and `[payments]`",
                ));
            }
            section = Some(name.to_string());
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(err(format!("`{line}` is not a setting"), "write `key = \"value\"`"));
        };
        let key = unquote_key(key.trim());
        let value = parse_value(value.trim()).ok_or_else(|| {
            err(
                format!("`{}` is not a value", value.trim()),
                "write text in double quotes (`\"Montant TTC\"`), or `true` / `false`",
            )
        })?;
        let (table, field) = match (&section, key.split_once('.')) {
            (Some(t), _) => (Some(t.as_str()), key.as_str()),
            (None, Some((t, f))) => (Some(t), f),
            (None, None) => (None, key.as_str()),
        };
        match table {
            Some(table) => {
                let (fields, map) = match table {
                    "customers" => (&C_FIELDS[..], &mut options.mapping.customers),
                    "invoices" => (&I_FIELDS[..], &mut options.mapping.invoices),
                    "payments" => (&P_FIELDS[..], &mut options.mapping.payments),
                    other => {
                        return Err(err(
                            format!("`{other}` is not a table"),
                            "map columns of `customers`, `invoices` or `payments`",
                        ));
                    }
                };
                if !fields.contains(&field) {
                    return Err(err(
                        format!("`{field}` is not a field of {table}"),
                        &format!("the fields of {table} are {}", fields.join(", ")),
                    ));
                }
                let Value::Str(header) = value else {
                    return Err(err(
                        format!("the column for `{field}` must be text"),
                        "write the header in double quotes",
                    ));
                };
                map.insert(field.to_string(), header);
            }
            None => apply_setting(field, value, options).map_err(|(m, h)| err(m, h))?,
        }
    }
    Ok(())
}

fn apply_setting(key: &str, value: Value, o: &mut LoadOptions) -> Result<(), (String, &'static str)> {
    match (key, value) {
        ("decimal_comma", Value::Bool(b)) => o.decimal_comma = b,
        ("date_format", Value::Str(s)) => {
            o.date_format = match s.to_ascii_lowercase().as_str() {
                "yyyy-mm-dd" | "iso" => DateFormat::Iso,
                "dd/mm/yyyy" | "dd.mm.yyyy" | "dd-mm-yyyy" => DateFormat::DayMonthYear,
                _ => return Err((format!("`{s}` is not a date format"), "use \"yyyy-mm-dd\" or \"dd/mm/yyyy\"")),
            }
        }
        ("delimiter", Value::Str(s)) => {
            o.delimiter = Some(match s.as_str() {
                "tab" | "\\t" | "\t" => b'\t',
                one if one.len() == 1 => one.as_bytes()[0],
                _ => return Err((format!("`{s}` is not a delimiter"), "use \",\", \";\", \"|\" or \"tab\"")),
            })
        }
        ("default_currency", Value::Str(s)) => {
            o.default_currency = Some(parse_currency(&s).ok_or_else(|| {
                (format!("`{s}` is not an ISO 4217 currency code"), "use a three-letter code like \"EUR\"")
            })?)
        }
        ("eom_reading", Value::Str(s)) => {
            o.eom_reading = match s.as_str() {
                "end-of-month-then-days" => EomReading::EndOfMonthThenDays,
                "days-then-end-of-month" => EomReading::DaysThenEndOfMonth,
                _ => {
                    return Err((
                        format!("`{s}` is not a reading of end-of-month terms"),
                        "use \"end-of-month-then-days\" or \"days-then-end-of-month\"",
                    ));
                }
            }
        }
        ("decimal_comma", Value::Str(_)) => {
            return Err(("`decimal_comma` is true or false".to_string(), "write `decimal_comma = true`"));
        }
        ("date_format" | "delimiter" | "default_currency" | "eom_reading", Value::Bool(_)) => {
            return Err((format!("`{key}` takes text"), "write the value in double quotes"));
        }
        (other, _) => {
            return Err((
                format!("`{other}` is not a setting"),
                "settings are decimal_comma, date_format, delimiter, default_currency, eom_reading, and [customers] / [invoices] / [payments] sections",
            ));
        }
    }
    Ok(())
}

fn strip_comment(line: &str) -> &str {
    let mut in_str = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            '\\' if in_str => escaped = !escaped,
            '"' if !escaped => in_str = !in_str,
            '#' if !in_str => return &line[..i],
            _ => escaped = false,
        }
        if c != '\\' {
            escaped = false;
        }
    }
    line
}

fn unquote_key(key: &str) -> String {
    match parse_value(key) {
        Some(Value::Str(s)) if key.starts_with('"') => s,
        _ => key.to_string(),
    }
}

fn parse_value(v: &str) -> Option<Value> {
    match v {
        "true" => return Some(Value::Bool(true)),
        "false" => return Some(Value::Bool(false)),
        _ => {}
    }
    let inner = v.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                't' => out.push('\t'),
                _ => return None,
            },
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(Value::Str(out))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use iso_currency::Currency;

    #[test]
    fn reads_settings_sections_and_dotted_keys() {
        let text = r#"
# export of our ERP
decimal_comma = true
date_format = "dd/mm/yyyy"   # French
delimiter = ";"
default_currency = "eur"
eom_reading = "days-then-end-of-month"
payments.invoice_id = "Facture"

[invoices]
amount = "Montant TTC # avec taxes"
"customer_id" = "Code \"client\""
"#;
        let mut o = LoadOptions::default();
        apply_str(text, "portfolio.toml", &mut o).unwrap();
        assert!(o.decimal_comma);
        assert_eq!(o.date_format, DateFormat::DayMonthYear);
        assert_eq!(o.delimiter, Some(b';'));
        assert_eq!(o.default_currency, Some(Currency::EUR));
        assert_eq!(o.eom_reading, EomReading::DaysThenEndOfMonth);
        assert_eq!(o.mapping.invoices["amount"], "Montant TTC # avec taxes");
        assert_eq!(o.mapping.invoices["customer_id"], "Code \"client\"");
        assert_eq!(o.mapping.payments["invoice_id"], "Facture");
    }

    #[test]
    fn names_the_line_of_a_bad_setting() {
        let mut o = LoadOptions::default();
        let e = apply_str("decimal_comma = true\n[invoices]\nmontant = \"Montant\"\n", "portfolio.toml", &mut o)
            .unwrap_err();
        assert_eq!(e.errors[0].line, Some(3));
        assert_eq!(e.to_string(), "portfolio.toml line 3: `montant` is not a field of invoices");
        let e = apply_str("date_format = \"mm/dd/yyyy\"", "portfolio.toml", &mut o).unwrap_err();
        assert_eq!(e.to_string(), "portfolio.toml line 1: `mm/dd/yyyy` is not a date format");
    }
}
