//! Semantic checks over a set of parsed files: names, types of conditions, selectors,
//! step order, charges, settings. Errors make the set unusable; warnings flag legal but
//! suspicious text.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rust_decimal::Decimal;

use crate::ast::*;
use crate::diagnostic::Diagnostic;
use crate::suggest::closest;
use crate::{KnownNames, Source};

/// The stable codes of the checker's diagnostics.
pub mod codes {
    /// Two `settings` blocks in the set.
    pub const DUPLICATE_SETTINGS: &str = "relance::check::duplicate-settings";
    /// One setting written twice.
    pub const REPEATED_SETTING: &str = "relance::check::repeated-setting";
    /// A currency code that is not ISO 4217.
    pub const UNKNOWN_CURRENCY: &str = "relance::check::unknown-currency";
    /// A calendar nothing provides.
    pub const UNKNOWN_CALENDAR: &str = "relance::check::unknown-calendar";
    /// A law nothing provides.
    pub const UNKNOWN_LAW: &str = "relance::check::unknown-law";
    /// A reference rate nothing provides.
    pub const UNKNOWN_RATE: &str = "relance::check::unknown-reference-rate";
    /// A channel nothing provides.
    pub const UNKNOWN_CHANNEL: &str = "relance::check::unknown-channel";
    /// A condition name that does not exist.
    pub const UNKNOWN_NAME: &str = "relance::check::unknown-name";
    /// Two scenarios with one name.
    pub const DUPLICATE_SCENARIO: &str = "relance::check::duplicate-scenario";
    /// Two `for others`.
    pub const DUPLICATE_OTHERS: &str = "relance::check::duplicate-others";
    /// A segment selected by two scenarios.
    pub const OVERLAPPING_SEGMENTS: &str = "relance::check::overlapping-segments";
    /// A scenario without steps or events.
    pub const EMPTY_SCENARIO: &str = "relance::check::empty-scenario";
    /// A step written after a step with a later offset.
    pub const STEPS_OUT_OF_ORDER: &str = "relance::check::steps-out-of-order";
    /// Two steps with the same offset and channel.
    pub const DUPLICATE_STEP: &str = "relance::check::duplicate-step";
    /// A fee of zero or less.
    pub const NON_POSITIVE_FEE: &str = "relance::check::non-positive-fee";
    /// A negative or absurd interest rate.
    pub const BAD_RATE: &str = "relance::check::bad-interest-rate";
    /// Two fees or two interests on one step.
    pub const DUPLICATE_CHARGE: &str = "relance::check::duplicate-charge";
    /// `legal` charges without a `law` setting.
    pub const MISSING_LAW: &str = "relance::check::missing-law";
    /// Money of two currencies compared.
    pub const MIXED_CURRENCIES: &str = "relance::check::mixed-currencies";
    /// Operands of incompatible types.
    pub const TYPE_MISMATCH: &str = "relance::check::type-mismatch";
    /// `not` applied to something that is not a condition.
    pub const NOT_NEEDS_CONDITION: &str = "relance::check::not-needs-condition";
    /// A value used where a condition is needed.
    pub const NOT_A_CONDITION: &str = "relance::check::not-a-condition";
    /// An invoice name in a customer selector.
    pub const INVOICE_NAME_IN_SELECTOR: &str = "relance::check::invoice-name-in-selector";
    /// An empty string where text is needed.
    pub const EMPTY_TEXT: &str = "relance::check::empty-text";
    /// A scenario-level rule written twice.
    pub const REPEATED_RULE: &str = "relance::check::repeated-rule";
    /// A negative amount where only positive ones make sense.
    pub const NEGATIVE_AMOUNT: &str = "relance::check::negative-amount";
    /// Warning: a condition that depends on nothing.
    pub const CONSTANT_CONDITION: &str = "relance::check::constant-condition";
    /// Warning: a step more than a year after the due date.
    pub const LATE_STEP: &str = "relance::check::late-step";
    /// Warning: fees or interest before the due date.
    pub const CHARGE_BEFORE_DUE: &str = "relance::check::charge-before-due";
    /// Warning: no `for others` in the set.
    pub const NO_FALLBACK: &str = "relance::check::no-fallback";
    /// Warning: fees or interest on an informal channel.
    pub const CHARGE_ON_INFORMAL_CHANNEL: &str = "relance::check::charge-on-informal-channel";
    /// Warning: a money literal in another currency than the settings one.
    pub const FOREIGN_CURRENCY: &str = "relance::check::foreign-currency";
    /// Warning: more decimals than the currency has.
    pub const TOO_MANY_DECIMALS: &str = "relance::check::too-many-decimals";
    /// Warning: a setting without effect.
    pub const USELESS_SETTING: &str = "relance::check::useless-setting";
    /// Warning: a charge on `after payment`.
    pub const CHARGE_AFTER_PAYMENT: &str = "relance::check::charge-after-payment";
    /// Warning: an unusual interest rate.
    pub const HIGH_RATE: &str = "relance::check::unusual-interest-rate";
}

/// The condition names of SPEC 2.3 with their types.
const NAMES: &[(&str, Ty, Level)] = &[
    ("amount", Ty::Money(None), Level::Invoice),
    ("outstanding", Ty::Money(None), Level::Invoice),
    ("days_late", Ty::Days, Level::Invoice),
    ("disputed", Ty::Bool, Level::Invoice),
    ("currency", Ty::Text, Level::Either),
    ("promise_to_pay", Ty::Bool, Level::Invoice),
    ("payment_plan", Ty::Bool, Level::Invoice),
    ("reminded", Ty::Bool, Level::Invoice),
    ("reminders_sent", Ty::Count, Level::Invoice),
    ("balance", Ty::Money(None), Level::Customer),
    ("overdue_balance", Ty::Money(None), Level::Customer),
    ("segment", Ty::Text, Level::Customer),
    ("avg_days_late", Ty::Days, Level::Customer),
];

