//! The node API's one error type: a code (which gives the HTTP status) and a message, rendered as `{"code", "message"}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use consentnet_bank_adapter::links::LinkError;
use consentnet_consent_chain::validate::EventError;
use serde::Serialize;

use crate::core::SubmitError;

consentnet_bank_adapter::problem_codes! {
    /// The codes the node's HTTP API answers with.
    pub enum ApiCode {
        /// No such endpoint.
        NotFound = (404, "not_found"),
        /// The body is not the JSON expected.
        MalformedJson = (400, "malformed_json"),
        /// The body could not be read.
        UnreadableBody = (400, "unreadable_body"),
        /// The body is over `http.max_body_bytes`.
        BodyTooLarge = (413, "body_too_large"),
        /// A submission's `Content-Type` is not `application/json`.
        UnsupportedMediaType = (415, "unsupported_media_type"),
        /// A query parameter is malformed or out of range.
        InvalidQuery = (400, "invalid_query"),
        /// A required query parameter is missing.
        MissingParameter = (400, "missing_parameter"),
        /// Not exactly one of `client`, `app`, `bank`.
        OneFilterRequired = (400, "one_filter_required"),
        /// Not a consent id (64 hex digits).
        InvalidConsentId = (400, "invalid_consent_id"),
        /// Not a DID.
        InvalidDid = (400, "invalid_did"),
        /// Not an RFC 3339 time.
        InvalidTime = (400, "invalid_time"),
        /// The revocation does not parse.
        MalformedRevocation = (400, "malformed_revocation"),
        /// The revocation's signature or fields are wrong.
        InvalidRevocation = (422, "invalid_revocation"),
        /// The consent credential does not verify.
        InvalidConsent = (422, "invalid_consent"),
        /// The consent names a bank that is not a member.
        UnknownBank = (422, "unknown_bank"),
        /// A signed record's signature does not verify.
        BadSignature = (422, "bad_signature"),
        /// The event is malformed.
        InvalidEvent = (422, "invalid_event"),
        /// A membership change lacks its quorum.
        QuorumNotMet = (422, "quorum_not_met"),
        /// The signer of a bank's record is not a bank member.
        NotABank = (403, "not_a_bank"),
        /// An access batch names another bank.
        ForeignAccessBatch = (403, "foreign_access_batch"),
        /// A consent submitted to a node other than its bank's.
        GrantNotAtBank = (403, "grant_not_at_bank"),
        /// A consent's access records were asked of a node other than its bank's.
        AccessesAtBank = (404, "accesses_at_bank"),
        /// A prune cutoff inside the shortest retention period.
        RetentionTooShort = (422, "retention_too_short"),
        /// A consent whose signer the bank does not know as the holder of its accounts.
        ConsentIssuerNotLinked = (403, "consent_issuer_not_linked"),
        /// A consent whose client already holds as many at this bank as it allows.
        ConsentLimitReached = (409, "consent_limit_reached"),
        /// A status list this bank has not opened.
        StatusListUnknown = (404, "status_list_unknown"),
        /// The revoker is neither the consent's issuer nor its bank.
        NotEntitled = (403, "not_entitled"),
        /// A revocation of a consent whose grant is not on this node's log, sent without
        /// its credential.
        RevocationUnverifiable = (422, "revocation_unverifiable"),
        /// A submission names a time more than 5 minutes from the node's clock.
        TimeOutsideSkew = (422, "time_outside_skew"),
        /// No grant of the consent that the reader may read is on this node's log.
        ConsentUnknown = (404, "consent_unknown"),
        /// A read of consents carries no `DPoP` proof.
        ReadProofRequired = (401, "read_proof_required"),
        /// The read's proof does not verify for this request.
        ReadProofInvalid = (401, "read_proof_invalid"),
        /// The reader may not list that party's consents.
        ReadNotEntitled = (403, "read_not_entitled"),
        /// This node is not a bank's node.
        NotABankNode = (404, "not_a_bank"),
        /// No admin token is configured.
        AdminDisabled = (403, "admin_disabled"),
        /// `x-admin-token` is missing or wrong.
        AdminTokenInvalid = (401, "admin_token_invalid"),
        /// A credential the node was asked to issue cannot be issued (its shape, its
        /// issuer, or terms no bundled context defines).
        CredentialNotIssued = (422, "credential_not_issued"),
        /// A consent's status entry names a list that is not its bank's.
        StatusListForeign = (422, "status_list_foreign"),
        /// Another consent holds the status list index: sign again with another.
        StatusIndexTaken = (409, "status_index_taken"),
        /// The bank's status list is being rebuilt from the log after a start.
        StatusListNotReady = (503, "status_list_not_ready"),
        /// The mapping file is refused (the field is named).
        InvalidMapping = (400, "invalid_mapping"),
        /// A mapping's dry run against its core failed; nothing was installed.
        ConnectorDryRunFailed = (422, "connector_dry_run_failed"),
        /// An account is not in the bank's core.
        UnknownAccount = (400, "unknown_account"),
        /// The bank core did not answer.
        BankCoreFailed = (502, "bank_core_failed"),
        /// The link request is malformed.
        InvalidLinkRequest = (400, "invalid_link_request"),
        /// The link request's proof does not verify.
        LinkProofInvalid = (401, "link_proof_invalid"),
        /// The link code is unknown, used or expired.
        LinkCodeUnusable = (403, "link_code_unusable"),
        /// Too many link codes are outstanding.
        LinkCodesBusy = (429, "link_codes_busy"),
        /// The links file could not be written.
        LinkStorageFailed = (500, "link_storage_failed"),
        /// No such sign-in challenge.
        SignInUnknownChallenge = (404, "sign_in_unknown_challenge"),
        /// The sign-in answer's signature does not verify.
        SignInBadSignature = (401, "sign_in_bad_signature"),
        /// The challenge was answered already.
        SignInAlreadyAnswered = (409, "sign_in_already_answered"),
        /// This node is not a member of the consortium.
        NodeNotMember = (503, "node_not_member"),
        /// The log cannot be read or written now.
        StoreUnavailable = (503, "store_unavailable"),
        /// The client IP is over its rate.
        RateLimited = (429, "rate_limited"),
        /// Another audit of the log is running.
        AuditBusy = (429, "audit_busy"),
        /// The node is shutting down.
        ShuttingDown = (503, "shutting_down"),
        /// Not a SHA-256 (64 lowercase hex digits).
        InvalidHash = (400, "invalid_hash"),
        /// An uploaded bundle file's bytes do not hash to the name it was put under.
        BundleHashMismatch = (400, "bundle_hash_mismatch"),
        /// An uploaded bundle file is empty or over the size one file may have.
        BundleFileSize = (413, "bundle_file_size"),
        /// A mini-app manifest names files this node does not hold.
        BundleFilesMissing = (409, "bundle_files_missing"),
        /// This node keeps no bundle files.
        BundlesUnavailable = (503, "bundles_unavailable"),
        /// The mini-app version is not one this bank approves, or it allows it nothing a
        /// consent in the portal can grant.
        MiniAppNotApproved = (403, "mini_app_not_approved"),
        /// A mini-app consent request without the DID's signature over it.
        ConsentProofInvalid = (401, "consent_proof_invalid"),
    }
}

