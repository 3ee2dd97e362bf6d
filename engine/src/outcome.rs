//! What the evaluation of customers produced, before any text is written.
//!
//! The evaluator ([`crate::eval`]) fills light records that borrow the program and the
//! portfolio — no `String` per field, reasons not yet formatted. They become either the owned
//! [`Plan`](crate::plan::Plan) types ([`ActionView::to_action`], [`SkipRec::to_skipped`]) or
//! JSON bytes written straight into the output ([`ActionView::write_json`],
//! [`SkipRec::write_json`]); both take their reasons from the same `write_reason` functions
//! (through [`TextOut`]), so the two forms cannot drift apart (unit tests check that the
//! streamed JSON and the serialised plan are the same bytes).

use std::borrow::Cow;

use chrono::NaiveDate;
use iso_currency::Currency;
use relance_dsl::ast::CatchUp;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use crate::compile::{CompiledAction, CompiledScenario, CompiledStep};
use crate::eval::RateTable;
use crate::json::{JsonText, Pre, Repeat, TextOut};
use crate::law::RatePeriod;
use crate::model::{Customer, Invoice};
use crate::money;
use crate::plan::{Action, NextAction, PlanError, SkipStatus, Skipped, Unassigned};
use crate::render::{ActionFrag, Fragments};

/// The records of a run of customers (in id order), in plan order within each customer.
#[derive(Default)]
pub(crate) struct Records<'a> {
    pub(crate) actions: Vec<ActionRec<'a>>,
    /// The emissions of the actions: each action names its range (see [`ActionRec::ems`]),
    /// so that an emission is moved once, not again into its action.
    pub(crate) emissions: Vec<Emission<'a>>,
    pub(crate) skipped: Vec<SkipRec<'a>>,
    /// The skipped steps by status ([`SkipStatus`] as index), when the mode counts them
    /// instead of making their records ([`Mode::skip_records`](crate::eval::Mode)).
    pub(crate) skip_counts: [usize; SkipStatus::ALL.len()],
    /// Reasons that are not derived from the program (rule values, cooldown, minimum), shared
    /// by the skipped steps that point at them with [`Why::Text`].
    pub(crate) texts: Texts,
    /// Per customer handled by a scenario, the next date something happens.
    pub(crate) next: Vec<(&'a Customer, Option<NaiveDate>)>,
    pub(crate) unassigned: Vec<Unassigned>,
    pub(crate) errors: Vec<PlanError>,
    /// Notes of emissions already written, emptied with their room kept, for the next
    /// emissions that need notes (see [`Emission::notes_mut`]): records are reused from
    /// batch to batch, so an evaluation allocates no notes once its first batches are done.
    pub(crate) spare_notes: SpareNotes<'a>,
}

/// Where a customer's records start in [`Records`], to sort or drop them.
#[derive(Clone, Copy)]
pub(crate) struct Mark {
    actions: usize,
    emissions: usize,
    skipped: usize,
    skip_counts: [usize; SkipStatus::ALL.len()],
    texts: usize,
}

impl<'a> Records<'a> {
    /// Empty records with room for a run of a few hundred customers.
    pub(crate) fn with_capacity(mode: crate::eval::Mode) -> Self {
        Records {
            actions: Vec::with_capacity(if mode.actions { 256 } else { 0 }),
            emissions: Vec::with_capacity(if mode.actions { 256 } else { 0 }),
            skipped: Vec::with_capacity(if mode.skipped { 1024 } else { 0 }),
            next: Vec::with_capacity(256),
            ..Records::default()
        }
    }

    /// Empties the records, keeping their room (records are reused from batch to batch:
    /// growing fresh vectors each time costs copies and first touches of memory).
    pub(crate) fn clear(&mut self) {
        self.clear_written();
        self.next.clear();
        self.unassigned.clear();
        self.errors.clear();
    }

