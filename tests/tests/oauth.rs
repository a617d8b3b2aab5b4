//! OAuth 2.0 and the portal pages at a bank node, end to end: an independent client (Python Authlib) runs PAR, the consent screen, the CLI wallet's approval, the DPoP token, a unified-API call, introspection, revocation and the refused call; every OAuth error, the consent form's CSRF check, and a reused code revoking its consent; and in headless Chromium a client grants through the consent screen, signs in with the wallet, sees the consent and its access, and revokes it with one click.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use consentnet_identity::consent::block_on;
use consentnet_identity::jose::sign_jws;
use consentnet_identity::{ConsentTerms, Did, KeyPair, b64url, issue_consent};
use consentnet_tests::forms::{
    Answer, admin_session, cookie_pair, enable_portal, encode, get, post_form,
};
use consentnet_tests::webdriver::Browser;
use consentnet_tests::{
    Consortium, NodeProcess, admin_token, approval_body, bin, decision_body, http_get,
    http_post_json, http_post_json_with, link_client, manifest_body, manifest_with_redirect,
    node_key, obie_get_version, pop_proof, publish, signed_get,
};
use serde_json::{Value, json};

const START: Duration = Duration::from_secs(30);
const REDIRECT: &str = "https://budget.example/callback";
use consentnet_tests::wallet::{PASSPHRASE, cli};
const VERIFIER: &str = "a-code-verifier-of-at-least-forty-three-characters-0123456789";

/// A bank node with the portal on, plus an app published there and approved for
/// accounts and balances, and a sandbox account.
struct Bank {
    _consortium: Consortium,
    process: NodeProcess,
    url: String,
    did: Did,
    app: KeyPair,
    account: String,
}

fn bank() -> Bank {
    let consortium = Consortium::create(&[("bank", "OAuth Bank"), ("tsp", "OAuth Fintech")]);
    enable_portal(&consortium.nodes[0]);
    let process = NodeProcess::start(&consortium.nodes[0], &[], START);
    let url = process.http_url.clone();
    let did = Did::parse(consortium.nodes[0].did()).unwrap();
    let app = KeyPair::generate();
    let (status, body) = publish(&process, &manifest_body(&app, "1.0.0"));
    assert_eq!(status, 201, "{body}");
    let bank_key = node_key(&consortium.nodes[0]);
    let (status, body) = http_post_json(
        &format!("{url}/v1/apps/decisions"),
        &approval_body(&bank_key, app.did()),
    );
    assert_eq!(status, 201, "{body}");
    let account = consentnet_tests::sandbox_account();
    Bank {
        _consortium: consortium,
        process,
        url,
        did,
        app,
        account,
    }
}

/// A fresh `private_key_jwt` client assertion by `app` for `aud`, expiring in `ttl` s.
fn assertion(app: &KeyPair, aud: &str, ttl: i64) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = Utc::now().timestamp();
    let jti = format!(
        "{}-{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    );
    sign_jws(
        app,
        &json!({ "typ": "JWT" }),
        &json!({ "iss": app.did(), "sub": app.did(), "aud": aud, "iat": now, "exp": now + ttl, "jti": jti }),
    )
}

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A pushed authorization request by `app` with `extra` parameters over good defaults
/// (an empty value removes a default).
fn push(bank: &Bank, app: &KeyPair, extra: &[(&str, &str)]) -> Answer {
    let endpoint = format!("{}/oauth/par", bank.url);
    let assertion = assertion(app, &endpoint, 60);
    let challenge = b64url(&sha256(VERIFIER));
    let details =
        json!([{ "type": "consentnet", "permissions": ["ReadAccountsBasic", "ReadBalances"] }])
            .to_string();
    let mut form: Vec<(&str, &str)> = vec![
        ("client_id", app.did().as_str()),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("state", "xyz"),
        ("authorization_details", &details),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", &assertion),
    ];
    for (name, value) in extra {
        form.retain(|(n, _)| n != name);
        if !value.is_empty() {
            form.push((name, value));
        }
    }
    post_form(&endpoint, &[], &form)
}

fn sha256(text: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes()).into()
}

