//! The typed syntax tree of a scenario file.
//!
//! Every node carries a [`Span`] (byte offsets into the source text) so that the
//! checker, the engine and the formatter can point back at the exact text a user wrote.
//! The tree is produced by [`crate::parse`] and is plain data: it can be built by hand
//! in tests, compared with `==`, and serialised.

use rust_decimal::Decimal;
use serde::Serialize;

/// A byte range `start..end` in the source text of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, PartialOrd, Ord)]
pub struct Span {
    /// Offset of the first byte.
    pub start: usize,
    /// Offset one past the last byte.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }
    /// The number of bytes covered.
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }
    /// True when the span covers no byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The smallest span covering both.
    pub fn join(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(s: Span) -> Self {
        (s.start, s.len()).into()
    }
}

/// A value together with the span of the text it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spanned<T> {
    /// The value.
    pub node: T,
    /// Where it was written.
    pub span: Span,
}

impl<T> Spanned<T> {
    /// Wraps `node` with `span`.
    pub fn new(node: T, span: Span) -> Self {
        Self { node, span }
    }
}

/// A name written without quotes (`EUR`, `FR`, `email`, `my_channel`).
pub type Ident = Spanned<String>;
/// A `"quoted string"`, already unescaped.
pub type StrLit = Spanned<String>;

/// One parsed `.relance` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct File {
    /// The items in file order.
    pub items: Vec<Item>,
    /// Every `# comment` of the file, in order, so the formatter can keep them.
    pub comments: Vec<Comment>,
}

/// A `# comment`, from the `#` to the end of the line (newline excluded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comment {
    /// The comment text including the leading `#`.
    pub text: String,
    /// Where it was written.
    pub span: Span,
}

/// A top-level item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Item {
    /// `settings { … }`
    Settings(Settings),
    /// `scenario "Name" { … }`
    Scenario(Scenario),
}

/// The `settings { … }` block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// Entries in file order (repeated entries are kept; the checker reports them).
    pub entries: Vec<Setting>,
    /// The whole block.
    pub span: Span,
}

/// One entry of the settings block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    /// What the entry says.
    pub kind: SettingKind,
    /// The whole entry.
    pub span: Span,
}

/// The entries that a settings block may hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SettingKind {
    /// `currency EUR`
    Currency(Ident),
    /// `calendar FR` (the name may contain `-`, as `FR-ALSACE`)
    Calendar(Ident),
    /// `law FR`
    Law(Ident),
    /// `cooldown 5 days`
    Cooldown(Spanned<u32>),
    /// `minimum balance 15 EUR`
    MinimumBalance(Money),
    /// `language fr`
    Language(Ident),
    /// `functions "file.rhai"`
    Functions(StrLit),
    /// `catch up latest` / `catch up stepwise`
    CatchUp(Spanned<CatchUp>),
    /// `rates assume unchanged`: past the end of a rate table, reuse the last rate (with a
    /// warning on every action it touches) instead of failing.
    RatesAssumeUnchanged,
}

/// The catch-up policy (SPEC 3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
pub enum CatchUp {
    /// Emit only the latest due step; list the others as superseded.
    #[default]
    Latest,
    /// Emit the earliest step not yet done, one per run.
    Stepwise,
}

/// A money literal: `500 EUR`, `12.50 EUR`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Money {
    /// The amount as written (never a float).
    pub amount: Decimal,
    /// The ISO 4217 currency code as written.
    pub currency: Ident,
    /// The whole literal.
    pub span: Span,
}

/// `scenario "Name" { selector entries… }`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scenario {
    /// The name, unique in a set of files.
    pub name: StrLit,
    /// Which customers it handles.
    pub selector: Selector,
    /// Steps, events and rules in file order.
    pub entries: Vec<ScenarioEntry>,
    /// The whole scenario, keyword to closing brace.
    pub span: Span,
}

/// The first line of a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Selector {
    /// What is selected.
    pub kind: SelectorKind,
    /// The whole selector line.
    pub span: Span,
}

/// The kinds of selector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SelectorKind {
    /// `for segment "a", "b"`
    Segments(Vec<StrLit>),
    /// `for customers where COND`
    Where(Expr),
    /// `for others`
    Others,
}

