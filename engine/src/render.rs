//! Plan output: JSON (SPEC section 5), CSV (safe to open in a spreadsheet) and a terminal table.

use std::fmt::Write as _;
use std::io::{self, Write};

use chrono::NaiveDate;
use rayon::prelude::*;
use serde::Serialize;

use crate::compile::{CompiledAction, CompiledStep, Program};
use crate::eval::{Ahead, Evaluator, Mode, RateTable, finish_lists};
use crate::history::History;
use crate::json::{JsonText, Pre, Repeat, TextOut};
use crate::model::{Customer, PortfolioRef};
use crate::outcome::{self, ActionView, Carried, Records};
use crate::plan::{Action, NextAction, Plan, PlanError, SkipStatus, Unassigned};

/// The plan as JSON, with a final newline. Byte-identical for identical plans.
///
/// Layout: the top-level object is indented, and each element of a list (an action, a
/// skipped step, …) is written compactly on a line of its own, so that plans of millions
/// of entries stay small, and can be read with `grep`, compared with `diff` and loaded by
/// any JSON parser.
pub fn to_json(plan: &Plan) -> String {
    let mut out = Vec::new();
    match write_json(plan, &mut out) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(e) => format!("{{\"error\": \"{e}\"}}\n"),
    }
}

/// Writes the plan as [`to_json`] does (the same bytes), without building the whole text in
/// memory: the lists are serialised in parallel chunks and written in order.
pub fn write_json(plan: &Plan, w: &mut impl Write) -> io::Result<()> {
    let mut j = JsonPlan::begin(w, plan.as_of, &plan.scenarios_hash)?;
    j.list(&plan.actions)?;
    j.next_list("skipped")?;
    j.list(&plan.skipped)?;
    j.end(&plan.unassigned, &plan.errors, Next::Plan(&plan.next), &plan.warnings)
}

/// Evaluates `portfolio` and writes its plan as JSON: the same bytes as
/// `to_json(&engine.evaluate(portfolio, as_of, history))`, in bounded memory and without
/// building the plan's values: the evaluator's records are written straight into the output.
/// Customers are evaluated in batches (in parallel within a batch) and each batch is written
/// before the next is computed. The JSON lists all actions before the first skipped step, so
/// the customers are gone through twice: for the actions, noting the expired and superseded
/// steps skipped, then for the skipped steps, listed from those notes; only customers with
/// other skipped steps (paused, stopped, deferred, …) are evaluated again, without amounts,
/// and the customers that failed the first pass are left out.
pub fn write_plan_json<'p>(
    program: &Program,
    portfolio: impl Into<PortfolioRef<'p>>,
    as_of: NaiveDate,
    history: &dyn History,
    w: &mut impl Write,
) -> io::Result<()> {
    write_plan_json_batched(program, portfolio.into(), as_of, history, w, OUT_BATCH)
}

/// Where a text is in memory: the address and length of its bytes. Records borrow their
/// texts from the program, so a text of the program is recognised by its address.
type Addr = (usize, usize);

fn addr(s: &str) -> Addr {
    (s.as_ptr().addr(), s.len())
}

/// The texts of the program that every action or skipped step repeats (scenario names, step
/// labels and keys, channels, templates, conditions), checked and escaped once per render
/// instead of once per record. Looked up by the address of the step's label, and used only
/// when the record borrows the very texts it was made from (otherwise the writers escape the
/// record's texts as usual): the output is the same bytes either way. The default prepares
/// nothing.
#[derive(Default)]
pub(crate) struct Fragments {
    /// One per step or event of the program: for its actions, and for its skipped steps.
    actions: Vec<ActionFrag>,
    steps: Vec<StepFrag>,
    /// Index of both by label address.
    index: AddrIndex,
}

/// A small open-addressing hash table from a text's address to a position (a lookup costs
/// a multiplication and usually one comparison, fewer than a binary search).
#[derive(Default)]
struct AddrIndex {
    /// `(address, position + 1)`; 0 marks an empty slot (a text's address is never 0).
    slots: Vec<(usize, u32)>,
}

impl AddrIndex {
    fn new(addrs: impl ExactSizeIterator<Item = usize>) -> Self {
        let size = (addrs.len() * 4).next_power_of_two().max(8);
        let mut index = AddrIndex { slots: vec![(0, 0); size] };
        for (pos, a) in addrs.enumerate() {
            let mut i = index.slot(a);
            loop {
                match index.slots[i] {
                    (0, _) => {
                        index.slots[i] = (a, pos as u32 + 1);
                        break;
                    }
                    // The same address twice (two empty labels): the first is kept, and the
                    // checks of each lookup reject a wrong one.
                    (b, _) if b == a => break,
                    _ => i = (i + 1) & (index.slots.len() - 1),
                }
            }
        }
        index
    }

    #[inline]
    fn slot(&self, a: usize) -> usize {
        (a.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) & (self.slots.len().wrapping_sub(1))
    }

    #[inline]
    fn get(&self, a: usize) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mut i = self.slot(a);
        loop {
            let (b, pos) = *self.slots.get(i)?;
            if b == a {
                return Some(pos as usize - 1);
            }
            if b == 0 {
                return None;
            }
            i = (i + 1) & (self.slots.len() - 1);
        }
    }
}

/// The prepared texts of a step or event of a scenario, for its actions.
pub(crate) struct ActionFrag {
    label: Addr,
    scenario: Addr,
    key: Addr,
    action: usize,
    /// `,"scenario":…,"invoices":` with the step's own key.
    fields: Vec<u8>,
    /// The same up to the key, and after it (for a key built by the evaluator).
    before_key: Vec<u8>,
    after_key: Vec<u8>,
    /// `scenario "…", step … channel "template"`.
    pub(crate) reason_head: Pre,
    /// `; condition `…` holds` (empty for an action without condition).
    pub(crate) condition: Pre,
    /// The steps an emission of this step usually carries (see [`ActionFrag::usual_carried`]),
    /// and their texts: `; carries superseded …` in the reason and the JSON list of their keys.
    carried: (usize, u64),
    pub(crate) carried_reason: Pre,
    carried_list: Vec<u8>,
}

impl ActionFrag {
    /// Whether `carried` is the set of steps this step's emissions usually carry: the steps
    /// of the scenario before it that are due on or after the due date (those before it
    /// expire), all triggered and superseded by it under `catch up latest`, without
    /// condition or history to skip one. Those are written from prepared texts.
    #[inline]
    pub(crate) fn usual_carried(&self, carried: &Carried<'_>) -> bool {
        carried.is_exactly(self.carried.0, self.carried.1)
    }

    /// Writes the JSON list of the keys of the steps that `ems` carry, each once.
    #[inline]
    pub(crate) fn write_carried_list(&self, view: &ActionView<'_, '_>, o: &mut JsonText<'_>) {
        if view.ems.iter().all(|e| self.usual_carried(&e.carried)) {
            o.raw(&self.carried_list);
        } else {
            o.string_list(view.carried());
        }
    }

    /// Writes the program's fields of an action whose step key is `key`.
    #[inline]
    pub(crate) fn write_fields(&self, key: &str, o: &mut JsonText<'_>) {
        if addr(key) == self.key {
            o.raw(&self.fields);
        } else {
            o.raw(&self.before_key);
            o.string(key);
            o.raw(&self.after_key);
        }
    }
}

/// The prepared texts of a step or event of a scenario, for its skipped steps.
struct StepFrag {
    label: Addr,
    scenario: Addr,
    /// `,"scenario":…,"step":…,"status":"`.
    fields: Vec<u8>,
    /// The start of the reason of an expired step (see [`outcome::expired_head`]).
    expired: Pre,
    /// The start of the reason of a superseded step, and the end of the reason of a step it
    /// supersedes (see [`outcome::superseded_head`], [`outcome::replaced_tail`]).
    superseded: Pre,
    replaced: Pre,
    /// The bytes of a skipped-step entry around its dates, for the two statuses that make
    /// nine in ten entries: `,"scenario":…,"status":"expired","reason":"` and the expired
    /// step's reason up to its trigger date; the same for `superseded`; and the end of the
    /// entry of a step this one supersedes, after the trigger date (`) is replaced by …`,
    /// then `"until":null}`). Written in three copies instead of ten.
    expired_entry: Vec<u8>,
    superseded_entry: Vec<u8>,
    replaced_entry: Vec<u8>,
}

impl Fragments {
    /// Prepares the texts of every step and event of `program`.
    pub(crate) fn new(program: &Program) -> Self {
        let mut actions = Vec::new();
        let mut steps = Vec::new();
        for s in &program.scenarios {
            let labelled = s
                .steps
                .iter()
                .map(|st| (&st.label, &st.key, &st.action))
                .chain(s.events.iter().map(|ev| (&ev.label, &ev.key, &ev.action)));
            for (k, (label, key, action)) in labelled.enumerate() {
                // The steps before this one due on or after the due date (none for an event;
                // none prepared beyond the 64 first steps, which `Carried` keeps apart).
                let before = if k < s.steps.len() && k <= 64 { k } else { 0 };
                let (mut usual, mut mask) = (Vec::new(), 0u64);
                for (i, st) in s.steps.iter().enumerate().take(before).filter(|(_, st)| st.offset >= 0) {
                    usual.push(st);
                    mask |= 1 << i;
                }
                let carried_reason = Pre::of(|o| outcome::carried_clause(usual.iter().map(|st| st.label.as_str()), o));
                // The keys of one scenario's steps differ (the checker rejects two steps of one
                // channel on one day), so `ActionView::carried` lists each of them.
                let mut carried_list = Vec::new();
                JsonText(&mut carried_list).string_list(usual.iter().map(|st| st.key.as_str()));
                let mut before_key = Vec::new();
                outcome::action_fields_before_key(&s.name, label, &mut JsonText(&mut before_key));
                let mut after_key = Vec::new();
                outcome::action_fields_after_key(action, &mut JsonText(&mut after_key));
                let mut fields = before_key.clone();
                crate::json::string(&mut fields, key);
                fields.extend_from_slice(&after_key);
                actions.push(ActionFrag {
                    label: addr(label),
                    scenario: addr(&s.name),
                    key: addr(key),
                    action: std::ptr::from_ref::<CompiledAction>(action).addr(),
                    fields,
                    before_key,
                    after_key,
                    reason_head: Pre::of(|o| outcome::action_reason_head(&s.name, label, action, o)),
                    condition: Pre::of(|o| {
                        if let Some((_, text)) = &action.condition {
                            outcome::condition_clause(text, o);
                        }
                    }),
                    carried: (s.steps.as_ptr().addr(), mask),
                    carried_reason,
                    carried_list,
                });
                let mut fields = Vec::new();
                outcome::skip_fields(&s.name, label, &mut JsonText(&mut fields));
                let expired = Pre::of(|o| outcome::expired_head(label, action, o));
                let superseded = Pre::of(|o| outcome::superseded_head(label, o));
                let replaced = Pre::of(|o| outcome::replaced_tail(label, o));
                let entry_head = |status: SkipStatus, reason_head: &Pre| {
                    let mut b = fields.clone();
                    b.extend_from_slice(status.as_str().as_bytes());
                    b.extend_from_slice(b"\",\"reason\":\"");
                    b.extend_from_slice(reason_head.json());
                    b
                };
                let expired_entry = entry_head(SkipStatus::Expired, &expired);
                let superseded_entry = entry_head(SkipStatus::Superseded, &superseded);
                let mut replaced_entry = replaced.json().to_vec();
                replaced_entry.extend_from_slice(outcome::SKIPPED_END_UNTIL_NULL);
                steps.push(StepFrag {
                    label: addr(label),
                    scenario: addr(&s.name),
                    fields,
                    expired,
                    superseded,
                    replaced,
                    expired_entry,
                    superseded_entry,
                    replaced_entry,
                });
            }
        }
        let index = AddrIndex::new(actions.iter().map(|a| a.label.0));
        Fragments { actions, steps, index }
    }

    /// The texts of the step labelled `label` of scenario `scenario` with action `action`,
    /// if these are the program's own texts.
    #[inline]
    pub(crate) fn action(&self, scenario: &str, label: &str, action: &CompiledAction) -> Option<&ActionFrag> {
        let f = self.actions.get(self.index.get(label.as_ptr().addr())?)?;
        (f.label == addr(label) && f.scenario == addr(scenario) && f.action == std::ptr::from_ref(action).addr())
            .then_some(f)
    }

    /// `,"scenario":…,"step":…,"status":"` for a skipped step, if these are the program's
    /// own texts.
    #[inline]
    pub(crate) fn skip_fields(&self, scenario: &str, step: &str) -> Option<&[u8]> {
        let f = self.steps.get(self.index.get(step.as_ptr().addr())?)?;
        (f.label == addr(step) && f.scenario == addr(scenario)).then_some(f.fields.as_slice())
    }

