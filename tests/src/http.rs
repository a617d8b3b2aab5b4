//! The tests' small HTTP client: JSON posts, plain and signed gets, with the status and body of every answer.

use std::time::Duration;

/// POSTs JSON to `url` and returns the status code and the body as JSON.
pub fn http_post_json(url: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    http_post_json_with(url, &[], body)
}

/// POSTs JSON to `url` with `headers`; returns the status code and the body as JSON.
pub fn http_post_json_with(
    url: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    try_post_json_with(url, headers, body).expect("the HTTP call completes")
}

/// POSTs JSON to `url`; `None` when no answer came (e.g. the node is down).
pub fn try_post_json(url: &str, body: &serde_json::Value) -> Option<(u16, serde_json::Value)> {
    try_post_json_with(url, &[], body)
}

fn try_post_json_with(
    url: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> Option<(u16, serde_json::Value)> {
    let mut request = agent(20)
        .post(url)
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    json_answer(request.send(body.to_string()).ok()?)
}

/// An agent that answers every status as a response, within `seconds`.
fn agent(seconds: u64) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(seconds)))
        .build()
        .new_agent()
}

/// The status and the body as JSON (a string when it is not JSON); `None` when the
/// body could not be read.
fn json_answer(mut response: ureq::http::Response<ureq::Body>) -> Option<(u16, serde_json::Value)> {
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().ok()?;
    Some((
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    ))
}

/// GETs `url` and returns the status code and body.
pub fn http_get(url: &str) -> (u16, String) {
    get_with(url, &[])
}

/// GETs `url` with `headers`; returns the status code and body.
fn get_with(url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut request = agent(10).get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request.call().expect("the HTTP call completes");
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .expect("the body is text");
    (status, body)
}

/// `GET url` as a read signed by `key` (a DPoP proof for the URL without its query), as
/// the node's consent reads require.
pub fn signed_get(url: &str, key: &consentnet_identity::KeyPair) -> (u16, String) {
    let request = consentnet_identity::PopRequest {
        method: "GET",
        url,
        access_token: "",
    };
    let proof = consentnet_identity::sign_pop(key, request, chrono::Utc::now());
    get_with(url, &[("dpop", &proof)])
}

/// PUTs raw bytes to `url`; returns the status code and the body as JSON.
pub fn http_put_bytes(url: &str, bytes: &[u8]) -> (u16, serde_json::Value) {
    let response = agent(20)
        .put(url)
        .header("content-type", "application/octet-stream")
        .send(bytes)
        .expect("the HTTP call completes");
    json_answer(response).expect("the body is text")
}

/// `key`'s DPoP proof for `method url` now, bound to `access_token` (empty for none).
pub fn pop_proof(
    key: &consentnet_identity::KeyPair,
    method: &str,
    url: &str,
    access_token: &str,
) -> String {
    let request = consentnet_identity::PopRequest {
        method,
        url,
        access_token,
    };
    consentnet_identity::sign_pop(key, request, chrono::Utc::now())
}
