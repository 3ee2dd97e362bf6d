//! One named test per evaluation rule of SPEC section 3, on small hand-made portfolios.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use chrono::NaiveDate;
use iso_currency::Currency;
use relance_engine::Engine;
use relance_engine::history::{History, MemoryHistory, NoHistory};
use relance_engine::model::{Customer, Invoice, Payment, PaymentKind, Portfolio};
use relance_engine::plan::{Plan, SkipStatus};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn engine(policy: &str) -> Engine {
    let sources = vec![relance_dsl::Source::new("policy.relance", policy)];
    match Engine::from_sources(sources, &relance_stdlib::registry()) {
        Ok(e) => e,
        Err(e) => panic!("policy does not compile: {e:?}"),
    }
}

fn inv(id: &str, customer: &str, due: &str, amount: Decimal) -> Invoice {
    Invoice::new(id, customer, d(due), amount, Currency::EUR)
}

fn portfolio(customers: &[(&str, &str)], invoices: Vec<Invoice>) -> Portfolio {
    Portfolio {
        customers: customers.iter().map(|(id, seg)| Customer::new(*id, format!("Client {id}"), *seg)).collect(),
        invoices,
        ..Portfolio::default()
    }
}

fn run(policy: &str, p: &Portfolio, as_of: &str, h: &dyn History) -> Plan {
    engine(policy).evaluate(p, d(as_of), h)
}

fn steps(plan: &Plan) -> Vec<(String, String, Vec<String>)> {
    plan.actions.iter().map(|a| (a.customer.clone(), a.step.clone(), a.invoices.clone())).collect()
}

fn skipped(plan: &Plan, status: SkipStatus) -> Vec<(String, String)> {
    plan.skipped.iter().filter(|s| s.status == status).map(|s| (s.invoice.clone(), s.step.clone())).collect()
}

const SIMPLE: &str = r#"
settings { currency EUR calendar none }
scenario "All" {
  for others
  D-5  email "pre"
  D    email "due"
  D+3  email "r1"
  D+10 letter "r2"
}
"#;

#[test]
fn rule1_outstanding_nets_payments_and_credit_notes() {
    let mut p = portfolio(
        &[("C1", "sme")],
        vec![inv("F1", "C1", "2026-03-01", dec!(1000)), inv("F2", "C1", "2026-03-01", dec!(300))],
    );
    p.payments = vec![
        Payment {
            id: None,
            invoice_id: "F1".into(),
            date: d("2026-03-02"),
            amount: dec!(400),
            kind: PaymentKind::Payment,
        },
        Payment {
            id: None,
            invoice_id: "F1".into(),
            date: d("2026-03-03"),
            amount: dec!(100),
            kind: PaymentKind::CreditNote,
        },
        Payment {
            id: None,
            invoice_id: "F2".into(),
            date: d("2026-03-02"),
            amount: dec!(300),
            kind: PaymentKind::Payment,
        },
        // A payment dated after the as-of date is not known yet.
        Payment {
            id: None,
            invoice_id: "F1".into(),
            date: d("2026-03-20"),
            amount: dec!(500),
            kind: PaymentKind::Payment,
        },
    ];
    let plan = run(SIMPLE, &p, "2026-03-04", &NoHistory);
    assert_eq!(steps(&plan), vec![("C1".into(), "D+3".into(), vec!["F1".into()])]);
    assert_eq!(plan.actions[0].outstanding, dec!(500.00));
}

#[test]
fn rule1_invoice_due_today_is_not_late() {
    let p = portfolio(&[("C1", "sme")], vec![inv("F1", "C1", "2026-03-10", dec!(100))]);
    let plan = run(
        "scenario \"A\" { for others D email \"due\" when days_late = 0 D+1 email \"late\" }",
        &p,
        "2026-03-10",
        &NoHistory,
    );
    assert_eq!(steps(&plan), vec![("C1".into(), "D".into(), vec!["F1".into()])]);
    assert!(plan.actions[0].reason.contains("0 days late"), "{}", plan.actions[0].reason);
}

