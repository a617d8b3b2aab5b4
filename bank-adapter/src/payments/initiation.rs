//! A payment's initiation: the order an OBIE `Data.Initiation` describes, checked field by field, and the consent `Data.ConsentId` names (the one in `Authorization`, or a payment consent resource authorised into it whose initiation the payment repeats).

use std::sync::Arc;

use consentnet_identity::VerifiedConsent;
use serde_json::Value;

use super::WriteData;
use crate::connector::{Money, PaymentOrder};
use crate::problem::{ObCode, ObError};

/// `Data.ConsentId` names the consent in `Authorization`, or the payment consent resource
/// authorised into it, whose initiation the payment must repeat exactly.
pub(super) fn named_consent(
    resources: &Option<Arc<dyn crate::api::ConsentResources>>,
    consent: &VerifiedConsent,
    data: &WriteData,
) -> Result<(), ObError> {
    if data.consent_id == consent.id.to_string() {
        return Ok(());
    }
    let resource = resources
        .as_ref()
        .and_then(|r| r.payment_resource(&consent.terms.app, &data.consent_id));
    match resource {
        Some((authorised, initiation)) if authorised == consent.id => {
            if initiation == data.initiation {
                Ok(())
            } else {
                Err(ObError::new(
                    ObCode::InvalidInitiation,
                    "Data.Initiation differs from the payment consent's initiation",
                ))
            }
        }
        _ => Err(ObError::new(
            ObCode::ConsentIdMismatch,
            "Data.ConsentId is neither the consent in Authorization nor a payment consent authorised into it",
        )),
    }
}

/// Checks an OBIE domestic payment initiation as a payment would be: its amount.
pub fn initiation_amount(initiation: &Value) -> Result<Money, ObError> {
    let debtor = initiation["DebtorAccount"]["Identification"]
        .as_str()
        .unwrap_or("unnamed");
    order(initiation, debtor).map(|o| o.amount)
}

fn bad(what: &str) -> ObError {
    ObError::new(ObCode::InvalidInitiation, format!("Data.Initiation.{what}"))
}

fn text(value: &Value, what: &str) -> Result<String, ObError> {
    value
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| bad(what))
}

/// The order an OBIE initiation describes, paid from `debtor`.
pub(super) fn order(initiation: &Value, debtor: &str) -> Result<PaymentOrder, ObError> {
    for field in ["InstructionIdentification", "EndToEndIdentification"] {
        let id = text(&initiation[field], field)?;
        if id.chars().count() > 35 {
            return Err(bad(field));
        }
    }
    let amount = amount(initiation, "InstructedAmount")?;
    order_for(initiation, debtor, amount)
}

/// The positive amount in `field` (e.g. `InstructedAmount`) of an initiation.
pub(super) fn amount(initiation: &Value, field: &str) -> Result<Money, ObError> {
    let amount = &initiation[field];
    Money::parse(
        &text(&amount["Amount"], &format!("{field}.Amount"))?,
        &text(&amount["Currency"], &format!("{field}.Currency"))?,
    )
    .filter(|m| m.minor > 0)
    .ok_or_else(|| {
        bad(&format!(
            "{field}: a positive decimal amount and an ISO 4217 currency"
        ))
    })
}

/// An order of `amount` from `debtor` to the initiation's creditor.
pub(super) fn order_for(
    initiation: &Value,
    debtor: &str,
    amount: Money,
) -> Result<PaymentOrder, ObError> {
    let creditor = &initiation["CreditorAccount"];
    let reference = initiation["RemittanceInformation"]["Unstructured"][0]
        .as_str()
        .unwrap_or("")
        .chars()
        .take(140)
        .collect();
    Ok(PaymentOrder {
        debtor_account: debtor.to_owned(),
        creditor_scheme: text(&creditor["SchemeName"], "CreditorAccount.SchemeName")?,
        creditor_identification: text(
            &creditor["Identification"],
            "CreditorAccount.Identification",
        )?,
        creditor_name: text(&creditor["Name"], "CreditorAccount.Name")?,
        amount,
        reference,
    })
}
