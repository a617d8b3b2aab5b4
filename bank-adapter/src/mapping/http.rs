//! The mapping connector's HTTP side: one request to the bank core with its headers filled from the mapping's templates (auth, OAuth token, the core's own consent), retries after timeouts and `5xx`, bounded answers, and error answers read through the `errors` section.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::errors::{Asked, Refusals, Verdict};
use super::template::{self, Values};
use super::*;

/// A connector configured by a [`Mapping`].
pub struct MappingConnector {
    pub(super) mapping: Mapping,
    agent: ureq::Agent,
    /// The OAuth bearer token and when to stop using it.
    token: std::sync::Mutex<Option<(String, Instant)>>,
    /// The core's own consent id, once created.
    core_consent: std::sync::Mutex<Option<String>>,
    /// The core's refusals, for the bank's metrics.
    pub(super) refusals: Refusals,
}

impl std::fmt::Debug for MappingConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappingConnector")
            .field("name", &self.mapping.name)
            .finish_non_exhaustive()
    }
}

/// One request to the core: what it is for, its path, and a JSON body for a POST.
#[derive(Debug, Clone, Copy)]
pub(super) struct Request<'a> {
    /// The operation, for headers, error codes and metrics.
    pub op: &'a Operation,
    /// Its name, e.g. `balances`.
    pub name: &'static str,
    /// Path and query.
    pub path: &'a str,
    /// For a POST: the JSON body and the idempotency key.
    pub post: Option<(&'a str, Option<&'a str>)>,
}

/// A core's answer: its status and its body, when that was JSON.
type Answer = (u16, Option<Value>);