/// An API error: a machine-readable code, which gives the HTTP status, and a message for
/// people.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub(crate) code: ApiCode,
    pub(crate) message: String,
    /// For a `429`: when to ask again, in seconds (`Retry-After`).
    pub(crate) retry_after: Option<u64>,
}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: ApiCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error, telling the caller to ask again after `seconds`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// The error returned for any path the API does not serve.
    pub fn not_found(path: &str) -> Self {
        Self::new(ApiCode::NotFound, format!("no such endpoint: {path}"))
    }

    /// The log could not be read or written. The cause (which may name the server's
    /// files) goes to the node's log only; the caller learns that it failed, not where.
    pub(crate) fn internal(cause: impl Into<String>) -> Self {
        let cause = cause.into();
        tracing::error!(%cause, "a request failed on the node's side");
        Self::new(
            ApiCode::StoreUnavailable,
            "the node cannot read or write its log now; its operator's log names the cause",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> Self {
        if let SubmitError::Store(cause) = &error {
            return Self::internal(cause.to_string());
        }
        let message = error.to_string();
        let code = match &error {
            SubmitError::Invalid(event) => match event {
                EventError::Consent(_) => ApiCode::InvalidConsent,
                EventError::UnknownBank(_) => ApiCode::UnknownBank,
                EventError::Revocation(_) => ApiCode::InvalidRevocation,
                EventError::BadSignature(_) => ApiCode::BadSignature,
                EventError::NotABank(_) => ApiCode::NotABank,
                EventError::ForeignAccessBatch { .. } => ApiCode::ForeignAccessBatch,
                EventError::ForeignGrant { .. } => ApiCode::GrantNotAtBank,
                EventError::Invalid(_) => ApiCode::InvalidEvent,
                EventError::QuorumNotMet { .. } => ApiCode::QuorumNotMet,
            },
            SubmitError::NotEntitled(_) => ApiCode::NotEntitled,
            SubmitError::ConsentUnknown(_) => ApiCode::RevocationUnverifiable,
            SubmitError::TimeOutsideSkew { .. } => ApiCode::TimeOutsideSkew,
            SubmitError::NodeNotMember => ApiCode::NodeNotMember,
            SubmitError::Store(_) => ApiCode::StoreUnavailable,
            SubmitError::Stopping => ApiCode::ShuttingDown,
        };
        Self::new(code, message)
    }
}

impl From<LinkError> for ApiError {
    fn from(error: LinkError) -> Self {
        let code = match &error {
            LinkError::Invalid(_) => ApiCode::InvalidLinkRequest,
            LinkError::CodeUnusable => ApiCode::LinkCodeUnusable,
            LinkError::BadProof(_) => ApiCode::LinkProofInvalid,
            LinkError::Busy => ApiCode::LinkCodesBusy,
            LinkError::Storage { .. } => ApiCode::LinkStorageFailed,
        };
        Self::new(code, error.to_string())
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
            code: self.code.as_str(),
            message: &self.message,
        };
        let mut response = (self.status(), Json(body)).into_response();
        // Every 429 says when to come back; 1 s when nothing more precise is known.
        if self.status() == StatusCode::TOO_MANY_REQUESTS {
            let seconds = self.retry_after.unwrap_or(1);
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// The answer for any path the API does not serve.
pub(super) async fn fallback(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(uri.path())
}
