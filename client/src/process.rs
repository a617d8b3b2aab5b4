//! Helpers for driving real processes, shared by the demo and the multi-process tests: waiting on a condition with a deadline, and reading the JSON line a process prints once it listens.

use std::time::{Duration, Instant};

use serde_json::Value;

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(50);

/// A condition that did not come true in time.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what} did not happen within {deadline:?}")]
pub struct TimedOut {
    /// What was waited for.
    pub what: String,
    /// How long.
    pub deadline: Duration,
}

/// Polls `check` until it returns `Some`, or fails naming `what` after `deadline`.
pub fn wait_until<T>(
    what: &str,
    deadline: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Result<T, TimedOut> {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return Ok(value);
        }
        if started.elapsed() > deadline {
            return Err(TimedOut {
                what: what.to_owned(),
                deadline,
            });
        }
        std::thread::park_timeout(POLL);
    }
}

/// The `{"event":"listening",...}` line every consentnet process prints on stdout once
/// it has bound its addresses, if `line` is that line.
pub fn listening_event(line: &str) -> Option<Value> {
    serde_json::from_str::<Value>(line)
        .ok()
        .filter(|event| event["event"] == "listening")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_ends_with_the_value_or_names_what_timed_out() {
        let mut polls = 0;
        let value = wait_until("three polls", Duration::from_secs(5), || {
            polls += 1;
            (polls == 3).then_some(polls)
        });
        assert_eq!(value.ok(), Some(3));
        let late = wait_until("never", Duration::from_millis(60), || None::<()>);
        assert_eq!(
            late.map_err(|e| e.to_string()),
            Err("never did not happen within 60ms".to_owned())
        );
    }

    #[test]
    fn only_the_listening_line_is_taken() {
        assert!(listening_event(r#"{"event":"listening","http":"127.0.0.1:1"}"#).is_some());
        assert!(listening_event(r#"{"event":"stopped"}"#).is_none());
        assert!(listening_event("INFO starting").is_none());
    }
}
