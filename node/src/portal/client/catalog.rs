//! The portal's home, the app catalog with each bank's decision, the browser-key link page and the wallet script it loads.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use consentnet_consent_chain::Role;
use consentnet_consent_chain::event::AppAction;
use consentnet_identity::Did;

use super::{member_name, nav};
use crate::portal::html::{layout, page, plain_words};
use crate::portal::state::Portal;
use consentnet_identity::util::escape_html;

pub(super) async fn home(State(portal): State<Portal>, headers: HeaderMap) -> Response {
    let session = portal.web.session(&headers, Utc::now());
    let name = member_name(&portal, portal.app.service.did());
    let body = format!(
        r#"{nav}
<h1>{name}</h1>
<p>See which apps this network lists and what each bank allows them, and manage the
consents you have given: what each one allows, every access made under it, and revoke it
at once.</p>
<ul>
<li><a href="/portal/catalog">The app catalog</a></li>
<li><a href="/portal/consents">My consents</a> (sign in with your wallet)</li>
</ul>"#,
        nav = nav(session.as_ref().map(|s| &s.did)),
        name = escape_html(&name),
    );
    page(&layout("consentnet", &body, None))
}

/// `GET /portal/catalog`: every app, what it asks for, and what each bank decided.
pub(super) async fn catalog(State(portal): State<Portal>, headers: HeaderMap) -> Response {
    let session = portal.web.session(&headers, Utc::now());
    let genesis = portal.app.service.genesis();
    let banks: Vec<_> = genesis
        .members
        .iter()
        .filter(|m| m.role == Role::Bank)
        .collect();
    let rows = portal.app.service.read(|replica| {
        let state = replica.state();
        // The latest version of each app, with each bank's decision on that version.
        let mut latest: HashMap<Did, consentnet_consent_chain::event::AppManifest> = HashMap::new();
        if let Some(first) = banks.first() {
            for entry in state.catalog(&first.did) {
                let keep = latest
                    .get(&entry.manifest.app)
                    .is_none_or(|m| m.version < entry.manifest.version);
                if keep {
                    latest.insert(entry.manifest.app.clone(), entry.manifest);
                }
            }
        }
        let mut apps: Vec<_> = latest.into_values().collect();
        apps.sort_by(|a, b| a.name.cmp(&b.name));
        apps.into_iter()
            .map(|manifest| {
                let asks: Vec<String> = manifest
                    .requested_permissions
                    .iter()
                    .map(|p| escape_html(plain_words(*p)))
                    .collect();
                let decisions: Vec<String> = banks
                    .iter()
                    .map(|bank| {
                        let verdict =
                            match state.app_action(&bank.did, &manifest.app, &manifest.version) {
                                Some(AppAction::Approve { permissions, .. }) => format!(
                                    "allows it to {}",
                                    permissions
                                        .iter()
                                        .map(|p| escape_html(plain_words(*p)))
                                        .collect::<Vec<_>>()
                                        .join("; ")
                                ),
                                Some(AppAction::Suspend) => "has suspended it".to_owned(),
                                None => "has not approved it".to_owned(),
                            };
                        format!("<li>{} {verdict}</li>", escape_html(&bank.name))
                    })
                    .collect();
                // A mini-app this bank approves opens in its portal.
                let here = portal.app.service.did();
                let open = match (&manifest.mini_app, state.app_action(here, &manifest.app, &manifest.version)) {
                    (Some(_), Some(AppAction::Approve { .. })) => format!(
                        r#"<p><a class="open-mini-app" href="/portal/apps/{}/{}">Open it in this bank's portal</a></p>"#,
                        escape_html(manifest.app.as_str()),
                        escape_html(&manifest.version),
                    ),
                    _ => String::new(),
                };
                format!(
                    r#"<div class="box app"><h2>{name} <small>{version} · {platform:?}</small></h2>
<p>{description}</p>
<p>Asks to: {asks}.</p>
<ul>{decisions}</ul>{open}</div>"#,
                    name = escape_html(&manifest.name),
                    version = escape_html(&manifest.version),
                    platform = manifest.platform,
                    description = escape_html(&manifest.description),
                    asks = asks.join("; "),
                    decisions = decisions.concat(),
                )
            })
            .collect::<Vec<_>>()
    });
    let list = if rows.is_empty() {
        "<p>No apps are published yet.</p>".to_owned()
    } else {
        rows.concat()
    };
    let body = format!(
        "{nav}\n<h1>Apps</h1>\n<div id=\"catalog\">{list}</div>",
        nav = nav(session.as_ref().map(|s| &s.did))
    );
    page(&layout("Apps", &body, None))
}

/// The browser wallet's script (WebCrypto key in IndexedDB; see `node/assets/wallet.js`).
const WALLET_JS: &str = include_str!("../../../assets/wallet.js");

pub(super) async fn wallet_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        WALLET_JS,
    )
        .into_response()
}

/// `GET /portal/link`: link the key kept in this browser to your accounts at this bank,
/// with the one-time code from the bank's own channel (as `consentnet wallet link` does).
pub(super) async fn link_page(State(portal): State<Portal>, headers: HeaderMap) -> Response {
    let session = portal.web.session(&headers, Utc::now());
    let body = format!(
        r#"{nav}
<h1>Use this browser as your wallet</h1>
<p>This browser can keep a key of its own: made here, kept in this browser only, and
impossible to copy out, even by this page. To use it with your accounts at
{bank}, link its DID with the one-time code your bank gave you (in its app or online
banking).</p>
<div id="browser-key" data-action="link" data-node="{node}">
<p><label for="link-code">Link code</label>
<input id="link-code" name="link-code" autocomplete="off" required>
<button type="button" id="browser-key-button">Link this browser's key</button></p>
<p><small>This browser's DID: <code id="browser-did">none yet</code></small></p>
<p id="browser-key-status" role="status"></p>
</div>
<script src="/portal/wallet.js"></script>"#,
        nav = nav(session.as_ref().map(|s| &s.did)),
        bank = escape_html(&member_name(&portal, portal.app.service.did())),
        node = escape_html(portal.app.service.did().as_str()),
    );
    page(&layout("Link this browser", &body, None))
}
