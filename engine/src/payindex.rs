//! The payments of each invoice, found by the invoice's id.
//!
//! Every invoice of the portfolio asks once whether it has payments, and most have none
//! (10^6 invoices and 10^5 payments in the generated portfolios): a filter of one bit per
//! value of the top bits of the ids' hashes (16 bits a paid invoice) answers most of them.
//! The others (the invoices with payments and the filter's false positives, ≈ 15 %) probe a
//! table at random places. Asked invoice by invoice, each filter word and each probe waited
//! for its cache misses: at 10^6 the lookups cost ≈ 20 ms of the evaluator's 55 ms set-up.
//! [`PaymentIndex::find`] looks up a block of invoices at once: it computes the block's
//! hashes and asks for their filter words, then asks for the slots of later candidates and
//! for the entries they name before it reads those of the current one, so that the misses
//! overlap.

use std::hash::BuildHasher;

use crate::fxhash::Fx;
use crate::model::{CompactString, Invoice, prefetch};

/// The invoice ids of a list of payments sorted by invoice id, each with its range in that
/// list.
#[derive(Debug, Default)]
pub(crate) struct PaymentIndex {
    /// A bit per value of the top bits of the hashes (16 bits a distinct id).
    filter: Vec<u64>,
    /// `filter bit = hash >> filter_shift`.
    filter_shift: u32,
    /// Open addressing with linear probing, at most two thirds full: `0` is an empty slot,
    /// otherwise the high 32 bits of the id's hash (lowest bit set, so never 0) above the
    /// id's entry + 1.
    slots: Vec<u64>,
    /// `slot = hash >> slot_shift`.
    slot_shift: u32,
    /// For each distinct id: the id (held here: confirming a probe does not read the
    /// payment it comes from) and its range of positions in the sorted list.
    entries: Vec<(CompactString, (u32, u32))>,
}

/// Invoices looked up together by [`PaymentIndex::find`].
const BLOCK: usize = 256;
/// How many candidates ahead a probe's lines are asked for.
const AHEAD: usize = 8;

