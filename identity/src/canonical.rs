//! Canonical JSON bytes (RFC 8785 style: sorted keys, no whitespace) used for consent ids and signed statements.

use serde_json::Value;

/// Why a JSON value has no canonical form here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    /// Only integers are allowed: amounts travel as decimal strings, so a float means
    /// the input was not made by a consentnet implementation.
    #[error("non-integer number {0} has no canonical form; amounts are decimal strings")]
    NonIntegerNumber(String),
}

/// Writes `value` as canonical JSON: object keys sorted by their UTF-16 code units
/// (RFC 8785), no insignificant whitespace, strings escaped as `serde_json` does (the
/// same escapes RFC 8785 prescribes), integers only.
pub fn canonical_json(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(512);
    write_value(value, &mut out)?;
    Ok(out)
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => {
            if number.is_f64() {
                return Err(CanonicalError::NonIntegerNumber(number.to_string()));
            }
            match number.as_u64() {
                Some(n) => write_integer(n, out),
                // Negative or beyond u64: written as parsed (`-0` stays `-0`).
                None => out.extend_from_slice(number.to_string().as_bytes()),
            }
        }
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            // The map iterates in UTF-8 (code point) order, which is UTF-16 order unless
            // a key holds a character from U+E000 up: only then sort again.
            if map.keys().all(|key| key.is_ascii()) {
                write_members(map.iter(), out)?;
            } else {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
                write_members(entries.into_iter(), out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_members<'a>(
    members: impl Iterator<Item = (&'a String, &'a Value)>,
    out: &mut Vec<u8>,
) -> Result<(), CanonicalError> {
    for (index, (key, item)) in members.enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        write_value(item, out)?;
    }
    Ok(())
}

fn write_integer(mut magnitude: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn write_string(text: &str, out: &mut Vec<u8>) {
    // serde_json's string escaping is RFC 8785's: short escapes for \b \f \n \r \t " \\,
    // lowercase \u00xx for other control characters, everything else as UTF-8.
    let plain = text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if plain {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, text)
            .unwrap_or_else(|_| unreachable!("strings serialize"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_and_drops_whitespace() {
        let value = json!({"b": [1, {"z": true, "a": null}], "a": "x\ny", "é": 1, "Z": -2});
        let bytes = canonical_json(&value).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"Z":-2,"a":"x\ny","b":[1,{"a":null,"z":true}],"é":1}"#
        );
    }

    #[test]
    fn same_value_in_any_key_order_gives_the_same_bytes() {
        let one: Value = serde_json::from_str(r#"{"a":1,"b":{"c":2,"d":3}}"#).unwrap();
        let two: Value = serde_json::from_str(r#"{ "b" : { "d":3, "c":2 }, "a":1 }"#).unwrap();
        assert_eq!(canonical_json(&one).unwrap(), canonical_json(&two).unwrap());
    }

    #[test]
    fn integers_and_escapes_match_serde_json() {
        for n in [0i64, 7, -1, 10, 1_795_000_000_000, i64::MIN, i64::MAX] {
            let bytes = canonical_json(&json!(n)).unwrap();
            assert_eq!(String::from_utf8(bytes).unwrap(), n.to_string());
        }
        let bytes = canonical_json(&json!(u64::MAX)).unwrap();
        assert_eq!(String::from_utf8(bytes).unwrap(), u64::MAX.to_string());
        for text in [
            "plain",
            "quote \" and \\ slash",
            "tab\tnew\nline\u{1}",
            "é ü 😀",
            "",
        ] {
            let bytes = canonical_json(&json!(text)).unwrap();
            assert_eq!(
                String::from_utf8(bytes).unwrap(),
                serde_json::to_string(text).unwrap()
            );
        }
    }

    #[test]
    fn rejects_floats() {
        assert_eq!(
            canonical_json(&json!({"amount": 1.5})).unwrap_err(),
            CanonicalError::NonIntegerNumber("1.5".into())
        );
    }

    #[test]
    fn sorts_by_utf16_code_units() {
        // U+1F600 (surrogates D83D DE00) sorts before U+FFFD in UTF-16, after it in UTF-8.
        let value = json!({"\u{fffd}": 1, "\u{1f600}": 2});
        let text = String::from_utf8(canonical_json(&value).unwrap()).unwrap();
        assert_eq!(text, "{\"\u{1f600}\":2,\"\u{fffd}\":1}");
    }
}
