//! Property tests of the engine, and a differential test against a deliberately naive
//! reference evaluator written straight from SPEC section 3.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, NaiveDate};
use iso_currency::Currency;
use proptest::prelude::*;
use relance_engine::history::{MemoryHistory, NoHistory};
use relance_engine::model::{Customer, Invoice, Payment, PaymentKind, Portfolio};
use relance_engine::plan::SkipStatus;
use relance_engine::{Engine, IndexedPortfolio, render};
use rust_decimal::Decimal;

const OFFSETS: [i32; 6] = [-5, 0, 3, 10, 30, 60];

fn policy(per_invoice: bool) -> String {
    let per = if per_invoice { " per invoice" } else { "" };
    format!(
        r#"settings {{ calendar none }}
scenario "All" {{
  for others
  D-5 email "pre"{per}
  D email "due"{per}
  D+3 email "r1"{per}
  D+10 letter "r2"{per}
  D+30 registered_letter "notice"{per}
  D+60 escalate "agency"{per}
}}"#
    )
}

fn engine(text: &str) -> Engine {
    Engine::from_sources(vec![relance_dsl::Source::new("p.relance", text)], &relance_stdlib::registry()).unwrap()
}

fn base() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
}

fn add(d: NaiveDate, n: i64) -> NaiveDate {
    if n >= 0 {
        d.checked_add_days(Days::new(n as u64)).unwrap()
    } else {
        d.checked_sub_days(Days::new((-n) as u64)).unwrap()
    }
}

/// (customer index, due offset from base, amount cents, paid-in-full offset from base)
type Row = (usize, i64, i64, Option<i64>);

fn build(rows: &[Row], customers: usize) -> Portfolio {
    let mut p = Portfolio {
        customers: (0..customers).map(|i| Customer::new(format!("C{i:02}"), format!("Client {i}"), "sme")).collect(),
        ..Portfolio::default()
    };
    for (n, (c, due, cents, paid)) in rows.iter().enumerate() {
        let id = format!("F{n:03}");
        p.invoices.push(Invoice::new(
            &id,
            format!("C{:02}", c % customers),
            add(base(), *due),
            Decimal::new(*cents, 2),
            Currency::EUR,
        ));
        if let Some(paid) = paid {
            p.payments.push(Payment {
                id: None,
                invoice_id: id.into(),
                date: add(base(), *paid),
                amount: Decimal::new(*cents, 2),
                kind: PaymentKind::Payment,
            });
        }
    }
    p
}

