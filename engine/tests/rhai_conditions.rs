//! rhai conditions inside scenarios: reasons, per-customer errors, compile errors with positions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use chrono::NaiveDate;
use iso_currency::Currency;
use relance_engine::history::NoHistory;
use relance_engine::model::{Customer, Invoice, Portfolio};
use relance_engine::{Engine, EngineError};
use rust_decimal_macros::dec;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn compile(policy: &str) -> Result<Engine, EngineError> {
    Engine::from_sources(vec![relance_dsl::Source::new("policy.relance", policy)], &relance_stdlib::registry())
}

fn portfolio() -> Portfolio {
    let mut big = Customer::new("C1", "Grossiste Martin", "sme");
    big.extra.insert("yearly_revenue", "100000");
    big.avg_days_late = Some(dec!(25));
    let mut small = Customer::new("C2", "Épicerie Durand", "sme");
    small.extra.insert("yearly_revenue", "not known");
    small.avg_days_late = Some(dec!(30));
    Portfolio {
        customers: vec![big, small],
        invoices: vec![
            Invoice::new("F1", "C1", d("2026-03-01"), dec!(6000), Currency::EUR),
            Invoice::new("F2", "C2", d("2026-03-01"), dec!(6000), Currency::EUR),
        ],
        ..Portfolio::default()
    }
}

const POLICY: &str = r#"
settings { calendar none }
scenario "Call first" {
  for others
  D+3 call "early-call"
      when rhai "customer.avg_days_late > 20 && invoice.amount > to_decimal(customer[\"yearly_revenue\"]) * 0.05"
}
"#;

#[test]
fn a_rhai_condition_is_shown_verbatim_with_its_value() {
    let e = compile(POLICY).unwrap();
    let plan = e.evaluate(&portfolio(), d("2026-03-04"), &NoHistory);
    let a = plan.actions.iter().find(|a| a.customer == "C1").unwrap();
    assert!(a.reason.contains("rhai `customer.avg_days_late > 20 && invoice.amount"), "{}", a.reason);
    assert!(a.reason.contains("` = true"), "{}", a.reason);
}

#[test]
fn a_failing_script_fails_its_customer_only_and_names_scenario_step_invoice() {
    let e = compile(POLICY).unwrap();
    let plan = e.evaluate(&portfolio(), d("2026-03-04"), &NoHistory);
    assert_eq!(plan.actions.len(), 1, "C1 still gets its action");
    assert_eq!(plan.errors.len(), 1);
    let err = &plan.errors[0];
    assert_eq!(err.customer, "C2");
    assert_eq!(err.invoice.as_deref(), Some("F2"));
    assert_eq!(err.scenario.as_deref(), Some("Call first"));
    assert_eq!(err.step.as_deref(), Some("D+3"));
    assert!(err.message.contains("script line 1"), "{}", err.message);
}

#[test]
fn an_infinite_loop_is_stopped_and_reported() {
    let policy = r#"settings { calendar none } scenario "A" { for others D+3 email "r" when rhai "loop { }" }"#;
    let e = compile(policy).unwrap();
    let plan = e.evaluate(&portfolio(), d("2026-03-04"), &NoHistory);
    assert!(plan.actions.is_empty());
    assert_eq!(plan.errors.len(), 2);
    assert!(plan.errors.iter().all(|e| e.message.contains("rhai `loop { }` failed")), "{:?}", plan.errors);
}

#[test]
fn a_rhai_syntax_error_points_into_the_scenario_file() {
    let policy = "settings { calendar none }\nscenario \"A\" {\n  for others\n  D+3 email \"r\" when rhai \"invoice.amount >\"\n}\n";
    let Err(EngineError::Compile(errors)) = compile(policy) else { panic!("expected a compile error") };
    assert_eq!(errors.len(), 1);
    let e = &errors[0];
    let (line, _) = e.line_col();
    assert_eq!(line, 4);
    assert!(e.message.contains("rhai script does not compile"), "{}", e.message);
}

#[test]
fn a_functions_file_next_to_the_scenarios_is_callable_and_cannot_escape_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("helpers.rhai"), "fn big_share(amount, revenue) { amount > revenue * 0.05 }\n")
        .unwrap();
    let policy_path = dir.path().join("policy.relance");
    let policy = r#"settings { calendar none functions "helpers.rhai" }
scenario "A" { for others D+3 call "c" when rhai "big_share(invoice.amount, to_decimal(customer[\"yearly_revenue\"]))" }"#;
    let src = relance_dsl::Source::new(policy_path.display().to_string(), policy);
    let e = Engine::from_sources(vec![src], &relance_stdlib::registry()).unwrap();
    let plan = e.evaluate(&portfolio(), d("2026-03-04"), &NoHistory);
    assert_eq!(plan.actions.iter().map(|a| a.customer.as_str()).collect::<Vec<_>>(), vec!["C1"]);

    let escaping = policy.replace("helpers.rhai", "../../etc/passwd");
    let src = relance_dsl::Source::new(policy_path.display().to_string(), escaping);
    let Err(err) = Engine::from_sources(vec![src], &relance_stdlib::registry()) else { panic!("must refuse") };
    let msg = format!("{:?}", err.diagnostics());
    assert!(msg.contains("outside"), "{msg}");
}

/// The extra columns a program reads: those its conditions name, wherever they are
/// (selectors, steps, pauses, stops); any column once a rhai script may read one.
#[test]
fn a_program_lists_the_extra_columns_it_reads() {
    let policy = r#"settings { calendar none }
scenario "A" {
  for customers where customer.region = "north"
  stop when customer.tags has "x" or customer.group = "g"
  pause when invoice.chorus_status = "en-traitement"
  D+3 email "r" when invoice.amount > 5 and invoice.project in ["p1", "p2"]
}
scenario "B" { for others D+5 email "r" when rhai "invoice.amount > 5" }"#;
    let e = compile(policy).unwrap();
    let cols = e.program().extra_columns().unwrap();
    assert_eq!(cols.customer.iter().collect::<Vec<_>>(), ["group", "region"]);
    assert_eq!(cols.invoice.iter().collect::<Vec<_>>(), ["chorus_status", "project"]);
    // A script that reads an extra column: any may be read.
    let policy = r#"settings { calendar none } scenario "A" { for others D+3 email "r" when rhai "invoice.po_number == \"x\"" }"#;
    assert!(compile(policy).unwrap().program().extra_columns().is_none());
}
