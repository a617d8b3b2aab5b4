//! The demo's outsider check: the revoked consent, verified through the W3C VC-API as anyone outside the network would, at its bank (from the bank's revocation status list) and at the regulator's node (from its log).

use anyhow::{anyhow, ensure};
use serde_json::{Value, json};

use super::processes::wait_for;
use super::{Journey, Member, REGULATOR};
use crate::commands::{self, CONSENT_LABEL_PREFIX};
use crate::node_api::NodeClient;
use crate::vcapi;

/// The Berlin Bank, whose consent the client revoked.
const BERLIN: usize = 1;

/// The kind of `node`'s first error on `credential` ("none" when it verified).
fn first_error(node: &NodeClient, credential: &Value) -> anyhow::Result<String> {
    let verification = vcapi::verify(node, credential, (None, None))?;
    Ok(vcapi::first_error(&verification)
        .unwrap_or("none")
        .to_owned())
}

/// Verifies the revoked consent (`consent`, held in the client's wallet) at its bank and
/// at the regulator's node: both say it is revoked.
pub(super) fn outsider(
    j: &Journey,
    members: &[Member],
    client_wallet: &commands::WalletFile,
    consent: &str,
) -> anyhow::Result<Value> {
    let wallet = client_wallet.open()?;
    let label = format!("{CONSENT_LABEL_PREFIX}{consent}");
    let credential = commands::held_consents(&wallet)
        .find(|held| held.label == label)
        .map(|held| held.credential.clone())
        .ok_or_else(|| anyhow!("the wallet does not hold consent {consent}"))?;
    let list = credential["credentialStatus"]["statusListCredential"]
        .as_str()
        .unwrap_or("no status list")
        .to_owned();
    let answers = || -> anyhow::Result<(String, String)> {
        Ok((
            first_error(&members[BERLIN].node, &credential)?,
            first_error(&members[REGULATOR].node, &credential)?,
        ))
    };
    // The bank's list takes the revocation within its log watch interval.
    let revoked = wait_for("the revocation in the Berlin Bank's status list", || {
        answers()
            .ok()
            .filter(|(bank, regulator)| bank == "revoked" && regulator == "revoked")
    });
    let (at_bank, at_regulator) = match revoked {
        Ok(both) => both,
        Err(_) => answers()?,
    };
    j.say(&format!(
        "   the consent names the status list {list}; the Berlin Bank's VC-API says {at_bank} (from that list), the regulator's says {at_regulator} (from its log)"
    ));
    ensure!(
        at_bank == "revoked" && at_regulator == "revoked",
        "the revoked consent verified as {at_bank} at its bank and {at_regulator} at the regulator's node"
    );
    Ok(json!({ "status_list": list, "at_bank": at_bank, "at_regulator": at_regulator }))
}
