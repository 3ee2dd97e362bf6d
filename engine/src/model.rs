//! The portfolio: customers, open invoices, payments and credit notes.
//!
//! This is plain data. Loaders in `relance-stdlib` fill it from CSV, JSON or Excel; an
//! embedding program can also build it by hand.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::NaiveDate;
use iso_currency::Currency;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::eval::{PortfolioIndex, Sweep, payment_lookup};

/// The string type of the model's text fields: up to 24 bytes inline (no heap allocation for
/// typical ids, names and codes), otherwise on the heap; dereferences to `&str`.
pub use compact_str::CompactString;

/// Everything the engine knows about receivables at one point in time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Portfolio {
    /// Customers, any order.
    pub customers: Vec<Customer>,
    /// Invoices, any order. Paid invoices may be present (they feed `after payment`).
    pub invoices: Vec<Invoice>,
    /// Dated payments and credit notes. When an invoice has any, its outstanding amount on
    /// a date is computed from them; otherwise its `outstanding` field is used.
    pub payments: Vec<Payment>,
    /// Rows or values that a loader accepted with a warning (shown in the plan).
    pub warnings: Vec<String>,
}

impl Portfolio {
    /// Puts the invoices in customer id order, then invoice id order (equal ids keep their
    /// order), and the customers in id order. Plans do not depend on the order of the
    /// portfolio; the evaluator, which works customer by customer in id order, then reads
    /// memory sequentially instead of jumping across the whole portfolio (at 10^6 invoices
    /// this saves more time than it takes). Sorts in place: no copy of the invoices.
    pub fn sort_for_evaluation(&mut self) {
        self.sort_by_ids(None);
    }

    /// [`Portfolio::sort_for_evaluation`] when the customer of each invoice is known:
    /// `customer_of[i]` is the index in `customers` of the customer of `invoices[i]`, as a
    /// loader finds it when it checks references. The result is the same, but the invoices
    /// are grouped by their customer's place in id order (a counting sort) instead of by a
    /// comparison sort of their ids, and each customer's invoices are then compared with
    /// their neighbours only (exports usually list them in id order already). At 10^6
    /// invoices the grouping takes a third of the time of the comparison sort's keys and
    /// sort (the permutation that then moves the invoices is the same), and 12 bytes of
    /// temporary memory an invoice instead of 28 (docs/performance-history.md, round 15).
    ///
    /// Any `customer_of` gives the same order as `sort_for_evaluation`: when it does not
    /// match the portfolio (another length, an index out of range, a customer whose id is
    /// not the invoice's `customer_id`), or when two customers have the same id, the
    /// comparison sort is done instead, at its cost. Returns whether `customer_of` matched
    /// (whether the counting sort was used).
    pub fn sort_for_evaluation_by_customer(&mut self, customer_of: &[u32]) -> bool {
        match self.sort_by_customer(customer_of, false, PIECE) {
            Ok(_) => true,
            Err(origin) => {
                self.sort_by_ids(origin.as_deref());
                false
            }
        }
    }

