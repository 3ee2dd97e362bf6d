//! Money arithmetic: rounding to a currency's minor unit and simple interest.
//! Amounts are [`Decimal`], never floats.

use chrono::{Datelike, NaiveDate};
use iso_currency::Currency;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::law::RatePeriod;

/// The number of decimals of the currency's minor unit (EUR 2, JPY 0, KWD 3).
pub fn minor_units(currency: Currency) -> u32 {
    currency.exponent().map(u32::from).unwrap_or(2)
}

/// Rounds `amount` to the currency's minor unit, half away from zero (10.125 → 10.13), and
/// writes it with exactly that many decimals (`40` → `40.00` in EUR).
pub fn round(amount: Decimal, currency: Currency) -> Decimal {
    let units = minor_units(currency);
    if amount.scale() == units {
        // Already in minor units (sums of amounts read from a file): nothing to round.
        return amount;
    }
    let mut r = amount.round_dp_with_strategy(units, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(units);
    r
}

/// `*sum += x`, the same value in the same form, without a decimal addition in the common
/// cases: a sum still zero (`Decimal::ZERO`), or two amounts of the same scale whose
/// mantissas fit in 64 bits (amounts read from files). The evaluator adds amounts for every
/// invoice and action; a decimal addition costs several times more.
#[inline]
pub(crate) fn add_to(sum: &mut Decimal, x: Decimal) {
    if sum.scale() == x.scale()
        && let (Ok(a), Ok(b)) = (i64::try_from(sum.mantissa()), i64::try_from(x.mantissa()))
        && let Some(m) = a.checked_add(b)
        && let Ok(d) = Decimal::try_new(m, x.scale())
    {
        *sum = d;
    } else if sum.is_zero() && sum.scale() == 0 {
        *sum = x;
    } else {
        *sum += x;
    }
}

/// Simple interest, actual/365, on a piecewise-constant outstanding amount.
///
/// Interest runs for every day from `first` to `last` inclusive (SPEC 3.6: from the day after
/// the due date to the as-of date). `balance` lists `(from, amount)` changes in date order: the
/// amount applies from that date on, until the next change (`balance[0].0` must be on or before
/// `first`, or the balance before it is zero). Each day bears the rate of the period covering it.
/// The result is **not** rounded: callers round once per invoice with [`round`].
pub fn simple_interest(
    first: NaiveDate,
    last: NaiveDate,
    balance: &[(NaiveDate, Decimal)],
    periods: &[RatePeriod],
) -> Decimal {
    if last < first {
        return Decimal::ZERO;
    }
    let mut total = Decimal::ZERO; // sum of amount × percent × days
    for (period, amount, days) in segments(first, last, balance, periods) {
        total += amount * period.percent * Decimal::from(days);
    }
    total / Decimal::from(36_500)
}

/// The pieces of an interest computation from `first` to `last`: for each rate period and
/// each stretch of constant non-zero outstanding amount within it, the period, the amount and
/// the number of days.
fn segments<'b>(
    first: NaiveDate,
    last: NaiveDate,
    balance: &'b [(NaiveDate, Decimal)],
    periods: &'b [RatePeriod],
) -> impl Iterator<Item = (&'b RatePeriod, Decimal, i64)> + 'b {
    periods.iter().flat_map(move |period| {
        let p_from = period.from.max(first);
        let p_to = period.to.min(last);
        balance.iter().enumerate().filter_map(move |(i, (b_from, amount))| {
            if p_to < p_from || amount.is_zero() {
                return None;
            }
            let b_to = match balance.get(i + 1) {
                Some((next, _)) => next.pred_opt()?,
                None => p_to,
            };
            let from = p_from.max(*b_from);
            let to = p_to.min(b_to);
            (from <= to).then(|| (period, *amount, days_between(from, to) + 1))
        })
    })
}

/// Powers of ten up to 10^24.
const POW10: [i128; 25] = {
    let mut t = [1i128; 25];
    let mut i = 1;
    while i < 25 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// `to − from` in days: the same as `(to - from).num_days()`, without the duration's
/// seconds (several times cheaper; the evaluator asks it for every invoice).
pub(crate) fn days_between(from: NaiveDate, to: NaiveDate) -> i64 {
    day_number(to) - day_number(from)
}

/// The number of a day (days since the first of January of year 1): differences of day
/// numbers are [`days_between`]; a fixed date's number is computed once.
#[inline]
pub(crate) fn day_number(d: NaiveDate) -> i64 {
    i64::from(d.num_days_from_ce())
}

/// [`simple_interest`] rounded once to the currency's minor unit with [`round`]: the amount
/// an action charges. Computed exactly in integers when amounts and rates fit (always, for
/// amounts read from files), which is several times faster than decimal arithmetic; the
/// decimal computation otherwise. Both give the same amount (a property test checks it).
pub fn rounded_interest(
    first: NaiveDate,
    last: NaiveDate,
    balance: &[(NaiveDate, Decimal)],
    periods: &[RatePeriod],
    currency: Currency,
) -> Decimal {
    let units = minor_units(currency);
    exact_interest(first, last, balance, periods, units)
        .unwrap_or_else(|| round(simple_interest(first, last, balance, periods), currency))
}

/// The integer form of [`rounded_interest`]: every amount × rate × days summed exactly at a
/// common scale, divided by 36,500 once and rounded half away from zero. `None` when a value
/// does not fit or is negative (left to the decimal computation).
fn exact_interest(
    first: NaiveDate,
    last: NaiveDate,
    balance: &[(NaiveDate, Decimal)],
    periods: &[RatePeriod],
    units: u32,
) -> Option<Decimal> {
    if last < first {
        return Some(Decimal::new(0, units));
    }
    let amount_scale = balance.iter().map(|(_, a)| a.scale()).max().unwrap_or(0);
    let rate_scale = periods.iter().map(|p| p.percent.scale()).max().unwrap_or(0);
    if amount_scale + rate_scale + units > 24 {
        return None;
    }
    if let Some(q) = small_interest(first, last, balance, periods, units, amount_scale, rate_scale) {
        return Some(q);
    }
    // Mantissas brought to a common scale, bounded so that rate × days (days < 2^28 in
    // chrono's range) cannot overflow; the product with the amount and the sum are checked.
    let at_scale = |d: Decimal, scale: u32, bound: i128| -> Option<i128> {
        let m = d.mantissa().checked_mul(*POW10.get((scale - d.scale()) as usize)?)?;
        (0..bound).contains(&m).then_some(m)
    };
    let mut total: i128 = 0;
    for (period, amount, days) in segments(first, last, balance, periods) {
        let rate = at_scale(period.percent, rate_scale, 1 << 40)?;
        let term = at_scale(amount, amount_scale, 1 << 62)?.checked_mul(rate * i128::from(days))?;
        total = total.checked_add(term)?;
    }
    let num = total.checked_mul(*POW10.get(units as usize)?)?;
    let den = 36_500i128.checked_mul(*POW10.get((amount_scale + rate_scale) as usize)?)?;
    let (q, r) = (num / den, num % den);
    let q = if 2 * r >= den { q + 1 } else { q };
    Decimal::try_from_i128_with_scale(q, units).ok()
}

/// [`exact_interest`] in 64-bit integers, every product and sum checked: `None` as soon as
/// one does not fit (then the 128-bit computation runs). Amounts of a few million at a rate
/// with two decimals over years fit, which is the common case, and 64-bit multiplications and
/// divisions are several times cheaper than 128-bit ones.
fn small_interest(
    first: NaiveDate,
    last: NaiveDate,
    balance: &[(NaiveDate, Decimal)],
    periods: &[RatePeriod],
    units: u32,
    amount_scale: u32,
    rate_scale: u32,
) -> Option<Decimal> {
    let at_scale = |d: Decimal, scale: u32| -> Option<u64> {
        let m = u64::try_from(d.mantissa()).ok()?;
        m.checked_mul(*POW10_U64.get((scale - d.scale()) as usize)?)
    };
    let mut total: u64 = 0;
    for (period, amount, days) in segments(first, last, balance, periods) {
        let rate = at_scale(period.percent, rate_scale)?;
        let days = u64::try_from(days).ok()?;
        let term = at_scale(amount, amount_scale)?.checked_mul(rate)?.checked_mul(days)?;
        total = total.checked_add(term)?;
    }
    let num = total.checked_mul(*POW10_U64.get(units as usize)?)?;
    let den = 36_500u64.checked_mul(*POW10_U64.get((amount_scale + rate_scale) as usize)?)?;
    let (q, r) = (num / den, num % den);
    // `2 r ≥ den` without overflow: r < den, so `r ≥ den − r` is the same test.
    let q = if r >= den - r { q + 1 } else { q };
    Decimal::try_from_i128_with_scale(i128::from(q), units).ok()
}

/// The rate periods of an interest computation from `first` to `last` summed once: Σ rate ×
/// days, as an integer at a common scale. The interest on an amount that stays the same over
/// the whole time (an invoice without payments) is then one multiplication and one division:
/// the same amount as [`rounded_interest`] (a property test checks it), which the evaluator
/// would otherwise compute period by period for every invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateDays {
    /// Σ rate mantissa (at `scale`) × days.
    sum: u64,
    scale: u32,
}

impl RateDays {
    /// `None` when a value does not fit in 64 bits or a rate is negative.
    pub(crate) fn new(first: NaiveDate, last: NaiveDate, periods: &[RatePeriod]) -> Option<RateDays> {
        let scale = periods.iter().map(|p| p.percent.scale()).max().unwrap_or(0);
        let mut sum: u64 = 0;
        if last >= first {
            for p in periods {
                let (from, to) = (p.from.max(first), p.to.min(last));
                if from > to {
                    continue;
                }
                let days = u64::try_from(days_between(from, to) + 1).ok()?;
                let rate = u64::try_from(p.percent.mantissa())
                    .ok()?
                    .checked_mul(*POW10_U64.get((scale - p.percent.scale()) as usize)?)?;
                sum = sum.checked_add(rate.checked_mul(days)?)?;
            }
        }
        Some(RateDays { sum, scale })
    }

    /// The interest on `amount` (not negative) over the whole time, rounded to the currency's
    /// minor unit half away from zero; `None` when it does not fit in 64 bits.
    pub(crate) fn interest(&self, amount: Decimal, currency: Currency) -> Option<Decimal> {
        let units = minor_units(currency);
        let a = u64::try_from(amount.mantissa()).ok()?;
        let num = a.checked_mul(self.sum)?.checked_mul(*POW10_U64.get(units as usize)?)?;
        let den = 36_500u64.checked_mul(*POW10_U64.get((amount.scale() + self.scale) as usize)?)?;
        let (q, r) = (num / den, num % den);
        let q = if r >= den - r { q + 1 } else { q };
        Decimal::try_from_i128_with_scale(i128::from(q), units).ok()
    }
}

/// `a.cmp(&b)` without a call into the decimal library for the usual operands: the same
/// scale (amounts read from files) compares mantissas; scales up to 19 apart scale the
/// smaller one's mantissa first (an amount against a whole constant such as `1500 EUR`).
/// Conditions and the minimum balance compare amounts for every invoice or customer.
#[inline]
pub(crate) fn cmp(a: Decimal, b: Decimal) -> std::cmp::Ordering {
    let (sa, sb) = (a.scale(), b.scale());
    let (ma, mb) = (a.mantissa(), b.mantissa());
    let scaled = |m: i128, by: u32| POW10_U64.get(by as usize).and_then(|p| m.checked_mul(i128::from(*p)));
    let fast = match sa.cmp(&sb) {
        std::cmp::Ordering::Equal => Some(ma.cmp(&mb)),
        std::cmp::Ordering::Less => scaled(ma, sb - sa).map(|ma| ma.cmp(&mb)),
        std::cmp::Ordering::Greater => scaled(mb, sa - sb).map(|mb| ma.cmp(&mb)),
    };
    fast.unwrap_or_else(|| a.cmp(&b))
}

/// Powers of ten that fit in 64 bits (10^0 to 10^19).
pub(crate) const POW10_U64: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn rounds_half_away_from_zero_in_minor_units() {
        assert_eq!(round(dec!(10.125), Currency::EUR), dec!(10.13));
        assert_eq!(round(dec!(-10.125), Currency::EUR), dec!(-10.13));
        assert_eq!(round(dec!(100.5), Currency::JPY), dec!(101));
        assert_eq!(round(dec!(1.0005), Currency::KWD), dec!(1.001));
    }

    #[test]
    fn interest_is_split_by_rate_period_and_balance_change() {
        // 1000 at 10 % for 10 days then 500 at 10 % for 10 days, then 500 at 20 % for 5 days.
        let periods = vec![
            RatePeriod { from: d(2025, 1, 1), to: d(2025, 1, 20), percent: dec!(10), assumed: None },
            RatePeriod { from: d(2025, 1, 21), to: d(2025, 12, 31), percent: dec!(20), assumed: None },
        ];
        let balance = vec![(d(2024, 12, 1), dec!(1000)), (d(2025, 1, 11), dec!(500))];
        let got = simple_interest(d(2025, 1, 1), d(2025, 1, 25), &balance, &periods);
        let want =
            (dec!(1000) * dec!(10) * dec!(10) + dec!(500) * dec!(10) * dec!(10) + dec!(500) * dec!(20) * dec!(5))
                / dec!(36500);
        assert_eq!(got, want);
        assert_eq!(round(got, Currency::EUR), dec!(5.48));
        assert_eq!(rounded_interest(d(2025, 1, 1), d(2025, 1, 25), &balance, &periods, Currency::EUR), dec!(5.48));
    }

    proptest::proptest! {
        #[test]
        fn days_between_is_the_duration_in_days(a in -400_000i64..400_000, b in -400_000i64..400_000) {
            let day = |n: i64| if n >= 0 { d(1970, 1, 1) + chrono::Days::new(n as u64) } else { d(1970, 1, 1) - chrono::Days::new((-n) as u64) };
            proptest::prop_assert_eq!(days_between(day(a), day(b)), (day(b) - day(a)).num_days());
        }

        /// The integer computation gives the amount of the decimal one, to the minor unit and
        /// in the same form (`0.50`, not `0.5`).
        #[test]
        fn exact_interest_is_the_rounded_decimal_interest(
            amounts in proptest::collection::vec((0i64..100_000_000_000, 0u32..5, 0i64..400), 1..4),
            rates in proptest::collection::vec((0i64..3_000_000, 0u32..6, 1i64..300), 1..4),
            start in 0i64..200,
            len in 0i64..900,
            cur in proptest::sample::select(vec![Currency::EUR, Currency::JPY, Currency::KWD]),
        ) {
            let base = d(2024, 1, 1);
            let day = |n: i64| base + chrono::Days::new(n as u64);
            let mut at = 0;
            let balance: Vec<(NaiveDate, Decimal)> = amounts.iter().map(|(m, s, gap)| {
                let b = (day(at), Decimal::new(*m, *s));
                at += gap;
                b
            }).collect();
            let mut from = 0;
            let periods: Vec<RatePeriod> = rates.iter().map(|(m, s, len)| {
                let p = RatePeriod { from: day(from), to: day(from + len - 1), percent: Decimal::new(*m, *s), assumed: None };
                from += len;
                p
            }).collect();
            let (first, last) = (day(start), day(start + len));
            let want = round(simple_interest(first, last, &balance, &periods), cur);
            let got = rounded_interest(first, last, &balance, &periods, cur);
            proptest::prop_assert_eq!(got.to_string(), want.to_string());
            proptest::prop_assert!(exact_interest(first, last, &balance, &periods, minor_units(cur)).is_some());
        }

        /// Summed rate periods give, on an amount that does not change, the amount computed
        /// period by period.
        #[test]
        fn rate_days_give_the_interest_of_a_constant_amount(
            (m, scale) in (0i64..100_000_000_000, 0u32..5),
            rates in proptest::collection::vec((0i64..3_000_000, 0u32..6, 1i64..300), 1..4),
            start in 0i64..200,
            len in -3i64..900,
            cur in proptest::sample::select(vec![Currency::EUR, Currency::JPY, Currency::KWD]),
        ) {
            let base = d(2024, 1, 1);
            let day = |n: i64| if n >= 0 { base + chrono::Days::new(n as u64) } else { base - chrono::Days::new((-n) as u64) };
            let mut from = 0;
            let periods: Vec<RatePeriod> = rates.iter().map(|(m, s, len)| {
                let p = RatePeriod { from: day(from), to: day(from + len - 1), percent: Decimal::new(*m, *s), assumed: None };
                from += len;
                p
            }).collect();
            let amount = Decimal::new(m, scale);
            let (first, last) = (day(start), day(start + len));
            let want = rounded_interest(first, last, &[(base, amount)], &periods, cur);
            if let Some(got) = RateDays::new(first, last, &periods).and_then(|r| r.interest(amount, cur)) {
                proptest::prop_assert_eq!(got.to_string(), want.to_string());
            }
        }
    }

    proptest::proptest! {
        /// `add_to` gives what `+=` gives, in value and in form.
        #[test]
        fn add_to_is_the_decimal_addition(
            (a, sa) in (proptest::prop_oneof![-1_000_000i64..1_000_000, proptest::num::i64::ANY], 0u32..6),
            (b, sb) in (proptest::prop_oneof![-1_000_000i64..1_000_000, proptest::num::i64::ANY], 0u32..6),
            zero in proptest::bool::ANY,
        ) {
            let a = if zero { Decimal::ZERO } else { Decimal::new(a, sa) };
            let b = Decimal::new(b, sb);
            let mut want = a;
            want += b;
            let mut got = a;
            add_to(&mut got, b);
            proptest::prop_assert_eq!(got.to_string(), want.to_string());
            proptest::prop_assert_eq!(got.scale(), want.scale());
        }
    }

    #[test]
    fn add_to_cancels_like_the_decimal_addition() {
        for (a, b) in [
            (dec!(-5.00), dec!(5.00)),
            (dec!(5.00), dec!(-5.00)),
            (dec!(-0.00), dec!(0.00)),
            (Decimal::ZERO, dec!(-0.10)),
        ] {
            let mut want = a;
            want += b;
            let mut got = a;
            add_to(&mut got, b);
            assert_eq!(
                (got.to_string(), got.is_sign_negative()),
                (want.to_string(), want.is_sign_negative()),
                "{a} + {b}"
            );
        }
    }

    proptest::proptest! {
        /// The same order as the decimal library's, for any mantissas (up to 96 bits),
        /// scales, signs and zeros of either sign.
        #[test]
        fn cmp_orders_as_decimals(
            a in (proptest::num::i128::ANY, 0u32..=28),
            b in (proptest::num::i128::ANY, 0u32..=28),
            small in proptest::bool::ANY,
            negative_zero in proptest::bool::ANY,
        ) {
            let make = |(m, s): (i128, u32)| {
                let m = if small { m % 1_000_000_000 } else { m % (1i128 << 96) };
                let mut d = Decimal::from_i128_with_scale(m, s);
                if m == 0 && negative_zero {
                    d.set_sign_negative(true);
                }
                d
            };
            let (x, y) = (make(a), make(b));
            proptest::prop_assert_eq!(cmp(x, y), x.cmp(&y), "{} {}", x, y);
            proptest::prop_assert_eq!(cmp(y, x), y.cmp(&x), "{} {}", y, x);
            proptest::prop_assert_eq!(cmp(x, x), std::cmp::Ordering::Equal);
            // The same value at a larger scale (when it fits), and one unit of it away.
            let mut z = x;
            z.rescale((x.scale() + b.1 % 5).min(28));
            proptest::prop_assert_eq!(cmp(x, z), x.cmp(&z), "{} {}", x, z);
            let unit = Decimal::new(1, z.scale());
            if let Some(w) = z.checked_add(unit) {
                proptest::prop_assert_eq!(cmp(x, w), x.cmp(&w), "{} {}", x, w);
                proptest::prop_assert_eq!(cmp(w, x), w.cmp(&x), "{} {}", w, x);
            }
        }
    }

    #[test]
    fn rate_days_of_usual_amounts_fit() {
        let periods = [RatePeriod { from: d(2025, 7, 1), to: d(2026, 6, 30), percent: dec!(12.15), assumed: None }];
        let r = RateDays::new(d(2025, 8, 6), d(2026, 3, 1), &periods);
        let got = r.and_then(|r| r.interest(dec!(7732.64), Currency::EUR));
        let want =
            rounded_interest(d(2025, 8, 6), d(2026, 3, 1), &[(d(2025, 7, 1), dec!(7732.64))], &periods, Currency::EUR);
        assert_eq!(got, Some(want));
        assert_eq!(r.and_then(|r| r.interest(dec!(0), Currency::EUR)), Some(dec!(0.00)));
    }
}
