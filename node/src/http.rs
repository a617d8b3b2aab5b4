//! The node's HTTP API: submissions (consents, revocations, app manifests and decisions), consent and catalog queries, status and metrics, and the one error type every handler answers with.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use consentnet_consent_chain::event::{AppDecision, AppManifest};
use consentnet_consent_chain::validate::EventError;
use consentnet_consent_chain::{Entry, Event, FeedHead};
use consentnet_identity::{ConsentId, Did, Revocation, RevocationError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::network::NetworkHandle;
use crate::service::{NodeService, SubmitError, Submitted, Submitter};

/// Most consents one list query returns.
pub const MAX_LIST: usize = 1_000;

/// An API error: an HTTP status plus a machine-readable code and a message for people.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// The error returned for any path the API does not serve.
    pub fn not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such endpoint: {path}"),
        )
    }

    fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            message,
        )
    }
}

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> Self {
        let message = error.to_string();
        let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
        let (status, code) = match &error {
            SubmitError::Invalid(event) => match event {
                EventError::Consent(_) => (unprocessable, "invalid_consent"),
                EventError::UnknownBank(_) => (unprocessable, "unknown_bank"),
                EventError::Revocation(_) => (unprocessable, "invalid_revocation"),
                EventError::BadSignature(_) => (unprocessable, "bad_signature"),
                EventError::NotABank(_) => (StatusCode::FORBIDDEN, "not_a_bank"),
                EventError::ForeignAccessBatch { .. } => {
                    (StatusCode::FORBIDDEN, "foreign_access_batch")
                }
                EventError::Invalid(_) => (unprocessable, "invalid_event"),
                EventError::QuorumNotMet { .. } => (unprocessable, "quorum_not_met"),
            },
            SubmitError::NotEntitled(_) => (StatusCode::FORBIDDEN, "not_entitled"),
            SubmitError::NodeNotMember => (StatusCode::SERVICE_UNAVAILABLE, "node_not_member"),
            SubmitError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            SubmitError::Stopping => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
        };
        Self::new(status, code, message)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code,
            message: &self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The log, state and key.
    pub service: Arc<NodeService>,
    /// Writes submissions to the log, several at a time.
    pub submitter: Submitter,
    /// The network, when running (absent in tests of the API alone).
    pub network: Option<NetworkHandle>,
    /// The connector admin API, on bank nodes.
    pub admin: Option<crate::bank::ConnectorAdmin>,
    /// The bank's private account links, on bank nodes.
    pub links: Option<Arc<consentnet_bank_adapter::links::Links>>,
    /// The Open Banking adapter and its connector problems, on bank nodes.
    pub adapter: Option<(
        Arc<consentnet_bank_adapter::api::Adapter>,
        crate::bank::ConnectorProblem,
    )>,
}

/// Builds the node's router. It holds no socket, so tests drive it with `oneshot`.
pub fn app(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/v1/consents", post(submit_consent).get(list_consents))
        .route("/v1/consents/{id}", get(consent_status))
        .route("/v1/consents/{id}/receipt", get(consent_receipt))
        .route("/v1/consents/{id}/accesses", get(consent_accesses))
        .route("/v1/revocations", post(submit_revocation))
        .route("/v1/apps", post(submit_manifest))
        .route("/v1/apps/decisions", post(submit_decision))
        .route("/v1/catalog", get(catalog))
        .route("/v1/audit", get(audit))
        .route(
            "/v1/admin/connector",
            axum::routing::put(put_connector).delete(delete_connector),
        )
        .route("/v1/admin/link-codes", post(issue_link_code))
        .route("/v1/links", post(redeem_link))
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
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
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                rejection.body_text(),
            )
        } else {
            ApiError::bad_request("unreadable_body", rejection.body_text())
        }
    })
}

/// The query string, or a specific error naming what is wrong with it.
fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(value)| value)
        .map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("malformed_json", e.to_string()))
}

#[derive(Serialize)]
struct Receipt<'a> {
    /// The event's id (SHA-256 of its canonical JSON).
    event_id: String,
    /// False when the event was already on the log.
    new: bool,
    /// The hash of the entry holding it.
    entry_hash: String,
    /// The origin node's signed entry.
    receipt: &'a Entry,
}

/// Appends `event` to this node's feed (acknowledged once durable); the submitter
/// gossips it.
pub(crate) async fn append(state: &AppState, event: Event) -> Result<Submitted, ApiError> {
    Ok(state.submitter.submit(event).await?)
}

async fn submit(state: AppState, event: Event) -> Result<Response, ApiError> {
    let Submitted { entry, new } = append(&state, event).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    // The entry holds this event (or, when it was on the log already, the same one).
    let receipt = Receipt {
        event_id: entry.event_id().to_string(),
        new,
        entry_hash: entry.hash().to_string(),
        receipt: entry.entry(),
    };
    Ok((status, Json(receipt)).into_response())
}

