//! Domestic payments on the unified API (UK OBIE v4.0 PIS shapes): one payment per idempotency key, inside the consent's limits as this bank counts them.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use consentnet_identity::VerifiedConsent;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{Adapter, is_json};
use crate::call::{Call, refuse};
use crate::connector::{BankConnector, Payment, PaymentOrder};
use crate::enforce::Operation;
use crate::problem::{ObCode, ObError};

mod future;
mod initiation;
mod ledger;
mod limits;
mod once;
mod retention;
pub mod schedule;

pub use future::{scheduled_order, standing_order};
pub use initiation::initiation_amount;
use initiation::{named_consent, order};
pub use ledger::Ledger;
use once::once;

pub use retention::RETENTION_DAYS;

/// Where the payment initiation API lives.
pub const PIS_BASE: &str = "/open-banking/v4.0/pisp";
/// The idempotency header.
pub const IDEMPOTENCY_KEY: &str = "x-idempotency-key";

/// The largest payment request body accepted, in bytes.
pub const MAX_PAYMENT_BODY: usize = 64 * 1024;

/// The routes.
pub fn router(adapter: Arc<Adapter>) -> Router {
    let signer = adapter.signer.clone();
    let router = Router::new()
        .route(
            &format!("{PIS_BASE}/domestic-payments"),
            post(create).layer(axum::extract::DefaultBodyLimit::max(MAX_PAYMENT_BODY)),
        )
        .route(
            &format!("{PIS_BASE}/domestic-payments/{{DomesticPaymentId}}"),
            get(read),
        )
        .merge(future::routes())
        .with_state(adapter);
    match signer {
        Some(signer) => router.layer(axum::middleware::from_fn_with_state(
            signer,
            crate::jws::sign_answers,
        )),
        None => router,
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WriteDomestic {
    data: WriteData,
    #[allow(dead_code)]
    risk: Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WriteData {
    pub(super) consent_id: String,
    pub(super) initiation: Value,
}

fn payment_json(payment: &Payment, consent: &str, initiation: Value) -> Value {
    let at = payment
        .created
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    let status = if payment.status == "AcceptedSettlementCompleted" {
        "ACSC"
    } else {
        "PDNG"
    };
    json!({
        "Data": {
            "DomesticPaymentId": payment.payment_id,
            "ConsentId": consent,
            "CreationDateTime": at,
            "Status": status,
            "StatusUpdateDateTime": at,
            "Initiation": initiation,
        },
        "Links": {},
        "Meta": {},
    })
}

fn initiation_of(payment: &Payment, instruction: &Value) -> Value {
    let mut initiation = json!({
        "InstructionIdentification": instruction["InstructionIdentification"],
        "EndToEndIdentification": instruction["EndToEndIdentification"],
        "InstructedAmount": { "Amount": payment.order.amount.decimal(), "Currency": payment.order.amount.currency },
        "CreditorAccount": {
            "SchemeName": payment.order.creditor_scheme,
            "Identification": payment.order.creditor_identification,
            "Name": payment.order.creditor_name,
        },
    });
    if !payment.order.reference.is_empty() {
        initiation["RemittanceInformation"] = json!({ "Unstructured": [payment.order.reference] });
    }
    initiation
}

/// The body of a payment request, or its refusal in the OBIE shape: JSON only, at most
/// [`MAX_PAYMENT_BODY`] bytes.
fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ObError> {
    if !is_json(headers) {
        return Err(ObError::new(
            ObCode::UnsupportedMediaType,
            "send the payment as Content-Type: application/json",
        ));
    }
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ObError::new(
                ObCode::BodyTooLarge,
                format!("the body is over {MAX_PAYMENT_BODY} bytes"),
            )
        } else {
            ObError::new(ObCode::MalformedJson, rejection.body_text())
        }
    })
}

async fn create(
    State(adapter): State<Arc<Adapter>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    initiate(&DOMESTIC, adapter, headers, body).await
}

/// A payment initiation endpoint: where it is, its operation, and how it makes the
/// order an initiation describes.
pub(super) struct Endpoint {
    /// The path under [`PIS_BASE`], as the official file names it.
    pub path: &'static str,
    /// The operation it is.
    pub operation: Operation,
    /// Makes, counts and answers the order.
    pub make: fn(&Initiation<'_>) -> Result<Value, ObError>,
}

/// An initiation that passed the consent check and the official schema.
pub(super) struct Initiation<'a> {
    /// The payments ledger.
    pub ledger: &'a Ledger,
    /// The bank's core.
    pub connector: &'a dyn BankConnector,
    /// The consent it is made under.
    pub consent: &'a VerifiedConsent,
    /// The TSP's idempotency key.
    pub key: &'a str,
    /// `Data.Initiation` as sent.
    pub initiation: &'a Value,
    /// `Data.ConsentId` as sent: the consent, or a payment consent resource authorised
    /// into it; answers name it so.
    pub named: &'a str,
    /// The paying account.
    pub debtor: &'a str,
}

