//! The OBIE consent resources over HTTP: account access (`POST`, `GET`, `DELETE /aisp/account-access-consents`) and domestic payment (`POST`, `GET /pisp/domestic-payment-consents`, and its funds confirmation); the app's client credentials token and proof checked, OBIE bodies and errors with the interaction id, a deleted authorised consent revoked on the log.

use super::payment_kinds::PaymentKind;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use consentnet_bank_adapter::api::is_json;
use consentnet_bank_adapter::connector::CreditDebit;
use consentnet_bank_adapter::fapi::{answer, refusal};
use consentnet_bank_adapter::{ObCode, ObError};
use consentnet_identity::Did;
use serde_json::{Value, json};

use super::http::revoke_on_log;
use super::intents::{Intent, Stage};
use crate::portal::state::Portal;

/// Where the account access consent resources live.
pub const CONSENTS_PATH: &str = "/open-banking/v4.0/aisp/account-access-consents";
/// Where the domestic payment consent resources live.
pub const PAYMENT_CONSENTS_PATH: &str = "/open-banking/v4.0/pisp/domestic-payment-consents";
/// The largest request body taken, in bytes.
pub const MAX_CONSENT_BODY: usize = 64 * 1024;

/// Which resource a route serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Access,
    Payment(PaymentKind),
}

/// The payment consent resources served.
const PAYMENT_KINDS: [PaymentKind; 3] = [
    PaymentKind::Now,
    PaymentKind::Scheduled,
    PaymentKind::Standing,
];

impl Kind {
    fn path(self) -> String {
        match self {
            Kind::Access => CONSENTS_PATH.to_owned(),
            Kind::Payment(kind) => format!("/open-banking/v4.0/pisp{}", kind.path()),
        }
    }

    fn of(intent: &Intent) -> Self {
        intent.payment_kind().map_or(Kind::Access, Kind::Payment)
    }
}

/// The resources' routes, with the FAPI header checks every OBIE endpoint has.
pub fn routes(portal: Portal) -> Router {
    let one = |kind: Kind| format!("{}/{{ConsentId}}", kind.path());
    let access = Router::new()
        .route(CONSENTS_PATH, post(|s, h, b| create(s, h, b, Kind::Access)))
        .route(
            &one(Kind::Access),
            get(|s, p, h| read(s, p, h, Kind::Access)).delete(delete),
        )
        .with_state(portal.clone());
    let mut payment = Router::new().route(
        &format!(
            "{}/funds-confirmation",
            one(Kind::Payment(PaymentKind::Now))
        ),
        get(funds),
    );
    for kind in PAYMENT_KINDS.map(Kind::Payment) {
        payment = payment
            .route(&kind.path(), post(move |s, h, b| create(s, h, b, kind)))
            .route(&one(kind), get(move |s, p, h| read(s, p, h, kind)));
    }
    let mut payment = payment.with_state(portal.clone());
    // Payment answers are signed by the bank, as OBIE's payment API has them.
    if let Some(signer) = portal
        .app
        .bank
        .as_ref()
        .and_then(|b| b.adapter.signer.clone())
    {
        payment = payment.layer(axum::middleware::from_fn_with_state(
            signer,
            consentnet_bank_adapter::jws::sign_answers,
        ));
    }
    let server = portal.server.clone();
    super::dpop::offering_nonces(access.merge(payment), server).layer(axum::middleware::from_fn(
        consentnet_bank_adapter::fapi::headers,
    ))
}

