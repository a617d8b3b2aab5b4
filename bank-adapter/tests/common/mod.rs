//! Helpers shared by the adapter's integration tests.

#![allow(dead_code)]

pub mod openapi;

use std::sync::Arc;

use chrono::Utc;
use consentnet_bank_adapter::links::{LinkRequest, Links};
use consentnet_identity::{Did, KeyPair};

/// A bank's links file in its own temp folder, with `client` linked as the holder of
/// `accounts` through the real code-and-proof flow.
pub struct Linked {
    pub links: Arc<Links>,
    _dir: tempfile::TempDir,
}

pub fn linked(bank: &Did, client: &KeyPair, accounts: &[String]) -> Linked {
    let dir = tempfile::tempdir().unwrap();
    let links = Links::open(&dir.path().join("links.jsonl")).unwrap();
    let code = links
        .issue_code("customer-1", accounts, Utc::now())
        .unwrap();
    links
        .redeem(
            bank,
            &LinkRequest::sign(client, bank, &code.code),
            Utc::now(),
        )
        .unwrap();
    Linked {
        links: Arc::new(links),
        _dir: dir,
    }
}
