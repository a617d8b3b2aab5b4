//! One call of the unified API from headers to answer: the consent check (its proof's signature batched with concurrent calls'), the connector in service, the access record, and the OBIE answer with its interaction id.

use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use consentnet_consent_chain::event::Outcome;
use consentnet_identity::ConsentId;
use serde_json::{Value, json};

use crate::connector::BankConnector;
use crate::enforce::{Authorized, ConsentSource, Operation, Presented};

use crate::api::{APP_VERSION, Adapter, INTERACTION_ID};
use crate::problem::{ObCode, ObError};

/// Whether calls pass the consent check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Check {
    /// Every call is checked (decision A3). The only mode the node uses.
    #[default]
    Enforced,
    /// The consent is looked up but nothing is checked. Exists only so the adapter
    /// benchmark can measure what the check costs on the same server; nothing else
    /// builds an adapter with it.
    SkippedForBenchmark,
}

/// The consent named by `id`, unchecked: [`Check::SkippedForBenchmark`] only.
fn unchecked(
    source: &dyn ConsentSource,
    id: Option<ConsentId>,
    now: DateTime<Utc>,
) -> Result<Authorized, ObError> {
    let consent = id
        .and_then(|id| source.consent_at(&id, now))
        .map(|(consent, _)| consent);
    match consent {
        Some(consent) => Ok(Authorized {
            permissions: consent.terms.permissions.clone(),
            consent,
            rate_limit: None,
        }),
        None => Err(ObError::new(ObCode::ConsentUnknown, "no such consent")),
    }
}

/// The interaction id to answer with: the caller's (a UUID, checked by `fapi`), else a
/// fresh UUID v4.
fn interaction_id(headers: &HeaderMap) -> String {
    match headers.get(INTERACTION_ID).and_then(|v| v.to_str().ok()) {
        Some(given) => given.to_owned(),
        None => fresh_interaction_id(),
    }
}

/// A fresh UUID v4.
pub(crate) fn fresh_interaction_id() -> String {
    uuid_text(consentnet_identity::util::random_bytes(), 0x40)
}

/// A UUID of `version` (`0x40` for v4, `0x80` for v8) from 16 bytes, in 8-4-4-4-12 form.
pub(crate) fn uuid_text(mut bytes: [u8; 16], version: u8) -> String {
    bytes[6] = (bytes[6] & 0x0f) | version;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The HTTP status of `error`.
fn status_of(error: &ObError) -> StatusCode {
    StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Refuses a request before any consent is looked at (its form is wrong), in the OBIE
/// error shape with its interaction id. Nothing is recorded.
pub(crate) fn refuse(headers: &HeaderMap, error: ObError) -> Response {
    let interaction = interaction_id(headers);
    answer_error(&interaction, &error)
}

/// `body` answered with `status` and the call's interaction id (the caller's, else a
/// fresh one): for OBIE endpoints served outside the adapter (the consent resources).
pub(crate) fn answer(headers: &HeaderMap, status: StatusCode, body: Value) -> Response {
    respond(status, &interaction_id(headers), body)
}

/// `error` in the OBIE shape; a `429` says when to come back (`Retry-After`, 1 s when
/// nothing more precise is known).
fn answer_error(interaction: &str, error: &ObError) -> Response {
    let status = status_of(error);
    let mut response = respond(status, interaction, error.body(interaction));
    if let Some(challenge) = error.challenge()
        && let Ok(value) = HeaderValue::from_str(&challenge)
    {
        response
            .headers_mut()
            .insert(axum::http::header::WWW_AUTHENTICATE, value);
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        let seconds = error.retry_after.unwrap_or(1);
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, seconds.into());
    }
    response
}

fn respond(status: StatusCode, interaction: &str, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(interaction) {
        response.headers_mut().insert(INTERACTION_ID, value);
    }
    response
}

/// A refused check, and whether the proof had verified with the consent's app key.
struct Refusal {
    error: ObError,
    proven: bool,
}

/// One call through the check, the connector and the record.
pub(crate) struct Call<'a> {
    pub(crate) adapter: &'a Adapter,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) method: &'static str,
    pub(crate) success: StatusCode,
    pub(crate) operation: Operation,
    pub(crate) path: String,
    pub(crate) account: Option<&'a str>,
}

