//! A small validator for the parts of OpenAPI 3.0 the official OBIE files use: `$ref`, types, required and additional properties, enums, lengths, patterns, item counts, `oneOf` and date-times.

use regex::Regex;
use serde_json::Value;

/// An OpenAPI document.
pub struct Spec {
    doc: Value,
}

impl Spec {
    /// Loads a spec shipped in `specs/`.
    pub fn load(relative: &str) -> Self {
        let path = std::path::PathBuf::from(
            std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
        )
        .join("specs")
        .join(relative);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        Self {
            doc: serde_json::from_str(&text).expect("the spec is JSON"),
        }
    }

    fn resolve<'a>(&'a self, mut value: &'a Value) -> &'a Value {
        while let Some(reference) = value.get("$ref").and_then(Value::as_str) {
            let pointer = reference.trim_start_matches('#');
            value = self
                .doc
                .pointer(pointer)
                .unwrap_or_else(|| panic!("unresolved {reference}"));
        }
        value
    }

    /// A named schema from `components.schemas`.
    pub fn schema(&self, name: &str) -> &Value {
        &self.doc["components"]["schemas"][name]
    }

    /// The JSON schema of `method path`'s response with `status` (e.g. `"200"`).
    pub fn response_schema(&self, path: &str, method: &str, status: &str) -> &Value {
        let operation = &self.doc["paths"][path][method];
        let responses = &operation["responses"];
        let response = self.resolve(&responses[status]);
        let content = &response["content"];
        let media = content
            .get("application/json; charset=utf-8")
            .or_else(|| content.get("application/json"))
            .unwrap_or_else(|| panic!("{method} {path} {status} has no JSON body"));
        &media["schema"]
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
            fail(format!("is {value}, not of type {}", kind.unwrap_or("?")));
            return;
        }
        for key in ["enum", "x-namespaced-enum"] {
            if let Some(allowed) = schema.get(key).and_then(Value::as_array)
                && !allowed.contains(value)
            {
                fail(format!("{value} is not one of {key} {allowed:?}"));
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
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                let regex = Regex::new(pattern).expect("the spec's patterns compile");
                if !regex.is_match(text) {
                    fail(format!("{text:?} does not match {pattern}"));
                }
            }
            if schema.get("format").and_then(Value::as_str) == Some("date-time")
                && chrono::DateTime::parse_from_rfc3339(text).is_err()
            {
                fail(format!("{text:?} is not an RFC 3339 date-time"));
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

#[test]
fn the_validator_catches_what_it_should() {
    let spec = Spec::load("uk-obie-v4.0/account-info-openapi.json");
    let schema = spec.response_schema("/accounts/{AccountId}/balances", "get", "200");
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
