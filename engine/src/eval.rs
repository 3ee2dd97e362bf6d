//! Evaluation: a [`Program`], a [`Portfolio`], a date and a [`History`] → a [`Plan`]
//! (SPEC section 3). Customers are independent: each is evaluated on its own (in parallel),
//! and an error for one customer goes into the plan without touching the others.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{Days, NaiveDate};
use iso_currency::Currency;
use rayon::prelude::*;
use relance_dsl::ast::{CatchUp, EventKind};
use rust_decimal::Decimal;

use crate::calendar::{Calendar, add_business_days, next_business_day};
use crate::compile::{
    CompiledAction, CompiledEvent, CompiledScenario, CompiledStep, FeeRule, InterestRule, Program, Selector,
};
use crate::cond::{Cond, EvalCtx, InvoiceFacts, Trace};
use crate::fxhash::Fx;
use crate::history::History;
use crate::law::RatePeriod;
use crate::model::{Customer, Invoice, Payment, PaymentKind, Portfolio, PortfolioRef, cmp_text};
use crate::money::{self, RateDays};
use crate::outcome::{
    ActionRec, Carried, Emission, FeeNote, InterestNote, PeriodsText, Records, SkipRec, SpareNotes, Texts, Why,
    next_action, periods_phrase,
};
use crate::payindex::PaymentIndex;
use crate::plan::{NextAction, Plan, PlanError, PlanSummary, SkipStatus, Unassigned};

/// Evaluates `portfolio` as of `as_of` (see [`crate::Engine::evaluate`]).
pub fn evaluate<'p>(
    program: &Program,
    portfolio: impl Into<PortfolioRef<'p>>,
    as_of: NaiveDate,
    history: &dyn History,
) -> Plan {
    let portfolio = portfolio.into();
    let ev = Evaluator::new(program, portfolio, as_of, history);
    let mut plan = Plan {
        as_of,
        scenarios_hash: program.hash.clone(),
        actions: Vec::new(),
        skipped: Vec::new(),
        unassigned: Vec::new(),
        errors: Vec::new(),
        next: Vec::new(),
        warnings: portfolio.warnings.clone(),
    };
    // Batch by batch, each run turned into the plan's values (and dropped) in parallel, so
    // that the records of the whole portfolio never exist at once next to the plan.
    let batches = ev.batches_side_by_side(BATCH);
    ev.with_ahead(&batches, BATCH, Mode::ALL, |ahead| {
        for r in batches.iter().cloned() {
            let mut runs = ahead.batch(r);
            let parts: Vec<Plan> = runs
                .par_iter_mut()
                .map(|run| Plan {
                    as_of,
                    scenarios_hash: String::new(),
                    actions: run.action_views(&ev.rate_table).map(|a| a.to_action()).collect(),
                    skipped: run.skipped.iter().map(|s| s.to_skipped(&run.texts)).collect(),
                    unassigned: std::mem::take(&mut run.unassigned),
                    errors: std::mem::take(&mut run.errors),
                    next: run.next.iter().map(next_action).collect(),
                    warnings: Vec::new(),
                })
                .collect();
            ev.recycle(runs);
            for part in parts {
                plan.actions.extend(part.actions);
                plan.skipped.extend(part.skipped);
                plan.unassigned.extend(part.unassigned);
                plan.errors.extend(part.errors);
                plan.next.extend(part.next);
            }
        }
    });
    plan.errors.extend(ev.ix.input_errors.iter().cloned());
    finish_lists(&mut plan.unassigned, &mut plan.errors, &mut plan.next);
    plan
}

/// The figures of the plan of `portfolio` as of `as_of`, without writing any text (see
/// [`crate::Engine::summarize`]). Customers are evaluated in batches, in bounded memory.
pub fn summarize<'p>(
    program: &Program,
    portfolio: impl Into<PortfolioRef<'p>>,
    as_of: NaiveDate,
    history: &dyn History,
) -> PlanSummary {
    let portfolio = portfolio.into();
    let ev = Evaluator::new(program, portfolio, as_of, history);
    let mut sum = PlanSummary { errors: ev.ix.input_errors.len(), ..PlanSummary::default() };
    let batches = ev.batches_side_by_side(BATCH);
    ev.with_ahead(&batches, BATCH, Mode::COUNTS, |ahead| {
        for r in batches.iter().cloned() {
            // Counted and dropped in parallel, run by run.
            let runs = ahead.batch(r);
            let parts: Vec<RunCounts<'_>> = runs
                .par_iter()
                .map(|run| {
                    // Per channel and currency first (few of them), added to the summary's maps
                    // (keyed by text) once all runs are counted: a map of its own for each run
                    // allocated its keys and nodes again, run after run.
                    let mut by: Vec<(&str, Currency, usize, [Decimal; 3])> = Vec::new();
                    for a in &run.actions {
                        let (ch, cur) = (a.action.channel.as_str(), a.currency);
                        let i = match by.iter().position(|b| std::ptr::eq(b.0, ch) && b.1 == cur) {
                            Some(i) => i,
                            None => {
                                by.push((ch, cur, 0, [Decimal::ZERO; 3]));
                                by.len() - 1
                            }
                        };
                        if let Some(b) = by.get_mut(i) {
                            b.2 += 1;
                            money::add_to(&mut b.3[0], a.outstanding);
                            money::add_to(&mut b.3[1], a.fees);
                            money::add_to(&mut b.3[2], a.interest);
                        }
                    }
                    // Per status in an array, counted by the evaluation (2.6 skipped steps an
                    // invoice at 10^6: a map entry for each cost 2 % of the evaluation, a record
                    // each ≈ 5 %).
                    let by_status = run.skip_counts;
                    RunCounts { unassigned: run.unassigned.len(), errors: run.errors.len(), by, by_status }
                })
                .collect();
            for p in parts {
                sum.unassigned += p.unassigned;
                sum.errors += p.errors;
                for (ch, cur, n, [outstanding, fees, interest]) in p.by {
                    sum.add_actions(ch, cur, n, outstanding, fees, interest);
                }
                for (status, n) in SkipStatus::ALL.into_iter().zip(p.by_status) {
                    if n > 0 {
                        *sum.skipped.entry(status).or_default() += n;
                    }
                }
            }
            ev.recycle(runs);
        }
    });
    sum
}

/// What [`summarize`] counts of one run of customers, before adding it to the summary.
struct RunCounts<'p> {
    unassigned: usize,
    errors: usize,
    /// Actions per channel and currency: their number and total outstanding, fees, interest.
    by: Vec<(&'p str, Currency, usize, [Decimal; 3])>,
    /// Skipped steps per status (at the status's place in [`SkipStatus::ALL`]).
    by_status: [usize; SkipStatus::ALL.len()],
}

/// Customers evaluated per batch when a plan is streamed or summarised: enough to keep both
/// cores busy, few enough to bound the memory of the batch's records.
pub(crate) const BATCH: usize = 2048;

/// Customers per run of a batch: the unit of parallel work and of records.
const RUN: usize = 64;

/// Invoices per customer that a batch or a run is sized for: one holds at most `size ×
/// this` invoices (but always one customer), so that a portfolio of few large customers
/// (key accounts with thousands of invoices each) is evaluated in batches as small and
/// runs as many as one of small customers. Sized by customers alone, 10^6 invoices of 20
/// customers made one batch whose records and text were all in memory at once (2.0–2.4 GB
/// peak, 3.7–4.3 s); the generated portfolios have 5 invoices a customer.
pub(crate) const INVOICES_PER_CUSTOMER: usize = 8;

/// Very large customers are evaluated side by side while the invoices of their joined
/// batch beyond those of the largest are at most this share of the portfolio's, a
/// sixteenth (see [`Evaluator::batches_side_by_side`]). A large customer's working state
/// while its actions are evaluated and written is a few hundred bytes an invoice of it
/// (≈ 370 by heaptrack, for one customer of 300,000 invoices), so joining adds at most a
/// few dozen bytes an invoice of the portfolio to its peak memory.
const SIDE_BY_SIDE_SHARE: usize = 16;

/// A customer of at least this many invoices has room made at once for its facts and for
/// its skipped steps listed from notes (counted from the notes; fewer in tests, to check
/// the count).
const LARGE_CUSTOMER: usize = if cfg!(test) { 64 } else { 4096 };

/// A customer's emissions from this many on are grouped by sorting their positions, each
/// moved once (see [`CustomerEval::group`]).
const SORT_BY_POSITION: usize = 64;

/// The most classes of emissions a customer's are grouped by (see [`classes_of`]).
pub(crate) const MAX_CLASSES: usize = 64;

/// Sorts the customer-level lists of a plan (actions and skipped come out of
/// [`Evaluator::batch`] already in plan order).
pub(crate) fn finish_lists(unassigned: &mut [Unassigned], errors: &mut [PlanError], next: &mut [NextAction]) {
    unassigned.sort_by(|a, b| a.customer.cmp(&b.customer));
    errors.sort_by(|a, b| (&a.customer, &a.invoice, &a.message).cmp(&(&b.customer, &b.invoice, &b.message)));
    next.sort_by(|a, b| a.customer.cmp(&b.customer));
}

/// Which parts of the outcome to build. The streamed JSON makes two passes (actions first,
/// then skipped steps, most of them listed from notes of the first: see [`SkipNotes`]) so
/// that neither list of a large portfolio is held whole in memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mode {
    pub(crate) actions: bool,
    pub(crate) skipped: bool,
    /// Whether reasons are wanted (everything but [`summarize`] and the table).
    pub(crate) text: bool,
    /// Whether actions get their id (which also orders actions that tie on everything
    /// else): everything but [`summarize`], which only counts.
    pub(crate) ids: bool,
    /// Whether each skipped step gets a record (else they are only counted by status,
    /// [`Records::skip_counts`]: [`summarize`] and the table, which print their numbers).
    pub(crate) skip_records: bool,
    /// An earlier evaluation of the same inputs, with actions, found which customers fail
    /// ([`Evaluator::failed`]): they are left out, and without actions wanted no action is
    /// built for the others (its fees and interest were only computed to find those errors).
    pub(crate) failed_known: bool,
}

impl Mode {
    pub(crate) const ALL: Mode =
        Mode { actions: true, skipped: true, text: true, ids: true, skip_records: true, failed_known: false };
    /// Actions only, with their reasons.
    pub(crate) const ACTIONS: Mode =
        Mode { actions: true, skipped: false, text: true, ids: true, skip_records: false, failed_known: false };
    /// Skipped steps only, with their reasons, after an evaluation of the same customers in
    /// a mode with actions (see [`Mode::failed_known`]).
    pub(crate) const SKIPPED_AFTER_ACTIONS: Mode =
        Mode { actions: false, skipped: true, text: true, ids: true, skip_records: true, failed_known: true };
    /// Every decision and amount, in plan order, no text; the skipped steps counted.
    pub(crate) const FIGURES: Mode =
        Mode { actions: true, skipped: true, text: false, ids: true, skip_records: false, failed_known: false };
    /// Every decision and amount, to count them (no text, no ids, records in no set order;
    /// the skipped steps counted).
    pub(crate) const COUNTS: Mode =
        Mode { actions: true, skipped: true, text: false, ids: false, skip_records: false, failed_known: false };
}

/// What the evaluator reads of a portfolio besides its rows: where each customer's invoices
/// are, in id order, and each invoice's payments. It depends on the portfolio alone (not on
/// the program or the date): [`Evaluator::new`] builds it, or takes the one of an
/// [`IndexedPortfolio`](crate::IndexedPortfolio), built once with the sort.
#[derive(Debug, PartialEq)]
pub(crate) struct PortfolioIndex {
    /// Customer indices sorted by id (stable: equal ids keep portfolio order).
    pub(crate) order: Vec<u32>,
    /// For each customer index, the group (first customer with that id) holding its invoices.
    pub(crate) group_of: Vec<u32>,
    /// Invoice indices of group `g` are `inv_idx[inv_start[g]..inv_start[g + 1]]`; `inv_idx`
    /// is `None` when it would list every invoice in order (a portfolio in evaluation order
    /// with no unknown customer: 4 bytes an invoice not stored), the indices then being
    /// `inv_start[g]..inv_start[g + 1]` (see [`Evaluator::invoices_of`]).
    pub(crate) inv_start: Vec<u32>,
    pub(crate) inv_idx: Option<Vec<u32>>,
    /// Whether the `k`th invoice of the index has the same id as the one before it (same
    /// customer).
    pub(crate) repeats: Vec<bool>,
    /// What evaluation reads of the payments, invoice by invoice in portfolio order (each
    /// invoice's payments by date): read in the order of evaluation instead of here and there
    /// in the portfolio's payments.
    pay_rows: Vec<PayRow>,
    /// Which invoices have payments, and where they are in `pay_rows`.
    paid: PaidInvoices,
    /// Some customer ids repeat: batches are then sorted as a whole.
    pub(crate) duplicates: bool,
    /// Invoices that name an unknown customer.
    pub(crate) input_errors: Vec<PlanError>,
    /// The earliest and latest due dates.
    due_range: Option<(NaiveDate, NaiveDate)>,
}

impl PortfolioIndex {
    /// The index of `portfolio`, in any order (faster in the order of
    /// [`Portfolio::sort_for_evaluation`]).
    pub(crate) fn new(portfolio: &Portfolio) -> Self {
        let (customers, invoices) = (&portfolio.customers, &portfolio.invoices);
        let (pay_idx, pay_of) = payment_lookup(&portfolio.payments);
        // A portfolio in evaluation order (see `Portfolio::sort_for_evaluation`) is indexed
        // by merging two sorted lists, in the pass that reads the rest of what evaluation
        // needs of each invoice; any other order by hashing and sorting. Both give the same
        // index and the same sweep.
        let (index, sweep) = match Index::merged(customers, invoices, &pay_of) {
            Some(merged) => merged,
            None => {
                let index = Index::hashed(customers, invoices);
                let sweep = Sweep::separately(invoices, &index, &pay_of);
                (index, sweep)
            }
        };
        PortfolioIndex::of_parts(portfolio, index, sweep, &pay_idx, true)
    }

    /// The index of `portfolio` in evaluation order, its customers strictly in id order, the
    /// invoices of customer `k` at `starts[k]..starts[k + 1]` in id order, from the sweeps
    /// of its pieces in order ([`Sweep::of_customers`], with the [`PaymentIndex`] of
    /// `pay_idx`; see [`payment_lookup`]).
    pub(crate) fn of_sorted(portfolio: &Portfolio, starts: Vec<u32>, pieces: Vec<Sweep>, pay_idx: &[u32]) -> Self {
        let identity = |n: usize| (0..n as u32).into_par_iter().with_min_len(1 << 16).collect::<Vec<u32>>();
        let mut sweep =
            Sweep { repeats: Vec::with_capacity(portfolio.invoices.len()), found: Vec::new(), due_range: None };
        for p in pieces {
            sweep.repeats.extend(p.repeats);
            sweep.found.extend(p.found);
            sweep.due_range = joined(sweep.due_range, p.due_range);
        }
        let index = Index {
            order: identity(portfolio.customers.len()),
            group_of: identity(portfolio.customers.len()),
            inv_start: starts,
            // Every invoice in order: not listed (see `PortfolioIndex::inv_idx`).
            inv_idx: Vec::new(),
            duplicates: false,
            input_errors: Vec::new(),
        };
        Self::of_parts(portfolio, index, sweep, pay_idx, false)
    }

    /// The index from its parts: `pay_idx`, the payments in invoice id order, and `sweep`,
    /// found with the [`PaymentIndex`] of `pay_idx`; `listed`: `index.inv_idx` lists the
    /// invoices (else it is empty, and they are all there in order).
    pub(crate) fn of_parts(portfolio: &Portfolio, index: Index, sweep: Sweep, pay_idx: &[u32], listed: bool) -> Self {
        let pays = &portfolio.payments;
        let Index { order, group_of, inv_start, inv_idx, duplicates, input_errors } = index;
        let Sweep { repeats, found, due_range } = sweep;
        let (paid, pay_rows) = if found.is_empty() {
            (PaidInvoices::default(), Vec::new())
        } else {
            // The payments of each found invoice, copied in that order.
            let counts: Vec<u32> = found.iter().map(|(_, (a, b))| b - a).collect();
            let pay_rows = found
                .par_iter()
                .with_min_len(1024)
                .flat_map_iter(|(_, (a, b))| {
                    pay_idx[*a as usize..*b as usize].iter().map(|k| {
                        let p = &pays[*k as usize];
                        PayRow { date: p.date, kind: p.kind, amount: p.amount }
                    })
                })
                .collect();
            let mut start = 0;
            let found = found
                .into_iter()
                .zip(counts)
                .map(|((i, _), n)| {
                    start += n;
                    (i, (start - n, start))
                })
                .collect();
            (PaidInvoices::new(portfolio.invoices.len(), found), pay_rows)
        };
        // Every invoice in order: the list is not kept.
        let every = !listed
            || inv_idx.len() == portfolio.invoices.len()
                && inv_idx.par_iter().enumerate().all(|(k, &i)| k == i as usize);
        PortfolioIndex {
            order,
            group_of,
            inv_start,
            inv_idx: (!every).then_some(inv_idx),
            repeats,
            pay_rows,
            paid,
            duplicates,
            input_errors,
            due_range,
        }
    }
}

