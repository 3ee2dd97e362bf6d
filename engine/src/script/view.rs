//! What a script sees: read-only views of the invoice and the customer, and the date type.
//!
//! The views live in a scope that each thread keeps between evaluations (see
//! [`super::ScriptEngine::eval_bool`]): [`InvoiceView::refresh`] and [`CustomerView::refresh`]
//! overwrite them in place, reusing their string buffers, so that the hot path does not
//! allocate once the scope is warm. A view is an `Arc`, so passing `invoice` to a function of a
//! `functions` file clones a pointer, not the data.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use iso_currency::Currency;
use rhai::{Array, Dynamic, ImmutableString};
use rust_decimal::Decimal;

use crate::model::{Customer, Extra, Invoice};

use super::ScriptContext;

/// What a script can read beyond the scalar fields, found by [`super::needs`] when compiling:
/// the views copy only that (the hot path then reads no string of the invoice or customer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Needs {
    /// The script names `invoice`.
    pub(super) invoice: bool,
    /// The script names `customer`.
    pub(super) customer: bool,
    /// Identifiers, names, segments, tags… (string fields).
    pub(super) strings: bool,
    /// Extra columns (indexing, `extra(…)`, or an unknown property name).
    pub(super) extras: bool,
}

impl Needs {
    pub(super) fn union(self, other: Self) -> Self {
        Self {
            invoice: self.invoice || other.invoice,
            customer: self.customer || other.customer,
            strings: self.strings || other.strings,
            extras: self.extras || other.extras,
        }
    }
}

/// A field the analysis said the script could not read was read after all: an error, never a
/// value left from another invoice.
fn not_copied(what: &str) -> Box<rhai::EvalAltResult> {
    super::helper_error(
        format!("`{what}` was not made available to this script"),
        "name the field (or `extra`) literally in the script: a function name built at run time hides what the script reads",
    )
}

type Got<T> = Result<T, Box<rhai::EvalAltResult>>;

/// A calendar date in a script (`invoice.due_date`, `today()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct ScriptDate(pub(super) NaiveDate);

impl ScriptDate {
    pub(super) fn year(&mut self) -> i64 {
        i64::from(self.0.year())
    }
    pub(super) fn month(&mut self) -> i64 {
        i64::from(self.0.month())
    }
    pub(super) fn day(&mut self) -> i64 {
        i64::from(self.0.day())
    }
    pub(super) fn weekday(&mut self) -> i64 {
        i64::from(self.0.weekday().number_from_monday())
    }
}

/// Overwrites `dst` with `src`, keeping its buffer when it is not shared.
fn set_str(dst: &mut ImmutableString, src: &str) {
    if dst.as_str() != src {
        let s = dst.make_mut();
        s.clear();
        s.push_str(src);
    }
}

fn set_opt_str(dst: &mut Option<ImmutableString>, src: Option<&str>) {
    match (dst.as_mut(), src) {
        (Some(d), Some(s)) => set_str(d, s),
        (None, None) => {}
        (_, s) => *dst = s.map(ImmutableString::from),
    }
}

fn opt_dynamic<T: Clone + Send + Sync + 'static>(value: Option<T>) -> Dynamic {
    value.map_or(Dynamic::UNIT, Dynamic::from)
}

/// Extra columns, sorted by name (the order of the model's `BTreeMap`).
#[derive(Debug, Clone, Default)]
pub(super) struct Extras(Vec<(ImmutableString, ImmutableString)>);

