//! The portal's operator pages: the bank's page (sign in with the admin token; approve app versions with per-app permissions, or suspend them, signed by the bank's key) and the regulator's page (log health per feed, consents and revocations over time, accesses per app, the audit's violations).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, Duration, Utc};
use consentnet_consent_chain::Role;
use consentnet_consent_chain::audit::{AuditConfig, AuditReport};
use consentnet_consent_chain::event::{AppAction, AppDecision};
use consentnet_identity::{Did, Permission};

use crate::http::append;
use crate::oauth::{Params, random_token};
use crate::portal::{
    Portal, cookie, escape, layout, lock, page, plain_words, refusal_page, see_other, set_cookie,
};

/// How long a bank admin's page session lasts, in seconds.
pub const ADMIN_SESSION_SECS: i64 = 1_800;
/// Admin sessions open at most.
const MAX_ADMIN_SESSIONS: usize = 100;
/// How long the regulator's page reuses an audit before running a new one.
pub const AUDIT_REUSE: StdDuration = StdDuration::from_secs(30);
const ADMIN_COOKIE: &str = "consentnet_admin";

#[derive(Debug, Clone)]
struct AdminSession {
    csrf: String,
    expires: DateTime<Utc>,
}

/// Admin sessions and the regulator page's latest audit, in memory.
#[derive(Debug, Default)]
pub struct Console {
    admins: Mutex<HashMap<String, AdminSession>>,
    audit: tokio::sync::Mutex<Option<(Instant, Arc<AuditReport>)>>,
}

/// The operator pages' routes.
pub fn routes(portal: Portal) -> Router {
    Router::new()
        .route("/portal/bank", get(bank_page))
        .route("/portal/bank/sign-in", post(bank_sign_in))
        .route("/portal/bank/decisions", post(bank_decide))
        .route("/portal/regulator", get(regulator_page))
        .with_state(portal)
}

fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    refusal_page(
        status,
        "Not done",
        code,
        message,
        "<p><a href=\"/portal/bank\">Back</a></p>",
    )
}

impl Console {
    fn admin(&self, headers: &HeaderMap, now: DateTime<Utc>) -> Option<AdminSession> {
        let token = cookie(headers, ADMIN_COOKIE)?;
        let mut admins = lock(&self.admins);
        admins.retain(|_, s| s.expires > now);
        admins.get(token).cloned()
    }
}

