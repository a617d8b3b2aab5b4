//! The FAPI headers of every unified-API request and answer: a malformed `x-fapi-*` request header is refused with `400 invalid_fapi_header` naming it before anything else runs, and every answer, errors and unknown paths included, carries `x-fapi-interaction-id`.

use std::net::IpAddr;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use crate::api::INTERACTION_ID;
use crate::call::{fresh_interaction_id, refuse};
use crate::problem::{ObCode, ObError};

/// When the client last authenticated with the TSP (an HTTP-date, RFC 7231).
pub const AUTH_DATE: &str = "x-fapi-auth-date";
/// The client's IP address, when the client is present.
pub const CUSTOMER_IP: &str = "x-fapi-customer-ip-address";

/// True for an RFC 4122 UUID in its 8-4-4-4-12 hex form.
pub(crate) fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// True for an HTTP-date in its IMF-fixdate form, e.g. `Sun, 10 Sep 2017 19:43:31 GMT`.
fn is_http_date(text: &str) -> bool {
    text.ends_with(" GMT") && chrono::DateTime::parse_from_rfc2822(text).is_ok()
}

/// A FAPI header: its name, what it must be, and the check.
type Rule = (&'static str, &'static str, fn(&str) -> bool);

/// The first malformed FAPI header, named with what it must be.
fn malformed(headers: &HeaderMap) -> Option<String> {
    let rules: [Rule; 3] = [
        (INTERACTION_ID, "a UUID (RFC 4122)", is_uuid),
        (
            AUTH_DATE,
            "an HTTP-date such as Sun, 10 Sep 2017 19:43:31 GMT",
            is_http_date,
        ),
        (CUSTOMER_IP, "an IPv4 or IPv6 address", |t| {
            t.parse::<IpAddr>().is_ok()
        }),
    ];
    rules.iter().find_map(|(name, must, valid)| {
        let values: Vec<&HeaderValue> = headers.get_all(*name).iter().collect();
        let fine = match values.as_slice() {
            [] => true,
            [one] => one.to_str().is_ok_and(valid),
            _ => false,
        };
        (!fine).then(|| format!("{name} must be given at most once, as {must}"))
    })
}

/// The layer: refuses malformed FAPI headers, and stamps every answer with the
/// interaction id (the caller's, or a fresh one).
pub async fn headers(request: Request, next: Next) -> Response {
    if let Some(why) = malformed(request.headers()) {
        let mut headers = request.headers().clone();
        headers.remove(INTERACTION_ID);
        return refuse(&headers, ObError::new(ObCode::InvalidFapiHeader, why));
    }
    let given = request.headers().get(INTERACTION_ID).cloned();
    let mut response = next.run(request).await;
    if !response.headers().contains_key(INTERACTION_ID) {
        let id = given
            .or_else(|| HeaderValue::from_str(&fresh_interaction_id()).ok())
            .unwrap_or_else(|| HeaderValue::from_static("00000000-0000-4000-8000-000000000000"));
        response.headers_mut().insert(INTERACTION_ID, id);
    }
    response
}

/// An OBIE error answer for an endpoint served outside the adapter, with the call's
/// interaction id.
pub fn refusal(headers: &HeaderMap, error: ObError) -> Response {
    refuse(headers, error)
}

/// An OBIE answer for an endpoint served outside the adapter, with the call's
/// interaction id.
pub fn answer(
    headers: &HeaderMap,
    status: axum::http::StatusCode,
    body: serde_json::Value,
) -> Response {
    crate::call::answer(headers, status, body)
}

/// `/open-banking/...` paths the adapter does not serve: `404 not_found` in the OBIE shape.
pub async fn unknown(headers: HeaderMap) -> Response {
    refuse(
        &headers,
        ObError::new(ObCode::NotFound, "the unified API has no such resource"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fapi_header_is_checked_for_its_form() {
        let with = |name: &'static str, value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                name,
                HeaderValue::from_str(value).unwrap_or_else(|_| unreachable!()),
            );
            malformed(&headers)
        };
        assert_eq!(
            with(INTERACTION_ID, "93bac548-d2de-4546-b106-880a5018460d"),
            None
        );
        assert!(
            with(INTERACTION_ID, "not-a-uuid")
                .unwrap_or_default()
                .contains(INTERACTION_ID)
        );
        assert_eq!(with(AUTH_DATE, "Sun, 10 Sep 2017 19:43:31 GMT"), None);
        assert!(with(AUTH_DATE, "2017-09-10T19:43:31Z").is_some());
        assert_eq!(with(CUSTOMER_IP, "104.25.212.99"), None);
        assert_eq!(with(CUSTOMER_IP, "2001:db8::1"), None);
        assert!(with(CUSTOMER_IP, "localhost").is_some());
        let mut twice = HeaderMap::new();
        twice.append(CUSTOMER_IP, HeaderValue::from_static("10.0.0.1"));
        twice.append(CUSTOMER_IP, HeaderValue::from_static("10.0.0.2"));
        assert!(
            malformed(&twice)
                .unwrap_or_default()
                .contains("at most once")
        );
        assert_eq!(malformed(&HeaderMap::new()), None);
    }
}
