//! `relance plan` on the bundled examples: snapshots at three dates, determinism, formats,
//! and bad inputs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use relance_tests::{relance, root, stderr, stdout};

const DATES: [&str; 3] = ["2026-03-16", "2026-04-15", "2026-06-15"];

fn plan(date: &str, format: &str) -> String {
    let out = relance(&[
        "plan",
        "--scenarios",
        "examples/scenarios",
        "--portfolio",
        "examples/portfolio",
        "--as-of",
        date,
        "--format",
        format,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out)
}

/// `relance plan` of the example scenarios on the portfolio in `dir`, as of 2026-04-15.
fn plan_portfolio(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "plan",
        "--scenarios",
        "examples/scenarios",
        "--portfolio",
        dir.to_str().unwrap(),
        "--as-of",
        "2026-04-15",
    ];
    args.extend_from_slice(extra);
    relance(&args)
}

/// `relance plan` of the scenario file `scenario` on the bundled portfolio as of `date`.
fn plan_scenario(scenario: &std::path::Path, date: &str, extra: &[&str]) -> std::process::Output {
    let mut args =
        vec!["plan", "--scenarios", scenario.to_str().unwrap(), "--portfolio", "examples/portfolio", "--as-of", date];
    args.extend_from_slice(extra);
    relance(&args)
}

#[test]
fn example_plan_json_at_three_dates() {
    for date in DATES {
        let json = plan(date, "json");
        insta::assert_snapshot!(format!("plan_json_{date}"), json);
    }
}

#[test]
fn example_plan_table_at_three_dates() {
    for date in DATES {
        insta::assert_snapshot!(format!("plan_table_{date}"), plan(date, "table"));
    }
}

#[test]
fn same_inputs_give_a_byte_identical_json_plan() {
    let a = plan("2026-04-15", "json");
    let b = plan("2026-04-15", "json");
    assert_eq!(a, b);
}

#[test]
fn example_plan_shows_every_case() {
    let v: serde_json::Value = serde_json::from_str(&plan("2026-04-15", "json")).unwrap();
    let statuses: Vec<&str> = v["skipped"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap()).collect();
    for s in ["superseded", "paused", "stopped", "expired", "below-minimum"] {
        assert!(statuses.contains(&s), "no `{s}` entry in the example plan");
    }
    let actions = v["actions"].as_array().unwrap();
    let steps: Vec<&str> = actions.iter().map(|a| a["step"].as_str().unwrap()).collect();
    assert!(steps.iter().any(|s| s.starts_with("D-")), "a pre-due step");
    assert!(steps.contains(&"on broken promise"), "C015's broken promise");
    assert!(actions.iter().any(|a| a["fees"] != "0.00" && a["interest"] != "0.00"), "fees and interest");
    assert!(actions.iter().any(|a| a["currency"] == "GBP"), "the export customer in GBP");
    // C017 is on legal hold, C013's disputed invoice is paused.
    let skipped = v["skipped"].as_array().unwrap();
    assert!(skipped.iter().any(|s| s["customer"] == "C017" && s["status"] == "stopped"));
    assert!(skipped.iter().any(|s| s["invoice"] == "FA-2512-0032" && s["status"] == "paused"));
    assert!(v["next"].as_array().unwrap().iter().any(|n| n["next_action_on"].is_string()));
    for key in ["as_of", "scenarios_hash", "actions", "skipped", "unassigned", "errors"] {
        assert!(v.get(key).is_some(), "SPEC 5 key `{key}`");
    }
}

#[test]
fn csv_plan_has_a_header_and_one_line_per_action() {
    let csv = plan("2026-04-15", "csv");
    let json: serde_json::Value = serde_json::from_str(&plan("2026-04-15", "json")).unwrap();
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("id,date,customer,"));
    // Reasons contain no newline, so one line per action.
    assert_eq!(lines.count(), json["actions"].as_array().unwrap().len());
}

#[test]
fn a_bad_portfolio_is_reported_with_file_line_column_and_nothing_is_planned() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["customers.csv", "payments.csv"] {
        std::fs::copy(relance_tests::root().join("examples/portfolio").join(f), dir.path().join(f)).unwrap();
    }
    let invoices = std::fs::read_to_string(relance_tests::root().join("examples/portfolio/invoices.csv")).unwrap();
    let mut lines: Vec<String> = invoices.lines().map(str::to_owned).collect();
    lines[3] = lines[3].replacen("2026-", "2026/", 1);
    std::fs::write(dir.path().join("invoices.csv"), lines.join("\n") + "\n").unwrap();
    let out = plan_portfolio(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("invoices.csv line 4"), "{err}");
    assert!(err.contains("nothing was loaded"), "{err}");
    assert!(stdout(&out).is_empty(), "no partial plan");
}

#[test]
fn a_bad_scenario_file_stops_the_plan_with_a_diagnostic() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.relance");
    std::fs::write(&p, "scenario \"A\" {\n  for others\n  D+3 emial \"r\"\n}\n").unwrap();
    let out = plan_scenario(&p, "2026-04-15", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("bad.relance:3:7"), "{}", stderr(&out));
    assert!(stderr(&out).contains("did you mean `email`?"));
}

