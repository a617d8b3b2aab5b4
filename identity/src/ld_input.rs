//! What a JSON document must be before the JSON-LD processor reads it: every percent-escape in every string (keys too) decodes to UTF-8, for the processor panics on one that does not (found by `scripts/fuzz`).

use serde_json::Value;

/// Refuses `document` when one of its strings holds percent-escapes that do not decode
/// to UTF-8, naming the string.
pub fn check(document: &Value) -> Result<(), String> {
    match document {
        Value::String(text) => check_text(text),
        Value::Array(items) => items.iter().try_for_each(check),
        Value::Object(map) => map.iter().try_for_each(|(key, value)| {
            check_text(key)?;
            check(value)
        }),
        _ => Ok(()),
    }
}

/// [`check`] for one string.
pub fn check_text(text: &str) -> Result<(), String> {
    if !text.contains('%') {
        return Ok(());
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let escape = bytes
            .get(at + 1..at + 3)
            .filter(|_| bytes[at] == b'%')
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escape {
            Some(byte) => {
                decoded.push(byte);
                at += 3;
            }
            None => {
                decoded.push(bytes[at]);
                at += 1;
            }
        }
    }
    if std::str::from_utf8(&decoded).is_err() {
        let shown: String = text.chars().take(80).collect();
        return Err(format!(
            "{shown:?} holds percent-escapes that do not decode to UTF-8"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_must_decode_to_utf8_and_plain_percent_signs_pass() {
        assert!(check(&json!({"a": "100% sure", "b": ["caf%C3%A9"]})).is_ok());
        assert!(check(&json!({"id": "https://x.example/cr%dentials"})).is_err());
        assert!(check(&json!(["did:key:z6Mk%86"])).is_err());
        assert!(check(&json!({"k%ff": 1})).is_err());
        assert!(check(&json!("%e2%82")).is_err(), "a cut sequence");
    }
}