/// The smallest range of dates holding both (either may be empty).
fn joined(a: Option<(NaiveDate, NaiveDate)>, b: Option<(NaiveDate, NaiveDate)>) -> Option<(NaiveDate, NaiveDate)> {
    match (a, b) {
        (Some((lo, hi)), Some((c, d))) => Some((lo.min(c), hi.max(d))),
        (x, y) => x.or(y),
    }
}

/// The payments in invoice id order (then date, then portfolio order) and the
/// [`PaymentIndex`] of their invoice ids.
pub(crate) fn payment_lookup(pays: &[Payment]) -> (Vec<u32>, PaymentIndex) {
    let mut pay_idx: Vec<u32> = (0..pays.len() as u32).collect();
    // Exports often list payments by invoice already; otherwise (bank receipts come by
    // date) sort keys read in one pass: the ids' first 16 bytes as two words and their
    // length, the date and the row. Ids of at most 16 bytes are then ordered without being
    // read again (equal words and lengths are equal ids); longer ones with equal words are
    // compared whole. (The first 8 bytes alone were equal for each invoice's payments and
    // for most ids of one export, and the sort read the ids at random: at 10^6 payments by
    // date, 6 % of a plan's samples.)
    if !pays.par_windows(2).all(|w| (w[0].invoice_id.as_str(), w[0].date) <= (w[1].invoice_id.as_str(), w[1].date)) {
        let mut keys: Vec<PaymentKey> = pays.par_iter().enumerate().map(|(i, p)| PaymentKey::of(p, i as u32)).collect();
        keys.par_sort_unstable_by(|a, b| {
            (a.words, a.len).cmp(&(b.words, b.len)).then_with(|| {
                if a.len <= 16 && b.len <= 16 {
                    (a.day, a.row).cmp(&(b.day, b.row))
                } else {
                    let (pa, pb) = (&pays[a.row as usize], &pays[b.row as usize]);
                    (pa.invoice_id.as_str(), pa.date, a.row).cmp(&(pb.invoice_id.as_str(), pb.date, b.row))
                }
            })
        });
        pay_idx = keys.into_iter().map(|k| k.row).collect();
    }
    // The invoices with payments are found by id in a table of their own (see
    // [`PaymentIndex`]), block by block in a pass over the invoices.
    let pay_of = PaymentIndex::new(pay_idx.iter().map(|&k| pays[k as usize].invoice_id.as_str()));
    (pay_idx, pay_of)
}

/// What a payment is sorted by in [`payment_lookup`]: its invoice id's first 16 bytes
/// (big-endian, zero-padded), the id's length (17 for any longer), its date and its row.
struct PaymentKey {
    words: (u64, u64),
    len: u8,
    day: i32,
    row: u32,
}

impl PaymentKey {
    fn of(p: &Payment, row: u32) -> Self {
        let id = p.invoice_id.as_bytes();
        PaymentKey {
            words: (crate::model::word_at(id, 0), crate::model::word_at(id, 8)),
            len: id.len().min(17) as u8,
            day: chrono::Datelike::num_days_from_ce(&p.date),
            row,
        }
    }
}

/// A portfolio indexed for evaluation: customers in id order, each with its invoices, and
/// payments grouped by invoice. Built once; [`Evaluator::batch`] evaluates any range of
/// customers (in id order), so a caller can stream the plan in bounded memory.
pub(crate) struct Evaluator<'p> {
    program: &'p Program,
    portfolio: &'p Portfolio,
    as_of: NaiveDate,
    history: &'p dyn History,
    /// Where each customer's invoices and each invoice's payments are (built here, or once
    /// for an [`IndexedPortfolio`](crate::IndexedPortfolio)).
    pub(crate) ix: Arc<PortfolioIndex>,
    /// The program's calendar, with business days precomputed around the invoices' due dates.
    calendar: DayCache<'p>,
    /// The first 12 characters of the scenarios hash (quoted in every action's reason).
    hash: &'p str,
    /// The history has nothing: its questions are not asked.
    history_empty: bool,
    /// The day number of the as-of date (see [`money::day_number`]).
    as_of_day: i64,
    /// Step trigger dates by scenario and due date.
    triggers: Triggers,
    /// Interest rate periods by rule and first day.
    pub(crate) rate_table: RateTable,
    /// Records of earlier batches, emptied, to fill again (see [`Evaluator::recycle`]).
    pool: Mutex<Vec<Records<'p>>>,
    /// Scratch buffers of earlier parts of the work, to use again (see [`PooledScratch`]).
    scratch_pool: Mutex<Vec<Scratch<'p>>>,
    /// A bit per customer (portfolio order): its evaluation failed (see [`Mode::failed_known`]).
    failed: Box<[AtomicU64]>,
    /// The skipped steps noted by an evaluation with actions, for a later one without (see
    /// [`Evaluator::with_skip_notes`]).
    notes: Option<SkipNotes>,
    /// A customer's emissions from this many on are grouped by sorting their positions
    /// ([`SORT_BY_POSITION`]; see [`CustomerEval::group`]).
    sort_by_position: usize,
    /// A customer's facts are found twice, streamed, instead of held, from this many
    /// invoices on ([`LARGE_CUSTOMER`]; see [`CustomerEval::run`]).
    stream_facts_from: usize,
}

/// The skipped steps found by an evaluation that did not list them (actions only), in a few
/// bits per invoice, so that a later evaluation of the same customers for their skipped
/// steps ([`Mode::SKIPPED_AFTER_ACTIONS`]) lists them without evaluating the customer again.
///
/// Noted are the steps skipped for what the program and dates alone say (an expired step,
/// a step superseded by the one emitted), and the steps and events that a stop or pause rule
/// blocked, with that rule (its reason, which quotes the values the rule read, is written
/// again from the invoice's facts: [`Evaluator::blocked_from_note`]). A customer with any
/// other skipped step (deferred, below the minimum, a condition that does not hold) is
/// evaluated again, as is a customer of a scenario with more steps or events than a note
/// holds. The records listed from the notes are the records the evaluation would make, with
/// the same references and dates: the plan is the same bytes.
struct SkipNotes {
    /// Per invoice (portfolio order), packed by [`InvoiceNote::bits`]: the steps that
    /// expired ([`NOTE_STEPS`] bits), those superseded or blocked (as many bits after them),
    /// the step that superseded them or the rule that blocked them (4 bits), whether a rule
    /// blocked them, and the events it blocked ([`NOTE_EVENTS`] bits).
    invoices: Box<[AtomicU32]>,
    /// Per customer (portfolio order): [`NOTE_NONE`] (not noted: evaluate again),
    /// [`NOTE_EMPTY`] (nothing skipped) or the number of its scenario plus one.
    customers: Box<[AtomicU8]>,
    /// The balances of the very large customers ([`LARGE_CUSTOMER`] invoices or more), by
    /// customer (portfolio order), for the reasons of their blocked invoices: listing them
    /// found the balances again from every invoice's facts, on one thread before the
    /// customer's first slice (10^6 invoices of 20 customers: ≈ 30 ms).
    books: Mutex<Vec<(u32, BalanceBook)>>,
}

impl SkipNotes {
    /// The balances of customer `ci` kept by the evaluation, for a very large customer.
    fn book_of(&self, ci: u32) -> Option<BalanceBook> {
        let books = self.books.lock().ok()?;
        books.iter().find(|(c, _)| *c == ci).map(|(_, book)| book.clone())
    }
}

/// What the notes of a customer say (see [`Evaluator::noted`]).
#[derive(Clone, Copy)]
enum Noted<'p> {
    /// Not noted (evaluate it again).
    Unusable,
    /// Noted with nothing skipped.
    Nothing,
    /// Noted, of scenario `s` (the program's `scenario`): its invoices' notes list its
    /// skipped steps.
    Steps { scenario: usize, s: &'p CompiledScenario },
}

/// Where the listing of a customer's skipped steps from its notes is, between the slices of
/// its invoices it may be made in (see [`Evaluator::list_noted`]).
struct NoteListing {
    /// The rank of the last invoice listed (see [`SkipRec::rank`]).
    rank: u32,
    /// Whether the records were made in plan order.
    in_order: bool,
    /// The customer's balances, found at its first blocked invoice (with its facts, in the
    /// scratch buffers), for the reasons of blocked invoices.
    book: Option<BalanceBook>,
    /// Whether `book` is the one the evaluation kept (see [`SkipNotes::books`]): the facts of
    /// each blocked invoice are then found as it is listed, instead of all the customer's
    /// at once.
    each_fact: bool,
}

impl Default for NoteListing {
    fn default() -> Self {
        NoteListing { rank: 0, in_order: true, book: None, each_fact: false }
    }
}

/// Steps of a scenario that a note holds (steps `0..NOTE_STEPS`).
const NOTE_STEPS: usize = 12;
const NOTE_STEP_MASK: u32 = (1 << NOTE_STEPS) - 1;
/// A customer not noted.
const NOTE_NONE: u8 = 0;
/// A customer noted with nothing skipped (no scenario selects it, or none of its steps was
/// skipped).
const NOTE_EMPTY: u8 = u8::MAX;

/// The note of one invoice (or the bits to add to it), packed by [`InvoiceNote::bits`].
#[derive(Clone, Copy, Default)]
struct InvoiceNote {
    expired: u32,
    /// The steps superseded; for a blocked invoice, the steps its rule blocked.
    superseded: u32,
    /// The step that superseded them; for a blocked invoice, its rule (stops, then pauses).
    by: u32,
    /// A stop or pause rule held for the invoice: its reached steps are stopped or paused.
    blocked: bool,
    /// The events of the scenario ([`NOTE_EVENTS`] bits) that fired for the invoice and that
    /// its rule blocked (the rule that blocks its steps too: rules read the invoice's facts,
    /// not the step).
    events: u32,
}

/// Events of a scenario that a note holds (events `0..NOTE_EVENTS`): the bits left of 32.
const NOTE_EVENTS: usize = 32 - (2 * NOTE_STEPS + 5);
const NOTE_EVENT_MASK: u32 = (1 << NOTE_EVENTS) - 1;

/// The rules a note names (4 bits).
const NOTE_RULES: usize = 16;

impl InvoiceNote {
    fn bits(self) -> u32 {
        self.expired
            | (self.superseded << NOTE_STEPS)
            | ((self.by & 0xf) << (2 * NOTE_STEPS))
            | (u32::from(self.blocked) << (2 * NOTE_STEPS + 4))
            | ((self.events & NOTE_EVENT_MASK) << (2 * NOTE_STEPS + 5))
    }

    fn of(bits: u32) -> Self {
        InvoiceNote {
            expired: bits & NOTE_STEP_MASK,
            superseded: (bits >> NOTE_STEPS) & NOTE_STEP_MASK,
            by: (bits >> (2 * NOTE_STEPS)) & 0xf,
            blocked: (bits >> (2 * NOTE_STEPS + 4)) & 1 == 1,
            events: (bits >> (2 * NOTE_STEPS + 5)) & NOTE_EVENT_MASK,
        }
    }
}

/// The positions of the set bits of `mask`, lowest first.
fn steps_of(mut mask: u32) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let k = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            k
        })
    })
}

/// A calendar whose answers are precomputed over a window of days (real calendars compute
/// the year's holidays on every question); outside the window it asks the calendar.
#[derive(Debug)]
struct DayCache<'p> {
    inner: &'p dyn Calendar,
    first: NaiveDate,
    business: Vec<bool>,
    /// The earliest and latest due dates of the portfolio.
    due_range: Option<(NaiveDate, NaiveDate)>,
}

impl<'p> DayCache<'p> {
    /// `due_range`: the earliest and latest due dates of the portfolio.
    fn new(inner: &'p dyn Calendar, due_range: Option<(NaiveDate, NaiveDate)>, as_of: NaiveDate) -> Self {
        let (lo, hi) = due_range.map_or((as_of, as_of), |(lo, hi)| (lo.min(as_of), hi.max(as_of)));
        let first = lo.checked_sub_days(Days::new(400)).unwrap_or(lo);
        let last = hi.checked_add_days(Days::new(1200)).unwrap_or(hi);
        let span = (last - first).num_days();
        let business = if (0..=40_000).contains(&span) {
            first.iter_days().take(span as usize + 1).map(|d| inner.is_business_day(d)).collect()
        } else {
            Vec::new()
        };
        DayCache { inner, first, business, due_range }
    }
}

impl Calendar for DayCache<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn is_business_day(&self, date: NaiveDate) -> bool {
        let i = money::days_between(self.first, date);
        match usize::try_from(i).ok().and_then(|i| self.business.get(i)) {
            Some(b) => *b,
            None => self.inner.is_business_day(date),
        }
    }
}

/// The trigger date of a step of `offset` days (business days when `business_days`) for an
/// invoice due on `due` (SPEC 3.2: moved to the next business day).
fn trigger_date(cal: &dyn Calendar, business_days: bool, due: NaiveDate, offset: i32) -> NaiveDate {
    let raw = if business_days { add_business_days(cal, due, offset) } else { shift(due, offset) };
    next_business_day(cal, raw)
}

/// Trigger dates of every step of every scenario for each due date of the portfolio,
/// computed once (invoices share due dates; date arithmetic and calendars are not free).
struct Triggers {
    /// The day number of the first due date (see [`money::day_number`]).
    first: i64,
    days: i64,
    /// For each scenario (program order), where its block starts in `dates` and its number
    /// of steps; a block holds `days × steps` dates, day by day.
    blocks: Vec<(usize, usize)>,
    dates: Vec<NaiveDate>,
}

impl Triggers {
    /// No table beyond this many dates (a portfolio with due dates over centuries).
    const MAX_DATES: usize = 4_000_000;

    fn new(program: &Program, cal: &DayCache<'_>) -> Self {
        let empty = Triggers { first: 0, days: 0, blocks: Vec::new(), dates: Vec::new() };
        let Some((lo, hi)) = cal.due_range else { return empty };
        let days = (hi - lo).num_days() + 1;
        let steps: usize = program.scenarios.iter().map(|s| s.steps.len()).sum();
        if days <= 0 || (days as usize).saturating_mul(steps) > Self::MAX_DATES {
            return empty;
        }
        let mut blocks = Vec::with_capacity(program.scenarios.len());
        let mut dates = Vec::with_capacity(days as usize * steps);
        for s in &program.scenarios {
            blocks.push((dates.len(), s.steps.len()));
            for due in lo.iter_days().take(days as usize) {
                dates.extend(s.steps.iter().map(|st| trigger_date(cal, s.business_days, due, st.offset)));
            }
        }
        Triggers { first: money::day_number(lo), days, blocks, dates }
    }

    /// The trigger dates of the steps of scenario number `scenario` for an invoice due on `due`.
    fn of(&self, scenario: usize, due: NaiveDate) -> Option<&[NaiveDate]> {
        let day = money::day_number(due) - self.first;
        if !(0..self.days).contains(&day) {
            return None;
        }
        let (start, n) = *self.blocks.get(scenario)?;
        let from = start + day as usize * n;
        self.dates.get(from..from + n)
    }
}

/// The invoices of a range of the index (see [`PortfolioIndex::inv_idx`]).
enum InvoiceIds<'a> {
    Listed(std::slice::Iter<'a, u32>),
    Every(std::ops::Range<u32>),
}

impl Iterator for InvoiceIds<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        match self {
            InvoiceIds::Listed(listed) => listed.next().copied(),
            InvoiceIds::Every(range) => range.next(),
        }
    }
}

/// What evaluation reads of a payment.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PayRow {
    date: NaiveDate,
    kind: PaymentKind,
    amount: Decimal,
}

/// The invoices that have payments (a bit per invoice), and for each of them (in invoice
/// order) its range of payments: read in the order of evaluation, without hashing.
#[derive(Debug, Default, PartialEq)]
struct PaidInvoices {
    bits: Vec<u64>,
    /// Set bits before each word of `bits`.
    rank: Vec<u32>,
    ranges: Vec<(u32, u32)>,
}

impl PaidInvoices {
    /// `found`: invoice index and payment range, in invoice order.
    fn new(invoices: usize, found: Vec<(u32, (u32, u32))>) -> Self {
        let mut bits = vec![0u64; invoices.div_ceil(64)];
        for (i, _) in &found {
            if let Some(w) = bits.get_mut(*i as usize / 64) {
                *w |= 1 << (i % 64);
            }
        }
        let mut rank = Vec::with_capacity(bits.len());
        let mut n = 0;
        for w in &bits {
            rank.push(n);
            n += w.count_ones();
        }
        PaidInvoices { bits, rank, ranges: found.into_iter().map(|(_, r)| r).collect() }
    }

    /// The range of payments of invoice `i`, if it has any.
    fn range(&self, i: u32) -> Option<(u32, u32)> {
        let (w, b) = (i as usize / 64, i % 64);
        let word = *self.bits.get(w)?;
        if word & (1 << b) == 0 {
            return None;
        }
        let k = *self.rank.get(w)? + (word & ((1u64 << b) - 1)).count_ones();
        self.ranges.get(k as usize).copied()
    }
}

