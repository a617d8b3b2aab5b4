//! How long the payments ledger remembers a payment: long enough for every limit period, then forgotten in memory and compacted out of the journal.
//!
//! A payment counts against its consent's limits only inside its period, a year at
//! most, and an idempotency key is only ever repeated within hours. So a payment
//! counted more than [`RETENTION_DAYS`] ago is dropped: from memory as the ledger runs,
//! and from the journal when the ledger opens (the journal is rewritten with what is
//! kept, atomically: a temporary file, synced, renamed over it).

use std::collections::HashSet;
use std::io::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::ledger::{JournalLine, LedgerState};

/// Days a counted payment is remembered: a yearly limit period and a month more.
pub const RETENTION_DAYS: i64 = 400;

/// How often, at most, a running ledger drops what it no longer needs.
const PRUNE_EVERY_SECS: i64 = 3_600;

/// The oldest time a payment counted at is still kept, `now` given.
pub(super) fn cutoff(now: DateTime<Utc>) -> DateTime<Utc> {
    now.checked_sub_signed(chrono::Duration::days(RETENTION_DAYS))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl LedgerState {
    /// Drops, at most once an hour, what was counted before the cutoff of `now`.
    pub(super) fn prune_if_due(&mut self, now: DateTime<Utc>) {
        let due = self
            .pruned_at
            .is_none_or(|at| (now - at).num_seconds() >= PRUNE_EVERY_SECS);
        if due {
            self.prune(cutoff(now));
            self.pruned_at = Some(now);
        }
    }

    /// Drops every payment counted before `cutoff`: its count, and once none of its
    /// instalments is kept, its idempotency key and the payment made for it. Answers
    /// whether anything was dropped.
    pub(super) fn prune(&mut self, cutoff: DateTime<Utc>) -> bool {
        let mut dropped: HashSet<String> = HashSet::new();
        let mut kept: HashSet<String> = HashSet::new();
        self.paid.retain(|_, paid| {
            paid.retain(|(at, _, key)| {
                let keep = *at >= cutoff;
                if keep {
                    kept.insert(key.clone());
                } else {
                    dropped.insert(key.clone());
                }
                keep
            });
            !paid.is_empty()
        });
        if dropped.is_empty() {
            return false;
        }
        // A standing order's key stays while any of its instalments does.
        dropped.retain(|key| !kept.contains(key));
        self.counted.retain(|key, _| !dropped.contains(key));
        let mut payments: HashSet<String> = HashSet::new();
        self.made.retain(|key, payment| {
            let keep = !dropped.contains(key);
            if !keep {
                payments.insert(payment.clone());
            }
            keep
        });
        self.owner.retain(|payment, _| !payments.contains(payment));
        true
    }

    /// The journal lines that rebuild this state: every count kept, then every payment.
    fn lines(&self) -> Vec<JournalLine> {
        let mut lines = Vec::new();
        for (consent, paid) in &self.paid {
            for (at, minor, key) in paid {
                lines.push(JournalLine::Count {
                    key: key.clone(),
                    consent: *consent,
                    at: *at,
                    minor: *minor,
                    order: self.counted.get(key).cloned().flatten(),
                    later: Vec::new(),
                });
            }
        }
        let key_of: std::collections::HashMap<&String, &String> = self
            .made
            .iter()
            .map(|(key, payment)| (payment, key))
            .collect();
        for (payment, (consent, initiation)) in &self.owner {
            lines.push(JournalLine::Paid {
                payment_id: payment.clone(),
                consent: *consent,
                initiation: initiation.clone(),
                key: key_of.get(payment).map(|key| (*key).clone()),
            });
        }
        lines
    }
}

/// Rewrites the journal at `path` to hold exactly `state`: written to a temporary file
/// beside it, synced, then renamed over it, so a crash leaves the old or the new one.
pub(super) fn compact(path: &Path, state: &LedgerState) -> std::io::Result<()> {
    let temporary = path.with_extension("compacting");
    {
        let mut file = std::fs::File::create(&temporary)?;
        for line in state.lines() {
            let mut text = serde_json::to_string(&line).map_err(std::io::Error::other)?;
            text.push('\n');
            file.write_all(text.as_bytes())?;
        }
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::payments::Ledger;
    use consentnet_identity::ConsentId;

    fn count(key: &str, consent: ConsentId, at: DateTime<Utc>) -> JournalLine {
        JournalLine::Count {
            key: key.into(),
            consent,
            at,
            minor: 100,
            order: Some(format!("order-{key}")),
            later: Vec::new(),
        }
    }

    fn paid(key: &str, consent: ConsentId) -> JournalLine {
        JournalLine::Paid {
            payment_id: format!("payment-{key}"),
            consent,
            initiation: serde_json::json!({ "key": key }),
            key: Some(key.into()),
        }
    }

    fn write(path: &Path, lines: &[JournalLine]) {
        let text: String = lines
            .iter()
            .map(|line| serde_json::to_string(line).unwrap() + "\n")
            .collect();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn opening_drops_payments_older_than_the_retention_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("payments.jsonl");
        let consent = consentnet_identity::Hash32([7; 32]);
        let now = Utc::now();
        let old = now - chrono::Duration::days(RETENTION_DAYS + 1);
        let recent = now - chrono::Duration::days(RETENTION_DAYS - 1);
        write(
            &journal,
            &[
                count("old", consent, old),
                paid("old", consent),
                count("recent", consent, recent),
                paid("recent", consent),
            ],
        );
        let ledger = Ledger::open(&journal).unwrap();
        let state = consentnet_identity::util::lock(&ledger.inner);
        assert_eq!(state.paid[&consent].len(), 1);
        assert_eq!(state.paid[&consent][0].2, "recent");
        assert!(!state.counted.contains_key("old") && state.counted.contains_key("recent"));
        assert!(!state.made.contains_key("old"));
        assert!(!state.owner.contains_key("payment-old"));
        assert!(state.owner.contains_key("payment-recent"));
        drop(state);
        drop(ledger);

        // The journal now holds the recent payment alone, and opens to the same state.
        let text = std::fs::read_to_string(&journal).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(!text.contains("\"old\""), "{text}");
        let reopened = Ledger::open(&journal).unwrap();
        let state = consentnet_identity::util::lock(&reopened.inner);
        assert_eq!(
            state.counted.get("recent"),
            Some(&Some("order-recent".into()))
        );
        assert_eq!(
            state.made.get("recent").map(String::as_str),
            Some("payment-recent")
        );
    }

    #[test]
    fn a_journal_with_nothing_to_drop_is_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("payments.jsonl");
        let consent = consentnet_identity::Hash32([8; 32]);
        write(
            &journal,
            &[count("a", consent, Utc::now()), paid("a", consent)],
        );
        let before = std::fs::read_to_string(&journal).unwrap();
        drop(Ledger::open(&journal).unwrap());
        assert_eq!(std::fs::read_to_string(&journal).unwrap(), before);
        assert!(!dir.path().join("payments.compacting").exists());
    }

    #[test]
    fn a_standing_order_is_kept_while_any_of_its_payments_is() {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("payments.jsonl");
        let consent = consentnet_identity::Hash32([9; 32]);
        let now = Utc::now();
        let old = now - chrono::Duration::days(RETENTION_DAYS + 30);
        let line = JournalLine::Count {
            key: "standing".into(),
            consent,
            at: old,
            minor: 100,
            order: Some("order-standing".into()),
            later: vec![(now + chrono::Duration::days(30), 100)],
        };
        write(&journal, &[line, paid("standing", consent)]);
        let ledger = Ledger::open(&journal).unwrap();
        let state = consentnet_identity::util::lock(&ledger.inner);
        assert_eq!(state.paid[&consent].len(), 1, "the old payment is dropped");
        assert!(state.counted.contains_key("standing"));
        assert!(state.owner.contains_key("payment-standing"));
        drop(state);
        drop(ledger);
        // Rewritten, the journal opens to the same: the key, its payment and its future count.
        let reopened = Ledger::open(&journal).unwrap();
        let state = consentnet_identity::util::lock(&reopened.inner);
        assert_eq!(state.paid[&consent].len(), 1);
        assert_eq!(
            state.made.get("standing").map(String::as_str),
            Some("payment-standing")
        );
    }
}
