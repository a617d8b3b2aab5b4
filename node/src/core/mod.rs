//! The node's core: the service that owns the replica and the node key, the submitter that writes this node's feed, its checkpoints, what it does with what peers send, and its counters. It knows no HTTP; it reaches the network only through the handle the p2p layer gives it.

mod batches;
pub mod bundles;
mod checkpoint;
mod gossip;
pub mod metrics;
mod service;
mod submit;

pub use batches::{Fetched, HeldRecords};
pub use checkpoint::{others_frontier, start_checkpoints};
pub use metrics::Metrics;
pub use service::{AuditError, NodeService};
pub use submit::{SubmitError, Submitted, Submitter};
