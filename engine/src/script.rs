//! rhai for what the language does not say (SPEC 2.4).
//!
//! `rhai "expr"` conditions and `functions "file.rhai"` helper files run in a sandboxed rhai
//! engine:
//! - no file, network, process or clock access: the engine starts from [`Engine::new_raw`] and
//!   gets only pure packages (arithmetic, logic, strings, arrays, maps, decimal maths). rhai's
//!   `LanguageCorePackage` is left out (it has `sleep`, which would block past the time budget,
//!   and `exit`), and so is `BasicTimePackage` (the wall clock: `today()` is the as-of date);
//!   `print` and `debug` go nowhere; `import`, `export` and `eval` are refused when compiling,
//!   and the module resolver refuses everything;
//! - every limit set explicitly ([`ScriptLimits`]): operations, call depth, expression depth,
//!   string, array and map sizes, variables, and a wall-clock budget per evaluation;
//! - compiled once: a [`CompiledScript`] is shared by every invoice and every thread
//!   ([`ScriptEngine`] and [`CompiledScript`] are `Send + Sync`).
//!
//! In a condition, `invoice` and `customer` are read-only objects (see the crate SPEC 2.4 and
//! [`ScriptContext`]), next to the plain variables `balance`, `overdue_balance`,
//! `outstanding`, `days_late`, `reminders_sent`, `reminded` and `promise_to_pay`.
//! Helpers: `today()`, `date(y, m, d)`, `parse_date("2025-01-31")`, `days_between(a, b)`
//! (b − a in days), `add_days(d, n)`, `d.year`, `d.month`, `d.day`, `d.weekday`, date
//! comparisons and `d + n`, `d - n`, `a - b`; `to_decimal(x)`, `round_half_up(x, n)`,
//! `percent(x, p)`; `customer.has_tag("vip")`.

mod error;
mod view;

use std::cell::{Cell, RefCell};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rhai::module_resolvers::DummyModuleResolver;
use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicFnPackage, BasicIteratorPackage, BasicMapPackage, BasicMathPackage,
    BasicStringPackage, LogicPackage, MoreStringPackage, Package,
};
use rhai::{
    AST, Dynamic, Engine, EvalAltResult, FuncRegistration, ImmutableString, Module, OptimizationLevel, Position, Scope,
};
use rust_decimal::{Decimal, RoundingStrategy};

pub use error::{ScriptError, ScriptErrorKind};
use view::{CustomerView, InvoiceView, Needs, ScriptDate};

/// Keywords refused when compiling (`eval` would compile code at run time, `import` would load
/// files).
const FORBIDDEN_KEYWORDS: &[&str] = &["import", "export", "eval"];

/// The variables a condition can read, in scope order.
const VARIABLES: [&str; 9] = [
    "invoice",
    "customer",
    "balance",
    "overdue_balance",
    "outstanding",
    "days_late",
    "reminders_sent",
    "reminded",
    "promise_to_pay",
];

/// The clock is read once every this many operations (and never for shorter scripts).
const CLOCK_EVERY: u64 = 256;

/// The token `on_progress` returns to stop a script that ran out of time.
const TIMEOUT_TOKEN: &str = "relance:timeout";

/// The limits of the sandbox. Every one is applied explicitly: rhai's own defaults differ
/// between debug and release builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptLimits {
    /// Operations per evaluation (each expression node, call or loop turn counts); `0` means
    /// no operation limit (the time budget still applies).
    pub max_operations: u64,
    /// Nested function calls (`0` forbids calling script functions).
    pub max_call_depth: usize,
    /// Nested expressions, in a condition and in a function body.
    pub max_expr_depth: usize,
    /// Bytes in a string.
    pub max_string_size: usize,
    /// Items in an array.
    pub max_array_size: usize,
    /// Entries in an object map.
    pub max_map_size: usize,
    /// Wall-clock time per evaluation. Checked every 256 operations, so a script under 256
    /// operations never reads the clock.
    pub time_budget: Duration,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        Self {
            max_operations: 100_000,
            max_call_depth: 32,
            max_expr_depth: 32,
            max_string_size: 4 * 1024,
            max_array_size: 1024,
            max_map_size: 1024,
            time_budget: Duration::from_millis(50),
        }
    }
}

/// The most variables a script may have at once (ours plus its own `let`s).
const MAX_VARIABLES: usize = 256;
/// The most functions a condition or a `functions` file may define.
const MAX_FUNCTIONS: usize = 256;