/// Where each customer's invoices are, for [`Evaluator`].
pub(crate) struct Index {
    /// Customer indices sorted by id (stable: equal ids keep portfolio order).
    order: Vec<u32>,
    /// For each customer index, the group (first customer with that id) holding its invoices.
    group_of: Vec<u32>,
    /// Invoice indices of group `g` are `inv_idx[inv_start[g]..inv_start[g + 1]]`, in id
    /// order (then portfolio order).
    inv_start: Vec<u32>,
    inv_idx: Vec<u32>,
    /// Some customer ids repeat.
    duplicates: bool,
    /// Invoices that name an unknown customer, in portfolio order.
    input_errors: Vec<PlanError>,
}

/// What evaluation reads of every invoice besides where it is ([`Index`]), gathered in the
/// same pass over them when they are in order ([`Index::merged`]).
#[derive(Debug, PartialEq)]
pub(crate) struct Sweep {
    /// For each invoice of the index (in its order), whether it repeats the id of the one
    /// before it, of the same customer (the rank of a skipped step's invoice is then that of
    /// the first).
    repeats: Vec<bool>,
    /// The invoices with payments, in portfolio order, and their range of payments.
    found: Vec<(u32, (u32, u32))>,
    /// The earliest and latest due dates.
    due_range: Option<(NaiveDate, NaiveDate)>,
}

impl Sweep {
    /// The sweep of `invoices`, the invoices from index `base` of a portfolio in evaluation
    /// order, whole customers: `starts` (from `base`) says where each one's invoices start,
    /// and where the last one's end.
    pub(crate) fn of_customers(invoices: &[Invoice], base: usize, starts: &[u32], paid: &PaymentIndex) -> Sweep {
        let mut repeats = Vec::with_capacity(invoices.len());
        let mut due_range: Option<(NaiveDate, NaiveDate)> = None;
        for w in starts.windows(2) {
            let group = invoices.get(w[0] as usize - base..w[1] as usize - base).unwrap_or_default();
            let mut previous: Option<&Invoice> = None;
            for inv in group {
                repeats.push(previous.is_some_and(|p| p.id == inv.id));
                previous = Some(inv);
                let due = inv.due_date;
                due_range = joined(due_range, Some((due, due)));
            }
        }
        let mut found = Vec::new();
        paid.find(invoices, 0, invoices.len(), &mut found);
        for (i, _) in &mut found {
            *i += base as u32;
        }
        Sweep { repeats, found, due_range }
    }

    /// The same for invoices in any order, indexed by [`Index::hashed`].
    fn separately(invoices: &[Invoice], index: &Index, paid: &PaymentIndex) -> Sweep {
        let (inv_idx, inv_start) = (&index.inv_idx, &index.inv_start);
        let mut repeats = vec![false; inv_idx.len()];
        repeats.par_iter_mut().enumerate().with_min_len(4096).for_each(|(k, slot)| {
            *slot = k > 0 && invoices[inv_idx[k] as usize].id == invoices[inv_idx[k - 1] as usize].id;
        });
        // A repeat across two customers does not count: their ranks start afresh.
        for w in inv_start.windows(2) {
            if let Some(first) = repeats.get_mut(w[0] as usize)
                && w[0] < w[1]
            {
                *first = false;
            }
        }
        let found = (0..invoices.len().div_ceil(4096))
            .into_par_iter()
            .flat_map_iter(|c| {
                let mut found = Vec::new();
                paid.find(invoices, c * 4096, (c + 1) * 4096, &mut found);
                found
            })
            .collect();
        let due_range = invoices
            .par_iter()
            .with_min_len(4096)
            .map(|inv| (inv.due_date, inv.due_date))
            .reduce_with(|(a, b), (c, d)| (a.min(c), b.max(d)));
        Sweep { repeats, found, due_range }
    }
}

fn unknown_customer(inv: &Invoice) -> PlanError {
    PlanError {
        customer: inv.customer_id.to_string(),
        invoice: Some(inv.id.to_string()),
        scenario: None,
        step: None,
        message: format!("invoice `{}` names customer `{}`, which is not in the portfolio", inv.id, inv.customer_id),
    }
}

/// Invoices whose payments the merge looks up at a time (see [`Index::merged`]).
const LOOKUP_BLOCK: usize = 256;

impl Index {
    /// Customers strictly in id order and invoices in (customer id, id) order: one merge,
    /// no hashing, no sorting. The customers are cut into pieces merged in parallel, each
    /// with the invoices between its first id and the next piece's (found by bisection).
    ///
    /// The same pass checks the invoices' order (`None` when they are not in order: the
    /// index is then [`Index::hashed`]) and gathers the rest of what evaluation needs from
    /// each invoice ([`Sweep`], `paid` giving an invoice's payments): at 10^6 invoices each
    /// pass over them costs ≈ 40 ms on a busy machine, bound by memory.
    fn merged(customers: &[Customer], invoices: &[Invoice], paid: &PaymentIndex) -> Option<(Index, Sweep)> {
        Self::merged_in_pieces(customers, invoices, 8192, paid)
    }

