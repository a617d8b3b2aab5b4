//! One order per idempotency key and consent, of any kind (a payment now, a scheduled payment, a standing order): checked against the consent's limits and counted before the bank is asked to make it, under the ledger's one lock.

use chrono::{DateTime, Utc};
use consentnet_identity::VerifiedConsent;
use serde_json::Value;

use super::ledger::{JournalLine, Ledger, hash_of};
use super::limits::within_limits;
use crate::connector::{
    BankConnector, ConnectorError, Payment, PaymentOrder, ScheduledOrder, ScheduledPayment,
    StandingOrder, StandingOrderOrder,
};
use crate::problem::{ObCode, ObError};

/// What the ledger needs to know of an order, and how the bank makes and reads it.
pub(super) trait Order: serde::Serialize {
    /// What the bank makes of it.
    type Made;
    /// The namespace of its ids in the ledger (empty for payments made now).
    const KIND: &'static str;
    /// What it is called in errors.
    const NOUN: &'static str;
    /// Each payment it makes: when it falls due and how much, in minor units.
    fn instalments(&self, now: DateTime<Utc>) -> Vec<(DateTime<Utc>, i64)>;
    /// The currency of every payment.
    fn currency(&self) -> &str;
    /// Asks the bank to make it.
    fn make(&self, connector: &dyn BankConnector, key: &str) -> Result<Self::Made, ConnectorError>;
    /// Reads back what the bank made, by its id.
    fn read(connector: &dyn BankConnector, id: &str) -> Result<Self::Made, ConnectorError>;
    /// The bank's id of what it made.
    fn id(made: &Self::Made) -> &str;
}

/// The id under which the ledger remembers what the bank made for an order of kind `O`.
pub(super) fn ledger_id<O: Order>(id: &str) -> String {
    if O::KIND.is_empty() {
        id.to_owned()
    } else {
        format!("{}/{id}", O::KIND)
    }
}

impl Order for PaymentOrder {
    type Made = Payment;
    const KIND: &'static str = "";
    const NOUN: &'static str = "payment";
    fn instalments(&self, now: DateTime<Utc>) -> Vec<(DateTime<Utc>, i64)> {
        vec![(now, self.amount.minor)]
    }
    fn currency(&self) -> &str {
        &self.amount.currency
    }
    fn make(&self, connector: &dyn BankConnector, key: &str) -> Result<Payment, ConnectorError> {
        connector.create_payment(key, self)
    }
    fn read(connector: &dyn BankConnector, id: &str) -> Result<Payment, ConnectorError> {
        connector.payment(id)
    }
    fn id(made: &Payment) -> &str {
        &made.payment_id
    }
}

impl Order for ScheduledOrder {
    type Made = ScheduledPayment;
    const KIND: &'static str = "scheduled";
    const NOUN: &'static str = "scheduled payment";
    fn instalments(&self, _now: DateTime<Utc>) -> Vec<(DateTime<Utc>, i64)> {
        vec![(self.execution, self.order.amount.minor)]
    }
    fn currency(&self) -> &str {
        &self.order.amount.currency
    }
    fn make(
        &self,
        connector: &dyn BankConnector,
        key: &str,
    ) -> Result<ScheduledPayment, ConnectorError> {
        connector.create_scheduled_payment(key, self)
    }
    fn read(connector: &dyn BankConnector, id: &str) -> Result<ScheduledPayment, ConnectorError> {
        connector.scheduled_payment(id)
    }
    fn id(made: &ScheduledPayment) -> &str {
        &made.scheduled_payment_id
    }
}

impl Order for StandingOrderOrder {
    type Made = StandingOrder;
    const KIND: &'static str = "standing";
    const NOUN: &'static str = "standing order";
    fn instalments(&self, _now: DateTime<Utc>) -> Vec<(DateTime<Utc>, i64)> {
        self.payments()
            .into_iter()
            .map(|(at, amount)| (at, amount.minor))
            .collect()
    }
    fn currency(&self) -> &str {
        &self.order.amount.currency
    }
    fn make(
        &self,
        connector: &dyn BankConnector,
        key: &str,
    ) -> Result<StandingOrder, ConnectorError> {
        connector.create_standing_order(key, self)
    }
    fn read(connector: &dyn BankConnector, id: &str) -> Result<StandingOrder, ConnectorError> {
        connector.standing_order(id)
    }
    fn id(made: &StandingOrder) -> &str {
        &made.standing_order_id
    }
}