    /// New records with only the customer-level lists of these (next dates, unassigned
    /// customers, errors), taken from them.
    pub(crate) fn take_lists(&mut self) -> Records<'a> {
        Records {
            next: std::mem::take(&mut self.next),
            unassigned: std::mem::take(&mut self.unassigned),
            errors: std::mem::take(&mut self.errors),
            ..Records::default()
        }
    }

    /// Empties the lists that were written out (actions, emissions, skipped steps and their
    /// texts), keeping the customer-level lists. Called by the thread that made the records,
    /// right after writing them: their memory is freed where it was taken, which costs less
    /// than freeing it from another thread later.
    pub(crate) fn clear_written(&mut self) {
        self.actions.clear();
        recycle_notes(self.emissions.drain(..), &mut self.spare_notes);
        self.skipped.clear();
        self.skip_counts = Default::default();
        self.texts.clear();
    }

    pub(crate) fn mark(&self) -> Mark {
        Mark {
            actions: self.actions.len(),
            emissions: self.emissions.len(),
            skipped: self.skipped.len(),
            skip_counts: self.skip_counts,
            texts: self.texts.len(),
        }
    }

    /// Drops the records written since `m` (a customer whose evaluation failed).
    pub(crate) fn truncate(&mut self, m: Mark) {
        self.actions.truncate(m.actions);
        if m.emissions < self.emissions.len() {
            recycle_notes(self.emissions.drain(m.emissions..), &mut self.spare_notes);
        }
        self.skipped.truncate(m.skipped);
        self.skip_counts = m.skip_counts;
        self.texts.truncate(m.texts);
    }

    /// The actions, each with its emissions (`rates`: the rate table of the evaluator that
    /// made the records, where their interest notes' periods are).
    pub(crate) fn action_views<'r>(
        &'r self,
        rates: &'r RateTable,
    ) -> impl ExactSizeIterator<Item = ActionView<'r, 'a>> {
        self.action_views_in(rates, 0..self.actions.len())
    }

    /// [`Records::action_views`] of the actions at `range` (none when it is out of bounds).
    pub(crate) fn action_views_in<'r>(
        &'r self,
        rates: &'r RateTable,
        range: std::ops::Range<usize>,
    ) -> impl ExactSizeIterator<Item = ActionView<'r, 'a>> {
        self.actions.get(range).unwrap_or_default().iter().map(move |rec| ActionView {
            rec,
            ems: self.emissions.get(rec.ems.0 as usize..rec.ems.1 as usize).unwrap_or(&[]),
            rates,
        })
    }

    /// Puts the records of one customer, written since `m`, in plan order. Within a
    /// customer the date, customer and scenario are the same, and the rank of an invoice
    /// orders as its id (see [`SkipRec::rank`]).
    pub(crate) fn sort_since(&mut self, m: Mark) {
        // The records come mostly in order (invoices in id order, steps by offset): the sort
        // is mostly its comparisons, which compare integers first.
        if let Some(a) = self.actions.get_mut(m.actions..) {
            a.sort_by(|a, b| {
                step_key_cmp(a.order, b.order).then_with(|| {
                    (&a.action.channel, &a.action.template, &a.id).cmp(&(&b.action.channel, &b.action.template, &b.id))
                })
            });
        }
        if let Some(s) = self.skipped.get_mut(m.skipped..) {
            s.sort_by(skipped_in_customer_cmp);
        }
    }

    /// Whether the skipped steps since `m` are in the order [`Records::sort_since`] gives.
    pub(crate) fn is_sorted_since(&self, m: Mark) -> bool {
        self.skipped.get(m.skipped..).is_some_and(|s| s.is_sorted_by(|a, b| skipped_in_customer_cmp(a, b).is_le()))
    }

    /// Puts all records in plan order (customers sharing an id were evaluated apart).
    pub(crate) fn sort_all(&mut self) {
        self.actions.sort_by(action_cmp);
        self.skipped.sort_by(skipped_cmp);
    }

    /// Appends the records of the customers after these, keeping text references.
    pub(crate) fn append(&mut self, other: Records<'a>) {
        let base = self.texts.len() as u32;
        let ems_base = self.emissions.len() as u32;
        self.texts.append(&other.texts);
        self.emissions.extend(other.emissions);
        self.actions.extend(other.actions.into_iter().map(|mut a| {
            a.ems = (a.ems.0 + ems_base, a.ems.1 + ems_base);
            a
        }));
        self.skipped.extend(other.skipped.into_iter().map(|mut s| {
            if let Why::Text(i) = &mut s.why {
                *i += base;
            }
            s
        }));
        for (n, more) in self.skip_counts.iter_mut().zip(other.skip_counts) {
            *n += more;
        }
        self.next.extend(other.next);
        self.unassigned.extend(other.unassigned);
        self.errors.extend(other.errors);
        self.spare_notes.extend(other.spare_notes);
    }
}

/// The texts of a run's reasons that are not derived from the program (see
/// [`Records::texts`]), one after the other in one buffer: emptied with its room kept, as
/// records are reused from batch to batch, so that these reasons (one per invoice paused or
/// stopped by a rule) cost no allocation once the first batches are done.
#[derive(Default)]
pub(crate) struct Texts {
    buf: String,
    /// Where each text ends in `buf`.
    ends: Vec<usize>,
}

impl Texts {
    /// How many texts there are.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Text `i` (empty when there is none).
    pub(crate) fn get(&self, i: usize) -> &str {
        let start = match i.checked_sub(1) {
            Some(before) => self.ends.get(before).copied().unwrap_or(0),
            None => 0,
        };
        self.ends.get(i).and_then(|&end| self.buf.get(start..end)).unwrap_or("")
    }

    /// Adds the text `write` appends to the buffer it is given, and returns its number.
    pub(crate) fn push_with(&mut self, write: impl FnOnce(&mut String)) -> u32 {
        write(&mut self.buf);
        self.ends.push(self.buf.len());
        self.ends.len() as u32 - 1
    }

