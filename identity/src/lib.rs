//! Identity for consentnet: keys and DIDs, the wallet keystore, consent and revocation credentials, and proof-of-possession.
//!
//! This crate knows no network, storage engine or HTTP: it turns bytes into verified
//! values and back. Signing and verifying consent credentials goes through the `ssi`
//! crate (`eddsa-rdfc-2022`); everything else uses Ed25519 directly.

#![deny(missing_docs)]

pub mod batch;
pub mod cache;
pub mod canonical;
pub mod consent;
pub(crate) mod consent_proof;
pub mod hash;
pub mod jose;
pub mod keys;
pub mod ld_input;
pub mod link;
pub mod permissions;
pub mod pop;
pub mod rdf_bound;
pub mod revocation;
pub mod signin;
pub mod statement;
pub mod status;
pub mod strict;
pub mod terms;
pub mod util;
pub mod vcapi;
pub mod wallet;

pub use batch::{verify_all, verify_many};
pub use cache::ConsentVerifier;
pub use consent::{
    ConsentError, ConsentId, ConsentTerms, PaymentLimits, Period, Validity, VerifiedConsent,
    consent_id, issue_consent, verify_consent, verify_consent_blocking,
};
pub use hash::Hash32;
pub use keys::{Did, KeyError, KeyPair, SignatureCheck};
pub use link::LinkRequest;
pub use permissions::{Permission, PermissionError};
pub use pop::{PopClaims, PopError, PopRequest, check_pop, proof_signer, sign_pop, verify_pop};
pub use revocation::{Revocation, RevocationError};
pub use statement::{sign_statement, statement_check, verify_statement};
pub use wallet::{KdfParams, Wallet, WalletError};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Base64url without padding, as JWS and the wallet use.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; `None` when the text is not that.
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}
