//! Bad inputs: each error names the file, line, column and value and says how to fix it.
//! The rendered messages are snapshots (review them: a wrong snapshot is a bug).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme};
use relance_stdlib::load::{LoadErrorKind, LoadErrors, LoadOptions, load_dir};

const CUSTOMERS: &str = "id,name,segment\nC1,Boulangerie Martin SARL,micro\nC2,Mairie de Lyon,public\n";
const INVOICES: &str = "id,customer_id,issue_date,due_date,amount,currency\nF1,C1,2026-01-15,2026-02-14,1200.00,EUR\n";

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    dir
}

fn render(e: &dyn Diagnostic) -> String {
    let mut out = String::new();
    GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .render_report(&mut out, e)
        .unwrap();
    out
}

fn errors_of(dir: &Path, options: &LoadOptions) -> LoadErrors {
    match load_dir(dir, options) {
        Ok(p) => panic!("expected errors, loaded {} invoices", p.invoices.len()),
        Err(e) => e,
    }
}

/// Loads `files` (customers and invoices default to good ones) and renders the errors.
fn fail(files: &[(&str, &str)], options: &LoadOptions) -> (LoadErrors, String) {
    let mut all: Vec<(&str, &str)> = vec![("customers.csv", CUSTOMERS), ("invoices.csv", INVOICES)];
    for f in files {
        all.retain(|(n, _)| n != &f.0);
        all.push(*f);
    }
    let dir = dir_with(&all);
    let e = errors_of(dir.path(), options);
    let text = render(&e);
    (e, text)
}

fn invoices(rows: &str) -> String {
    format!("id,customer_id,issue_date,due_date,amount,currency\n{rows}")
}

#[test]
fn bad_date() {
    let inv = invoices("F1,C1,2026-01-15,31/03/2026,1200.00,EUR\n");
    let (e, text) = fail(&[("invoices.csv", &inv)], &LoadOptions::default());
    assert_eq!(e.errors[0].kind, LoadErrorKind::BadDate);
    assert_eq!(e.errors[0].line, Some(2));
    assert_eq!(e.errors[0].column.as_deref(), Some("due_date"));
    assert_eq!(e.errors[0].value.as_deref(), Some("31/03/2026"));
    insta::assert_snapshot!(text);
}

#[test]
fn bad_amount() {
    let inv = invoices("F1,C1,2026-01-15,2026-02-14,\"1 200,50\",EUR\n");
    let (e, text) = fail(&[("invoices.csv", &inv)], &LoadOptions::default());
    assert_eq!(e.errors[0].kind, LoadErrorKind::BadAmount);
    insta::assert_snapshot!(text);
}

#[test]
fn bad_amount_with_decimal_comma() {
    let inv = "id;customer_id;due_date;amount;currency\nF1;C1;14/02/2026;1234.56;EUR\n";
    let options = LoadOptions { delimiter: None, ..LoadOptions::french() };
    let (e, text) = fail(&[("invoices.csv", inv)], &options);
    assert_eq!(e.errors[0].kind, LoadErrorKind::BadAmount);
    insta::assert_snapshot!(text);
}

#[test]
fn unknown_customer() {
    let inv = invoices("F1,C1,2026-01-15,2026-02-14,1200.00,EUR\nF2,C9,2026-01-15,2026-02-14,80,EUR\n");
    let (e, text) = fail(&[("invoices.csv", &inv)], &LoadOptions::default());
    assert_eq!(e.errors[0].kind, LoadErrorKind::UnknownCustomer);
    assert_eq!(e.errors[0].line, Some(3));
    insta::assert_snapshot!(text);
}

#[test]
fn duplicate_id() {
    let inv = invoices(
        "F1,C1,2026-01-15,2026-02-14,1200.00,EUR\nF2,C1,2026-01-15,2026-02-14,80,EUR\nF1,C2,2026-01-20,2026-02-19,95.5,EUR\n",
    );
    let (e, text) = fail(&[("invoices.csv", &inv)], &LoadOptions::default());
    assert_eq!(e.errors[0].kind, LoadErrorKind::DuplicateId);
    assert_eq!(e.errors[0].line, Some(4));
    insta::assert_snapshot!(text);
}

#[test]
fn missing_column() {
    let inv = "id,customer_id,due_date,total,currency\nF1,C1,2026-02-14,1200.00,EUR\n";
    let (e, text) = fail(&[("invoices.csv", inv)], &LoadOptions::default());
    assert_eq!(e.errors[0].kind, LoadErrorKind::MissingColumn);
    insta::assert_snapshot!(text);
}

