//! The consent check every unified-API call passes before a bank connector is called (decision A3): proof of possession, freshness, replay, a usable consent for this bank, the account, the permission, and the bank's approval of the app; each failure with its own code.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use consentnet_consent_chain::event::AppAction;
use consentnet_consent_chain::{ConsentStatus, State};

use crate::links::AccountHolders;
use crate::problem::{ObCode, ObError};
use consentnet_identity::{
    ConsentId, Did, Permission, PopError, PopRequest, SignatureCheck, VerifiedConsent, check_pop,
};

/// How far a proof's `iat` may be from the adapter's clock, in seconds.
pub const PROOF_WINDOW_SECS: i64 = 30;

pub use crate::operation::Operation;

/// What the adapter reads from its node's state.
pub trait ConsentSource: Send + Sync {
    /// The consent `id` and its status at `at`, if the node holds its grant.
    fn consent_at(
        &self,
        id: &ConsentId,
        at: DateTime<Utc>,
    ) -> Option<(Arc<VerifiedConsent>, ConsentStatus)>;
    /// `bank`'s current decision on `version` of `app`.
    fn app_decision(&self, bank: &Did, app: &Did, version: &str) -> Option<AppAction>;
}

impl ConsentSource for State {
    fn consent_at(
        &self,
        id: &ConsentId,
        at: DateTime<Utc>,
    ) -> Option<(Arc<VerifiedConsent>, ConsentStatus)> {
        let consent = self.consent(id)?.clone();
        Some((consent, self.consent_status(id, at)))
    }

    fn app_decision(&self, bank: &Did, app: &Did, version: &str) -> Option<AppAction> {
        self.app_action(bank, app, version).cloned()
    }
}

/// One call as presented by a TSP.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    /// The operation the path routes to.
    pub operation: Operation,
    /// The HTTP method.
    pub method: &'a str,
    /// The full URL the TSP addressed (the proof's `htu`).
    pub url: &'a str,
    /// The `AccountId` in the path, for account operations.
    pub account: Option<&'a str>,
    /// The `Authorization` header value: `ConsentNet <consent id>` or `DPoP <access token>`.
    pub authorization: Option<&'a str>,
    /// The `DPoP` header: the proof.
    pub proof: Option<&'a str>,
    /// The `x-consentnet-app-version` header: the app version making the call.
    pub app_version: Option<&'a str>,
}

/// A call that passed every check.
#[derive(Debug, Clone)]
pub struct Authorized {
    /// The consent it runs under.
    pub consent: Arc<VerifiedConsent>,
    /// The permissions of the consent that the bank allows this app (the connector
    /// shapes its answer by them, e.g. Basic versus Detail).
    pub permissions: BTreeSet<Permission>,
    /// The rate the bank set for the app in its decision, if it set one.
    pub rate_limit: Option<consentnet_consent_chain::event::RateLimit>,
}

/// The authorization scheme name in the `Authorization` header.
pub const SCHEME: &str = "ConsentNet";
/// The same, as RFC 9449 names it for a DPoP-bound OAuth access token: the tokens the
/// node's authorization server issues are consent ids, so both schemes carry the same.
pub const OAUTH_SCHEME: &str = "DPoP";

/// Remembers recent proof ids so a proof is used once, in one partition per app: an app
/// that fills its own (at most `capacity` ids still inside the freshness window) has its
/// new calls refused rather than a replay let through, and every other app is unaffected.
/// Partitions exist only for apps whose proofs verified, so their number is bounded by
/// the apps holding consents at this bank.
#[derive(Debug)]
pub struct ReplayCache {
    capacity: usize,
    inner: Mutex<HashMap<Did, SeenProofs>>,
}

/// Proof ids seen, and the same with when they were seen (seconds) in arrival order.
/// An id is held as the first 16 bytes of its SHA-256: a fixed 16 bytes however long
/// the caller made it, and two ids collide only by breaking SHA-256.
#[derive(Debug, Default)]
struct SeenProofs {
    by_id: HashSet<u128>,
    order: VecDeque<(i64, u128)>,
}

