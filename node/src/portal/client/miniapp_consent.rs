//! A mini-app's consents, made in the client's browser: the bank prepares the credential for the client's linked DID (the app as subject, the installation's key as `proofKey`; either the data operations this bank allows the version, or payments within limits the client chose), the browser key signs it, and the bank verifies it and writes it to the log.

use std::collections::BTreeSet;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use consentnet_bank_adapter::links::AccountHolders;
use consentnet_consent_chain::Event;
use consentnet_consent_chain::event::{AppAction, AppManifest};
use consentnet_identity::consent::{complete_consent, prepare_consent};
use consentnet_identity::{ConsentTerms, Did, PaymentLimits, Permission, b64url_decode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{ApiCode, ApiError, append};
use crate::portal::state::Portal;

/// The domain of the statement the client's key signs to ask for a prepared consent.
pub const PREPARE_DOMAIN: &str = "miniapp-consent-prepare";
/// How long a mini-app's consent lasts.
pub const CONSENT_DAYS: i64 = 90;

/// What a mini-app's data consent grants: what the bank allows the version, of what
/// its manifest asks, without payments (they have a consent of their own, with limits).
pub fn consented_permissions(
    manifest: &AppManifest,
    allowed: &BTreeSet<Permission>,
) -> BTreeSet<Permission> {
    allowed_here(manifest, allowed)
        .into_iter()
        .filter(|p| !p.is_payment())
        .collect()
}

/// What the bank allows the version, of what its manifest asks.
fn allowed_here(manifest: &AppManifest, allowed: &BTreeSet<Permission>) -> BTreeSet<Permission> {
    manifest
        .requested_permissions
        .intersection(allowed)
        .copied()
        .collect()
}

fn refused(code: ApiCode, message: impl Into<String>) -> ApiError {
    ApiError::new(code, message)
}

/// The version's manifest and what this bank allows it, when it approves it.
fn approved_grant(
    portal: &Portal,
    app: &Did,
    version: &str,
) -> Result<(AppManifest, BTreeSet<Permission>), ApiError> {
    let state = portal.app.service.state();
    let bank = portal.app.service.did();
    let manifest = state
        .manifest(app, version)
        .filter(|m| m.mini_app.is_some())
        .ok_or_else(|| refused(ApiCode::MiniAppNotApproved, "no such mini-app version"))?;
    let Some(AppAction::Approve { permissions, .. }) = state.app_action(bank, app, version) else {
        return Err(refused(
            ApiCode::MiniAppNotApproved,
            "this bank does not approve this app version",
        ));
    };
    Ok((manifest.clone(), allowed_here(manifest, permissions)))
}

/// What a consent asked with `limits` (a payment consent) or without (a data consent)
/// grants, of what the bank allows: refused when that is nothing.
fn granted(
    allowed: &BTreeSet<Permission>,
    limits: Option<&PaymentLimits>,
) -> Result<BTreeSet<Permission>, ApiError> {
    let pays = Permission::CreateDomesticPayments;
    let granted: BTreeSet<Permission> = match limits {
        Some(_) => allowed.iter().copied().filter(|p| *p == pays).collect(),
        None => allowed.iter().copied().filter(|p| *p != pays).collect(),
    };
    if granted.is_empty() {
        let what = if limits.is_some() {
            "payments"
        } else {
            "reading data"
        };
        return Err(refused(
            ApiCode::MiniAppNotApproved,
            format!("this bank does not allow this app version {what}"),
        ));
    }
    Ok(granted)
}

fn parse_app(text: &str) -> Result<Did, ApiError> {
    Did::parse(text).map_err(|e| refused(ApiCode::InvalidDid, format!("app: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PrepareBody {
    did: String,
    proof_key: String,
    /// Present for a payment consent: the limits the client chose.
    #[serde(default)]
    payment_limits: Option<PaymentLimits>,
    /// The DID's signature (base64url) over `{app, did, node, proofKey, version}` under
    /// [`PREPARE_DOMAIN`]: only the DID's holder learns which accounts it holds here.
    proof: String,
}

/// `POST /portal/apps/{app}/{version}/consent/prepare`: the consent for the client's
/// DID, complete but for its signature, and the bytes to sign.
pub(super) async fn prepare(
    State(portal): State<Portal>,
    Path((app, version)): Path<(String, String)>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let app = parse_app(&app)?;
    let bytes = bytes.map_err(|r| refused(ApiCode::UnreadableBody, r.body_text()))?;
    let body: PrepareBody = consentnet_identity::strict::from_slice(&bytes)
        .map_err(|e| refused(ApiCode::MalformedJson, e.to_string()))?;
    let did =
        Did::parse(&body.did).map_err(|e| refused(ApiCode::InvalidDid, format!("did: {e}")))?;
    let proof_key = Did::parse(&body.proof_key)
        .map_err(|e| refused(ApiCode::InvalidDid, format!("proofKey: {e}")))?;
    let signed = json!({
        "app": app.as_str(),
        "did": did.as_str(),
        "node": portal.app.service.did().as_str(),
        "proofKey": proof_key.as_str(),
        "version": version,
    });
    if !consentnet_identity::verify_statement(&did, PREPARE_DOMAIN, &signed, &body.proof) {
        return Err(refused(
            ApiCode::ConsentProofInvalid,
            "proof is not the DID's signature over this app, version and key at this bank",
        ));
    }
    let (manifest, allowed) = approved_grant(&portal, &app, &version)?;
    let permissions = granted(&allowed, body.payment_limits.as_ref())?;
    let accounts = portal
        .links()
        .map(|links| links.accounts_of(&did))
        .unwrap_or_default();
    if accounts.is_empty() {
        return Err(refused(
            ApiCode::ConsentIssuerNotLinked,
            format!("{did} is linked to no account at this bank: link this browser's key first"),
        ));
    }
    let now = Utc::now();
    let terms = ConsentTerms {
        app,
        bank: portal.app.service.did().clone(),
        accounts,
        permissions,
        payment_limits: body.payment_limits,
        purpose: format!("Use {} in this bank's portal", manifest.name),
        valid_from: now,
        valid_until: now + Duration::days(CONSENT_DAYS),
        proof_key: Some(proof_key),
        status: portal.status_entry(),
    };
    let prepared = prepare_consent(&did, &terms).await.map_err(|e| {
        refused(
            ApiCode::InvalidConsent,
            format!("the consent cannot be made: {e}"),
        )
    })?;
    Ok(Json(prepared.to_wire()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteBody {
    credential: Value,
    signature: String,
}

/// `POST /portal/apps/{app}/{version}/consent/complete`: the client's signature of a
/// prepared consent. The bank verifies the whole credential, checks it grants no more
/// than the version may have here, on accounts its signer holds, with a proof key, and
/// writes it to the log (durably) before answering.
pub(super) async fn complete(
    State(portal): State<Portal>,
    Path((app, version)): Path<(String, String)>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let app = parse_app(&app)?;
    let bytes = bytes.map_err(|r| refused(ApiCode::UnreadableBody, r.body_text()))?;
    let body: CompleteBody = consentnet_identity::strict::from_slice(&bytes)
        .map_err(|e| refused(ApiCode::MalformedJson, e.to_string()))?;
    let signature = b64url_decode(&body.signature)
        .ok_or_else(|| refused(ApiCode::MalformedJson, "signature is not base64url"))?;
    let consent = complete_consent(&body.credential, &signature)
        .await
        .map_err(|e| {
            refused(
                ApiCode::InvalidConsent,
                format!("the consent does not verify: {e}"),
            )
        })?;
    let (_, allowed) = approved_grant(&portal, &app, &version)?;
    let permissions = granted(&allowed, consent.terms.payment_limits.as_ref())?;
    let terms = &consent.terms;
    let mismatch = if terms.app != app || &terms.bank != portal.app.service.did() {
        Some("the consent is for another app or bank")
    } else if terms.proof_key.is_none() {
        Some("a mini-app's consent names the installation's proof key")
    } else if !terms.permissions.is_subset(&permissions) {
        Some("the consent grants more than this bank allows this app version")
    } else {
        None
    };
    if let Some(why) = mismatch {
        return Err(refused(ApiCode::InvalidConsent, why));
    }
    let holds_all = portal.links().is_some_and(|links| {
        terms
            .accounts
            .iter()
            .all(|account| links.holds(&consent.issuer, account))
    });
    if !holds_all {
        return Err(refused(
            ApiCode::ConsentIssuerNotLinked,
            format!(
                "{} does not hold every account the consent names",
                consent.issuer
            ),
        ));
    }
    let event = Event::ConsentGranted {
        credential: consent.credential.clone(),
    };
    append(&portal.app, event).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "consentId": consent.id.to_string() })),
    )
        .into_response())
}