/// `GET /portal/bank`: the admin sign-in form, or the bank's app versions with forms to
/// approve (choosing permissions) or suspend each.
async fn bank_page(State(portal): State<Portal>, headers: HeaderMap) -> Response {
    let Some(admin_config) = portal.app.admin.clone() else {
        return refusal(
            StatusCode::NOT_FOUND,
            "not_a_bank",
            "only a bank's node has this page",
        );
    };
    let Some(session) = portal.console.admin(&headers, Utc::now()) else {
        let note = if admin_config.token.is_some() {
            ""
        } else {
            "<p class=\"error\">The admin token is not configured (adapter.admin_token_file): sign-in is disabled.</p>"
        };
        let body = format!(
            r#"<h1>Bank administration</h1>{note}
<form method="post" action="/portal/bank/sign-in">
<label for="token">Admin token (the node's <code>admin-token</code> file)</label><br>
<input type="password" id="token" name="token" autocomplete="off" required>
<button type="submit" id="admin-sign-in">Sign in</button>
</form>"#
        );
        return page(&layout("Bank administration", &body, None));
    };
    let bank = portal.app.service.did().clone();
    let rows = portal.app.service.read(|replica| {
        let mut entries = replica.state().catalog(&bank);
        entries.sort_by(|a, b| {
            (&a.manifest.name, &a.manifest.version).cmp(&(&b.manifest.name, &b.manifest.version))
        });
        entries
            .into_iter()
            .map(|entry| {
                let manifest = &entry.manifest;
                let (state_text, allowed): (String, BTreeSet<Permission>) =
                    match entry.decision.map(|d| d.action) {
                        Some(AppAction::Approve { permissions }) => {
                            ("approved".into(), permissions)
                        }
                        Some(AppAction::Suspend) => ("suspended".into(), BTreeSet::new()),
                        None => ("waiting for a decision".into(), BTreeSet::new()),
                    };
                let boxes: String = manifest
                    .requested_permissions
                    .iter()
                    .map(|p| {
                        let checked = if allowed.is_empty() || allowed.contains(p) {
                            " checked"
                        } else {
                            ""
                        };
                        format!(
                            r#"<label><input type="checkbox" name="perm_{code}"{checked}> {words} <small>({code})</small></label><br>"#,
                            code = p.as_str(),
                            words = escape(plain_words(*p)),
                        )
                    })
                    .collect();
                format!(
                    r#"<div class="box version" data-app="{app}" data-version="{version}" data-state="{state_text}">
<h2>{name} {version} <small>{platform:?}</small>: <span class="state">{state_text}</span></h2>
<p>{description}</p>
<form method="post" action="/portal/bank/decisions">
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="app" value="{app}">
<input type="hidden" name="version" value="{version}">
<p>Allow it to:</p>
{boxes}
<button type="submit" name="action" value="approve" class="approve">Approve</button>
<button type="submit" name="action" value="suspend" class="suspend">Suspend</button>
</form></div>"#,
                    app = escape(manifest.app.as_str()),
                    version = escape(&manifest.version),
                    name = escape(&manifest.name),
                    platform = manifest.platform,
                    description = escape(&manifest.description),
                    csrf = escape(&session.csrf),
                )
            })
            .collect::<Vec<_>>()
    });
    let list = if rows.is_empty() {
        "<p>No app has published a version yet.</p>".to_owned()
    } else {
        rows.concat()
    };
    let body = format!("<h1>App versions</h1>\n<div id=\"versions\">{list}</div>");
    page(&layout("Bank administration", &body, None))
}

/// `POST /portal/bank/sign-in`: the admin token, once, for a half-hour page session.
async fn bank_sign_in(
    State(portal): State<Portal>,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(admin) = portal.app.admin.clone() else {
        return refusal(
            StatusCode::NOT_FOUND,
            "not_a_bank",
            "only a bank's node has this page",
        );
    };
    let params = bytes
        .ok()
        .and_then(|b| Params::parse(&b).ok())
        .unwrap_or_default();
    if admin.token.is_none() || !admin.allows(params.get("token")) {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "admin_token_invalid",
            "that is not this node's admin token",
        );
    }
    let now = Utc::now();
    let token = random_token();
    {
        let mut admins = lock(&portal.console.admins);
        admins.retain(|_, s| s.expires > now);
        if admins.len() >= MAX_ADMIN_SESSIONS {
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_sessions",
                "too many admin sessions are open; try again later",
            );
        }
        admins.insert(
            token.clone(),
            AdminSession {
                csrf: random_token(),
                expires: now + Duration::seconds(ADMIN_SESSION_SECS),
            },
        );
    }
    let mut response = see_other("/portal/bank");
    set_cookie(
        &mut response,
        &portal.server.issuer,
        ADMIN_COOKIE,
        &token,
        "/portal/bank",
        "Strict",
        ADMIN_SESSION_SECS,
    );
    response
}

