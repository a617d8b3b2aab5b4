//! The seeds' applications as mini-apps: Lendwise's credit check, Budget Buddy's investment advice and Cardwise's card recommendation, shipped with the demo and published with their bundles so that each bank's portal runs them.

use anyhow::Context;
use consentnet_consent_chain::miniapp::MiniApp;
use serde_json::Value;

use crate::bundle;
use crate::node_api::NodeClient;

/// The stylesheet the three share.
const STYLE: &[u8] = include_bytes!("../../miniapps/style.css");

/// A mini-app the demo publishes: its folder's page and script.
pub struct Bundle {
    page: &'static [u8],
    script: &'static [u8],
}

/// Lendwise's credit check: income, spending and what a loan applicant can afford.
pub const CREDIT_CHECK: Bundle = Bundle {
    page: include_bytes!("../../miniapps/credit-check/index.html"),
    script: include_bytes!("../../miniapps/credit-check/app.js"),
};
/// Budget Buddy's investment advice on balances above a cash buffer.
pub const INVEST: Bundle = Bundle {
    page: include_bytes!("../../miniapps/invest/index.html"),
    script: include_bytes!("../../miniapps/invest/app.js"),
};
/// Cardwise's card recommendation from spending categories.
pub const CARDS: Bundle = Bundle {
    page: include_bytes!("../../miniapps/cards/index.html"),
    script: include_bytes!("../../miniapps/cards/app.js"),
};

impl Bundle {
    /// Its files, in path order, with the SDK and the shared stylesheet.
    pub fn files(&self) -> Vec<(String, Vec<u8>)> {
        vec![
            ("app.js".to_owned(), self.script.to_vec()),
            (bundle::SDK_PATH.to_owned(), bundle::SDK.to_vec()),
            ("index.html".to_owned(), self.page.to_vec()),
            ("style.css".to_owned(), STYLE.to_vec()),
        ]
    }

    /// Uploads its files to `member`'s operator surface; answers the manifest's section.
    pub(super) fn upload(&self, member: &NodeClient) -> anyhow::Result<MiniApp> {
        let files = self.files();
        bundle::upload(member, None, &files).context("uploading a mini-app's files")?;
        Ok(bundle::mini_app(&files, Vec::new()))
    }
}

/// Where each bank's portal runs each app: `(bank name, app name, URL)`.
pub(super) fn portal_urls(nodes: &Value, apps: &[(String, String)]) -> Vec<String> {
    nodes
        .as_array()
        .into_iter()
        .flatten()
        .filter(|node| node["role"] == "bank")
        .flat_map(|node| {
            let url = node["http"].as_str().unwrap_or_default().to_owned();
            let bank = node["name"].as_str().unwrap_or_default().to_owned();
            apps.iter().map(move |(name, did)| {
                format!(
                    "  {bank}, {name}: {url}/portal/apps/{}/1.0.0",
                    consentnet_identity::util::percent_encode(did, b":")
                )
            })
        })
        .collect()
}