#[test]
fn rule2_trigger_on_weekend_moves_to_next_business_day() {
    // Due Thursday 2026-04-02; D+3 = Sunday 5 April; Monday 6 April is Easter Monday (FR),
    // so the step triggers on Tuesday 7 April.
    let p = portfolio(&[("C1", "sme")], vec![inv("F1", "C1", "2026-04-02", dec!(100))]);
    let policy = "settings { calendar FR } scenario \"A\" { for others D+3 email \"r1\" }";
    assert!(run(policy, &p, "2026-04-06", &NoHistory).actions.is_empty());
    let plan = run(policy, &p, "2026-04-07", &NoHistory);
    assert_eq!(steps(&plan).len(), 1);
    assert_eq!(plan.next[0].next_action_on, None);
    let before = run(policy, &p, "2026-04-03", &NoHistory);
    assert_eq!(before.next[0].next_action_on, Some(d("2026-04-07")));
}

#[test]
fn rule2_count_business_days() {
    // Due Friday 2026-03-06; D+3 in business days is Wednesday 11 March.
    let p = portfolio(&[("C1", "sme")], vec![inv("F1", "C1", "2026-03-06", dec!(100))]);
    let policy = "settings { calendar FR } scenario \"A\" { for others count business days D+3 email \"r1\" }";
    assert!(run(policy, &p, "2026-03-10", &NoHistory).actions.is_empty());
    assert_eq!(run(policy, &p, "2026-03-11", &NoHistory).actions.len(), 1);
}

#[test]
fn rule2_step_done_in_journal_is_not_repeated() {
    let p = portfolio(&[("C1", "sme")], vec![inv("F1", "C1", "2026-03-01", dec!(100))]);
    let e = engine(SIMPLE);
    let mut h = MemoryHistory::new();
    let first = e.evaluate(&p, d("2026-03-04"), &h);
    assert_eq!(first.actions.len(), 1);
    h.record(&first);
    assert!(e.evaluate(&p, d("2026-03-05"), &h).actions.is_empty());
}

#[test]
fn rule3_catch_up_latest_supersedes_and_carries_fees() {
    let policy = r#"
settings { currency EUR calendar none law FR }
scenario "A" {
  for others
  D+3  email "r1"
  D+15 letter "r2" with fee 10 EUR per invoice
  D+30 registered_letter "notice" with fee legal
}"#;
    let p = portfolio(&[("C1", "sme")], vec![inv("F1", "C1", "2026-01-01", dec!(1000))]);
    let plan = run(policy, &p, "2026-02-15", &NoHistory);
    assert_eq!(steps(&plan), vec![("C1".into(), "D+30".into(), vec!["F1".into()])]);
    let a = &plan.actions[0];
    assert_eq!(a.fees, dec!(50.00), "10 EUR of D+15 carried + 40 EUR legal");
    // Each fee is named in the reason, the step's own first, then the carried ones.
    let legal = a.reason.find("; 40.00 EUR legal recovery fee (FR, D+30)").expect("the legal fee in the reason");
    let carried = a.reason.find("; 10.00 EUR fee (D+15)").expect("the carried fee in the reason");
    assert!(legal < carried, "{}", a.reason);
    assert_eq!(a.carried, vec!["D+3 email".to_owned(), "D+15 letter".to_owned()]);
    assert_eq!(skipped(&plan, SkipStatus::Superseded), vec![("F1".into(), "D+3".into()), ("F1".into(), "D+15".into())]);
    // Carried steps are recorded as done: their fees are never charged again.
    let mut h = MemoryHistory::new();
    h.record(&plan);
    assert!(run(policy, &p, "2026-02-16", &h).actions.is_empty());
}

#[test]
fn rule3_catch_up_stepwise_emits_earliest_one_per_run() {
    let policy = r#"
settings { calendar none catch up stepwise }
scenario "A" { for others D+3 email "r1" D+15 letter "r2" D+30 letter "r3" }"#;
    let p = portfolio(&[("C1", "sme")], vec![inv("F1", "C1", "2026-01-01", dec!(1000))]);
    let e = engine(policy);
    let mut h = MemoryHistory::new();
    let mut seen = Vec::new();
    for day in ["2026-02-15", "2026-02-16", "2026-02-17", "2026-02-18"] {
        let plan = e.evaluate(&p, d(day), &h);
        seen.extend(plan.actions.iter().map(|a| a.step.clone()));
        h.record(&plan);
    }
    assert_eq!(seen, vec!["D+3", "D+15", "D+30"]);
}

