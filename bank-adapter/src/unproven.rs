//! Refused calls whose proof never verified with the consent's app key: counted and kept in a bounded local log on this bank's node, never recorded on the shared log, so a stranger cannot write into every member's log.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use consentnet_identity::util::lock;
use serde::Serialize;

use crate::problem::ObCode;

/// The most unproven refusals the local log keeps; older ones are dropped.
pub const UNPROVEN_LOG: usize = 1024;

/// One refused call whose caller proved nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnprovenRefusal {
    /// When it was refused.
    pub time: DateTime<Utc>,
    /// The operation called.
    pub operation: &'static str,
    /// Why (an OBIE error code of this API).
    pub code: &'static str,
}

/// The count and the newest [`UNPROVEN_LOG`] unproven refusals.
#[derive(Debug, Default)]
pub struct UnprovenRefusals {
    total: AtomicU64,
    recent: Mutex<VecDeque<UnprovenRefusal>>,
}

impl UnprovenRefusals {
    /// Notes a refusal of `operation` with `code` at `time`.
    pub fn note(&self, time: DateTime<Utc>, operation: &'static str, code: ObCode) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let mut recent = lock(&self.recent);
        if recent.len() == UNPROVEN_LOG {
            recent.pop_front();
        }
        recent.push_back(UnprovenRefusal {
            time,
            operation,
            code: code.as_str(),
        });
    }

    /// How many there have been since start.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// The newest ones, oldest first.
    pub fn recent(&self) -> Vec<UnprovenRefusal> {
        lock(&self.recent).iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_log_keeps_the_newest_and_the_count_keeps_all() {
        let refusals = UnprovenRefusals::default();
        let now = Utc::now();
        for _ in 0..UNPROVEN_LOG + 10 {
            refusals.note(now, "accounts", ObCode::ProofBadSignature);
        }
        assert_eq!(refusals.total(), (UNPROVEN_LOG + 10) as u64);
        assert_eq!(refusals.recent().len(), UNPROVEN_LOG);
        refusals.note(now, "balances", ObCode::MissingProof);
        assert_eq!(refusals.recent().last().unwrap().operation, "balances");
    }
}