/// The app calling `method` on `path`, from its client token and proof.
pub(super) fn caller(
    portal: &Portal,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    now: DateTime<Utc>,
) -> Result<Did, ObError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let url = portal.server.url(path);
    let app =
        portal
            .server
            .client_of(header("authorization"), header("dpop"), method, &url, now)?;
    // The app's calls here share its rate at this bank with its unified-API calls: the
    // rate a decision of this bank set for it, else the default.
    if let Some(bank) = portal.app.bank.as_ref() {
        let limits = &bank.adapter.limits;
        let decided = portal.app.service.read(|replica| {
            replica
                .state()
                .catalog(portal.app.service.did())
                .into_iter()
                .filter(|entry| entry.manifest.app == app)
                .filter_map(|entry| match entry.decision.map(|d| d.action) {
                    Some(consentnet_consent_chain::event::AppAction::Approve {
                        rate_limit,
                        ..
                    }) => rate_limit,
                    _ => None,
                })
                .max_by_key(|rate| rate.per_second)
        });
        limits
            .buckets
            .take(
                &app,
                decided.unwrap_or(limits.default),
                std::time::Instant::now(),
            )
            .map_err(|wait| {
                ObError::new(
                    ObCode::RateLimited,
                    "this app is over its rate at this bank",
                )
                .retry_after(consentnet_bank_adapter::limits::retry_after_secs(wait))
            })?;
    }
    Ok(app)
}

/// The caller's resource `id` of `kind`, for `method` on `suffix` after its path.
fn own(
    portal: &Portal,
    headers: &HeaderMap,
    (method, kind, id, suffix): (&str, Kind, &str, &str),
    now: DateTime<Utc>,
) -> Result<Intent, ObError> {
    let path = format!("{}/{id}{suffix}", kind.path());
    let app = caller(portal, headers, method, &path, now)?;
    portal
        .server
        .intent(&app, id, now)
        .ok()
        .filter(|intent| Kind::of(intent) == kind)
        .ok_or_else(|| {
            ObError::new(
                ObCode::ConsentResourceUnknown,
                format!("no consent resource {id} of this app here"),
            )
        })
}

/// The resource's OBIE answer.
fn body(portal: &Portal, intent: &Intent, now: DateTime<Utc>) -> Value {
    let data = portal
        .app
        .service
        .read(|replica| intent.data(replica.state(), now));
    let path = Kind::of(intent).path();
    json!({
        "Data": data,
        "Risk": {},
        "Links": { "Self": portal.server.url(&format!("{path}/{}", intent.id)) },
        "Meta": {},
    })
}

/// `POST`: a new resource waiting for the client.
async fn create(
    State(portal): State<Portal>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
    kind: Kind,
) -> Response {
    let now = Utc::now();
    let made = (|| {
        let app = caller(&portal, &headers, "POST", &kind.path(), now)?;
        if !is_json(&headers) {
            return Err(ObError::new(
                ObCode::UnsupportedMediaType,
                "send the consent as Content-Type: application/json",
            ));
        }
        let bytes = bytes.map_err(|r| ObError::new(ObCode::MalformedJson, r.body_text()))?;
        if bytes.len() > MAX_CONSENT_BODY {
            return Err(ObError::new(
                ObCode::BodyTooLarge,
                format!("a consent is at most {MAX_CONSENT_BODY} bytes"),
            ));
        }
        let request: Value = consentnet_identity::strict::from_slice(&bytes)
            .map_err(|e| ObError::new(ObCode::MalformedJson, e.to_string()))?;
        portal.app.service.read(|replica| match kind {
            Kind::Access => portal
                .server
                .create_intent(replica.state(), &app, &request, now),
            Kind::Payment(payment) => {
                portal
                    .server
                    .create_payment_intent(replica.state(), &app, &request, payment, now)
            }
        })
    })();
    match made {
        Ok(intent) => answer(&headers, StatusCode::CREATED, body(&portal, &intent, now)),
        Err(error) => refusal(&headers, error),
    }
}

/// `GET`: the resource as it stands, the log deciding what became of its consent.
async fn read(
    State(portal): State<Portal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    kind: Kind,
) -> Response {
    let now = Utc::now();
    match own(&portal, &headers, ("GET", kind, &id, ""), now) {
        Ok(intent) => answer(&headers, StatusCode::OK, body(&portal, &intent, now)),
        Err(error) => refusal(&headers, error),
    }
}

