//! OBIE consent resources (account access, and domestic payment): a TSP's request waiting for the client (`AWAU`), the consent on the log the client signed for it (`AUTH`, then as the log says), a refusal (`RJCT`); bounded in number and kept only while they can still matter.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use consentnet_bank_adapter::{ObCode, ObError, schema};
use consentnet_consent_chain::event::AppAction;
use consentnet_consent_chain::{ConsentStatus, State};
use consentnet_identity::permissions::check_permission_set;
use consentnet_identity::{ConsentId, Did, Permission};
use serde_json::{Value, json};

use super::payment_kinds::PaymentKind;
use super::server::AuthServer;
use super::{DEFAULT_VALIDITY_DAYS, MAX_VALIDITY_DAYS};
use consentnet_identity::util::{lock, random_hex};

/// Consent resources kept at most, over every app.
pub const MAX_INTENTS: usize = 10_000;
/// Consent resources one app may hold that are not authorised (waiting, refused or
/// cancelled), so no app can fill the store for the others.
pub const MAX_UNSETTLED_PER_APP: usize = 100;
/// How long a resource may wait for the client, in seconds (then `EXPD`).
pub const AWAITING_LIFETIME_SECS: i64 = 3_600;
/// How long a refused or cancelled resource is still shown, in seconds.
pub const SETTLED_RETENTION_SECS: i64 = 86_400;

/// Where a consent resource stands, before the log is asked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Stage {
    /// Waiting for the client.
    Awaiting,
    /// The client signed this consent, which is on the log.
    Authorised(ConsentId),
    /// The client refused.
    Rejected,
    /// The app deleted it before the client decided.
    Cancelled,
}

/// One consent resource.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Intent {
    /// Its `ConsentId` in the OBIE resource (not the consent credential's id).
    pub id: String,
    /// The app that made it.
    pub app: Did,
    /// What it asks for.
    pub permissions: BTreeSet<Permission>,
    /// When the access asked for ends, if the app said.
    pub expiration: Option<DateTime<Utc>>,
    /// When it was made.
    pub created: DateTime<Utc>,
    /// When its stage last changed.
    pub updated: DateTime<Utc>,
    /// Where it stands.
    pub stage: Stage,
    /// For a domestic payment consent: the initiation the payment must repeat.
    pub initiation: Option<Value>,
}

impl Intent {
    /// The end of the validity the consent will be asked with.
    pub fn valid_until(&self) -> DateTime<Utc> {
        self.expiration
            .unwrap_or(self.created + Duration::days(DEFAULT_VALIDITY_DAYS))
    }

    /// The kind of payment it asks for, if it is a payment consent resource.
    pub fn payment_kind(&self) -> Option<PaymentKind> {
        self.initiation.as_ref()?;
        self.permissions.iter().find_map(|p| PaymentKind::of(*p))
    }

    /// True once nothing about it can change or be asked for any more.
    pub(super) fn gone(&self, now: DateTime<Utc>) -> bool {
        match self.stage {
            Stage::Awaiting => now > self.created + Duration::seconds(AWAITING_LIFETIME_SECS),
            Stage::Rejected | Stage::Cancelled => {
                now > self.updated + Duration::seconds(SETTLED_RETENTION_SECS)
            }
            Stage::Authorised(_) => {
                now > self.valid_until() + Duration::seconds(SETTLED_RETENTION_SECS)
            }
        }
    }

    /// The OBIE status code and when it last changed, as the log says now. A payment
    /// consent knows only `AWAU`, `AUTH` and `RJCT`: one no longer usable is `RJCT`.
    fn status(&self, state: &State, now: DateTime<Utc>) -> (&'static str, DateTime<Utc>) {
        let (code, at) = self.access_status(state, now);
        match (self.initiation.is_some(), code) {
            (true, "EXPD" | "CANC") => ("RJCT", at),
            _ => (code, at),
        }
    }

    fn access_status(&self, state: &State, now: DateTime<Utc>) -> (&'static str, DateTime<Utc>) {
        match &self.stage {
            Stage::Awaiting if now > self.created + Duration::seconds(AWAITING_LIFETIME_SECS) => (
                "EXPD",
                self.created + Duration::seconds(AWAITING_LIFETIME_SECS),
            ),
            Stage::Awaiting => ("AWAU", self.updated),
            Stage::Rejected => ("RJCT", self.updated),
            Stage::Cancelled => ("CANC", self.updated),
            Stage::Authorised(consent) => match state.consent_status(consent, now) {
                ConsentStatus::Active | ConsentStatus::NotYetValid => ("AUTH", self.updated),
                ConsentStatus::Expired => ("EXPD", self.valid_until().min(now)),
                _ => ("CANC", now),
            },
        }
    }