async fn submit_consent(
    State(state): State<AppState>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let credential: Value = parse_json(&body(bytes)?)?;
    if !credential.is_object() {
        return Err(ApiError::bad_request(
            "malformed_json",
            "a consent credential is a JSON object",
        ));
    }
    submit(state, Event::ConsentGranted { credential }).await
}

async fn submit_revocation(
    State(state): State<AppState>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body(bytes)?;
    let revocation = blocking(move || Revocation::from_json(&bytes))
        .await?
        .map_err(|error| match error {
            RevocationError::Malformed(_) | RevocationError::TooLarge { .. } => {
                ApiError::bad_request("malformed_revocation", error.to_string())
            }
            other => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_revocation",
                other.to_string(),
            ),
        })?;
    submit(state, Event::ConsentRevoked { revocation }).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedManifest {
    manifest: AppManifest,
    signature: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedDecision {
    decision: AppDecision,
    signature: String,
}

async fn submit_manifest(
    State(state): State<AppState>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let signed: SignedManifest = parse_json(&body(bytes)?)?;
    submit(
        state,
        NodeService::app_published(signed.manifest, signed.signature),
    )
    .await
}

async fn submit_decision(
    State(state): State<AppState>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let signed: SignedDecision = parse_json(&body(bytes)?)?;
    submit(
        state,
        NodeService::app_decided(signed.decision, signed.signature),
    )
    .await
}

fn consent_id(text: &str) -> Result<ConsentId, ApiError> {
    ConsentId::parse(text).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_consent_id",
            format!("{text:?} is not a consent id (64 hex digits)"),
        )
    })
}

fn did(name: &str, text: &str) -> Result<Did, ApiError> {
    Did::parse(text).map_err(|e| ApiError::bad_request("invalid_did", format!("{name}: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AtQuery {
    at: Option<String>,
}

async fn consent_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    at: Result<Query<AtQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = consent_id(&id)?;
    let query = query(at)?;
    let at = match &query.at {
        None => Utc::now(),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|e| ApiError::bad_request("invalid_time", format!("at: {e}")))?
            .with_timezone(&Utc),
    };
    let body = state.service.read(|replica| {
        let state = replica.state();
        let status = state.consent_status(&id, at);
        let mut body = json!({
            "consent_id": id.to_string(),
            "status": status,
            "at": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        if let Some(consent) = state.consent(&id) {
            body["grant"] = json!({
                "issuer": consent.issuer,
                "app": consent.terms.app,
                "bank": consent.terms.bank,
                "accounts": consent.terms.accounts,
                "permissions": consent.terms.permissions,
                "valid_from": consent.terms.valid_from,
                "valid_until": consent.terms.valid_until,
            });
        }
        if let Some(revocation) = state.effective_revocation(&id) {
            body["revocation"] = json!(revocation);
        }
        body
    });
    Ok(Json(body))
}

async fn consent_receipt(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = consent_id(&id)?;
    let service = state.service.clone();
    let entry = blocking(move || {
        let credential = service.read(|replica| {
            replica
                .state()
                .consent(&id)
                .map(|consent| consent.credential.clone())
        });
        match credential {
            Some(credential) => service
                .locate(&Event::ConsentGranted { credential }.id())
                .map_err(|e| ApiError::internal(e.to_string())),
            None => Ok(None),
        }
    })
    .await??;
    let entry = entry.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "consent_unknown",
            format!("no grant of consent {id} is on this node's log"),
        )
    })?;
    Ok(Json(json!({
        "consent_id": id.to_string(),
        "entry_hash": entry.hash().to_string(),
        "receipt": entry,
    })))
}