/// Currencies offered in "did you mean" (any ISO 4217 code is accepted).
const COMMON_CURRENCIES: &[&str] = &[
    "EUR", "USD", "GBP", "CHF", "JPY", "CAD", "AUD", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF", "RON", "BGN", "CNY",
    "INR", "BRL", "MXN", "ZAR", "XOF", "XAF", "XPF", "MAD", "TND", "DZD",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Invoice,
    Customer,
    Either,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Ty {
    Bool,
    Number,
    /// A count (`reminders_sent`): compares with numbers, not with durations.
    Count,
    Days,
    Money(Option<String>),
    Text,
    /// A `customer.x` / `invoice.x` column, or a rhai value: anything.
    Any,
}

impl Ty {
    fn describe(&self) -> &'static str {
        match self {
            Ty::Bool => "true or false",
            Ty::Number => "a number",
            Ty::Count => "a count",
            Ty::Days => "a number of days",
            Ty::Money(_) => "an amount of money",
            Ty::Text => "text",
            Ty::Any => "a value",
        }
    }
    fn is_boolish(&self) -> bool {
        matches!(self, Ty::Bool | Ty::Any)
    }
}

/// Runs every check; see [`crate::check()`].
pub(crate) fn check(files: &[(Source, File)], known: &KnownNames) -> Vec<Diagnostic> {
    let texts: Vec<Arc<str>> = files.iter().map(|(s, _)| Arc::from(s.text.as_str())).collect();
    let mut c =
        Checker { known, diags: Vec::new(), files, texts: &texts, cur: 0, settings_currency: None, has_law: false };
    c.run();
    let mut diags = c.diags;
    // Stable order: by file, then position, then errors before warnings.
    let order: HashMap<&str, usize> = files.iter().enumerate().map(|(i, (s, _))| (s.name.as_str(), i)).collect();
    diags.sort_by_key(|d| {
        (order.get(d.file.as_str()).copied().unwrap_or(usize::MAX), d.primary_span().map_or(0, |s| s.start), d.severity)
    });
    diags
}

struct Checker<'a> {
    known: &'a KnownNames,
    diags: Vec<Diagnostic>,
    files: &'a [(Source, File)],
    texts: &'a [Arc<str>],
    cur: usize,
    settings_currency: Option<String>,
    has_law: bool,
}

/// Where a step sits, for messages about a condition.
#[derive(Clone, Copy)]
struct CondCtx {
    selector: bool,
}

