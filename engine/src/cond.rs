//! Conditions compiled from the AST into a small tree of resolved operations.
//!
//! Names are resolved once at compile time into [`Field`]s; evaluation walks the tree against
//! an [`EvalCtx`] without looking at text again. Evaluation can record the value of every name
//! it read, so that an action's reason says *why* a condition held.

use std::cmp::Ordering;
use std::fmt::Write as _;

use iso_currency::Currency;
use relance_dsl::ast::{self, CompareOp, ExprKind, Literal};
use rust_decimal::Decimal;

use crate::model::{CompactString, Customer, Invoice};
use crate::script::{CompiledScript, ScriptContext, ScriptEngine};

/// A name of the condition language, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Field {
    Amount,
    Outstanding,
    DaysLate,
    Disputed,
    Currency,
    PromiseToPay,
    PaymentPlan,
    Reminded,
    RemindersSent,
    Balance,
    OverdueBalance,
    Segment,
    AvgDaysLate,
    CustomerId,
    CustomerName,
    CustomerLanguage,
    CustomerTags,
    CustomerExtra(String),
    InvoiceId,
    InvoiceExtra(String),
}

impl Field {
    /// True for the names that need an invoice (not usable in `for customers where`).
    pub(crate) fn needs_invoice(&self) -> bool {
        matches!(
            self,
            Field::Amount
                | Field::Outstanding
                | Field::DaysLate
                | Field::Disputed
                | Field::Currency
                | Field::PromiseToPay
                | Field::PaymentPlan
                | Field::Reminded
                | Field::RemindersSent
                | Field::InvoiceId
                | Field::InvoiceExtra(_)
        )
    }

    /// Resolves a dotted name as written.
    pub(crate) fn resolve(path: &[String]) -> Result<Field, String> {
        let parts: Vec<&str> = path.iter().map(String::as_str).collect();
        Ok(match parts.as_slice() {
            ["amount"] => Field::Amount,
            ["outstanding"] => Field::Outstanding,
            ["days_late"] => Field::DaysLate,
            ["disputed"] => Field::Disputed,
            ["currency"] => Field::Currency,
            ["promise_to_pay"] => Field::PromiseToPay,
            ["payment_plan"] => Field::PaymentPlan,
            ["reminded"] => Field::Reminded,
            ["reminders_sent"] => Field::RemindersSent,
            ["balance"] => Field::Balance,
            ["overdue_balance"] => Field::OverdueBalance,
            ["segment"] | ["customer", "segment"] => Field::Segment,
            ["avg_days_late"] | ["customer", "avg_days_late"] => Field::AvgDaysLate,
            ["customer", "id"] => Field::CustomerId,
            ["customer", "name"] => Field::CustomerName,
            ["customer", "language"] => Field::CustomerLanguage,
            ["customer", "tags"] => Field::CustomerTags,
            ["customer", other] => Field::CustomerExtra((*other).to_owned()),
            ["invoice", "id"] => Field::InvoiceId,
            ["invoice", "amount"] => Field::Amount,
            ["invoice", "outstanding"] => Field::Outstanding,
            ["invoice", "days_late"] => Field::DaysLate,
            ["invoice", "disputed"] => Field::Disputed,
            ["invoice", "currency"] => Field::Currency,
            ["invoice", other] => Field::InvoiceExtra((*other).to_owned()),
            _ => return Err(format!("unknown name `{}`", parts.join("."))),
        })
    }
}