    /// Keeps the first `n` texts.
    pub(crate) fn truncate(&mut self, n: usize) {
        if n < self.ends.len() {
            self.buf.truncate(match n.checked_sub(1) {
                Some(last) => self.ends.get(last).copied().unwrap_or(0),
                None => 0,
            });
            self.ends.truncate(n);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    /// Adds the texts of `other` after these (numbered from [`Texts::len`] on).
    fn append(&mut self, other: &Texts) {
        let base = self.buf.len();
        self.buf.push_str(&other.buf);
        self.ends.extend(other.ends.iter().map(|end| end + base));
    }
}

/// Notes of emissions already written, emptied (see [`Records::spare_notes`]): the boxes
/// are the emissions' own (an emission stays small to move), kept to be handed to other
/// emissions as they are.
pub(crate) type SpareNotes<'a> = Vec<Box<Notes<'a>>>;

/// Empties the notes of `emissions` and keeps them in `spare` for other emissions.
fn recycle_notes<'a>(emissions: impl Iterator<Item = Emission<'a>>, spare: &mut SpareNotes<'a>) {
    for em in emissions {
        if let Some(mut notes) = em.notes {
            notes.clear();
            spare.push(notes);
        }
    }
}

/// Plan order of actions: date, customer, offset, channel, template, id.
fn action_cmp(a: &ActionRec<'_>, b: &ActionRec<'_>) -> std::cmp::Ordering {
    (a.date, a.customer.id.as_str(), a.order, &a.action.channel, &a.action.template, &a.id).cmp(&(
        b.date,
        b.customer.id.as_str(),
        b.order,
        &b.action.channel,
        &b.action.template,
        &b.id,
    ))
}

/// Plan order of skipped steps: customer, invoice, offset, scenario, status.
fn skipped_cmp(a: &SkipRec<'_>, b: &SkipRec<'_>) -> std::cmp::Ordering {
    (a.customer.id.as_str(), a.invoice.id.as_str(), a.step_key(), a.scenario.name.as_str(), a.status).cmp(&(
        b.customer.id.as_str(),
        b.invoice.id.as_str(),
        b.step_key(),
        b.scenario.name.as_str(),
        b.status,
    ))
}

/// The order of two skipped steps of one customer: by invoice, step, then status.
fn skipped_in_customer_cmp(a: &SkipRec<'_>, b: &SkipRec<'_>) -> std::cmp::Ordering {
    a.rank.cmp(&b.rank).then_with(|| step_key_cmp(a.step_key(), b.step_key())).then(a.status.cmp(&b.status))
}

/// The order of two steps' sort keys (see [`step_order`]): the same as comparing the pairs,
/// without a call to compare labels when both are empty (all but events').
#[inline]
fn step_key_cmp(a: (i64, &str), b: (i64, &str)) -> std::cmp::Ordering {
    a.0.cmp(&b.0).then_with(|| if a.1.is_empty() && b.1.is_empty() { std::cmp::Ordering::Equal } else { a.1.cmp(b.1) })
}

/// Sort key of a step label: offsets in numeric order, events after them (by label).
pub(crate) fn step_order(step: &str) -> (i64, &str) {
    let n = step
        .strip_prefix('D')
        .and_then(|rest| if rest.is_empty() { Some(0) } else { rest.trim_start_matches('+').parse::<i64>().ok() });
    match n {
        Some(n) => (n, ""),
        None => (i64::MAX, step),
    }
}

/// A step that is not done today.
pub(crate) struct SkipRec<'a> {
    pub(crate) customer: &'a Customer,
    pub(crate) invoice: &'a Invoice,
    /// Position, among the customer's invoices in id order, of the first with this id.
    pub(crate) rank: u32,
    pub(crate) scenario: &'a CompiledScenario,
    pub(crate) step: &'a str,
    /// The offset of the step (`i64::MAX` for events: see [`step_order`]).
    pub(crate) order: i64,
    pub(crate) status: SkipStatus,
    pub(crate) why: Why<'a>,
    pub(crate) until: Option<NaiveDate>,
}

impl<'a> SkipRec<'a> {
    /// The step's place in plan order: its offset, events after steps by label.
    fn step_key(&self) -> (i64, &'a str) {
        (self.order, if self.order == i64::MAX { self.step } else { "" })
    }
}

/// Why a step is skipped; the text is written only when the plan is output.
pub(crate) enum Why<'a> {
    /// A step before the due date whose due date has passed.
    Expired { step: &'a CompiledStep, trigger: NaiveDate },
    /// A due step replaced by step `by` of the same run (catch-up, the scenario's mode).
    Superseded { trigger: NaiveDate, by: &'a CompiledStep },
    /// One of the run's [`Records::texts`].
    Text(u32),
}

impl<'a> SkipRec<'a> {
    /// Writes the reason (`texts`: the run's [`Records::texts`]; `frags`: the program's texts
    /// prepared for the output, if any).
    pub(crate) fn write_reason(&self, texts: &Texts, frags: Option<&Fragments>, o: &mut impl TextOut) {
        match &self.why {
            Why::Expired { step, trigger } => {
                match frags.and_then(|f| f.expired(step)) {
                    Some(p) => o.pre(p),
                    None => expired_head(&step.label, &step.action, o),
                }
                o.date(*trigger);
                o.lit(EXPIRED_BEFORE_DUE);
                o.date(self.invoice.due_date);
                o.lit(EXPIRED_END);
            }
            Why::Superseded { trigger, by } => match self.scenario.catch_up {
                CatchUp::Latest => match frags.and_then(|f| f.superseded(self.step, by)) {
                    Some((head, tail)) => {
                        o.pre(head);
                        o.date(*trigger);
                        o.pre(tail);
                    }
                    None => {
                        superseded_head(self.step, o);
                        o.date(*trigger);
                        replaced_tail(&by.label, o);
                    }
                },
                CatchUp::Stepwise => {
                    o.lit("catch up stepwise: ");
                    o.clean(&by.label);
                    o.lit(" goes first; ");
                    o.clean(self.step);
                    o.lit(" (due ");
                    o.date(*trigger);
                    o.lit(") follows on a later run");
                }
            },
            Why::Text(i) => o.text(texts.get(*i as usize)),
        }
    }

    pub(crate) fn to_skipped(&self, texts: &Texts) -> Skipped {
        let mut reason = String::new();
        self.write_reason(texts, None, &mut reason);
        Skipped {
            customer: self.customer.id.to_string(),
            invoice: self.invoice.id.to_string(),
            scenario: self.scenario.name.clone(),
            step: self.step.to_owned(),
            status: self.status,
            reason,
            until: self.until,
        }
    }

    /// The same bytes as `serde_json::to_writer(&self.to_skipped(texts))` (`frags`: the
    /// program's texts prepared for the output; `repeat`: the customer and invoice fields of
    /// the previous skipped step written into `out`).
    pub(crate) fn write_json(&self, texts: &Texts, frags: &Fragments, repeat: &mut Repeat, out: &mut Vec<u8>) {
        let key = (std::ptr::from_ref(self.customer).addr(), std::ptr::from_ref(self.invoice).addr());
        repeat.write(out, key, |out| {
            let mut o = JsonText(out);
            o.raw(b"{\"customer\":");
            o.string(&self.customer.id);
            o.raw(b",\"invoice\":");
            o.string(&self.invoice.id);
        });
        let mut o = JsonText(out);
        // Nine entries in ten: an expired or superseded step, written from the program's
        // prepared bytes around its dates (the same bytes as below).
        if self.until.is_none() {
            match (&self.why, self.status) {
                (Why::Expired { step, trigger }, SkipStatus::Expired)
                    if std::ptr::eq(step.label.as_str(), self.step) =>
                {
                    if let Some(head) = frags.expired_entry(&self.scenario.name, step) {
                        o.raw(head);
                        o.date(*trigger);
                        o.lit(EXPIRED_BEFORE_DUE);
                        o.date(self.invoice.due_date);
                        o.lit(EXPIRED_END);
                        o.raw(SKIPPED_END_UNTIL_NULL);
                        return;
                    }
                }
                (Why::Superseded { trigger, by }, SkipStatus::Superseded)
                    if self.scenario.catch_up == CatchUp::Latest =>
                {
                    if let Some((head, tail)) = frags.superseded_entry(&self.scenario.name, self.step, by) {
                        o.raw(head);
                        o.date(*trigger);
                        o.raw(tail);
                        return;
                    }
                }
                _ => {}
            }
        }
        match frags.skip_fields(&self.scenario.name, self.step) {
            Some(b) => o.raw(b),
            None => skip_fields(&self.scenario.name, self.step, &mut o),
        }
        o.raw(self.status.as_str().as_bytes());
        o.raw(b"\",\"reason\":\"");
        self.write_reason(texts, Some(frags), &mut o);
        o.raw(b"\",\"until\":");
        match self.until {
            Some(d) => o.quoted_date(d),
            None => o.raw(b"null"),
        }
        o.raw(b"}");
    }
}

/// The reason of an expired step between its trigger date and the due date, and after it.
const EXPIRED_BEFORE_DUE: &str = ", before the due date ";
const EXPIRED_END: &str = "; the due date has passed";

/// The end of a skipped step's entry after its reason, when it has no `until` date.
pub(crate) const SKIPPED_END_UNTIL_NULL: &[u8] = b"\",\"until\":null}";

/// `; carries superseded A, B` for the labels of the steps an emission carries (nothing
/// when it carries none).
pub(crate) fn carried_clause<'s>(labels: impl Iterator<Item = &'s str>, o: &mut (impl TextOut + ?Sized)) {
    for (i, label) in labels.enumerate() {
        o.lit(if i == 0 { "; carries superseded " } else { ", " });
        o.text(label);
    }
}

