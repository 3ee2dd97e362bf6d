//! Compilation: scenario ASTs + a [`Registry`] of calendars, laws and rates → a [`Program`].
//!
//! Everything that can be decided once is decided here: names are resolved to fields,
//! calendars and laws to trait objects, steps are sorted, rhai scripts compiled. Evaluation
//! then never looks at text again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use iso_currency::Currency;
use relance_dsl::ast::{self, CatchUp, ChargeKind, EventKind, ScenarioEntry, SelectorKind, SettingKind, Span};
use rust_decimal::Decimal;

use crate::calendar::{Calendar, NoCalendar};
use crate::cond::{self, Cond, Field};
use crate::json::Pre;
use crate::law::{FixedRate, Law, RateSchedule};
use crate::script::{CompiledScript, ScriptEngine, ScriptLimits};

/// The calendars, laws, reference rates and channels a program may name.
///
/// The engine ships with none but `calendar none`; `relance_stdlib::registry()` gives the
/// standard ones (FR, UK, DE calendars and laws, ECB/BOE/BASE rates, built-in channels).
#[derive(Clone, Debug, Default)]
pub struct Registry {
    /// Business-day calendars by name.
    pub calendars: BTreeMap<String, Arc<dyn Calendar>>,
    /// Late-payment laws by name.
    pub laws: BTreeMap<String, Arc<dyn Law>>,
    /// Reference rates by name (for `with interest ECB + 10 points`).
    pub reference_rates: BTreeMap<String, Arc<dyn RateSchedule>>,
    /// Channel names something can execute.
    pub channels: BTreeSet<String>,
}

impl Registry {
    /// A registry with `calendar none` and the built-in channel names only.
    pub fn new() -> Self {
        let mut r = Registry::default();
        r.calendars.insert("none".to_owned(), Arc::new(NoCalendar));
        for c in BUILTIN_CHANNELS {
            r.channels.insert((*c).to_owned());
        }
        r
    }
}

/// Channels every installation knows.
pub const BUILTIN_CHANNELS: &[&str] =
    &["email", "sms", "letter", "registered_letter", "call", "webhook", "escalate", "notify", "stdout"];

/// An error found while compiling: points at a file and span.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
#[diagnostic(code(relance::compile))]
pub struct CompileError {
    /// The scenario file.
    pub file: String,
    /// Where in it.
    pub span: Span,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    #[help]
    pub help: Option<String>,
}

/// A compiled set of scenario files, ready to evaluate any number of portfolios.
#[derive(Debug)]
pub struct Program {
    pub(crate) settings: Settings,
    pub(crate) scenarios: Vec<CompiledScenario>,
    pub(crate) hash: String,
    pub(crate) scripts: ScriptEngine,
    pub(crate) compiled_scripts: Vec<CompiledScript>,
    /// The extra columns the conditions name (`customer.NAME`, `invoice.NAME`).
    pub(crate) extra_columns: ExtraColumns,
}

/// Extra columns of a portfolio (any column that is not a field of the model), by name as
/// conditions write them: `customer.region` reads the customers' column `region`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtraColumns {
    /// Names read as `customer.NAME`.
    pub customer: BTreeSet<String>,
    /// Names read as `invoice.NAME`.
    pub invoice: BTreeSet<String>,
}

#[derive(Debug)]
pub(crate) struct Settings {
    pub default_currency: Option<Currency>,
    pub calendar: Arc<dyn Calendar>,
    pub law: Option<Arc<dyn Law>>,
    pub cooldown_days: u32,
    pub minimum_balance: Option<(Decimal, Currency)>,
    pub catch_up: CatchUp,
    pub assume_unchanged: bool,
}

#[derive(Debug)]
pub(crate) struct CompiledScenario {
    pub name: String,
    pub selector: Selector,
    /// Sorted by offset, then channel.
    pub steps: Vec<CompiledStep>,
    pub events: Vec<CompiledEvent>,
    pub pauses: Vec<(Cond, String)>,
    pub stops: Vec<(Cond, String)>,
    /// For each rule, stops then pauses: whether it reads only customer fields (evaluated
    /// once per customer).
    pub customer_only_rules: Vec<bool>,
    pub business_days: bool,
    pub catch_up: CatchUp,
}

#[derive(Debug)]
pub(crate) enum Selector {
    Segments(BTreeSet<String>),
    Where(Cond, String),
    Others,
}

