//! A consent's payment limits applied to what this bank has counted: each new payment, or each instalment of a future-dated order, within the per-payment cap and within the cap of the calendar period it falls due in.

use chrono::{DateTime, Datelike, Months, Utc};
use consentnet_identity::{Period, VerifiedConsent};

use crate::connector::Money;
use crate::problem::{ObCode, ObError};

/// The start of the calendar `period` that `at` falls in.
pub(super) fn period_start(period: Period, at: DateTime<Utc>) -> DateTime<Utc> {
    let date = at.date_naive();
    let start = match period {
        Period::Day => date,
        Period::Week => {
            date - chrono::Duration::days(i64::from(date.weekday().num_days_from_monday()))
        }
        Period::Month => date.with_day(1).unwrap_or(date),
        Period::Year => date.with_ordinal(1).unwrap_or(date),
    };
    start.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// The start of the period after the one starting at `start`.
fn period_end(period: Period, start: DateTime<Utc>) -> DateTime<Utc> {
    let end = match period {
        Period::Day => start.checked_add_signed(chrono::Duration::days(1)),
        Period::Week => start.checked_add_signed(chrono::Duration::days(7)),
        Period::Month => start.checked_add_months(Months::new(1)),
        Period::Year => start.checked_add_months(Months::new(12)),
    };
    end.unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The consent's limits, given what was counted (`paid`: when, minor units), allow the
/// new payments `new` (when each falls due, minor units) in `currency`.
pub(super) fn within_limits(
    consent: &VerifiedConsent,
    paid: &[(DateTime<Utc>, i64)],
    new: &[(DateTime<Utc>, i64)],
    currency: &str,
) -> Result<(), ObError> {
    let limits = consent.terms.payment_limits.as_ref().ok_or_else(|| {
        ObError::new(
            ObCode::NoPaymentLimits,
            "the consent carries no payment limits",
        )
    })?;
    let refuse = |why: String| ObError::new(ObCode::PaymentLimitExceeded, why);
    if limits.currency != currency {
        return Err(refuse(format!(
            "the consent allows payments in {} only",
            limits.currency
        )));
    }
    let cap = |text: &str| Money::parse(text, &limits.currency).map_or(0, |m| m.minor);
    if new
        .iter()
        .any(|(_, minor)| *minor > cap(&limits.max_per_payment))
    {
        return Err(refuse(format!(
            "more than {} in one payment",
            limits.max_per_payment
        )));
    }
    let (Some(max), Some(period)) = (&limits.max_per_period, limits.period) else {
        return Ok(());
    };
    for (due, _) in new {
        let start = period_start(period, *due);
        let end = period_end(period, start);
        let within = |at: &DateTime<Utc>| *at >= start && *at < end;
        let total = paid
            .iter()
            .chain(new)
            .filter(|(at, _)| within(at))
            .try_fold(0i64, |sum, (_, minor)| sum.checked_add(*minor));
        if total.is_none_or(|total| total > cap(max)) {
            return Err(refuse(format!(
                "more than {max} in the {period:?} from {}",
                start.date_naive()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_month_ends_where_the_next_begins_even_in_february() {
        let jan = Utc.with_ymd_and_hms(2027, 1, 31, 12, 0, 0).unwrap();
        let start = period_start(Period::Month, jan);
        assert_eq!(start, Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
        assert_eq!(
            period_end(Period::Month, start),
            Utc.with_ymd_and_hms(2027, 2, 1, 0, 0, 0).unwrap()
        );
        let week = period_start(Period::Week, jan);
        assert_eq!(week, Utc.with_ymd_and_hms(2027, 1, 25, 0, 0, 0).unwrap());
    }
}
