//! A bank core's error answers read through the mapping's `errors` section: the core's own code found by JSON pointer and mapped onto an outcome (not found, refused, duplicate, consent no longer valid), every other error status a `bank_core_refused` counted by operation, status and code.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::connector::{ConnectorError, CoreRefusalCount};

/// Distinct (operation, status, code) counters kept; later ones count as code `other`.
pub const MAX_REFUSAL_KINDS: usize = 64;

/// What a core's error code means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorOutcome {
    /// No such account or payment: the unified API's `404 not_found`.
    NotFound,
    /// The core refused a payment (e.g. no funds): `400 refused_by_bank` with the code.
    Refused,
    /// The idempotency key was used for another payment: `409 idempotency_conflict`.
    IdempotencyConflict,
    /// The core's own consent expired or was revoked: it is created again, once.
    ConsentInvalid,
}

/// How the core's error answers read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Errors {
    /// JSON pointer to the core's own error code in an error answer, e.g.
    /// `/tppMessages/0/code`.
    pub code: Option<String>,
    /// The core's code -> what it means. A code not listed is a `bank_core_refused`.
    #[serde(default)]
    pub codes: BTreeMap<String, ErrorOutcome>,
    /// The core's code for a refused payment -> the unified refusal code, e.g.
    /// `FUNDS_NOT_AVAILABLE = "insufficient_funds"`.
    #[serde(default)]
    pub refusals: BTreeMap<String, String>,
}

/// How one error answer reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// An error for the caller.
    Error(ConnectorError),
    /// The core consent is no longer valid.
    ConsentInvalid,
}

/// The request an error answered.
#[derive(Debug, Clone, Copy)]
pub(super) struct Asked<'a> {
    /// A payment initiation (a POST with an idempotency key).
    pub payment: bool,
    /// The operation's own pointer to a refusal code (`create_payment.refusal_code`).
    pub refusal_code: Option<&'a str>,
}

/// The core's code in `body`: printable ASCII, at most 64 characters, or `none`.
fn core_code(errors: &Errors, asked: Asked<'_>, body: Option<&Value>) -> String {
    let pointer = errors.code.as_deref().or(asked.refusal_code);
    let found = pointer
        .and_then(|p| body?.pointer(p))
        .and_then(|v| match v {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        });
    match found {
        Some(code) if !code.is_empty() => code
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .take(64)
            .collect(),
        _ => "none".into(),
    }
}

impl Errors {
    fn lists(&self, outcome: ErrorOutcome) -> bool {
        self.codes.values().any(|o| *o == outcome)
            || (outcome == ErrorOutcome::Refused && !self.refusals.is_empty())
    }

    /// What an error answer (`status`, parsed `body` when it was JSON) means.
    ///
    /// A listed code decides. Otherwise: a `404` is not found when it is JSON and the
    /// file lists no `not_found` code; a payment's `409` is a duplicate; a payment's
    /// other `4xx` carrying a code is a refusal when the file lists no `refused` code.
    /// Anything else, every `5xx` included, is the core refusing the request.
    pub(super) fn verdict(&self, asked: Asked<'_>, status: u16, body: Option<&Value>) -> Verdict {
        let code = core_code(self, asked, body);
        if asked.payment
            && let Some(unified) = self.refusals.get(&code)
        {
            return Verdict::Error(ConnectorError::Refused {
                code: unified.clone(),
                message: format!("the bank refused the payment ({status} {code})"),
            });
        }
        let outcome = self.codes.get(&code).copied().or(match status {
            404 if body.is_some() && !self.lists(ErrorOutcome::NotFound) => {
                Some(ErrorOutcome::NotFound)
            }
            409 if asked.payment => Some(ErrorOutcome::IdempotencyConflict),
            400..=499 if asked.payment && code != "none" && !self.lists(ErrorOutcome::Refused) => {
                Some(ErrorOutcome::Refused)
            }
            _ => None,
        });
        Verdict::Error(match outcome {
            Some(ErrorOutcome::ConsentInvalid) => return Verdict::ConsentInvalid,
            Some(ErrorOutcome::NotFound) => ConnectorError::NotFound(String::new()),
            Some(ErrorOutcome::IdempotencyConflict) => ConnectorError::IdempotencyConflict,
            Some(ErrorOutcome::Refused) => ConnectorError::Refused {
                code,
                message: format!("the bank refused the payment ({status})"),
            },
            None => ConnectorError::CoreRefused { status, code },
        })
    }
}