impl Checker<'_> {
    fn file(&self) -> &str {
        &self.files[self.cur].0.name
    }
    fn text(&self) -> &str {
        &self.files[self.cur].0.text
    }
    fn error(&self, code: &'static str, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::error(code, msg, self.file(), &self.texts[self.cur])
    }
    fn warning(&self, code: &'static str, msg: impl Into<String>) -> Diagnostic {
        Diagnostic::warning(code, msg, self.file(), &self.texts[self.cur])
    }
    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }
    fn snippet(&self, span: Span) -> &str {
        self.text().get(span.start..span.end).unwrap_or("")
    }
    fn place(&self, file: usize, span: Span) -> String {
        let (l, c) = crate::diagnostic::line_col(&self.files[file].0.text, span.start);
        format!("{}:{l}:{c}", self.files[file].0.name)
    }

    fn run(&mut self) {
        // Settings first: they give the default currency and say whether a law is set.
        let mut first_settings: Option<(usize, Span)> = None;
        for fi in 0..self.files.len() {
            self.cur = fi;
            let file = &self.files[fi].1;
            for item in &file.items {
                if let Item::Settings(s) = item {
                    if let Some((f0, sp0)) = first_settings {
                        let here = self.place(f0, sp0);
                        let mut d = self
                            .error(
                                codes::DUPLICATE_SETTINGS,
                                "a set of scenario files has at most one `settings` block",
                            )
                            .with_label(
                                Span::new(s.span.start, s.span.start + "settings".len()),
                                "second `settings` block",
                            );
                        if f0 == fi {
                            d = d.with_label(Span::new(sp0.start, sp0.start + "settings".len()), "first one here");
                        }
                        self.push(d.with_help(format!("merge it into the first one, at {here}")));
                    } else {
                        first_settings = Some((fi, s.span));
                    }
                    self.settings(s);
                }
            }
        }
        // Scenarios.
        let mut names: BTreeMap<String, (usize, Span)> = BTreeMap::new();
        let mut others: Option<(usize, Span)> = None;
        let mut segments: BTreeMap<String, (usize, Span, String)> = BTreeMap::new();
        let mut last_scenario: Option<(usize, Span)> = None;
        let mut uses_legal: Vec<(usize, Span)> = Vec::new();
        for fi in 0..self.files.len() {
            self.cur = fi;
            let file = &self.files[fi].1;
            for item in &file.items {
                let Item::Scenario(sc) = item else { continue };
                last_scenario = Some((fi, sc.selector.span));
                if sc.name.node.trim().is_empty() {
                    let d = self
                        .error(codes::EMPTY_TEXT, "a scenario needs a name")
                        .with_label(sc.name.span, "empty name")
                        .with_help("name it after the customers it handles, e.g. `scenario \"Small businesses\"`");
                    self.push(d);
                } else if let Some((f0, sp0)) = names.get(&sc.name.node) {
                    let here = self.place(*f0, *sp0);
                    let mut d = self
                        .error(codes::DUPLICATE_SCENARIO, format!("scenario `{}` is defined twice", sc.name.node))
                        .with_label(sc.name.span, "second definition");
                    if *f0 == fi {
                        d = d.with_label(*sp0, "first definition");
                    }
                    self.push(d.with_help(format!(
                        "rename one of them: scenario names are unique in a set of files (first one at {here})"
                    )));
                } else {
                    names.insert(sc.name.node.clone(), (fi, sc.name.span));
                }
                match &sc.selector.kind {
                    SelectorKind::Others => {
                        if let Some((f0, sp0)) = others {
                            let here = self.place(f0, sp0);
                            let mut d = self
                                .error(codes::DUPLICATE_OTHERS, "only one scenario can be `for others`")
                                .with_label(sc.selector.span, "second fallback");
                            if f0 == fi {
                                d = d.with_label(sp0, "first fallback");
                            }
                            self.push(d.with_help(format!(
                                "the second one can never match: merge the two scenarios or give this one a selector (first fallback at {here})"
                            )));
                        } else {
                            others = Some((fi, sc.selector.span));
                        }
                    }
                    SelectorKind::Segments(list) => {
                        for s in list {
                            if s.node.trim().is_empty() {
                                let d = self
                                    .error(codes::EMPTY_TEXT, "a segment name cannot be empty")
                                    .with_label(s.span, "empty segment")
                                    .with_help("write the segment as it appears in the customer file, e.g. `\"sme\"`");
                                self.push(d);
                                continue;
                            }
                            if let Some((f0, sp0, other)) = segments.get(&s.node) {
                                let here = self.place(*f0, *sp0);
                                let same = other == &sc.name.node && *f0 == fi;
                                let msg = if same {
                                    format!("segment `{}` is listed twice in scenario `{}`", s.node, sc.name.node)
                                } else {
                                    format!("segment `{}` is already handled by scenario `{other}`", s.node)
                                };
                                let mut d = self
                                    .error(codes::OVERLAPPING_SEGMENTS, msg)
                                    .with_label(s.span, "selected again here");
                                if *f0 == fi {
                                    d = d.with_label(*sp0, "first selected here");
                                }
                                let help = if same {
                                    format!("remove the second `\"{}\"`", s.node)
                                } else {
                                    format!(
                                        "a customer goes to the first matching scenario, so this one would never see segment `{}` (first selected at {here}): remove it from one of the two",
                                        s.node
                                    )
                                };
                                self.push(d.with_help(help));
                            } else {
                                segments.insert(s.node.clone(), (fi, s.span, sc.name.node.clone()));
                            }
                        }
                    }
                    SelectorKind::Where(e) => {
                        self.condition(e, CondCtx { selector: true });
                    }
                }
                self.scenario(sc, &mut uses_legal);
            }
        }
        if others.is_none()
            && let Some((fi, span)) = last_scenario
        {
            self.cur = fi;
            let d = self
                    .warning(codes::NO_FALLBACK, "no scenario is `for others`")
                    .with_label(span, "last scenario of the set")
                    .with_help(
                        "customers that match no selector get no reminder (they are listed as unassigned in the plan); add a `scenario \"Everyone else\" { for others … }`",
                    );
            self.push(d);
        }
        if !self.has_law {
            for (fi, span) in uses_legal {
                self.cur = fi;
                let d = self
                    .error(codes::MISSING_LAW, "`legal` fees and interest need a late-payment law")
                    .with_label(span, "which law?")
                    .with_help("add `law FR` (or `EU`, `UK`, `DE`) to the `settings` block");
                self.push(d);
            }
        }
    }

    fn settings(&mut self, s: &Settings) {
        let mut seen: BTreeMap<&'static str, Span> = BTreeMap::new();
        for e in &s.entries {
            let key = match &e.kind {
                SettingKind::Currency(_) => "currency",
                SettingKind::Calendar(_) => "calendar",
                SettingKind::Law(_) => "law",
                SettingKind::Cooldown(_) => "cooldown",
                SettingKind::MinimumBalance(_) => "minimum balance",
                SettingKind::Language(_) => "language",
                SettingKind::Functions(_) => "functions",
                SettingKind::CatchUp(_) => "catch up",
                SettingKind::RatesAssumeUnchanged => "rates assume unchanged",
            };
            if let Some(first) = seen.get(key) {
                let d = self
                    .error(codes::REPEATED_SETTING, format!("setting `{key}` is written twice"))
                    .with_label(e.span, "repeated here")
                    .with_label(*first, "first written here")
                    .with_help(format!("keep a single `{key}` line"));
                self.push(d);
                continue;
            }
            seen.insert(key, e.span);
            match &e.kind {
                SettingKind::Currency(c) => {
                    if self.currency_code(c) {
                        self.settings_currency = Some(c.node.clone());
                    }
                }
                SettingKind::Calendar(c) => {
                    if !self.known.calendars.contains(&c.node) {
                        let d = self.unknown(codes::UNKNOWN_CALENDAR, "calendar", c, &self.known.calendars);
                        self.push(d);
                    }
                }
                SettingKind::Law(l) => {
                    self.has_law = true;
                    if !self.known.laws.contains(&l.node) {
                        let d = self.unknown(codes::UNKNOWN_LAW, "law", l, &self.known.laws);
                        self.push(d);
                    }
                }
                SettingKind::Cooldown(n) => {
                    if n.node == 0 {
                        let d = self
                            .warning(codes::USELESS_SETTING, "`cooldown 0 days` has no effect")
                            .with_label(e.span, "no cooldown")
                            .with_help("remove the line, or give the number of days between two contacts, e.g. `cooldown 5 days`");
                        self.push(d);
                    }
                }
                SettingKind::MinimumBalance(m) => {
                    self.money(m);
                    if m.amount < Decimal::ZERO {
                        let d = self
                            .error(codes::NEGATIVE_AMOUNT, "the minimum balance cannot be negative")
                            .with_label(m.span, "negative")
                            .with_help("write a positive amount, e.g. `minimum balance 15 EUR`");
                        self.push(d);
                    }
                }
                SettingKind::Language(l) => {
                    let ok = (2..=3).contains(&l.node.len()) && l.node.chars().all(|c| c.is_ascii_lowercase());
                    if !ok {
                        let d = self
                            .warning(codes::USELESS_SETTING, format!("`{}` does not look like a language code", l.node))
                            .with_label(l.span, "expected a code such as `fr` or `en`")
                            .with_help(format!(
                                "write the ISO 639-1 code in lowercase, e.g. `language {}`",
                                l.node.to_lowercase().chars().take(2).collect::<String>()
                            ));
                        self.push(d);
                    }
                }
                SettingKind::Functions(f) => {
                    if f.node.trim().is_empty() {
                        let d = self
                            .error(codes::EMPTY_TEXT, "`functions` needs a file name")
                            .with_label(f.span, "empty")
                            .with_help("write the path of a rhai file, e.g. `functions \"rules.rhai\"`");
                        self.push(d);
                    } else if !f.node.ends_with(".rhai") {
                        let d = self
                            .warning(codes::USELESS_SETTING, format!("`{}` is not a `.rhai` file", f.node))
                            .with_label(f.span, "expected a `.rhai` file")
                            .with_help("rhai function files end in `.rhai`");
                        self.push(d);
                    }
                }
                SettingKind::CatchUp(_) | SettingKind::RatesAssumeUnchanged => {}
            }
        }
    }

    fn unknown(
        &self,
        code: &'static str,
        what: &str,
        name: &Ident,
        known: &std::collections::BTreeSet<String>,
    ) -> Diagnostic {
        let list = known.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ");
        let help = match closest(&name.node, known.iter().map(String::as_str)) {
            Some(s) => format!("did you mean `{s}`? known {what}s: {list}"),
            None => format!("known {what}s: {list}"),
        };
        self.error(code, format!("unknown {what} `{}`", name.node))
            .with_label(name.span, format!("not a known {what}"))
            .with_help(help)
    }

    /// Checks a currency code; true when it is valid.
    fn currency_code(&mut self, c: &Ident) -> bool {
        if iso_currency::Currency::from_code(&c.node).is_some() {
            return true;
        }
        let upper = c.node.to_uppercase();
        let suggestion = if iso_currency::Currency::from_code(&upper).is_some() {
            Some(upper)
        } else {
            let lower = c.node.to_lowercase();
            let alias = match lower.trim_end_matches('s') {
                "euro" => Some("EUR"),
                "dollar" | "usd" => Some("USD"),
                "pound" | "sterling" => Some("GBP"),
                "franc" => Some("CHF"),
                "yen" => Some("JPY"),
                _ => None,
            };
            alias.or_else(|| closest(&upper, COMMON_CURRENCIES.iter().copied())).map(str::to_string)
        };
        let help = match suggestion {
            Some(s) => format!("did you mean `{s}`?"),
            None => "write an ISO 4217 currency code in capitals, e.g. `EUR`, `GBP`, `USD`".to_string(),
        };
        let d = self
            .error(codes::UNKNOWN_CURRENCY, format!("unknown currency `{}`", c.node))
            .with_label(c.span, "not an ISO 4217 currency code")
            .with_help(help);
        self.push(d);
        false
    }

    fn money(&mut self, m: &Money) {
        if !self.currency_code(&m.currency) {
            return;
        }
        if let Some(cur) = iso_currency::Currency::from_code(&m.currency.node)
            && let Some(exp) = cur.exponent()
            && m.amount.normalize().scale() > u32::from(exp)
        {
            let d = self
                .warning(
                    codes::TOO_MANY_DECIMALS,
                    format!("`{}` has {exp} decimals, but this amount has more", m.currency.node),
                )
                .with_label(m.span, "too precise")
                .with_help(format!(
                    "round it to {exp} decimals: `{} {}`",
                    m.amount
                        .round_dp_with_strategy(u32::from(exp), rust_decimal::RoundingStrategy::MidpointAwayFromZero),
                    m.currency.node
                ));
            self.push(d);
        }
    }

    fn scenario(&mut self, sc: &Scenario, uses_legal: &mut Vec<(usize, Span)>) {
        let mut steps = 0usize;
        let mut events = 0usize;
        let mut prev: Option<&Step> = None;
        let mut seen: HashMap<(i32, &str), Span> = HashMap::new();
        let mut business: Option<Span> = None;
        let mut catch_up: Option<Span> = None;
        for e in &sc.entries {
            match e {
                ScenarioEntry::Step(st) => {
                    steps += 1;
                    if let Some(p) = prev
                        && st.offset.node < p.offset.node
                    {
                        let d = self
                            .error(
                                codes::STEPS_OUT_OF_ORDER,
                                format!(
                                    "step `{}` comes after step `{}` but happens earlier",
                                    offset_text(st.offset.node),
                                    offset_text(p.offset.node)
                                ),
                            )
                            .with_label(st.offset.span, "earlier offset")
                            .with_label(p.offset.span, "written before")
                            .with_help(format!(
                                "write the steps in date order: move `{}` above `{}`",
                                offset_text(st.offset.node),
                                offset_text(p.offset.node)
                            ));
                        self.push(d);
                    }
                    let key = (st.offset.node, st.action.channel.node.as_str());
                    if let Some(first) = seen.get(&key) {
                        let d = self
                            .error(
                                codes::DUPLICATE_STEP,
                                format!(
                                    "two `{}` steps at `{}` in scenario `{}`",
                                    st.action.channel.node,
                                    offset_text(st.offset.node),
                                    sc.name.node
                                ),
                            )
                            .with_label(st.offset.span.join(st.action.channel.span), "second step")
                            .with_label(*first, "first step")
                            .with_help("merge them into one step, or move one to another day");
                        self.push(d);
                    } else {
                        seen.insert(key, st.offset.span.join(st.action.channel.span));
                    }
                    if st.offset.node > 365 {
                        let d = self
                            .warning(codes::LATE_STEP, format!("step `{}` is more than a year after the due date", offset_text(st.offset.node)))
                            .with_label(st.offset.span, "over a year late")
                            .with_help("check the offset: in France, a commercial debt is time-barred after 5 years, but most collection happens within 90 days");
                        self.push(d);
                    }
                    self.action(&st.action, Some(st.offset.node), None, uses_legal);
                    prev = Some(st);
                }
                ScenarioEntry::Event(ev) => {
                    events += 1;
                    self.action(&ev.action, None, Some(ev.kind.node), uses_legal);
                }
                ScenarioEntry::Pause(r) | ScenarioEntry::Stop(r) => {
                    self.condition(&r.condition, CondCtx { selector: false });
                }
                ScenarioEntry::CountBusinessDays(span) => {
                    if let Some(first) = business {
                        let d = self
                            .warning(codes::REPEATED_RULE, "`count business days` is written twice")
                            .with_label(*span, "repeated here")
                            .with_label(first, "first written here")
                            .with_help("remove the second line");
                        self.push(d);
                    }
                    business = Some(*span);
                }
                ScenarioEntry::CatchUp(c) => {
                    if let Some(first) = catch_up {
                        let d = self
                            .error(codes::REPEATED_RULE, "`catch up` is written twice in one scenario")
                            .with_label(c.span, "repeated here")
                            .with_label(first, "first written here")
                            .with_help("keep a single `catch up latest` or `catch up stepwise`");
                        self.push(d);
                    }
                    catch_up = Some(c.span);
                }
            }
        }
        if steps + events == 0 {
            let d = self
                .error(codes::EMPTY_SCENARIO, format!("scenario `{}` has no step", sc.name.node))
                .with_label(sc.name.span, "empty scenario")
                .with_help("add a step such as `D+3 email \"reminder-1\"`, or remove the scenario");
            self.push(d);
        }
    }

    fn action(
        &mut self,
        a: &ActionSpec,
        offset: Option<i32>,
        event: Option<EventKind>,
        uses_legal: &mut Vec<(usize, Span)>,
    ) {
        if !self.known.channels.contains(&a.channel.node) {
            let list = self.known.channels.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ");
            let help = match closest(&a.channel.node, self.known.channels.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "use a built-in channel ({list}) or register `{}` as a custom channel in the program or the configuration",
                    a.channel.node
                ),
            };
            let d = self
                .error(codes::UNKNOWN_CHANNEL, format!("unknown channel `{}`", a.channel.node))
                .with_label(a.channel.span, "no channel has this name")
                .with_help(help);
            self.push(d);
        }
        if a.template.node.trim().is_empty() {
            let d = self
                .error(codes::EMPTY_TEXT, "the template name is empty")
                .with_label(a.template.span, "empty")
                .with_help("name the template the channel renders, e.g. `\"reminder-1\"`");
            self.push(d);
        }
        if let Some(who) = &a.assign
            && who.node.trim().is_empty()
        {
            let d = self
                .error(codes::EMPTY_TEXT, "`assign` needs a person or a team")
                .with_label(who.span, "empty")
                .with_help("write who handles the task, e.g. `assign \"ar-team\"`");
            self.push(d);
        }
        if let Some(c) = &a.condition {
            self.condition(c, CondCtx { selector: false });
        }
        let mut fee: Option<Span> = None;
        let mut interest: Option<Span> = None;
        for ch in &a.charges {
            let is_fee = matches!(ch.kind, ChargeKind::FeeLegal | ChargeKind::FeeAmount(_));
            let slot = if is_fee { &mut fee } else { &mut interest };
            if let Some(first) = *slot {
                let what = if is_fee { "fee" } else { "interest" };
                let d = self
                    .error(codes::DUPLICATE_CHARGE, format!("a step charges at most one {what}"))
                    .with_label(ch.span, "second one")
                    .with_label(first, "first one")
                    .with_help(format!("keep a single `with {what} …` line"));
                self.push(d);
                continue;
            }
            *slot = Some(ch.span);
            match &ch.kind {
                ChargeKind::FeeLegal | ChargeKind::InterestLegal => uses_legal.push((self.cur, ch.span)),
                ChargeKind::FeeAmount(m) => {
                    self.money(m);
                    if m.amount <= Decimal::ZERO {
                        let d = self
                            .error(
                                codes::NON_POSITIVE_FEE,
                                format!("a fee must be more than zero, not `{}`", self.snippet(m.span)),
                            )
                            .with_label(m.span, "zero or negative")
                            .with_help("write a positive amount such as `with fee 40 EUR`, or remove the line");
                        self.push(d);
                    } else if let Some(cur) = &self.settings_currency
                        && &m.currency.node != cur
                    {
                        let d = self
                                .warning(codes::FOREIGN_CURRENCY, format!("fee in `{}` while the settings currency is `{cur}`", m.currency.node))
                                .with_label(m.currency.span, "other currency")
                                .with_help(format!("invoices in `{cur}` cannot carry a `{}` fee without an FX table: write the fee in `{cur}`", m.currency.node));
                        self.push(d);
                    }
                }
                ChargeKind::InterestFixed(r) => {
                    if r.node < Decimal::ZERO {
                        let d = self
                            .error(codes::BAD_RATE, format!("an interest rate cannot be negative (`{}%`)", r.node))
                            .with_label(r.span, "negative")
                            .with_help("write a positive yearly rate such as `with interest 8% per year`");
                        self.push(d);
                    } else if r.node.is_zero() || r.node > Decimal::from(50) {
                        let d = self
                            .warning(codes::HIGH_RATE, format!("`{}% per year` is an unusual interest rate", r.node))
                            .with_label(r.span, "check this rate")
                            .with_help("rates are percent per year: `8% per year` means 8 EUR per 100 EUR over a year");
                        self.push(d);
                    }
                }
                ChargeKind::InterestReference { reference, .. } => {
                    if !self.known.reference_rates.contains(&reference.node) {
                        let d =
                            self.unknown(codes::UNKNOWN_RATE, "reference rate", reference, &self.known.reference_rates);
                        self.push(d);
                    }
                }
            }
            if let Some(off) = offset
                && off <= 0
            {
                let d = self
                        .warning(codes::CHARGE_BEFORE_DUE, format!("fees and interest at `{}`, before the invoice is late", offset_text(off)))
                        .with_label(ch.span, "nothing is owed yet")
                        .with_help("late-payment fees and interest apply only after the due date: move the charge to a step after `D`");
                self.push(d);
            }
            if event == Some(EventKind::AfterPayment) {
                let d = self
                    .warning(
                        codes::CHARGE_AFTER_PAYMENT,
                        "a charge on `after payment` bills an invoice that is already paid",
                    )
                    .with_label(ch.span, "charged after payment")
                    .with_help("claim fees and interest on a step before payment, or remove this line");
                self.push(d);
            }
            if matches!(a.channel.node.as_str(), "email" | "sms" | "call" | "notify") {
                let d = self
                    .warning(
                        codes::CHARGE_ON_INFORMAL_CHANNEL,
                        format!("fees and interest claimed by `{}`", a.channel.node),
                    )
                    .with_label(ch.span, "informal channel")
                    .with_help("fees and interest are usually claimed in a letter or formal notice (`letter`, `registered_letter`) the customer can keep as proof");
                self.push(d);
            }
        }
    }

    /// Checks a condition: names, types, constant conditions.
    fn condition(&mut self, e: &Expr, ctx: CondCtx) {
        let t = self.ty(e, ctx);
        if !t.is_boolish() {
            let d = self
                .error(
                    codes::NOT_A_CONDITION,
                    format!("`{}` is {}, not a condition", self.snippet(e.span), t.describe()),
                )
                .with_label(e.span, "not true or false")
                .with_help(condition_help(&t));
            self.push(d);
        } else if !mentions_data(e) {
            let d = self
                .warning(
                    codes::CONSTANT_CONDITION,
                    format!("condition `{}` does not depend on the invoice or the customer", self.snippet(e.span)),
                )
                .with_label(e.span, "always the same")
                .with_help("compare a name such as `balance` or `days_late`, or remove the condition");
            self.push(d);
        }
        if let Some(cur) = self.settings_currency.clone()
            && !mentions_currency(e)
        {
            let mut foreign = Vec::new();
            collect_foreign(e, &cur, &mut foreign);
            for (span, code) in foreign {
                let d = self
                        .warning(codes::FOREIGN_CURRENCY, format!("amount in `{code}` while the settings currency is `{cur}`"))
                        .with_label(span, "other currency")
                        .with_help(format!(
                            "invoices in `{cur}` cannot be compared with `{code}`: guard the condition with `currency = \"{code}\" and …`, or write the amount in `{cur}`"
                        ));
                self.push(d);
            }
        }
    }

    fn ty(&mut self, e: &Expr, ctx: CondCtx) -> Ty {
        match &e.kind {
            ExprKind::Or(a, b) | ExprKind::And(a, b) => {
                let op = if matches!(e.kind, ExprKind::Or(..)) { "or" } else { "and" };
                for x in [a, b] {
                    let t = self.ty(x, ctx);
                    if !t.is_boolish() {
                        let d = self
                            .error(
                                codes::NOT_A_CONDITION,
                                format!(
                                    "`{op}` needs conditions on both sides, but `{}` is {}",
                                    self.snippet(x.span),
                                    t.describe()
                                ),
                            )
                            .with_label(x.span, "not true or false")
                            .with_help(condition_help(&t));
                        self.push(d);
                    }
                }
                Ty::Bool
            }
            ExprKind::Not(x) => {
                let t = self.ty(x, ctx);
                if !t.is_boolish() {
                    let d = self
                        .error(
                            codes::NOT_NEEDS_CONDITION,
                            format!("`not` needs a condition, but `{}` is {}", self.snippet(x.span), t.describe()),
                        )
                        .with_label(x.span, "not true or false")
                        .with_help(condition_help(&t));
                    self.push(d);
                }
                Ty::Bool
            }
            ExprKind::Compare { lhs, op, rhs } => {
                // `not x = y` reads as `(not x) = y`: explain when `x` is not a condition.
                if let ExprKind::Not(inner) = &lhs.kind {
                    let it = self.ty_quiet(inner, ctx);
                    if !it.is_boolish() {
                        let whole =
                            format!("{} {} {}", self.snippet(inner.span), op.node.as_str(), self.snippet(rhs.span));
                        let d = self
                            .error(
                                codes::NOT_NEEDS_CONDITION,
                                format!(
                                    "`not` needs a condition, but `{}` is {}",
                                    self.snippet(inner.span),
                                    it.describe()
                                ),
                            )
                            .with_label(lhs.span, "`not` applies only to this")
                            .with_help(format!(
                                "`not` binds tighter than `{}`: write `not ({whole})`",
                                op.node.as_str()
                            ));
                        self.push(d);
                        self.ty(rhs, ctx);
                        return Ty::Bool;
                    }
                }
                let lt = self.ty(lhs, ctx);
                let rt = self.ty(rhs, ctx);
                self.compare(lhs, &lt, op.node, rhs, &rt, op.span);
                Ty::Bool
            }
            ExprKind::Has { lhs, rhs } => {
                let lt = self.ty(lhs, ctx);
                let rt = self.ty(rhs, ctx);
                if lt != Ty::Any {
                    let d = self
                        .error(
                            codes::TYPE_MISMATCH,
                            format!(
                                "`has` looks inside a list of tags, but `{}` is {}",
                                self.snippet(lhs.span),
                                lt.describe()
                            ),
                        )
                        .with_label(lhs.span, "not a list")
                        .with_help(format!(
                            "use `has` with a tag column such as `customer.tags`, or compare with `=`: `{} = {}`",
                            self.snippet(lhs.span),
                            self.snippet(rhs.span)
                        ));
                    self.push(d);
                } else if !matches!(rt, Ty::Text | Ty::Any) {
                    let d = self
                        .error(
                            codes::TYPE_MISMATCH,
                            format!("a tag is text, but `{}` is {}", self.snippet(rhs.span), rt.describe()),
                        )
                        .with_label(rhs.span, "not text")
                        .with_help("write the tag in double quotes, e.g. `customer.tags has \"legal-hold\"`");
                    self.push(d);
                }
                Ty::Bool
            }
            ExprKind::In { lhs, list } => {
                let lt = self.ty(lhs, ctx);
                if list.is_empty() {
                    let d = self
                        .warning(codes::CONSTANT_CONDITION, "`in []` is never true")
                        .with_label(e.span, "empty list")
                        .with_help("list the values to match, e.g. `segment in [\"sme\", \"micro\"]`");
                    self.push(d);
                }
                for x in list {
                    let xt = self.ty(x, ctx);
                    self.compare(lhs, &lt, CompareOp::Eq, x, &xt, x.span);
                }
                Ty::Bool
            }
            ExprKind::Paren(x) => self.ty(x, ctx),
            ExprKind::Rhai(s) => {
                if s.node.trim().is_empty() {
                    let d = self
                        .error(codes::EMPTY_TEXT, "the rhai expression is empty")
                        .with_label(s.span, "empty")
                        .with_help("write a rhai expression that returns true or false, e.g. `rhai \"amount > 100\"`");
                    self.push(d);
                }
                Ty::Any
            }
            ExprKind::Literal(l) => match l {
                Literal::Number(_) => Ty::Number,
                Literal::String(_) => Ty::Text,
                Literal::Money(m) => {
                    self.money(m);
                    Ty::Money(Some(m.currency.node.clone()))
                }
                Literal::Days(_) => Ty::Days,
                Literal::Bool(_) => Ty::Bool,
            },
            ExprKind::Name(parts) => self.name(parts, e.span, ctx),
        }
    }

    /// The type of an expression without reporting anything.
    fn ty_quiet(&mut self, e: &Expr, ctx: CondCtx) -> Ty {
        let n = self.diags.len();
        let t = self.ty(e, ctx);
        self.diags.truncate(n);
        t
    }

    fn name(&mut self, parts: &[Ident], span: Span, ctx: CondCtx) -> Ty {
        let Some(first) = parts.first() else { return Ty::Any };
        if parts.len() == 1 {
            if let Some((_, t, level)) = NAMES.iter().find(|(n, _, _)| *n == first.node) {
                if ctx.selector && *level == Level::Invoice {
                    let d = self
                        .error(codes::INVOICE_NAME_IN_SELECTOR, format!("`{}` belongs to an invoice, but a selector chooses customers", first.node))
                        .with_label(span, "invoice value")
                        .with_help("select on customer values (`balance`, `overdue_balance`, `segment`, `avg_days_late`, `customer.NAME`), and put invoice conditions on steps with `when`");
                    self.push(d);
                }
                return t.clone();
            }
            if first.node == "customer" || first.node == "invoice" {
                let d = self
                    .error(codes::UNKNOWN_NAME, format!("`{}` needs a column name", first.node))
                    .with_label(span, "which column?")
                    .with_help(format!(
                        "write `{}.NAME` for a column of the portfolio, e.g. `{}.region`",
                        first.node, first.node
                    ));
                self.push(d);
                return Ty::Any;
            }
            let mut candidates: Vec<&str> = NAMES.iter().map(|(n, _, _)| *n).collect();
            candidates.extend(["true", "false"]);
            let help = match closest(&first.node, candidates) {
                Some(s) => format!("did you mean `{s}`?"),
                None if first.node.chars().all(|c| c.is_ascii_uppercase()) && first.node.len() == 3 => {
                    format!("to compare text, write it in double quotes: `\"{}\"`", first.node)
                }
                None => format!(
                    "known names: {}; a column of the portfolio is `customer.{}` or `invoice.{}`",
                    NAMES.iter().map(|(n, _, _)| format!("`{n}`")).collect::<Vec<_>>().join(", "),
                    first.node,
                    first.node
                ),
            };
            let d = self
                .error(codes::UNKNOWN_NAME, format!("unknown name `{}`", first.node))
                .with_label(span, "not a known value")
                .with_help(help);
            self.push(d);
            return Ty::Any;
        }
        match first.node.as_str() {
            "customer" | "invoice" if parts.len() == 2 => {
                if ctx.selector && first.node == "invoice" {
                    let d = self
                        .error(codes::INVOICE_NAME_IN_SELECTOR, format!("`{}` belongs to an invoice, but a selector chooses customers", self.snippet(span)))
                        .with_label(span, "invoice value")
                        .with_help("use a `customer.NAME` column in the selector, and put invoice conditions on steps with `when`");
                    self.push(d);
                }
                Ty::Any
            }
            "customer" | "invoice" => {
                let d = self
                    .error(codes::UNKNOWN_NAME, format!("`{}` has too many parts", self.snippet(span)))
                    .with_label(span, "one column name expected after the dot")
                    .with_help(format!("write `{}.{}`", first.node, parts[1].node));
                self.push(d);
                Ty::Any
            }
            other => {
                let help = match closest(other, ["customer", "invoice"]) {
                    Some(s) => format!("did you mean `{s}.{}`?", parts[1].node),
                    None => "portfolio columns are written `customer.NAME` or `invoice.NAME`".to_string(),
                };
                let d = self
                    .error(codes::UNKNOWN_NAME, format!("unknown name `{}`", self.snippet(span)))
                    .with_label(first.span, "neither `customer` nor `invoice`")
                    .with_help(help);
                self.push(d);
                Ty::Any
            }
        }
    }

    fn compare(&mut self, lhs: &Expr, lt: &Ty, op: CompareOp, rhs: &Expr, rt: &Ty, op_span: Span) {
        let ordering = !matches!(op, CompareOp::Eq | CompareOp::Ne);
        let ls = self.snippet(lhs.span).to_string();
        let rs = self.snippet(rhs.span).to_string();
        let mismatch = |c: &Self, help: String| {
            c.error(
                codes::TYPE_MISMATCH,
                format!("cannot compare `{ls}` ({}) with `{rs}` ({})", lt.describe(), rt.describe()),
            )
            .with_label(rhs.span, rt.describe())
            .with_label(lhs.span, lt.describe())
            .with_help(help)
        };
        let d = match (lt, rt) {
            (Ty::Any, _) | (_, Ty::Any) => None,
            (Ty::Money(a), Ty::Money(b)) => match (a, b) {
                (Some(a), Some(b)) if a != b => Some(
                    self.error(
                        codes::MIXED_CURRENCIES,
                        format!("cannot compare `{a}` with `{b}` without an exchange rate"),
                    )
                    .with_label(rhs.span, b.clone())
                    .with_label(lhs.span, a.clone())
                    .with_help(format!("write both amounts in the same currency, e.g. `{}`", self.snippet(lhs.span))),
                ),
                _ => None,
            },
            (Ty::Money(Some(c)), Ty::Number) | (Ty::Number, Ty::Money(Some(c))) => {
                let n = if matches!(lt, Ty::Number) { &ls } else { &rs };
                Some(mismatch(self, format!("write the amount with its currency: `{n} {c}`")))
            }
            (Ty::Money(None), Ty::Number) | (Ty::Number, Ty::Money(None)) => {
                let n = if matches!(lt, Ty::Number) { &ls } else { &rs };
                let cur = self.settings_currency.clone().unwrap_or_else(|| "EUR".to_string());
                Some(mismatch(self, format!("write the amount with its currency: `{n} {cur}`")))
            }
            (Ty::Money(_), _) | (_, Ty::Money(_)) => {
                Some(mismatch(self, "compare amounts with amounts, such as `balance >= 500 EUR`".to_string()))
            }
            (Ty::Days, Ty::Number | Ty::Days) | (Ty::Number, Ty::Days | Ty::Number) => None,
            (Ty::Count, Ty::Number | Ty::Count) | (Ty::Number, Ty::Count) => None,
            (Ty::Count, Ty::Days) | (Ty::Days, Ty::Count) => {
                Some(mismatch(self, "a count is a plain number: drop `days`, e.g. `reminders_sent >= 2`".to_string()))
            }
            (Ty::Bool, Ty::Bool) if ordering => Some(
                self.error(codes::TYPE_MISMATCH, format!("`{}` cannot order true and false", op.as_str()))
                    .with_label(op_span, "not defined on true/false")
                    .with_help("compare conditions with `=` or `!=`, or use them directly: `when disputed`"),
            ),
            (Ty::Bool, Ty::Bool) => None,
            (Ty::Bool, _) | (_, Ty::Bool) => {
                let b = if matches!(lt, Ty::Bool) { &ls } else { &rs };
                let help = if b == "reminded" {
                    "did you mean `reminders_sent`? `reminded` is true or false".to_string()
                } else {
                    format!("`{b}` is already a condition: write `when {b}` or `when not {b}`")
                };
                Some(mismatch(self, help))
            }
            (Ty::Text, Ty::Text) if ordering => Some(
                self.error(codes::TYPE_MISMATCH, format!("`{}` cannot order text", op.as_str()))
                    .with_label(op_span, "not defined on text")
                    .with_help("compare text with `=`, `!=` or `in [\"a\", \"b\"]`"),
            ),
            (Ty::Text, Ty::Text) => None,
            (Ty::Text, _) | (_, Ty::Text) => {
                let other = if matches!(lt, Ty::Text) { &rs } else { &ls };
                Some(mismatch(self, format!("compare text with text in double quotes, e.g. `\"{other}\"`")))
            }
        };
        if let Some(d) = d {
            self.push(d);
        }
    }
}

