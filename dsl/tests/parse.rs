//! Parsing of the SPEC examples and of every construct of the language.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use relance_dsl::ast::*;
use relance_dsl::{KnownNames, Source, load, parse, render_human};

fn parse_ok(text: &str) -> File {
    match parse(&Source::new("t.relance", text)) {
        Ok(f) => f,
        Err(d) => panic!("{}", render_human(&d, false)),
    }
}

#[test]
fn spec_example_parses_and_checks_clean() {
    let text = include_str!("fixtures/spec.relance");
    let set = load(vec![Source::new("spec.relance", text)], &KnownNames::default())
        .unwrap_or_else(|d| panic!("{}", render_human(&d, false)));
    let file = &set.files[0].1;
    assert_eq!(file.items.len(), 4);
    let Item::Scenario(sme) = &file.items[2] else { panic!() };
    assert_eq!(sme.name.node, "Small businesses");
    let SelectorKind::Segments(segs) = &sme.selector.kind else { panic!() };
    assert_eq!(segs.iter().map(|s| s.node.as_str()).collect::<Vec<_>>(), ["sme", "micro"]);
    let ScenarioEntry::Step(st) = &sme.entries[3] else { panic!() };
    assert_eq!(st.offset.node, 30);
    assert_eq!(st.action.channel.node, "registered_letter");
    assert_eq!(st.action.charges.len(), 2);
    assert!(
        matches!(&st.action.charges[0].kind, ChargeKind::FeeAmount(m) if m.amount == 40.into() && m.currency.node == "EUR")
    );
    assert!(matches!(&st.action.charges[1].kind,
        ChargeKind::InterestReference { reference, points } if reference.node == "ECB" && points.node == 10.into()));
    assert_eq!(&text[st.span.start..st.offset.span.end], "D+30");
    // The first comment is the file header.
    assert!(file.comments[0].text.starts_with("# Dunning policy"));
    assert_eq!(set.hash.len(), 64);
    assert!(set.warnings.is_empty(), "{}", render_human(&set.warnings, false));
}

#[test]
fn offsets() {
    let f = parse_ok("scenario \"x\" { for others D-10 email \"a\" D email \"b\" D+3 email \"c\" }");
    let Item::Scenario(s) = &f.items[0] else { panic!() };
    let offs: Vec<i32> = s
        .entries
        .iter()
        .map(|e| match e {
            ScenarioEntry::Step(s) => s.offset.node,
            _ => panic!(),
        })
        .collect();
    assert_eq!(offs, [-10, 0, 3]);
}

#[test]
fn precedence_not_binds_tighter_than_comparison() {
    let f = parse_ok("scenario \"x\" { for others D email \"a\" when not a = b or c and d }");
    let Item::Scenario(s) = &f.items[0] else { panic!() };
    let ScenarioEntry::Step(st) = &s.entries[0] else { panic!() };
    let e = st.action.condition.as_ref().unwrap();
    // (((not a) = b) or (c and d))
    let ExprKind::Or(l, r) = &e.kind else { panic!("{e:?}") };
    let ExprKind::Compare { lhs, .. } = &l.kind else { panic!() };
    assert!(matches!(lhs.kind, ExprKind::Not(_)));
    assert!(matches!(r.kind, ExprKind::And(..)));
}

#[test]
fn every_construct() {
    let text = r#"
settings {
  currency EUR
  calendar FR-ALSACE
  law FR
  cooldown 5 days
  minimum balance 15.50 EUR
  language fr
  functions "rules.rhai"
  catch up stepwise
  rates assume unchanged
}
scenario "All" {
  for customers where customer.region in ["north", "east"] and not (balance < 10 EUR) or rhai "true"
  count business days
  catch up latest
  D-3 webhook "pre" per invoice assign "bot" when days_late >= 0 and avg_days_late > 10 days
      with interest 8.5% per year
      with fee 12.50 EUR
  D+5 my_channel "x" when invoice.po_number != "" and segment = "sme" and disputed = false
      with interest BASE - 1 point
  after payment email "thanks" when reminded with fee legal
  on broken promise call "broken" assign "ar"
  pause when promise_to_pay or payment_plan
  stop when customer.tags has "legal-hold"
}
"#;
    let f = parse_ok(text);
    let Item::Settings(s) = &f.items[0] else { panic!() };
    assert_eq!(s.entries.len(), 9);
    assert!(matches!(&s.entries[1].kind, SettingKind::Calendar(c) if c.node == "FR-ALSACE"));
    assert!(matches!(&s.entries[7].kind, SettingKind::CatchUp(c) if c.node == CatchUp::Stepwise));
    assert!(matches!(&s.entries[8].kind, SettingKind::RatesAssumeUnchanged));
    let Item::Scenario(sc) = &f.items[1] else { panic!() };
    assert!(matches!(sc.selector.kind, SelectorKind::Where(_)));
    assert_eq!(sc.entries.len(), 8);
    let ScenarioEntry::Step(st) = &sc.entries[2] else { panic!() };
    assert_eq!(st.offset.node, -3);
    assert!(st.action.per_invoice.is_some());
    assert_eq!(st.action.assign.as_ref().unwrap().node, "bot");
    let ScenarioEntry::Step(st) = &sc.entries[3] else { panic!() };
    assert!(matches!(&st.action.charges[0].kind,
        ChargeKind::InterestReference { points, .. } if points.node == (-1).into()));
    assert!(matches!(&sc.entries[4], ScenarioEntry::Event(e) if e.kind.node == EventKind::AfterPayment));
    assert!(matches!(&sc.entries[5], ScenarioEntry::Event(e) if e.kind.node == EventKind::BrokenPromise));
    assert!(matches!(&sc.entries[7], ScenarioEntry::Stop(_)));
}

#[test]
fn several_syntax_errors_are_all_reported() {
    let text = "scenario \"a\" { for others D+ email \"x\" }\nscenario \"b\" { for others D+1 email x }\nscenario \"c\" { for others D 1 email \"y\" }\n";
    let d = parse(&Source::new("t.relance", text)).unwrap_err();
    assert_eq!(d.len(), 3, "{}", render_human(&d, false));
}

#[test]
fn spans_are_trimmed() {
    let text = "scenario \"x\" {\n  for segment \"a\"   # c\n  D email \"a\"\n}\n";
    let f = parse_ok(text);
    let Item::Scenario(s) = &f.items[0] else { panic!() };
    assert_eq!(&text[s.selector.span.start..s.selector.span.end], "for segment \"a\"");
}

#[test]
fn a_setting_value_may_start_with_a_reserved_word_and_a_dash() {
    let f = parse_ok("settings {\n  law on-site\n  calendar in-2026\n}\n");
    let Item::Settings(s) = &f.items[0] else { panic!() };
    let values: Vec<&str> = s
        .entries
        .iter()
        .map(|e| match &e.kind {
            SettingKind::Law(v) | SettingKind::Calendar(v) => v.node.as_str(),
            _ => panic!(),
        })
        .collect();
    assert_eq!(values, ["on-site", "in-2026"]);
    // A bare reserved word is still refused, with a message that names what was expected.
    let d = parse(&Source::new("t.relance", "settings {\n  law on\n}\n")).unwrap_err();
    assert!(render_human(&d, false).contains("expected a name, found `on`"), "{}", render_human(&d, false));
}