impl PaymentIndex {
    /// The index of `ids`, the invoice ids of the payments in sorted order (equal ids side by
    /// side; an id seen again after another one keeps its first run).
    pub(crate) fn new<'a>(ids: impl ExactSizeIterator<Item = &'a str>) -> Self {
        let mut entries: Vec<(CompactString, (u32, u32))> = Vec::with_capacity(ids.len());
        for (i, id) in ids.enumerate() {
            match entries.last_mut() {
                Some((last, (_, end))) if last.as_str() == id => *end = i as u32 + 1,
                _ => entries.push((CompactString::from(id), (i as u32, i as u32 + 1))),
            }
        }
        if entries.is_empty() {
            return Self::default();
        }
        entries.shrink_to_fit();
        // Between a third and two thirds full: a probe reads one or two slots, of one line.
        let size = (entries.len() * 3 / 2).next_power_of_two().max(64);
        let bits = (entries.len() * 16).next_power_of_two().max(64);
        let hashes: Vec<u64> = entries.iter().map(|(id, _)| hash(id)).collect();
        let mut index = PaymentIndex {
            filter: vec![0u64; bits / 64],
            filter_shift: 64 - bits.trailing_zeros(),
            slots: vec![0u64; size],
            slot_shift: 64 - size.trailing_zeros(),
            entries,
        };
        for (e, &h) in hashes.iter().enumerate() {
            // The slot of a later id is asked for while this one is placed.
            if let Some(&later) = hashes.get(e + AHEAD) {
                prefetch(&index.slots, index.slot(later));
            }
            index.place(e, h);
        }
        index
    }

    fn slot(&self, h: u64) -> usize {
        (h >> self.slot_shift) as usize
    }

    fn filter_bit(&self, h: u64) -> usize {
        (h >> self.filter_shift) as usize
    }

    /// Puts entry `e`, of hash `h`, in its slot; an id already placed (a second run of it)
    /// keeps its first entry, and this one is left unreferenced.
    fn place(&mut self, e: usize, h: u64) {
        let tag = tag_of(h);
        let mask = self.slots.len() - 1;
        let Some((id, _)) = self.entries.get(e) else { return };
        let mut s = self.slot(h);
        loop {
            let Some(&slot) = self.slots.get(s) else { return };
            if slot == 0 {
                break;
            }
            if slot >> 32 == tag && self.entry(slot).is_some_and(|other| other.0 == *id) {
                return;
            }
            s = (s + 1) & mask;
        }
        if let Some(slot) = self.slots.get_mut(s) {
            *slot = (tag << 32) | (e as u64 + 1);
        }
        let b = self.filter_bit(h);
        if let Some(w) = self.filter.get_mut(b / 64) {
            *w |= 1 << (b % 64);
        }
    }

    fn entry(&self, slot: u64) -> Option<&(CompactString, (u32, u32))> {
        self.entries.get(((slot & 0xffff_ffff) as usize).wrapping_sub(1))
    }

    /// Whether the filter lets an id of hash `h` through (it may have payments).
    fn maybe(&self, h: u64) -> bool {
        let b = self.filter_bit(h);
        self.filter.get(b / 64).is_some_and(|w| w & (1 << (b % 64)) != 0)
    }

    /// The first slot of the probe of `h` with `h`'s tag for which `wanted` holds, if any
    /// before an empty slot.
    fn probe(&self, h: u64, wanted: impl Fn(u64) -> bool) -> Option<u64> {
        let tag = tag_of(h);
        let mask = self.slots.len() - 1;
        let mut s = self.slot(h);
        loop {
            let slot = *self.slots.get(s)?;
            if slot == 0 {
                return None;
            }
            if slot >> 32 == tag && wanted(slot) {
                return Some(slot);
            }
            s = (s + 1) & mask;
        }
    }

    /// The range of payments of the id of hash `h`.
    fn get_hashed(&self, id: &str, h: u64) -> Option<(u32, u32)> {
        let slot = self.probe(h, |slot| self.entry(slot).is_some_and(|(key, _)| key.as_str() == id))?;
        self.entry(slot).map(|(_, range)| *range)
    }

    /// The range of positions of the payments of invoice `id`, if it has any.
    #[cfg(test)]
    pub(crate) fn get(&self, id: &str) -> Option<(u32, u32)> {
        if self.entries.is_empty() {
            return None;
        }
        let h = hash(id);
        if !self.maybe(h) {
            return None;
        }
        self.get_hashed(id, h)
    }

    /// Appends `(i, range)` to `found` for each invoice `i` of `from..to` that has payments,
    /// in order (`range`: its payments' positions in the sorted list).
    pub(crate) fn find(&self, invoices: &[Invoice], from: usize, to: usize, found: &mut Vec<(u32, (u32, u32))>) {
        if self.entries.is_empty() {
            return;
        }
        let to = to.min(invoices.len());
        let mut hashes = [0u64; BLOCK];
        let mut all = [(0u32, 0u64); BLOCK];
        let mut start = from;
        while start < to {
            let block = invoices.get(start..to.min(start + BLOCK)).unwrap_or_default();
            // The hashes, each filter word asked for as soon as it is known.
            for (h, inv) in hashes.iter_mut().zip(block) {
                *h = hash(&inv.id);
                prefetch(&self.filter, self.filter_bit(*h) / 64);
            }
            // The filter, without a branch per invoice: each invoice is written as the next
            // candidate, and kept when the filter lets it through.
            let mut n = 0;
            for (k, &h) in hashes.iter().take(block.len()).enumerate() {
                if let Some(c) = all.get_mut(n) {
                    *c = ((start + k) as u32, h);
                }
                n += usize::from(self.maybe(h));
            }
            let candidates = all.get(..n).unwrap_or_default();
            // The probes, in three steps a few candidates apart: ask for the slot's line,
            // then (read by then) for the line of the entry it names, then confirm the id.
            for k in 0..n + 2 * AHEAD {
                if let Some(&(_, h)) = candidates.get(k) {
                    prefetch(&self.slots, self.slot(h));
                }
                if let Some(&(_, h)) = k.checked_sub(AHEAD).and_then(|j| candidates.get(j))
                    && let Some(slot) = self.probe(h, |_| true)
                {
                    prefetch(&self.entries, ((slot & 0xffff_ffff) as usize).wrapping_sub(1));
                }
                if let Some(&(i, h)) = k.checked_sub(2 * AHEAD).and_then(|j| candidates.get(j))
                    && let Some(inv) = invoices.get(i as usize)
                    && let Some(range) = self.get_hashed(&inv.id, h)
                {
                    found.push((i, range));
                }
            }
            start += block.len().max(1);
        }
    }

    /// Number of distinct ids (entries that a slot names).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.iter().filter(|s| **s != 0).count()
    }
}