fn condition_help(t: &Ty) -> String {
    match t {
        Ty::Money(_) => "compare the amount, e.g. `balance >= 500 EUR`".to_string(),
        Ty::Days => "compare the days, e.g. `days_late > 30`".to_string(),
        Ty::Count | Ty::Number => "compare the number, e.g. `reminders_sent >= 2`".to_string(),
        Ty::Text => "compare the text, e.g. `segment = \"sme\"`".to_string(),
        Ty::Bool | Ty::Any => "write a condition".to_string(),
    }
}

/// `D-10`, `D`, `D+3`.
pub(crate) fn offset_text(o: i32) -> String {
    match o {
        0 => "D".to_string(),
        o if o > 0 => format!("D+{o}"),
        o => format!("D{o}"),
    }
}

fn mentions_data(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Or(a, b) | ExprKind::And(a, b) => mentions_data(a) || mentions_data(b),
        ExprKind::Not(x) | ExprKind::Paren(x) => mentions_data(x),
        ExprKind::Compare { lhs, rhs, .. } | ExprKind::Has { lhs, rhs } => mentions_data(lhs) || mentions_data(rhs),
        ExprKind::In { lhs, list } => mentions_data(lhs) || list.iter().any(mentions_data),
        ExprKind::Rhai(_) | ExprKind::Name(_) => true,
        ExprKind::Literal(_) => false,
    }
}