    /// [`Portfolio::sort_for_evaluation_by_customer`]'s counting sort, and when `indexed`
    /// the evaluator's index of the sorted portfolio, gathered in the pass that checks the
    /// groups; when `customer_of` does not match, `Err` with where each invoice now comes
    /// from if they were moved.
    fn sort_by_customer(
        &mut self,
        customer_of: &[u32],
        indexed: bool,
        min_piece: usize,
    ) -> Result<Option<PortfolioIndex>, Option<Vec<u32>>> {
        use rayon::prelude::*;
        let customers = &self.customers;
        let n_customers = customers.len();
        if customer_of.len() != self.invoices.len()
            || n_customers >= u32::MAX as usize
            || self.invoices.len() >= u32::MAX as usize
        {
            return Err(None);
        }
        // The customers in id order (most exports list them so), and each one's place.
        let sorted = customers.par_windows(2).all(|w| cmp_text(&w[0].id, &w[1].id).is_lt());
        let mut by_id: Vec<u32> = (0..n_customers as u32).collect();
        let mut place: Vec<u32> = Vec::new();
        if !sorted {
            by_id = rows_in_id_order(n_customers as u32, |row| &customers[row as usize].id);
            if by_id.par_windows(2).any(|w| customers[w[0] as usize].id == customers[w[1] as usize].id) {
                return Err(None);
            }
            place = vec![0; n_customers];
            for (k, &row) in by_id.iter().enumerate() {
                place[row as usize] = k as u32;
            }
        }
        let place_of = |row: u32| if sorted { row } else { place.get(row as usize).copied().unwrap_or(u32::MAX) };
        // A counting sort of the invoices by their customer's place; within a customer, in
        // portfolio order.
        let mut starts = vec![0u32; n_customers + 1];
        for &row in customer_of {
            match starts.get_mut(place_of(row) as usize + 1) {
                Some(count) => *count += 1,
                None => return Err(None),
            }
        }
        for k in 1..starts.len() {
            starts[k] += starts[k - 1];
        }
        let order = |starts: &[u32]| {
            let mut next = starts.to_vec();
            let mut order = vec![0u32; customer_of.len()];
            for (i, &row) in customer_of.iter().enumerate() {
                let slot = &mut next[place_of(row) as usize];
                order[*slot as usize] = i as u32;
                *slot += 1;
            }
            order
        };
        let (invoices, customers, payments) = (&mut self.invoices, &mut self.customers, &self.payments);
        // The payments' index is built beside the invoices' permutation (one thread's chain
        // of memory reads).
        let ((), lookup) = rayon::join(
            || permute(invoices, order(&starts)),
            || {
                permute(customers, by_id);
                indexed.then(|| payment_lookup(payments))
            },
        );
        // Pieces of whole customers, checked and sorted on all threads: `piece` customers,
        // or fewer that hold `PIECE_INVOICES` invoices (at least one customer).
        let piece = n_customers.div_ceil(256).max(min_piece);
        fn pieces<'a>(
            invoices: &'a mut [Invoice],
            starts: &[u32],
            piece: usize,
        ) -> Vec<(Range<usize>, &'a mut [Invoice])> {
            let customers = starts.len() - 1;
            let mut pieces = Vec::with_capacity(customers.div_ceil(piece));
            let mut rest = invoices;
            let mut first = 0;
            while first < customers {
                let most = (first + piece).min(customers);
                let mut end = first + 1;
                while end < most && starts[end] - starts[first] < PIECE_INVOICES {
                    end += 1;
                }
                let (head, tail) = std::mem::take(&mut rest).split_at_mut((starts[end] - starts[first]) as usize);
                pieces.push((first..end, head));
                rest = tail;
                first = end;
            }
            pieces
        }
        // Customer `k`'s invoices in the slice of a piece that starts with customer `first`.
        let group = |first: usize, k: usize| {
            let base = starts[first] as usize;
            starts[k] as usize - base..starts[k + 1] as usize - base
        };
        let in_order = |invoices: &[Invoice]| invoices.windows(2).all(|w| cmp_text(&w[0].id, &w[1].id).is_le());
        // Each piece's part of the index, once its invoices are in order (see
        // `Sweep::of_customers`), while they are in the processor's cache.
        let sweep = |range: &Range<usize>, invoices: &[Invoice]| {
            lookup.as_ref().map(|(_, pay_of)| {
                Sweep::of_customers(invoices, starts[range.start] as usize, &starts[range.start..=range.end], pay_of)
            })
        };
        // Do the invoices belong to the customer they are now beside (the hints were right)?
        // And which pieces have a customer whose invoices are out of id order?
        let customers = &self.customers;
        let checked: Option<Vec<(bool, Option<Sweep>)>> = pieces(&mut self.invoices, &starts, piece)
            .into_par_iter()
            .map(|(range, invoices)| {
                let mut sorted = true;
                for k in range.clone() {
                    let id = &customers[k].id;
                    let group = invoices.get(group(range.start, k)).unwrap_or_default();
                    if group.iter().any(|inv| cmp_text(&inv.customer_id, id).is_ne()) {
                        return None;
                    }
                    sorted = sorted && in_order(group);
                }
                Some((sorted, if sorted { sweep(&range, invoices) } else { None }))
            })
            .collect();
        // Not the customers of the invoices: the comparison sort, its ties in portfolio order
        // (where each invoice came from: the same counting sort again).
        let checked = checked.ok_or_else(|| Some(order(&starts)))?;
        // Each customer's invoices in id order (a stable sort).
        let sweeps: Vec<Option<Sweep>> = pieces(&mut self.invoices, &starts, piece)
            .into_par_iter()
            .zip(checked)
            .map(|((range, invoices), (sorted, swept))| {
                if sorted {
                    return swept;
                }
                for k in range.clone() {
                    if let Some(group) = invoices.get_mut(group(range.start, k))
                        && !in_order(group)
                    {
                        group.sort_by(|a, b| a.id.cmp(&b.id));
                    }
                }
                sweep(&range, invoices)
            })
            .collect();
        Ok(match lookup {
            Some((pay_idx, _)) => {
                let sweeps = sweeps.into_iter().collect::<Option<Vec<Sweep>>>().unwrap_or_default();
                Some(PortfolioIndex::of_sorted(self, starts, sweeps, &pay_idx))
            }
            None => None,
        })
    }

    /// [`Portfolio::sort_for_evaluation`]; invoices with the same customer id and invoice id
    /// keep the order of their indexes in `origin` when given (where each comes from), else
    /// their order.
    fn sort_by_ids(&mut self, origin: Option<&[u32]>) {
        use rayon::prelude::*;
        let tie = |i: u32| origin.and_then(|o| o.get(i as usize).copied()).unwrap_or(i);
        // Whether some customer id is longer than 8 bytes (see below).
        let long = AtomicBool::new(false);
        // Keys read in one sequential pass: the first 8 bytes of both ids, so that the sort
        // itself rarely has to read an invoice (only when both prefixes are equal).
        let keys: Vec<(u64, u64, u32)> = self
            .invoices
            .par_iter()
            .enumerate()
            .map(|(i, inv)| {
                if inv.customer_id.len() > 8 && !long.load(Ordering::Relaxed) {
                    long.store(true, Ordering::Relaxed);
                }
                (prefix(&inv.customer_id), prefix(&inv.id), i as u32)
            })
            .collect();
        let invoices = &self.invoices;
        let mut keys = keys;
        keys.par_sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then(a.1.cmp(&b.1))
                .then_with(|| {
                    let (x, y) = (&invoices[a.2 as usize], &invoices[b.2 as usize]);
                    (x.customer_id.as_str(), x.id.as_str()).cmp(&(y.customer_id.as_str(), y.id.as_str()))
                })
                .then_with(|| tie(a.2).cmp(&tie(b.2)))
        });
        // Customer ids longer than 8 bytes with the same first 8 were ordered by invoice id
        // above, before their whole ids were compared: when there are such ids, each run of
        // keys with the same first 8 bytes of the customer id that holds more than one
        // customer id is sorted again, customer first. (Ids of at most 8 bytes with the same
        // first 8 are the same id, or differ only by trailing NUL bytes: the evaluator, which
        // checks the order it is given, indexes such a portfolio by hashing.)
        if long.into_inner() {
            keys.par_chunk_by_mut(|a, b| a.0 == b.0).for_each(|run| {
                let first = &invoices[run[0].2 as usize].customer_id;
                if run.iter().any(|k| invoices[k.2 as usize].customer_id != *first) {
                    run.sort_unstable_by(|a, b| {
                        let (x, y) = (&invoices[a.2 as usize], &invoices[b.2 as usize]);
                        (x.customer_id.as_str(), x.id.as_str())
                            .cmp(&(y.customer_id.as_str(), y.id.as_str()))
                            .then_with(|| tie(a.2).cmp(&tie(b.2)))
                    });
                }
            });
        }
        let order: Vec<u32> = keys.into_iter().map(|k| k.2).collect();
        // The invoices' permutation is one thread's chain of memory reads: the customers are
        // sorted beside it.
        let (invoices, customers) = (&mut self.invoices, &mut self.customers);
        rayon::join(
            || permute(invoices, order),
            || {
                let order = rows_in_id_order(customers.len() as u32, |row| &customers[row as usize].id);
                permute(customers, order);
            },
        );
    }
}

/// The fewest customers in a piece of the sort's passes after the move (see
/// `Portfolio::sort_by_customer`).
const PIECE: usize = 1024;

/// The invoices beyond which a piece of the sort's passes after the move ends before its
/// [`PIECE`] customers: pieces of a few large customers were one piece for one thread (10^6
/// invoices of 20 customers: 60 ms with the other thread idle). Small in tests, which then
/// cut pieces by invoices too.
const PIECE_INVOICES: u32 = if cfg!(test) { 16 } else { 8192 };

/// A portfolio sorted for evaluation ([`Portfolio::sort_for_evaluation`]) with the
/// evaluator's index of it: where each customer's invoices are, and each invoice's payments.
///
/// Evaluating a [`Portfolio`] builds that index first, in a pass over all its invoices (at
/// 10^6 invoices ≈ 40 ms, a sixth of the evaluation alone). An `IndexedPortfolio` builds it
/// once, and from the customer of each invoice as a loader finds it
/// ([`IndexedPortfolio::with_customers`]) in the pass that sorts the invoices, while they
/// are in the processor's cache. The index holds for this portfolio only: it cannot be
/// changed while indexed ([`IndexedPortfolio::into_portfolio`] gives it back). Plans are the
/// same either way.
///
/// ```
/// use relance_engine::{IndexedPortfolio, Portfolio};
///
/// let indexed = IndexedPortfolio::new(Portfolio::default());
/// assert!(indexed.portfolio().invoices.is_empty());
/// let portfolio: Portfolio = indexed.into_portfolio();
/// # let _ = portfolio;
/// ```
#[derive(Clone)]
pub struct IndexedPortfolio {
    portfolio: Portfolio,
    index: Arc<PortfolioIndex>,
}

impl IndexedPortfolio {
    /// Sorts `portfolio` for evaluation and indexes it.
    pub fn new(mut portfolio: Portfolio) -> Self {
        portfolio.sort_for_evaluation();
        let index = Arc::new(PortfolioIndex::new(&portfolio));
        IndexedPortfolio { portfolio, index }
    }

    /// [`IndexedPortfolio::new`] when the customer of each invoice is known: `customer_of[i]`
    /// is the index in `customers` of the customer of `invoices[i]`, as in
    /// [`Portfolio::sort_for_evaluation_by_customer`]. The index is then gathered in the
    /// sort's pass that checks each customer's invoices. Any `customer_of` gives the same
    /// portfolio and index: when it does not match, the portfolio is sorted and indexed as
    /// by [`IndexedPortfolio::new`].
    pub fn with_customers(portfolio: Portfolio, customer_of: &[u32]) -> Self {
        Self::with_customers_in(portfolio, customer_of, PIECE)
    }

