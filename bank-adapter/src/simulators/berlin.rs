//! The Berlin Group NextGenPSD2 1.3.9 bank-core simulator, as strict as the specification: `X-Request-ID` (a UUID) on every request and echoed back, a bearer token, `Consent-ID` of a consent created at `/v1/consents` on every account call, `PSU-IP-Address` on consent creation and payment initiation, `tppMessages` errors and `_links` paging.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{BERLIN_CLIENT, BERLIN_TOKEN, SIM_PAGE, day_range, iso_date, signed_decimal, text};
use crate::connector::{BankConnector, ConnectorError, Money, PaymentOrder, TransactionQuery};
use crate::sandbox::SandboxBank;

/// Consents the simulator holds at most.
const MAX_CONSENTS: usize = 10_000;

/// How the Berlin Group simulator behaves beyond the specification's defaults.
#[derive(Debug, Clone, Default)]
pub struct BerlinOptions {
    /// Account calls a consent serves before it answers `401 CONSENT_EXPIRED`
    /// (unlimited when `None`).
    pub consent_calls: Option<u32>,
    /// Consents created so far (shared, so a test can watch it).
    pub consents_created: Arc<AtomicU64>,
}

struct Core {
    bank: Arc<SandboxBank>,
    options: BerlinOptions,
    /// Consent id -> account calls it may still serve.
    consents: std::sync::Mutex<HashMap<String, u32>>,
}

type Sim = State<Arc<Core>>;

/// A Berlin Group error: `{"tppMessages": [{category, code, text}]}`.
fn tpp(status: StatusCode, code: &str, text: &str) -> Response {
    let body = json!({ "tppMessages": [{ "category": "ERROR", "code": code, "text": text }] });
    (status, Json(body)).into_response()
}

/// The Berlin Group simulator's router.
pub fn berlin_router(bank: Arc<SandboxBank>, options: BerlinOptions) -> Router {
    let core = Arc::new(Core {
        bank,
        options,
        consents: std::sync::Mutex::new(HashMap::new()),
    });
    let v1 = Router::new()
        .route("/v1/consents", post(create_consent))
        .route("/v1/consents/{id}", delete(delete_consent))
        .route("/v1/accounts/{id}", get(account))
        .route("/v1/accounts/{id}/balances", get(balances))
        .route("/v1/accounts/{id}/transactions", get(transactions))
        .route("/v1/payments/sepa-credit-transfers", post(pay))
        .route("/v1/payments/sepa-credit-transfers/{id}", get(payment))
        .layer(axum::middleware::from_fn(request_id))
        .with_state(core);
    Router::new().route("/oauth/token", post(token)).merge(v1)
}

/// Every request: a UUID `X-Request-ID`, echoed back, and the bearer token.
async fn request_id(request: Request, next: Next) -> Response {
    let given = request.headers().get("x-request-id").cloned();
    let Some(id) = given.filter(|v| v.to_str().is_ok_and(crate::fapi::is_uuid)) else {
        return tpp(
            StatusCode::BAD_REQUEST,
            "FORMAT_ERROR",
            "X-Request-ID: a UUID is required on every request",
        );
    };
    let token_ok = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {BERLIN_TOKEN}"));
    let mut response = if token_ok {
        next.run(request).await
    } else {
        tpp(StatusCode::UNAUTHORIZED, "TOKEN_INVALID", "bearer token")
    };
    response.headers_mut().insert("x-request-id", id);
    response
}

/// The refusal when `PSU-IP-Address`, which 1.3.9 makes mandatory here, is missing.
fn psu_ip(headers: &HeaderMap) -> Option<Response> {
    let valid = headers
        .get("psu-ip-address")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.parse::<std::net::IpAddr>().is_ok());
    (!valid).then(|| {
        tpp(
            StatusCode::BAD_REQUEST,
            "FORMAT_ERROR",
            "PSU-IP-Address: an IP address is required",
        )
    })
}

/// The refusal when an account call's `Consent-ID` is missing, unknown or used up.
fn consented(core: &Core, headers: &HeaderMap) -> Option<Response> {
    let Some(id) = headers.get("consent-id").and_then(|v| v.to_str().ok()) else {
        return Some(tpp(
            StatusCode::BAD_REQUEST,
            "FORMAT_ERROR",
            "Consent-ID is required on account information calls",
        ));
    };
    let mut consents = consentnet_identity::util::lock(&core.consents);
    match consents.get_mut(id) {
        None => Some(tpp(
            StatusCode::UNAUTHORIZED,
            "CONSENT_UNKNOWN",
            "no such consent",
        )),
        Some(0) => Some(tpp(
            StatusCode::UNAUTHORIZED,
            "CONSENT_EXPIRED",
            "the consent is used up",
        )),
        Some(left) => {
            if core.options.consent_calls.is_some() {
                *left -= 1;
            }
            None
        }
    }
}

async fn create_consent(core: Sim, headers: HeaderMap, body: Json<Value>) -> Response {
    if let Some(refused) = psu_ip(&headers) {
        return refused;
    }
    if body.pointer("/access").is_none() || body.pointer("/validUntil").is_none() {
        return tpp(
            StatusCode::BAD_REQUEST,
            "FORMAT_ERROR",
            "access and validUntil are required",
        );
    }
    let id = format!("consent-{}", crate::call::fresh_interaction_id());
    let mut consents = consentnet_identity::util::lock(&core.consents);
    if consents.len() >= MAX_CONSENTS {
        return tpp(
            StatusCode::TOO_MANY_REQUESTS,
            "ACCESS_EXCEEDED",
            "too many consents",
        );
    }
    consents.insert(id.clone(), core.options.consent_calls.unwrap_or(u32::MAX));
    core.options
        .consents_created
        .fetch_add(1, Ordering::Relaxed);
    let links = json!({ "self": { "href": format!("/v1/consents/{id}") } });
    let answer = json!({ "consentStatus": "valid", "consentId": id, "_links": links });
    (StatusCode::CREATED, Json(answer)).into_response()
}

