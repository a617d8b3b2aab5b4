//! Event validation: every event carries the signature of the party entitled to make it, checked before anything is stored.

use std::sync::Arc;

use consentnet_identity::{
    ConsentError, ConsentVerifier, Did, Revocation, RevocationError, VerifiedConsent,
    verify_consent_blocking,
};

use crate::event::{
    AccessCommitment, AppDecision, AppManifest, Approval, Event, MAX_ACCESS_RECORDS, MAX_APPROVALS,
    MembershipChange, domain,
};
use crate::genesis::{Membership, Role};

const MAX_TEXT: usize = 500;

/// Why an event is refused.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The consent credential does not verify.
    #[error("consent: {0}")]
    Consent(#[from] ConsentError),
    /// The consent names a bank that is not a bank member of the consortium.
    #[error("consent names {0}, which is not a bank in this consortium")]
    UnknownBank(String),
    /// The revocation does not verify.
    #[error("revocation: {0}")]
    Revocation(#[from] RevocationError),
    /// A record's signature is not its author's.
    #[error("{0} signature does not verify")]
    BadSignature(&'static str),
    /// A bank-only record signed by someone who is not a bank member.
    #[error("{0} is not a bank in this consortium")]
    NotABank(String),
    /// An access batch in a feed other than its bank's own.
    #[error("access records of {bank} may only appear in that bank's feed, not {origin}'s")]
    ForeignAccessBatch {
        /// The batch's bank.
        bank: String,
        /// The feed it arrived in.
        origin: String,
    },
    /// A grant in a feed other than its bank's own: only the bank a consent names
    /// admits it to the log, once it knows the signer as the holder of its accounts.
    #[error(
        "consents for {bank} are admitted to the log only by that bank's node, not {origin}'s; submit it there"
    )]
    ForeignGrant {
        /// The consent's bank.
        bank: String,
        /// The feed it arrived in.
        origin: String,
    },
    /// A field is empty, too long or out of bounds.
    #[error("invalid {0}")]
    Invalid(String),
    /// Not enough member approvals.
    #[error("membership change has {have} valid approvals; {need} are needed")]
    QuorumNotMet {
        /// Valid approvals from distinct current members.
        have: usize,
        /// The quorum.
        need: usize,
    },
}

/// An event whose signatures and entitlements have been checked, with its parsed parts.
#[derive(Debug, Clone)]
pub enum ValidEvent {
    /// A verified consent.
    Granted(Arc<VerifiedConsent>),
    /// A revocation with a valid signature (entitlement is judged against the grant in state).
    Revoked(Revocation),
    /// An app manifest signed by its app.
    Published(AppManifest),
    /// A bank's decision.
    Decided(AppDecision),
    /// A bank's commitment to a batch of its access records.
    Accessed(AccessCommitment),
    /// A membership change with a quorum.
    Membership(MembershipChange, Vec<Approval>),
    /// A node checkpoint.
    Checkpoint,
}

fn text_field(name: &str, value: &str) -> Result<(), EventError> {
    if value.trim().is_empty() || value.chars().count() > MAX_TEXT {
        return Err(EventError::Invalid(format!(
            "{name}: 1 to {MAX_TEXT} characters"
        )));
    }
    Ok(())
}

/// Verifies a consent credential through `verifier`'s cache.
pub fn verify_credential(
    verifier: &ConsentVerifier,
    credential: &serde_json::Value,
) -> Result<Arc<VerifiedConsent>, ConsentError> {
    let id = consentnet_identity::consent_id(credential)?;
    if let Some(hit) = verifier.get(&id) {
        return Ok(hit);
    }
    let verified = Arc::new(verify_consent_blocking(credential.to_string().as_bytes())?);
    verifier.insert(verified.clone());
    Ok(verified)
}