    /// [`IndexedPortfolio::with_customers`], the sort's pieces of at least `min_piece`
    /// customers.
    fn with_customers_in(mut portfolio: Portfolio, customer_of: &[u32], min_piece: usize) -> Self {
        let index = match portfolio.sort_by_customer(customer_of, true, min_piece) {
            Ok(Some(index)) => index,
            Ok(None) => PortfolioIndex::new(&portfolio),
            Err(origin) => {
                portfolio.sort_by_ids(origin.as_deref());
                PortfolioIndex::new(&portfolio)
            }
        };
        IndexedPortfolio { portfolio, index: Arc::new(index) }
    }

    /// The portfolio, in evaluation order.
    pub fn portfolio(&self) -> &Portfolio {
        &self.portfolio
    }

    /// The portfolio, to change it (its index is dropped).
    pub fn into_portfolio(self) -> Portfolio {
        self.portfolio
    }
}

impl std::ops::Deref for IndexedPortfolio {
    type Target = Portfolio;
    fn deref(&self) -> &Portfolio {
        &self.portfolio
    }
}

impl fmt::Debug for IndexedPortfolio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndexedPortfolio").field("portfolio", &self.portfolio).finish_non_exhaustive()
    }
}

/// A portfolio to evaluate: a [`Portfolio`] (indexed by each evaluation) or an
/// [`IndexedPortfolio`] (indexed once). The functions that evaluate take
/// `impl Into<PortfolioRef>`, so that `&portfolio` and `&indexed` can both be given.
#[derive(Clone, Copy)]
pub struct PortfolioRef<'a> {
    pub(crate) portfolio: &'a Portfolio,
    pub(crate) index: Option<&'a Arc<PortfolioIndex>>,
}

impl<'a> PortfolioRef<'a> {
    /// The portfolio.
    pub fn portfolio(&self) -> &'a Portfolio {
        self.portfolio
    }
}

impl<'a> From<&'a Portfolio> for PortfolioRef<'a> {
    fn from(portfolio: &'a Portfolio) -> Self {
        PortfolioRef { portfolio, index: None }
    }
}

impl<'a> From<&'a IndexedPortfolio> for PortfolioRef<'a> {
    fn from(indexed: &'a IndexedPortfolio) -> Self {
        PortfolioRef { portfolio: &indexed.portfolio, index: Some(&indexed.index) }
    }
}

impl std::ops::Deref for PortfolioRef<'_> {
    type Target = Portfolio;
    fn deref(&self) -> &Portfolio {
        self.portfolio
    }
}

impl fmt::Debug for PortfolioRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortfolioRef")
            .field("portfolio", &self.portfolio)
            .field("indexed", &self.index.is_some())
            .finish()
    }
}

/// The same order as `a.cmp(b)`, first by the leading 8 bytes of both read as big-endian
/// words: ids of 8 bytes or more (most) then rarely need a call to `memcmp`, which the
/// evaluator's index made three times an invoice.
///
/// ```
/// use relance_engine::model::cmp_text;
/// assert_eq!(cmp_text("F000000009", "F000000010"), "F000000009".cmp("F000000010"));
/// ```
#[inline]
pub fn cmp_text(a: &str, b: &str) -> std::cmp::Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    match (x.split_first_chunk::<8>(), y.split_first_chunk::<8>()) {
        (Some((p, x_rest)), Some((q, y_rest))) => match u64::from_be_bytes(*p).cmp(&u64::from_be_bytes(*q)) {
            std::cmp::Ordering::Equal if x_rest.is_empty() || y_rest.is_empty() => x_rest.len().cmp(&y_rest.len()),
            // Ids of 9 to 16 bytes (`F000000001`): the rest as one word too, read as the last
            // eight bytes with the first part shifted out (zeros below it), then the lengths
            // (a shorter rest that equals the start of a longer one comes first, even when
            // the longer one goes on with zero bytes).
            std::cmp::Ordering::Equal if x_rest.len() <= 8 && y_rest.len() <= 8 => {
                let rest =
                    |all: &[u8], r: usize| all.last_chunk::<8>().map_or(0, |w| u64::from_be_bytes(*w) << (8 * (8 - r)));
                rest(x, x_rest.len()).cmp(&rest(y, y_rest.len())).then(x_rest.len().cmp(&y_rest.len()))
            }
            std::cmp::Ordering::Equal => x_rest.cmp(y_rest),
            order => order,
        },
        _ => x.cmp(y),
    }
}

/// The first 8 bytes of `s`, big-endian (zero-padded), for ordering: `prefix(a) < prefix(b)`
/// implies `a < b`, and equal prefixes leave the order to the whole strings.
pub(crate) fn prefix(s: &str) -> u64 {
    word_at(s.as_bytes(), 0)
}

/// The 8 bytes of `bytes` from `from` on, big-endian (zero-padded past the end): the first
/// word ([`prefix`]) or a later one of an id, for sort keys.
pub(crate) fn word_at(bytes: &[u8], from: usize) -> u64 {
    let mut b = [0u8; 8];
    for (to, c) in b.iter_mut().zip(bytes.iter().skip(from)) {
        *to = *c;
    }
    u64::from_be_bytes(b)
}

/// Rows `0..n` in the order of their ids `id(row)` (equal ids in row order), as a stable
/// sort comparing the ids would give. The ids' first 16 bytes are read once, in row order,
/// as two big-endian words (zero-padded): the sort then compares words, and reads whole ids
/// only when both words are equal. Comparing the ids themselves read each row's id at
/// random (200,000 customers listed out of id order: ≈ 9 % of a 10^6-invoice plan).
pub(crate) fn rows_in_id_order<'a>(n: u32, id: impl Fn(u32) -> &'a str + Sync) -> Vec<u32> {
    use rayon::prelude::*;
    // Most exports list their customers in id order: then the rows are the order.
    if (1..n).into_par_iter().all(|row| cmp_text(id(row - 1), id(row)).is_le()) {
        return (0..n).collect();
    }
    let mut keys: Vec<(u64, u64, u32)> = (0..n)
        .into_par_iter()
        .map(|row| {
            let s = id(row).as_bytes();
            (word_at(s, 0), word_at(s, 8), row)
        })
        .collect();
    keys.par_sort_unstable_by(|a, b| {
        a.0.cmp(&b.0).then(a.1.cmp(&b.1)).then_with(|| id(a.2).cmp(id(b.2))).then(a.2.cmp(&b.2))
    });
    keys.into_iter().map(|k| k.2).collect()
}

/// Rearranges `items` in place so that position `i` holds the item that was at `order[i]`
/// (`order` is a permutation), following each cycle with swaps.
///
/// The cycles are first listed ([`list_cycles`], reading only `order`: 4 bytes an item); the
/// swaps then go through that list, so the addresses of the next items are known ahead and
/// are fetched a few swaps early ([`prefetch`]), instead of each read waiting for the one
/// before. At 10^6 invoices (one thread, quiet day): 70 ms → 20 ms listing + 17 ms
/// swapping; on a busy day, 135–167 ms listing (one cycle at a time) → 37–56 ms (two threads,
/// pieces side by side) + 50–70 ms swapping. The moves are done by all threads, segment by
/// segment (see [`swap_segments`]; since round 13 a rotation per segment: ≈ 23 → 17 ms at
/// 10^6).
fn permute<T: Send>(items: &mut [T], order: Vec<u32>) {
    permute_in_segments(items, order, SEGMENT);
}

