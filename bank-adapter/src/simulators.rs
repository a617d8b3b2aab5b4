//! Two bank-core simulators with deliberately different APIs over the same sandbox ledger: one shaped like Berlin Group NextGenPSD2 1.3.9 account information, one legacy-style (other paths, field names, date and amount formats, paging, auth).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::connector::{BankConnector, ConnectorError, CreditDebit, TransactionQuery};
use crate::sandbox::SandboxBank;

/// The token the Berlin Group simulator expects (`Authorization: Bearer ...`).
pub const BERLIN_TOKEN: &str = "berlin-sim-token";
/// The OAuth client the Berlin Group simulator's token endpoint knows.
pub const BERLIN_CLIENT: (&str, &str) = ("berlin-client", "berlin-client-secret");
/// The key the legacy simulator expects (`X-Api-Key`).
pub const LEGACY_KEY: &str = "legacy-sim-key";
/// Transactions per page in both simulators.
pub const SIM_PAGE: u32 = 25;

/// Which API a simulator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Berlin Group NextGenPSD2 1.3.9 shapes.
    Berlin,
    /// A legacy core: upper-case fields, pence, `dd/mm/yyyy` dates, `pg` paging.
    Legacy,
}

type Bank = State<Arc<SandboxBank>>;

fn refuse(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "error": text }))).into_response()
}

fn failure(error: ConnectorError) -> Response {
    match error {
        ConnectorError::NotFound(what) => refuse(StatusCode::NOT_FOUND, &what),
        other => refuse(StatusCode::INTERNAL_SERVER_ERROR, &other.to_string()),
    }
}

fn signed_decimal(minor: i64, direction: CreditDebit) -> String {
    let sign = if direction == CreditDebit::Debit {
        "-"
    } else {
        ""
    };
    format!("{sign}{}.{:02}", minor / 100, minor % 100)
}

/// The simulator's router.
pub fn router(style: Style, bank: Arc<SandboxBank>) -> Router {
    match style {
        Style::Berlin => Router::new()
            .route("/oauth/token", axum::routing::post(berlin_token))
            .route("/v1/accounts/{id}", get(berlin_account))
            .route("/v1/accounts/{id}/balances", get(berlin_balances))
            .route("/v1/accounts/{id}/transactions", get(berlin_transactions))
            .route(
                "/v1/payments/sepa-credit-transfers",
                axum::routing::post(berlin_pay),
            )
            .route(
                "/v1/payments/sepa-credit-transfers/{id}",
                get(berlin_payment),
            )
            .with_state(bank),
        Style::Legacy => Router::new()
            .route("/api/legacy/acct", get(legacy_account))
            .route("/api/legacy/acct/bal", get(legacy_balance))
            .route("/api/legacy/acct/txns", get(legacy_transactions))
            .route(
                "/api/legacy/pay",
                axum::routing::post(legacy_pay).get(legacy_payment),
            )
            .with_state(bank),
    }
}

fn berlin_authorized(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {BERLIN_TOKEN}"))
}

async fn berlin_account(bank: Bank, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if !berlin_authorized(&headers) {
        return refuse(StatusCode::UNAUTHORIZED, "TOKEN_INVALID");
    }
    let Some(account) = bank.account(&id) else {
        return refuse(StatusCode::NOT_FOUND, "RESOURCE_UNKNOWN");
    };
    let cash_type = if account.account_sub_type == "Savings" {
        "SVGS"
    } else {
        "CACC"
    };
    Json(json!({ "account": {
        "resourceId": account.account_id,
        "iban": account.identification,
        "bban": account.identification,
        "currency": account.currency,
        "name": account.nickname,
        "ownerName": account.name,
        "cashAccountType": cash_type,
        "status": "enabled",
    }}))
    .into_response()
}