    fn merged_in_pieces<'a>(
        customers: &[Customer],
        invoices: &'a [Invoice],
        piece: usize,
        paid: &PaymentIndex,
    ) -> Option<(Index, Sweep)> {
        struct Piece {
            inv_start: Vec<u32>,
            inv_idx: Vec<u32>,
            repeats: Vec<bool>,
            input_errors: Vec<PlanError>,
            found: Vec<(u32, (u32, u32))>,
            due_range: Option<(NaiveDate, NaiveDate)>,
        }
        if !customers.par_windows(2).all(|w| w[0].id < w[1].id) {
            return None;
        }
        /// The order of two invoices by customer id, then invoice id.
        fn key_order(a: &Invoice, b: &Invoice) -> std::cmp::Ordering {
            cmp_text(&a.customer_id, &b.customer_id).then_with(|| cmp_text(&a.id, &b.id))
        }
        let piece_len = piece.max(1);
        let first_invoice_of = |c: &Customer| invoices.partition_point(|inv| inv.customer_id < c.id);
        // The invoices `from..to` of a piece, in order after the one before `from`.
        let sweep = |from: usize, to: usize, piece: &[Customer]| -> Option<Piece> {
            if from > to {
                return None;
            }
            let mut out = Piece {
                inv_start: Vec::with_capacity(piece.len()),
                inv_idx: Vec::with_capacity(to - from),
                repeats: Vec::with_capacity(to - from),
                input_errors: Vec::new(),
                found: Vec::new(),
                due_range: None,
            };
            let mut previous = from.checked_sub(1).and_then(|p| invoices.get(p));
            // The payments of the invoices are looked up a block ahead of the merge (see
            // [`PaymentIndex::find`]), while the block is in the processor's cache.
            let mut looked_up = from;
            let mut visit = |i: usize, inv: &'a Invoice, out: &mut Piece| -> Option<bool> {
                let same = match previous.map(|p| key_order(p, inv)) {
                    Some(std::cmp::Ordering::Greater) => return None,
                    Some(order) => order == std::cmp::Ordering::Equal,
                    None => false,
                };
                previous = Some(inv);
                if i >= looked_up {
                    looked_up = (i + LOOKUP_BLOCK).min(to);
                    paid.find(invoices, i, looked_up, &mut out.found);
                }
                let due = inv.due_date;
                out.due_range = joined(out.due_range, Some((due, due)));
                Some(same)
            };
            let mut i = from;
            for c in piece {
                out.inv_start.push(out.inv_idx.len() as u32);
                while let Some(inv) = invoices.get(i).filter(|_| i < to) {
                    match cmp_text(&inv.customer_id, &c.id) {
                        std::cmp::Ordering::Less => {
                            visit(i, inv, &mut out)?;
                            out.input_errors.push(unknown_customer(inv));
                        }
                        std::cmp::Ordering::Equal => {
                            // The same customer and id as the invoice before.
                            let same = visit(i, inv, &mut out)?;
                            out.repeats.push(same);
                            out.inv_idx.push(i as u32);
                        }
                        std::cmp::Ordering::Greater => break,
                    }
                    i += 1;
                }
            }
            // After the last customer: invoices of unknown customers.
            for (k, inv) in invoices.get(i..to).unwrap_or_default().iter().enumerate() {
                visit(i + k, inv, &mut out)?;
                out.input_errors.push(unknown_customer(inv));
            }
            Some(out)
        };
        let pieces: Vec<Piece> = if customers.is_empty() {
            vec![sweep(0, invoices.len(), &[])?]
        } else {
            customers
                .par_chunks(piece_len)
                .enumerate()
                .map(|(p, piece)| {
                    let from = if p == 0 { 0 } else { piece.first().map_or(0, first_invoice_of) };
                    let to = customers.get((p + 1) * piece_len).map_or(invoices.len(), first_invoice_of);
                    sweep(from, to, piece)
                })
                .collect::<Option<_>>()?
        };
        let mut inv_start = Vec::with_capacity(customers.len() + 1);
        let mut inv_idx = Vec::with_capacity(invoices.len());
        let mut repeats = Vec::with_capacity(invoices.len());
        let mut input_errors = Vec::new();
        let mut found = Vec::new();
        let mut due_range: Option<(NaiveDate, NaiveDate)> = None;
        for p in pieces {
            let base = inv_idx.len() as u32;
            inv_start.extend(p.inv_start.into_iter().map(|s| s + base));
            inv_idx.extend(p.inv_idx);
            repeats.extend(p.repeats);
            input_errors.extend(p.input_errors);
            found.extend(p.found);
            due_range = joined(due_range, p.due_range);
        }
        inv_start.push(inv_idx.len() as u32);
        let n = customers.len() as u32;
        let index = Index {
            order: (0..n).collect(),
            group_of: (0..n).collect(),
            inv_start,
            inv_idx,
            duplicates: false,
            input_errors,
        };
        Some((index, Sweep { repeats, found, due_range }))
    }

    /// Any order: customers grouped by id with a hash map, invoices counted into groups,
    /// each group sorted by invoice id.
    fn hashed(customers: &[Customer], invoices: &[Invoice]) -> Index {
        let mut group: HashMap<&str, u32, Fx> = HashMap::with_capacity_and_hasher(customers.len(), Fx);
        let mut group_of = Vec::with_capacity(customers.len());
        let mut duplicates = false;
        for (i, c) in customers.iter().enumerate() {
            let g = *group.entry(c.id.as_str()).or_insert(i as u32);
            duplicates |= g != i as u32;
            group_of.push(g);
        }
        // Counting sort of invoices by group, keeping portfolio order within a group (the
        // id lookups, the costly part, in parallel).
        let inv_group: Vec<u32> = invoices
            .par_iter()
            .with_min_len(4096)
            .map(|inv| group.get(inv.customer_id.as_str()).copied().unwrap_or(u32::MAX))
            .collect();
        let mut counts = vec![0u32; customers.len() + 1];
        let mut input_errors = Vec::new();
        for (inv, g) in invoices.iter().zip(&inv_group) {
            match *g {
                u32::MAX => input_errors.push(unknown_customer(inv)),
                g => counts[g as usize + 1] += 1,
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
        // Each customer's invoices in id order (then portfolio order): the plan lists them so,
        // and records then come out of the evaluation already nearly sorted.
        {
            let mut rest: &mut [u32] = &mut inv_idx;
            let mut groups: Vec<&mut [u32]> = Vec::with_capacity(customers.len());
            for w in inv_start.windows(2) {
                let (head, tail) = std::mem::take(&mut rest).split_at_mut((w[1] - w[0]) as usize);
                if head.len() > 1 {
                    groups.push(head);
                }
                rest = tail;
            }
            groups.par_iter_mut().with_min_len(256).for_each(|g| {
                g.sort_unstable_by(|a, b| invoices[*a as usize].id.cmp(&invoices[*b as usize].id).then(a.cmp(b)));
            });
        }
        let order = crate::model::rows_in_id_order(customers.len() as u32, |row| &customers[row as usize].id);
        Index { order, group_of, inv_start, inv_idx, duplicates, input_errors }
    }
}

impl<'p> Evaluator<'p> {
    pub(crate) fn new(
        program: &'p Program,
        portfolio: impl Into<PortfolioRef<'p>>,
        as_of: NaiveDate,
        history: &'p dyn History,
    ) -> Self {
        let portfolio = portfolio.into();
        let ix = match portfolio.index {
            Some(ix) => Arc::clone(ix),
            None => Arc::new(PortfolioIndex::new(portfolio.portfolio)),
        };
        let portfolio = portfolio.portfolio;
        let due_range = ix.due_range;
        let calendar = DayCache::new(program.settings.calendar.as_ref(), due_range, as_of);
        let triggers = Triggers::new(program, &calendar);
        let rate_table = RateTable::new(program, &calendar);
        Evaluator {
            program,
            portfolio,
            as_of,
            history,
            ix,
            calendar,
            hash: program.hash.get(..12).unwrap_or(&program.hash),
            history_empty: history.is_empty(),
            as_of_day: money::day_number(as_of),
            triggers,
            rate_table,
            pool: Mutex::new(Vec::new()),
            scratch_pool: Mutex::new(Vec::new()),
            failed: (0..portfolio.customers.len().div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            notes: None,
            sort_by_position: SORT_BY_POSITION,
            stream_facts_from: LARGE_CUSTOMER,
        }
    }

    /// Finds a customer's facts twice, streamed, from `n` invoices on (`usize::MAX`: never;
    /// see [`CustomerEval::run`]).
    #[cfg(test)]
    pub(crate) fn with_stream_facts_from(mut self, n: usize) -> Self {
        self.stream_facts_from = n;
        self
    }

    /// Groups a customer's emissions by sorting their positions from `n` emissions on
    /// (`usize::MAX`: never; see [`CustomerEval::group`]).
    #[cfg(test)]
    pub(crate) fn with_sort_by_position_from(mut self, n: usize) -> Self {
        self.sort_by_position = n;
        self
    }

    /// Makes an evaluation with actions and without skipped steps ([`Mode::ACTIONS`]) note
    /// the steps it skips, so that a later evaluation of the same customers for their skipped
    /// steps ([`Mode::SKIPPED_AFTER_ACTIONS`]) lists most of them from the notes instead of
    /// evaluating again (see [`SkipNotes`]). Costs 4 bytes per invoice and 1 per customer.
    /// Without effect when customer ids repeat (customers are then merged before sorting).
    pub(crate) fn with_skip_notes(mut self) -> Self {
        if !self.ix.duplicates {
            self.notes = Some(SkipNotes {
                invoices: (0..self.portfolio.invoices.len()).map(|_| AtomicU32::new(0)).collect(),
                customers: (0..self.portfolio.customers.len()).map(|_| AtomicU8::new(NOTE_NONE)).collect(),
                books: Mutex::new(Vec::new()),
            });
        }
        self
    }

    /// How many customers have a usable note (see [`SkipNotes`]).
    #[cfg(test)]
    pub(crate) fn noted_customers(&self) -> usize {
        self.notes.as_ref().map_or(0, |n| {
            n.customers.iter().filter(|c| !matches!(c.load(Ordering::Relaxed), NOTE_NONE | NOTE_EMPTY)).count()
        })
    }

    /// Spoils the note of the invoice at position `j` among those of the customer at `at` (in
    /// id order): it names the twelfth step of its scenario, which the tests' scenarios do
    /// not have, so that its listing fails.
    #[cfg(test)]
    pub(crate) fn spoil_note(&self, at: usize, j: usize) {
        if let (Some(notes), Some(&ci)) = (&self.notes, self.ix.order.get(at))
            && let Some(i) = self.invoices_of(self.invoice_range(ci)).nth(j)
        {
            notes.invoices[i as usize].fetch_or(1 << (NOTE_STEPS - 1), Ordering::Relaxed);
        }
    }

    /// How many invoices are noted with events that a stop or pause rule blocked.
    #[cfg(test)]
    pub(crate) fn noted_blocked_events(&self) -> usize {
        self.notes
            .as_ref()
            .map_or(0, |n| n.invoices.iter().filter(|b| InvoiceNote::of(b.load(Ordering::Relaxed)).events != 0).count())
    }

    /// How many very large customers' balances the evaluation kept (see [`SkipNotes::books`]).
    #[cfg(test)]
    pub(crate) fn kept_books(&self) -> usize {
        self.notes.as_ref().and_then(|n| n.books.lock().ok()).map_or(0, |b| b.len())
    }

    /// How many invoices are noted with steps that a stop or pause rule blocked.
    #[cfg(test)]
    pub(crate) fn noted_blocked_invoices(&self) -> usize {
        self.notes
            .as_ref()
            .map_or(0, |n| n.invoices.iter().filter(|b| InvoiceNote::of(b.load(Ordering::Relaxed)).blocked).count())
    }

    /// The trigger date of step `k` (`step`) of `s` for an invoice due on `due` (`table`: the
    /// scenario's trigger dates for that due date, when known). The evaluation and the
    /// listing from notes both ask here, so they give the same dates.
    #[inline]
    fn trigger(
        &self,
        table: Option<&[NaiveDate]>,
        s: &CompiledScenario,
        due: NaiveDate,
        k: usize,
        step: &CompiledStep,
    ) -> NaiveDate {
        match table.and_then(|t| t.get(k)) {
            Some(d) => *d,
            None => trigger_date(&self.calendar, s.business_days, due, step.offset),
        }
    }

    /// The notes of customer `ci`, when it has usable ones (see [`SkipNotes`]).
    fn noted(&self, ci: u32) -> Noted<'p> {
        let Some(notes) = &self.notes else { return Noted::Unusable };
        let scenario = match notes.customers.get(ci as usize).map(|c| c.load(Ordering::Relaxed)) {
            Some(NOTE_EMPTY) => return Noted::Nothing,
            Some(NOTE_NONE) | None => return Noted::Unusable,
            Some(n) => n as usize - 1,
        };
        match self.program.scenarios.get(scenario) {
            Some(s) => Noted::Steps { scenario, s },
            None => Noted::Unusable,
        }
    }

    /// The skipped steps of customer `ci` from its notes, in plan order, as its evaluation
    /// would list them; `false` when it has no usable note (it must be evaluated).
    fn skipped_from_notes(&self, ci: u32, out: &mut Records<'p>, scratch: &mut Scratch<'p>) -> bool {
        let (scenario, s) = match self.noted(ci) {
            Noted::Nothing => return true,
            Noted::Unusable => return false,
            Noted::Steps { scenario, s } => (scenario, s),
        };
        let range = self.invoice_range(ci);
        let mut reserved = None;
        if range.len() >= LARGE_CUSTOMER {
            // Room for all of them at once: growing by copies, a very large customer left
            // the smaller copies with the allocator for a while (one customer of 300,000
            // invoices: 80 MB of records, and as much again freed on the way).
            let total = self.noted_count(range.clone());
            out.skipped.reserve_exact(total);
            reserved = Some((out.skipped.len(), total));
        }
        let mark = out.mark();
        let mut listing = NoteListing::default();
        if !self.list_noted(ci, (scenario, s), 0..range.len(), &mut listing, out, scratch) {
            out.truncate(mark);
            return false;
        }
        debug_assert!(reserved.is_none_or(|(from, n)| out.skipped.len() - from == n), "skipped steps miscounted");
        if listing.in_order {
            debug_assert!(out.is_sorted_since(mark), "skipped steps from notes out of plan order");
        } else {
            out.sort_since(mark);
        }
        true
    }

    /// How many skipped steps the notes of the invoices at `range` of the index list.
    fn noted_count(&self, range: std::ops::Range<usize>) -> usize {
        let Some(notes) = &self.notes else { return 0 };
        let count = |i: u32| {
            let note = InvoiceNote::of(notes.invoices.get(i as usize).map_or(0, |b| b.load(Ordering::Relaxed)));
            (note.expired.count_ones() + note.superseded.count_ones() + note.events.count_ones()) as usize
        };
        self.invoices_of(range).map(count).sum()
    }

    /// Lists the skipped steps that the notes of customer `ci` (of scenario `s`, the
    /// program's `scenario`) give for its invoices at positions `js` (among its invoices in
    /// the index), after those `listing` went through: in the order its evaluation lists
    /// them, which is plan order unless an invoice shares its id with the one before
    /// (`listing.in_order` is then false). `false` when a note cannot be listed (the
    /// records of `js` are then partly made: the caller drops them).
    fn list_noted(
        &self,
        ci: u32,
        (scenario, s): (usize, &'p CompiledScenario),
        js: std::ops::Range<usize>,
        listing: &mut NoteListing,
        out: &mut Records<'p>,
        scratch: &mut Scratch<'p>,
    ) -> bool {
        let Some(notes) = &self.notes else { return false };
        let customer = &self.portfolio.customers[ci as usize];
        let range = self.invoice_range(ci);
        let within = range.start + js.start..range.start + js.end;
        // For the reasons of blocked invoices: the customer's facts, found at the first one.
        let Scratch { facts, balances, trace, .. } = scratch;
        for (j, (i, &repeat)) in self.invoices_of(within.clone()).zip(&self.ix.repeats[within]).enumerate() {
            let j = js.start + j;
            if !repeat || j == 0 {
                listing.rank = j as u32;
            }
            let rank = listing.rank;
            let bits = notes.invoices.get(i as usize).map_or(0, |b| b.load(Ordering::Relaxed));
            if bits == 0 {
                continue;
            }
            let note = InvoiceNote::of(bits);
            // Plan order is by rank, then step, then status. Invoices come by rank, and an
            // invoice's steps by offset (the compiler sorts them): its expired steps, then
            // its superseded ones or those a rule blocked. Steps expire only once the due
            // date has passed, and from then on a step before the due date is never
            // superseded or blocked (it expires), so the expired ones come first in offset
            // order too. Only an invoice sharing its id with the one before (the same rank,
            // its steps interleaved with that invoice's) breaks the order.
            listing.in_order &= !(repeat && j > 0);
            let invoice = &self.portfolio.invoices[i as usize];
            let table = self.triggers.of(scenario, invoice.due_date);
            let mut push = |k: usize, status: SkipStatus| -> bool {
                let Some(step) = s.steps.get(k) else { return false };
                let trigger = self.trigger(table, s, invoice.due_date, k, step);
                let why = match status {
                    SkipStatus::Expired => Why::Expired { step, trigger },
                    _ => match s.steps.get(note.by as usize) {
                        Some(by) => Why::Superseded { trigger, by },
                        None => return false,
                    },
                };
                out.skipped.push(noted_skip(customer, invoice, rank, s, (&step.label, step.order), status, why));
                true
            };
            // In the order the evaluation lists them: expired steps as it meets them, then
            // the superseded ones (or those blocked by a rule, below).
            let listed = steps_of(note.expired).all(|k| push(k, SkipStatus::Expired))
                && (note.blocked || steps_of(note.superseded).all(|k| push(k, SkipStatus::Superseded)));
            if !listed {
                return false;
            }
            if note.blocked {
                let book = match &listing.book {
                    Some(book) => book,
                    None => {
                        // A very large customer's, kept by the evaluation; otherwise found
                        // from all its invoices' facts.
                        let kept = notes.book_of(ci);
                        listing.each_fact = kept.is_some();
                        listing.book.insert(kept.unwrap_or_else(|| self.customer_facts(ci, facts, balances)))
                    }
                };
                if listing.each_fact {
                    // This invoice's facts alone.
                    balances.clear();
                    facts.clear();
                    facts.push(self.customer_eval(ci, Mode::SKIPPED_AFTER_ACTIONS).facts(i, balances));
                }
                let f = facts.get(if listing.each_fact { 0 } else { j });
                let listed = f.is_some_and(|f| self.blocked_from_note(ci, s, f, book, note, (rank, &mut *trace), out));
                if !listed {
                    return false;
                }
            }
        }
        true
    }

    /// The skipped steps (after the actions, [`Mode::SKIPPED_AFTER_ACTIONS`]) of the
    /// customer at `at` in id order, the records [`Evaluator::batch`] makes for it, handed to
    /// `each` in slices of `slice` invoices (each slice's records dropped once handed): listed
    /// from its notes, the records of a very large customer are never all in memory (80 bytes
    /// a skipped step: one customer of 300,000 invoices skips 1 million, 80 MB). Each slice
    /// is handed (on a thread of the pool) while the next one is listed.
    ///
    /// A customer without usable notes, or with an invoice that shares its id with the one
    /// before (its steps go among that one's, for a sort of the whole customer), is evaluated
    /// and its records handed at once. So is the rest of a customer whose notes cannot be
    /// listed after some slices were handed (a note that the evaluation would not make):
    /// the records after those handed. Not for a portfolio whose customer ids repeat, whose
    /// batches are sorted as a whole.
    pub(crate) fn skipped_in_slices(&self, at: usize, slice: usize, each: &mut (dyn FnMut(&Records<'p>) + Send)) {
        let mode = Mode::SKIPPED_AFTER_ACTIONS;
        let Some(&ci) = self.ix.order.get(at) else { return };
        let range = self.invoice_range(ci);
        let own_ids = self.ix.repeats.get(range.start + 1..range.end).is_some_and(|r| !r.contains(&true));
        let mut handed = 0;
        match self.noted(ci) {
            // Nothing to list: the actions' pass saw the customer fail, or skip nothing.
            _ if self.failed(ci) => return,
            Noted::Nothing => return,
            Noted::Steps { scenario, s } if own_ids => {
                let mut scratch = self.scratch();
                let mut listing = NoteListing::default();
                // Each slice is handed while the next one is listed, on the other thread
                // (two slices' records in memory: a few hundred kB each).
                let (mut out, mut next) = (self.records(mode), self.records(mode));
                let slice = slice.max(1);
                let mut list = |js: std::ops::Range<usize>, listing: &mut NoteListing, out: &mut Records<'p>| {
                    let mark = out.mark();
                    let listed = self.list_noted(ci, (scenario, s), js, listing, out, &mut scratch.scratch);
                    debug_assert!(
                        !listed || listing.in_order && out.is_sorted_since(mark),
                        "skipped steps out of plan order"
                    );
                    listed
                };
                // The slice in `out` ends at `end`, listed when `listed`.
                let mut end = range.len().min(slice);
                let mut listed = list(0..end, &mut listing, &mut out);
                while listed {
                    let following = end..range.len().min(end + slice);
                    let ((), listed_next) = rayon::join(
                        || each(&out),
                        || following.is_empty() || list(following.clone(), &mut listing, &mut next),
                    );
                    handed += out.skipped.len();
                    out.clear_written();
                    std::mem::swap(&mut out, &mut next);
                    if following.is_empty() {
                        break;
                    }
                    (end, listed) = (following.end, listed_next);
                }
                out.clear_written();
                next.clear_written();
                self.recycle([out, next]);
                if listed {
                    return;
                }
            }
            Noted::Steps { .. } | Noted::Unusable => {}
        }
        // Evaluated as a batch of the customer alone.
        let mut runs = self.batch(at..at + 1, mode);
        for run in &mut runs {
            let before = handed.min(run.skipped.len());
            run.skipped.drain(..before);
            handed -= before;
            each(run);
        }
        self.recycle(runs);
    }

    /// What the listing from notes needs of customer `ci` for the reason of a blocked
    /// invoice: the facts of its invoices (into `facts`, in their order in the index; their
    /// balances into `balances`), and its balances by currency.
    fn customer_facts(
        &self,
        ci: u32,
        facts: &mut Vec<Facts<'p>>,
        balances: &mut Vec<(NaiveDate, Decimal)>,
    ) -> BalanceBook {
        let e = self.customer_eval(ci, Mode::SKIPPED_AFTER_ACTIONS);
        balances.clear();
        facts.clear();
        facts.extend(self.invoices_of(self.invoice_range(ci)).map(|i| e.facts(i, balances)));
        BalanceBook::open(facts, self.as_of)
    }

    /// Lists the steps of invoice `f` that the rule of its note blocked, with the reason the
    /// evaluation gives (the rule's values read again); `false` when that fails.
    #[allow(clippy::too_many_arguments)]
    fn blocked_from_note(
        &self,
        ci: u32,
        s: &'p CompiledScenario,
        f: &Facts<'p>,
        book: &BalanceBook,
        note: InvoiceNote,
        (rank, trace): (u32, &mut Trace),
        out: &mut Records<'p>,
    ) -> bool {
        let e = self.customer_eval(ci, Mode::SKIPPED_AFTER_ACTIONS);
        let Some((status, (c, text))) = blocking_rules(s).nth(note.by as usize) else { return false };
        let ctx = e.ctx(Some(f), book);
        if e.trace_rule(s, f, &ctx, None, (c, text), trace).is_err() {
            return false;
        }
        let Why::Text(reason) = self::text(&mut out.texts, |b| blocking_reason(status, text, trace.text(), b)) else {
            return false;
        };
        for k in steps_of(note.superseded) {
            let Some(step) = s.steps.get(k) else { return false };
            let step = (step.label.as_str(), step.order);
            out.skipped.push(noted_skip(e.customer, f.invoice, rank, s, step, status, Why::Text(reason)));
        }
        // Then its blocked events, which come after steps in plan order, by label (events of
        // one kind share theirs), then in the order the evaluation meets them.
        let mut events: [Option<(&str, usize, &CompiledEvent)>; NOTE_EVENTS] = [None; NOTE_EVENTS];
        let mut n = 0;
        for k in steps_of(note.events) {
            match (s.events.get(k), events.get_mut(n)) {
                (Some(ev), Some(slot)) => *slot = Some((ev.label.as_str(), k, ev)),
                _ => return false,
            }
            n += 1;
        }
        let events = &mut events[..n];
        events.sort_unstable_by_key(|ev| ev.map(|(label, k, _)| (label, k)));
        for (label, _, ev) in events.iter().flatten() {
            let step = (*label, ev.order);
            out.skipped.push(noted_skip(e.customer, f.invoice, rank, s, step, status, Why::Text(reason)));
        }
        true
    }

    /// Whether the evaluation of customer `ci` failed (known once an evaluation with
    /// actions went through it: see [`Mode::failed_known`]).
    fn failed(&self, ci: u32) -> bool {
        self.failed.get(ci as usize / 64).is_some_and(|w| w.load(Ordering::Relaxed) & (1u64 << (ci % 64)) != 0)
    }

    /// The evaluator of customer `ci` in `mode`.
    fn customer_eval(&self, ci: u32, mode: Mode) -> CustomerEval<'p, '_> {
        CustomerEval {
            program: self.program,
            customer: &self.portfolio.customers[ci as usize],
            as_of: self.as_of,
            history: self.history,
            mode,
            ev: self,
            index: ci,
            unnoted: Cell::new(false),
        }
    }

    /// Gives back the records of a batch once they are written, so that the next batches
    /// fill them again instead of growing new ones.
    pub(crate) fn recycle(&self, runs: impl IntoIterator<Item = Records<'p>>) {
        if let Ok(mut pool) = self.pool.lock() {
            for mut r in runs {
                r.clear();
                pool.push(r);
            }
        }
    }

    /// Empty records, reused when possible.
    fn records(&self, mode: Mode) -> Records<'p> {
        self.pool.lock().ok().and_then(|mut p| p.pop()).unwrap_or_else(|| Records::with_capacity(mode))
    }

    /// Scratch buffers for a part of a batch's work (rayon starts a part wherever it splits
    /// the work, many per batch): those of an earlier part, grown already, when there are.
    fn scratch(&self) -> PooledScratch<'_, 'p> {
        let scratch = self.scratch_pool.lock().ok().and_then(|mut p| p.pop()).unwrap_or_default();
        PooledScratch { scratch, pool: &self.scratch_pool }
    }

    /// Splits the customers (in id order) into ranges of about `size`, never splitting
    /// customers that share an id.
    pub(crate) fn batches(&self, size: usize) -> Vec<std::ops::Range<usize>> {
        let id = |k: usize| self.portfolio.customers[self.ix.order[k] as usize].id.as_str();
        let mut out = Vec::new();
        let mut start = 0;
        while start < self.ix.order.len() {
            let mut end = self.cut(start..self.ix.order.len(), size.max(1));
            while end < self.ix.order.len() && id(end) == id(end - 1) {
                end += 1;
            }
            out.push(start..end);
            start = end;
        }
        out
    }

    /// [`Evaluator::batches`], with batches that end with a very large customer (one whose
    /// invoices fill a batch alone, see [`Evaluator::cut`]) joined when they follow each
    /// other: as many such customers together as the pool has threads, while the joined
    /// batch's invoices beyond those of its largest customer are at most a
    /// [`SIDE_BY_SIDE_SHARE`]th of the portfolio's. A customer is evaluated by one thread,
    /// and a batch that ended with a large customer left the other threads idle once the
    /// customers before it were done: 10^6 invoices of 20 customers kept 1.1 processors
    /// busy. Joined, large customers are evaluated side by side, and the records of the
    /// joined batch are in memory together, which the share bounds (a portfolio of one or two
    /// very large customers is evaluated as before). Large customers with batches of small
    /// ones between them are not joined: the small customers' batches are written run by run
    /// as they are evaluated, while their records are in the processor's cache, which
    /// joined batches are not (10^6 invoices, half of them with 20 customers among 200,000:
    /// CSV 0.49 → 0.56 s joined). For the passes whose records are held until written; the
    /// JSON's skipped steps are listed from notes in slices of one customer at a time
    /// instead.
    pub(crate) fn batches_side_by_side(&self, size: usize) -> Vec<std::ops::Range<usize>> {
        self.side_by_side(self.batches(size), size, rayon::current_num_threads())
    }

    /// [`Evaluator::batches_side_by_side`] from `batches`, those of [`Evaluator::batches`]
    /// for `size`, for a pool of `threads` threads.
    pub(crate) fn side_by_side(
        &self,
        batches: Vec<std::ops::Range<usize>>,
        size: usize,
        threads: usize,
    ) -> Vec<std::ops::Range<usize>> {
        let share = self.portfolio.invoices.len() / SIDE_BY_SIDE_SHARE;
        let invoices_at = |k: usize| self.ix.order.get(k).map_or(0, |&ci| self.invoice_range(ci).len());
        let mut out: Vec<std::ops::Range<usize>> = Vec::new();
        // The large customers that end batches joined in the last batch of `out` (none when
        // it does not end with one), its invoices and those of its largest customer.
        let (mut large, mut invoices, mut largest) = (0, 0, 0);
        for r in batches {
            let Some(last) = self.large_at_end(&r, size) else {
                out.push(r);
                (large, invoices, largest) = (0, 0, 0);
                continue;
            };
            // Counted only for batches that end with a large customer (few).
            let held = r.clone().map(invoices_at).sum::<usize>();
            let joined = invoices + held;
            match out.last_mut() {
                Some(end) if large > 0 && large < threads && joined - largest.max(last) <= share => {
                    end.end = r.end;
                    (large, invoices, largest) = (large + 1, joined, largest.max(last));
                }
                _ => {
                    out.push(r);
                    (large, invoices, largest) = (1, held, last);
                }
            }
        }
        out
    }

    /// The invoices of the customer that ends the batch at `r`, of batches of `size`
    /// customers, when they fill a batch alone (`size ×` [`INVOICES_PER_CUSTOMER`] or more:
    /// only the last customer of a batch may take it there, see [`Evaluator::cut`]).
    pub(crate) fn large_at_end(&self, r: &std::ops::Range<usize>, size: usize) -> Option<usize> {
        let last = self.invoice_range(*self.ix.order.get(r.end.checked_sub(1)?)?).len();
        (last >= size.max(1) * INVOICES_PER_CUSTOMER).then_some(last)
    }

    /// Where a batch or a run of at most `size` customers (positions in id order) that
    /// starts at `within.start` ends: after `size` customers, or once it holds `size ×`
    /// [`INVOICES_PER_CUSTOMER`] invoices (at least one customer), or at `within.end`.
    pub(crate) fn cut(&self, within: std::ops::Range<usize>, size: usize) -> usize {
        let end = within.end.min(within.start + size);
        let most = size * INVOICES_PER_CUSTOMER;
        let mut invoices = 0;
        for k in within.start..end {
            invoices += self.invoice_range(self.ix.order[k]).len();
            if invoices >= most {
                return k + 1;
            }
        }
        end
    }

    /// The runs of customers of a batch (see [`RUN`]), as positions in id order.
    pub(crate) fn runs(&self, range: std::ops::Range<usize>) -> Vec<std::ops::Range<usize>> {
        let mut runs = Vec::with_capacity(range.len().div_ceil(RUN));
        let mut start = range.start;
        while start < range.end {
            let end = self.cut(start..range.end, RUN);
            runs.push(start..end);
            start = end;
        }
        runs
    }

    fn payments(&self, invoice: u32) -> &[PayRow] {
        let (a, b) = self.ix.paid.range(invoice).unwrap_or((0, 0));
        self.ix.pay_rows.get(a as usize..b as usize).unwrap_or_default()
    }

    /// Evaluates customers `range` (positions in id order), in parallel. The records come
    /// out in runs of customers, in id order; within each customer, in plan order. When
    /// customer ids repeat, the batch is one run sorted as a whole.
    pub(crate) fn batch(&self, range: std::ops::Range<usize>, mode: Mode) -> Vec<Records<'p>> {
        // Runs of a few dozen customers, each filling one set of records (reused: see
        // `recycle`) with scratch buffers kept by the thread's part of the work.
        let runs: Vec<Records<'p>> = self
            .runs(range)
            .into_par_iter()
            .map_init(|| self.scratch(), |scratch, run| self.run(&self.ix.order[run], mode, &mut scratch.scratch))
            .collect();
        self.merged_if_duplicates(runs)
    }

    /// Like [`Evaluator::batch`], and hands each run to `write` with its own output, in the
    /// same task, while its records are still in the processor's cache; `outs` grows to the
    /// number of runs. The records returned keep only their customer-level lists (next
    /// dates, unassigned customers, errors): the written ones are emptied by the thread that
    /// wrote them ([`Records::clear_written`]). (When customer ids repeat, the batch is
    /// evaluated first and written as one run, and its records are returned whole.)
    pub(crate) fn batch_then<T: Send + Default>(
        &self,
        range: std::ops::Range<usize>,
        mode: Mode,
        outs: &mut Vec<T>,
        write: impl Fn(&Records<'p>, &mut T) + Sync,
    ) -> Vec<Records<'p>> {
        if self.ix.duplicates {
            let runs = self.batch(range, mode);
            if outs.is_empty() {
                outs.push(T::default());
            }
            if let (Some(run), Some(out)) = (runs.first(), outs.first_mut()) {
                write(run, out);
            }
            return runs;
        }
        let runs = self.runs(range);
        if outs.len() < runs.len() {
            outs.resize_with(runs.len(), T::default);
        }
        runs.into_par_iter()
            .zip(outs.par_iter_mut())
            .map_init(
                || self.scratch(),
                |scratch, (run, out)| {
                    let mut records = self.run(&self.ix.order[run], mode, &mut scratch.scratch);
                    write(&records, out);
                    records.clear_written();
                    records
                },
            )
            .collect()
    }

    /// The invoices (indices in the portfolio) at `range` of the index.
    fn invoices_of(&self, range: std::ops::Range<usize>) -> InvoiceIds<'_> {
        match &self.ix.inv_idx {
            Some(listed) => InvoiceIds::Listed(listed[range].iter()),
            None => InvoiceIds::Every(range.start as u32..range.end as u32),
        }
    }

    /// Where the invoices of customer `ci` are in the index (and `repeats`).
    pub(crate) fn invoice_range(&self, ci: u32) -> std::ops::Range<usize> {
        let g = self.ix.group_of[ci as usize] as usize;
        self.ix.inv_start[g] as usize..self.ix.inv_start[g + 1] as usize
    }

    fn run(&self, run: &[u32], mode: Mode, scratch: &mut Scratch<'p>) -> Records<'p> {
        let mut out = self.records(mode);
        // When the index does not list the invoices: the indices from the run's first invoice
        // to its last, counted once (a portfolio in evaluation order has the run's customers
        // side by side), each customer's a slice of them; otherwise counted customer by
        // customer.
        let mut ids: Vec<u32> = Vec::new();
        let mut ids_from = 0;
        if self.ix.inv_idx.is_none() {
            let ranges = || run.iter().map(|&ci| self.invoice_range(ci));
            let (lo, hi) = (ranges().map(|r| r.start).min(), ranges().map(|r| r.end).max());
            if let (Some(lo), Some(hi)) = (lo, hi)
                && hi - lo <= 64 * run.len()
            {
                ids.extend(lo as u32..hi as u32);
                ids_from = lo;
            }
        }
        for (k, &ci) in run.iter().enumerate() {
            // The customer after next and its invoices are fetched while these are evaluated.
            if let Some(&ahead) = run.get(k + PREFETCH_AHEAD) {
                crate::model::prefetch(&self.portfolio.customers, ahead as usize);
                for i in self.invoices_of(self.invoice_range(ahead)) {
                    crate::model::prefetch(&self.portfolio.invoices, i as usize);
                }
            }
            // The next customer's invoices, fetched one customer ago, point at their extra
            // columns (held apart, in load order), which conditions may read: those are
            // fetched too when the customers are evaluated (skipped steps after actions come
            // mostly from notes, which read none).
            if mode.actions
                && let Some(&next) = run.get(k + 1)
            {
                for i in self.invoices_of(self.invoice_range(next)) {
                    if let Some(inv) = self.portfolio.invoices.get(i as usize) {
                        inv.extra.prefetch();
                    }
                }
            }
            if mode.failed_known && self.failed(ci) {
                continue;
            }
            // Skipped steps after actions: from the notes of the evaluation with actions.
            if mode.failed_known && !mode.actions && self.skipped_from_notes(ci, &mut out, scratch) {
                continue;
            }
            let range = self.invoice_range(ci);
            let idx = match &self.ix.inv_idx {
                Some(listed) => &listed[range.clone()],
                None if range.start >= ids_from && range.end - ids_from <= ids.len() => {
                    &ids[range.start - ids_from..range.end - ids_from]
                }
                None => {
                    ids.clear();
                    ids.extend(range.start as u32..range.end as u32);
                    ids_from = range.start;
                    &ids[..]
                }
            };
            let repeats = &self.ix.repeats[range];
            let e = self.customer_eval(ci, mode);
            let mark = out.mark();
            match e.run(idx, repeats, &mut out, scratch) {
                // Counting needs no order.
                Ok(()) if !mode.ids => {}
                Ok(()) => out.sort_since(mark),
                Err(err) => {
                    out.truncate(mark);
                    out.errors.push(err);
                    // Read by a later evaluation of the same batch (synchronised by the end
                    // of this one).
                    if let Some(w) = self.failed.get(ci as usize / 64) {
                        w.fetch_or(1u64 << (ci % 64), Ordering::Relaxed);
                    }
                }
            }
        }
        out
    }

    /// Runs `f` with an [`Ahead`] for `batches` (of `size` customers, evaluated in their
    /// order with [`Ahead::batch`], or begun with [`Ahead::begin`] when evaluated otherwise)
    /// in `mode`; returns once the evaluations ahead are done.
    pub(crate) fn with_ahead<R>(
        &self,
        batches: &[std::ops::Range<usize>],
        size: usize,
        mode: Mode,
        f: impl FnOnce(&mut Ahead<'p, '_, '_>) -> R,
    ) -> R {
        let larges = batches.iter().filter(|r| self.large_at_end(r, size).is_some()).cloned().collect();
        rayon::in_place_scope(|scope| f(&mut Ahead { ev: self, scope, mode, size, larges, pending: None, launched: 0 }))
    }

    fn merged_if_duplicates(&self, runs: Vec<Records<'p>>) -> Vec<Records<'p>> {
        if !self.ix.duplicates {
            return runs;
        }
        let mut all = Records::default();
        for r in runs {
            all.append(r);
        }
        all.sort_all();
        vec![all]
    }
}

/// The evaluation of batches in their order, with the very large customer that ends a later
/// batch evaluated ahead, on a thread of the pool, while the batches before it are
/// evaluated and written (see [`Evaluator::with_ahead`]).
///
/// A customer is evaluated by one thread: a batch that ends with a very large customer kept
/// one thread on it while the other finished the batch's small customers and waited (10^6
/// invoices, half of them with 20 key accounts spread among 200,000 customers: 1.4–1.6
/// processors busy while evaluating). Evaluated ahead, the key account takes one thread
/// while the other goes on with the small customers' batches, and its records wait for
/// their batch: 1.9 processors busy, the JSON plan 0.65 → 0.57 s, the CSV 0.58 → 0.51 s,
/// the table 0.52 → 0.46 s, the memory as before.
///
/// One customer at most is evaluated ahead, launched when a batch that does not end with a
/// large customer begins: its records are in memory beside two batches of small customers,
/// as they were beside its own batch's. Batches that end with large customers and follow
/// each other are evaluated as before (they are side by side: see
/// [`Evaluator::batches_side_by_side`]).
pub(crate) struct Ahead<'p, 'x, 's> {
    ev: &'s Evaluator<'p>,
    scope: &'x rayon::Scope<'s>,
    mode: Mode,
    /// The batches' size (see [`Evaluator::batches`]).
    size: usize,
    /// The batches, of `size` customers, that end with a very large customer and are not
    /// reached yet, in order.
    larges: std::collections::VecDeque<std::ops::Range<usize>>,
    /// The batch whose last customer is being evaluated ahead, and where its records come.
    pending: Option<(std::ops::Range<usize>, std::sync::mpsc::Receiver<Records<'p>>)>,
    /// How many customers were evaluated ahead.
    pub(crate) launched: usize,
}

impl<'p> Ahead<'p, '_, '_> {
    /// Called as the batch at `r` begins: launches the evaluation of the next batch's very
    /// large customer when none is under way and this batch does not end with one.
    pub(crate) fn begin(&mut self, r: &std::ops::Range<usize>) {
        while self.larges.front().is_some_and(|l| l.start <= r.start) {
            self.larges.pop_front();
        }
        if self.pending.is_some() || self.ev.ix.duplicates || self.ev.large_at_end(r, self.size).is_some() {
            return;
        }
        let Some(next) = self.larges.pop_front() else { return };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let (ev, mode, last) = (self.ev, self.mode, next.end - 1);
        self.scope.spawn(move |_| {
            let mut scratch = ev.scratch();
            // The receiver is gone only when the plan stopped (a write error).
            let _ = tx.send(ev.run(&ev.ix.order[last..last + 1], mode, &mut scratch.scratch));
        });
        self.pending = Some((next, rx));
        self.launched += 1;
    }

    /// [`Evaluator::batch`] of the batch at `r`, in order, with its last customer's records
    /// from the evaluation ahead when there was one.
    pub(crate) fn batch(&mut self, r: std::ops::Range<usize>) -> Vec<Records<'p>> {
        self.begin(&r);
        match self.pending.take() {
            Some((at, rx)) if at == r => {
                let last = r.end - 1;
                let mut runs = self.ev.batch(r.start..last, self.mode);
                match rx.recv() {
                    Ok(large) => runs.push(large),
                    // The evaluation ahead panicked (the scope passes it on): evaluated here.
                    Err(_) => runs.extend(self.ev.batch(last..r.end, self.mode)),
                }
                runs
            }
            pending => {
                self.pending = pending;
                self.ev.batch(r, self.mode)
            }
        }
    }
}

/// How many customers ahead of the one evaluated [`Evaluator::run`] fetches.
const PREFETCH_AHEAD: usize = 2;

/// The rate periods of one interest rule from one first day, or why there are none.
type Periods = Result<Rates, String>;

/// The rate periods of an interest rule from a first day to the as-of date (with the law's
/// points added), and their sum for amounts that do not change.
struct Rates {
    periods: Arc<[RatePeriod]>,
    /// The periods as a reason lists them ([`periods_phrase`]): the same text for
    /// every invoice of this rule and first day (see [`PeriodsText`]).
    phrase: Arc<str>,
    days: Option<RateDays>,
    /// Some period's rate is assumed (its warning goes on every action it touches): read
    /// here, without reading the periods for every invoice.
    assumed: bool,
}

/// Interest rate periods (the rule's points added) per interest rule and first day of
/// interest, computed on first use and shared by the threads: they depend only on the rule,
/// the first day and the as-of date, and invoices share due dates.
pub(crate) struct RateTable {
    /// The program's interest rules, by address.
    rules: Vec<usize>,
    /// The day number of the first first day (see [`money::day_number`]).
    first: i64,
    days: usize,
    /// `rules × days` slots, rule by rule.
    slots: Vec<OnceLock<Periods>>,
}

impl RateTable {
    /// No table beyond this many slots (due dates over centuries): each thread then keeps
    /// its own cache.
    const MAX_SLOTS: usize = 1 << 18;

    fn new(program: &Program, cal: &DayCache<'_>) -> Self {
        let mut rules = Vec::new();
        for s in &program.scenarios {
            let actions = s.steps.iter().map(|st| &st.action).chain(s.events.iter().map(|e| &e.action));
            for rule in actions.filter_map(|a| a.interest.as_ref()) {
                let addr = std::ptr::from_ref(rule) as usize;
                if !rules.contains(&addr) {
                    rules.push(addr);
                }
            }
        }
        let empty = RateTable { rules: Vec::new(), first: 0, days: 0, slots: Vec::new() };
        let Some((lo, hi)) = cal.due_range else { return empty };
        let (Some(first), Ok(days)) = (lo.succ_opt(), usize::try_from((hi - lo).num_days() + 1)) else { return empty };
        let n = days.saturating_mul(rules.len());
        if rules.is_empty() || n > Self::MAX_SLOTS {
            return empty;
        }
        RateTable { rules, first: money::day_number(first), days, slots: (0..n).map(|_| OnceLock::new()).collect() }
    }

    /// The slot of `rule` for interest starting on `first` and its number, if the table has
    /// one.
    fn slot(&self, rule: &InterestRule, first: NaiveDate) -> Option<(u32, &OnceLock<Periods>)> {
        let addr = std::ptr::from_ref(rule) as usize;
        let r = self.rules.iter().position(|a| *a == addr)?;
        let day = usize::try_from(money::day_number(first) - self.first).ok().filter(|d| *d < self.days)?;
        let k = r * self.days + day;
        // (At most `MAX_SLOTS` slots: the number fits.)
        Some((k as u32, self.slots.get(k)?))
    }

    /// The periods' text of slot `k` (empty for a slot not computed, which no note names).
    pub(crate) fn phrase(&self, k: u32) -> &str {
        match self.slots.get(k as usize).and_then(OnceLock::get) {
            Some(Ok(rates)) => &rates.phrase,
            _ => "",
        }
    }
}

/// [`Scratch`] buffers lent to a part of an evaluation's work, and given back to the
/// evaluator's pool when that part ends, for the next one: with rayon's many parts a batch,
/// new buffers for each would be grown again each time (a few allocations a customer).
struct PooledScratch<'e, 'p> {
    scratch: Scratch<'p>,
    pool: &'e Mutex<Vec<Scratch<'p>>>,
}

impl Drop for PooledScratch<'_, '_> {
    fn drop(&mut self) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(std::mem::take(&mut self.scratch));
        }
    }
}

