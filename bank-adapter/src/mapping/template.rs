//! Header and body templates of a mapping file: the placeholders a bank core's requests may carry (a fresh UUID, the current time, the client's IP address, the interaction id, the core's own consent, the idempotency key, secrets read from files), checked when the file is parsed and filled per request.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};

/// Largest secret file a template may read, in bytes.
pub const MAX_SECRET_BYTES: u64 = 8 * 1024;

/// The secrets a mapping's templates read, by file path. Never printed.
#[derive(Clone, Default)]
pub struct Secrets(BTreeMap<String, String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Secrets {
    /// The files read, by path.
    pub fn paths(&self) -> impl Iterator<Item = &String> {
        self.0.keys()
    }

    /// Reads the secret file `path` once (UTF-8, trailing whitespace trimmed, bounded).
    fn load(&mut self, path: &str) -> Result<(), String> {
        if self.0.contains_key(path) {
            return Ok(());
        }
        let file = Path::new(path);
        if !file.is_absolute() {
            return Err(format!("{{file:{path}}}: an absolute path"));
        }
        let size = std::fs::metadata(file)
            .map_err(|e| format!("{{file:{path}}}: {e}"))?
            .len();
        if size > MAX_SECRET_BYTES {
            return Err(format!(
                "{{file:{path}}}: larger than {MAX_SECRET_BYTES} bytes"
            ));
        }
        let text = std::fs::read_to_string(file).map_err(|e| format!("{{file:{path}}}: {e}"))?;
        let value = text.trim_end().to_owned();
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(format!("{{file:{path}}}: more than one line"));
        }
        self.0.insert(path.to_owned(), value);
        Ok(())
    }
}

/// The values a request's templates are filled with.
#[derive(Debug, Clone)]
pub struct Values<'a> {
    /// Now.
    pub now: DateTime<Utc>,
    /// The client's IP address, when the client is present.
    pub psu_ip: Option<String>,
    /// The unified call's interaction id.
    pub interaction_id: Option<String>,
    /// The core's own consent id, once there is one.
    pub core_consent: Option<&'a str>,
    /// The idempotency key of a payment.
    pub idempotency_key: Option<&'a str>,
    /// The secrets read when the mapping was parsed.
    pub secrets: &'a Secrets,
}

/// One placeholder's name, as written between braces.
fn placeholders(template: &str) -> impl Iterator<Item = Result<&str, String>> {
    let mut rest = template;
    std::iter::from_fn(move || {
        let start = rest.find('{')?;
        let Some(len) = rest[start..].find('}') else {
            rest = "";
            return Some(Err(format!("{template:?}: a {{ without its }}")));
        };
        let name = &rest[start + 1..start + len];
        rest = &rest[start + len + 1..];
        Some(Ok(name))
    })
}

const NAMES: &[&str] = &[
    "uuid",
    "now:rfc1123",
    "now:rfc3339",
    "psu_ip",
    "interaction_id",
    "core_consent",
    "idempotency_key",
    "idempotency_uuid",
];

/// Checks a header template: every placeholder is known; secret files are read into
/// `secrets`. `extra` names the placeholders this template may also use.
pub fn check(template: &str, extra: &[&str], secrets: &mut Secrets) -> Result<(), String> {
    for name in placeholders(template) {
        let name = name?;
        // `{name|fallback}`: the fallback text when the value is missing.
        let name = name.split_once('|').map_or(name, |(name, _)| name);
        if let Some(path) = name.strip_prefix("file:") {
            secrets.load(path)?;
        } else if !NAMES.contains(&name) && !extra.contains(&name) {
            return Err(format!(
                "{{{name}}} is not a placeholder (known: {}, file:/absolute/path)",
                NAMES.join(", ")
            ));
        }
    }
    Ok(())
}

/// True when `template` uses `{name}` (with or without a fallback).
pub fn uses(template: &str, name: &str) -> bool {
    placeholders(template).any(|found| {
        found.is_ok_and(|found| found.split_once('|').map_or(found, |(n, _)| n) == name)
    })
}