/// The 16 bytes a proof id is remembered by.
fn proof_key(jti: &str) -> u128 {
    use sha2::{Digest as _, Sha256};
    let digest = Sha256::digest(jti.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    u128::from_be_bytes(first)
}

impl ReplayCache {
    /// A cache of at most `capacity` proof ids per app.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::default(),
        }
    }

    /// Records `jti` of `app`'s proof, seen at `now` (seconds). Errors when it was seen
    /// before, or when the app's partition is full of ids that have not expired yet.
    fn record(&self, app: &Did, jti: &str, now: i64) -> Result<(), ObError> {
        let mut partitions = consentnet_identity::util::lock(&self.inner);
        // The app's DID is cloned only for its first proof: this runs on every call.
        if !partitions.contains_key(app) {
            partitions.insert(app.clone(), SeenProofs::default());
        }
        let Some(SeenProofs { by_id: seen, order }) = partitions.get_mut(app) else {
            // Inserted just above; were it missing, refuse rather than let a replay in.
            return Err(ObError::new(ObCode::ReplayCacheFull, "retry shortly"));
        };
        // An id older than twice the window can no longer pass the freshness check.
        while let Some((at, _)) = order.front() {
            if *at >= now - 2 * PROOF_WINDOW_SECS {
                break;
            }
            if let Some((_, old)) = order.pop_front() {
                seen.remove(&old);
            }
        }
        let key = proof_key(jti);
        if seen.contains(&key) {
            return Err(ObError::new(
                ObCode::ProofReplayed,
                "this proof was already used",
            ));
        }
        if seen.len() >= self.capacity {
            return Err(ObError::new(
                ObCode::ReplayCacheFull,
                "this app made too many calls inside the proof window; retry shortly",
            )
            .retry_after(u64::try_from(PROOF_WINDOW_SECS).unwrap_or(1)));
        }
        seen.insert(key);
        order.push_back((now, key));
        Ok(())
    }
}

/// What the consent check consults at one bank: its consent state, its account links,
/// its replay cache and its DID. [`Gate::authorize`] runs the whole check;
/// [`Gate::begin`] and [`Gate::finish`] are its two halves around the proof's
/// signature, so concurrent calls can have their signatures verified in one batch.
#[derive(Clone, Copy)]
pub struct Gate<'a> {
    /// Consent and catalog state.
    pub source: &'a dyn ConsentSource,
    /// Which client DIDs hold which accounts.
    pub holders: &'a dyn AccountHolders,
    /// Proof ids seen recently.
    pub replay: &'a ReplayCache,
    /// This bank.
    pub bank: &'a Did,
}

impl Gate<'_> {
    /// Checks a presented call, in the order the design gives; the first failing check
    /// is the answer. [`Gate::begin`], the proof's signature, then [`Gate::finish`].
    pub fn authorize(
        &self,
        call: Presented<'_>,
        now: DateTime<Utc>,
    ) -> Result<Authorized, ObError> {
        let (pending, signature) = self.begin(call, now)?;
        if !signature.verify() {
            return Err(ObError::from_proof(PopError::BadSignature));
        }
        self.finish(pending, call, now)
    }

    /// The checks before the proof's signature (see [`begin`]).
    pub fn begin(
        &self,
        call: Presented<'_>,
        now: DateTime<Utc>,
    ) -> Result<(Pending, SignatureCheck), ObError> {
        begin(self.source, call, now)
    }

    /// The checks after the proof's signature verified (see [`finish`]).
    pub fn finish(
        &self,
        pending: Pending,
        call: Presented<'_>,
        now: DateTime<Utc>,
    ) -> Result<Authorized, ObError> {
        finish(pending, *self, call, now)
    }
}

