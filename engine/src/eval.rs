//! Evaluation: a [`Program`], a [`Portfolio`], a date and a [`History`] → a [`Plan`]
//! (SPEC section 3). Customers are independent: each is evaluated on its own (in parallel),
//! and an error for one customer goes into the plan without touching the others.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use chrono::{Days, NaiveDate};
use iso_currency::Currency;
use rayon::prelude::*;
use relance_dsl::ast::{CatchUp, EventKind};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use crate::calendar::{Calendar, add_business_days, next_business_day};
use crate::compile::{CompiledAction, CompiledScenario, CompiledStep, FeeRule, Program, Selector};
use crate::cond::{EvalCtx, InvoiceFacts, Trace};
use crate::datefmt::Ymd;
use crate::fxhash::Fx;
use crate::history::History;
use crate::model::{Customer, Invoice, Payment, PaymentKind, Portfolio};
use crate::money;
use crate::plan::{Action, NextAction, Plan, PlanError, SkipStatus, Skipped, Unassigned};

/// Evaluates `portfolio` as of `as_of` (see [`crate::Engine::evaluate`]).
pub fn evaluate(program: &Program, portfolio: &Portfolio, as_of: NaiveDate, history: &dyn History) -> Plan {
    let ev = Evaluator::new(program, portfolio, as_of, history);
    let all = ev.batch(0..ev.len(), Mode::ALL);
    let mut plan = Plan {
        as_of,
        scenarios_hash: program.hash.clone(),
        actions: all.actions,
        skipped: all.skipped,
        unassigned: all.unassigned,
        errors: all.errors,
        next: all.next,
        warnings: portfolio.warnings.clone(),
    };
    plan.errors.extend(ev.input_errors.iter().cloned());
    finish_lists(&mut plan.unassigned, &mut plan.errors, &mut plan.next);
    plan
}

/// Sorts the customer-level lists of a plan (actions and skipped come out of
/// [`Evaluator::batch`] already in plan order).
pub(crate) fn finish_lists(unassigned: &mut [Unassigned], errors: &mut [PlanError], next: &mut [NextAction]) {
    unassigned.sort_by(|a, b| a.customer.cmp(&b.customer));
    errors.sort_by(|a, b| (&a.customer, &a.invoice, &a.message).cmp(&(&b.customer, &b.invoice, &b.message)));
    next.sort_by(|a, b| a.customer.cmp(&b.customer));
}

fn action_cmp(a: &Action, b: &Action) -> std::cmp::Ordering {
    (a.date, &a.customer, step_order(&a.step), &a.channel, &a.template, &a.id).cmp(&(
        b.date,
        &b.customer,
        step_order(&b.step),
        &b.channel,
        &b.template,
        &b.id,
    ))
}

fn skipped_cmp(a: &Skipped, b: &Skipped) -> std::cmp::Ordering {
    (&a.customer, &a.invoice, step_order(&a.step), &a.scenario, a.status).cmp(&(
        &b.customer,
        &b.invoice,
        step_order(&b.step),
        &b.scenario,
        b.status,
    ))
}

/// Which parts of the outcome to build. Streaming output evaluates twice (actions first, then
/// skipped steps) so that neither list of a large portfolio is held whole in memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mode {
    pub(crate) actions: bool,
    pub(crate) skipped: bool,
}

impl Mode {
    pub(crate) const ALL: Mode = Mode { actions: true, skipped: true };
}

/// A portfolio indexed for evaluation: customers in id order, each with its invoices, and
/// payments grouped by invoice. Built once; [`Evaluator::batch`] evaluates any range of
/// customers (in id order), so a caller can stream the plan in bounded memory.
pub(crate) struct Evaluator<'p> {
    program: &'p Program,
    portfolio: &'p Portfolio,
    as_of: NaiveDate,
    history: &'p dyn History,
    /// Customer indices sorted by id (stable: equal ids keep portfolio order).
    order: Vec<u32>,
    /// For each customer index, the group (first customer with that id) holding its invoices.
    group_of: Vec<u32>,
    /// Invoice indices of group `g` are `inv_idx[inv_start[g]..inv_start[g + 1]]`.
    inv_start: Vec<u32>,
    inv_idx: Vec<u32>,
    /// Payment indices sorted by invoice id, then date.
    pay_idx: Vec<u32>,
    /// For each invoice (by index), its range in `pay_idx`: looked up once, in invoice order
    /// (cache-friendly), instead of hashing ids in the customers' random order.
    pay_of: Vec<(u32, u32)>,
    /// Some customer ids repeat: batches are then sorted as a whole.
    duplicates: bool,
    /// Invoices that name an unknown customer.
    pub(crate) input_errors: Vec<PlanError>,
    /// The program's calendar, with business days precomputed around the invoices' due dates.
    calendar: DayCache<'p>,
}

/// A calendar whose answers are precomputed over a window of days (real calendars compute
/// the year's holidays on every question); outside the window it asks the calendar.
#[derive(Debug)]
struct DayCache<'p> {
    inner: &'p dyn Calendar,
    first: NaiveDate,
    business: Vec<bool>,
}

