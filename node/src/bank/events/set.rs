//! Security Event Tokens (RFC 8417) as UK Open Banking's event notifications shape them: signed by the bank (`typ` `secevent+jwt`, EdDSA), addressed to the app, naming the consent or the version and nothing about the client.

use chrono::{DateTime, Utc};
use consentnet_identity::{Did, b64url};
use serde_json::{Value, json};

use super::Notice;

/// OBIE's event type for a consent whose authorisation was revoked.
pub const EVENT_CONSENT_REVOKED: &str =
    "urn:uk:org:openbanking:events:consent-authorization-revoked";
/// OBIE's event type for a resource whose state changed (here: a consent that expired).
pub const EVENT_RESOURCE_UPDATE: &str = "urn:uk:org:openbanking:events:resource-update";
/// consentnet's event type for an app version this bank suspended.
pub const EVENT_VERSION_SUSPENDED: &str = "https://consentnet.org/events/app-version-suspended";

/// The OBIE subject of a consent: its id as the resource id, the grant as its link.
fn consent_subject(issuer: &str, consent: &str) -> Value {
    json!({
        "subject_type": "http://openbanking.org.uk/rid_http://openbanking.org.uk/rty",
        "http://openbanking.org.uk/rid": consent,
        "http://openbanking.org.uk/rty": "consent",
        "http://openbanking.org.uk/rlk": [{
            "version": "v4.0",
            "link": format!("{issuer}/oauth/grants/{consent}"),
        }],
    })
}

/// The `events` claim of `notice`.
fn events(issuer: &str, app: &Did, notice: &Notice) -> Value {
    match notice {
        Notice::ConsentRevoked { consent, by_client } => json!({ EVENT_CONSENT_REVOKED: {
            "subject": consent_subject(issuer, &consent.to_string()),
            "initiator": if *by_client { "client" } else { "bank" },
        }}),
        Notice::ConsentExpired { consent } => json!({ EVENT_RESOURCE_UPDATE: {
            "subject": consent_subject(issuer, &consent.to_string()),
            "status": "expired",
        }}),
        Notice::VersionSuspended { version } => json!({ EVENT_VERSION_SUSPENDED: {
            "subject": { "subject_type": "app-version", "app": app, "version": version },
        }}),
    }
}

/// `notice` for `app` as a SET signed by the bank: its `jti` and the compact JWS.
pub(super) fn sign(
    signer: &consentnet_bank_adapter::jws::Signer,
    issuer: &str,
    app: &Did,
    notice: &Notice,
    now: DateTime<Utc>,
) -> (String, String) {
    let jti = consentnet_identity::util::random_hex(16);
    let header = json!({
        "alg": "EdDSA",
        "typ": "secevent+jwt",
        "kid": signer.bank.verification_method(),
    });
    let claims = json!({
        "iss": issuer,
        "iat": now.timestamp(),
        "jti": jti,
        "aud": app,
        "txn": consentnet_identity::util::random_hex(16),
        "toe": now.timestamp(),
        "events": events(issuer, app, notice),
    });
    let encode = |value: &Value| b64url(&serde_json::to_vec(value).unwrap_or_default());
    let input = format!("{}.{}", encode(&header), encode(&claims));
    let signature = b64url(&(signer.sign)(input.as_bytes()));
    (jti, format!("{input}.{signature}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use consentnet_identity::KeyPair;
    use consentnet_identity::jose::Jws;

    #[test]
    fn a_set_verifies_with_the_banks_key_and_names_no_client() {
        let (bank, app) = (KeyPair::generate(), KeyPair::generate());
        let key = bank.clone();
        let signer = consentnet_bank_adapter::jws::Signer {
            bank: bank.did().clone(),
            sign: std::sync::Arc::new(move |bytes| key.sign(bytes)),
        };
        let consent = consentnet_identity::Hash32([3; 32]);
        let notice = Notice::ConsentRevoked {
            consent,
            by_client: true,
        };
        let (jti, token) = sign(
            &signer,
            "https://bank.example",
            app.did(),
            &notice,
            Utc::now(),
        );
        let jws = Jws::decode(&token).unwrap();
        jws.verify(bank.did()).unwrap();
        assert!(jws.verify(app.did()).is_err());
        assert_eq!(jws.claim_str("jti"), Some(jti.as_str()));
        assert_eq!(jws.claim_str("aud"), Some(app.did().as_str()));
        let event = &jws.claims["events"][EVENT_CONSENT_REVOKED];
        assert_eq!(
            event["subject"]["http://openbanking.org.uk/rid"],
            consent.to_string()
        );
        assert_eq!(event["initiator"], "client");
        assert_eq!(jws.header["typ"], "secevent+jwt");
    }
}