/// Positions of a cycle swapped by one task of [`permute`].
const SEGMENT: usize = 4096;

/// [`permute`] with cycles cut into segments of `segment` positions.
///
/// Swapping along a cycle `c0, c1, …, cm` (`swap(c0, c1)`, `swap(c1, c2)`, …) leaves at each
/// `ck` the item from `ck+1`, and at `cm` the item from `c0`. Done along each segment `ca…cb`
/// on its own, it leaves at `cb` the item from `ca` where the item from `cb+1` belongs, and
/// that item is then at the next segment's last position. So the segments are swapped in
/// parallel, then, cycle by cycle, the last positions of its segments are swapped along in
/// order (one position in `segment`, on one thread).
fn permute_in_segments<T: Send>(items: &mut [T], order: Vec<u32>, segment: usize) {
    let (cycles, ends) = list_cycles(order, MARK_SPACING);
    let segment = segment.max(1);
    // Each cycle's segments, as ranges of `cycles`, cycle after cycle.
    let mut segments: Vec<(usize, usize)> = Vec::with_capacity(cycles.len() / segment + ends.len());
    let mut segment_ends = Vec::with_capacity(ends.len());
    let mut begin = 0;
    for &end in &ends {
        let mut from = begin;
        while from < end {
            let to = (from + segment).min(end);
            segments.push((from, to));
            from = to;
        }
        segment_ends.push(segments.len());
        begin = end;
    }
    if !swap_segments(items, &cycles, &segments) {
        // Not one segment was swapped: the whole list on this thread.
        for &(from, to) in &segments {
            swap_along(items, cycles.get(from..to).unwrap_or_default());
        }
    }
    // The segments' last positions, cycle by cycle.
    let mut first = 0;
    for end in segment_ends {
        let lasts = segments.get(first..end).unwrap_or_default();
        for pair in lasts.windows(2) {
            let (a, b) = (pair[0].1 - 1, pair[1].1 - 1);
            if let (Some(&a), Some(&b)) = (cycles.get(a), cycles.get(b)) {
                items.swap(a as usize, b as usize);
            }
        }
        first = end;
    }
}

/// Swaps ahead of the one being done whose items are fetched (16 to 20 measured best).
const SWAPS_AHEAD: usize = 16;

/// Swaps along `positions` (`swap(p0, p1)`, `swap(p1, p2)`, …), fetching the items a few
/// swaps ahead.
fn swap_along<T>(items: &mut [T], positions: &[u32]) {
    for (k, pair) in positions.windows(2).enumerate() {
        if let Some(&ahead) = positions.get(k + SWAPS_AHEAD) {
            prefetch(items, ahead as usize);
        }
        items.swap(pair[0] as usize, pair[1] as usize);
    }
}

/// Does along each segment of `positions` what [`swap_along`] does, segments on all
/// threads, each as a rotation (every item copied once, where a swap copies two items
/// through a third place). Returns `false`, having moved nothing, unless the segments are
/// ranges of `positions` in order, none overlapping the next, and every position is in
/// bounds and listed at most once: the tasks then never touch the same item.
#[expect(
    unsafe_code,
    reason = "the tasks move items of one slice at positions checked first to be in bounds and disjoint (each listed once, segments not overlapping), as `split_at_mut` checks ranges; safe Rust cannot lend out scattered positions, nor move an item out of a slice for a moment"
)]
fn swap_segments<T: Send>(items: &mut [T], positions: &[u32], segments: &[(usize, usize)]) -> bool {
    use rayon::prelude::*;
    /// The slice, shared by the tasks (each at its own positions).
    struct Shared<T>(*mut T);
    // SAFETY: the items are only moved between positions of one slice (`T: Send`), and no
    // two tasks touch the same position.
    unsafe impl<T: Send> Sync for Shared<T> {}
    let mut end = 0;
    for &(from, to) in segments {
        if from < end || to < from || to > positions.len() {
            return false;
        }
        end = to;
    }
    let len = items.len();
    let mut seen = vec![0u64; len.div_ceil(64)];
    for &p in positions {
        let p = p as usize;
        match seen.get_mut(p / 64) {
            Some(w) if p < len && *w & (1 << (p % 64)) == 0 => *w |= 1 << (p % 64),
            _ => return false,
        }
    }
    drop(seen);
    let shared = Shared(items.as_mut_ptr());
    let shared = &shared;
    // What `swap_along` does, through the shared pointer, as a rotation: the first item
    // is set aside, each next one moved one place back, and the first put last. Each item
    // is copied once instead of the three copies of a swap.
    segments.par_iter().for_each(|&(from, to)| {
        let segment = positions.get(from..to).unwrap_or_default();
        let (Some(&first), Some(&last)) = (segment.first(), segment.last()) else { return };
        if segment.len() < 2 {
            return;
        }
        // SAFETY: every position is below `len` and belongs to this segment only (segments
        // do not overlap and positions do not repeat: checked above), and `items` is
        // borrowed mutably for the whole call. The item read out of `first` is written back
        // at `last` after `first` was overwritten, with nothing that can panic in between:
        // each item ends up in exactly one place, as after the swaps.
        unsafe {
            let set_aside = std::ptr::read(shared.0.add(first as usize));
            for (k, pair) in segment.windows(2).enumerate() {
                if let Some(&ahead) = segment.get(k + SWAPS_AHEAD) {
                    prefetch_at(shared.0.wrapping_add(ahead as usize));
                }
                std::ptr::copy_nonoverlapping(shared.0.add(pair[1] as usize), shared.0.add(pair[0] as usize), 1);
            }
            std::ptr::write(shared.0.add(last as usize), set_aside);
        }
    });
    true
}

/// Pieces of cycles followed by one task of [`list_cycles`]: their positions, one piece
/// after the other.
struct Pieces {
    positions: Vec<u32>,
    pieces: Vec<Piece>,
}

/// A piece of a cycle: from its mark to the position before the next mark.
struct Piece {
    mark: u32,
    /// Where its positions start in [`Pieces::positions`] (they end where the next piece's
    /// start).
    start: u32,
    /// The next mark along the cycle (`mark` itself when it is the cycle's only one).
    following: u32,
}

/// One position in this many is a mark where [`list_cycles`] cuts the cycles into pieces.
const MARK_SPACING: usize = 64;

