//! The portfolio: customers, open invoices, payments and credit notes.
//!
//! This is plain data. Loaders in `relance-stdlib` fill it from CSV, JSON or Excel; an
//! embedding program can also build it by hand.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use iso_currency::Currency;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

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

/// A customer (a debtor).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    /// Unique identifier, as in the accounting system.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Segment used by `for segment "…"` selectors.
    pub segment: String,
    /// E-mail address, when known.
    pub email: Option<String>,
    /// Phone number, when known.
    pub phone: Option<String>,
    /// Preferred language (`fr`, `en`) for templates.
    pub language: Option<String>,
    /// Free tags (`legal-hold`, `vip`), tested with `customer.tags has "…"`.
    pub tags: Vec<String>,
    /// Average days late from payment history, when the export gives it.
    pub avg_days_late: Option<Decimal>,
    /// Any other column, available as `customer.NAME`.
    pub extra: BTreeMap<String, String>,
}

/// An invoice (or any receivable) of a customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invoice {
    /// Unique identifier.
    pub id: String,
    /// The customer it is owed by.
    pub customer_id: String,
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
    /// Payment terms as written (`30 days net`).
    pub terms: Option<String>,
    /// Any other column, available as `invoice.NAME`.
    pub extra: BTreeMap<String, String>,
}

/// A payment or credit note applied to an invoice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    /// Identifier, when the export gives one.
    pub id: Option<String>,
    /// The invoice it settles (in part or whole).
    pub invoice_id: String,
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
        id: impl Into<String>,
        customer_id: impl Into<String>,
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
            terms: None,
            extra: BTreeMap::new(),
        }
    }
}

impl Customer {
    /// A new customer with only the mandatory fields set.
    pub fn new(id: impl Into<String>, name: impl Into<String>, segment: impl Into<String>) -> Self {
        Self { id: id.into(), name: name.into(), segment: segment.into(), ..Self::default() }
    }
}