#[test]
fn rule3_interest_is_carried_from_a_superseded_step() {
    let policy = r#"
settings { calendar none }
scenario "A" { for others D+10 letter "r1" with interest 10% per year D+20 call "c" }"#;
    let p = portfolio(&[("C1", "sme")], vec![inv("F1", "C1", "2026-01-01", dec!(3650))]);
    let plan = run(policy, &p, "2026-01-31", &NoHistory);
    // 3650 × 10 % × 30 days / 365 = 30.00
    assert_eq!(plan.actions[0].interest, dec!(30.00));
    assert_eq!(plan.actions[0].step, "D+20");
}

#[test]
fn rule4_pre_due_steps_expire_once_due_date_passed() {
    let p = portfolio(&[("C1", "sme")], vec![inv("F1", "C1", "2026-03-10", dec!(100))]);
    let plan = run(SIMPLE, &p, "2026-03-11", &NoHistory);
    assert_eq!(skipped(&plan, SkipStatus::Expired), vec![("F1".into(), "D-5".into())]);
    // On the due date itself the pre-due step is still possible (caught up by `D`).
    let on_due = run(SIMPLE, &p, "2026-03-10", &NoHistory);
    assert!(skipped(&on_due, SkipStatus::Expired).is_empty());
    assert_eq!(steps(&on_due)[0].1, "D");
}

#[test]
fn rule5_cooldown_defers_with_the_date_it_becomes_possible() {
    let policy = "settings { calendar none cooldown 5 days } scenario \"A\" { for others D+3 email \"r1\" }";
    let p = portfolio(
        &[("C1", "sme")],
        vec![inv("F1", "C1", "2026-03-01", dec!(100)), inv("F2", "C1", "2026-03-03", dec!(100))],
    );
    let e = engine(policy);
    let mut h = MemoryHistory::new();
    let day1 = e.evaluate(&p, d("2026-03-04"), &h);
    assert_eq!(steps(&day1), vec![("C1".into(), "D+3".into(), vec!["F1".into()])]);
    h.record(&day1);
    let day3 = e.evaluate(&p, d("2026-03-06"), &h);
    assert!(day3.actions.is_empty());
    let def: Vec<_> = day3.skipped.iter().filter(|s| s.status == SkipStatus::Deferred).collect();
    assert_eq!(def.len(), 1);
    assert_eq!(def[0].until, Some(d("2026-03-09")));
    assert_eq!(day3.next[0].next_action_on, Some(d("2026-03-09")));
    let day6 = e.evaluate(&p, d("2026-03-09"), &h);
    assert_eq!(steps(&day6), vec![("C1".into(), "D+3".into(), vec!["F2".into()])]);
}

#[test]
fn rule6_fees_once_per_invoice_and_step_and_legal_fee_once_per_invoice() {
    let policy = r#"
settings { calendar none law FR }
scenario "A" {
  for others
  D+30 letter "n1" with fee legal
  D+45 registered_letter "n2" with fee legal
  D+60 escalate "agency" with fee 15 EUR
}"#;
    let p = portfolio(
        &[("C1", "sme")],
        vec![inv("F1", "C1", "2026-01-01", dec!(100)), inv("F2", "C1", "2026-01-01", dec!(100))],
    );
    let e = engine(policy);
    let mut h = MemoryHistory::new();
    let p30 = e.evaluate(&p, d("2026-01-31"), &h);
    assert_eq!(p30.actions[0].fees, dec!(80.00), "40 EUR per invoice, two invoices");
    h.record(&p30);
    assert!(e.evaluate(&p, d("2026-02-01"), &h).actions.is_empty(), "a step is charged once");
    let p45 = e.evaluate(&p, d("2026-02-15"), &h);
    assert_eq!(p45.actions[0].fees, dec!(0.00), "the legal 40 EUR is owed once per invoice");
    h.record(&p45);
    let p60 = e.evaluate(&p, d("2026-03-02"), &h);
    assert_eq!(p60.actions[0].fees, dec!(30.00), "15 EUR per invoice");
}

