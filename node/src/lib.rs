//! The consentnet consortium node: the replicated consent log over libp2p, and its HTTP API.
//!
//! Only this crate knows libp2p. Nothing in the workspace depends on it.

pub mod bank;
pub mod config;
pub mod console;
pub mod http;
pub mod keystore;
pub mod metrics;
pub mod network;
pub mod oauth;
pub mod pages;
pub mod portal;
pub mod service;
