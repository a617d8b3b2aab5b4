//! Account-link requests: a client's signed statement that the DID it names should be linked, at one bank, to the accounts behind a one-time link code.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::keys::{Did, KeyPair};
use crate::statement::{sign_statement, verify_statement};

/// The domain of the statement a client signs to link a DID.
pub const LINK_DOMAIN: &str = "account-link";

/// A client's request to link `did` at a bank, signed by `did`'s key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// The code from the bank's own channel.
    pub code: String,
    /// The DID to link.
    pub did: String,
    /// The DID's signature (base64url) over `{bank, code, did}` under [`LINK_DOMAIN`].
    pub proof: String,
}

impl LinkRequest {
    /// What the client signs.
    fn signed_value(bank: &Did, code: &str, did: &str) -> Value {
        json!({ "bank": bank.as_str(), "code": code, "did": did })
    }

    /// A request signed by `key` to link its DID at `bank` with `code`.
    pub fn sign(key: &KeyPair, bank: &Did, code: &str) -> Self {
        let did = key.did().as_str();
        Self {
            code: code.to_owned(),
            did: did.to_owned(),
            // An object of three strings always has a canonical form.
            proof: sign_statement(key, LINK_DOMAIN, &Self::signed_value(bank, code, did))
                .unwrap_or_default(),
        }
    }

    /// True when `signer` signed this request for `bank`.
    pub fn signed_by(&self, signer: &Did, bank: &Did) -> bool {
        signer.as_str() == self.did
            && verify_statement(
                signer,
                LINK_DOMAIN,
                &Self::signed_value(bank, &self.code, &self.did),
                &self.proof,
            )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_request_verifies_for_its_bank_and_signer_only() {
        let (client, bank, other) = (
            KeyPair::generate(),
            KeyPair::generate(),
            KeyPair::generate(),
        );
        let request = LinkRequest::sign(&client, bank.did(), "0123");
        assert!(request.signed_by(client.did(), bank.did()));
        assert!(
            !request.signed_by(client.did(), other.did()),
            "another bank"
        );
        assert!(
            !request.signed_by(other.did(), bank.did()),
            "another signer"
        );
        let mut changed = request.clone();
        changed.code = "0124".into();
        assert!(!changed.signed_by(client.did(), bank.did()), "another code");
    }
}