#[derive(Debug)]
pub(crate) struct CompiledAction {
    pub channel: String,
    pub template: String,
    pub assign: Option<String>,
    pub per_invoice: bool,
    pub condition: Option<(Cond, String)>,
    pub fees: Vec<FeeRule>,
    pub interest: Option<InterestRule>,
}

#[derive(Debug)]
pub(crate) struct CompiledStep {
    pub offset: i32,
    /// `D+30`
    pub label: String,
    /// `D+30 letter`
    pub key: String,
    /// Where the step sorts among a customer's records (see `outcome::step_order`).
    pub order: i64,
    pub action: CompiledAction,
}

#[derive(Debug)]
pub(crate) struct CompiledEvent {
    pub kind: EventKind,
    pub label: String,
    pub key: String,
    /// Where the event sorts among a customer's records (see `outcome::step_order`).
    pub order: i64,
    pub action: CompiledAction,
}

#[derive(Debug, Clone)]
pub(crate) enum FeeRule {
    /// The law's recovery fee, and ` legal recovery fee (LAW, ` as reasons write it (see
    /// [`legal_fee_phrase`]).
    Legal(Arc<dyn Law>, Arc<Pre>),
    Amount(Decimal, Currency),
}

/// ` legal recovery fee (FR, `: the words of a reason before the step that charges the fee,
/// prepared once per rule (the law's name is any text of the embedding program).
pub(crate) fn legal_fee_phrase(law: &dyn Law) -> Pre {
    Pre::of(|o| {
        o.lit(" legal recovery fee (");
        o.text(law.name());
        o.lit(", ");
    })
}

#[derive(Debug, Clone)]
pub(crate) struct InterestRule {
    pub schedule: Arc<dyn RateSchedule>,
    pub points: Decimal,
    /// `legal (FR)`, `ECB + 10 points`, `8% per year`.
    pub label: String,
    /// ` interest at LABEL from `, as reasons write it, prepared once per rule.
    pub phrase: Pre,
}

impl InterestRule {
    fn new(schedule: Arc<dyn RateSchedule>, points: Decimal, label: String) -> Self {
        let phrase = Pre::of(|o| {
            o.lit(" interest at ");
            o.text(&label);
            o.lit(" from ");
        });
        InterestRule { schedule, points, label, phrase }
    }
}

/// The span in the scenario file of the script position `line:column` (1-based, inside the
/// `rhai "…"` string whose literal spans `literal`). Falls back to the whole literal.
fn script_position(file_text: &str, literal: Span, line: Option<usize>, column: Option<usize>) -> Span {
    let (Some(line), Some(column)) = (line, column) else { return literal };
    let Some(body) = file_text.get(literal.start..literal.end) else { return literal };
    // Skip `rhai`, spaces and the opening quote.
    let Some(open) = body.find('"') else { return literal };
    let mut offset = literal.start + open + 1;
    let script = &body[open + 1..];
    let mut current = 1;
    for (i, ch) in script.char_indices() {
        if current == line {
            let col_off: usize = script[i..].chars().take(column.saturating_sub(1)).map(char::len_utf8).sum();
            offset += i + col_off;
            let end = (offset + 1).min(literal.end);
            return Span::new(offset.min(literal.end), end);
        }
        if ch == '\n' {
            current += 1;
        }
    }
    literal
}

/// `D-10`, `D`, `D+3`.
pub fn offset_label(offset: i32) -> String {
    match offset.cmp(&0) {
        std::cmp::Ordering::Less => format!("D{offset}"),
        std::cmp::Ordering::Equal => "D".to_owned(),
        std::cmp::Ordering::Greater => format!("D+{offset}"),
    }
}

struct Ctx<'a> {
    file: &'a str,
    source: &'a str,
    errors: Vec<CompileError>,
    scripts: Vec<(String, Span, String)>,
    extra_columns: ExtraColumns,
}

