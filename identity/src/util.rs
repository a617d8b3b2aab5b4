//! Small helpers every crate shares, so each exists once: poison-tolerant locks, random bytes and hex ids, constant-time comparison, HTML escaping and percent-encoding.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `mutex`, taking it over even when a panic elsewhere poisoned it: every caller
/// keeps its state valid between single assignments, so what a panicking holder left is
/// still usable.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// [`lock`] for reading an `RwLock`.
pub fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// [`lock`] for writing an `RwLock`.
pub fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `bytes` random bytes from the operating system, as lowercase hex.
///
/// Hex, not base64url: handles, challenges and tokens are pasted into the CLI, where a
/// value starting with `-` would be taken for an option.
pub fn random_hex(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut raw);
    hex(&raw)
}

/// `N` random bytes from the operating system: ids, salts, nonces.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut raw = [0u8; N];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut raw);
    raw
}

/// Bytes as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// True when `a` and `b` are equal, in time that depends only on their lengths: for
/// secrets (tokens, verifiers) compared with what a caller sent.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes `value` for a URL path segment or query value: RFC 3986's unreserved
/// characters and those in `keep` stay as they are, every other byte is `%XX`.
pub fn percent_encode(value: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) || keep.contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// True for `urn:uuid:` and a UUID in its 8-4-4-4-12 hex form, nothing else: the id is
/// an IRI the JSON-LD processor reads, so nothing but those characters reaches it.
pub(crate) fn is_urn_uuid(text: &str) -> bool {
    let Some(uuid) = text.strip_prefix("urn:uuid:") else {
        return false;
    };
    let groups: Vec<&str> = uuid.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A fresh `urn:uuid:` (version 4), for a credential's id.
pub(crate) fn random_urn_uuid() -> String {
    let mut bytes: [u8; 16] = random_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_hex_is_fresh_lowercase_hex_of_the_asked_length() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| random_hex(16)).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|t| {
            t.len() == 32
                && t.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }));
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secrets"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn html_and_percent_escapes() {
        assert_eq!(
            escape_html("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(percent_encode("a b/c:d~", b""), "a%20b%2Fc%3Ad~");
        assert_eq!(percent_encode("2026-01-01T00:00", b":"), "2026-01-01T00:00");
        assert_eq!(percent_encode("é", b""), "%C3%A9");
    }
}
