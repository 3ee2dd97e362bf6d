//! Money arithmetic: rounding to a currency's minor unit and simple interest.
//! Amounts are [`Decimal`], never floats.

use chrono::NaiveDate;
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
    for period in periods {
        let p_from = period.from.max(first);
        let p_to = period.to.min(last);
        if p_to < p_from {
            continue;
        }
        for (i, (b_from, amount)) in balance.iter().enumerate() {
            let b_to = match balance.get(i + 1) {
                Some((next, _)) => match next.pred_opt() {
                    Some(d) => d,
                    None => continue,
                },
                None => p_to,
            };
            let from = p_from.max(*b_from);
            let to = p_to.min(b_to);
            if to < from || amount.is_zero() {
                continue;
            }
            let days = (to - from).num_days() + 1;
            total += *amount * period.percent * Decimal::from(days);
        }
    }
    total / Decimal::from(36_500)
}

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
    }
}
