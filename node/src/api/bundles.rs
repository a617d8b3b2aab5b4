//! Mini-app bundle files on the operator surface: the TSP's operator uploads each file under its SHA-256 before publishing the manifest that names it, and a manifest naming files this node does not hold is refused, so the publishing node can always serve what it published.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use consentnet_consent_chain::event::AppManifest;
use consentnet_consent_chain::miniapp::MAX_FILE_BYTES;
use consentnet_identity::Hash32;
use serde_json::json;

use super::{ApiCode, ApiError, AppState, blocking, body};
use crate::core::bundles::{BundleError, BundleStore};

/// The most bytes an upload's body may hold: one file at its largest.
pub(super) const MAX_UPLOAD_BYTES: usize = MAX_FILE_BYTES as usize;

fn hash(text: &str) -> Result<Hash32, ApiError> {
    Hash32::parse(text).ok_or_else(|| {
        ApiError::new(
            ApiCode::InvalidHash,
            format!("{text:?} is not a SHA-256 (64 lowercase hex digits)"),
        )
    })
}

fn store(state: &AppState) -> Result<(), ApiError> {
    match state.service.bundles() {
        Some(_) => Ok(()),
        None => Err(ApiError::new(
            ApiCode::BundlesUnavailable,
            "this node keeps no bundle files",
        )),
    }
}

fn bundle_error(error: BundleError) -> ApiError {
    match error {
        BundleError::Mismatch { .. } => {
            ApiError::new(ApiCode::BundleHashMismatch, error.to_string())
        }
        BundleError::Size(_) => ApiError::new(ApiCode::BundleFileSize, error.to_string()),
        BundleError::Io(_) => ApiError::new(ApiCode::StoreUnavailable, error.to_string()),
    }
}

/// `PUT /v1/bundles/files/{sha256}` (operator): stores one file of a mini-app bundle
/// under its hash. `201` when stored, `200` when held already.
pub(super) async fn put_file(
    State(state): State<AppState>,
    Path(text): Path<String>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let expected = hash(&text)?;
    store(&state)?;
    let bytes = body(bytes)?;
    let size = bytes.len();
    let service = state.service.clone();
    let stored = blocking(move || {
        let store: &BundleStore = service.bundles().unwrap_or_else(|| unreachable!("checked"));
        store.put(&expected, &bytes)
    })
    .await?
    .map_err(bundle_error)?;
    let status = if stored {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({"sha256": expected, "size": size, "stored": stored})),
    )
        .into_response())
}

/// Refuses a mini-app manifest whose file list breaks a rule (`422 invalid_event`) or
/// names files this node does not hold (`409 bundle_files_missing`, naming them).
pub(super) fn require_files_held(state: &AppState, manifest: &AppManifest) -> Result<(), ApiError> {
    let Some(mini_app) = &manifest.mini_app else {
        return Ok(());
    };
    mini_app
        .check(&manifest.bundle_hash)
        .map_err(|e| ApiError::new(ApiCode::InvalidEvent, e.to_string()))?;
    store(state)?;
    let held = state
        .service
        .bundles()
        .unwrap_or_else(|| unreachable!("checked"));
    let missing: Vec<&str> = mini_app
        .files
        .iter()
        .filter(|file| !held.has(&file.sha256))
        .map(|file| file.path.as_str())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::new(
            ApiCode::BundleFilesMissing,
            format!(
                "upload these files first (PUT /v1/bundles/files/{{sha256}}): {}",
                missing.join(", ")
            ),
        ))
    }
}