/// `,"scenario":…,"step":…,"status":"`: the fields of a skipped step that come from the
/// program (see [`SkipRec::write_json`]).
pub(crate) fn skip_fields(scenario: &str, step: &str, o: &mut JsonText<'_>) {
    o.raw(b",\"scenario\":");
    o.string(scenario);
    o.raw(b",\"step\":");
    o.string(step);
    o.raw(b",\"status\":\"");
}

/// The start of the reason of a step superseded by a later one (`catch up latest`), up to
/// its trigger date.
pub(crate) fn superseded_head(label: &str, o: &mut (impl TextOut + ?Sized)) {
    o.lit("catch up latest: ");
    o.text(label);
    o.lit(" (due ");
}

/// The end of the reason of a step superseded by step `by_label` (`catch up latest`), after
/// its trigger date.
pub(crate) fn replaced_tail(by_label: &str, o: &mut (impl TextOut + ?Sized)) {
    o.lit(") is replaced by ");
    o.text(by_label);
    o.lit("; its fees and interest are carried into it");
}

/// The start of the reason of an expired step, up to its trigger date.
pub(crate) fn expired_head(label: &str, action: &CompiledAction, o: &mut (impl TextOut + ?Sized)) {
    step_phrase(label, action, o);
    o.lit(" was planned for ");
}

/// `D+30 letter "relance-2"`: a step as the reasons name it.
fn step_phrase(label: &str, action: &CompiledAction, o: &mut (impl TextOut + ?Sized)) {
    o.text(label);
    o.lit(" ");
    o.text(&action.channel);
    o.lit(" ");
    o.quote();
    o.text(&action.template);
    o.quote();
}

/// A fee charged by an emitted step (or a step it carries).
pub(crate) struct FeeNote<'a> {
    /// Rounded to the currency's minor unit.
    pub(crate) amount: Decimal,
    /// For the legal recovery fee, ` legal recovery fee (LAW, ` (see
    /// [`legal_fee_phrase`](crate::compile::legal_fee_phrase)).
    pub(crate) law: Option<&'a Pre>,
    /// The step that charges it (a label the compiler made: `D+30`, `after payment`, which
    /// needs no escaping).
    pub(crate) label: &'a str,
}

/// How the interest of an emitted step was computed.
pub(crate) struct InterestNote<'a> {
    /// ` interest at RULE from ` (see [`InterestRule::phrase`](crate::compile::InterestRule)).
    pub(crate) rule: &'a Pre,
    pub(crate) first: NaiveDate,
    pub(crate) last: NaiveDate,
    /// The rate periods (with the law's points added) as the reason lists them, written
    /// once per interest rule and first day (see [`periods_phrase`]) and shared by the
    /// invoices that have them.
    pub(crate) periods: PeriodsText,
}

/// Where the text of an [`InterestNote`]'s rate periods is.
pub(crate) enum PeriodsText {
    /// In a slot of the evaluator's rate table, which the writers are given with the
    /// records ([`Records::action_views`]). A note holds no reference count: taking and
    /// dropping one for each invoice with interest was a locked instruction each time
    /// (≈ 1.5 % of `relance plan`'s samples at 10^6, waiting for the stores before it).
    Table(u32),
    /// Its own reference, for periods that the table does not hold (see `RateTable`).
    Own(std::sync::Arc<str>),
}

