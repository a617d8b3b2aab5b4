//! The official OBIE v4.0 files as the tests use them: the adapter's own validator (`schema`), with a missing schema a test failure.

use serde_json::Value;

/// An official OpenAPI file.
pub struct Spec(&'static consentnet_bank_adapter::schema::Spec);

impl Spec {
    /// The shipped file `relative` (under `specs/`).
    pub fn load(relative: &str) -> Self {
        match relative {
            "uk-obie-v4.0/account-info-openapi.json" => {
                Self(consentnet_bank_adapter::schema::ais())
            }
            "uk-obie-v4.0/payment-initiation-openapi.json" => {
                Self(consentnet_bank_adapter::schema::pis())
            }
            other => panic!("no shipped spec {other}"),
        }
    }

    /// The JSON schema of `method path`'s response with `status`.
    pub fn response_schema(&self, path: &str, method: &str, status: &str) -> &Value {
        self.0
            .response_schema(path, method, status)
            .unwrap_or_else(|| panic!("{method} {path} {status} has no JSON body"))
    }

    /// A named schema from `components.schemas`.
    pub fn schema(&self, name: &str) -> &Value {
        self.0.schema(name)
    }

    /// Every way `value` breaks `schema`.
    pub fn check(&self, schema: &Value, value: &Value) -> Vec<String> {
        self.0.check(schema, value)
    }
}