    /// The start of the reason of the step labelled `step` when step `by` supersedes it, and
    /// the end of that reason.
    #[inline]
    pub(crate) fn superseded(&self, step: &str, by: &CompiledStep) -> Option<(&Pre, &Pre)> {
        let head = self.steps.get(self.index.get(step.as_ptr().addr())?)?;
        let tail = self.steps.get(self.index.get(by.label.as_ptr().addr())?)?;
        (head.label == addr(step) && tail.label == addr(&by.label)).then_some((&head.superseded, &tail.replaced))
    }

    /// The start of the entry of skipped step `step` of `scenario` when it expired, up to
    /// its trigger date, if these are the program's own texts.
    #[inline]
    pub(crate) fn expired_entry(&self, scenario: &str, step: &CompiledStep) -> Option<&[u8]> {
        let f = self.steps.get(self.index.get(step.label.as_ptr().addr())?)?;
        (f.label == addr(&step.label) && f.scenario == addr(scenario)).then_some(f.expired_entry.as_slice())
    }

    /// The start of the entry of skipped step `step` of `scenario` when step `by` supersedes
    /// it (`catch up latest`), up to its trigger date, and the end of the entry after it.
    #[inline]
    pub(crate) fn superseded_entry(&self, scenario: &str, step: &str, by: &CompiledStep) -> Option<(&[u8], &[u8])> {
        let head = self.steps.get(self.index.get(step.as_ptr().addr())?)?;
        let tail = self.steps.get(self.index.get(by.label.as_ptr().addr())?)?;
        (head.label == addr(step) && head.scenario == addr(scenario) && tail.label == addr(&by.label))
            .then_some((head.superseded_entry.as_slice(), tail.replaced_entry.as_slice()))
    }

    /// The start of the reason of `step` when it expired.
    #[inline]
    pub(crate) fn expired(&self, step: &CompiledStep) -> Option<&Pre> {
        let f = self.steps.get(self.index.get(step.label.as_ptr().addr())?)?;
        (f.label == addr(&step.label)).then_some(&f.expired)
    }
}

fn write_plan_json_batched(
    program: &Program,
    portfolio: PortfolioRef<'_>,
    as_of: NaiveDate,
    history: &dyn History,
    w: &mut impl Write,
    batch: usize,
) -> io::Result<()> {
    // The first pass notes the skipped steps it finds, and the second lists most of them from
    // those notes instead of evaluating their customers again.
    let ev = Evaluator::new(program, portfolio, as_of, history).with_skip_notes();
    let frags = Fragments::new(program);
    let frags = &frags;
    // The actions' batches take very large customers side by side; the skipped steps' list
    // such a customer from notes in slices, one customer at a time.
    let alone = ev.batches(batch);
    let batches = [ev.side_by_side(alone.clone(), batch, rayon::current_num_threads()), alone];
    let (mut unassigned, mut errors, mut next) = (Vec::new(), Vec::new(), Vec::new());
    let mut j = JsonPlan::begin(w, as_of, &program.hash)?;
    // The batches for the actions, then the same batches for the skipped steps, in one
    // pipeline: the first batch of skipped steps is made while the last actions are written,
    // and both lists fill the same two buffers. Each run of customers is written right after
    // it is evaluated, in the same task, while its records are still in the processor's
    // cache; the parts of a batch go to `w` while the next batch is evaluated (see
    // [`pipeline`]).
    let passes = [Mode::ACTIONS, Mode::SKIPPED_AFTER_ACTIONS];
    let items =
        passes.into_iter().zip(&batches).flat_map(|(mode, batches)| batches.iter().map(move |r| (mode, r.clone())));
    let mut in_skipped = false;
    // The records of a run in `piece` (all of them for `None`) into `out`, emptied first.
    let write = |mode: Mode, run: &Records<'_>, piece: Option<Piece>, out: &mut Vec<u8>| {
        out.clear();
        let mut repeat = Repeat::default();
        if mode.skipped {
            let range = piece.map_or(0..run.skipped.len(), |p| p.records);
            for s in run.skipped.get(range).unwrap_or_default() {
                outcome::element(out, |o| s.write_json(&run.texts, frags, &mut repeat, o));
            }
        } else {
            match piece {
                // A part of one action's text.
                Some(Piece { records, clauses: Some(clauses) }) => {
                    for a in run.action_views_in(&ev.rate_table, records) {
                        if clauses.start == 0 {
                            // The list's separator, before the action's first part.
                            outcome::element(out, |_| {});
                        }
                        a.write_json_part(frags, &mut repeat, out, clauses.clone());
                    }
                }
                _ => {
                    let range = piece.map_or(0..run.actions.len(), |p| p.records);
                    for a in run.action_views_in(&ev.rate_table, range) {
                        outcome::element(out, |o| a.write_json(frags, &mut repeat, o));
                    }
                }
            }
        }
    };
    // The actions' very large customers are evaluated ahead of their batches (see `Ahead`).
    ev.with_ahead(&batches[0], batch, Mode::ACTIONS, |ahead| {
        pipeline(
            items,
            |(mode, r), b: &mut Batch<'_>, hand_over| {
                b.skipped = mode.skipped;
                let (pieces, ahead) = if mode.skipped {
                    (Pieces::new(batch, |run| run.skipped.len(), false), None)
                } else {
                    (Pieces::new(batch, |run| run.actions.len(), true), Some(&mut *ahead))
                };
                let write = |run: &Records<'_>, range, out: &mut Vec<u8>| write(mode, run, range, out);
                make_batch(&ev, ahead, (r, mode, batch), pieces, b, hand_over, write);
            },
            |b| {
                if b.skipped && !in_skipped {
                    j.next_list("skipped")?;
                    in_skipped = true;
                }
                // The customer-level lists come from the first pass.
                if !b.skipped {
                    for run in &mut b.runs {
                        unassigned.append(&mut run.unassigned);
                        errors.append(&mut run.errors);
                        next.append(&mut run.next);
                    }
                }
                j.parts(b.parts.get(..b.filled).unwrap_or_default())?;
                ev.recycle(b.runs.drain(..));
                Ok(())
            },
        )
    })?;
    if !in_skipped {
        j.next_list("skipped")?;
    }
    errors.extend(ev.ix.input_errors.iter().cloned());
    finish_lists(&mut unassigned, &mut errors, &mut []);
    // One entry per customer, in the order of evaluation, which is customer id order (equal
    // ids in portfolio order, as a stable sort would leave them): no sort needed (a sort of
    // 200,000 entries already in order took ≈ 2 ms at the end, with nothing beside it).
    debug_assert!(next.is_sorted_by(|a, b| a.0.id.as_str() <= b.0.id.as_str()), "next list out of customer order");
    j.end(&unassigned, &errors, Next::Records(&next), &portfolio.warnings)
}

/// Customers per batch of the plan writers: half the evaluator's batch, as two batches are
/// in memory at a time (see [`pipeline`]).
const OUT_BATCH: usize = crate::eval::BATCH / 2;

/// One batch of customers on its way out: its records (returned to the evaluator once
/// written) and their text, in the first `filled` parts (one per run, or the pieces of a
/// large customer: see [`write_in_pieces`]).
#[derive(Default)]
struct Batch<'p> {
    runs: Vec<Records<'p>>,
    parts: Vec<Vec<u8>>,
    filled: usize,
    /// The JSON's list of skipped steps (else its actions).
    skipped: bool,
}

