//! The connectors-folder watch: the newest valid mapping file in the folder is the bank core in service, the embedded sandbox when there is none; a bad file is reported and changes nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use consentnet_bank_adapter::api::Adapter;
use consentnet_bank_adapter::connector::BankConnector;
use consentnet_bank_adapter::mapping::{Mapping, MappingConnector, MappingError};
use consentnet_identity::util::lock;

/// Why the newest mapping file was refused, if it was.
#[derive(Debug, Clone, Default)]
pub struct ConnectorProblem(Arc<std::sync::Mutex<Option<String>>>);

impl ConnectorProblem {
    fn set(&self, problem: Option<String>) {
        *lock(&self.0) = problem;
    }

    /// The current problem.
    pub fn get(&self) -> Option<String> {
        lock(&self.0).clone()
    }
}

/// How often the connectors folder is looked at.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// The connector a bank node runs: the mapping file in `dir` if there is a valid one,
/// else the embedded sandbox bank. A bad file is reported (naming the field) and the
/// connector in service stays.
pub fn watch_connectors(
    adapter: Arc<Adapter>,
    dir: PathBuf,
    sandbox: Arc<dyn BankConnector>,
    problem: ConnectorProblem,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen: Option<(PathBuf, SystemTime, u64)> = None;
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        loop {
            tick.tick().await;
            let current = newest_mapping(&dir);
            if current == seen {
                continue;
            }
            seen = current.clone();
            match current {
                None => {
                    adapter.replace_connector(sandbox.clone());
                    problem.set(None);
                    tracing::info!("no mapping file: the sandbox bank is in service");
                }
                Some((path, ..)) => match load_mapping(&path) {
                    Ok(connector) => {
                        tracing::info!(file = %path.display(), name = connector.mapping().name, "mapping connector in service");
                        adapter.replace_connector(Arc::new(connector));
                        problem.set(None);
                    }
                    Err(error) => {
                        tracing::error!(%error, "mapping file refused; the connector in service stays");
                        problem.set(Some(error.to_string()));
                    }
                },
            }
        }
    })
}

/// The `.toml` file in `dir` changed last, with its modification time and size.
fn newest_mapping(dir: &Path) -> Option<(PathBuf, SystemTime, u64)> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((e.path(), meta.modified().ok()?, meta.len()))
        })
        .max_by_key(|(path, modified, _)| (*modified, path.clone()))
}

/// Reads and checks a mapping file (at most 256 KiB).
pub fn load_mapping(path: &Path) -> Result<MappingConnector, MappingError> {
    let name = path.display().to_string();
    let error = |message: String| MappingError {
        name: name.clone(),
        message,
    };
    let size = std::fs::metadata(path)
        .map_err(|e| error(e.to_string()))?
        .len();
    if size > 256 * 1024 {
        return Err(error(format!("{size} bytes; the limit is 262144")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    let root = path.parent().unwrap_or(Path::new("."));
    let mapping = Mapping::parse_in(&name, &text, root)?;
    Ok(MappingConnector::new(mapping))
}