fn error_of(answer: &Answer) -> (u16, String) {
    (
        answer.status,
        answer.body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The authorize URL of a pushed request, and its handle.
fn authorize_url(bank: &Bank, app: &KeyPair, par: &Answer) -> (String, String) {
    let request_uri = par.body["request_uri"].as_str().unwrap().to_owned();
    let handle = request_uri.rsplit(':').next().unwrap().to_owned();
    (
        format!(
            "{}/oauth/authorize?client_id={}&request_uri={}",
            bank.url,
            encode(app.did().as_str()),
            encode(&request_uri)
        ),
        handle,
    )
}

fn consent_for(bank: &Bank, client: &KeyPair, permissions: &[&str]) -> Value {
    let terms = ConsentTerms {
        app: bank.app.did().clone(),
        bank: bank.did.clone(),
        accounts: vec![bank.account.clone()],
        permissions: permissions.iter().map(|p| p.parse().unwrap()).collect(),
        payment_limits: None,
        purpose: "Access granted through OAuth".into(),
        valid_from: Utc::now(),
        valid_until: Utc::now() + chrono::Duration::days(30),
        proof_key: None,
        status: None,
    };
    block_on(issue_consent(client, &terms)).unwrap().credential
}

fn dpop(key: &KeyPair, url: &str) -> String {
    pop_proof(key, "POST", url, "")
}

/// A client's wallet (made with the CLI) with a DID linked to the bank's sandbox account.
fn linked_wallet(bank: &Bank) -> (tempfile::TempDir, String) {
    consentnet_tests::wallet::linked_wallet(
        &bank._consortium.nodes[0],
        &bank.process,
        &bank.account,
    )
}

#[test]
fn an_independent_oauth_client_gets_a_dpop_token_calls_the_api_revokes_and_is_refused() {
    let Ok(python) = std::env::var("CONSENTNET_PYTHON") else {
        panic!(
            "CONSENTNET_PYTHON must name a Python with authlib and requests: scripts/test sets it up"
        );
    };
    let bank = bank();
    let (_wallet_dir, wallet) = linked_wallet(&bank);

    let secret = bank.app.secret_bytes();
    let jwk = json!({
        "kty": "OKP", "crv": "Ed25519",
        "x": b64url(bank.app.did().public_key().as_bytes()),
        "d": b64url(&secret[..]),
    });
    let output = Command::new(python)
        .arg(
            std::path::PathBuf::from(
                std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
            )
            .join("oauth/oauth_client.py"),
        )
        .env("ISSUER", &bank.url)
        .env("CLIENT_ID", bank.app.did().as_str())
        .env("CLIENT_JWK", jwk.to_string())
        .env("REDIRECT_URI", REDIRECT)
        .env("ACCOUNT", &bank.account)
        .env("CONSENTNET", bin("consentnet"))
        .env("WALLET", &wallet)
        .env("CONSENTNET_WALLET_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the OAuth client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["served"], 200, "{summary}");
    assert_eq!(summary["refused"], 401, "{summary}");
    assert_eq!(summary["error"], "consent_revoked", "{summary}");
    // The revocation is on the log, signed by the bank.
    let (status, body) = signed_get(
        &format!(
            "{}/v1/consents/{}",
            bank.url,
            summary["consent_id"].as_str().unwrap()
        ),
        &node_key(&bank._consortium.nodes[0]),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("revoked"), "{body}");
}

#[test]
fn every_oauth_error_is_answered_in_the_oauth_shape_and_a_reused_code_revokes_its_consent() {
    let bank = bank();
    let app = &bank.app;
    let par_url = format!("{}/oauth/par", bank.url);
    let metadata: Value = serde_json::from_str(
        &http_get(&format!(
            "{}/.well-known/oauth-authorization-server",
            bank.url
        ))
        .1,
    )
    .unwrap();
    assert_eq!(metadata["issuer"], bank.url.as_str());
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        json!(["S256"])
    );

    // Client authentication: each defect is invalid_client (401).
    let other = KeyPair::generate();
    let forged = sign_jws(
        &other,
        &json!({}),
        &json!({ "iss": app.did(), "sub": app.did(), "aud": par_url, "exp": Utc::now().timestamp() + 60, "jti": "forged-1" }),
    );
    let replayed = assertion(app, &par_url, 60);
    assert_eq!(
        push(&bank, app, &[("client_assertion", &replayed)]).status,
        201
    );
    for (extra, why) in [
        (
            vec![("client_assertion", ""), ("client_assertion_type", "")],
            "no client authentication",
        ),
        (
            vec![("client_assertion", forged.as_str())],
            "signed by another key",
        ),
        (
            vec![(
                "client_assertion",
                &assertion(app, "https://elsewhere.example", 60),
            )],
            "wrong audience",
        ),
        (
            vec![("client_assertion", &assertion(app, &par_url, -120))],
            "expired",
        ),
        (vec![("client_assertion", replayed.as_str())], "replayed"),
        (
            vec![("client_assertion_type", "urn:other")],
            "unknown assertion type",
        ),
    ] {
        let got = push(&bank, app, &extra);
        assert_eq!(
            error_of(&got),
            (401, "invalid_client".into()),
            "{why}: {}",
            got.body
        );
    }
    // An app that never published is not a client; one not approved here is unauthorized.
    let stranger = KeyPair::generate();
    assert_eq!(
        error_of(&push(&bank, &stranger, &[])),
        (401, "invalid_client".into())
    );
    let unapproved = KeyPair::generate();
    let (status, _) = http_post_json(
        &format!("{}/v1/apps", bank.process.operator_url),
        &manifest_body(&unapproved, "1.0.0"),
    );
    assert_eq!(status, 201);
    assert_eq!(
        error_of(&push(&bank, &unapproved, &[])),
        (400, "unauthorized_client".into())
    );

    // The request itself.
    let too_much = json!([{ "type": "consentnet", "permissions": ["ReadAccountsDetail", "ReadTransactionsDetail", "ReadTransactionsDebits"] }]).to_string();
    let wrong_bank =
        json!([{ "type": "consentnet", "bank": app.did(), "permissions": ["ReadAccountsBasic"] }])
            .to_string();
    let unknown_field =
        json!([{ "type": "consentnet", "permissions": ["ReadAccountsBasic"], "amount": 5 }])
            .to_string();
    for (extra, expected, why) in [
        (vec![("code_challenge", "")], "invalid_request", "no PKCE"),
        (
            vec![("code_challenge_method", "plain")],
            "invalid_request",
            "plain PKCE",
        ),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
            "implicit flow",
        ),
        (
            vec![("redirect_uri", "https://evil.example/cb")],
            "invalid_request",
            "unregistered redirect",
        ),
        (
            vec![("authorization_details", ""), ("scope", "everything")],
            "invalid_scope",
            "unknown scope",
        ),
        (
            vec![("authorization_details", "")],
            "invalid_request",
            "nothing asked",
        ),
        (
            vec![("authorization_details", too_much.as_str())],
            "invalid_authorization_details",
            "beyond what the bank allows",
        ),
        (
            vec![("authorization_details", wrong_bank.as_str())],
            "invalid_authorization_details",
            "another bank",
        ),
        (
            vec![("authorization_details", unknown_field.as_str())],
            "invalid_authorization_details",
            "unknown field",
        ),
        (
            vec![("authorization_details", "not json")],
            "invalid_authorization_details",
            "not JSON",
        ),
        (
            vec![("request_uri", "urn:x")],
            "invalid_request",
            "request_uri pushed",
        ),
        (
            vec![("request", "eyJhbGciOiJub25lIn0.e30.")],
            "request_not_supported",
            "a request object",
        ),
    ] {
        let got = push(&bank, app, &extra);
        assert_eq!(
            error_of(&got),
            (400, expected.into()),
            "{why}: {}",
            got.body
        );
    }
    let repeated = post_form(&par_url, &[], &[("state", "a"), ("state", "b")]);
    assert_eq!(
        error_of(&repeated),
        (400, "invalid_request".into()),
        "{}",
        repeated.body
    );

    // The consent screen: unknown or foreign requests get an error page, never a redirect.
    let par = push(&bank, app, &[]);
    assert_eq!(par.status, 201, "{}", par.body);
    let (url, handle) = authorize_url(&bank, app, &par);
    let foreign = url.replace(
        &encode(app.did().as_str()),
        &encode(unapproved.did().as_str()),
    );
    let refused = get(&foreign, None);
    assert_eq!(refused.status, 400);
    assert!(refused.location.is_none());
    let unknown = get(
        &format!(
            "{}/oauth/authorize?client_id=x&request_uri=urn:ietf:params:oauth:request_uri:nope",
            bank.url
        ),
        None,
    );
    assert_eq!(unknown.status, 400);
    let page = get(&url, None);
    assert_eq!(page.status, 200);
    let cookie = cookie_pair(page.set_cookie.as_deref().unwrap());
    let html = page.body.as_str().unwrap().to_owned();
    assert!(html.contains("see your balances"), "{html}");
    // Another browser cannot ride on this authorization.
    assert_eq!(get(&url, None).status, 400);
    assert_eq!(get(&url, Some(&cookie)).status, 200);

    // CSRF: the deny form needs the page's token and the browser's cookie.
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let deny_url = format!("{}/oauth/authorize/deny", bank.url);
    for (headers, form) in [
        (
            vec![("cookie", cookie.as_str())],
            vec![("request", handle.as_str())],
        ),
        (
            vec![("cookie", cookie.as_str())],
            vec![("request", handle.as_str()), ("csrf", "forged")],
        ),
        (
            vec![],
            vec![("request", handle.as_str()), ("csrf", csrf.as_str())],
        ),
    ] {
        let got = post_form(&deny_url, &headers, &form);
        assert_eq!(got.status, 403, "{}", got.body);
        assert!(got.body.as_str().unwrap().contains("csrf_mismatch"));
    }
    // The wallet's approval must match the request and come from a linked holder.
    let client = KeyPair::generate();
    let approve_url = format!("{}/oauth/requests/{handle}/approve", bank.url);
    let (status, body) = http_post_json(
        &approve_url,
        &consent_for(&bank, &client, &["ReadAccountsBasic"]),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "unlinked: {body}"
    );
    link_client(
        &bank._consortium.nodes[0],
        &bank.process,
        &client,
        &[&bank.account],
    );
    let (status, body) = http_post_json(
        &approve_url,
        &consent_for(&bank, &client, &["ReadAccountsDetail", "ReadBalances"]),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "more than asked: {body}"
    );
    // Denied with the real token and cookie: back to the app with access_denied.
    let denied = post_form(
        &deny_url,
        &[("cookie", &cookie)],
        &[("request", &handle), ("csrf", &csrf)],
    );
    assert_eq!(denied.status, 303);
    let location = denied.location.unwrap();
    assert!(
        location.starts_with(&format!("{REDIRECT}?error=access_denied")),
        "{location}"
    );
    assert!(location.contains("state=xyz"), "{location}");

    // A granted request, then the token endpoint's errors.
    let par = push(&bank, app, &[]);
    let (url, handle) = authorize_url(&bank, app, &par);
    let page = get(&url, None);
    let cookie = cookie_pair(page.set_cookie.as_deref().unwrap());
    let (status, body) = http_post_json(
        &format!("{}/oauth/requests/{handle}/approve", bank.url),
        &consent_for(&bank, &client, &["ReadAccountsBasic", "ReadBalances"]),
    );
    assert_eq!(status, 201, "{body}");
    let consent_id = body["consent_id"].as_str().unwrap().to_owned();
    let back = get(&url, Some(&cookie));
    assert_eq!(back.status, 303);
    let location = back.location.unwrap();
    let code = location
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let token_url = format!("{}/oauth/token", bank.url);
    let exchange = |extra: &[(&str, &str)], proof: Option<String>| {
        let assertion = assertion(app, &token_url, 60);
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion),
        ];
        for (name, value) in extra {
            form.retain(|(n, _)| n != name);
            form.push((name, value));
        }
        let headers: Vec<(&str, &str)> = proof
            .as_deref()
            .map(|p| vec![("dpop", p)])
            .unwrap_or_default();
        post_form(&token_url, &headers, &form)
    };
    let good_proof = || Some(dpop(app, &token_url));
    for (extra, proof, expected, why) in [
        (
            vec![("code_verifier", "x".repeat(50))],
            good_proof(),
            (400, "invalid_grant"),
            "wrong verifier",
        ),
        (
            vec![("redirect_uri", "https://budget.example/other".to_owned())],
            good_proof(),
            (400, "invalid_grant"),
            "other redirect",
        ),
        (
            vec![("code", "not-a-code".to_owned())],
            good_proof(),
            (400, "invalid_grant"),
            "unknown code",
        ),
        (
            vec![("grant_type", "password".to_owned())],
            good_proof(),
            (400, "unsupported_grant_type"),
            "other grant",
        ),
        (vec![], None, (400, "invalid_dpop_proof"), "no proof"),
        (
            vec![],
            Some(dpop(&other, &token_url)),
            (400, "invalid_dpop_proof"),
            "proof by another key",
        ),
        (
            vec![],
            Some(dpop(app, "https://elsewhere.example/token")),
            (400, "invalid_dpop_proof"),
            "proof for another URL",
        ),
    ] {
        let extra: Vec<(&str, &str)> = extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let got = exchange(&extra, proof);
        assert_eq!(
            error_of(&got),
            (expected.0, expected.1.into()),
            "{why}: {}",
            got.body
        );
    }
    let granted = exchange(&[], good_proof());
    assert_eq!(granted.status, 200, "{}", granted.body);
    assert_eq!(granted.body["token_type"], "DPoP");
    assert_eq!(granted.body["access_token"], consent_id.as_str());
    // The used code presented by another app of the catalog: refused, nothing revoked.
    let rival = KeyPair::generate();
    approve_rival(&bank, &rival);
    let rival_assertion = assertion(&rival, &token_url, 60);
    let stolen = post_form(
        &token_url,
        &[("dpop", &dpop(&rival, &token_url))],
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &rival_assertion),
        ],
    );
    assert_eq!(
        error_of(&stolen),
        (400, "invalid_grant".into()),
        "{}",
        stolen.body
    );
    let (_, body) = signed_get(
        &format!("{}/v1/consents/{consent_id}", bank.url),
        &node_key(&bank._consortium.nodes[0]),
    );
    assert!(
        body.contains("\"active\""),
        "another app's reuse revoked it: {body}"
    );
    // The same code again from its own app: refused, and the consent it issued is
    // revoked on the log.
    let reused = exchange(&[], good_proof());
    assert_eq!(
        error_of(&reused),
        (400, "invalid_grant".into()),
        "{}",
        reused.body
    );
    let (status, body) = signed_get(
        &format!("{}/v1/consents/{consent_id}", bank.url),
        &node_key(&bank._consortium.nodes[0]),
    );
    assert_eq!(status, 200);
    assert!(body.contains("revoked"), "{body}");
    drop(bank.process);
}