impl<'p> DayCache<'p> {
    fn new(inner: &'p dyn Calendar, invoices: &[Invoice], as_of: NaiveDate) -> Self {
        let lo = invoices.iter().map(|i| i.due_date).min().unwrap_or(as_of).min(as_of);
        let hi = invoices.iter().map(|i| i.due_date).max().unwrap_or(as_of).max(as_of);
        let first = lo.checked_sub_days(Days::new(400)).unwrap_or(lo);
        let last = hi.checked_add_days(Days::new(1200)).unwrap_or(hi);
        let span = (last - first).num_days();
        let business = if (0..=40_000).contains(&span) {
            first.iter_days().take(span as usize + 1).map(|d| inner.is_business_day(d)).collect()
        } else {
            Vec::new()
        };
        DayCache { inner, first, business }
    }
}

impl Calendar for DayCache<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn is_business_day(&self, date: NaiveDate) -> bool {
        let i = (date - self.first).num_days();
        match usize::try_from(i).ok().and_then(|i| self.business.get(i)) {
            Some(b) => *b,
            None => self.inner.is_business_day(date),
        }
    }
}

impl<'p> Evaluator<'p> {
    pub(crate) fn new(program: &'p Program, portfolio: &'p Portfolio, as_of: NaiveDate, history: &'p dyn History) -> Self {
        let customers = &portfolio.customers;
        let mut group: HashMap<&str, u32, Fx> = HashMap::with_capacity_and_hasher(customers.len(), Fx);
        let mut group_of = Vec::with_capacity(customers.len());
        let mut duplicates = false;
        for (i, c) in customers.iter().enumerate() {
            let g = *group.entry(c.id.as_str()).or_insert(i as u32);
            duplicates |= g != i as u32;
            group_of.push(g);
        }
        // Counting sort of invoices by group, keeping portfolio order within a group.
        let mut inv_group: Vec<u32> = Vec::with_capacity(portfolio.invoices.len());
        let mut counts = vec![0u32; customers.len() + 1];
        let mut input_errors = Vec::new();
        for inv in &portfolio.invoices {
            match group.get(inv.customer_id.as_str()) {
                Some(&g) => {
                    counts[g as usize + 1] += 1;
                    inv_group.push(g);
                }
                None => {
                    inv_group.push(u32::MAX);
                    input_errors.push(PlanError {
                        customer: inv.customer_id.to_string(),
                        invoice: Some(inv.id.to_string()),
                        scenario: None,
                        step: None,
                        message: format!(
                            "invoice `{}` names customer `{}`, which is not in the portfolio",
                            inv.id, inv.customer_id
                        ),
                    });
                }
            }
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        let inv_start = counts.clone();
        let mut fill = counts;
        let mut inv_idx = vec![0u32; inv_start.last().copied().unwrap_or(0) as usize];
        for (i, g) in inv_group.iter().enumerate() {
            if *g != u32::MAX {
                let slot = &mut fill[*g as usize];
                inv_idx[*slot as usize] = i as u32;
                *slot += 1;
            }
        }
        drop(inv_group);
        let mut order: Vec<u32> = (0..customers.len() as u32).collect();
        order.par_sort_by(|a, b| customers[*a as usize].id.cmp(&customers[*b as usize].id).then(a.cmp(b)));

        let pays = &portfolio.payments;
        let mut pay_idx: Vec<u32> = (0..pays.len() as u32).collect();
        pay_idx.par_sort_by(|a, b| {
            let (pa, pb) = (&pays[*a as usize], &pays[*b as usize]);
            (pa.invoice_id.as_str(), pa.date, a).cmp(&(pb.invoice_id.as_str(), pb.date, b))
        });
        let mut pay_of: HashMap<&str, (u32, u32), Fx> = HashMap::with_capacity_and_hasher(pays.len(), Fx);
        let mut start = 0usize;
        while start < pay_idx.len() {
            let id = pays[pay_idx[start] as usize].invoice_id.as_str();
            let mut end = start + 1;
            while end < pay_idx.len() && pays[pay_idx[end] as usize].invoice_id == id {
                end += 1;
            }
            pay_of.insert(id, (start as u32, end as u32));
            start = end;
        }
        let pay_of: Vec<(u32, u32)> = if pay_of.is_empty() {
            Vec::new()
        } else {
            portfolio.invoices.par_iter().map(|inv| pay_of.get(inv.id.as_str()).copied().unwrap_or((0, 0))).collect()
        };
        let calendar = DayCache::new(program.settings.calendar.as_ref(), &portfolio.invoices, as_of);
        Evaluator {
            program,
            portfolio,
            as_of,
            history,
            order,
            group_of,
            inv_start,
            inv_idx,
            pay_idx,
            pay_of,
            duplicates,
            input_errors,
            calendar,
        }
    }

    /// Number of customers.
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    /// Splits the customers (in id order) into ranges of about `size`, never splitting
    /// customers that share an id.
    pub(crate) fn batches(&self, size: usize) -> Vec<std::ops::Range<usize>> {
        let id = |k: usize| self.portfolio.customers[self.order[k] as usize].id.as_str();
        let mut out = Vec::new();
        let mut start = 0;
        while start < self.order.len() {
            let mut end = (start + size.max(1)).min(self.order.len());
            while end < self.order.len() && id(end) == id(end - 1) {
                end += 1;
            }
            out.push(start..end);
            start = end;
        }
        out
    }

    fn payments(&self, invoice: u32) -> impl Iterator<Item = &'p Payment> + '_ {
        let (a, b) = self.pay_of.get(invoice as usize).copied().unwrap_or((0, 0));
        let pays = &self.portfolio.payments;
        self.pay_idx[a as usize..b as usize].iter().map(move |i| &pays[*i as usize])
    }

    /// Evaluates customers `range` (positions in id order), in parallel. The actions and
    /// skipped steps come out in plan order.
    pub(crate) fn batch(&self, range: std::ops::Range<usize>, mode: Mode) -> Outcome {
        let outcomes: Vec<Outcome> = self.order[range]
            .par_iter()
            .map(|&ci| {
                let c = &self.portfolio.customers[ci as usize];
                let g = self.group_of[ci as usize] as usize;
                let idx = &self.inv_idx[self.inv_start[g] as usize..self.inv_start[g + 1] as usize];
                let e = CustomerEval { program: self.program, customer: c, as_of: self.as_of, history: self.history, mode, ev: self };
                let mut out = Outcome::default();
                match e.run(idx, &mut out) {
                    Ok(()) => {
                        out.actions.sort_by(action_cmp);
                        out.skipped.sort_by(skipped_cmp);
                        out
                    }
                    Err(err) => Outcome { errors: vec![err], ..Outcome::default() },
                }
            })
            .collect();
        let mut all = Outcome {
            actions: Vec::with_capacity(outcomes.iter().map(|o| o.actions.len()).sum()),
            skipped: Vec::with_capacity(outcomes.iter().map(|o| o.skipped.len()).sum()),
            ..Outcome::default()
        };
        for o in outcomes {
            all.actions.extend(o.actions);
            all.skipped.extend(o.skipped);
            all.unassigned.extend(o.unassigned);
            all.errors.extend(o.errors);
            all.next.extend(o.next);
        }
        if self.duplicates {
            all.actions.sort_by(action_cmp);
            all.skipped.sort_by(skipped_cmp);
        }
        all
    }
}

/// Sort key of a step label: offsets in numeric order, events after them.
fn step_order(step: &str) -> (i64, &str) {
    let n = step
        .strip_prefix('D')
        .and_then(|rest| if rest.is_empty() { Some(0) } else { rest.trim_start_matches('+').parse::<i64>().ok() });
    match n {
        Some(n) => (n, ""),
        None => (i64::MAX, step),
    }
}

/// What the evaluation of some customers produced.
#[derive(Default)]
pub(crate) struct Outcome {
    pub(crate) actions: Vec<Action>,
    pub(crate) skipped: Vec<Skipped>,
    pub(crate) unassigned: Vec<Unassigned>,
    pub(crate) errors: Vec<PlanError>,
    pub(crate) next: Vec<NextAction>,
}

/// Facts about one invoice on the as-of date.
struct Facts<'a> {
    invoice: &'a Invoice,
    outstanding: Decimal,
    /// `(from, amount)` changes of the outstanding amount, for interest: a range of the
    /// customer's balance buffer (one allocation per customer, not per invoice).
    balance: (u32, u32),
    /// The date the invoice became fully paid, when it is.
    paid_on: Option<NaiveDate>,
    days_late: i64,
    reminders_sent: u32,
    promise_to_pay: bool,
    /// Amount paid on or before the promise date.
    paid_by_promise: Decimal,
}

