//! The node's HTTP API: the public router (submissions of signed objects, reads of the log, the catalog, link redemption) and the operator router (status, metrics, audit, the bank's admin endpoints), and what their handlers share.

mod accesses;
mod admin;
mod admit;
mod bundles;
mod consents;
mod error;
mod guard;
mod reader;
mod retention;
mod status;
mod status_list;
mod submit;
mod vcapi;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query};
use axum::http::StatusCode;
use axum::routing::{get, post};
use consentnet_identity::{ConsentId, Did};

pub use consents::MAX_LIST;
pub use error::{ApiCode, ApiError};
pub use guard::require_admin_token;
pub use reader::{READ_PROOF_HEADER, READ_PROOF_WINDOW_SECS};
pub use status::NodeStatus;
pub(crate) use submit::append;

use consentnet_bank_adapter::links::Links;

use crate::bank::Bank;
use crate::core::{NodeService, Submitter};
use crate::p2p::NetworkHandle;

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The log, state and key.
    pub service: Arc<NodeService>,
    /// Writes submissions to the log, several at a time.
    pub submitter: Submitter,
    /// The network, when running (absent in tests of the API alone).
    pub network: Option<NetworkHandle>,
    /// The bank role, on bank nodes.
    pub bank: Option<Bank>,
    /// The bank's private account links (which client DID holds which accounts), on bank
    /// nodes: grant admission, linking and the portal's approvals consult them.
    pub links: Option<Arc<Links>>,
    /// The base URL other parties address this node at; signed reads name it.
    pub public_url: String,
}

impl AppState {
    /// Audits the log (blocking), with the access records this node holds checked
    /// against their commitments: a bank's own, or a regulator's copies of every bank's.
    /// Batches not held count as unavailable.
    pub fn audit(
        &self,
        config: consentnet_consent_chain::audit::AuditConfig,
    ) -> Result<consentnet_consent_chain::audit::AuditReport, crate::core::AuditError> {
        use crate::core::HeldRecords;
        match self.service.held_records() {
            Some(HeldRecords::Own(store)) => {
                let own = consentnet_consent_chain::store::records::BankRecords {
                    bank: self.service.did(),
                    store,
                };
                self.service.audit(config, &own)
            }
            Some(HeldRecords::Fetched(fetched)) => self.service.audit(config, fetched),
            None => self
                .service
                .audit(config, &consentnet_consent_chain::audit::NoRecords),
        }
    }
}

/// The public routes: what any party may reach.
pub fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(status::healthz))
        .route("/.well-known/consentnet-node", get(status::identity))
        .route(
            "/v1/consents",
            post(submit::submit_consent).get(consents::list_consents),
        )
        .route("/v1/consents/{id}", get(consents::consent_status))
        .route("/v1/consents/{id}/receipt", get(consents::consent_receipt))
        .route(
            "/v1/consents/{id}/accesses",
            get(accesses::consent_accesses),
        )
        .route("/v1/revocations", post(submit::submit_revocation))
        .route("/v1/apps/decisions", post(submit::submit_decision))
        .route("/v1/catalog", get(consents::catalog))
        .route("/v1/links", post(admin::redeem_link))
        .route("/credentials/verify", post(vcapi::verify_credential))
        .route("/presentations/verify", post(vcapi::verify_presentation))
        .route(vcapi::CONTEXT_PATH, get(vcapi::consent_context))
        .route(
            "/status/revocation/{list}",
            get(status_list::revocation_list),
        )
}

/// The operator routes: status, metrics, the audit and the bank's admin endpoints.
pub fn operator_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(status::healthz))
        .route("/status", get(status::status))
        .route("/metrics", get(status::metrics))
        .route("/v1/audit", get(status::audit))
        .route("/v1/refusals", get(status::refusals))
        .route("/v1/apps", post(submit::submit_manifest))
        .route(
            "/v1/bundles/files/{sha256}",
            axum::routing::put(bundles::put_file)
                .layer(DefaultBodyLimit::max(bundles::MAX_UPLOAD_BYTES)),
        )
        .route(
            "/v1/admin/connector",
            axum::routing::put(admin::put_connector).delete(admin::delete_connector),
        )
        .route("/v1/admin/connector/test", post(admin::test_connector))
        .route("/v1/admin/link-codes", post(admin::issue_link_code))
        .route("/v1/admin/records/prune", post(retention::prune_records))
        .route("/credentials/issue", post(vcapi::issue))
}

/// The public listener's node routes, with their fallback and body limit. It holds no
/// socket, so tests drive it with `oneshot`.
pub fn public_app(state: AppState, max_body_bytes: usize) -> Router {
    public_routes()
        .fallback(error::fallback)
        .layer(axum::middleware::from_fn(guard::json_only))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

/// The operator listener's node routes, with their fallback and body limit.
pub fn operator_app(state: AppState, max_body_bytes: usize) -> Router {
    operator_routes()
        .fallback(error::fallback)
        .layer(axum::middleware::from_fn(guard::json_only))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

/// Runs blocking work (the log, signature checks) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("worker failed: {e}")))
}

/// The request body, or a specific error for an oversized or unreadable one.
fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ApiCode::BodyTooLarge, rejection.body_text())
        } else {
            ApiError::new(ApiCode::UnreadableBody, rejection.body_text())
        }
    })
}

/// The query string, or a specific error naming what is wrong with it.
fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(value)| value)
        .map_err(|rejection| ApiError::new(ApiCode::InvalidQuery, rejection.body_text()))
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    consentnet_identity::strict::from_slice(bytes)
        .map_err(|e| ApiError::new(ApiCode::MalformedJson, e.to_string()))
}

fn consent_id(text: &str) -> Result<ConsentId, ApiError> {
    ConsentId::parse(text).ok_or_else(|| {
        ApiError::new(
            ApiCode::InvalidConsentId,
            format!("{text:?} is not a consent id (64 hex digits)"),
        )
    })
}

fn did(name: &str, text: &str) -> Result<Did, ApiError> {
    Did::parse(text).map_err(|e| ApiError::new(ApiCode::InvalidDid, format!("{name}: {e}")))
}