#[test]
fn rule6_interest_on_each_days_outstanding_rounded_once_per_invoice() {
    let policy = "settings { calendar none } scenario \"A\" { for others D+1 letter \"n\" with interest 10% per year }";
    let mut p = portfolio(
        &[("C1", "sme")],
        vec![inv("F1", "C1", "2026-01-01", dec!(1000)), inv("F2", "C1", "2026-01-01", dec!(1))],
    );
    p.payments = vec![Payment {
        id: None,
        invoice_id: "F1".into(),
        date: d("2026-01-11"),
        amount: dec!(500),
        kind: PaymentKind::Payment,
    }];
    let plan = run(policy, &p, "2026-01-20", &NoHistory);
    // F1: 1000 × 10% × 9/365 (2–10 Jan) + 500 × 10% × 10/365 (11–20 Jan) = 2.4658 + 1.3699 = 3.84
    // F2: 1 × 10% × 19/365 = 0.0052 → 0.01
    assert_eq!(plan.actions[0].interest, dec!(3.85));
}

#[test]
fn rule6_promise_holds_until_end_of_its_date_then_breaks() {
    let policy = r#"
settings { calendar none }
scenario "A" { for others D+3 email "r1" pause when promise_to_pay on broken promise call "broken" assign "ar-team" }"#;
    let mut i = inv("F1", "C1", "2026-03-01", dec!(100));
    i.promise_date = Some(d("2026-03-10"));
    let p = portfolio(&[("C1", "sme")], vec![i]);
    let on_date = run(policy, &p, "2026-03-10", &NoHistory);
    assert!(on_date.actions.is_empty());
    assert_eq!(skipped(&on_date, SkipStatus::Paused), vec![("F1".into(), "D+3".into())]);
    assert_eq!(on_date.next[0].next_action_on, Some(d("2026-03-11")));
    let after = run(policy, &p, "2026-03-11", &NoHistory);
    let got: Vec<_> = after.actions.iter().map(|a| (a.step.as_str(), a.channel.as_str())).collect();
    assert_eq!(got, vec![("D+3", "email"), ("on broken promise", "call")]);
    assert_eq!(after.actions[1].assign.as_deref(), Some("ar-team"));
}

#[test]
fn rule_pause_and_stop_are_listed_with_reasons() {
    let policy = r#"
settings { calendar none }
scenario "A" { for others D+3 email "r1" pause when disputed stop when customer.tags has "legal-hold" }"#;
    let mut disputed = inv("F1", "C1", "2026-03-01", dec!(100));
    disputed.disputed = true;
    let mut p = portfolio(&[("C1", "sme"), ("C2", "sme")], vec![disputed, inv("F2", "C2", "2026-03-01", dec!(100))]);
    p.customers[1].tags = vec!["legal-hold".into()];
    let plan = run(policy, &p, "2026-03-05", &NoHistory);
    assert!(plan.actions.is_empty());
    assert_eq!(skipped(&plan, SkipStatus::Paused), vec![("F1".into(), "D+3".into())]);
    assert_eq!(skipped(&plan, SkipStatus::Stopped), vec![("F2".into(), "D+3".into())]);
    let stop = plan.skipped.iter().find(|s| s.status == SkipStatus::Stopped).unwrap();
    assert!(stop.reason.contains("legal-hold"), "{}", stop.reason);
}

#[test]
fn rule_after_payment_thanks_a_reminded_invoice_once() {
    let policy = r#"
settings { calendar none }
scenario "A" { for others D+3 email "r1" after payment email "thank-you" when reminded }"#;
    let mut p = portfolio(&[("C1", "sme")], vec![inv("F1", "C1", "2026-03-01", dec!(100))]);
    let e = engine(policy);
    let mut h = MemoryHistory::new();
    let r1 = e.evaluate(&p, d("2026-03-04"), &h);
    h.record(&r1);
    p.payments = vec![Payment {
        id: None,
        invoice_id: "F1".into(),
        date: d("2026-03-06"),
        amount: dec!(100),
        kind: PaymentKind::Payment,
    }];
    assert!(e.evaluate(&p, d("2026-03-05"), &h).actions.is_empty());
    let thanks = e.evaluate(&p, d("2026-03-06"), &h);
    assert_eq!(thanks.actions.len(), 1);
    assert_eq!(thanks.actions[0].template, "thank-you");
    h.record(&thanks);
    assert!(e.evaluate(&p, d("2026-03-07"), &h).actions.is_empty());
}