const DOMESTIC: Endpoint = Endpoint {
    path: "/domestic-payments",
    operation: Operation::CreatePayment,
    make: |made| {
        let order = order(made.initiation, made.debtor)?;
        let (payment, initiation) = once(
            made.ledger,
            made.connector,
            made.consent,
            made.key,
            &order,
            |p| json!({ "Initiation": initiation_of(p, made.initiation), "ConsentId": made.named }),
        )?;
        let (consent, initiation) = once::kept_parts(&initiation, made.consent);
        Ok(payment_json(&payment, &consent, initiation))
    },
};

/// Serves a payment initiation at `endpoint`: the body parsed and checked (only once the
/// consent check passed), an idempotency key, the consent named, the debtor in it.
pub(super) async fn initiate(
    endpoint: &'static Endpoint,
    adapter: Arc<Adapter>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match json_body(&headers, body) {
        Ok(body) => body,
        Err(error) => return refuse(&headers, error),
    };
    let parsed: Result<WriteDomestic, _> = consentnet_identity::strict::from_slice(&body);
    // The official schema's verdict, given only once the consent check has passed.
    let unofficial = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|value| {
            crate::schema::request_problem(crate::schema::pis(), endpoint.path, "post", &value)
        });
    let debtor = parsed
        .as_ref()
        .ok()
        .and_then(|w| w.data.initiation["DebtorAccount"]["Identification"].as_str())
        .map(str::to_owned);
    let call = Call {
        adapter: &adapter,
        headers: &headers,
        method: "POST",
        success: StatusCode::CREATED,
        operation: endpoint.operation,
        path: format!("{PIS_BASE}{}", endpoint.path),
        account: debtor.as_deref(),
    };
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let ledger = adapter.ledger.clone();
    let adapter_resources = adapter.resources.get().cloned();
    call.run(move |connector, authorized| {
        let write = parsed.map_err(|e| ObError::new(ObCode::MalformedJson, e.to_string()))?;
        if let Some(problem) = unofficial {
            return Err(ObError::new(
                ObCode::InvalidInitiation,
                format!("{problem} (OBIE v4.0 schema)"),
            ));
        }
        let key = key.filter(|k| (1..=40).contains(&k.len())).ok_or_else(|| {
            ObError::new(
                ObCode::MissingIdempotencyKey,
                "send x-idempotency-key (1 to 40 characters)",
            )
        })?;
        let consent = &authorized.consent;
        named_consent(&adapter_resources, consent, &write.data)?;
        let debtor = debtor_of(&write.data.initiation, consent)?;
        let mut answer = (endpoint.make)(&Initiation {
            ledger: &ledger,
            connector: connector.as_ref(),
            consent,
            key: &key,
            initiation: &write.data.initiation,
            named: &write.data.consent_id,
            debtor: &debtor,
        })?;
        // A repeat names the consent as this initiation did.
        answer["Data"]["ConsentId"] = Value::String(write.data.consent_id);
        Ok(answer)
    })
    .await
}

/// The paying account: the one the initiation names, which must be in the consent, or
/// the consent's only account.
fn debtor_of(initiation: &Value, consent: &VerifiedConsent) -> Result<String, ObError> {
    let debtor = match initiation["DebtorAccount"]["Identification"].as_str() {
        Some(account) => account.to_owned(),
        None => match consent.terms.accounts.as_slice() {
            [only] => only.clone(),
            _ => {
                return Err(ObError::new(
                    ObCode::DebtorAccountRequired,
                    "the consent names several accounts: give Data.Initiation.DebtorAccount",
                ));
            }
        },
    };
    if !consent.terms.accounts.contains(&debtor) {
        return Err(ObError::new(
            ObCode::AccountNotInConsent,
            format!("account {debtor} is not in the consent"),
        ));
    }
    Ok(debtor)
}

async fn read(
    State(adapter): State<Arc<Adapter>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let call = Call::read(
        &adapter,
        &headers,
        Operation::GetPayment,
        format!("{PIS_BASE}/domestic-payments/{id}"),
        None,
    );
    let ledger = adapter.ledger.clone();
    call.run(move |connector, authorized| {
        let kept = once::remembered::<PaymentOrder>(&ledger, &authorized.consent, &id)?;
        let (consent, initiation) = once::kept_parts(&kept, &authorized.consent);
        let payment = connector.payment(&id)?;
        Ok(payment_json(&payment, &consent, initiation))
    })
    .await
}