/// How the records of a batch are cut into pieces of text (see [`write_in_pieces`]).
#[derive(Clone, Copy)]
struct Pieces {
    /// The number of records of a run to write.
    count: fn(&Records<'_>) -> usize,
    /// The weight of a run's record (about its share of the text).
    weight_of: fn(&Records<'_>, usize) -> usize,
    /// What a piece weighs at most (unless it is one record that cannot be split).
    weight: usize,
    /// A record that weighs more than `weight` is written in parts of its weight (an
    /// action's JSON in parts of its invoices: see [`Piece::clauses`]).
    split: bool,
}

/// A piece of the text of a run's records (see [`write_in_pieces`]).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Piece {
    /// The records written.
    records: std::ops::Range<usize>,
    /// For one record written in parts: the part about these of its invoices (see
    /// [`ActionView::write_json_part`](crate::outcome::ActionView::write_json_part)).
    clauses: Option<std::ops::Range<usize>>,
}

impl Pieces {
    /// For batches of `batch` customers (1,024 for the plan writers'), pieces of about
    /// twice that many records (of one weight each: `count`), or actions of twice that many
    /// invoices in all (`by_invoices`: an action's reason has a clause per invoice; an
    /// action of more is written in parts of that many invoices).
    fn new(batch: usize, count: fn(&Records<'_>) -> usize, by_invoices: bool) -> Self {
        fn one(_: &Records<'_>, _: usize) -> usize {
            1
        }
        fn invoices(run: &Records<'_>, k: usize) -> usize {
            run.actions.get(k).map_or(1, |a| (a.ems.1 - a.ems.0) as usize)
        }
        Pieces {
            count,
            weight_of: if by_invoices { invoices } else { one },
            weight: 2 * batch.max(1),
            split: by_invoices,
        }
    }
}

/// Evaluates the batch at `r` (of batches of `batch` customers) in `mode` into `b`, with
/// its text written by `write` (a run's records at a range, or all of them for `None`, into
/// a part emptied first): run by run in the task that evaluated each, or, when the batch
/// ends with a very large customer, in `pieces` handed over as they are made (see
/// [`write_in_pieces`]); that customer's skipped steps after the actions are listed from
/// notes in slices of its invoices, each written in pieces while the next is listed (see
/// [`Evaluator::skipped_in_slices`]). With `ahead` (the batches in order, with actions), that
/// customer's records come from its evaluation ahead, and each batch of small customers
/// begins the next one's (see [`Ahead`]).
fn make_batch<'p>(
    ev: &Evaluator<'p>,
    mut ahead: Option<&mut Ahead<'p, '_, '_>>,
    (r, mode, batch): (std::ops::Range<usize>, Mode, usize),
    pieces: Pieces,
    b: &mut Batch<'p>,
    hand_over: &mut (dyn FnMut(&mut Batch<'p>) + Send),
    write: impl Fn(&Records<'p>, Option<Piece>, &mut Vec<u8>) + Sync,
) {
    let write_piece = |run: &Records<'p>, piece, out: &mut Vec<u8>| write(run, Some(piece), out);
    if in_pieces(ev, &r, batch) && mode.failed_known && !mode.actions && !ev.ix.duplicates {
        // Skipped steps after the actions: the large customer's are listed in slices, each
        // written in pieces (and handed over, from a thread of the pool) while the next is
        // listed (see `Evaluator::skipped_in_slices`), after the records of the customers
        // before it.
        let last = r.end - 1;
        let runs = ev.batch(r.start..last, mode);
        b.filled = 0;
        let skipped = b.skipped;
        let mut write_next = |runs: &[Records<'p>], b: &mut Batch<'p>| {
            if b.filled > 0 {
                hand_over(b);
                b.skipped = skipped;
                b.filled = 0;
            }
            write_in_pieces(runs, pieces, b, hand_over, write_piece);
        };
        write_next(&runs, b);
        ev.skipped_in_slices(last, SLICE_BATCHES * batch, &mut |slice| write_next(std::slice::from_ref(slice), b));
        b.runs = lists_of(runs);
    } else if in_pieces(ev, &r, batch) {
        let runs = match ahead {
            Some(ahead) => ahead.batch(r),
            None => ev.batch(r, mode),
        };
        write_in_pieces(&runs, pieces, b, hand_over, write_piece);
        b.runs = lists_of(runs);
    } else {
        if let Some(ahead) = ahead.as_mut() {
            ahead.begin(&r);
        }
        b.runs = ev.batch_then(r, mode, &mut b.parts, |run, out| write(run, None, out));
        b.filled = b.runs.len();
    }
}

/// The invoices of a very large customer whose skipped steps are listed at a time from
/// notes, per customer of a batch (see [`Evaluator::skipped_in_slices`]): 4,096 for the
/// plan writers' batches, about 10,000 records (800 KB) and 2.5 MB of JSON.
const SLICE_BATCHES: usize = 4;

/// The customer-level lists of a batch's records, once the records are written in pieces
/// (see [`write_in_pieces`]): the records themselves are freed now, instead of going to the
/// writer and back to the evaluator to be reused. A very large customer's records are
/// large (80 bytes a skipped step, more an emission): kept until written, they were beside
/// the next batch's (10^6 invoices of 20 customers: 332–342 → 302–325 MB); reused, they
/// kept their room in the evaluator's pool for the batches after (370–435 MB).
fn lists_of<'p>(mut runs: Vec<Records<'p>>) -> Vec<Records<'p>> {
    runs.iter_mut().map(Records::take_lists).collect()
}

/// Whether the batch at `r`, of batches of `batch` customers, ends with a customer that has
/// enough invoices to be written in pieces (see [`write_in_pieces`]): as many as a batch
/// holds at most ([`Evaluator::large_at_end`]), 8,192 for the plan writers' batches. Other
/// batches are written run by run as they are evaluated.
fn in_pieces(ev: &Evaluator<'_>, r: &std::ops::Range<usize>, batch: usize) -> bool {
    ev.large_at_end(r, batch).is_some()
}

/// Writes the records of `runs`, a batch's, in pieces of about `weight` (`count` gives the
/// number of records of a run, `weight_of` the weight of one: an action's is its number of
/// invoices, whose reasons make most of its text), two pieces at a time on the thread pool
/// (with `write`, which writes the records of a run in a [`Piece`] into a part, emptied
/// first). With `split`, a record heavier than a piece is written in parts of `weight`: the
/// JSON of an action of 28,000 invoices is 8 MB, and its buffer, grown to 16 MB, stayed in
/// the batch buffers that go round (four of them: 10^6 invoices of 20 customers, 279–311 →
/// 236–262 MB). Each pair is handed over to the writer with `hand_over`, but the last,
/// which goes with the batch when `make` returns: the text of a very large customer is never
/// held whole (a customer of 300,000 invoices peaked at 1,035–1,045 MB when it was one
/// part; 10^6 invoices of 20 customers at 418–433 MB), and both processors write it, where
/// one evaluated the customer. The caller puts the records in the batch afterwards, for
/// that last hand-over (with the customer-level lists).
fn write_in_pieces<'p>(
    runs: &[Records<'p>],
    Pieces { count, weight_of, weight, split }: Pieces,
    b: &mut Batch<'p>,
    hand_over: &mut (dyn FnMut(&mut Batch<'p>) + Send),
    write: impl Fn(&Records<'p>, Piece, &mut Vec<u8>) + Sync,
) {
    // The pieces, run by run: as many records as weigh at most `weight`, at least one; or,
    // with `split`, a record that weighs more in parts of `weight`.
    let weight = weight.max(1);
    let mut pieces: Vec<(&Records<'p>, Piece)> = Vec::new();
    for run in runs {
        let n = count(run);
        let mut start = 0;
        while start < n {
            let heavy = weight_of(run, start);
            if split && heavy > weight {
                for c in (0..heavy).step_by(weight) {
                    pieces.push((run, Piece { records: start..start + 1, clauses: Some(c..(c + weight).min(heavy)) }));
                }
                start += 1;
                continue;
            }
            let (mut end, mut total) = (start, 0);
            while end < n && (end == start || total + weight_of(run, end) <= weight) {
                total += weight_of(run, end);
                end += 1;
            }
            pieces.push((run, Piece { records: start..end, clauses: None }));
            start = end;
        }
    }
    let skipped = b.skipped;
    b.filled = 0;
    let mut pairs = pieces.chunks(2).peekable();
    while let Some(pair) = pairs.next() {
        if b.parts.len() < 2 {
            b.parts.resize_with(2, Vec::new);
        }
        match (pair, &mut b.parts[..]) {
            ([(r1, p1), (r2, p2)], [first, second, ..]) => {
                rayon::join(|| write(r1, p1.clone(), first), || write(r2, p2.clone(), second));
                b.filled = 2;
            }
            ([(r1, p1)], [first, ..]) => {
                write(r1, p1.clone(), first);
                b.filled = 1;
            }
            _ => {}
        }
        if pairs.peek().is_some() {
            hand_over(b);
            // A buffer written before, its records given back.
            b.skipped = skipped;
            b.filled = 0;
        }
    }
}

/// Makes the `items` (batches of customers) one after another with `make` (on the thread
/// pool), while the calling thread hands the batch before to `write`: writing to a file or
/// a pipe costs the system time, and the evaluation goes on meanwhile instead of waiting.
/// Two batch buffers go round between the two threads, reused from batch to batch. The output
/// is the same bytes, in the same order, as making and writing each batch in turn.
///
/// `make` may also hand a buffer over before its item is done, with the function it is given
/// (which puts an emptied buffer in its place, once the writer has written one): a batch
/// that ends with a very large customer is written in pieces that way (see
/// [`write_in_pieces`]), so that its text is never held whole. Each buffer goes to `write`
/// once, in the order handed. That function may be called from any thread (`make` may
/// hand over from a task of the pool), but by one at a time.
///
/// `make` runs on one scoped thread (so `write` may hold what cannot leave the calling
/// thread, such as a locked standard output). After an error of `write`, nothing more is
/// written and the error is returned once the batch being made is finished.
fn pipeline<I, B: Default + Send>(
    items: impl IntoIterator<Item = I, IntoIter: Send>,
    mut make: impl FnMut(I, &mut B, &mut (dyn FnMut(&mut B) + Send)) + Send,
    mut write: impl FnMut(&mut B) -> io::Result<()>,
) -> io::Result<()> {
    use std::sync::mpsc;
    let items = items.into_iter();
    // Made batches, one at most waiting; and buffers written, to fill again.
    let (made_tx, made_rx) = mpsc::sync_channel::<B>(1);
    let (spare_tx, spare_rx) = mpsc::channel::<B>();
    for _ in 0..2 {
        let _ = spare_tx.send(B::default());
    }
    std::thread::scope(|s| {
        let maker = s.spawn(move || {
            let (mut spare_rx, made_tx) = (spare_rx, made_tx);
            for item in items {
                // Either fails only when the writer has stopped.
                let Ok(mut b) = spare_rx.recv() else { return };
                let mut stopped = false;
                {
                    // May be called from another thread of the pool (see `make_batch`).
                    let (spare_rx, made_tx, stopped) = (&mut spare_rx, &made_tx, &mut stopped);
                    let mut hand_over = move |b: &mut B| {
                        if *stopped {
                            return;
                        }
                        match spare_rx.recv() {
                            Ok(spare) => *stopped = made_tx.send(std::mem::replace(b, spare)).is_err(),
                            Err(_) => *stopped = true,
                        }
                    };
                    make(item, &mut b, &mut hand_over);
                }
                if stopped || made_tx.send(b).is_err() {
                    return;
                }
            }
        });
        let mut written = Ok(());
        // Ends when the maker is done (it drops its sender).
        for mut b in made_rx.iter() {
            if let Err(e) = write(&mut b) {
                written = Err(e);
                break;
            }
            let _ = spare_tx.send(b);
        }
        // Unblocks a maker waiting for a buffer or to hand one over.
        drop((made_rx, spare_tx));
        if let Err(panic) = maker.join() {
            std::panic::resume_unwind(panic);
        }
        written
    })
}

/// The `next` list: the plan's values, or the evaluator's records (one per customer,
/// written without a `String` each).
enum Next<'n, 'p> {
    Plan(&'n [NextAction]),
    Records(&'n [(&'p Customer, Option<NaiveDate>)]),
}

/// Writes the JSON of a plan piece by piece (see [`to_json`] for the layout).
struct JsonPlan<'w, W: Write> {
    w: &'w mut W,
    /// No element written yet in the current list.
    empty: bool,
}

impl<'w, W: Write> JsonPlan<'w, W> {
    fn begin(w: &'w mut W, as_of: NaiveDate, hash: &str) -> io::Result<Self> {
        w.write_all(b"{\n  \"as_of\": ")?;
        serde_json::to_writer(&mut *w, &as_of)?;
        w.write_all(b",\n  \"scenarios_hash\": ")?;
        serde_json::to_writer(&mut *w, hash)?;
        w.write_all(b",\n  \"actions\": ")?;
        Ok(Self { w, empty: true })
    }

    /// Appends elements to the current list; chunks are serialised in parallel.
    fn list<T: Serialize + Sync>(&mut self, items: &[T]) -> io::Result<()> {
        const CHUNK: usize = 2048;
        for group in items.chunks(CHUNK * 16) {
            let parts: Vec<io::Result<Vec<u8>>> = group
                .par_chunks(CHUNK)
                .map(|chunk| {
                    let mut out = Vec::with_capacity(chunk.len() * 256);
                    for item in chunk {
                        outcome::serde_element(&mut out, item)?;
                    }
                    Ok(out)
                })
                .collect();
            let parts = parts.into_iter().collect::<io::Result<Vec<_>>>()?;
            self.parts(&parts)?;
        }
        Ok(())
    }

    /// Appends serialised elements, each preceded by `,\n    `.
    fn parts(&mut self, parts: &[Vec<u8>]) -> io::Result<()> {
        for part in parts {
            if part.is_empty() {
                continue;
            }
            // The first element of the list opens it instead of the separator.
            if self.empty {
                self.w.write_all(b"[\n    ")?;
                self.w.write_all(&part[6..])?;
                self.empty = false;
            } else {
                self.w.write_all(part)?;
            }
        }
        Ok(())
    }

    /// Appends the `next` list of the evaluator's records, in parallel chunks of `chunk`
    /// customers, eight chunks at a time: the text of the whole list is not held at once.
    fn next_records(&mut self, next: &[(&Customer, Option<NaiveDate>)], chunk: usize) -> io::Result<()> {
        for group in next.chunks(chunk * 8) {
            let parts: Vec<Vec<u8>> = group
                .par_chunks(chunk)
                .map(|chunk| {
                    let mut out = Vec::with_capacity(chunk.len() * 64);
                    for n in chunk {
                        outcome::element(&mut out, |o| outcome::write_next_json(n, o));
                    }
                    out
                })
                .collect();
            self.parts(&parts)?;
        }
        Ok(())
    }

    fn close_list(&mut self) -> io::Result<()> {
        if self.empty { self.w.write_all(b"[]") } else { self.w.write_all(b"\n  ]") }
    }

    fn next_list(&mut self, name: &str) -> io::Result<()> {
        self.close_list()?;
        write!(self.w, ",\n  \"{name}\": ")?;
        self.empty = true;
        Ok(())
    }

    fn end(
        mut self,
        unassigned: &[Unassigned],
        errors: &[PlanError],
        next: Next<'_, '_>,
        warnings: &[String],
    ) -> io::Result<()> {
        self.next_list("unassigned")?;
        self.list(unassigned)?;
        self.next_list("errors")?;
        self.list(errors)?;
        self.next_list("next")?;
        match next {
            Next::Plan(next) => self.list(next)?,
            Next::Records(next) => self.next_records(next, 4096)?,
        }
        self.next_list("warnings")?;
        self.list(warnings)?;
        self.close_list()?;
        self.w.write_all(b"\n}\n")?;
        self.w.flush()
    }
}

/// Quotes a CSV field and neutralises spreadsheet formulas: a text cell starting with `=`,
/// `+`, `-`, `@`, tab or carriage return is prefixed with `'` so that Excel or LibreOffice
/// shows it as text instead of running it (OWASP "CSV injection").
pub fn csv_field(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len() + 2);
    csv_field_into(text, &mut out);
    // Only ASCII bytes are added around and inside valid text.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends `text` as [`csv_field`] returns it, without a `String` of its own.
fn csv_field_into(text: &str, out: &mut Vec<u8>) {
    let quote = needs_csv_quotes(text);
    if quote {
        out.push(b'"');
    }
    if text.starts_with(FORMULA_STARTS) {
        out.push(b'\'');
    }
    if quote {
        csv_quoted_into(text, out);
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

/// Whether a field is quoted in the CSV.
fn needs_csv_quotes(text: &str) -> bool {
    text.contains([',', '"', '\n', '\r', ';'])
}

/// The first characters that make a spreadsheet read a field as a formula: such a field
/// gets a `'` first.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Appends the inside of a quoted field: `text` with its quotes doubled.
fn csv_quoted_into(text: &str, out: &mut Vec<u8>) {
    let mut pieces = text.split('"');
    if let Some(first) = pieces.next() {
        out.extend_from_slice(first.as_bytes());
    }
    for piece in pieces {
        out.extend_from_slice(b"\"\"");
        out.extend_from_slice(piece.as_bytes());
    }
}

/// One action as a CSV line: the same bytes as [`csv_line`] of its `to_action()`, written
/// straight from the records (`scratch`: room for the reason and the invoice list).
fn csv_record(a: &ActionView<'_, '_>, scratch: &mut String, out: &mut Vec<u8>) {
    csv_record_part(a, scratch, out, 0..a.ems.len());
}

/// The part of [`csv_record`]'s bytes about the invoices of `a` at `clauses`, as
/// [`ActionView::write_json_part`] cuts an action's JSON: the first part has the fields
/// before the reason, the last ends the line. The reason is always quoted (it starts with
/// `scenario "…"`), and a quote doubled or any other character of it is the same in a part
/// as in the whole.
fn csv_record_part(a: &ActionView<'_, '_>, scratch: &mut String, out: &mut Vec<u8>, clauses: std::ops::Range<usize>) {
    let (first, last) = (clauses.start == 0, clauses.end >= a.ems.len());
    if first {
        // Dates and decimals are written as their ASCII text, which needs no quoting.
        let decimal = |d: rust_decimal::Decimal, out: &mut Vec<u8>| JsonText(out).decimal(d);
        csv_field_into(std::str::from_utf8(&a.id).unwrap_or(""), out);
        out.push(b',');
        JsonText(out).date(a.date);
        for field in [&*a.customer.id, &*a.customer.name, a.scenario, a.label, &a.action.channel, &a.action.template] {
            out.push(b',');
            csv_field_into(field, out);
        }
        out.push(b',');
        csv_field_into(a.action.assign.as_deref().unwrap_or(""), out);
        out.push(b',');
        scratch.clear();
        for (i, e) in a.ems.iter().enumerate() {
            if i > 0 {
                scratch.push(' ');
            }
            scratch.push_str(&e.invoice.id);
        }
        csv_field_into(scratch, out);
        out.push(b',');
        decimal(a.outstanding, out);
        out.push(b',');
        out.extend_from_slice(a.currency.code().as_bytes());
        out.push(b',');
        decimal(a.fees, out);
        out.push(b',');
        decimal(a.interest, out);
        out.push(b',');
    }
    scratch.clear();
    a.write_reason_part(None, clauses, scratch);
    if first && last {
        csv_field_into(scratch, out);
    } else {
        debug_assert!(!first || (needs_csv_quotes(scratch) && !scratch.starts_with(FORMULA_STARTS)));
        if first {
            out.push(b'"');
        }
        csv_quoted_into(scratch, out);
        if last {
            out.push(b'"');
        }
    }
    if last {
        out.push(b'\n');
    }
}

/// The header line of the CSV of actions.
const CSV_HEADER: &str = "id,date,customer,customer_name,scenario,step,channel,template,assign,invoices,outstanding,currency,fees,interest,reason\n";

/// One action as a CSV line.
fn csv_line(a: &Action, out: &mut String) {
    let text = [
        csv_field(&a.id),
        a.date.to_string(),
        csv_field(&a.customer),
        csv_field(&a.customer_name),
        csv_field(&a.scenario),
        csv_field(&a.step),
        csv_field(&a.channel),
        csv_field(&a.template),
        csv_field(a.assign.as_deref().unwrap_or("")),
        csv_field(&a.invoices.join(" ")),
        a.outstanding.to_string(),
        a.currency.code().to_owned(),
        a.fees.to_string(),
        a.interest.to_string(),
        csv_field(&a.reason),
    ];
    out.push_str(&text.join(","));
    out.push('\n');
}

/// The actions of the plan as CSV (one line per action, header first).
pub fn to_csv(plan: &Plan) -> String {
    let mut out = String::from(CSV_HEADER);
    for a in &plan.actions {
        csv_line(a, &mut out);
    }
    out
}

/// Evaluates `portfolio` and writes the CSV of its actions: the same bytes as
/// `to_csv(&engine.evaluate(portfolio, as_of, history))`, batch by batch, in bounded memory
/// (the plan is never held whole; skipped steps, which the CSV does not list, are not built).
pub fn write_plan_csv<'p>(
    program: &Program,
    portfolio: impl Into<PortfolioRef<'p>>,
    as_of: NaiveDate,
    history: &dyn History,
    w: &mut impl Write,
) -> io::Result<()> {
    write_plan_csv_batched(program, portfolio.into(), as_of, history, w, OUT_BATCH)
}

fn write_plan_csv_batched(
    program: &Program,
    portfolio: PortfolioRef<'_>,
    as_of: NaiveDate,
    history: &dyn History,
    w: &mut impl Write,
    batch: usize,
) -> io::Result<()> {
    let ev = Evaluator::new(program, portfolio, as_of, history);
    w.write_all(CSV_HEADER.as_bytes())?;
    // The actions of a run in `piece` (all of them for `None`) into `out`, emptied first.
    let write = |run: &Records<'_>, piece: Option<Piece>, out: &mut Vec<u8>| {
        out.clear();
        let mut scratch = String::new();
        match piece {
            // A part of one action's line.
            Some(Piece { records, clauses: Some(clauses) }) => {
                for a in run.action_views_in(&ev.rate_table, records) {
                    csv_record_part(&a, &mut scratch, out, clauses.clone());
                }
            }
            _ => {
                for a in run.action_views_in(&ev.rate_table, piece.map_or(0..run.actions.len(), |p| p.records)) {
                    csv_record(&a, &mut scratch, out);
                }
            }
        }
    };
    let batches = ev.batches_side_by_side(batch);
    ev.with_ahead(&batches, batch, Mode::ACTIONS, |ahead| {
        pipeline(
            batches.clone(),
            |r, b: &mut Batch<'_>, hand_over| {
                // As for the JSON: a line's reason has a clause per invoice.
                let pieces = Pieces::new(batch, |run| run.actions.len(), true);
                make_batch(&ev, Some(&mut *ahead), (r, Mode::ACTIONS, batch), pieces, b, hand_over, write);
            },
            |b| write_parts(b, &ev, w),
        )
    })?;
    w.flush()
}

/// Formats the actions of `runs` as `line` does, one part per run, in parallel.
fn action_lines(
    runs: &[Records<'_>],
    rates: &RateTable,
    line: fn(&ActionView<'_, '_>, &mut String),
    parts: &mut Vec<Vec<u8>>,
) {
    if parts.len() < runs.len() {
        parts.resize_with(runs.len(), Vec::new);
    }
    runs.par_iter().zip(parts.par_iter_mut()).for_each(|(run, part)| {
        part.clear();
        // An empty buffer is valid text: no bytes are checked.
        let mut out = String::from_utf8(std::mem::take(part)).unwrap_or_default();
        for a in run.action_views(rates) {
            line(&a, &mut out);
        }
        *part = out.into_bytes();
    });
}

/// Writes the parts of a batch in order and gives its records back to the evaluator.
fn write_parts<'p>(b: &mut Batch<'p>, ev: &Evaluator<'p>, w: &mut impl Write) -> io::Result<()> {
    for part in b.parts.get(..b.filled).unwrap_or_default() {
        w.write_all(part)?;
    }
    ev.recycle(b.runs.drain(..));
    Ok(())
}

fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n > width {
        let cut: String = s.chars().take(width.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        format!("{s}{}", " ".repeat(width - n))
    }
}

/// The title and column headings of the table.
fn table_head(as_of: NaiveDate, hash: &str, out: &mut String) {
    let _ = writeln!(out, "Plan as of {as_of} (scenarios {})", hash.chars().take(12).collect::<String>());
    let _ = writeln!(out);
    let header = [("customer", 26), ("scenario", 18), ("step", 6), ("channel", 17), ("template", 18), ("invoices", 20)];
    let mut line = String::new();
    for (h, w) in header {
        line.push_str(&pad(h, w));
        line.push(' ');
    }
    let _ = writeln!(out, "{line}{:>12} {:>9} {:>9}", "outstanding", "fees", "interest");
}

/// The columns of a table row.
struct Row<'s> {
    customer: &'s str,
    name: &'s str,
    scenario: &'s str,
    step: &'s str,
    channel: &'s str,
    template: &'s str,
    invoices: &'s str,
    outstanding: rust_decimal::Decimal,
    fees: rust_decimal::Decimal,
    interest: rust_decimal::Decimal,
    currency: &'s str,
}

impl Row<'_> {
    fn write(&self, out: &mut String) {
        let who = format!("{} {}", self.customer, self.name);
        let cols = [
            pad(&who, 26),
            pad(self.scenario, 18),
            pad(self.step, 6),
            pad(self.channel, 17),
            pad(self.template, 18),
            pad(self.invoices, 20),
        ];
        let _ = writeln!(
            out,
            "{} {:>12} {:>9} {:>9} {}",
            cols.join(" "),
            self.outstanding.to_string(),
            self.fees.to_string(),
            self.interest.to_string(),
            self.currency
        );
    }
}

/// One action as a table row (the reason is not shown).
fn table_row(a: &Action, out: &mut String) {
    Row {
        customer: &a.customer,
        name: &a.customer_name,
        scenario: &a.scenario,
        step: &a.step,
        channel: &a.channel,
        template: &a.template,
        invoices: &a.invoices.join(" "),
        outstanding: a.outstanding,
        fees: a.fees,
        interest: a.interest,
        currency: a.currency.code(),
    }
    .write(out);
}

/// The same row as [`table_row`] of its `to_action()`, from the records (no reason, no
/// copies of the texts).
fn table_view_row(a: &ActionView<'_, '_>, out: &mut String) {
    let invoices: Vec<&str> = a.ems.iter().map(|e| e.invoice.id.as_str()).collect();
    Row {
        customer: &a.customer.id,
        name: &a.customer.name,
        scenario: a.scenario,
        step: a.label,
        channel: &a.action.channel,
        template: &a.action.template,
        invoices: &invoices.join(" "),
        outstanding: a.outstanding,
        fees: a.fees,
        interest: a.interest,
        currency: a.currency.code(),
    }
    .write(out);
}

/// The lines after the rows: counts, unassigned customers, errors, warnings.
fn table_tail(
    actions: usize,
    skipped: &dyn Fn(SkipStatus) -> usize,
    unassigned: &[Unassigned],
    errors: &[PlanError],
    warnings: &[String],
    out: &mut String,
) {
    let _ = writeln!(out);
    let _ = writeln!(out, "{actions} action(s)");
    let counts: Vec<String> = SkipStatus::ALL
        .iter()
        .filter_map(|s| {
            let n = skipped(*s);
            (n > 0).then(|| format!("{n} {}", s.as_str()))
        })
        .collect();
    if !counts.is_empty() {
        let _ = writeln!(out, "skipped: {}", counts.join(", "));
    }
    if !unassigned.is_empty() {
        let _ = writeln!(out, "{} unassigned customer(s):", unassigned.len());
        for u in unassigned {
            let _ = writeln!(out, "  {} (segment `{}`, {} open invoice(s))", u.customer, u.segment, u.open_invoices);
        }
    }
    if !errors.is_empty() {
        let _ = writeln!(out, "{} error(s):", errors.len());
        for e in errors {
            let _ = writeln!(out, "  {}: {}", e.customer, e.message);
        }
    }
    for w in warnings {
        let _ = writeln!(out, "warning: {w}");
    }
}

/// A readable terminal table of the actions, followed by counts of skipped steps,
/// unassigned customers and errors.
pub fn to_table(plan: &Plan) -> String {
    let mut out = String::new();
    table_head(plan.as_of, &plan.scenarios_hash, &mut out);
    for a in &plan.actions {
        table_row(a, &mut out);
    }
    let skipped = |s: SkipStatus| plan.skipped.iter().filter(|k| k.status == s).count();
    table_tail(plan.actions.len(), &skipped, &plan.unassigned, &plan.errors, &plan.warnings, &mut out);
    out
}

/// Evaluates `portfolio` and writes its table: the same text as
/// `to_table(&engine.evaluate(portfolio, as_of, history))`, batch by batch, in bounded memory
/// and without writing reasons (the table does not show them).
pub fn write_plan_table<'p>(
    program: &Program,
    portfolio: impl Into<PortfolioRef<'p>>,
    as_of: NaiveDate,
    history: &dyn History,
    w: &mut impl Write,
) -> io::Result<()> {
    write_plan_table_batched(program, portfolio.into(), as_of, history, w, OUT_BATCH)
}

fn write_plan_table_batched(
    program: &Program,
    portfolio: PortfolioRef<'_>,
    as_of: NaiveDate,
    history: &dyn History,
    w: &mut impl Write,
    batch: usize,
) -> io::Result<()> {
    let ev = Evaluator::new(program, portfolio, as_of, history);
    let mut head = String::new();
    table_head(as_of, &program.hash, &mut head);
    w.write_all(head.as_bytes())?;
    let (mut unassigned, mut errors) = (Vec::new(), Vec::new());
    let mut actions = 0;
    let mut skipped: std::collections::BTreeMap<SkipStatus, usize> = std::collections::BTreeMap::new();
    let batches = ev.batches_side_by_side(batch);
    ev.with_ahead(&batches, batch, Mode::FIGURES, |ahead| {
        pipeline(
            batches.clone(),
            |r, b: &mut Batch<'_>, _| {
                b.runs = ahead.batch(r);
                action_lines(&b.runs, &ev.rate_table, table_view_row, &mut b.parts);
                b.filled = b.runs.len();
            },
            |b| {
                for run in &mut b.runs {
                    unassigned.append(&mut run.unassigned);
                    errors.append(&mut run.errors);
                    actions += run.actions.len();
                    for (status, n) in SkipStatus::ALL.into_iter().zip(run.skip_counts) {
                        *skipped.entry(status).or_default() += n;
                    }
                }
                write_parts(b, &ev, w)
            },
        )
    })?;
    errors.extend(ev.ix.input_errors.iter().cloned());
    finish_lists(&mut unassigned, &mut errors, &mut []);
    let mut tail = String::new();
    table_tail(
        actions,
        &|s| skipped.get(&s).copied().unwrap_or(0),
        &unassigned,
        &errors,
        &portfolio.warnings,
        &mut tail,
    );
    w.write_all(tail.as_bytes())?;
    w.flush()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::Engine;
    use crate::compile::Registry;
    use crate::history::{MemoryHistory, NoHistory};
    use crate::model::{Customer, Invoice, Payment, PaymentKind, Portfolio};
    use chrono::Days;
    use iso_currency::Currency;
    use rust_decimal::Decimal;

