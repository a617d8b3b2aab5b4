//! A consent's entry in its bank's revocation status list (W3C Bitstring Status List v1.0): the list's URL and the index, as terms hold it and as the credential's `credentialStatus` carries it.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::consent::ConsentError;

/// Entries in one bank's revocation status list (W3C Bitstring Status List v1.0 asks for
/// at least 131,072; eight times that leaves room for a bank's lifetime of consents).
pub const STATUS_LIST_ENTRIES: u32 = 1_048_576;

/// A consent's entry in its bank's revocation status list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StatusEntry {
    /// The status list credential's URL (`statusListCredential`).
    pub list: String,
    /// The consent's bit (`statusListIndex`), below [`STATUS_LIST_ENTRIES`].
    pub index: u32,
}

impl StatusEntry {
    /// An entry at a random index of `list` (the wallet allocates it, so nobody can tell
    /// from an index when or for whom it was made).
    pub fn random(list: &str) -> Self {
        let bytes: [u8; 4] = crate::util::random_bytes();
        Self {
            list: list.to_owned(),
            index: u32::from_le_bytes(bytes) % STATUS_LIST_ENTRIES,
        }
    }

    /// Checks the entry: an `https://` list (or `http://` for development) and an index
    /// inside the list.
    pub fn check(&self) -> Result<(), ConsentError> {
        let url_ok = (self.list.starts_with("https://") || self.list.starts_with("http://"))
            && self.list.len() <= 512
            && !self.list.contains(['#', ' ', '"', '<', '>']);
        if !url_ok {
            return Err(ConsentError::Malformed(
                "credentialStatus.statusListCredential: an http(s) URL of at most 512 bytes, without a fragment".into(),
            ));
        }
        crate::ld_input::check_text(&self.list).map_err(|why| {
            ConsentError::Malformed(format!("credentialStatus.statusListCredential: {why}"))
        })?;
        if self.index >= STATUS_LIST_ENTRIES {
            return Err(ConsentError::Malformed(format!(
                "credentialStatus.statusListIndex: below {STATUS_LIST_ENTRIES}"
            )));
        }
        Ok(())
    }
}

impl StatusEntry {
    /// The entry as the credential's `credentialStatus`.
    pub fn to_json(&self) -> Value {
        json!({
            "id": status_id(self),
            "type": "BitstringStatusListEntry",
            "statusPurpose": "revocation",
            "statusListIndex": self.index.to_string(),
            "statusListCredential": self.list,
        })
    }
}

/// A Bitstring Status List entry on the wire.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct WireStatus {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    status_purpose: String,
    status_list_index: String,
    status_list_credential: String,
}

impl WireStatus {
    /// The entry, checked: a revocation entry whose id is its list and index.
    pub(crate) fn entry(self) -> Result<StatusEntry, ConsentError> {
        let bad = |why: &str| ConsentError::Malformed(format!("credentialStatus: {why}"));
        if self.kind != "BitstringStatusListEntry" || self.status_purpose != "revocation" {
            return Err(bad(
                "a BitstringStatusListEntry with statusPurpose revocation",
            ));
        }
        let index: u32 = self
            .status_list_index
            .parse()
            .ok()
            .filter(|_| self.status_list_index.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| bad("statusListIndex is a decimal string"))?;
        let entry = StatusEntry {
            list: self.status_list_credential,
            index,
        };
        if self.id != status_id(&entry) {
            return Err(bad("id is the list's URL and the index, as list#index"));
        }
        entry.check()?;
        Ok(entry)
    }
}

/// The id of a status entry: the list's URL with the index as fragment.
fn status_id(entry: &StatusEntry) -> String {
    format!("{}#{}", entry.list, entry.index)
}