/// Publishes `rival` at the bank and has the bank approve it, like the fixture's app.
fn approve_rival(bank: &Bank, rival: &KeyPair) {
    let (status, body) = http_post_json(
        &format!("{}/v1/apps", bank.process.operator_url),
        &manifest_body(rival, "1.0.0"),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = http_post_json(
        &format!("{}/v1/apps/decisions", bank.url),
        &approval_body(&node_key(&bank._consortium.nodes[0]), rival.did()),
    );
    assert_eq!(status, 201, "{body}");
}

/// A stand-in for the app's web backend: answers every request with a small page and
/// reports each request line.
fn callback_server() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/callback", listener.local_addr().unwrap());
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = std::io::BufReader::new(&stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let _ = sender.send(line.trim().to_owned());
            let body = "<!doctype html><title>App</title><h1 id=\"callback\">The app received the answer</h1>";
            let _ = write!(
                &stream,
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, receiver)
}

/// Version 2.0.0 of the app registers `callback` as its redirect; the bank approves it.
fn publish_with_callback(bank: &Bank, callback: &str) {
    let (status, body) = http_post_json(
        &format!("{}/v1/apps", bank.process.operator_url),
        &manifest_with_redirect(&bank.app, "2.0.0", callback),
    );
    assert_eq!(status, 201, "{body}");
    let bank_key = node_key(&bank._consortium.nodes[0]);
    let (status, body) = http_post_json(
        &format!("{}/v1/apps/decisions", bank.url),
        &decision_body(&bank_key, bank.app.did(), "2.0.0"),
    );
    assert_eq!(status, 201, "{body}");
}

#[test]
fn in_a_real_browser_a_client_grants_through_the_consent_screen_signs_in_sees_and_revokes_it() {
    let bank = bank();
    let (callback, requests) = callback_server();
    publish_with_callback(&bank, &callback);
    let (wallet_dir, wallet) = linked_wallet(&bank);

    // The app pushes its request and sends the browser to the consent screen.
    let par = push(&bank, &bank.app, &[("redirect_uri", &callback)]);
    assert_eq!(par.status, 201, "{}", par.body);
    let (authorize, handle) = authorize_url(&bank, &bank.app, &par);
    let browser = Browser::start("grant-and-revoke");
    browser.goto(&authorize);
    assert_eq!(browser.text("#app-name"), "Budget Buddy");
    assert!(browser.text("#permissions").contains("see your balances"));
    assert_eq!(browser.text("#request-id"), handle);

    // The client approves from the wallet; the screen moves on to the app by itself.
    cli(&[
        "wallet", "approve", &handle, "--bank", &bank.url, "--wallet", &wallet, "--yes",
    ]);
    browser.wait_until("the redirect to the app", Duration::from_secs(20), |b| {
        b.url().starts_with(&callback)
    });
    assert_eq!(browser.text("#callback"), "The app received the answer");
    let line = requests.recv_timeout(Duration::from_secs(5)).unwrap();
    let code = line
        .split("code=")
        .nth(1)
        .and_then(|rest| rest.split(['&', ' ']).next())
        .unwrap()
        .to_owned();
    // The app's backend exchanges the code and calls the API once.
    let token_url = format!("{}/oauth/token", bank.url);
    let assertion = assertion(&bank.app, &token_url, 60);
    let granted = post_form(
        &token_url,
        &[("dpop", &dpop(&bank.app, &token_url))],
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &callback),
            ("code_verifier", VERIFIER),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion),
        ],
    );
    assert_eq!(granted.status, 200, "{}", granted.body);
    let consent = granted.body["access_token"].as_str().unwrap().to_owned();
    let balances = format!("/accounts/{}/balances", bank.account);
    assert_eq!(
        obie_get_version(&bank.url, &balances, &consent, &bank.app, "2.0.0").0,
        200
    );

    // The client signs in with the wallet and sees the consent with its access.
    browser.goto(&format!("{}/portal/sign-in", bank.url));
    let challenge = browser.text("#challenge");
    assert!(!challenge.is_empty(), "{}", browser.source());
    cli(&[
        "wallet", "sign-in", &challenge, "--node", &bank.url, "--wallet", &wallet,
    ]);
    browser.wait_until("the dashboard", Duration::from_secs(20), |b| {
        b.url().ends_with("/portal/consents")
    });
    let card = format!("#consent-{consent}");
    assert_eq!(
        browser.attribute(&card, "data-status").as_deref(),
        Some("active")
    );
    browser.wait_until("the access in the history", Duration::from_secs(20), |b| {
        b.goto(&format!("{}/portal/consents", bank.url));
        b.text(&format!("{card} table.accesses")).contains("served")
    });

    // One click revokes it; the page shows it revoked and the API refuses the app.
    browser.click(&format!("{card} button.revoke"));
    browser.wait_until("the consent shown revoked", Duration::from_secs(20), |b| {
        b.attribute(&card, "data-status").as_deref() == Some("revoked")
    });
    let (status, body) = obie_get_version(&bank.url, &balances, &consent, &bank.app, "2.0.0");
    assert_eq!(
        (status, body["Code"].as_str()),
        (401, Some("consent_revoked")),
        "{body}"
    );
    // The catalog lists the app with what this bank allows it.
    browser.goto(&format!("{}/portal/catalog", bank.url));
    let catalog = browser.text("#catalog");
    assert!(catalog.contains("Budget Buddy"), "{catalog}");
    assert!(catalog.contains("OAuth Bank allows it to"), "{catalog}");
    // The regulator's view of the same log: one consent, revoked, the audit clean.
    browser.goto(&format!("{}/portal/regulator", bank.process.operator_url));
    let summary = browser.text("#summary");
    assert!(summary.contains("1 consents, 1 revoked"), "{summary}");
    assert_eq!(browser.text("#audit-verdict"), "clean");
    assert!(browser.find("#timeline").is_some(), "{}", browser.source());
    assert!(browser.text("#accesses").contains("Budget Buddy"));
    drop(wallet_dir);
}