/// What a condition sees for one invoice on the as-of date.
#[derive(Debug, Clone, Copy)]
pub struct ScriptContext<'a> {
    /// The invoice (`invoice` in the script).
    pub invoice: &'a crate::model::Invoice,
    /// Its customer (`customer`).
    pub customer: &'a crate::model::Customer,
    /// The as-of date (`today()`).
    pub as_of: NaiveDate,
    /// This invoice's outstanding amount on `as_of` (`outstanding`, `invoice.outstanding`).
    pub outstanding: Decimal,
    /// Days late on `as_of`, 0 when not late (`days_late`, `invoice.days_late`).
    pub days_late: i64,
    /// The customer's total outstanding (`balance`).
    pub balance: Decimal,
    /// The customer's overdue outstanding (`overdue_balance`).
    pub overdue_balance: Decimal,
    /// Actions already done for this invoice (`reminders_sent`).
    pub reminders_sent: u32,
    /// This invoice got at least one action (`reminded`).
    pub reminded: bool,
    /// A promise to pay holds on `as_of` (`promise_to_pay`).
    pub promise_to_pay: bool,
}

/// A compiled `rhai "…"` condition, reused for every invoice and shared across threads.
#[derive(Debug, Clone)]
pub struct CompiledScript {
    ast: AST,
    source: String,
    needs: Needs,
}

impl CompiledScript {
    /// The source text, verbatim.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// The sandboxed rhai engine: configured once, then shared (it is `Send + Sync`).
pub struct ScriptEngine {
    engine: Engine,
    limits: ScriptLimits,
    /// Functions defined by `functions` files: (name, parameters, file).
    functions: Vec<(String, usize, String)>,
    /// What the functions of `functions` files can read of the objects given to them.
    functions_need: Needs,
}

impl std::fmt::Debug for ScriptEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptEngine")
            .field("limits", &self.limits)
            .field("functions", &self.functions)
            .finish_non_exhaustive()
    }
}

impl Default for ScriptEngine {
    fn default() -> Self {
        Self::new(ScriptLimits::default())
    }
}

/// Per-thread state of the evaluation in progress: the as-of date (`today()`) and when the
/// clock was first read.
#[derive(Clone, Copy)]
struct Run {
    as_of: Option<NaiveDate>,
    started: Option<Instant>,
}

thread_local! {
    static RUN: Cell<Run> = const { Cell::new(Run { as_of: None, started: None }) };
    /// The scope each thread reuses between evaluations (see [`ScriptEngine::eval_bool`]).
    static SCOPE: RefCell<Option<Scope<'static>>> = const { RefCell::new(None) };
}

fn start_run(as_of: Option<NaiveDate>) {
    RUN.with(|r| r.set(Run { as_of, started: None }));
}

/// An error raised by one of our helpers: shown as written, with its own help.
#[derive(Debug, Clone)]
struct HelperError {
    message: String,
    help: &'static str,
}

fn helper_error(message: String, help: &'static str) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(Dynamic::from(HelperError { message, help }), Position::NONE))
}

fn rt_error(message: String) -> Box<EvalAltResult> {
    helper_error(message, "check the values given to the helper")
}

impl ScriptEngine {
    /// Whether `script`, or a `functions` file it can call, may read extra columns.
    pub(crate) fn reads_extras(&self, script: &CompiledScript) -> bool {
        script.needs.union(self.functions_need).extras
    }