/// `12.15% from 2025-12-27 to 2025-12-31, 12.15% from 2026-01-01 to 2026-03-01`: the rate
/// periods of an interest computation as its reason lists them.
pub(crate) fn periods_phrase(periods: &[RatePeriod], o: &mut (impl TextOut + ?Sized)) {
    for (i, p) in periods.iter().enumerate() {
        if i > 0 {
            o.lit(", ");
        }
        o.decimal(p.percent);
        o.lit("% from ");
        o.date(p.from);
        o.lit(" to ");
        o.date(p.to);
    }
}

/// The steps an emitted step carries (catch-up: their fees and interest go into it), as a
/// set of positions among the scenario's steps: no allocation per emission.
#[derive(Clone, Default)]
pub(crate) struct Carried<'a> {
    steps: &'a [CompiledStep],
    /// Positions below 64.
    mask: u64,
    /// Steps at positions 64 and beyond (a scenario of more than 64 steps), in order.
    beyond: Vec<&'a CompiledStep>,
}

impl<'a> Carried<'a> {
    /// No step, among `steps` (the scenario's).
    pub(crate) fn new(steps: &'a [CompiledStep]) -> Self {
        Carried { steps, mask: 0, beyond: Vec::new() }
    }

    /// Adds `step`, one of the scenario's steps, after those already in.
    pub(crate) fn push(&mut self, step: &'a CompiledStep) {
        match self.steps.iter().position(|s| std::ptr::eq(s, step)) {
            Some(k) if k < 64 => self.mask |= 1 << k,
            _ => self.beyond.push(step),
        }
    }

    /// The steps, in scenario order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &'a CompiledStep> + Clone + '_ {
        let (steps, mask) = (self.steps, self.mask);
        (0..64usize.min(steps.len()))
            .filter(move |k| mask & (1 << k) != 0)
            .filter_map(move |k| steps.get(k))
            .chain(self.beyond.iter().copied())
    }

    /// Whether these are the steps at the positions of `mask` among the steps that start at
    /// address `steps`.
    #[inline]
    pub(crate) fn is_exactly(&self, steps: usize, mask: u64) -> bool {
        self.mask == mask && self.beyond.is_empty() && self.steps.as_ptr().addr() == steps
    }
}

/// One step (or event) emitted for one invoice, before grouping into actions.
pub(crate) struct Emission<'a> {
    pub(crate) invoice: &'a Invoice,
    /// Position of the invoice among the customer's (for `per invoice` grouping).
    pub(crate) index: usize,
    pub(crate) outstanding: Decimal,
    pub(crate) days_late: i64,
    pub(crate) label: &'a str,
    /// Where the step sorts among a customer's records (see [`step_order`]).
    pub(crate) order: i64,
    pub(crate) key: Cow<'a, str>,
    pub(crate) action: &'a CompiledAction,
    pub(crate) carried: Carried<'a>,
    pub(crate) fees: Decimal,
    pub(crate) interest: Decimal,
    /// The trigger date of a step (events have none).
    pub(crate) triggered: Option<NaiveDate>,
    /// Only when there is something to say: an emission stays small to move.
    pub(crate) notes: Option<Box<Notes<'a>>>,
}

/// What the reason of an emission says beyond its figures (written only for reasons), and
/// its warnings.
#[derive(Default)]
pub(crate) struct Notes<'a> {
    /// The first fee, kept here: an emission charges one fee, seldom more (no allocation
    /// for it).
    pub(crate) first_fee: Option<FeeNote<'a>>,
    /// The fees after the first.
    pub(crate) more_fees: Vec<FeeNote<'a>>,
    pub(crate) interest_note: Option<InterestNote<'a>>,
    pub(crate) warnings: Vec<String>,
    /// The condition values that held.
    pub(crate) trace: String,
}

impl<'a> Notes<'a> {
    /// Forgets what the notes say, keeping the room of their lists and texts.
    fn clear(&mut self) {
        self.first_fee = None;
        self.more_fees.clear();
        self.interest_note = None;
        self.warnings.clear();
        self.trace.clear();
    }
}

impl<'a> Emission<'a> {
    /// The notes, made when first written: empty notes from `spare` (see
    /// [`Records::spare_notes`]), or new ones.
    pub(crate) fn notes_mut(&mut self, spare: &mut SpareNotes<'a>) -> &mut Notes<'a> {
        self.notes.get_or_insert_with(|| spare.pop().unwrap_or_default())
    }

    /// Keeps the condition values that held (no notes are made for none).
    pub(crate) fn set_trace(&mut self, trace: &str, spare: &mut SpareNotes<'a>) {
        if !trace.is_empty() {
            let kept = &mut self.notes_mut(spare).trace;
            kept.clear();
            kept.push_str(trace);
        }
    }

    pub(crate) fn fee_notes(&self) -> impl Iterator<Item = &FeeNote<'a>> {
        self.notes.iter().flat_map(|n| n.first_fee.iter().chain(&n.more_fees))
    }

    pub(crate) fn interest_note(&self) -> Option<&InterestNote<'a>> {
        self.notes.as_ref().and_then(|n| n.interest_note.as_ref())
    }

    pub(crate) fn warnings(&self) -> &[String] {
        self.notes.as_ref().map_or(&[], |n| &n.warnings)
    }

    pub(crate) fn trace(&self) -> &str {
        self.notes.as_ref().map_or("", |n| &n.trace)
    }
}