/// The cycles of the permutation `order`, fixed points left out: each is listed from one of
/// its positions `p` as `p, order[p], order[order[p]], …`. Returns the positions, cycle
/// after cycle, and where each cycle ends among them.
///
/// Following a cycle is a chain of reads, each waiting for the one before; at 10^6 invoices
/// `order` is 4 MB and most of these reads miss the processor's cache (≈ 140 ms on a busy
/// day). So the cycles are cut at every `spacing`-th position (a mark) into pieces, each
/// followed from its mark to the next mark. The pieces are independent: every thread
/// follows several at once, whose reads then wait together instead of one after another.
/// They are then joined in cycle order. Cycles with no mark (short ones) are followed one
/// by one before that, so that `order` is given back before the cycles are written out (at
/// 10^7 invoices, `order`, the pieces and the cycles are 40 MB each: two at a time, not three).
fn list_cycles(order: Vec<u32>, spacing: usize) -> (Vec<u32>, Vec<usize>) {
    use rayon::prelude::*;
    /// Pieces followed side by side on one thread.
    const LANES: usize = 16;
    let n = order.len();
    let spacing = spacing.max(1);
    let next = |p: usize| order.get(p).map_or(p, |&q| q as usize);
    let marks: Vec<u32> = (0..n).step_by(spacing).filter(|&m| next(m) != m).map(|m| m as u32).collect();
    let tasks: Vec<Pieces> = marks
        .par_chunks(256)
        .map(|chunk| {
            let mut positions: Vec<u32> = Vec::with_capacity(chunk.len() * spacing);
            let mut pieces = Vec::with_capacity(chunk.len());
            let mut lanes: [Vec<u32>; LANES] = Default::default();
            for group in chunk.chunks(LANES) {
                let mut cur = [0usize; LANES];
                for (l, &m) in group.iter().enumerate() {
                    lanes[l].clear();
                    lanes[l].push(m);
                    cur[l] = next(m as usize);
                }
                let mut live = group.len();
                // A permutation brings every piece to a mark within `n` steps.
                let mut steps = 0;
                while live > 0 && steps <= n {
                    live = 0;
                    for l in 0..group.len() {
                        let p = cur[l];
                        if p % spacing != 0 {
                            lanes[l].push(p as u32);
                            cur[l] = next(p);
                            live += 1;
                        }
                    }
                    steps += 1;
                }
                for (l, &mark) in group.iter().enumerate() {
                    pieces.push(Piece { mark, start: positions.len() as u32, following: cur[l] as u32 });
                    positions.extend_from_slice(&lanes[l]);
                }
            }
            Pieces { positions, pieces }
        })
        .collect();
    drop(marks);
    // Every piece: its mark, its task, its range among the task's positions, the next mark.
    let mut all = Vec::new();
    for (t, task) in tasks.iter().enumerate() {
        let ends = task.pieces.iter().skip(1).map(|p| p.start as usize).chain([task.positions.len()]);
        for (p, end) in task.pieces.iter().zip(ends) {
            all.push((p.mark, t, p.start as usize..end, p.following));
        }
    }
    let listed: usize = tasks.iter().map(|t| t.positions.len()).sum();
    // Cycles without a mark: whatever is neither in a piece nor in place. Followed now, so
    // that `order` is given back before the cycles are written out.
    let mut rest: Vec<u32> = Vec::new();
    let mut rest_ends: Vec<usize> = Vec::new();
    let fixed = order.par_iter().enumerate().filter(|&(p, &q)| p == q as usize).count();
    if listed + fixed < n {
        let mut seen = vec![0u64; n.div_ceil(64)];
        for &p in tasks.iter().flat_map(|t| &t.positions) {
            if let Some(w) = seen.get_mut(p as usize / 64) {
                *w |= 1 << (p % 64);
            }
        }
        for start in 0..n {
            if seen[start / 64] & (1 << (start % 64)) != 0 || next(start) == start {
                continue;
            }
            let mut cur = start;
            loop {
                rest.push(cur as u32);
                seen[cur / 64] |= 1 << (cur % 64);
                cur = next(cur);
                if cur == start || seen.get(cur / 64).is_none_or(|w| w & (1 << (cur % 64)) != 0) {
                    break;
                }
            }
            rest_ends.push(rest.len());
        }
    }
    drop(order);
    // The piece starting at each mark, then the pieces joined along their cycles.
    let mut piece_at = vec![u32::MAX; n.div_ceil(spacing)];
    for (k, (mark, _, _, _)) in all.iter().enumerate() {
        if let Some(slot) = piece_at.get_mut(*mark as usize / spacing) {
            *slot = k as u32;
        }
    }
    let mut cycles: Vec<u32> = Vec::with_capacity(listed + rest.len());
    let mut ends: Vec<usize> = Vec::new();
    let mut joined = vec![false; all.len()];
    for first in 0..all.len() {
        if joined.get(first).copied().unwrap_or(true) {
            continue;
        }
        let mut k = first;
        while let Some(false) = joined.get(k).copied() {
            joined[k] = true;
            let (_, t, range, following) = &all[k];
            let positions = tasks.get(*t).and_then(|task| task.positions.get(range.clone()));
            cycles.extend_from_slice(positions.unwrap_or_default());
            k = piece_at.get(*following as usize / spacing).map_or(usize::MAX, |&j| j as usize);
        }
        if k == first {
            ends.push(cycles.len());
        }
    }
    drop((tasks, all, piece_at, joined));
    let base = cycles.len();
    cycles.extend_from_slice(&rest);
    ends.extend(rest_ends.into_iter().map(|e| base + e));
    (cycles, ends)
}

/// Asks the processor to bring the cache lines of `items[i]` in (a hint: nothing is read or
/// written, and nothing happens on other processors).
#[inline]
pub(crate) fn prefetch<T>(items: &[T], i: usize) {
    if let Some(item) = items.get(i) {
        prefetch_at(std::ptr::from_ref(item));
    }
}

/// [`prefetch`] of the item at `p`, which may be any address (nothing is read there).
#[inline]
fn prefetch_at<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    {
        let p: *const i8 = p.cast();
        let size = std::mem::size_of::<T>();
        let mut offset = 0;
        while offset < size + 63 {
            // The last line is the one holding the item's last byte.
            let at = p.wrapping_add(offset.min(size.saturating_sub(1)));
            #[expect(
                unsafe_code,
                reason = "a prefetch is only a hint to the processor: it never faults and neither reads nor writes memory that Rust sees, whatever the address"
            )]
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at);
            }
            offset += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// A customer (a debtor).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    /// Unique identifier, as in the accounting system.
    pub id: CompactString,
    /// Display name.
    pub name: CompactString,
    /// Segment used by `for segment "…"` selectors.
    pub segment: CompactString,
    /// E-mail address, when known.
    pub email: Option<CompactString>,
    /// Phone number, when known.
    pub phone: Option<CompactString>,
    /// Preferred language (`fr`, `en`) for templates.
    pub language: Option<CompactString>,
    /// Free tags (`legal-hold`, `vip`), tested with `customer.tags has "…"`.
    pub tags: Vec<CompactString>,
    /// Average days late from payment history, when the export gives it.
    pub avg_days_late: Option<Decimal>,
    /// Any other column, available as `customer.NAME`.
    pub extra: Extra,
}

/// An invoice (or any receivable) of a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    /// Unique identifier.
    pub id: CompactString,
    /// The customer it is owed by.
    pub customer_id: CompactString,
    /// Issue date, when known.
    pub issue_date: Option<NaiveDate>,
    /// Due date (computed from `terms` by the loader when the export has none).
    pub due_date: NaiveDate,
    /// Amount including tax.
    pub amount: Decimal,
    /// Currency of `amount`.
    pub currency: Currency,
    /// Open amount as of the export; `None` means the whole amount, unless payments say otherwise.
    pub outstanding: Option<Decimal>,
    /// The customer disputes this invoice.
    pub disputed: bool,
    /// The customer promised to pay by this date.
    pub promise_date: Option<NaiveDate>,
    /// The amount promised (the whole outstanding when absent).
    pub promise_amount: Option<Decimal>,
    /// The invoice is under an agreed payment plan.
    pub payment_plan: bool,
    /// Any other column, available as `invoice.NAME`. The payment terms as written (`30 days
    /// net`) are one of them, `terms`: a loader reads them to compute a missing due date
    /// (and to check them against the French cap) and keeps them here when asked to (see
    /// the stdlib's `LoadOptions::extra_columns`); the engine itself reads only `due_date`.
    pub extra: Extra,
}

/// A payment or credit note applied to an invoice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    /// Identifier, when the export gives one.
    pub id: Option<CompactString>,
    /// The invoice it settles (in part or whole).
    pub invoice_id: CompactString,
    /// The date it was received; known on that date.
    pub date: NaiveDate,
    /// Amount, in the invoice's currency.
    pub amount: Decimal,
    /// Payment or credit note.
    pub kind: PaymentKind,
}

