//! Token-bucket rate limits keyed by whoever is limited (an app's DID, a client's IP address): bounded in the keys they track, answering with how long to wait.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use consentnet_identity::util::lock;

/// Keys tracked at most; beyond this, buckets that have refilled are forgotten first.
pub const MAX_TRACKED: usize = 65_536;

pub use consentnet_consent_chain::event::RateLimit as Rate;

/// How long an empty bucket of `rate` takes to fill.
fn refill_time(rate: Rate) -> Duration {
    Duration::from_secs_f64(f64::from(rate.burst.max(1)) / f64::from(rate.per_second.max(1)))
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One token bucket per key.
#[derive(Debug)]
pub struct TokenBuckets<K> {
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K> Default for TokenBuckets<K> {
    fn default() -> Self {
        Self {
            buckets: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone> TokenBuckets<K> {
    /// Takes one token from `key`'s bucket at `now`, or says how long until one is there.
    pub fn take(&self, key: &K, rate: Rate, now: Instant) -> Result<(), Duration> {
        let mut buckets = lock(&self.buckets);
        if !buckets.contains_key(key) && buckets.len() >= max_tracked() {
            let refill = refill_time(rate);
            buckets.retain(|_, bucket| now.saturating_duration_since(bucket.at) < refill);
            // Still full of busy keys (a flood from many addresses): one is forgotten,
            // so memory stays bounded whatever arrives.
            if buckets.len() >= max_tracked()
                && let Some(evicted) = buckets.keys().next().cloned()
            {
                buckets.remove(&evicted);
            }
        }
        let full = f64::from(rate.burst.max(1));
        // The key is cloned only the first time it is seen: this runs on every call.
        if !buckets.contains_key(key) {
            buckets.insert(
                key.clone(),
                Bucket {
                    tokens: full,
                    at: now,
                },
            );
        }
        let Some(bucket) = buckets.get_mut(key) else {
            return Ok(());
        };
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * f64::from(rate.per_second.max(1))).min(full);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let missing = 1.0 - bucket.tokens;
        Err(Duration::from_secs_f64(
            missing / f64::from(rate.per_second.max(1)),
        ))
    }
}

#[cfg(not(test))]
const fn max_tracked() -> usize {
    MAX_TRACKED
}

/// Small in unit tests, so the bound can be reached.
#[cfg(test)]
const fn max_tracked() -> usize {
    8
}

/// Whole seconds to send in `Retry-After` for a wait of `wait` (at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_burst_is_served_then_refused_with_the_wait_until_the_next_token() {
        let buckets = TokenBuckets::default();
        let rate = Rate {
            per_second: 10,
            burst: 3,
        };
        let start = Instant::now();
        for _ in 0..3 {
            buckets.take(&"app", rate, start).unwrap();
        }
        let wait = buckets.take(&"app", rate, start).unwrap_err();
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100));
        assert_eq!(retry_after_secs(wait), 1);
        // Another key has its own bucket; time refills this one.
        buckets.take(&"other", rate, start).unwrap();
        buckets
            .take(&"app", rate, start + Duration::from_millis(100))
            .unwrap();
    }

    #[test]
    fn a_flood_of_new_keys_never_tracks_more_than_the_bound() {
        let buckets = TokenBuckets::default();
        let rate = Rate {
            per_second: 1,
            burst: 1,
        };
        let now = Instant::now();
        for key in 0..1_000u32 {
            buckets.take(&key, rate, now).unwrap();
        }
        assert!(lock(&buckets.buckets).len() <= max_tracked());
    }
}