#[test]
fn on_the_bank_page_an_admin_approves_with_chosen_permissions_and_suspends_only_with_the_token_and_form()
 {
    let bank = bank();
    let other = KeyPair::generate();
    let (status, _) = http_post_json(
        &format!("{}/v1/apps", bank.process.operator_url),
        &manifest_body(&other, "3.1.0"),
    );
    assert_eq!(status, 201);
    let page_url = format!("{}/portal/bank", bank.process.operator_url);
    // Signed out: the page is the sign-in form; a wrong token is refused.
    let form = get(&page_url, None);
    assert_eq!(form.status, 200);
    assert!(form.body.as_str().unwrap().contains("admin-sign-in"));
    let wrong = post_form(
        &format!("{page_url}/sign-in"),
        &[],
        &[("token", "not-the-token-at-all")],
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.as_str().unwrap().contains("admin_token_invalid"));
    let (cookie, csrf, html) = admin_session(&page_url, &admin_token(&bank._consortium.nodes[0]));
    assert!(html.contains("waiting for a decision"), "{html}");
    let decide = |cookie: Option<&str>, fields: &[(&str, &str)]| {
        let headers: Vec<(&str, &str)> = cookie.map(|c| vec![("cookie", c)]).unwrap_or_default();
        post_form(&format!("{page_url}/decisions"), &headers, fields)
    };
    let app = other.did().as_str();
    let approve = [
        ("csrf", csrf.as_str()),
        ("app", app),
        ("version", "3.1.0"),
        ("perm_ReadAccountsBasic", "on"),
        ("action", "approve"),
    ];
    // Without the session, or without the page's token, nothing is decided.
    assert_eq!(decide(None, &approve).status, 401);
    let mut forged = approve;
    forged[0] = ("csrf", "forged");
    assert_eq!(decide(Some(&cookie), &forged).status, 403);
    let none_ticked = [
        ("csrf", csrf.as_str()),
        ("app", app),
        ("version", "3.1.0"),
        ("action", "approve"),
    ];
    assert_eq!(decide(Some(&cookie), &none_ticked).status, 400);
    let catalog = || {
        let (_, body) = http_get(&format!(
            "{}/v1/catalog?bank={}",
            bank.url,
            encode(bank.did.as_str())
        ));
        let body: Value = serde_json::from_str(&body).unwrap();
        body["apps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["manifest"]["app"] == app)
            .unwrap()["decision"]
            .clone()
    };
    assert_eq!(catalog(), Value::Null);
    // Approved with the ticked permission, signed by the bank, on the log.
    assert_eq!(decide(Some(&cookie), &approve).status, 303);
    let decision = catalog();
    assert_eq!(decision["action"], "approve", "{decision}");
    assert_eq!(decision["permissions"], json!(["ReadAccountsBasic"]));
    assert_eq!(decision["bank"], bank.did.as_str());
    let suspend = [
        ("csrf", csrf.as_str()),
        ("app", app),
        ("version", "3.1.0"),
        ("action", "suspend"),
    ];
    assert_eq!(decide(Some(&cookie), &suspend).status, 303);
    assert_eq!(catalog()["action"], "suspend");
}

#[test]
fn with_a_key_kept_in_the_browser_a_client_links_approves_and_signs_in_without_the_cli() {
    let bank = bank();
    let (callback, requests) = callback_server();
    publish_with_callback(&bank, &callback);
    let browser = Browser::start("browser-key");
    let par = push(&bank, &bank.app, &[("redirect_uri", &callback)]);
    assert_eq!(par.status, 201, "{}", par.body);
    let (authorize, handle) = authorize_url(&bank, &bank.app, &par);

    // A key not linked at the bank cannot approve: the screen says why.
    browser.goto(&authorize);
    browser.click("#browser-key-button");
    browser.wait_until("the refusal", Duration::from_secs(20), |b| {
        b.text("#browser-key-status")
            .contains("linked to no account")
    });

    // Nobody learns which accounts a DID holds without its signature.
    let (status, body) = http_post_json(
        &format!("{}/oauth/requests/{handle}/prepare", bank.url),
        &json!({ "did": KeyPair::generate().did(), "proof": "AAAA" }),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_proof")),
        "{body}"
    );

    // The browser's key links its DID with the bank's one-time code.
    browser.goto(&format!("{}/portal/link", bank.url));
    let (status, code) = http_post_json_with(
        &format!("{}/v1/admin/link-codes", bank.process.operator_url),
        &[("x-admin-token", &admin_token(&bank._consortium.nodes[0]))],
        &json!({ "customer": "c-7", "accounts": [bank.account] }),
    );
    assert_eq!(status, 201, "{code}");
    browser.type_into("#link-code", code["code"].as_str().unwrap());
    browser.click("#browser-key-button");
    browser.wait_until("the link", Duration::from_secs(20), |b| {
        b.text("#browser-key-status").starts_with("Linked")
    });
    assert!(browser.text("#browser-key-status").contains(&bank.account));
    let did = browser.text("#browser-did");
    assert!(did.starts_with("did:key:z6Mk"), "{did}");

    // The same request, approved with the browser's key: back to the app with a code.
    browser.goto(&authorize);
    assert_eq!(
        browser.text("#browser-did"),
        did,
        "the key is kept across pages"
    );
    browser.click("#browser-key-button");
    browser.wait_until("the redirect to the app", Duration::from_secs(20), |b| {
        b.url().starts_with(&callback)
    });
    let line = requests.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(line.contains("code="), "{line}");

    // Signing in with the same key shows the consent it signed, issued by its DID.
    browser.goto(&format!("{}/portal/sign-in", bank.url));
    browser.click("#browser-key-button");
    browser.wait_until("the dashboard", Duration::from_secs(20), |b| {
        b.url().ends_with("/portal/consents")
    });
    assert!(browser.text("#signed-in-as").contains(&did));
    let consents = browser.text("#consents");
    assert!(
        consents.contains("Budget Buddy at OAuth Bank: active"),
        "{consents}"
    );
}

/// A call to an account access consent resource with `token` and a proof by `key`:
/// status, body, interaction id.
fn consent_call(
    bank: &Bank,
    key: &KeyPair,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value, String) {
    resource_call(
        bank,
        key,
        token,
        ("aisp/account-access-consents", method, path),
        body,
    )
}

/// [`consent_call`] on the consent resources under `resources` (e.g.
/// `pisp/domestic-payment-consents`).
fn resource_call(
    bank: &Bank,
    key: &KeyPair,
    token: &str,
    (resources, method, path): (&str, &str, &str),
    body: Option<&Value>,
) -> (u16, Value, String) {
    let url = format!("{}/open-banking/v4.0/{resources}{path}", bank.url);
    let proof = pop_proof(key, method, &url, token);
    let agent = consentnet_tests::forms::agent();
    let request = |builder: ureq::RequestBuilder<ureq::typestate::WithoutBody>| {
        builder
            .header("authorization", &format!("DPoP {token}"))
            .header("dpop", &proof)
    };
    let sent = match (method, body) {
        ("POST", Some(body)) => agent
            .post(&url)
            .header("authorization", &format!("DPoP {token}"))
            .header("dpop", &proof)
            .header("content-type", "application/json")
            .send(body.to_string()),
        ("DELETE", _) => request(agent.delete(&url)).call(),
        _ => request(agent.get(&url)).call(),
    };
    let mut response = sent.unwrap();
    let interaction = response
        .headers()
        .get("x-fapi-interaction-id")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        interaction,
    )
}

