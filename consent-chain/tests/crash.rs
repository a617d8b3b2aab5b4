//! Crash safety with real RocksDB: a child process appending entries is killed with SIGKILL mid-stream; on reopen every acknowledged entry is there and the chain verifies.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use consentnet_consent_chain::audit::{AuditConfig, NoRecords, audit};
use consentnet_consent_chain::{Genesis, LogStore, Member, RocksStore, Role};
use consentnet_identity::KeyPair;

fn genesis(key: &KeyPair) -> Genesis {
    Genesis {
        network: "crash".into(),
        members: vec![Member {
            did: key.did().clone(),
            role: Role::Regulator,
            peer_id: "peer".into(),
            name: "writer".into(),
        }],
    }
}

/// The writer example, built next to this test by `cargo test`.
fn writer() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("crash_writer");
    assert!(
        path.is_file(),
        "{} is missing: `cargo test` builds it",
        path.display()
    );
    path
}

#[test]
fn acknowledged_entries_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate();
    let secret: String = key
        .secret_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut child = Command::new(writer())
        .arg(dir.path())
        .arg(secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut acknowledged = 0u64;
    while acknowledged < 300 {
        assert!(
            Instant::now() < deadline,
            "the child acknowledged only {acknowledged} entries in 60 s"
        );
        let line = lines.next().expect("the child is writing").unwrap();
        if let Some(seq) = line.strip_prefix("ack ") {
            acknowledged = seq.parse().unwrap();
        }
    }
    // Kill mid-stream: the child is between appends or inside one.
    Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    // Anything acknowledged after we stopped reading is also durable; count it too.
    for line in lines.map_while(Result::ok) {
        if let Some(seq) = line.strip_prefix("ack ") {
            acknowledged = seq.parse().unwrap();
        }
    }

    let store = RocksStore::open(dir.path()).unwrap();
    let head = store.heads().unwrap()[key.did()];
    assert!(
        head.seq >= acknowledged,
        "acknowledged {acknowledged}, recovered {}",
        head.seq
    );
    assert_eq!(
        store
            .range(key.did(), 1, head.seq, usize::MAX)
            .unwrap()
            .len() as u64,
        head.seq
    );
    let report = audit(&store, &genesis(&key), AuditConfig::default(), &NoRecords).unwrap();
    assert!(report.clean, "{}", report.summary());
    assert_eq!(report.entries, head.seq);
}
