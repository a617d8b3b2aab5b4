//! A standing order's payment dates, from its OBIE v4.0 frequency, first date and end (a number of payments or a final date): the schedule every instalment is counted on.

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Utc};

/// The most payments one standing order may schedule (three years of daily payments).
pub const MAX_PAYMENTS: usize = 1_100;

/// How often a standing order pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frequency {
    /// Every `n` days (`DAIL`, `EvryDay`, `IntrvlDay:NN`, `WEEK`, `FRTN`).
    Days(u32),
    /// Every `weeks` weeks on `weekday` (1 = Monday; `IntrvlWkDay:WW:DD`).
    Weekday {
        /// Weeks between payments.
        weeks: u32,
        /// The day of the week, 1 (Monday) to 7.
        weekday: u32,
    },
    /// Every `months` months on the first payment's day of the month (`MNTH`, `QURT`,
    /// `MIAN`, `YEAR`).
    Months(u32),
    /// Every `months` months on `day` (negative counts from the month's end;
    /// `IntrvlMnthDay:MM:DD`).
    MonthDay {
        /// Months between payments.
        months: u32,
        /// The day of the month; -1 is the last.
        day: i32,
    },
}

/// The frequencies offered, for error messages.
pub const OFFERED: &str = "DAIL, WEEK, FRTN, MNTH, QURT, MIAN, YEAR, EvryDay, IntrvlDay:NN, IntrvlWkDay:WW:DD, IntrvlMnthDay:MM:DD";

impl Frequency {
    /// Reads an OBIE v4.0 frequency code or pattern; `None` for one not offered
    /// (ad hoc, intraday, working-day, week-in-month and quarter-day schedules).
    pub fn parse(code: &str) -> Option<Self> {
        let number = |text: &str, range: std::ops::RangeInclusive<i32>| {
            (text.len() == 2 || (text.len() == 3 && text.starts_with('-')))
                .then(|| text.parse::<i32>().ok())
                .flatten()
                .filter(|n| range.contains(n))
        };
        let parts: Vec<&str> = code.split(':').collect();
        match parts.as_slice() {
            ["DAIL"] | ["EvryDay"] => Some(Self::Days(1)),
            ["WEEK"] => Some(Self::Days(7)),
            ["FRTN"] => Some(Self::Days(14)),
            ["MNTH"] => Some(Self::Months(1)),
            ["QURT"] => Some(Self::Months(3)),
            ["MIAN"] => Some(Self::Months(6)),
            ["YEAR"] => Some(Self::Months(12)),
            ["IntrvlDay", days] => number(days, 2..=31).map(|d| Self::Days(d as u32)),
            ["IntrvlWkDay", weeks, day] => Some(Self::Weekday {
                weeks: number(weeks, 1..=9)? as u32,
                weekday: number(day, 1..=7)? as u32,
            }),
            ["IntrvlMnthDay", months, day] => {
                let months = number(months, 1..=24).filter(|m| *m <= 6 || *m == 12 || *m == 24)?;
                let day = number(day, -5..=31).filter(|d| *d != 0)?;
                Some(Self::MonthDay {
                    months: months as u32,
                    day,
                })
            }
            _ => None,
        }
    }

    /// The first date on or after `from` this frequency pays on.
    fn align(self, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Days(_) | Self::Months(_) => Some(from),
            Self::Weekday { weekday, .. } => {
                let today = from.weekday().number_from_monday();
                let ahead = (weekday + 7 - today) % 7;
                from.checked_add_signed(Duration::days(i64::from(ahead)))
            }
            Self::MonthDay { day, .. } => {
                let this = on_day(from, day)?;
                if this >= from {
                    Some(this)
                } else {
                    on_day(from.checked_add_months(Months::new(1))?, day)
                }
            }
        }
    }

    /// The `n`th date after `start` (an aligned date).
    fn step(self, start: DateTime<Utc>, n: u32) -> Option<DateTime<Utc>> {
        match self {
            Self::Days(days) => {
                start.checked_add_signed(Duration::days(i64::from(days.checked_mul(n)?)))
            }
            Self::Weekday { weeks, .. } => start.checked_add_signed(Duration::days(i64::from(
                weeks.checked_mul(7)?.checked_mul(n)?,
            ))),
            Self::Months(months) => start.checked_add_months(Months::new(months.checked_mul(n)?)),
            Self::MonthDay { months, day } => on_day(
                start.checked_add_months(Months::new(months.checked_mul(n)?))?,
                day,
            ),
        }
    }
}

