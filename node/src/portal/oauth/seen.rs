//! The replay tables of client-assertion and DPoP proof ids: each id refused until it expires, bounded.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::error::{OAuthCode, OAuthError};
use super::{LEEWAY_SECS, MAX_SEEN_IDS};

/// Ids seen once (assertion and proof `jti`s), each until it expires; bounded.
#[derive(Debug, Default)]
pub(super) struct SeenIds {
    by_id: HashMap<String, i64>,
    /// The same ids, soonest expiry first.
    expiries: BinaryHeap<Reverse<(i64, String)>>,
}

impl SeenIds {
    /// Records `id`, good until `expires` (seconds); refused when seen before or full.
    pub(super) fn first_use(&mut self, id: &str, expires: i64, now: i64) -> Result<(), OAuthError> {
        while let Some(Reverse((at, _))) = self.expiries.peek() {
            if *at >= now - LEEWAY_SECS {
                break;
            }
            if let Some(Reverse((_, old))) = self.expiries.pop() {
                self.by_id.remove(&old);
            }
        }
        if self.by_id.contains_key(id) {
            return Err(OAuthError::invalid_client(format!(
                "jti {id:?} was already used"
            )));
        }
        if self.by_id.len() >= MAX_SEEN_IDS {
            return Err(OAuthError::new(
                OAuthCode::TemporarilyUnavailable,
                "too many requests in flight; retry shortly",
            ));
        }
        self.by_id.insert(id.to_owned(), expires);
        self.expiries.push(Reverse((expires, id.to_owned())));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seen_ids_are_refused_until_they_expire() {
        let mut seen = SeenIds::default();
        seen.first_use("x", 100, 50).unwrap();
        assert!(seen.first_use("x", 100, 60).is_err());
        // Long after it expired, it is forgotten (a fresh assertion could not reuse it
        // anyway: its exp would be checked first).
        seen.first_use("x", 300, 100 + LEEWAY_SECS + 1).unwrap();
    }

    #[test]
    fn a_full_table_of_seen_ids_answers_temporarily_unavailable_until_some_expire() {
        let mut seen = SeenIds::default();
        for i in 0..MAX_SEEN_IDS {
            seen.first_use(&i.to_string(), 100, 50).unwrap();
        }
        let full = seen.first_use("one more", 100, 50).unwrap_err();
        assert_eq!(
            (full.status(), full.code.as_str()),
            (503, "temporarily_unavailable")
        );
        // Once the ids have expired (past the leeway), there is room again.
        seen.first_use("one more", 400, 100 + LEEWAY_SECS + 1)
            .unwrap();
    }
}
