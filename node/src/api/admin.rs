//! The bank's own endpoints: the connector admin API and link codes behind the admin token, and the client's redemption of a link code.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use consentnet_bank_adapter::api::Adapter;
use consentnet_bank_adapter::dry_run::{DryRun, dry_run};
use consentnet_bank_adapter::links::{LinkError, LinkRequest, Links};
use consentnet_bank_adapter::mapping::{Mapping, MappingConnector};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiCode, ApiError, AppState, blocking, body, parse_json, query};
use crate::bank::ConnectorAdmin;

pub(super) fn admin(state: &AppState, headers: &HeaderMap) -> Result<ConnectorAdmin, ApiError> {
    let admin = state
        .bank
        .as_ref()
        .map(|bank| bank.admin.clone())
        .ok_or_else(|| {
            ApiError::new(
                ApiCode::NotABankNode,
                "only bank nodes have bank connectors",
            )
        })?;
    if admin.token.is_none() {
        return Err(ApiError::new(
            ApiCode::AdminDisabled,
            "set adapter.admin_token_file to enable the bank admin API",
        ));
    }
    let given = headers.get("x-admin-token").and_then(|v| v.to_str().ok());
    if !admin.allows(given) {
        return Err(ApiError::new(
            ApiCode::AdminTokenInvalid,
            "x-admin-token is missing or wrong",
        ));
    }
    Ok(admin)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PutConnectorQuery {
    /// An account the core holds, for the dry run's reads.
    account: Option<String>,
    /// Install even when the dry run fails.
    #[serde(default)]
    force: bool,
}

/// Longest sample account reference taken.
const MAX_SAMPLE_ACCOUNT: usize = 128;

/// Parses `text` as a mapping and dry-runs it against its core from this node.
async fn dry_run_of(
    admin: &ConnectorAdmin,
    text: String,
    account: Option<String>,
) -> Result<DryRun, ApiError> {
    if account
        .as_ref()
        .is_some_and(|a| a.is_empty() || a.len() > MAX_SAMPLE_ACCOUNT)
    {
        return Err(ApiError::new(
            ApiCode::InvalidQuery,
            format!("account: 1 to {MAX_SAMPLE_ACCOUNT} characters"),
        ));
    }
    std::fs::create_dir_all(&admin.dir)
        .map_err(|e| ApiError::internal(format!("the connectors folder: {e}")))?;
    let mapping = Mapping::parse_in("request body", &text, &admin.dir)
        .map_err(|e| ApiError::new(ApiCode::InvalidMapping, e.to_string()))?;
    blocking(move || {
        let payments = mapping.create_payment.is_some();
        let connector = MappingConnector::new(mapping);
        dry_run(&connector, account.as_deref(), payments)
    })
    .await
}

/// `PUT /v1/admin/connector[?account=ID][&force=true]`: dry-runs the mapping against its
/// core, then installs it; a failed dry run is refused with its report unless forced.
pub(super) async fn put_connector(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<PutConnectorQuery>, QueryRejection>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let admin = admin(&state, &headers)?;
    let params = query(params)?;
    let bytes = body(bytes)?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::new(ApiCode::InvalidMapping, "the mapping file is not UTF-8"))?;
    let report = dry_run_of(&admin, text.clone(), params.account).await?;
    if !report.passed && !params.force {
        let error = ApiError::new(
            ApiCode::ConnectorDryRunFailed,
            "the mapping's dry run against its core failed; nothing was installed (see dry_run, or force=true)",
        );
        let body =
            json!({ "code": error.code.as_str(), "message": error.message, "dry_run": report });
        return Ok((error.status(), Json(body)).into_response());
    }
    let name = blocking(move || admin.install(&text))
        .await?
        .map_err(|e| ApiError::new(ApiCode::InvalidMapping, e.to_string()))?;
    Ok(Json(json!({ "installed": name, "dry_run": report })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TestConnectorRequest {
    mapping: String,
    account: Option<String>,
}

/// `POST /v1/admin/connector/test`: the dry run of a mapping against its core, from this
/// node, without installing it.
pub(super) async fn test_connector(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<DryRun>, ApiError> {
    let admin = admin(&state, &headers)?;
    let request: TestConnectorRequest = parse_json(&body(bytes)?)?;
    Ok(Json(
        dry_run_of(&admin, request.mapping, request.account).await?,
    ))
}

pub(super) async fn delete_connector(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let admin = admin(&state, &headers)?;
    blocking(move || admin.remove_all())
        .await?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(json!({ "installed": "sandbox" })))
}

/// The bank's links and its adapter, or `not_a_bank`.
fn bank_links(state: &AppState) -> Result<(Arc<Links>, Arc<Adapter>), ApiError> {
    match (&state.links, &state.bank) {
        (Some(links), Some(bank)) => Ok((links.clone(), bank.adapter.clone())),
        _ => Err(ApiError::new(
            ApiCode::NotABankNode,
            "only bank nodes link clients to accounts",
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LinkCodeRequest {
    customer: String,
    accounts: Vec<String>,
}

/// `POST /v1/admin/link-codes`: the bank's own channel asks for a one-time code that links
/// a DID to one customer's accounts; every account must exist in the bank core.
pub(super) async fn issue_link_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    admin(&state, &headers)?;
    let (links, adapter) = bank_links(&state)?;
    let request: LinkCodeRequest = parse_json(&body(bytes)?)?;
    let wanted = request.accounts.clone();
    let found = blocking(move || adapter.connector().accounts(&wanted))
        .await?
        .map_err(|e| ApiError::new(ApiCode::BankCoreFailed, e.to_string()))?;
    if let Some(missing) = request
        .accounts
        .iter()
        .find(|a| !found.iter().any(|f| &f.account_id == *a))
    {
        return Err(ApiError::new(
            ApiCode::UnknownAccount,
            format!("accounts: {missing} is not an account in this bank's core"),
        ));
    }
    let issued = links
        .issue_code(&request.customer, &request.accounts, chrono::Utc::now())
        .map_err(ApiError::from)?;
    Ok((StatusCode::CREATED, Json(json!(issued))).into_response())
}

/// `POST /v1/links`: a client redeems a link code with a proof signed by the DID to link;
/// the answer lists the accounts, by their opaque references, that the DID now holds.
pub(super) async fn redeem_link(
    State(state): State<AppState>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (links, adapter) = bank_links(&state)?;
    let request: LinkRequest = parse_json(&body(bytes)?)?;
    let bank = state.service.did().clone();
    let link = blocking(move || {
        let link = links.redeem(&bank, &request, chrono::Utc::now())?;
        // Details are a courtesy: the link stands even if the core is slow right now.
        let details = adapter
            .connector()
            .accounts(&link.accounts)
            .unwrap_or_default();
        Ok::<_, LinkError>((link, details))
    })
    .await?
    .map_err(ApiError::from)?;
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
