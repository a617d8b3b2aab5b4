//! The official UK Open Banking v4.0 OpenAPI files, compiled in, and a validator for the parts of OpenAPI 3.0 they use (`$ref`, types, required and additional properties, enums, lengths, patterns, item counts, `oneOf`, date-times): request bodies are checked against them before anything else, and the tests check every answer.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use regex::Regex;
use serde_json::Value;

const AIS: &str = include_str!("../specs/uk-obie-v4.0/account-info-openapi.json");
const PIS: &str = include_str!("../specs/uk-obie-v4.0/payment-initiation-openapi.json");

/// An OpenAPI document.
pub struct Spec {
    doc: Value,
    /// Compiled patterns, by source (the files hold a fixed, small set).
    patterns: Mutex<HashMap<String, Option<Regex>>>,
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spec").finish_non_exhaustive()
    }
}

/// The account information file.
pub fn ais() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| Spec::parse(AIS))
}

/// The payment initiation file.
pub fn pis() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| Spec::parse(PIS))
}

/// The first way `body` breaks the request schema of `method path` in `spec`, if any.
pub fn request_problem(spec: &Spec, path: &str, method: &str, body: &Value) -> Option<String> {
    let schema = spec.request_schema(path, method)?;
    spec.check(schema, body).into_iter().next()
}

impl Spec {
    fn parse(text: &str) -> Self {
        Self {
            doc: serde_json::from_str(text)
                .unwrap_or_else(|_| unreachable!("the shipped OpenAPI files are JSON")),
            patterns: Mutex::default(),
        }
    }

