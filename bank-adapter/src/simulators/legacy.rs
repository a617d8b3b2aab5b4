//! The legacy-style bank-core simulator: upper-case fields, amounts in pence, `dd/mm/yyyy` times, `pg` paging with `MORE: Y/N`, an API key, and `{ERR}` refusals.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Bank, LEGACY_KEY, SIM_PAGE, day_range, failure, refuse, text};
use crate::connector::{BankConnector, ConnectorError, CreditDebit, TransactionQuery};
use crate::sandbox::SandboxBank;

/// The legacy simulator's router.
pub(super) fn router(bank: Arc<SandboxBank>) -> Router {
    Router::new()
        .route("/api/legacy/acct", get(legacy_account))
        .route("/api/legacy/acct/bal", get(legacy_balance))
        .route("/api/legacy/acct/txns", get(legacy_transactions))
        .route(
            "/api/legacy/pay",
            axum::routing::post(legacy_pay).get(legacy_payment),
        )
        .merge(super::legacy_standing::routes())
        .merge(super::legacy_orders::routes())
        .with_state(bank)
}

/// A payment failure in this core's own shape.
pub(super) fn payment_failure(error: ConnectorError) -> Response {
    let (status, code) = match &error {
        ConnectorError::NotFound(_) => (StatusCode::NOT_FOUND, "RESOURCE_UNKNOWN".to_owned()),
        ConnectorError::IdempotencyConflict => (StatusCode::CONFLICT, "DUPLICATE".to_owned()),
        ConnectorError::Refused { code, .. } => (StatusCode::BAD_REQUEST, code.clone()),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL".to_owned()),
    };
    let body = json!({ "ERR": code, "ERR_TEXT": error.to_string() });
    (status, Json(body)).into_response()
}

pub(super) fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == LEGACY_KEY)
}

#[derive(Debug, Deserialize)]
pub(super) struct LegacyQuery {
    pub(super) no: String,
    start: Option<String>,
    end: Option<String>,
    pg: Option<u32>,
}

pub(super) const LEGACY_TIME: &str = "%d/%m/%Y %H:%M:%S";

async fn legacy_account(
    bank: Bank,
    Query(query): Query<LegacyQuery>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return refuse(StatusCode::FORBIDDEN, "BAD KEY");
    }
    let Some(account) = bank.account(&query.no) else {
        return refuse(StatusCode::NOT_FOUND, "NO SUCH ACCT");
    };
    Json(json!({ "ACCT": {
        "ACCT_NO": account.account_id,
        "CCY": account.currency,
        "HOLDER": account.name.to_uppercase(),
        "TYPE": if account.account_sub_type == "Savings" { "SAVINGS" } else { "CURRENT" },
        "NICK": account.nickname,
        "EXT_NO": account.identification,
        "EXT_SCHEME": account.scheme_name,
    }}))
    .into_response()
}

async fn legacy_balance(
    bank: Bank,
    Query(query): Query<LegacyQuery>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return refuse(StatusCode::FORBIDDEN, "BAD KEY");
    }
    match bank.balances(&query.no) {
        Ok(balances) => {
            let rows: Vec<Value> = balances
                .iter()
                .map(|b| {
                    json!({
                        "KIND": if b.kind == "InterimAvailable" { "AVAIL" } else { "LEDGER" },
                        "BAL_PENCE": b.amount.minor,
                        "CCY": b.amount.currency,
                        "DR_CR": if b.credit_debit == CreditDebit::Credit { "CR" } else { "DR" },
                        "AS_AT": b.date_time.format(LEGACY_TIME).to_string(),
                    })
                })
                .collect();
            Json(json!({ "BALS": rows })).into_response()
        }
        Err(error) => failure(error),
    }
}

fn legacy_date(text: Option<&str>) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text?, "%Y%m%d").ok()
}

async fn legacy_transactions(
    bank: Bank,
    Query(query): Query<LegacyQuery>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return refuse(StatusCode::FORBIDDEN, "BAD KEY");
    }
    let (from, to) = day_range(
        legacy_date(query.start.as_deref()),
        legacy_date(query.end.as_deref()),
    );
    let page = query.pg.unwrap_or(1).max(1);
    match bank.transactions(
        &query.no,
        &TransactionQuery {
            from,
            to,
            page,
            page_size: SIM_PAGE,
        },
    ) {
        Ok(found) => {
            let rows: Vec<Value> = found
                .items
                .iter()
                .map(|t| {
                    json!({
                        "REF": t.transaction_id,
                        "POSTED": t.booking_date_time.format(LEGACY_TIME).to_string(),
                        "AMT_PENCE": t.amount.minor,
                        "CCY": t.amount.currency,
                        "DR_CR": if t.credit_debit == CreditDebit::Credit { "CR" } else { "DR" },
                        "DESC": t.information.to_uppercase(),
                    })
                })
                .collect();
            Json(json!({ "ROWS": rows, "MORE": if found.more { "Y" } else { "N" } }))
                .into_response()
        }
        Err(error) => failure(error),
    }
}

fn legacy_payment_json(payment: &crate::connector::Payment) -> Value {
    let order = &payment.order;
    json!({
        "PAY_REF": payment.payment_id,
        "STATE": if payment.status == "AcceptedSettlementCompleted" { "DONE" } else { "WAIT" },
        "AT": payment.created.format(LEGACY_TIME).to_string(),
        "FROM": order.debtor_account,
        "TO_SCHEME": order.creditor_scheme,
        "TO_NO": order.creditor_identification,
        "TO_NAME": order.creditor_name,
        "PENCE": order.amount.minor,
        "CCY": order.amount.currency,
        "REF": order.reference,
    })
}

/// The order a payment body in this core's shape describes.
pub(super) fn order_from(body: &Value) -> Option<crate::connector::PaymentOrder> {
    let pence = body.pointer("/PENCE").and_then(Value::as_i64)?;
    Some(crate::connector::PaymentOrder {
        debtor_account: text(body, "/FROM"),
        creditor_scheme: text(body, "/TO_SCHEME"),
        creditor_identification: text(body, "/TO_NO"),
        creditor_name: text(body, "/TO_NAME"),
        amount: crate::connector::Money {
            minor: pence,
            currency: text(body, "/CCY"),
        },
        reference: text(body, "/REF"),
    })
}

#[derive(Debug, Deserialize)]
struct LegacyPayQuery {
    r#ref: String,
}

async fn legacy_pay(bank: Bank, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if !authorized(&headers) {
        return refuse(StatusCode::FORBIDDEN, "BAD KEY");
    }
    let Some(key) = headers.get("x-dedupe-key").and_then(|v| v.to_str().ok()) else {
        return refuse(StatusCode::BAD_REQUEST, "NO DEDUPE KEY");
    };
    let Some(order) = order_from(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "BAD PENCE");
    };
    match bank.create_payment(key, &order) {
        Ok(payment) => Json(legacy_payment_json(&payment)).into_response(),
        Err(error) => payment_failure(error),
    }
}

async fn legacy_payment(
    bank: Bank,
    Query(query): Query<LegacyPayQuery>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return refuse(StatusCode::FORBIDDEN, "BAD KEY");
    }
    match bank.payment(&query.r#ref) {
        Ok(payment) => Json(legacy_payment_json(&payment)).into_response(),
        Err(error) => payment_failure(error),
    }
}
