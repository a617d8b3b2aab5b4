//! The bank role: the node serves the unified Open Banking API, reading consents from its own log and writing every served or refused call into its feed as signed access batches.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use consentnet_bank_adapter::api::AccessSink;
use consentnet_bank_adapter::enforce::ConsentSource;
use consentnet_consent_chain::ConsentStatus;
use consentnet_consent_chain::event::{AccessBatch, AccessRecord, AppAction, Outcome};
use consentnet_identity::{ConsentId, Did, VerifiedConsent};
use tokio::sync::mpsc;

use crate::service::{NodeService, Submitter};

/// Records per access batch: a batch must fit in one entry (64 KiB).
pub const BATCH_RECORDS: usize = 250;
/// How long a record may wait for its batch.
pub const BATCH_DELAY: Duration = Duration::from_millis(250);
/// Records waiting to be batched at most.
pub const RECORD_QUEUE: usize = 65_536;

/// Consent and catalog state read from the node's log.
#[derive(Debug, Clone)]
pub struct LogConsents(pub Arc<NodeService>);

impl ConsentSource for LogConsents {
    fn consent_at(
        &self,
        id: &ConsentId,
        at: DateTime<Utc>,
    ) -> Option<(Arc<VerifiedConsent>, ConsentStatus)> {
        self.0.read(|replica| replica.state().consent_at(id, at))
    }

    fn app_decision(&self, bank: &Did, app: &Did, version: &str) -> Option<AppAction> {
        self.0
            .read(|replica| replica.state().app_decision(bank, app, version))
    }
}

/// Queues access records for the batcher. Never blocks a request: when the queue is
/// full the record is counted as dropped and logged.
#[derive(Debug, Clone)]
pub struct FeedRecords {
    queue: mpsc::Sender<AccessRecord>,
    service: Arc<NodeService>,
}

impl AccessSink for FeedRecords {
    fn record(
        &self,
        consent: ConsentId,
        operation: &'static str,
        time: DateTime<Utc>,
        outcome: Outcome,
    ) {
        let record = AccessRecord {
            consent_id: consent,
            operation: operation.to_owned(),
            time: u64::try_from(time.timestamp_millis()).unwrap_or(0),
            outcome,
        };
        if self.queue.try_send(record).is_err() {
            self.service.metrics.access_record_dropped();
            tracing::error!("access record queue full: a record was dropped");
        }
    }
}

/// Starts the batcher: records are signed into access batches and appended to this
/// node's feed, then gossiped. The task ends, after writing what it holds, once every
/// [`FeedRecords`] is dropped.
pub fn start_recorder(
    service: Arc<NodeService>,
    submitter: Submitter,
) -> (FeedRecords, tokio::task::JoinHandle<()>) {
    let (queue, mut inbox) = mpsc::channel::<AccessRecord>(RECORD_QUEUE);
    let sink = FeedRecords {
        queue,
        service: service.clone(),
    };
    let task = tokio::spawn(async move {
        while let Some(first) = inbox.recv().await {
            let mut records = vec![first];
            let deadline = tokio::time::sleep(BATCH_DELAY);
            tokio::pin!(deadline);
            while records.len() < BATCH_RECORDS {
                tokio::select! {
                    next = inbox.recv() => match next {
                        Some(record) => records.push(record),
                        None => break,
                    },
                    () = &mut deadline => break,
                }
            }
            let batch = AccessBatch {
                bank: service.did().clone(),
                records,
            };
            // The submitter gossips the new entry.
            if let Err(error) = submitter.submit(service.access_event(batch)).await {
                tracing::error!(%error, "access batch not written");
            }
        }
    });
    (sink, task)
}

/// Why the newest mapping file was refused, if it was.
#[derive(Debug, Clone, Default)]
pub struct ConnectorProblem(Arc<std::sync::Mutex<Option<String>>>);

impl ConnectorProblem {
    fn set(&self, problem: Option<String>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = problem;
    }

    /// The current problem.
    pub fn get(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// How often the connectors folder is looked at.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// The connector a bank node runs: the mapping file in `dir` if there is a valid one,
/// else the embedded sandbox bank. A bad file is reported (naming the field) and the
/// connector in service stays.
pub fn watch_connectors(
    adapter: Arc<consentnet_bank_adapter::api::Adapter>,
    dir: std::path::PathBuf,
    sandbox: Arc<dyn consentnet_bank_adapter::connector::BankConnector>,
    problem: ConnectorProblem,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen: Option<(std::path::PathBuf, std::time::SystemTime, u64)> = None;
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
fn newest_mapping(
    dir: &std::path::Path,
) -> Option<(std::path::PathBuf, std::time::SystemTime, u64)> {
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
pub fn load_mapping(
    path: &std::path::Path,
) -> Result<
    consentnet_bank_adapter::mapping::MappingConnector,
    consentnet_bank_adapter::mapping::MappingError,
> {
    let name = path.display().to_string();
    let error = |message: String| consentnet_bank_adapter::mapping::MappingError {
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
    let mapping = consentnet_bank_adapter::mapping::Mapping::parse(&name, &text)?;
    Ok(consentnet_bank_adapter::mapping::MappingConnector::new(
        mapping,
    ))
}

/// The file the admin API writes its mapping to, inside the connectors folder.
pub const ADMIN_MAPPING: &str = "admin.toml";

/// The connector admin API: `PUT /v1/admin/connector` (a mapping file as the body)
/// checks the mapping and puts it in the watched folder; `DELETE` removes every mapping
/// file, so the sandbox bank comes back. Both need `x-admin-token`.
#[derive(Debug, Clone)]
pub struct ConnectorAdmin {
    /// The watched folder.
    pub dir: std::path::PathBuf,
    /// The token, when the admin API is enabled.
    pub token: Option<String>,
}

impl ConnectorAdmin {
    /// True when `given` is the configured token (compared in constant time).
    pub fn allows(&self, given: Option<&str>) -> bool {
        match (&self.token, given) {
            (Some(token), Some(given)) if token.len() == given.len() => {
                token
                    .bytes()
                    .zip(given.bytes())
                    .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                    == 0
            }
            _ => false,
        }
    }

    /// Checks `text` as a mapping and installs it atomically; returns its name.
    pub fn install(
        &self,
        text: &str,
    ) -> Result<String, consentnet_bank_adapter::mapping::MappingError> {
        let mapping = consentnet_bank_adapter::mapping::Mapping::parse("request body", text)?;
        let error = |message: String| consentnet_bank_adapter::mapping::MappingError {
            name: mapping.name.clone(),
            message,
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| error(e.to_string()))?;
        // Every other mapping file goes, so the installed one is the one in service.
        self.remove_all().map_err(|e| error(e.to_string()))?;
        let temporary = self.dir.join(".admin.toml.tmp");
        std::fs::write(&temporary, text).map_err(|e| error(e.to_string()))?;
        std::fs::rename(&temporary, self.dir.join(ADMIN_MAPPING))
            .map_err(|e| error(e.to_string()))?;
        Ok(mapping.name)
    }

    /// Removes every mapping file from the folder.
    pub fn remove_all(&self) -> std::io::Result<()> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(());
        };
        for entry in entries.filter_map(Result::ok) {
            if entry.path().extension().is_some_and(|x| x == "toml") {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }
}
