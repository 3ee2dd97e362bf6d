//! What has already been done: the engine asks its [`History`] so that a daily run never
//! repeats a step. The SQLite journal of `relance-stdlib` implements it; [`MemoryHistory`]
//! is the in-memory one used by simulations and tests.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;

use crate::plan::Plan;

/// The record of past actions the engine consults.
pub trait History: Sync {
    /// The date the step with key `step` (`D+30 letter`) of `scenario` was done for `invoice`, if it was.
    fn step_done(&self, invoice: &str, scenario: &str, step: &str) -> Option<NaiveDate>;
    /// The last date any action reached `customer`, if any.
    fn last_contact(&self, customer: &str) -> Option<NaiveDate>;
    /// How many actions reached `invoice` so far.
    fn reminders_sent(&self, invoice: &str) -> u32;
    /// Whether nothing was ever done (every question above has the empty answer). The
    /// evaluator then skips its questions; the default `false` is always correct.
    fn is_empty(&self) -> bool {
        false
    }
}

/// No history: every step is new.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHistory;

impl History for NoHistory {
    fn step_done(&self, _: &str, _: &str, _: &str) -> Option<NaiveDate> {
        None
    }
    fn last_contact(&self, _: &str) -> Option<NaiveDate> {
        None
    }
    fn reminders_sent(&self, _: &str) -> u32 {
        0
    }
    fn is_empty(&self) -> bool {
        true
    }
}

/// An in-memory history, fed with the plans that were executed.
#[derive(Debug, Clone, Default)]
pub struct MemoryHistory {
    done: BTreeMap<(String, String, String), NaiveDate>,
    contacts: BTreeMap<String, NaiveDate>,
    counts: BTreeMap<String, u32>,
    ids: BTreeSet<String>,
}

impl MemoryHistory {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records every action of `plan` as done on its date. An action id seen before is ignored,
    /// so recording the same plan twice changes nothing.
    pub fn record(&mut self, plan: &Plan) {
        for action in &plan.actions {
            if !self.ids.insert(action.id.clone()) {
                continue;
            }
            let steps = std::iter::once(&action.step_key).chain(action.carried.iter());
            for step in steps {
                for invoice in &action.invoices {
                    self.done.entry((invoice.clone(), action.scenario.clone(), step.clone())).or_insert(action.date);
                }
            }
            for invoice in &action.invoices {
                *self.counts.entry(invoice.clone()).or_default() += 1;
            }
            let last = self.contacts.entry(action.customer.clone()).or_insert(action.date);
            if *last < action.date {
                *last = action.date;
            }
        }
    }

    /// Number of distinct actions recorded.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl History for MemoryHistory {
    fn step_done(&self, invoice: &str, scenario: &str, step: &str) -> Option<NaiveDate> {
        self.done.get(&(invoice.to_owned(), scenario.to_owned(), step.to_owned())).copied()
    }
    fn last_contact(&self, customer: &str) -> Option<NaiveDate> {
        self.contacts.get(customer).copied()
    }
    fn reminders_sent(&self, invoice: &str) -> u32 {
        self.counts.get(invoice).copied().unwrap_or(0)
    }
}