    /// A sandboxed engine with these limits.
    pub fn new(limits: ScriptLimits) -> Self {
        let mut engine = Engine::new_raw();

        // Pure packages only (see the module documentation).
        engine.register_global_module(ArithmeticPackage::new().as_shared_module());
        engine.register_global_module(LogicPackage::new().as_shared_module());
        engine.register_global_module(BasicMathPackage::new().as_shared_module());
        engine.register_global_module(BasicStringPackage::new().as_shared_module());
        engine.register_global_module(MoreStringPackage::new().as_shared_module());
        engine.register_global_module(BasicIteratorPackage::new().as_shared_module());
        engine.register_global_module(BasicArrayPackage::new().as_shared_module());
        engine.register_global_module(BasicMapPackage::new().as_shared_module());
        engine.register_global_module(BasicFnPackage::new().as_shared_module());
        engine.on_print(|_| {});
        engine.on_debug(|_, _, _| {});
        engine.set_module_resolver(DummyModuleResolver::new());
        for kw in FORBIDDEN_KEYWORDS {
            engine.disable_symbol(*kw);
        }

        engine.set_strict_variables(true);
        engine.set_fail_on_invalid_map_property(true);
        engine.set_optimization_level(OptimizationLevel::Simple);
        // Registered operators first: comparing values of different kinds (a missing value, a
        // string column with a number) is an error here, where rhai's fast path says `false`.
        engine.set_fast_operators(false);

        engine.set_max_operations(limits.max_operations);
        engine.set_max_call_levels(limits.max_call_depth);
        engine.set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth);
        engine.set_max_string_size(limits.max_string_size);
        engine.set_max_array_size(limits.max_array_size);
        engine.set_max_map_size(limits.max_map_size);
        engine.set_max_variables(MAX_VARIABLES);
        engine.set_max_functions(MAX_FUNCTIONS);
        engine.set_max_modules(0);

        let budget = limits.time_budget;
        engine.on_progress(move |ops| {
            if ops % CLOCK_EVERY != 0 {
                return None;
            }
            RUN.with(|r| {
                let mut run = r.get();
                match run.started {
                    None => {
                        run.started = Some(Instant::now());
                        r.set(run);
                        None
                    }
                    Some(t) if t.elapsed() > budget => Some(Dynamic::from(TIMEOUT_TOKEN)),
                    Some(_) => None,
                }
            })
        });

        register_types(&mut engine);
        register_helpers(&mut engine);
        register_strict_comparisons(&mut engine);

        Self { engine, limits, functions: Vec::new(), functions_need: Needs::default() }
    }

    /// The limits this engine applies.
    pub fn limits(&self) -> &ScriptLimits {
        &self.limits
    }

    /// `functions "file.rhai"`: compiles a file of functions and makes them callable from
    /// every condition compiled afterwards or before. `name` is the file name as written (used
    /// in messages); `source` its text. Top-level statements run once, here, under the same
    /// limits; `today()` is not available to them.
    pub fn add_functions(&mut self, name: &str, source: &str) -> Result<(), ScriptError> {
        let mut ast = self.engine.compile(source).map_err(|e| ScriptError::from_parse(&e, &self.limits))?;
        ast.set_source(name);
        let mut defined = Vec::new();
        for f in ast.iter_functions() {
            let arity = f.params.len();
            if let Some((_, _, other)) = self.functions.iter().find(|(n, a, _)| n == f.name && *a == arity) {
                return Err(ScriptError::new(
                    ScriptErrorKind::Syntax,
                    format!(
                        "function `{}` with {arity} parameter(s) is defined both in `{other}` and in `{name}`",
                        f.name
                    ),
                    "rename one of them",
                    Position::NONE,
                ));
            }
            defined.push((f.name.to_owned(), arity, name.to_owned()));
        }
        start_run(None);
        let mut module = Module::eval_ast_as_new(Scope::new(), &ast, &self.engine)
            .map_err(|e| ScriptError::from_eval(&e, &self.limits))?;
        module.set_id(name);
        self.engine.register_global_module(module.into());
        self.functions.extend(defined);
        let n = needs(source);
        self.functions_need = self.functions_need.union(Needs { invoice: false, customer: false, ..n });
        Ok(())
    }

    /// Compiles a `rhai "…"` condition once; the result is reused for every invoice.
    pub fn compile(&self, source: &str) -> Result<CompiledScript, ScriptError> {
        let mut names = Scope::with_capacity(VARIABLES.len());
        for v in VARIABLES {
            names.push_dynamic(v, Dynamic::UNIT);
        }
        let ast =
            self.engine.compile_with_scope(&names, source).map_err(|e| ScriptError::from_parse(&e, &self.limits))?;
        Ok(CompiledScript { ast, source: source.to_owned(), needs: needs(source) })
    }

    /// Evaluates a condition for one invoice: `true` or `false`, or an error (including a
    /// result that is not a boolean, which names the type it got).
    ///
    /// Each thread keeps its scope between calls and overwrites the values in place, so a
    /// warm evaluation allocates only what the script itself builds.
    pub fn eval_bool(&self, script: &CompiledScript, ctx: &ScriptContext<'_>) -> Result<bool, ScriptError> {
        let value = self.eval(script, ctx)?;
        value.as_bool().map_err(|_| ScriptError::not_bool(&value))
    }

    /// Evaluates a script for one invoice and returns its value, whatever its type.
    pub fn eval(&self, script: &CompiledScript, ctx: &ScriptContext<'_>) -> Result<Dynamic, ScriptError> {
        start_run(Some(ctx.as_of));
        let need = script.needs.union(self.functions_need);
        let result = SCOPE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut slot) => {
                let warm = slot.as_mut().is_some_and(|scope| refresh_scope(scope, ctx, need));
                if !warm {
                    *slot = Some(new_scope(ctx, need));
                }
                let Some(scope) = slot.as_mut() else {
                    return self.engine.eval_ast_with_scope::<Dynamic>(&mut new_scope(ctx, need), &script.ast);
                };
                let r = self.engine.eval_ast_with_scope::<Dynamic>(scope, &script.ast);
                scope.rewind(VARIABLES.len());
                r
            }
            // Re-entered (a native helper evaluating a script): use a fresh scope.
            Err(_) => self.engine.eval_ast_with_scope::<Dynamic>(&mut new_scope(ctx, need), &script.ast),
        });
        start_run(None);
        result.map_err(|e| ScriptError::from_eval(&e, &self.limits))
    }

    /// The source of a compiled script, verbatim, for reasons ("rhai `…` = true").
    pub fn describe<'s>(&self, script: &'s CompiledScript) -> &'s str {
        &script.source
    }
}