    fn resolve<'a>(&'a self, mut value: &'a Value) -> &'a Value {
        // At most a few hops in the official files; a broken reference resolves to
        // nothing, which every value matches.
        for _ in 0..16 {
            let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
                return value;
            };
            value = self
                .doc
                .pointer(reference.trim_start_matches('#'))
                .unwrap_or(&Value::Null);
        }
        value
    }

    /// True when `text` matches the spec's `pattern` (compiled once; a pattern that does
    /// not compile matches everything).
    fn matches(&self, pattern: &str, text: &str) -> bool {
        let mut patterns = consentnet_identity::util::lock(&self.patterns);
        if !patterns.contains_key(pattern) {
            patterns.insert(pattern.to_owned(), Regex::new(pattern).ok());
        }
        patterns
            .get(pattern)
            .and_then(Option::as_ref)
            .is_none_or(|regex| regex.is_match(text))
    }

    /// A named schema from `components.schemas`.
    pub fn schema(&self, name: &str) -> &Value {
        &self.doc["components"]["schemas"][name]
    }

    /// The JSON schema of `method path`'s response with `status` (e.g. `"200"`).
    pub fn response_schema(&self, path: &str, method: &str, status: &str) -> Option<&Value> {
        let operation = &self.doc["paths"][path][method];
        let response = self.resolve(&operation["responses"][status]);
        Self::json_schema(&response["content"])
    }

    /// The JSON schema of `method path`'s request body.
    pub fn request_schema(&self, path: &str, method: &str) -> Option<&Value> {
        let operation = &self.doc["paths"][path][method];
        let body = self.resolve(&operation["requestBody"]);
        Self::json_schema(&body["content"])
    }

    fn json_schema(content: &Value) -> Option<&Value> {
        let media = content
            .get("application/json; charset=utf-8")
            .or_else(|| content.get("application/json"))?;
        media.get("schema")
    }

    /// Every way `value` breaks `schema`, as `path: problem` lines.
    pub fn check(&self, schema: &Value, value: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        self.walk(schema, value, "$", &mut problems);
        problems
    }

    fn walk(&self, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
        let schema = self.resolve(schema);
        let mut fail = |problem: String| problems.push(format!("{at}: {problem}"));
        if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
            let matching = options
                .iter()
                .filter(|option| self.check(option, value).is_empty())
                .count();
            if matching != 1 {
                fail(format!("matches {matching} of the oneOf options, not 1"));
            }
            return;
        }
        let kind = schema.get("type").and_then(Value::as_str);
        let type_ok = match kind {
            Some("object") => value.is_object(),
            Some("array") => value.is_array(),
            Some("string") => value.is_string(),
            Some("integer") => value.is_i64() || value.is_u64(),
            Some("number") => value.is_number(),
            Some("boolean") => value.is_boolean(),
            _ => true,
        };
        if !type_ok {
            fail(format!("is not of type {}", kind.unwrap_or("?")));
            return;
        }
        for key in ["enum", "x-namespaced-enum"] {
            if let Some(allowed) = schema.get(key).and_then(Value::as_array)
                && !allowed.contains(value)
            {
                fail(format!(
                    "is not one of the {} values allowed",
                    allowed.len()
                ));
            }
        }
        if let Some(text) = value.as_str() {
            let chars = text.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && chars < min
            {
                fail(format!("shorter than {min}"));
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && chars > max
            {
                fail(format!("longer than {max}"));
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
                && !self.matches(pattern, text)
            {
                fail(format!("does not match {pattern}"));
            }
            if schema.get("format").and_then(Value::as_str) == Some("date-time")
                && chrono::DateTime::parse_from_rfc3339(text).is_err()
            {
                fail("is not an RFC 3339 date-time".to_owned());
            }
        }
        if let Some(items) = value.as_array() {
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                fail(format!("fewer than {min} items"));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && (items.len() as u64) > max
            {
                fail(format!("more than {max} items"));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    self.walk(item_schema, item, &format!("{at}[{i}]"), problems);
                }
            }
        }
        if let Some(object) = value.as_object() {
            let properties = schema.get("properties").and_then(Value::as_object);
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !object.contains_key(required) {
                    problems.push(format!("{at}: missing required {required}"));
                }
            }
            if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
                && (object.len() as u64) < min
            {
                problems.push(format!("{at}: fewer than {min} properties"));
            }
            for (key, item) in object {
                match properties.and_then(|p| p.get(key)) {
                    Some(property) => self.walk(property, item, &format!("{at}.{key}"), problems),
                    None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        problems.push(format!("{at}: property {key} is not allowed"));
                    }
                    None => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_validator_catches_what_it_should() {
        let spec = ais();
        let schema = spec
            .response_schema("/accounts/{AccountId}/balances", "get", "200")
            .unwrap();
        let good = serde_json::json!({"Data": {"Balance": [{
        "AccountId": "a", "CreditDebitIndicator": "Credit", "Type": "ITAV",
        "DateTime": "2026-01-01T00:00:00+00:00", "Amount": {"Amount": "1.00", "Currency": "GBP"}}]},
        "Links": {"Self": "http://x"}, "Meta": {}});
        assert_eq!(spec.check(schema, &good), Vec::<String>::new());
        let mut bad = good.clone();
        bad["Data"]["Balance"][0]["Type"] = "Available".into();
        bad["Data"]["Balance"][0]["Amount"]["Amount"] = "1.000001".into();
        bad["Data"]["Balance"][0]["DateTime"] = "yesterday".into();
        bad["Extra"] = 1.into();
        bad["Links"].as_object_mut().unwrap().remove("Self");
        assert_eq!(
            spec.check(schema, &bad).len(),
            5,
            "{:?}",
            spec.check(schema, &bad)
        );
    }

    #[test]
    fn a_request_breaking_the_official_schema_is_named() {
        let good =
            serde_json::json!({ "Data": { "Permissions": ["ReadAccountsBasic"] }, "Risk": {} });
        assert_eq!(
            request_problem(ais(), "/account-access-consents", "post", &good),
            None
        );
        let bad = serde_json::json!({ "Data": { "Permissions": ["ReadEverything"] }, "Risk": {} });
        let problem = request_problem(ais(), "/account-access-consents", "post", &bad).unwrap();
        assert!(problem.starts_with("$.Data.Permissions[0]"), "{problem}");
    }
}