impl<'a> Call<'a> {
    /// A read (`GET`, answered with 200) of `path`.
    pub(crate) fn read(
        adapter: &'a Adapter,
        headers: &'a HeaderMap,
        operation: Operation,
        path: String,
        account: Option<&'a str>,
    ) -> Self {
        Self {
            adapter,
            headers,
            method: "GET",
            success: StatusCode::OK,
            operation,
            path,
            account,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!(
            "{}{}",
            self.adapter.public_url.trim_end_matches('/'),
            self.path
        )
    }

    /// The consent check, with the proof's signature verified by the batcher. A refusal
    /// says whether the proof had verified with the consent's app key by then.
    async fn enforce(
        &self,
        presented: Presented<'_>,
        now: chrono::DateTime<Utc>,
    ) -> Result<Authorized, Refusal> {
        let adapter = self.adapter;
        let gate = adapter.gate();
        let unproven = |error| Refusal {
            error,
            proven: false,
        };
        let (pending, signature) = gate.begin(presented, now).map_err(unproven)?;
        adapter
            .nonces
            .check(pending.nonce(), now)
            .map_err(|e| unproven(ObError::new(ObCode::UseDpopNonce, e.to_string())))?;
        if !adapter.signatures.verify(signature).await {
            return Err(unproven(ObError::from_proof(
                consentnet_identity::PopError::BadSignature,
            )));
        }
        gate.finish(pending, presented, now)
            .map_err(|error| Refusal {
                error,
                proven: true,
            })
    }

    /// The app's rate limit at this bank (its decision's, or the adapter's default): a
    /// call over it is refused with `429 rate_limited` and not recorded, since the app's
    /// own flood must not write the shared log.
    fn within_rate(&self, authorized: Authorized) -> Result<Authorized, Refusal> {
        let limits = &self.adapter.limits;
        let rate = authorized.rate_limit.unwrap_or(limits.default);
        match limits.buckets.take(
            &authorized.consent.terms.app,
            rate,
            std::time::Instant::now(),
        ) {
            Ok(()) => Ok(authorized),
            Err(wait) => Err(Refusal {
                error: ObError::new(
                    ObCode::RateLimited,
                    format!(
                        "this app is over its rate at this bank ({} calls/s, burst {})",
                        rate.per_second, rate.burst
                    ),
                )
                .retry_after(crate::limits::retry_after_secs(wait)),
                proven: false,
            }),
        }
    }

    /// Runs the check, then `serve`; records the outcome; answers in OBIE shapes, with a
    /// fresh DPoP nonce on every `401` (and on every answer when nonces are required).
    pub(crate) async fn run<F>(self, serve: F) -> Response
    where
        F: FnOnce(Arc<dyn BankConnector>, Authorized) -> Result<Value, ObError> + Send + 'static,
    {
        let nonces = &self.adapter.nonces;
        let mut response = self.run_inner(serve).await;
        if response.status() == StatusCode::UNAUTHORIZED || nonces.required() {
            let nonce = nonces.issue(Utc::now());
            if let Ok(value) = HeaderValue::from_str(&nonce) {
                response
                    .headers_mut()
                    .insert(crate::nonce::DPOP_NONCE, value);
            }
        }
        response
    }

    async fn run_inner<F>(self, serve: F) -> Response
    where
        F: FnOnce(Arc<dyn BankConnector>, Authorized) -> Result<Value, ObError> + Send + 'static,
    {
        let interaction = interaction_id(self.headers);
        let header = |name: &str| self.headers.get(name).and_then(|v| v.to_str().ok());
        let url = self.url();
        let now = Utc::now();
        let presented = Presented {
            operation: self.operation,
            method: self.method,
            url: &url,
            account: self.account,
            authorization: header("authorization"),
            proof: header("dpop"),
            app_version: header(APP_VERSION),
        };
        let consent_id = presented
            .authorization
            .and_then(|a| a.split_whitespace().nth(1))
            .and_then(ConsentId::parse);
        let record = |outcome: Outcome| {
            if let Some(id) = consent_id {
                self.adapter
                    .records
                    .record(id, self.operation.name(), now, outcome);
            }
        };
        let checked = match self.adapter.check {
            Check::Enforced => self.enforce(presented, now).await,
            Check::SkippedForBenchmark => unchecked(self.adapter.source.as_ref(), consent_id, now)
                .map_err(|error| Refusal {
                    error,
                    proven: false,
                }),
        };
        let authorized = match checked.and_then(|authorized| self.within_rate(authorized)) {
            Ok(authorized) => authorized,
            Err(Refusal { error, proven }) => {
                // Only a caller that proved it holds the app's key leaves a record on the
                // shared log; anyone else's refusal stays on this node.
                if proven {
                    record(Outcome::Refused {
                        code: error.code.as_str().to_owned(),
                    });
                } else {
                    self.adapter
                        .unproven
                        .note(now, self.operation.name(), error.code);
                }
                return answer_error(&interaction, &error);
            }
        };
        let connector = self.adapter.connector();
        let context = crate::connector::CallContext {
            psu_ip: header(crate::fapi::CUSTOMER_IP).and_then(|ip| ip.parse().ok()),
            interaction_id: Some(interaction.clone()),
        };
        let served = tokio::task::spawn_blocking(move || {
            crate::connector::with_context(context, || serve(connector, authorized))
        })
        .await
        .unwrap_or_else(|e| Err(ObError::new(ObCode::BankUnavailable, e.to_string())));
        match served {
            Ok(mut body) => {
                record(Outcome::Served);
                body["Links"]["Self"] = json!(url);
                respond(self.success, &interaction, body)
            }
            Err(error) => {
                record(Outcome::Refused {
                    code: error.code.as_str().to_owned(),
                });
                answer_error(&interaction, &error)
            }
        }
    }
}