#[test]
fn rule_grouping_per_customer_and_per_invoice() {
    let grouped = "settings { calendar none } scenario \"A\" { for others D+3 letter \"r\" }";
    let per = "settings { calendar none } scenario \"A\" { for others D+3 letter \"r\" per invoice }";
    let p = portfolio(
        &[("C1", "sme")],
        vec![
            inv("F1", "C1", "2026-03-01", dec!(100)),
            inv("F2", "C1", "2026-03-01", dec!(50)),
            inv("F3", "C1", "2026-03-02", dec!(7)),
        ],
    );
    let g = run(grouped, &p, "2026-03-04", &NoHistory);
    assert_eq!(steps(&g), vec![("C1".into(), "D+3".into(), vec!["F1".into(), "F2".into()])]);
    assert_eq!(g.actions[0].outstanding, dec!(150.00));
    let pi = run(per, &p, "2026-03-04", &NoHistory);
    assert_eq!(pi.actions.len(), 2);
}

#[test]
fn rule_first_matching_scenario_wins_and_unassigned_are_listed() {
    let policy = r#"
settings { calendar none }
scenario "Fallback" { for others D+3 letter "x" when segment = "nobody" }
scenario "Big" { for customers where balance >= 1000 EUR D+3 call "big" }
scenario "SME" { for segment "sme" D+3 email "sme" }"#;
    let p = portfolio(
        &[("C1", "sme"), ("C2", "sme"), ("C3", "public")],
        vec![
            inv("F1", "C1", "2026-03-01", dec!(5000)),
            inv("F2", "C2", "2026-03-01", dec!(10)),
            inv("F3", "C3", "2026-03-01", dec!(10)),
        ],
    );
    let plan = run(policy, &p, "2026-03-04", &NoHistory);
    let got: Vec<_> = plan.actions.iter().map(|a| (a.customer.as_str(), a.scenario.as_str())).collect();
    assert_eq!(got, vec![("C1", "Big"), ("C2", "SME")], "`for others` is tried last wherever it is written");
    assert_eq!(plan.skipped.iter().filter(|s| s.scenario == "Fallback").count(), 1, "C3 falls back");
    let strict = policy.replace("scenario \"Fallback\" { for others D+3 letter \"x\" when segment = \"nobody\" }", "");
    let plan = run(&strict, &p, "2026-03-04", &NoHistory);
    assert_eq!(plan.unassigned.len(), 1);
    assert_eq!(plan.unassigned[0].customer, "C3");
    assert!(plan.unassigned[0].reason.contains("`public`"));
}

#[test]
fn rule_minimum_balance() {
    let policy = "settings { calendar none minimum balance 15 EUR } scenario \"A\" { for others D+3 email \"r\" }";
    let p = portfolio(
        &[("C1", "sme"), ("C2", "sme")],
        vec![inv("F1", "C1", "2026-03-01", dec!(14.99)), inv("F2", "C2", "2026-03-01", dec!(15))],
    );
    let plan = run(policy, &p, "2026-03-04", &NoHistory);
    assert_eq!(steps(&plan), vec![("C2".into(), "D+3".into(), vec!["F2".into()])]);
    assert_eq!(skipped(&plan, SkipStatus::BelowMinimum), vec![("F1".into(), "D+3".into())]);
}

#[test]
fn rule_condition_values_are_in_the_reason() {
    let policy = r#"settings { calendar none } scenario "A" { for others D+3 letter "r" when balance >= 1000 EUR and not disputed }"#;
    let p = portfolio(
        &[("C1", "sme"), ("C2", "sme")],
        vec![inv("F1", "C1", "2026-03-01", dec!(1500)), inv("F2", "C2", "2026-03-01", dec!(999))],
    );
    let plan = run(policy, &p, "2026-03-04", &NoHistory);
    assert_eq!(plan.actions.len(), 1);
    let r = &plan.actions[0].reason;
    assert!(r.contains("balance = 1500.00 EUR"), "{r}");
    assert!(r.contains("disputed = false"), "{r}");
    assert!(r.contains(&plan.scenarios_hash[..12]), "{r}");
    let cf = plan.skipped.iter().find(|s| s.status == SkipStatus::ConditionFalse).unwrap();
    assert!(cf.reason.contains("balance = 999.00 EUR"), "{}", cf.reason);
}

