//! The OBIE v4.0 bodies of the account information resources beyond accounts, balances and transactions: beneficiaries, direct debits, standing orders, scheduled payments, statements, parties and products, Basic or Detail.

use serde_json::{Value, json};

use crate::api::{amount, indicator, time};
use crate::connector::{
    Beneficiary, Counterparty, DirectDebit, Party, Product, ScheduledPayment, StandingOrder,
    Statement,
};

/// OBIE's product types; any other is `Other` with its name.
const PRODUCT_TYPES: [&str; 5] = [
    "BusinessCurrentAccount",
    "CommercialCreditCard",
    "Other",
    "PersonalCurrentAccount",
    "SMELoan",
];

/// Text cut to `max` characters, as the schema bounds it.
fn bounded(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

fn creditor(counterparty: &Counterparty) -> Value {
    json!({
        "SchemeName": counterparty.scheme_name,
        "Identification": counterparty.identification,
        "Name": bounded(&counterparty.name, 350),
    })
}

/// A beneficiary; its account only with a Detail permission.
pub fn beneficiary(beneficiary: &Beneficiary, detail: bool) -> Value {
    let mut body = json!({
        "AccountId": beneficiary.account_id,
        "BeneficiaryId": beneficiary.beneficiary_id,
        "BeneficiaryType": "Ordinary",
    });
    if !beneficiary.reference.is_empty() {
        body["Reference"] = json!(bounded(&beneficiary.reference, 35));
    }
    if detail {
        body["CreditorAccount"] = creditor(&beneficiary.creditor);
    }
    body
}

/// A direct debit mandate.
pub fn direct_debit(debit: &DirectDebit) -> Value {
    let mut body = json!({
        "AccountId": debit.account_id,
        "DirectDebitId": debit.direct_debit_id,
        "DirectDebitStatusCode": if debit.active { "ACTV" } else { "CANC" },
        "MandateRelatedInformation": {
            "MandateIdentification": bounded(&debit.mandate_id, 35),
            "Frequency": { "Type": "MNTH" },
        },
        "Name": bounded(&debit.name, 70),
    });
    if let Some((paid, at)) = &debit.previous_payment {
        body["PreviousPaymentDateTime"] = json!(time(at));
        body["PreviousPaymentAmount"] = amount(paid);
    }
    body
}

/// A standing order; its creditor's account only with a Detail permission.
pub fn standing_order(order: &StandingOrder, detail: bool) -> Value {
    let mut body = json!({
        "AccountId": order.account_id,
        "StandingOrderId": order.standing_order_id,
        "StandingOrderStatusCode": if order.active { "ACTV" } else { "CANC" },
        "FirstPaymentAmount": amount(&order.amount),
        "MandateRelatedInformation": {
            "Frequency": { "Type": order.frequency },
            "FirstPaymentDateTime": time(&order.first_payment),
        },
    });
    // The schema wants a reference of at least one character, or none.
    if !order.reference.is_empty() {
        body["RemittanceInformation"] = json!({ "Unstructured": [bounded(&order.reference, 140)] });
    }
    if let Some(next) = &order.next_payment {
        body["NextPaymentDateTime"] = json!(time(next));
        body["NextPaymentAmount"] = amount(&order.amount);
    }
    if detail {
        body["CreditorAccount"] = creditor(&order.creditor);
    }
    body
}

/// A scheduled payment; its creditor's account only with a Detail permission.
pub fn scheduled_payment(payment: &ScheduledPayment, detail: bool) -> Value {
    let mut body = json!({
        "AccountId": payment.account_id,
        "ScheduledPaymentId": payment.scheduled_payment_id,
        "ScheduledPaymentDateTime": time(&payment.execution),
        "ScheduledType": "Execution",
        "InstructedAmount": amount(&payment.amount),
    });
    if !payment.reference.is_empty() {
        body["Reference"] = json!(bounded(&payment.reference, 35));
    }
    if detail {
        body["CreditorAccount"] = creditor(&payment.creditor);
    }
    body
}

/// A statement; its amounts only with a Detail permission.
pub fn statement(statement: &Statement, detail: bool) -> Value {
    let mut body = json!({
        "AccountId": statement.account_id,
        "StatementId": statement.statement_id,
        "Type": "RegularPeriodic",
        "StartDateTime": time(&statement.start),
        "EndDateTime": time(&statement.end),
        "CreationDateTime": time(&statement.created),
    });
    if detail && let Some((balance, direction)) = &statement.closing_balance {
        body["StatementAmount"] = json!([{
            "CreditDebitIndicator": indicator(*direction),
            "Type": "UK.OBIE.ClosingBalance",
            "Amount": amount(balance),
        }]);
    }
    body
}

/// A party.
pub fn party(party: &Party) -> Value {
    json!({
        "PartyId": party.party_id,
        "PartyType": party.party_type,
        "Name": bounded(&party.name, 350),
        "AccountRole": party.account_role,
    })
}

/// A product; a type OBIE does not list is `Other`, named.
pub fn product(product: &Product) -> Value {
    let mut body = json!({
        "AccountId": product.account_id,
        "ProductId": product.product_id,
        "ProductName": bounded(&product.name, 350),
        "ProductType": product.product_type,
    });
    if !PRODUCT_TYPES.contains(&product.product_type.as_str()) {
        body["ProductType"] = json!("Other");
        body["OtherProductType"] = json!({
            "Name": bounded(&product.product_type, 350),
            "Description": bounded(&product.name, 350),
        });
    }
    body
}
