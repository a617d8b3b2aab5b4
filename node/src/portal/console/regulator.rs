//! The regulator's page: log health per feed, consents and revocations over time, accesses per app, and the audit's violations, from an audit reused for a short while.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use consentnet_consent_chain::Role;
use consentnet_consent_chain::audit::{AuditConfig, AuditReport};

use super::refusal;
use crate::portal::html::{layout, page};
use crate::portal::sessions::AUDIT_REUSE;
use crate::portal::state::Portal;
use consentnet_identity::util::escape_html;

/// The audit for the regulator's page: reused for [`AUDIT_REUSE`], since an audit reads
/// the whole log.
pub(super) async fn audit(portal: &Portal) -> Result<Arc<AuditReport>, String> {
    let mut cached = portal.console.audit.lock().await;
    if let Some((at, report)) = cached.as_ref()
        && at.elapsed() < AUDIT_REUSE
    {
        return Ok(report.clone());
    }
    let app = portal.app.clone();
    let report = tokio::task::spawn_blocking(move || app.audit(AuditConfig::default()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let report = Arc::new(report);
    *cached = Some((Instant::now(), report.clone()));
    Ok(report)
}

/// `GET /portal/regulator`.
pub(super) async fn regulator_page(State(portal): State<Portal>) -> Response {
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
                name = escape_html(&member.name),
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
                escape_html(a.name.as_deref().unwrap_or(&a.app)),
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
                    escape_html(&v.bank),
                    v.consent_id,
                    escape_html(&v.operation),
                    escape_html(&v.reason)
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
                day = escape_html(&d.day),
                g = d.granted,
                r = d.revoked,
            )
        })
        .collect();
    format!(
        r##"<svg id="timeline" role="img" aria-label="consents granted (blue, up) and revoked (red, down) per day, {first} to {last}" viewBox="0 0 {width} {height}" width="100%">{bars}<line x1="0" y1="{half}" x2="{width}" y2="{half}" stroke="#555"/></svg>
    <p><small>{first} to {last}; blue up: granted, red down: revoked; the tallest bar is {peak}.</small></p>"##,
        first = escape_html(&days[0].day),
        last = escape_html(&days[days.len() - 1].day),
        height = 2.0 * half,
    )
}
