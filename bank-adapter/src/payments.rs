//! Domestic payments on the unified API (UK OBIE v4.0 PIS shapes): one payment per idempotency key, inside the consent's limits as this bank counts them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, Datelike, Utc};
use consentnet_identity::{ConsentId, Period, VerifiedConsent};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{Adapter, is_json};
use crate::call::{Call, refuse};
use crate::connector::{BankConnector, Money, Payment, PaymentOrder};
use crate::enforce::Operation;
use crate::problem::{ObCode, ObError};

mod initiation;
mod retention;

pub use initiation::initiation_amount;
use initiation::{named_consent, order};

pub use retention::RETENTION_DAYS;

/// Where the payment initiation API lives.
pub const PIS_BASE: &str = "/open-banking/v4.0/pisp";
/// The idempotency header.
pub const IDEMPOTENCY_KEY: &str = "x-idempotency-key";

/// What this bank has paid under each consent: the authority for what is left. With a
/// journal file, every change is written and synced before it takes effect, so a
/// restart forgets nothing it still needs; payments counted more than
/// [`RETENTION_DAYS`] ago are dropped (`payments/retention`).
#[derive(Debug, Default)]
pub struct Ledger {
    inner: Mutex<LedgerState>,
}

#[derive(Debug, Default)]
struct LedgerState {
    paid: HashMap<ConsentId, Vec<(DateTime<Utc>, i64, String)>>,
    /// Scoped idempotency key -> the hash of the order it was counted for (absent in
    /// journals written before orders were hashed).
    counted: HashMap<String, Option<String>>,
    /// Scoped idempotency key -> the payment the bank made for it.
    made: HashMap<String, String>,
    /// Payment id -> the consent it was made under, and its initiation as sent.
    owner: HashMap<String, (ConsentId, Value)>,
    journal: Option<std::fs::File>,
    /// When payments past their retention were last dropped.
    pruned_at: Option<DateTime<Utc>>,
}

/// One line of the journal.
#[derive(Debug, serde::Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
enum JournalLine {
    /// A payment counted against its consent, before the bank is asked to make it.
    Count {
        key: String,
        consent: ConsentId,
        at: DateTime<Utc>,
        minor: i64,
        /// The hash of the order, so a repeat with another body is told apart.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        order: Option<String>,
    },
    /// The bank refused it: it no longer counts.
    Cancel { key: String, consent: ConsentId },
    /// The bank made it.
    Paid {
        payment_id: String,
        consent: ConsentId,
        initiation: Value,
        /// The scoped idempotency key it was made for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
}

impl LedgerState {
    fn apply(&mut self, line: JournalLine) {
        match line {
            JournalLine::Count {
                key,
                consent,
                at,
                minor,
                order,
            } => {
                self.paid
                    .entry(consent)
                    .or_default()
                    .push((at, minor, key.clone()));
                self.counted.insert(key, order);
            }
            JournalLine::Cancel { key, consent } => {
                if let Some(paid) = self.paid.get_mut(&consent) {
                    paid.retain(|(_, _, k)| *k != key);
                }
                self.counted.remove(&key);
            }
            JournalLine::Paid {
                payment_id,
                consent,
                initiation,
                key,
            } => {
                if let Some(key) = key {
                    self.made.insert(key, payment_id.clone());
                }
                self.owner.insert(payment_id, (consent, initiation));
            }
        }
    }

