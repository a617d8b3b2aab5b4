//! Future-dated payment orders as every connector receives them: a one-off payment scheduled for a date, and a standing order with its frequency, dates and amounts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Money;
use super::PaymentOrder;

/// A one-off domestic payment to be made on a later date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledOrder {
    /// What to pay, from and to whom.
    pub order: PaymentOrder,
    /// When to pay it.
    pub execution: DateTime<Utc>,
}

/// A domestic standing order: `order.amount` is the first payment's amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandingOrderOrder {
    /// The first payment, from and to whom.
    pub order: PaymentOrder,
    /// The OBIE v4.0 frequency code as the TSP sent it, e.g. `MNTH` or
    /// `IntrvlMnthDay:01:25`.
    pub frequency: String,
    /// When the first payment is made.
    pub first: DateTime<Utc>,
    /// Each later payment.
    pub recurring_amount: Money,
    /// The last payment.
    pub final_amount: Money,
    /// Every payment date, the first included (the adapter has checked each one).
    pub dates: Vec<DateTime<Utc>>,
}

impl StandingOrderOrder {
    /// Each payment: when it falls due and how much (the first amount, then the recurring
    /// one, and the final one last).
    pub fn payments(&self) -> Vec<(DateTime<Utc>, &Money)> {
        let last = self.dates.len().saturating_sub(1);
        self.dates
            .iter()
            .enumerate()
            .map(|(n, at)| {
                let amount = match n {
                    0 => &self.order.amount,
                    n if n == last => &self.final_amount,
                    _ => &self.recurring_amount,
                };
                (*at, amount)
            })
            .collect()
    }
}
