//! Domestic scheduled payments and standing orders on the unified API (OBIE v4.0 PIS shapes): each payment date checked against the consent's validity and every instalment counted against its limits in the period it falls due.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use consentnet_identity::VerifiedConsent;
use serde_json::{Value, json};

use super::initiation::{amount, order, order_for};
use super::once::{Order, kept_parts, once, remembered};
use super::schedule::{self, End, Frequency};
use super::{Endpoint, Initiation, MAX_PAYMENT_BODY, PIS_BASE, initiate};
use crate::api::Adapter;
use crate::call::Call;
use crate::connector::{ScheduledOrder, StandingOrderOrder};
use crate::enforce::Operation;
use crate::problem::{ObCode, ObError};

/// The routes.
pub(super) fn routes() -> Router<Arc<Adapter>> {
    let limit = || axum::extract::DefaultBodyLimit::max(MAX_PAYMENT_BODY);
    Router::new()
        .route(
            &format!("{PIS_BASE}{}", SCHEDULED.path),
            post(create_scheduled).layer(limit()),
        )
        .route(
            &format!("{PIS_BASE}/domestic-scheduled-payments/{{DomesticScheduledPaymentId}}"),
            get(read_scheduled),
        )
        .route(
            &format!("{PIS_BASE}{}", STANDING.path),
            post(create_standing).layer(limit()),
        )
        .route(
            &format!("{PIS_BASE}/domestic-standing-orders/{{DomesticStandingOrderId}}"),
            get(read_standing),
        )
}

fn bad(what: impl Into<String>) -> ObError {
    ObError::new(ObCode::InvalidInitiation, what.into())
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// The date-time in `value`, named `what` in errors.
fn date_time(value: &Value, what: &str) -> Result<DateTime<Utc>, ObError> {
    value
        .as_str()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|at| at.with_timezone(&Utc))
        .ok_or_else(|| bad(format!("Data.Initiation.{what}: an ISO 8601 date-time")))
}

/// Every payment date lies within the consent: none after it ends.
fn within_consent(consent: &VerifiedConsent, dates: &[DateTime<Utc>]) -> Result<(), ObError> {
    match dates.iter().find(|at| **at > consent.terms.valid_until) {
        Some(at) => Err(ObError::new(
            ObCode::ScheduleOutsideConsent,
            format!(
                "a payment would fall due at {}, after the consent ends at {}",
                rfc3339(*at),
                rfc3339(consent.terms.valid_until)
            ),
        )),
        None => Ok(()),
    }
}

/// What the ledger remembers of a future-dated order: its initiation, the consent it
/// named and its creation time.
fn remember(made: &Initiation<'_>) -> Value {
    json!({
        "Initiation": made.initiation,
        "ConsentId": made.named,
        "CreationDateTime": rfc3339(Utc::now()),
    })
}

/// The OBIE answer for an order the bank made as `id`, from what the ledger remembers.
fn answer(
    id_field: &str,
    id: &str,
    consent: &VerifiedConsent,
    kept: &Value,
    status: &str,
) -> Value {
    let created = kept["CreationDateTime"].clone();
    let (consent, initiation) = kept_parts(kept, consent);
    json!({
        "Data": {
            id_field: id,
            "ConsentId": consent,
            "CreationDateTime": created,
            "Status": status,
            "StatusUpdateDateTime": created,
            "Initiation": initiation,
        },
        "Links": {},
        "Meta": {},
    })
}

const SCHEDULED: Endpoint = Endpoint {
    path: "/domestic-scheduled-payments",
    operation: Operation::CreateScheduledPayment,
    make: make_scheduled,
};

/// The scheduled payment an OBIE initiation describes, paid from `debtor`: its
/// execution date must be in the future.
pub fn scheduled_order(initiation: &Value, debtor: &str) -> Result<ScheduledOrder, ObError> {
    let execution = date_time(
        &initiation["RequestedExecutionDateTime"],
        "RequestedExecutionDateTime",
    )?;
    if execution <= Utc::now() {
        return Err(bad(
            "Data.Initiation.RequestedExecutionDateTime: must be in the future",
        ));
    }
    Ok(ScheduledOrder {
        order: order(initiation, debtor)?,
        execution,
    })
}

fn make_scheduled(made: &Initiation<'_>) -> Result<Value, ObError> {
    let scheduled = scheduled_order(made.initiation, made.debtor)?;
    within_consent(made.consent, &[scheduled.execution])?;
    let (payment, kept) = once(
        made.ledger,
        made.connector,
        made.consent,
        made.key,
        &scheduled,
        |_| remember(made),
    )?;
    let id = ScheduledOrder::id(&payment);
    Ok(answer(
        "DomesticScheduledPaymentId",
        id,
        made.consent,
        &kept,
        "PDNG",
    ))
}

const STANDING: Endpoint = Endpoint {
    path: "/domestic-standing-orders",
    operation: Operation::CreateStandingOrder,
    make: make_standing,
};

