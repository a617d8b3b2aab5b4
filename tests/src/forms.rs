//! A browser-like client for the portal's pages in tests: form posts and gets that keep redirects and cookies visible, and turning a node's portal on.

use std::time::Duration;

use serde_json::Value;

use crate::NodeDir;

/// Turns the portal on in `node`'s config.
pub fn enable_portal(node: &NodeDir) {
    let config = node.dir.join("node.toml");
    let text = std::fs::read_to_string(&config).expect("the node's config reads");
    assert!(
        text.contains("enabled = false"),
        "the starter config has [portal]"
    );
    std::fs::write(&config, text.replace("enabled = false", "enabled = true"))
        .expect("the node's config writes");
}

/// An HTTP answer: status, headers we look at, and the body as JSON (or a string).
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// `Location`, on a redirect.
    pub location: Option<String>,
    /// `Set-Cookie`, if any.
    pub set_cookie: Option<String>,
    /// The body as JSON, or as a string when it is not JSON.
    pub body: Value,
}

/// An agent that follows no redirect and answers every status.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .new_agent()
}

/// The parts of `response` the tests look at.
pub fn answer(mut response: ureq::http::Response<ureq::Body>) -> Answer {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (location, set_cookie) = (header("location"), header("set-cookie"));
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .expect("the body is text");
    Answer {
        status,
        location,
        set_cookie,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// POSTs `form` (URL-encoded) with `headers`.
pub fn post_form(url: &str, headers: &[(&str, &str)], form: &[(&str, &str)]) -> Answer {
    let mut request = agent()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body: String = form
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    answer(request.send(body).expect("the HTTP call completes"))
}

/// GETs `url`, with `cookie` if given.
pub fn get(url: &str, cookie: Option<&str>) -> Answer {
    let mut request = agent().get(url);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    answer(request.call().expect("the HTTP call completes"))
}

/// Percent-encodes all but RFC 3986's unreserved characters.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The `name=value` part of a `Set-Cookie` header.
pub fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or_default().to_owned()
}

/// Signs in to a bank's page at `page_url` with `token`: the session cookie and the
/// page's CSRF token, and the page's HTML.
pub fn admin_session(page_url: &str, token: &str) -> (String, String, String) {
    let signed_in = post_form(&format!("{page_url}/sign-in"), &[], &[("token", token)]);
    assert_eq!(signed_in.status, 303, "the admin token signs in");
    let cookie = cookie_pair(signed_in.set_cookie.as_deref().unwrap_or_default());
    let html = get(page_url, Some(&cookie))
        .body
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF token on the bank's page: {html}"))
        .to_owned();
    (cookie, csrf, html)
}

/// A client credentials token for `app` at the bank whose public URL is `bank_url`
/// (`private_key_jwt` and a DPoP proof by the app's key), for `scope`.
pub fn client_token(bank_url: &str, app: &consentnet_identity::KeyPair, scope: &str) -> String {
    let token_url = format!("{bank_url}/oauth/token");
    let now = chrono::Utc::now();
    let jti = consentnet_identity::util::random_hex(16);
    let assertion = consentnet_identity::jose::sign_jws(
        app,
        &serde_json::json!({ "typ": "JWT" }),
        &serde_json::json!({
            "iss": app.did(), "sub": app.did(), "aud": token_url,
            "iat": now.timestamp(), "exp": now.timestamp() + 60, "jti": jti,
        }),
    );
    let proof = consentnet_identity::sign_pop(
        app,
        consentnet_identity::PopRequest {
            method: "POST",
            url: &token_url,
            access_token: "",
        },
        now,
    );
    let answer = post_form(
        &token_url,
        &[("dpop", &proof)],
        &[
            ("grant_type", "client_credentials"),
            ("scope", scope),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ],
    );
    assert_eq!(answer.status, 200, "client credentials: {}", answer.body);
    answer.body["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}
