//! The example program's plan on the bundled FEC.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use relance_engine::history::NoHistory;
use relance_engine::render;
use relance_example_embed::{POLICY, POLICY_NAME, engine, fec_source, plan, registry, teams_message};

fn bundled() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fec/0000000001FEC20220831.txt")
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[test]
fn the_plan_on_the_bundled_fec_is_non_empty_and_deterministic() {
    let (first, summary) = plan(&bundled(), day(2022, 8, 31)).unwrap();
    let (second, _) = plan(&bundled(), day(2022, 8, 31)).unwrap();
    assert!(!first.actions.is_empty());
    assert_eq!(render::to_json(&first), render::to_json(&second));
    assert_eq!(render::to_table(&first), render::to_table(&second));
    assert_eq!((summary.lines, summary.customer_lines, summary.customers), (5422, 538, 17));
    // Every customer is handled by a scenario (`for others` catches the `sme` ones).
    assert!(first.unassigned.is_empty() && first.errors.is_empty());
    assert_eq!(first.next.len(), 17);
}

#[test]
fn table_snapshot() {
    let (plan, _) = plan(&bundled(), day(2022, 8, 31)).unwrap();
    let table = render::to_table(&plan);
    let head: Vec<&str> = table.lines().take(20).collect();
    insta::assert_snapshot!(head.join("\n"));
}

#[test]
fn the_acme_closing_week_moves_steps_to_the_next_business_day() {
    let portfolio = fec_source(&bundled()).read().unwrap().portfolio;
    let next = |policy: &str| {
        let sources = vec![relance_dsl::Source::new(POLICY_NAME, policy)];
        let engine = relance_engine::Engine::from_sources(sources, &registry()).unwrap();
        let plan = engine.evaluate(&portfolio, day(2022, 8, 31), &NoHistory);
        plan.next.iter().find(|n| n.customer == "CMOURL").and_then(|n| n.next_action_on)
    };
    // SAS MOURLHON (a key account): invoice of 31 August due 30 September, `D-10` statement on
    // Tuesday 20 September, inside the closing week: it moves to Monday 26 September.
    assert_eq!(next(POLICY), Some(day(2022, 9, 26)));
    assert_eq!(next(&POLICY.replace("calendar FR-ACME", "calendar FR")), Some(day(2022, 9, 20)));
}

#[test]
fn the_policy_needs_the_programs_calendar_and_channel() {
    assert!(engine(&registry()).is_ok());
    let err = engine(&relance_stdlib::registry()).unwrap_err();
    let text = format!("{:?}", miette::Report::new(err));
    assert!(text.contains("FR-ACME"), "{text}");
    assert!(text.contains("teams"), "{text}");
}

#[test]
fn teams_actions_are_planned_and_rendered_by_the_program() {
    // On 30 September 2022, PROSOL's invoices of 11 August (due 10 September) reach
    // `D+20 teams`; with no journal, catch-up emits that latest step and supersedes `D+3 call`.
    let (plan, _) = plan(&bundled(), day(2022, 9, 30)).unwrap();
    let teams: Vec<_> = plan.actions.iter().filter(|a| a.channel == "teams").collect();
    assert!(!teams.is_empty(), "{}", render::to_table(&plan));
    let prosol = teams.iter().find(|a| a.customer == "CPRO00").unwrap();
    assert_eq!(prosol.step, "D+20");
    let message = teams_message(prosol);
    assert!(message.starts_with("[ping-sales] PROSOL GESTION (CPRO00) owes 13401.95 EUR on FA  220376"), "{message}");
}

#[test]
fn a_bad_fec_path_is_a_clear_error() {
    let err = plan(Path::new("/nonexistent/fec.txt"), day(2022, 8, 31)).unwrap_err();
    assert_eq!(err.to_string(), "cannot read the FEC file `/nonexistent/fec.txt`");
}