/// `POST /portal/bank/decisions`: approve (with the ticked permissions) or suspend one
/// app version; the decision is signed by the bank's key and written to the log.
async fn bank_decide(
    State(portal): State<Portal>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> Response {
    let now = Utc::now();
    let Some(session) = portal.console.admin(&headers, now) else {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "signed_out",
            "sign in with the admin token first",
        );
    };
    let Some(params) = bytes.ok().and_then(|b| Params::parse(&b).ok()) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "malformed_form",
            "the form could not be read",
        );
    };
    if params.get("csrf") != Some(session.csrf.as_str()) {
        return refusal(
            StatusCode::FORBIDDEN,
            "csrf_mismatch",
            "the form did not come from this bank's page",
        );
    }
    let Some(app) = params.get("app").and_then(|a| Did::parse(a).ok()) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "invalid_app",
            "app must be an app's DID",
        );
    };
    let version = params.get("version").unwrap_or_default().to_owned();
    let bank = portal.app.service.did().clone();
    let requested = portal.app.service.read(|replica| {
        replica
            .state()
            .catalog(&bank)
            .into_iter()
            .find(|e| e.manifest.app == app && e.manifest.version == version)
            .map(|e| e.manifest.requested_permissions)
    });
    let Some(requested) = requested else {
        return refusal(
            StatusCode::NOT_FOUND,
            "unknown_version",
            "that app version is not in the catalog",
        );
    };
    let action = match params.get("action") {
        Some("approve") => {
            let permissions: BTreeSet<Permission> = requested
                .iter()
                .filter(|p| params.get(&format!("perm_{}", p.as_str())).is_some())
                .copied()
                .collect();
            if permissions.is_empty() {
                return refusal(
                    StatusCode::BAD_REQUEST,
                    "no_permissions",
                    "tick at least one permission to approve, or suspend instead",
                );
            }
            AppAction::Approve { permissions }
        }
        Some("suspend") => AppAction::Suspend,
        _ => {
            return refusal(
                StatusCode::BAD_REQUEST,
                "invalid_action",
                "action is approve or suspend",
            );
        }
    };
    let decision = AppDecision {
        bank,
        app,
        version,
        action,
        time: u64::try_from(now.timestamp_millis()).unwrap_or(0),
    };
    let event = portal.app.service.bank_decision(decision);
    match append(&portal.app, event).await {
        Ok(_) => see_other("/portal/bank"),
        Err(error) => refusal(StatusCode::UNPROCESSABLE_ENTITY, error.code, &error.message),
    }
}

