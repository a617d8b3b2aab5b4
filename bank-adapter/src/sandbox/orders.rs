//! The sandbox bank's future-dated orders: scheduled payments and standing orders set up through the unified API, one per idempotency key, listed with the account's own. The sandbox records them; it does not execute them.

use std::collections::HashMap;

use chrono::Utc;

use super::{Ledger, not_found};
use crate::connector::{
    ConnectorError, PaymentOrder, ScheduledOrder, ScheduledPayment, StandingOrder,
    StandingOrderOrder,
};

/// The orders set up so far, by id, and the idempotency keys they were set up for.
#[derive(Default)]
pub(super) struct Orders {
    scheduled: HashMap<String, ScheduledPayment>,
    standing: HashMap<String, StandingOrder>,
    /// Idempotency key -> (the order's id, the order as JSON).
    by_key: HashMap<String, (String, String)>,
}

impl Orders {
    /// The scheduled payments set up from `account`.
    pub(super) fn scheduled_from(&self, account: &str) -> Vec<ScheduledPayment> {
        let mut list: Vec<_> = self
            .scheduled
            .values()
            .filter(|s| s.account_id == account)
            .cloned()
            .collect();
        list.sort_by(|a, b| a.scheduled_payment_id.cmp(&b.scheduled_payment_id));
        list
    }

    /// The standing orders set up from `account`.
    pub(super) fn standing_from(&self, account: &str) -> Vec<StandingOrder> {
        let mut list: Vec<_> = self
            .standing
            .values()
            .filter(|s| s.account_id == account)
            .cloned()
            .collect();
        list.sort_by(|a, b| a.standing_order_id.cmp(&b.standing_order_id));
        list
    }

    pub(super) fn scheduled(&self, id: &str) -> Result<ScheduledPayment, ConnectorError> {
        self.scheduled.get(id).cloned().ok_or_else(|| not_found(id))
    }

    pub(super) fn standing(&self, id: &str) -> Result<StandingOrder, ConnectorError> {
        self.standing.get(id).cloned().ok_or_else(|| not_found(id))
    }
}

/// The id already set up for `key`, if the same order was; a conflict for another order.
fn repeat(orders: &Orders, key: &str, order_json: &str) -> Result<Option<String>, ConnectorError> {
    match orders.by_key.get(key) {
        None => Ok(None),
        Some((id, json)) if json == order_json => Ok(Some(id.clone())),
        Some(_) => Err(ConnectorError::IdempotencyConflict),
    }
}

/// The checks the sandbox makes of any order: the debtor exists, in the order's
/// currency, and the amount is positive.
pub(super) fn check(ledger: &Ledger, order: &PaymentOrder) -> Result<(), ConnectorError> {
    let debtor = ledger
        .accounts
        .get(&order.debtor_account)
        .ok_or_else(|| not_found(&order.debtor_account))?;
    let refused = |code: &str, message: String| ConnectorError::Refused {
        code: code.to_owned(),
        message,
    };
    if debtor.account.currency != order.amount.currency {
        return Err(refused(
            "currency_mismatch",
            format!("the account holds {}", debtor.account.currency),
        ));
    }
    if order.amount.minor <= 0 {
        return Err(refused(
            "invalid_amount",
            "the amount must be positive".into(),
        ));
    }
    Ok(())
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| unreachable!("plain fields"))
}

/// Schedules `scheduled` once per `key`.
pub(super) fn schedule(
    ledger: &mut Ledger,
    key: &str,
    scheduled: &ScheduledOrder,
) -> Result<ScheduledPayment, ConnectorError> {
    let json = to_json(scheduled);
    if let Some(id) = repeat(&ledger.orders, key, &json)? {
        return ledger.orders.scheduled(&id);
    }
    check(ledger, &scheduled.order)?;
    ledger.next += 1;
    let payment = scheduled.record(format!("sch-{:08}", ledger.next));
    let id = payment.scheduled_payment_id.clone();
    ledger
        .orders
        .by_key
        .insert(key.to_owned(), (id.clone(), json));
    ledger.orders.scheduled.insert(id, payment.clone());
    Ok(payment)
}

/// Sets up `standing` once per `key`.
pub(super) fn set_up(
    ledger: &mut Ledger,
    key: &str,
    standing: &StandingOrderOrder,
) -> Result<StandingOrder, ConnectorError> {
    let json = to_json(standing);
    if let Some(id) = repeat(&ledger.orders, key, &json)? {
        return ledger.orders.standing(&id);
    }
    check(ledger, &standing.order)?;
    ledger.next += 1;
    let record = standing.record(format!("sto-{:08}", ledger.next), Utc::now());
    let id = record.standing_order_id.clone();
    ledger
        .orders
        .by_key
        .insert(key.to_owned(), (id.clone(), json));
    ledger.orders.standing.insert(id, record.clone());
    Ok(record)
}