#[test]
fn mapped_column_not_in_the_header() {
    let mapping = "[invoices]\namount = \"Montant TTC\"\n";
    let (e, text) = fail(&[("portfolio.toml", mapping)], &LoadOptions::default());
    assert_eq!(e.errors[0].kind, LoadErrorKind::MissingColumn);
    insta::assert_snapshot!(text);
}

#[test]
fn unknown_currency() {
    let inv = invoices("F1,C1,2026-01-15,2026-02-14,1200.00,EUX\n");
    let (e, text) = fail(&[("invoices.csv", &inv)], &LoadOptions::default());
    assert_eq!(e.errors[0].kind, LoadErrorKind::BadCurrency);
    insta::assert_snapshot!(text);
}

#[test]
fn bad_boolean() {
    let inv = "id,customer_id,due_date,amount,currency,disputed\nF1,C1,2026-02-14,1200.00,EUR,peut-être\n";
    let (e, text) = fail(&[("invoices.csv", inv)], &LoadOptions::default());
    assert_eq!(e.errors[0].kind, LoadErrorKind::BadBoolean);
    insta::assert_snapshot!(text);
}

#[test]
fn payment_for_unknown_invoice() {
    let pay = "invoice_id,date,amount,kind\nF1,2026-02-20,200,payment\nF7,2026-02-21,50,credit_note\n";
    let (e, text) = fail(&[("payments.csv", pay)], &LoadOptions::default());
    assert_eq!(e.errors[0].kind, LoadErrorKind::UnknownInvoice);
    assert_eq!(e.errors[0].file, "payments.csv");
    insta::assert_snapshot!(text);
}

#[test]
fn missing_due_date_and_terms() {
    let inv = "id,customer_id,issue_date,due_date,amount,currency,terms\nF1,C1,2026-01-15,,1200.00,EUR,\n";
    let (e, text) = fail(&[("invoices.csv", inv)], &LoadOptions::default());
    assert_eq!(e.errors[0].kind, LoadErrorKind::MissingDueDate);
    insta::assert_snapshot!(text);
}

#[test]
fn bad_terms() {
    let inv = "id,customer_id,issue_date,amount,currency,terms\nF1,C1,2026-01-15,1200.00,EUR,whenever you like\n";
    let (e, _) = fail(&[("invoices.csv", inv)], &LoadOptions::default());
    assert_eq!(e.errors[0].kind, LoadErrorKind::BadTerms);
    // The terms module's own explanation is part of the message; snapshot only our part.
    assert!(e.errors[0].message.starts_with("cannot compute the due date from the terms `whenever you like`: "));
    assert_eq!(e.errors[0].location(), "invoices.csv line 2, column `terms`");
    assert_eq!(
        e.errors[0].help.as_deref(),
        Some("write terms like `30 days net`, `45 days end of month` or `60 days`, or give the due date")
    );
}

#[test]
fn negative_amount() {
    let inv = invoices("F1,C1,2026-01-15,2026-02-14,-120.00,EUR\n");
    let (e, text) = fail(&[("invoices.csv", &inv)], &LoadOptions::default());
    assert_eq!(e.errors[0].kind, LoadErrorKind::NegativeAmount);
    insta::assert_snapshot!(text);
}

#[test]
fn wrong_number_of_fields() {
    let cust = "id;name;segment\nC1;Boulangerie Martin, SARL;micro\nC2;Mairie de Lyon;public;extra\n";
    let (e, text) = fail(&[("customers.csv", cust)], &LoadOptions::default());
    assert_eq!(e.errors[0].kind, LoadErrorKind::FieldCount);
    insta::assert_snapshot!(text);
}

#[test]
fn excel_bad_cells() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/xlsx_bad");
    let e = errors_of(&dir, &LoadOptions::default());
    let kinds: Vec<_> = e.errors.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            LoadErrorKind::BadDate,
            LoadErrorKind::CellError,
            LoadErrorKind::UnknownCustomer,
            LoadErrorKind::BadCurrency,
            LoadErrorKind::BadDate
        ]
    );
    assert_eq!(e.errors[0].sheet.as_deref(), Some("invoices"));
    assert_eq!(e.errors[0].column_letter.as_deref(), Some("D"));
    insta::assert_snapshot!(render(&e));
}

