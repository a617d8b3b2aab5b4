//! The offline audit of a stopped node's log folder: refuses a folder that holds no log, draws a progress bar on stderr, and returns the report with its summary line.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use consentnet_consent_chain::audit::{AuditConfig, AuditReport, NoRecords, audit_with_progress};
use consentnet_consent_chain::genesis::GenesisError;
use consentnet_consent_chain::store::records::{BankRecords, RecordStore};
use consentnet_consent_chain::{Genesis, RocksStore, StoreError};

/// Why an offline audit could not run.
#[derive(Debug, thiserror::Error)]
pub enum OfflineAuditError {
    /// The folder holds no RocksDB log (RocksDB would create an empty one there).
    #[error("{0} holds no consentnet log (a node's log folder is `data` inside its folder)")]
    NoLog(PathBuf),
    /// The genesis file could not be read.
    #[error("reading the genesis {} (give --genesis): {source}", path.display())]
    Genesis {
        /// The genesis file.
        path: PathBuf,
        /// What went wrong.
        source: GenesisError,
    },
    /// The log could not be opened, e.g. because a running node holds it.
    #[error(
        "opening the log in {} (a running node holds it: stop it, or audit through the node): {source}",
        path.display()
    )]
    Open {
        /// The log folder.
        path: PathBuf,
        /// What went wrong.
        source: StoreError,
    },
    /// Reading the log failed midway.
    #[error("reading the log: {0}")]
    Read(#[from] StoreError),
}

/// When to draw the progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Progress {
    /// When stderr is a terminal.
    Auto,
    /// Always (e.g. into a log file).
    Always,
    /// Never.
    Never,
}

/// Audits the log in `data_dir` (a stopped node's RocksDB folder) against `genesis`
/// (default: `genesis.json` beside the folder, where the demo and `init` put it).
pub fn offline(
    data_dir: &Path,
    genesis: Option<&Path>,
    records: Option<&Path>,
    config: AuditConfig,
    progress: Progress,
) -> Result<AuditReport, OfflineAuditError> {
    if !data_dir.join("CURRENT").is_file() {
        return Err(OfflineAuditError::NoLog(data_dir.to_path_buf()));
    }
    let genesis_path: PathBuf = match genesis {
        Some(path) => path.to_path_buf(),
        None => data_dir
            .parent()
            .map(|p| p.join("genesis.json"))
            .unwrap_or_else(|| PathBuf::from("genesis.json")),
    };
    let genesis = Genesis::load(&genesis_path).map_err(|source| OfflineAuditError::Genesis {
        path: genesis_path.clone(),
        source,
    })?;
    let store = RocksStore::open(data_dir).map_err(|source| OfflineAuditError::Open {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let draw = match progress {
        Progress::Always => true,
        Progress::Never => false,
        Progress::Auto => std::io::stderr().is_terminal(),
    };
    let mut bar = Bar::default();
    let mut draw_bar = |done, total| {
        if draw {
            bar.draw(done, total);
        }
    };
    // A bank's folder holds its own access records beside the log (default `records`
    // next to `data`), a regulator's its copies of every bank's, one store per bank: their
    // batches are checked against the commitments. Batches not at hand count as
    // unavailable.
    let records_dir = records
        .map(Path::to_path_buf)
        .or_else(|| data_dir.parent().map(|p| p.join("records")))
        .filter(|dir| dir.is_dir());
    let report = match records_dir {
        Some(dir) if !dir.join("CURRENT").is_file() => {
            let fetched = crate::core::Fetched::new(dir);
            audit_with_progress(&store, &genesis, config, &fetched, &mut draw_bar)?
        }
        Some(dir) => {
            let records = RecordStore::open(&dir).map_err(|source| OfflineAuditError::Open {
                path: dir.clone(),
                source,
            })?;
            match records.owner()? {
                Some(bank) => {
                    let own = BankRecords {
                        bank: &bank,
                        store: &records,
                    };
                    audit_with_progress(&store, &genesis, config, &own, &mut draw_bar)?
                }
                None => audit_with_progress(&store, &genesis, config, &NoRecords, &mut draw_bar)?,
            }
        }
        None => audit_with_progress(&store, &genesis, config, &NoRecords, &mut draw_bar)?,
    };
    if draw {
        eprintln!();
    }
    Ok(report)
}

/// A one-line progress bar on stderr, redrawn at most once per percent.
#[derive(Debug, Default)]
struct Bar {
    shown: Option<u64>,
}

impl Bar {
    fn draw(&mut self, done: u64, total: u64) {
        let percent = done
            .saturating_mul(100)
            .checked_div(total)
            .unwrap_or(100)
            .min(100);
        if self.shown == Some(percent) {
            return;
        }
        self.shown = Some(percent);
        let filled = (percent / 4) as usize;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\raudit [{}{}] {percent:>3}%  {done}/{total} entries",
            "#".repeat(filled),
            " ".repeat(25 - filled)
        );
        let _ = err.flush();
    }
}
