//! The journal of OBIE consent resources: a line per change (the resource as it stands), synced before the change is answered, replayed at start with the last line of each resource winning and what is gone dropped, and rewritten whole (at start, and when it holds far more lines than resources) so it never outgrows the resources kept.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::intents::{Intent, Intents};

/// Why the journal could not be used.
#[derive(Debug, thiserror::Error)]
#[error("consent resources journal {path}: {source}")]
pub struct JournalError {
    /// The file.
    pub path: PathBuf,
    /// What failed.
    pub source: std::io::Error,
}

/// The open journal.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    /// Lines in the file.
    lines: usize,
}

/// Lines beyond twice the resources kept (plus this) start a rewrite.
const SLACK_LINES: usize = 1024;

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

impl Journal {
    /// Replays `path` (the resources still kept at `now`), rewrites it with them, and
    /// opens it for appending. A torn last line is dropped; any other bad line stops
    /// the start rather than losing resources.
    pub fn open(path: &Path, now: DateTime<Utc>) -> Result<(Self, Intents), JournalError> {
        let error = |source| JournalError {
            path: path.to_owned(),
            source,
        };
        let mut intents = Intents::new();
        if path.exists() {
            let lines: Vec<String> = BufReader::new(File::open(path).map_err(error)?)
                .lines()
                .collect::<Result<_, _>>()
                .map_err(error)?;
            let last = lines.len().saturating_sub(1);
            for (number, line) in lines.iter().enumerate() {
                match serde_json::from_str::<Intent>(line) {
                    Ok(intent) => {
                        intents.insert(intent.id.clone(), intent);
                    }
                    Err(_) if number == last => {}
                    Err(e) => {
                        return Err(error(std::io::Error::other(format!(
                            "line {}: {e}",
                            number + 1
                        ))));
                    }
                }
            }
        }
        intents.retain(|_, intent| !intent.gone(now));
        rewrite(path, &intents).map_err(error)?;
        let file = open_append(path).map_err(error)?;
        let lines = intents.len();
        Ok((
            Self {
                path: path.to_owned(),
                file,
                lines,
            },
            intents,
        ))
    }

    /// Rewrites the file with `live` when it holds far more lines than that.
    pub fn compact(&mut self, live: &Intents) -> Result<(), JournalError> {
        if self.lines <= live.len().saturating_mul(2).saturating_add(SLACK_LINES) {
            return Ok(());
        }
        let error = |source| JournalError {
            path: self.path.clone(),
            source,
        };
        rewrite(&self.path, live).map_err(error)?;
        self.file = open_append(&self.path).map_err(error)?;
        self.lines = live.len();
        Ok(())
    }

    /// Appends `intent` as it stands now, synced.
    pub fn write(&mut self, intent: &Intent) -> Result<(), JournalError> {
        let line = serde_json::to_string(intent).unwrap_or_default();
        writeln!(self.file, "{line}")
            .and_then(|()| self.file.sync_data())
            .map_err(|source| JournalError {
                path: self.path.clone(),
                source,
            })?;
        self.lines += 1;
        Ok(())
    }
}

/// Writes `live` to `path` whole: a synced temporary file renamed over it.
fn rewrite(path: &Path, live: &Intents) -> std::io::Result<()> {
    let temporary = path.with_extension("jsonl.tmp");
    {
        let mut out = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        for intent in live.values() {
            writeln!(out, "{}", serde_json::to_string(intent).unwrap_or_default())?;
        }
        out.sync_all()?;
    }
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::portal::oauth::intents::Stage;

    fn intent(id: &str, now: DateTime<Utc>) -> Intent {
        Intent {
            id: id.into(),
            app: consentnet_identity::KeyPair::generate().did().clone(),
            permissions: [consentnet_identity::Permission::ReadAccountsBasic].into(),
            expiration: None,
            created: now,
            updated: now,
            stage: Stage::Awaiting,
            initiation: None,
        }
    }

    #[test]
    fn changes_replay_and_the_file_stays_near_the_resources_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consent-resources.jsonl");
        let now = Utc::now();
        let (mut journal, _) = Journal::open(&path, now).unwrap();
        let mut live = Intents::new();
        let mut one = intent("aac-1", now);
        live.insert(one.id.clone(), one.clone());
        for _ in 0..3 * SLACK_LINES {
            one.updated = now;
            journal.write(&one).unwrap();
            journal.compact(&live).unwrap();
        }
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(lines <= SLACK_LINES + 3, "{lines} lines for one resource");
        one.stage = Stage::Rejected;
        journal.write(&one).unwrap();
        drop(journal);
        let (_, replayed) = Journal::open(&path, now).unwrap();
        assert_eq!(
            replayed["aac-1"].stage,
            Stage::Rejected,
            "the last line wins"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    }
}
