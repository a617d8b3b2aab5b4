//! 32-byte SHA-256 digests as one type, written as lowercase hex on the wire: entry hashes, event ids and consent ids alike.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// The all-zero digest: the `prev` of a feed's first entry.
    pub const ZERO: Hash32 = Hash32([0; 32]);

    /// SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Parses 64 lowercase hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        let digits: &[u8; 64] = text.as_bytes().try_into().ok()?;
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
        }
        Some(Self(bytes))
    }

    /// The 64 lowercase hex digits, without formatting machinery (entries carry several
    /// hashes, and every decode writes them again for its canonical check).
    pub fn hex(&self) -> [u8; 64] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (pair, byte) in out.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0x0f)];
        }
        out
    }
}

/// The value of one lowercase hex digit.
fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.hex();
        f.write_str(std::str::from_utf8(&hex).unwrap_or_else(|_| unreachable!("hex is ASCII")))
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…", &self.to_string()[..12])
    }
}

impl TryFrom<String> for Hash32 {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text).ok_or_else(|| format!("{text:?} is not 64 lowercase hex digits"))
    }
}

impl From<Hash32> for String {
    fn from(hash: Hash32) -> String {
        String::from_utf8_lossy(&hash.hex()).into_owned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hex_round_trips_and_parse_takes_only_64_lowercase_digits() {
        let hash = Hash32::of(b"consentnet");
        let formatted: String = hash.0.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hash.to_string(), formatted);
        assert_eq!(String::from(hash), formatted);
        assert_eq!(Hash32::parse(&formatted), Some(hash));
        assert_eq!(Hash32::parse(&formatted.to_uppercase()), None);
        assert_eq!(Hash32::parse(&formatted[1..]), None);
        assert_eq!(Hash32::parse(&format!("{formatted}0")), None);
        assert_eq!(Hash32::parse(&format!("g{}", &formatted[1..])), None);
        assert_eq!(Hash32::parse(&"é".repeat(32)), None);
    }
}
