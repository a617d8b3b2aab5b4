//! Form parameters of OAuth requests, each present at most once.

use std::collections::HashMap;

use super::error::OAuthError;

/// Form parameters, each present at most once (RFC 6749 section 3.1).
#[derive(Debug, Clone, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses an `application/x-www-form-urlencoded` body or query; a repeated parameter
    /// is an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, OAuthError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(bytes)
            .map_err(|e| OAuthError::invalid_request(format!("unreadable form: {e}")))?;
        let mut map = HashMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            if map.contains_key(&name) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {name} is repeated"
                )));
            }
            map.insert(name, value);
        }
        Ok(Self(map))
    }

    /// The parameter `name`, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The parameter `name`, or `invalid_request` naming it.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn repeated_form_parameters_are_refused() {
        let error = Params::parse(b"a=1&b=2&a=3").unwrap_err();
        assert_eq!(error.code.as_str(), "invalid_request");
        assert!(error.description.contains('a'), "{error}");
        assert_eq!(Params::parse(b"a=1&b=").unwrap().get("b"), None);
    }
}
