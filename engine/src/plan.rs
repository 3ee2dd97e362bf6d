//! The action plan: what must happen on the as-of date, and why (SPEC section 5).

use chrono::NaiveDate;
use iso_currency::Currency;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The result of one evaluation. Serialises to the JSON of SPEC section 5.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The date the plan was computed for.
    #[serde(serialize_with = "crate::datefmt::ser_date")]
    pub as_of: NaiveDate,
    /// SHA-256 of the scenario files' contents (hex), so an auditor knows which policy ran.
    pub scenarios_hash: String,
    /// What to do today, ordered by date, customer, offset, channel.
    pub actions: Vec<Action>,
    /// Steps that are not done today, with their status and reason.
    pub skipped: Vec<Skipped>,
    /// Customers that no scenario handles.
    pub unassigned: Vec<Unassigned>,
    /// Customers whose evaluation failed (the others are unaffected).
    pub errors: Vec<PlanError>,
    /// Per customer handled by a scenario, the next date on which something will happen.
    pub next: Vec<NextAction>,
    /// Warnings about the inputs (loader warnings, assumed rates).
    pub warnings: Vec<String>,
}

/// One thing to do: a reminder, a call, a letter, …
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Stable identifier: the same action in two runs has the same id (journal key).
    pub id: String,
    /// The date it is planned for (the as-of date).
    #[serde(serialize_with = "crate::datefmt::ser_date")]
    pub date: NaiveDate,
    /// Customer id.
    pub customer: String,
    /// Customer display name.
    pub customer_name: String,
    /// Scenario name.
    pub scenario: String,
    /// The step (`D+30`, `after payment`, `on broken promise`).
    pub step: String,
    /// Unique key of the step within its scenario (`D+30 letter`), used by the journal.
    pub step_key: String,
    /// Channel name (`email`, `letter`, …).
    pub channel: String,
    /// Template or task label.
    pub template: String,
    /// Who the task is assigned to (`assign "…"`).
    pub assign: Option<String>,
    /// Invoice ids covered by this action.
    pub invoices: Vec<String>,
    /// Total outstanding of those invoices on the date.
    pub outstanding: Decimal,
    /// Currency of all amounts of the action.
    pub currency: Currency,
    /// Fixed fees charged by this action (those of superseded steps included).
    pub fees: Decimal,
    /// Late-payment interest accrued to the date.
    pub interest: Decimal,
    /// Step keys of superseded steps whose fees and interest were carried into this action.
    pub carried: Vec<String>,
    /// Plain-text explanation: invoices, due dates, days late, step, condition values, hash.
    pub reason: String,
    /// Warnings attached to this action (for example an assumed rate).
    pub warnings: Vec<String>,
}

/// Why a step is not done today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipStatus {
    /// A later step was emitted instead (`catch up latest`), or an earlier one first (`stepwise`).
    Superseded,
    /// A `pause when` condition holds.
    Paused,
    /// A `stop when` condition holds.
    Stopped,
    /// The customer was contacted within the cooldown.
    Deferred,
    /// A step before the due date whose moment has passed.
    Expired,
    /// The customer's balance is below the minimum.
    BelowMinimum,
    /// The step's `when` condition does not hold today.
    ConditionFalse,
}

impl SkipStatus {
    /// Every status, in declaration order (`ALL[s as usize] == s`).
    pub const ALL: [SkipStatus; 7] = [
        SkipStatus::Superseded,
        SkipStatus::Paused,
        SkipStatus::Stopped,
        SkipStatus::Deferred,
        SkipStatus::Expired,
        SkipStatus::BelowMinimum,
        SkipStatus::ConditionFalse,
    ];

    /// The status as written in plans.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipStatus::Superseded => "superseded",
            SkipStatus::Paused => "paused",
            SkipStatus::Stopped => "stopped",
            SkipStatus::Deferred => "deferred",
            SkipStatus::Expired => "expired",
            SkipStatus::BelowMinimum => "below-minimum",
            SkipStatus::ConditionFalse => "condition-false",
        }
    }
}