    const POLICY: &str = r#"
settings { currency EUR calendar none cooldown 3 days minimum balance 20 EUR catch up latest }
scenario "Key" { for segment "key" D-5 call "check" D+3 call "follow" D+10 email "r1" D+45 registered_letter "notice" when balance >= 1000 EUR with fee 40 EUR
  after payment email "thanks" when reminders_sent >= 1
  on broken promise call "promise" }
scenario "Step" { for segment "step" catch up stepwise D+1 email "a" D+20 letter "b" with fee 10 EUR pause when promise_to_pay }
scenario "Others" { for others D-10 email "statement" D+3 email "r1" when amount > 500 EUR and days_late > 2 D+15 letter "r2"
  D+30 registered_letter "notice" with fee 40 EUR with interest 12.15% per year pause when disputed stop when customer.tags has "hold" }
"#;

    /// The engine of [`POLICY`].
    fn policy_engine() -> Engine {
        Engine::from_sources(vec![relance_dsl::Source::new("p.relance", POLICY)], &Registry::new()).unwrap()
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// A varied portfolio: every segment, payments, promises, disputes, tags, a repeated
    /// customer id, an invoice of an unknown customer, customers in shuffled order.
    fn portfolio(invoices: usize) -> Portfolio {
        let customers = (invoices / 4).max(2);
        let segments = ["key", "step", "sme", "micro"];
        let mut p = Portfolio::default();
        for i in 0..customers {
            let n = (i * 7919) % customers;
            let mut c = Customer::new(format!("C{n:05}"), format!("Client \"{n}\" é"), segments[n % 4]);
            if n.is_multiple_of(13) {
                c.tags.push("hold".into());
            }
            p.customers.push(c);
        }
        p.customers.push(Customer::new("C00001", "Twin", "others"));
        let base = day(2026, 1, 1);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for k in 0..invoices {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let due = base.checked_add_days(Days::new(x % 90)).unwrap();
            let cust = if k == 5 { "NOBODY".to_string() } else { format!("C{:05}", (x >> 20) as usize % customers) };
            let mut inv =
                Invoice::new(format!("F{k:06}"), cust, due, Decimal::new((x % 200_000) as i64 + 100, 2), Currency::EUR);
            inv.disputed = x.is_multiple_of(17);
            if x.is_multiple_of(11) {
                inv.promise_date = Some(day(2026, 2, 20 + (x % 20) as u32 % 8));
            }
            if x.is_multiple_of(7) {
                p.payments.push(Payment {
                    id: None,
                    invoice_id: inv.id.clone(),
                    date: due.checked_add_days(Days::new(x % 30)).unwrap(),
                    amount: inv.amount / Decimal::from(1 + x % 2),
                    kind: PaymentKind::Payment,
                });
            }
            p.invoices.push(inv);
        }
        p.warnings.push("a loader warning".into());
        p
    }

    /// [`portfolio`] of `invoices` without its repeated customer id, each invoice but every
    /// third (and the one of an unknown customer) changed by `change` (given its number),
    /// which moves it to a large customer.
    fn with_large_customers(invoices: usize, mut change: impl FnMut(usize, &mut Invoice)) -> Portfolio {
        let mut p = portfolio(invoices);
        p.customers.retain(|c| c.name != "Twin");
        for (k, inv) in p.invoices.iter_mut().enumerate() {
            if k % 3 != 0 && inv.customer_id != "NOBODY" {
                change(k, inv);
            }
        }
        p
    }

    /// [`with_large_customers`] of 3,200 invoices, two thirds of them to 20 customers, about
    /// 107 each: 10 of them side by side in id order, 10 with small customers between them.
    fn twenty_large_customers() -> Portfolio {
        let large: Vec<compact_str::CompactString> =
            (0..20).map(|c| format!("C{:05}", if c < 10 { 100 + c } else { 40 * c - 200 }).into()).collect();
        with_large_customers(3200, |k, inv| inv.customer_id = large[k % 60 / 3].clone())
    }

    /// The customer of invoice `k` of [`with_large_customers`] among three large ones.
    fn three_large(k: usize) -> compact_str::CompactString {
        format!("C{:05}", [3, 100, 150][k % 9 / 3]).into()
    }

    #[test]
    fn written_json_is_the_same_bytes_as_to_json() {
        let engine = policy_engine();
        let p = portfolio(600);
        let mut history = MemoryHistory::new();
        for (t, batch) in [(day(2026, 2, 10), 1), (day(2026, 3, 1), 3), (day(2026, 3, 4), 1000)] {
            let plan = engine.evaluate(&p, t, &history);
            assert!(!plan.actions.is_empty() && !plan.skipped.is_empty() && !plan.errors.is_empty());
            let want = to_json(&plan);
            let mut got = Vec::new();
            write_json(&plan, &mut got).unwrap();
            assert_eq!(String::from_utf8(got).unwrap(), want);
            let mut streamed = Vec::new();
            write_plan_json_batched(engine.program(), (&p).into(), t, &history, &mut streamed, batch).unwrap();
            assert_eq!(String::from_utf8(streamed).unwrap(), want, "batch size {batch}");
            history.record(&plan);
        }
    }

    /// Few customers with many invoices next to many with few: batches and runs are cut by
    /// invoices as well as by customers (never inside a customer), and the plan written is
    /// the same whatever the sizes.
    #[test]
    fn large_customers_are_evaluated_in_batches_of_bounded_invoices() {
        let engine = policy_engine();
        // Two thirds of the invoices go to three customers.
        let p = with_large_customers(900, |k, inv| inv.customer_id = three_large(k));
        let history = MemoryHistory::new();
        let t = day(2026, 3, 1);
        let plan = engine.evaluate(&p, t, &history);
        let want = texts(&plan);
        let ev = Evaluator::new(engine.program(), &p, t, &history);
        for size in [1, 4, 16, 1000] {
            let batches = ev.batches(size);
            assert_eq!(batches.first().map(|b| b.start), Some(0));
            assert!(batches.windows(2).all(|w| w[0].end == w[1].start));
            assert_eq!(batches.last().map(|b| b.end), Some(ev.ix.order.len()));
            let most = size * crate::eval::INVOICES_PER_CUSTOMER;
            for b in &batches {
                let counts: Vec<usize> = ev.ix.order[b.clone()].iter().map(|&c| ev.invoice_range(c).len()).collect();
                assert!(b.len() <= size, "{b:?}");
                // Only its last customer takes a batch to the most invoices or beyond.
                assert!(counts.iter().rev().skip(1).sum::<usize>() < most, "{b:?}: {counts:?}");
                let runs = ev.runs(b.clone());
                assert_eq!(runs.first().map(|r| r.start), Some(b.start));
                assert!(runs.windows(2).all(|w| w[0].end == w[1].start));
                assert_eq!(runs.last().map(|r| r.end), Some(b.end));
            }
            if size == 16 {
                // 225 customers, three of them with about 200 invoices each: cut by
                // customers alone, 15 batches.
                assert!(batches.len() > 225usize.div_ceil(16), "{}", batches.len());
            }
            // The three large customers are written in pieces, but with the largest batches,
            // and some of their actions in parts (more invoices than a piece takes).
            let in_pieces = batches.iter().filter(|b| in_pieces(&ev, b, size)).count();
            assert_eq!(in_pieces, if size < 32 { 3 } else { 0 }, "batch size {size}");
            let large = ["C00003", "C00100", "C00150"];
            let in_parts =
                plan.actions.iter().filter(|a| large.contains(&a.customer.as_str()) && a.invoices.len() > 2 * size);
            assert!(size >= 32 || in_parts.count() >= 3, "batch size {size}");
            assert_written_in_batches(&engine, &p, (t, &history), size, &want);
        }
    }

    /// Many very large customers: batches that end with one are joined when they follow
    /// each other, as many as the pool has threads while the invoices beyond the largest
    /// customer's are at most a sixteenth of the portfolio's, and evaluated side by side;
    /// the plan is the same in every format.
    #[test]
    fn very_large_customers_are_evaluated_side_by_side() {
        let engine = policy_engine();
        let p = twenty_large_customers();
        let history = MemoryHistory::new();
        let t = day(2026, 3, 1);
        let plan = engine.evaluate(&p, t, &history);
        let want = texts(&plan);
        let ev = Evaluator::new(engine.program(), &p, t, &history);
        let share = p.invoices.len() / 16;
        for (size, threads) in [(4, 1), (4, 2), (4, 3), (8, 4), (1000, 2)] {
            let alone = ev.batches(size);
            let joined = ev.side_by_side(alone.clone(), size, threads);
            // The same customers, in order, each batch of `joined` made of whole batches of
            // `alone`.
            assert_eq!(joined.first().map(|b| b.start), Some(0));
            assert!(joined.windows(2).all(|w| w[0].end == w[1].start));
            assert_eq!(joined.last().map(|b| b.end), Some(ev.ix.order.len()));
            assert!(joined.iter().all(|j| alone.iter().any(|a| a.start == j.start)));
            let most = size * crate::eval::INVOICES_PER_CUSTOMER;
            let counts = |b: &std::ops::Range<usize>| -> Vec<usize> {
                ev.ix.order[b.clone()].iter().map(|&c| ev.invoice_range(c).len()).collect()
            };
            let mut side_by_side = 0;
            for j in joined.iter().filter(|j| !alone.contains(j)) {
                let held = counts(j);
                let big = held.iter().filter(|&&n| n >= most).count();
                // Batches that each end with a large customer.
                let parts: Vec<_> = alone.iter().filter(|a| j.start <= a.start && a.end <= j.end).collect();
                assert!(parts.len() >= 2 && parts.iter().all(|a| counts(a).last() >= Some(&most)), "{j:?}: {held:?}");
                assert!(big >= 2 && big <= threads, "{j:?}: {held:?}");
                assert!(held.iter().sum::<usize>() - held.iter().max().unwrap() <= share, "{j:?}: {held:?}");
                side_by_side = side_by_side.max(big);
            }
            // The large customers side by side (about 107 invoices each) are joined in twos
            // when the pool has the threads (a third one would take the joined batch's
            // invoices beyond its largest customer's over a sixteenth); the others not.
            match (size, threads) {
                (4, 1) | (1000, _) => assert_eq!(joined, alone, "batch size {size}, {threads} threads"),
                _ => assert_eq!(side_by_side, 2, "batch size {size}, {threads} threads"),
            }
            assert_written_in_batches(&engine, &p, (t, &history), size, &want);
        }
    }

    /// Very large customers with small ones between them are evaluated ahead of their
    /// batches, one at a time, each launched as a batch of small customers begins: the
    /// records of every batch are those of its evaluation in place, in every mode, for
    /// batches alone or side by side; adjacent large customers are not evaluated ahead.
    #[test]
    fn very_large_customers_between_small_ones_are_evaluated_ahead() {
        let engine = policy_engine();
        let p = twenty_large_customers();
        let history = MemoryHistory::new();
        let t = day(2026, 3, 1);
        for mode in [Mode::ACTIONS, Mode::FIGURES, Mode::ALL, Mode::COUNTS] {
            for (size, joined) in [(4, false), (4, true), (8, true), (1000, true)] {
                let ev = Evaluator::new(engine.program(), &p, t, &history);
                let alone = ev.batches(size);
                let batches = if joined { ev.side_by_side(alone, size, 2) } else { alone };
                let (got, launched) = ev.with_ahead(&batches, size, mode, |ahead| {
                    let got: Vec<String> = batches.iter().map(|r| said(&ev, &ahead.batch(r.clone()))).collect();
                    (got, ahead.launched)
                });
                let want: Vec<String> = batches.iter().map(|r| said(&ev, &ev.batch(r.clone(), mode))).collect();
                assert!(got == want, "{mode:?}, batch size {size}, joined {joined}");
                // The 10 with small customers between them, and the first of the side by
                // side ones (after small customers), when they fill a batch.
                let want_launched = if size == 1000 { 0 } else { 11 };
                assert_eq!(launched, want_launched, "batch size {size}, joined {joined}");
            }
        }
    }

    /// What the records of a batch say, whatever its runs: actions, skipped steps, counts,
    /// next dates, unassigned customers and errors, comparable.
    fn said(ev: &Evaluator<'_>, runs: &[Records<'_>]) -> String {
        let (mut actions, mut skipped, mut next) = (Vec::new(), Vec::new(), Vec::new());
        let mut counts = [0; SkipStatus::ALL.len()];
        let (mut unassigned, mut errors) = (Vec::new(), Vec::new());
        for run in runs {
            actions.extend(run.action_views(&ev.rate_table).map(|a| a.to_action()));
            skipped.extend(run.skipped.iter().map(|s| s.to_skipped(&run.texts)));
            next.extend(run.next.iter().map(crate::outcome::next_action));
            counts.iter_mut().zip(run.skip_counts).for_each(|(c, n)| *c += n);
            unassigned.extend(run.unassigned.iter().cloned());
            errors.extend(run.errors.iter().cloned());
        }
        format!("{actions:?}\n{skipped:?}\n{counts:?}\n{next:?}\n{unassigned:?}\n{errors:?}")
    }