/// What settled an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentKind {
    /// Money received.
    #[default]
    Payment,
    /// A credit note.
    CreditNote,
}

impl Invoice {
    /// A new invoice with only the mandatory fields set.
    pub fn new(
        id: impl Into<CompactString>,
        customer_id: impl Into<CompactString>,
        due_date: NaiveDate,
        amount: Decimal,
        currency: Currency,
    ) -> Self {
        Self {
            id: id.into(),
            customer_id: customer_id.into(),
            issue_date: None,
            due_date,
            amount,
            currency,
            outstanding: None,
            disputed: false,
            promise_date: None,
            promise_amount: None,
            payment_plan: false,
            extra: Extra::default(),
        }
    }
}

impl Customer {
    /// A new customer with only the mandatory fields set.
    pub fn new(
        id: impl Into<CompactString>,
        name: impl Into<CompactString>,
        segment: impl Into<CompactString>,
    ) -> Self {
        Self { id: id.into(), name: name.into(), segment: segment.into(), ..Self::default() }
    }
}

/// The extra columns of a customer or an invoice: `(name, value)` pairs sorted by name, each
/// name once.
///
/// Names are shared [`Arc<str>`]s (a loader creates each column name once and clones it per
/// row), values are [`CompactString`]s. Inline it is one pointer (8 bytes, null when there
/// are none); one pair lives in one allocation of 40 bytes, more pairs in an exactly sized
/// slice. It reads like the `BTreeMap<String, String>`
/// it replaces and serialises the same way, as a JSON object with sorted keys.
///
/// ```
/// use relance_engine::model::Extra;
///
/// let mut extra = Extra::from([("region", "north"), ("po_number", "PO-1")]);
/// assert_eq!(extra.get("region"), Some("north"));
/// assert_eq!(extra.get("missing"), None);
/// extra.insert("region", "south");
/// let pairs: Vec<(&str, &str)> = extra.iter().collect();
/// assert_eq!(pairs, [("po_number", "PO-1"), ("region", "south")]);
/// assert_eq!(serde_json::to_string(&extra).unwrap(), r#"{"po_number":"PO-1","region":"south"}"#);
/// ```
#[derive(Clone, Default)]
pub struct Extra {
    /// `None` when empty; one pair is always `One`, more always `Many` (sorted).
    entries: Option<Box<Entries>>,
}

/// The pairs of a non-empty [`Extra`].
#[derive(Clone)]
enum Entries {
    One((Arc<str>, CompactString)),
    Many(Box<[(Arc<str>, CompactString)]>),
}

impl PartialEq for Extra {
    fn eq(&self, other: &Self) -> bool {
        self.pairs() == other.pairs()
    }
}

impl Eq for Extra {}

impl std::hash::Hash for Extra {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.pairs().hash(state);
    }
}

impl Extra {
    /// No extra columns.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the processor for the line of the pairs (see [`prefetch`]).
    #[inline]
    pub(crate) fn prefetch(&self) {
        if let Some(entries) = &self.entries {
            prefetch_at(std::ptr::from_ref::<Entries>(entries));
        }
    }

    /// The value of the column `name`, if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        match self.entries.as_deref()? {
            // Most rows have one extra value, and conditions often ask for another column:
            // the names' lengths (held beside their pointers) tell them apart without
            // reading the names.
            Entries::One((key, value)) => (key.len() == name.len() && **key == *name).then_some(value.as_str()),
            Entries::Many(pairs) => {
                let i = pairs.binary_search_by(|(k, _)| (**k).cmp(name)).ok()?;
                pairs.get(i).map(|(_, v)| v.as_str())
            }
        }
    }

    /// Whether there is a column `name`.
    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// Sets the column `name` to `value`, keeping the names sorted; returns the value it
    /// replaces.
    pub fn insert(&mut self, name: impl Into<Arc<str>>, value: impl Into<CompactString>) -> Option<CompactString> {
        let name = name.into();
        let value = value.into();
        match self.position(&name) {
            Ok(i) => {
                let slot = match self.entries.as_deref_mut() {
                    Some(Entries::One(pair)) => Some(pair),
                    Some(Entries::Many(pairs)) => pairs.get_mut(i),
                    None => None,
                };
                slot.map(|(_, v)| std::mem::replace(v, value))
            }
            Err(i) => {
                let mut v = std::mem::take(self).into_vec();
                v.insert(i, (name, value));
                *self = Self::sorted(v);
                None
            }
        }
    }

    /// The `(name, value)` pairs, sorted by name.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + DoubleEndedIterator + Clone + '_ {
        self.pairs().iter().map(|(k, v)| (&**k, v.as_str()))
    }

    /// The names, sorted.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> + Clone + '_ {
        self.pairs().iter().map(|(k, _)| &**k)
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        self.pairs().len()
    }

    /// Whether there is no column.
    pub fn is_empty(&self) -> bool {
        self.entries.is_none()
    }

    /// One column: the same as `from_vec(vec![(name, value)])`, without the vector (loaders
    /// call it for each row that has a single extra value).
    pub fn one(name: Arc<str>, value: CompactString) -> Self {
        Self { entries: Some(Box::new(Entries::One((name, value)))) }
    }

    /// From pairs already sorted by name with no name twice (checked; unsorted input is
    /// sorted, and of a repeated name the last value is kept).
    pub fn from_vec(mut entries: Vec<(Arc<str>, CompactString)>) -> Self {
        if !entries.windows(2).all(|w| w[0].0 < w[1].0) {
            // Stable sort, then keep the last of equal names (as repeated map inserts would).
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out: Vec<(Arc<str>, CompactString)> = Vec::with_capacity(entries.len());
            for e in entries {
                match out.last_mut() {
                    Some(last) if last.0 == e.0 => *last = e,
                    _ => out.push(e),
                }
            }
            entries = out;
        }
        Self::sorted(entries)
    }

    /// From pairs sorted by name, each name once.
    fn sorted(mut entries: Vec<(Arc<str>, CompactString)>) -> Self {
        let entries = match entries.len() {
            0 => None,
            1 => entries.pop().map(Entries::One),
            _ => Some(Entries::Many(entries.into_boxed_slice())),
        };
        Self { entries: entries.map(Box::new) }
    }

    /// The pairs, sorted by name.
    fn pairs(&self) -> &[(Arc<str>, CompactString)] {
        match self.entries.as_deref() {
            None => &[],
            Some(Entries::One(pair)) => std::slice::from_ref(pair),
            Some(Entries::Many(pairs)) => pairs,
        }
    }

    fn into_vec(self) -> Vec<(Arc<str>, CompactString)> {
        match self.entries.map(|b| *b) {
            None => Vec::new(),
            Some(Entries::One(pair)) => vec![pair],
            Some(Entries::Many(pairs)) => pairs.into_vec(),
        }
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.pairs().binary_search_by(|(k, _)| (**k).cmp(name))
    }
}