/// The access records banks made under one consent, newest first, at most [`MAX_LIST`].
async fn consent_accesses(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = consent_id(&id)?;
    let body = state.service.read(|replica| {
        let mut records: Vec<Value> = replica
            .state()
            .accesses()
            .filter(|(_, record)| record.consent_id == id)
            .map(|(bank, record)| json!({ "bank": bank, "record": record }))
            .collect();
        records.sort_by_key(|r| std::cmp::Reverse(r["record"]["time"].as_u64()));
        let truncated = records.len() > MAX_LIST;
        records.truncate(MAX_LIST);
        json!({ "consent_id": id.to_string(), "accesses": records, "truncated": truncated })
    });
    Ok(Json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    client: Option<String>,
    app: Option<String>,
    bank: Option<String>,
}

async fn list_consents(
    State(state): State<AppState>,
    filters: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let query = query(filters)?;
    let filters = [
        ("client", &query.client),
        ("app", &query.app),
        ("bank", &query.bank),
    ];
    let given: Vec<(&str, &String)> = filters
        .iter()
        .filter_map(|(name, value)| value.as_ref().map(|v| (*name, v)))
        .collect();
    let [(name, value)] = given.as_slice() else {
        return Err(ApiError::bad_request(
            "one_filter_required",
            "give exactly one of client, app or bank",
        ));
    };
    let who = did(name, value)?;
    let now = Utc::now();
    let body = state.service.read(|replica| {
        let state = replica.state();
        let ids = match *name {
            "client" => state.consents_by_client(&who),
            "app" => state.consents_by_app(&who),
            _ => state.consents_by_bank(&who),
        };
        let truncated = ids.len() > MAX_LIST;
        let consents: Vec<Value> = ids
            .iter()
            .take(MAX_LIST)
            .map(|id| json!({ "consent_id": id.to_string(), "status": state.consent_status(id, now) }))
            .collect();
        json!({ "consents": consents, "truncated": truncated })
    });
    Ok(Json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogQuery {
    bank: Option<String>,
}

async fn catalog(
    State(state): State<AppState>,
    bank: Result<Query<CatalogQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let query = query(bank)?;
    let bank_text = query.bank.ok_or_else(|| {
        ApiError::bad_request("missing_parameter", "bank: the bank whose catalog to show")
    })?;
    let bank = did("bank", &bank_text)?;
    let apps = state.service.read(|replica| replica.state().catalog(&bank));
    Ok(Json(json!({ "bank": bank, "apps": apps })))
}

/// What a node reports about itself on `GET /status`.
#[derive(Debug, Serialize)]
pub struct NodeStatus {
    /// The node software's version.
    pub version: &'static str,
    /// The consortium's network name.
    pub network: String,
    /// This node's DID.
    pub did: String,
    /// Its role in the consortium (`bank`, `tsp` or `regulator`).
    pub role: Option<consentnet_consent_chain::Role>,
    /// This node's libp2p peer id.
    pub peer_id: String,
    /// libp2p listen addresses.
    pub listen: Vec<String>,
    /// Connected peers.
    pub peers: usize,
    /// Their peer ids.
    pub peer_ids: Vec<String>,
    /// Peers blocked for sending invalid messages.
    pub blocked_peers: Vec<String>,
    /// Entries held, all feeds.
    pub log_entries: u64,
    /// Every feed's head.
    pub frontier: BTreeMap<Did, FeedHead>,
    /// Entries known to exist but not held yet, per origin.
    pub lag: BTreeMap<Did, u64>,
    /// The digest of the consent state.
    pub state_digest: String,
    /// Origins caught equivocating.
    pub equivocators: Vec<String>,
    /// On bank nodes: the bank connector in service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    /// On bank nodes: why the newest mapping file was refused, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector_problem: Option<String>,
}

async fn status(State(state): State<AppState>) -> Json<NodeStatus> {
    let network = match &state.network {
        Some(network) => network.status().await.unwrap_or_default(),
        None => Default::default(),
    };
    let service = &state.service;
    let frontier = service.frontier();
    let (digest, equivocators, role) = service.read(|replica| {
        (
            replica.state().digest().to_string(),
            replica
                .equivocators()
                .iter()
                .map(ToString::to_string)
                .collect(),
            replica
                .state()
                .membership()
                .get(service.did())
                .map(|member| member.role),
        )
    });
    Json(NodeStatus {
        version: env!("CARGO_PKG_VERSION"),
        network: service.genesis().network.clone(),
        did: service.did().to_string(),
        role,
        peer_id: network.peer_id,
        listen: network.listen,
        peers: network.peers.len(),
        peer_ids: network.peers,
        blocked_peers: network.blocked,
        log_entries: frontier.values().map(|h| h.seq).sum(),
        frontier,
        lag: service.lag(),
        state_digest: digest,
        equivocators,
        connector: state
            .adapter
            .as_ref()
            .map(|(adapter, _)| adapter.connector().name().to_owned()),
        connector_problem: state
            .adapter
            .as_ref()
            .and_then(|(_, problem)| problem.get()),
    })
}

async fn metrics(State(state): State<AppState>) -> Response {
    let peers = match &state.network {
        Some(network) => network.status().await.map_or(0, |s| s.peers.len()),
        None => 0,
    };
    let text = state
        .service
        .metrics
        .render(peers, state.service.log_entries());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    propagation_bound_ms: Option<u64>,
}

/// The most a propagation bound may be: one hour.
const MAX_BOUND_MS: u64 = 3_600_000;

async fn audit(
    State(state): State<AppState>,
    params: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = query(params)?;
    let bound = params.propagation_bound_ms.unwrap_or(1_000);
    if bound > MAX_BOUND_MS {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("propagation_bound_ms: at most {MAX_BOUND_MS}"),
        ));
    }
    let service = state.service.clone();
    let config = consentnet_consent_chain::audit::AuditConfig {
        propagation_bound_ms: bound,
    };
    let report = blocking(move || service.audit(config))
        .await?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut body = serde_json::to_value(&report).map_err(|e| ApiError::internal(e.to_string()))?;
    body["summary"] = json!(report.summary());
    Ok(Json(body))
}

fn admin(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<crate::bank::ConnectorAdmin, ApiError> {
    let admin = state.admin.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_a_bank",
            "only bank nodes have bank connectors",
        )
    })?;
    if admin.token.is_none() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "admin_disabled",
            "set adapter.admin_token_file to enable the bank admin API",
        ));
    }
    let given = headers.get("x-admin-token").and_then(|v| v.to_str().ok());
    if !admin.allows(given) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "admin_token_invalid",
            "x-admin-token is missing or wrong",
        ));
    }
    Ok(admin)
}

