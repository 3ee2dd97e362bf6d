//! Formatter: snapshots, idempotence, and round trips that never change the tree.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use relance_dsl::ast::*;
use relance_dsl::{Source, format, parse, render_human};
use rust_decimal::Decimal;

fn parse_ok(text: &str) -> File {
    match parse(&Source::new("t.relance", text)) {
        Ok(f) => f,
        Err(d) => panic!("{}\n--- text:\n{text}", render_human(&d, false)),
    }
}

fn fmt(text: &str) -> String {
    format(&parse_ok(text), text)
}

fn comment_texts(f: &File) -> Vec<String> {
    let mut v: Vec<String> = f.comments.iter().map(|c| c.text.clone()).collect();
    v.sort();
    v
}

fn assert_stable(text: &str) -> String {
    let once = fmt(text);
    let twice = fmt(&once);
    assert_eq!(once, twice, "format is not idempotent");
    let a = parse_ok(text);
    let b = parse_ok(&once);
    assert_eq!(a.without_spans(), b.without_spans(), "format changed the tree");
    assert_eq!(comment_texts(&a), comment_texts(&b), "format lost or changed comments");
    once
}

#[test]
fn spec_example() {
    insta::assert_snapshot!(assert_stable(include_str!("fixtures/spec.relance")));
}

#[test]
fn messy_file_with_comments_everywhere() {
    insta::assert_snapshot!(assert_stable(include_str!("fixtures/messy.relance")));
}

#[test]
fn example_policy_is_formatted() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scenarios");
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for e in entries {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "relance") {
            let text = std::fs::read_to_string(&p).unwrap();
            assert_eq!(assert_stable(&text), text, "{} is not in canonical layout", p.display());
        }
    }
}

// ------------------------------------------------------------------ generators

const RESERVED: &[&str] = &[
    "and", "or", "not", "has", "in", "when", "with", "assign", "per", "true", "false", "rhai", "pause", "stop",
    "after", "on", "count", "catch", "for",
];

fn z<T>(node: T) -> Spanned<T> {
    Spanned::new(node, Span::default())
}

fn ident() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_]{0,8}".prop_filter("reserved", |s| !RESERVED.contains(&s.as_str()))
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _\\-\"\\\\\n\té#{}]{0,12}"
}

fn currency() -> impl Strategy<Value = String> {
    "[A-Z]{3}"
}

fn decimal() -> impl Strategy<Value = Decimal> {
    (-1_000_000i64..1_000_000, 0u32..4).prop_map(|(n, s)| Decimal::new(n, s))
}

fn money() -> impl Strategy<Value = Money> {
    (decimal(), currency()).prop_map(|(amount, c)| Money { amount, currency: z(c), span: Span::default() })
}

fn e(kind: ExprKind) -> Expr {
    Expr { kind, span: Span::default() }
}

fn name() -> impl Strategy<Value = Expr> {
    prop_oneof![
        prop::sample::select(vec!["balance", "days_late", "disputed", "segment", "amount", "reminded"])
            .prop_map(|n| e(ExprKind::Name(vec![z(n.to_string())]))),
        (prop::sample::select(vec!["customer", "invoice"]), ident())
            .prop_map(|(a, b)| e(ExprKind::Name(vec![z(a.to_string()), z(b)]))),
    ]
}

fn literal() -> impl Strategy<Value = Expr> {
    prop_oneof![
        decimal().prop_map(|d| e(ExprKind::Literal(Literal::Number(d)))),
        text().prop_map(|s| e(ExprKind::Literal(Literal::String(s)))),
        money().prop_map(|m| e(ExprKind::Literal(Literal::Money(m)))),
        (0i64..1000).prop_map(|d| e(ExprKind::Literal(Literal::Days(d)))),
        any::<bool>().prop_map(|b| e(ExprKind::Literal(Literal::Bool(b)))),
        text().prop_map(|s| e(ExprKind::Rhai(z(s)))),
    ]
}

fn op() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(vec![CompareOp::Eq, CompareOp::Ne, CompareOp::Lt, CompareOp::Le, CompareOp::Gt, CompareOp::Ge])
}

