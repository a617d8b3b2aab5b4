//! The legacy simulator's future-dated orders, in its own shapes: `POST /api/legacy/sched` and `/api/legacy/so` (pence, `dd/mm/yyyy` dates, `EVERY` MONTH or WEEK with a `COUNT`), read back at `.../one?ref=`.

use axum::Json;
use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::legacy::{LEGACY_TIME, authorized, order_from, payment_failure};
use super::legacy_standing::{scheduled_row, standing_row};
use super::{Bank, refuse, text};
use crate::connector::{BankConnector, Money, ScheduledOrder, StandingOrderOrder};
use crate::payments::schedule::{self, End, Frequency};
use crate::sandbox::SandboxBank;

/// The routes.
pub(super) fn routes() -> Router<std::sync::Arc<SandboxBank>> {
    Router::new()
        .route("/api/legacy/sched", post(schedule))
        .route("/api/legacy/sched/one", get(scheduled))
        .route("/api/legacy/so", post(set_up))
        .route("/api/legacy/so/one", get(standing))
}

#[derive(Debug, Deserialize)]
struct One {
    r#ref: String,
}

fn time(body: &Value, pointer: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(&text(body, pointer), LEGACY_TIME)
        .ok()
        .map(|t| t.and_utc())
}

/// The dedupe key, or the refusal this core gives without one.
fn dedupe_key(headers: &HeaderMap) -> Result<&str, (StatusCode, &'static str)> {
    if !authorized(headers) {
        return Err((StatusCode::FORBIDDEN, "BAD KEY"));
    }
    headers
        .get("x-dedupe-key")
        .and_then(|v| v.to_str().ok())
        .ok_or((StatusCode::BAD_REQUEST, "NO DEDUPE KEY"))
}

async fn schedule(bank: Bank, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let key = match dedupe_key(&headers) {
        Ok(key) => key,
        Err((status, why)) => return refuse(status, why),
    };
    let (Some(order), Some(execution)) = (order_from(&body), time(&body, "/ON")) else {
        return refuse(StatusCode::BAD_REQUEST, "BAD ORDER");
    };
    match bank.create_scheduled_payment(key, &ScheduledOrder { order, execution }) {
        Ok(payment) => Json(scheduled_row(&payment)).into_response(),
        Err(error) => payment_failure(error),
    }
}

/// The standing order a body describes; the simulator works out its dates as a core would.
fn standing_order(body: &Value) -> Option<StandingOrderOrder> {
    let order = order_from(body)?;
    let code = match text(body, "/EVERY").as_str() {
        "MONTH" => "MNTH",
        "WEEK" => "WEEK",
        _ => return None,
    };
    let first = time(body, "/FIRST")?;
    let count = body.pointer("/COUNT")?.as_u64()?;
    let dates = schedule::dates(
        Frequency::parse(code)?,
        first,
        None,
        End::Count(usize::try_from(count).ok()?),
    )
    .ok()?;
    let pence = |pointer: &str| {
        Some(Money {
            minor: body.pointer(pointer)?.as_i64()?,
            currency: order.amount.currency.clone(),
        })
    };
    Some(StandingOrderOrder {
        recurring_amount: pence("/NEXT_PENCE")?,
        final_amount: pence("/LAST_PENCE")?,
        order,
        frequency: code.to_owned(),
        first,
        dates,
    })
}

async fn set_up(bank: Bank, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let key = match dedupe_key(&headers) {
        Ok(key) => key,
        Err((status, why)) => return refuse(status, why),
    };
    let Some(order) = standing_order(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "BAD ORDER");
    };
    match bank.create_standing_order(key, &order) {
        Ok(record) => Json(standing_row(&record)).into_response(),
        Err(error) => payment_failure(error),
    }
}

async fn scheduled(bank: Bank, Query(one): Query<One>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return refuse(StatusCode::FORBIDDEN, "BAD KEY");
    }
    match bank.scheduled_payment(&one.r#ref) {
        Ok(payment) => Json(scheduled_row(&payment)).into_response(),
        Err(error) => payment_failure(error),
    }
}

async fn standing(bank: Bank, Query(one): Query<One>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return refuse(StatusCode::FORBIDDEN, "BAD KEY");
    }
    match bank.standing_order(&one.r#ref) {
        Ok(record) => Json(standing_row(&record)).into_response(),
        Err(error) => payment_failure(error),
    }
}