/// The standing order an OBIE initiation describes, paid from `debtor`: a frequency
/// offered, a first payment not before today, and an end (a number of payments or a
/// final date) within [`schedule::MAX_PAYMENTS`].
pub fn standing_order(initiation: &Value, debtor: &str) -> Result<StandingOrderOrder, ObError> {
    let first_amount = amount(initiation, "FirstPaymentAmount")?;
    let recurring_amount = match initiation.get("RecurringPaymentAmount") {
        Some(_) => amount(initiation, "RecurringPaymentAmount")?,
        None => first_amount.clone(),
    };
    let final_amount = match initiation.get("FinalPaymentAmount") {
        Some(_) => amount(initiation, "FinalPaymentAmount")?,
        None => recurring_amount.clone(),
    };
    if [&recurring_amount, &final_amount]
        .iter()
        .any(|m| m.currency != first_amount.currency)
    {
        return Err(bad("Data.Initiation: every payment amount in one currency"));
    }
    let mandate = &initiation["MandateRelatedInformation"];
    let frequency = &mandate["Frequency"];
    if frequency.get("CountPerPeriod").is_some() || frequency.get("PointInTime").is_some() {
        return Err(bad(
            "Data.Initiation.MandateRelatedInformation.Frequency: CountPerPeriod and PointInTime are not offered",
        ));
    }
    let code = frequency["Type"].as_str().unwrap_or_default();
    let parsed = Frequency::parse(code).ok_or_else(|| {
        bad(format!(
            "Data.Initiation.MandateRelatedInformation.Frequency.Type {code:?} is not offered; use one of {}",
            schedule::OFFERED
        ))
    })?;
    let first = date_time(
        &mandate["FirstPaymentDateTime"],
        "MandateRelatedInformation.FirstPaymentDateTime",
    )?;
    if first.date_naive() < Utc::now().date_naive() {
        return Err(bad(
            "Data.Initiation.MandateRelatedInformation.FirstPaymentDateTime: not before today",
        ));
    }
    let recurring = match mandate.get("RecurringPaymentDateTime") {
        Some(value) => Some(date_time(value, "MandateRelatedInformation.RecurringPaymentDateTime")?)
            .filter(|at| *at > first)
            .map(Some)
            .ok_or_else(|| bad("Data.Initiation.MandateRelatedInformation.RecurringPaymentDateTime: after the first payment"))?,
        None => None,
    };
    let end = match (
        initiation.get("NumberOfPayments"),
        mandate.get("FinalPaymentDateTime"),
    ) {
        (Some(count), _) => End::Count(
            count
                .as_str()
                .and_then(|c| c.parse::<usize>().ok())
                .filter(|c| (1..=schedule::MAX_PAYMENTS).contains(c))
                .ok_or_else(|| {
                    bad(format!(
                        "Data.Initiation.NumberOfPayments: 1 to {}",
                        schedule::MAX_PAYMENTS
                    ))
                })?,
        ),
        (None, Some(last)) => End::Until(date_time(
            last,
            "MandateRelatedInformation.FinalPaymentDateTime",
        )?),
        (None, None) => {
            return Err(bad(
                "Data.Initiation: give NumberOfPayments or MandateRelatedInformation.FinalPaymentDateTime (open-ended standing orders are not offered)",
            ));
        }
    };
    let dates = schedule::dates(parsed, first, recurring, end)
        .map_err(|e| bad(format!("Data.Initiation.MandateRelatedInformation: {e}")))?;
    if let (End::Count(_), Some(last)) = (end, mandate.get("FinalPaymentDateTime")) {
        let last = date_time(last, "MandateRelatedInformation.FinalPaymentDateTime")?;
        if dates.last().is_some_and(|at| *at > last) {
            return Err(bad(
                "Data.Initiation: NumberOfPayments runs past FinalPaymentDateTime",
            ));
        }
    }
    Ok(StandingOrderOrder {
        order: order_for(initiation, debtor, first_amount)?,
        frequency: code.to_owned(),
        first,
        recurring_amount,
        final_amount,
        dates,
    })
}

fn make_standing(made: &Initiation<'_>) -> Result<Value, ObError> {
    let standing = standing_order(made.initiation, made.debtor)?;
    within_consent(made.consent, &standing.dates)?;
    let (record, kept) = once(
        made.ledger,
        made.connector,
        made.consent,
        made.key,
        &standing,
        |_| remember(made),
    )?;
    let status = if record.active { "ACTC" } else { "CANC" };
    let id = StandingOrderOrder::id(&record);
    Ok(answer(
        "DomesticStandingOrderId",
        id,
        made.consent,
        &kept,
        status,
    ))
}

async fn create_scheduled(
    State(adapter): State<Arc<Adapter>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    initiate(&SCHEDULED, adapter, headers, body).await
}

async fn create_standing(
    State(adapter): State<Arc<Adapter>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    initiate(&STANDING, adapter, headers, body).await
}

async fn read_scheduled(
    State(adapter): State<Arc<Adapter>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("{PIS_BASE}/domestic-scheduled-payments/{id}");
    let call = Call::read(
        &adapter,
        &headers,
        Operation::GetScheduledPayment,
        path,
        None,
    );
    let ledger = adapter.ledger.clone();
    call.run(move |connector, authorized| {
        let kept = remembered::<ScheduledOrder>(&ledger, &authorized.consent, &id)?;
        let payment = ScheduledOrder::read(connector.as_ref(), &id)?;
        let id = ScheduledOrder::id(&payment);
        Ok(answer(
            "DomesticScheduledPaymentId",
            id,
            &authorized.consent,
            &kept,
            "PDNG",
        ))
    })
    .await
}

async fn read_standing(
    State(adapter): State<Arc<Adapter>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("{PIS_BASE}/domestic-standing-orders/{id}");
    let call = Call::read(&adapter, &headers, Operation::GetStandingOrder, path, None);
    let ledger = adapter.ledger.clone();
    call.run(move |connector, authorized| {
        let kept = remembered::<StandingOrderOrder>(&ledger, &authorized.consent, &id)?;
        let record = StandingOrderOrder::read(connector.as_ref(), &id)?;
        let status = if record.active { "ACTC" } else { "CANC" };
        let id = StandingOrderOrder::id(&record);
        Ok(answer(
            "DomesticStandingOrderId",
            id,
            &authorized.consent,
            &kept,
            status,
        ))
    })
    .await
}