/// `DELETE` (account access): cancels a waiting resource, or revokes its consent on the
/// log.
async fn delete(
    State(portal): State<Portal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let now = Utc::now();
    let deleted = own(&portal, &headers, ("DELETE", Kind::Access, &id, ""), now)
        .and_then(|intent| portal.server.delete_intent(&intent.app, &id, now));
    let revoke = match deleted {
        Ok(revoke) => revoke,
        Err(error) => return refusal(&headers, error),
    };
    if let Some(consent) = revoke
        && let Err(error) = revoke_on_log(
            &portal,
            consent,
            "account access consent deleted by the app",
        )
        .await
    {
        return refusal(
            &headers,
            ObError::new(ObCode::LedgerUnavailable, error.description),
        );
    }
    // No body; the FAPI layer adds the interaction id.
    StatusCode::NO_CONTENT.into_response()
}

/// `GET .../funds-confirmation`: whether the paying account holds the payment's amount
/// now, for an authorised payment consent.
async fn funds(
    State(portal): State<Portal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let now = Utc::now();
    let checked = own(
        &portal,
        &headers,
        (
            "GET",
            Kind::Payment(PaymentKind::Now),
            &id,
            "/funds-confirmation",
        ),
        now,
    )
    .and_then(|intent| debtor_and_amount(&portal, &intent));
    let (debtor, amount) = match checked {
        Ok(found) => found,
        Err(error) => return refusal(&headers, error),
    };
    let Some(bank) = portal.app.bank.as_ref() else {
        return refusal(&headers, ObError::new(ObCode::NotFound, "not a bank node"));
    };
    let connector = bank.adapter.connector();
    let balances = tokio::task::spawn_blocking(move || connector.balances(&debtor)).await;
    let available = match balances {
        Ok(Ok(list)) => list
            .iter()
            .find(|b| b.kind == "InterimAvailable" && b.amount.currency == amount.currency)
            .map(|b| match b.credit_debit {
                CreditDebit::Credit => b.amount.minor,
                CreditDebit::Debit => -b.amount.minor,
            }),
        Ok(Err(error)) => return refusal(&headers, error.into()),
        Err(error) => {
            return refusal(
                &headers,
                ObError::new(ObCode::BankUnavailable, error.to_string()),
            );
        }
    };
    let result = json!({ "Data": { "FundsAvailableResult": {
        "FundsAvailableDateTime": now.to_rfc3339_opts(SecondsFormat::Secs, false),
        "FundsAvailable": available.is_some_and(|minor| minor >= amount.minor),
    }}, "Links": { "Self": portal.server.url(&format!("{PAYMENT_CONSENTS_PATH}/{id}/funds-confirmation")) }, "Meta": {} });
    answer(&headers, StatusCode::OK, result)
}

/// The paying account and amount of an authorised payment consent.
fn debtor_and_amount(
    portal: &Portal,
    intent: &Intent,
) -> Result<(String, consentnet_bank_adapter::connector::Money), ObError> {
    let Stage::Authorised(consent) = intent.stage else {
        return Err(ObError::new(
            ObCode::ConsentNotAuthorised,
            "funds are confirmed only for an authorised payment consent",
        ));
    };
    let initiation = intent.initiation.clone().unwrap_or_default();
    let amount = consentnet_bank_adapter::payments::initiation_amount(&initiation)?;
    let debtor = match initiation["DebtorAccount"]["Identification"].as_str() {
        Some(debtor) => debtor.to_owned(),
        None => portal
            .app
            .service
            .read(|replica| {
                replica
                    .state()
                    .consent(&consent)
                    .and_then(|c| c.terms.accounts.first().cloned())
            })
            .ok_or_else(|| {
                ObError::new(ObCode::ResourceNotFound, "the consent names no account")
            })?,
    };
    Ok((debtor, amount))
}