fn mentions_currency(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Or(a, b) | ExprKind::And(a, b) => mentions_currency(a) || mentions_currency(b),
        ExprKind::Not(x) | ExprKind::Paren(x) => mentions_currency(x),
        ExprKind::Compare { lhs, rhs, .. } | ExprKind::Has { lhs, rhs } => {
            mentions_currency(lhs) || mentions_currency(rhs)
        }
        ExprKind::In { lhs, list } => mentions_currency(lhs) || list.iter().any(mentions_currency),
        ExprKind::Name(p) => p.len() == 1 && p[0].node == "currency",
        ExprKind::Rhai(_) | ExprKind::Literal(_) => false,
    }
}

fn collect_foreign(e: &Expr, cur: &str, out: &mut Vec<(Span, String)>) {
    match &e.kind {
        ExprKind::Or(a, b) | ExprKind::And(a, b) => {
            collect_foreign(a, cur, out);
            collect_foreign(b, cur, out);
        }
        ExprKind::Not(x) | ExprKind::Paren(x) => collect_foreign(x, cur, out),
        ExprKind::Compare { lhs, rhs, .. } | ExprKind::Has { lhs, rhs } => {
            collect_foreign(lhs, cur, out);
            collect_foreign(rhs, cur, out);
        }
        ExprKind::In { lhs, list } => {
            collect_foreign(lhs, cur, out);
            for x in list {
                collect_foreign(x, cur, out);
            }
        }
        ExprKind::Literal(Literal::Money(m))
            if m.currency.node != cur && iso_currency::Currency::from_code(&m.currency.node).is_some() =>
        {
            out.push((m.span, m.currency.node.clone()));
        }
        _ => {}
    }
}
