//! Identity for consentnet: keys, DIDs, the wallet keystore, consent and revocation credentials, and proof-of-possession.
//!
//! This crate knows no network, storage engine or HTTP. At this milestone it only
//! reserves its place in the workspace; its types arrive with the identity milestone.
