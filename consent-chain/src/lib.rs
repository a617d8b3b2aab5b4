//! The consent log for consentnet: entries, signed per-origin feeds, the sans-IO replication engine, consent state and audit.
//!
//! This crate does no network I/O. At this milestone it only reserves its place in the
//! workspace; its types arrive with the consent-chain milestone.