fn new_scope(ctx: &ScriptContext<'_>, need: Needs) -> Scope<'static> {
    let mut s = Scope::with_capacity(VARIABLES.len() + 8);
    let mut invoice = InvoiceView::new(ctx);
    invoice.refresh(ctx, need);
    let mut customer = CustomerView::new(ctx.customer);
    customer.refresh(ctx.customer, need);
    s.push_constant("invoice", invoice);
    s.push_constant("customer", customer);
    s.push_constant("balance", ctx.balance);
    s.push_constant("overdue_balance", ctx.overdue_balance);
    s.push_constant("outstanding", ctx.outstanding);
    s.push_constant("days_late", ctx.days_late);
    s.push_constant("reminders_sent", i64::from(ctx.reminders_sent));
    s.push_constant("reminded", ctx.reminded);
    s.push_constant("promise_to_pay", ctx.promise_to_pay);
    s
}

/// Overwrites the values of a scope made by [`new_scope`]; `false` when it does not look like
/// one any more (then the caller builds a new one).
fn refresh_scope(s: &mut Scope<'static>, ctx: &ScriptContext<'_>, need: Needs) -> bool {
    fn set<T: Clone + Send + Sync + 'static>(s: &mut Scope<'static>, name: &str, v: T) -> bool {
        match s.get_value_mut::<T>(name) {
            Some(slot) => {
                *slot = v;
                true
            }
            None => false,
        }
    }
    if s.len() != VARIABLES.len() {
        return false;
    }
    // A view the script does not name cannot be reached: it is left as it is.
    if need.invoice {
        match s.get_value_mut::<InvoiceView>("invoice") {
            Some(v) => v.refresh(ctx, need),
            None => return false,
        }
    }
    if need.customer {
        match s.get_value_mut::<CustomerView>("customer") {
            Some(v) => v.refresh(ctx.customer, need),
            None => return false,
        }
    }
    set(s, "balance", ctx.balance)
        && set(s, "overdue_balance", ctx.overdue_balance)
        && set(s, "outstanding", ctx.outstanding)
        && set(s, "days_late", ctx.days_late)
        && set(s, "reminders_sent", i64::from(ctx.reminders_sent))
        && set(s, "reminded", ctx.reminded)
        && set(s, "promise_to_pay", ctx.promise_to_pay)
}

