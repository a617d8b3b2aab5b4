//! A mini-app's bundle as its signed manifest names it: the files by path, size and SHA-256, the network origins it asks for, the bundle hash over that index, and the bounds every member checks before it stores or fetches a byte.

use consentnet_identity::Hash32;
use serde::{Deserialize, Serialize};

/// The most files one bundle may hold.
pub const MAX_FILES: usize = 64;
/// The most bytes one file may hold.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// The most bytes all of a bundle's files may hold together.
pub const MAX_BUNDLE_BYTES: u64 = 4 * 1024 * 1024;
/// The most network origins a version may ask for.
pub const MAX_ORIGINS: usize = 8;
/// The page the portal opens first.
pub const ENTRY_PAGE: &str = "index.html";
/// The longest path a file may have.
const MAX_PATH: usize = 128;
/// The longest origin a version may name.
const MAX_ORIGIN: usize = 256;

/// One file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BundleFile {
    /// Where the file sits in the bundle, e.g. `js/app.js`.
    pub path: String,
    /// Its length in bytes.
    pub size: u64,
    /// SHA-256 of its bytes: members store and fetch it by this.
    pub sha256: Hash32,
}

/// What a manifest says of a version that runs in the bank's portal as a mini-app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MiniApp {
    /// Every file of the bundle, by path in ascending byte order; one is `index.html`.
    pub files: Vec<BundleFile>,
    /// Network origins (`https://host[:port]`) the app asks to reach itself; the bank
    /// may allow some of them. Without any, it reaches nothing but the host's bridge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<String>,
}

/// Why a mini-app section is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The file list breaks a bound or a rule.
    #[error("mini-app files: {0}")]
    Files(String),
    /// A named origin is not an `https` origin.
    #[error("mini-app origins: {0}")]
    Origins(String),
    /// The manifest's bundle hash is not the hash of its file list.
    #[error("bundle hash {given} is not the hash of the mini-app's file list ({expected})")]
    Hash {
        /// What the manifest says.
        given: String,
        /// The file list's hash.
        expected: Hash32,
    },
}

impl MiniApp {
    /// The bundle hash: SHA-256 over `consentnet-bundle/1\n` and one line per file,
    /// `path\tsize\tsha256\n`, in the list's order. It names the whole bundle, so a
    /// manifest's `bundleHash` pins every byte the portal will run.
    pub fn index_hash(&self) -> Hash32 {
        let mut index = String::from("consentnet-bundle/1\n");
        for file in &self.files {
            index.push_str(&format!("{}\t{}\t{}\n", file.path, file.size, file.sha256));
        }
        Hash32::of(index.as_bytes())
    }

    /// The total of the files' sizes.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The file at `path`, if the bundle has one.
    pub fn file(&self, path: &str) -> Option<&BundleFile> {
        self.files
            .binary_search_by(|f| f.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.files[i])
    }

    /// Checks every bound and rule, and that `bundle_hash` is this file list's hash.
    pub fn check(&self, bundle_hash: &str) -> Result<(), BundleError> {
        self.check_files()?;
        self.check_origins()?;
        let expected = self.index_hash();
        if Hash32::parse(bundle_hash) != Some(expected) {
            return Err(BundleError::Hash {
                given: bundle_hash.to_owned(),
                expected,
            });
        }
        Ok(())
    }

    fn check_files(&self) -> Result<(), BundleError> {
        let fail = |why: String| Err(BundleError::Files(why));
        if self.files.is_empty() || self.files.len() > MAX_FILES {
            return fail(format!("1 to {MAX_FILES} files, not {}", self.files.len()));
        }
        for file in &self.files {
            check_path(&file.path).map_err(BundleError::Files)?;
            if file.size == 0 || file.size > MAX_FILE_BYTES {
                return fail(format!(
                    "{}: {} bytes; a file holds 1 to {MAX_FILE_BYTES}",
                    file.path, file.size
                ));
            }
        }
        if let Some(pair) = self.files.windows(2).find(|w| w[0].path >= w[1].path) {
            return fail(format!(
                "paths must be unique and in ascending order: {:?} then {:?}",
                pair[0].path, pair[1].path
            ));
        }
        if self.total_bytes() > MAX_BUNDLE_BYTES {
            return fail(format!(
                "{} bytes in all; a bundle holds at most {MAX_BUNDLE_BYTES}",
                self.total_bytes()
            ));
        }
        if self.file(ENTRY_PAGE).is_none() {
            return fail(format!("no {ENTRY_PAGE}: the portal opens it first"));
        }
        Ok(())
    }

    fn check_origins(&self) -> Result<(), BundleError> {
        check_allowed_origins(self.origins.iter())
    }
}

