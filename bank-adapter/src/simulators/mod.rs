//! Three bank-core simulators with deliberately different APIs over the same sandbox ledger: one that follows Berlin Group NextGenPSD2 1.3.9 to the letter, one legacy-style (other paths, field names, date and amount formats, paging, auth), one speaking ISO 20022 XML.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use crate::connector::{ConnectorError, CreditDebit};
use crate::sandbox::SandboxBank;

mod berlin;
mod iso;
mod legacy;
mod legacy_orders;
mod legacy_standing;

pub use berlin::{BerlinOptions, berlin_router};
pub use iso::ISO_CLIENT;

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
    /// An ISO 20022 XML core: camt.052, camt.053, pain.001 and pain.002.
    Iso,
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

/// The simulator's router, with default options.
pub fn router(style: Style, bank: Arc<SandboxBank>) -> Router {
    match style {
        Style::Berlin => berlin_router(bank, BerlinOptions::default()),
        Style::Legacy => legacy::router(bank),
        Style::Iso => iso::router(bank),
    }
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

fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}