fn register_types(engine: &mut Engine) {
    engine.register_type_with_name::<InvoiceView>("invoice");
    engine.register_type_with_name::<CustomerView>("customer");
    engine.register_type_with_name::<ScriptDate>("date");

    engine
        .register_get("id", InvoiceView::id)
        .register_get("customer_id", InvoiceView::customer_id)
        .register_get("issue_date", InvoiceView::issue_date)
        .register_get("due_date", InvoiceView::due_date)
        .register_get("amount", InvoiceView::amount)
        .register_get("outstanding", InvoiceView::outstanding)
        .register_get("days_late", InvoiceView::days_late)
        .register_get("disputed", InvoiceView::disputed)
        .register_get("currency", InvoiceView::currency)
        .register_get("payment_plan", InvoiceView::payment_plan)
        .register_get("promise_date", InvoiceView::promise_date)
        .register_get("promise_amount", InvoiceView::promise_amount)
        .register_fn("extra", InvoiceView::extra)
        .register_indexer_get(InvoiceView::extra);

    engine
        .register_get("id", CustomerView::id)
        .register_get("name", CustomerView::name)
        .register_get("segment", CustomerView::segment)
        .register_get("email", CustomerView::email)
        .register_get("phone", CustomerView::phone)
        .register_get("language", CustomerView::language)
        .register_get("tags", CustomerView::tags)
        .register_get("avg_days_late", CustomerView::avg_days_late)
        .register_fn("has_tag", CustomerView::has_tag)
        .register_fn("extra", CustomerView::extra)
        .register_indexer_get(CustomerView::extra);

    engine
        .register_get("year", ScriptDate::year)
        .register_get("month", ScriptDate::month)
        .register_get("day", ScriptDate::day)
        .register_get("weekday", ScriptDate::weekday)
        .register_fn("==", |a: ScriptDate, b: ScriptDate| a == b)
        .register_fn("!=", |a: ScriptDate, b: ScriptDate| a != b)
        .register_fn("<", |a: ScriptDate, b: ScriptDate| a < b)
        .register_fn("<=", |a: ScriptDate, b: ScriptDate| a <= b)
        .register_fn(">", |a: ScriptDate, b: ScriptDate| a > b)
        .register_fn(">=", |a: ScriptDate, b: ScriptDate| a >= b)
        .register_fn("-", |a: ScriptDate, b: ScriptDate| (a.0 - b.0).num_days())
        .register_fn("+", add_days)
        .register_fn("-", |d: ScriptDate, n: i64| add_days(d, n.saturating_neg()))
        .register_fn("to_string", |d: &mut ScriptDate| d.0.to_string())
        .register_fn("to_debug", |d: &mut ScriptDate| d.0.to_string());
}

fn add_days(d: ScriptDate, n: i64) -> Result<ScriptDate, Box<EvalAltResult>> {
    chrono::Duration::try_days(n)
        .and_then(|delta| d.0.checked_add_signed(delta))
        .map(ScriptDate)
        .ok_or_else(|| rt_error(format!("adding {n} days to {} leaves the calendar", d.0)))
}

fn decimal_of_str(s: &str) -> Result<Decimal, Box<EvalAltResult>> {
    let t = s.trim();
    Decimal::from_str_exact(t)
        .or_else(|_| Decimal::from_scientific(t))
        .map_err(|_| rt_error(format!("`{s}` is not a decimal number")))
}

fn percent(x: Decimal, p: Decimal) -> Result<Decimal, Box<EvalAltResult>> {
    x.checked_mul(p).map(|v| v / Decimal::ONE_HUNDRED).ok_or_else(|| rt_error(format!("`percent({x}, {p})` overflows")))
}

fn round_half_up(x: Decimal, n: i64) -> Result<Decimal, Box<EvalAltResult>> {
    let dp = u32::try_from(n).map_err(|_| rt_error(format!("cannot round to {n} decimal places")))?;
    Ok(x.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero))
}