/// One action: emissions of one step grouped per customer, currency (and invoice, for
/// `per invoice` steps).
pub(crate) struct ActionRec<'a> {
    pub(crate) date: NaiveDate,
    pub(crate) customer: &'a Customer,
    pub(crate) scenario: &'a str,
    pub(crate) label: &'a str,
    pub(crate) key: Cow<'a, str>,
    pub(crate) action: &'a CompiledAction,
    pub(crate) order: (i64, &'a str),
    pub(crate) currency: Currency,
    /// Where its emissions are in [`Records::emissions`] (sorted by invoice id).
    pub(crate) ems: (u32, u32),
    pub(crate) outstanding: Decimal,
    pub(crate) fees: Decimal,
    pub(crate) interest: Decimal,
    pub(crate) warnings: Vec<String>,
    /// Hex of the first 8 bytes of the SHA-256 of customer, scenario, step key and invoices.
    pub(crate) id: [u8; 16],
    /// The first 12 characters of the scenarios hash.
    pub(crate) hash: &'a str,
}

impl<'a> ActionRec<'a> {
    /// Groups `ems` (same step key, currency and `per invoice` slot; not empty; in invoice id
    /// order), at `range` in the records' emissions, into an action.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        date: NaiveDate,
        customer: &'a Customer,
        scenario: &'a str,
        currency: Currency,
        ems: &[Emission<'a>],
        range: (u32, u32),
        hash: &'a str,
        with_id: bool,
    ) -> Option<Self> {
        // The evaluator emits in invoice id order (a customer's invoices are indexed so).
        debug_assert!(ems.is_sorted_by(|a, b| a.invoice.id.as_str() <= b.invoice.id.as_str()));
        let first = ems.first()?;
        let (label, key, action) = (first.label, first.key.clone(), first.action);
        let (outstanding, fees, interest) = match ems {
            // Most actions have one invoice: no sums.
            [only] => (only.outstanding, only.fees, only.interest),
            many => {
                let mut sums = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
                for em in many {
                    money::add_to(&mut sums.0, em.outstanding);
                    money::add_to(&mut sums.1, em.fees);
                    money::add_to(&mut sums.2, em.interest);
                }
                sums
            }
        };
        let mut warnings: Vec<String> = Vec::new();
        for em in ems.iter() {
            for w in em.warnings() {
                if !warnings.contains(w) {
                    warnings.push(w.clone());
                }
            }
        }
        // Only written actions need their id (not `Engine::summarize`).
        let id = if with_id {
            action_id(&customer.id, scenario, &key, ems.iter().map(|e| e.invoice.id.as_str()))
        } else {
            [b'0'; 16]
        };
        Some(ActionRec {
            date,
            customer,
            scenario,
            label,
            key,
            action,
            order: (first.order, if first.order == i64::MAX { label } else { "" }),
            currency,
            ems: range,
            outstanding: money::round(outstanding, currency),
            fees: money::round(fees, currency),
            interest: money::round(interest, currency),
            warnings,
            id,
            hash,
        })
    }
}

/// An action with its emissions (see [`Records::action_views`]).
pub(crate) struct ActionView<'r, 'a> {
    pub(crate) rec: &'r ActionRec<'a>,
    pub(crate) ems: &'r [Emission<'a>],
    /// Where the interest notes' periods are (see [`PeriodsText`]).
    pub(crate) rates: &'r RateTable,
}

impl<'a> std::ops::Deref for ActionView<'_, 'a> {
    type Target = ActionRec<'a>;
    fn deref(&self) -> &ActionRec<'a> {
        self.rec
    }
}

impl<'a> ActionView<'_, 'a> {
    /// The keys of the steps the action carries, each once, in order of first appearance.
    pub(crate) fn carried(&self) -> impl Iterator<Item = &'a str> + '_ {
        let all = self.ems.iter().flat_map(|e| e.carried.iter().map(|c| c.key.as_str()));
        let many = self.ems.len() > 1;
        all.clone().enumerate().filter(move |(i, k)| !many || !all.clone().take(*i).any(|p| p == *k)).map(|(_, k)| k)
    }

    fn id_str(&self) -> &str {
        std::str::from_utf8(&self.id).unwrap_or("")
    }

    pub(crate) fn to_action(&self) -> Action {
        Action {
            id: self.id_str().to_owned(),
            date: self.date,
            customer: self.customer.id.to_string(),
            customer_name: self.customer.name.to_string(),
            scenario: self.scenario.to_owned(),
            step: self.label.to_owned(),
            step_key: self.key.to_string(),
            channel: self.action.channel.clone(),
            template: self.action.template.clone(),
            assign: self.action.assign.clone(),
            invoices: self.ems.iter().map(|e| e.invoice.id.to_string()).collect(),
            outstanding: self.outstanding,
            currency: self.currency,
            fees: self.fees,
            interest: self.interest,
            carried: self.carried().map(str::to_owned).collect(),
            reason: {
                let mut r = String::new();
                self.write_reason(None, &mut r);
                r
            },
            warnings: self.warnings.clone(),
        }
    }

    /// The same bytes as `serde_json::to_writer(&self.to_action())` (`frags`: the program's
    /// texts prepared for the output; `repeat`: the customer fields of the previous action
    /// written into `out`).
    pub(crate) fn write_json(&self, frags: &Fragments, repeat: &mut Repeat, out: &mut Vec<u8>) {
        self.write_json_part(frags, repeat, out, 0..self.ems.len());
    }

    /// The part of [`ActionView::write_json`]'s bytes that is about the invoices at
    /// `clauses` (indices into its invoices): the parts of consecutive ranges, from 0 to
    /// the number of invoices, put together are the whole. The first part also has
    /// everything before the reason's first invoice (with the list of invoices), the last
    /// everything after its last. The text of an action of very many invoices is written in
    /// such parts (see `render::write_in_pieces`), never held whole.
    #[inline(always)]
    pub(crate) fn write_json_part(
        &self,
        frags: &Fragments,
        repeat: &mut Repeat,
        out: &mut Vec<u8>,
        clauses: std::ops::Range<usize>,
    ) {
        let frag = frags.action(self.scenario, self.label, self.action);
        let mut o = JsonText(out);
        if clauses.start == 0 {
            o.raw(b"{\"id\":\"");
            o.raw(&self.id);
            o.raw(b"\",\"date\":");
            o.quoted_date(self.date);
            repeat.write(o.0, (std::ptr::from_ref(self.customer).addr(), 0), |out| {
                let mut o = JsonText(out);
                o.raw(b",\"customer\":");
                o.string(&self.customer.id);
                o.raw(b",\"customer_name\":");
                o.string(&self.customer.name);
            });
            match frag {
                Some(f) => f.write_fields(&self.key, &mut o),
                None => {
                    action_fields_before_key(self.scenario, self.label, &mut o);
                    o.string(&self.key);
                    action_fields_after_key(self.action, &mut o);
                }
            }
            o.string_list(self.ems.iter().map(|e| e.invoice.id.as_str()));
            o.raw(b",\"outstanding\":");
            o.quoted_decimal(self.outstanding);
            o.raw(b",\"currency\":\"");
            o.raw(self.currency.code().as_bytes());
            o.raw(b"\",\"fees\":");
            o.quoted_decimal(self.fees);
            o.raw(b",\"interest\":");
            o.quoted_decimal(self.interest);
            o.raw(b",\"carried\":");
            match frag {
                Some(f) => f.write_carried_list(self, &mut o),
                None => o.string_list(self.carried()),
            }
            o.raw(b",\"reason\":\"");
        }
        self.write_reason_part(frag, clauses.clone(), &mut o);
        if clauses.end >= self.ems.len() {
            o.raw(b"\",\"warnings\":");
            o.string_list(self.warnings.iter().map(String::as_str));
            o.raw(b"}");
        }
    }
}