impl fmt::Debug for Extra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Into<Arc<str>>, V: Into<CompactString>> FromIterator<(K, V)> for Extra {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self::from_vec(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl<K: Into<Arc<str>>, V: Into<CompactString>, const N: usize> From<[(K, V); N]> for Extra {
    fn from(pairs: [(K, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl From<BTreeMap<String, String>> for Extra {
    fn from(map: BTreeMap<String, String>) -> Self {
        Self::sorted(map.into_iter().map(|(k, v)| (Arc::from(k), CompactString::from(v))).collect())
    }
}

impl<'a> IntoIterator for &'a Extra {
    type Item = (&'a str, &'a str);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Arc<str>, CompactString)>,
        fn(&'a (Arc<str>, CompactString)) -> (&'a str, &'a str),
    >;
    fn into_iter(self) -> Self::IntoIter {
        fn pair(e: &(Arc<str>, CompactString)) -> (&str, &str) {
            (&e.0, e.1.as_str())
        }
        self.pairs().iter().map(pair)
    }
}

impl Serialize for Extra {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Extra {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Extra;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of text values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Extra, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some((k, v)) = map.next_entry::<CompactString, CompactString>()? {
                    entries.push((Arc::from(k.as_str()), v));
                }
                Ok(Extra::from_vec(entries))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn permute_moves_each_item_to_its_place(keys in prop::collection::vec(any::<u16>(), 0..200)) {
            let mut order: Vec<u32> = (0..keys.len() as u32).collect();
            order.sort_by_key(|i| keys[*i as usize]);
            let mut items: Vec<(u16, usize)> = keys.iter().copied().zip(0..).collect();
            let want: Vec<(u16, usize)> = order.iter().map(|i| items[*i as usize]).collect();
            permute(&mut items, order);
            prop_assert_eq!(items, want);
        }

        #[test]
        fn permute_in_segments_moves_each_item_to_its_place(
            keys in prop::collection::vec(0u16..64, 0..400),
            segment in prop::sample::select(vec![1usize, 2, 3, 5, 64, 4096]),
        ) {
            // Small keys: cycles of every length, cut into any number of segments.
            let mut order: Vec<u32> = (0..keys.len() as u32).collect();
            order.sort_by_key(|i| keys[*i as usize]);
            let mut items: Vec<String> = (0..keys.len()).map(|i| format!("item {i}")).collect();
            let want: Vec<String> = order.iter().map(|i| items[*i as usize].clone()).collect();
            permute_in_segments(&mut items, order, segment);
            prop_assert_eq!(items, want);
        }

        #[test]
        fn list_cycles_lists_each_moved_position_once_in_cycle_order(
            keys in prop::collection::vec(0u16..64, 0..400),
            spacing in prop::sample::select(vec![1usize, 2, 3, 7, 64]),
        ) {
            // Sorting small keys gives permutations with long runs in place and cycles of
            // every length.
            let mut order: Vec<u32> = (0..keys.len() as u32).collect();
            order.sort_by_key(|i| keys[*i as usize]);
            let (cycles, ends) = list_cycles(order.clone(), spacing);
            let mut listed = vec![0; order.len()];
            let mut begin = 0;
            for end in ends {
                let cycle = &cycles[begin..end];
                prop_assert!(cycle.len() >= 2);
                for (k, &p) in cycle.iter().enumerate() {
                    listed[p as usize] += 1;
                    prop_assert_eq!(order[p as usize], cycle[(k + 1) % cycle.len()]);
                }
                begin = end;
            }
            prop_assert_eq!(begin, cycles.len());
            for (p, &q) in order.iter().enumerate() {
                prop_assert_eq!(listed[p], usize::from(p != q as usize), "position {}", p);
            }
        }
    }

    proptest! {
        /// Invoices by customer id, then invoice id, then portfolio order; customers by id,
        /// then portfolio order: as a plain stable sort on the whole ids puts them, with ids
        /// that repeat, that are shorter than 8 bytes, or longer and sharing their first 8
        /// (`CUSTOMER-1` and `CUSTOMER-2` once had their invoices interleaved by invoice id).
        #[test]
        fn sorting_for_evaluation_orders_by_whole_ids(
            customers in prop::collection::vec(any::<u8>(), 0..12),
            invoices in prop::collection::vec((any::<u8>(), any::<u8>()), 0..80),
        ) {
            let cid = |k: u8| if k.is_multiple_of(2) { format!("CUSTOMER-{}", k % 7) } else { format!("C{}", k % 5) };
            let iid = |k: u8| if k.is_multiple_of(2) { format!("INVOICE-{}", k % 9) } else { format!("F{}", k % 5) };
            let mut p = Portfolio::default();
            for (i, k) in customers.iter().enumerate() {
                p.customers.push(Customer::new(cid(*k), format!("row {i}"), "sme"));
            }
            let due = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
            for (i, (c, id)) in invoices.iter().enumerate() {
                // The amount tells rows apart, to check that the sort is stable.
                p.invoices.push(Invoice::new(iid(*id), cid(*c), due, Decimal::from(i), Currency::EUR));
            }
            let mut want = p.clone();
            want.invoices.sort_by(|a, b| (a.customer_id.as_str(), a.id.as_str()).cmp(&(b.customer_id.as_str(), b.id.as_str())));
            want.customers.sort_by(|a, b| a.id.cmp(&b.id));
            p.sort_for_evaluation();
            prop_assert_eq!(p, want);
        }
    }

    proptest! {
        /// The counting sort by customer gives the order of the comparison sort: with the
        /// right customer of each invoice (customers in id order or not, invoices of a
        /// customer in id order or not, a few or many), and with hints that are wrong
        /// (another customer, out of range, too short) or customers that repeat an id, for
        /// which it falls back to the comparison sort, keeping the ties in portfolio order.
        #[test]
        fn sorting_by_customer_orders_as_sorting_by_ids(
            customers in prop::collection::vec(0u8..40, 0..12),
            invoices in prop::collection::vec((any::<u8>(), 0u8..60, any::<bool>()), 0..120),
            wrong in prop::option::weighted(0.2, (any::<prop::sample::Index>(), 0u32..20)),
            short in prop::bool::weighted(0.1),
            repeats in prop::bool::weighted(0.2),
            payments in prop::collection::vec((0u8..60, 1u32..500, 0u64..90), 0..30),
        ) {
            let cid = |k: u8| if k.is_multiple_of(2) { format!("CUSTOMER-{k}") } else { format!("C{k}") };
            let mut customers = customers;
            if !repeats {
                let mut seen = std::collections::HashSet::new();
                customers.retain(|k| seen.insert(*k));
            }
            let mut p = Portfolio::default();
            for (i, k) in customers.iter().enumerate() {
                p.customers.push(Customer::new(cid(*k), format!("row {i}"), "sme"));
            }
            let due = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
            let mut hints = Vec::new();
            for (i, (c, id, big)) in invoices.iter().enumerate() {
                if p.customers.is_empty() {
                    break;
                }
                // Many invoices for customer 0 when `big`.
                let row = if *big { 0 } else { usize::from(*c) % p.customers.len() };
                let id = format!("F{}", id % 45);
                let due = due + chrono::Days::new(u64::from(*c % 7));
                // The amount tells rows apart, to check that the sort is stable.
                p.invoices.push(Invoice::new(id, p.customers[row].id.clone(), due, Decimal::from(i), Currency::EUR));
                hints.push(row as u32);
            }
            if let Some((at, row)) = wrong && !hints.is_empty() {
                let i = at.index(hints.len());
                hints[i] = row;
            }
            if short {
                hints.pop();
            }
            for (k, (id, cents, day)) in payments.iter().enumerate() {
                let date = due + chrono::Days::new(*day);
                let amount = Decimal::new(i64::from(*cents), 2);
                let kind = if k % 5 == 4 { PaymentKind::CreditNote } else { PaymentKind::Payment };
                let invoice_id = format!("F{}", id % 50).into();
                p.payments.push(Payment { id: Some(format!("P{k}").into()), invoice_id, date, amount, kind });
            }
            let mut want = p.clone();
            want.sort_for_evaluation();
            let ids: std::collections::HashSet<_> = p.customers.iter().map(|c| &c.id).collect();
            let exact = !short && wrong.is_none() && ids.len() == p.customers.len();
            // The index gathered with the sort is the evaluator's index of the sorted portfolio.
            // (In pieces of one customer or more, as in larger portfolios.)
            let indexed = IndexedPortfolio::with_customers_in(p.clone(), &hints, 1 + hints.len() % 3);
            prop_assert_eq!(indexed.portfolio(), &want);
            prop_assert_eq!(&*indexed.index, &PortfolioIndex::new(&want));
            let matched = p.sort_for_evaluation_by_customer(&hints);
            prop_assert_eq!(p, want);
            if exact {
                prop_assert!(matched);
            }
        }
    }

    #[test]
    fn permute_of_a_large_shuffle_moves_heap_items_once() {
        // Strings own heap memory: an item moved twice or lost would show as a wrong value
        // (or a double free). Several pieces per cycle (spacing 64) and per thread.
        let n = 50_000u64;
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by_key(|&i| (u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 17, i));
        let mut items: Vec<String> = (0..n).map(|i| format!("item {i}")).collect();
        let want: Vec<String> = order.iter().map(|&i| items[i as usize].clone()).collect();
        permute(&mut items, order);
        assert_eq!(items, want);
    }

    #[test]
    fn segments_are_swapped_in_parallel_only_at_distinct_positions_in_bounds() {
        let mut items: Vec<String> = (0..6).map(|i| i.to_string()).collect();
        let before = items.clone();
        // A position listed twice, or past the end: nothing is swapped.
        assert!(!swap_segments(&mut items, &[0, 1, 2, 1], &[(0, 2), (2, 4)]));
        assert!(!swap_segments(&mut items, &[0, 6], &[(0, 2)]));
        // Segments that overlap, run backwards or past the end of the list: nothing either.
        assert!(!swap_segments(&mut items, &[0, 1, 2, 3], &[(0, 3), (2, 4)]));
        assert!(!swap_segments(&mut items, &[0, 1, 2, 3], &[(2, 4), (0, 2)]));
        assert!(!swap_segments(&mut items, &[0, 1, 2, 3], &[(3, 1)]));
        assert!(!swap_segments(&mut items, &[0, 1, 2, 3], &[(0, 5)]));
        assert_eq!(items, before);
        // Two segments, each swapped along.
        assert!(swap_segments(&mut items, &[0, 1, 2, 3, 4, 5], &[(0, 3), (3, 6)]));
        assert_eq!(items, ["1", "2", "0", "4", "5", "3"]);
    }

    #[test]
    fn rows_stay_small() {
        // Inline sizes that the memory of a loaded portfolio is made of (PERFORMANCE.md).
        assert_eq!(std::mem::size_of::<Extra>(), 8);
        assert_eq!(std::mem::size_of::<Invoice>(), 128);
        assert_eq!(std::mem::size_of::<Customer>(), 200);
    }

    proptest! {
        /// Rows in id order: what a stable sort comparing the ids gives, for ids sharing 8
        /// or 16 bytes or not, with characters of several bytes across byte 8, NUL bytes,
        /// and repeats.
        #[test]
        fn rows_in_id_order_is_a_stable_sort_of_the_ids(
            ids in prop::collection::vec(("[AB]{0,10}", "[a-cé\u{0}\u{1F600}]{0,6}"), 0..60),
        ) {
            let ids: Vec<String> = ids.into_iter().map(|(shared, rest)| format!("{shared}{rest}")).collect();
            let mut expected: Vec<u32> = (0..ids.len() as u32).collect();
            expected.sort_by(|a, b| ids[*a as usize].cmp(&ids[*b as usize]));
            prop_assert_eq!(rows_in_id_order(ids.len() as u32, |r| &ids[r as usize]), expected);
        }

        /// `cmp_text` orders as `str::cmp`, for ids sharing long prefixes or not.
        #[test]
        fn cmp_text_orders_as_str(a in "[A-C0-9é\u{0}]{0,12}", b in "[A-C0-9é\u{0}]{0,12}", shared in "[A-C0]{0,9}") {
            let (a, b) = (format!("{shared}{a}"), format!("{shared}{b}"));
            prop_assert_eq!(cmp_text(&a, &b), a.cmp(&b));
            prop_assert_eq!(cmp_text(&b, &a), b.cmp(&a));
            prop_assert_eq!(cmp_text(&a, &a), std::cmp::Ordering::Equal);
        }
    }

    proptest! {
        /// One, several or no values, names of equal and different lengths: `get` answers
        /// as a map would, for present and absent names.
        #[test]
        fn extra_get_answers_as_a_map(
            pairs in prop::collection::vec(("[ab]{0,3}", "[xy]{0,2}"), 0..5),
            asked in prop::collection::vec("[ab]{0,3}", 0..8),
        ) {
            let extra: Extra = pairs.iter().cloned().collect();
            let map: BTreeMap<String, String> = pairs.into_iter().collect();
            for name in asked.iter().chain(map.keys()) {
                prop_assert_eq!(extra.get(name), map.get(name).map(String::as_str));
            }
        }
    }

    #[test]
    fn extra_reads_like_a_sorted_map() {
        let mut e = Extra::new();
        assert!(e.is_empty());
        assert_eq!(e.insert("b", "2"), None);
        assert_eq!((e.get("b"), e.len()), (Some("2"), 1));
        assert_eq!(e.clone().insert("b", "3").as_deref(), Some("2"));
        assert_eq!(e.insert("a", "1"), None);
        assert_eq!(e.insert("c", "3"), None);
        assert_eq!(e.insert("b", "two").as_deref(), Some("2"));
        assert_eq!(e.len(), 3);
        assert_eq!(e.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "two"), ("c", "3")]);
        assert_eq!(e.get("b"), Some("two"));
        assert!(e.contains_key("c") && !e.contains_key("d"));
        assert_eq!(format!("{e:?}"), r#"{"a": "1", "b": "two", "c": "3"}"#);
    }

    #[test]
    fn extra_from_unsorted_pairs_keeps_the_last_of_a_repeated_name() {
        let e: Extra = [("z", "1"), ("a", "2"), ("z", "3")].into_iter().collect();
        assert_eq!(e.iter().collect::<Vec<_>>(), [("a", "2"), ("z", "3")]);
        let map = BTreeMap::from([("z".to_string(), "1".to_string()), ("a".to_string(), "2".to_string())]);
        assert_eq!(Extra::from(map), Extra::from([("a", "2"), ("z", "1")]));
    }

    #[test]
    fn extra_serialises_as_the_map_did() {
        let map = BTreeMap::from([("region".to_string(), "Nord".to_string()), ("po".to_string(), "P\"1".to_string())]);
        let extra = Extra::from(map.clone());
        assert_eq!(serde_json::to_string(&extra).unwrap(), serde_json::to_string(&map).unwrap());
        let back: Extra = serde_json::from_str(r#"{"z":"1","a":"2","z":"3"}"#).unwrap();
        assert_eq!(back, Extra::from([("a", "2"), ("z", "3")]));
        assert_eq!(serde_json::from_str::<Extra>("{}").unwrap(), Extra::new());
        assert!(serde_json::from_str::<Extra>(r#"{"a":1}"#).is_err());
    }
}