/// A bundle path: 1 to 128 bytes of `/`-separated segments, each of ASCII letters,
/// digits, `.`, `_` and `-`, none empty, `.` or `..`.
fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.len() > MAX_PATH {
        return Err(format!("{path:?}: a path has 1 to {MAX_PATH} bytes"));
    }
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    if path.split('/').all(segment_ok) {
        Ok(())
    } else {
        Err(format!(
            "{path:?}: segments of letters, digits, '.', '_' and '-', none empty, '.' or '..'"
        ))
    }
}

/// Checks the origins a bank allows a mini-app version: at most [`MAX_ORIGINS`], each
/// an `https` origin.
pub fn check_allowed_origins<'a>(
    origins: impl ExactSizeIterator<Item = &'a String>,
) -> Result<(), BundleError> {
    if origins.len() > MAX_ORIGINS {
        return Err(BundleError::Origins(format!(
            "at most {MAX_ORIGINS}, not {}",
            origins.len()
        )));
    }
    for origin in origins {
        check_origin(origin).map_err(BundleError::Origins)?;
    }
    Ok(())
}

/// An origin: `https://` then a lowercase host of letters, digits, `.` and `-`, and an
/// optional port; nothing after it.
fn check_origin(origin: &str) -> Result<(), String> {
    let bad = || format!("{origin:?} is not an https origin such as https://api.example.com");
    let rest = origin.strip_prefix("https://").ok_or_else(bad)?;
    let (host, port) = rest.split_once(':').unwrap_or((rest, ""));
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'));
    let port_ok = rest.len() == host.len() || port.parse::<u16>().is_ok_and(|p| p > 0);
    if origin.len() <= MAX_ORIGIN && host_ok && port_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn file(path: &str, bytes: &[u8]) -> BundleFile {
        BundleFile {
            path: path.into(),
            size: bytes.len() as u64,
            sha256: Hash32::of(bytes),
        }
    }

    fn app() -> MiniApp {
        MiniApp {
            files: vec![file("app.js", b"go()"), file("index.html", b"<p>hi</p>")],
            origins: vec![],
        }
    }

    #[test]
    fn a_bundle_with_its_own_hash_passes_and_any_change_to_a_file_changes_the_hash() {
        let app = app();
        let hash = app.index_hash().to_string();
        app.check(&hash).unwrap();
        let mut changed = app.clone();
        changed.files[0].sha256 = Hash32::of(b"go(); steal()");
        assert!(matches!(
            changed.check(&hash),
            Err(BundleError::Hash { .. })
        ));
        let mut resized = app;
        resized.files[1].size += 1;
        assert_ne!(resized.index_hash().to_string(), hash);
    }

    #[test]
    fn paths_sizes_order_and_the_entry_page_are_enforced() {
        let refused = |files: Vec<BundleFile>| {
            let app = MiniApp {
                files,
                origins: vec![],
            };
            app.check(&app.index_hash().to_string()).unwrap_err()
        };
        let index = file("index.html", b"x");
        for path in [
            "../etc/passwd",
            "/abs",
            "a//b",
            "a/./b",
            "sp ace",
            "a\\b",
            "",
        ] {
            let error = refused(vec![file(path, b"x"), index.clone()]);
            assert!(matches!(error, BundleError::Files(_)), "{path}: {error}");
        }
        assert!(
            refused(vec![file("app.js", b"x")])
                .to_string()
                .contains("no index.html")
        );
        let unordered = refused(vec![index.clone(), file("app.js", b"x")]);
        assert!(unordered.to_string().contains("ascending"), "{unordered}");
        let twice = refused(vec![index.clone(), index.clone()]);
        assert!(twice.to_string().contains("unique"), "{twice}");
        let mut empty = index.clone();
        empty.size = 0;
        assert!(refused(vec![empty]).to_string().contains("1 to"));
        let mut big = index;
        big.size = MAX_FILE_BYTES + 1;
        assert!(refused(vec![big]).to_string().contains("bytes"));
        let many: Vec<BundleFile> = (0..=MAX_FILES)
            .map(|i| file(&format!("f{i:03}"), b"x"))
            .collect();
        assert!(refused(many).to_string().contains("files"));
    }

    #[test]
    fn only_https_origins_without_a_path_are_taken() {
        let mut app = app();
        app.origins = vec!["https://api.example.com".into(), "https://x.io:8443".into()];
        app.check(&app.index_hash().to_string()).unwrap();
        for origin in [
            "http://api.example.com",
            "https://api.example.com/",
            "https://API.example.com",
            "https://a.com:0",
            "https://a.com:99999",
            "https://",
            "https://a.com@b.com",
        ] {
            app.origins = vec![origin.into()];
            let error = app.check(&app.index_hash().to_string()).unwrap_err();
            assert!(matches!(error, BundleError::Origins(_)), "{origin}");
        }
    }
}