async fn berlin_balances(bank: Bank, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if !berlin_authorized(&headers) {
        return refuse(StatusCode::UNAUTHORIZED, "TOKEN_INVALID");
    }
    match bank.balances(&id) {
        Ok(balances) => {
            let list: Vec<Value> = balances
                .iter()
                .map(|b| {
                    let kind = if b.kind == "InterimAvailable" { "interimAvailable" } else { "interimBooked" };
                    json!({
                        "balanceType": kind,
                        "balanceAmount": { "currency": b.amount.currency, "amount": signed_decimal(b.amount.minor, b.credit_debit) },
                        "lastChangeDateTime": b.date_time.to_rfc3339(),
                    })
                })
                .collect();
            Json(json!({ "account": { "resourceId": id }, "balances": list })).into_response()
        }
        Err(error) => failure(error),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BerlinQuery {
    date_from: Option<String>,
    date_to: Option<String>,
    page: Option<u32>,
    #[allow(dead_code)]
    booking_status: Option<String>,
}

fn iso_date(text: Option<&str>) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text?, "%Y-%m-%d").ok()
}

fn day_range(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    (
        from.and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc()),
        to.and_then(|d| d.and_hms_milli_opt(23, 59, 59, 999))
            .map(|t| t.and_utc()),
    )
}

async fn berlin_transactions(
    bank: Bank,
    Path(id): Path<String>,
    Query(query): Query<BerlinQuery>,
    headers: HeaderMap,
) -> Response {
    if !berlin_authorized(&headers) {
        return refuse(StatusCode::UNAUTHORIZED, "TOKEN_INVALID");
    }
    let (from, to) = day_range(
        iso_date(query.date_from.as_deref()),
        iso_date(query.date_to.as_deref()),
    );
    let page = query.page.unwrap_or(1).max(1);
    match bank.transactions(
        &id,
        &TransactionQuery {
            from,
            to,
            page,
            page_size: SIM_PAGE,
        },
    ) {
        Ok(found) => {
            let booked: Vec<Value> = found
                .items
                .iter()
                .map(|t| json!({
                    "transactionId": t.transaction_id,
                    "bookingDate": t.booking_date_time.date_naive().to_string(),
                    "valueDate": t.booking_date_time.date_naive().to_string(),
                    "transactionAmount": { "currency": t.amount.currency, "amount": signed_decimal(t.amount.minor, t.credit_debit) },
                    "remittanceInformationUnstructured": t.information,
                }))
                .collect();
            let mut body = json!({ "account": { "resourceId": id }, "transactions": { "booked": booked, "_links": {} } });
            if found.more {
                body["transactions"]["_links"]["next"] =
                    json!({ "href": format!("/v1/accounts/{id}/transactions?page={}", page + 1) });
            }
            Json(body).into_response()
        }
        Err(error) => failure(error),
    }
}

fn legacy_authorized(headers: &HeaderMap) -> bool {
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == LEGACY_KEY)
}

#[derive(Debug, Deserialize)]
struct LegacyQuery {
    no: String,
    start: Option<String>,
    end: Option<String>,
    pg: Option<u32>,
}

const LEGACY_TIME: &str = "%d/%m/%Y %H:%M:%S";