#[test]
fn a_uk_open_banking_client_makes_an_account_access_consent_has_it_authorised_reads_and_deletes_it()
{
    let bank = bank();
    let app = &bank.app;
    let client = KeyPair::generate();
    link_client(
        &bank._consortium.nodes[0],
        &bank.process,
        &client,
        &[&bank.account],
    );
    let token = consentnet_tests::forms::client_token(&bank.url, app, "openid accounts");

    // The app asks for access: a resource waiting for the client.
    let asked =
        json!({ "Data": { "Permissions": ["ReadAccountsBasic", "ReadBalances"] }, "Risk": {} });
    let (status, made, interaction) = consent_call(&bank, app, &token, "POST", "", Some(&asked));
    assert_eq!(status, 201, "{made}");
    assert_eq!(interaction.len(), 36);
    assert_eq!(made["Data"]["Status"], "AWAU");
    assert_eq!(
        made["Data"]["Permissions"],
        json!(["ReadAccountsBasic", "ReadBalances"])
    );
    let intent = made["Data"]["ConsentId"].as_str().unwrap().to_owned();
    assert_eq!(
        made["Links"]["Self"],
        format!(
            "{}/open-banking/v4.0/aisp/account-access-consents/{intent}",
            bank.url
        )
    );

    // Refusals: another app's proof, no token, a permission the bank does not allow,
    // a malformed body; another app cannot see it.
    let other = KeyPair::generate();
    let (status, body, _) = consent_call(&bank, &other, &token, "GET", &format!("/{intent}"), None);
    assert_eq!(
        (status, body["Code"].as_str()),
        (401, Some("proof_wrong_key")),
        "{body}"
    );
    let (status, body, _) =
        consent_call(&bank, app, "cc-forged", "GET", &format!("/{intent}"), None);
    assert_eq!(
        (status, body["Code"].as_str()),
        (401, Some("invalid_authorization")),
        "{body}"
    );
    let too_much =
        json!({ "Data": { "Permissions": ["ReadAccountsBasic", "ReadDirectDebits"] }, "Risk": {} });
    let (status, body, _) = consent_call(&bank, app, &token, "POST", "", Some(&too_much));
    assert_eq!(
        (status, body["Code"].as_str()),
        (403, Some("permission_not_allowed_for_app")),
        "{body}"
    );
    let (status, body, _) =
        consent_call(&bank, app, &token, "POST", "", Some(&json!({ "Data": {} })));
    assert_eq!(
        (status, body["Code"].as_str()),
        (400, Some("invalid_consent_request")),
        "{body}"
    );

    // PAR names the resource as OBIE clients do; its terms are what the client sees.
    let claims =
        json!({ "id_token": { "openbanking_intent_id": { "value": intent, "essential": true } } })
            .to_string();
    let par = push(
        &bank,
        app,
        &[
            ("authorization_details", ""),
            ("scope", "openid accounts"),
            ("claims", &claims),
        ],
    );
    assert_eq!(par.status, 201, "{}", par.body);
    let (url, handle) = authorize_url(&bank, app, &par);
    let (_, pending) = http_get(&format!("{}/oauth/requests/{handle}", bank.url));
    let pending: Value = serde_json::from_str(&pending).unwrap();
    assert_eq!(
        pending["authorization_details"][0]["permissions"],
        json!(["ReadAccountsBasic", "ReadBalances"])
    );
    let page = get(&url, None);
    let cookie = cookie_pair(page.set_cookie.as_deref().unwrap());
    let (status, body) = http_post_json(
        &format!("{}/oauth/requests/{handle}/approve", bank.url),
        &consent_for(&bank, &client, &["ReadAccountsBasic", "ReadBalances"]),
    );
    assert_eq!(status, 201, "{body}");
    let consent_id = body["consent_id"].as_str().unwrap().to_owned();
    let back = get(&url, Some(&cookie));
    assert_eq!(back.status, 303);
    let (status, authorised, _) =
        consent_call(&bank, app, &token, "GET", &format!("/{intent}"), None);
    assert_eq!(
        (status, authorised["Data"]["Status"].as_str()),
        (200, Some("AUTH")),
        "{authorised}"
    );

    // The consent's token reads; deleting the resource revokes the consent on the log.
    assert_eq!(
        obie_get_version(
            &bank.url,
            &format!("/accounts/{}/balances", bank.account),
            &consent_id,
            app,
            "1.0.0"
        )
        .0,
        200
    );
    let (status, _, interaction) =
        consent_call(&bank, app, &token, "DELETE", &format!("/{intent}"), None);
    assert_eq!(status, 204);
    assert_eq!(interaction.len(), 36);
    let (_, cancelled, _) = consent_call(&bank, app, &token, "GET", &format!("/{intent}"), None);
    assert_eq!(cancelled["Data"]["Status"], "CANC", "{cancelled}");
    let (status, refused) = obie_get_version(
        &bank.url,
        &format!("/accounts/{}/balances", bank.account),
        &consent_id,
        app,
        "1.0.0",
    );
    assert_eq!(
        (status, refused["Code"].as_str()),
        (401, Some("consent_revoked")),
        "{refused}"
    );
    // A resource already decided cannot be authorised again.
    let again = push(
        &bank,
        app,
        &[
            ("authorization_details", ""),
            ("scope", "accounts"),
            ("openbanking_intent_id", &intent),
        ],
    );
    assert_eq!(
        error_of(&again),
        (400, "invalid_request".to_owned()),
        "{}",
        again.body
    );
    let (status, body, _) = consent_call(&bank, app, &token, "GET", "/aac-nope", None);
    assert_eq!(
        (status, body["Code"].as_str()),
        (403, Some("consent_resource_unknown")),
        "{body}"
    );
}

/// The bank's decision approving `app` 1.0.0 for balances and payments.
fn approve_payments(bank: &Bank, app: &KeyPair) {
    approve_payments_at(bank, app, None);
}

/// [`approve_payments`] at `rate`.
fn approve_payments_at(
    bank: &Bank,
    app: &KeyPair,
    rate: Option<consentnet_consent_chain::event::RateLimit>,
) {
    use consentnet_consent_chain::event::{AppAction, AppDecision};
    let key = node_key(&bank._consortium.nodes[0]);
    let mut permissions = consentnet_tests::balance_permissions();
    permissions.extend(
        consentnet_identity::Permission::ALL
            .iter()
            .filter(|p| p.is_payment()),
    );
    let decision = AppDecision {
        bank: key.did().clone(),
        app: app.did().clone(),
        version: "1.0.0".into(),
        action: AppAction::Approve {
            permissions,
            rate_limit: rate,
            origins: Default::default(),
        },
        time: u64::try_from(Utc::now().timestamp_millis()).unwrap(),
    };
    let mut body =
        serde_json::to_value(consentnet_consent_chain::Event::app_decided(&key, decision)).unwrap();
    body.as_object_mut().unwrap().remove("type");
    let (status, answer) = http_post_json(&format!("{}/v1/apps/decisions", bank.url), &body);
    assert_eq!(status, 201, "{answer}");
}