/// One step (or event) emitted for one invoice, before grouping.
struct Emission<'a> {
    invoice: usize,
    label: String,
    key: String,
    offset: i64,
    action: &'a CompiledAction,
    carried: Vec<&'a CompiledStep>,
    fees: Decimal,
    fee_notes: Vec<String>,
    interest: Decimal,
    interest_note: Option<String>,
    warnings: Vec<String>,
    trace: Vec<String>,
}

struct CustomerEval<'a> {
    program: &'a Program,
    customer: &'a Customer,
    as_of: NaiveDate,
    history: &'a dyn History,
    mode: Mode,
    ev: &'a Evaluator<'a>,
}

type Res<T> = Result<T, PlanError>;

impl<'a> CustomerEval<'a> {
    fn err(&self, scenario: Option<&str>, invoice: Option<&str>, step: Option<&str>, message: String) -> PlanError {
        PlanError {
            customer: self.customer.id.to_string(),
            invoice: invoice.map(str::to_owned),
            scenario: scenario.map(str::to_owned),
            step: step.map(str::to_owned),
            message,
        }
    }

    fn facts(&self, index: u32, balance: &mut Vec<(NaiveDate, Decimal)>) -> Facts<'a> {
        let inv = &self.ev.portfolio.invoices[index as usize];
        let t = self.as_of;
        let first = balance.len() as u32;
        let mut list = self.ev.payments(index).peekable();
        let (outstanding, paid_on, paid_by_promise) = match list.peek() {
            Some(_) => {
                let mut open = inv.amount;
                let mut paid_on = None;
                let mut paid_by_promise = Decimal::ZERO;
                balance.push((inv.issue_date.unwrap_or(inv.due_date).min(inv.due_date), open));
                for p in list.filter(|p| p.date <= t) {
                    open -= p.amount;
                    if inv.promise_date.is_some_and(|d| p.date <= d) && p.kind == PaymentKind::Payment {
                        paid_by_promise += p.amount;
                    }
                    balance.push((p.date, open.max(Decimal::ZERO)));
                    if open <= Decimal::ZERO && paid_on.is_none() {
                        paid_on = Some(p.date);
                    }
                }
                (open, paid_on, paid_by_promise)
            }
            _ => {
                let open = inv.outstanding.unwrap_or(inv.amount);
                balance.push((inv.issue_date.unwrap_or(inv.due_date).min(inv.due_date), open));
                let paid_by_promise = inv.amount - open;
                (open, if open <= Decimal::ZERO { Some(t) } else { None }, paid_by_promise)
            }
        };
        let days_late = (t - inv.due_date).num_days().max(0);
        Facts {
            invoice: inv,
            outstanding,
            balance: (first, balance.len() as u32),
            paid_on,
            days_late,
            reminders_sent: self.history.reminders_sent(&inv.id),
            promise_to_pay: inv.promise_date.is_some_and(|d| d >= t) && outstanding > Decimal::ZERO,
            paid_by_promise,
        }
    }

    fn ctx<'b>(&'b self, facts: Option<&'b Facts<'a>>, balances: &BalanceBook) -> EvalCtx<'b>
    where
        'a: 'b,
    {
        let currency = facts
            .map(|f| f.invoice.currency)
            .or(balances.main_currency)
            .or(self.program.settings.default_currency)
            .unwrap_or(Currency::EUR);
        let (balance, overdue) = balances.of(currency);
        EvalCtx {
            customer: self.customer,
            invoice: facts.map(|f| InvoiceFacts {
                invoice: f.invoice,
                outstanding: f.outstanding,
                days_late: f.days_late,
                reminded: f.reminders_sent > 0,
                reminders_sent: f.reminders_sent,
                promise_to_pay: f.promise_to_pay,
            }),
            balance,
            overdue_balance: overdue,
            currency,
            as_of: self.as_of,
            scripts: &self.program.scripts,
            compiled_scripts: &self.program.compiled_scripts,
        }
    }

    fn run(&self, invoices: &[u32], out: &mut Outcome) -> Res<()> {
        let t = self.as_of;
        let mut balances = Vec::with_capacity(invoices.len() + 2);
        let facts: Vec<Facts<'a>> = invoices.iter().map(|i| self.facts(*i, &mut balances)).collect();
        let mut book = BalanceBook::default();
        for f in facts.iter().filter(|f| f.outstanding > Decimal::ZERO) {
            book.add(f.invoice.currency, f.outstanding, f.invoice.due_date < t);
        }
        let open_count = facts.iter().filter(|f| f.outstanding > Decimal::ZERO).count();

        // 1. Scenario selection: the first whose selector matches.
        let mut chosen: Option<&'a CompiledScenario> = None;
        // In file order; `for others` is the fallback wherever it is written.
        let ordered = self
            .program
            .scenarios
            .iter()
            .filter(|s| !matches!(s.selector, Selector::Others))
            .chain(self.program.scenarios.iter().filter(|s| matches!(s.selector, Selector::Others)));
        for s in ordered {
            let matches = match &s.selector {
                Selector::Segments(set) => set.contains(self.customer.segment.as_str()),
                Selector::Others => true,
                Selector::Where(c, text) => {
                    let ctx = self.ctx(None, &book);
                    c.eval(&ctx, &mut None).map_err(|e| {
                        self.err(Some(&s.name), None, None, format!("selector `{text}` of scenario `{}`: {e}", s.name))
                    })?
                }
            };
            if matches {
                chosen = Some(s);
                break;
            }
        }
        let Some(scenario) = chosen else {
            if open_count > 0 {
                out.unassigned.push(Unassigned {
                    customer: self.customer.id.to_string(),
                    segment: self.customer.segment.to_string(),
                    open_invoices: open_count,
                    reason: format!(
                        "no scenario selects segment `{}`; add it to a `for segment` list or add a `for others` scenario",
                        self.customer.segment
                    ),
                });
            }
            return Ok(());
        };

        // 2. Minimum balance (applies to balances in the minimum's currency).
        let below_minimum = match self.program.settings.minimum_balance {
            Some((min, cur)) if book.has(cur) && book.of(cur).0 < min => Some((min, cur, book.of(cur).0)),
            _ => None,
        };

        // 3. Cooldown.
        let cooldown = self.program.settings.cooldown_days;
        let deferred_until = match self.history.last_contact(&self.customer.id) {
            Some(last) if cooldown > 0 => {
                let until = last.checked_add_days(Days::new(u64::from(cooldown))).unwrap_or(last);
                (until > t).then_some((last, until))
            }
            _ => None,
        };

        let mut emissions: Vec<Emission<'a>> = Vec::new();
        // Scratch buffers reused across the customer's invoices.
        let mut done: Vec<bool> = Vec::with_capacity(scenario.steps.len());
        let mut reached: Vec<(&'a CompiledStep, NaiveDate)> = Vec::with_capacity(scenario.steps.len());
        let mut next_on: Option<NaiveDate> = None;
        let bump_next = |d: NaiveDate, next_on: &mut Option<NaiveDate>| {
            if d > t && next_on.is_none_or(|n| d < n) {
                *next_on = Some(d);
            }
        };

        for (idx, f) in facts.iter().enumerate() {
            let inv = f.invoice;
            let ctx = self.ctx(Some(f), &book);
            let open = f.outstanding > Decimal::ZERO;

            // Events first: they concern paid invoices too.
            for ev in &scenario.events {
                let (fires, key) = match ev.kind {
                    EventKind::AfterPayment => {
                        let fires = !open && f.reminders_sent > 0 && f.paid_on.is_some_and(|d| d <= t);
                        (fires, ev.key.clone())
                    }
                    EventKind::BrokenPromise => match inv.promise_date {
                        Some(pd) if open => {
                            let promised = inv.promise_amount.unwrap_or(inv.amount);
                            let kept = f.paid_by_promise >= promised;
                            if pd >= t
                                && let Some(d) = pd.succ_opt()
                            {
                                bump_next(d, &mut next_on);
                            }
                            (pd < t && !kept, format!("{} {pd}", ev.key))
                        }
                        _ => (false, String::new()),
                    },
                };
                if !fires || self.history.step_done(&inv.id, &scenario.name, &key).is_some() {
                    continue;
                }
                if let Some((status, reason)) = self.blocking_rule(scenario, f, &ctx, Some(&ev.label))? {
                    self.skip(out, scenario, inv, &ev.label, status, || reason, None);
                    continue;
                }
                let mut trace = Trace::default();
                if let Some((c, text)) = &ev.action.condition {
                    let holds = c.eval(&ctx, &mut Some(&mut trace)).map_err(|e| {
                        self.err(Some(&scenario.name), Some(&inv.id), Some(&ev.label), format!("condition `{text}`: {e}"))
                    })?;
                    if !holds {
                        continue;
                    }
                }
                let mut em = Emission {
                    invoice: idx,
                    label: ev.label.clone(),
                    key,
                    offset: i64::MAX,
                    action: &ev.action,
                    carried: Vec::new(),
                    fees: Decimal::ZERO,
                    fee_notes: Vec::new(),
                    interest: Decimal::ZERO,
                    interest_note: None,
                    warnings: Vec::new(),
                    trace: trace.entries,
                };
                self.charge(scenario, f, &balances, &mut em)?;
                emissions.push(em);
            }

            if !open {
                continue;
            }

            // Steps: which are reached (trigger ≤ T) and not done.
            let cal = &self.ev.calendar;
            done.clear();
            done.extend(scenario.steps.iter().map(|s| self.history.step_done(&inv.id, &scenario.name, &s.key).is_some()));
            let last_done = scenario.steps.iter().zip(&done).filter(|(_, d)| **d).map(|(s, _)| s.offset).max();
            reached.clear();
            for (step, is_done) in scenario.steps.iter().zip(&done) {
                if *is_done || last_done.is_some_and(|l| step.offset < l) {
                    continue;
                }
                let raw = if scenario.business_days {
                    add_business_days(cal, inv.due_date, step.offset)
                } else {
                    shift(inv.due_date, step.offset)
                };
                let trigger = next_business_day(cal, raw);
                if trigger > t {
                    bump_next(trigger, &mut next_on);
                    continue;
                }
                if step.offset < 0 && t > inv.due_date {
                    self.skip(out, scenario, inv, &step.label, SkipStatus::Expired, || format!(
                        "{} {} \"{}\" was planned for {}, before the due date {}; the due date has passed",
                        step.label, step.action.channel, step.action.template, Ymd(trigger), Ymd(inv.due_date)
                    ), None);
                    continue;
                }
                reached.push((step, trigger));
            }
            if reached.is_empty() {
                continue;
            }
            // Stop and pause rules, then the minimum balance.
            if let Some((status, reason)) = self.blocking_rule(scenario, f, &ctx, None)? {
                for (step, _) in &reached {
                    self.skip(out, scenario, inv, &step.label, status, || reason.clone(), None);
                }
                continue;
            }
            if let Some((min, cur, bal)) = below_minimum {
                for (step, _) in &reached {
                    self.skip(out, scenario, inv, &step.label, SkipStatus::BelowMinimum, || format!(
                        "customer balance {} {} is below the minimum balance {} {}",
                        money::round(bal, cur), cur.code(), min, cur.code()
                    ), None);
                }
                continue;
            }
            // Conditions.
            let mut due: Vec<(&'a CompiledStep, NaiveDate, Vec<String>)> = Vec::with_capacity(reached.len());
            for &(step, trigger) in &reached {
                let mut trace = Trace::default();
                if let Some((c, text)) = &step.action.condition {
                    let holds = c.eval(&ctx, &mut Some(&mut trace)).map_err(|e| {
                        self.err(Some(&scenario.name), Some(&inv.id), Some(&step.label), format!("condition `{text}`: {e}"))
                    })?;
                    if !holds {
                        self.skip(out, scenario, inv, &step.label, SkipStatus::ConditionFalse, || format!(
                            "condition `{text}` does not hold ({})", trace.entries.join(", ")
                        ), None);
                        continue;
                    }
                }
                due.push((step, trigger, trace.entries));
            }
            if due.is_empty() {
                continue;
            }
            // Cooldown.
            if let Some((last, until)) = deferred_until {
                for (step, _, _) in &due {
                    self.skip(out, scenario, inv, &step.label, SkipStatus::Deferred, || format!(
                        "customer was contacted on {last}; cooldown of {cooldown} days allows a new contact from {until}"
                    ), Some(until));
                }
                bump_next(until, &mut next_on);
                continue;
            }
            // Catch-up.
            let (emit_idx, superseded_reason): (usize, &str) = match scenario.catch_up {
                CatchUp::Latest => (due.len() - 1, "catch up latest"),
                CatchUp::Stepwise => (0, "catch up stepwise"),
            };
            let mut carried = Vec::new();
            for (i, (step, trigger, _)) in due.iter().enumerate() {
                if i == emit_idx {
                    continue;
                }
                let (emitted, _, _) = &due[emit_idx];
                if scenario.catch_up == CatchUp::Latest {
                    carried.push(*step);
                }
                let trigger = Ymd(*trigger);
                let reason = || match scenario.catch_up {
                    CatchUp::Latest => format!(
                        "{superseded_reason}: {} (due {trigger}) is replaced by {}; its fees and interest are carried into it",
                        step.label, emitted.label
                    ),
                    CatchUp::Stepwise => format!(
                        "{superseded_reason}: {} goes first; {} (due {trigger}) follows on a later run",
                        emitted.label, step.label
                    ),
                };
                self.skip(out, scenario, inv, &step.label, SkipStatus::Superseded, reason, None);
                if scenario.catch_up == CatchUp::Stepwise
                    && let Some(d) = t.succ_opt()
                {
                    bump_next(d, &mut next_on);
                }
            }
            let (step, trigger, trace) = due.swap_remove(emit_idx);
            let mut em = Emission {
                invoice: idx,
                label: step.label.clone(),
                key: step.key.clone(),
                offset: i64::from(step.offset),
                action: &step.action,
                carried,
                fees: Decimal::ZERO,
                fee_notes: Vec::new(),
                interest: Decimal::ZERO,
                interest_note: None,
                warnings: Vec::new(),
                trace,
            };
            em.trace.insert(0, format!("triggered on {}", Ymd(trigger)));
            self.charge(scenario, f, &balances, &mut em)?;
            emissions.push(em);
        }

        self.group(out, scenario, &facts, emissions);
        out.next.push(NextAction { customer: self.customer.id.to_string(), next_action_on: next_on });
        Ok(())
    }

    /// The first `stop when` / `pause when` rule that holds for this invoice, with its status
    /// and reason (the values it read; only built when skipped steps are wanted). `step` names
    /// the event or step in an error message.
    fn blocking_rule(
        &self,
        s: &'a CompiledScenario,
        f: &Facts<'a>,
        ctx: &EvalCtx<'_>,
        step: Option<&str>,
    ) -> Res<Option<(SkipStatus, String)>> {
        for (status, rules) in [(SkipStatus::Stopped, &s.stops), (SkipStatus::Paused, &s.pauses)] {
            for (c, text) in rules {
                let fail = |e: String| self.err(Some(&s.name), Some(&f.invoice.id), step, format!("rule `{text}`: {e}"));
                if !c.eval(ctx, &mut None).map_err(fail)? {
                    continue;
                }
                if !self.mode.skipped {
                    return Ok(Some((status, String::new())));
                }
                // The values read, for the reason (conditions have no side effects).
                let mut trace = Trace::default();
                c.eval(ctx, &mut Some(&mut trace)).map_err(fail)?;
                let verb = if status == SkipStatus::Stopped { "stop" } else { "pause" };
                return Ok(Some((status, format!("{verb} when `{text}` holds ({})", trace.entries.join(", ")))));
            }
        }
        Ok(None)
    }

    /// Lists a skipped step. The reason is only built when skipped steps are wanted.
    #[allow(clippy::too_many_arguments)]
    fn skip(
        &self,
        out: &mut Outcome,
        s: &CompiledScenario,
        inv: &Invoice,
        step: &str,
        status: SkipStatus,
        reason: impl FnOnce() -> String,
        until: Option<NaiveDate>,
    ) {
        if !self.mode.skipped {
            return;
        }
        let reason = reason();
        out.skipped.push(Skipped {
            customer: self.customer.id.to_string(),
            invoice: inv.id.to_string(),
            scenario: s.name.clone(),
            step: step.to_owned(),
            status,
            reason,
            until,
        });
    }

    /// Fees and interest of the emitted step and of the steps it carries.
    fn charge(&self, s: &CompiledScenario, f: &Facts<'a>, balances: &[(NaiveDate, Decimal)], em: &mut Emission<'a>) -> Res<()> {
        let inv = f.invoice;
        let cur = inv.currency;
        let mut legal_charged = s.steps.iter().any(|st| {
            st.action.fees.iter().any(|r| matches!(r, FeeRule::Legal(_)))
                && self.history.step_done(&inv.id, &s.name, &st.key).is_some()
        });
        let mut interest_rule = None;
        let sources: Vec<(&str, &CompiledAction)> = std::iter::once((em.label.as_str(), em.action))
            .chain(em.carried.iter().map(|c| (c.label.as_str(), &c.action)))
            .collect();
        for (label, action) in &sources {
            for fee in &action.fees {
                match fee {
                    FeeRule::Legal(law) => {
                        if legal_charged {
                            continue;
                        }
                        if law.currency() != cur {
                            return Err(self.err(Some(&s.name), Some(&inv.id), Some(&em.label), format!(
                                "`fee legal` of law `{}` is in {} but invoice `{}` is in {}; no exchange rate is configured",
                                law.name(), law.currency().code(), inv.id, cur.code()
                            )));
                        }
                        let fee = law.recovery_fee(inv.amount);
                        em.fees += fee;
                        if self.mode.actions {
                            em.fee_notes.push(format!("{} {} legal recovery fee ({}, {label})", money::round(fee, cur), cur.code(), law.name()));
                        }
                        legal_charged = true;
                    }
                    FeeRule::Amount(a, fc) => {
                        if *fc != cur {
                            return Err(self.err(Some(&s.name), Some(&inv.id), Some(&em.label), format!(
                                "fee of {a} {} cannot be charged on invoice `{}` in {}; no exchange rate is configured",
                                fc.code(), inv.id, cur.code()
                            )));
                        }
                        em.fees += *a;
                        if self.mode.actions {
                            em.fee_notes.push(format!("{} {} fee ({label})", money::round(*a, cur), cur.code()));
                        }
                    }
                }
            }
            if interest_rule.is_none() {
                interest_rule = action.interest.as_ref();
            }
        }
        if let Some(rule) = interest_rule {
            let first = inv.due_date.succ_opt().unwrap_or(inv.due_date);
            let last = self.as_of;
            if last >= first {
                let periods = rule
                    .schedule
                    .periods(first, last, self.program.settings.assume_unchanged)
                    .map_err(|e| {
                        let help = miette::Diagnostic::help(&e).map(|h| format!("; {h}")).unwrap_or_default();
                        self.err(Some(&s.name), Some(&inv.id), Some(&em.label), format!("interest {}: {e}{help}", rule.label))
                    })?;
                let mut shifted = periods;
                for p in &mut shifted {
                    p.percent += rule.points;
                    if let Some(w) = &p.assumed {
                        em.warnings.push(w.clone());
                    }
                }
                if !self.mode.actions {
                    return Ok(());
                }
                let raw = money::simple_interest(first, last, &balances[f.balance.0 as usize..f.balance.1 as usize], &shifted);
                em.interest = money::round(raw, cur);
                let rates: Vec<String> = shifted.iter().map(|p| format!("{}% from {} to {}", p.percent, Ymd(p.from), Ymd(p.to))).collect();
                em.interest_note = Some(format!(
                    "{} {} interest at {} from {} to {} ({})",
                    em.interest, cur.code(), rule.label, Ymd(first), Ymd(last), rates.join(", ")
                ));
            }
        }
        Ok(())
    }

    fn group(&self, out: &mut Outcome, s: &CompiledScenario, facts: &[Facts<'a>], emissions: Vec<Emission<'a>>) {
        if !self.mode.actions {
            return;
        }
        let mut groups: BTreeMap<(String, Currency, Option<usize>), Vec<Emission<'a>>> = BTreeMap::new();
        for em in emissions {
            let cur = facts.get(em.invoice).map(|f| f.invoice.currency).unwrap_or(Currency::EUR);
            let per = em.action.per_invoice.then_some(em.invoice);
            groups.entry((em.key.clone(), cur, per)).or_default().push(em);
        }
        for ((key, cur, _), mut ems) in groups {
            ems.sort_by(|a, b| {
                let ia = facts.get(a.invoice).map(|f| f.invoice.id.as_str());
                let ib = facts.get(b.invoice).map(|f| f.invoice.id.as_str());
                ia.cmp(&ib)
            });
            let Some(first) = ems.first() else { continue };
            let action = first.action;
            let label = first.label.clone();
            let offset = first.offset;
            let mut invoices = Vec::new();
            let mut outstanding = Decimal::ZERO;
            let mut fees = Decimal::ZERO;
            let mut interest = Decimal::ZERO;
            let mut carried: Vec<String> = Vec::new();
            let mut warnings: Vec<String> = Vec::new();
            let mut reason = String::new();
            let _ = write!(reason, "scenario \"{}\", step {label} {} \"{}\"", s.name, action.channel, action.template);
            for em in &ems {
                let Some(f) = facts.get(em.invoice) else { continue };
                invoices.push(f.invoice.id.to_string());
                outstanding += f.outstanding;
                fees += em.fees;
                interest += em.interest;
                for c in &em.carried {
                    if !carried.contains(&c.key) {
                        carried.push(c.key.clone());
                    }
                }
                for w in &em.warnings {
                    if !warnings.contains(w) {
                        warnings.push(w.clone());
                    }
                }
                let _ = write!(
                    reason,
                    "; invoice {} due {}, {} days late, outstanding {} {}",
                    f.invoice.id,
                    Ymd(f.invoice.due_date),
                    f.days_late,
                    money::round(f.outstanding, cur),
                    cur.code()
                );
                if !em.trace.is_empty() {
                    let _ = write!(reason, " ({})", em.trace.join(", "));
                }
                if let Some((_, text)) = &action.condition {
                    let _ = write!(reason, "; condition `{text}` holds");
                }
                if !em.carried.is_empty() {
                    let labels: Vec<&str> = em.carried.iter().map(|c| c.label.as_str()).collect();
                    let _ = write!(reason, "; carries superseded {}", labels.join(", "));
                }
                for n in &em.fee_notes {
                    let _ = write!(reason, "; {n}");
                }
                if let Some(n) = &em.interest_note {
                    let _ = write!(reason, "; {n}");
                }
            }
            let hash_short: String = self.program.hash.chars().take(12).collect();
            let _ = write!(reason, "; scenarios {hash_short}");
            let id = action_id(&self.customer.id, &s.name, &key, &invoices);
            let _ = offset;
            out.actions.push(Action {
                id,
                date: self.as_of,
                customer: self.customer.id.to_string(),
                customer_name: self.customer.name.to_string(),
                scenario: s.name.clone(),
                step: label,
                step_key: key,
                channel: action.channel.clone(),
                template: action.template.clone(),
                assign: action.assign.clone(),
                invoices,
                outstanding: money::round(outstanding, cur),
                currency: cur,
                fees: money::round(fees, cur),
                interest: money::round(interest, cur),
                carried,
                reason,
                warnings,
            });
        }
    }
}

fn shift(date: NaiveDate, offset: i32) -> NaiveDate {
    let r = if offset >= 0 {
        date.checked_add_days(Days::new(u64::from(offset.unsigned_abs())))
    } else {
        date.checked_sub_days(Days::new(u64::from(offset.unsigned_abs())))
    };
    r.unwrap_or(date)
}

/// A stable id: the same customer, scenario, step and invoices give the same id on every run.
fn action_id(customer: &str, scenario: &str, step_key: &str, invoices: &[String]) -> String {
    let mut h = Sha256::new();
    for part in [customer, scenario, step_key] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    for i in invoices {
        h.update(i.as_bytes());
        h.update([0u8]);
    }
    let digest = h.finalize();
    digest.iter().take(8).fold(String::with_capacity(16), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A customer's open balances per currency.
#[derive(Default)]
struct BalanceBook {
    entries: Vec<(Currency, Decimal, Decimal)>,
    main_currency: Option<Currency>,
}

impl BalanceBook {
    fn add(&mut self, cur: Currency, amount: Decimal, overdue: bool) {
        if self.main_currency.is_none() {
            self.main_currency = Some(cur);
        }
        let od = if overdue { amount } else { Decimal::ZERO };
        match self.entries.iter_mut().find(|(c, _, _)| *c == cur) {
            Some(e) => {
                e.1 += amount;
                e.2 += od;
            }
            None => self.entries.push((cur, amount, od)),
        }
    }
    fn has(&self, cur: Currency) -> bool {
        self.entries.iter().any(|(c, _, _)| *c == cur)
    }
    fn of(&self, cur: Currency) -> (Decimal, Decimal) {
        self.entries.iter().find(|(c, _, _)| *c == cur).map_or((Decimal::ZERO, Decimal::ZERO), |(_, b, o)| (*b, *o))
    }
}