/// The core's refusals counted by operation, status and code (bounded).
#[derive(Debug, Default)]
pub(super) struct Refusals(std::sync::Mutex<BTreeMap<(&'static str, u16, String), u64>>);

impl Refusals {
    /// Counts one refusal and logs it for the bank's operator.
    pub(super) fn note(&self, connector: &str, operation: &'static str, status: u16, code: &str) {
        tracing::warn!(
            connector,
            operation,
            status,
            code,
            "the bank core refused a request"
        );
        let mut counts = consentnet_identity::util::lock(&self.0);
        let mut key = (operation, status, code.to_owned());
        if !counts.contains_key(&key) && counts.len() >= MAX_REFUSAL_KINDS {
            key.2 = "other".into();
        }
        let count = counts.entry(key).or_default();
        *count = count.saturating_add(1);
    }

    /// The counts so far.
    pub(super) fn counts(&self) -> Vec<CoreRefusalCount> {
        consentnet_identity::util::lock(&self.0)
            .iter()
            .map(|((operation, status, code), count)| CoreRefusalCount {
                operation: (*operation).to_owned(),
                status: *status,
                code: code.clone(),
                count: *count,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const READ: Asked<'static> = Asked {
        payment: false,
        refusal_code: None,
    };

    #[test]
    fn a_404_is_not_found_only_when_the_core_says_so() {
        let plain = Errors::default();
        let not_found = Verdict::Error(ConnectorError::NotFound(String::new()));
        assert_eq!(plain.verdict(READ, 404, Some(&json!({}))), not_found);
        // No JSON: the path does not exist at the core (a wrong base URL).
        assert!(matches!(
            plain.verdict(READ, 404, None),
            Verdict::Error(ConnectorError::CoreRefused { status: 404, .. })
        ));
        let strict = Errors {
            code: Some("/tppMessages/0/code".into()),
            codes: [("RESOURCE_UNKNOWN".into(), ErrorOutcome::NotFound)].into(),
            refusals: BTreeMap::new(),
        };
        let unknown = json!({ "tppMessages": [{ "code": "RESOURCE_UNKNOWN" }] });
        assert_eq!(strict.verdict(READ, 404, Some(&unknown)), not_found);
        assert_eq!(
            strict.verdict(READ, 404, Some(&json!({ "error": "no route" }))),
            Verdict::Error(ConnectorError::CoreRefused {
                status: 404,
                code: "none".into()
            })
        );
    }

    #[test]
    fn a_core_400_is_refused_with_its_code_and_never_not_found() {
        let strict = Errors {
            code: Some("/tppMessages/0/code".into()),
            ..Errors::default()
        };
        let body = json!({ "tppMessages": [{ "code": "FORMAT_ERROR\n" }] });
        assert_eq!(
            strict.verdict(READ, 400, Some(&body)),
            Verdict::Error(ConnectorError::CoreRefused {
                status: 400,
                code: "FORMAT_ERROR".into()
            })
        );
    }

    #[test]
    fn refusal_kinds_are_bounded() {
        let refusals = Refusals::default();
        for i in 0..(MAX_REFUSAL_KINDS + 10) {
            refusals.note("core", "balances", 400, &format!("CODE_{i}"));
        }
        let counts = refusals.counts();
        assert_eq!(counts.len(), MAX_REFUSAL_KINDS + 1);
        let other = counts.iter().find(|c| c.code == "other").map(|c| c.count);
        assert_eq!(other, Some(10));
    }
}