async fn legacy_account(
    bank: Bank,
    Query(query): Query<LegacyQuery>,
    headers: HeaderMap,
) -> Response {
    if !legacy_authorized(&headers) {
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
    if !legacy_authorized(&headers) {
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
    if !legacy_authorized(&headers) {
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

/// A payment failure in the simulator's own shape.
fn payment_failure(error: ConnectorError, berlin: bool) -> Response {
    let (status, code) = match &error {
        ConnectorError::NotFound(_) => (StatusCode::NOT_FOUND, "RESOURCE_UNKNOWN".to_owned()),
        ConnectorError::IdempotencyConflict => (StatusCode::CONFLICT, "DUPLICATE".to_owned()),
        ConnectorError::Refused { code, .. } => (StatusCode::BAD_REQUEST, code.clone()),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL".to_owned()),
    };
    let body = if berlin {
        json!({ "tppMessages": [{ "category": "ERROR", "code": code, "text": error.to_string() }] })
    } else {
        json!({ "ERR": code, "ERR_TEXT": error.to_string() })
    };
    (status, Json(body)).into_response()
}

fn berlin_payment_json(payment: &crate::connector::Payment) -> Value {
    let order = &payment.order;
    json!({
        "paymentId": payment.payment_id,
        "transactionStatus": if payment.status == "AcceptedSettlementCompleted" { "ACSC" } else { "PDNG" },
        "created": payment.created.to_rfc3339(),
        "debtorAccount": { "resourceId": order.debtor_account },
        "creditorAccount": { "scheme": order.creditor_scheme, "identification": order.creditor_identification },
        "creditorName": order.creditor_name,
        "instructedAmount": { "currency": order.amount.currency, "amount": order.amount.decimal() },
        "remittanceInformationUnstructured": order.reference,
    })
}

fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

async fn berlin_pay(bank: Bank, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if !berlin_authorized(&headers) {
        return refuse(StatusCode::UNAUTHORIZED, "TOKEN_INVALID");
    }
    let Some(key) = headers.get("x-request-id").and_then(|v| v.to_str().ok()) else {
        return refuse(StatusCode::BAD_REQUEST, "FORMAT_ERROR: X-Request-ID");
    };
    let Some(amount) = crate::connector::Money::parse(
        &text(&body, "/instructedAmount/amount"),
        &text(&body, "/instructedAmount/currency"),
    ) else {
        return refuse(StatusCode::BAD_REQUEST, "FORMAT_ERROR: instructedAmount");
    };
    let order = crate::connector::PaymentOrder {
        debtor_account: text(&body, "/debtorAccount/resourceId"),
        creditor_scheme: text(&body, "/creditorAccount/scheme"),
        creditor_identification: text(&body, "/creditorAccount/identification"),
        creditor_name: text(&body, "/creditorName"),
        amount,
        reference: text(&body, "/remittanceInformationUnstructured"),
    };
    match bank.create_payment(key, &order) {
        Ok(payment) => (StatusCode::CREATED, Json(berlin_payment_json(&payment))).into_response(),
        Err(error) => payment_failure(error, true),
    }
}

async fn berlin_payment(bank: Bank, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if !berlin_authorized(&headers) {
        return refuse(StatusCode::UNAUTHORIZED, "TOKEN_INVALID");
    }
    match bank.payment(&id) {
        Ok(payment) => Json(berlin_payment_json(&payment)).into_response(),
        Err(error) => payment_failure(error, true),
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

#[derive(Debug, Deserialize)]
struct LegacyPayQuery {
    r#ref: String,
}

async fn legacy_pay(bank: Bank, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if !legacy_authorized(&headers) {
        return refuse(StatusCode::FORBIDDEN, "BAD KEY");
    }
    let Some(key) = headers.get("x-dedupe-key").and_then(|v| v.to_str().ok()) else {
        return refuse(StatusCode::BAD_REQUEST, "NO DEDUPE KEY");
    };
    let Some(pence) = body.pointer("/PENCE").and_then(Value::as_i64) else {
        return refuse(StatusCode::BAD_REQUEST, "BAD PENCE");
    };
    let order = crate::connector::PaymentOrder {
        debtor_account: text(&body, "/FROM"),
        creditor_scheme: text(&body, "/TO_SCHEME"),
        creditor_identification: text(&body, "/TO_NO"),
        creditor_name: text(&body, "/TO_NAME"),
        amount: crate::connector::Money {
            minor: pence,
            currency: text(&body, "/CCY"),
        },
        reference: text(&body, "/REF"),
    };
    match bank.create_payment(key, &order) {
        Ok(payment) => Json(legacy_payment_json(&payment)).into_response(),
        Err(error) => payment_failure(error, false),
    }
}

async fn legacy_payment(
    bank: Bank,
    Query(query): Query<LegacyPayQuery>,
    headers: HeaderMap,
) -> Response {
    if !legacy_authorized(&headers) {
        return refuse(StatusCode::FORBIDDEN, "BAD KEY");
    }
    match bank.payment(&query.r#ref) {
        Ok(payment) => Json(legacy_payment_json(&payment)).into_response(),
        Err(error) => payment_failure(error, false),
    }
}

/// OAuth 2.0 client credentials: HTTP Basic with the known client gives the bearer token.
async fn berlin_token(headers: HeaderMap, body: String) -> Response {
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", BERLIN_CLIENT.0, BERLIN_CLIENT.1));
    let basic_ok = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Basic {expected}"));
    if !basic_ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "invalid_client" })),
        )
            .into_response();
    }
    if !body
        .split('&')
        .any(|pair| pair == "grant_type=client_credentials")
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "unsupported_grant_type" })),
        )
            .into_response();
    }
    Json(json!({ "access_token": BERLIN_TOKEN, "token_type": "Bearer", "expires_in": 300 }))
        .into_response()
}