fn register_helpers(engine: &mut Engine) {
    // today() is the as-of date of the evaluation in progress, never the wall clock.
    FuncRegistration::new("today").with_volatility(true).register_into_engine(
        engine,
        || -> Result<ScriptDate, Box<EvalAltResult>> {
            RUN.with(|r| r.get().as_of)
                .map(ScriptDate)
                .ok_or_else(|| rt_error("`today()` is only known while a condition is evaluated".to_owned()))
        },
    );
    engine
        .register_fn("date", |y: i64, m: i64, d: i64| -> Result<ScriptDate, Box<EvalAltResult>> {
            i32::try_from(y)
                .ok()
                .zip(u32::try_from(m).ok())
                .zip(u32::try_from(d).ok())
                .and_then(|((y, m), d)| NaiveDate::from_ymd_opt(y, m, d))
                .map(ScriptDate)
                .ok_or_else(|| rt_error(format!("{y}-{m}-{d} is not a date")))
        })
        .register_fn("parse_date", |s: &str| -> Result<ScriptDate, Box<EvalAltResult>> {
            NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .map(ScriptDate)
                .map_err(|_| rt_error(format!("`{s}` is not a date written YYYY-MM-DD")))
        })
        .register_fn("days_between", |a: ScriptDate, b: ScriptDate| (b.0 - a.0).num_days())
        .register_fn("add_days", add_days);

    engine
        .register_fn("to_decimal", |s: &str| decimal_of_str(s))
        .register_fn("to_decimal", |i: i64| Decimal::from(i))
        .register_fn("to_decimal", |d: Decimal| d)
        .register_fn("to_decimal", |_: ()| -> Result<Decimal, Box<EvalAltResult>> {
            Err(rt_error("`to_decimal` got no value (the column is empty or missing)".to_owned()))
        })
        .register_fn("round_half_up", round_half_up)
        .register_fn("round_half_up", |x: i64, n: i64| round_half_up(Decimal::from(x), n))
        .register_fn("percent", percent)
        .register_fn("percent", |x: i64, p: Decimal| percent(Decimal::from(x), p))
        .register_fn("percent", |x: Decimal, p: i64| percent(x, Decimal::from(p)))
        .register_fn("percent", |x: i64, p: i64| percent(Decimal::from(x), Decimal::from(p)));
}

/// Getters of the views that read only scalar fields.
const SCALAR_GETTERS: &[&str] = &[
    "amount",
    "outstanding",
    "days_late",
    "disputed",
    "currency",
    "payment_plan",
    "promise_date",
    "promise_amount",
    "issue_date",
    "due_date",
    "avg_days_late",
    "year",
    "month",
    "day",
    "weekday",
];
/// Getters and methods that read string fields.
const STRING_GETTERS: &[&str] =
    &["id", "customer_id", "name", "segment", "email", "phone", "language", "tags", "has_tag"];
/// Words that are never a property name.
const KEYWORDS: &[&str] = &[
    "true", "false", "let", "const", "if", "else", "fn", "return", "while", "loop", "for", "in", "do", "until",
    "break", "continue", "throw", "try", "catch", "switch", "private", "this",
];

/// What a script (or a `functions` file) can read, found from its text, conservatively.
/// A variable can only be read by naming it, so `invoice` and `customer` are needed only when
/// named in code. String fields are needed when one of their names appears anywhere (code,
/// strings, comments); extra columns when the text indexes something (`[`), names `extra`,
/// has a `$` in a string (`Fn("index$get$")`), or has in code a name that is not a known
/// getter, keyword or variable and is not a call (an unknown property of `invoice` reads an
/// extra column). Backtick strings are scanned as code (they interpolate `${…}`).
/// Should the analysis ever miss something, the getters refuse to answer
/// (see `view::not_copied`) rather than show a value of another invoice.
fn needs(source: &str) -> Needs {
    let mut n = Needs::default();
    if source.contains('[') {
        n.extras = true;
    }
    let bytes = source.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || !b.is_ascii();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' || c == b'\'' {
            // A plain string or character: only names matter, not as variables.
            let quote = c;
            i += 1;
            let start = i;
            while i < bytes.len() && bytes[i] != quote {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            let content = source.get(start..i.min(bytes.len())).unwrap_or_default();
            if content.contains('$') {
                n.extras = true;
                n.strings = true;
            }
            for w in content.split(|ch: char| !(ch.is_alphanumeric() || ch == '_')) {
                if w == "extra" {
                    n.extras = true;
                } else if STRING_GETTERS.contains(&w) {
                    n.strings = true;
                }
            }
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            // A number (and letters glued to it, like `0x1f` or `1_000`).
            while i < bytes.len() && is_word(bytes[i]) {
                i += 1;
            }
            continue;
        }
        if !is_word(c) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_word(bytes[i]) {
            i += 1;
        }
        let word = source.get(start..i).unwrap_or_default();
        let mut j = i;
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        let is_call = bytes.get(j) == Some(&b'(');
        match word {
            "invoice" => n.invoice = true,
            "customer" => n.customer = true,
            "extra" => n.extras = true,
            w if STRING_GETTERS.contains(&w) => n.strings = true,
            w if is_call || SCALAR_GETTERS.contains(&w) || KEYWORDS.contains(&w) || VARIABLES.contains(&w) => {}
            _ => n.extras = true,
        }
    }
    n
}

