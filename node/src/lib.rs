//! The consentnet consortium node: its HTTP API today; libp2p replication and the consent log join in later milestones.
//!
//! Only this crate knows libp2p. Nothing in the workspace depends on it.

pub mod http;
