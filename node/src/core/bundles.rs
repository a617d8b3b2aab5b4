//! Mini-app bundle files held by this node, content-addressed by SHA-256 in one folder: written whole (temp file, fsync, rename) only when their bytes match the hash they are stored under, and hashed again when read, so bytes altered on disk are never served or run.

use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use consentnet_consent_chain::State;
use consentnet_consent_chain::event::AppAction;
use consentnet_consent_chain::miniapp::MAX_FILE_BYTES;
use consentnet_identity::{Did, Hash32};

use super::NodeService;

/// Why a bundle file was not stored or read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The bytes are not the file the hash names.
    #[error("the bytes hash to {actual}, not {expected}")]
    Mismatch {
        /// The hash the file was offered or stored under.
        expected: Hash32,
        /// The hash of the bytes.
        actual: Hash32,
    },
    /// Empty, or beyond the size one file may have.
    #[error("a bundle file holds 1 to {MAX_FILE_BYTES} bytes, not {0}")]
    Size(u64),
    /// The folder could not be read or written.
    #[error("bundle folder: {0}")]
    Io(#[from] std::io::Error),
}

/// The folder of bundle files, and which files it holds: asked every sync round for
/// every file the log names, so kept in memory rather than asked of the disk. It grows
/// with files held, which [`MAX_UNREVIEWED_BYTES`] and approvals bound.
#[derive(Debug)]
pub struct BundleStore {
    dir: PathBuf,
    held: std::sync::Mutex<HashSet<Hash32>>,
}

impl BundleStore {
    /// The store in `dir`, created if missing; stray temp files from a crash are removed.
    pub fn open(dir: &Path) -> Result<Self, BundleError> {
        std::fs::create_dir_all(dir)?;
        let mut held = HashSet::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "part") {
                std::fs::remove_file(&path)?;
            } else if let Some(hash) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(Hash32::parse)
            {
                held.insert(hash);
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            held: std::sync::Mutex::new(held),
        })
    }

    fn path(&self, hash: &Hash32) -> PathBuf {
        self.dir.join(hash.to_string())
    }

    /// True when the file `hash` names is held.
    pub fn has(&self, hash: &Hash32) -> bool {
        consentnet_identity::util::lock(&self.held).contains(hash)
    }

    /// Stores `bytes` as the file `expected` names, when they hash to it and fit; true
    /// when newly stored, false when already held. Nothing is written otherwise.
    pub fn put(&self, expected: &Hash32, bytes: &[u8]) -> Result<bool, BundleError> {
        let size = bytes.len() as u64;
        if size == 0 || size > MAX_FILE_BYTES {
            return Err(BundleError::Size(size));
        }
        let actual = Hash32::of(bytes);
        if actual != *expected {
            return Err(BundleError::Mismatch {
                expected: *expected,
                actual,
            });
        }
        let path = self.path(expected);
        if self.has(expected) {
            return Ok(false);
        }
        let temp = path.with_extension("part");
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        consentnet_identity::util::lock(&self.held).insert(*expected);
        Ok(true)
    }

    /// The file `hash` names, checked against it; `None` when not held.
    pub fn get(&self, hash: &Hash32) -> Result<Option<Vec<u8>>, BundleError> {
        let bytes = match std::fs::read(self.path(hash)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let actual = Hash32::of(&bytes);
        if actual != *hash {
            return Err(BundleError::Mismatch {
                expected: *hash,
                actual,
            });
        }
        Ok(Some(bytes))
    }

    /// Files this store lacks, at most `limit`, in hash order: every file of a version
    /// `bank` approves, and those of versions it has not approved (yet) while their
    /// bundles add up to at most [`MAX_UNREVIEWED_BYTES`].
    pub fn missing(&self, state: &State, bank: &Did, limit: usize) -> Vec<Hash32> {
        let mut budget = MAX_UNREVIEWED_BYTES;
        let mut named: BTreeSet<Hash32> = BTreeSet::new();
        for manifest in state.manifests() {
            let Some(mini_app) = manifest.mini_app.as_ref() else {
                continue;
            };
            let approved = matches!(
                state.app_action(bank, &manifest.app, &manifest.version),
                Some(AppAction::Approve { .. })
            );
            if !approved {
                let Some(left) = budget.checked_sub(mini_app.total_bytes()) else {
                    continue;
                };
                budget = left;
            }
            named.extend(mini_app.files.iter().map(|f| f.sha256));
        }
        named
            .into_iter()
            .filter(|hash| !self.has(hash))
            .take(limit)
            .collect()
    }
}

