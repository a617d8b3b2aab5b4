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

/// Serves `app` on a free loopback port from a background runtime; returns its base URL.
pub fn serve(app: axum::Router) -> String {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a free port");
            sender
                .send(listener.local_addr().expect("its address"))
                .expect("the test waits");
            axum::serve(listener, app).await.expect("serving");
        });
    });
    format!("http://{}", receiver.recv().expect("the server started"))
}