impl Extras {
    fn from_map(map: &Extra) -> Self {
        Self(map.iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    /// Same columns as before (the usual case: every row of an export has the same columns):
    /// only the values are overwritten.
    fn refresh(&mut self, map: &Extra) {
        let same_keys =
            self.0.len() == map.len() && self.0.iter().zip(map.keys()).all(|((k, _), key)| k.as_str() == key);
        if same_keys {
            for ((_, v), (_, value)) in self.0.iter_mut().zip(map.iter()) {
                set_str(v, value);
            }
        } else {
            *self = Self::from_map(map);
        }
    }

    fn get(&self, name: &str) -> Dynamic {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(name)) {
            Ok(i) => self.0.get(i).map_or(Dynamic::UNIT, |(_, v)| Dynamic::from(v.clone())),
            Err(_) => Dynamic::UNIT,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct InvoiceData {
    id: ImmutableString,
    customer_id: ImmutableString,
    issue_date: Option<NaiveDate>,
    due_date: NaiveDate,
    amount: Decimal,
    outstanding: Decimal,
    days_late: i64,
    disputed: bool,
    currency: Currency,
    payment_plan: bool,
    promise_date: Option<NaiveDate>,
    promise_amount: Option<Decimal>,
    extra: Extras,
    strings_ok: bool,
    extras_ok: bool,
}

/// `invoice` in a script.
#[derive(Debug, Clone)]
pub(super) struct InvoiceView(Arc<InvoiceData>);

impl InvoiceView {
    pub(super) fn new(ctx: &ScriptContext<'_>) -> Self {
        let i: &Invoice = ctx.invoice;
        Self(Arc::new(InvoiceData {
            id: i.id.as_str().into(),
            customer_id: i.customer_id.as_str().into(),
            issue_date: i.issue_date,
            due_date: i.due_date,
            amount: i.amount,
            outstanding: ctx.outstanding,
            days_late: ctx.days_late,
            disputed: i.disputed,
            currency: i.currency,
            payment_plan: i.payment_plan,
            promise_date: i.promise_date,
            promise_amount: i.promise_amount,
            extra: Extras::from_map(&i.extra),
            strings_ok: true,
            extras_ok: true,
        }))
    }

    pub(super) fn refresh(&mut self, ctx: &ScriptContext<'_>, needs: Needs) {
        let Some(d) = Arc::get_mut(&mut self.0) else {
            // Still shared (a value escaped an earlier run): start afresh.
            *self = Self::new(ctx);
            return;
        };
        let i = ctx.invoice;
        d.issue_date = i.issue_date;
        d.due_date = i.due_date;
        d.amount = i.amount;
        d.outstanding = ctx.outstanding;
        d.days_late = ctx.days_late;
        d.disputed = i.disputed;
        d.currency = i.currency;
        d.payment_plan = i.payment_plan;
        d.promise_date = i.promise_date;
        d.promise_amount = i.promise_amount;
        d.strings_ok = needs.strings;
        if needs.strings {
            set_str(&mut d.id, &i.id);
            set_str(&mut d.customer_id, &i.customer_id);
        }
        d.extras_ok = needs.extras;
        if needs.extras {
            d.extra.refresh(&i.extra);
        }
    }

    fn strings(&self, what: &str) -> Got<&InvoiceData> {
        if self.0.strings_ok { Ok(&self.0) } else { Err(not_copied(what)) }
    }

    pub(super) fn id(&mut self) -> Got<ImmutableString> {
        Ok(self.strings("invoice.id")?.id.clone())
    }
    pub(super) fn customer_id(&mut self) -> Got<ImmutableString> {
        Ok(self.strings("invoice.customer_id")?.customer_id.clone())
    }
    pub(super) fn issue_date(&mut self) -> Dynamic {
        opt_dynamic(self.0.issue_date.map(ScriptDate))
    }
    pub(super) fn due_date(&mut self) -> ScriptDate {
        ScriptDate(self.0.due_date)
    }
    pub(super) fn amount(&mut self) -> Decimal {
        self.0.amount
    }
    pub(super) fn outstanding(&mut self) -> Decimal {
        self.0.outstanding
    }
    pub(super) fn days_late(&mut self) -> i64 {
        self.0.days_late
    }
    pub(super) fn disputed(&mut self) -> bool {
        self.0.disputed
    }
    pub(super) fn currency(&mut self) -> ImmutableString {
        self.0.currency.code().into()
    }
    pub(super) fn payment_plan(&mut self) -> bool {
        self.0.payment_plan
    }
    pub(super) fn promise_date(&mut self) -> Dynamic {
        opt_dynamic(self.0.promise_date.map(ScriptDate))
    }
    pub(super) fn promise_amount(&mut self) -> Dynamic {
        opt_dynamic(self.0.promise_amount)
    }
    pub(super) fn extra(&mut self, name: &str) -> Got<Dynamic> {
        if self.0.extras_ok { Ok(self.0.extra.get(name)) } else { Err(not_copied(name)) }
    }
}

#[derive(Debug, Clone)]
pub(super) struct CustomerData {
    id: ImmutableString,
    name: ImmutableString,
    segment: ImmutableString,
    email: Option<ImmutableString>,
    phone: Option<ImmutableString>,
    language: Option<ImmutableString>,
    tags: Vec<ImmutableString>,
    avg_days_late: Option<Decimal>,
    extra: Extras,
    strings_ok: bool,
    extras_ok: bool,
}

/// `customer` in a script.
#[derive(Debug, Clone)]
pub(super) struct CustomerView(Arc<CustomerData>);

impl CustomerView {
    pub(super) fn new(c: &Customer) -> Self {
        Self(Arc::new(CustomerData {
            id: c.id.as_str().into(),
            name: c.name.as_str().into(),
            segment: c.segment.as_str().into(),
            email: c.email.as_deref().map(ImmutableString::from),
            phone: c.phone.as_deref().map(ImmutableString::from),
            language: c.language.as_deref().map(ImmutableString::from),
            tags: c.tags.iter().map(|t| ImmutableString::from(t.as_str())).collect(),
            avg_days_late: c.avg_days_late,
            extra: Extras::from_map(&c.extra),
            strings_ok: true,
            extras_ok: true,
        }))
    }

    pub(super) fn refresh(&mut self, c: &Customer, needs: Needs) {
        let Some(d) = Arc::get_mut(&mut self.0) else {
            *self = Self::new(c);
            return;
        };
        d.avg_days_late = c.avg_days_late;
        d.strings_ok = needs.strings;
        d.extras_ok = needs.extras;
        if needs.extras {
            d.extra.refresh(&c.extra);
        }
        if !needs.strings {
            return;
        }
        set_str(&mut d.id, &c.id);
        set_str(&mut d.name, &c.name);
        set_str(&mut d.segment, &c.segment);
        set_opt_str(&mut d.email, c.email.as_deref());
        set_opt_str(&mut d.phone, c.phone.as_deref());
        set_opt_str(&mut d.language, c.language.as_deref());
        if d.tags.len() == c.tags.len() {
            for (dst, src) in d.tags.iter_mut().zip(&c.tags) {
                set_str(dst, src);
            }
        } else {
            d.tags = c.tags.iter().map(|t| ImmutableString::from(t.as_str())).collect();
        }
    }

    fn strings(&self, what: &str) -> Got<&CustomerData> {
        if self.0.strings_ok { Ok(&self.0) } else { Err(not_copied(what)) }
    }

    pub(super) fn id(&mut self) -> Got<ImmutableString> {
        Ok(self.strings("customer.id")?.id.clone())
    }
    pub(super) fn name(&mut self) -> Got<ImmutableString> {
        Ok(self.strings("customer.name")?.name.clone())
    }
    pub(super) fn segment(&mut self) -> Got<ImmutableString> {
        Ok(self.strings("customer.segment")?.segment.clone())
    }
    pub(super) fn email(&mut self) -> Got<Dynamic> {
        Ok(opt_dynamic(self.strings("customer.email")?.email.clone()))
    }
    pub(super) fn phone(&mut self) -> Got<Dynamic> {
        Ok(opt_dynamic(self.strings("customer.phone")?.phone.clone()))
    }
    pub(super) fn language(&mut self) -> Got<Dynamic> {
        Ok(opt_dynamic(self.strings("customer.language")?.language.clone()))
    }
    pub(super) fn tags(&mut self) -> Got<Array> {
        Ok(self.strings("customer.tags")?.tags.iter().cloned().map(Dynamic::from).collect())
    }
    pub(super) fn has_tag(&mut self, tag: &str) -> Got<bool> {
        Ok(self.strings("customer.tags")?.tags.iter().any(|t| t.as_str() == tag))
    }
    pub(super) fn avg_days_late(&mut self) -> Dynamic {
        opt_dynamic(self.0.avg_days_late)
    }
    pub(super) fn extra(&mut self, name: &str) -> Got<Dynamic> {
        if self.0.extras_ok { Ok(self.0.extra.get(name)) } else { Err(not_copied(name)) }
    }
}
