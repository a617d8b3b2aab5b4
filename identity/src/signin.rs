//! Portal sign-in: a client's signed answer to a node's one-time challenge, proving it holds a DID's key without sending any secret.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::keys::{Did, KeyPair};
use crate::statement::{sign_statement, verify_statement};

/// The domain of the statement a client signs to sign in.
pub const SIGN_IN_DOMAIN: &str = "portal-sign-in";

/// A DID's answer to a sign-in challenge of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// The challenge the node showed.
    pub challenge: String,
    /// The DID signing in.
    pub did: String,
    /// The DID's signature (base64url) over `{challenge, did, node}` under [`SIGN_IN_DOMAIN`].
    pub proof: String,
}

impl SignIn {
    fn signed_value(node: &Did, challenge: &str, did: &str) -> Value {
        json!({ "challenge": challenge, "did": did, "node": node.as_str() })
    }

    /// `key`'s answer to `challenge` from the node `node`.
    pub fn sign(key: &KeyPair, node: &Did, challenge: &str) -> Self {
        let did = key.did().as_str();
        Self {
            challenge: challenge.to_owned(),
            did: did.to_owned(),
            // An object of three strings always has a canonical form.
            proof: sign_statement(
                key,
                SIGN_IN_DOMAIN,
                &Self::signed_value(node, challenge, did),
            )
            .unwrap_or_default(),
        }
    }

    /// The DID, when this answer is signed by it for `node`.
    pub fn verify(&self, node: &Did) -> Option<Did> {
        let did = Did::parse(&self.did).ok()?;
        verify_statement(
            &did,
            SIGN_IN_DOMAIN,
            &Self::signed_value(node, &self.challenge, &self.did),
            &self.proof,
        )
        .then_some(did)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_answer_verifies_for_its_node_only_and_cannot_be_moved_to_another_did() {
        let (client, node, other) = (
            KeyPair::generate(),
            KeyPair::generate(),
            KeyPair::generate(),
        );
        let answer = SignIn::sign(&client, node.did(), "c-1");
        assert_eq!(answer.verify(node.did()).as_ref(), Some(client.did()));
        assert_eq!(answer.verify(other.did()), None);
        let mut moved = answer.clone();
        moved.did = other.did().to_string();
        assert_eq!(moved.verify(node.did()), None);
        let mut replayed = answer;
        replayed.challenge = "c-2".into();
        assert_eq!(replayed.verify(node.did()), None);
    }
}
