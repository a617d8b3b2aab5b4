//! Proof of possession: a DPoP-style JWS signed by the app key verifies for the request it names and nothing else.

// Test helpers outside #[test] functions unwrap too: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use chrono::{Duration, Utc};
use consentnet_identity::pop::{MAX_POP_BYTES, sign_claims};
use consentnet_identity::{
    KeyPair, PopClaims, PopError, PopRequest, check_pop, proof_signer, sign_pop, verify_many,
    verify_pop,
};

const URL: &str = "https://bank.example/open-banking/v4.0/aisp/accounts";
const TOKEN: &str = "5d41402abc4b2a76b9719d911017c592ae0d1f0b5c4a1e3b2c6d7e8f9a0b1c2d";
const WINDOW: i64 = 60;

fn request() -> PopRequest<'static> {
    PopRequest {
        method: "GET",
        url: URL,
        access_token: TOKEN,
    }
}

#[test]
fn a_fresh_proof_verifies_and_returns_its_claims() {
    let app = KeyPair::generate();
    let now = Utc::now();
    let proof = sign_pop(&app, request(), now);
    let claims = verify_pop(&proof, app.did(), request(), now, WINDOW).unwrap();
    assert_eq!(claims.htm, "GET");
    assert_eq!(claims.htu, URL);
    assert_eq!(claims.iat, now.timestamp());
    assert!(!claims.jti.is_empty());
    let again = verify_pop(
        &sign_pop(&app, request(), now),
        app.did(),
        request(),
        now,
        WINDOW,
    )
    .unwrap();
    assert_ne!(claims.jti, again.jti, "every proof gets its own jti");
}

#[test]
fn the_query_string_is_not_part_of_the_binding() {
    let app = KeyPair::generate();
    let now = Utc::now();
    let with_query = PopRequest {
        url: "https://bank.example/open-banking/v4.0/aisp/accounts?page=2",
        ..request()
    };
    let proof = sign_pop(&app, with_query, now);
    verify_pop(&proof, app.did(), request(), now, WINDOW).unwrap();
}

#[test]
fn another_key_is_refused() {
    let app = KeyPair::generate();
    let thief = KeyPair::generate();
    let now = Utc::now();
    let proof = sign_pop(&thief, request(), now);
    assert!(matches!(
        verify_pop(&proof, app.did(), request(), now, WINDOW),
        Err(PopError::WrongKey { .. })
    ));
}

#[test]
fn a_forged_signature_is_refused() {
    let app = KeyPair::generate();
    let thief = KeyPair::generate();
    let now = Utc::now();
    // The thief's proof with the header naming the app's key.
    let theirs = sign_pop(&thief, request(), now);
    let ours = sign_pop(&app, request(), now);
    let header = ours.split('.').next().unwrap();
    let mut parts = theirs.splitn(2, '.');
    parts.next();
    let forged = format!("{header}.{}", parts.next().unwrap());
    assert_eq!(
        verify_pop(&forged, app.did(), request(), now, WINDOW).unwrap_err(),
        PopError::BadSignature
    );
}

#[test]
fn the_claims_check_hands_back_the_signature_to_verify_apart() {
    let app = KeyPair::generate();
    let thief = KeyPair::generate();
    let now = Utc::now();
    let good = sign_pop(&app, request(), now);
    let (claims, check) = check_pop(&good, app.did(), request(), now, WINDOW).unwrap();
    assert_eq!(
        claims,
        verify_pop(&good, app.did(), request(), now, WINDOW).unwrap()
    );
    // The same forgery as above passes the claims check; its signature does not verify.
    let header = good.split('.').next().unwrap();
    let theirs = sign_pop(&thief, request(), now);
    let forged = format!("{header}.{}", theirs.split_once('.').unwrap().1);
    let (_, forged_check) = check_pop(&forged, app.did(), request(), now, WINDOW).unwrap();
    assert_eq!(verify_many(&[check, forged_check]), vec![true, false]);
    // Claims defects are found without the signature.
    let late = now + Duration::seconds(WINDOW + 1);
    assert!(matches!(
        check_pop(&good, app.did(), request(), late, WINDOW),
        Err(PopError::Stale { .. })
    ));
}

#[test]
fn method_url_and_token_must_match() {
    let app = KeyPair::generate();
    let now = Utc::now();
    let proof = sign_pop(&app, request(), now);
    let post = PopRequest {
        method: "POST",
        ..request()
    };
    assert!(matches!(
        verify_pop(&proof, app.did(), post, now, WINDOW),
        Err(PopError::MethodMismatch { .. })
    ));
    let other_url = PopRequest {
        url: "https://bank.example/open-banking/v4.0/aisp/accounts/acc-1/balances",
        ..request()
    };
    assert!(matches!(
        verify_pop(&proof, app.did(), other_url, now, WINDOW),
        Err(PopError::UrlMismatch { .. })
    ));
    let other_token = PopRequest {
        access_token: "another",
        ..request()
    };
    assert_eq!(
        verify_pop(&proof, app.did(), other_token, now, WINDOW).unwrap_err(),
        PopError::TokenMismatch
    );
}