/// A compiled condition.
#[derive(Debug, Clone)]
pub(crate) enum Cond {
    Or(Box<Cond>, Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
    Compare(Operand, CompareOp, Operand),
    Has(Operand, Operand),
    In(Operand, Vec<Operand>),
    Truthy(Operand),
    Rhai(usize),
}

impl Cond {
    /// Calls `f` with each name (field) the condition reads, rhai scripts aside.
    pub(crate) fn for_each_field(&self, f: &mut impl FnMut(&Field)) {
        let operand = |o: &Operand, f: &mut dyn FnMut(&Field)| {
            if let Operand::Field(field, _) = o {
                f(field);
            }
        };
        match self {
            Cond::Or(a, b) | Cond::And(a, b) => {
                a.for_each_field(f);
                b.for_each_field(f);
            }
            Cond::Not(a) => a.for_each_field(f),
            Cond::Compare(a, _, b) | Cond::Has(a, b) => {
                operand(a, f);
                operand(b, f);
            }
            Cond::In(a, list) => {
                operand(a, f);
                for o in list {
                    operand(o, f);
                }
            }
            Cond::Truthy(a) => operand(a, f),
            Cond::Rhai(_) => {}
        }
    }
}

/// An operand: a resolved name or a constant.
#[derive(Debug, Clone)]
pub(crate) enum Operand {
    Field(Field, String),
    Const(Const),
}

/// A literal of the condition language.
#[derive(Debug, Clone)]
pub(crate) enum Const {
    Num(Decimal),
    Str(String),
    Money(Decimal, Currency),
    Days(i64),
    Bool(bool),
}

/// What the evaluation of a condition can read.
pub(crate) struct EvalCtx<'a> {
    pub customer: &'a Customer,
    /// `None` when evaluating a customer selector.
    pub invoice: Option<InvoiceFacts<'a>>,
    /// Customer balance in the currency of the invoice (or of the customer's first invoice).
    pub balance: Decimal,
    pub overdue_balance: Decimal,
    pub currency: Currency,
    pub as_of: chrono::NaiveDate,
    pub scripts: &'a ScriptEngine,
    pub compiled_scripts: &'a [CompiledScript],
}

/// Facts about one invoice on the as-of date.
#[derive(Clone, Copy)]
pub(crate) struct InvoiceFacts<'a> {
    pub invoice: &'a Invoice,
    pub outstanding: Decimal,
    pub days_late: i64,
    pub reminded: bool,
    pub reminders_sent: u32,
    pub promise_to_pay: bool,
}

/// A runtime value.
#[derive(Debug, Clone, PartialEq)]
enum Val<'a> {
    Bool(bool),
    Num(Decimal),
    Money(Decimal, Currency),
    Days(i64),
    Str(&'a str),
    Tags(&'a [CompactString]),
    Null,
}

impl std::fmt::Display for Val<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Val::Bool(b) => write!(f, "{b}"),
            Val::Num(n) => write!(f, "{n}"),
            Val::Money(a, c) => write!(f, "{} {}", crate::money::round(*a, *c), c.code()),
            Val::Days(d) => write!(f, "{d} days"),
            Val::Str(s) => write!(f, "\"{s}\""),
            Val::Tags(t) => {
                // Written piece by piece: a trace records this on every reason that reads tags.
                f.write_str("[")?;
                for (i, tag) in t.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "\"{tag}\"")?;
                }
                f.write_str("]")
            }
            Val::Null => write!(f, "(absent)"),
        }
    }
}

/// Records `name = value` for every name read (each once), for reasons. Kept from one
/// condition to the next (see [`Trace::clear`]): a trace costs no allocation once warm.
#[derive(Default)]
pub(crate) struct Trace {
    /// The entries, separated by `, `.
    text: String,
    /// Where each entry ends in `text`.
    ends: Vec<u32>,
}

impl Trace {
    /// Forgets the entries, keeping the room.
    pub(crate) fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    /// The entries, in the order they were read, separated by `, `.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    /// Appends the entry `write` writes, unless it is already there.
    fn push_with(&mut self, write: impl FnOnce(&mut String)) {
        let before = self.text.len();
        if !self.ends.is_empty() {
            self.text.push_str(", ");
        }
        let from = self.text.len();
        write(&mut self.text);
        let seen = {
            let entry = self.text.get(from..).unwrap_or_default();
            let mut start = 0;
            self.ends.iter().any(|&end| {
                let earlier = self.text.get(start..end as usize);
                start = end as usize + 2;
                earlier == Some(entry)
            })
        };
        if seen {
            self.text.truncate(before);
        } else {
            self.ends.push(self.text.len() as u32);
        }
    }
}

impl Cond {
    /// Evaluates the condition. `trace`, when given, receives the values read.
    ///
    /// The most common rules are flags of the invoice (`pause when disputed`, each side of
    /// `disputed or promise_to_pay`): when no values are recorded, such a flag is read where
    /// it is asked for, without a call of its own; the rest in [`Cond::eval_tree`].
    #[inline(always)]
    pub(crate) fn eval(&self, ctx: &EvalCtx<'_>, trace: &mut Option<&mut Trace>) -> Result<bool, String> {
        if trace.is_none()
            && let Cond::Truthy(Operand::Field(f, _)) = self
            && let Some(b) = flag(f, ctx)
        {
            return Ok(b);
        }
        self.eval_tree(ctx, trace)
    }

