//! The demo's last step: the regulator's audit of the whole log and of every bank's access records, once it has fetched them, with its HTML report.

use std::path::Path;

use anyhow::ensure;
use serde_json::{Value, json};

use super::processes::wait_for;
use super::{Journey, Member, REGULATOR};

/// The regulator audits the whole log, once it has fetched every batch of access records
/// the banks committed to.
pub(super) fn audit(j: &Journey, members: &[Member], work: &Path) -> anyhow::Result<Value> {
    let report = wait_for("the regulator to hold every committed access batch", || {
        let report = members[REGULATOR]
            .operator
            .get_with("/v1/audit", &[])
            .ok()?;
        (report["batches_unavailable"] == 0).then_some(report)
    })?;
    j.say(&format!(
        "   {}",
        report["summary"].as_str().unwrap_or("no summary")
    ));
    let page = work.join("audit.html");
    std::fs::write(&page, crate::audit::html(&report, "the regulator's node"))?;
    if j.options.keep {
        j.say(&format!(
            "   the report for people, with charts: {}",
            page.display()
        ));
    }
    ensure!(report["clean"] == true, "the audit found problems");
    Ok(json!({
        "clean": true,
        "entries": report["entries"],
        "consents": report["consents"],
        "revoked": report["revoked"],
        // The banks' access records stay with them; the log carries their commitments,
        // and the regulator fetched and checked every batch.
        "accesses_committed": report["committed_records"],
        "accesses": report["accesses"],
        "violations": report["violations"].as_array().map_or(0, Vec::len),
        "report": page,
    }))
}