    /// A very large customer's facts found twice, streamed, instead of held, give the
    /// records of the facts held, in every mode, invoices that share their id included.
    #[test]
    fn a_very_large_customers_streamed_facts_give_the_same_records() {
        let engine = policy_engine();
        // Three large customers, the first with pairs of invoices that share their id.
        let p = with_large_customers(900, |k, inv| {
            inv.customer_id = three_large(k);
            if k % 9 / 3 == 0 {
                inv.id = format!("F{:06}", k - k % 2).into();
            }
        });
        let history = MemoryHistory::new();
        for t in [day(2026, 2, 10), day(2026, 3, 1), day(2026, 4, 1)] {
            let streamed = Evaluator::new(engine.program(), &p, t, &history).with_stream_facts_from(2);
            let held = Evaluator::new(engine.program(), &p, t, &history).with_stream_facts_from(usize::MAX);
            let large = |ev: &Evaluator<'_>| ev.ix.order.iter().filter(|&&c| ev.invoice_range(c).len() > 100).count();
            assert_eq!(large(&streamed), 3);
            for mode in [Mode::ALL, Mode::ACTIONS, Mode::FIGURES, Mode::COUNTS] {
                for r in streamed.batches(1000) {
                    let (got, want) =
                        (said(&streamed, &streamed.batch(r.clone(), mode)), said(&held, &held.batch(r, mode)));
                    assert!(got == want, "as of {t}, {mode:?}");
                    assert!(got.contains("C00003"));
                }
            }
        }
    }

