//! The events on the log and the signed records inside them: consents, revocations, app manifests, bank decisions, access records, membership changes and checkpoints.

use std::collections::{BTreeMap, BTreeSet};

use consentnet_identity::{
    ConsentId, Did, KeyPair, Permission, Revocation, SignatureCheck, sign_statement,
    statement_check, verify_statement,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::genesis::Member;
use crate::miniapp::MiniApp;
use consentnet_identity::Hash32;

/// The most access records one committed batch may hold.
pub const MAX_ACCESS_RECORDS: usize = 10_000;
/// The most approvals a membership change may carry.
pub const MAX_APPROVALS: usize = 256;

/// What a TSP app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// A web application.
    Web,
    /// A mobile application.
    Mobile,
}

/// A TSP's description of one version of its app, signed by the app's DID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppManifest {
    /// The app's DID: consents name it as their subject.
    pub app: Did,
    /// The name people see.
    pub name: String,
    /// What the app does.
    pub description: String,
    /// The version this manifest describes.
    pub version: String,
    /// Web or mobile.
    pub platform: Platform,
    /// OAuth redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Where banks push the app's event notifications (RFC 8935): an `https://` URL, or
    /// `http://` on a loopback address for development.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_uri: Option<String>,
    /// The permissions the app asks banks for.
    pub requested_permissions: BTreeSet<Permission>,
    /// SHA-256 of the app bundle, hex; for a mini-app, the hash of its file list
    /// ([`MiniApp::index_hash`]).
    pub bundle_hash: String,
    /// Present when this version runs in banks' portals as a mini-app: its files and
    /// the origins it asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mini_app: Option<Box<MiniApp>>,
}

/// A sustained rate and the burst allowed above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    /// Requests per second, sustained.
    pub per_second: u32,
    /// Requests that may come at once.
    pub burst: u32,
}

/// What a bank decides about one app version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum AppAction {
    /// The version may be used at this bank with these permissions.
    Approve {
        /// The permissions the app may use at this bank.
        permissions: BTreeSet<Permission>,
        /// The rate this bank lets the app call its unified API at; absent, the bank
        /// node's default applies.
        #[serde(default, rename = "rateLimit", skip_serializing_if = "Option::is_none")]
        rate_limit: Option<RateLimit>,
        /// The network origins a mini-app version may reach itself, from those its
        /// manifest asks for; none by default.
        #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
        origins: BTreeSet<String>,
    },
    /// The version may not be used at this bank; every consent for it stops working there.
    Suspend,
}

/// A bank's decision about an app version, signed by the bank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// No deny_unknown_fields: serde cannot combine it with a flattened field; the
// encoding is still checked to be canonical when an entry is decoded.
#[serde(rename_all = "camelCase")]
pub struct AppDecision {
    /// The deciding bank.
    pub bank: Did,
    /// The app.
    pub app: Did,
    /// The app version.
    pub version: String,
    /// Approve with permissions, or suspend.
    #[serde(flatten)]
    pub action: AppAction,
    /// When the bank decided, milliseconds since the Unix epoch; the latest decision wins.
    pub time: u64,
}

/// How an API call under a consent ended.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum Outcome {
    /// The data was served.
    Served,
    /// The call was refused, with the adapter's error code.
    Refused {
        /// The error code returned to the TSP.
        code: String,
    },
}

/// One API call under a consent: never the data, only that it happened.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
// No deny_unknown_fields: serde cannot combine it with a flattened field; the
// encoding is still checked to be canonical when an entry is decoded.
#[serde(rename_all = "camelCase")]
pub struct AccessRecord {
    /// The consent presented.
    pub consent_id: ConsentId,
    /// The operation, e.g. `GET /aisp/accounts/{AccountId}/balances`.
    pub operation: String,
    /// When it was served or refused, milliseconds since the Unix epoch.
    pub time: u64,
    /// Served or refused.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A bank's signed commitment to one batch of its access records. The records stay in
/// the bank's own store; the shared log carries only this: the Merkle root over the
/// batch's records (`store::records::batch_root`), their count and their time range, as
/// Certificate Transparency commits to its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessCommitment {
    /// The bank whose adapter served the calls.
    pub bank: Did,
    /// The batch's number in the bank's own store (1, 2, ...).
    pub batch: u64,
    /// The Merkle root over the batch's records, in order.
    pub root: Hash32,
    /// How many records the batch holds.
    pub records: u32,
    /// The oldest record's time, ms since the Unix epoch.
    pub first: u64,
    /// The newest record's time.
    pub last: u64,
}

