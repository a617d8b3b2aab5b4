//! The Event Notification API's aggregated polling (OBIE v4.0 `POST /events`, RFC 8936) on a bank node: an app, with its client credentials token and proof, acknowledges the SETs it has and takes those still waiting for it.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use chrono::Utc;
use consentnet_bank_adapter::fapi::{answer, refusal};
use consentnet_bank_adapter::{ObCode, ObError};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::bank::events::MAX_EVENTS_PER_POLL;
use crate::portal::state::Portal;

/// Where apps poll.
pub const EVENTS_PATH: &str = "/open-banking/v4.0/events";
/// The largest polling request taken, in bytes.
const MAX_POLL_BODY: usize = 64 * 1024;
/// Acknowledgements (and errors) taken in one poll at most.
const MAX_ACKS: usize = 1_000;

/// `OBEventPolling1`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Polling {
    max_events: Option<i64>,
    #[serde(rename = "returnImmediately")]
    _return_immediately: Option<bool>,
    #[serde(default)]
    ack: Vec<String>,
    #[serde(default)]
    set_errs: Map<String, Value>,
}

/// The routes, with the FAPI header checks and DPoP nonces of every OBIE endpoint.
pub fn routes(portal: Portal) -> Router {
    let server = portal.server.clone();
    let router = Router::new()
        .route(
            EVENTS_PATH,
            post(poll).layer(axum::extract::DefaultBodyLimit::max(MAX_POLL_BODY)),
        )
        .with_state(portal);
    super::dpop::offering_nonces(router, server).layer(axum::middleware::from_fn(
        consentnet_bank_adapter::fapi::headers,
    ))
}

fn bad(message: impl Into<String>) -> ObError {
    ObError::new(ObCode::MalformedJson, message)
}

/// `POST /events`: the acknowledged (and refused) SETs are dropped, then up to
/// `maxEvents` (default 10, at most 100; 0 only acknowledges) waiting ones are answered.
async fn poll(
    State(portal): State<Portal>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    let now = Utc::now();
    let answered = (|| {
        let app = super::consents::caller(&portal, &headers, "POST", EVENTS_PATH, now)?;
        let notifications = portal
            .app
            .bank
            .as_ref()
            .map(|bank| bank.events.clone())
            .ok_or_else(|| ObError::new(ObCode::NotFound, "this node is not a bank"))?;
        let bytes = bytes.map_err(|r| bad(r.body_text()))?;
        let polling: Polling = if bytes.is_empty() {
            Polling::default()
        } else {
            consentnet_identity::strict::from_slice(&bytes).map_err(|e| bad(e.to_string()))?
        };
        let max = match polling.max_events {
            None => 10,
            Some(n) if (0..=MAX_EVENTS_PER_POLL as i64).contains(&n) => n as usize,
            Some(_) => {
                return Err(bad(format!("maxEvents: 0 to {MAX_EVENTS_PER_POLL}")));
            }
        };
        if polling.ack.len() + polling.set_errs.len() > MAX_ACKS {
            return Err(bad(format!(
                "at most {MAX_ACKS} acknowledgements and errors in one poll"
            )));
        }
        if !polling.set_errs.is_empty() {
            tracing::info!(%app, count = polling.set_errs.len(), "an app reported events it could not take");
        }
        let mut done = polling.ack;
        done.extend(polling.set_errs.keys().cloned());
        let (sets, more) = notifications.poll(&app, &done, max);
        let sets: Map<String, Value> = sets
            .into_iter()
            .map(|(jti, set)| (jti, Value::String(set)))
            .collect();
        Ok(json!({ "sets": sets, "moreAvailable": more }))
    })();
    match answered {
        Ok(body) => answer(&headers, StatusCode::OK, body),
        Err(error) => refusal(&headers, error),
    }
}