/// How much to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Everything: input from outside.
    Full,
    /// Everything except the event's own signature ([`Event::signature_check`]), which
    /// the caller has verified already (in a batch). Credentials, revocations and
    /// membership approvals are still verified.
    ///
    /// [`Event::signature_check`]: crate::event::Event::signature_check
    Presigned,
    /// Shape and entitlement only, no signatures: entries this node verified before it
    /// stored them, read back from its own log at start-up.
    Stored,
}

/// An app manifest's fields: text, redirect URIs, the bundle hash and a mini-app's files.
fn check_manifest(manifest: &crate::event::AppManifest) -> Result<(), EventError> {
    text_field("app name", &manifest.name)?;
    text_field("app description", &manifest.description)?;
    text_field("app version", &manifest.version)?;
    if manifest.redirect_uris.len() > 16 || manifest.redirect_uris.iter().any(|u| u.len() > 2048) {
        return Err(EventError::Invalid(
            "redirect URIs: at most 16 of 2048 bytes".into(),
        ));
    }
    if let Some(uri) = &manifest.events_uri
        && !https_or_loopback(uri)
    {
        return Err(EventError::Invalid(
            "events URI: an https:// URL (or http:// on a loopback address) of at most 2048 bytes"
                .into(),
        ));
    }
    if manifest.bundle_hash.len() != 64
        || !manifest.bundle_hash.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(EventError::Invalid(
            "bundle hash: 64 hex digits of SHA-256".into(),
        ));
    }
    if let Some(mini_app) = &manifest.mini_app {
        mini_app
            .check(&manifest.bundle_hash)
            .map_err(|e| EventError::Invalid(e.to_string()))?;
    }
    Ok(())
}