fn rows() -> impl Strategy<Value = Vec<Row>> {
    prop::collection::vec((0usize..8, -100i64..100, 1000i64..500_000, prop::option::of(0i64..140)), 1..25)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// 120 consecutive daily runs with a journal: no invoice gets the same step twice, and every
    /// step whose trigger date falls within the runs happens exactly once, on that date (unless
    /// the invoice was paid before).
    #[test]
    fn daily_runs_emit_every_step_once(rows in rows()) {
        let p = build(&rows, 8);
        let e = engine(&policy(false));
        let mut h = MemoryHistory::new();
        let mut seen: BTreeMap<(String, String), Vec<NaiveDate>> = BTreeMap::new();
        for day in 0..120 {
            let t = add(base(), day);
            let plan = e.evaluate(&p, t, &h);
            prop_assert!(plan.errors.is_empty(), "{:?}", plan.errors);
            for a in &plan.actions {
                for i in &a.invoices {
                    seen.entry((i.clone(), a.step.clone())).or_default().push(t);
                }
            }
            h.record(&plan);
        }
        for (key, dates) in &seen {
            prop_assert_eq!(dates.len(), 1, "step emitted twice: {:?} on {:?}", key, dates);
        }
        for (n, (_, due, _, paid)) in rows.iter().enumerate() {
            for off in OFFSETS {
                let trigger = due + i64::from(off);
                let label = match off { 0 => "D".to_owned(), o if o > 0 => format!("D+{o}"), o => format!("D{o}") };
                let still_open = paid.is_none_or(|pd| pd > trigger);
                if (1..120).contains(&trigger) && still_open {
                    let got = seen.get(&(format!("F{n:03}"), label.clone()));
                    prop_assert_eq!(got, Some(&vec![add(base(), trigger)]), "F{:03} {} should happen once on its trigger date", n, label);
                }
            }
        }
    }

    /// After a 90-day gap, `catch up latest` emits one action per open invoice.
    #[test]
    fn after_a_gap_catch_up_latest_emits_one_action_per_invoice(rows in rows()) {
        let p = build(&rows, 8);
        let e = engine(&policy(true));
        let t = add(base(), 90);
        let plan = e.evaluate(&p, t, &NoHistory);
        let mut per_invoice: BTreeMap<&str, usize> = BTreeMap::new();
        for a in &plan.actions {
            prop_assert_eq!(a.invoices.len(), 1);
            *per_invoice.entry(a.invoices[0].as_str()).or_default() += 1;
        }
        for (n, (_, due, _, paid)) in rows.iter().enumerate() {
            let id = format!("F{n:03}");
            let open = paid.is_none_or(|pd| pd > 90);
            let reached = *due + i64::from(OFFSETS[0]) <= 90; // D-5 or a later step reached
            let expected = usize::from(open && reached);
            prop_assert_eq!(per_invoice.get(id.as_str()).copied().unwrap_or(0), expected, "invoice {}", id);
        }
    }

    /// The plan does not depend on the order of the input rows.
    #[test]
    fn plans_are_deterministic_whatever_the_input_order(rows in rows(), day in 0i64..120) {
        let p = build(&rows, 8);
        let mut shuffled = p.clone();
        shuffled.invoices.reverse();
        shuffled.customers.reverse();
        shuffled.payments.reverse();
        let e = engine(&policy(false));
        let t = add(base(), day);
        prop_assert_eq!(render::to_json(&e.evaluate(&p, t, &NoHistory)), render::to_json(&e.evaluate(&shuffled, t, &NoHistory)));
        // What `relance plan` does before evaluating: the same plan.
        let mut sorted = shuffled.clone();
        sorted.sort_for_evaluation();
        prop_assert!(sorted.invoices.windows(2).all(|w| (&w[0].customer_id, &w[0].id) <= (&w[1].customer_id, &w[1].id)));
        prop_assert_eq!(sorted.invoices.len(), p.invoices.len());
        prop_assert_eq!(render::to_json(&e.evaluate(&p, t, &NoHistory)), render::to_json(&e.evaluate(&sorted, t, &NoHistory)));
        // And since round 18: indexed once, with the customer of each invoice as a loader
        // finds it, and streamed as `relance plan` writes it.
        let rows_of: std::collections::HashMap<&str, u32> =
            shuffled.customers.iter().enumerate().rev().map(|(k, c)| (c.id.as_str(), k as u32)).collect();
        let hints: Vec<u32> =
            shuffled.invoices.iter().map(|i| rows_of.get(i.customer_id.as_str()).copied().unwrap_or(u32::MAX)).collect();
        let want = render::to_json(&e.evaluate(&p, t, &NoHistory));
        for indexed in [IndexedPortfolio::new(shuffled.clone()), IndexedPortfolio::with_customers(shuffled.clone(), &hints)] {
            prop_assert_eq!(indexed.portfolio(), &sorted);
            prop_assert_eq!(&render::to_json(&e.evaluate(&indexed, t, &NoHistory)), &want);
            let mut streamed = Vec::new();
            render::write_plan_json(e.program(), &indexed, t, &NoHistory, &mut streamed).unwrap();
            prop_assert_eq!(String::from_utf8(streamed).unwrap(), want.clone());
        }
    }

    /// Differential test: the engine agrees with the naive reference on what is emitted,
    /// superseded and expired, for random portfolios and random journals.
    #[test]
    fn engine_agrees_with_naive_reference(rows in rows(), day in 0i64..150, done_mask in prop::collection::vec(any::<u8>(), 25)) {
        let p = build(&rows, 8);
        let t = add(base(), day);
        let e = engine(&policy(true));
        // A random journal: some steps already done for some invoices.
        let mut done: BTreeSet<(String, i32)> = BTreeSet::new();
        for (n, mask) in done_mask.iter().enumerate().take(rows.len()) {
            for (k, off) in OFFSETS.iter().enumerate() {
                if mask & (1 << k) != 0 && (mask & 0x80) != 0 {
                    done.insert((format!("F{n:03}"), *off));
                }
            }
        }
        let history = FakeHistory(done.clone());
        let plan = e.evaluate(&p, t, &history);
        let engine_view: BTreeSet<(String, String, &str)> = plan.actions.iter()
            .map(|a| (a.invoices[0].clone(), a.step.clone(), "emit"))
            .chain(plan.skipped.iter().filter_map(|s| match s.status {
                SkipStatus::Superseded => Some((s.invoice.clone(), s.step.clone(), "superseded")),
                SkipStatus::Expired => Some((s.invoice.clone(), s.step.clone(), "expired")),
                _ => None,
            }))
            .collect();
        prop_assert_eq!(engine_view, naive(&p, t, &done));
    }
}

