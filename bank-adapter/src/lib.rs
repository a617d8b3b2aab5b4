//! The bank adapter for consentnet: the unified Open Banking API, consent enforcement and bank connectors.
//!
//! It reads consent state through [`enforce::ConsentSource`] and never knows libp2p.
//! Built so far: the consent check every call passes ([`enforce`]), the
//! [`connector::BankConnector`] trait with its conformance suite, and the sandbox bank.

pub mod ais;
pub mod api;
mod call;
pub mod connector;
pub mod dry_run;
pub mod enforce;
pub mod fapi;
pub mod jws;
pub mod limits;
pub mod links;
pub mod mapping;
pub mod nonce;
pub mod openapi;
pub mod operation;
pub mod payments;
pub mod problem;
pub mod sandbox;
pub mod schema;
pub mod signatures;
pub mod simulators;
pub mod unproven;

pub use enforce::{Authorized, ConsentSource, Gate, Operation, Presented, ReplayCache};
pub use problem::{ObCode, ObError};
