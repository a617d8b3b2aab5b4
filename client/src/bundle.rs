//! A mini-app's bundle on the TSP's side: a folder's files named by path, size and SHA-256 as the manifest's `miniApp` section, each uploaded to the publishing member's operator surface before the manifest that names them.

use std::path::Path;

use anyhow::{Context, bail};
use consentnet_consent_chain::miniapp::{BundleFile, MAX_FILES, MiniApp};
use consentnet_identity::Hash32;

use crate::node_api::NodeClient;

/// The SDK every bundle carries, as `consentnet-miniapp.js` (`docs/MINIAPPS.md`).
pub const SDK: &[u8] = include_bytes!("../sdk/consentnet-miniapp.js");
/// The name the SDK has in a bundle.
pub const SDK_PATH: &str = "consentnet-miniapp.js";

/// Every file under `dir`, by its `/`-separated path below it, in path order.
pub fn read_dir(dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    collect(dir, "", &mut files)?;
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

fn collect(dir: &Path, prefix: &str, files: &mut Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("reading the bundle folder {}", dir.display()))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().into_string().map_err(|name| {
            anyhow::anyhow!(
                "{name:?} in {}: bundle paths are plain ASCII",
                dir.display()
            )
        })?;
        let path = format!("{prefix}{name}");
        if entry.file_type()?.is_dir() {
            collect(&entry.path(), &format!("{path}/"), files)?;
        } else {
            if files.len() >= MAX_FILES {
                bail!("{} holds more than {MAX_FILES} files", dir.display());
            }
            let bytes = std::fs::read(entry.path())
                .with_context(|| format!("reading {}", entry.path().display()))?;
            files.push((path, bytes));
        }
    }
    Ok(())
}

/// The manifest's `miniApp` section for `files` (in path order), asking for `origins`;
/// its bundle hash is [`MiniApp::index_hash`].
pub fn mini_app(files: &[(String, Vec<u8>)], origins: Vec<String>) -> MiniApp {
    MiniApp {
        files: files
            .iter()
            .map(|(path, bytes)| BundleFile {
                path: path.clone(),
                size: bytes.len() as u64,
                sha256: Hash32::of(bytes),
            })
            .collect(),
        origins,
    }
}

/// Uploads each of `files` to `member`'s operator surface under its hash.
pub fn upload(
    member: &NodeClient,
    token: Option<&str>,
    files: &[(String, Vec<u8>)],
) -> anyhow::Result<()> {
    let headers: Vec<(&str, &str)> = token.map(|t| ("x-admin-token", t)).into_iter().collect();
    for (path, bytes) in files {
        member
            .put_bytes(
                &format!("/v1/bundles/files/{}", Hash32::of(bytes)),
                &headers,
                bytes,
            )
            .with_context(|| format!("uploading {path}"))?;
    }
    Ok(())
}