struct FakeHistory(BTreeSet<(String, i32)>);

impl relance_engine::History for FakeHistory {
    fn step_done(&self, invoice: &str, _: &str, step: &str) -> Option<NaiveDate> {
        let label = step.split(' ').next()?;
        let off: i32 =
            if label == "D" { 0 } else { label.trim_start_matches('D').trim_start_matches('+').parse().ok()? };
        self.0.contains(&(invoice.to_owned(), off)).then(base)
    }
    fn last_contact(&self, _: &str) -> Option<NaiveDate> {
        None
    }
    fn reminders_sent(&self, _: &str) -> u32 {
        0
    }
}

/// The reference: written from the SPEC text, one invoice at a time, no cleverness.
fn naive(p: &Portfolio, t: NaiveDate, done: &BTreeSet<(String, i32)>) -> BTreeSet<(String, String, &'static str)> {
    let mut out = BTreeSet::new();
    for inv in &p.invoices {
        let paid: Decimal = p.payments.iter().filter(|x| x.invoice_id == inv.id && x.date <= t).map(|x| x.amount).sum();
        if inv.amount - paid <= Decimal::ZERO {
            continue;
        }
        let label = |o: i32| match o {
            0 => "D".to_owned(),
            o if o > 0 => format!("D+{o}"),
            o => format!("D{o}"),
        };
        // A step earlier than a step already done is over.
        let last_done = OFFSETS.iter().filter(|o| done.contains(&(inv.id.to_string(), **o))).max().copied();
        let mut due_steps = Vec::new();
        for off in OFFSETS {
            if done.contains(&(inv.id.to_string(), off)) || last_done.is_some_and(|l| off < l) {
                continue;
            }
            let trigger = add(inv.due_date, i64::from(off));
            if trigger > t {
                continue;
            }
            if off < 0 && t > inv.due_date {
                out.insert((inv.id.to_string(), label(off), "expired"));
                continue;
            }
            due_steps.push(off);
        }
        if let Some((last, earlier)) = due_steps.split_last() {
            out.insert((inv.id.to_string(), label(*last), "emit"));
            for o in earlier {
                out.insert((inv.id.to_string(), label(*o), "superseded"));
            }
        }
    }
    out
}

/// The money policy of the amounts test: a fixed fee and simple interest at D+30, paused
/// when disputed; one action per invoice, so each action's amounts are one invoice's.
const MONEY_POLICY: &str = r#"settings { calendar none }
scenario "All" {
  for others
  D-5 email "pre" per invoice
  D+3 email "r1" per invoice
  D+10 letter "r2" per invoice
  D+30 registered_letter "notice" per invoice with fee 40 EUR with interest 10% per year
  D+60 escalate "agency" per invoice
  pause when disputed
}"#;

/// (due offset from base, amount cents, partial payment: (offset from base, cents), disputed)
type MoneyRow = (i64, i64, Option<(i64, i64)>, bool);

fn money_rows() -> impl Strategy<Value = Vec<MoneyRow>> {
    prop::collection::vec(
        (
            -100i64..100,
            1000i64..5_000_000,
            prop::option::of((-120i64..150, 1i64..6_000_000)),
            prop::bool::weighted(0.2),
        ),
        1..25,
    )
}

fn build_money(rows: &[MoneyRow]) -> Portfolio {
    let mut p = Portfolio {
        customers: (0..4).map(|i| Customer::new(format!("C{i:02}"), format!("Client {i}"), "sme")).collect(),
        ..Portfolio::default()
    };
    for (n, (due, cents, partial, disputed)) in rows.iter().enumerate() {
        let id = format!("F{n:03}");
        let mut inv =
            Invoice::new(&id, format!("C{:02}", n % 4), add(base(), *due), Decimal::new(*cents, 2), Currency::EUR);
        inv.disputed = *disputed;
        p.invoices.push(inv);
        if let Some((at, paid)) = partial {
            p.payments.push(Payment {
                id: None,
                invoice_id: id.into(),
                date: add(base(), *at),
                amount: Decimal::new(*paid, 2),
                kind: PaymentKind::Payment,
            });
        }
    }
    p
}