impl Ctx<'_> {
    fn error(&mut self, span: Span, message: String, help: Option<String>) {
        self.errors.push(CompileError { file: self.file.to_owned(), span, message, help });
    }
    fn text(&self, span: Span) -> String {
        self.source.get(span.start..span.end).unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

impl Program {
    /// Compiles parsed scenario files (`(file name, file text, ast)`, in order) against
    /// `registry`. `hash` identifies the sources (it is written into every plan).
    ///
    /// `read_functions` reads a `functions "file.rhai"` file named relative to the scenario
    /// file (the caller decides where files may be read from).
    pub fn compile(
        files: &[(&str, &str, &ast::File)],
        hash: &str,
        registry: &Registry,
        read_functions: &dyn Fn(&str, &str) -> Result<String, String>,
    ) -> Result<Program, Vec<CompileError>> {
        let mut errors = Vec::new();
        let mut settings = Settings {
            default_currency: None,
            calendar: Arc::new(NoCalendar),
            law: None,
            cooldown_days: 0,
            minimum_balance: None,
            catch_up: CatchUp::Latest,
            assume_unchanged: false,
        };
        let mut scripts = ScriptEngine::new(ScriptLimits::default());
        // Settings first: scenarios may depend on them (currency, law).
        for (file, source, ast) in files {
            let mut ctx =
                Ctx { file, source, errors: Vec::new(), scripts: Vec::new(), extra_columns: ExtraColumns::default() };
            for item in &ast.items {
                if let ast::Item::Settings(s) = item {
                    for entry in &s.entries {
                        compile_setting(&mut ctx, &mut settings, &mut scripts, registry, entry, read_functions);
                    }
                }
            }
            errors.append(&mut ctx.errors);
        }
        let mut scenarios = Vec::new();
        let mut sources: Vec<(String, Span, String)> = Vec::new();
        let mut extra_columns = ExtraColumns::default();
        for (file, source, ast) in files {
            let mut ctx =
                Ctx { file, source, errors: Vec::new(), scripts: Vec::new(), extra_columns: ExtraColumns::default() };
            for item in &ast.items {
                if let ast::Item::Scenario(s) = item {
                    scenarios.push(compile_scenario(&mut ctx, &settings, registry, s));
                }
            }
            errors.append(&mut ctx.errors);
            sources.append(&mut ctx.scripts);
            extra_columns.customer.append(&mut ctx.extra_columns.customer);
            extra_columns.invoice.append(&mut ctx.extra_columns.invoice);
        }
        let mut compiled_scripts = Vec::with_capacity(sources.len());
        for (src, span, file) in &sources {
            match scripts.compile(src) {
                Ok(c) => compiled_scripts.push(c),
                Err(e) => {
                    let text = files.iter().find(|(f, _, _)| f == file).map_or("", |(_, t, _)| *t);
                    errors.push(CompileError {
                        file: file.clone(),
                        span: script_position(text, *span, e.line, e.column),
                        message: format!("rhai script does not compile: {}", e.message),
                        help: Some(e.help.clone()),
                    });
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Program { settings, scenarios, hash: hash.to_owned(), scripts, compiled_scripts, extra_columns })
    }

    /// The content hash of the scenario sources.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The extra columns a plan of this program can read: the names its conditions read,
    /// or `None` when any column may be read (a rhai script, or a `functions` file it
    /// calls, that reads extra columns). A loader may leave the other columns out: no
    /// plan reads them.
    pub fn extra_columns(&self) -> Option<&ExtraColumns> {
        let any = self.compiled_scripts.iter().any(|s| self.scripts.reads_extras(s));
        (!any).then_some(&self.extra_columns)
    }

    /// The name of the law the settings name (`law FR`), if any.
    pub fn law_name(&self) -> Option<&str> {
        self.settings.law.as_ref().map(|l| l.name())
    }

    /// Scenario names in selection order.
    pub fn scenario_names(&self) -> impl Iterator<Item = &str> {
        self.scenarios.iter().map(|s| s.name.as_str())
    }
}

fn compile_setting(
    ctx: &mut Ctx<'_>,
    settings: &mut Settings,
    scripts: &mut ScriptEngine,
    registry: &Registry,
    entry: &ast::Setting,
    read_functions: &dyn Fn(&str, &str) -> Result<String, String>,
) {
    match &entry.kind {
        SettingKind::Currency(c) => match Currency::from_code(&c.node) {
            Some(cur) => settings.default_currency = Some(cur),
            None => ctx.error(
                c.span,
                format!("unknown currency `{}`", c.node),
                Some("use an ISO 4217 code such as `EUR`".into()),
            ),
        },
        SettingKind::Calendar(c) => match registry.calendars.get(&c.node) {
            Some(cal) => settings.calendar = cal.clone(),
            None => ctx.error(
                c.span,
                format!("unknown calendar `{}`", c.node),
                Some(format!("known calendars: {}", registry.calendars.keys().cloned().collect::<Vec<_>>().join(", "))),
            ),
        },
        SettingKind::Law(l) => match registry.laws.get(&l.node) {
            Some(law) => settings.law = Some(law.clone()),
            None => ctx.error(
                l.span,
                format!("unknown law `{}`", l.node),
                Some(format!("known laws: {}", registry.laws.keys().cloned().collect::<Vec<_>>().join(", "))),
            ),
        },
        SettingKind::Cooldown(d) => settings.cooldown_days = d.node,
        SettingKind::MinimumBalance(m) => match Currency::from_code(&m.currency.node) {
            Some(cur) => settings.minimum_balance = Some((m.amount, cur)),
            None => ctx.error(m.currency.span, format!("unknown currency `{}`", m.currency.node), None),
        },
        SettingKind::Language(_) => {}
        SettingKind::Functions(path) => match read_functions(ctx.file, &path.node) {
            Ok(text) => {
                if let Err(e) = scripts.add_functions(&path.node, &text) {
                    let at = match (e.line, e.column) {
                        (Some(l), Some(c)) => format!(" (line {l}, column {c} of `{}`)", path.node),
                        _ => String::new(),
                    };
                    ctx.error(
                        path.span,
                        format!("rhai functions file `{}` does not compile{at}: {}", path.node, e.message),
                        None,
                    );
                }
            }
            Err(e) => ctx.error(
                path.span,
                e,
                Some("the path is relative to the scenario file and must stay inside its folder".into()),
            ),
        },
        SettingKind::CatchUp(c) => settings.catch_up = c.node,
        SettingKind::RatesAssumeUnchanged => settings.assume_unchanged = true,
    }
}

fn compile_cond(ctx: &mut Ctx<'_>, expr: &ast::Expr) -> Option<(Cond, String)> {
    let mut srcs = Vec::new();
    let text = ctx.text(expr.span);
    match cond::compile(expr, &mut srcs) {
        Ok(c) => {
            c.for_each_field(&mut |field| match field {
                Field::CustomerExtra(name) => {
                    ctx.extra_columns.customer.insert(name.clone());
                }
                Field::InvoiceExtra(name) => {
                    ctx.extra_columns.invoice.insert(name.clone());
                }
                _ => {}
            });
            // Re-number scripts to their global index.
            let base = ctx.scripts.len();
            let c = renumber(c, base);
            for (s, span) in srcs {
                ctx.scripts.push((s, span, ctx.file.to_owned()));
            }
            Some((c, text))
        }
        Err((span, msg)) => {
            ctx.error(
                span,
                msg,
                Some("names are listed in the language reference (README, section conditions)".into()),
            );
            None
        }
    }
}

fn renumber(c: Cond, base: usize) -> Cond {
    match c {
        Cond::Rhai(i) => Cond::Rhai(i + base),
        Cond::Or(a, b) => Cond::Or(Box::new(renumber(*a, base)), Box::new(renumber(*b, base))),
        Cond::And(a, b) => Cond::And(Box::new(renumber(*a, base)), Box::new(renumber(*b, base))),
        Cond::Not(a) => Cond::Not(Box::new(renumber(*a, base))),
        other => other,
    }
}

fn compile_scenario(
    ctx: &mut Ctx<'_>,
    settings: &Settings,
    registry: &Registry,
    s: &ast::Scenario,
) -> CompiledScenario {
    let selector = match &s.selector.kind {
        SelectorKind::Segments(list) => Selector::Segments(list.iter().map(|l| l.node.clone()).collect()),
        SelectorKind::Others => Selector::Others,
        SelectorKind::Where(e) => match compile_cond(ctx, e) {
            Some((c, text)) => {
                if cond::needs_invoice(&c) {
                    ctx.error(
                        e.span,
                        "a customer selector cannot read invoice names".to_owned(),
                        Some("use customer names (`segment`, `balance`, `customer.NAME`) here, and put invoice conditions on steps with `when`".into()),
                    );
                }
                Selector::Where(c, text)
            }
            None => Selector::Others,
        },
    };
    let mut steps = Vec::new();
    let mut events = Vec::new();
    let mut pauses = Vec::new();
    let mut stops = Vec::new();
    let mut business_days = false;
    let mut catch_up = settings.catch_up;
    for entry in &s.entries {
        match entry {
            ScenarioEntry::Step(step) => {
                let action = compile_action(ctx, settings, registry, &step.action);
                let label = offset_label(step.offset.node);
                let key = format!("{label} {}", step.action.channel.node);
                let order = crate::outcome::step_order(&label).0;
                steps.push(CompiledStep { offset: step.offset.node, label, key, order, action });
            }
            ScenarioEntry::Event(ev) => {
                let action = compile_action(ctx, settings, registry, &ev.action);
                let label = match ev.kind.node {
                    EventKind::AfterPayment => "after payment",
                    EventKind::BrokenPromise => "on broken promise",
                }
                .to_owned();
                let key = format!("{label} {}", ev.action.channel.node);
                let order = crate::outcome::step_order(&label).0;
                events.push(CompiledEvent { kind: ev.kind.node, label, key, order, action });
            }
            ScenarioEntry::Pause(rule) => {
                if let Some(c) = compile_cond(ctx, &rule.condition) {
                    pauses.push(c);
                }
            }
            ScenarioEntry::Stop(rule) => {
                if let Some(c) = compile_cond(ctx, &rule.condition) {
                    stops.push(c);
                }
            }
            ScenarioEntry::CountBusinessDays(_) => business_days = true,
            ScenarioEntry::CatchUp(c) => catch_up = c.node,
        }
    }
    steps.sort_by(|a, b| a.offset.cmp(&b.offset).then_with(|| a.action.channel.cmp(&b.action.channel)));
    let customer_only_rules = stops.iter().chain(&pauses).map(|(c, _)| cond::customer_only(c)).collect();
    CompiledScenario {
        name: s.name.node.clone(),
        selector,
        steps,
        events,
        pauses,
        stops,
        customer_only_rules,
        business_days,
        catch_up,
    }
}

fn compile_action(ctx: &mut Ctx<'_>, settings: &Settings, registry: &Registry, a: &ast::ActionSpec) -> CompiledAction {
    if !registry.channels.contains(&a.channel.node) {
        ctx.error(
            a.channel.span,
            format!("no channel `{}` is provided", a.channel.node),
            Some("use a built-in channel (email, sms, letter, registered_letter, call, webhook, escalate, notify) or register the custom channel in the embedding program".into()),
        );
    }
    let condition = a.condition.as_ref().and_then(|c| compile_cond(ctx, c));
    let mut fees = Vec::new();
    let mut interest = None;
    for charge in &a.charges {
        match &charge.kind {
            ChargeKind::FeeLegal => match &settings.law {
                Some(law) => fees.push(FeeRule::Legal(law.clone(), Arc::new(legal_fee_phrase(law.as_ref())))),
                None => ctx.error(
                    charge.span,
                    "`with fee legal` needs a law".into(),
                    Some("add `law FR` (or EU, UK, DE) to the settings".into()),
                ),
            },
            ChargeKind::FeeAmount(m) => match Currency::from_code(&m.currency.node) {
                Some(cur) => fees.push(FeeRule::Amount(m.amount, cur)),
                None => ctx.error(m.currency.span, format!("unknown currency `{}`", m.currency.node), None),
            },
            ChargeKind::InterestLegal => match &settings.law {
                Some(law) => {
                    interest = Some(InterestRule::new(
                        Arc::new(LawRate(law.clone())),
                        Decimal::ZERO,
                        format!("legal rate ({})", law.name()),
                    ))
                }
                None => ctx.error(
                    charge.span,
                    "`with interest legal` needs a law".into(),
                    Some("add `law FR` (or EU, UK, DE) to the settings".into()),
                ),
            },
            ChargeKind::InterestFixed(p) => {
                interest = Some(InterestRule::new(
                    Arc::new(FixedRate { percent: p.node }),
                    Decimal::ZERO,
                    format!("{}% per year", p.node),
                ))
            }
            ChargeKind::InterestReference { reference, points } => {
                match registry.reference_rates.get(&reference.node) {
                    Some(r) => {
                        interest = Some(InterestRule::new(
                            r.clone(),
                            points.node,
                            format!("{} + {} points", reference.node, points.node),
                        ))
                    }
                    None => ctx.error(
                        reference.span,
                        format!("unknown reference rate `{}`", reference.node),
                        Some(format!(
                            "known: {}",
                            registry.reference_rates.keys().cloned().collect::<Vec<_>>().join(", ")
                        )),
                    ),
                }
            }
        }
    }
    CompiledAction {
        channel: a.channel.node.clone(),
        template: a.template.node.clone(),
        assign: a.assign.as_ref().map(|s| s.node.clone()),
        per_invoice: a.per_invoice.is_some(),
        condition,
        fees,
        interest,
    }
}

/// A law's statutory rate seen as a rate schedule.
#[derive(Debug)]
struct LawRate(Arc<dyn Law>);

impl RateSchedule for LawRate {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn periods(
        &self,
        first: chrono::NaiveDate,
        last: chrono::NaiveDate,
        assume_unchanged: bool,
    ) -> Result<Vec<crate::law::RatePeriod>, crate::law::RateError> {
        self.0.interest().periods(first, last, assume_unchanged)
    }
}