impl MappingConnector {
    /// A connector for `mapping`.
    pub fn new(mapping: Mapping) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_millis(mapping.timeout_ms)))
            .tls_config(mapping.tls_material.config())
            .build()
            .new_agent();
        Self {
            mapping,
            agent,
            token: std::sync::Mutex::new(None),
            core_consent: std::sync::Mutex::new(None),
            refusals: Refusals::default(),
        }
    }

    /// The mapping in use.
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// The OAuth bearer token, fetched when there is none or it is about to expire.
    fn bearer(&self, refresh: bool) -> Result<String, ConnectorError> {
        let Some(oauth) = &self.mapping.oauth else {
            return Err(ConnectorError::Unavailable("no OAuth client".into()));
        };
        let mut cached = consentnet_identity::util::lock(&self.token);
        if !refresh
            && let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", oauth.client_id, oauth.client_secret));
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &oauth.scope {
            form.push(("scope", scope));
        }
        let mut response = self
            .agent
            .post(&oauth.token_url)
            .header("authorization", &format!("Basic {basic}"))
            .send_form(form)
            .map_err(|e| match e {
                ureq::Error::Timeout(_) => ConnectorError::Timeout,
                other => ConnectorError::Unavailable(format!("token endpoint: {other}")),
            })?;
        let status = response.status().as_u16();
        let body: Value = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_json()
            .map_err(|e| bad(format!("token answer: {e}")))?;
        let token = body["access_token"]
            .as_str()
            .filter(|_| status == 200)
            .ok_or_else(|| {
                ConnectorError::Unavailable(format!("token endpoint answered {status}"))
            })?
            .to_owned();
        // Renew a little before the bank would refuse it.
        let lifetime = body["expires_in"]
            .as_u64()
            .unwrap_or(300)
            .saturating_sub(10);
        *cached = Some((
            token.clone(),
            Instant::now() + Duration::from_secs(lifetime),
        ));
        Ok(token)
    }

    /// Every header of a request: auth, the mapping's, the operation's, the idempotency
    /// key. A template needing a value this request lacks is left out.
    fn headers(
        &self,
        op: &Operation,
        values: &Values<'_>,
        refresh: bool,
    ) -> Result<Vec<(String, String)>, ConnectorError> {
        let mut headers = Vec::new();
        if let Some(auth) = &self.mapping.auth {
            headers.extend(template::fill(&auth.value, values).map(|v| (auth.header.clone(), v)));
        } else if self.mapping.oauth.is_some() {
            headers.push((
                "authorization".into(),
                format!("Bearer {}", self.bearer(refresh)?),
            ));
        }
        let mut add = |name: &str, value: String| {
            // A later one (the operation's, the idempotency key) replaces an earlier one.
            headers.retain(|(n, _): &(String, String)| !n.eq_ignore_ascii_case(name));
            headers.push((name.to_owned(), value));
        };
        for (name, value) in self.mapping.headers.iter().chain(&op.headers) {
            if let Some(value) = template::fill(value, values) {
                add(name, value);
            }
        }
        if let (Some(header), Some(key)) = (&op.idempotency_header, values.idempotency_key) {
            add(header, key.to_owned());
        }
        Ok(headers)
    }

    /// True when a request of `op` carries the core's own consent.
    fn needs_core_consent(&self, op: &Operation) -> bool {
        self.mapping.core_consent.is_some()
            && self
                .mapping
                .headers
                .values()
                .chain(op.headers.values())
                .any(|v| template::uses(v, "core_consent"))
    }

    /// The core's own consent id: the one kept, or a new one when there is none or the
    /// kept one is `stale` (another call may have replaced it already).
    fn core_consent(&self, stale: Option<&str>) -> Result<String, ConnectorError> {
        let Some(consent) = &self.mapping.core_consent else {
            return Err(ConnectorError::Unavailable(
                "no core_consent section".into(),
            ));
        };
        let mut cached = consentnet_identity::util::lock(&self.core_consent);
        if let Some(id) = cached.as_ref()
            && stale != Some(id.as_str())
        {
            return Ok(id.clone());
        }
        let values = self.values(None, None);
        let body = template::fill_body(&consent.body, &values)
            .ok_or_else(|| bad("core_consent.body: a placeholder has no value".into()))?;
        let request = Request {
            op: &consent.operation,
            name: "core_consent",
            path: &consent.operation.path,
            post: Some((&body, None)),
        };
        let answer = self
            .exchange(request, &values)
            .map_err(|verdict| match verdict {
                Verdict::Error(error) => error,
                Verdict::ConsentInvalid => bad("the core refused to create its consent".into()),
            })?;
        let id = answer
            .pointer(&consent.id)
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("core consent id missing at {}", consent.id)))?
            .to_owned();
        *cached = Some(id.clone());
        Ok(id)
    }

    /// The template values of a request, from the call this thread serves.
    pub(super) fn values<'a>(
        &'a self,
        core_consent: Option<&'a str>,
        idempotency_key: Option<&'a str>,
    ) -> Values<'a> {
        let context = crate::connector::context();
        Values {
            now: chrono::Utc::now(),
            psu_ip: context.psu_ip.map(|ip| ip.to_string()),
            interaction_id: context.interaction_id,
            core_consent,
            idempotency_key,
            secrets: &self.mapping.secrets,
        }
    }

    /// Sends `request` and reads a `2xx` answer's JSON; an error answer becomes the
    /// error its code means. The core consent is created first when the request carries
    /// it, and once more when the core says it is no longer valid.
    pub(super) fn request(&self, request: Request<'_>) -> Result<Value, ConnectorError> {
        let key = request.post.and_then(|(_, key)| key);
        let invalid = || bad("the core refuses its own consent even when made anew".into());
        if !self.needs_core_consent(request.op) {
            return self.exchange(request, &self.values(None, key)).map_err(
                |verdict| match verdict {
                    Verdict::Error(error) => error,
                    Verdict::ConsentInvalid => invalid(),
                },
            );
        }
        let mut stale: Option<String> = None;
        loop {
            let consent = self.core_consent(stale.as_deref())?;
            match self.exchange(request, &self.values(Some(&consent), key)) {
                Ok(body) => return Ok(body),
                Err(Verdict::Error(error)) => return Err(error),
                Err(Verdict::ConsentInvalid) if stale.is_some() => return Err(invalid()),
                Err(Verdict::ConsentInvalid) => stale = Some(consent),
            }
        }
    }

    /// One request, its retries, and its answer read.
    fn exchange(&self, request: Request<'_>, values: &Values<'_>) -> Result<Value, Verdict> {
        let (status, body) = self.send(request, values).map_err(Verdict::Error)?;
        if (200..300).contains(&status) {
            let what = if request.op.is_xml() {
                "not XML"
            } else {
                "not JSON"
            };
            return body.ok_or_else(|| Verdict::Error(bad(what.into())));
        }
        let asked = Asked {
            payment: request.post.is_some_and(|(_, key)| key.is_some()),
            refusal_code: request.op.refusal_code.as_deref(),
        };
        let verdict = self.mapping.errors.verdict(asked, status, body.as_ref());
        if let Verdict::Error(ConnectorError::CoreRefused { status, code }) = &verdict {
            self.refusals
                .note(&self.mapping.name, request.name, *status, code);
        }
        Err(verdict)
    }

    /// Sends a request with retries (after a timeout, a connection failure or a 5xx).
    fn send(&self, request: Request<'_>, values: &Values<'_>) -> Result<Answer, ConnectorError> {
        let url = format!(
            "{}{}",
            self.mapping.base_url.trim_end_matches('/'),
            request.path
        );
        let mut backoff = Duration::from_millis(self.mapping.backoff_ms);
        let mut attempt = 0;
        let mut refreshed = false;
        loop {
            let headers = self.headers(request.op, values, refreshed)?;
            let sent = match request.post {
                Some((json, _)) => {
                    let media = if request.op.is_xml() {
                        "application/xml"
                    } else {
                        "application/json"
                    };
                    let mut builder = self.agent.post(&url).header("content-type", media);
                    for (name, value) in &headers {
                        builder = builder.header(name, value);
                    }
                    builder.send(json)
                }
                None => {
                    let mut builder = self.agent.get(&url);
                    for (name, value) in &headers {
                        builder = builder.header(name, value);
                    }
                    builder.call()
                }
            };
            let outcome = match sent {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    if status == 401 && self.mapping.oauth.is_some() && !refreshed {
                        // The token may have been revoked or expired early: once more.
                        refreshed = true;
                        continue;
                    }
                    let bytes = response
                        .body_mut()
                        .with_config()
                        .limit(MAX_ANSWER_BYTES)
                        .read_to_vec()
                        .map_err(|e| bad(e.to_string()))?;
                    let parsed = if request.op.is_xml() {
                        std::str::from_utf8(&bytes)
                            .ok()
                            .and_then(|text| xml::to_json(text).ok())
                    } else {
                        serde_json::from_slice(&bytes).ok()
                    };
                    if !(500..=599).contains(&status) || attempt >= self.mapping.retries {
                        return Ok((status, parsed));
                    }
                    ConnectorError::Unavailable(format!("answered {status}"))
                }
                Err(ureq::Error::Timeout(_)) => ConnectorError::Timeout,
                Err(error) => ConnectorError::Unavailable(error.to_string()),
            };
            if attempt >= self.mapping.retries {
                return Err(outcome);
            }
            attempt += 1;
            std::thread::sleep(backoff);
            backoff *= 2;
        }
    }

    /// GETs `path` for `op`; `Ok(None)` when the core says there is no such resource.
    pub(super) fn get(
        &self,
        op: &Operation,
        name: &'static str,
        path: &str,
    ) -> Result<Option<Value>, ConnectorError> {
        let request = Request {
            op,
            name,
            path,
            post: None,
        };
        match self.request(request) {
            Ok(body) => Ok(Some(body)),
            Err(ConnectorError::NotFound(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }
}
