//! The node API's one error type: an HTTP status, a machine-readable code and a message, rendered as `{"code", "message"}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use consentnet_consent_chain::validate::EventError;
use serde::Serialize;

use crate::core::SubmitError;

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

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
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

pub(super) async fn fallback(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(uri.path())
}
