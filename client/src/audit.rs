//! The regulator's audit from the command line: offline over a stopped node's log folder (run by `consentnet-node audit`, which draws the progress bar) or online through a node, and the report for people as a self-contained HTML page with charts.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use consentnet_identity::util::escape_html as esc;
use serde_json::Value;

/// When the offline audit draws its progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// When stderr is a terminal.
    Auto,
    /// Always (e.g. into a log file).
    Always,
    /// Never.
    Never,
}

/// The `consentnet-node` program beside this one, or on the `PATH`.
fn node_program() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("consentnet-node")))
        .filter(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from("consentnet-node"))
}

/// Audits the log in `data_dir` (a stopped node's RocksDB folder) against `genesis`
/// (default: `genesis.json` beside the folder) by running `consentnet-node audit`: the
/// client itself never opens a log store. Its progress bar and errors go to this
/// program's stderr. Returns the report as JSON with a `summary` line.
pub fn offline(
    data_dir: &Path,
    genesis: Option<&Path>,
    propagation_bound_ms: u64,
    progress: Progress,
) -> anyhow::Result<Value> {
    let program = node_program();
    let mut command = Command::new(&program);
    command
        .args(["audit", "--json", "--data-dir"])
        .arg(data_dir)
        .arg("--propagation-bound-ms")
        .arg(propagation_bound_ms.to_string())
        .arg("--progress")
        .arg(match progress {
            Progress::Auto => "auto",
            Progress::Always => "always",
            Progress::Never => "never",
        })
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(genesis) = genesis {
        command.arg("--genesis").arg(genesis);
    }
    let output = command
        .output()
        .with_context(|| format!("running {} for the offline audit", program.display()))?;
    // 0: clean, 4: findings; both print the report.
    if !matches!(output.status.code(), Some(0 | 4)) {
        bail!("the offline audit did not run ({})", output.status);
    }
    serde_json::from_slice(&output.stdout).context("reading the offline audit's report")
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn list(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

/// A bar chart as inline SVG: one group per label, one bar per series, each bar with a
/// tooltip; the numbers are also in a table for screen readers and copying.
fn bar_chart(title: &str, labels: &[String], series: &[(&str, &str, Vec<u64>)]) -> String {
    const HEIGHT: u64 = 160;
    let max = series
        .iter()
        .flat_map(|(_, _, values)| values.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let bar = 14u64;
    let group = bar * series.len() as u64 + 10;
    let width = (group * labels.len() as u64).max(200) + 40;
    let mut svg = format!(
        "<svg role=\"img\" aria-label=\"{title}\" viewBox=\"0 0 {width} {h}\" width=\"{width}\" height=\"{h}\">",
        title = esc(title),
        h = HEIGHT + 50
    );
    svg.push_str(&format!(
        "<line x1=\"30\" y1=\"{HEIGHT}\" x2=\"{width}\" y2=\"{HEIGHT}\" stroke=\"#888\"/><text x=\"0\" y=\"12\" font-size=\"10\">{max}</text><text x=\"0\" y=\"{HEIGHT}\" font-size=\"10\">0</text>"
    ));
    for (i, label) in labels.iter().enumerate() {
        let x0 = 34 + group * i as u64;
        for (s, (name, colour, values)) in series.iter().enumerate() {
            let value = values.get(i).copied().unwrap_or(0);
            let h = value * HEIGHT / max;
            svg.push_str(&format!(
                "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" fill=\"{colour}\"><title>{label}: {value} {name}</title></rect>",
                x = x0 + bar * s as u64,
                y = HEIGHT - h,
                w = bar - 2,
                label = esc(label),
                name = esc(name),
            ));
        }
        svg.push_str(&format!(
            "<text x=\"{x0}\" y=\"{y}\" font-size=\"9\" transform=\"rotate(30 {x0} {y})\">{}</text>",
            esc(label),
            y = HEIGHT + 12
        ));
    }
    svg.push_str("</svg>");
    let legend: String = series
        .iter()
        .map(|(name, colour, _)| {
            format!(
                "<span class=\"key\"><span class=\"swatch\" style=\"background:{colour}\"></span>{}</span>",
                esc(name)
            )
        })
        .collect();
    let header: String = series
        .iter()
        .map(|(name, _, _)| format!("<th scope=\"col\">{}</th>", esc(name)))
        .collect();
    let rows: String = labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let cells: String = series
                .iter()
                .map(|(_, _, values)| format!("<td>{}</td>", values.get(i).copied().unwrap_or(0)))
                .collect();
            format!("<tr><th scope=\"row\">{}</th>{cells}</tr>", esc(label))
        })
        .collect();
    format!(
        "<figure><figcaption>{title}</figcaption>{svg}<div>{legend}</div><details><summary>The numbers</summary><table><tr><th></th>{header}</tr>{rows}</table></details></figure>",
        title = esc(title)
    )
}

fn table(title: &str, columns: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    if rows.is_empty() {
        return format!("<h2>{}</h2><p class=\"ok\">{}</p>", esc(title), esc(empty));
    }
    let header: String = columns
        .iter()
        .map(|c| format!("<th scope=\"col\">{}</th>", esc(c)))
        .collect();
    let body: String = rows
        .iter()
        .map(|row| {
            let cells: String = row.iter().map(|c| format!("<td>{}</td>", esc(c))).collect();
            format!("<tr>{cells}</tr>")
        })
        .collect();
    format!(
        "<h2>{}</h2><table><tr>{header}</tr>{body}</table>",
        esc(title)
    )
}

/// The audit report as one self-contained HTML page: verdict, counts, consents granted
/// and revoked over time, accesses per TSP app, and every finding.
pub fn html(report: &Value, source: &str) -> String {
    let clean = report["clean"] == true;
    let verdict = if clean { "CLEAN" } else { "FINDINGS" };
    let counts = [
        ("entries", "Log entries"),
        ("feeds", "Feeds (members writing)"),
        ("consents", "Consents granted"),
        ("revoked", "Consents revoked"),
        (
            "committed_records",
            "Accesses banks committed to on the log",
        ),
        (
            "accesses",
            "Access records checked against their commitments",
        ),
        (
            "batches_unavailable",
            "Committed batches whose records were not at hand",
        ),
    ];
    let mut facts: String = counts
        .iter()
        .map(|(key, label)| {
            format!(
                "<tr><th scope=\"row\">{label}</th><td>{}</td></tr>",
                esc(&text(&report[*key]))
            )
        })
        .collect();
    for (key, label) in [
        ("problems", "Bad entries"),
        ("equivocations", "Equivocations"),
        ("violations", "Violations"),
    ] {
        facts.push_str(&format!(
            "<tr><th scope=\"row\">{label}</th><td>{}</td></tr>",
            list(&report[key]).len()
        ));
    }
    facts.push_str(&format!(
        "<tr><th scope=\"row\">State digest</th><td><code>{}</code></td></tr>",
        esc(&text(&report["state_digest"]))
    ));
    let timeline = list(&report["timeline"]);
    let days: Vec<String> = timeline.iter().map(|d| text(&d["day"])).collect();
    let granted: Vec<u64> = timeline
        .iter()
        .map(|d| d["granted"].as_u64().unwrap_or(0))
        .collect();
    let revoked: Vec<u64> = timeline
        .iter()
        .map(|d| d["revoked"].as_u64().unwrap_or(0))
        .collect();
    let apps = list(&report["accesses_by_app"]);
    let app_labels: Vec<String> = apps
        .iter()
        .map(|a| match a["name"].as_str() {
            Some(name) => name.to_owned(),
            None => text(&a["app"]).chars().take(24).collect::<String>() + "…",
        })
        .collect();
    let served: Vec<u64> = apps
        .iter()
        .map(|a| a["served"].as_u64().unwrap_or(0))
        .collect();
    let refused: Vec<u64> = apps
        .iter()
        .map(|a| a["refused"].as_u64().unwrap_or(0))
        .collect();
    let (violations, problems, equivocations) = finding_rows(report);
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>consentnet audit: {verdict}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #1a1a1a; }}
.verdict {{ display: inline-block; padding: .2rem .8rem; border-radius: .3rem; color: #fff; background: {badge}; font-weight: bold; }}
table {{ border-collapse: collapse; margin: .5rem 0 1.5rem; }}
th, td {{ border: 1px solid #ccc; padding: .25rem .6rem; text-align: left; vertical-align: top; }}
figure {{ margin: 1rem 0 2rem; overflow-x: auto; }} figcaption {{ font-weight: bold; margin-bottom: .5rem; }}
.key {{ margin-right: 1rem; }} .swatch {{ display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem; }}
.ok {{ color: #116329; }} code {{ word-break: break-all; }}
</style></head>
<body>
<h1>consentnet audit <span class="verdict">{verdict}</span></h1>
<p>{summary}</p>
<p>Source: {source}. Generated {generated}.</p>
<h2>Counts</h2><table>{facts}</table>
<h2>Consents over time</h2>
{timeline_chart}
<h2>Accesses per TSP app</h2>
{apps_chart}
{violations}
{problems}
{equivocations}
</body></html>
"#,
        badge = if clean { "#116329" } else { "#b42318" },
        summary = esc(&text(&report["summary"])),
        source = esc(source),
        generated = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        timeline_chart = if days.is_empty() {
            "<p>No consents on the log.</p>".to_owned()
        } else {
            bar_chart(
                "Consents granted and revoked per day",
                &days,
                &[
                    ("granted", "#2f6fb3", granted),
                    ("revoked", "#c2410c", revoked),
                ],
            )
        },
        apps_chart = if app_labels.is_empty() {
            "<p>No accesses recorded.</p>".to_owned()
        } else {
            bar_chart(
                "Calls served and refused per app",
                &app_labels,
                &[
                    ("served", "#2f6fb3", served),
                    ("refused", "#6b7280", refused),
                ],
            )
        },
        violations = table(
            "Violations: accesses served under consents that were not usable",
            &["bank", "consent", "operation", "served at", "why"],
            &violations,
            "None: every access was served under a usable consent.",
        ),
        problems = table(
            "Bad entries",
            &["origin", "seq", "problem"],
            &problems,
            "None: every entry and event is vouched for by its signer's key, and every hash link and event checks out.",
        ),
        equivocations = table(
            "Equivocations: members that forked their feed",
            &["origin", "seq"],
            &equivocations,
            "None.",
        ),
    )
}

/// Rows of a table, each a list of cells.
type Rows = Vec<Vec<String>>;

/// The rows of the three findings tables: violations, bad entries, equivocations.
fn finding_rows(report: &Value) -> (Rows, Rows, Rows) {
    let violations: Vec<Vec<String>> = list(&report["violations"])
        .iter()
        .map(|v| {
            let at = v["time"]
                .as_i64()
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default();
            vec![
                text(&v["bank"]),
                text(&v["consent_id"]),
                text(&v["operation"]),
                at,
                text(&v["reason"]),
            ]
        })
        .collect();
    let problems: Vec<Vec<String>> = list(&report["problems"])
        .iter()
        .map(|p| vec![text(&p["origin"]), text(&p["seq"]), text(&p["problem"])])
        .collect();
    let equivocations: Vec<Vec<String>> = list(&report["equivocations"])
        .iter()
        .map(|e| vec![text(&e["origin"]), text(&e["seq"])])
        .collect();
    (violations, problems, equivocations)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn the_html_report_escapes_what_the_log_holds_and_shows_each_finding() {
        let report = json!({
            "clean": false,
            "summary": "FINDINGS: <script>",
            "entries": 3, "feeds": 2, "consents": 1, "revoked": 1, "accesses": 1,
            "problems": [{"origin": "did:key:z<b>", "seq": 2, "problem": "signature does not verify"}],
            "equivocations": [],
            "violations": [{"bank": "did:key:zBank", "consent_id": "ab", "operation": "balances", "time": 0, "reason": "served 5000 ms after the revocation"}],
            "timeline": [{"day": "2026-11-24", "granted": 1, "revoked": 1}],
            "accesses_by_app": [{"app": "did:key:zApp", "name": "Lendwise <Credit>", "served": 1, "refused": 0}],
            "state_digest": "00"
        });
        let page = html(&report, "node http://x");
        assert!(!page.contains("<script>"));
        assert!(page.contains("FINDINGS: &lt;script&gt;"));
        assert!(page.contains("Lendwise &lt;Credit&gt;"));
        assert!(page.contains("served 5000 ms after the revocation"));
        assert!(page.contains("did:key:z&lt;b&gt;"));
        assert!(page.contains("<svg"), "charts are inline SVG");
        assert!(page.contains(">FINDINGS</span>"));
    }
}
