//! The consent log for consentnet: entries, signed per-origin feeds, the replication engine, consent state, storage and audit.
//!
//! This crate does no network I/O. Only the `store` module knows RocksDB, and only with
//! the default-on `rocksdb` feature.

#![deny(missing_docs)]

pub mod audit;
pub mod engine;
pub mod entry;
pub mod event;
pub mod genesis;
pub mod merkle;
pub mod miniapp;
pub mod replica;
pub mod state;
pub mod store;
pub mod validate;

pub use consentnet_identity::Hash32;

/// How far members' clocks may drift apart, in ms: 5 minutes. A time a submission names
/// must be within it of the node's clock; an entry stamped further ahead of a receiver's
/// clock is refused; a consent valid from a moment within it is served.
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;
pub use engine::{Engine, Step};
pub use entry::{Entry, EntryError, Sealed};
pub use event::{Event, FeedHead};
pub use genesis::{Genesis, Member, Membership, Role};
pub use replica::{Appended, Opened, RangeRequest, Received, Rejected, Replica, Signatures};
pub use state::{ConsentRecord, ConsentStatus, Party, State};
#[cfg(feature = "rocksdb")]
pub use store::RocksStore;
pub use store::{Equivocation, LogStore, MemoryStore, StoreError};