/// A change to the consortium's membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum MembershipAction {
    /// Admit a member.
    Add {
        /// The new member.
        member: Member,
    },
    /// Remove a member.
    Remove {
        /// The member's DID.
        did: Did,
    },
}

/// A membership change with the time it was proposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// No deny_unknown_fields: serde cannot combine it with a flattened field; the
// encoding is still checked to be canonical when an entry is decoded.
#[serde(rename_all = "camelCase")]
pub struct MembershipChange {
    /// Add or remove.
    #[serde(flatten)]
    pub action: MembershipAction,
    /// When it was proposed, milliseconds since the Unix epoch.
    pub time: u64,
}

/// One member's signature on a membership change.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Approval {
    /// The approving member.
    pub member: Did,
    /// Its signature over the change.
    pub signature: String,
}

/// The head of one origin's feed: its last sequence number and that entry's hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FeedHead {
    /// The last sequence number (feeds start at 1).
    pub seq: u64,
    /// The hash of that entry.
    pub hash: Hash32,
}

/// An event: what an entry records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Event {
    /// A client granted a consent (the signed credential).
    ConsentGranted {
        /// The consent credential, as signed by the client.
        credential: Value,
    },
    /// A consent was revoked (the signed statement).
    ConsentRevoked {
        /// The revocation.
        revocation: Revocation,
    },
    /// A TSP published an app version.
    AppPublished {
        /// The manifest.
        manifest: AppManifest,
        /// The app key's signature over the manifest.
        signature: String,
    },
    /// A bank decided about an app version.
    AppDecided {
        /// The decision.
        decision: AppDecision,
        /// The bank's signature over the decision.
        signature: String,
    },
    /// A bank's commitment to a batch of its access records.
    AccessCommitted {
        /// The commitment.
        commitment: AccessCommitment,
        /// The bank's signature over it.
        signature: String,
    },
    /// A membership change approved by a quorum of members.
    MembershipChanged {
        /// The change.
        change: MembershipChange,
        /// Members' approvals.
        approvals: Vec<Approval>,
    },
    /// A node's signed view of every feed it holds (its frontier).
    Checkpoint {
        /// Origin -> head.
        frontier: BTreeMap<Did, FeedHead>,
    },
}

/// Signing domains, so a signature for one kind of record never verifies as another.
pub(crate) mod domain {
    pub const MANIFEST: &str = "app-manifest";
    pub const DECISION: &str = "app-decision";
    pub const ACCESS: &str = "access-commitment";
    pub const MEMBERSHIP: &str = "membership-change";
    pub const ENTRY: &str = "entry";
}

fn to_value<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_else(|_| unreachable!("plain fields serialize"))
}

fn sign<T: Serialize>(key: &KeyPair, domain: &str, value: &T) -> String {
    sign_statement(key, domain, &to_value(value))
        .unwrap_or_else(|_| unreachable!("no floats in records"))
}

pub(crate) fn verify<T: Serialize>(signer: &Did, domain: &str, value: &T, signature: &str) -> bool {
    verify_statement(signer, domain, &to_value(value), signature)
}

pub(crate) fn check<T: Serialize>(
    signer: &Did,
    domain: &str,
    value: &T,
    signature: &str,
) -> SignatureCheck {
    statement_check(signer, domain, &to_value(value), signature)
        .unwrap_or_else(|_| unreachable!("no floats in records"))
}

impl Event {
    /// The signed-statement check this event's own signature needs, for events signed
    /// by one party (app manifests, app decisions, access batches); `None` for the others.
    /// Lets many events' signatures be verified together (see [`Check::Presigned`]).
    ///
    /// [`Check::Presigned`]: crate::validate::Check::Presigned
    pub fn signature_check(&self) -> Option<SignatureCheck> {
        match self {
            Event::AppPublished {
                manifest,
                signature,
            } => Some(check(&manifest.app, domain::MANIFEST, manifest, signature)),
            Event::AppDecided {
                decision,
                signature,
            } => Some(check(&decision.bank, domain::DECISION, decision, signature)),
            Event::AccessCommitted {
                commitment,
                signature,
            } => Some(check(
                &commitment.bank,
                domain::ACCESS,
                commitment,
                signature,
            )),
            _ => None,
        }
    }

    /// Who made the event's own signature, for the kinds of event that carry one.
    pub fn signer(&self) -> Option<&Did> {
        match self {
            Event::AppPublished { manifest, .. } => Some(&manifest.app),
            Event::AppDecided { decision, .. } => Some(&decision.bank),
            Event::AccessCommitted { commitment, .. } => Some(&commitment.bank),
            _ => None,
        }
    }