#[test]
fn bad_arguments_are_usage_errors() {
    let out = relance(&[
        "plan",
        "--scenarios",
        "examples/scenarios",
        "--portfolio",
        "examples/portfolio",
        "--as-of",
        "15/04/2026",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("YYYY-MM-DD"), "{}", stderr(&out));
    let out =
        relance(&["plan", "--scenarios", "no/such/dir", "--portfolio", "examples/portfolio", "--as-of", "2026-04-15"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_passes_on_the_example_policy() {
    let out = relance(&["check", "--deny-warnings", "examples/scenarios"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = relance(&["fmt", "--check", "examples/scenarios"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn an_unknown_rate_is_an_error_per_customer_until_the_user_adds_it() {
    let args = [
        "plan",
        "--scenarios",
        "examples/scenarios",
        "--portfolio",
        "examples/portfolio",
        "--as-of",
        "2026-08-14",
        "--format",
        "json",
    ];
    let out = relance(&args);
    assert_eq!(out.status.code(), Some(0), "the plan is still produced");
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let errors = v["errors"].as_array().unwrap();
    assert!(!errors.is_empty());
    assert!(errors.iter().all(|e| e["message"].as_str().unwrap().contains("--rates FILE")), "{errors:?}");
    assert!(!v["actions"].as_array().unwrap().is_empty(), "customers without interest still get their actions");

    let dir = tempfile::tempdir().unwrap();
    let rates = dir.path().join("rates.csv");
    std::fs::write(&rates, "# ECB decision, checked on 2026-07-01\ntable,effective,percent\nECB,2026-07-01,2.15\n")
        .unwrap();
    let mut with = args.to_vec();
    with.extend(["--rates", rates.to_str().unwrap()]);
    let out = relance(&with);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["errors"].as_array().unwrap().len(), 0, "{}", v["errors"]);

    std::fs::write(&rates, "table,effective,percent\nECB,2026-07-01,2,15\n").unwrap();
    let out = relance(&with);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("rates.csv:2"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
}

#[test]
fn company_closing_days_move_trigger_dates() {
    // FA-2603-0095 (C032, public) is due 2026-04-05: D+10 falls on Wednesday 15 April.
    let base = [
        "plan",
        "--scenarios",
        "examples/scenarios",
        "--portfolio",
        "examples/portfolio",
        "--as-of",
        "2026-04-15",
        "--format",
        "json",
    ];
    let has_c032 = |json: &str| {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        v["actions"].as_array().unwrap().iter().any(|a| a["customer"] == "C032" && a["step"] == "D+10")
    };
    assert!(has_c032(&stdout(&relance(&base))));
    let dir = tempfile::tempdir().unwrap();
    let days = dir.path().join("closing.txt");
    std::fs::write(&days, "# spring closing\n2026-04-15\n2026-04-16\n").unwrap();
    let mut with = base.to_vec();
    with.extend(["--closing-days", days.to_str().unwrap()]);
    assert!(!has_c032(&stdout(&relance(&with))), "moved to 17 April");
}

#[test]
fn under_french_law_invoices_beyond_the_legal_cap_get_a_warning_in_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("customers.csv"), "id,name,segment\nC1,Acme,sme\n").unwrap();
    std::fs::write(
        dir.path().join("invoices.csv"),
        "id,customer_id,issue_date,due_date,amount,currency,terms\n\
         F1,C1,2026-01-15,2026-04-15,100.00,EUR,90 days net\n\
         F2,C1,2026-01-15,2026-03-16,100.00,EUR,60 days\n",
    )
    .unwrap();
    let out = plan_portfolio(dir.path(), &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let warnings: Vec<&str> = v["warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("invoice `F1`: payment terms `90 days net` put the due date"), "{}", warnings[0]);
}

/// `text` (a CSV file without quotes) with every field quoted and CRLF line ends, as many
/// CRM and ERP exports write it.
fn quote_every_field(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let fields: Vec<String> = line.split(',').map(|f| format!("\"{}\"", f.replace('"', "\"\""))).collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

/// The example portfolio copied into a new folder, each file's text changed by `edit`.
fn example_portfolio_edited(edit: impl Fn(&str, String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in ["customers.csv", "invoices.csv", "payments.csv"] {
        let text = std::fs::read_to_string(root().join("examples/portfolio").join(file)).unwrap();
        std::fs::write(dir.path().join(file), edit(file, text)).unwrap();
    }
    dir
}

#[test]
fn a_portfolio_with_every_field_quoted_gives_the_same_plan() {
    let dir = example_portfolio_edited(|file, text| {
        assert!(!text.contains('"'), "{file} already has quotes: the test needs text without");
        quote_every_field(&text)
    });
    let plain = plan("2026-04-15", "json");
    let out = plan_portfolio(dir.path(), &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), plain);
}

#[test]
fn quoted_names_keep_their_delimiters_and_quotes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("customers.csv"),
        "id,name,segment\n\"C1\",\"Dupont, \"\"Le Bon Pain\"\"\nSARL\",\"sme\"\nC2,Acme,sme\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("invoices.csv"),
        "id,customer_id,due_date,amount,currency\n\"F1\",\"C1\",\"2026-03-01\",\"100.00\",\"EUR\"\nF2,C2,2026-03-01,1x,EUR\n",
    )
    .unwrap();
    let out = plan_portfolio(dir.path(), &["--format", "json"]);
    // The bad amount is found on its line, counted after the quoted line break.
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("invoices.csv line 3, column `amount`: `1x` is not an amount"), "{}", stderr(&out));
    std::fs::write(
        dir.path().join("invoices.csv"),
        "id,customer_id,due_date,amount,currency\n\"F1\",\"C1\",\"2026-03-01\",\"100.00\",\"EUR\"\n",
    )
    .unwrap();
    let out = plan_portfolio(dir.path(), &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["actions"][0]["customer_name"], "Dupont, \"Le Bon Pain\"\nSARL");
}

#[test]
fn columns_no_condition_reads_change_nothing() {
    let dir = example_portfolio_edited(|file, text| match file {
        // Columns an ERP adds, that no condition of the example policy reads.
        "invoices.csv" => text
            .lines()
            .enumerate()
            .map(|(k, l)| if k == 0 { format!("{l},project,cost_center\n") } else { format!("{l},PRJ-{k},CC{k}\n") })
            .collect(),
        _ => text,
    });
    let out = plan_portfolio(dir.path(), &["--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), plan("2026-04-15", "json"));
}

/// The payment terms are the extra column `terms` of an invoice: a condition reads them, in
/// the language or in rhai, and the plan keeps only the invoices whose terms it names.
#[test]
fn a_condition_reads_the_payment_terms() {
    let terms_of: std::collections::HashMap<String, String> =
        std::fs::read_to_string(root().join("examples/portfolio/invoices.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| {
                let cells: Vec<&str> = l.split(',').collect();
                (cells[0].to_string(), cells[10].to_string())
            })
            .collect();
    for condition in ["invoice.terms = \"60 days\"", "rhai \"invoice.terms == `60 days`\""] {
        let dir = tempfile::tempdir().unwrap();
        let scenario = dir.path().join("terms.relance");
        let text = format!(
            "settings {{\n  currency EUR\n}}\n\nscenario \"long terms\" {{\n  for others\n  D+1 email \"rappel\" per invoice when {condition}\n}}\n"
        );
        std::fs::write(&scenario, text).unwrap();
        let out = plan_scenario(&scenario, "2026-06-15", &["--format", "json"]);
        assert_eq!(out.status.code(), Some(0), "{condition}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        let actions = v["actions"].as_array().unwrap();
        assert!(!actions.is_empty(), "{condition}");
        for a in actions {
            let id = a["invoices"][0].as_str().unwrap();
            assert_eq!(terms_of[id], "60 days", "{condition}: {id}");
        }
        // The others are listed as skipped: their condition did not hold.
        assert!(v["skipped"].as_array().unwrap().iter().any(|s| terms_of[s["invoice"].as_str().unwrap()] != "60 days"));
    }
}

/// The same generated portfolio (3,000 invoices) as CSV files, JSON files, one
/// `portfolio.json` and one Excel workbook: `relance plan` prints the same bytes in every
/// format from each.
#[test]
fn the_same_portfolio_in_every_input_format_gives_the_same_plan() {
    let dir = tempfile::tempdir().unwrap();
    let as_of = chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    let generator = |sub: &str| xtask::Gen::new(3_000, 600, 5, as_of, dir.path().join(sub));
    generator("csv").run().unwrap();
    generator("json").files(xtask::Files::Json).run().unwrap();
    generator("xlsx").files(xtask::Files::Xlsx).run().unwrap();
    // One object with the three arrays of the JSON files.
    let one = dir.path().join("one");
    std::fs::create_dir(&one).unwrap();
    let array = |name: &str| std::fs::read_to_string(dir.path().join("json").join(name)).unwrap();
    std::fs::write(
        one.join("portfolio.json"),
        format!(
            "{{\"customers\": {},\n\"invoices\": {},\n\"payments\": {}}}\n",
            array("customers.json"),
            array("invoices.json"),
            array("payments.json")
        ),
    )
    .unwrap();
    for format in ["json", "csv", "table"] {
        let plans: Vec<String> = ["csv", "json", "one", "xlsx"]
            .iter()
            .map(|sub| {
                let out = plan_portfolio(&dir.path().join(sub), &["--format", format]);
                assert_eq!(out.status.code(), Some(0), "{sub}: {}", stderr(&out));
                stdout(&out)
            })
            .collect();
        assert!(plans[0].len() > 10_000, "{format}: {}", plans[0]);
        for (sub, plan) in ["json", "one", "xlsx"].iter().zip(&plans[1..]) {
            assert!(*plan == plans[0], "{format} plan from {sub} differs from the CSV's");
        }
    }
}