    /// The resource's `Data`, as `OBReadConsentResponse1` has it.
    pub fn data(&self, state: &State, now: DateTime<Utc>) -> Value {
        let time = |at: DateTime<Utc>| at.to_rfc3339_opts(SecondsFormat::Secs, false);
        let (status, changed) = self.status(state, now);
        let mut data = json!({
            "ConsentId": self.id,
            "CreationDateTime": time(self.created),
            "Status": status,
            "StatusUpdateDateTime": time(changed),
        });
        match &self.initiation {
            Some(initiation) => {
                data["Initiation"] = initiation.clone();
                if self.payment_kind() != Some(PaymentKind::Now) {
                    data["Permission"] = json!("Create");
                }
            }
            None => data["Permissions"] = json!(self.permissions),
        }
        // Only account access resources have an expiry field; a payment's consent ends
        // with its last payment.
        if let (Some(expiration), None) = (self.expiration, &self.initiation) {
            data["ExpirationDateTime"] = json!(time(expiration));
        }
        data
    }
}

fn bad(message: impl Into<String>) -> ObError {
    ObError::new(ObCode::InvalidConsentRequest, message)
}

/// Refuses a body the official file's request schema for `path` does not accept,
/// naming the first problem.
fn official(spec: &schema::Spec, path: &str, body: &Value) -> Result<(), ObError> {
    match schema::request_problem(spec, path, "post", body) {
        Some(problem) => Err(bad(format!("{problem} (OBIE v4.0 schema)"))),
        None => Ok(()),
    }
}

/// A consent request's `Data` object (which must hold `holding`), with `Risk` present.
fn data_of<'a>(
    body: &'a Value,
    holding: &str,
) -> Result<&'a serde_json::Map<String, Value>, ObError> {
    let data = body
        .get("Data")
        .and_then(Value::as_object)
        .ok_or_else(|| bad(format!("Data is required: an object with {holding}")))?;
    if body.get("Risk").is_none_or(|r| !r.is_object()) {
        return Err(bad("Risk is required: an object"));
    }
    Ok(data)
}

/// The permissions and expiration of an `OBReadConsent1` body.
fn read_request(
    body: &Value,
    now: DateTime<Utc>,
) -> Result<(BTreeSet<Permission>, Option<DateTime<Utc>>), ObError> {
    let data = data_of(body, "Permissions")?;
    for field in data.keys() {
        match field.as_str() {
            "Permissions" | "ExpirationDateTime" => {}
            "TransactionFromDateTime" | "TransactionToDateTime" => {
                return Err(bad(format!(
                    "Data.{field}: a transaction window is not offered; a consent covers the account's history for its permissions"
                )));
            }
            other => return Err(bad(format!("Data.{other}: not a field of OBReadConsent1"))),
        }
    }
    let codes: Vec<String> = data
        .get("Permissions")
        .and_then(|p| serde_json::from_value(p.clone()).ok())
        .ok_or_else(|| bad("Data.Permissions: a list of permission codes"))?;
    let mut permissions = BTreeSet::new();
    for code in codes {
        let permission: Permission = code
            .parse()
            .map_err(|e| bad(format!("Data.Permissions: {e}")))?;
        if permission == Permission::ReadPAN || permission.is_payment() {
            return Err(bad(format!(
                "Data.Permissions: {code} is not an account access permission offered here"
            )));
        }
        permissions.insert(permission);
    }
    check_permission_set(&permissions).map_err(|e| bad(format!("Data.Permissions: {e}")))?;
    let expiration = match data.get("ExpirationDateTime") {
        None => None,
        Some(text) => {
            let at = text
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .ok_or_else(|| {
                    ObError::new(
                        ObCode::InvalidDateTime,
                        "Data.ExpirationDateTime: an ISO 8601 date-time with its zone",
                    )
                })?
                .with_timezone(&Utc);
            if at <= now || at > now + Duration::days(MAX_VALIDITY_DAYS) {
                return Err(ObError::new(
                    ObCode::InvalidDateTime,
                    format!(
                        "Data.ExpirationDateTime: in the future, at most {MAX_VALIDITY_DAYS} days away"
                    ),
                ));
            }
            Some(at)
        }
    };
    Ok((permissions, expiration))
}

