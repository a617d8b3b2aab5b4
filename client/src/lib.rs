//! The consentnet client library: talks to nodes over HTTP only, for the `consentnet` command line and other Rust programs.

pub mod audit;
pub mod bundle;
pub mod commands;
pub mod demo;
pub mod node_api;
pub mod process;
pub mod proofs;
pub mod tsp;
pub mod vcapi;
