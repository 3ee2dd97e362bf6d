//! The loaders on real files: one portfolio written four ways (French CSV with a mapping file,
//! JSON files, one JSON file, an Excel workbook) must load to the same thing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use iso_currency::Currency;
use relance_engine::model::{Extra, PaymentKind, Portfolio};
use relance_stdlib::load::{LoadOptions, load_csv_dir, load_dir, load_dir_indexed, load_json_dir, load_xlsx};
use rust_decimal_macros::dec;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn load(name: &str) -> Portfolio {
    match load_dir(&fixture(name), &LoadOptions::default()) {
        Ok(p) => p,
        Err(e) => panic!("{name}: {e:#?}"),
    }
}

/// What every version of the fixture holds.
fn check(p: &Portfolio) {
    assert_eq!(p.customers.len(), 3);
    let c1 = &p.customers[0];
    assert_eq!(c1.id, "C001");
    assert_eq!(c1.name, "Boulangerie Martin SARL");
    assert_eq!(c1.segment, "micro");
    assert_eq!(c1.email.as_deref(), Some("compta@boulangerie-martin.fr"));
    assert_eq!(c1.phone.as_deref(), Some("01 23 45 67 89"));
    assert_eq!(c1.language.as_deref(), Some("fr"));
    assert_eq!(c1.tags, vec!["vip".to_string(), "legal-hold".to_string()]);
    assert_eq!(c1.avg_days_late, Some(dec!(12.5)));
    assert_eq!(c1.extra, Extra::from([("region", "Île-de-France")]));
    let c2 = &p.customers[1];
    assert_eq!(c2.name, "Mairie de Saint-Ouen; service finances");
    assert_eq!(c2.phone, None);
    assert!(c2.tags.is_empty());
    assert_eq!(p.customers[2].tags, vec!["export".to_string()]);

    assert_eq!(p.invoices.len(), 4);
    let f1 = &p.invoices[0];
    assert_eq!((f1.id.as_str(), f1.customer_id.as_str()), ("F001", "C001"));
    assert_eq!(f1.issue_date, Some(d(2026, 1, 15)));
    assert_eq!(f1.due_date, d(2026, 2, 14));
    assert_eq!(f1.amount, dec!(1234.56));
    assert_eq!(f1.currency, Currency::EUR);
    assert_eq!(f1.outstanding, None);
    assert!(!f1.disputed && !f1.payment_plan);
    // The payment terms are the extra column `terms`, whatever the export calls them.
    assert_eq!(f1.extra, Extra::from([("po_number", "PO-1"), ("terms", "30 days net")]));
    let f2 = &p.invoices[1];
    assert_eq!(f2.due_date, d(2026, 3, 18), "computed from 45 days after 2026-02-01");
    assert_eq!(f2.amount, dec!(2400));
    assert_eq!(f2.outstanding, Some(dec!(1000)));
    assert!(f2.disputed);
    assert_eq!(f2.extra, Extra::from([("terms", "45 days")]));
    let f3 = &p.invoices[2];
    assert_eq!(f3.due_date, d(2026, 3, 12));
    assert_eq!(f3.amount, dec!(12345));
    assert_eq!(f3.promise_date, Some(d(2026, 3, 20)));
    assert_eq!(f3.promise_amount, Some(dec!(5000)));
    assert!(f3.payment_plan && !f3.disputed);
    let f4 = &p.invoices[3];
    assert_eq!(f4.currency, Currency::GBP);
    assert_eq!(f4.amount, dec!(8500.50));
    assert_eq!(f4.extra.get("terms"), None);

    assert_eq!(p.payments.len(), 3);
    let amounts: Vec<_> = p.payments.iter().map(|x| (x.invoice_id.as_str(), x.date, x.amount, x.kind)).collect();
    assert_eq!(
        amounts,
        vec![
            ("F002", d(2026, 2, 20), dec!(1400), PaymentKind::Payment),
            ("F001", d(2026, 3, 1), dec!(100), PaymentKind::CreditNote),
            ("F003", d(2026, 3, 5), dec!(999.99), PaymentKind::Payment),
        ]
    );
    assert_eq!(p.payments[0].id.as_deref(), Some("P1"));
    // The amounts print as written: no float noise anywhere.
    assert_eq!(p.payments[2].amount.to_string(), "999.99");
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

#[test]
fn french_csv_with_a_mapping_file() {
    check(&load("csv_fr"));
}

#[test]
fn json_files() {
    check(&load("json_dir"));
}

#[test]
fn one_json_file() {
    check(&load("json_one"));
    check(&load_dir(&fixture("json_one/portfolio.json"), &LoadOptions::default()).unwrap());
}

#[test]
fn excel_workbook() {
    check(&load("xlsx"));
    check(&load_xlsx(&fixture("xlsx/portfolio.xlsx"), &LoadOptions::default()).unwrap());
}

#[test]
fn all_formats_load_the_same_portfolio() {
    let csv = load("csv_fr");
    assert_eq!(csv, load("json_dir"));
    assert_eq!(csv, load("json_one"));
    assert_eq!(csv, load("xlsx"));
}

#[test]
fn format_loaders_called_directly() {
    // Without the mapping file the French CSV cannot be read: the loader says which column.
    let err = load_csv_dir(&fixture("csv_fr"), &LoadOptions::default()).unwrap_err();
    assert!(err.errors.iter().any(|e| e.message == "the column `id` is missing"), "{err:#?}");
    let mut options = LoadOptions::french();
    relance_stdlib::load::mapping::apply_file(&fixture("csv_fr/portfolio.toml"), &mut options).unwrap();
    check(&load_csv_dir(&fixture("csv_fr"), &options).unwrap());
    check(&load_json_dir(&fixture("json_dir"), &LoadOptions::default()).unwrap());
}

#[test]
fn the_examples_portfolio_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/portfolio");
    let p = load_dir(&dir, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e:#?}"));
    assert!(p.customers.len() >= 55);
    assert!(p.invoices.len() >= 300);
    assert!(p.invoices.iter().any(|i| i.currency == Currency::GBP));
    assert!(p.payments.iter().any(|x| x.kind == PaymentKind::CreditNote));
    let customer = |id: &str| p.customers.iter().find(|c| c.id == id).unwrap();
    let invoice = |id: &str| p.invoices.iter().find(|i| i.id == id).unwrap();
    assert!(customer("C017").tags.contains(&"legal-hold".into()));
    assert_eq!(customer("C008").extra.get("region"), Some("Auvergne-Rhône-Alpes"));
    assert!(invoice("FA-2512-0032").disputed);
    assert!(invoice("FA-2511-0041").payment_plan);
    assert_eq!(invoice("FA-2601-0035").promise_date, Some(d(2026, 4, 5)));
    assert_eq!(invoice("FA-2601-0040").outstanding, Some(dec!(12.40)));
    // The export leaves this due date empty: 30 days net from 2026-02-27.
    assert_eq!(invoice("FA-2602-0051").due_date, d(2026, 3, 29));
}

/// The French cap is checked with the reading of "N days end of month" that computed the due
/// dates, the one of the folder's `portfolio.toml` included.
#[test]
fn fr_cap_warnings_use_the_reading_of_the_portfolio_settings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("customers.csv"), "id,name,segment\nC1,Acme,sme\n").unwrap();
    // No due date: computed from the terms.
    std::fs::write(
        dir.path().join("invoices.csv"),
        "id,customer_id,issue_date,due_date,amount,currency,terms\nF1,C1,2026-01-02,,100.00,EUR,60 days end of month\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("portfolio.toml"), "eom_reading = \"end-of-month-then-days\"\n").unwrap();
    let opts = LoadOptions { fr_cap_warnings: true, ..LoadOptions::default() };
    let p = load_dir(dir.path(), &opts).unwrap();
    // 31 January + 60 days (the other reading gives 2 January + 60 days, end of month: 31 March).
    assert_eq!(p.invoices[0].due_date, d(2026, 4, 1));
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(
        p.warnings[0].starts_with(
            "invoice `F1`: payment terms `60 days end of month` put the due date of an invoice issued on 2026-01-02 on 2026-04-01,"
        ),
        "{}",
        p.warnings[0]
    );
    // Not asked: no warning.
    assert!(load_dir(dir.path(), &LoadOptions::default()).unwrap().warnings.is_empty());
}

