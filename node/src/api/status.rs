//! What a node says about itself: liveness, status, Prometheus metrics, and the audit of its whole log.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use consentnet_consent_chain::FeedHead;
use consentnet_identity::Did;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ApiCode, ApiError, AppState, blocking, query};
use crate::core::AuditError;

/// `GET /healthz`: `ok`, or `503 store_unavailable` while the log refuses writes.
pub(super) async fn healthz(State(state): State<AppState>) -> Response {
    if state.service.writable() {
        "ok".into_response()
    } else {
        ApiError::new(
            ApiCode::StoreUnavailable,
            "not ready: the log refuses writes (see the node's log for the cause)",
        )
        .into_response()
    }
}

/// `GET /.well-known/consentnet-node`: who this node is, as the genesis already tells
/// every member (its DID, role and network), for clients that sign objects for it.
pub(super) async fn identity(State(state): State<AppState>) -> Json<Value> {
    let service = &state.service;
    let role = service
        .genesis()
        .membership()
        .get(service.did())
        .map(|member| member.role);
    let mut identity = json!({
        "did": service.did(),
        "role": role,
        "network": service.genesis().network,
        "version": env!("CARGO_PKG_VERSION"),
    });
    // A bank names its revocation status list: a consent here names it with a random
    // index (W3C Bitstring Status List).
    if let Some(bank) = state.bank.as_ref() {
        identity["status_list"] = json!(bank.status.url());
    }
    Json(identity)
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
    /// Members whose entries came stamped beyond the clock-skew bound, with the last
    /// skew seen in ms (positive: ahead of this node's clock, and refused).
    pub clock_skew_ms: BTreeMap<Did, i64>,
    /// On bank nodes: the bank connector in service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    /// On bank nodes: why the newest mapping file was refused, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector_problem: Option<String>,
}

pub(super) async fn status(State(state): State<AppState>) -> Json<NodeStatus> {
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
        clock_skew_ms: service.clock_skew(),
        connector: state
            .bank
            .as_ref()
            .map(|bank| bank.adapter.connector().name().to_owned()),
        connector_problem: state.bank.as_ref().and_then(|bank| bank.problem.get()),
    })
}

pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let peers = match &state.network {
        Some(network) => network.status().await.map_or(0, |s| s.peers.len()),
        None => 0,
    };
    let mut text = state
        .service
        .metrics
        .render(peers, state.service.log_entries());
    if let Some(bank) = &state.bank {
        text.push_str(&format!(
            "# HELP consentnet_unproven_refusals_total Unified API calls refused before their proof verified with the consent's app key (kept on this node, not recorded on the log).\n\
             # TYPE consentnet_unproven_refusals_total counter\n\
             consentnet_unproven_refusals_total {}\n",
            bank.adapter.unproven.total()
        ));
        text.push_str(&core_refusals(bank.adapter.connector().core_refusals()));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// The bank core's refusals of the connector in service as a Prometheus counter.
fn core_refusals(counts: Vec<consentnet_bank_adapter::connector::CoreRefusalCount>) -> String {
    let label = |text: &str| text.replace('\\', "\\\\").replace('"', "\\\"");
    let mut text = String::from(
        "# HELP consentnet_bank_core_refusals_total Requests the bank core answered with an error the mapping does not expect (bank_core_refused), by operation, the core's status and its own code; since the connector went into service.\n\
         # TYPE consentnet_bank_core_refusals_total counter\n",
    );
    for count in counts {
        text.push_str(&format!(
            "consentnet_bank_core_refusals_total{{operation=\"{}\",status=\"{}\",code=\"{}\"}} {}\n",
            label(&count.operation),
            count.status,
            label(&count.code),
            count.count
        ));
    }
    text
}

/// `GET /v1/refusals` (bank nodes): the unified API's calls refused before their proof
/// verified, which stay on this node: their count and the newest ones.
pub(super) async fn refusals(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let bank = state.bank.as_ref().ok_or_else(|| {
        ApiError::new(
            ApiCode::NotABankNode,
            "only bank nodes serve the unified API",
        )
    })?;
    let unproven = &bank.adapter.unproven;
    Ok(Json(json!({
        "total": unproven.total(),
        "recent": unproven.recent(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    propagation_bound_ms: Option<u64>,
}

/// The most a propagation bound may be: one hour.
const MAX_BOUND_MS: u64 = 3_600_000;

pub(super) async fn audit(
    State(state): State<AppState>,
    params: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = query(params)?;
    let bound = params.propagation_bound_ms.unwrap_or(1_000);
    if bound > MAX_BOUND_MS {
        return Err(ApiError::new(
            ApiCode::InvalidQuery,
            format!("propagation_bound_ms: at most {MAX_BOUND_MS}"),
        ));
    }
    let config = consentnet_consent_chain::audit::AuditConfig {
        propagation_bound_ms: bound,
        ..Default::default()
    };
    let report = blocking(move || state.audit(config))
        .await?
        .map_err(|e| match e {
            AuditError::Busy => ApiError::new(ApiCode::AuditBusy, e.to_string()).retry_after(5),
            AuditError::Store(e) => ApiError::internal(e.to_string()),
        })?;
    let mut body = serde_json::to_value(&report).map_err(|e| ApiError::internal(e.to_string()))?;
    body["summary"] = json!(report.summary());
    Ok(Json(body))
}