/// A domestic payment of `initiation` naming `named` as its consent, under `token`:
/// status, body, and whether the bank's `x-jws-signature` verifies over the body.
fn pay_under(
    bank: &Bank,
    app: &KeyPair,
    token: &str,
    named: &str,
    initiation: &Value,
    key: &str,
) -> (u16, Value, bool) {
    initiate_under(
        bank,
        app,
        token,
        ("domestic-payments", named),
        initiation,
        key,
    )
}

/// [`pay_under`] at the payment initiation `resource` (e.g. `domestic-standing-orders`).
fn initiate_under(
    bank: &Bank,
    app: &KeyPair,
    token: &str,
    (resource, named): (&str, &str),
    initiation: &Value,
    key: &str,
) -> (u16, Value, bool) {
    let url = format!("{}/open-banking/v4.0/pisp/{resource}", bank.url);
    let proof = pop_proof(app, "POST", &url, token);
    let body = json!({ "Data": { "ConsentId": named, "Initiation": initiation }, "Risk": {} });
    let mut response = consentnet_tests::forms::agent()
        .post(&url)
        .header("authorization", &format!("DPoP {token}"))
        .header("dpop", &proof)
        .header("x-consentnet-app-version", "1.0.0")
        .header("x-idempotency-key", key)
        .header("content-type", "application/json")
        .send(body.to_string())
        .unwrap();
    let status = response.status().as_u16();
    let signature = response
        .headers()
        .get("x-jws-signature")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.body_mut().read_to_string().unwrap();
    let signed = signature.is_some_and(|signature| {
        consentnet_bank_adapter::jws::verify_detached(&bank.did, text.as_bytes(), &signature)
    });
    (status, serde_json::from_str(&text).unwrap(), signed)
}

/// The client authorises the payment consent resource `intent` through PAR and the
/// consent screen, signing a consent for `permission` with the limits the screen asks and
/// ending at `until`: the screen's details and the consent's id.
fn authorise_payment(
    bank: &Bank,
    client: &KeyPair,
    intent: &str,
    permission: consentnet_identity::Permission,
    until: chrono::DateTime<Utc>,
) -> (Value, String) {
    let app = &bank.app;
    let par = push(
        bank,
        app,
        &[
            ("authorization_details", ""),
            ("scope", "openid payments"),
            ("openbanking_intent_id", intent),
        ],
    );
    assert_eq!(par.status, 201, "{}", par.body);
    let (url, handle) = authorize_url(bank, app, &par);
    let (_, pending) = http_get(&format!("{}/oauth/requests/{handle}", bank.url));
    let pending: Value = serde_json::from_str(&pending).unwrap();
    let details = pending["authorization_details"][0].clone();
    let page = get(&url, None);
    let cookie = cookie_pair(page.set_cookie.as_deref().unwrap());
    let terms = ConsentTerms {
        app: app.did().clone(),
        bank: bank.did.clone(),
        accounts: vec![bank.account.clone()],
        permissions: [permission].into(),
        payment_limits: Some(serde_json::from_value(details["payment_limits"].clone()).unwrap()),
        purpose: details["purpose"].as_str().unwrap().to_owned(),
        valid_from: Utc::now(),
        valid_until: until,
        proof_key: None,
        status: None,
    };
    let credential = block_on(issue_consent(client, &terms)).unwrap().credential;
    let (status, body) = http_post_json(
        &format!("{}/oauth/requests/{handle}/approve", bank.url),
        &credential,
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(get(&url, Some(&cookie)).status, 303);
    (details, body["consent_id"].as_str().unwrap().to_owned())
}

#[test]
fn a_uk_open_banking_client_makes_a_payment_consent_has_it_authorised_confirms_funds_and_pays_once()
{
    let bank = bank();
    let app = &bank.app;
    let client = KeyPair::generate();
    link_client(
        &bank._consortium.nodes[0],
        &bank.process,
        &client,
        &[&bank.account],
    );
    let token = consentnet_tests::forms::client_token(&bank.url, app, "openid payments");
    let initiation = json!({
        "InstructionIdentification": "INSTR-9", "EndToEndIdentification": "E2E-9",
        "InstructedAmount": { "Amount": "12.50", "Currency": "GBP" },
        "DebtorAccount": { "SchemeName": "UK.OBIE.SortCodeAccountNumber", "Identification": bank.account },
        "CreditorAccount": { "SchemeName": "UK.OBIE.SortCodeAccountNumber", "Identification": "40123412345678", "Name": "Landlord Ltd" },
    });
    let asked = json!({ "Data": { "Initiation": initiation }, "Risk": {} });
    let call = |method: &str, path: &str, body: Option<&Value>| {
        let (status, answer, _) = resource_call(
            &bank,
            app,
            &token,
            ("pisp/domestic-payment-consents", method, path),
            body,
        );
        (status, answer)
    };
    // The bank has not allowed this app payments yet.
    let (status, body) = call("POST", "", Some(&asked));
    assert_eq!(
        (status, body["Code"].as_str()),
        (403, Some("permission_not_allowed_for_app")),
        "{body}"
    );
    approve_payments(&bank, app);
    let (status, made) = call("POST", "", Some(&asked));
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["Data"]["Status"], "AWAU");
    assert_eq!(made["Data"]["Initiation"], initiation);
    let intent = made["Data"]["ConsentId"].as_str().unwrap().to_owned();
    let (status, body) = call("GET", &format!("/{intent}/funds-confirmation"), None);
    assert_eq!(
        (status, body["Code"].as_str()),
        (403, Some("consent_not_authorised")),
        "{body}"
    );

    // Authorised for exactly that payment: its amount, from its account.
    let (details, consent_id) = authorise_payment(
        &bank,
        &client,
        &intent,
        consentnet_identity::Permission::CreateDomesticPayments,
        Utc::now() + chrono::Duration::days(30),
    );
    assert_eq!(details["permissions"], json!(["CreateDomesticPayments"]));
    assert_eq!(
        details["payment_limits"]["maxPerPayment"], "12.50",
        "{details}"
    );
    assert_eq!(details["accounts"], json!([bank.account]));
    let (_, authorised) = call("GET", &format!("/{intent}"), None);
    assert_eq!(authorised["Data"]["Status"], "AUTH", "{authorised}");
    let (status, funds) = call("GET", &format!("/{intent}/funds-confirmation"), None);
    assert_eq!(status, 200, "{funds}");
    assert_eq!(
        funds["Data"]["FundsAvailableResult"]["FundsAvailable"],
        true
    );

    // The payment names the resource, as UK Open Banking clients do, and must repeat
    // its initiation; the consent allows that one payment only.
    let mut other = initiation.clone();
    other["InstructedAmount"]["Amount"] = json!("1.00");
    let (status, body, _) = pay_under(&bank, app, &consent_id, &intent, &other, "k-0");
    assert_eq!(
        (status, body["Code"].as_str()),
        (400, Some("invalid_initiation")),
        "{body}"
    );
    let (status, body, signed) = pay_under(&bank, app, &consent_id, &intent, &initiation, "k-1");
    assert_eq!(status, 201, "{body}");
    assert!(
        signed,
        "the bank signs its payment answer (x-jws-signature)"
    );
    let (status, body, _) = pay_under(&bank, app, &consent_id, &intent, &initiation, "k-2");
    assert_eq!(
        (status, body["Code"].as_str()),
        (403, Some("payment_limit_exceeded")),
        "{body}"
    );
    let (status, body, _) = pay_under(&bank, app, &consent_id, "dpc-unknown", &initiation, "k-3");
    assert_eq!(
        (status, body["Code"].as_str()),
        (400, Some("consent_id_mismatch")),
        "{body}"
    );
}

