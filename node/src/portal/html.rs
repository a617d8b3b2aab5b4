//! The portal's HTML kit: the page layout and its security headers, the refusal page, redirects, cookies, the HTML escaper and permissions in plain words.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use consentnet_identity::Permission;

use consentnet_identity::util::escape_html;

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
}

/// Sets cookie `name` on `response`: `HttpOnly`, sent only under `path` with `same_site`,
/// `Secure` when the portal is served over https, living `max_age` seconds (0 deletes it).
pub(crate) fn set_cookie(
    response: &mut Response,
    issuer: &str,
    name: &str,
    value: &str,
    path: &str,
    same_site: &str,
    max_age: i64,
) {
    let secure = if issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite={same_site}; Max-Age={max_age}{secure}"
    );
    if let Ok(value) = HeaderValue::from_str(&text) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// Security headers of every page: no framing (the consent screen must not be
/// clickjacked), no scripts, forms only to this origin, no referrer carrying the request.
pub(crate) fn page(html: &str) -> Response {
    page_with_status(StatusCode::OK, html)
}

pub(crate) fn page_with_status(status: StatusCode, html: &str) -> Response {
    (
        status,
        [
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
                ),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Html(html.to_owned()),
    )
        .into_response()
}

/// A page saying why something was refused: the machine-readable code in
/// `#error[data-error]`, the message for people, then `next` (HTML: where to go now).
pub(crate) fn refusal_page(
    status: StatusCode,
    title: &str,
    code: &str,
    message: &str,
    next: &str,
) -> Response {
    let body = format!(
        "<h1>{title}</h1>\n<p class=\"error\" id=\"error\" data-error=\"{code}\">{message}</p>\n{next}",
        title = escape_html(title),
        code = escape_html(code),
        message = escape_html(message),
    );
    page_with_status(status, &layout(title, &body, None))
}

/// A `303 See Other` to `location`, not cached.
pub(crate) fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location.to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

pub(crate) fn layout(title: &str, body: &str, refresh_secs: Option<u32>) -> String {
    let refresh = refresh_secs
        // Without scripts the page refreshes itself; with them, wallet.js does, and stops
        // while the browser's key is at work or when it has an error to show.
        .map(|s| format!("<noscript><meta http-equiv=\"refresh\" content=\"{s}\"></noscript>\n"))
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{refresh}<title>{title} · consentnet</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; color: #1b1b1b; }}
h1 {{ font-size: 1.5rem; }}
.box {{ border: 1px solid #b0b0b0; border-radius: .5rem; padding: 1rem; margin: 1rem 0; }}
code {{ background: #f0f0f0; padding: .1rem .3rem; word-break: break-all; }}
button {{ font-size: 1rem; padding: .5rem 1rem; }}
.error {{ color: #a00000; }}
nav {{ margin-bottom: 1rem; }}
table {{ border-collapse: collapse; }}
td, th {{ border-bottom: 1px solid #d0d0d0; padding: .2rem .5rem; text-align: left; }}
</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"#,
        title = escape_html(title),
    )
}

/// A permission in plain words.
pub fn plain_words(permission: Permission) -> &'static str {
    use Permission::*;
    match permission {
        ReadAccountsBasic => "see which accounts you have (type and currency)",
        ReadAccountsDetail => "see your accounts with their identification",
        ReadBalances => "see your balances",
        ReadBeneficiariesBasic => "see who you pay (names only)",
        ReadBeneficiariesDetail => "see who you pay, with their account details",
        ReadDirectDebits => "see your direct debits",
        ReadTransactionsBasic => "see your transactions (amounts and dates)",
        ReadTransactionsDetail => "see your transactions with their details",
        ReadTransactionsCredits => "see money coming in",
        ReadTransactionsDebits => "see money going out",
        ReadStatementsBasic => "see your statements (summary)",
        ReadStatementsDetail => "see and download your statements",
        ReadProducts => "see the products your accounts are",
        ReadOffers => "see offers the bank makes you",
        ReadParty => "see the account holder's name and contact details",
        ReadPartyPSU => "see your own name and contact details",
        ReadScheduledPaymentsBasic => "see your scheduled payments (summary)",
        ReadScheduledPaymentsDetail => "see your scheduled payments in detail",
        ReadPAN => "see your card numbers",
        ReadStandingOrdersBasic => "see your standing orders (summary)",
        ReadStandingOrdersDetail => "see your standing orders in detail",
        CreateDomesticPayments => "make payments from your account",
        CreateDomesticScheduledPayments => "schedule payments from your account for later dates",
        CreateDomesticStandingOrders => "set up standing orders from your account",
    }
}

/// Headers that keep a response out of every cache (OAuth answers, redirects with codes).
pub(crate) fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}