    /// Writes `line` durably (when journaled), then applies it.
    fn record(&mut self, line: JournalLine) -> std::io::Result<()> {
        if let Some(file) = &mut self.journal {
            use std::io::Write as _;
            let mut text = serde_json::to_string(&line).map_err(std::io::Error::other)?;
            text.push('\n');
            file.write_all(text.as_bytes())?;
            file.sync_data()?;
        }
        self.apply(line);
        self.prune_if_due(Utc::now());
        Ok(())
    }
}

impl Ledger {
    /// A ledger kept in the journal file at `path` (created if missing), replaying what
    /// it already holds. A torn last line (a crash mid-write) is ignored; any other bad
    /// line is an error, so nothing is silently forgotten.
    pub fn open(path: &std::path::Path) -> std::io::Result<Self> {
        let mut state = LedgerState::default();
        let mut complete = None;
        if let Ok(text) = std::fs::read_to_string(path) {
            let lines: Vec<&str> = text.lines().collect();
            for (number, line) in lines.iter().enumerate() {
                match serde_json::from_str::<JournalLine>(line) {
                    Ok(line) => state.apply(line),
                    Err(_) if number + 1 == lines.len() && !text.ends_with('\n') => {
                        // Cut the torn line, so the next write starts a clean line.
                        complete = Some(text.rfind('\n').map_or(0, |end| end + 1) as u64);
                    }
                    Err(error) => {
                        return Err(std::io::Error::other(format!(
                            "{} line {}: {error}",
                            path.display(),
                            number + 1
                        )));
                    }
                }
            }
        }
        // Payments past their retention are dropped, and the journal rewritten without
        // them (which also drops a torn last line).
        let now = Utc::now();
        if state.prune(retention::cutoff(now)) {
            retention::compact(path, &state)?;
            complete = None;
        }
        state.pruned_at = Some(now);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        if let Some(length) = complete {
            file.set_len(length)?;
            file.sync_data()?;
        }
        state.journal = Some(file);
        Ok(Self {
            inner: Mutex::new(state),
        })
    }
}

/// The hash of a payment order, as the ledger remembers it with its idempotency key.
fn order_hash(order: &PaymentOrder) -> String {
    let bytes = serde_json::to_vec(order).unwrap_or_else(|_| unreachable!("plain fields"));
    consentnet_identity::Hash32::of(&bytes).to_string()
}

/// The start of the calendar `period` that `now` falls in.
fn period_start(period: Period, now: DateTime<Utc>) -> DateTime<Utc> {
    let date = now.date_naive();
    let start = match period {
        Period::Day => date,
        Period::Week => {
            date - chrono::Duration::days(i64::from(date.weekday().num_days_from_monday()))
        }
        Period::Month => date.with_day(1).unwrap_or(date),
        Period::Year => date.with_ordinal(1).unwrap_or(date),
    };
    start.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// The largest payment request body accepted, in bytes.
pub const MAX_PAYMENT_BODY: usize = 64 * 1024;

/// The routes.
pub fn router(adapter: Arc<Adapter>) -> Router {
    let signer = adapter.signer.clone();
    let router = Router::new()
        .route(
            &format!("{PIS_BASE}/domestic-payments"),
            post(create).layer(axum::extract::DefaultBodyLimit::max(MAX_PAYMENT_BODY)),
        )
        .route(
            &format!("{PIS_BASE}/domestic-payments/{{DomesticPaymentId}}"),
            get(read),
        )
        .with_state(adapter);
    match signer {
        Some(signer) => router.layer(axum::middleware::from_fn_with_state(
            signer,
            crate::jws::sign_answers,
        )),
        None => router,
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WriteDomestic {
    data: WriteData,
    #[allow(dead_code)]
    risk: Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WriteData {
    pub(super) consent_id: String,
    pub(super) initiation: Value,
}

/// The consent's limits, as this bank has counted them, allow `amount` now.
fn within_limits(
    consent: &VerifiedConsent,
    paid: &[(DateTime<Utc>, i64)],
    amount: &Money,
    now: DateTime<Utc>,
) -> Result<(), ObError> {
    let limits = consent.terms.payment_limits.as_ref().ok_or_else(|| {
        ObError::new(
            ObCode::NoPaymentLimits,
            "the consent carries no payment limits",
        )
    })?;
    let refuse = |why: String| ObError::new(ObCode::PaymentLimitExceeded, why);
    if limits.currency != amount.currency {
        return Err(refuse(format!(
            "the consent allows payments in {} only",
            limits.currency
        )));
    }
    let cap = |text: &str| Money::parse(text, &limits.currency).map_or(0, |m| m.minor);
    if amount.minor > cap(&limits.max_per_payment) {
        return Err(refuse(format!(
            "more than {} in one payment",
            limits.max_per_payment
        )));
    }
    if let (Some(max), Some(period)) = (&limits.max_per_period, limits.period) {
        let since = period_start(period, now);
        let spent: i64 = paid
            .iter()
            .filter(|(at, _)| *at >= since)
            .map(|(_, m)| m)
            .sum();
        if spent + amount.minor > cap(max) {
            return Err(refuse(format!("more than {max} in this {period:?}")));
        }
    }
    Ok(())
}

fn payment_json(payment: &Payment, consent: &ConsentId, initiation: Value) -> Value {
    let at = payment
        .created
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    let status = if payment.status == "AcceptedSettlementCompleted" {
        "ACSC"
    } else {
        "PDNG"
    };
    json!({
        "Data": {
            "DomesticPaymentId": payment.payment_id,
            "ConsentId": consent.to_string(),
            "CreationDateTime": at,
            "Status": status,
            "StatusUpdateDateTime": at,
            "Initiation": initiation,
        },
        "Links": {},
        "Meta": {},
    })
}

fn initiation_of(payment: &Payment, instruction: &Value) -> Value {
    let mut initiation = json!({
        "InstructionIdentification": instruction["InstructionIdentification"],
        "EndToEndIdentification": instruction["EndToEndIdentification"],
        "InstructedAmount": { "Amount": payment.order.amount.decimal(), "Currency": payment.order.amount.currency },
        "CreditorAccount": {
            "SchemeName": payment.order.creditor_scheme,
            "Identification": payment.order.creditor_identification,
            "Name": payment.order.creditor_name,
        },
    });
    if !payment.order.reference.is_empty() {
        initiation["RemittanceInformation"] = json!({ "Unstructured": [payment.order.reference] });
    }
    initiation
}

/// The body of a payment request, or its refusal in the OBIE shape: JSON only, at most
/// [`MAX_PAYMENT_BODY`] bytes.
fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ObError> {
    if !is_json(headers) {
        return Err(ObError::new(
            ObCode::UnsupportedMediaType,
            "send the payment as Content-Type: application/json",
        ));
    }
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ObError::new(
                ObCode::BodyTooLarge,
                format!("the body is over {MAX_PAYMENT_BODY} bytes"),
            )
        } else {
            ObError::new(ObCode::MalformedJson, rejection.body_text())
        }
    })
}

async fn create(
    State(adapter): State<Arc<Adapter>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match json_body(&headers, body) {
        Ok(body) => body,
        Err(error) => return refuse(&headers, error),
    };
    let parsed: Result<WriteDomestic, _> = consentnet_identity::strict::from_slice(&body);
    // The official schema's verdict, given only once the consent check has passed.
    let unofficial = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|value| {
            crate::schema::request_problem(
                crate::schema::pis(),
                "/domestic-payments",
                "post",
                &value,
            )
        });
    let debtor = parsed
        .as_ref()
        .ok()
        .and_then(|w| w.data.initiation["DebtorAccount"]["Identification"].as_str())
        .map(str::to_owned);
    let call = Call {
        adapter: &adapter,
        headers: &headers,
        method: "POST",
        success: StatusCode::CREATED,
        operation: Operation::CreatePayment,
        path: format!("{PIS_BASE}/domestic-payments"),
        account: debtor.as_deref(),
    };
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let ledger = adapter.ledger.clone();
    let adapter_resources = adapter.resources.get().cloned();
    call.run(move |connector, authorized| {
        let write = parsed.map_err(|e| ObError::new(ObCode::MalformedJson, e.to_string()))?;
        if let Some(problem) = unofficial {
            return Err(ObError::new(
                ObCode::InvalidInitiation,
                format!("{problem} (OBIE v4.0 schema)"),
            ));
        }
        let key = key.filter(|k| (1..=40).contains(&k.len())).ok_or_else(|| {
            ObError::new(
                ObCode::MissingIdempotencyKey,
                "send x-idempotency-key (1 to 40 characters)",
            )
        })?;
        let consent = &authorized.consent;
        named_consent(&adapter_resources, consent, &write.data)?;
        let debtor = debtor_of(&write.data.initiation, consent)?;
        let order = order(&write.data.initiation, &debtor)?;
        let mut answer = pay_once(
            &ledger,
            connector.as_ref(),
            consent,
            &key,
            &order,
            &write.data.initiation,
        )?;
        // The answer names the consent as the payment did (a consent resource's id).
        answer["Data"]["ConsentId"] = Value::String(write.data.consent_id);
        Ok(answer)
    })
    .await
}

/// The paying account: the one the initiation names, which must be in the consent, or
/// the consent's only account.
fn debtor_of(initiation: &Value, consent: &VerifiedConsent) -> Result<String, ObError> {
    let debtor = match initiation["DebtorAccount"]["Identification"].as_str() {
        Some(account) => account.to_owned(),
        None => match consent.terms.accounts.as_slice() {
            [only] => only.clone(),
            _ => {
                return Err(ObError::new(
                    ObCode::DebtorAccountRequired,
                    "the consent names several accounts: give Data.Initiation.DebtorAccount",
                ));
            }
        },
    };
    if !consent.terms.accounts.contains(&debtor) {
        return Err(ObError::new(
            ObCode::AccountNotInConsent,
            format!("account {debtor} is not in the consent"),
        ));
    }
    Ok(debtor)
}

/// Checks, pays and counts `order` under `key`, under the ledger's one lock: what is left
/// under a consent is decided here only, and one key makes at most one payment.
fn pay_once(
    ledger: &Ledger,
    connector: &dyn BankConnector,
    consent: &VerifiedConsent,
    key: &str,
    order: &PaymentOrder,
    instruction: &Value,
) -> Result<Value, ObError> {
    let mut state = consentnet_identity::util::lock(&ledger.inner);
    let now = Utc::now();
    let paid: Vec<(DateTime<Utc>, i64)> = state
        .paid
        .get(&consent.id)
        .map(|p| p.iter().map(|(at, minor, _)| (*at, *minor)).collect())
        .unwrap_or_default();
    // A repeat of a counted payment is answered, not checked against the limits again;
    // the same key with another order is a conflict, whatever the bank core remembers.
    let scoped_key = format!("{}/{key}", consent.id);
    let order_hash = order_hash(order);
    let repeat = match state.counted.get(&scoped_key) {
        None => false,
        Some(Some(counted)) if *counted != order_hash => {
            return Err(ObError::new(
                ObCode::IdempotencyConflict,
                "this x-idempotency-key was used for another payment order under this consent",
            ));
        }
        Some(_) => true,
    };
    if let Some(made) = state.made.get(&scoped_key).cloned() {
        // Made already: answered from what the bank made, never asked to pay again.
        let payment = connector.payment(&made)?;
        let initiation = state
            .owner
            .get(&made)
            .map(|(_, initiation)| initiation.clone())
            .unwrap_or_else(|| initiation_of(&payment, instruction));
        return Ok(payment_json(&payment, &consent.id, initiation));
    }
    let unavailable = |e: std::io::Error| ObError::new(ObCode::LedgerUnavailable, e.to_string());
    if !repeat {
        within_limits(consent, &paid, &order.amount, now)?;
        // Counted before the bank is asked: a crash in between over-counts, never under.
        state
            .record(JournalLine::Count {
                key: scoped_key.clone(),
                consent: consent.id,
                at: now,
                minor: order.amount.minor,
                order: Some(order_hash),
            })
            .map_err(unavailable)?;
    }
    let payment = match connector.create_payment(&scoped_key, order) {
        Ok(payment) => payment,
        Err(error) => {
            if !repeat {
                state
                    .record(JournalLine::Cancel {
                        key: scoped_key,
                        consent: consent.id,
                    })
                    .map_err(unavailable)?;
            }
            return Err(error.into());
        }
    };
    let initiation = initiation_of(&payment, instruction);
    if !state.owner.contains_key(&payment.payment_id) {
        state
            .record(JournalLine::Paid {
                payment_id: payment.payment_id.clone(),
                consent: consent.id,
                initiation: initiation.clone(),
                key: Some(scoped_key),
            })
            .map_err(unavailable)?;
    }
    Ok(payment_json(&payment, &consent.id, initiation))
}

async fn read(
    State(adapter): State<Arc<Adapter>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let call = Call::read(
        &adapter,
        &headers,
        Operation::GetPayment,
        format!("{PIS_BASE}/domestic-payments/{id}"),
        None,
    );
    let ledger = adapter.ledger.clone();
    call.run(move |connector, authorized| {
        let owner = consentnet_identity::util::lock(&ledger.inner)
            .owner
            .get(&id)
            .cloned();
        let initiation = match owner {
            Some((consent, initiation)) if consent == authorized.consent.id => initiation,
            _ => {
                return Err(ObError::new(
                    ObCode::ResourceNotFound,
                    format!("no payment {id} under this consent"),
                ));
            }
        };
        let payment = connector.payment(&id)?;
        Ok(payment_json(&payment, &authorized.consent.id, initiation))
    })
    .await
}
