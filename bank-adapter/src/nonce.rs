//! DPoP nonces (RFC 9449 sections 8 and 9): issued without state as a MAC of the time window under a key of this process, accepted in the window they were issued in and the one after, never stored; whether a proof must carry one is the operator's choice.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use consentnet_identity::b64url;

/// How long one nonce window lasts, in seconds: a nonce is good for one to two windows.
pub const NONCE_WINDOW_SECS: i64 = 300;

/// The response header that carries a fresh nonce.
pub const DPOP_NONCE: &str = "dpop-nonce";

/// Issues and checks DPoP nonces.
pub struct DpopNonces {
    key: [u8; 32],
    required: bool,
}

impl std::fmt::Debug for DpopNonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: never printed.
        f.debug_struct("DpopNonces")
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

impl Default for DpopNonces {
    /// Nonces offered, not required.
    fn default() -> Self {
        Self::new(false)
    }
}

/// Why a proof's nonce is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    /// The proof has none and one is required.
    #[error("this server requires a DPoP nonce: retry with the one in the DPoP-Nonce header")]
    Missing,
    /// The proof's nonce was not issued here, or is too old.
    #[error("the DPoP nonce is unknown or stale: retry with the one in the DPoP-Nonce header")]
    Stale,
}

impl DpopNonces {
    /// Nonces under a fresh random key; `required` makes every proof carry one.
    pub fn new(required: bool) -> Self {
        Self {
            key: consentnet_identity::util::random_bytes(),
            required,
        }
    }

    /// True when every proof must carry a nonce.
    pub fn required(&self) -> bool {
        self.required
    }

    fn tag(&self, window: i64) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(&window.to_be_bytes());
        b64url(&mac.finalize().into_bytes()[..16])
    }

    /// A nonce for now.
    pub fn issue(&self, now: DateTime<Utc>) -> String {
        let window = now.timestamp().div_euclid(NONCE_WINDOW_SECS);
        format!("{window}.{}", self.tag(window))
    }

    /// Checks a proof's `nonce` claim: one issued here in this window or the one before
    /// passes; none passes unless nonces are required.
    pub fn check(&self, nonce: Option<&str>, now: DateTime<Utc>) -> Result<(), NonceError> {
        let Some(nonce) = nonce else {
            return if self.required {
                Err(NonceError::Missing)
            } else {
                Ok(())
            };
        };
        let current = now.timestamp().div_euclid(NONCE_WINDOW_SECS);
        let valid = nonce
            .split_once('.')
            .and_then(|(window, tag)| Some((window.parse::<i64>().ok()?, tag)))
            .is_some_and(|(window, tag)| {
                (window == current || Some(window) == current.checked_sub(1))
                    && consentnet_identity::util::constant_time_eq(
                        self.tag(window).as_bytes(),
                        tag.as_bytes(),
                    )
            });
        if valid {
            Ok(())
        } else {
            Err(NonceError::Stale)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_good_in_its_window_and_the_next_and_nowhere_else() {
        let nonces = DpopNonces::new(true);
        let now = Utc::now();
        let nonce = nonces.issue(now);
        assert_eq!(nonces.check(Some(&nonce), now), Ok(()));
        let later = now + chrono::Duration::seconds(NONCE_WINDOW_SECS);
        assert_eq!(nonces.check(Some(&nonce), later), Ok(()));
        let too_late = now + chrono::Duration::seconds(2 * NONCE_WINDOW_SECS);
        assert_eq!(nonces.check(Some(&nonce), too_late), Err(NonceError::Stale));
        assert_eq!(nonces.check(None, now), Err(NonceError::Missing));
        // Another server's nonce, or a forged one, is not this server's.
        let other = DpopNonces::new(true).issue(now);
        assert_eq!(nonces.check(Some(&other), now), Err(NonceError::Stale));
        for forged in [
            "",
            "x",
            "1.2",
            &format!("{}.", now.timestamp() / NONCE_WINDOW_SECS),
        ] {
            assert_eq!(
                nonces.check(Some(forged), now),
                Err(NonceError::Stale),
                "{forged}"
            );
        }
        assert_eq!(DpopNonces::new(false).check(None, now), Ok(()));
    }
}