/// `at`'s month on `day` (negative: from the end, -1 the last day), at `at`'s time; a
/// day past the month's end is its last day.
fn on_day(at: DateTime<Utc>, day: i32) -> Option<DateTime<Utc>> {
    let first = NaiveDate::from_ymd_opt(at.year(), at.month(), 1)?;
    let last = first.checked_add_months(Months::new(1))?.pred_opt()?.day() as i32;
    let day = if day < 0 {
        last + 1 + day
    } else {
        day.min(last)
    };
    let date = NaiveDate::from_ymd_opt(at.year(), at.month(), u32::try_from(day).ok()?)?;
    Some(date.and_time(at.time()).and_utc())
}

/// How a standing order ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// After this many payments, the first included.
    Count(usize),
    /// With the last payment on or before this time.
    Until(DateTime<Utc>),
}

/// Why a schedule cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// More payments than [`MAX_PAYMENTS`], or dates past the calendar's end.
    #[error("the schedule makes more than {MAX_PAYMENTS} payments")]
    TooLong,
    /// No payment at all.
    #[error("the schedule makes no payment")]
    Empty,
}

/// Every payment date: `first`, then the frequency's dates from `recurring` (or from the
/// step after `first`), until `end`.
pub fn dates(
    frequency: Frequency,
    first: DateTime<Utc>,
    recurring: Option<DateTime<Utc>>,
    end: End,
) -> Result<Vec<DateTime<Utc>>, ScheduleError> {
    let within = |at: &DateTime<Utc>, count: usize| match end {
        End::Count(n) => count < n,
        End::Until(last) => *at <= last,
    };
    if !within(&first, 0) {
        return Err(ScheduleError::Empty);
    }
    let mut dates = vec![first];
    let start = match recurring {
        Some(at) => frequency.align(at),
        None => frequency.align(first).and_then(|a| {
            if a > first {
                Some(a)
            } else {
                frequency.step(a, 1)
            }
        }),
    }
    .ok_or(ScheduleError::TooLong)?;
    for n in 0.. {
        let at = frequency.step(start, n).ok_or(ScheduleError::TooLong)?;
        if !within(&at, dates.len()) {
            break;
        }
        if dates.len() == MAX_PAYMENTS {
            return Err(ScheduleError::TooLong);
        }
        dates.push(at);
    }
    Ok(dates)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 9, 0, 0).unwrap()
    }

    #[test]
    fn codes_and_patterns_read_as_the_obie_definitions_say() {
        assert_eq!(Frequency::parse("MNTH"), Some(Frequency::Months(1)));
        assert_eq!(Frequency::parse("IntrvlDay:10"), Some(Frequency::Days(10)));
        assert_eq!(
            Frequency::parse("IntrvlMnthDay:01:-01"),
            Some(Frequency::MonthDay { months: 1, day: -1 })
        );
        for refused in [
            "ADHO",
            "EvryWorkgDay",
            "IntrvlDay:01",
            "IntrvlMnthDay:07:01",
            "QtrDay:ENGLISH",
            "IntrvlWkDay:01:08",
            "",
        ] {
            assert_eq!(Frequency::parse(refused), None, "{refused}");
        }
    }

    #[test]
    fn a_monthly_order_on_the_last_day_follows_each_month_end() {
        let frequency = Frequency::parse("IntrvlMnthDay:01:-01").unwrap();
        let got = dates(frequency, at(2027, 1, 15), None, End::Count(4)).unwrap();
        assert_eq!(
            got,
            vec![
                at(2027, 1, 15),
                at(2027, 1, 31),
                at(2027, 2, 28),
                at(2027, 3, 31)
            ]
        );
    }

    #[test]
    fn a_weekly_order_pays_on_its_weekday_until_the_final_date() {
        // 2027-01-04 is a Monday; pay every second Friday.
        let frequency = Frequency::parse("IntrvlWkDay:02:05").unwrap();
        let got = dates(frequency, at(2027, 1, 4), None, End::Until(at(2027, 2, 5))).unwrap();
        assert_eq!(
            got,
            vec![
                at(2027, 1, 4),
                at(2027, 1, 8),
                at(2027, 1, 22),
                at(2027, 2, 5)
            ]
        );
        let monthly = dates(
            Frequency::Months(1),
            at(2027, 1, 31),
            Some(at(2027, 3, 1)),
            End::Count(3),
        )
        .unwrap();
        assert_eq!(
            monthly,
            vec![at(2027, 1, 31), at(2027, 3, 1), at(2027, 4, 1)]
        );
    }

    #[test]
    fn a_schedule_is_bounded() {
        let daily = Frequency::Days(1);
        assert_eq!(
            dates(daily, at(2027, 1, 1), None, End::Until(at(2031, 1, 1))),
            Err(ScheduleError::TooLong)
        );
        assert_eq!(
            dates(daily, at(2027, 1, 1), None, End::Count(MAX_PAYMENTS))
                .unwrap()
                .len(),
            MAX_PAYMENTS
        );
        assert_eq!(
            dates(daily, at(2027, 1, 2), None, End::Until(at(2027, 1, 1))),
            Err(ScheduleError::Empty)
        );
    }
}
