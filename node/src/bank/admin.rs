//! The connector admin API's file side: a checked mapping is installed atomically into the watched folder, or every mapping removed, behind the bank's admin token.

use consentnet_bank_adapter::mapping::{Mapping, MappingError};
use consentnet_identity::util::constant_time_eq;

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
            (Some(token), Some(given)) => constant_time_eq(token.as_bytes(), given.as_bytes()),
            _ => false,
        }
    }

    /// Checks `text` as a mapping and installs it atomically; returns its name.
    pub fn install(&self, text: &str) -> Result<String, MappingError> {
        let mapping = Mapping::parse_in("request body", text, &self.dir)?;
        let error = |message: String| MappingError {
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