/// The reference for amounts, straight from SPEC 3.3 and 3.6: for each open, undisputed
/// invoice, the latest due step is emitted and carries the fee and interest of the steps it
/// supersedes; interest is summed day by day on that day's outstanding amount and rounded
/// once, half away from zero.
fn naive_money(
    p: &Portfolio,
    t: NaiveDate,
    done: &BTreeSet<(String, i32)>,
) -> BTreeMap<String, (String, String, String)> {
    const STEPS: [i32; 5] = [-5, 3, 10, 30, 60];
    let mut out = BTreeMap::new();
    for inv in &p.invoices {
        let outstanding_on = |d: NaiveDate| -> Decimal {
            inv.amount
                - p.payments.iter().filter(|x| x.invoice_id == inv.id && x.date <= d).map(|x| x.amount).sum::<Decimal>()
        };
        if outstanding_on(t) <= Decimal::ZERO || inv.disputed {
            continue;
        }
        let last_done = STEPS.iter().filter(|o| done.contains(&(inv.id.to_string(), **o))).max().copied();
        let due: Vec<i32> = STEPS
            .into_iter()
            .filter(|o| !done.contains(&(inv.id.to_string(), *o)) && last_done.is_none_or(|l| *o >= l))
            .filter(|o| add(inv.due_date, i64::from(*o)) <= t && !(*o < 0 && t > inv.due_date))
            .collect();
        let Some(emitted) = due.last() else { continue };
        let (fees, interest) = if due.contains(&30) {
            // Σ outstanding × rate over the days, divided once (dividing each day would
            // round each term: 73 days of 44,778.75 at 10 % would give 895.57, not 895.575).
            let mut sum = Decimal::ZERO;
            let mut d = add(inv.due_date, 1);
            while d <= t {
                sum += outstanding_on(d).max(Decimal::ZERO) * Decimal::from(10);
                d = add(d, 1);
            }
            let interest = sum / Decimal::from(36_500);
            (
                Decimal::new(4000, 2),
                interest.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero),
            )
        } else {
            (Decimal::ZERO, Decimal::ZERO)
        };
        let label = if *emitted > 0 { format!("D+{emitted}") } else { format!("D{emitted}") };
        out.insert(inv.id.to_string(), (label, fees.normalize().to_string(), interest.normalize().to_string()));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Differential test on amounts: fees and interest carried by catch-up, partial payments
    /// dated before, during and after the interest time, disputed invoices paused, with an
    /// empty journal (the evaluator's shortcuts) and with a random one.
    #[test]
    fn engine_amounts_agree_with_naive_reference(
        rows in money_rows(),
        day in 0i64..200,
        done_mask in prop::collection::vec(any::<u8>(), 25),
        journal in any::<bool>(),
    ) {
        let p = build_money(&rows);
        let t = add(base(), day);
        let e = engine(MONEY_POLICY);
        let mut done: BTreeSet<(String, i32)> = BTreeSet::new();
        if journal {
            for (n, mask) in done_mask.iter().enumerate().take(rows.len()) {
                for (k, off) in [-5, 3, 10, 30, 60].iter().enumerate() {
                    if mask & (1 << k) != 0 && (mask & 0x80) != 0 {
                        done.insert((format!("F{n:03}"), *off));
                    }
                }
            }
        }
        let fake = FakeHistory(done.clone());
        let history: &dyn relance_engine::History = if journal { &fake } else { &NoHistory };
        let plan = e.evaluate(&p, t, history);
        prop_assert!(plan.errors.is_empty(), "{:?}", plan.errors);
        let engine_view: BTreeMap<String, (String, String, String)> = plan.actions.iter()
            .map(|a| (a.invoices[0].clone(), (a.step.clone(), a.fees.normalize().to_string(), a.interest.normalize().to_string())))
            .collect();
        prop_assert_eq!(engine_view, naive_money(&p, t, &done));
        // The summary has the same totals as the plan.
        let summary = e.summarize(&p, t, history);
        prop_assert_eq!(summary.actions, plan.actions.len());
        let (fees, interest) = plan.actions.iter().fold((Decimal::ZERO, Decimal::ZERO), |s, a| (s.0 + a.fees, s.1 + a.interest));
        let totals = summary.totals.values().fold((Decimal::ZERO, Decimal::ZERO), |s, t| (s.0 + t.fees, s.1 + t.interest));
        prop_assert_eq!(totals, (fees, interest));
    }
}