/// One line (or group of lines) inside a scenario body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ScenarioEntry {
    /// `D+3 email "reminder-1" …`
    Step(Step),
    /// `after payment …` / `on broken promise …`
    Event(Event),
    /// `pause when COND`
    Pause(Rule),
    /// `stop when COND`
    Stop(Rule),
    /// `count business days`
    CountBusinessDays(Span),
    /// `catch up latest|stepwise` inside a scenario overrides the setting (the span covers
    /// the whole line).
    CatchUp(Spanned<CatchUp>),
}

/// A `pause when COND` or `stop when COND` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// The condition.
    pub condition: Expr,
    /// The whole line.
    pub span: Span,
}

/// `OFFSET CHANNEL "template" [assign "who"] [per invoice] [when COND] [with …]*`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Days relative to the due date: `D-10` is -10, `D` is 0, `D+3` is 3.
    pub offset: Spanned<i32>,
    /// What to do.
    pub action: ActionSpec,
    /// The whole step.
    pub span: Span,
}

/// What a step or an event does: shared by both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionSpec {
    /// `email`, `letter`, … or a custom channel name.
    pub channel: Ident,
    /// The template (or task label) the channel renders.
    pub template: StrLit,
    /// `assign "who"`
    pub assign: Option<StrLit>,
    /// `per invoice`: one action per invoice instead of one per customer.
    pub per_invoice: Option<Span>,
    /// `when COND`
    pub condition: Option<Expr>,
    /// `with fee …` / `with interest …`, in file order.
    pub charges: Vec<Charge>,
}

/// An event-triggered action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Which event.
    pub kind: Spanned<EventKind>,
    /// What to do when it happens.
    pub action: ActionSpec,
    /// The whole line.
    pub span: Span,
}

/// The events a scenario can react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EventKind {
    /// `after payment`: an invoice that was reminded gets paid.
    AfterPayment,
    /// `on broken promise`: a promise date passed without full payment.
    BrokenPromise,
}

/// A `with fee …` or `with interest …` clause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Charge {
    /// What is charged.
    pub kind: ChargeKind,
    /// The whole clause, `with` included.
    pub span: Span,
}

/// The kinds of charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ChargeKind {
    /// `with fee legal`: the law's fixed recovery compensation, per invoice.
    FeeLegal,
    /// `with fee 40 EUR per invoice` (`per invoice` is optional: a fee is always per invoice).
    FeeAmount(Money),
    /// `with interest legal`
    InterestLegal,
    /// `with interest 8% per year` (percent as written, `8` or `12.5`).
    InterestFixed(Spanned<Decimal>),
    /// `with interest ECB + 10 points`: a reference rate plus a margin in percentage points.
    InterestReference {
        /// The reference rate name (`ECB`).
        reference: Ident,
        /// The margin in points (may be negative with `-`).
        points: Spanned<Decimal>,
    },
}

/// A boolean condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expr {
    /// The expression.
    pub kind: ExprKind,
    /// The whole expression.
    pub span: Span,
}

/// The shapes of a condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ExprKind {
    /// `a or b`
    Or(Box<Expr>, Box<Expr>),
    /// `a and b`
    And(Box<Expr>, Box<Expr>),
    /// `not a`
    Not(Box<Expr>),
    /// `a >= b`
    Compare {
        /// Left operand.
        lhs: Box<Expr>,
        /// The operator.
        op: Spanned<CompareOp>,
        /// Right operand.
        rhs: Box<Expr>,
    },
    /// `customer.tags has "x"`
    Has {
        /// The list-valued operand.
        lhs: Box<Expr>,
        /// The value looked for.
        rhs: Box<Expr>,
    },
    /// `segment in ["a", "b"]`
    In {
        /// The operand.
        lhs: Box<Expr>,
        /// The list.
        list: Vec<Expr>,
    },
    /// `( … )`, kept so that the formatter reproduces it.
    Paren(Box<Expr>),
    /// `rhai "expr"`
    Rhai(StrLit),
    /// A literal value.
    Literal(Literal),
    /// A name: `balance`, `customer.region`, `invoice.po_number`.
    Name(Vec<Ident>),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum CompareOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CompareOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

/// Literal values in conditions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Literal {
    /// `42`, `1.5`
    Number(Decimal),
    /// `"text"`
    String(String),
    /// `500 EUR`
    Money(Money),
    /// `30 days`
    Days(i64),
    /// `true` / `false`
    Bool(bool),
}