/// Buffers reused from one customer to the next.
#[derive(Default)]
struct Scratch<'a> {
    facts: Vec<Facts<'a>>,
    balances: Vec<(NaiveDate, Decimal)>,
    done: Vec<bool>,
    /// Steps reached and due: their position in the scenario, the step and its trigger date.
    reached: Vec<(usize, &'a CompiledStep, NaiveDate)>,
    due: Vec<(usize, &'a CompiledStep, NaiveDate)>,
    rates: RateCache,
    /// The customer's values of the chosen scenario's rules that read only customer fields
    /// (stops then pauses), once known.
    rule_values: Vec<Option<bool>>,
    /// The values a condition read, for a reason.
    trace: Trace,
}

/// Interest rate periods by interest rule (its address) and first day of interest, for the
/// first days outside the shared [`RateTable`].
type RateCache = HashMap<(usize, NaiveDate), Rates, Fx>;

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
    /// Position of the first of the customer's invoices with this id (they are in id order).
    rank: u32,
}

struct CustomerEval<'a, 'e> {
    program: &'a Program,
    customer: &'a Customer,
    as_of: NaiveDate,
    history: &'a dyn History,
    mode: Mode,
    ev: &'e Evaluator<'a>,
    /// The customer's index in the portfolio.
    index: u32,
    /// A step was skipped for a reason that [`SkipNotes`] do not hold.
    unnoted: Cell<bool>,
}

