//! Throughput of parse + check on a large generated scenario file.
//!
//! `cargo bench -p relance-dsl --bench parse` prints the time per iteration and the
//! throughput in bytes per second.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use divan::counter::BytesCount;
use relance_dsl::{KnownNames, Source, check, parse};

fn main() {
    divan::main();
}

/// A realistic file of `n` scenarios with settings, comments, steps with conditions and
/// charges, events and rules (about 1 KB per scenario).
fn generate(n: usize) -> String {
    let mut s = String::from(
        "# generated benchmark policy\nsettings {\n  currency EUR  # default\n  calendar FR\n  law FR\n  cooldown 5 days\n  minimum balance 15 EUR\n}\n\n",
    );
    for i in 0..n {
        s.push_str(&format!(
            r#"# scenario number {i}
scenario "Segment {i}" {{
  for segment "seg-{i}", "seg-{i}-bis"
  D-5   call "check-receipt" assign "account-manager"
  D+3   email "reminder-1" when balance >= 100 EUR and not disputed  # first reminder
  D+10  email "reminder-2" when days_late > 7 or customer.region in ["north", "east", "west"]
  D+20  letter "reminder-3" per invoice
  D+30  registered_letter "formal-notice" when balance >= 1000 EUR and (reminders_sent >= 2 or avg_days_late > 30 days)
        with fee 40 EUR per invoice
        with interest ECB + 10 points
  D+60  escalate "collection-agency" when overdue_balance >= 500 EUR and not (disputed or promise_to_pay)
        with fee legal
        with interest legal
  after payment email "thank-you" when reminded
  on broken promise call "broken-promise" assign "ar-team"
  pause when disputed
  stop when customer.tags has "legal-hold"
}}

"#
        ));
    }
    s.push_str("scenario \"Everyone else\" {\n  for others\n  D+1 email \"reminder-1\"\n}\n");
    s
}

#[divan::bench(args = [100, 2000])]
fn parse_and_check(bencher: divan::Bencher, n: usize) {
    let text = generate(n);
    let src = Source::new("bench.relance", text.clone());
    let known = KnownNames::default();
    bencher.counter(BytesCount::of_str(&text)).bench(|| {
        let file = parse(divan::black_box(&src)).unwrap();
        let files = vec![(src.clone(), file)];
        let diags = check(&files, &known);
        assert!(diags.iter().all(|d| !d.is_error()));
        diags.len()
    });
}

#[divan::bench(args = [2000])]
fn parse_only(bencher: divan::Bencher, n: usize) {
    let text = generate(n);
    let src = Source::new("bench.relance", text.clone());
    bencher.counter(BytesCount::of_str(&text)).bench(|| parse(divan::black_box(&src)).unwrap().items.len());
}
