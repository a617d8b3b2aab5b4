//! A node's W3C VC-API from outside the network: a credential or a presentation sent to `POST /credentials/verify` or `/presentations/verify`, the verification read whether it passed or not.

use serde_json::{Value, json};

use crate::node_api::{NodeApiError, NodeClient};

/// The largest document sent, in bytes (what a node takes).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// True when `document` is a presentation (its `type` names `VerifiablePresentation`).
fn is_presentation(document: &Value) -> bool {
    let kind = &document["type"];
    kind == "VerifiablePresentation"
        || kind
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "VerifiablePresentation"))
}

/// `node`'s verification of `document` (a credential, or a presentation checked with
/// `challenge` and `domain`): `{verified, checks, warnings, errors, problemDetails}`,
/// whether it passed (`200`) or not (`400` with the verification as its body).
pub fn verify(
    node: &NodeClient,
    document: &Value,
    (challenge, domain): (Option<&str>, Option<&str>),
) -> Result<Value, NodeApiError> {
    let (path, body) = if is_presentation(document) {
        let options = json!({ "challenge": challenge, "domain": domain });
        (
            "/presentations/verify",
            json!({ "verifiablePresentation": document, "options": options }),
        )
    } else {
        (
            "/credentials/verify",
            json!({ "verifiableCredential": document }),
        )
    };
    match node.post(path, &body) {
        Err(NodeApiError::Refused {
            status: 400,
            message,
            url,
            code,
        }) => match serde_json::from_str::<Value>(&message) {
            Ok(verification) if verification.get("verified").is_some() => Ok(verification),
            _ => Err(NodeApiError::Refused {
                url,
                status: 400,
                code,
                message,
            }),
        },
        answer => answer,
    }
}

/// The kind of `verification`'s first error (its type URI's last segment), if any.
pub fn first_error(verification: &Value) -> Option<&str> {
    verification["errors"][0]["type"]
        .as_str()
        .and_then(|kind| kind.rsplit('/').next())
}