    /// The texts of a plan in JSON, CSV and table.
    fn texts(plan: &Plan) -> [String; 3] {
        [to_json(plan), to_csv(plan), to_table(plan)]
    }

    /// The plan of `p` as of `t` written by the three writers in batches of `size`
    /// customers is `want` (see [`texts`]).
    fn assert_written_in_batches(
        engine: &Engine,
        p: &Portfolio,
        (t, history): (NaiveDate, &dyn History),
        size: usize,
        want: &[String; 3],
    ) {
        let mut written: [Vec<u8>; 3] = Default::default();
        write_plan_json_batched(engine.program(), p.into(), t, history, &mut written[0], size).unwrap();
        write_plan_csv_batched(engine.program(), p.into(), t, history, &mut written[1], size).unwrap();
        write_plan_table_batched(engine.program(), p.into(), t, history, &mut written[2], size).unwrap();
        for ((got, want), format) in written.into_iter().zip(want).zip(["json", "csv", "table"]) {
            assert_eq!(String::from_utf8(got).unwrap(), *want, "{format}, batch size {size}");
        }
    }

    /// The skipped steps of a large customer listed from notes in slices are the records of
    /// its evaluation, in order, a slice at a time (the blocked invoices' reasons from the
    /// customer's facts, found once); a note that cannot be listed after some slices were
    /// handed has the rest of the customer evaluated, and the records after those handed
    /// come at once.
    #[test]
    fn a_large_customer_is_listed_from_notes_in_slices() {
        let engine = policy_engine();
        // Two thirds of the invoices go to three customers. Those of two are over 500 EUR;
        // the third one's reminder `when amount > 500 EUR` does not hold for some, a skipped
        // step that notes do not hold: it is evaluated.
        let p = with_large_customers(900, |k, inv| {
            inv.customer_id = three_large(k);
            if k % 9 / 3 < 2 {
                inv.amount += Decimal::new(50_000, 2);
            }
        });
        let t = day(2026, 3, 1);
        let history = MemoryHistory::new();
        let skipped_of = |run: &Records<'_>| -> Vec<crate::plan::Skipped> {
            run.skipped.iter().map(|s| s.to_skipped(&run.texts)).collect()
        };
        for spoil in [false, true] {
            let noted = Evaluator::new(engine.program(), &p, t, &history).with_skip_notes();
            let plain = Evaluator::new(engine.program(), &p, t, &history);
            for r in noted.batches(1000) {
                noted.batch(r.clone(), Mode::ACTIONS);
                plain.batch(r, Mode::ACTIONS);
            }
            let large: Vec<usize> =
                (0..noted.ix.order.len()).filter(|&at| noted.invoice_range(noted.ix.order[at]).len() > 100).collect();
            assert_eq!(large.len(), 3);
            let mut sliced = 0;
            for &at in &large {
                let n = noted.invoice_range(noted.ix.order[at]).len();
                let want: Vec<crate::plan::Skipped> =
                    plain.batch(at..at + 1, Mode::SKIPPED_AFTER_ACTIONS).iter().flat_map(skipped_of).collect();
                let name = &p.customers[noted.ix.order[at] as usize].id;
                if spoil {
                    noted.spoil_note(at, n / 2);
                }
                for slice in [1, 7, 64, n] {
                    let mut handed: Vec<Vec<crate::plan::Skipped>> = Vec::new();
                    noted.skipped_in_slices(at, slice, &mut |run| handed.push(skipped_of(run)));
                    assert_eq!(handed.concat(), want, "{name}, slices of {slice}");
                    if name == "C00150" {
                        // Not listed from notes: evaluated, its records at once.
                        assert_eq!(handed.len(), 1, "{name}");
                        continue;
                    }
                    sliced += 1;
                    if name == "C00003" {
                        // Its disputed invoices are paused: their reasons read the customer's
                        // facts, found once for all slices.
                        assert!(want.iter().any(|s| s.status == SkipStatus::Paused), "{name}");
                    }
                    // A slice per `slice` invoices; with a spoiled note, those before the
                    // slice of the spoiled invoice, then the rest at once.
                    let slices = if spoil { (n / 2) / slice + 1 } else { n.div_ceil(slice) };
                    assert_eq!(handed.len(), slices, "{name}, slices of {slice}");
                }
            }
            assert_eq!(sliced, 8);
        }
    }

    /// A large customer's emissions grouped into actions by sorting their positions (each
    /// emission moved once) give the actions of the sort of the emissions themselves: by
    /// classes of step and currency, or, for more classes than that takes (a broken promise
    /// on each of a hundred dates), by comparing them; `per invoice` steps one action each.
    #[test]
    fn grouping_by_position_gives_the_actions_of_a_sort_of_the_emissions() {
        let policy = r#"
settings { currency EUR calendar none catch up latest }
scenario "All" { for others D-5 email "soon" D+3 email "r1" D+10 letter "r2" per invoice D+30 registered_letter "notice"
  on broken promise call "promise" }
"#;
        let engine =
            Engine::from_sources(vec![relance_dsl::Source::new("p.relance", policy)], &Registry::new()).unwrap();
        let p = with_large_customers(1500, |k, inv| {
            inv.customer_id = format!("C{:05}", [3, 100][k % 2]).into();
            // Two currencies; C00100's promises broken on as many dates as invoices.
            if k % 5 == 0 {
                inv.currency = Currency::USD;
            }
            if k % 2 == 1 {
                inv.promise_date = day(2025, 9, 1).checked_add_days(Days::new(k as u64 % 180));
            }
        });
        let t = day(2026, 3, 1);
        let history = MemoryHistory::new();
        let actions = |ev: &Evaluator<'_>| -> Vec<Action> {
            let mut all = Vec::new();
            for r in ev.batches(1000) {
                for run in ev.batch(r, Mode::ALL) {
                    all.extend(run.action_views(&ev.rate_table).map(|a| a.to_action()));
                }
            }
            all
        };
        let by_position = Evaluator::new(engine.program(), &p, t, &history).with_sort_by_position_from(2);
        let sorted = Evaluator::new(engine.program(), &p, t, &history).with_sort_by_position_from(usize::MAX);
        let (got, want) = (actions(&by_position), actions(&sorted));
        assert_eq!(got, want);
        let of = |c: &str, step: &str| want.iter().filter(|a| a.customer == c && a.step.starts_with(step)).count();
        // Each customer's steps in euros and in dollars; one action per invoice at D+10; a
        // broken promise on each of many dates.
        assert!(of("C00003", "D+30") == 2 && of("C00003", "D+10") > 10, "{}", of("C00003", "D+10"));
        let classes: std::collections::BTreeSet<(&str, Currency)> =
            want.iter().filter(|a| a.customer == "C00100").map(|a| (a.step_key.as_str(), a.currency)).collect();
        assert!(classes.len() > crate::eval::MAX_CLASSES, "{}", classes.len());
    }

    /// A large customer's records are written in pieces of the weight asked (a piece of one
    /// record may weigh more, unless records are split), run after run and in order, two at
    /// a time, every pair but the last handed over; a record split is written in parts of
    /// the weight asked, in order, from its first invoice to its last.
    #[test]
    fn a_large_customer_is_written_in_pieces_of_bounded_weight() {
        // Runs of `n` records, told apart by their number of next dates (the test's way to
        // give records a count); record `k` of a run weighs `k % 5` (an action without
        // invoices weighs nothing), but record 3 of a run of 40 weighs more than any piece.
        let count = |run: &Records<'_>| run.next.len();
        let weight_of = |run: &Records<'_>, k: usize| if k == 3 && run.next.len() == 40 { 1000 } else { k % 5 };
        let run_of = |n: usize| Records { next: vec![(&CUSTOMER, None); n], ..Records::default() };
        static CUSTOMER: std::sync::LazyLock<Customer> = std::sync::LazyLock::new(|| Customer::new("C1", "n", "s"));
        for split in [false, true] {
            for (sizes, weight) in [
                (vec![], 4),
                (vec![0], 4),
                (vec![1], 4),
                (vec![7], 4),
                (vec![8, 9], 4),
                (vec![3, 0, 40], 1),
                (vec![40], 100),
                (vec![40], 999),
                (vec![40], 1000),
                (vec![2, 2, 2], 100),
            ] {
                let runs: Vec<Records<'_>> = sizes.iter().map(|&n| run_of(n)).collect();
                let mut b = Batch::default();
                let mut handed: Vec<Vec<String>> = Vec::new();
                let text = |b: &Batch<'_>| -> Vec<String> {
                    b.parts[..b.filled].iter().map(|p| String::from_utf8(p.clone()).unwrap()).collect()
                };
                let mut hand_over = |b: &mut Batch<'_>| {
                    handed.push(text(b));
                    *b = Batch::default();
                };
                let pieces = Pieces { count, weight_of, weight, split };
                write_in_pieces(&runs, pieces, &mut b, &mut hand_over, |run, piece, out| {
                    out.clear();
                    let (r, c) = (piece.records, piece.clauses.unwrap_or(0..0));
                    out.extend(format!("{}:{}..{}:{}..{}", run.next.len(), r.start, r.end, c.start, c.end).bytes());
                });
                let last = text(&b);
                // Every pair handed over is whole; the last may be one piece.
                assert!(handed.iter().all(|pair| pair.len() == 2), "{handed:?}");
                assert!(last.len() <= 2, "{last:?}");
                let pieces: Vec<(usize, usize, usize, usize, usize)> = handed
                    .iter()
                    .flatten()
                    .chain(&last)
                    .map(|p| {
                        let n: Vec<usize> =
                            p.split([':', '.']).filter(|x| !x.is_empty()).map(|x| x.parse().unwrap()).collect();
                        (n[0], n[1], n[2], n[3], n[4])
                    })
                    .collect();
                // Run after run, each from its first record to its last; a run without records
                // has no piece.
                let mut expected = sizes.iter().filter(|&&n| n > 0).peekable();
                let (mut next, mut clause) = (0, 0);
                for &(n, start, end, c0, c1) in &pieces {
                    if next == 0 && clause == 0 {
                        assert_eq!(Some(&n), expected.next(), "{pieces:?}");
                    }
                    assert_eq!(start, next, "{pieces:?}");
                    assert!(end > start, "{pieces:?}");
                    let run = run_of(n);
                    let total: usize = (start..end).map(|k| weight_of(&run, k)).sum();
                    if c1 > 0 {
                        // A part of one record, that weighs more than a piece: the parts of
                        // the weight asked, the last one with the rest.
                        assert!(split && end - start == 1 && total > weight, "{pieces:?}");
                        assert_eq!(c0, clause, "{pieces:?}");
                        assert!(c1 - c0 == weight || (c1 == total && c1 - c0 <= weight), "{pieces:?}");
                        clause = if c1 == total { 0 } else { c1 };
                        next = if clause > 0 {
                            start
                        } else if end == n {
                            0
                        } else {
                            end
                        };
                        continue;
                    }
                    assert!(end - start == 1 || total <= weight, "{pieces:?}");
                    assert!(!split || total <= weight, "{pieces:?}");
                    // Each piece takes as many records as fit.
                    assert!(end == n || total + weight_of(&run, end) > weight, "{pieces:?}");
                    next = if end == n { 0 } else { end };
                }
                assert_eq!((next, clause, expected.next()), (0, 0, None), "{sizes:?}: {pieces:?}");
                assert_eq!(handed.len(), pieces.len().div_ceil(2).saturating_sub(1), "{sizes:?}");
                // Records heavier than a piece are split when asked, in as many parts as
                // their weight needs.
                let parts = pieces.iter().filter(|p| p.4 > 0).count();
                let want: usize = runs
                    .iter()
                    .flat_map(|run| (0..count(run)).map(|k| weight_of(run, k)))
                    .filter(|&w| split && w > weight)
                    .map(|w| w.div_ceil(weight))
                    .sum();
                assert_eq!(parts, want, "{sizes:?}, weight {weight}, split {split}");
                assert!(!split || sizes != [40] || weight == 1000 || parts > 1, "{sizes:?}, weight {weight}");
            }
        }
    }

    /// For each of `dates` in turn (each plan recorded in the history before the next): the
    /// skipped steps that the notes of the actions' pass list, batch by batch, are the records
    /// that an evaluation for the skipped steps makes (each batch's are handed to `listed`);
    /// the evaluator with notes goes to `noted` once it has listed them all; and the plan
    /// written is the plan evaluated at once, whatever the batch size.
    fn check_listing_from_notes(
        engine: &Engine,
        p: &Portfolio,
        dates: &[NaiveDate],
        mut listed: impl FnMut(&[crate::plan::Skipped]),
        mut noted: impl FnMut(&Evaluator<'_>),
    ) {
        let mut history = MemoryHistory::new();
        for &t in dates {
            let with_notes = Evaluator::new(engine.program(), p, t, &history).with_skip_notes();
            let plain = Evaluator::new(engine.program(), p, t, &history);
            for r in with_notes.batches(40) {
                with_notes.batch(r.clone(), Mode::ACTIONS);
                plain.batch(r.clone(), Mode::ACTIONS);
                let of = |runs: Vec<Records<'_>>| -> Vec<crate::plan::Skipped> {
                    runs.iter().flat_map(|run| run.skipped.iter().map(|s| s.to_skipped(&run.texts))).collect()
                };
                let (got, want) = (
                    of(with_notes.batch(r.clone(), Mode::SKIPPED_AFTER_ACTIONS)),
                    of(plain.batch(r, Mode::SKIPPED_AFTER_ACTIONS)),
                );
                assert_eq!(got, want, "as of {t}");
                listed(&got);
            }
            noted(&with_notes);
            let plan = engine.evaluate(p, t, &history);
            for batch in [1, 7, 1000] {
                let mut streamed = Vec::new();
                write_plan_json_batched(engine.program(), p.into(), t, &history, &mut streamed, batch).unwrap();
                assert_eq!(String::from_utf8(streamed).unwrap(), to_json(&plan), "as of {t}, batch size {batch}");
            }
            history.record(&plan);
        }
    }

    /// The skipped steps listed from the notes of the actions' pass are the records that an
    /// evaluation for the skipped steps makes, customer by customer, for most customers (the
    /// others, with deferred steps or below the minimum, are evaluated again; paused and
    /// stopped ones are listed from the rule noted); and the plan written is the plan
    /// evaluated at once.
    #[test]
    fn skipped_steps_from_notes_are_the_records_of_an_evaluation() {
        let engine = policy_engine();
        let mut p = portfolio(800);
        // Without the repeated customer id (notes are not kept when ids repeat).
        p.customers.retain(|c| c.name != "Twin");
        let customers = p.customers.len();
        let (mut listed, mut superseded, mut expired, mut blocked, mut blocked_noted) = (0, 0, 0, 0, 0);
        let dates = [day(2026, 2, 10), day(2026, 3, 1), day(2026, 3, 4), day(2026, 4, 20)];
        check_listing_from_notes(
            &engine,
            &p,
            &dates,
            |got| {
                listed += got.len();
                superseded += got.iter().filter(|s| s.status == SkipStatus::Superseded).count();
                expired += got.iter().filter(|s| s.status == SkipStatus::Expired).count();
                blocked += got.iter().filter(|s| matches!(s.status, SkipStatus::Paused | SkipStatus::Stopped)).count();
            },
            |noted| {
                blocked_noted += noted.noted_blocked_invoices();
                assert!(noted.noted_customers() * 2 > customers, "{} of {customers} noted", noted.noted_customers());
            },
        );
        assert!(listed > 0 && superseded > 0 && expired > 0, "{listed} {superseded} {expired}");
        // Paused and stopped steps too, their invoices noted with the rule that blocked them.
        assert!(blocked > 0 && blocked_noted > 0, "{blocked} {blocked_noted}");
    }

    /// Events that a stop or pause rule blocks (a broken promise of a disputed invoice, a
    /// payment of a customer on hold) are noted with the rule, as the invoice's steps: their
    /// customers are listed from notes, with the records an evaluation makes (events after
    /// steps, by label, two events of one kind in the scenario's order), and the plan
    /// written is the plan evaluated at once.
    #[test]
    fn blocked_events_are_listed_from_notes() {
        let policy = r#"
settings { currency EUR calendar none catch up latest }
scenario "All" { for others D-5 email "soon" D+3 email "r1" D+10 letter "r2" D+30 registered_letter "notice"
  on broken promise call "promise"
  after payment email "thanks" when reminders_sent >= 1
  on broken promise email "promise-mail"
  pause when disputed stop when customer.tags has "hold" }
"#;
        let engine =
            Engine::from_sources(vec![relance_dsl::Source::new("p.relance", policy)], &Registry::new()).unwrap();
        let mut p = portfolio(800);
        p.customers.retain(|c| c.name != "Twin");
        let customers = p.customers.len();
        let (mut events_listed, mut events_noted) = (0, 0);
        let dates = [day(2026, 1, 20), day(2026, 2, 10), day(2026, 3, 1), day(2026, 3, 20)];
        check_listing_from_notes(
            &engine,
            &p,
            &dates,
            |got| {
                events_listed +=
                    got.iter().filter(|s| matches!(s.step.as_str(), "on broken promise" | "after payment")).count();
            },
            |noted| {
                events_noted += noted.noted_blocked_events();
                // Every customer is noted but those whose steps' conditions did not hold.
                assert!(
                    noted.noted_customers() * 10 > customers * 9,
                    "{} of {customers} noted",
                    noted.noted_customers()
                );
            },
        );
        assert!(events_listed > 0 && events_noted > 0, "{events_listed} {events_noted}");
    }

    /// The blocked invoices of very large customers are listed from notes with the balances
    /// their evaluation kept: the reasons quote the customer's balance as the evaluation's.
    #[test]
    fn a_large_customers_blocked_reasons_quote_the_balances_kept() {
        let policy = r#"
settings { currency EUR calendar none catch up latest }
scenario "All" { for others D-5 email "soon" D+3 email "r1" D+10 letter "r2" D+30 registered_letter "notice"
  pause when disputed and balance >= 100 EUR }
"#;
        let engine =
            Engine::from_sources(vec![relance_dsl::Source::new("p.relance", policy)], &Registry::new()).unwrap();
        let p = with_large_customers(900, |k, inv| inv.customer_id = three_large(k));
        let large = ["C00003", "C00100", "C00150"];
        let mut quoted = 0;
        check_listing_from_notes(
            &engine,
            &p,
            &[day(2026, 3, 1), day(2026, 3, 20)],
            |got| {
                quoted += got
                    .iter()
                    .filter(|s| large.contains(&s.customer.as_str()) && s.reason.contains("balance = "))
                    .count();
            },
            |noted| assert_eq!(noted.kept_books(), 3),
        );
        assert!(quoted > 0);
    }

    /// Steps beyond what a note holds, and trigger dates moved to business days, list the
    /// same skipped steps as an evaluation at once.
    #[test]
    fn long_scenarios_and_business_days_list_the_same_skipped_steps() {
        let steps: String = (1..=15).map(|d| format!(" D+{d} email \"r{d}\"")).collect();
        let policy = format!(
            "settings {{ currency EUR calendar WEEKDAYS catch up latest }}\n\
             scenario \"Long\" {{ for segment \"long\" D-20 email \"early\" D-10 email \"before\"{steps} }}\n\
             scenario \"Short\" {{ for others count business days D-3 call \"check\" D+2 email \"a\" D+9 letter \"b\" D+30 letter \"c\" }}\n"
        );
        #[derive(Debug)]
        struct Weekdays;
        impl crate::calendar::Calendar for Weekdays {
            fn name(&self) -> &str {
                "WEEKDAYS"
            }
            fn is_business_day(&self, d: NaiveDate) -> bool {
                use chrono::Datelike;
                d.weekday().number_from_monday() <= 5
            }
        }
        let mut registry = Registry::new();
        registry.calendars.insert("WEEKDAYS".to_owned(), std::sync::Arc::new(Weekdays));
        let engine = Engine::from_sources(vec![relance_dsl::Source::new("p.relance", policy)], &registry).unwrap();
        let mut p = Portfolio::default();
        let t = day(2026, 5, 4);
        for c in 0..40u64 {
            let segment = if c % 2 == 0 { "long" } else { "short" };
            p.customers.push(Customer::new(format!("C{c:02}"), "n", segment));
            for k in 0..4u64 {
                let due = t.checked_sub_days(Days::new((c * 7 + k * 11) % 60)).unwrap();
                p.invoices.push(Invoice::new(
                    format!("F{c:02}{k}"),
                    format!("C{c:02}"),
                    due,
                    Decimal::new(10_000, 2),
                    Currency::EUR,
                ));
            }
        }
        let plan = engine.evaluate(&p, t, &NoHistory);
        assert!(plan.skipped.iter().any(|s| s.scenario == "Long" && s.status == SkipStatus::Superseded));
        assert!(plan.skipped.iter().any(|s| s.scenario == "Short" && s.status == SkipStatus::Expired));
        let ev = Evaluator::new(engine.program(), &p, t, &NoHistory).with_skip_notes();
        for r in ev.batches(1000) {
            ev.batch(r, Mode::ACTIONS);
        }
        // The customers of the long scenario are evaluated again; the others are noted.
        assert_eq!(ev.noted_customers(), 20);
        for batch in [1, 3, 1000] {
            let mut streamed = Vec::new();
            write_plan_json_batched(engine.program(), (&p).into(), t, &NoHistory, &mut streamed, batch).unwrap();
            assert_eq!(String::from_utf8(streamed).unwrap(), to_json(&plan), "batch size {batch}");
        }
    }

    /// A customer whose evaluation fails only while charging its fees (an invoice in another
    /// currency than the fee) lists no skipped step, although the skipped steps' pass does
    /// not charge fees: that pass leaves out the customers the actions' pass saw fail.
    #[test]
    fn a_customer_failing_in_its_fees_lists_no_skipped_step() {
        let policy = r#"
settings { currency EUR calendar none catch up latest }
scenario "All" { for others D-5 email "before" D+3 email "r1" D+10 email "r2" D+30 letter "notice" with fee 40 EUR }
"#;
        let engine =
            Engine::from_sources(vec![relance_dsl::Source::new("p.relance", policy)], &Registry::new()).unwrap();
        let mut p = Portfolio::default();
        let t = day(2026, 3, 1);
        for (c, currency) in [("C1", Currency::EUR), ("C2", Currency::USD), ("C3", Currency::EUR)] {
            p.customers.push(Customer::new(c, c, "x"));
            let due = t.checked_sub_days(Days::new(60)).unwrap();
            p.invoices.push(Invoice::new(format!("F{c}"), c, due, Decimal::new(50_000, 2), currency));
        }
        let plan = engine.evaluate(&p, t, &NoHistory);
        assert_eq!(plan.errors.iter().map(|e| e.customer.as_str()).collect::<Vec<_>>(), ["C2"]);
        assert!(plan.skipped.iter().all(|s| s.customer != "C2"));
        assert_eq!(plan.skipped.iter().filter(|s| s.customer == "C1").count(), 3, "{:?}", plan.skipped);
        for batch in [1, 2, 1000] {
            let mut streamed = Vec::new();
            write_plan_json_batched(engine.program(), (&p).into(), t, &NoHistory, &mut streamed, batch).unwrap();
            assert_eq!(String::from_utf8(streamed).unwrap(), to_json(&plan), "batch size {batch}");
        }
    }

    /// The `next` list is the same text whatever the size of its chunks and groups.
    #[test]
    fn the_next_list_is_the_same_text_in_chunks_of_any_size() {
        let customers: Vec<Customer> =
            (0..100).map(|i| Customer::new(format!("C{i:03}"), format!("n{i}"), "sme")).collect();
        let next: Vec<(&Customer, Option<NaiveDate>)> = customers
            .iter()
            .enumerate()
            .map(|(i, c)| (c, (i % 3 != 0).then(|| day(2026, 3, 1 + (i % 20) as u32))))
            .collect();
        let written = |chunk: usize| {
            let mut out = Vec::new();
            let mut j = JsonPlan::begin(&mut out, day(2026, 3, 1), "h").unwrap();
            j.next_records(&next, chunk).unwrap();
            j.close_list().unwrap();
            String::from_utf8(out).unwrap()
        };
        let whole = written(4096);
        assert_eq!(whole.matches("\"customer\"").count(), 100);
        for chunk in [1, 3, 7, 13] {
            assert_eq!(written(chunk), whole, "chunks of {chunk}");
        }
    }

    /// Each action lists its own invoices: the emissions are kept apart from the actions
    /// (each action names its range of them), and runs are merged when customer ids repeat.
    #[test]
    fn actions_list_their_own_invoices() {
        let engine = policy_engine();
        let p = portfolio(600);
        let owner: std::collections::HashMap<&str, &str> =
            p.invoices.iter().map(|i| (i.id.as_str(), i.customer_id.as_str())).collect();
        for t in [day(2026, 2, 10), day(2026, 3, 1), day(2026, 3, 4)] {
            let plan = engine.evaluate(&p, t, &NoHistory);
            assert!(plan.actions.iter().any(|a| a.customer == "C00001"), "the repeated customer id has actions");
            let mut seen = std::collections::HashSet::new();
            for a in &plan.actions {
                assert!(!a.invoices.is_empty());
                for i in &a.invoices {
                    assert_eq!(
                        owner.get(i.as_str()),
                        Some(&a.customer.as_str()),
                        "invoice {i} in an action of {}",
                        a.customer
                    );
                    assert!(seen.insert((i.clone(), a.step_key.clone())), "{i} {} twice", a.step_key);
                }
                let sum: Decimal =
                    a.invoices.iter().filter_map(|i| p.invoices.iter().find(|x| x.id == *i)).map(|x| x.amount).sum();
                assert!(a.outstanding <= sum, "{a:?}");
            }
        }
    }

    proptest::proptest! {
        /// The CSV writer quotes and neutralises fields as a plain reading of the rules does,
        /// appending to what is already written.
        #[test]
        fn csv_field_into_follows_the_rules(text in "[=+@ \t\r\n,;\"'a-zé-]{0,12}") {
            let naive = |text: &str| {
                let safe = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_owned() };
                if safe.contains([',', '"', '\n', '\r', ';']) { format!("\"{}\"", safe.replace('"', "\"\"")) } else { safe }
            };
            let mut out = b"x".to_vec();
            csv_field_into(&text, &mut out);
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), format!("x{}", naive(&text)));
            proptest::prop_assert_eq!(csv_field(&text), naive(&text));
        }
    }

    /// A writer that accepts `left` bytes, then fails.
    struct Failing {
        left: usize,
    }

    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if buf.len() > self.left {
                return Err(io::Error::other("disk full"));
            }
            self.left -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_error_is_returned_whatever_the_batch() {
        let engine = policy_engine();
        let p = portfolio(600);
        let t = day(2026, 3, 1);
        type Writer = fn(&Program, &Portfolio, NaiveDate, &dyn History, &mut Failing, usize) -> io::Result<()>;
        let writers: [(&str, Writer); 3] = [
            ("json", |p, f, t, h, w, b| write_plan_json_batched(p, f.into(), t, h, w, b)),
            ("csv", |p, f, t, h, w, b| write_plan_csv_batched(p, f.into(), t, h, w, b)),
            ("table", |p, f, t, h, w, b| write_plan_table_batched(p, f.into(), t, h, w, b)),
        ];
        for (name, write) in writers {
            let mut whole = Failing { left: usize::MAX };
            write(engine.program(), &p, t, &NoHistory, &mut whole, 1000).unwrap();
            let len = usize::MAX - whole.left;
            for batch in [1, 7, 1000] {
                for left in [0, 10, len / 2, len - 1] {
                    let e = write(engine.program(), &p, t, &NoHistory, &mut Failing { left }, batch);
                    assert_eq!(e.unwrap_err().to_string(), "disk full", "{name}, batch {batch}, {left} of {len} bytes");
                }
            }
        }
    }

    #[test]
    fn the_pipeline_writes_every_batch_once_in_order() {
        for n in [0, 1, 2, 3, 10] {
            let batches: Vec<std::ops::Range<usize>> = (0..n).map(|i| i * 10..i * 10 + 10).collect();
            let mut written = Vec::new();
            pipeline(
                &batches,
                |r: &std::ops::Range<usize>, b: &mut Vec<usize>, _: &mut (dyn FnMut(&mut Vec<usize>) + Send)| {
                    b.clear();
                    b.extend(r.clone());
                },
                |b| {
                    written.extend_from_slice(b);
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(written, (0..n * 10).collect::<Vec<_>>());
            // A batch handed over in three pieces, the last when `make` returns.
            let mut written = Vec::new();
            pipeline(
                &batches,
                |r: &std::ops::Range<usize>,
                 b: &mut Vec<usize>,
                 hand_over: &mut (dyn FnMut(&mut Vec<usize>) + Send)| {
                    for piece in [r.start..r.start + 3, r.start + 3..r.start + 5, r.start + 5..r.end] {
                        if piece.start > r.start {
                            hand_over(b);
                        }
                        b.clear();
                        b.extend(piece);
                    }
                },
                |b| {
                    written.push(b.clone());
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(written.concat(), (0..n * 10).collect::<Vec<_>>());
            assert_eq!(written.len(), 3 * n);
            let mut calls = 0;
            let e = pipeline(
                &batches,
                |_, _: &mut Vec<usize>, _: &mut (dyn FnMut(&mut Vec<usize>) + Send)| {},
                |_| {
                    calls += 1;
                    Err(io::Error::other("stop"))
                },
            );
            assert_eq!(e.is_err(), n > 0);
            assert_eq!(calls, n.min(1), "nothing is written after an error");
        }
    }

    #[test]
    fn a_panic_while_making_a_batch_reaches_the_caller_instead_of_hanging() {
        let batches: Vec<std::ops::Range<usize>> = (0..5).map(|i| i..i + 1).collect();
        let mut written = 0;
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pipeline(
                &batches,
                |r: &std::ops::Range<usize>, _: &mut Vec<u8>, _: &mut (dyn FnMut(&mut Vec<u8>) + Send)| {
                    assert!(r.start != 2, "batch 2 fails")
                },
                |_| {
                    written += 1;
                    Ok(())
                },
            )
        }));
        assert!(caught.is_err());
        assert_eq!(written, 2, "the batches made before are written");
    }

    #[test]
    fn streamed_csv_and_table_are_the_same_text_as_from_the_plan() {
        let engine = policy_engine();
        let p = portfolio(600);
        let mut history = MemoryHistory::new();
        for (t, batch) in [(day(2026, 2, 10), 1), (day(2026, 3, 1), 7), (day(2026, 3, 4), 1000)] {
            let plan = engine.evaluate(&p, t, &history);
            assert!(!plan.actions.is_empty() && !plan.errors.is_empty());
            let mut csv = Vec::new();
            write_plan_csv_batched(engine.program(), (&p).into(), t, &history, &mut csv, batch).unwrap();
            assert_eq!(String::from_utf8(csv).unwrap(), to_csv(&plan), "csv, batch size {batch}");
            let mut table = Vec::new();
            write_plan_table_batched(engine.program(), (&p).into(), t, &history, &mut table, batch).unwrap();
            assert_eq!(String::from_utf8(table).unwrap(), to_table(&plan), "table, batch size {batch}");
            history.record(&plan);
        }
    }

    #[test]
    fn the_summary_has_the_figures_of_the_plan() {
        let engine = policy_engine();
        // And the same with invoices in dollars here and there: a condition comparing their
        // amount with euros fails their customer, whose steps skipped before that invoice
        // are then left out of the counts too.
        let mut dollars = portfolio(600);
        for inv in dollars.invoices.iter_mut().step_by(29) {
            inv.currency = Currency::USD;
        }
        for p in [portfolio(600), dollars] {
            let mut history = MemoryHistory::new();
            for t in [day(2026, 2, 10), day(2026, 3, 1), day(2026, 3, 4)] {
                let plan = engine.evaluate(&p, t, &history);
                let summary = engine.summarize(&p, t, &history);
                assert_eq!(summary, crate::plan::PlanSummary::of(&plan));
                assert!(summary.actions > 0 && summary.skipped.len() >= 3 && summary.errors > 0, "{summary:?}");
                history.record(&plan);
            }
        }
    }

    /// Records written with the program's prepared texts are the same bytes as written
    /// field by field (the prepared texts are a shortcut, not a second source of words).
    #[test]
    fn prepared_texts_change_no_byte() {
        let engine = policy_engine();
        let p = portfolio(600);
        let (frags, none) = (Fragments::new(engine.program()), Fragments::default());
        let mut history = MemoryHistory::new();
        let (mut superseded, mut usual_carried, mut other_carried) = (0, 0, 0);
        for t in [day(2026, 2, 10), day(2026, 3, 1), day(2026, 3, 4)] {
            let ev = Evaluator::new(engine.program(), &p, t, &history);
            let (mut actions, mut skipped) = (0, 0);
            for r in ev.batches(50) {
                for run in ev.batch(r, Mode::ALL) {
                    for a in run.action_views(&ev.rate_table) {
                        let (mut fast, mut slow) = (Vec::new(), Vec::new());
                        a.write_json(&frags, &mut Repeat::default(), &mut fast);
                        a.write_json(&none, &mut Repeat::default(), &mut slow);
                        assert_eq!(String::from_utf8(fast).unwrap(), String::from_utf8(slow).unwrap());
                        let f = frags.action(a.scenario, a.label, a.action);
                        assert!(f.is_some(), "prepared texts not found");
                        // Both ways of writing what an action carries are compared.
                        for em in a.ems.iter() {
                            match f.is_some_and(|f| f.usual_carried(&em.carried)) {
                                true => usual_carried += 1,
                                false => other_carried += 1,
                            }
                        }
                        actions += 1;
                    }
                    for s in &run.skipped {
                        let (mut fast, mut slow) = (Vec::new(), Vec::new());
                        s.write_json(&run.texts, &frags, &mut Repeat::default(), &mut fast);
                        s.write_json(&run.texts, &none, &mut Repeat::default(), &mut slow);
                        assert_eq!(String::from_utf8(fast).unwrap(), String::from_utf8(slow).unwrap());
                        assert!(frags.skip_fields(&s.scenario.name, s.step).is_some(), "prepared texts not found");
                        if let outcome::Why::Superseded { by, .. } = &s.why {
                            assert!(frags.superseded(s.step, by).is_some(), "prepared texts not found");
                            superseded += 1;
                        }
                        skipped += 1;
                    }
                }
            }
            assert!(actions > 0 && skipped > 0);
            history.record(&engine.evaluate(&p, t, &history));
        }
        assert!(superseded > 0);
        assert!(usual_carried > 0 && other_carried > 0, "{usual_carried} {other_carried}");
    }

    #[test]
    fn an_empty_plan_is_written_like_to_json() {
        let engine = policy_engine();
        let p = Portfolio::default();
        let plan = engine.evaluate(&p, day(2026, 3, 1), &NoHistory);
        let mut got = Vec::new();
        write_plan_json(engine.program(), &p, day(2026, 3, 1), &NoHistory, &mut got).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), to_json(&plan));
    }

    #[test]
    fn csv_cells_cannot_start_a_formula() {
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("+33 1 23"), "'+33 1 23");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("-2+3"), "'-2+3");
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