/// A call whose headers, consent and proof claims passed, waiting for the proof's
/// signature to be verified. Nothing it claims is acted on before that.
#[derive(Debug)]
pub struct Pending {
    consent: Arc<VerifiedConsent>,
    status: ConsentStatus,
    jti: String,
    nonce: Option<String>,
}

impl Pending {
    /// The server nonce the proof claims, if any (checked by the caller that issued it).
    pub fn nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }
}

/// The checks before the proof's signature: headers, the consent known here, the
/// proof's form, key, method, URL, freshness and binding. Returns the signature to
/// verify (alone, or batched with other calls') before [`finish`].
fn begin(
    source: &dyn ConsentSource,
    call: Presented<'_>,
    now: DateTime<Utc>,
) -> Result<(Pending, SignatureCheck), ObError> {
    let token = call.authorization.ok_or_else(|| {
        ObError::new(
            ObCode::MissingAuthorization,
            format!("send Authorization: {SCHEME} <consent id>"),
        )
    })?;
    let id_text = [SCHEME, OAUTH_SCHEME]
        .iter()
        .find_map(|scheme| token.strip_prefix(scheme)?.strip_prefix(' '))
        .ok_or_else(|| {
            ObError::new(
                ObCode::InvalidAuthorization,
                format!("the Authorization scheme must be {SCHEME} or {OAUTH_SCHEME}"),
            )
        })?
        .trim();
    let id = ConsentId::parse(id_text).ok_or_else(|| {
        ObError::new(
            ObCode::InvalidAuthorization,
            "the consent id is not 64 hex digits",
        )
    })?;
    let proof = call.proof.ok_or_else(|| {
        ObError::new(
            ObCode::MissingProof,
            "send a DPoP proof signed by the app's key",
        )
    })?;
    if call.app_version.is_none() {
        return Err(ObError::new(
            ObCode::MissingAppVersion,
            "send x-consentnet-app-version: the calling app's version",
        ));
    }
    let (consent, status) = source.consent_at(&id, now).ok_or_else(|| {
        ObError::new(
            ObCode::ConsentUnknown,
            format!("consent {id} is not known to this bank's node"),
        )
    })?;
    let request = PopRequest {
        method: call.method,
        url: call.url,
        access_token: id_text,
    };
    let (claims, signature) = check_pop(
        proof,
        consent.terms.pop_key(),
        request,
        now,
        PROOF_WINDOW_SECS,
    )
    .map_err(ObError::from_proof)?;
    Ok((
        Pending {
            consent,
            status,
            jti: claims.jti,
            nonce: claims.nonce,
        },
        signature,
    ))
}

/// True when `consent` becomes valid within the clock-skew bound of `now`.
fn starts_within_skew(consent: &VerifiedConsent, now: DateTime<Utc>) -> bool {
    let skew = chrono::Duration::milliseconds(
        i64::try_from(consentnet_consent_chain::MAX_CLOCK_SKEW_MS).unwrap_or(i64::MAX),
    );
    now.checked_add_signed(skew)
        .is_some_and(|latest| consent.terms.valid_from <= latest)
}