/// The audit for the regulator's page: reused for [`AUDIT_REUSE`], since an audit holds
/// the log while it runs.
async fn audit(portal: &Portal) -> Result<Arc<AuditReport>, String> {
    let mut cached = portal.console.audit.lock().await;
    if let Some((at, report)) = cached.as_ref()
        && at.elapsed() < AUDIT_REUSE
    {
        return Ok(report.clone());
    }
    let service = portal.app.service.clone();
    let report = tokio::task::spawn_blocking(move || service.audit(AuditConfig::default()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let report = Arc::new(report);
    *cached = Some((Instant::now(), report.clone()));
    Ok(report)
}

/// `GET /portal/regulator`.
async fn regulator_page(State(portal): State<Portal>) -> Response {
    let report = match audit(&portal).await {
        Ok(report) => report,
        Err(error) => {
            return refusal(StatusCode::INTERNAL_SERVER_ERROR, "audit_failed", &error);
        }
    };
    let service = &portal.app.service;
    let frontier = service.frontier();
    let lag = service.lag();
    let members = &service.genesis().members;
    let equivocators: BTreeSet<String> = report
        .equivocations
        .iter()
        .map(|e| e.origin.clone())
        .collect();
    let feeds: String = members
        .iter()
        .map(|member| {
            let head = frontier.get(&member.did).map(|h| h.seq).unwrap_or(0);
            let behind = lag.get(&member.did).copied().unwrap_or(0);
            let health = if equivocators.contains(member.did.as_str()) {
                "<strong class=\"error\">equivocated</strong>"
            } else if behind > 0 {
                "catching up"
            } else {
                "ok"
            };
            format!(
                "<tr><td>{name}</td><td>{role}</td><td>{head}</td><td>{behind}</td><td>{health}</td></tr>",
                name = escape(&member.name),
                role = match member.role {
                    Role::Bank => "bank",
                    Role::Tsp => "TSP",
                    Role::Regulator => "regulator",
                },
            )
        })
        .collect();
    let apps: String = report
        .accesses_by_app
        .iter()
        .map(|a| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(a.name.as_deref().unwrap_or(&a.app)),
                a.served,
                a.refused
            )
        })
        .collect();
    let violations = if report.violations.is_empty() {
        "<p id=\"violations\">None found.</p>".to_owned()
    } else {
        let rows: String = report
            .violations
            .iter()
            .map(|v| {
                format!(
                    "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                    escape(&v.bank),
                    v.consent_id,
                    escape(&v.operation),
                    escape(&v.reason)
                )
            })
            .collect();
        format!(
            "<table id=\"violations\"><tr><th>bank</th><th>consent</th><th>operation</th><th>why</th></tr>{rows}</table>"
        )
    };
    let body = format!(
        r#"<h1>Regulator: the whole log</h1>
<p id="summary">{entries} entries in {feeds_count} feeds; {consents} consents, {revoked} revoked; {accesses} accesses; audit <strong id="audit-verdict">{verdict}</strong>.</p>
<h2>Log health, per feed as this node holds it</h2>
<table id="feeds"><tr><th>member</th><th>role</th><th>entries</th><th>behind</th><th>health</th></tr>{feeds}</table>
<h2>Consents granted and revoked, per day</h2>
{chart}
<h2>Accesses per app</h2>
<table id="accesses"><tr><th>app</th><th>served</th><th>refused</th></tr>{apps}</table>
<h2>Violations</h2>
{violations}
<p><small>The audit is rerun at most every {reuse} s.</small></p>"#,
        entries = report.entries,
        feeds_count = report.feeds,
        consents = report.consents,
        revoked = report.revoked,
        accesses = report.accesses,
        verdict = if report.clean {
            "clean"
        } else {
            "found problems"
        },
        chart = timeline_chart(&report),
        reuse = AUDIT_REUSE.as_secs(),
    );
    page(&layout("Regulator", &body, None))
}

/// Grants (above the axis) and revocations (below) per day, as inline SVG.
fn timeline_chart(report: &AuditReport) -> String {
    let days = &report.timeline;
    if days.is_empty() {
        return "<p>No consents yet.</p>".to_owned();
    }
    let peak = days
        .iter()
        .map(|d| d.granted.max(d.revoked))
        .max()
        .unwrap_or(1)
        .max(1);
    let (width, half) = (600.0_f64, 80.0_f64);
    let step = width / days.len() as f64;
    // Narrow bars even for a few days, so one day does not fill the chart.
    let bar = (step * 0.8).clamp(1.0, 24.0);
    let bars: String = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let x = i as f64 * step;
            let up = half * d.granted as f64 / peak as f64;
            let down = half * d.revoked as f64 / peak as f64;
            format!(
                r##"<rect x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{up:.1}" fill="#2a6f97"><title>{day}: {g} granted</title></rect><rect x="{x:.1}" y="{half:.1}" width="{bar:.1}" height="{down:.1}" fill="#c44536"><title>{day}: {r} revoked</title></rect>"##,
                half - up,
                day = escape(&d.day),
                g = d.granted,
                r = d.revoked,
            )
        })
        .collect();
    format!(
        r##"<svg id="timeline" role="img" aria-label="consents granted (blue, up) and revoked (red, down) per day, {first} to {last}" viewBox="0 0 {width} {height}" width="100%">{bars}<line x1="0" y1="{half}" x2="{width}" y2="{half}" stroke="#555"/></svg>
    <p><small>{first} to {last}; blue up: granted, red down: revoked; the tallest bar is {peak}.</small></p>"##,
        first = escape(&days[0].day),
        last = escape(&days[days.len() - 1].day),
        height = 2.0 * half,
    )
}
