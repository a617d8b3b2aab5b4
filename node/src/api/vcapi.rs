//! The W3C CCG VC-API on a node: `POST /credentials/verify` and `POST /presentations/verify` for anyone (any `eddsa-rdfc-2022` credential, not only consents), `POST /credentials/issue` for a bank's operator (signed with the node's own `did:key`), and consentnet's JSON-LD context served where verifiers can fetch it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use consentnet_identity::consent::block_on;
use consentnet_identity::vcapi::{self, Verification};
use serde::Deserialize;
use serde_json::{Value, json};

use std::sync::Arc;

use consentnet_identity::consent::STATUS_LIST_ENTRIES;

use super::{ApiCode, ApiError, AppState, body, parse_json};
use crate::bank::status::StatusLists;

/// Where every node serves consentnet's consent context.
pub const CONTEXT_PATH: &str = "/contexts/consent/v1";

/// `GET /contexts/consent/v1`: the JSON-LD context every consent names, cacheable for a
/// day (it never changes under its URL).
pub(super) async fn consent_context() -> Response {
    let mut response = consentnet_identity::consent::CONSENT_CONTEXT_DOCUMENT.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/ld+json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400, immutable"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VerifyCredential {
    verifiable_credential: Value,
    #[serde(default)]
    options: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VerifyPresentation {
    verifiable_presentation: Value,
    #[serde(default)]
    options: Options,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Options {
    challenge: Option<String>,
    domain: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Issue {
    credential: Value,
    #[serde(default)]
    options: Value,
}

/// A verification's answer: `200` verified, `400` read but not verified (the problems
/// named; what the W3C CCG VC-API verifier test suite expects), both in the VC-API
/// shape.
fn answer(result: &Verification) -> Response {
    let status = if result.verified {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    (status, Json(json!(result))).into_response()
}

/// What this node judges status by: the bank's own lists, when it is a bank, and the
/// log as it stood when the request came.
struct Judge {
    lists: Option<Arc<StatusLists>>,
    log: Arc<consentnet_consent_chain::State>,
}

impl Judge {
    fn of(state: &AppState) -> Self {
        Self {
            lists: state.bank.as_ref().map(|bank| bank.status.clone()),
            log: state.service.state(),
        }
    }

    /// The status of `credential`'s `entry`, as this node can judge it: an entry on this
    /// bank's own lists is read from the list; a consent on the log is revoked exactly
    /// when the log holds its revocation (what its bank's list says, every member
    /// knowing it); anything else is not fetched (`None`: a warning).
    fn judge(&self, credential: &Value, entry: &Value) -> Option<Result<bool, String>> {
        let url = entry.get("statusListCredential").and_then(Value::as_str)?;
        if let Some(lists) = self.lists.as_deref().filter(|l| l.is_ready())
            && let Some(number) = lists.number_of(url)
        {
            return Some(own_list(lists, number, entry));
        }
        let id = consentnet_identity::consent_id(credential).ok()?;
        self.log.consent(&id)?;
        let status = self.log.consent_status(&id, chrono::Utc::now());
        Some(Ok(
            status == consentnet_consent_chain::ConsentStatus::Revoked
        ))
    }
}

/// `entry`'s bit in this bank's list `number`.
fn own_list(lists: &StatusLists, number: u32, entry: &Value) -> Result<bool, String> {
    if entry.get("statusPurpose").and_then(Value::as_str) != Some("revocation") {
        return Err(format!(
            "{} is a list of statusPurpose revocation",
            lists.url_of(number)
        ));
    }
    entry
        .get("statusListIndex")
        .and_then(Value::as_str)
        .filter(|text| text.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|text| text.parse::<u32>().ok())
        .filter(|index| *index < STATUS_LIST_ENTRIES)
        .map(|index| lists.is_revoked(number, index))
        .ok_or_else(|| format!("statusListIndex: a decimal string below {STATUS_LIST_ENTRIES}"))
}

/// `POST /credentials/verify`: `{verifiableCredential, options}`.
pub(super) async fn verify_credential(
    State(state): State<AppState>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: VerifyCredential = parse_json(&body(bytes)?)?;
    if !request.options.is_null() && !request.options.is_object() {
        return Err(ApiError::new(ApiCode::MalformedJson, "options: an object"));
    }
    if !request.verifiable_credential.is_object() {
        return Err(ApiError::new(
            ApiCode::MalformedJson,
            "verifiableCredential: a credential (a JSON object)",
        ));
    }
    // The suite's futures are not Send: run on a blocking thread, as consents are.
    let credential = request.verifiable_credential;
    let judge = Judge::of(&state);
    let result = super::blocking(move || {
        block_on(vcapi::verify_credential(
            &credential,
            chrono::Utc::now(),
            &|credential: &Value, entry: &Value| judge.judge(credential, entry),
        ))
    })
    .await?;
    Ok(answer(&result))
}

/// `POST /presentations/verify`: `{verifiablePresentation, options: {challenge, domain}}`.
pub(super) async fn verify_presentation(
    State(state): State<AppState>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: VerifyPresentation = parse_json(&body(bytes)?)?;
    if !request.verifiable_presentation.is_object() {
        return Err(ApiError::new(
            ApiCode::MalformedJson,
            "verifiablePresentation: a presentation (a JSON object)",
        ));
    }
    let (presentation, options) = (request.verifiable_presentation, request.options);
    let judge = Judge::of(&state);
    let result = super::blocking(move || {
        block_on(vcapi::verify_presentation(
            &presentation,
            (options.challenge.as_deref(), options.domain.as_deref()),
            chrono::Utc::now(),
            &|credential: &Value, entry: &Value| judge.judge(credential, entry),
        ))
    })
    .await?;
    Ok(answer(&result))
}

/// `POST /credentials/issue` (a bank's operator, with its admin token): the credential
/// signed with this node's own `did:key`; `201 {verifiableCredential}`.
pub(super) async fn issue(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    super::admin::admin(&state, &headers)?;
    let request: Issue = parse_json(&body(bytes)?)?;
    if !request.options.is_null() && !request.options.is_object() {
        return Err(ApiError::new(ApiCode::MalformedJson, "options: an object"));
    }
    let service = state.service.clone();
    let credential = request.credential;
    let issued = super::blocking(move || block_on(service.issue_credential(&credential))).await?;
    match issued {
        Ok(signed) => Ok((
            StatusCode::CREATED,
            Json(json!({ "verifiableCredential": signed })),
        )
            .into_response()),
        Err(problem) => Err(ApiError::new(
            ApiCode::CredentialNotIssued,
            format!("{}: {}", problem.title, problem.detail),
        )),
    }
}