impl AuthServer {
    /// `app` asks for account access: a new resource waiting for the client. The bank
    /// must allow the app every permission asked, through an approved version.
    pub fn create_intent(
        &self,
        state: &State,
        app: &Did,
        body: &Value,
        now: DateTime<Utc>,
    ) -> Result<Intent, ObError> {
        official(schema::ais(), "/account-access-consents", body)?;
        let (permissions, expiration) = read_request(body, now)?;
        self.allowed(state, app, &permissions)?;
        self.keep(Intent {
            id: format!("aac-{}", random_hex(16)),
            app: app.clone(),
            permissions,
            expiration,
            created: now,
            updated: now,
            stage: Stage::Awaiting,
            initiation: None,
        })
    }

    /// `app` asks to make a payment of `kind` (now, scheduled, a standing order): a new
    /// resource waiting for the client. The initiation is checked as the payment will be,
    /// and the bank must allow the app that kind of payment.
    pub fn create_payment_intent(
        &self,
        state: &State,
        app: &Did,
        body: &Value,
        kind: PaymentKind,
        now: DateTime<Utc>,
    ) -> Result<Intent, ObError> {
        official(schema::pis(), kind.path(), body)?;
        let data = data_of(body, "Initiation")?;
        if let Some(field) = data.keys().find(|f| !kind.fields().contains(&f.as_str())) {
            return Err(bad(format!(
                "Data.{field}: not a field of a {} request",
                kind.path()
            )));
        }
        let initiation = data
            .get("Initiation")
            .filter(|i| i.is_object())
            .cloned()
            .ok_or_else(|| bad("Data.Initiation is required"))?;
        let expiration = kind.check(&initiation, now)?;
        let permissions = BTreeSet::from([kind.permission()]);
        self.allowed(state, app, &permissions)?;
        self.keep(Intent {
            id: format!("{}-{}", kind.prefix(), random_hex(16)),
            app: app.clone(),
            permissions,
            expiration,
            created: now,
            updated: now,
            stage: Stage::Awaiting,
            initiation: Some(initiation),
        })
    }

    /// Refuses unless an approved version of `app` may use every permission asked.
    fn allowed(
        &self,
        state: &State,
        app: &Did,
        permissions: &BTreeSet<Permission>,
    ) -> Result<(), ObError> {
        let allowed = state
            .catalog(&self.bank)
            .into_iter()
            .filter(|entry| &entry.manifest.app == app)
            .any(|entry| match entry.decision.map(|d| d.action) {
                Some(AppAction::Approve { permissions: p, .. }) => permissions.is_subset(&p),
                _ => false,
            });
        if allowed {
            Ok(())
        } else {
            Err(ObError::new(
                ObCode::PermissionNotAllowedForApp,
                "this bank allows no approved version of the app every permission asked",
            ))
        }
    }

    /// Keeps a new resource, within the bounds.
    fn keep(&self, intent: Intent) -> Result<Intent, ObError> {
        let (app, now) = (&intent.app, intent.created);
        let mut intents = lock(&self.intents);
        intents.retain(|_, i| !i.gone(now));
        let unsettled = intents
            .values()
            .filter(|i| &i.app == app && !matches!(i.stage, Stage::Authorised(_)))
            .count();
        if intents.len() >= MAX_INTENTS || unsettled >= MAX_UNSETTLED_PER_APP {
            return Err(ObError::new(
                ObCode::RateLimited,
                "too many consents waiting for a client; retry later",
            )
            .retry_after(60));
        }
        self.journal(&intent).map_err(|e| {
            ObError::new(
                ObCode::LedgerUnavailable,
                format!("the resource was not kept: {e}"),
            )
        })?;
        intents.insert(intent.id.clone(), intent.clone());
        // Every change is a line: the file is rewritten when it holds far more than the
        // resources kept (a failure here leaves the longer, still correct, file).
        if let Some(journal) = lock(&self.journal).as_mut()
            && let Err(error) = journal.compact(&intents)
        {
            tracing::warn!(%error, "the consent resources journal was not compacted");
        }
        Ok(intent)
    }

    /// Writes `intent` to the journal, if the server keeps one.
    fn journal(&self, intent: &Intent) -> Result<(), super::intents_journal::JournalError> {
        match lock(&self.journal).as_mut() {
            Some(journal) => journal.write(intent),
            None => Ok(()),
        }
    }

