//! The genesis file and consortium membership: who may write feeds, in which role, and how many approvals a change needs.

use std::collections::BTreeMap;
use std::path::Path;

use consentnet_identity::Did;
use serde::{Deserialize, Serialize};

use crate::event::{Approval, MembershipAction, MembershipChange, domain, verify};

/// What a member does in the consortium.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A bank: serves the unified API, approves apps, records accesses.
    Bank,
    /// A third-party service provider.
    Tsp,
    /// A regulator: observes and audits.
    Regulator,
}

/// One consortium member.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Member {
    /// The member's DID: its node signs its feed with this key, and a bank signs its
    /// decisions and access records with it.
    pub did: Did,
    /// Bank, TSP or regulator.
    pub role: Role,
    /// The libp2p peer id of the member's node.
    pub peer_id: String,
    /// The member's name, for people.
    pub name: String,
}

/// Why a genesis file or membership change is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The file could not be read.
    #[error("cannot read genesis file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file is not a valid genesis document.
    #[error("invalid genesis: {0}")]
    Invalid(String),
}

/// The genesis document: the network's name and its founding members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Genesis {
    /// The network's name; nodes of different networks never mix.
    pub network: String,
    /// The founding members.
    pub members: Vec<Member>,
}

impl Genesis {
    /// Reads and checks a genesis file (JSON).
    pub fn load(path: &Path) -> Result<Self, GenesisError> {
        let text = std::fs::read_to_string(path).map_err(|source| GenesisError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses and checks a genesis document.
    pub fn parse(text: &str) -> Result<Self, GenesisError> {
        let genesis: Genesis =
            serde_json::from_str(text).map_err(|e| GenesisError::Invalid(e.to_string()))?;
        genesis.check()?;
        Ok(genesis)
    }

    fn check(&self) -> Result<(), GenesisError> {
        if self.network.trim().is_empty() {
            return Err(GenesisError::Invalid("network name is empty".into()));
        }
        if self.members.is_empty() {
            return Err(GenesisError::Invalid("no founding members".into()));
        }
        let mut seen = BTreeMap::new();
        for member in &self.members {
            if seen.insert(member.did.clone(), ()).is_some() {
                return Err(GenesisError::Invalid(format!(
                    "member {} is listed twice",
                    member.did
                )));
            }
        }
        Ok(())
    }

    /// The founding membership.
    pub fn membership(&self) -> Membership {
        Membership {
            members: self
                .members
                .iter()
                .map(|m| (m.did.clone(), m.clone()))
                .collect(),
        }
    }
}

/// The current members, by DID.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Membership {
    members: BTreeMap<Did, Member>,
}

impl Membership {
    /// The member with this DID.
    pub fn get(&self, did: &Did) -> Option<&Member> {
        self.members.get(did)
    }

    /// True when `did` is a member with `role`.
    pub fn has_role(&self, did: &Did, role: Role) -> bool {
        self.get(did).is_some_and(|m| m.role == role)
    }

    /// Every member.
    pub fn iter(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// How many members there are.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when there are no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Approvals needed for a change: a strict majority of current members.
    pub fn quorum(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// Counts the distinct current members whose approval of `change` verifies.
    pub fn valid_approvals(&self, change: &MembershipChange, approvals: &[Approval]) -> usize {
        let mut approvers = BTreeMap::new();
        for approval in approvals {
            if self.members.contains_key(&approval.member)
                && verify(
                    &approval.member,
                    domain::MEMBERSHIP,
                    change,
                    &approval.signature,
                )
            {
                approvers.insert(approval.member.clone(), ());
            }
        }
        approvers.len()
    }

    /// Applies a change (the caller has checked the quorum).
    pub fn apply(&mut self, change: &MembershipChange) {
        match &change.action {
            MembershipAction::Add { member } => {
                self.members.insert(member.did.clone(), member.clone());
            }
            MembershipAction::Remove { did } => {
                self.members.remove(did);
            }
        }
    }
}