#[test]
fn one_bad_customer_does_not_abort_the_plan() {
    let policy = r#"settings { calendar none } scenario "A" { for others D+3 letter "r" when customer.limit > 500 }"#;
    let mut p = portfolio(
        &[("C1", "sme"), ("C2", "sme")],
        vec![inv("F1", "C1", "2026-03-01", dec!(100)), inv("F2", "C2", "2026-03-01", dec!(100))],
    );
    p.customers[0].extra.insert("limit", "a lot");
    p.customers[1].extra.insert("limit", "1000");
    let plan = run(policy, &p, "2026-03-04", &NoHistory);
    assert_eq!(plan.actions.len(), 1);
    assert_eq!(plan.errors.len(), 1);
    assert_eq!(plan.errors[0].customer, "C1");
    assert!(plan.errors[0].message.contains("`a lot` is not a number"), "{}", plan.errors[0].message);
}

#[test]
fn money_in_two_currencies_is_an_error_not_a_guess() {
    let policy = r#"settings { calendar none } scenario "A" { for others D+3 letter "r" when amount > 100 EUR }"#;
    let mut gbp = inv("F1", "C1", "2026-03-01", dec!(500));
    gbp.currency = Currency::GBP;
    let p = portfolio(&[("C1", "export")], vec![gbp]);
    let plan = run(policy, &p, "2026-03-04", &NoHistory);
    assert!(plan.actions.is_empty());
    assert!(plan.errors[0].message.contains("different currencies"), "{}", plan.errors[0].message);
}

#[test]
fn same_inputs_give_a_byte_identical_plan() {
    let policy = r#"settings { calendar FR law FR } scenario "A" { for others D+3 email "r" D+30 letter "n" with fee legal with interest legal }"#;
    let invoices: Vec<Invoice> = (0..200)
        .map(|i| inv(&format!("F{i:03}"), &format!("C{}", i % 37), "2026-01-05", Decimal::from(100 + i)))
        .collect();
    let customers: Vec<(String, String)> = (0..37).map(|i| (format!("C{i}"), "sme".to_owned())).collect();
    let refs: Vec<(&str, &str)> = customers.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let p = portfolio(&refs, invoices);
    let e = engine(policy);
    let a = relance_engine::render::to_json(&e.evaluate(&p, d("2026-02-10"), &NoHistory));
    let b = relance_engine::render::to_json(&e.evaluate(&p, d("2026-02-10"), &NoHistory));
    assert_eq!(a, b);
    assert!(a.contains("\"fees\":\"200.00\""), "five invoices × 40 EUR legal fee");
}