/// `,"scenario":…,"step":…,"step_key":`: the fields of an action from the program before
/// its step key (see [`ActionView::write_json`]).
pub(crate) fn action_fields_before_key(scenario: &str, label: &str, o: &mut JsonText<'_>) {
    o.raw(b",\"scenario\":");
    o.string(scenario);
    o.raw(b",\"step\":");
    o.string(label);
    o.raw(b",\"step_key\":");
}

/// `,"channel":…,"template":…,"assign":…,"invoices":`: the fields of an action from the
/// program after its step key.
pub(crate) fn action_fields_after_key(action: &CompiledAction, o: &mut JsonText<'_>) {
    o.raw(b",\"channel\":");
    o.string(&action.channel);
    o.raw(b",\"template\":");
    o.string(&action.template);
    o.raw(b",\"assign\":");
    match &action.assign {
        Some(a) => o.string(a),
        None => o.raw(b"null"),
    }
    o.raw(b",\"invoices\":");
}

/// The start of an action's reason: `scenario "…", step … channel "template"`.
pub(crate) fn action_reason_head(
    scenario: &str,
    label: &str,
    action: &CompiledAction,
    o: &mut (impl TextOut + ?Sized),
) {
    o.lit("scenario ");
    o.quote();
    o.text(scenario);
    o.quote();
    o.lit(", step ");
    step_phrase(label, action, o);
}

/// `; condition `…` holds`, after each invoice of an action with a condition.
pub(crate) fn condition_clause(text: &str, o: &mut (impl TextOut + ?Sized)) {
    o.lit("; condition `");
    o.text(text);
    o.lit("` holds");
}

impl ActionView<'_, '_> {
    /// Writes the reason: the invoices, due dates, days late, the step, the condition values
    /// that held, fees, interest and the scenarios hash (SPEC 3.7). `frag`: the texts of the
    /// action's step prepared for the output, if any.
    pub(crate) fn write_reason(&self, frag: Option<&ActionFrag>, o: &mut impl TextOut) {
        self.write_reason_part(frag, 0..self.ems.len(), o);
    }

    /// The part of [`ActionView::write_reason`]'s text about the invoices at `clauses`
    /// (indices into the action's), with the reason's start when it is the first part and
    /// its end when it is the last (see [`ActionView::write_json_part`]).
    #[inline(always)]
    pub(crate) fn write_reason_part(
        &self,
        frag: Option<&ActionFrag>,
        clauses: std::ops::Range<usize>,
        o: &mut impl TextOut,
    ) {
        if clauses.start == 0 {
            self.reason_head(frag, o);
        }
        let last = clauses.end >= self.ems.len();
        self.reason_clauses(frag, clauses, o);
        if last {
            self.reason_end(o);
        }
    }

    /// The reason's start, before its first invoice.
    #[inline(always)]
    fn reason_head(&self, frag: Option<&ActionFrag>, o: &mut impl TextOut) {
        match frag {
            Some(f) => o.pre(&f.reason_head),
            None => action_reason_head(self.scenario, self.label, self.action, o),
        }
    }