/// Conditions whose printed form parses back to the same tree: operands of a level are
/// built from the level above, and lower-precedence operands are wrapped in `( … )`.
fn condition() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![name(), literal()];
    leaf.prop_recursive(4, 24, 4, |inner| {
        let primary = prop_oneof![
            3 => inner.clone().prop_map(|x| match x.kind {
                ExprKind::Name(_) | ExprKind::Literal(_) | ExprKind::Rhai(_) | ExprKind::Paren(_) => x,
                _ => e(ExprKind::Paren(Box::new(x))),
            }),
        ];
        let unary = (0usize..3, primary).prop_map(|(n, mut x)| {
            for _ in 0..n {
                x = e(ExprKind::Not(Box::new(x)));
            }
            x
        });
        let cmp = prop_oneof![
            unary.clone(),
            (unary.clone(), op(), unary.clone()).prop_map(|(l, o, r)| e(ExprKind::Compare {
                lhs: Box::new(l),
                op: z(o),
                rhs: Box::new(r)
            })),
            (unary.clone(), unary.clone()).prop_map(|(l, r)| e(ExprKind::Has { lhs: Box::new(l), rhs: Box::new(r) })),
            (unary.clone(), prop::collection::vec(unary, 0..3))
                .prop_map(|(l, list)| e(ExprKind::In { lhs: Box::new(l), list })),
        ];
        let and = prop::collection::vec(cmp, 1..3)
            .prop_map(|v| v.into_iter().reduce(|a, b| e(ExprKind::And(Box::new(a), Box::new(b)))).unwrap());
        prop::collection::vec(and, 1..3)
            .prop_map(|v| v.into_iter().reduce(|a, b| e(ExprKind::Or(Box::new(a), Box::new(b)))).unwrap())
    })
}

fn charge() -> impl Strategy<Value = Charge> {
    prop_oneof![
        Just(ChargeKind::FeeLegal),
        money().prop_map(ChargeKind::FeeAmount),
        Just(ChargeKind::InterestLegal),
        decimal().prop_map(|d| ChargeKind::InterestFixed(z(d))),
        (currency(), decimal()).prop_map(|(r, p)| ChargeKind::InterestReference { reference: z(r), points: z(p) }),
    ]
    .prop_map(|kind| Charge { kind, span: Span::default() })
}

fn action() -> impl Strategy<Value = ActionSpec> {
    (
        ident(),
        text(),
        prop::option::of(text()),
        any::<bool>(),
        prop::option::of(condition()),
        prop::collection::vec(charge(), 0..3),
    )
        .prop_map(|(c, t, a, per, cond, charges)| ActionSpec {
            channel: z(c),
            template: z(t),
            assign: a.map(z),
            per_invoice: per.then(Span::default),
            condition: cond,
            charges,
        })
}

fn entry() -> impl Strategy<Value = ScenarioEntry> {
    prop_oneof![
        4 => (-100i32..400, action()).prop_map(|(o, a)| ScenarioEntry::Step(Step {
            offset: z(o),
            action: a,
            span: Span::default()
        })),
        1 => (any::<bool>(), action()).prop_map(|(k, a)| ScenarioEntry::Event(Event {
            kind: z(if k { EventKind::AfterPayment } else { EventKind::BrokenPromise }),
            action: a,
            span: Span::default()
        })),
        1 => condition().prop_map(|c| ScenarioEntry::Pause(Rule { condition: c, span: Span::default() })),
        1 => condition().prop_map(|c| ScenarioEntry::Stop(Rule { condition: c, span: Span::default() })),
        1 => Just(ScenarioEntry::CountBusinessDays(Span::default())),
        1 => any::<bool>().prop_map(|s| ScenarioEntry::CatchUp(z(if s { CatchUp::Stepwise } else { CatchUp::Latest }))),
    ]
}

fn scenario() -> impl Strategy<Value = Item> {
    let selector = prop_oneof![
        prop::collection::vec(text(), 1..3).prop_map(|v| SelectorKind::Segments(v.into_iter().map(z).collect())),
        condition().prop_map(SelectorKind::Where),
        Just(SelectorKind::Others),
    ];
    (text(), selector, prop::collection::vec(entry(), 0..5)).prop_map(|(n, s, entries)| {
        Item::Scenario(Scenario {
            name: z(n),
            selector: Selector { kind: s, span: Span::default() },
            entries,
            span: Span::default(),
        })
    })
}

fn code() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_\\-]{0,6}".prop_filter("reserved", |s| !RESERVED.contains(&s.as_str()) && s != "D")
}

