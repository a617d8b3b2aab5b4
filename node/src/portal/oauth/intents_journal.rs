//! The journal of OBIE consent resources: a line per change (the resource as it stands), synced before the change is answered, replayed at start with the last line of each resource winning and what is gone dropped, then rewritten whole so it never outgrows the resources kept.

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
}

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
        let temporary = path.with_extension("jsonl.tmp");
        {
            let mut out = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(0o600)
                .open(&temporary)
                .map_err(error)?;
            for intent in intents.values() {
                writeln!(out, "{}", serde_json::to_string(intent).unwrap_or_default())
                    .map_err(error)?;
            }
            out.sync_all().map_err(error)?;
        }
        std::fs::rename(&temporary, path).map_err(error)?;
        let file = open_append(path).map_err(error)?;
        Ok((
            Self {
                path: path.to_owned(),
                file,
            },
            intents,
        ))
    }

    /// Appends `intent` as it stands now, synced.
    pub fn write(&mut self, intent: &Intent) -> Result<(), JournalError> {
        let line = serde_json::to_string(intent).unwrap_or_default();
        writeln!(self.file, "{line}")
            .and_then(|()| self.file.sync_data())
            .map_err(|source| JournalError {
                path: self.path.clone(),
                source,
            })
    }
}