/// An export may repeat an invoice id within a customer (two lines of one invoice): both are
/// evaluated, and the plan lists their skipped steps in plan order (invoice id, offset).
#[test]
fn repeated_invoice_ids_are_listed_in_plan_order() {
    let policy = r#"settings { calendar none } scenario "A" { for others D-5 email "pre" D+3 email "r1" D+10 letter "r2" D+20 letter "r3" }"#;
    let invoices = vec![
        inv("F2", "C1", "2026-01-10", dec!(100)),
        inv("F1", "C1", "2026-01-05", dec!(100)),
        inv("F2", "C1", "2026-01-02", dec!(50)),
        inv("F0", "C1", "2026-01-20", dec!(10)),
    ];
    let p = portfolio(&[("C1", "sme")], invoices);
    let plan = run(policy, &p, "2026-02-15", &NoHistory);
    let keys: Vec<(String, i64)> = plan
        .skipped
        .iter()
        .map(|s| (s.invoice.clone(), s.step.trim_start_matches('D').parse::<i64>().unwrap()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "skipped steps in invoice id then offset order");
    // Both lines of F2 are there: two expired D-5 and two superseded D+3.
    assert_eq!(keys.iter().filter(|k| **k == ("F2".to_string(), -5)).count(), 2);
    assert_eq!(keys.iter().filter(|k| **k == ("F2".to_string(), 3)).count(), 2);
    let mut streamed = Vec::new();
    relance_engine::render::write_plan_json(engine(policy).program(), &p, d("2026-02-15"), &NoHistory, &mut streamed)
        .unwrap();
    assert_eq!(String::from_utf8(streamed).unwrap(), relance_engine::render::to_json(&plan));
}

/// A law of the embedding program whose name needs escaping in JSON (`"` and `\`): the
/// reasons' prepared phrases (` legal recovery fee (…, `, ` interest at legal rate (…) from `)
/// escape it as the reason's other texts, and the streamed JSON is the plan's JSON.
#[test]
fn a_law_named_with_quotes_is_escaped_in_streamed_reasons() {
    #[derive(Debug)]
    struct Odd;
    impl relance_engine::law::Law for Odd {
        fn name(&self) -> &str {
            r#"Loi "spéciale" \ 2026"#
        }
        fn currency(&self) -> Currency {
            Currency::EUR
        }
        fn recovery_fee(&self, _: Decimal) -> Decimal {
            dec!(40)
        }
        fn interest(&self) -> &dyn relance_engine::law::RateSchedule {
            &ODD_RATE
        }
    }
    static ODD_RATE: relance_engine::law::FixedRate = relance_engine::law::FixedRate { percent: dec!(12.5) };
    let mut registry = relance_stdlib::registry();
    registry.laws.insert("ODD".to_owned(), std::sync::Arc::new(Odd));
    let policy = r#"
settings { currency EUR calendar none law ODD }
scenario "All" {
  for others
  D+10 letter "r2" with fee legal with interest legal
}
"#;
    let e = Engine::from_sources(vec![relance_dsl::Source::new("policy.relance", policy)], &registry).unwrap();
    let p = portfolio(&[("C1", "sme")], vec![inv("F1", "C1", "2026-01-05", dec!(1000))]);
    let plan = e.evaluate(&p, d("2026-02-15"), &NoHistory);
    let reason = &plan.actions[0].reason;
    assert!(reason.contains(r#"40.00 EUR legal recovery fee (Loi "spéciale" \ 2026, D+10)"#), "{reason}");
    assert!(
        reason.contains(r#"EUR interest at legal rate (Loi "spéciale" \ 2026) from 2026-01-06 to 2026-02-15"#),
        "{reason}"
    );
    let mut streamed = Vec::new();
    relance_engine::render::write_plan_json(e.program(), &p, d("2026-02-15"), &NoHistory, &mut streamed).unwrap();
    let streamed = String::from_utf8(streamed).unwrap();
    assert_eq!(streamed, relance_engine::render::to_json(&plan));
    let back: serde_json::Value = serde_json::from_str(&streamed).unwrap();
    assert_eq!(back["actions"][0]["reason"].as_str(), Some(reason.as_str()));
}

/// Interest periods are shared by the invoices of one rule and first day through the
/// evaluator's rate table, which holds no table beyond a few centuries of due dates: then
/// each note holds its own text. Both give the same reason, evaluated and streamed.
#[test]
fn interest_periods_read_the_same_with_and_without_the_rate_table() {
    let policy = "settings { calendar none } scenario \"A\" { for others D+1 letter \"n\" with interest 10% per year }";
    let e = engine(policy);
    let recent = || inv("F1", "C1", "2026-01-01", dec!(1000));
    let within = portfolio(&[("C1", "sme")], vec![recent()]);
    // Due dates 826 years apart: more days than the table holds.
    let beyond = portfolio(&[("C1", "sme"), ("C2", "sme")], vec![recent(), inv("F2", "C2", "1200-01-01", dec!(1))]);
    let as_of = d("2026-02-01");
    let reason = |p: &Portfolio| {
        let plan = e.evaluate(p, as_of, &NoHistory);
        let mut streamed = Vec::new();
        relance_engine::render::write_plan_json(e.program(), p, as_of, &NoHistory, &mut streamed).unwrap();
        assert_eq!(String::from_utf8(streamed).unwrap(), relance_engine::render::to_json(&plan));
        plan.actions.iter().find(|a| a.customer == "C1").map(|a| a.reason.clone()).unwrap()
    };
    let (a, b) = (reason(&within), reason(&beyond));
    assert!(a.contains("(10% from 2026-01-02 to 2026-02-01)"), "{a}");
    assert_eq!(a, b);
}
