//! The portal's operator pages: the bank's page (sign in with the admin token; review mini-app versions; approve app versions with per-app permissions and origins, or suspend them, signed by the bank's key) and the regulator's page (log health per feed, consents and revocations over time, accesses per app, the audit's violations).

mod bank;
mod diff;
mod regulator;
mod review;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};

use crate::portal::html::refusal_page;
use crate::portal::state::Portal;

/// The operator pages' routes.
pub fn routes(portal: Portal) -> Router {
    Router::new()
        .route("/portal/bank", get(bank::bank_page))
        .route("/portal/bank/sign-in", post(bank::bank_sign_in))
        .route("/portal/bank/decisions", post(bank::bank_decide))
        .route("/portal/bank/review", get(review::review_file))
        .route("/portal/regulator", get(regulator::regulator_page))
        .with_state(portal)
}

fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    refusal_page(
        status,
        "Not done",
        code,
        message,
        "<p><a href=\"/portal/bank\">Back</a></p>",
    )
}