/// Makes comparisons between values of different kinds an error instead of rhai's `false`.
fn register_strict_comparisons(engine: &mut Engine) {
    fn refuse<A: Clone + Send + Sync + 'static, B: Clone + Send + Sync + 'static>(
        engine: &mut Engine,
        ops: &[&'static str],
        a: &'static str,
        b: &'static str,
    ) {
        for op in ops {
            let op: &'static str = op;
            engine.register_fn(op, move |_: A, _: B| -> Result<bool, Box<EvalAltResult>> { Err(mismatch(op, a, b)) });
        }
    }
    const ORD: &[&str] = &["<", "<=", ">", ">="];
    const ALL: &[&str] = &["<", "<=", ">", ">=", "==", "!="];
    const UNIT: &str = "nothing (`()`)";
    refuse::<(), i64>(engine, ORD, UNIT, "an integer");
    refuse::<i64, ()>(engine, ORD, "an integer", UNIT);
    refuse::<(), Decimal>(engine, ORD, UNIT, "a decimal");
    refuse::<Decimal, ()>(engine, ORD, "a decimal", UNIT);
    refuse::<(), ()>(engine, ORD, UNIT, UNIT);
    refuse::<(), ImmutableString>(engine, ORD, UNIT, "a string");
    refuse::<ImmutableString, ()>(engine, ORD, "a string", UNIT);
    refuse::<(), ScriptDate>(engine, ORD, UNIT, "a date");
    refuse::<ScriptDate, ()>(engine, ORD, "a date", UNIT);
    refuse::<ImmutableString, i64>(engine, ALL, "a string", "an integer");
    refuse::<i64, ImmutableString>(engine, ALL, "an integer", "a string");
    refuse::<ImmutableString, Decimal>(engine, ALL, "a string", "a decimal");
    refuse::<Decimal, ImmutableString>(engine, ALL, "a decimal", "a string");
    refuse::<ScriptDate, ImmutableString>(engine, ALL, "a date", "a string");
    refuse::<ImmutableString, ScriptDate>(engine, ALL, "a string", "a date");
    refuse::<ScriptDate, i64>(engine, ALL, "a date", "an integer");
    refuse::<i64, ScriptDate>(engine, ALL, "an integer", "a date");
    refuse::<ScriptDate, Decimal>(engine, ALL, "a date", "a decimal");
    refuse::<Decimal, ScriptDate>(engine, ALL, "a decimal", "a date");
}

fn mismatch(op: &str, a: &str, b: &str) -> Box<EvalAltResult> {
    let help = if a.starts_with("nothing") || b.starts_with("nothing") {
        "a value is missing (an empty or unknown column, an unknown property, or no `avg_days_late`): \
         test it first with `x != ()`"
    } else if a == "a string" || b == "a string" {
        "extra columns are strings: convert with `to_decimal(x)` or `parse_date(x)`"
    } else {
        "compare values of the same kind"
    };
    helper_error(format!("cannot compare {a} with {b} using `{op}`"), help)
}

/// Resolves a `functions "…"` path written in a scenario file: relative to that file's
/// folder, and never outside it (no absolute path, no `..` leaving the folder, no symbolic
/// link pointing out of it).
pub fn resolve_functions_path(scenario_file: &Path, written: &str) -> Result<PathBuf, ScriptError> {
    let outside = |why: &str| {
        ScriptError::new(
            ScriptErrorKind::Forbidden,
            format!("functions file `{written}` {why}"),
            "put the file in the scenario file's folder (or a subfolder) and write its path relative to the scenario file",
            Position::NONE,
        )
    };
    if written.trim().is_empty() {
        return Err(outside("has an empty path"));
    }
    let base = match scenario_file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut rel = PathBuf::new();
    for c in Path::new(written).components() {
        match c {
            Component::Normal(part) => rel.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !rel.pop() {
                    return Err(outside("is outside the scenario folder"));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(outside("is an absolute path"));
            }
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(outside("names the scenario folder itself"));
    }
    let path = base.join(&rel);
    // A symbolic link may still lead outside: compare the real paths when the file exists.
    if let (Ok(real_base), Ok(real)) = (base.canonicalize(), path.canonicalize())
        && !real.starts_with(&real_base)
    {
        return Err(outside("leads outside the scenario folder"));
    }
    Ok(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
