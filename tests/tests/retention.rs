//! A bank prunes old access records through its operator surface: only with the admin token, never inside the shortest retention period.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Utc;
use consentnet_tests::{Consortium, admin_token, http_post_json, http_post_json_with};
use serde_json::json;

const START: Duration = Duration::from_secs(30);

#[test]
fn a_bank_prunes_old_records_with_its_token_and_never_recent_ones() {
    let consortium = Consortium::create(&[("bank", "Retention Bank")]);
    let bank = consortium.start(0, START);
    let url = format!("{}/v1/admin/records/prune", bank.operator_url);
    let token = admin_token(&consortium.nodes[0]);
    let headers = [("x-admin-token", token.as_str())];
    let month_ago = (Utc::now() - chrono::Duration::days(30)).to_rfc3339();

    let (status, body) = http_post_json(&url, &json!({ "before": month_ago }));
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("admin_token_invalid")),
        "{body}"
    );
    let (status, body) = http_post_json_with(
        &url,
        &headers,
        &json!({ "before": Utc::now().to_rfc3339() }),
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("retention_too_short")),
        "{body}"
    );
    let (status, body) = http_post_json_with(&url, &headers, &json!({ "before": "yesterday" }));
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("malformed_json")),
        "{body}"
    );
    let (status, body) = http_post_json_with(&url, &headers, &json!({ "before": month_ago }));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["pruned_batches"], 0);
}