type Res<T> = Result<T, PlanError>;

impl<'a> CustomerEval<'a, '_> {
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
        let payments = self.ev.payments(index);
        let (outstanding, paid_on, paid_by_promise) = match payments.len() {
            1.. => {
                let mut open = inv.amount;
                let mut paid_on = None;
                let mut paid_by_promise = Decimal::ZERO;
                balance.push((inv.issue_date.unwrap_or(inv.due_date).min(inv.due_date), open));
                for p in payments.iter().filter(|p| p.date <= t) {
                    open -= p.amount;
                    if inv.promise_date.is_some_and(|d| p.date <= d) && p.kind == PaymentKind::Payment {
                        paid_by_promise += p.amount;
                    }
                    balance.push((p.date, open.max(Decimal::ZERO)));
                    if !positive(open) && paid_on.is_none() {
                        paid_on = Some(p.date);
                    }
                }
                (open, paid_on, paid_by_promise)
            }
            _ => {
                let open = inv.outstanding.unwrap_or(inv.amount);
                balance.push((inv.issue_date.unwrap_or(inv.due_date).min(inv.due_date), open));
                // Only read for a promise.
                let paid_by_promise = if inv.promise_date.is_some() { inv.amount - open } else { Decimal::ZERO };
                (open, if positive(open) { None } else { Some(t) }, paid_by_promise)
            }
        };
        let days_late = (self.ev.as_of_day - money::day_number(inv.due_date)).max(0);
        Facts {
            invoice: inv,
            outstanding,
            balance: (first, balance.len() as u32),
            paid_on,
            days_late,
            reminders_sent: if self.ev.history_empty { 0 } else { self.history.reminders_sent(&inv.id) },
            promise_to_pay: inv.promise_date.is_some_and(|d| d >= t) && positive(outstanding),
            paid_by_promise,
            rank: 0,
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

    /// A new emission of step or event `(label, order)` for invoice `f` (position `index`).
    fn emission(
        &self,
        f: &Facts<'a>,
        index: usize,
        (label, order): (&'a str, i64),
        key: Cow<'a, str>,
        action: &'a CompiledAction,
    ) -> Emission<'a> {
        Emission {
            invoice: f.invoice,
            index,
            outstanding: f.outstanding,
            days_late: f.days_late,
            label,
            order,
            key,
            action,
            carried: Carried::default(),
            fees: Decimal::ZERO,
            interest: Decimal::ZERO,
            triggered: None,
            notes: None,
        }
    }

    fn run(&self, invoices: &[u32], repeats: &[bool], out: &mut Records<'a>, scratch: &mut Scratch<'a>) -> Res<()> {
        let t = self.as_of;
        let Scratch { facts, balances, done, reached, due, rates, rule_values, trace } = scratch;
        balances.clear();
        facts.clear();
        // This customer's emissions, grouped into actions at the end.
        let first_emission = out.emissions.len();
        // A very large customer's facts are found twice, for its balances first, then one
        // invoice at a time as it is evaluated, instead of being held: 80 bytes an invoice,
        // and the balance changes 20 bytes each (one customer of 10^6 invoices: 530 →
        // 440 MiB).
        let large = invoices.len() >= LARGE_CUSTOMER;
        let streamed = invoices.len() >= self.ev.stream_facts_from;
        let mut book = BalanceBook::default();
        let mut open_count = 0;
        if streamed {
            for &i in invoices {
                balances.clear();
                let f = self.facts(i, balances);
                open_count += usize::from(book.add_open(&f, t));
            }
        } else {
            for (i, repeat) in invoices.iter().zip(repeats) {
                let mut f = self.facts(*i, balances);
                f.rank = match facts.last() {
                    Some(prev) if *repeat => prev.rank,
                    _ => facts.len() as u32,
                };
                open_count += usize::from(book.add_open(&f, t));
                facts.push(f);
            }
        }
        if self.mode.actions
            && large
            && let Some(notes) = &self.ev.notes
            && let Ok(mut books) = notes.books.lock()
        {
            books.push((self.index, book.clone()));
        }
        if self.mode.actions && large {
            // Room for an emission per open invoice at once (most emit at most one step):
            // grown by doubling, a very large customer's emissions (192 bytes each) were in
            // memory twice and a half at the last growth, the old room beside the new (one
            // customer of 300,000 invoices: 208–211 → 179–183 MB). Room not filled is not
            // touched, so it takes no memory.
            out.emissions.reserve(open_count);
        }

        // 1. Scenario selection: the first whose selector matches.
        let mut chosen: Option<(usize, &'a CompiledScenario)> = None;
        // In file order; `for others` is the fallback wherever it is written.
        let all = self.program.scenarios.iter().enumerate();
        let ordered = all
            .clone()
            .filter(|(_, s)| !matches!(s.selector, Selector::Others))
            .chain(all.filter(|(_, s)| matches!(s.selector, Selector::Others)));
        for (number, s) in ordered {
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
                chosen = Some((number, s));
                break;
            }
        }
        let notes = self.ev.notes.as_ref().filter(|_| self.mode.actions);
        let Some((number, scenario)) = chosen else {
            if let Some(n) = notes.and_then(|n| n.customers.get(self.index as usize)) {
                n.store(NOTE_EMPTY, Ordering::Relaxed);
            }
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
        rule_values.clear();
        rule_values.resize(scenario.stops.len() + scenario.pauses.len(), None);

        // 2. Minimum balance (applies to balances in the minimum's currency).
        let below_minimum = match self.program.settings.minimum_balance {
            Some((min, cur)) if book.has(cur) && money::cmp(book.of(cur).0, min).is_lt() => {
                Some((min, cur, book.of(cur).0))
            }
            _ => None,
        };
        let mut below_minimum_text: Option<u32> = None;

        // 3. Cooldown.
        let cooldown = self.program.settings.cooldown_days;
        let deferred_until = match self.last_contact() {
            Some(last) if cooldown > 0 => {
                let until = last.checked_add_days(Days::new(u64::from(cooldown))).unwrap_or(last);
                (until > t).then_some((last, until))
            }
            _ => None,
        };
        let mut deferred_text: Option<u32> = None;

        let mut next_on: Option<NaiveDate> = None;
        let bump_next = |d: NaiveDate, next_on: &mut Option<NaiveDate>| {
            if d > t && next_on.is_none_or(|n| d < n) {
                *next_on = Some(d);
            }
        };

        let mut rank = 0;
        for (idx, (&invoice, &repeat)) in invoices.iter().zip(repeats).enumerate() {
            let found;
            let f = if streamed {
                balances.clear();
                let mut f = self.facts(invoice, balances);
                if !(idx > 0 && repeat) {
                    rank = idx as u32;
                }
                f.rank = rank;
                found = f;
                &found
            } else {
                match facts.get(idx) {
                    Some(f) => f,
                    None => break,
                }
            };
            let balances = &*balances;
            let inv = f.invoice;
            let ctx = self.ctx(Some(f), &book);
            // This invoice's skipped steps, noted for a later listing (see `SkipNotes`): only
            // this thread evaluates this invoice, so a load and a store add bits to its note.
            let note = |bits: u32| {
                if let Some(a) = notes.and_then(|n| n.invoices.get(invoice as usize)) {
                    a.store(a.load(Ordering::Relaxed) | bits, Ordering::Relaxed);
                }
            };
            let open = positive(f.outstanding);

            // Events first: they concern paid invoices too.
            for (e, ev) in scenario.events.iter().enumerate() {
                let (fires, key): (bool, Cow<'a, str>) = match ev.kind {
                    EventKind::AfterPayment => {
                        let fires = !open && f.reminders_sent > 0 && f.paid_on.is_some_and(|d| d <= t);
                        (fires, Cow::Borrowed(ev.key.as_str()))
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
                            let fires = pd < t && !kept;
                            (fires, if fires { Cow::Owned(format!("{} {pd}", ev.key)) } else { Cow::Borrowed("") })
                        }
                        _ => (false, Cow::Borrowed("")),
                    },
                };
                if !fires || self.step_done(inv, scenario, &key) {
                    continue;
                }
                if let Some((status, rule_text, rule)) =
                    self.blocking_rule(scenario, f, &ctx, Some(&ev.label), rule_values, trace)?
                {
                    let unnoted = self.unnoted.get();
                    let why = |texts: &mut Texts| text(texts, |b| blocking_reason(status, rule_text, trace.text(), b));
                    self.skip(out, scenario, f, (&ev.label, ev.order), status, why, None);
                    // Noted with its rule, as the steps it blocks (below): the same rule, as
                    // rules read the invoice's facts, not the step or event.
                    if notes.is_some() && rule < NOTE_RULES && e < NOTE_EVENTS {
                        self.unnoted.set(unnoted);
                        note(
                            InvoiceNote { by: rule as u32, blocked: true, events: 1 << e, ..InvoiceNote::default() }
                                .bits(),
                        );
                    }
                    continue;
                }
                if !self.holds(scenario, f, &ctx, &ev.label, &ev.action)? {
                    continue;
                }
                if !self.builds_actions() {
                    continue;
                }
                let mut em = self.emission(f, idx, (&ev.label, ev.order), key, &ev.action);
                if self.mode.actions && self.mode.text {
                    self.trace_of(scenario, f, &ctx, &ev.label, &ev.action, trace)?;
                    em.set_trace(trace.text(), &mut out.spare_notes);
                }
                self.charge(scenario, f, balances, rates, &mut em, &mut out.spare_notes)?;
                out.emissions.push(em);
            }

            if !open {
                continue;
            }

            // Steps: which are reached (trigger ≤ T) and not done.
            // (Without history nothing is done: `done` stays empty.)
            done.clear();
            let last_done = if self.ev.history_empty {
                None
            } else {
                done.extend(scenario.steps.iter().map(|s| self.step_done(inv, scenario, &s.key)));
                scenario.steps.iter().zip(done.iter()).filter(|(_, d)| **d).map(|(s, _)| s.offset).max()
            };
            reached.clear();
            let triggers = self.ev.triggers.of(number, inv.due_date);
            for (k, step) in scenario.steps.iter().enumerate() {
                if done.get(k).copied().unwrap_or(false) || last_done.is_some_and(|l| step.offset < l) {
                    continue;
                }
                let trigger = self.ev.trigger(triggers, scenario, inv.due_date, k, step);
                if trigger > t {
                    bump_next(trigger, &mut next_on);
                    continue;
                }
                if step.offset < 0 && t > inv.due_date {
                    if k < NOTE_STEPS {
                        note(InvoiceNote { expired: 1 << k, ..InvoiceNote::default() }.bits());
                    } else {
                        self.unnoted.set(true);
                    }
                    self.skip(
                        out,
                        scenario,
                        f,
                        (&step.label, step.order),
                        SkipStatus::Expired,
                        |_| Why::Expired { step, trigger },
                        None,
                    );
                    continue;
                }
                reached.push((k, step, trigger));
            }
            if reached.is_empty() {
                continue;
            }
            // Stop and pause rules, then the minimum balance.
            if let Some((status, rule_text, rule)) = self.blocking_rule(scenario, f, &ctx, None, rule_values, trace)? {
                let unnoted = self.unnoted.get();
                let mut shared: Option<u32> = None;
                for (_, step, _) in reached.iter() {
                    self.skip(
                        out,
                        scenario,
                        f,
                        (&step.label, step.order),
                        status,
                        |texts| {
                            shared_text(texts, &mut shared, |b| blocking_reason(status, rule_text, trace.text(), b))
                        },
                        None,
                    );
                }
                // Noted with its rule, whose reason the listing from notes writes again (see
                // `Evaluator::skipped_from_notes`).
                if notes.is_some() && rule < NOTE_RULES && reached.iter().all(|(k, _, _)| *k < NOTE_STEPS) {
                    self.unnoted.set(unnoted);
                    let blocked = reached.iter().fold(0, |mask, (k, _, _)| mask | 1 << k);
                    note(
                        InvoiceNote { superseded: blocked, by: rule as u32, blocked: true, ..InvoiceNote::default() }
                            .bits(),
                    );
                }
                continue;
            }
            if let Some((min, cur, bal)) = below_minimum {
                for (_, step, _) in reached.iter() {
                    self.skip(
                        out,
                        scenario,
                        f,
                        (&step.label, step.order),
                        SkipStatus::BelowMinimum,
                        |texts| {
                            shared_text(texts, &mut below_minimum_text, |b| {
                                let _ = write!(
                                    b,
                                    "customer balance {} {} is below the minimum balance {} {}",
                                    money::round(bal, cur),
                                    cur.code(),
                                    min,
                                    cur.code()
                                );
                            })
                        },
                        None,
                    );
                }
                continue;
            }
            // Conditions.
            due.clear();
            for &(k, step, trigger) in reached.iter() {
                if !self.holds(scenario, f, &ctx, &step.label, &step.action)? {
                    if step.action.condition.is_some() {
                        // Listed as `condition-false` with the values read.
                        self.unnoted.set(true);
                    }
                    if self.mode.skipped
                        && let Some((_, text)) = &step.action.condition
                    {
                        trace.clear();
                        if self.mode.text {
                            self.trace_of(scenario, f, &ctx, &step.label, &step.action, trace)?;
                        }
                        let values = trace.text();
                        self.skip(
                            out,
                            scenario,
                            f,
                            (&step.label, step.order),
                            SkipStatus::ConditionFalse,
                            |texts| {
                                self::text(texts, |b| {
                                    let _ = write!(b, "condition `{text}` does not hold ({values})");
                                })
                            },
                            None,
                        );
                    }
                    continue;
                }
                due.push((k, step, trigger));
            }
            if due.is_empty() {
                continue;
            }
            // Cooldown.
            if let Some((last, until)) = deferred_until {
                for (_, step, _) in due.iter() {
                    self.skip(out, scenario, f, (&step.label, step.order), SkipStatus::Deferred, |texts| {
                        shared_text(texts, &mut deferred_text, |b| {
                            let _ = write!(b, "customer was contacted on {last}; cooldown of {cooldown} days allows a new contact from {until}");
                        })
                    }, Some(until));
                }
                bump_next(until, &mut next_on);
                continue;
            }
            // Catch-up.
            let emit_idx = match scenario.catch_up {
                CatchUp::Latest => due.len() - 1,
                CatchUp::Stepwise => 0,
            };
            let (emitted_k, emitted): (usize, &'a CompiledStep) = (due[emit_idx].0, due[emit_idx].1);
            let mut carried = Carried::new(&scenario.steps);
            for (i, (k, step, trigger)) in due.iter().enumerate() {
                if i == emit_idx {
                    continue;
                }
                if *k < NOTE_STEPS && emitted_k < NOTE_STEPS {
                    note(InvoiceNote { superseded: 1 << k, by: emitted_k as u32, ..InvoiceNote::default() }.bits());
                } else {
                    self.unnoted.set(true);
                }
                if scenario.catch_up == CatchUp::Latest {
                    carried.push(step);
                }
                let why = Why::Superseded { trigger: *trigger, by: emitted };
                self.skip(out, scenario, f, (&step.label, step.order), SkipStatus::Superseded, |_| why, None);
                if scenario.catch_up == CatchUp::Stepwise
                    && let Some(d) = t.succ_opt()
                {
                    bump_next(d, &mut next_on);
                }
            }
            if !self.builds_actions() {
                continue;
            }
            let (_, step, trigger) = due[emit_idx];
            let mut em =
                self.emission(f, idx, (&step.label, step.order), Cow::Borrowed(step.key.as_str()), &step.action);
            em.carried = carried;
            em.triggered = Some(trigger);
            if self.mode.actions && self.mode.text {
                self.trace_of(scenario, f, &ctx, &step.label, &step.action, trace)?;
                em.set_trace(trace.text(), &mut out.spare_notes);
            }
            self.charge(scenario, f, balances, rates, &mut em, &mut out.spare_notes)?;
            out.emissions.push(em);
        }

        self.group(out, scenario, first_emission);
        out.next.push((self.customer, next_on));
        if let Some(n) = notes.and_then(|n| n.customers.get(self.index as usize)) {
            let noted = match u8::try_from(number + 1) {
                Ok(v) if v != NOTE_EMPTY && !self.unnoted.get() && scenario.steps.len() <= NOTE_STEPS => v,
                _ => NOTE_NONE,
            };
            n.store(noted, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Whether an emitted step becomes an emission: not when no action is wanted and the
    /// customers whose fees fail are already known (see [`Mode::failed_known`]), as the fees
    /// and interest of an emission would only be computed for their errors.
    fn builds_actions(&self) -> bool {
        self.mode.actions || !self.mode.failed_known
    }

    /// Whether the step with key `key` of scenario `s` was done for `inv`.
    fn step_done(&self, inv: &Invoice, s: &CompiledScenario, key: &str) -> bool {
        !self.ev.history_empty && self.history.step_done(&inv.id, &s.name, key).is_some()
    }

    /// The last date the customer was contacted.
    fn last_contact(&self) -> Option<NaiveDate> {
        if self.ev.history_empty { None } else { self.history.last_contact(&self.customer.id) }
    }

    /// Whether the condition of `action` (of the event or step `label`) holds. Most steps have
    /// none: that answer is inlined where it is asked.
    #[inline]
    fn holds(
        &self,
        s: &CompiledScenario,
        f: &Facts<'a>,
        ctx: &EvalCtx<'_>,
        label: &str,
        action: &CompiledAction,
    ) -> Res<bool> {
        if action.condition.is_none() {
            return Ok(true);
        }
        self.condition(s, f, ctx, label, action, &mut None)
    }

    /// Records into `trace` (a buffer reused from call to call) the values the condition of
    /// `action` reads, for a reason (`Trace::text`: separated by `, `; empty without a
    /// condition). Evaluated again (conditions have no side effects) and only when the
    /// reason is written: the values are text.
    fn trace_of(
        &self,
        s: &CompiledScenario,
        f: &Facts<'a>,
        ctx: &EvalCtx<'_>,
        label: &str,
        action: &CompiledAction,
        trace: &mut Trace,
    ) -> Res<()> {
        trace.clear();
        if action.condition.is_none() {
            return Ok(());
        }
        self.condition(s, f, ctx, label, action, &mut Some(trace))?;
        Ok(())
    }

    /// Evaluates the condition of `action` (true when it has none), recording the values it
    /// reads into `trace` when given; an error names the scenario, invoice and step.
    fn condition(
        &self,
        s: &CompiledScenario,
        f: &Facts<'a>,
        ctx: &EvalCtx<'_>,
        label: &str,
        action: &CompiledAction,
        trace: &mut Option<&mut Trace>,
    ) -> Res<bool> {
        match &action.condition {
            None => Ok(true),
            Some((c, text)) => c.eval(ctx, trace).map_err(|e| {
                self.err(Some(&s.name), Some(&f.invoice.id), Some(label), format!("condition `{text}`: {e}"))
            }),
        }
    }

    /// The first `stop when` / `pause when` rule that holds for this invoice, with its status
    /// and reason (the values it read; only built when skipped steps are wanted). `step` names
    /// the event or step in an error message.
    #[inline]
    fn blocking_rule(
        &self,
        s: &'a CompiledScenario,
        f: &Facts<'a>,
        ctx: &EvalCtx<'_>,
        step: Option<&str>,
        values: &mut [Option<bool>],
        trace: &mut Trace,
    ) -> Res<Option<(SkipStatus, &'a str, usize)>> {
        for (k, (status, (c, text))) in blocking_rules(s).enumerate() {
            let fail = |e: String| self.err(Some(&s.name), Some(&f.invoice.id), step, format!("rule `{text}`: {e}"));
            // A rule on customer fields only has one value per customer.
            let customer_only = s.customer_only_rules.get(k).copied().unwrap_or(false);
            let holds = match values.get(k).copied().flatten() {
                Some(v) if customer_only => v,
                _ => {
                    let v = c.eval(ctx, &mut None).map_err(fail)?;
                    if customer_only && let Some(slot) = values.get_mut(k) {
                        *slot = Some(v);
                    }
                    v
                }
            };
            if !holds {
                continue;
            }
            if self.mode.skipped && self.mode.text {
                self.trace_rule(s, f, ctx, step, (c, text), trace)?;
            }
            return Ok(Some((status, text.as_str(), k)));
        }
        Ok(None)
    }

    /// Records into `trace` the values that rule `c` (written `text`) reads, for the reason of
    /// the steps it blocks (see [`blocking_reason`]; conditions have no side effects).
    #[inline(never)]
    fn trace_rule(
        &self,
        s: &'a CompiledScenario,
        f: &Facts<'a>,
        ctx: &EvalCtx<'_>,
        step: Option<&str>,
        (c, text): (&Cond, &str),
        trace: &mut Trace,
    ) -> Res<()> {
        trace.clear();
        c.eval(ctx, &mut Some(&mut *trace))
            .map_err(|e| self.err(Some(&s.name), Some(&f.invoice.id), step, format!("rule `{text}`: {e}")))?;
        Ok(())
    }

    /// Lists a skipped step. `why` is only called when skipped steps are wanted; it may
    /// store a text in the outcome and point at it.
    #[allow(clippy::too_many_arguments)]
    fn skip(
        &self,
        out: &mut Records<'a>,
        s: &'a CompiledScenario,
        f: &Facts<'a>,
        (step, order): (&'a str, i64),
        status: SkipStatus,
        why: impl FnOnce(&mut Texts) -> Why<'a>,
        until: Option<NaiveDate>,
    ) {
        if !matches!(status, SkipStatus::Expired | SkipStatus::Superseded) {
            self.unnoted.set(true);
        }
        if !self.mode.skipped {
            return;
        }
        if !self.mode.skip_records {
            if let Some(n) = out.skip_counts.get_mut(status as usize) {
                *n += 1;
            }
            return;
        }
        let why = if self.mode.text { why(&mut out.texts) } else { Why::Text(u32::MAX) };
        out.skipped.push(SkipRec {
            customer: self.customer,
            invoice: f.invoice,
            rank: f.rank,
            scenario: s,
            step,
            order,
            status,
            why,
            until,
        });
    }

    /// Fees and interest of the emitted step and of the steps it carries.
    fn charge(
        &self,
        s: &'a CompiledScenario,
        f: &Facts<'a>,
        balances: &[(NaiveDate, Decimal)],
        rates: &mut RateCache,
        em: &mut Emission<'a>,
        spare: &mut SpareNotes<'a>,
    ) -> Res<()> {
        let inv = f.invoice;
        let cur = inv.currency;
        // With no history, no step was done: no legal fee was charged before.
        let mut legal_charged = !self.ev.history_empty
            && s.steps.iter().any(|st| {
                st.action.fees.iter().any(|r| matches!(r, FeeRule::Legal(..))) && self.step_done(inv, s, &st.key)
            });
        let mut interest_rule = None;
        let sources =
            std::iter::once((em.label, em.action)).chain(em.carried.iter().map(|c| (c.label.as_str(), &c.action)));
        let (mut first_fee, mut more_fees) = (None, Vec::new());
        let mut note_fee = |note: FeeNote<'a>| match first_fee {
            None => first_fee = Some(note),
            Some(_) => more_fees.push(note),
        };
        for (label, action) in sources {
            for fee in &action.fees {
                match fee {
                    FeeRule::Legal(law, phrase) => {
                        if legal_charged {
                            continue;
                        }
                        if law.currency() != cur {
                            return Err(self.err(Some(&s.name), Some(&inv.id), Some(em.label), format!(
                                "`fee legal` of law `{}` is in {} but invoice `{}` is in {}; no exchange rate is configured",
                                law.name(), law.currency().code(), inv.id, cur.code()
                            )));
                        }
                        let fee = law.recovery_fee(inv.amount);
                        money::add_to(&mut em.fees, fee);
                        if self.mode.actions && self.mode.text {
                            note_fee(FeeNote { amount: money::round(fee, cur), law: Some(phrase), label });
                        }
                        legal_charged = true;
                    }
                    FeeRule::Amount(a, fc) => {
                        if *fc != cur {
                            return Err(self.err(Some(&s.name), Some(&inv.id), Some(em.label), format!(
                                "fee of {a} {} cannot be charged on invoice `{}` in {}; no exchange rate is configured",
                                fc.code(), inv.id, cur.code()
                            )));
                        }
                        money::add_to(&mut em.fees, *a);
                        if self.mode.actions && self.mode.text {
                            note_fee(FeeNote { amount: money::round(*a, cur), law: None, label });
                        }
                    }
                }
            }
            if interest_rule.is_none() {
                interest_rule = action.interest.as_ref();
            }
        }
        if first_fee.is_some() {
            let notes = em.notes_mut(spare);
            notes.first_fee = first_fee;
            notes.more_fees.append(&mut more_fees);
        }
        if let Some(rule) = interest_rule {
            let first = inv.due_date.succ_opt().unwrap_or(inv.due_date);
            let last = self.as_of;
            if last >= first {
                // Periods (with the law's points added) depend only on the rule and the
                // first day: computed once for each.
                let compute = || -> Periods {
                    let mut periods =
                        rule.schedule.periods(first, last, self.program.settings.assume_unchanged).map_err(|e| {
                            let help = miette::Diagnostic::help(&e).map(|h| format!("; {h}")).unwrap_or_default();
                            format!("interest {}: {e}{help}", rule.label)
                        })?;
                    for p in &mut periods {
                        p.percent += rule.points;
                    }
                    let days = RateDays::new(first, last, &periods);
                    let assumed = periods.iter().any(|p| p.assumed.is_some());
                    let mut phrase = String::new();
                    periods_phrase(&periods, &mut phrase);
                    Ok(Rates { periods: periods.into(), phrase: phrase.into(), days, assumed })
                };
                // Borrowed from the shared table or the run's cache: no reference count
                // changes per invoice.
                let mut table_slot = None;
                let found: Result<&Rates, &String> = match self.ev.rate_table.slot(rule, first) {
                    Some((k, slot)) => {
                        table_slot = Some(k);
                        slot.get_or_init(compute).as_ref()
                    }
                    None => {
                        let key = (std::ptr::from_ref(rule) as usize, first);
                        match rates.entry(key) {
                            Entry::Occupied(o) => Ok(&*o.into_mut()),
                            Entry::Vacant(v) => match compute() {
                                Ok(p) => Ok(&*v.insert(p)),
                                Err(message) => {
                                    return Err(self.err(Some(&s.name), Some(&inv.id), Some(em.label), message));
                                }
                            },
                        }
                    }
                };
                let rates =
                    found.map_err(|message| self.err(Some(&s.name), Some(&inv.id), Some(em.label), message.clone()))?;
                let shifted = &rates.periods;
                if rates.assumed {
                    for p in shifted.iter() {
                        if let Some(w) = &p.assumed {
                            em.notes_mut(spare).warnings.push(w.clone());
                        }
                    }
                }
                if !self.mode.actions {
                    return Ok(());
                }
                let balance = &balances[f.balance.0 as usize..f.balance.1 as usize];
                // An amount that did not change since before the first day (no payment):
                // the rates summed once for all invoices of that first day.
                let constant = match (balance, rates.days) {
                    ([(from, amount)], Some(days)) if *from <= first => days.interest(*amount, cur),
                    _ => None,
                };
                em.interest = match constant {
                    Some(i) => i,
                    None => money::rounded_interest(first, last, balance, shifted, cur),
                };
                if self.mode.text {
                    let periods = match table_slot {
                        Some(k) => PeriodsText::Table(k),
                        None => PeriodsText::Own(Arc::clone(&rates.phrase)),
                    };
                    em.notes_mut(spare).interest_note = Some(InterestNote { rule: &rule.phrase, first, last, periods });
                }
            }
        }
        Ok(())
    }

    /// Groups the customer's emissions (from `first` in the records) into actions: one per
    /// step key, currency (and invoice, for `per invoice` steps), in the order of those keys.
    /// The emissions are sorted in place; each action names its range of them.
    fn group(&self, out: &mut Records<'a>, s: &'a CompiledScenario, first: usize) {
        if !self.mode.actions {
            out.emissions.truncate(first);
            return;
        }
        let Some(ems) = out.emissions.get_mut(first..) else { return };
        let slot = |em: &Emission<'a>| em.action.per_invoice.then_some(em.index);
        let same = |a: &Emission<'a>, b: &Emission<'a>| {
            same_key(&a.key, &b.key) && a.invoice.currency == b.invoice.currency && slot(a) == slot(b)
        };
        // Any order that brings equal keys together will do (actions are put in plan order
        // afterwards): the step's order first, the key text only on a tie. A group keeps its
        // invoices in id order: the emissions of one key come in the order of the customer's
        // invoices, one per invoice, so their position among them ends the comparison. That
        // is the order of a stable sort, without the buffer of one (half the emissions: 22 MB
        // for a customer of 300,000 invoices). The order by class below is another order
        // that brings each group together, its invoices in id order, without a buffer either.
        let cmp = |a: &Emission<'a>, b: &Emission<'a>| {
            a.order
                .cmp(&b.order)
                .then_with(|| if same_key(&a.key, &b.key) { std::cmp::Ordering::Equal } else { a.key.cmp(&b.key) })
                .then_with(|| (a.invoice.currency, slot(a), a.index).cmp(&(b.invoice.currency, slot(b), b.index)))
        };
        if ems.len() >= self.ev.sort_by_position {
            // Many emissions (a very large customer): each is moved once (192 bytes) to its
            // place, instead of at every step of a sort of the emissions (a customer of
            // 50,000 invoices spent a quarter of its evaluation in such a sort's moves and
            // comparisons). Their order: by class (step and currency), as each class first
            // comes, then by position; or, for more classes than [`MAX_CLASSES`] (events
            // whose keys hold a date), the order above.
            let order = classes_of(ems).map_or_else(
                || {
                    let mut order: Vec<u32> = (0..ems.len() as u32).collect();
                    order.sort_unstable_by(|&x, &y| cmp(&ems[x as usize], &ems[y as usize]).then(x.cmp(&y)));
                    order
                },
                |(class, classes)| by_class(&class, classes),
            );
            permute(ems, &order);
        } else if ems.len() > 1 {
            ems.sort_unstable_by(cmp);
        }
        let ems = &out.emissions[first..];
        let mut start = 0;
        while let Some(head) = ems.get(start) {
            let len = ems[start..].iter().take_while(|e| same(e, head)).count();
            let group = &ems[start..start + len];
            let range = ((first + start) as u32, (first + start + len) as u32);
            let cur = head.invoice.currency;
            if let Some(a) =
                ActionRec::new(self.as_of, self.customer, &s.name, cur, group, range, self.ev.hash, self.mode.ids)
            {
                out.actions.push(a);
            }
            start += len;
        }
    }
}

/// The class of each of emissions `ems` (a customer's), numbered as they first come, and
/// the number of classes: emissions of one class have the same step (order and key) and
/// currency, and differ by invoice only. `None` for more than [`MAX_CLASSES`].
fn classes_of(ems: &[Emission<'_>]) -> Option<(Vec<u32>, usize)> {
    let mut classes: Vec<&Emission<'_>> = Vec::new();
    let mut class = Vec::with_capacity(ems.len());
    for em in ems {
        let same = |c: &&Emission<'_>| {
            c.order == em.order && same_key(&c.key, &em.key) && c.invoice.currency == em.invoice.currency
        };
        let c = match classes.iter().position(same) {
            Some(c) => c,
            None if classes.len() < MAX_CLASSES => {
                classes.push(em);
                classes.len() - 1
            }
            None => return None,
        };
        class.push(c as u32);
    }
    Some((class, classes.len()))
}

/// The positions of items of classes `class` (numbered below `classes`) ordered by class,
/// then by position (a counting sort).
fn by_class(class: &[u32], classes: usize) -> Vec<u32> {
    // Where each class starts, then where its next item goes.
    let mut next = vec![0u32; classes + 1];
    for &c in class {
        next[c as usize + 1] += 1;
    }
    for k in 1..next.len() {
        next[k] += next[k - 1];
    }
    let mut order = vec![0u32; class.len()];
    for (k, &c) in class.iter().enumerate() {
        order[next[c as usize] as usize] = k as u32;
        next[c as usize] += 1;
    }
    order
}

/// Puts `items` in `order` (the position of the item to put at each place), moving each once.
fn permute<T>(items: &mut [T], order: &[u32]) {
    // `dest[k]`: where the item at `k` goes.
    let mut dest = vec![0u32; items.len()];
    for (to, &from) in order.iter().enumerate() {
        dest[from as usize] = to as u32;
    }
    // Each swap puts one item at its place.
    for k in 0..items.len() {
        while dest[k] as usize != k {
            let to = dest[k] as usize;
            items.swap(k, to);
            dest.swap(k, to);
        }
    }
}

/// Whether two step keys are the same text: the key of a step is borrowed from it, so the
/// same step has the very same text, and only other texts are compared.
fn same_key(a: &str, b: &str) -> bool {
    std::ptr::eq(a, b) || a == b
}

/// `d > 0`, without a decimal comparison.
fn positive(d: Decimal) -> bool {
    d.is_sign_positive() && !d.is_zero()
}

/// Stores a reason text and points at it.
fn text<'a>(texts: &mut Texts, write: impl FnOnce(&mut String)) -> Why<'a> {
    Why::Text(texts.push_with(write))
}

/// The reason of a step blocked by a rule that holds: the rule (`text`, its status) and the
/// values it read (`values`, from its trace).
fn blocking_reason(status: SkipStatus, text: &str, values: &str, out: &mut String) {
    let verb = if status == SkipStatus::Stopped { "stop when `" } else { "pause when `" };
    for part in [verb, text, "` holds (", values, ")"] {
        out.push_str(part);
    }
}

/// The stop rules of a scenario, then its pause rules, with the status each gives: the order
/// in which they are tried, and the numbering a note uses.
fn blocking_rules(s: &CompiledScenario) -> impl Iterator<Item = (SkipStatus, &(Cond, String))> {
    s.stops.iter().map(|r| (SkipStatus::Stopped, r)).chain(s.pauses.iter().map(|r| (SkipStatus::Paused, r)))
}

/// A skipped step or event (its label and sort key) listed from notes (see
/// [`Evaluator::skipped_from_notes`]).
fn noted_skip<'a>(
    customer: &'a Customer,
    invoice: &'a Invoice,
    rank: u32,
    s: &'a CompiledScenario,
    (step, order): (&'a str, i64),
    status: SkipStatus,
    why: Why<'a>,
) -> SkipRec<'a> {
    SkipRec { customer, invoice, rank, scenario: s, step, order, status, why, until: None }
}

/// Stores a reason text once for several skipped steps and points at it.
fn shared_text<'a>(texts: &mut Texts, slot: &mut Option<u32>, reason: impl FnOnce(&mut String)) -> Why<'a> {
    match *slot {
        Some(i) => Why::Text(i),
        None => {
            let why = text(texts, reason);
            if let Why::Text(i) = why {
                *slot = Some(i);
            }
            why
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

/// A customer's open balances per currency: the first currency inline (most customers have
/// one; no allocation per customer), others in a list.
#[derive(Default, Clone, Debug, PartialEq)]
struct BalanceBook {
    first: Option<(Currency, Decimal, Decimal)>,
    others: Vec<(Currency, Decimal, Decimal)>,
    main_currency: Option<Currency>,
}

impl BalanceBook {
    /// The balances of a customer's invoices (`facts`) that are open on `t`.
    fn open(facts: &[Facts<'_>], t: NaiveDate) -> Self {
        let mut book = BalanceBook::default();
        for f in facts {
            book.add_open(f, t);
        }
        book
    }

    /// Adds invoice `f` when it is open on `t`; whether it is.
    fn add_open(&mut self, f: &Facts<'_>, t: NaiveDate) -> bool {
        let open = positive(f.outstanding);
        if open {
            self.add(f.invoice.currency, f.outstanding, f.invoice.due_date < t);
        }
        open
    }

    fn add(&mut self, cur: Currency, amount: Decimal, overdue: bool) {
        if self.main_currency.is_none() {
            self.main_currency = Some(cur);
        }
        let od = if overdue { amount } else { Decimal::ZERO };
        if let Some(e) = self.entry(cur) {
            money::add_to(&mut e.1, amount);
            money::add_to(&mut e.2, od);
        } else if self.first.is_none() {
            self.first = Some((cur, amount, od));
        } else {
            self.others.push((cur, amount, od));
        }
    }
    fn entry(&mut self, cur: Currency) -> Option<&mut (Currency, Decimal, Decimal)> {
        self.first.iter_mut().chain(self.others.iter_mut()).find(|(c, _, _)| *c == cur)
    }
    fn get(&self, cur: Currency) -> Option<&(Currency, Decimal, Decimal)> {
        self.first.iter().chain(self.others.iter()).find(|(c, _, _)| *c == cur)
    }
    fn has(&self, cur: Currency) -> bool {
        self.get(cur).is_some()
    }
    fn of(&self, cur: Currency) -> (Decimal, Decimal) {
        self.get(cur).map_or((Decimal::ZERO, Decimal::ZERO), |(_, b, o)| (*b, *o))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::Engine;
    use crate::compile::Registry;
    use crate::history::NoHistory;

    proptest::proptest! {
        /// Items put in the order of their classes are those of a stable sort by class.
        #[test]
        fn a_permutation_by_class_is_a_stable_sort_by_class(items in proptest::collection::vec(0u16..1000, 0..300)) {
            let class: Vec<u32> = items.iter().map(|&v| u32::from(v / 100)).collect();
            let mut got = items.clone();
            permute(&mut got, &by_class(&class, 10));
            let mut want = items;
            want.sort_by_key(|&v| v / 100);
            proptest::prop_assert_eq!(got, want);
        }
    }

    /// Weekends and 1 May off, as a test calendar.
    #[derive(Debug)]
    struct Weekdays;

    impl Calendar for Weekdays {
        fn name(&self) -> &str {
            "WEEKDAYS"
        }
        fn is_business_day(&self, d: NaiveDate) -> bool {
            use chrono::Datelike;
            d.weekday().number_from_monday() <= 5 && !(d.month() == 5 && d.day() == 1)
        }
    }

    proptest::proptest! {
        /// Payments in any order are put in invoice id order, then date, then portfolio
        /// order: what a stable sort comparing them gives (ids of at most and over 16 bytes,
        /// sharing their first 8 or 16, NUL bytes, repeats, one date or several).
        #[test]
        fn payments_are_ordered_by_invoice_then_date(
            pays in proptest::collection::vec(
                (proptest::prop_oneof!["[FG]{0,17}", proptest::strategy::Just("F000000000001234".to_string())], "[0-9\u{0}é]{0,3}", 0u32..4),
                0..60,
            ),
        ) {
            let base = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
            let pays: Vec<Payment> = pays
                .into_iter()
                .map(|(shared, rest, day)| Payment {
                    id: None,
                    invoice_id: format!("{shared}{rest}").into(),
                    date: base + chrono::Days::new(u64::from(day)),
                    amount: Decimal::ONE,
                    kind: crate::model::PaymentKind::Payment,
                })
                .collect();
            let mut expected: Vec<u32> = (0..pays.len() as u32).collect();
            expected.sort_by(|a, b| {
                let (x, y) = (&pays[*a as usize], &pays[*b as usize]);
                (x.invoice_id.as_str(), x.date).cmp(&(y.invoice_id.as_str(), y.date))
            });
            proptest::prop_assert_eq!(payment_lookup(&pays).0, expected);
        }
    }

    #[test]
    fn the_trigger_table_gives_the_dates_computed_one_by_one() {
        let mut registry = Registry::new();
        registry.calendars.insert("WEEKDAYS".to_owned(), Arc::new(Weekdays));
        let policy = r#"settings { calendar WEEKDAYS }
scenario "Calendar days" { for segment "a" D-10 email "pre" D+3 email "r1" D+30 letter "r2" }
scenario "Business days" { for others count business days D-2 email "pre" D+1 call "c" D+15 letter "r2" }"#;
        let engine = Engine::from_sources(vec![relance_dsl::Source::new("p.relance", policy)], &registry).unwrap();
        let first = NaiveDate::from_ymd_opt(2026, 3, 20).unwrap();
        let mut p = Portfolio::default();
        p.customers.push(crate::model::Customer::new("C1", "One", "a"));
        for k in 0..60u64 {
            let due = first.checked_add_days(Days::new(k)).unwrap();
            p.invoices.push(Invoice::new(format!("F{k}"), "C1", due, Decimal::ONE, Currency::EUR));
        }
        let as_of = NaiveDate::from_ymd_opt(2026, 5, 4).unwrap();
        let ev = Evaluator::new(engine.program(), &p, as_of, &NoHistory);
        assert_eq!(ev.triggers.days, 60);
        for (number, s) in engine.program().scenarios.iter().enumerate() {
            for inv in &p.invoices {
                let table = ev.triggers.of(number, inv.due_date).unwrap();
                let direct: Vec<NaiveDate> = s
                    .steps
                    .iter()
                    .map(|st| trigger_date(&Weekdays, s.business_days, inv.due_date, st.offset))
                    .collect();
                assert_eq!(table, direct.as_slice(), "scenario {} due {}", s.name, inv.due_date);
            }
            // Outside the portfolio's due dates the table has nothing (the caller computes).
            assert!(ev.triggers.of(number, first.pred_opt().unwrap()).is_none());
            assert!(ev.triggers.of(number, first.checked_add_days(Days::new(60)).unwrap()).is_none());
        }
    }

    #[test]
    fn the_merged_index_and_sweep_are_the_same_in_any_number_of_pieces() {
        use crate::model::Customer;
        let due = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        // Customers C02, C04 … C40; invoices of customers C00 … C43 (odd ones unknown), some
        // customers with several invoices (a repeated id among them), some with none; due
        // dates spread; every third invoice paid.
        let customers: Vec<Customer> = (1..=20).map(|k| Customer::new(format!("C{:02}", 2 * k), "n", "s")).collect();
        let mut invoices = Vec::new();
        for c in 0..44u64 {
            for k in 0..(c % 5) {
                let id = if c == 8 && k == 2 { format!("F{c:02}1") } else { format!("F{c:02}{k}") };
                let due = due.checked_add_days(Days::new((c * 7 + k) % 30)).unwrap();
                invoices.push(Invoice::new(id, format!("C{c:02}"), due, Decimal::ONE, Currency::EUR));
            }
        }
        let mut paid_ids: Vec<&str> = invoices
            .iter()
            .map(|inv| inv.id.as_str())
            .filter(|id| id[1..].parse::<u32>().unwrap().is_multiple_of(3))
            .collect();
        paid_ids.sort();
        let paid = PaymentIndex::new(paid_ids.iter().copied());
        let (whole, whole_sweep) = Index::merged_in_pieces(&customers, &invoices, usize::MAX, &paid).unwrap();
        let hashed = Index::hashed(&customers, &invoices);
        let hashed_sweep = Sweep::separately(&invoices, &hashed, &paid);
        let errors = |i: &Index| i.input_errors.iter().map(|e| e.invoice.clone()).collect::<Vec<_>>();
        assert_eq!(
            (&whole.inv_start, &whole.inv_idx, errors(&whole), &whole_sweep),
            (&hashed.inv_start, &hashed.inv_idx, errors(&hashed), &hashed_sweep)
        );
        assert!(!whole.input_errors.is_empty() && whole.inv_idx.len() > 20);
        assert_eq!(whole_sweep.repeats.iter().filter(|r| **r).count(), 1);
        let found: Vec<&str> = whole_sweep.found.iter().map(|(i, _)| invoices[*i as usize].id.as_str()).collect();
        let expected: Vec<&str> =
            invoices.iter().map(|inv| inv.id.as_str()).filter(|id| paid_ids.contains(id)).collect();
        assert_eq!(found, expected);
        assert!(found.len() > 10);
        assert_eq!(whole_sweep.due_range, Some((due, due.checked_add_days(Days::new(29)).unwrap())));
        for piece in 1..=21 {
            let (p, sweep) = Index::merged_in_pieces(&customers, &invoices, piece, &paid).unwrap();
            assert_eq!(
                (&p.inv_start, &p.inv_idx, errors(&p), &sweep),
                (&whole.inv_start, &whole.inv_idx, errors(&whole), &whole_sweep),
                "pieces of {piece}"
            );
        }
        let (none, sweep) = Index::merged_in_pieces(&[], &invoices, 4, &paid).unwrap();
        assert_eq!((none.inv_start, none.input_errors.len()), (vec![0], invoices.len()));
        assert_eq!((sweep.found, sweep.due_range), (whole_sweep.found.clone(), whole_sweep.due_range));
    }

    #[test]
    fn invoices_out_of_order_are_not_merged() {
        use crate::model::Customer;
        let due = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let customers: Vec<Customer> = ["C1", "C2", "C3"].iter().map(|id| Customer::new(*id, "n", "s")).collect();
        let invoice = |id: &str, c: &str| Invoice::new(id, c, due, Decimal::ONE, Currency::EUR);
        let sorted = vec![invoice("F1", "C1"), invoice("F1", "C1"), invoice("F2", "C1"), invoice("F0", "C3")];
        let none = PaymentIndex::default();
        for piece in [1, 2, usize::MAX] {
            assert!(Index::merged_in_pieces(&customers, &sorted, piece, &none).is_some());
            // Ids out of order within a customer, customers out of order, at any position.
            for (a, b) in [(1, 2), (2, 3), (0, 3)] {
                let mut swapped = sorted.clone();
                swapped.swap(a, b);
                assert!(Index::merged_in_pieces(&customers, &swapped, piece, &none).is_none(), "{a} {b} {piece}");
            }
        }
        // Customers out of order.
        let mut unsorted = customers.clone();
        unsorted.swap(0, 2);
        assert!(Index::merged_in_pieces(&unsorted, &sorted, 2, &none).is_none());
    }

    #[test]
    fn paid_invoices_find_each_range_across_words() {
        let found: Vec<(u32, (u32, u32))> = [0u32, 1, 63, 64, 65, 127, 128, 200]
            .iter()
            .enumerate()
            .map(|(k, i)| (*i, (k as u32 * 10, k as u32 * 10 + 3)))
            .collect();
        let paid = PaidInvoices::new(260, found.clone());
        for i in 0..260u32 {
            let want = found.iter().find(|(j, _)| *j == i).map(|(_, r)| *r);
            assert_eq!(paid.range(i), want, "invoice {i}");
        }
        assert_eq!(paid.range(1000), None);
        assert_eq!(PaidInvoices::default().range(0), None);
    }

    #[test]
    fn carried_steps_come_back_in_scenario_order_beyond_64_steps_too() {
        let steps: String = (0..70).map(|k| format!("D+{k} email \"t{k}\"\n")).collect();
        let policy = format!("scenario \"Long\" {{ for others\n{steps}}}");
        let engine =
            Engine::from_sources(vec![relance_dsl::Source::new("p.relance", policy)], &Registry::new()).unwrap();
        let all = &engine.program().scenarios[0].steps;
        assert_eq!(all.len(), 70);
        let mut carried = Carried::new(all);
        assert!(carried.iter().next().is_none());
        for k in [0, 5, 63, 64, 69] {
            carried.push(&all[k]);
        }
        let labels: Vec<&str> = carried.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["D", "D+5", "D+63", "D+64", "D+69"]);
    }

    #[test]
    fn a_sorted_portfolio_is_indexed_as_any_other_order() {
        let policy = r#"scenario "All" { for others D+1 email "r1" D+10 letter "r2" D+30 registered_letter "n" }"#;
        let engine =
            Engine::from_sources(vec![relance_dsl::Source::new("p.relance", policy)], &Registry::new()).unwrap();
        let due = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        let mut p = Portfolio::default();
        for c in ["C2", "C4", "C6", "C8"] {
            p.customers.push(crate::model::Customer::new(c, c, "s"));
        }
        // Unknown customers before, between and after the known ones; a repeated invoice id;
        // a customer without invoices (C8).
        for (k, (id, customer)) in [
            ("F1", "C1"),
            ("F2", "C2"),
            ("F3", "C2"),
            ("F3", "C2"),
            ("F4", "C3"),
            ("F5", "C4"),
            ("F6", "C6"),
            ("F7", "C9"),
        ]
        .into_iter()
        .enumerate()
        {
            let d = due.checked_add_days(Days::new(k as u64 * 9)).unwrap();
            p.invoices.push(Invoice::new(id, customer, d, Decimal::new(100 + k as i64, 0), Currency::EUR));
        }
        let as_of = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let mut reversed = p.clone();
        reversed.invoices.reverse();
        reversed.customers.reverse();
        // Sorting keeps the portfolio order of invoices that share an id, which orders their
        // skipped steps: each order is compared with itself sorted. The sorted ones take the
        // merged index, the others the hashed one.
        for q in [&p, &reversed] {
            let mut sorted = q.clone();
            sorted.sort_for_evaluation();
            for r in [q, &sorted] {
                let ev = Evaluator::new(engine.program(), r, as_of, &NoHistory);
                assert_eq!(ev.ix.input_errors.len(), 3, "unknown customers C1, C3, C9");
            }
            let want = crate::render::to_json(&engine.evaluate(&sorted, as_of, &NoHistory));
            assert!(want.contains("C9") && want.contains("F3") && want.contains("C8"), "{want}");
            assert_eq!(crate::render::to_json(&engine.evaluate(q, as_of, &NoHistory)), want);
        }
    }
}
