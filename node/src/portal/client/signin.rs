//! Signing in to the portal with a DID: the node's challenge, the wallet's signed answer (CLI or browser key), and signing out.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use consentnet_identity::signin::SignIn;
use serde_json::json;

use super::{nav, set_cookie};
use crate::api::{ApiCode, ApiError};
use crate::portal::html::{cookie, layout, page, refusal_page, see_other};
use crate::portal::sessions::{
    CHALLENGE_COOKIE, CHALLENGE_LIFETIME_SECS, Challenge, MAX_WEB_SESSIONS, SESSION_COOKIE,
    SESSION_LIFETIME_SECS, WebSession,
};
use crate::portal::state::Portal;
use consentnet_identity::util::escape_html;
use consentnet_identity::util::lock;
use consentnet_identity::util::random_hex;

/// `GET /portal/sign-in`: a challenge for the wallet to sign; once signed, the browser
/// that asked for it is signed in and sent to its consents.
pub(super) async fn sign_in_page(State(portal): State<Portal>, headers: HeaderMap) -> Response {
    let now = Utc::now();
    let web = &portal.web;
    let issuer = portal.server.issuer.clone();
    // The browser's challenge, if it has one still waiting or answered.
    let held = cookie(&headers, CHALLENGE_COOKIE).and_then(|value| {
        let (id, browser) = value.split_once('.')?;
        let challenges = lock(&web.challenges);
        let challenge = challenges.get(id)?;
        (challenge.browser == browser
            && now <= challenge.created + Duration::seconds(CHALLENGE_LIFETIME_SECS))
        .then(|| (id.to_owned(), challenge.did.clone()))
    });
    match held {
        Some((id, Some(did))) => {
            lock(&web.challenges).remove(&id);
            let token = random_hex(16);
            {
                let mut sessions = lock(&web.sessions);
                sessions.retain(|_, s| s.expires > now);
                if sessions.len() >= MAX_WEB_SESSIONS {
                    return busy();
                }
                sessions.insert(
                    token.clone(),
                    WebSession {
                        did,
                        csrf: random_hex(16),
                        expires: now + Duration::seconds(SESSION_LIFETIME_SECS),
                    },
                );
            }
            let mut response = see_other("/portal/consents");
            set_cookie(
                &mut response,
                &issuer,
                SESSION_COOKIE,
                &token,
                SESSION_LIFETIME_SECS,
            );
            set_cookie(&mut response, &issuer, CHALLENGE_COOKIE, "", 0);
            response
        }
        Some((id, None)) => page(&sign_in_html(&portal, &id)),
        None => {
            let (id, browser) = (random_hex(16), random_hex(16));
            {
                let mut challenges = lock(&web.challenges);
                challenges
                    .retain(|_, c| now <= c.created + Duration::seconds(CHALLENGE_LIFETIME_SECS));
                if challenges.len() >= MAX_WEB_SESSIONS {
                    return busy();
                }
                challenges.insert(
                    id.clone(),
                    Challenge {
                        created: now,
                        browser: browser.clone(),
                        did: None,
                    },
                );
            }
            let mut response = page(&sign_in_html(&portal, &id));
            set_cookie(
                &mut response,
                &issuer,
                CHALLENGE_COOKIE,
                &format!("{id}.{browser}"),
                CHALLENGE_LIFETIME_SECS,
            );
            response
        }
    }
}

fn busy() -> Response {
    refusal_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Busy",
        "too_many_sessions",
        "Too many sign-ins at once; try again in a minute.",
        "",
    )
}

fn sign_in_html(portal: &Portal, challenge: &str) -> String {
    let body = format!(
        r#"{nav}
<h1>Sign in with your wallet</h1>
<p>Your wallet proves it holds your DID by signing this one-time challenge. No password,
and nothing secret leaves the wallet. Run:</p>
<p><code id="sign-in-command">consentnet wallet sign-in {challenge} --node {issuer}</code></p>
<p>This page moves on by itself once you have. The challenge works for 5 minutes, in
this browser only.</p>
<div id="browser-key" data-action="sign-in" data-challenge="{challenge}" data-node="{node}" data-refresh="2">
<p>Or sign in with the key kept in this browser:
<button type="button" id="browser-key-button">Sign in with this browser's key</button></p>
<p><small>This browser's DID: <code id="browser-did">none yet</code></small></p>
<p id="browser-key-status" role="status"></p>
</div>
<p><small>Challenge <code id="challenge">{challenge}</code></small></p>
<script src="/portal/wallet.js"></script>"#,
        nav = nav(None),
        challenge = escape_html(challenge),
        issuer = escape_html(&portal.server.issuer),
        node = escape_html(portal.app.service.did().as_str()),
    );
    layout("Sign in", &body, Some(2))
}

/// `POST /portal/sign-in`: the wallet's signed answer to a challenge.
pub(super) async fn sign_in_answer(
    State(portal): State<Portal>,
    bytes: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = bytes.map_err(|r| ApiError::new(ApiCode::UnreadableBody, r.body_text()))?;
    let answer: SignIn = consentnet_identity::strict::from_slice(&bytes)
        .map_err(|e| ApiError::new(ApiCode::MalformedJson, e.to_string()))?;
    let did = answer.verify(portal.app.service.did()).ok_or_else(|| {
        ApiError::new(
            ApiCode::SignInBadSignature,
            "the answer is not signed by its DID for this node",
        )
    })?;
    let now = Utc::now();
    let mut challenges = lock(&portal.web.challenges);
    let challenge = challenges
        .get_mut(&answer.challenge)
        .filter(|c| now <= c.created + Duration::seconds(CHALLENGE_LIFETIME_SECS))
        .ok_or_else(|| {
            ApiError::new(
                ApiCode::SignInUnknownChallenge,
                "no sign-in is waiting with that challenge (it may have expired)",
            )
        })?;
    if challenge.did.is_some() {
        return Err(ApiError::new(
            ApiCode::SignInAlreadyAnswered,
            "that challenge was already answered",
        ));
    }
    challenge.did = Some(did.clone());
    Ok((StatusCode::OK, Json(json!({ "signed_in": did }))).into_response())
}

pub(super) async fn sign_out(State(portal): State<Portal>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        lock(&portal.web.sessions).remove(token);
    }
    let mut response = see_other("/portal");
    set_cookie(&mut response, &portal.server.issuer, SESSION_COOKIE, "", 0);
    response
}