    /// `app`'s resource `id`, if it has one.
    pub fn intent(&self, app: &Did, id: &str, now: DateTime<Utc>) -> Result<Intent, ObError> {
        lock(&self.intents)
            .get(id)
            .filter(|i| &i.app == app && !i.gone(now))
            .cloned()
            .ok_or_else(|| {
                ObError::new(
                    ObCode::ConsentResourceUnknown,
                    format!("no consent resource {id} of this app"),
                )
            })
    }

    /// `app` deletes its resource `id`: one waiting is cancelled; for one authorised,
    /// the consent to revoke on the log is returned.
    pub fn delete_intent(
        &self,
        app: &Did,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ConsentId>, ObError> {
        let found = self.intent(app, id, now)?;
        let mut intents = lock(&self.intents);
        let Some(intent) = intents.get_mut(&found.id) else {
            return Ok(None);
        };
        match intent.stage {
            Stage::Authorised(consent) => Ok(Some(consent)),
            Stage::Awaiting => {
                intent.stage = Stage::Cancelled;
                intent.updated = now;
                let cancelled = intent.clone();
                drop(intents);
                self.journal(&cancelled).map_err(|e| {
                    ObError::new(
                        ObCode::LedgerUnavailable,
                        format!("the cancellation was not kept: {e}"),
                    )
                })?;
                Ok(None)
            }
            Stage::Rejected | Stage::Cancelled => Ok(None),
        }
    }

    /// The resource a pushed request names, if `app` may authorise it now.
    pub(super) fn awaiting_intent(
        &self,
        app: &Did,
        id: &str,
        now: DateTime<Utc>,
    ) -> Option<Intent> {
        self.intent(app, id, now)
            .ok()
            .filter(|i| i.stage == Stage::Awaiting && !i.gone(now))
    }

    /// The client decided on the resource `id`: `Some(consent)` approved, `None` refused.
    pub(super) fn intent_decided(&self, id: &str, consent: Option<ConsentId>, now: DateTime<Utc>) {
        let decided = {
            let mut intents = lock(&self.intents);
            match intents.get_mut(id) {
                Some(intent) if intent.stage == Stage::Awaiting => {
                    intent.stage = consent.map_or(Stage::Rejected, Stage::Authorised);
                    intent.updated = now;
                    Some(intent.clone())
                }
                _ => None,
            }
        };
        // The consent itself is on the log already; a lost line only loses its link.
        if let Some(intent) = decided
            && let Err(error) = self.journal(&intent)
        {
            tracing::error!(%error, resource = %intent.id, "a consent resource's decision was not journaled");
        }
    }
}

/// `HashMap` of resources by id.
pub type Intents = HashMap<String, Intent>;

impl consentnet_bank_adapter::api::ConsentResources for AuthServer {
    fn payment_resource(&self, app: &Did, id: &str) -> Option<(ConsentId, Value)> {
        let intents = lock(&self.intents);
        let intent = intents.get(id).filter(|i| &i.app == app)?;
        match (&intent.stage, &intent.initiation) {
            (Stage::Authorised(consent), Some(initiation)) => Some((*consent, initiation.clone())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_request_is_read_strictly() {
        let now = Utc::now();
        let ok =
            json!({ "Data": { "Permissions": ["ReadAccountsBasic", "ReadBalances"] }, "Risk": {} });
        let (permissions, expiration) = read_request(&ok, now).unwrap();
        assert_eq!(permissions.len(), 2);
        assert_eq!(expiration, None);
        for (body, named) in [
            (
                json!({ "Data": { "Permissions": [] }, "Risk": {} }),
                "Permissions",
            ),
            (
                json!({ "Data": { "Permissions": ["ReadAccountsBasic", "ReadBalances"] } }),
                "Risk",
            ),
            (
                json!({ "Data": { "Permissions": ["ReadPAN"] }, "Risk": {} }),
                "ReadPAN",
            ),
            (
                json!({ "Data": { "Permissions": ["ReadAccountsBasic", "ReadBalances"], "Colour": 1 }, "Risk": {} }),
                "Colour",
            ),
            (
                json!({ "Data": { "Permissions": ["ReadAccountsBasic", "ReadBalances"], "TransactionFromDateTime": "2026-01-01T00:00:00Z" }, "Risk": {} }),
                "window",
            ),
            (
                json!({ "Data": { "Permissions": ["ReadAccountsBasic", "ReadBalances"], "ExpirationDateTime": "2001-01-01T00:00:00Z" }, "Risk": {} }),
                "future",
            ),
        ] {
            let error = read_request(&body, now).unwrap_err();
            assert!(error.message.contains(named), "{named}: {}", error.message);
        }
    }
}