/// `LoadOptions::sort_for_evaluation` returns the portfolio that loading and then
/// `Portfolio::sort_for_evaluation` give, whatever the format, and whatever the order of the
/// files' rows (customers out of id order, ids sharing their first 8 bytes, a customer's
/// invoices out of id order).
#[test]
fn loading_sorted_gives_the_order_of_sorting_after_loading() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("customers.csv"),
        "id,name,segment\nCUSTOMER-0002,B,sme\nCUSTOMER-0001,A,sme\nC3,C,micro\nCUSTOMER-00010,D,sme\n",
    )
    .unwrap();
    let mut invoices = String::from("id,customer_id,due_date,amount,currency\n");
    for k in 0..200u32 {
        let customer = ["CUSTOMER-0002", "CUSTOMER-0001", "C3", "CUSTOMER-00010"][(k * 7 % 4) as usize];
        // Ids out of order within a customer; more than 32 invoices for each customer.
        invoices.push_str(&format!("F{:04},{customer},2026-01-{:02},10.00,EUR\n", (k * 37) % 211, k % 28 + 1));
    }
    std::fs::write(dir.path().join("invoices.csv"), invoices).unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/portfolio");
    let folders = [fixture("csv_fr"), fixture("json_dir"), fixture("json_one"), examples, dir.path().to_path_buf()];
    for folder in folders {
        let mut want = load_dir(&folder, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e:#?}"));
        want.sort_for_evaluation();
        let opts = LoadOptions { sort_for_evaluation: true, ..LoadOptions::default() };
        let got = load_dir(&folder, &opts).unwrap_or_else(|e| panic!("{e:#?}"));
        assert_eq!(got, want, "{}", folder.display());
        // Indexed while sorted: the same portfolio, and the same plans (see `load_dir_indexed`).
        let indexed = load_dir_indexed(&folder, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e:#?}"));
        assert_eq!(indexed.portfolio(), &want, "{}", folder.display());
        let engine = policy_engine();
        let as_of = NaiveDate::from_ymd_opt(2026, 4, 15).unwrap();
        let plan = |p: relance_engine::PortfolioRef<'_>| {
            relance_engine::render::to_json(&engine.evaluate(p, as_of, &relance_engine::history::NoHistory))
        };
        assert_eq!(plan((&indexed).into()), plan((&want).into()), "{}", folder.display());
    }
    let book = fixture("xlsx").join("portfolio.xlsx");
    let mut want = load_xlsx(&book, &LoadOptions::default()).unwrap();
    want.sort_for_evaluation();
    let got = load_xlsx(&book, &LoadOptions { sort_for_evaluation: true, ..LoadOptions::default() }).unwrap();
    assert_eq!(got, want);
    assert_eq!(load_dir_indexed(&book, &LoadOptions::default()).unwrap().portfolio(), &want);
}

