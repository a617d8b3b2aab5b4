//! The three kinds of OBIE payment consent resource (a domestic payment, a scheduled payment, a standing order): where each lives, the fields its request may hold, the permission it asks, and the consent terms it is authorised into.

use chrono::{DateTime, Duration, Utc};
use consentnet_bank_adapter::payments::{initiation_amount, scheduled_order, standing_order};
use consentnet_bank_adapter::{ObCode, ObError};
use consentnet_identity::Permission;
use consentnet_identity::consent::{PaymentLimits, Period};
use serde_json::Value;

use super::MAX_VALIDITY_DAYS;

/// A kind of payment consent resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentKind {
    /// `/domestic-payment-consents`: one payment now.
    Now,
    /// `/domestic-scheduled-payment-consents`: one payment on a later date.
    Scheduled,
    /// `/domestic-standing-order-consents`: a standing order.
    Standing,
}

/// What a payment consent resource is authorised into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentAsk {
    /// The limits: exactly what the initiation pays.
    pub limits: PaymentLimits,
    /// For the consent screen.
    pub purpose: String,
}

/// The debtor an initiation names, or a stand-in until the client chooses one.
fn debtor(initiation: &Value) -> &str {
    initiation["DebtorAccount"]["Identification"]
        .as_str()
        .unwrap_or("unnamed")
}

fn creditor(initiation: &Value) -> &str {
    initiation["CreditorAccount"]["Name"]
        .as_str()
        .unwrap_or("the payee")
}

impl PaymentKind {
    /// The resource's path in the official payment initiation file.
    pub fn path(self) -> &'static str {
        match self {
            PaymentKind::Now => "/domestic-payment-consents",
            PaymentKind::Scheduled => "/domestic-scheduled-payment-consents",
            PaymentKind::Standing => "/domestic-standing-order-consents",
        }
    }

    /// The prefix of its resources' ids.
    pub fn prefix(self) -> &'static str {
        match self {
            PaymentKind::Now => "dpc",
            PaymentKind::Scheduled => "dspc",
            PaymentKind::Standing => "dsoc",
        }
    }

    /// The permission its consent grants.
    pub fn permission(self) -> Permission {
        match self {
            PaymentKind::Now => Permission::CreateDomesticPayments,
            PaymentKind::Scheduled => Permission::CreateDomesticScheduledPayments,
            PaymentKind::Standing => Permission::CreateDomesticStandingOrders,
        }
    }

    /// The kind whose consent grants `permission`.
    pub fn of(permission: Permission) -> Option<Self> {
        [Self::Now, Self::Scheduled, Self::Standing]
            .into_iter()
            .find(|kind| kind.permission() == permission)
    }

    /// The `Data` fields its request may hold.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            PaymentKind::Now => &[
                "Initiation",
                "Authorisation",
                "SCASupportData",
                "ReadRefundAccount",
            ],
            PaymentKind::Scheduled | PaymentKind::Standing => &[
                "Permission",
                "Initiation",
                "Authorisation",
                "SCASupportData",
                "ReadRefundAccount",
            ],
        }
    }

    /// Checks `initiation` as the payment will be; answers when the consent must end (the
    /// day after the last payment falls due), if the kind is future-dated.
    pub fn check(
        self,
        initiation: &Value,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, ObError> {
        let last = match self {
            PaymentKind::Now => {
                initiation_amount(initiation)?;
                return Ok(None);
            }
            PaymentKind::Scheduled => scheduled_order(initiation, debtor(initiation))?.execution,
            PaymentKind::Standing => {
                let order = standing_order(initiation, debtor(initiation))?;
                order.dates.last().copied().unwrap_or(order.first)
            }
        };
        let until = last + Duration::days(1);
        if until > now + Duration::days(MAX_VALIDITY_DAYS) {
            return Err(ObError::new(
                ObCode::InvalidInitiation,
                format!(
                    "Data.Initiation: the last payment falls due more than {MAX_VALIDITY_DAYS} days away, past the longest consent"
                ),
            ));
        }
        Ok(Some(until))
    }

    /// The consent terms `initiation` is authorised into: one payment (now or on its
    /// date) is exactly its amount once a year; a standing order is its largest payment
    /// each time and its total in any year.
    pub fn ask(self, initiation: &Value) -> Result<PaymentAsk, ObError> {
        let (largest, total, purpose) = match self {
            PaymentKind::Now | PaymentKind::Scheduled => {
                let amount = initiation_amount(initiation)?;
                let when = match self {
                    PaymentKind::Scheduled => format!(
                        " on {}",
                        initiation["RequestedExecutionDateTime"]
                            .as_str()
                            .unwrap_or("its date")
                    ),
                    _ => String::new(),
                };
                let purpose = format!(
                    "Pay {} {} to {}{when}",
                    amount.decimal(),
                    amount.currency,
                    creditor(initiation)
                );
                (amount.clone(), amount, purpose)
            }
            PaymentKind::Standing => {
                let order = standing_order(initiation, debtor(initiation))?;
                let amounts = [
                    &order.order.amount,
                    &order.recurring_amount,
                    &order.final_amount,
                ];
                let largest = amounts.iter().map(|m| m.minor).max().unwrap_or(0);
                let total = order
                    .payments()
                    .iter()
                    .map(|(_, amount)| amount.minor)
                    .try_fold(0i64, i64::checked_add)
                    .ok_or_else(|| {
                        ObError::new(
                            ObCode::InvalidInitiation,
                            "Data.Initiation: amounts overflow",
                        )
                    })?;
                let money = |minor| consentnet_bank_adapter::connector::Money {
                    minor,
                    currency: order.order.amount.currency.clone(),
                };
                let purpose = format!(
                    "Standing order to {}: {} payments ({}) from {}, {} {} in all",
                    creditor(initiation),
                    order.dates.len(),
                    order.frequency,
                    order.first.date_naive(),
                    money(total).decimal(),
                    order.order.amount.currency
                );
                (money(largest), money(total), purpose)
            }
        };
        Ok(PaymentAsk {
            limits: PaymentLimits {
                currency: largest.currency.clone(),
                max_per_payment: largest.decimal(),
                max_per_period: Some(total.decimal()),
                period: Some(Period::Year),
            },
            purpose,
        })
    }
}