#[test]
fn stale_and_future_proofs_are_refused() {
    let app = KeyPair::generate();
    let now = Utc::now();
    let old = sign_pop(&app, request(), now - Duration::seconds(WINDOW + 1));
    assert!(matches!(
        verify_pop(&old, app.did(), request(), now, WINDOW),
        Err(PopError::Stale { .. })
    ));
    let future = sign_pop(&app, request(), now + Duration::seconds(WINDOW + 1));
    assert!(matches!(
        verify_pop(&future, app.did(), request(), now, WINDOW),
        Err(PopError::Stale { .. })
    ));
    let edge = sign_pop(&app, request(), now - Duration::seconds(WINDOW));
    verify_pop(&edge, app.did(), request(), now, WINDOW).unwrap();
}

#[test]
fn proofs_issued_at_the_ends_of_time_are_stale_not_a_panic() {
    let app = KeyPair::generate();
    let now = Utc::now();
    let fresh = verify_pop(
        &sign_pop(&app, request(), now),
        app.did(),
        request(),
        now,
        WINDOW,
    )
    .unwrap();
    for iat in [i64::MIN, i64::MIN + 1, i64::MAX, -1] {
        let claims = PopClaims {
            iat,
            jti: format!("{}-{iat}", fresh.jti),
            ..fresh.clone()
        };
        let proof = sign_claims(&app, &claims);
        assert!(
            matches!(
                verify_pop(&proof, app.did(), request(), now, WINDOW),
                Err(PopError::Stale { iat: found, .. }) if found == iat
            ),
            "iat {iat}"
        );
    }
}

#[test]
fn malformed_and_oversized_proofs_are_refused() {
    let app = KeyPair::generate();
    let now = Utc::now();
    for bad in ["", "a.b", "a.b.c.d", "!!!.???.***"] {
        assert!(
            matches!(
                verify_pop(bad, app.did(), request(), now, WINDOW),
                Err(PopError::Malformed(_))
            ),
            "{bad:?}"
        );
    }
    let big = "a".repeat(MAX_POP_BYTES + 1);
    assert_eq!(
        verify_pop(&big, app.did(), request(), now, WINDOW).unwrap_err(),
        PopError::TooLarge(MAX_POP_BYTES + 1)
    );
}

#[test]
fn the_signer_a_proof_names_is_read_before_it_is_verified_and_a_forgery_still_fails() {
    let app = KeyPair::generate();
    let now = Utc::now();
    let proof = sign_pop(&app, request(), now);
    assert_eq!(&proof_signer(&proof).unwrap(), app.did());
    // A proof that names one key but is signed by another names that key, and fails
    // when verified against it.
    let forger = KeyPair::generate();
    let forged = sign_pop(&forger, request(), now);
    let (_, rest) = forged.split_once('.').unwrap();
    let (claims, signature) = rest.split_once('.').unwrap();
    let (app_head, _) = proof.split_once('.').unwrap();
    let spliced = format!("{app_head}.{claims}.{signature}");
    assert_eq!(&proof_signer(&spliced).unwrap(), app.did());
    assert_eq!(
        verify_pop(&spliced, app.did(), request(), now, WINDOW),
        Err(PopError::BadSignature)
    );
    assert!(matches!(
        proof_signer("not.a.proof"),
        Err(PopError::Malformed(_))
    ));
}

#[test]
fn a_proof_whose_claims_name_a_field_twice_is_refused() {
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let app = KeyPair::generate();
    let now = Utc::now();
    let header = format!(
        r#"{{"typ":"dpop+jwt","alg":"EdDSA","kid":"{}"}}"#,
        app.did().verification_method()
    );
    // One reader would see POST, another GET.
    let claims = format!(
        r#"{{"jti":"x","htm":"POST","htm":"GET","htu":"{URL}","iat":{}}}"#,
        now.timestamp()
    );
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let proof = format!("{input}.{}", b64(&app.sign(input.as_bytes())));
    let request = PopRequest {
        method: "GET",
        url: URL,
        access_token: "",
    };
    let error = verify_pop(&proof, app.did(), request, now, WINDOW).unwrap_err();
    assert!(
        matches!(&error, PopError::Malformed(m) if m.contains("duplicate field")),
        "{error:?}"
    );
}

#[test]
fn a_proof_naming_its_algorithm_ed25519_as_rfc_9864_does_verifies_and_others_are_refused() {
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let app = KeyPair::generate();
    let now = Utc::now();
    // The proof as a current library signs it: the same claims under `alg: Ed25519`.
    let standard = sign_pop(&app, request(), now);
    let (_, claims) = standard.split_once('.').unwrap();
    let (claims, _) = claims.split_once('.').unwrap();
    let resign = |alg: &str| {
        let header = serde_json::json!({
            "typ": "dpop+jwt",
            "alg": alg,
            "kid": app.did().verification_method(),
        });
        let input = format!("{}.{claims}", b64(header.to_string().as_bytes()));
        format!("{input}.{}", b64(&app.sign(input.as_bytes())))
    };
    verify_pop(&resign("Ed25519"), app.did(), request(), now, WINDOW).unwrap();
    verify_pop(&resign("EdDSA"), app.did(), request(), now, WINDOW).unwrap();
    for alg in ["ES256", "none", "ed25519"] {
        assert_eq!(
            verify_pop(&resign(alg), app.did(), request(), now, WINDOW),
            Err(PopError::WrongHeader),
            "{alg}"
        );
    }
}