#[test]
fn a_uk_open_banking_client_sets_up_a_standing_order_through_its_consent_resource() {
    use chrono::Datelike as _;
    let bank = bank();
    let app = &bank.app;
    let client = KeyPair::generate();
    link_client(
        &bank._consortium.nodes[0],
        &bank.process,
        &client,
        &[&bank.account],
    );
    approve_payments(&bank, app);
    let token = consentnet_tests::forms::client_token(&bank.url, app, "openid payments");
    // Three monthly payments of 20.00 from the first of next month.
    let next_month = Utc::now().date_naive().with_day(1).unwrap() + chrono::Months::new(1);
    let first = next_month.and_hms_opt(9, 0, 0).unwrap().and_utc();
    let last = first + chrono::Months::new(2);
    let initiation = json!({
        "NumberOfPayments": "3",
        "FirstPaymentAmount": { "Amount": "20.00", "Currency": "GBP" },
        "DebtorAccount": { "SchemeName": "UK.OBIE.SortCodeAccountNumber", "Identification": bank.account },
        "CreditorAccount": { "SchemeName": "UK.OBIE.SortCodeAccountNumber", "Identification": "40123412345678", "Name": "Landlord Ltd" },
        "MandateRelatedInformation": {
            "FirstPaymentDateTime": first.to_rfc3339(),
            "Frequency": { "Type": "MNTH" },
        },
    });
    let asked = json!({ "Data": { "Permission": "Create", "Initiation": initiation }, "Risk": {} });
    let call = |method: &str, path: &str, body: Option<&Value>| {
        let resources = ("pisp/domestic-standing-order-consents", method, path);
        let (status, answer, _) = resource_call(&bank, app, &token, resources, body);
        (status, answer)
    };
    let (status, made) = call("POST", "", Some(&asked));
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        (
            made["Data"]["Status"].as_str(),
            made["Data"]["Permission"].as_str()
        ),
        (Some("AWAU"), Some("Create"))
    );
    let intent = made["Data"]["ConsentId"].as_str().unwrap().to_owned();
    // A schedule the bank does not offer is refused when the resource is made.
    let mut weekdays = asked.clone();
    weekdays["Data"]["Initiation"]["MandateRelatedInformation"]["Frequency"]["Type"] =
        json!("EvryWorkgDay");
    let (status, body) = call("POST", "", Some(&weekdays));
    assert_eq!(
        (status, body["Code"].as_str()),
        (400, Some("invalid_initiation")),
        "{body}"
    );

    // Authorised into a consent for exactly that standing order.
    let (details, consent_id) = authorise_payment(
        &bank,
        &client,
        &intent,
        consentnet_identity::Permission::CreateDomesticStandingOrders,
        last + chrono::Duration::hours(12),
    );
    assert_eq!(
        details["permissions"],
        json!(["CreateDomesticStandingOrders"])
    );
    assert_eq!(
        (
            details["payment_limits"]["maxPerPayment"].as_str(),
            details["payment_limits"]["maxPerPeriod"].as_str()
        ),
        (Some("20.00"), Some("60.00")),
        "{details}"
    );
    let (_, authorised) = call("GET", &format!("/{intent}"), None);
    assert_eq!(authorised["Data"]["Status"], "AUTH", "{authorised}");

    // The standing order names the resource and repeats its initiation; once only.
    let standing = ("domestic-standing-orders", intent.as_str());
    let mut other = initiation.clone();
    other["NumberOfPayments"] = json!("2");
    let (status, body, _) = initiate_under(&bank, app, &consent_id, standing, &other, "s-0");
    assert_eq!(
        (status, body["Code"].as_str()),
        (400, Some("invalid_initiation")),
        "{body}"
    );
    let (status, made, signed) =
        initiate_under(&bank, app, &consent_id, standing, &initiation, "s-1");
    assert_eq!(status, 201, "{made}");
    assert!(signed, "the bank signs its standing order answer");
    assert_eq!(made["Data"]["ConsentId"], intent.as_str());
    assert_eq!(made["Data"]["Status"], "ACTC");
    // Read back later, it still names the resource it was made under.
    let id = made["Data"]["DomesticStandingOrderId"].as_str().unwrap();
    let url = format!(
        "{}/open-banking/v4.0/pisp/domestic-standing-orders/{id}",
        bank.url
    );
    let proof = pop_proof(app, "GET", &url, &consent_id);
    let mut response = consentnet_tests::forms::agent()
        .get(&url)
        .header("authorization", &format!("DPoP {consent_id}"))
        .header("dpop", &proof)
        .header("x-consentnet-app-version", "1.0.0")
        .call()
        .unwrap();
    let read: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(read["Data"]["ConsentId"], intent.as_str(), "{read}");
    assert_eq!(read["Data"]["Initiation"], initiation);
    let (status, body, _) = initiate_under(&bank, app, &consent_id, standing, &initiation, "s-2");
    assert_eq!(
        (status, body["Code"].as_str()),
        (403, Some("payment_limit_exceeded")),
        "{body}"
    );
    // The consent allows standing orders only: no payment now.
    let (status, body, _) = pay_under(
        &bank,
        app,
        &consent_id,
        &consent_id,
        &json!({
            "InstructionIdentification": "I", "EndToEndIdentification": "E",
            "InstructedAmount": { "Amount": "1.00", "Currency": "GBP" },
            "CreditorAccount": initiation["CreditorAccount"],
        }),
        "s-3",
    );
    assert_eq!(
        (status, body["Code"].as_str()),
        (403, Some("permission_missing")),
        "{body}"
    );
}

#[test]
fn consent_resource_calls_count_against_the_apps_rate_at_the_bank() {
    let bank = bank();
    let app = &bank.app;
    let rate = consentnet_consent_chain::event::RateLimit {
        per_second: 1,
        burst: 3,
    };
    approve_payments_at(&bank, app, Some(rate));
    let token = consentnet_tests::forms::client_token(&bank.url, app, "accounts");
    let asked =
        json!({ "Data": { "Permissions": ["ReadAccountsBasic", "ReadBalances"] }, "Risk": {} });
    let statuses: Vec<u16> = (0..5)
        .map(|_| consent_call(&bank, app, &token, "POST", "", Some(&asked)).0)
        .collect();
    assert_eq!(&statuses[..3], &[201, 201, 201], "{statuses:?}");
    assert!(
        statuses[3..].contains(&429),
        "over the burst of 3: {statuses:?}"
    );
}