fn settings() -> impl Strategy<Value = Item> {
    let kind = prop_oneof![
        code().prop_map(|c| SettingKind::Currency(z(c))),
        code().prop_map(|c| SettingKind::Calendar(z(c))),
        code().prop_map(|c| SettingKind::Law(z(c))),
        any::<u32>().prop_map(|n| SettingKind::Cooldown(z(n))),
        money().prop_map(SettingKind::MinimumBalance),
        code().prop_map(|c| SettingKind::Language(z(c))),
        text().prop_map(|c| SettingKind::Functions(z(c))),
        any::<bool>().prop_map(|s| SettingKind::CatchUp(z(if s { CatchUp::Stepwise } else { CatchUp::Latest }))),
        Just(SettingKind::RatesAssumeUnchanged),
    ];
    prop::collection::vec(kind, 0..5).prop_map(|v| {
        Item::Settings(Settings {
            entries: v.into_iter().map(|kind| Setting { kind, span: Span::default() }).collect(),
            span: Span::default(),
        })
    })
}

fn file() -> impl Strategy<Value = File> {
    prop::collection::vec(prop_oneof![1 => settings(), 3 => scenario()], 0..4)
        .prop_map(|items| File { items, comments: Vec::new() })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Printing a tree and parsing it back gives the same tree; printing is idempotent.
    #[test]
    fn format_round_trips(f in file()) {
        let text = format(&f, "");
        let parsed = parse(&Source::new("p.relance", text.clone()))
            .map_err(|d| TestCaseError::fail(format!("{}\n--- text:\n{text}", render_human(&d, false))))?;
        prop_assert_eq!(parsed.without_spans(), f.without_spans(), "text:\n{}", text);
        let again = format(&parsed, &text);
        prop_assert_eq!(again, text);
    }

    /// With comments sprinkled at the end of lines and on their own lines, formatting
    /// keeps every comment, never changes the tree, and is idempotent.
    #[test]
    fn comments_survive(f in file(), picks in prop::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 0..6)) {
        let base = format(&f, "");
        let mut lines: Vec<String> = base.lines().map(str::to_string).collect();
        if lines.is_empty() {
            lines.push(String::new());
        }
        for (n, (idx, own_line)) in picks.iter().enumerate() {
            let i = idx.index(lines.len());
            if *own_line {
                lines.insert(i, format!("# own {n}"));
            } else {
                lines[i].push_str(&format!(" # tail {n}"));
            }
        }
        let text = lines.join("\n") + "\n";
        let a = parse(&Source::new("c.relance", text.clone()))
            .map_err(|d| TestCaseError::fail(format!("{}\n--- text:\n{text}", render_human(&d, false))))?;
        let once = format(&a, &text);
        let b = parse(&Source::new("c.relance", once.clone()))
            .map_err(|d| TestCaseError::fail(format!("{}\n--- text:\n{once}", render_human(&d, false))))?;
        prop_assert_eq!(a.without_spans(), b.without_spans());
        prop_assert_eq!(comment_texts(&a), comment_texts(&b), "before:\n{}\nafter:\n{}", text, once);
        let twice = format(&b, &once);
        prop_assert_eq!(twice, once);
    }

    /// The parser never panics, whatever the input.
    #[test]
    fn parse_never_panics(s in "\\PC{0,200}") {
        let _ = parse(&Source::new("x", s));
    }

    /// Nor on inputs made of the language's own tokens.
    #[test]
    fn parse_never_panics_on_token_soup(toks in prop::collection::vec(prop::sample::select(vec![
        "scenario", "settings", "{", "}", "for", "others", "segment", "\"a\"", "D+3", "D-", "D", "email",
        "when", "with", "fee", "legal", "interest", "ECB", "+", "10", "points", "%", "per", "year",
        "invoice", "not", "and", "or", "(", ")", "[", "]", ",", "=", ">=", "balance", "500", "EUR",
        "days", "#", "\n", "\"", "rhai", "has", "in", "pause", "stop", "after", "payment", "on",
        "broken", "promise", "catch", "up", "latest", "count", "business", "currency", "cooldown",
    ]), 0..60)) {
        let text = toks.join(" ");
        let _ = parse(&Source::new("x", text.clone()));
        let _ = relance_dsl::load(vec![Source::new("x", text)], &relance_dsl::KnownNames::default());
    }
}
