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
