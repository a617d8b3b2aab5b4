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
            out.extend_from_slice(number.to_string().as_bytes());
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
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push(b'{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_value(item, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(text: &str, out: &mut Vec<u8>) {
    // serde_json's string escaping is RFC 8785's: short escapes for \b \f \n \r \t " \\,
    // lowercase \u00xx for other control characters, everything else as UTF-8.
    let escaped = serde_json::to_string(text).unwrap_or_else(|_| unreachable!("strings serialize"));
    out.extend_from_slice(escaped.as_bytes());
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
