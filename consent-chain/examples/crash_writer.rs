//! The writer process for the crash test: appends entries to a RocksDB store one durable write at a time and prints `ack SEQ` after each, until killed.
//!
//! Usage: `crash_writer DIR SECRET_KEY_HEX`.

use std::io::Write as _;

use consentnet_consent_chain::{Entry, Event, FeedHead, LogStore, RocksStore};
use consentnet_identity::KeyPair;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(secret)) = (args.next(), args.next()) else {
        return Err("usage: crash_writer DIR SECRET_KEY_HEX".into());
    };
    let secret: Vec<u8> = (0..secret.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&secret[i..i + 2], 16))
        .collect::<Result<_, _>>()?;
    let key = KeyPair::from_secret_bytes(&secret)?;
    let mut store = RocksStore::open(std::path::Path::new(&dir))?;
    let mut head: Option<FeedHead> = store.heads()?.get(key.did()).copied();
    let mut out = std::io::stdout().lock();
    for index in 0..1_000_000u64 {
        let frontier = [(
            key.did().clone(),
            FeedHead {
                seq: index,
                hash: Default::default(),
            },
        )]
        .into();
        let entry = Entry::sign(&key, head, index, Event::Checkpoint { frontier });
        store.append(std::slice::from_ref(&entry))?;
        head = Some(entry.head());
        // Acknowledge only after append returned: the write is synced.
        writeln!(out, "ack {}", entry.seq)?;
        out.flush()?;
    }
    Ok(())
}