/// A fresh UUID v4 in its 8-4-4-4-12 form.
pub fn uuid() -> String {
    crate::call::fresh_interaction_id()
}

/// A UUID derived from an idempotency key (SHA-256, version 8 bits set), so a retry
/// carries the same one.
pub fn key_uuid(key: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    crate::call::uuid_text(bytes, 0x80)
}

/// Fills `template`; `None` when it needs a value this request does not have (no client
/// IP, no core consent, no idempotency key), so the header is left out.
pub fn fill(template: &str, values: &Values<'_>) -> Option<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let len = rest[start..].find('}')?;
        out.push_str(&rest[..start]);
        let (name, fallback) = match rest[start + 1..start + len].split_once('|') {
            Some((name, fallback)) => (name, Some(fallback)),
            None => (&rest[start + 1..start + len], None),
        };
        let missing = || fallback.map(str::to_owned);
        let value = match name {
            "uuid" => uuid(),
            "now:rfc1123" => values.now.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
            "now:rfc3339" => values
                .now
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "psu_ip" => values.psu_ip.clone().or_else(missing)?,
            "interaction_id" => values.interaction_id.clone().or_else(missing)?,
            "core_consent" => values.core_consent.map(str::to_owned).or_else(missing)?,
            "idempotency_key" => values.idempotency_key.map(str::to_owned).or_else(missing)?,
            "idempotency_uuid" => values.idempotency_key.map(key_uuid).or_else(missing)?,
            other => match other.strip_prefix("file:") {
                Some(path) => values.secrets.0.get(path)?.clone(),
                // Body templates keep the placeholders they fill themselves.
                None => rest[start..start + len + 1].to_owned(),
            },
        };
        out.push_str(&value);
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Fills the placeholders of a JSON body template by name (a body's own braces are JSON,
/// so it is not scanned); each value is escaped for a JSON string. `None` as for [`fill`].
pub fn fill_body(template: &str, values: &Values<'_>) -> Option<String> {
    let escaped = |value: &str| {
        let quoted = serde_json::to_string(value).unwrap_or_default();
        quoted[1..quoted.len().saturating_sub(1).max(1)].to_owned()
    };
    let mut out = template.to_owned();
    for name in NAMES {
        let placeholder = format!("{{{name}}}");
        if out.contains(&placeholder) {
            let value = fill(&placeholder, values)?;
            out = out.replace(&placeholder, &escaped(&value));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_fill_and_unknown_ones_are_named() {
        let mut secrets = Secrets::default();
        assert!(
            check("Bearer {token}", &[], &mut secrets)
                .unwrap_err()
                .contains("{token}")
        );
        assert!(check("{uuid", &[], &mut secrets).is_err());
        assert!(
            check("{file:relative}", &[], &mut secrets)
                .unwrap_err()
                .contains("absolute")
        );
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2017, 9, 10, 19, 43, 31)
            .single()
            .unwrap_or_default();
        let values = Values {
            now,
            psu_ip: None,
            interaction_id: Some("i-1".into()),
            core_consent: Some("c-1"),
            idempotency_key: None,
            secrets: &secrets,
        };
        assert_eq!(
            fill("{now:rfc1123}", &values).as_deref(),
            Some("Sun, 10 Sep 2017 19:43:31 GMT")
        );
        assert_eq!(
            fill("{now:rfc3339}", &values).as_deref(),
            Some("2017-09-10T19:43:31Z")
        );
        assert_eq!(
            fill("{core_consent}/{interaction_id}", &values).as_deref(),
            Some("c-1/i-1")
        );
        assert_eq!(fill("{psu_ip}", &values), None, "no client IP: left out");
        assert_eq!(
            fill("{psu_ip|10.0.0.1}", &values).as_deref(),
            Some("10.0.0.1"),
            "or its fallback"
        );
        assert_eq!(fill("{uuid}", &values).map(|u| u.len()), Some(36));
        assert!(uses("a {core_consent} b", "core_consent"));
        assert!(!uses("a {uuid} b", "core_consent"));
    }
}