#[test]
fn consent_resources_outlive_a_restart_of_the_bank_node() {
    let bank = bank();
    let client = KeyPair::generate();
    link_client(
        &bank._consortium.nodes[0],
        &bank.process,
        &client,
        &[&bank.account],
    );
    let token = consentnet_tests::forms::client_token(&bank.url, &bank.app, "accounts");
    let asked =
        json!({ "Data": { "Permissions": ["ReadAccountsBasic", "ReadBalances"] }, "Risk": {} });
    let (_, waiting, _) = consent_call(&bank, &bank.app, &token, "POST", "", Some(&asked));
    let (_, made, _) = consent_call(&bank, &bank.app, &token, "POST", "", Some(&asked));
    let waiting = waiting["Data"]["ConsentId"].as_str().unwrap().to_owned();
    let intent = made["Data"]["ConsentId"].as_str().unwrap().to_owned();
    let par = push(
        &bank,
        &bank.app,
        &[
            ("authorization_details", ""),
            ("openbanking_intent_id", &intent),
        ],
    );
    let (url, handle) = authorize_url(&bank, &bank.app, &par);
    get(&url, None);
    let (status, body) = http_post_json(
        &format!("{}/oauth/requests/{handle}/approve", bank.url),
        &consent_for(&bank, &client, &["ReadAccountsBasic", "ReadBalances"]),
    );
    assert_eq!(status, 201, "{body}");

    // The node stops and starts again (a new address: tokens and proofs are new too).
    let Bank {
        _consortium: consortium,
        process,
        did,
        app,
        account,
        ..
    } = bank;
    assert_eq!(process.terminate(START), Some(0));
    let process = NodeProcess::start(&consortium.nodes[0], &[], START);
    let bank = Bank {
        url: process.http_url.clone(),
        _consortium: consortium,
        process,
        did,
        app,
        account,
    };
    let token = consentnet_tests::forms::client_token(&bank.url, &bank.app, "accounts");
    let (status, authorised, _) =
        consent_call(&bank, &bank.app, &token, "GET", &format!("/{intent}"), None);
    assert_eq!(
        (status, authorised["Data"]["Status"].as_str()),
        (200, Some("AUTH")),
        "{authorised}"
    );
    let (_, still, _) = consent_call(
        &bank,
        &bank.app,
        &token,
        "GET",
        &format!("/{waiting}"),
        None,
    );
    assert_eq!(still["Data"]["Status"], "AWAU", "{still}");
    // Deleting it after the restart still revokes its consent.
    let (status, _, _) = consent_call(
        &bank,
        &bank.app,
        &token,
        "DELETE",
        &format!("/{intent}"),
        None,
    );
    assert_eq!(status, 204);
    let (_, cancelled, _) =
        consent_call(&bank, &bank.app, &token, "GET", &format!("/{intent}"), None);
    assert_eq!(cancelled["Data"]["Status"], "CANC", "{cancelled}");
}

/// The client approves the pushed request `par` from its wallet and the app exchanges
/// the code: the token response.
fn granted_through(bank: &Bank, wallet: &str, par: &Answer) -> Value {
    assert_eq!(par.status, 201, "{}", par.body);
    let (url, handle) = authorize_url(bank, &bank.app, par);
    let page = get(&url, None);
    let cookie = cookie_pair(page.set_cookie.as_deref().unwrap());
    cli(&[
        "wallet", "approve", &handle, "--bank", &bank.url, "--wallet", wallet, "--yes",
    ]);
    let back = get(&url, Some(&cookie));
    assert_eq!(back.status, 303);
    let location = back.location.unwrap();
    let code = location
        .split("code=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .unwrap()
        .to_owned();
    let token_url = format!("{}/oauth/token", bank.url);
    let granted = post_form(
        &token_url,
        &[("dpop", &dpop(&bank.app, &token_url))],
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion(&bank.app, &token_url, 60)),
        ],
    );
    assert_eq!(granted.status, 200, "{}", granted.body);
    granted.body
}

#[test]
fn an_app_queries_merges_replaces_and_revokes_its_grants_and_no_one_else_can() {
    let bank = bank();
    let (_wallet_dir, wallet) = linked_wallet(&bank);
    let accounts_only =
        json!([{ "type": "consentnet", "permissions": ["ReadAccountsBasic"] }]).to_string();
    let first = granted_through(
        &bank,
        &wallet,
        &push(
            &bank,
            &bank.app,
            &[("authorization_details", &accounts_only)],
        ),
    );
    let grant = first["grant_id"].as_str().unwrap().to_owned();
    assert_eq!(
        grant,
        first["access_token"].as_str().unwrap(),
        "the grant is the consent"
    );
    let token =
        consentnet_tests::forms::client_token(&bank.url, &bank.app, "grant_management_query");
    let grants = |key: &KeyPair, token: &str, method: &str, id: &str| {
        let url = format!("{}/oauth/grants/{id}", bank.url);
        let proof = pop_proof(key, method, &url, token);
        let agent = consentnet_tests::forms::agent();
        let request = match method {
            "DELETE" => agent.delete(&url),
            _ => agent.get(&url),
        };
        let mut response = request
            .header("authorization", &format!("DPoP {token}"))
            .header("dpop", &proof)
            .call()
            .unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
        )
    };
    let (status, queried) = grants(&bank.app, &token, "GET", &grant);
    assert_eq!(status, 200, "{queried}");
    assert_eq!(queried["status"], "active");
    assert_eq!(
        queried["authorization_details"][0]["permissions"],
        json!(["ReadAccountsBasic"])
    );
    // Another app, even one approved here, learns nothing of it.
    let rival = KeyPair::generate();
    approve_rival(&bank, &rival);
    let rival_token =
        consentnet_tests::forms::client_token(&bank.url, &rival, "grant_management_query");
    let (status, body) = grants(&rival, &rival_token, "GET", &grant);
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("invalid_grant_id"))
    );
    let (status, _) = grants(&rival, &rival_token, "DELETE", &grant);
    assert_eq!(status, 404, "another app cannot revoke it");
    let (status, _) = grants(&bank.app, "cc-not-a-token", "GET", &grant);
    assert_eq!(status, 401);

    // Merge: the new consent holds both, and the old grant ends once it is on the log.
    let balances =
        json!([{ "type": "consentnet", "permissions": ["ReadAccountsBasic", "ReadBalances"] }])
            .to_string();
    let merge = [
        ("authorization_details", balances.as_str()),
        ("grant_management_action", "merge"),
        ("grant_id", grant.as_str()),
    ];
    let merged = granted_through(&bank, &wallet, &push(&bank, &bank.app, &merge));
    let merged_grant = merged["grant_id"].as_str().unwrap().to_owned();
    assert_ne!(merged_grant, grant);
    assert_eq!(
        merged["authorization_details"][0]["permissions"],
        json!(["ReadAccountsBasic", "ReadBalances"])
    );
    assert_eq!(
        grants(&bank.app, &token, "GET", &grant).1["status"],
        "revoked"
    );

    // Replace: only what is asked now; the merged grant ends.
    let replace = [
        ("authorization_details", accounts_only.as_str()),
        ("grant_management_action", "replace"),
        ("grant_id", merged_grant.as_str()),
    ];
    let replaced = granted_through(&bank, &wallet, &push(&bank, &bank.app, &replace));
    assert_eq!(
        replaced["authorization_details"][0]["permissions"],
        json!(["ReadAccountsBasic"])
    );
    assert_eq!(
        grants(&bank.app, &token, "GET", &merged_grant).1["status"],
        "revoked"
    );

    // A grant that is not the app's, or not active, cannot be acted on.
    for (extra, error) in [
        (
            vec![
                ("grant_management_action", "replace"),
                ("grant_id", grant.as_str()),
            ],
            "invalid_grant_id",
        ),
        (
            vec![("grant_management_action", "merge")],
            "invalid_request",
        ),
        (
            vec![
                ("grant_management_action", "update"),
                ("grant_id", grant.as_str()),
            ],
            "invalid_request",
        ),
        (vec![("grant_id", grant.as_str())], "invalid_request"),
    ] {
        let par = push(&bank, &bank.app, &extra);
        assert_eq!(
            error_of(&par),
            (400, error.to_owned()),
            "{extra:?}: {}",
            par.body
        );
    }

    // Revocation through grant management ends it on the log; a second one finds nothing.
    let last = replaced["grant_id"].as_str().unwrap();
    assert_eq!(grants(&bank.app, &token, "DELETE", last).0, 204);
    assert_eq!(
        grants(&bank.app, &token, "GET", last).1["status"],
        "revoked"
    );
    assert_eq!(grants(&bank.app, &token, "DELETE", last).0, 404);
    assert_eq!(
        obie_get_version(&bank.url, "/accounts", last, &bank.app, "1.0.0").0,
        401,
        "the revoked grant's token is refused"
    );
}