/// The bundled scenarios, compiled with the standard registry.
fn policy_engine() -> relance_engine::Engine {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scenarios");
    let mut sources = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in files.into_iter().filter(|f| f.extension().is_some_and(|x| x == "relance")) {
        sources.push(relance_dsl::Source::new(f.display().to_string(), std::fs::read_to_string(&f).unwrap()));
    }
    relance_engine::Engine::from_sources(sources, &relance_stdlib::registry()).unwrap()
}

/// The generator's JSON files (`xtask gen-portfolio --json`: amounts as numbers, `true` for
/// `yes`, empty fields left out) and workbooks (`--xlsx`: dates as dates, amounts as
/// numbers; `--xlsx-shared`: the texts in the shared strings table, as Excel writes them)
/// load to the same portfolio as its CSV files; the JSON files are read in several
/// chunks (more records than one task reads), the invoices sheet in several parts (more rows
/// than go into the table at a time).
#[test]
fn generated_json_and_xlsx_load_the_portfolio_of_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let as_of = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    let generator = |sub: &str| xtask::Gen::new(20_000, 4_000, 11, as_of, dir.path().join(sub));
    generator("csv").run().unwrap();
    generator("json").files(xtask::Files::Json).run().unwrap();
    generator("xlsx").files(xtask::Files::Xlsx).run().unwrap();
    generator("xlsx-shared").files(xtask::Files::XlsxShared).run().unwrap();
    assert!(dir.path().join("json/invoices.json").exists() && !dir.path().join("json/invoices.csv").exists());
    let files: Vec<_> = std::fs::read_dir(dir.path().join("xlsx")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files, ["portfolio.xlsx"]);
    let opts = LoadOptions::default();
    let csv = load_dir(&dir.path().join("csv"), &opts).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(csv.invoices.len(), 20_000);
    assert!(csv.payments.len() > 500 && csv.invoices.iter().any(|i| i.disputed && i.promise_amount.is_some()));
    for shape in ["json", "xlsx", "xlsx-shared"] {
        let other = load_dir(&dir.path().join(shape), &opts).unwrap_or_else(|e| panic!("{e:#?}"));
        assert_eq!(other, csv, "{shape}");
    }
}