/// The checks after the proof's signature verified: the proof used once, then the
/// consent's status, bank, holder, account and permissions, and the bank's decision on
/// the app version.
fn finish(
    pending: Pending,
    gate: Gate<'_>,
    call: Presented<'_>,
    now: DateTime<Utc>,
) -> Result<Authorized, ObError> {
    let Gate {
        source,
        holders,
        replay,
        bank,
    } = gate;
    let Pending {
        consent,
        status,
        jti,
        ..
    } = pending;
    let version = call.app_version.unwrap_or_default();
    replay.record(consent.terms.pop_key(), &jti, now.timestamp())?;

    match status {
        ConsentStatus::Active => {}
        // A consent valid from "now" at a bank whose clock runs a little slow: harmless
        // within the consortium's clock-skew bound.
        ConsentStatus::NotYetValid if starts_within_skew(&consent, now) => {}
        ConsentStatus::NotYetValid => {
            return Err(ObError::new(
                ObCode::ConsentNotYetValid,
                format!("consent is valid from {}", consent.terms.valid_from),
            ));
        }
        ConsentStatus::Expired => {
            return Err(ObError::new(
                ObCode::ConsentExpired,
                format!("consent expired at {}", consent.terms.valid_until),
            ));
        }
        ConsentStatus::Revoked => {
            return Err(ObError::new(
                ObCode::ConsentRevoked,
                "consent has been revoked",
            ));
        }
        ConsentStatus::Unknown => {
            return Err(ObError::new(
                ObCode::ConsentUnknown,
                format!("consent {} is not known to this bank's node", consent.id),
            ));
        }
    }
    if &consent.terms.bank != bank {
        return Err(ObError::new(
            ObCode::ConsentOtherBank,
            "consent was granted for another bank",
        ));
    }
    // The client who signed must be the bank's own customer for every account named:
    // anyone can sign a consent, only a linked holder's consent is honoured.
    if let Some(account) = consent
        .terms
        .accounts
        .iter()
        .find(|a| !holders.holds(&consent.issuer, a))
    {
        return Err(ObError::new(
            ObCode::ConsentIssuerNotHolder,
            format!(
                "the consent's issuer is not linked at this bank as a holder of account {account}"
            ),
        ));
    }
    if let Some(account) = call.account
        && call.operation.names_account()
        && !consent.terms.accounts.iter().any(|a| a == account)
    {
        return Err(ObError::new(
            ObCode::AccountNotInConsent,
            format!("account {account} is not in the consent"),
        ));
    }
    let covering = call.operation.covering_permissions();
    let granted: BTreeSet<Permission> = consent
        .terms
        .permissions
        .intersection(covering)
        .copied()
        .collect();
    if granted.is_empty() {
        return Err(ObError::new(
            ObCode::PermissionMissing,
            format!("{} needs one of {}", call.operation.name(), names(covering)),
        ));
    }
    match source.app_decision(bank, &consent.terms.app, version) {
        None => Err(ObError::new(
            ObCode::AppNotApproved,
            format!("app version {version} is not approved by this bank"),
        )),
        Some(AppAction::Suspend) => Err(ObError::new(
            ObCode::AppSuspended,
            format!("app version {version} is suspended by this bank"),
        )),
        Some(AppAction::Approve {
            permissions,
            rate_limit,
            ..
        }) => {
            let allowed: BTreeSet<Permission> =
                granted.intersection(&permissions).copied().collect();
            if allowed.is_empty() {
                return Err(ObError::new(
                    ObCode::PermissionNotAllowedForApp,
                    format!(
                        "this bank does not allow app version {version} to use {}",
                        names(&granted)
                    ),
                ));
            }
            let permissions = consent
                .terms
                .permissions
                .intersection(&permissions)
                .copied()
                .collect();
            Ok(Authorized {
                consent,
                permissions,
                rate_limit,
            })
        }
    }
}

fn names(permissions: &BTreeSet<Permission>) -> String {
    permissions
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use consentnet_identity::KeyPair;

    #[test]
    fn one_busy_app_fills_only_its_own_replay_partition() {
        let cache = ReplayCache::new(2);
        let (busy, quiet) = (KeyPair::generate(), KeyPair::generate());
        cache.record(busy.did(), "a", 100).unwrap();
        cache.record(busy.did(), "b", 100).unwrap();
        let full = cache.record(busy.did(), "c", 100).unwrap_err();
        assert_eq!(full.code, ObCode::ReplayCacheFull);
        assert_eq!(full.retry_after, Some(PROOF_WINDOW_SECS as u64));
        // The other app still calls, and a replay is still caught in either partition.
        cache.record(quiet.did(), "a", 100).unwrap();
        assert_eq!(
            cache.record(quiet.did(), "a", 101).unwrap_err().code,
            ObCode::ProofReplayed
        );
        assert_eq!(
            cache.record(busy.did(), "a", 101).unwrap_err().code,
            ObCode::ProofReplayed
        );
    }
}
