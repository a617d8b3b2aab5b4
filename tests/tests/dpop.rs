//! DPoP as standard OAuth libraries speak it, against a real bank node: server nonces with the `use_dpop_nonce` retry at the token endpoint, the consent resources and the unified API; PAR binding the code to the client's key (`dpop_jkt`); a scope beyond the bank's approval refused as `invalid_scope`.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use consentnet_identity::{
    KeyPair, PopClaims, PopRequest, b64url_decode, issue_consent, pop::sign_claims, sign_pop,
};
use consentnet_tests::{
    Consortium, NodeProcess, approval_body, balance_terms, http_post_json, link_client,
    manifest_body, node_key, publish,
};
use serde_json::{Value, json};

const START: Duration = Duration::from_secs(60);
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct Bank {
    _consortium: Consortium,
    process: NodeProcess,
    app: KeyPair,
    account: String,
}

/// A bank node with its portal on, `require_dpop_nonce` as given, and an app approved
/// for balances.
fn bank(require_nonce: bool) -> Bank {
    let consortium = Consortium::create(&[("bank", "Nonce Bank")]);
    let node = &consortium.nodes[0];
    consentnet_tests::forms::enable_portal(node);
    let config = node.dir.join("node.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("require_dpop_nonce = false"), "{text}");
    let text = text.replace(
        "require_dpop_nonce = false",
        &format!("require_dpop_nonce = {require_nonce}"),
    );
    std::fs::write(&config, text).unwrap();
    let process = NodeProcess::start(node, &[], START);
    let app = KeyPair::generate();
    let (status, body) = publish(&process, &manifest_body(&app, "1.0.0"));
    assert_eq!(status, 201, "{body}");
    let (status, body) = http_post_json(
        &format!("{}/v1/apps/decisions", process.http_url),
        &approval_body(&node_key(node), app.did()),
    );
    assert_eq!(status, 201, "{body}");
    let account = consentnet_tests::sandbox_account();
    Bank {
        _consortium: consortium,
        process,
        app,
        account,
    }
}

/// An answer: status, the headers looked at, and the body.
struct Reply {
    status: u16,
    nonce: Option<String>,
    challenge: Option<String>,
    body: Value,
}

fn send(request: ureq::RequestBuilder<ureq::typestate::WithBody>, body: &str) -> Reply {
    reply(request.send(body.to_owned()).unwrap())
}

fn reply(mut response: ureq::http::Response<ureq::Body>) -> Reply {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (nonce, challenge) = (header("dpop-nonce"), header("www-authenticate"));
    let text = response.body_mut().read_to_string().unwrap();
    Reply {
        status: response.status().as_u16(),
        nonce,
        challenge,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

/// A proof by `key` for `request`, carrying `nonce` when given.
fn proof(key: &KeyPair, request: PopRequest<'_>, nonce: Option<&str>) -> String {
    let plain = sign_pop(key, request, Utc::now());
    let claims = plain.split('.').nth(1).unwrap();
    let mut claims: PopClaims = serde_json::from_slice(&b64url_decode(claims).unwrap()).unwrap();
    claims.nonce = nonce.map(str::to_owned);
    sign_claims(key, &claims)
}

fn assertion(app: &KeyPair, aud: &str) -> String {
    let now = Utc::now().timestamp();
    consentnet_identity::jose::sign_jws(
        app,
        &json!({ "typ": "JWT" }),
        &json!({
            "iss": app.did(), "sub": app.did(), "aud": aud, "iat": now, "exp": now + 60,
            "jti": consentnet_identity::util::random_hex(16),
        }),
    )
}

/// `grant_type=client_credentials` with a proof carrying `nonce`.
fn client_credentials(bank: &Bank, nonce: Option<&str>) -> Reply {
    let url = format!("{}/oauth/token", bank.process.http_url);
    let request = PopRequest {
        method: "POST",
        url: &url,
        access_token: "",
    };
    let form = [
        ("grant_type", "client_credentials".to_owned()),
        ("scope", "accounts".to_owned()),
        ("client_assertion_type", ASSERTION_TYPE.to_owned()),
        ("client_assertion", assertion(&bank.app, &url)),
    ];
    let body: String = form
        .iter()
        .map(|(k, v)| format!("{k}={}", consentnet_tests::forms::encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    send(
        consentnet_tests::forms::agent()
            .post(&url)
            .header("dpop", &proof(&bank.app, request, nonce))
            .header("content-type", "application/x-www-form-urlencoded"),
        &body,
    )
}

#[test]
fn a_bank_requiring_dpop_nonces_hands_one_out_and_takes_the_retry_at_every_endpoint() {
    let bank = bank(true);
    // The token endpoint: no nonce is `use_dpop_nonce`, with one to retry with.
    let first = client_credentials(&bank, None);
    assert_eq!(
        (first.status, first.body["error"].as_str()),
        (400, Some("use_dpop_nonce")),
        "{}",
        first.body
    );
    let nonce = first.nonce.expect("a DPoP-Nonce header");
    let stale = client_credentials(&bank, Some("1.AAAAAAAAAAAAAAAAAAAAAA"));
    assert_eq!(stale.body["error"], "use_dpop_nonce", "a foreign nonce");
    let retried = client_credentials(&bank, Some(&nonce));
    assert_eq!(retried.status, 200, "{}", retried.body);
    let token = retried.body["access_token"].as_str().unwrap().to_owned();

    // A consent resource: 401 with the challenge and a nonce, then the retry.
    let url = format!(
        "{}/open-banking/v4.0/aisp/account-access-consents",
        bank.process.http_url
    );
    let make = |nonce: Option<&str>| {
        let request = PopRequest {
            method: "POST",
            url: &url,
            access_token: &token,
        };
        send(
            consentnet_tests::forms::agent()
                .post(&url)
                .header("authorization", &format!("DPoP {token}"))
                .header("dpop", &proof(&bank.app, request, nonce))
                .header("content-type", "application/json"),
            &json!({ "Data": { "Permissions": ["ReadAccountsBasic", "ReadBalances"] }, "Risk": {} })
                .to_string(),
        )
    };
    let refused = make(None);
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(refused.body["Code"], "use_dpop_nonce");
    assert!(
        refused
            .challenge
            .as_deref()
            .is_some_and(|c| c.starts_with("DPoP error=\"use_dpop_nonce\"")),
        "{:?}",
        refused.challenge
    );
    let made = make(refused.nonce.as_deref());
    assert_eq!(made.status, 201, "{}", made.body);

    // The unified API, under a consent on the log.
    let client = KeyPair::generate();
    link_client(
        &bank._consortium.nodes[0],
        &bank.process,
        &client,
        &[&bank.account],
    );
    let bank_did = consentnet_identity::Did::parse(bank._consortium.nodes[0].did()).unwrap();
    let terms = balance_terms(bank.app.did(), &bank_did, &bank.account);
    let consent = consentnet_identity::consent::block_on(issue_consent(&client, &terms)).unwrap();
    let (status, body) = http_post_json(
        &format!("{}/v1/consents", bank.process.http_url),
        &consent.credential,
    );
    assert_eq!(status, 201, "{body}");
    let id = consent.id.to_string();
    let url = format!(
        "{}/open-banking/v4.0/aisp/accounts/{}/balances",
        bank.process.http_url, bank.account
    );
    let call = |nonce: Option<&str>| {
        let request = PopRequest {
            method: "GET",
            url: &url,
            access_token: &id,
        };
        reply(
            consentnet_tests::forms::agent()
                .get(&url)
                .header("authorization", &format!("DPoP {id}"))
                .header("dpop", &proof(&bank.app, request, nonce))
                .header("x-consentnet-app-version", "1.0.0")
                .call()
                .unwrap(),
        )
    };
    let refused = call(None);
    assert_eq!(
        (refused.status, refused.body["Code"].as_str()),
        (401, Some("use_dpop_nonce"))
    );
    let served = call(refused.nonce.as_deref());
    assert_eq!(served.status, 200, "{}", served.body);
    assert!(
        served.nonce.is_some(),
        "every answer carries the next nonce when they are required"
    );
    // A resource the consent does not reach: 403 with RFC 6750's insufficient_scope.
    let transactions = url.replace("/balances", "/transactions");
    let request = PopRequest {
        method: "GET",
        url: &transactions,
        access_token: &id,
    };
    let refused = reply(
        consentnet_tests::forms::agent()
            .get(&transactions)
            .header("authorization", &format!("DPoP {id}"))
            .header("dpop", &proof(&bank.app, request, served.nonce.as_deref()))
            .header("x-consentnet-app-version", "1.0.0")
            .call()
            .unwrap(),
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused
            .challenge
            .as_deref()
            .is_some_and(|c| c.starts_with("DPoP error=\"insufficient_scope\"")),
        "{:?}",
        refused.challenge
    );
}

#[test]
fn par_binds_the_code_to_the_clients_own_key_and_a_scope_beyond_the_approval_is_invalid_scope() {
    let bank = bank(false);
    let url = format!("{}/oauth/par", bank.process.http_url);
    let par = |extra: &[(&str, String)], dpop: Option<String>| {
        let mut form = vec![
            ("client_id", bank.app.did().to_string()),
            ("response_type", "code".into()),
            ("redirect_uri", "https://budget.example/callback".into()),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            ),
            ("code_challenge_method", "S256".into()),
            (
                "authorization_details",
                json!([{ "type": "consentnet", "permissions": ["ReadAccountsBasic", "ReadBalances"] }])
                    .to_string(),
            ),
            ("client_assertion_type", ASSERTION_TYPE.into()),
            ("client_assertion", assertion(&bank.app, &url)),
        ];
        for (name, value) in extra {
            form.retain(|(n, _)| n != name);
            if !value.is_empty() {
                form.push((name, value.clone()));
            }
        }
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{k}={}", consentnet_tests::forms::encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut request = consentnet_tests::forms::agent()
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(dpop) = dpop {
            request = request.header("dpop", &dpop);
        }
        send(request, &body)
    };
    let at_par = |key: &KeyPair| {
        let request = PopRequest {
            method: "POST",
            url: &url,
            access_token: "",
        };
        Some(proof(key, request, None))
    };
    let own = consentnet_identity::jose::jwk_thumbprint(bank.app.did());
    let accepted = par(&[("dpop_jkt", own)], at_par(&bank.app));
    assert_eq!(accepted.status, 201, "{}", accepted.body);
    assert!(accepted.nonce.is_some(), "PAR offers a DPoP nonce");
    let stranger = KeyPair::generate();
    let other = consentnet_identity::jose::jwk_thumbprint(stranger.did());
    let refused = par(&[("dpop_jkt", other)], None);
    assert_eq!(
        (refused.status, refused.body["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    let refused = par(&[], at_par(&stranger));
    assert_eq!(
        (refused.status, refused.body["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "a proof by another key than the client's"
    );
    // The bank approved balances only: payments asked by scope are refused as the scope.
    let refused = par(
        &[
            ("scope", "accounts payments".into()),
            ("authorization_details", String::new()),
        ],
        None,
    );
    assert_eq!(
        (refused.status, refused.body["error"].as_str()),
        (400, Some("invalid_scope")),
        "{}",
        refused.body
    );
    // No authorization response over plain HTTP but to a loopback address.
    let refused = par(
        &[("redirect_uri", "http://budget.example/callback".into())],
        None,
    );
    assert_eq!(refused.body["error"], "invalid_request");
    assert!(
        refused.body["error_description"]
            .as_str()
            .unwrap()
            .contains("loopback"),
        "{}",
        refused.body
    );
    // A client assertion from a minute or more ahead is refused; ten seconds is a clock.
    let ahead = |secs: i64| {
        let now = Utc::now().timestamp();
        consentnet_identity::jose::sign_jws(
            &bank.app,
            &json!({ "typ": "JWT" }),
            &json!({
                "iss": bank.app.did(), "sub": bank.app.did(), "aud": url, "iat": now,
                "nbf": now + secs, "exp": now + 120,
                "jti": consentnet_identity::util::random_hex(16),
            }),
        )
    };
    let refused = par(&[("client_assertion", ahead(60))], None);
    assert_eq!(
        (refused.status, refused.body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert_eq!(par(&[("client_assertion", ahead(10))], None).status, 201);
    // The metadata says which algorithms each endpoint takes.
    let (_, metadata) = consentnet_tests::http_get(&format!(
        "{}/.well-known/oauth-authorization-server",
        bank.process.http_url
    ));
    let metadata: Value = serde_json::from_str(&metadata).unwrap();
    for field in [
        "token_endpoint_auth_signing_alg_values_supported",
        "introspection_endpoint_auth_signing_alg_values_supported",
        "revocation_endpoint_auth_signing_alg_values_supported",
        "dpop_signing_alg_values_supported",
    ] {
        assert_eq!(metadata[field], json!(["Ed25519", "EdDSA"]), "{field}");
    }
}
