//! Future-dated payment orders as every connector receives them: a one-off payment scheduled for a date, and a standing order with its frequency, dates and amounts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Money;
use super::PaymentOrder;
use super::resources::{Counterparty, ScheduledPayment, StandingOrder};

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

impl PaymentOrder {
    /// Whom the order pays.
    pub fn creditor(&self) -> Counterparty {
        Counterparty {
            scheme_name: self.creditor_scheme.clone(),
            identification: self.creditor_identification.clone(),
            name: self.creditor_name.clone(),
        }
    }
}

impl ScheduledOrder {
    /// The scheduled payment a core makes of it, as `id`.
    pub fn record(&self, id: String) -> ScheduledPayment {
        ScheduledPayment {
            scheduled_payment_id: id,
            account_id: self.order.debtor_account.clone(),
            execution: self.execution,
            amount: self.order.amount.clone(),
            reference: self.order.reference.clone(),
            creditor: self.order.creditor(),
        }
    }
}

impl StandingOrderOrder {
    /// The active standing order a core sets up of it, as `id`, seen at `now`.
    pub fn record(&self, id: String, now: DateTime<Utc>) -> StandingOrder {
        StandingOrder {
            standing_order_id: id,
            account_id: self.order.debtor_account.clone(),
            frequency: self.frequency.clone(),
            reference: self.order.reference.clone(),
            first_payment: self.first,
            next_payment: self.dates.iter().find(|at| **at >= now).copied(),
            amount: self.recurring_amount.clone(),
            active: true,
            creditor: self.order.creditor(),
        }
    }
}