#[inline]
fn hash(id: &str) -> u64 {
    Fx.hash_one(id)
}

/// The high 32 bits of a hash, lowest bit set (a tag is never 0, the empty slot).
#[inline]
fn tag_of(h: u64) -> u64 {
    (h >> 32) | 1
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::HashMap;

    use chrono::NaiveDate;
    use proptest::prelude::*;

    use super::*;

    fn invoice(id: &str) -> Invoice {
        let due = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        Invoice::new(id, "C", due, rust_decimal::Decimal::ONE, iso_currency::Currency::EUR)
    }

    #[test]
    fn each_id_gives_its_run_of_payments() {
        let ids = ["A", "A", "B", "C", "C", "C"];
        let index = PaymentIndex::new(ids.iter().copied());
        assert_eq!(index.len(), 3);
        assert_eq!(index.get("A"), Some((0, 2)));
        assert_eq!(index.get("B"), Some((2, 3)));
        assert_eq!(index.get("C"), Some((3, 6)));
        assert_eq!(index.get("D"), None);
        assert_eq!(index.get(""), None);
        let invoices: Vec<Invoice> = ["X", "C", "A", "D", "C"].into_iter().map(invoice).collect();
        let mut found = Vec::new();
        index.find(&invoices, 0, invoices.len(), &mut found);
        assert_eq!(found, [(1, (3, 6)), (2, (0, 2)), (4, (3, 6))]);
        found.clear();
        index.find(&invoices, 2, 4, &mut found);
        assert_eq!(found, [(2, (0, 2))]);
    }

    #[test]
    fn no_payments_find_nothing() {
        let index = PaymentIndex::new(std::iter::empty());
        assert_eq!(index.get("A"), None);
        let mut found = Vec::new();
        index.find(&[invoice("A")], 0, 1, &mut found);
        assert!(found.is_empty());
    }

    proptest! {
        /// The index answers as a map from each id to its first run would, for ids present
        /// and absent, sorted lists or not (short ids from few letters: many collisions of
        /// slots, and runs of one id apart from each other); `find` over any range of
        /// invoices, across blocks, gives what asking for each invoice gives.
        #[test]
        fn the_index_answers_as_a_map(
            ids in proptest::collection::vec("[a-c]{0,3}", 0..200),
            sort in any::<bool>(),
            asked in proptest::collection::vec("[a-d]{0,3}", 0..700),
            from in 0usize..700,
            len in 0usize..900,
        ) {
            let mut ids = ids;
            if sort {
                ids.sort();
            }
            let mut map: HashMap<&str, (u32, u32)> = HashMap::new();
            let mut start = 0;
            while start < ids.len() {
                let mut end = start + 1;
                while end < ids.len() && ids[end] == ids[start] {
                    end += 1;
                }
                map.entry(ids[start].as_str()).or_insert((start as u32, end as u32));
                start = end;
            }
            let index = PaymentIndex::new(ids.iter().map(String::as_str));
            prop_assert_eq!(index.len(), map.len());
            for id in ids.iter().chain(&asked) {
                prop_assert_eq!(index.get(id), map.get(id.as_str()).copied(), "{:?}", id);
            }
            let invoices: Vec<Invoice> = asked.iter().map(|a| invoice(a)).collect();
            // `to` may pass the end of the invoices: the end then stands for it.
            let to = from + len;
            let mut found = Vec::new();
            index.find(&invoices, from, to, &mut found);
            let to = to.min(invoices.len());
            let expected: Vec<(u32, (u32, u32))> = (from..to)
                .filter_map(|i| map.get(asked[i].as_str()).map(|r| (i as u32, *r)))
                .collect();
            prop_assert_eq!(found, expected);
        }
    }
}