    fn eval_tree(&self, ctx: &EvalCtx<'_>, trace: &mut Option<&mut Trace>) -> Result<bool, String> {
        match self {
            Cond::Or(a, b) => Ok(a.eval(ctx, trace)? || b.eval(ctx, trace)?),
            Cond::And(a, b) => Ok(a.eval(ctx, trace)? && b.eval(ctx, trace)?),
            Cond::Not(a) => Ok(!a.eval(ctx, trace)?),
            Cond::Truthy(op) => match op.value(ctx, trace)? {
                Val::Bool(b) => Ok(b),
                Val::Str(s) => {
                    parse_bool(s).ok_or_else(|| format!("{} is `{s}`, which is not true or false", op.name()))
                }
                Val::Null => Ok(false),
                other => Err(format!("{} is {other}, not true or false", op.name())),
            },
            Cond::Compare(l, op, r) => {
                let lv = l.value(ctx, trace)?;
                let rv = r.value(ctx, trace)?;
                compare(&lv, *op, &rv)
                    .map_err(|e| format!("cannot compare {} with {}: {e}", l.describe(&lv), r.describe(&rv)))
            }
            Cond::Has(l, r) => {
                let lv = l.value(ctx, trace)?;
                let rv = r.value(ctx, trace)?;
                let shown;
                let needle: &str = match rv {
                    Val::Str(s) => s,
                    other => {
                        shown = other.to_string();
                        &shown
                    }
                };
                Ok(match lv {
                    Val::Tags(tags) => tags.iter().any(|t| *t == needle),
                    Val::Str(s) => s.split([';', ',', '|']).any(|t| t.trim() == needle),
                    Val::Null => false,
                    other => return Err(format!("`has` needs a list of tags, but {} is {other}", l.name())),
                })
            }
            Cond::In(l, list) => {
                let lv = l.value(ctx, trace)?;
                for item in list {
                    let iv = item.value(ctx, trace)?;
                    if compare(&lv, CompareOp::Eq, &iv).unwrap_or(false) {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Cond::Rhai(index) => {
                let Some(script) = ctx.compiled_scripts.get(*index) else {
                    return Err("internal: unknown script".to_owned());
                };
                let Some(facts) = ctx.invoice else {
                    return Err("a `rhai` condition needs an invoice and cannot select customers".to_owned());
                };
                let sctx = ScriptContext {
                    invoice: facts.invoice,
                    customer: ctx.customer,
                    as_of: ctx.as_of,
                    outstanding: facts.outstanding,
                    days_late: facts.days_late,
                    balance: ctx.balance,
                    overdue_balance: ctx.overdue_balance,
                    reminders_sent: facts.reminders_sent,
                    reminded: facts.reminded,
                    promise_to_pay: facts.promise_to_pay,
                };
                let value = ctx.scripts.eval_bool(script, &sctx).map_err(|e| {
                    let at = match (e.line, e.column) {
                        (Some(l), Some(c)) => format!(" at script line {l}, column {c}"),
                        _ => String::new(),
                    };
                    format!("rhai `{}` failed{at}: {}", ctx.scripts.describe(script), e.message)
                })?;
                if let Some(t) = trace.as_deref_mut() {
                    t.push_with(|s| {
                        let _ = write!(s, "rhai `{}` = {value}", ctx.scripts.describe(script));
                    });
                }
                Ok(value)
            }
        }
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "oui" | "x" => Some(true),
        "false" | "no" | "0" | "non" | "" => Some(false),
        _ => None,
    }
}

fn parse_number(s: &str) -> Option<Decimal> {
    let cleaned: String =
        s.trim().chars().filter(|c| !c.is_whitespace() && *c != '\u{a0}' && *c != '\u{202f}').collect();
    cleaned.parse::<Decimal>().ok().or_else(|| cleaned.replace(',', ".").parse::<Decimal>().ok())
}

fn compare(l: &Val<'_>, op: CompareOp, r: &Val<'_>) -> Result<bool, String> {
    let ord: Option<Ordering> = match (l, r) {
        (Val::Null, _) | (_, Val::Null) => {
            return Ok(matches!(op, CompareOp::Ne));
        }
        (Val::Money(a, ca), Val::Money(b, cb)) => {
            if ca != cb {
                return Err(format!(
                    "they are in different currencies (`{}` and `{}`) and no exchange rate is configured",
                    ca.code(),
                    cb.code()
                ));
            }
            Some(crate::money::cmp(*a, *b))
        }
        (Val::Money(a, _), Val::Num(b)) | (Val::Num(a), Val::Num(b)) => Some(crate::money::cmp(*a, *b)),
        (Val::Num(a), Val::Money(b, _)) => Some(crate::money::cmp(*a, *b)),
        (Val::Days(a), Val::Days(b)) => Some(a.cmp(b)),
        (Val::Days(a), Val::Num(b)) => Some(crate::money::cmp(Decimal::from(*a), *b)),
        (Val::Num(a), Val::Days(b)) => Some(crate::money::cmp(*a, Decimal::from(*b))),
        (Val::Bool(a), Val::Bool(b)) => Some(a.cmp(b)),
        (Val::Str(a), Val::Str(b)) => Some(a.cmp(b)),
        (Val::Str(s), other) if numeric(other).is_some() => match (parse_number(s), numeric(other)) {
            (Some(a), Some(b)) => Some(crate::money::cmp(a, b)),
            _ => return Err(format!("`{s}` is not a number")),
        },
        (Val::Str(s), Val::Bool(b)) => parse_bool(s).map(|v| v.cmp(b)),
        _ => None,
    };
    let Some(ord) = ord else {
        return Err("they are of different kinds".to_owned());
    };
    Ok(match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
    })
}

fn numeric(v: &Val<'_>) -> Option<Decimal> {
    match v {
        Val::Num(n) | Val::Money(n, _) => Some(*n),
        Val::Days(d) => Some(Decimal::from(*d)),
        _ => None,
    }
}

impl Operand {
    fn name(&self) -> String {
        match self {
            Operand::Field(_, name) => format!("`{name}`"),
            Operand::Const(c) => format!("`{}`", Val::from_const(c)),
        }
    }

    fn describe(&self, v: &Val<'_>) -> String {
        match self {
            Operand::Field(_, name) => format!("`{name}` ({v})"),
            Operand::Const(_) => format!("`{v}`"),
        }
    }

    #[inline(always)]
    fn value<'a>(&'a self, ctx: &EvalCtx<'a>, trace: &mut Option<&mut Trace>) -> Result<Val<'a>, String> {
        match self {
            Operand::Const(c) => Ok(Val::from_const(c)),
            Operand::Field(f, name) => {
                let v = field_value(f, ctx)?;
                if let Some(t) = trace.as_deref_mut() {
                    record(t, name, &v);
                }
                Ok(v)
            }
        }
    }
}

impl<'a> Val<'a> {
    /// Appends the same text as `Display`, without the formatting machinery (values are
    /// written into the reason of every action whose condition held).
    fn write_to(&self, o: &mut String) {
        use crate::json::TextOut;
        match self {
            Val::Bool(b) => o.push_str(if *b { "true" } else { "false" }),
            Val::Num(n) => o.decimal(*n),
            Val::Money(a, c) => {
                o.decimal(crate::money::round(*a, *c));
                o.push(' ');
                o.push_str(c.code());
            }
            Val::Days(d) => {
                o.int(*d);
                o.push_str(" days");
            }
            Val::Str(s) => {
                o.push('"');
                o.push_str(s);
                o.push('"');
            }
            Val::Null => o.push_str("(absent)"),
            Val::Tags(_) => {
                let _ = write!(o, "{self}");
            }
        }
    }

    fn from_const(c: &'a Const) -> Val<'a> {
        match c {
            Const::Num(n) => Val::Num(*n),
            Const::Str(s) => Val::Str(s),
            Const::Money(a, cur) => Val::Money(*a, *cur),
            Const::Days(d) => Val::Days(*d),
            Const::Bool(b) => Val::Bool(*b),
        }
    }
}

/// The value of an invoice flag (what [`field_value`] gives as `Val::Bool`), or `None` for
/// any other name or without an invoice.
#[inline]
fn flag(f: &Field, ctx: &EvalCtx<'_>) -> Option<bool> {
    let i = ctx.invoice.as_ref()?;
    match f {
        Field::Disputed => Some(i.invoice.disputed),
        Field::PromiseToPay => Some(i.promise_to_pay),
        Field::PaymentPlan => Some(i.invoice.payment_plan),
        Field::Reminded => Some(i.reminded),
        _ => None,
    }
}

/// Records `name = value` (only for reasons: kept out of the evaluation's way).
#[cold]
fn record(t: &mut Trace, name: &str, v: &Val<'_>) {
    t.push_with(|s| {
        s.push_str(name);
        s.push_str(" = ");
        v.write_to(s);
    });
}

#[inline]
fn field_value<'a>(f: &'a Field, ctx: &EvalCtx<'a>) -> Result<Val<'a>, String> {
    let inv =
        || ctx.invoice.ok_or_else(|| "this name needs an invoice and cannot be used to select customers".to_owned());
    Ok(match f {
        Field::Amount => {
            let i = inv()?;
            Val::Money(i.invoice.amount, i.invoice.currency)
        }
        Field::Outstanding => {
            let i = inv()?;
            Val::Money(i.outstanding, i.invoice.currency)
        }
        Field::DaysLate => Val::Days(inv()?.days_late),
        Field::Disputed => Val::Bool(inv()?.invoice.disputed),
        Field::Currency => Val::Str(inv()?.invoice.currency.code()),
        Field::PromiseToPay => Val::Bool(inv()?.promise_to_pay),
        Field::PaymentPlan => Val::Bool(inv()?.invoice.payment_plan),
        Field::Reminded => Val::Bool(inv()?.reminded),
        Field::RemindersSent => Val::Num(Decimal::from(inv()?.reminders_sent)),
        Field::Balance => Val::Money(ctx.balance, ctx.currency),
        Field::OverdueBalance => Val::Money(ctx.overdue_balance, ctx.currency),
        Field::Segment => Val::Str(&ctx.customer.segment),
        Field::AvgDaysLate => match ctx.customer.avg_days_late {
            Some(d) => Val::Num(d),
            None => Val::Null,
        },
        Field::CustomerId => Val::Str(&ctx.customer.id),
        Field::CustomerName => Val::Str(&ctx.customer.name),
        Field::CustomerLanguage => ctx.customer.language.as_deref().map_or(Val::Null, Val::Str),
        Field::CustomerTags => Val::Tags(&ctx.customer.tags),
        Field::CustomerExtra(name) => ctx.customer.extra.get(name).map_or(Val::Null, Val::Str),
        Field::InvoiceId => Val::Str(&inv()?.invoice.id),
        Field::InvoiceExtra(name) => inv()?.invoice.extra.get(name).map_or(Val::Null, Val::Str),
    })
}

/// Compiles an AST condition. `scripts` receives `rhai "…"` sources to compile; the returned
/// tree refers to them by index.
pub(crate) fn compile(expr: &ast::Expr, scripts: &mut Vec<(String, ast::Span)>) -> Result<Cond, (ast::Span, String)> {
    Ok(match &expr.kind {
        ExprKind::Or(a, b) => Cond::Or(Box::new(compile(a, scripts)?), Box::new(compile(b, scripts)?)),
        ExprKind::And(a, b) => Cond::And(Box::new(compile(a, scripts)?), Box::new(compile(b, scripts)?)),
        ExprKind::Not(a) => Cond::Not(Box::new(compile(a, scripts)?)),
        ExprKind::Paren(a) => compile(a, scripts)?,
        ExprKind::Compare { lhs, op, rhs } => Cond::Compare(operand(lhs)?, op.node, operand(rhs)?),
        ExprKind::Has { lhs, rhs } => Cond::Has(operand(lhs)?, operand(rhs)?),
        ExprKind::In { lhs, list } => Cond::In(operand(lhs)?, list.iter().map(operand).collect::<Result<_, _>>()?),
        ExprKind::Rhai(src) => {
            scripts.push((src.node.clone(), src.span));
            Cond::Rhai(scripts.len() - 1)
        }
        ExprKind::Literal(_) | ExprKind::Name(_) => Cond::Truthy(operand(expr)?),
    })
}

fn operand(expr: &ast::Expr) -> Result<Operand, (ast::Span, String)> {
    match &expr.kind {
        ExprKind::Paren(inner) => operand(inner),
        ExprKind::Name(path) => {
            let names: Vec<String> = path.iter().map(|i| i.node.clone()).collect();
            let field = Field::resolve(&names).map_err(|e| (expr.span, e))?;
            Ok(Operand::Field(field, names.join(".")))
        }
        ExprKind::Literal(lit) => Ok(Operand::Const(match lit {
            Literal::Number(n) => Const::Num(*n),
            Literal::String(s) => Const::Str(s.clone()),
            Literal::Money(m) => {
                let cur = Currency::from_code(&m.currency.node)
                    .ok_or_else(|| (m.currency.span, format!("unknown currency `{}`", m.currency.node)))?;
                Const::Money(m.amount, cur)
            }
            Literal::Days(d) => Const::Days(*d),
            Literal::Bool(b) => Const::Bool(*b),
        })),
        _ => Err((expr.span, "expected a name or a value here, not a condition".to_owned())),
    }
}

/// True when the condition reads only the customer's own fields (not amounts or balances,
/// which depend on the invoice's currency, nor scripts): its value is the same for every
/// invoice of a customer.
pub(crate) fn customer_only(c: &Cond) -> bool {
    let op = |o: &Operand| match o {
        Operand::Const(_) => true,
        Operand::Field(f, _) => matches!(
            f,
            Field::Segment
                | Field::AvgDaysLate
                | Field::CustomerId
                | Field::CustomerName
                | Field::CustomerLanguage
                | Field::CustomerTags
                | Field::CustomerExtra(_)
        ),
    };
    match c {
        Cond::Or(a, b) | Cond::And(a, b) => customer_only(a) && customer_only(b),
        Cond::Not(a) => customer_only(a),
        Cond::Compare(l, _, r) | Cond::Has(l, r) => op(l) && op(r),
        Cond::In(l, list) => op(l) && list.iter().all(op),
        Cond::Truthy(o) => op(o),
        Cond::Rhai(_) => false,
    }
}

/// True when the condition reads a name that needs an invoice.
pub(crate) fn needs_invoice(c: &Cond) -> bool {
    let op_needs = |o: &Operand| matches!(o, Operand::Field(f, _) if f.needs_invoice());
    match c {
        Cond::Or(a, b) | Cond::And(a, b) => needs_invoice(a) || needs_invoice(b),
        Cond::Not(a) => needs_invoice(a),
        Cond::Compare(l, _, r) | Cond::Has(l, r) => op_needs(l) || op_needs(r),
        Cond::In(l, list) => op_needs(l) || list.iter().any(op_needs),
        Cond::Truthy(o) => op_needs(o),
        Cond::Rhai(_) => true,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// A trace holds each entry once, in the order first read, separated by `, ` (as a
        /// plain list of entries joined would), however often and in whatever order they
        /// are read, and whatever they contain; and a cleared trace starts afresh.
        #[test]
        fn a_trace_is_its_distinct_entries_joined(
            entries in proptest::collection::vec("[ab, =y]{0,6}", 0..12),
            reuse in proptest::bool::ANY,
        ) {
            let mut trace = Trace::default();
            if reuse {
                trace.push_with(|s| s.push_str("left over"));
                trace.clear();
            }
            let mut distinct: Vec<&String> = Vec::new();
            for e in &entries {
                trace.push_with(|s| s.push_str(e));
                if !distinct.contains(&e) {
                    distinct.push(e);
                }
            }
            let joined: Vec<&str> = distinct.iter().map(|e| e.as_str()).collect();
            proptest::prop_assert_eq!(trace.text(), joined.join(", "));
        }
    }

    #[test]
    fn an_entry_inside_another_is_still_recorded() {
        let mut trace = Trace::default();
        for e in ["a = x, b = y", "b = y", "a = x", "b = y"] {
            trace.push_with(|s| s.push_str(e));
        }
        assert_eq!(trace.text(), "a = x, b = y, b = y, a = x");
        // An empty first entry is an entry (found by the proptest above).
        trace.clear();
        trace.push_with(|_| {});
        trace.push_with(|s| s.push(','));
        assert_eq!(trace.text(), ", ,");
    }

    proptest::proptest! {
        /// A value is written as `Display` writes it.
        #[test]
        fn values_are_written_as_displayed(
            m in proptest::num::i64::ANY,
            scale in 0u32..8,
            d in proptest::num::i64::ANY,
            b in proptest::bool::ANY,
            text in "[a-z\"é ]{0,8}",
            cur in proptest::sample::select(vec![Currency::EUR, Currency::JPY, Currency::KWD]),
        ) {
            let n = Decimal::new(m, scale);
            let tags = [CompactString::from(text.as_str()), CompactString::from("x")];
            for v in [Val::Bool(b), Val::Num(n), Val::Money(n, cur), Val::Days(d), Val::Str(&text), Val::Tags(&tags), Val::Null] {
                let mut s = String::new();
                v.write_to(&mut s);
                proptest::prop_assert_eq!(s, v.to_string());
            }
        }
    }
}