/// The most bytes of bundles of versions a bank has not approved that it fetches for
/// review: a member publishing version after version cannot make banks store more.
pub const MAX_UNREVIEWED_BYTES: u64 = 256 * 1024 * 1024;

/// How many missing files one sync round asks members for.
pub const FETCH_ROUND: usize = 8;

/// True when a manifest on the log names the file `hash`.
fn named(state: &State, hash: &Hash32) -> bool {
    state
        .manifests()
        .filter_map(|manifest| manifest.mini_app.as_ref())
        .any(|mini_app| mini_app.files.iter().any(|f| f.sha256 == *hash))
}

impl NodeService {
    /// Keeps mini-app bundle files in `dir`. With `fetch` (banks, which review and host
    /// them), every file a published manifest names is fetched from members.
    pub fn hold_bundles(&self, dir: &Path, fetch: bool) -> Result<(), BundleError> {
        let _ = self.bundles.set((BundleStore::open(dir)?, fetch));
        Ok(())
    }

    /// The bundle files this node holds.
    pub fn bundles(&self) -> Option<&BundleStore> {
        self.bundles.get().map(|(store, _)| store)
    }

    /// A held bundle file for a member; bytes altered on disk are logged, not served.
    pub fn serve_bundle_file(&self, hash: &Hash32) -> Option<Vec<u8>> {
        match self.bundles()?.get(hash) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(%hash, %error, "bundle file not served");
                None
            }
        }
    }

    /// Files published manifests name that this node fetches and lacks, a round's worth.
    pub fn wanted_bundle_files(&self) -> Vec<Hash32> {
        match self.bundles.get() {
            Some((store, true)) => store.missing(&self.state(), self.did(), FETCH_ROUND),
            _ => Vec::new(),
        }
    }

    /// Keeps a fetched file when a published manifest names it and the bytes are it.
    pub fn keep_bundle_file(&self, hash: &Hash32, bytes: &[u8]) -> Result<(), String> {
        let Some((store, true)) = self.bundles.get() else {
            return Err("this node does not fetch bundle files".into());
        };
        if !named(&self.state(), hash) {
            return Err("no published manifest names it".into());
        }
        store
            .put(hash, bytes)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_file_is_stored_only_under_its_own_hash_and_read_back_checked() {
        let dir = tempfile::tempdir().unwrap();
        let store = BundleStore::open(dir.path()).unwrap();
        let bytes = b"<p>hello</p>";
        let hash = Hash32::of(bytes);
        let other = Hash32::of(b"other");
        assert!(matches!(
            store.put(&other, bytes),
            Err(BundleError::Mismatch { .. })
        ));
        assert!(!store.has(&other));
        assert!(matches!(store.put(&other, b""), Err(BundleError::Size(0))));
        assert!(store.put(&hash, bytes).unwrap());
        assert!(!store.put(&hash, bytes).unwrap(), "held already");
        assert_eq!(store.get(&hash).unwrap().unwrap(), bytes);
        assert_eq!(store.get(&other).unwrap(), None);
        // Bytes altered on disk are refused when read.
        std::fs::write(dir.path().join(hash.to_string()), b"<p>evil</p>").unwrap();
        assert!(matches!(
            store.get(&hash),
            Err(BundleError::Mismatch { .. })
        ));
        // A temp file left by a crash is removed when the store opens, and the files
        // held are known again without being fetched.
        std::fs::write(dir.path().join("x.part"), b"half").unwrap();
        let reopened = BundleStore::open(dir.path()).unwrap();
        assert!(!dir.path().join("x.part").exists());
        assert!(reopened.has(&hash));
        assert!(!reopened.has(&other));
    }

    #[test]
    fn unapproved_bundles_are_fetched_up_to_the_budget_and_approved_ones_always() {
        use consentnet_consent_chain::event::{AppDecision, AppManifest, Platform};
        use consentnet_consent_chain::miniapp::{BundleFile, MiniApp};
        use consentnet_consent_chain::{Event, Genesis, Member, MemoryStore, Replica, Role};
        use consentnet_identity::KeyPair;

        let (bank, tsp, app) = (
            KeyPair::generate(),
            KeyPair::generate(),
            KeyPair::generate(),
        );
        let member = |key: &KeyPair, role| Member {
            did: key.did().clone(),
            role,
            peer_id: "peer".into(),
            name: "member".into(),
        };
        let genesis = Genesis {
            network: "bundles".into(),
            members: vec![member(&bank, Role::Bank), member(&tsp, Role::Tsp)],
        };
        let mut node = Replica::open(MemoryStore::new(), &genesis).unwrap();
        // Versions of 4 MiB each (four files of 1 MiB): 64 fit the budget, the 65th not.
        let versions = usize::try_from(MAX_UNREVIEWED_BYTES / (4 * MAX_FILE_BYTES)).unwrap() + 1;
        for v in 0..versions {
            let files = (0..4)
                .map(|f| BundleFile {
                    path: if f == 0 {
                        "index.html".into()
                    } else {
                        format!("f{f}.js")
                    },
                    size: MAX_FILE_BYTES,
                    sha256: Hash32::of(format!("{v}/{f}").as_bytes()),
                })
                .collect::<Vec<_>>();
            let mut files = files;
            files.sort_by(|a, b| a.path.cmp(&b.path));
            let mini_app = MiniApp {
                files,
                origins: vec![],
            };
            let manifest = AppManifest {
                app: app.did().clone(),
                name: "App".into(),
                description: "Many versions".into(),
                version: format!("{v:03}"),
                platform: Platform::Web,
                redirect_uris: vec![],
                events_uri: None,
                requested_permissions: Default::default(),
                bundle_hash: mini_app.index_hash().to_string(),
                mini_app: Some(Box::new(mini_app)),
            };
            let seq = u64::try_from(v).unwrap() + 1;
            node.append_local(&tsp, Event::app_published(&app, manifest), seq)
                .unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let store = BundleStore::open(dir.path()).unwrap();
        let wanted = |state: &State| store.missing(state, bank.did(), usize::MAX).len();
        assert_eq!(
            wanted(node.state()),
            (versions - 1) * 4,
            "the last version is over the budget"
        );
        // Approved, the last version's files are fetched whatever the budget.
        let last = format!("{:03}", versions - 1);
        let decision = AppDecision {
            bank: bank.did().clone(),
            app: app.did().clone(),
            version: last,
            action: AppAction::Approve {
                permissions: Default::default(),
                rate_limit: None,
                origins: Default::default(),
            },
            time: 1,
        };
        node.append_local(&bank, Event::app_decided(&bank, decision), 1)
            .unwrap();
        assert_eq!(wanted(node.state()), versions * 4);
    }

    #[test]
    fn a_file_beyond_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = BundleStore::open(dir.path()).unwrap();
        let bytes = vec![b'a'; usize::try_from(MAX_FILE_BYTES).unwrap() + 1];
        assert!(matches!(
            store.put(&Hash32::of(&bytes), &bytes),
            Err(BundleError::Size(_))
        ));
    }
}