/// Sheets written other ways than the generator writes them: read cell by cell, they load
/// as calamine's `Range` of them did (the header where its first cell is, cells out of
/// column order, a note left of the header, a row of spaces). Rows out of order (which Excel
/// refuses to open) are an error that says so, also when the header comes after a row.
#[test]
fn excel_sheets_written_out_of_order() {
    let text = |at: &str, t: &str| format!(r#"<c r="{at}" t="inlineStr"><is><t>{t}</t></is></c>"#);
    let row = |r: u32, cells: &[String]| format!(r#"<row r="{r}">{}</row>"#, cells.concat());
    let sheet = |rows: &[String]| {
        format!(
            r#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{}</sheetData></worksheet>"#,
            rows.concat()
        )
    };
    let customers = sheet(&[
        row(2, &[text("B2", "id"), text("C2", "name"), text("D2", "segment")]),
        row(3, &[text("D3", "sme"), text("B3", "C1"), text("C3", "A")]),
        row(4, &[text("A4", "note"), text("B4", "C2"), text("C4", "B"), text("D4", "micro")]),
        row(5, &[text("B5", "   ")]),
    ]);
    // 2026-02-14 and 2026-02-15 as dates (style 1).
    let invoice = |r: u32, id: &str, customer: &str, serial: u32, amount: &str| {
        row(
            r,
            &[
                text(&format!("A{r}"), id),
                text(&format!("B{r}"), customer),
                format!(r#"<c r="C{r}" s="1"><v>{serial}</v></c>"#),
                format!(r#"<c r="D{r}"><v>{amount}</v></c>"#),
                text(&format!("E{r}"), "EUR"),
            ],
        )
    };
    let header = row(
        1,
        &["id", "customer_id", "due_date", "amount", "currency"]
            .map(String::from)
            .iter()
            .enumerate()
            .map(|(k, h)| text(&format!("{}1", (b'A' + k as u8) as char), h))
            .collect::<Vec<_>>(),
    );
    let in_order = sheet(&[header.clone(), invoice(2, "F1", "C1", 46067, "10"), invoice(3, "F2", "C2", 46068, "20")]);
    let out_of_order =
        sheet(&[header.clone(), invoice(3, "F2", "C2", 46068, "20"), invoice(2, "F1", "C1", 46067, "10")]);
    let header_late = sheet(&[invoice(2, "F1", "C1", 46067, "10"), header.clone()]);
    let write = |dir: &Path, invoices: &str| {
        let (mut c, mut i) = (customers.as_bytes(), invoices.as_bytes());
        let mut sheets: Vec<(&str, &mut dyn std::io::Read)> = vec![("customers", &mut c), ("invoices", &mut i)];
        xtask::write_workbook(&dir.join("portfolio.xlsx"), &mut sheets).unwrap();
    };
    let csv = tempfile::tempdir().unwrap();
    std::fs::write(csv.path().join("customers.csv"), "id,name,segment\nC1,A,sme\nC2,B,micro\n").unwrap();
    std::fs::write(
        csv.path().join("invoices.csv"),
        "id,customer_id,due_date,amount,currency\nF1,C1,2026-02-14,10,EUR\nF2,C2,2026-02-15,20,EUR\n",
    )
    .unwrap();
    let want = load_dir(csv.path(), &LoadOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &in_order);
    assert_eq!(load_dir(dir.path(), &LoadOptions::default()).unwrap_or_else(|e| panic!("{e:#?}")), want);
    for (invoices, message) in
        [(&out_of_order, "the sheet lists row 2 after row 3"), (&header_late, "the sheet lists row 1 after row 2")]
    {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), invoices);
        let e = load_dir(dir.path(), &LoadOptions::default()).unwrap_err();
        let last = e.errors.last().unwrap();
        assert_eq!((last.message.as_str(), last.sheet.as_deref()), (message, Some("invoices")), "{e}");
        assert!(e.errors.iter().all(|e| e.sheet.as_deref() == Some("invoices")), "{e}");
    }
    // A bad cell is reported on its row of the sheet, in its column.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &sheet(&[header, invoice(2, "F1", "C1", 46067, "10"), invoice(7, "F2", "C2", 46068, "-")]));
    let e = load_dir(dir.path(), &LoadOptions::default()).unwrap_err();
    assert_eq!((e.errors[0].line, e.errors[0].column_letter.as_deref()), (Some(7), Some("D")), "{e}");
}