#[test]
fn errors_of_all_files_are_collected_and_nothing_is_half_loaded() {
    // One bad row in each file, among good ones: the whole load fails, every error is listed.
    let cust = "id,name,segment,avg_days_late\nC1,Boulangerie Martin SARL,micro,3\nC2,Mairie de Lyon,public,lots\n";
    let inv = invoices(
        "F1,C1,2026-01-15,2026-02-14,1200.00,EUR\nF2,C2,2026-01-15,2026-02-14,80,EUR\nF3,C1,2026-01-15,2026-13-14,80,EUR\n",
    );
    let pay = "invoice_id,date,amount\nF1,2026-02-20,200\nF1,2026-02-21,abc\nF3,2026-02-21,10\n";
    let (e, text) =
        fail(&[("customers.csv", cust), ("invoices.csv", &inv), ("payments.csv", pay)], &LoadOptions::default());
    let found: Vec<_> = e.errors.iter().map(|e| (e.file.as_str(), e.line, e.kind)).collect();
    // C2 and F3 failed to load: the invoice of C2 and the payment of F3 are not reported again.
    assert_eq!(
        found,
        vec![
            ("customers.csv", Some(3), LoadErrorKind::BadNumber),
            ("invoices.csv", Some(4), LoadErrorKind::BadDate),
            ("payments.csv", Some(3), LoadErrorKind::BadAmount),
        ]
    );
    insta::assert_snapshot!(text);
}

#[test]
fn errors_are_capped_with_a_count() {
    let mut inv = String::from("id,customer_id,due_date,amount,currency\n");
    for i in 0..150 {
        inv.push_str(&format!("F{i},C1,2026-02-14,not-a-number,EUR\n"));
    }
    let (e, _) = fail(&[("invoices.csv", &inv)], &LoadOptions::default());
    assert_eq!(e.errors.len(), LoadErrors::CAP);
    assert_eq!(e.not_shown, 50);
    assert_eq!(e.total(), 150);
    assert_eq!(e.to_string(), "the portfolio has 150 errors; nothing was loaded");
    assert_eq!(e.help().map(|h| h.to_string()).as_deref(), Some("the first 100 are listed; 50 more are not shown"));
}

#[test]
fn missing_files_and_empty_folder() {
    let dir = dir_with(&[("invoices.csv", INVOICES)]);
    let e = errors_of(dir.path(), &LoadOptions::default());
    assert_eq!(e.errors[0].kind, LoadErrorKind::NoPortfolio);
    assert_eq!(e.errors[0].message, "the file `customers.csv` is missing");
    let empty = tempfile::tempdir().unwrap();
    let e = errors_of(empty.path(), &LoadOptions::default());
    assert_eq!(e.errors[0].kind, LoadErrorKind::NoPortfolio);
}

#[test]
fn json_errors_have_lines() {
    let cust = "[\n  {\"id\": \"C1\", \"name\": \"A\", \"segment\": \"sme\"}\n]\n";
    let inv = "[\n  {\"id\": \"F1\", \"customer_id\": \"C1\", \"due_date\": \"2026-02-14\", \"amount\": 10, \"currency\": \"EUR\"},\n  {\n    \"id\": \"F2\", \"customer_id\": \"C1\",\n    \"due_date\": \"2026-02-14\", \"amount\": \"ten\", \"currency\": \"EUR\"\n  }\n]\n";
    let dir = dir_with(&[("customers.json", cust), ("invoices.json", inv)]);
    let e = errors_of(dir.path(), &LoadOptions::default());
    assert_eq!(e.errors.len(), 1);
    assert_eq!(e.errors[0].line, Some(3), "the line where the record starts");
    assert_eq!(e.to_string(), "invoices.json line 3, column `amount`: `ten` is not an amount");
    let dir = dir_with(&[("customers.json", cust), ("invoices.json", "[{\"id\": \"F1\",]")]);
    let e = errors_of(dir.path(), &LoadOptions::default());
    assert_eq!(e.errors[0].kind, LoadErrorKind::Syntax);
    assert_eq!(e.errors[0].line, Some(1));
}

