//! The payments ledger: what this bank has counted and made under each consent, journaled line by line and synced before it takes effect.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use consentnet_identity::ConsentId;
use serde::Deserialize;
use serde_json::Value;

use super::retention;

/// What this bank has paid under each consent: the authority for what is left. With a
/// journal file, every change is written and synced before it takes effect, so a
/// restart forgets nothing it still needs; payments counted more than
/// [`RETENTION_DAYS`] ago are dropped (`payments/retention`).
#[derive(Debug, Default)]
pub struct Ledger {
    pub(super) inner: Mutex<LedgerState>,
}

#[derive(Debug, Default)]
pub(super) struct LedgerState {
    pub(super) paid: HashMap<ConsentId, Vec<(DateTime<Utc>, i64, String)>>,
    /// Scoped idempotency key -> the hash of the order it was counted for (absent in
    /// journals written before orders were hashed).
    pub(super) counted: HashMap<String, Option<String>>,
    /// Scoped idempotency key -> the payment the bank made for it.
    pub(super) made: HashMap<String, String>,
    /// Payment id -> the consent it was made under, and its initiation as sent.
    pub(super) owner: HashMap<String, (ConsentId, Value)>,
    pub(super) journal: Option<std::fs::File>,
    /// When payments past their retention were last dropped.
    pub(super) pruned_at: Option<DateTime<Utc>>,
}

/// One line of the journal.
#[derive(Debug, serde::Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub(super) enum JournalLine {
    /// A payment counted against its consent, before the bank is asked to make it.
    Count {
        key: String,
        consent: ConsentId,
        at: DateTime<Utc>,
        minor: i64,
        /// The hash of the order, so a repeat with another body is told apart.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        order: Option<String>,
        /// The later instalments of the same order (a standing order's), each counted in
        /// the period it falls due.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        later: Vec<(DateTime<Utc>, i64)>,
    },
    /// The bank refused it: it no longer counts.
    Cancel { key: String, consent: ConsentId },
    /// The bank made it.
    Paid {
        payment_id: String,
        consent: ConsentId,
        initiation: Value,
        /// The scoped idempotency key it was made for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
}

impl LedgerState {
    fn apply(&mut self, line: JournalLine) {
        match line {
            JournalLine::Count {
                key,
                consent,
                at,
                minor,
                order,
                later,
            } => {
                let paid = self.paid.entry(consent).or_default();
                paid.push((at, minor, key.clone()));
                paid.extend(
                    later
                        .into_iter()
                        .map(|(at, minor)| (at, minor, key.clone())),
                );
                self.counted.insert(key, order);
            }
            JournalLine::Cancel { key, consent } => {
                if let Some(paid) = self.paid.get_mut(&consent) {
                    paid.retain(|(_, _, k)| *k != key);
                }
                self.counted.remove(&key);
            }
            JournalLine::Paid {
                payment_id,
                consent,
                initiation,
                key,
            } => {
                if let Some(key) = key {
                    self.made.insert(key, payment_id.clone());
                }
                self.owner.insert(payment_id, (consent, initiation));
            }
        }
    }

    /// Writes `line` durably (when journaled), then applies it.
    pub(super) fn record(&mut self, line: JournalLine) -> std::io::Result<()> {
        if let Some(file) = &mut self.journal {
            use std::io::Write as _;
            let mut text = serde_json::to_string(&line).map_err(std::io::Error::other)?;
            text.push('\n');
            file.write_all(text.as_bytes())?;
            file.sync_data()?;
        }
        self.apply(line);
        self.prune_if_due(Utc::now());
        Ok(())
    }
}

impl Ledger {
    /// A ledger kept in the journal file at `path` (created if missing), replaying what
    /// it already holds. A torn last line (a crash mid-write) is ignored; any other bad
    /// line is an error, so nothing is silently forgotten.
    pub fn open(path: &std::path::Path) -> std::io::Result<Self> {
        let mut state = LedgerState::default();
        let mut complete = None;
        if let Ok(text) = std::fs::read_to_string(path) {
            let lines: Vec<&str> = text.lines().collect();
            for (number, line) in lines.iter().enumerate() {
                match serde_json::from_str::<JournalLine>(line) {
                    Ok(line) => state.apply(line),
                    Err(_) if number + 1 == lines.len() && !text.ends_with('\n') => {
                        // Cut the torn line, so the next write starts a clean line.
                        complete = Some(text.rfind('\n').map_or(0, |end| end + 1) as u64);
                    }
                    Err(error) => {
                        return Err(std::io::Error::other(format!(
                            "{} line {}: {error}",
                            path.display(),
                            number + 1
                        )));
                    }
                }
            }
        }
        // Payments past their retention are dropped, and the journal rewritten without
        // them (which also drops a torn last line).
        let now = Utc::now();
        if state.prune(retention::cutoff(now)) {
            retention::compact(path, &state)?;
            complete = None;
        }
        state.pruned_at = Some(now);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        if let Some(length) = complete {
            file.set_len(length)?;
            file.sync_data()?;
        }
        state.journal = Some(file);
        Ok(Self {
            inner: Mutex::new(state),
        })
    }
}

/// The hash of an order, as the ledger remembers it with its idempotency key.
pub(super) fn hash_of<T: serde::Serialize>(order: &T) -> String {
    let bytes = serde_json::to_vec(order).unwrap_or_else(|_| unreachable!("plain fields"));
    consentnet_identity::Hash32::of(&bytes).to_string()
}
