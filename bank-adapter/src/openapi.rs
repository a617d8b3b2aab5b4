//! The adapter's own OpenAPI document, generated from its operation table: paths, parameters, the consent-and-proof security, and the official OBIE schemas each answer follows.

use serde_json::{Value, json};

use crate::enforce::Operation;

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/open-banking/v4.0/openapi.json";

const OBIE_AIS: &str = "https://raw.githubusercontent.com/OpenBankingUK/read-write-api-specs/v4.0.0/dist/openapi/account-info-openapi.json";
const OBIE_PIS: &str = "https://raw.githubusercontent.com/OpenBankingUK/read-write-api-specs/v4.0.0/dist/openapi/payment-initiation-openapi.json";

/// The official schema an operation answers with, and the one its body follows.
fn schemas(operation: Operation) -> (String, Option<String>) {
    let ais = |name: &str| format!("{OBIE_AIS}#/components/schemas/{name}");
    let pis = |name: &str| format!("{OBIE_PIS}#/components/schemas/{name}");
    match operation {
        Operation::Accounts | Operation::Account => (ais("OBReadAccount6"), None),
        Operation::Balances | Operation::BulkBalances => (ais("OBReadBalance1"), None),
        Operation::Transactions
        | Operation::BulkTransactions
        | Operation::StatementTransactions => (ais("OBReadTransaction6"), None),
        Operation::Beneficiaries | Operation::BulkBeneficiaries => {
            (ais("OBReadBeneficiary5"), None)
        }
        Operation::DirectDebits | Operation::BulkDirectDebits => (ais("OBReadDirectDebit2"), None),
        Operation::StandingOrders | Operation::BulkStandingOrders => {
            (ais("OBReadStandingOrder6"), None)
        }
        Operation::ScheduledPayments | Operation::BulkScheduledPayments => {
            (ais("OBReadScheduledPayment3"), None)
        }
        Operation::Statements
        | Operation::Statement
        | Operation::StatementFile
        | Operation::BulkStatements => (ais("OBReadStatement2"), None),
        Operation::Product | Operation::BulkProducts => (ais("OBReadProduct2"), None),
        Operation::AccountParty | Operation::Party => (ais("OBReadParty2"), None),
        Operation::Parties => (ais("OBReadParty3"), None),
        Operation::Offers | Operation::BulkOffers => (ais("OBReadOffer1"), None),
        Operation::CreatePayment => (
            pis("OBWriteDomesticResponse5"),
            Some(pis("OBWriteDomestic2")),
        ),
        Operation::GetPayment => (pis("OBWriteDomesticResponse5"), None),
        Operation::CreateScheduledPayment => (
            pis("OBWriteDomesticScheduledResponse5"),
            Some(pis("OBWriteDomesticScheduled2")),
        ),
        Operation::GetScheduledPayment => (pis("OBWriteDomesticScheduledResponse5"), None),
        Operation::CreateStandingOrder => (
            pis("OBWriteDomesticStandingOrderResponse6"),
            Some(pis("OBWriteDomesticStandingOrder3")),
        ),
        Operation::GetStandingOrder => (pis("OBWriteDomesticStandingOrderResponse6"), None),
    }
}

fn parameter(name: &str, place: &str, required: bool, description: &str) -> Value {
    json!({
        "name": name,
        "in": place,
        "required": required,
        "description": description,
        "schema": { "type": "string" },
    })
}

/// The document, for an adapter answering at `public_url`.
pub fn document(public_url: &str) -> Value {
    let mut paths = serde_json::Map::new();
    for &operation in Operation::ALL {
        let (method, template) = operation
            .name()
            .split_once(' ')
            .unwrap_or(("GET", operation.name()));
        let mut parameters = vec![
            parameter(
                "x-consentnet-app-version",
                "header",
                true,
                "The calling app version, as approved by this bank.",
            ),
            parameter(
                "x-fapi-interaction-id",
                "header",
                false,
                "Correlation id; echoed, or generated when absent.",
            ),
        ];
        for name in [
            "AccountId",
            "StatementId",
            "DomesticPaymentId",
            "DomesticScheduledPaymentId",
            "DomesticStandingOrderId",
        ] {
            if template.contains(&format!("{{{name}}}")) {
                parameters.push(parameter(name, "path", true, "The resource id."));
            }
        }
        if matches!(
            operation,
            Operation::Transactions
                | Operation::BulkTransactions
                | Operation::StatementTransactions
        ) {
            for name in ["fromBookingDateTime", "toBookingDateTime", "page"] {
                parameters.push(parameter(name, "query", false, "Filter or page."));
            }
        }
        if method == "POST" {
            parameters.push(parameter(
                "x-idempotency-key",
                "header",
                true,
                "One payment per key and consent.",
            ));
        }
        let covering: Vec<&str> = operation
            .covering_permissions()
            .iter()
            .map(|p| p.as_str())
            .collect();
        let (answer, body) = schemas(operation);
        let error = json!({ "description": "OBErrorResponse1; Code names the reason", "content": { "application/json": { "schema": { "$ref": format!("{OBIE_AIS}#/components/schemas/OBErrorResponse1") } } } });
        let success = if method == "POST" { "201" } else { "200" };
        let mut spec = json!({
            "operationId": format!("{operation:?}"),
            "summary": operation.name(),
            "description": format!("Needs a consent granting one of: {}.", covering.join(", ")),
            "security": [{ "consent": [], "proof": [] }],
            "parameters": parameters,
            "responses": {
                success: { "description": "OK", "content": { "application/json": { "schema": { "$ref": answer } } } },
                "400": error, "401": error, "403": error, "404": error,
                "429": error, "502": error, "504": error,
            },
        });
        if method == "POST" {
            for status in ["409", "413", "415", "503"] {
                spec["responses"][status] = error.clone();
            }
        }
        if let Some(body) = body {
            spec["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": { "$ref": body } } } });
        }
        let path = format!("/open-banking/v4.0{template}");
        let entry = paths.entry(path).or_insert_with(|| json!({}));
        entry[method.to_ascii_lowercase()] = spec;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "consentnet unified Open Banking API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "UK Open Banking v4.0 shapes, served by every consentnet bank; each call is authorized by a consent on the consortium log and a proof of possession of the app's key.",
        },
        "servers": [{ "url": public_url }],
        "components": {
            "securitySchemes": {
                "consent": { "type": "apiKey", "in": "header", "name": "Authorization", "description": "ConsentNet <consent id>" },
                "proof": { "type": "apiKey", "in": "header", "name": "DPoP", "description": "A JWS by the app's DID key over method, URL, time, jti and the consent id's hash." },
            },
        },
        "paths": paths,
    })
}