async fn delete_consent(core: Sim, Path(id): Path<String>) -> Response {
    match consentnet_identity::util::lock(&core.consents).remove(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => tpp(StatusCode::NOT_FOUND, "RESOURCE_UNKNOWN", "no such consent"),
    }
}

fn unknown(error: ConnectorError) -> Response {
    match error {
        ConnectorError::NotFound(_) => {
            tpp(StatusCode::NOT_FOUND, "RESOURCE_UNKNOWN", "no such account")
        }
        other => tpp(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_SERVER_ERROR",
            &other.to_string(),
        ),
    }
}

async fn account(core: Sim, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refused) = consented(&core, &headers) {
        return refused;
    }
    let Some(account) = core.bank.account(&id) else {
        return unknown(ConnectorError::NotFound(id));
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

async fn balances(core: Sim, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refused) = consented(&core, &headers) {
        return refused;
    }
    match core.bank.balances(&id) {
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
        Err(error) => unknown(error),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BerlinQuery {
    date_from: Option<String>,
    date_to: Option<String>,
    page: Option<u32>,
    booking_status: Option<String>,
}

async fn transactions(
    core: Sim,
    Path(id): Path<String>,
    Query(query): Query<BerlinQuery>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = consented(&core, &headers) {
        return refused;
    }
    if query.booking_status.is_none() {
        return tpp(
            StatusCode::BAD_REQUEST,
            "FORMAT_ERROR",
            "bookingStatus is required",
        );
    }
    let (from, to) = day_range(
        iso_date(query.date_from.as_deref()),
        iso_date(query.date_to.as_deref()),
    );
    let page = query.page.unwrap_or(1).max(1);
    let asked = TransactionQuery {
        from,
        to,
        page,
        page_size: SIM_PAGE,
    };
    match core.bank.transactions(&id, &asked) {
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
                body["transactions"]["_links"]["next"] = json!({ "href": format!("/v1/accounts/{id}/transactions?bookingStatus=booked&page={}", page + 1) });
            }
            Json(body).into_response()
        }
        Err(error) => unknown(error),
    }
}

/// A payment failure in Berlin Group codes.
fn payment_failure(error: ConnectorError) -> Response {
    let (status, code) = match &error {
        ConnectorError::NotFound(_) => (StatusCode::NOT_FOUND, "RESOURCE_UNKNOWN"),
        ConnectorError::IdempotencyConflict => (StatusCode::CONFLICT, "RESOURCE_BLOCKED"),
        ConnectorError::Refused { code, .. } if code == "insufficient_funds" => {
            (StatusCode::BAD_REQUEST, "FUNDS_NOT_AVAILABLE")
        }
        ConnectorError::Refused { .. } => (StatusCode::BAD_REQUEST, "FORMAT_ERROR"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR"),
    };
    tpp(status, code, &error.to_string())
}

fn payment_json(payment: &crate::connector::Payment) -> Value {
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

async fn pay(core: Sim, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if let Some(refused) = psu_ip(&headers) {
        return refused;
    }
    // The middleware checked it: the request id is the idempotency key.
    let key = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(amount) = Money::parse(
        &text(&body, "/instructedAmount/amount"),
        &text(&body, "/instructedAmount/currency"),
    ) else {
        return tpp(StatusCode::BAD_REQUEST, "FORMAT_ERROR", "instructedAmount");
    };
    let order = PaymentOrder {
        debtor_account: text(&body, "/debtorAccount/resourceId"),
        creditor_scheme: text(&body, "/creditorAccount/scheme"),
        creditor_identification: text(&body, "/creditorAccount/identification"),
        creditor_name: text(&body, "/creditorName"),
        amount,
        reference: text(&body, "/remittanceInformationUnstructured"),
    };
    match core.bank.create_payment(key, &order) {
        Ok(payment) => (StatusCode::CREATED, Json(payment_json(&payment))).into_response(),
        Err(error) => payment_failure(error),
    }
}

async fn payment(core: Sim, Path(id): Path<String>) -> Response {
    match core.bank.payment(&id) {
        Ok(payment) => Json(payment_json(&payment)).into_response(),
        Err(error) => payment_failure(error),
    }
}

/// OAuth 2.0 client credentials: HTTP Basic with the known client gives the bearer token.
async fn token(headers: HeaderMap, body: String) -> Response {
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", BERLIN_CLIENT.0, BERLIN_CLIENT.1));
    let basic_ok = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Basic {expected}"));
    if !basic_ok {
        let refused = Json(json!({ "error": "invalid_client" }));
        return (StatusCode::UNAUTHORIZED, refused).into_response();
    }
    if !body
        .split('&')
        .any(|pair| pair == "grant_type=client_credentials")
    {
        let refused = Json(json!({ "error": "unsupported_grant_type" }));
        return (StatusCode::BAD_REQUEST, refused).into_response();
    }
    Json(json!({ "access_token": BERLIN_TOKEN, "token_type": "Bearer", "expires_in": 300 }))
        .into_response()
}