/// A step that is not done today, with its reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// Customer id.
    pub customer: String,
    /// Invoice id (empty for a customer-level skip such as `below-minimum`).
    pub invoice: String,
    /// Scenario name.
    pub scenario: String,
    /// The step (`D+30`).
    pub step: String,
    /// Why.
    pub status: SkipStatus,
    /// Plain-text reason.
    pub reason: String,
    /// For `deferred`: the first date the action becomes possible.
    #[serde(serialize_with = "crate::datefmt::ser_opt_date")]
    pub until: Option<NaiveDate>,
}

/// A customer no scenario selects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unassigned {
    /// Customer id.
    pub customer: String,
    /// Segment, to help write the missing selector.
    pub segment: String,
    /// Number of open invoices.
    pub open_invoices: usize,
    /// Plain-text reason.
    pub reason: String,
}

/// A customer whose evaluation failed. The rest of the plan is unaffected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanError {
    /// Customer id (empty when the error concerns an input row with no customer).
    pub customer: String,
    /// Invoice id, when one invoice is concerned.
    pub invoice: Option<String>,
    /// Scenario name, when known.
    pub scenario: Option<String>,
    /// Step, when known.
    pub step: Option<String>,
    /// What went wrong and how to fix it.
    pub message: String,
}

/// The next date on which something will happen for a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NextAction {
    /// Customer id.
    pub customer: String,
    /// The first date after the as-of date on which a step triggers (None: nothing planned).
    #[serde(serialize_with = "crate::datefmt::ser_opt_date")]
    pub next_action_on: Option<NaiveDate>,
}

/// The figures of a plan without its texts (what [`crate::Engine::summarize`] returns):
/// how many actions per channel, skipped steps per status, and the amounts per currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlanSummary {
    /// Number of actions.
    pub actions: usize,
    /// Number of actions per channel.
    pub channels: std::collections::BTreeMap<String, usize>,
    /// Number of skipped steps per status.
    pub skipped: std::collections::BTreeMap<SkipStatus, usize>,
    /// Number of customers that no scenario handles.
    pub unassigned: usize,
    /// Number of errors (customers whose evaluation failed, invoices of unknown customers).
    pub errors: usize,
    /// Totals of the actions per currency code.
    pub totals: std::collections::BTreeMap<String, Totals>,
}

/// Amounts of the actions in one currency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Sum of the actions' outstanding amounts (an invoice in several actions counts in each).
    pub outstanding: Decimal,
    /// Sum of the fees.
    pub fees: Decimal,
    /// Sum of the interest.
    pub interest: Decimal,
}

impl PlanSummary {
    /// The summary of a whole plan.
    pub fn of(plan: &Plan) -> PlanSummary {
        let mut s =
            PlanSummary { unassigned: plan.unassigned.len(), errors: plan.errors.len(), ..PlanSummary::default() };
        for a in &plan.actions {
            s.add_action(&a.channel, a.currency, a.outstanding, a.fees, a.interest);
        }
        for k in &plan.skipped {
            *s.skipped.entry(k.status).or_default() += 1;
        }
        s
    }

    pub(crate) fn add_action(
        &mut self,
        channel: &str,
        currency: Currency,
        outstanding: Decimal,
        fees: Decimal,
        interest: Decimal,
    ) {
        self.add_actions(channel, currency, 1, outstanding, fees, interest);
    }

    /// Adds `count` actions of one channel and currency, with their summed amounts.
    pub(crate) fn add_actions(
        &mut self,
        channel: &str,
        currency: Currency,
        count: usize,
        outstanding: Decimal,
        fees: Decimal,
        interest: Decimal,
    ) {
        self.actions += count;
        match self.channels.get_mut(channel) {
            Some(n) => *n += count,
            None => {
                self.channels.insert(channel.to_owned(), count);
            }
        }
        let t = match self.totals.get_mut(currency.code()) {
            Some(t) => t,
            None => self.totals.entry(currency.code().to_owned()).or_default(),
        };
        t.outstanding += outstanding;
        t.fees += fees;
        t.interest += interest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_is_listed_at_its_own_index() {
        for (i, s) in SkipStatus::ALL.into_iter().enumerate() {
            assert_eq!(s as usize, i, "{}", s.as_str());
        }
        // A status added to the enum without its place in `ALL` fails here.
        assert_eq!(SkipStatus::ConditionFalse as usize + 1, SkipStatus::ALL.len());
    }
}