    /// An app-published event, signed with the app's key.
    pub fn app_published(app_key: &KeyPair, manifest: AppManifest) -> Self {
        let signature = sign(app_key, domain::MANIFEST, &manifest);
        Event::AppPublished {
            manifest,
            signature,
        }
    }

    /// An app decision, signed with the bank's key.
    pub fn app_decided(bank_key: &KeyPair, decision: AppDecision) -> Self {
        let signature = sign(bank_key, domain::DECISION, &decision);
        Event::AppDecided {
            decision,
            signature,
        }
    }

    /// A commitment to an access batch, signed with the bank's key.
    pub fn access_committed(bank_key: &KeyPair, commitment: AccessCommitment) -> Self {
        let signature = sign(bank_key, domain::ACCESS, &commitment);
        Event::AccessCommitted {
            commitment,
            signature,
        }
    }

    /// A consent grant carrying its credential.
    pub fn consent_granted(credential: Value) -> Self {
        Event::ConsentGranted { credential }
    }

    /// A revocation.
    pub fn consent_revoked(revocation: Revocation) -> Self {
        Event::ConsentRevoked { revocation }
    }

    /// A short name of the event's kind, for errors, metrics and reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::ConsentGranted { .. } => "consentGranted",
            Event::ConsentRevoked { .. } => "consentRevoked",
            Event::AppPublished { .. } => "appPublished",
            Event::AppDecided { .. } => "appDecided",
            Event::AccessCommitted { .. } => "accessCommitted",
            Event::MembershipChanged { .. } => "membershipChanged",
            Event::Checkpoint { .. } => "checkpoint",
        }
    }

    /// The event's id: SHA-256 of its canonical JSON. The same event reaching a node
    /// through two feeds has one id and is applied once.
    pub fn id(&self) -> Hash32 {
        Hash32::of(&self.canonical())
    }

    /// The event's canonical JSON (what [`Event::id`] hashes).
    pub fn canonical(&self) -> Vec<u8> {
        consentnet_identity::canonical::canonical_json(&to_value(self)).unwrap_or_default()
    }

    /// [`Event::signature_check`] given this event's canonical JSON (`json`), slicing the
    /// signed record out of it instead of encoding it again (see
    /// [`Event::signed_record`]).
    pub fn signature_check_of_canonical(&self, json: &[u8]) -> Option<SignatureCheck> {
        match self.signed_record(json) {
            Some((signer, domain, record, signature)) => {
                Some(consentnet_identity::statement::canonical_statement_check(
                    signer, domain, record, signature,
                ))
            }
            None => self.signature_check(),
        }
    }

    /// The signer, domain, record JSON and signature of a signed event, given the
    /// event's canonical JSON. Canonical JSON writes a signed event as
    /// `{"<record>":<record JSON>,"signature":"…","type":"…"}`; `None` unless the bytes
    /// around the record are exactly that, or for an event without its own signature.
    pub(crate) fn signed_record<'a>(
        &'a self,
        json: &'a [u8],
    ) -> Option<(&'a Did, &'static str, &'a [u8], &'a str)> {
        let (field, tag, signer, domain, signature) = match self {
            Event::AppPublished {
                manifest,
                signature,
            } => (
                "manifest",
                "appPublished",
                &manifest.app,
                domain::MANIFEST,
                signature,
            ),
            Event::AppDecided {
                decision,
                signature,
            } => (
                "decision",
                "appDecided",
                &decision.bank,
                domain::DECISION,
                signature,
            ),
            Event::AccessCommitted {
                commitment,
                signature,
            } => (
                "commitment",
                "accessCommitted",
                &commitment.bank,
                domain::ACCESS,
                signature,
            ),
            _ => return None,
        };
        let head = format!("{{\"{field}\":");
        let tail = format!(
            ",\"signature\":{},\"type\":\"{tag}\"}}",
            serde_json::to_string(signature).ok()?
        );
        let fits = json.len() >= head.len() + tail.len()
            && json.starts_with(head.as_bytes())
            && json.ends_with(tail.as_bytes());
        fits.then(|| {
            (
                signer,
                domain,
                &json[head.len()..json.len() - tail.len()],
                signature.as_str(),
            )
        })
    }
}

/// Signs a membership change as one approving member.
pub fn approve_membership_change(member_key: &KeyPair, change: &MembershipChange) -> Approval {
    Approval {
        member: member_key.did().clone(),
        signature: sign(member_key, domain::MEMBERSHIP, change),
    }
}