async fn put_connector(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let admin = admin(&state, &headers)?;
    let bytes = body(bytes)?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::bad_request("invalid_mapping", "the mapping file is not UTF-8"))?;
    let name = blocking(move || admin.install(&text))
        .await?
        .map_err(|e| ApiError::bad_request("invalid_mapping", e.to_string()))?;
    Ok(Json(json!({ "installed": name })))
}

async fn delete_connector(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let admin = admin(&state, &headers)?;
    blocking(move || admin.remove_all())
        .await?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(json!({ "installed": "sandbox" })))
}

/// The bank's links and its adapter, or `not_a_bank`.
fn bank_links(
    state: &AppState,
) -> Result<
    (
        Arc<consentnet_bank_adapter::links::Links>,
        Arc<consentnet_bank_adapter::api::Adapter>,
    ),
    ApiError,
> {
    match (&state.links, &state.adapter) {
        (Some(links), Some((adapter, _))) => Ok((links.clone(), adapter.clone())),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_a_bank",
            "only bank nodes link clients to accounts",
        )),
    }
}

fn link_error(error: consentnet_bank_adapter::links::LinkError) -> ApiError {
    let (status, code) = error.status_code();
    ApiError::new(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        code,
        error.to_string(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkCodeRequest {
    customer: String,
    accounts: Vec<String>,
}

/// `POST /v1/admin/link-codes`: the bank's own channel asks for a one-time code that links
/// a DID to one customer's accounts; every account must exist in the bank core.
async fn issue_link_code(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    admin(&state, &headers)?;
    let (links, adapter) = bank_links(&state)?;
    let request: LinkCodeRequest = parse_json(&body(bytes)?)?;
    let wanted = request.accounts.clone();
    let found = blocking(move || adapter.connector().accounts(&wanted))
        .await?
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "bank_core_failed", e.to_string()))?;
    if let Some(missing) = request
        .accounts
        .iter()
        .find(|a| !found.iter().any(|f| &f.account_id == *a))
    {
        return Err(ApiError::bad_request(
            "unknown_account",
            format!("accounts: {missing} is not an account in this bank's core"),
        ));
    }
    let issued = links
        .issue_code(&request.customer, &request.accounts, chrono::Utc::now())
        .map_err(link_error)?;
    Ok((StatusCode::CREATED, Json(json!(issued))).into_response())
}

/// `POST /v1/links`: a client redeems a link code with a proof signed by the DID to link;
/// the answer lists the accounts, by their opaque references, that the DID now holds.
async fn redeem_link(
    State(state): State<AppState>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (links, adapter) = bank_links(&state)?;
    let request: consentnet_bank_adapter::links::LinkRequest = parse_json(&body(bytes)?)?;
    let bank = state.service.did().clone();
    let link = blocking(move || {
        let link = links.redeem(&bank, &request, chrono::Utc::now())?;
        // Details are a courtesy: the link stands even if the core is slow right now.
        let details = adapter
            .connector()
            .accounts(&link.accounts)
            .unwrap_or_default();
        Ok::<_, consentnet_bank_adapter::links::LinkError>((link, details))
    })
    .await?
    .map_err(link_error)?;
    let (link, details) = link;
    let accounts: Vec<Value> = link
        .accounts
        .iter()
        .map(|id| {
            let detail = details.iter().find(|d| &d.account_id == id);
            json!({
                "account_id": id,
                "currency": detail.map(|d| d.currency.clone()),
                "account_sub_type": detail.map(|d| d.account_sub_type.clone()),
                "nickname": detail.and_then(|d| d.nickname.clone()),
            })
        })
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(json!({ "bank": state.service.did(), "did": link.did, "accounts": accounts })),
    )
        .into_response())
}

async fn fallback(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(uri.path())
}
