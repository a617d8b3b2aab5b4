//! The legacy simulator's standing arrangements and documents, in its own shapes: standing orders, direct debits, payees, scheduled payments, statements, the holder and the product, each at `/api/legacy/acct/<thing>?no=`.

use axum::Json;
use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::legacy::{LEGACY_TIME, LegacyQuery, authorized};
use super::{Bank, failure, refuse};
use crate::connector::{
    BankConnector, ConnectorError, Counterparty, CreditDebit, ScheduledPayment, StandingOrder,
};
use crate::sandbox::SandboxBank;

type Records = fn(&SandboxBank, &str) -> Result<Value, ConnectorError>;

fn payee(counterparty: &Counterparty) -> Value {
    json!({
        "TO_SCHEME": counterparty.scheme_name,
        "TO_NO": counterparty.identification,
        "TO_NAME": counterparty.name.to_uppercase(),
    })
}

/// `row` with the payee's fields added.
fn with_payee(mut row: Value, counterparty: &Counterparty) -> Value {
    if let (Some(row), Value::Object(payee)) = (row.as_object_mut(), payee(counterparty)) {
        row.extend(payee);
    }
    row
}

/// A standing order in this core's shape.
pub(super) fn standing_row(o: &StandingOrder) -> Value {
    let row = json!({
        "SO_REF": o.standing_order_id,
        "FROM": o.account_id,
        "EVERY": if o.frequency == "MNTH" { "MONTH" } else { "WEEK" },
        "PENCE": o.amount.minor,
        "CCY": o.amount.currency,
        "FIRST": o.first_payment.format(LEGACY_TIME).to_string(),
        "NEXT": o.next_payment.map(|t| t.format(LEGACY_TIME).to_string()),
        "REF": o.reference,
        "LIVE": if o.active { "Y" } else { "N" },
    });
    with_payee(row, &o.creditor)
}

/// A scheduled payment in this core's shape.
pub(super) fn scheduled_row(p: &ScheduledPayment) -> Value {
    let row = json!({
        "SCHED_REF": p.scheduled_payment_id,
        "FROM": p.account_id,
        "ON": p.execution.format(LEGACY_TIME).to_string(),
        "PENCE": p.amount.minor,
        "CCY": p.amount.currency,
        "REF": p.reference,
    });
    with_payee(row, &p.creditor)
}

const THINGS: [(&str, Records); 7] = [
    ("so", |bank, no| {
        let rows: Vec<Value> = bank.standing_orders(no)?.iter().map(standing_row).collect();
        Ok(json!({ "SOS": rows }))
    }),
    ("dd", |bank, no| {
        let rows: Vec<Value> = bank
            .direct_debits(no)?
            .iter()
            .map(|d| {
                json!({
                    "DD_REF": d.direct_debit_id,
                    "MANDATE": d.mandate_id,
                    "ORIGINATOR": d.name.to_uppercase(),
                    "LIVE": if d.active { "Y" } else { "N" },
                    "LAST_PENCE": d.previous_payment.as_ref().map(|(m, _)| m.minor),
                    "LAST_CCY": d.previous_payment.as_ref().map(|(m, _)| m.currency.clone()),
                    "LAST_AT": d.previous_payment.as_ref().map(|(_, t)| t.format(LEGACY_TIME).to_string()),
                })
            })
            .collect();
        Ok(json!({ "DDS": rows }))
    }),
    ("payees", |bank, no| {
        let rows: Vec<Value> = bank
            .beneficiaries(no)?
            .iter()
            .map(|b| {
                with_payee(
                    json!({ "PAYEE_REF": b.beneficiary_id, "REF": b.reference }),
                    &b.creditor,
                )
            })
            .collect();
        Ok(json!({ "PAYEES": rows }))
    }),
    ("sched", |bank, no| {
        let rows: Vec<Value> = bank
            .scheduled_payments(no)?
            .iter()
            .map(scheduled_row)
            .collect();
        Ok(json!({ "SCHED": rows }))
    }),
    ("stmts", |bank, no| {
        let rows: Vec<Value> = bank
            .statements(no)?
            .iter()
            .map(|s| {
                let (pence, side) = match &s.closing_balance {
                    Some((m, CreditDebit::Debit)) => (Some(m.minor), "DR"),
                    Some((m, CreditDebit::Credit)) => (Some(m.minor), "CR"),
                    None => (None, "CR"),
                };
                let currency = s.closing_balance.as_ref().map(|(m, _)| m.currency.clone());
                json!({
                    "STMT_REF": s.statement_id,
                    "FROM": s.start.format(LEGACY_TIME).to_string(),
                    "TO": s.end.format(LEGACY_TIME).to_string(),
                    "CLOSE_PENCE": pence,
                    "CLOSE_DR_CR": side,
                    "CCY": currency,
                })
            })
            .collect();
        Ok(json!({ "STMTS": rows }))
    }),
    ("holder", |bank, no| {
        let rows: Vec<Value> = bank
            .parties(no)?
            .iter()
            .map(|p| json!({ "CUST_NO": p.party_id, "CUST_NAME": p.name.to_uppercase() }))
            .collect();
        Ok(json!({ "HOLDERS": rows }))
    }),
    ("product", |bank, no| {
        let product = bank.product(no)?;
        Ok(json!({ "PROD": {
            "CODE": product.product_id,
            "DESC": product.name.to_uppercase(),
            "KIND": match product.product_type.as_str() {
                "PersonalCurrentAccount" => "PCA",
                "Savings" => "SAV",
                _ => "FX",
            },
        }}))
    }),
];

/// The routes, one per thing.
pub(super) fn routes() -> Router<std::sync::Arc<SandboxBank>> {
    let mut router = Router::new();
    for (thing, records) in THINGS {
        router = router.route(
            &format!("/api/legacy/acct/{thing}"),
            get(move |bank, query, headers| serve(bank, query, headers, records)),
        );
    }
    router
}

async fn serve(
    bank: Bank,
    Query(query): Query<LegacyQuery>,
    headers: HeaderMap,
    records: Records,
) -> Response {
    if !authorized(&headers) {
        return refuse(StatusCode::FORBIDDEN, "BAD KEY");
    }
    match records(&bank, &query.no) {
        Ok(body) => Json(body).into_response(),
        Err(error) => failure(error),
    }
}