/// True for a URL a bank may send a client or a request to (an event push endpoint, a
/// redirect URI): `https://`, or `http://` on
/// `localhost` or a loopback address (for development), at most 2048 bytes.
pub fn https_or_loopback(uri: &str) -> bool {
    if uri.len() > 2048 || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    if let Some(rest) = uri.strip_prefix("https://") {
        return !rest.is_empty() && !rest.starts_with('/');
    }
    let Some(rest) = uri.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An app decision's fields: the version, and an approval's rate and origins.
fn check_decision(decision: &crate::event::AppDecision) -> Result<(), EventError> {
    text_field("app version", &decision.version)?;
    let crate::event::AppAction::Approve {
        rate_limit,
        origins,
        ..
    } = &decision.action
    else {
        return Ok(());
    };
    if rate_limit.is_some_and(|rate| rate.per_second == 0 || rate.burst == 0) {
        return Err(EventError::Invalid(
            "rateLimit: perSecond and burst are at least 1".into(),
        ));
    }
    crate::miniapp::check_allowed_origins(origins.iter())
        .map_err(|e| EventError::Invalid(e.to_string()))
}

/// Checks `event`, appearing in `origin`'s feed, against the current membership.
pub fn validate_event(
    event: &Event,
    origin: &Did,
    membership: &Membership,
    verifier: &ConsentVerifier,
    check: Check,
) -> Result<ValidEvent, EventError> {
    let full = check != Check::Stored;
    let verify = |signer: &Did, domain: &str, value: &dyn erased::Signed, signature: &str| {
        check != Check::Full || value.verify_by(signer, domain, signature)
    };
    let require_bank = |did: &Did| {
        if membership.has_role(did, Role::Bank) {
            Ok(())
        } else {
            Err(EventError::NotABank(did.to_string()))
        }
    };
    match event {
        Event::ConsentGranted { credential } => {
            let consent = if full {
                verify_credential(verifier, credential)?
            } else {
                Arc::new(VerifiedConsent::from_trusted_store(credential)?)
            };
            if !membership.has_role(&consent.terms.bank, Role::Bank) {
                return Err(EventError::UnknownBank(consent.terms.bank.to_string()));
            }
            if &consent.terms.bank != origin {
                return Err(EventError::ForeignGrant {
                    bank: consent.terms.bank.to_string(),
                    origin: origin.to_string(),
                });
            }
            Ok(ValidEvent::Granted(consent))
        }
        Event::ConsentRevoked { revocation } => {
            if full {
                revocation.verify_signature()?;
            }
            Ok(ValidEvent::Revoked(revocation.clone()))
        }
        Event::AppPublished {
            manifest,
            signature,
        } => {
            check_manifest(manifest)?;
            if !verify(&manifest.app, domain::MANIFEST, manifest, signature) {
                return Err(EventError::BadSignature("app manifest"));
            }
            Ok(ValidEvent::Published(manifest.clone()))
        }
        Event::AppDecided {
            decision,
            signature,
        } => {
            require_bank(&decision.bank)?;
            check_decision(decision)?;
            if !verify(&decision.bank, domain::DECISION, decision, signature) {
                return Err(EventError::BadSignature("app decision"));
            }
            Ok(ValidEvent::Decided(decision.clone()))
        }
        Event::AccessCommitted {
            commitment,
            signature,
        } => {
            require_bank(&commitment.bank)?;
            if &commitment.bank != origin {
                return Err(EventError::ForeignAccessBatch {
                    bank: commitment.bank.to_string(),
                    origin: origin.to_string(),
                });
            }
            let records = usize::try_from(commitment.records).unwrap_or(usize::MAX);
            if records == 0 || records > MAX_ACCESS_RECORDS {
                return Err(EventError::Invalid(format!(
                    "access commitment: 1 to {MAX_ACCESS_RECORDS} records"
                )));
            }
            if commitment.batch == 0 || commitment.first > commitment.last {
                return Err(EventError::Invalid(
                    "access commitment: batch from 1, first no later than last".into(),
                ));
            }
            if !verify(&commitment.bank, domain::ACCESS, commitment, signature) {
                return Err(EventError::BadSignature("access commitment"));
            }
            Ok(ValidEvent::Accessed(commitment.clone()))
        }
        Event::MembershipChanged { change, approvals } => {
            if approvals.len() > MAX_APPROVALS {
                return Err(EventError::Invalid(format!(
                    "at most {MAX_APPROVALS} approvals"
                )));
            }
            let have = if full {
                membership.valid_approvals(change, approvals)
            } else {
                approvals.len()
            };
            let need = membership.quorum();
            if have < need {
                return Err(EventError::QuorumNotMet { have, need });
            }
            Ok(ValidEvent::Membership(change.clone(), approvals.clone()))
        }
        Event::Checkpoint { frontier } => {
            if let Some(stranger) = frontier.keys().find(|did| membership.get(did).is_none()) {
                return Err(EventError::Invalid(format!(
                    "checkpoint names non-member {stranger}"
                )));
            }
            Ok(ValidEvent::Checkpoint)
        }
    }
}

mod erased {
    //! Lets one closure check signatures over records of different types.
    use consentnet_identity::Did;

    pub trait Signed {
        fn verify_by(&self, signer: &Did, domain: &str, signature: &str) -> bool;
    }

    impl<T: serde::Serialize> Signed for T {
        fn verify_by(&self, signer: &Did, domain: &str, signature: &str) -> bool {
            crate::event::verify(signer, domain, self, signature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::https_or_loopback;

    #[test]
    fn an_events_uri_is_https_or_http_on_a_loopback_address() {
        for good in [
            "https://tsp.example/events",
            "http://127.0.0.1:8080/events",
            "http://localhost/events",
            "http://[::1]:9/e",
        ] {
            assert!(https_or_loopback(good), "{good}");
        }
        for bad in [
            "http://tsp.example/events",
            "http://10.0.0.1/events",
            "http://127.0.0.1.evil.example/events",
            "ftp://tsp.example/",
            "https://",
            "https://tsp.example/ events",
            "",
        ] {
            assert!(!https_or_loopback(bad), "{bad}");
        }
        assert!(!https_or_loopback(&format!(
            "https://a.example/{}",
            "x".repeat(2048)
        )));
    }
}
