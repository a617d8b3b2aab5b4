//! The bank role: the node serves the unified Open Banking API, checks consents against its own log, records every call into its feed as signed access batches, and takes its bank core from a watched folder of mapping files. [`start`] wires all of it in one call.

mod admin;
mod consents;
pub mod events;
mod recorder;
pub mod status;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use consentnet_bank_adapter::api::{Adapter, AppLimits};
use consentnet_bank_adapter::connector::BankConnector;
use consentnet_bank_adapter::enforce::ReplayCache;
use consentnet_bank_adapter::limits::Rate;
use consentnet_bank_adapter::links::Links;
use consentnet_bank_adapter::payments::Ledger;
use consentnet_bank_adapter::sandbox::SandboxBank;
use consentnet_bank_adapter::signatures::SignatureBatcher;
use consentnet_consent_chain::StoreError;
use consentnet_consent_chain::store::records::RecordStore;
use tokio::task::JoinHandle;

pub use admin::{ADMIN_MAPPING, ConnectorAdmin};
pub use consents::LogConsents;
pub use recorder::{BATCH_DELAY, BATCH_RECORDS, FeedRecords, RECORD_QUEUE, start_recorder};
pub use watch::{ConnectorProblem, WATCH_INTERVAL, load_mapping, watch_connectors};

use crate::config::AdapterSection;
use crate::core::{NodeService, Submitter};

/// Why the bank role could not start.
#[derive(Debug, thiserror::Error)]
pub enum BankError {
    /// The account links could not be opened.
    #[error("opening the account links {}: {source}", path.display())]
    Links {
        /// The links file.
        path: PathBuf,
        /// What went wrong.
        source: consentnet_bank_adapter::links::LinkError,
    },
    /// The access record store could not be opened.
    #[error("opening the access record store {}: {source}", path.display())]
    Records {
        /// The store's folder.
        path: PathBuf,
        /// What went wrong.
        source: StoreError,
    },
    /// The payments journal could not be opened.
    #[error("opening the payments journal {}: {source}", path.display())]
    Journal {
        /// The journal's path.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// What the bank role shares with the node's API and portal.
#[derive(Debug, Clone)]
pub struct Bank {
    /// The unified Open Banking API.
    pub adapter: Arc<Adapter>,
    /// Why the newest mapping file was refused, if it was.
    pub problem: ConnectorProblem,
    /// The connector admin API.
    pub admin: ConnectorAdmin,
    /// The event notifications waiting for each app.
    pub events: Arc<events::Notifications>,
    /// The bank's revocation status list.
    pub status: Arc<status::StatusLists>,
    /// Consents one client may hold here at once (`adapter.max_consents_per_client`).
    pub max_consents_per_client: usize,
}

/// The bank role's background tasks; [`BankTasks::stop`] ends them in order.
#[derive(Debug)]
pub struct BankTasks {
    recorder: JoinHandle<()>,
    watcher: JoinHandle<()>,
    events: [JoinHandle<()>; 2],
}

impl BankTasks {
    /// Stops the connector watch; once the adapter is gone the access-record queue
    /// closes and the recorder writes what it holds (within 10 s), then ends.
    pub async fn stop(self) {
        self.watcher.abort();
        let _ = self.watcher.await;
        for task in self.events {
            task.abort();
            let _ = task.await;
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.recorder).await;
    }
}

/// The default rate of each app at this bank, from `[limits]`.
pub fn app_rate(limits: &crate::config::LimitsSection) -> Rate {
    Rate {
        per_second: limits.per_app_per_second,
        burst: limits.per_app_burst,
    }
}

/// Opens the bank's private account links (`adapter.links_file`).
pub fn open_links(config: &AdapterSection) -> Result<Arc<Links>, BankError> {
    let links = Links::open(&config.links_file).map_err(|source| BankError::Links {
        path: config.links_file.clone(),
        source,
    })?;
    Ok(Arc::new(links))
}

/// Starts the bank role: the access recorder, the adapter over the embedded sandbox, the
/// connectors-folder watch and the admin API (behind `admin_token`, disabled without
/// one). Returns the shared parts, the unified API's routes and the tasks to stop at
/// shutdown.
pub fn start(
    config: &AdapterSection,
    app_rate: Rate,
    admin_token: Option<String>,
    service: Arc<NodeService>,
    submitter: Submitter,
    public_url: String,
    links: Arc<Links>,
) -> Result<(Bank, Router, BankTasks), BankError> {
    let ledger = Ledger::open(&config.payments_journal).map_err(|source| BankError::Journal {
        path: config.payments_journal.clone(),
        source,
    })?;
    let store = RecordStore::open_for(&config.records_dir, service.did()).map_err(|source| {
        BankError::Records {
            path: config.records_dir.clone(),
            source,
        }
    })?;
    let store = Arc::new(store);
    service.keep_own_records(store.clone());
    let (records, recorder) = start_recorder(service.clone(), submitter, store.clone());
    let sandbox: Arc<dyn BankConnector> =
        Arc::new(SandboxBank::seeded(config.sandbox_seed, chrono::Utc::now()));
    let signer = consentnet_bank_adapter::jws::Signer {
        bank: service.did().clone(),
        sign: service.answer_signing(),
    };
    let adapter = Arc::new(Adapter {
        bank: service.did().clone(),
        public_url,
        source: Arc::new(LogConsents(service.clone())),
        holders: links,
        replay: ReplayCache::new(config.replay_cache),
        signatures: SignatureBatcher::new(),
        connector: std::sync::RwLock::new(sandbox.clone()),
        records: Arc::new(records),
        ledger: Arc::new(ledger),
        check: Default::default(),
        unproven: Default::default(),
        limits: AppLimits::new(app_rate),
        signer: Some(signer),
        resources: Default::default(),
        nonces: consentnet_bank_adapter::nonce::DpopNonces::new(config.require_dpop_nonce),
    });
    let problem = ConnectorProblem::default();
    let watcher = watch_connectors(
        adapter.clone(),
        config.connectors_dir.clone(),
        sandbox,
        problem.clone(),
    );
    let routes = consentnet_bank_adapter::api::router(adapter.clone());
    let notifications = Arc::new(events::Notifications::new(
        consentnet_bank_adapter::jws::Signer {
            bank: service.did().clone(),
            sign: service.answer_signing(),
        },
        &adapter.public_url,
    ));
    let (pusher, push_task) = events::Pusher::start(notifications.clone());
    let status_lists = Arc::new(status::StatusLists::new(&adapter.public_url));
    let watch_task = events::watch_log(
        service.clone(),
        (notifications.clone(), pusher),
        status_lists.clone(),
    );
    let bank = Bank {
        adapter,
        problem,
        admin: ConnectorAdmin {
            dir: config.connectors_dir.clone(),
            token: admin_token,
        },
        events: notifications,
        status: status_lists,
        max_consents_per_client: config.max_consents_per_client,
    };
    let tasks = BankTasks {
        recorder,
        watcher,
        events: [watch_task, push_task],
    };
    Ok((bank, routes, tasks))
}