    /// The reason's clauses of the invoices at `range` (indices into the action's).
    #[inline(always)]
    fn reason_clauses(&self, frag: Option<&ActionFrag>, range: std::ops::Range<usize>, o: &mut impl TextOut) {
        let cur = self.currency;
        let code = cur.code();
        for em in self.ems.get(range).unwrap_or_default() {
            let inv = em.invoice;
            o.lit("; invoice ");
            o.text(&inv.id);
            o.lit(" due ");
            o.date(inv.due_date);
            o.lit(", ");
            o.int(em.days_late);
            o.lit(" days late, outstanding ");
            o.decimal(money::round(em.outstanding, cur));
            o.lit(" ");
            o.lit(code);
            if em.triggered.is_some() || !em.trace().is_empty() {
                o.lit(" (");
                let mut sep = "";
                if let Some(t) = em.triggered {
                    o.lit("triggered on ");
                    o.date(t);
                    sep = ", ";
                }
                if !em.trace().is_empty() {
                    o.lit(sep);
                    o.text(em.trace());
                }
                o.lit(")");
            }
            match (frag, &self.action.condition) {
                (Some(f), Some(_)) => o.pre(&f.condition),
                (None, Some((_, text))) => condition_clause(text, o),
                (_, None) => {}
            }
            match frag {
                Some(f) if f.usual_carried(&em.carried) => o.pre(&f.carried_reason),
                _ => carried_clause(em.carried.iter().map(|c| c.label.as_str()), o),
            }
            for n in em.fee_notes() {
                o.lit("; ");
                o.decimal(n.amount);
                o.lit(" ");
                o.lit(code);
                match n.law {
                    Some(phrase) => o.pre(phrase),
                    None => o.lit(" fee ("),
                }
                o.clean(n.label);
                o.lit(")");
            }
            if let Some(n) = em.interest_note() {
                o.lit("; ");
                o.decimal(em.interest);
                o.lit(" ");
                o.lit(code);
                o.pre(n.rule);
                o.date(n.first);
                o.lit(" to ");
                o.date(n.last);
                o.lit(" (");
                o.clean(match &n.periods {
                    PeriodsText::Table(slot) => self.rates.phrase(*slot),
                    PeriodsText::Own(text) => text,
                });
                o.lit(")");
            }
        }
    }

    /// The reason's end, after its last invoice.
    #[inline(always)]
    fn reason_end(&self, o: &mut impl TextOut) {
        o.lit("; scenarios ");
        o.clean(self.hash);
    }
}

/// A stable id: the same customer, scenario, step and invoices give the same id on every run.
fn action_id<'i>(customer: &str, scenario: &str, step_key: &str, invoices: impl Iterator<Item = &'i str>) -> [u8; 16] {
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
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, b) in digest.iter().take(8).enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 0xf) as usize];
    }
    out
}

/// The owned form of a `next` entry.
pub(crate) fn next_action((customer, on): &(&Customer, Option<NaiveDate>)) -> NextAction {
    NextAction { customer: customer.id.to_string(), next_action_on: *on }
}

/// The same bytes as `serde_json::to_writer(&next_action(n))`.
pub(crate) fn write_next_json((customer, on): &(&Customer, Option<NaiveDate>), out: &mut Vec<u8>) {
    let mut o = JsonText(out);
    o.raw(b"{\"customer\":");
    o.string(&customer.id);
    o.raw(b",\"next_action_on\":");
    match on {
        Some(d) => o.quoted_date(*d),
        None => o.raw(b"null"),
    }
    o.raw(b"}");
}

/// Writes `items` as elements of a top-level list of the plan layout: each on its own line,
/// preceded by `,\n    ` (the caller turns the first separator into the list's opening).
pub(crate) fn element(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(b",\n    ");
    write(out);
}

/// Writes a value serialised by serde as one element (see [`element`]).
pub(crate) fn serde_element<T: serde::Serialize>(out: &mut Vec<u8>, item: &T) -> std::io::Result<()> {
    out.extend_from_slice(b",\n    ");
    serde_json::to_writer(&mut *out, item)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_id_is_the_hash_of_its_texts() {
        // A known value: ids must not change from one version to the next (a journal keeps
        // them to know what was sent).
        let id = action_id("C0000000", "PME", "D+35 registered_letter", ["F000006118"].into_iter());
        assert_eq!(&id, b"8501b63f14a3c0c1");
    }

    proptest::proptest! {
        /// The texts of a run are found by their numbers as written, after texts are kept
        /// up to a mark, and after the texts of another run are added (numbered after
        /// these), as a list of strings would.
        #[test]
        fn texts_are_found_as_a_list_of_strings_finds_them(
            first in proptest::collection::vec("[a-zé `(),]{0,12}", 0..8),
            keep in 0usize..10,
            other in proptest::collection::vec("[a-z ]{0,6}", 0..5),
        ) {
            let mut texts = Texts::default();
            for (i, t) in first.iter().enumerate() {
                proptest::prop_assert_eq!(texts.push_with(|b| b.push_str(t)) as usize, i);
            }
            let mut want = first.clone();
            texts.truncate(keep);
            want.truncate(keep);
            let mut more = Texts::default();
            for t in &other {
                more.push_with(|b| b.push_str(t));
            }
            texts.append(&more);
            want.extend(other.iter().cloned());
            proptest::prop_assert_eq!(texts.len(), want.len());
            for (i, t) in want.iter().enumerate() {
                proptest::prop_assert_eq!(texts.get(i), t.as_str());
            }
            proptest::prop_assert_eq!(texts.get(want.len()), "");
            texts.clear();
            proptest::prop_assert_eq!((texts.len(), texts.get(0)), (0, ""));
        }

        #[test]
        fn step_keys_compare_as_their_pairs(
            a in (proptest::prop_oneof![-3i64..3, proptest::strategy::Just(i64::MAX)], "|a|b|ab"),
            b in (proptest::prop_oneof![-3i64..3, proptest::strategy::Just(i64::MAX)], "|a|b|ab"),
        ) {
            let (a, b) = ((a.0, a.1.as_str()), (b.0, b.1.as_str()));
            proptest::prop_assert_eq!(step_key_cmp(a, b), a.cmp(&b));
        }
    }
}
