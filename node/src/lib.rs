//! The consentnet consortium node: the replicated consent log over libp2p, its HTTP API, the bank role and the portal.
//!
//! Only this crate knows libp2p. Nothing in the workspace depends on it. The layers, top
//! to bottom: `server` (the two listeners), `portal` and `api` (HTTP), `bank` (the bank role), `core` (the service
//! that owns the log), `p2p` (the swarm, which reaches the log only through
//! [`p2p::LogPeer`]); `config` and `keystore` stand apart. No layer names one above it.

pub mod api;
pub mod audit;
pub mod bank;
pub mod config;
pub mod core;
pub mod keystore;
pub mod p2p;
pub mod portal;
pub mod server;
pub mod setup;