/// Checks, counts and makes `order` under `key`: a repeat of a counted order is answered
/// (from what the bank made, never made twice), the same key with another order is a
/// conflict. Answers what the bank made and the initiation remembered for it
/// (`initiation` of what was made, for a new order).
pub(super) fn once<O: Order>(
    ledger: &Ledger,
    connector: &dyn BankConnector,
    consent: &VerifiedConsent,
    key: &str,
    order: &O,
    initiation: impl FnOnce(&O::Made) -> Value,
) -> Result<(O::Made, Value), ObError> {
    let mut state = consentnet_identity::util::lock(&ledger.inner);
    let now = Utc::now();
    let scoped_key = format!("{}/{key}", consent.id);
    let order_hash = hash_of(order);
    let repeat = match state.counted.get(&scoped_key) {
        None => false,
        Some(Some(counted)) if *counted != order_hash => {
            return Err(ObError::new(
                ObCode::IdempotencyConflict,
                "this x-idempotency-key was used for another order under this consent",
            ));
        }
        Some(_) => true,
    };
    if let Some(made) = state.made.get(&scoped_key).cloned() {
        let id = made.strip_prefix(&ledger_id::<O>("")).unwrap_or(&made);
        let existing = O::read(connector, id)?;
        let remembered = match state.owner.get(&made) {
            Some((_, initiation)) => initiation.clone(),
            None => initiation(&existing),
        };
        return Ok((existing, remembered));
    }
    let unavailable = |e: std::io::Error| ObError::new(ObCode::LedgerUnavailable, e.to_string());
    if !repeat {
        let paid: Vec<(DateTime<Utc>, i64)> = state
            .paid
            .get(&consent.id)
            .map(|p| p.iter().map(|(at, minor, _)| (*at, *minor)).collect())
            .unwrap_or_default();
        let instalments = order.instalments(now);
        within_limits(consent, &paid, &instalments, order.currency())?;
        let Some(&(at, minor)) = instalments.first() else {
            return Err(ObError::new(
                ObCode::InvalidInitiation,
                "the order makes no payment",
            ));
        };
        // Counted before the bank is asked: a crash in between over-counts, never under.
        state
            .record(JournalLine::Count {
                key: scoped_key.clone(),
                consent: consent.id,
                at,
                minor,
                order: Some(order_hash),
                later: instalments[1..].to_vec(),
            })
            .map_err(unavailable)?;
    }
    let made = match order.make(connector, &scoped_key) {
        Ok(made) => made,
        Err(error) => {
            if !repeat {
                state
                    .record(JournalLine::Cancel {
                        key: scoped_key,
                        consent: consent.id,
                    })
                    .map_err(unavailable)?;
            }
            return Err(error.into());
        }
    };
    let id = ledger_id::<O>(O::id(&made));
    let remembered = match state.owner.get(&id) {
        Some((_, remembered)) => remembered.clone(),
        None => {
            let remembered = initiation(&made);
            state
                .record(JournalLine::Paid {
                    payment_id: id,
                    consent: consent.id,
                    initiation: remembered.clone(),
                    key: Some(scoped_key),
                })
                .map_err(unavailable)?;
            remembered
        }
    };
    Ok((made, remembered))
}

/// What the ledger remembers of the order of kind `O` the bank made as `id`, when it was
/// made under `consent`; otherwise `400 resource_not_found`, as for an id never made.
pub(super) fn remembered<O: Order>(
    ledger: &Ledger,
    consent: &VerifiedConsent,
    id: &str,
) -> Result<Value, ObError> {
    let state = consentnet_identity::util::lock(&ledger.inner);
    match state.owner.get(&ledger_id::<O>(id)) {
        Some((owner, remembered)) if *owner == consent.id => Ok(remembered.clone()),
        _ => Err(ObError::new(
            ObCode::ResourceNotFound,
            format!("no {} {id} under this consent", O::NOUN),
        )),
    }
}

/// The consent an order's answers name and its initiation, from what the ledger keeps:
/// `{"Initiation", "ConsentId", ...}`, or (journals written before orders named their
/// consent) the initiation alone, named by the consent's id.
pub(super) fn kept_parts(kept: &Value, consent: &VerifiedConsent) -> (String, Value) {
    match kept.get("Initiation") {
        Some(initiation) => (
            kept["ConsentId"]
                .as_str()
                .map_or_else(|| consent.id.to_string(), str::to_owned),
            initiation.clone(),
        ),
        None => (consent.id.to_string(), kept.clone()),
    }
}
