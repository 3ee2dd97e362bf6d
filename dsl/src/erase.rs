//! Span erasure, to compare syntax trees by content only (the formatter's round-trip
//! tests: `parse(format(x))` must equal `x` modulo spans).

use crate::ast::*;

const Z: Span = Span { start: 0, end: 0 };

impl File {
    /// A copy with every span set to `0..0` and without comments: two files that say the
    /// same thing compare equal whatever their layout.
    pub fn without_spans(&self) -> File {
        File { items: self.items.iter().map(item).collect(), comments: Vec::new() }
    }
}

fn sp<T: Clone>(s: &Spanned<T>) -> Spanned<T> {
    Spanned::new(s.node.clone(), Z)
}

fn item(i: &Item) -> Item {
    match i {
        Item::Settings(s) => Item::Settings(Settings {
            entries: s.entries.iter().map(|e| Setting { kind: setting(&e.kind), span: Z }).collect(),
            span: Z,
        }),
        Item::Scenario(s) => Item::Scenario(Scenario {
            name: sp(&s.name),
            selector: Selector {
                kind: match &s.selector.kind {
                    SelectorKind::Segments(v) => SelectorKind::Segments(v.iter().map(sp).collect()),
                    SelectorKind::Where(e) => SelectorKind::Where(expr(e)),
                    SelectorKind::Others => SelectorKind::Others,
                },
                span: Z,
            },
            entries: s.entries.iter().map(entry).collect(),
            span: Z,
        }),
    }
}

fn setting(k: &SettingKind) -> SettingKind {
    match k {
        SettingKind::Currency(i) => SettingKind::Currency(sp(i)),
        SettingKind::Calendar(i) => SettingKind::Calendar(sp(i)),
        SettingKind::Law(i) => SettingKind::Law(sp(i)),
        SettingKind::Cooldown(n) => SettingKind::Cooldown(sp(n)),
        SettingKind::MinimumBalance(m) => SettingKind::MinimumBalance(money(m)),
        SettingKind::Language(i) => SettingKind::Language(sp(i)),
        SettingKind::Functions(s) => SettingKind::Functions(sp(s)),
        SettingKind::CatchUp(c) => SettingKind::CatchUp(sp(c)),
        SettingKind::RatesAssumeUnchanged => SettingKind::RatesAssumeUnchanged,
    }
}

fn money(m: &Money) -> Money {
    Money { amount: m.amount, currency: sp(&m.currency), span: Z }
}

fn entry(e: &ScenarioEntry) -> ScenarioEntry {
    match e {
        ScenarioEntry::Step(s) => {
            ScenarioEntry::Step(Step { offset: sp(&s.offset), action: action(&s.action), span: Z })
        }
        ScenarioEntry::Event(ev) => {
            ScenarioEntry::Event(Event { kind: sp(&ev.kind), action: action(&ev.action), span: Z })
        }
        ScenarioEntry::Pause(r) => ScenarioEntry::Pause(Rule { condition: expr(&r.condition), span: Z }),
        ScenarioEntry::Stop(r) => ScenarioEntry::Stop(Rule { condition: expr(&r.condition), span: Z }),
        ScenarioEntry::CountBusinessDays(_) => ScenarioEntry::CountBusinessDays(Z),
        ScenarioEntry::CatchUp(c) => ScenarioEntry::CatchUp(sp(c)),
    }
}

fn action(a: &ActionSpec) -> ActionSpec {
    ActionSpec {
        channel: sp(&a.channel),
        template: sp(&a.template),
        assign: a.assign.as_ref().map(sp),
        per_invoice: a.per_invoice.map(|_| Z),
        condition: a.condition.as_ref().map(expr),
        charges: a
            .charges
            .iter()
            .map(|c| Charge {
                kind: match &c.kind {
                    ChargeKind::FeeLegal => ChargeKind::FeeLegal,
                    ChargeKind::FeeAmount(m) => ChargeKind::FeeAmount(money(m)),
                    ChargeKind::InterestLegal => ChargeKind::InterestLegal,
                    ChargeKind::InterestFixed(r) => ChargeKind::InterestFixed(sp(r)),
                    ChargeKind::InterestReference { reference, points } => {
                        ChargeKind::InterestReference { reference: sp(reference), points: sp(points) }
                    }
                },
                span: Z,
            })
            .collect(),
    }
}

fn expr(e: &Expr) -> Expr {
    let b = |x: &Expr| Box::new(expr(x));
    let kind = match &e.kind {
        ExprKind::Or(a, c) => ExprKind::Or(b(a), b(c)),
        ExprKind::And(a, c) => ExprKind::And(b(a), b(c)),
        ExprKind::Not(x) => ExprKind::Not(b(x)),
        ExprKind::Compare { lhs, op, rhs } => ExprKind::Compare { lhs: b(lhs), op: sp(op), rhs: b(rhs) },
        ExprKind::Has { lhs, rhs } => ExprKind::Has { lhs: b(lhs), rhs: b(rhs) },
        ExprKind::In { lhs, list } => ExprKind::In { lhs: b(lhs), list: list.iter().map(expr).collect() },
        ExprKind::Paren(x) => ExprKind::Paren(b(x)),
        ExprKind::Rhai(s) => ExprKind::Rhai(sp(s)),
        ExprKind::Literal(Literal::Money(m)) => ExprKind::Literal(Literal::Money(money(m))),
        ExprKind::Literal(l) => ExprKind::Literal(l.clone()),
        ExprKind::Name(parts) => ExprKind::Name(parts.iter().map(sp).collect()),
    };
    Expr { kind, span: Z }
}