/// More records than the reader takes per task (4,096): names with escapes, a name written
/// twice, texts with escapes, a column that first appears late, and records that are not
/// objects, each reported on its line.
#[test]
fn long_json_arrays_read_as_short_ones() {
    let cust = "[{\"id\": \"C1\", \"name\": \"Dupont \\\"Le Bon Pain\\\"\", \"segment\": \"sme\"}]";
    let mut inv = String::from("[\n");
    for k in 0..9000 {
        let record = match k {
            // An escaped name (`customer_id`), and `amount` written twice: the last counts.
            10 => format!(
                "{{\"id\": \"F{k}\", \"c\\u0075stomer_id\": \"C1\", \"due_date\": \"2026-02-14\", \"amount\": 1, \"amount\": 12.5, \"currency\": \"EUR\"}}"
            ),
            5000 | 8999 => "42".to_string(),
            // A column that no record before this one has.
            6000 => format!(
                "{{\"id\": \"F{k}\", \"customer_id\": \"C1\", \"due_date\": \"2026-02-14\", \"amount\": 1, \"currency\": \"EUR\", \"po_number\": \"BC \\\"7\\\"\"}}"
            ),
            _ => format!(
                "{{\"id\": \"F{k}\", \"customer_id\": \"C1\", \"due_date\": \"2026-02-14\", \"amount\": 1, \"currency\": \"EUR\"}}"
            ),
        };
        inv.push_str(&record);
        inv.push_str(if k < 8999 { ",\n" } else { "\n" });
    }
    inv.push(']');
    let dir = dir_with(&[("customers.json", cust), ("invoices.json", &inv)]);
    let e = errors_of(dir.path(), &LoadOptions::default());
    let lines: Vec<Option<usize>> = e.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [Some(5002), Some(9001)], "{e}");
    assert!(e.errors.iter().all(|e| e.message == "the invoices record is not an object"), "{e}");
    // Without the records that are not objects, the rest loads.
    let inv = inv.replace("\n42,\n", "\n").replace(",\n42\n", "\n");
    let dir = dir_with(&[("customers.json", cust), ("invoices.json", &inv)]);
    let p = load_dir(dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!(p.invoices.len(), 8998);
    assert_eq!(p.customers[0].name, "Dupont \"Le Bon Pain\"");
    let f10 = p.invoices.iter().find(|i| i.id == "F10").unwrap();
    assert_eq!((f10.customer_id.as_str(), f10.amount.to_string().as_str()), ("C1", "12.5"));
    let f6000 = p.invoices.iter().find(|i| i.id == "F6000").unwrap();
    assert_eq!(f6000.extra.get("po_number"), Some("BC \"7\""));
    assert_eq!(p.invoices.iter().filter(|i| i.extra.get("po_number").is_some()).count(), 1);
}

/// A long array with a record that is not valid JSON, or a text around the records that an
/// array cannot have: the error is serde_json's, on the line and column of the fault, and
/// nothing of the file is loaded.
#[test]
fn json_syntax_errors_in_long_arrays() {
    let cust = "[{\"id\": \"C1\", \"name\": \"A\", \"segment\": \"sme\"}]";
    let record = |k: usize| {
        format!(
            "{{\"id\": \"F{k}\", \"customer_id\": \"C1\", \"due_date\": \"2026-02-14\", \"amount\": 1, \"currency\": \"EUR\"}}"
        )
    };
    let records: Vec<String> = (0..9000).map(record).collect();
    let valid = format!("[\n{}\n]\n", records.join(",\n"));
    let broken = [
        // A value cut short in the 7,000th record (line 7,001).
        (valid.replace("\"F6999\", \"customer_id\"", "\"F6999\", \"customer_id\": tru, \"x\""), 7001, 35),
        // A control character in a string.
        (valid.replace("\"F4000\"", "\"F\u{1}4000\""), 4002, 9),
        // Two commas between records, and text after the array.
        (valid.replace("},\n{\"id\": \"F8000\"", "},,\n{\"id\": \"F8000\""), 8001, 96),
        (format!("{valid}x"), 9003, 1),
        // A quote missing: the string ends at the next one.
        (valid.replace("\"F3000\"", "\"F3000"), 3002, 17),
        // A string that is never closed: the line break after it is a control character.
        (valid.replace("\"EUR\"}\n]", "\"EUR}\n]"), 9001, 93),
    ];
    for (inv, line, column) in broken {
        let dir = dir_with(&[("customers.json", cust), ("invoices.json", &inv)]);
        let e = errors_of(dir.path(), &LoadOptions::default());
        assert_eq!(e.errors.len(), 1, "{e}");
        let err = &e.errors[0];
        assert_eq!((err.kind, err.line), (LoadErrorKind::Syntax, Some(line)), "{e}");
        assert!(err.message.starts_with("the file is not valid JSON: "), "{e}");
        assert!(err.message.ends_with(&format!(" at line {line} column {column}")), "{e}");
    }
    let dir = dir_with(&[("customers.json", cust), ("invoices.json", &valid)]);
    assert_eq!(load_dir(dir.path(), &LoadOptions::default()).unwrap().invoices.len(), 9000);
}

#[test]
fn accepted_with_warnings() {
    // Overpaid invoices and unused payment columns load, with a warning each (never silently).
    let pay = "invoice_id,date,amount,kind,note\nF1,2026-02-20,1000,payment,virement\nF1,2026-02-21,300,credit_note,\n";
    let dir = dir_with(&[("customers.csv", CUSTOMERS), ("invoices.csv", INVOICES), ("payments.csv", pay)]);
    let p = load_dir(dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!(
        p.warnings,
        vec![
            "payments.csv: the column `note` is not used (payments have no extra columns; `note` is ignored)"
                .to_string(),
            "invoice `F1`: payments and credit notes (1300) exceed its amount (1200.00)".to_string(),
        ]
    );
}
